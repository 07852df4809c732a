//! Lambda function for `POST /challenges/{scaChallengeId}/otp/{channel}/verify`: the code yields a signed proof.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    additional_factors::lambda::run::<additional_factors::lambda::VerifyPaymentSms>().await
}
