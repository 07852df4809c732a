//! `factors-bench`: the numbers of BENCHMARKS.md, measured the same way every time.
//!
//! - **cold start** of every function binary under a small Lambda Runtime API emulator
//!   (`emulator.rs`): the binary is spawned with `AWS_LAMBDA_RUNTIME_API`; *init* is spawn → its first
//!   `GET /runtime/invocation/next`, *first request* is event handed over → response posted.
//!   Medians over `--runs` fresh processes, next to an empty `lambda_http` function built with
//!   the same features (the floor), as a ratio to it;
//! - **warm** event → response, the median of 20 more invocations of each process, against
//!   the local DynamoDB/SNS server, reached through a forwarder (`forwarder.rs`) that counts the
//!   DynamoDB and SNS requests each invocation made;
//! - **peak RSS** (`VmHWM`) of each process after its warm invocations;
//! - **stripped size** of each release binary;
//! - **handler CPU** per operation on the memory store, in process, single thread
//!   (`handler_cpu.rs`);
//! - **an attacker's request**: each function's peak RSS when every invocation carries a
//!   6 MB body (`[0,0,0,...]`, an `idempotency-ref`, and for the Authy callback a fresh nonce
//!   and a wrong signature), against the same function's peak RSS on its usual event.
//!
//! `scripts/bench` builds the release binaries, starts the local server and runs this.

mod cold_path;
mod emulator;
mod events;
mod forwarder;
mod handler_cpu;

use self::{cold_path::*, emulator::*, events::*, forwarder::*, handler_cpu::*};
use additional_factors::store::Seeding;
use std::{
    collections::VecDeque,
    convert::Infallible,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use additional_factors::{
    app::App,
    auth::TokenVerifier,
    aws::sdk_config,
    domain::{crypto::api_key_hash, programme::Programme},
    http::dispatch,
    push::fake::FakePushProvider,
    sms::{SmsError, SmsMessage, SmsSender},
    store::{dynamodb::DynamoStore, memory::MemoryStore},
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const WARM_INVOCATIONS: usize = 20;
const EVENTS_API_KEY: &str = "events-sandbox-api-key";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let bin_dir = PathBuf::from(arg("--bin-dir", "target/release"));
    let events = PathBuf::from(arg("--events", "events"));
    let runs: usize = arg("--runs", "10").parse()?;
    let endpoint = arg("--endpoint", "");
    let env_json: Value = serde_json::from_str(&std::fs::read_to_string(events.join("env.json"))?)?;
    let env_json = env_json.get("Parameters").cloned().unwrap_or(Value::Null);

    // The functions reach the local server through a forwarder that counts their requests;
    // with `--tls-dir` (scripts/test-ca.py), over HTTPS, trusting the test CA among this
    // machine's roots, as a function in Lambda reaches AWS's endpoints.
    let tls_dir = arg("--tls-dir", "");
    let tls = match tls_dir.as_str() {
        "" => None,
        dir => Some(tls_acceptor(Path::new(dir))?),
    };
    let counts = Arc::new(Counts::default());
    // One forwarder per service, as each AWS service is its own host: a client that pools
    // connections per host (the functions share one HTTPS client) keeps one pool per service.
    let mut forwarders = Vec::new();
    for _service in ["DynamoDB", "SNS", "KMS", "Secrets Manager"] {
        forwarders
            .push(start_counting_forwarder(endpoint.clone(), counts.clone(), tls.clone()).await?);
    }
    let [forwarder, sns_forwarder, kms_forwarder, secrets_forwarder] =
        <[String; 4]>::try_from(forwarders).map_err(|_| "four forwarders")?;
    println!(
        "endpoints: DynamoDB {forwarder}, SNS {sns_forwarder}, KMS {kms_forwarder}, Secrets Manager {secrets_forwarder} ({})",
        if tls_dir.is_empty() {
            "plain HTTP"
        } else {
            "HTTPS, the test CA in a bundle of this machine's roots"
        }
    );

    // A table with the events' sandbox programme, its limits out of the way.
    let table = format!("bench-{}", std::process::id());
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk_config(Some(&endpoint)).await),
        &table,
    );
    store.create_table_if_missing().await?;
    // Through the operator's path, as factors-admin creates one: the registry snapshot each
    // function reads at init holds it.
    let programme = bench_programme();
    let key = additional_factors::store::dynamodb::operator::ApiKeyRecord {
        key_id: "bench".into(),
        api_key_hash: api_key_hash(EVENTS_API_KEY),
        created_at: 0,
    };
    store.create_programme(&programme, &key).await?;
    // A live programme: its SMS go out through SNS (the local server keeps them).
    let mut live = bench_programme();
    live.id = "bench-live".into();
    live.sandbox = false;
    live.allowed_country_codes = vec!["44".into()];
    let live_key = additional_factors::store::dynamodb::operator::ApiKeyRecord {
        key_id: "bench-live".into(),
        api_key_hash: api_key_hash(LIVE_API_KEY),
        created_at: 0,
    };
    store.create_programme(&live, &live_key).await?;

    // What Lambda's environment looks like, pointed at the local server. SSL_CERT_DIR is an
    // empty directory: this machine's 300-file certificate directory is not what Lambda has.
    let empty_certs = std::env::temp_dir().join("bench-empty-certs");
    std::fs::create_dir_all(&empty_certs)?;
    let mut env: Vec<(String, String)> = env_json
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
        .collect();
    env.retain(|(k, _)| !k.ends_with("_ENDPOINT") && k != "TABLE_NAME" && k != "RUST_LOG");
    // Payment proofs signed as deployed: by a KMS key (ECC P-256) at the local server.
    let kms = aws_sdk_kms::Client::new(&sdk_config(Some(&endpoint)).await);
    let proof_key = kms
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await?
        .key_metadata
        .map(|k| k.key_id)
        .ok_or("KMS created no key")?;
    env.retain(|(k, _)| k != "PROOF_KEY_FILE");
    // Secrets as deployed: named by id, fetched from Secrets Manager (the local server) in
    // each function's init; none in the environment.
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk_config(Some(&endpoint)).await);
    for (value, id) in [
        ("JWT_HS256_SECRET", "JWT_HS256_SECRET_ID"),
        ("OTP_HMAC_SECRET", "OTP_HMAC_SECRET_ID"),
        ("AUTHY_API_KEY", "AUTHY_API_KEY_SECRET_ID"),
    ] {
        let name = format!("{table}/{value}");
        let secret = env_json[value].as_str().ok_or("env.json lacks a secret")?;
        secrets
            .create_secret()
            .name(&name)
            .secret_string(secret)
            .send()
            .await?;
        env.retain(|(k, _)| k != value);
        env.push((id.into(), name));
    }
    env.push(("SECRETS_ENDPOINT".into(), secrets_forwarder));
    // The events topic, as the template always names one: the functions that publish
    // lifecycle events reach SNS (and open its connection at init) as deployed.
    let topic = aws_sdk_sns::Client::new(&sdk_config(Some(&endpoint)).await)
        .create_topic()
        .name(format!("{table}-events"))
        .send()
        .await?
        .topic_arn
        .ok_or("SNS created no topic")?;
    env.retain(|(k, _)| k != "EVENTS_TOPIC_ARN");
    env.push(("EVENTS_TOPIC_ARN".into(), topic));
    if !tls_dir.is_empty() {
        let bundle = Path::new(&tls_dir).join("bundle.pem");
        env.push(("SSL_CERT_FILE".into(), bundle.display().to_string()));
    }
    env.extend([
        ("PROOF_KMS_KEY_ID".into(), proof_key),
        ("KMS_ENDPOINT".into(), kms_forwarder),
        ("TABLE_NAME".into(), table.clone()),
        ("DYNAMODB_ENDPOINT".into(), forwarder.clone()),
        ("SNS_ENDPOINT".into(), sns_forwarder),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), "bench".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "bench".into()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), "bench".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        ("RUST_LOG".into(), "info".into()),
        // The live programme's SMS, run after run: the deployment's budget out of the way.
        ("SMS_BUDGET_PER_HOUR".into(), "100000000".into()),
        ("SMS_BUDGET_PER_DAY".into(), "100000000".into()),
        ("SSL_CERT_DIR".into(), empty_certs.display().to_string()),
    ]);

    let functions = [
        ("empty-function", "list-factors.200-empty"),
        // F1: the empty function after one DynamoDB call over TLS at init.
        ("dynamodb-floor", "list-factors.200-empty"),
        ("list-factors", "list-factors.200-empty"),
        ("enrol-sms-otp", "enrol-sms-otp.204"),
        ("verify-sms-otp", "verify-sms-otp.409-wrong-code"),
        ("enrol-push", "enrol-push.204"),
        ("unlink-push", "unlink-push.409"),
        ("simulate-push", "simulate-push.409"),
        ("authy-callback", "authy-callback.401-stale"),
        ("step-up-sms", "step-up-sms.204"),
        ("verify-step-up-sms", "verify-step-up-sms.409"),
        ("step-up-push", "step-up-push.409"),
        ("get-step-up-challenge", "get-step-up-challenge.404"),
        ("simulate-step-up", "simulate-step-up.404"),
        ("payment-sms", "payment-sms.200"),
        // Live programmes' requests where their path differs: an SMS goes out through SNS.
        ("enrol-sms-otp live", "enrol-sms-otp.204"),
        ("step-up-sms live", "step-up-sms.204"),
        ("payment-sms live", "payment-sms.200"),
        ("verify-payment-sms", "verify-payment-sms.404"),
        ("payment-push", "payment-push.409"),
        ("get-payment-challenge", "get-payment-challenge.404"),
        ("jwks", "jwks.200"),
        ("simulate-payment", "simulate-payment.404"),
        ("sandbox-jwks", "sandbox-jwks.200"),
        ("verify-biometric", "verify-biometric.409"),
        ("update-device-push", "update-device-push.409"),
        ("list-device-challenges", "list-device-challenges.200"),
        ("answer-device-challenge", "answer-device-challenge.404"),
    ];
    // `--only a,b`: those functions (and the empty one, the floor), e.g. to measure a change
    // without building every binary.
    let only = arg("--only", "");
    let functions: Vec<_> = functions
        .into_iter()
        .filter(|(f, _)| {
            only.is_empty()
                || matches!(*f, "empty-function" | "dynamodb-floor")
                || only.split(',').any(|o| o == binary_of(f))
        })
        .collect();
    // Round-robin: each round starts every binary once, the empty function first, so that
    // the machine's noise falls on all of them alike; the ratio is the median over rounds of
    // each function's init over the empty function's init in the same round.
    let mut rounds: Vec<Vec<Run>> = functions.iter().map(|_| Vec::new()).collect();
    let event_of = |function: &str, event_name: &str| -> Result<String, BoxError> {
        let event = read_event(&events, event_name)?;
        match function.ends_with(" live") {
            true => live_event(&event, &env_json),
            false => Ok(event),
        }
    };
    for _ in 0..runs {
        for ((function, event_name), results) in functions.iter().zip(rounds.iter_mut()) {
            let event = event_of(function, event_name)?;
            let binary = bin_dir.join(binary_of(function));
            results.push(run_once(&binary, &event, &env, &counts).await?);
        }
    }
    println!("Wall times below are against this machine's local emulator and server (not AWS's): see the cold path's modelled figures for AWS.");
    println!("| function | stripped size | init, wall (median of {runs}) | × empty, wall (median of same-round ratios) | first request, wall | warm, wall (median) | DynamoDB / SNS requests, first | DynamoDB / SNS requests, warm | peak RSS | statuses |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let floor: Vec<f64> = rounds
        .first()
        .map(|runs| runs.iter().map(|r| r.init.as_secs_f64()).collect())
        .unwrap_or_default();
    for ((function, _), results) in functions.iter().zip(&rounds) {
        let binary = bin_dir.join(binary_of(function));
        let mut ratios: Vec<f64> = results
            .iter()
            .zip(&floor)
            .map(|(r, empty)| r.init.as_secs_f64() / empty.max(1e-9))
            .collect();
        ratios.sort_by(f64::total_cmp);
        let ratio = ratios.get(ratios.len() / 2).copied().unwrap_or(0.0);
        let init = median(results.iter().map(|r| r.init).collect());
        let first = median(results.iter().map(|r| r.first).collect());
        let warm = median(results.iter().map(|r| r.warm).collect());
        let rss = results.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0);
        let mut statuses: Vec<u16> = results.iter().flat_map(|r| r.statuses.clone()).collect();
        statuses.sort_unstable();
        statuses.dedup();
        let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
        // Every count seen (a route whose answer changes across invocations has several).
        let seen = |requests: Vec<Requests>| {
            let mut requests = requests;
            requests.sort_unstable();
            requests.dedup();
            requests
                .iter()
                .map(|r| format!("{} / {}", r.dynamodb, r.sns))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let first_requests = seen(results.iter().map(|r| r.first_requests).collect());
        let warm_requests = seen(
            results
                .iter()
                .flat_map(|r| r.warm_requests.clone())
                .collect(),
        );
        println!(
            "| {function} | {size} B ({:.2} MB) | {:.2} ms | {ratio:.2} | {:.2} ms | {:.2} ms | {first_requests} | {warm_requests} | {:.1} MB | {statuses:?} |",
            size as f64 / 1e6,
            init.as_secs_f64() * 1e3,
            first.as_secs_f64() * 1e3,
            warm.as_secs_f64() * 1e3,
            rss as f64 / 1024.0,
        );
    }
    print_cold_path(&functions, &rounds, std::env::args().any(|a| a == "--json"));
    let shares: Vec<u32> = arg("--cpu-share", "")
        .split(',')
        .filter_map(|mb| mb.trim().parse().ok())
        .collect();
    if !shares.is_empty() {
        cpu_share_table(
            &functions, &shares, runs, &bin_dir, &event_of, &env, &counts,
        )
        .await?;
    }
    println!();
    println!("| handler CPU (memory store, one thread) | median µs |");
    println!("|---|---|");
    for (op, micros) in handler_cpu(&env_json).await? {
        println!("| {op} | {micros:.1} |");
    }
    println!();
    println!("| an attacker's 6 MB body | peak RSS, usual event | peak RSS, 6 MB body | × usual | statuses (usual, 6 MB) |");
    println!("|---|---|---|---|---|");
    for (function, event_name) in &functions {
        let usual = event_of(function, event_name)?;
        let attack = attack_event(&usual)?;
        // The callback's warm state is a genuine callback's (signed now: it reads the table),
        // not the shipped event's (a stale nonce, refused before anything is built).
        let usual = match *function {
            "authy-callback" => signed_now(&usual, &env_json)?,
            _ => usual,
        };
        let binary = bin_dir.join(binary_of(function));
        let normal = run_once(&binary, &usual, &env, &counts).await?;
        let hostile = run_once(&binary, &attack, &env, &counts).await?;
        let mut statuses = hostile.statuses.clone();
        statuses.dedup();
        let mut usual_statuses = normal.statuses.clone();
        usual_statuses.dedup();
        println!(
            "| {function} | {:.1} MB | {:.1} MB | {:.2} | {usual_statuses:?}, {statuses:?} |",
            normal.peak_rss_kib as f64 / 1024.0,
            hostile.peak_rss_kib as f64 / 1024.0,
            hostile.peak_rss_kib as f64 / normal.peak_rss_kib.max(1) as f64,
        );
    }
    Ok(())
}

/// Lambda gives a function one vCPU at 1,769 MB, and a share of one in proportion below.
const FULL_VCPU_MB: f64 = 1769.0;
/// arm64 prices (us-east-1): per GB-second of duration, and per request.
const PRICE_PER_GB_SECOND: f64 = 0.000_013_333_4;
const PRICE_PER_REQUEST: f64 = 0.000_000_2;

/// Each function at each memory size's CPU share (a cgroup v1 CPU quota, joined when init
/// ends): first request, warm median, and what a million warm requests cost.
async fn cpu_share_table(
    functions: &[(&str, &str)],
    shares: &[u32],
    runs: usize,
    bin_dir: &Path,
    event_of: &dyn Fn(&str, &str) -> Result<String, BoxError>,
    env: &[(String, String)],
    counts: &Arc<Counts>,
) -> Result<(), BoxError> {
    const PERIOD_US: u64 = 100_000;
    println!();
    println!("| function | memory | CPU quota | first request (median of {runs}) | warm (median) | first / warm | CPU: init / first / warm (medians) | cost per million warm requests |");
    println!("|---|---|---|---|---|---|---|---|");
    // One cgroup per memory size; the sizes interleave (each run of a function goes through
    // every size in turn), so the local server's drift over a long run (moto slows as its
    // state grows) falls on every size alike.
    let mut cgroups = Vec::new();
    for &mb in shares {
        let cgroup = PathBuf::from(format!("/sys/fs/cgroup/cpu/additional-factors-bench-{mb}"));
        std::fs::create_dir_all(&cgroup).map_err(|e| {
            format!(
                "{}: {e} (the CPU-share mode needs root and cgroup v1's cpu controller)",
                cgroup.display()
            )
        })?;
        let quota = (PERIOD_US as f64 * f64::from(mb) / FULL_VCPU_MB).round() as u64;
        std::fs::write(cgroup.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
        std::fs::write(cgroup.join("cpu.cfs_quota_us"), quota.to_string())?;
        cgroups.push((mb, quota, cgroup));
    }
    for (function, event_name) in functions {
        let event = event_of(function, event_name)?;
        let mut results: Vec<Vec<Run>> = cgroups.iter().map(|_| Vec::new()).collect();
        for _ in 0..runs {
            for ((_, _, cgroup), results) in cgroups.iter().zip(results.iter_mut()) {
                let binary = bin_dir.join(binary_of(function));
                let limited = Some(cgroup.clone());
                results.push(run_limited(&binary, &event, env, counts, limited).await?);
            }
        }
        for ((mb, quota, _), results) in cgroups.iter().zip(&results) {
            let first = median(results.iter().map(|r| r.first).collect());
            let warm = median(results.iter().map(|r| r.warm).collect());
            // Lambda bills duration by the millisecond, rounded up.
            let billed_ms = (warm.as_secs_f64() * 1e3).ceil();
            let cost = 1e6
                * (billed_ms / 1e3 * f64::from(*mb) / 1024.0 * PRICE_PER_GB_SECOND
                    + PRICE_PER_REQUEST);
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let init_cpu = median(results.iter().map(|r| r.init_cpu).collect());
            let first_cpu = median(results.iter().map(|r| r.first_cpu).collect());
            let warm_cpu = median(results.iter().map(|r| r.warm_cpu).collect());
            println!(
                "| {function} | {mb} MB | {:.1} % | {:.2} ms | {:.2} ms | {:.2} | {:.2} / {:.2} / {:.2} ms | ${cost:.3} |",
                *quota as f64 / PERIOD_US as f64 * 100.0,
                ms(first),
                ms(warm),
                first.as_secs_f64() / warm.as_secs_f64().max(1e-9),
                ms(init_cpu),
                ms(first_cpu),
                ms(warm_cpu),
            );
        }
    }
    for (_, _, cgroup) in &cgroups {
        let _ = std::fs::remove_dir(cgroup);
    }
    Ok(())
}
