//! The domain: factors, challenges, codes, limits and programmes. Pure: no I/O; the clock
//! and randomness are passed in.

pub mod challenge;
pub mod channel;
pub mod crypto;
pub mod device;
pub mod factor;
pub mod hex;
pub mod idempotency;
pub mod ids;
pub mod otp;
pub mod payment;
pub mod phone;
pub mod programme;
pub mod random;
pub mod send_limits;
pub mod step_up;
