//! Lambda function for `GET /challenges/{scaChallengeId}`: a payment challenge's status and proof.

use additional_factors::{handlers::get_payment_challenge::GetPaymentChallenge, lambda};

// One thread: a Lambda environment serves one event at a time, so worker threads would only
// cost init time and memory (BENCHMARKS.md, session 11).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run::<GetPaymentChallenge>().await
}
