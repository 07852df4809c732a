//! Lambda function for `POST /authentication factors/otp/{channel}`. The handler lives in the shared library.

use additional_factors::{handlers::enrol_sms_otp::EnrolSmsOtp, lambda};

// One thread: a Lambda environment serves one event at a time, so worker threads would only
// cost init time and memory (BENCHMARKS.md, session 11).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run::<EnrolSmsOtp>().await
}
