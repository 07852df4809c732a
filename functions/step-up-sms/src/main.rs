//! Lambda function for `POST /stepup/challenges/otp/{channel}`: a step-up code by SMS.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    additional_factors::lambda::run::<additional_factors::lambda::StepUpSms>().await
}
