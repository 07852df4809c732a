//! `factors-bench`: the numbers of BENCHMARKS.md, measured the same way every time.
//!
//! - **cold start** of every function binary under a small Lambda Runtime API emulator (this
//!   file): the binary is spawned with `AWS_LAMBDA_RUNTIME_API`; *init* is spawn → its first
//!   `GET /runtime/invocation/next`, *first request* is event handed over → response posted.
//!   Medians over `--runs` fresh processes, next to an empty `lambda_http` function built with
//!   the same features (the floor), as a ratio to it;
//! - **warm** event → response, the median of 20 more invocations of each process, against
//!   the local DynamoDB/SNS server, reached through a forwarder here that counts the
//!   DynamoDB and SNS requests each invocation made;
//! - **peak RSS** (`VmHWM`) of each process after its warm invocations;
//! - **stripped size** of each release binary;
//! - **handler CPU** per operation on the memory store, in process, single thread;
//! - **an attacker's request**: each function's peak RSS when every invocation carries a
//!   6 MB body (`[0,0,0,...]`, an `idempotency-ref`, and for the Authy callback a fresh nonce
//!   and a wrong signature), against the same function's peak RSS on its usual event.
//!
//! `scripts/bench` builds the release binaries, starts the local server and runs this.

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

/// What the emulator saw of one process.
#[derive(Default)]
struct Timeline {
    events: VecDeque<String>,
    first_next: Option<Instant>,
    /// When each event was handed over, and the requests counted so far at that moment.
    delivered: Vec<(Instant, Requests)>,
    /// The process's CPU time when init ended, and when each event was handed over and
    /// answered.
    cpu_at_init: Duration,
    cpu_delivered: Vec<Duration>,
    cpu_responded: Vec<Duration>,
    /// When each response came, its status, and the requests the invocation made.
    responded: Vec<(Instant, u16, Requests)>,
    init_error: bool,
}

struct Emulator {
    timeline: Mutex<Timeline>,
    changed: tokio::sync::Notify,
    counts: Arc<Counts>,
    /// With a CPU share: the cgroup the process joins when its init ends (its first `next`).
    /// Lambda runs init at full CPU, and invocations at the memory size's share of a vCPU.
    cgroup: Option<PathBuf>,
    pid: std::sync::atomic::AtomicU32,
}

/// DynamoDB and SNS requests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Requests {
    dynamodb: u64,
    sns: u64,
}

/// What the forwarder in front of the local DynamoDB/SNS server has counted (Secrets Manager
/// and KMS, which go through it too, apart).
#[derive(Default)]
struct Counts {
    dynamodb: std::sync::atomic::AtomicU64,
    sns: std::sync::atomic::AtomicU64,
    other: std::sync::atomic::AtomicU64,
}

impl Counts {
    fn now(&self) -> Requests {
        use std::sync::atomic::Ordering::SeqCst;
        Requests {
            dynamodb: self.dynamodb.load(SeqCst),
            sns: self.sns.load(SeqCst),
        }
    }
}

/// The forwarder's TLS: the server certificate of `scripts/test-ca.py`'s test CA.
fn tls_acceptor(dir: &Path) -> Result<tokio_rustls::TlsAcceptor, BoxError> {
    use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let certs =
        CertificateDer::pem_file_iter(dir.join("server.pem"))?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key"))?;
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Forwards every request to `upstream` (the local DynamoDB/SNS server) and counts it:
/// DynamoDB's carry `X-Amz-Target: DynamoDB_20120810.<Operation>`, Secrets Manager's and
/// KMS's theirs, the rest are SNS's. With `tls`, it is an HTTPS endpoint, as AWS's are.
async fn start_counting_forwarder(
    upstream: String,
    counts: Arc<Counts>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Result<String, BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let address = format!("{scheme}://{}", listener.local_addr()?);
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (client, upstream, counts) = (client.clone(), upstream.clone(), counts.clone());
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let (client, upstream, counts) =
                        (client.clone(), upstream.clone(), counts.clone());
                    async move {
                        let target = request
                            .headers()
                            .get("x-amz-target")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default();
                        let counter = if target.starts_with("DynamoDB") {
                            &counts.dynamodb
                        } else if target.is_empty() {
                            &counts.sns
                        } else {
                            &counts.other
                        };
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                        let mut forwarded = Request::builder()
                            .method(parts.method)
                            .uri(format!("{upstream}{path}"));
                        for (name, value) in &parts.headers {
                            if !hop_by_hop(name) {
                                forwarded = forwarded.header(name, value);
                            }
                        }
                        let answer = match forwarded.body(Full::new(body)) {
                            Ok(forwarded) => client.request(forwarded).await.ok(),
                            Err(_) => None,
                        };
                        let response = match answer {
                            Some(answer) => {
                                let (mut parts, body) = answer.into_parts();
                                // moto's server closes every connection (`Connection:
                                // close`); AWS's keep theirs open, and so does this hop.
                                let names: Vec<_> = parts.headers.keys().cloned().collect();
                                for name in names.iter().filter(|n| hop_by_hop(n)) {
                                    parts.headers.remove(name);
                                }
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                Response::from_parts(parts, Full::new(body))
                            }
                            None => {
                                let mut failed = Response::new(Full::new(Bytes::new()));
                                *failed.status_mut() = hyper::StatusCode::BAD_GATEWAY;
                                failed
                            }
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
                match tls {
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(stream).await {
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                    None => {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    Ok(address)
}

/// Headers about one connection, not the request: not forwarded either way.
fn hop_by_hop(name: &hyper::header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" | "te"
    )
}

/// CPU time a process has used so far (`/proc/<pid>/schedstat`, nanoseconds: user and
/// system, at the scheduler's resolution, not the tick's).
fn cpu_used(pid: u32) -> Duration {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

impl Emulator {
    async fn serve(self: Arc<Self>, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_owned();
        let ok = |body: &str| Response::new(Full::new(Bytes::from(body.to_owned())));
        if path.ends_with("/invocation/next") {
            let init_ended = self
                .timeline
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .first_next
                .is_none();
            if let (true, Some(cgroup)) = (init_ended, &self.cgroup) {
                let pid = self.pid.load(std::sync::atomic::Ordering::SeqCst);
                if let Err(e) = std::fs::write(cgroup.join("cgroup.procs"), pid.to_string()) {
                    eprintln!("cannot move {pid} into {}: {e}", cgroup.display());
                }
            }
            let pid = self.pid.load(std::sync::atomic::Ordering::SeqCst);
            let cpu = cpu_used(pid);
            let event = {
                let mut timeline = self.timeline.lock().unwrap_or_else(|p| p.into_inner());
                if timeline.first_next.is_none() {
                    timeline.first_next = Some(Instant::now());
                    timeline.cpu_at_init = cpu;
                }
                let event = timeline.events.pop_front();
                if event.is_some() {
                    timeline.delivered.push((Instant::now(), self.counts.now()));
                    timeline.cpu_delivered.push(cpu);
                }
                event
            };
            let Some(event) = event else {
                // No more work: hold the request until the process is killed.
                tokio::time::sleep(Duration::from_secs(3_600)).await;
                return ok("");
            };
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() + 30_000)
                .unwrap_or_default();
            let mut response = ok(&event);
            let headers = response.headers_mut();
            for (name, value) in [
                ("lambda-runtime-aws-request-id", "bench-request".to_owned()),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
                ),
                (
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
                ),
                ("content-type", "application/json".to_owned()),
            ] {
                if let Ok(value) = value.parse() {
                    headers.insert(name, value);
                }
            }
            return response;
        }
        let failed = path.ends_with("/error");
        let body = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let status = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("statusCode").and_then(Value::as_u64))
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(if failed { 599 } else { 0 });
        {
            let mut timeline = self.timeline.lock().unwrap_or_else(|p| p.into_inner());
            if path.ends_with("/init/error") {
                timeline.init_error = true;
            } else {
                let before = timeline
                    .delivered
                    .get(timeline.responded.len())
                    .map(|(_, counted)| *counted)
                    .unwrap_or_default();
                let now = self.counts.now();
                let made = Requests {
                    dynamodb: now.dynamodb - before.dynamodb,
                    sns: now.sns - before.sns,
                };
                timeline.responded.push((Instant::now(), status, made));
                let pid = self.pid.load(std::sync::atomic::Ordering::SeqCst);
                timeline.cpu_responded.push(cpu_used(pid));
            }
        }
        self.changed.notify_waiters();
        let mut response = ok("{}");
        *response.status_mut() = hyper::StatusCode::ACCEPTED;
        response
    }
}

/// One process: init, first request, warm median, peak RSS, statuses seen.
struct Run {
    init: Duration,
    first: Duration,
    warm: Duration,
    peak_rss_kib: u64,
    statuses: Vec<u16>,
    /// DynamoDB and SNS requests of the first invocation, and of each warm one.
    first_requests: Requests,
    warm_requests: Vec<Requests>,
    /// CPU time of init, of the first invocation, and the warm invocations' median.
    init_cpu: Duration,
    first_cpu: Duration,
    warm_cpu: Duration,
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

async fn run_once(
    binary: &Path,
    event: &str,
    env: &[(String, String)],
    counts: &Arc<Counts>,
) -> Result<Run, BoxError> {
    run_limited(binary, event, env, counts, None).await
}

/// `run_once`, the process's invocations limited to `cgroup`'s CPU quota.
async fn run_limited(
    binary: &Path,
    event: &str,
    env: &[(String, String)],
    counts: &Arc<Counts>,
    cgroup: Option<PathBuf>,
) -> Result<Run, BoxError> {
    let emulator = Arc::new(Emulator {
        timeline: Mutex::new(Timeline {
            events: std::iter::repeat_n(event.to_owned(), 1 + WARM_INVOCATIONS).collect(),
            ..Timeline::default()
        }),
        changed: tokio::sync::Notify::new(),
        counts: counts.clone(),
        cgroup,
        pid: std::sync::atomic::AtomicU32::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = {
        let emulator = emulator.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let emulator = emulator.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let emulator = emulator.clone();
                        async move { Ok::<_, Infallible>(emulator.serve(request).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
    };
    let spawned_at = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or_default();
    emulator.pid.store(pid, std::sync::atomic::Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let notified = emulator.changed.notified();
        {
            let timeline = emulator.timeline.lock().unwrap_or_else(|p| p.into_inner());
            if timeline.init_error {
                return Err(format!("{} failed to initialise", binary.display()).into());
            }
            if timeline.responded.len() > WARM_INVOCATIONS {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{} did not answer in time", binary.display()).into());
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let peak_rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    child.kill().await?;
    server.abort();
    let timeline = emulator.timeline.lock().unwrap_or_else(|p| p.into_inner());
    let latencies: Vec<Duration> = timeline
        .delivered
        .iter()
        .zip(&timeline.responded)
        .map(|((delivered, _), (responded, _, _))| responded.saturating_duration_since(*delivered))
        .collect();
    let cpu: Vec<Duration> = timeline
        .cpu_delivered
        .iter()
        .zip(&timeline.cpu_responded)
        .map(|(delivered, responded)| responded.saturating_sub(*delivered))
        .collect();
    Ok(Run {
        init_cpu: timeline.cpu_at_init,
        first_cpu: cpu.first().copied().unwrap_or_default(),
        warm_cpu: median(cpu.iter().skip(1).copied().collect()),
        init: timeline
            .first_next
            .map(|t| t.saturating_duration_since(spawned_at))
            .unwrap_or_default(),
        first: latencies.first().copied().unwrap_or_default(),
        warm: median(latencies.iter().skip(1).copied().collect()),
        peak_rss_kib,
        statuses: timeline.responded.iter().map(|(_, s, _)| *s).collect(),
        first_requests: timeline
            .responded
            .first()
            .map(|(_, _, made)| *made)
            .unwrap_or_default(),
        warm_requests: timeline
            .responded
            .iter()
            .skip(1)
            .map(|(_, _, made)| *made)
            .collect(),
    })
}

/// An SMS sender that sends nothing (handler CPU is measured without I/O).
struct NoSms;

#[async_trait::async_trait]
impl SmsSender for NoSms {
    async fn send(&self, _message: &SmsMessage) -> Result<(), SmsError> {
        Ok(())
    }
}

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

fn read_event(events: &Path, prefix: &str) -> Result<String, BoxError> {
    let name = std::fs::read_dir(events)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| {
            n.split_once('-')
                .is_some_and(|(_, rest)| rest.starts_with(prefix))
        })
        .ok_or_else(|| format!("no event {prefix}"))?;
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(events.join(name))?)?;
    // Each cold process must do the real work, not replay a kept response.
    if let Some(headers) = event.get_mut("headers").and_then(Value::as_object_mut) {
        headers.remove("idempotency-ref");
    }
    Ok(event.to_string())
}

/// The wall time of one dispatch; the request is built before the clock starts.
async fn timed_dispatch(app: &App, request: Option<lambda_http::Request>) -> Duration {
    let started = Instant::now();
    if let Some(request) = request {
        dispatch(app, request).await;
    }
    started.elapsed()
}

/// Median wall time of `op` over `n` runs, in microseconds (one thread, memory store).
async fn time_op<F, Fut>(n: usize, mut op: F) -> f64
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        samples.push(op(i).await);
    }
    median(samples).as_nanos() as f64 / 1_000.0
}

/// The events' sandbox programme with every send limit out of the way: a benchmark repeats
/// the same request far more often than a user may.
fn bench_programme() -> Programme {
    let mut programme = Programme::new("events-sandbox", true);
    programme.send_limits = additional_factors::domain::send_limits::SendLimits {
        per_user_per_hour: u32::MAX,
        per_user_per_day: u32::MAX,
        per_number_per_day: u32::MAX,
        per_programme_per_day: u32::MAX,
        per_country_per_day: u32::MAX,
        push_per_user_per_hour: u32::MAX,
        push_per_number_per_day: u32::MAX,
        ..Default::default()
    };
    programme
}

async fn handler_cpu(env: &Value) -> Result<Vec<(&'static str, f64)>, BoxError> {
    let store = Arc::new(MemoryStore::new());
    let mut programme = bench_programme();
    programme.wrong_code_limit = 10;
    store
        .put_programme(&api_key_hash(EVENTS_API_KEY), &programme)
        .await?;
    let text = |k: &str| {
        env.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let tokens = TokenVerifier::new(
        Some(text("JWT_HS256_SECRET").as_bytes()),
        None,
        text("JWT_ISSUER"),
        text("JWT_AUDIENCE"),
    )?;
    // The bench's own SMS sender (`NoSms`) and the fake push provider; every other port at
    // its null adapter, as a function that does not use it.
    let app = App::builder(store)
        .sms(Arc::new(NoSms))
        .push(Arc::new(FakePushProvider::new()))
        .tokens(tokens)
        .otp_secret(text("OTP_HMAC_SECRET").as_bytes())
        .build()?;
    let events = PathBuf::from(arg("--events", "events"));
    let request = |prefix: &str| -> Result<lambda_http::Request, BoxError> {
        Ok(lambda_http::request::from_str(&read_event(
            &events, prefix,
        )?)?)
    };
    let with_ref = |prefix: &str, reference: &str| -> Result<lambda_http::Request, BoxError> {
        let mut r = request(prefix)?;
        r.headers_mut()
            .insert("idempotency-ref", reference.parse()?);
        Ok(r)
    };
    let n = 2_000;
    let (list, enrol, wrong, right) = (
        "list-factors.200-empty",
        "enrol-sms-otp.204",
        "verify-sms-otp.409",
        "verify-sms-otp.204",
    );
    let mut results = Vec::new();
    let app = &app;
    results.push((
        "list",
        time_op(n, |_| timed_dispatch(app, request(list).ok())).await,
    ));
    results.push((
        "enrol SMS (sandbox)",
        time_op(n, |_| timed_dispatch(app, request(enrol).ok())).await,
    ));
    results.push((
        "verify, wrong code",
        time_op(n, |i| async move {
            if i % 9 == 0 {
                if let Ok(r) = request(enrol) {
                    dispatch(app, r).await;
                }
            }
            timed_dispatch(app, request(wrong).ok()).await
        })
        .await,
    ));
    results.push((
        "verify, right code",
        time_op(n, |_| async {
            if let Ok(r) = request(enrol) {
                dispatch(app, r).await;
            }
            timed_dispatch(app, request(right).ok()).await
        })
        .await,
    ));
    if let Ok(r) = with_ref(enrol, "bench-replay") {
        dispatch(app, r).await;
    }
    results.push((
        "replay",
        time_op(n, |_| {
            timed_dispatch(app, with_ref(enrol, "bench-replay").ok())
        })
        .await,
    ));
    Ok(results)
}

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
    let forwarder = start_counting_forwarder(endpoint.clone(), counts.clone(), tls).await?;
    println!(
        "endpoint: {forwarder} ({})",
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
    let programme = bench_programme();
    store
        .put_programme(&api_key_hash(EVENTS_API_KEY), &programme)
        .await?;

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
    env.push(("SECRETS_ENDPOINT".into(), forwarder.clone()));
    if !tls_dir.is_empty() {
        let bundle = Path::new(&tls_dir).join("bundle.pem");
        env.push(("SSL_CERT_FILE".into(), bundle.display().to_string()));
    }
    env.extend([
        ("PROOF_KMS_KEY_ID".into(), proof_key),
        ("KMS_ENDPOINT".into(), forwarder.clone()),
        ("TABLE_NAME".into(), table.clone()),
        ("DYNAMODB_ENDPOINT".into(), forwarder.clone()),
        ("SNS_ENDPOINT".into(), forwarder.clone()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), "bench".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "bench".into()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), "bench".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        ("RUST_LOG".into(), "info".into()),
        ("SSL_CERT_DIR".into(), empty_certs.display().to_string()),
    ]);

    let functions = [
        ("empty-function", "list-factors.200-empty"),
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
            only.is_empty() || *f == "empty-function" || only.split(',').any(|o| o == *f)
        })
        .collect();
    // Round-robin: each round starts every binary once, the empty function first, so that
    // the machine's noise falls on all of them alike; the ratio is the median over rounds of
    // each function's init over the empty function's init in the same round.
    let mut rounds: Vec<Vec<Run>> = functions.iter().map(|_| Vec::new()).collect();
    for _ in 0..runs {
        for ((function, event_name), results) in functions.iter().zip(rounds.iter_mut()) {
            let event = read_event(&events, event_name)?;
            results.push(run_once(&bin_dir.join(function), &event, &env, &counts).await?);
        }
    }
    println!("| function | stripped size | init (median of {runs}) | × empty (median of same-round ratios) | first request | warm (median) | DynamoDB / SNS requests, first | DynamoDB / SNS requests, warm | peak RSS | statuses |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let floor: Vec<f64> = rounds
        .first()
        .map(|runs| runs.iter().map(|r| r.init.as_secs_f64()).collect())
        .unwrap_or_default();
    for ((function, _), results) in functions.iter().zip(&rounds) {
        let binary = bin_dir.join(function);
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
    let shares: Vec<u32> = arg("--cpu-share", "")
        .split(',')
        .filter_map(|mb| mb.trim().parse().ok())
        .collect();
    if !shares.is_empty() {
        cpu_share_table(&functions, &shares, runs, &bin_dir, &events, &env, &counts).await?;
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
        let usual = read_event(&events, event_name)?;
        let attack = attack_event(&usual)?;
        // The callback's warm state is a genuine callback's (signed now: it reads the table),
        // not the shipped event's (a stale nonce, refused before anything is built).
        let usual = match *function {
            "authy-callback" => signed_now(&usual, &env_json)?,
            _ => usual,
        };
        let normal = run_once(&bin_dir.join(function), &usual, &env, &counts).await?;
        let hostile = run_once(&bin_dir.join(function), &attack, &env, &counts).await?;
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

/// A callback event signed now with the deployment's Authy key (`events/env.json`), as Authy
/// sends a genuine one.
fn signed_now(event: &str, env_json: &Value) -> Result<String, BoxError> {
    let mut event: Value = serde_json::from_str(event)?;
    let key = env_json["AUTHY_API_KEY"]
        .as_str()
        .ok_or("no AUTHY_API_KEY")?;
    let url = env_json["AUTHY_CALLBACK_URL"]
        .as_str()
        .ok_or("no AUTHY_CALLBACK_URL")?;
    let body: Value = serde_json::from_str(event["body"].as_str().ok_or("no body")?)?;
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        .to_string();
    let signature =
        additional_factors::push::authy_signature::sign(key, &nonce, "POST", url, &body);
    let headers = event["headers"].as_object_mut().ok_or("no headers")?;
    headers.insert("x-authy-signature-nonce".into(), Value::String(nonce));
    headers.insert("x-authy-signature".into(), Value::String(signature));
    Ok(serde_json::to_string(&event)?)
}

/// The usual event with what a stranger sends instead: a 6 MB `[0,0,0,...]` body (the
/// shape that cost 984 MB when parsed whole), an `idempotency-ref` (the fingerprint used to
/// parse the body), and a fresh Authy nonce with a wrong signature (the callback used to
/// parse before it verified).
fn attack_event(usual: &str) -> Result<String, BoxError> {
    let mut event: Value = serde_json::from_str(usual)?;
    let mut body = String::with_capacity(6 * 1024 * 1024 + 2);
    body.push_str("[0");
    while body.len() < 6 * 1024 * 1024 {
        body.push_str(",0");
    }
    body.push(']');
    event["body"] = Value::String(body);
    event["isBase64Encoded"] = Value::Bool(false);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let headers = event["headers"]
        .as_object_mut()
        .ok_or("an event without headers")?;
    headers.insert("idempotency-ref".into(), Value::String("attack-1".into()));
    if headers.contains_key("x-authy-signature") {
        headers.insert(
            "x-authy-signature-nonce".into(),
            Value::String(now.to_string()),
        );
        headers.insert("x-authy-signature".into(), Value::String("AAAA".into()));
    }
    Ok(serde_json::to_string(&event)?)
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
    events: &Path,
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
        let event = read_event(events, event_name)?;
        let mut results: Vec<Vec<Run>> = cgroups.iter().map(|_| Vec::new()).collect();
        for _ in 0..runs {
            for ((_, _, cgroup), results) in cgroups.iter().zip(results.iter_mut()) {
                let binary = bin_dir.join(function);
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
