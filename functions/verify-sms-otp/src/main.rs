//! Lambda function for `POST /authentication factors/otp/{channel}/verify`. The handler lives in the shared library.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    additional_factors::lambda::run::<additional_factors::lambda::VerifySmsOtp>().await
}
