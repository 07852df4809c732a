//! Lambda function for `PUT /authentication_factors/push/{channel}`: a BIOMETRIC device's new
//! push token, signed by the device.

use additional_factors::{handlers::update_device_push::UpdateDevicePush, lambda};

// One thread: a Lambda environment serves one event at a time (BENCHMARKS.md, session 11).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run::<UpdateDevicePush>().await
}
