//! The Additional Factors API: everything that is not a Lambda entry point's `main`.
//!
//! Layers, from the top (ARCHITECTURE.md; `tests/one_way.rs` checks no import goes up):
//! - `lambda`, `config`: the entry point, building the state once per cold start;
//! - `http`: the request pipeline and the router table;
//! - `handlers`: one module per route, each declaring its input and its ports;
//! - `app`: the `App` and its builder;
//! - `store`, `sms`, `push`, `proof`, `events`, `auth`, `secrets`: the ports and adapters;
//! - `clock`, `logging`, `aws`, `metrics`: infrastructure;
//! - `domain`: pure — time and randomness passed in.

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
