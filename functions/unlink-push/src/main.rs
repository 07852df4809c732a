//! Lambda function for `DELETE /authentication factors/push/{channel}`. The handler lives in the shared library.

use additional_factors::{handlers::unlink_push::UnlinkPush, lambda};

// One thread: a Lambda environment serves one event at a time, so worker threads would only
// cost init time and memory (BENCHMARKS.md, session 11).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run::<UnlinkPush>().await
}
