//! Lambda function for `POST /simulate/challenges/{scaChallengeId}/accept` and `.../reject`
//! (sandbox programmes only): the last path segment picks the answer.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    additional_factors::lambda::run_payment_simulator().await
}
