//! Lambda function for `POST /simulate/stepup/challenges/{id}/accept` and `.../reject`
//! (sandbox programmes only): the last path segment picks the answer.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    additional_factors::lambda::run_step_up_simulator().await
}
