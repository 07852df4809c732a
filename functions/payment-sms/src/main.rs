//! Lambda function for `POST /challenges/otp/{channel}`: a payment challenge by SMS.

use additional_factors::{handlers::payment_sms::PaymentSms, lambda};

// One thread: a Lambda environment serves one event at a time, so worker threads would only
// cost init time and memory (BENCHMARKS.md, session 11).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run::<PaymentSms>().await
}
