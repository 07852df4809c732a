//! Lambda function for `GET /authentication factors`. The handler lives in the shared library.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    additional_factors::lambda::run::<additional_factors::lambda::ListFactors>().await
}
