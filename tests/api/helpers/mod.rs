//! The test harness, a room per job: `app` (a `TestApp`: the API on the memory store, or on
//! the local AWS-compatible server, with recording fakes and a pinned clock), `request`
//! (requests built as API Gateway hands them to the functions, and their answers),
//! `emulator` (the local DynamoDB/SNS-compatible server), `logs` (log capture, and the leak
//! check every `TestApp` runs when dropped: every test in the suite is also a log-leak test).
//! Here: the fixtures' constants and small helpers the tests share.

/// Runs one scenario (`async fn scenario(t: TestApp)`) on the memory store and on
/// DynamoDB/SNS (the local AWS-compatible server): `on_both!(module_name, scenario);`.
macro_rules! on_both {
    ($name:ident, $scenario:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$scenario(crate::helpers::TestApp::new().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                super::$scenario(crate::helpers::TestApp::on_aws().await).await;
            }
        }
    };
}

mod app;
mod device;
mod emulator;
mod logs;
mod request;

pub use self::{app::*, device::*, emulator::*, request::*};
use serde_json::{json, Value};

pub const JWT_SECRET: &str = "test-secret-for-the-identity-service-0123";
pub const ISSUER: &str = "https://identity.test";
pub const AUDIENCE: &str = "additional-factors";
pub const OTP_SECRET: &str = "test-otp-hmac-secret-0123456789abcdef";

/// The Authy application key the test apps verify callbacks with, and their callback URL.
pub const AUTHY_KEY: &str = "test-authy-api-key-0001";
pub const CALLBACK_URL: &str = "https://factors.test/webhooks/authy";
pub const CALLBACK: &str = "/webhooks/authy";

pub const LIVE_KEY: &str = "live-programme-api-key-0001";
pub const SANDBOX_KEY: &str = "sandbox-programme-api-key-0001";
pub const PHONE: &str = "+447700900123";
pub const OTHER_PHONE: &str = "+447700900456";

/// A fixed start: 2026-11-29 10:00:30 UTC (30 s into an hour window).
pub const T0: i64 = 1_795_946_430;

/// The `iss` of the test apps' payment proofs.
pub const PROOF_ISSUER: &str = "https://factors.test";

/// A value unique in this test run (table names, phone numbers).
pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // Distinct across processes and runs sharing one long-lived server (8 digits at most).
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        ((u64::from(std::process::id()) ^ (nanos / 1_000)) % 9_000 + 1_000) * 10_000
    });
    base + NEXT.fetch_add(1, Ordering::SeqCst) % 10_000
}

/// A phone number no other test uses: `+4477` and 8 digits.
pub fn unique_phone() -> String {
    format!("+4477{:08}", unique())
}

/// The first run of exactly six digits in a text.
pub fn extract_code(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .map(str::to_owned)
}

pub const LIST: &str = "/authentication_factors";
pub const SMS: &str = "/authentication_factors/otp/SMS";
pub const VERIFY: &str = "/authentication_factors/otp/SMS/verify";
pub const AUTHY: &str = "/authentication_factors/push/AUTHY";
pub const BIOMETRIC: &str = "/authentication_factors/push/BIOMETRIC";
pub const ACCEPT: &str = "/simulate/authentication_factors/push/AUTHY/accept";
pub const REJECT: &str = "/simulate/authentication_factors/push/AUTHY/reject";
pub const STEP_UP_SMS: &str = "/stepup/challenges/otp/SMS";
pub const STEP_UP_VERIFY: &str = "/stepup/challenges/otp/SMS/verify";
pub const STEP_UP_PUSH: &str = "/stepup/challenges/push/AUTHY";

pub fn code_body(code: &str) -> Value {
    json!({ "verificationCode": code })
}

/// A code that is not `code`.
pub fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

/// The statuses of a user's factors, as listed for a token.
pub async fn listed(t: &TestApp, api_key: &str, token: &str) -> Vec<(String, String, String)> {
    let r = t.send(Req::get(LIST).auth(api_key, token)).await;
    r.assert(200);
    r.body["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["type"].as_str().unwrap().to_owned(),
                f["channel"].as_str().unwrap().to_owned(),
                f["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub fn row(t: &str, c: &str, s: &str) -> (String, String, String) {
    (t.into(), c.into(), s.into())
}

/// A fresh verification-attempt id (each one counts).
pub fn attempt_id() -> additional_factors::domain::ids::AttemptId {
    additional_factors::domain::ids::AttemptId::new(format!("attempt-{}", unique()))
}

/// A phone of this test's own on the shared emulator (every test's SNS), `PHONE` in memory.
pub fn phone_for(t: &TestApp) -> String {
    if t.aws.is_some() {
        unique_phone()
    } else {
        PHONE.to_owned()
    }
}

/// The code of the last SMS to `phone`, from SNS's record or the recording sender.
pub async fn code_sent_to(t: &TestApp, phone: &str) -> String {
    if t.aws.is_some() {
        t.last_published_code(phone).await
    } else {
        t.last_code(phone)
    }
}
