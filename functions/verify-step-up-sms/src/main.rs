//! Lambda function for `POST /stepup/challenges/otp/{channel}/verify`: the code steps the session up.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    additional_factors::lambda::run::<additional_factors::lambda::VerifyStepUpSms>().await
}
