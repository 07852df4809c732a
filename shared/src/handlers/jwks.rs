//! `GET /.well-known/jwks.json`: the public keys payment proofs are signed with (the current
//! one and, after a rotation, the previous one). No credentials; cacheable for an hour.

use async_trait::async_trait;

use super::{
    reply::{ApiError, Reply},
    PublicHandler,
};
use crate::{app::Context, ports, proof::ProofSigner};

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
        let document = crate::proof::jwks(ports.signer)
            .await
            .map_err(|e| ApiError::Unavailable(e.into()))?;
        Ok(Reply::json(200, &document)
            .with_header("cache-control", "public, max-age=3600".to_owned()))
    }
}
