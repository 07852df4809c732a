//! Handler CPU per operation: the App in process on the memory store, one thread.

use super::*;

/// An SMS sender that sends nothing (handler CPU is measured without I/O).
pub(crate) struct NoSms;

#[async_trait::async_trait]
impl SmsSender for NoSms {
    async fn send(&self, _message: &SmsMessage) -> Result<(), SmsError> {
        Ok(())
    }
}

/// The wall time of one dispatch; the request is built before the clock starts.
pub(crate) async fn timed_dispatch(app: &App, request: Option<lambda_http::Request>) -> Duration {
    let started = Instant::now();
    if let Some(request) = request {
        dispatch(app, request).await;
    }
    started.elapsed()
}

/// Median wall time of `op` over `n` runs, in microseconds (one thread, memory store).
pub(crate) async fn time_op<F, Fut>(n: usize, mut op: F) -> f64
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
pub(crate) fn bench_programme() -> Programme {
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

pub(crate) async fn handler_cpu(env: &Value) -> Result<Vec<(&'static str, f64)>, BoxError> {
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
