//! Lambda function for `GET /authentication_factors/push/{channel}/challenges`: what a BIOMETRIC
//! device has to answer.

use additional_factors::{handlers::list_device_challenges::ListDeviceChallenges, lambda};

// One thread: a Lambda environment serves one event at a time (BENCHMARKS.md, session 11).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run::<ListDeviceChallenges>().await
}
