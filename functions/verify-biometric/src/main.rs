//! Lambda function for `POST /authentication_factors/push/{channel}/verify`: a BIOMETRIC
//! device's enrolment signature.

use additional_factors::{handlers::verify_biometric::VerifyBiometric, lambda};

// One thread: a Lambda environment serves one event at a time (BENCHMARKS.md, session 11).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run::<VerifyBiometric>().await
}
