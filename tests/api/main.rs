//! The API's integration tests: one binary, the handlers driven through the same routing as
//! the local server, on the memory store with recording fakes and a pinned clock.

#[macro_use]
mod helpers;
mod abuse;
mod authy;
mod biometric;
mod biometric_challenges;
mod concurrency;
mod credentials;
mod events;
mod faults;
mod hardening;
mod idempotency;
mod limits;
mod listing;
mod logs;
mod metrics;
mod on_aws;
mod openapi;
mod payment;
mod push;
mod registry_snapshot;
mod seams;
mod sms_otp;
mod step_up;
mod store_contract;
mod storm;
mod template;
