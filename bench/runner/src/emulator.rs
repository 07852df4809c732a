//! A small Lambda Runtime API emulator: spawns a function binary, hands it events, and
//! times its init, first and warm requests, its CPU and its peak RSS.

use super::*;

/// What the emulator saw of one process.
#[derive(Default)]
pub(crate) struct Timeline {
    pub(crate) events: VecDeque<String>,
    pub(crate) first_next: Option<Instant>,
    /// When each event was handed over, and the requests counted so far at that moment.
    pub(crate) delivered: Vec<(Instant, Requests)>,
    /// The process's CPU time when init ended, and when each event was handed over and
    /// answered.
    pub(crate) cpu_at_init: Duration,
    pub(crate) cpu_delivered: Vec<Duration>,
    pub(crate) cpu_responded: Vec<Duration>,
    /// When each response came, its status, and the requests the invocation made.
    pub(crate) responded: Vec<(Instant, u16, Requests)>,
    pub(crate) init_error: bool,
}

pub(crate) struct Emulator {
    pub(crate) timeline: Mutex<Timeline>,
    pub(crate) changed: tokio::sync::Notify,
    pub(crate) counts: Arc<Counts>,
    /// With a CPU share: the cgroup the process joins when its init ends (its first `next`).
    /// Lambda runs init at full CPU, and invocations at the memory size's share of a vCPU.
    pub(crate) cgroup: Option<PathBuf>,
    pub(crate) pid: std::sync::atomic::AtomicU32,
}

/// CPU time a process has used so far (`/proc/<pid>/schedstat`, nanoseconds: user and
/// system, at the scheduler's resolution, not the tick's).
pub(crate) fn cpu_used(pid: u32) -> Duration {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

impl Emulator {
    pub(crate) async fn serve(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Response<Full<Bytes>> {
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
pub(crate) struct Run {
    pub(crate) init: Duration,
    pub(crate) first: Duration,
    pub(crate) warm: Duration,
    pub(crate) peak_rss_kib: u64,
    pub(crate) statuses: Vec<u16>,
    /// DynamoDB and SNS requests of the first invocation, and of each warm one.
    pub(crate) first_requests: Requests,
    pub(crate) warm_requests: Vec<Requests>,
    /// CPU time of init, of the first invocation, and the warm invocations' median.
    pub(crate) init_cpu: Duration,
    pub(crate) first_cpu: Duration,
    pub(crate) warm_cpu: Duration,
    /// What reached the forwarder in each phase: the exchanges, and the connections opened
    /// (init; the first invocation; each warm one).
    pub(crate) init_trace: (Vec<Exchange>, usize),
    pub(crate) first_trace: (Vec<Exchange>, usize),
    pub(crate) warm_traces: Vec<(Vec<Exchange>, usize)>,
}

pub(crate) fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

pub(crate) async fn run_once(
    binary: &Path,
    event: &str,
    env: &[(String, String)],
    counts: &Arc<Counts>,
) -> Result<Run, BoxError> {
    run_limited(binary, event, env, counts, None).await
}

/// `run_once`, the process's invocations limited to `cgroup`'s CPU quota.
pub(crate) async fn run_limited(
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
        .stderr(match std::env::var_os("BENCH_STDERR") {
            // The functions' logs, appended to that file (to see why a run answered as it did).
            Some(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?
                .into(),
            None => Stdio::null(),
        })
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
    // Each phase's share of the forwarder's trace (one process runs at a time).
    let trace = counts.trace.lock().unwrap_or_else(|p| p.into_inner());
    let init_trace = match timeline.first_next {
        Some(init_ended) => trace.between(spawned_at, init_ended),
        None => (Vec::new(), 0),
    };
    let mut invocations = timeline
        .delivered
        .iter()
        .zip(&timeline.responded)
        .map(|((delivered, _), (responded, _, _))| trace.between(*delivered, *responded));
    let first_trace = invocations.next().unwrap_or_default();
    let warm_traces = invocations.collect();
    drop(trace);
    Ok(Run {
        init_trace,
        first_trace,
        warm_traces,
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
