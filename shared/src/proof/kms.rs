//! Proofs signed by an asymmetric AWS KMS key (`ECC_NIST_P256`, `SIGN_VERIFY`): the private
//! key never leaves KMS. `Sign` with `ECDSA_SHA_256` returns a DER signature, turned into the
//! 64-byte `r || s` of ES256; `GetPublicKey` returns a DER SubjectPublicKeyInfo, whose last
//! 65 bytes are the uncompressed point. Public keys are cached for the life of the container
//! (a key's public half never changes; rotation adds a new key id).

use async_trait::async_trait;
use aws_sdk_kms::{
    primitives::Blob,
    types::{MessageType, SigningAlgorithmSpec},
    Client,
};
use tokio::sync::OnceCell;

use super::{der_to_jws_signature, ProofSigner, PublicKey, SignError};

pub struct KmsSigner {
    client: crate::aws::Lazy<Client>,
    key_id: String,
    previous_key_id: Option<String>,
    current: OnceCell<PublicKey>,
    previous: OnceCell<PublicKey>,
}

impl KmsSigner {
    pub fn new(client: Client, key_id: impl Into<String>, previous_key_id: Option<String>) -> Self {
        Self::with_lazy_client(crate::aws::lazy(move || client), key_id, previous_key_id)
    }

    /// A signer whose client is built on its first call.
    pub fn with_lazy_client(
        client: crate::aws::Lazy<Client>,
        key_id: impl Into<String>,
        previous_key_id: Option<String>,
    ) -> Self {
        Self {
            client,
            key_id: key_id.into(),
            previous_key_id,
            current: OnceCell::new(),
            previous: OnceCell::new(),
        }
    }

    async fn fetch(&self, key_id: &str) -> Result<PublicKey, SignError> {
        let output = self
            .client
            .get_public_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(SignError::new)?;
        let spki = output
            .public_key()
            .map(Blob::as_ref)
            .ok_or_else(|| SignError::new("KMS returned no public key"))?;
        let point = spki
            .len()
            .checked_sub(65)
            .and_then(|start| spki.get(start..))
            .ok_or_else(|| SignError::new("KMS returned a short public key"))?;
        PublicKey::from_uncompressed(point)
            .ok_or_else(|| SignError::new("KMS key is not an uncompressed P-256 point"))
    }
}

#[async_trait]
impl ProofSigner for KmsSigner {
    async fn current_key(&self) -> Result<PublicKey, SignError> {
        self.current
            .get_or_try_init(|| self.fetch(&self.key_id))
            .await
            .cloned()
    }

    async fn public_keys(&self) -> Result<Vec<PublicKey>, SignError> {
        let mut keys = vec![self.current_key().await?];
        if let Some(previous) = &self.previous_key_id {
            keys.push(
                self.previous
                    .get_or_try_init(|| self.fetch(previous))
                    .await?
                    .clone(),
            );
        }
        Ok(keys)
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let output = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(SignError::new)?;
        let der = output
            .signature()
            .map(Blob::as_ref)
            .ok_or_else(|| SignError::new("KMS returned no signature"))?;
        der_to_jws_signature(der)
            .ok_or_else(|| SignError::new("KMS returned a malformed signature"))
    }
}
