//! Lambda function for `POST /stepup/challenges/push/{channel}`: a step-up approval request to Authy.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    additional_factors::lambda::run::<additional_factors::lambda::StepUpPush>().await
}
