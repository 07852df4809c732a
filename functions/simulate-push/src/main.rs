//! Lambda function for `POST /simulate/authentication_factors/push/{channel}/accept` and
//! `.../reject` (sandbox programmes only): the last path segment picks the answer.

// One thread: a Lambda environment serves one event at a time, so worker threads would only
// cost init time and memory (BENCHMARKS.md, session 11).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    additional_factors::lambda::run_simulator().await
}
