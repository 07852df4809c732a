//! A P-256 key held in process: the local server's development key (created once and kept
//! in a file, so proofs survive a restart) and the tests'. Never used in AWS, where the key
//! lives in KMS.

use async_trait::async_trait;
use aws_lc_rs::{
    rand::SystemRandom,
    signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};

use super::{ProofSigner, PublicKey, SignError};

pub struct LocalSigner {
    key: EcdsaKeyPair,
    /// The key proofs were signed with before this one, still listed in the JWKS.
    previous: Option<PublicKey>,
}

impl LocalSigner {
    /// A fresh key (tests).
    pub fn generate() -> Result<Self, SignError> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| SignError::new("key generation failed"))?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, SignError> {
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|_| SignError::new("not a PKCS#8 P-256 key"))?;
        Ok(Self {
            key,
            previous: None,
        })
    }

    /// The key in `path`, created there (PKCS#8 DER, mode 0600) when the file is missing.
    pub fn load_or_create(path: &std::path::Path) -> Result<Self, SignError> {
        if let Ok(pkcs8) = std::fs::read(path) {
            return Self::from_pkcs8(&pkcs8);
        }
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| SignError::new("key generation failed"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(SignError::new)?;
        }
        std::fs::write(path, pkcs8.as_ref()).map_err(SignError::new)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// Lists `previous` in the JWKS too (a rotation).
    pub fn with_previous(mut self, previous: PublicKey) -> Self {
        self.previous = Some(previous);
        self
    }

    fn public(&self) -> Result<PublicKey, SignError> {
        PublicKey::from_uncompressed(self.key.public_key().as_ref())
            .ok_or_else(|| SignError::new("unexpected public key encoding"))
    }
}

#[async_trait]
impl ProofSigner for LocalSigner {
    async fn current_key(&self) -> Result<PublicKey, SignError> {
        self.public()
    }

    async fn public_keys(&self) -> Result<Vec<PublicKey>, SignError> {
        let mut keys = vec![self.public()?];
        keys.extend(self.previous.clone());
        Ok(keys)
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.key
            .sign(&SystemRandom::new(), message)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|_| SignError::new("signing failed"))
    }
}
