//! Lambda function for `GET /challenges/{scaChallengeId}`: a payment challenge's status and proof.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    additional_factors::lambda::run::<additional_factors::lambda::GetPaymentChallenge>().await
}
