//! Lambda function for `GET /stepup/challenges/{id}`: a push step-up challenge's status.

use additional_factors::{handlers::get_step_up_challenge::GetStepUpChallenge, lambda};

// One thread: a Lambda environment serves one event at a time, so worker threads would only
// cost init time and memory (BENCHMARKS.md, session 11).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run::<GetStepUpChallenge>().await
}
