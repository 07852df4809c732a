//! Lambda function for `GET /.well-known/jwks.json`: the payment proofs' public keys.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    additional_factors::lambda::run::<additional_factors::lambda::Jwks>().await
}
