//! Lambda function for `POST /stepup/challenges/otp/{channel}`: a step-up code by SMS.

use additional_factors::{handlers::step_up_sms::StepUpSms, lambda};

// One thread: a Lambda environment serves one event at a time, so worker threads would only
// cost init time and memory (BENCHMARKS.md, session 11).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run::<StepUpSms>().await
}
