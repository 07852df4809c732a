//! `GET /.well-known/jwks.json`: the public keys live payment proofs are signed with (the
//! current one and, after a rotation, the previous one) — live keys only: a sandbox
//! programme's proofs are signed by a key of their own (`sandbox_jwks`). No credentials;
//! cacheable for no longer than a proof lives.

use async_trait::async_trait;

use super::{
    reply::{ApiError, Reply},
    PublicHandler,
};
use crate::{
    app::Context,
    ports,
    proof::{ProofSigner, PROOF_TTL_SECS},
};

ports! {
    pub struct Ports {
        signer: dyn ProofSigner,
    }
}

pub struct Jwks;

#[async_trait]
impl PublicHandler for Jwks {
    type Ports<'a> = Ports<'a>;

    async fn handle(
        ports: Ports<'_>,
        _cx: &Context,
        _request: &lambda_http::Request,
        _now: i64,
    ) -> Result<Reply, ApiError> {
        document(ports.signer).await
    }
}

/// A signer's JWKS, cacheable for at most a proof's lifetime: a key removed from the document
/// (a rotation's previous key) stops being trusted by caches when its last proof expires.
pub(super) async fn document(signer: &dyn ProofSigner) -> Result<Reply, ApiError> {
    let document = crate::proof::jwks(signer)
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    Ok(Reply::json(200, &document)
        .with_header("cache-control", format!("public, max-age={PROOF_TTL_SECS}")))
}
