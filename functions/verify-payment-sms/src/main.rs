//! Lambda function for `POST /challenges/{scaChallengeId}/otp/{channel}/verify`: the code yields a signed proof.

use additional_factors::{handlers::verify_payment_sms::VerifyPaymentSms, lambda};

// One thread: a Lambda environment serves one event at a time, so worker threads would only
// cost init time and memory (BENCHMARKS.md, session 11).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run::<VerifyPaymentSms>().await
}
