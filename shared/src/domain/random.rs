//! Randomness: the one source every code, id and shard pick draws from.

use aws_lc_rs::rand::SecureRandom;

use super::hex::hex;

/// The randomness the service draws from: the OS generator in production.
pub trait RandomSource: Send + Sync {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError>;
}

#[derive(Debug, thiserror::Error)]
#[error("the system random generator failed")]
pub struct RandomError;

/// The operating system's cryptographically secure generator.
#[derive(Default)]
pub struct SystemRandom(aws_lc_rs::rand::SystemRandom);

impl RandomSource for SystemRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        self.0.fill(buf).map_err(|_| RandomError)
    }
}

/// A random identifier: 16 bytes, hex.
pub fn random_id(random: &dyn RandomSource) -> Result<String, RandomError> {
    let mut buf = [0u8; 16];
    random.fill(&mut buf)?;
    Ok(hex(&buf))
}
