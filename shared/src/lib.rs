//! The Additional Factors API: everything that is not a Lambda entry point.
//!
//! - `domain`: factors, challenges, codes, limits — pure, time and randomness passed in;
//! - `store`, `sms`, `push`: the ports and their adapters;
//! - `http`: the request pipeline (auth, validation, step-up, idempotency, the error table);
//! - `handlers`: one module per route;
//! - `config` and `lambda`: building the state once per cold start.

// The lint wall (Cargo.toml) holds outside tests; tests may unwrap and index.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod app;
pub mod auth;
pub mod aws;
pub mod clock;
pub mod config;
pub mod domain;
pub mod events;
pub mod handlers;
pub mod http;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod proof;
pub mod push;
pub mod secrets;
pub mod sms;
pub mod store;
