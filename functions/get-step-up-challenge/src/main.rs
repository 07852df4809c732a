//! Lambda function for `GET /stepup/challenges/{id}`: a push step-up challenge's status.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    additional_factors::lambda::run::<additional_factors::lambda::GetStepUpChallenge>().await
}
