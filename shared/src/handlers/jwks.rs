//! `GET /.well-known/jwks.json`: the public keys payment proofs are signed with (the current
//! one and, after a rotation, the previous one). No credentials; cacheable for an hour.

use crate::{
    app::App,
    handlers::reply::{ApiError, Reply},
};

pub async fn jwks(app: &App) -> Result<Reply, ApiError> {
    let document = crate::proof::jwks(app.signer.as_ref())
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    Ok(Reply::json(200, &document).with_header("cache-control", "public, max-age=3600".to_owned()))
}
