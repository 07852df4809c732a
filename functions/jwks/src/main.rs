//! Lambda function for `GET /.well-known/jwks.json`: the payment proofs' public keys.

use additional_factors::{handlers::jwks::Jwks, lambda};

// One thread: a Lambda environment serves one event at a time, so worker threads would only
// cost init time and memory (BENCHMARKS.md, session 11).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run_public::<Jwks>().await
}
