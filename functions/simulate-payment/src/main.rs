//! Lambda function for `POST /simulate/challenges/{scaChallengeId}/accept` and `.../reject`
//! (sandbox programmes only): the last path segment picks the answer.

use additional_factors::{handlers::simulate_payment::SimulatePayment, lambda};

// One thread: a Lambda environment serves one event at a time, so worker threads would only
// cost init time and memory (BENCHMARKS.md, session 11).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run_simulator::<SimulatePayment<true>, SimulatePayment<false>>().await
}
