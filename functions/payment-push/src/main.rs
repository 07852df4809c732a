//! Lambda function for `POST /challenges/push/{channel}`: a payment approval request to Authy.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    additional_factors::lambda::run::<additional_factors::lambda::PaymentPush>().await
}
