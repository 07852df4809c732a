//! `GET /.well-known/sandbox-jwks.json`: the public key sandbox programmes' proofs are signed
//! with (`"sandbox": true`), published here only — never in `/.well-known/jwks.json` — so a
//! payment service that trusts the live JWKS can never accept a proof made with a sandbox's
//! fixed code. No credentials.

use async_trait::async_trait;

use super::{
    reply::{ApiError, Reply},
    PublicHandler,
};
use crate::{app::Context, ports, proof::SandboxKey};

ports! {
    pub struct Ports {
        key: SandboxKey,
    }
}

pub struct SandboxJwks;

#[async_trait]
impl PublicHandler for SandboxJwks {
    type Ports<'a> = Ports<'a>;

    async fn handle(
        ports: Ports<'_>,
        _cx: &Context,
        _request: &lambda_http::Request,
        _now: i64,
    ) -> Result<Reply, ApiError> {
        super::jwks::document(ports.key.signer()).await
    }
}
