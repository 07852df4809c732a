//! Lambda function for `POST /authentication_factors/push/{channel}/challenges/{id}`: a BIOMETRIC
//! device's signed answer to a step-up or payment challenge.

use additional_factors::{handlers::answer_device_challenge::AnswerDeviceChallenge, lambda};

// One thread: a Lambda environment serves one event at a time (BENCHMARKS.md, session 11).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run::<AnswerDeviceChallenge>().await
}
