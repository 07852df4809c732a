//! Lambda function for `POST /webhooks/authy` (Authy's signed callbacks). The handler lives in
//! the shared library.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    additional_factors::lambda::run::<additional_factors::lambda::AuthyCallback>().await
}
