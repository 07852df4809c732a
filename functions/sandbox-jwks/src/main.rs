//! Lambda function for `GET /.well-known/sandbox-jwks.json`: the sandbox proofs' public key.

use additional_factors::{handlers::sandbox_jwks::SandboxJwks, lambda};

// One thread: a Lambda environment serves one event at a time (BENCHMARKS.md, session 11).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run_public::<SandboxJwks>().await
}
