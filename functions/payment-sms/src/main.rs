//! Lambda function for `POST /challenges/otp/{channel}`: a payment challenge by SMS.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    additional_factors::lambda::run::<additional_factors::lambda::PaymentSms>().await
}
