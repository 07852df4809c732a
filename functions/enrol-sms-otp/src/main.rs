//! Lambda function for `POST /authentication factors/otp/{channel}`. The handler lives in the shared library.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    additional_factors::lambda::run::<additional_factors::lambda::EnrolSmsOtp>().await
}
