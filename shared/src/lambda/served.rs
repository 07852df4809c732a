//! A function's state between invocations: built at init (or on the first request), its
//! secrets fetched again every refresh interval, each on its own, and the JWKS fetched early
//! when a token names a key it does not hold (at most once a minute); until the secrets are
//! known every request is a 503.

use super::*;

/// How long init may spend opening the table's connection.
const WARM_UP_BUDGET: std::time::Duration = std::time::Duration::from_millis(250);

/// A function's state, and its secrets kept fresh (crate::secrets).
pub(super) struct Served<F> {
    config: Config,
    parts: Parts,
    refresh: std::time::Duration,
    current: std::sync::Mutex<Current>,
    /// When a token naming an unknown `kid` last made the JWKS be fetched early.
    kid_refetched_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// When a token the previous HS256 key may have signed last made it be fetched.
    previous_fetched_at: std::sync::Mutex<Option<std::time::Instant>>,
    function: std::marker::PhantomData<fn() -> F>,
}

struct Current {
    app: Arc<App>,
    /// False until the secrets have been fetched once: every request is then a 503.
    ready: bool,
    values: SecretValues,
    next_fetch: std::time::Instant,
    /// When the JWKS was last fetched: past `JWKS_STALE_INTERVALS` refresh intervals, its
    /// keys stop verifying.
    jwks_fetched_at: Option<std::time::Instant>,
}

/// At most one early JWKS fetch for a token naming an unknown `kid` in this time.
const KID_REFETCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// A JWKS that could not be fetched for this many refresh intervals stops verifying tokens:
/// a key the identity service revoked meanwhile would otherwise verify forever.
const JWKS_STALE_INTERVALS: u32 = 3;

impl<F: Function> Served<F> {
    /// Builds the state at init (full CPU), fetching the secrets (or on the first request,
    /// with `SECRETS_FETCH=first-request`). A fetch that fails does not fail init: requests
    /// answer 503 (`Retry-After`) and each tries the fetch again.
    pub(super) async fn start(config: Config) -> Result<Self, lambda_http::Error> {
        let parts = Parts::build::<F>(&config).await?;
        let refresh = crate::secrets::refresh_interval();
        let placeholder = Current {
            app: Arc::new(unready_app(&config, &parts)?),
            ready: false,
            values: SecretValues::default(),
            next_fetch: std::time::Instant::now(),
            jwks_fetched_at: None,
        };
        let served = Self {
            config,
            parts,
            refresh,
            current: std::sync::Mutex::new(placeholder),
            kid_refetched_at: std::sync::Mutex::new(None),
            previous_fetched_at: std::sync::Mutex::new(None),
            function: std::marker::PhantomData,
        };
        if served.parts.secrets.is_none() {
            let app = assemble::<F>(&served.config, &served.parts)?;
            served.set(Current {
                app: Arc::new(app),
                ready: true,
                values: SecretValues::default(),
                next_fetch: std::time::Instant::now()
                    + std::time::Duration::from_secs(u32::MAX.into()),
                jwks_fetched_at: None,
            });
        } else if crate::secrets::fetch_at_init() {
            // All at full CPU, at once: the secrets, the table's client and connection with
            // the programmes, the proof keys with KMS's connection, SNS's connection (what
            // the first request would otherwise pay at the memory size's CPU share).
            tokio::join!(
                served.app(),
                served.warm_up(),
                served.fetch_proof_keys(),
                served.open_sns()
            );
            return Ok(served);
        }
        tokio::join!(
            served.warm_up(),
            served.fetch_proof_keys(),
            served.open_sns()
        );
        Ok(served)
    }

    /// Builds the DynamoDB client and opens its connection with the registry snapshot's
    /// `GetItem`, whose programmes fill the programme cache (the first request then reads
    /// none), within `WARM_UP_BUDGET`; a failure only leaves both to the first request.
    async fn warm_up(&self) {
        if !F::READS_TABLE {
            return;
        }
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(WARM_UP_BUDGET, self.parts.table.warm_up()).await;
        let programmes = match outcome {
            Ok(Ok(programmes)) => {
                let now = crate::clock::Clock::now(&crate::clock::SystemClock);
                let read = programmes.len();
                self.parts.programmes.fill(programmes, now);
                Some(read)
            }
            _ => None,
        };
        tracing::debug!(
            warm_up_us = started.elapsed().as_micros() as u64,
            ok = programmes.is_some(),
            programmes = programmes.unwrap_or(0),
            "cold start: table connection opened, programmes read"
        );
    }

    /// Reads the proof keys' public halves (`GetPublicKey`, kept by the signer: a proof's
    /// `kid`, the JWKS), which opens KMS's connection, within `WARM_UP_BUDGET`; a failure
    /// leaves both to the first request that needs them.
    async fn fetch_proof_keys(&self) {
        let read = |signer: &Option<Arc<dyn crate::proof::ProofSigner>>| {
            let signer = signer.clone();
            async move {
                match signer {
                    Some(signer) => signer.public_keys().await.is_ok(),
                    None => true,
                }
            }
        };
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(WARM_UP_BUDGET, async {
            tokio::join!(read(&self.parts.signer), read(&self.parts.sandbox_signer))
        })
        .await;
        if self.parts.signer.is_some() || self.parts.sandbox_signer.is_some() {
            tracing::debug!(
                proof_keys_us = started.elapsed().as_micros() as u64,
                ok = matches!(outcome, Ok((true, true))),
                "cold start: proof keys read"
            );
        }
    }

    /// Opens SNS's connection where the route's success path reaches SNS, within
    /// `WARM_UP_BUDGET`, in one attempt: `GetSMSAttributes` of the account's monthly SMS
    /// spend limit (read-only; the only SNS read that needs no topic, endpoint or number).
    /// A function that sends SMS warns when the limit is still the new account's 1 USD, at
    /// which SNS stops sending after a few hundred messages; elsewhere the answer is unused
    /// (BENCHMARKS.md counts it).
    async fn open_sns(&self) {
        let Some(sns) = &self.parts.sns else {
            return;
        };
        let started = std::time::Instant::now();
        let read = sns
            .get_sms_attributes()
            .attributes("MonthlySpendLimit")
            .customize()
            .config_override(
                aws_sdk_sns::config::Builder::default()
                    .retry_config(aws_config::retry::RetryConfig::disabled()),
            )
            .send();
        let limit = match tokio::time::timeout(WARM_UP_BUDGET, read).await {
            Ok(Ok(output)) => output
                .attributes
                .and_then(|a| a.get("MonthlySpendLimit").cloned()),
            _ => None,
        };
        if F::SENDS_SMS && limit.as_deref() == Some("1") {
            tracing::warn!("the account's SNS MonthlySpendLimit is 1 USD (a new account's): SNS stops sending SMS once it is spent; raise it in the SNS console");
        }
        tracing::debug!(
            sns_us = started.elapsed().as_micros() as u64,
            "cold start: SNS connection opened"
        );
    }

    /// A token naming a key the JWKS does not hold: the identity service may have added it
    /// since the last fetch, so the secrets are due at once instead of at the next refresh
    /// (at most once a minute: tokens with made-up `kid`s cannot make a function fetch on
    /// every request). `true` when a fetch is now due.
    pub(super) fn refetch_for_unknown_kid(&self, app: &App, request: &Request) -> bool {
        let has_jwks = self
            .parts
            .secrets
            .as_ref()
            .is_some_and(SecretsManagerSource::fetches_jwks);
        let authorization = request.headers().get("authorization").map(|v| v.as_bytes());
        if !has_jwks || !app.tokens.names_unknown_kid(authorization) {
            return false;
        }
        if !once_a_minute(&self.kid_refetched_at) {
            return false;
        }
        let now = std::time::Instant::now();
        tracing::info!("a token names a key the JWKS does not hold: fetching it again now");
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_fetch = now;
        true
    }

    /// The HS256 key a rotation replaced, fetched when a token it may have signed arrives (in
    /// the day after the rotation, the only time it verifies anything; at most once a minute:
    /// tokens with bad signatures cannot make a function fetch on every request). Init never
    /// fetches it. `true` when the state now holds it.
    pub(super) async fn fetch_previous_key(&self, app: &App, request: &Request) -> bool {
        let Some(source) = &self.parts.secrets else {
            return false;
        };
        let values = {
            let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            if !current.ready || current.values.token_previous.is_some() {
                return false;
            }
            current.values.clone()
        };
        let Some(rotated_at) = values.token_rotated_at else {
            return false;
        };
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
        let authorization = request.headers().get("authorization").map(|v| v.as_bytes());
        if !app
            .tokens
            .may_need_previous_key(authorization, rotated_at, now)
        {
            return false;
        }
        if !once_a_minute(&self.previous_fetched_at) {
            return false;
        }
        let previous = match source.fetch_previous().await {
            Ok(Some(previous)) => previous,
            Ok(None) => return false,
            Err(error) => {
                tracing::error!(error = %crate::logging::redacted_chain(&error), "the previous HS256 key was not fetched");
                return false;
            }
        };
        let values = SecretValues {
            token_previous: Some(previous),
            ..values
        };
        match self.rebuilt(&values) {
            Ok(rebuilt) => {
                tracing::info!("the previous HS256 key fetched for a token it may have signed");
                let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
                current.app = Arc::new(rebuilt);
                current.values = values;
                true
            }
            Err(error) => {
                tracing::error!(error = %error, "the previous HS256 key was refused");
                false
            }
        }
    }

    /// The function's state on these secret values.
    fn rebuilt(&self, values: &SecretValues) -> Result<App, lambda_http::Error> {
        let config = self.config.with_secrets(values)?;
        assemble::<F>(&config, &self.parts)
    }

    fn set(&self, current: Current) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = current;
    }

    /// The state to serve this request with, fetching the secrets again when due. Each
    /// secret refreshes on its own: one that fails keeps its last value (and is tried again
    /// after `RETRY_AFTER_FAILURE`) while the others rotate.
    pub(super) async fn app(&self) -> (Arc<App>, bool) {
        let now = std::time::Instant::now();
        let (app, ready, values, jwks_fetched_at) = {
            let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            if now < current.next_fetch {
                return (current.app.clone(), current.ready);
            }
            (
                current.app.clone(),
                current.ready,
                current.values.clone(),
                current.jwks_fetched_at,
            )
        };
        let Some(source) = &self.parts.secrets else {
            return (app, ready);
        };
        let started = std::time::Instant::now();
        // Bounded: each fetch within FETCH_BUDGET, before the request's own work.
        let crate::secrets::Refreshed {
            values: mut fresh,
            failures,
            jwks_fetched,
        } = source.fetch(&values).await;
        let fetch_ms = started.elapsed().as_millis() as u64;
        let jwks_fetched_at = if jwks_fetched {
            Some(std::time::Instant::now())
        } else {
            jwks_fetched_at
        };
        let jwks_stale = fresh.jwks.is_some()
            && jwks_fetched_at.is_none_or(|at| at.elapsed() > self.refresh * JWKS_STALE_INTERVALS);
        if jwks_stale {
            tracing::error!("the JWKS has not been fetched for 3 refresh intervals: its keys no longer verify tokens");
            fresh.jwks = None;
        }
        for error in &failures {
            tracing::error!(error = %crate::logging::redacted_chain(error), fetch_ms, "a secret was not fetched: it keeps its last value");
        }
        if !failures.is_empty() {
            // The SecretsRefreshAlarm's metric: a rotation that is not taking effect pages.
            let namespace =
                std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "additional-factors".into());
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            crate::metrics::Metrics::emf(namespace).count(
                crate::metrics::Metric::SecretsRefreshFailures,
                &[("route", F::ROUTE.name())],
                now,
            );
        }
        let after = if failures.is_empty() {
            self.refresh
        } else {
            crate::secrets::RETRY_AFTER_FAILURE.min(self.refresh)
        };
        let next = |app: Arc<App>, ready: bool, values: SecretValues| Current {
            app,
            ready,
            values,
            next_fetch: std::time::Instant::now() + after,
            jwks_fetched_at,
        };
        if ready && fresh == values {
            tracing::debug!(fetch_ms, "secrets unchanged");
            self.set(next(app, ready, values));
        } else {
            match self.rebuilt(&fresh) {
                Ok(rebuilt) => {
                    tracing::info!(fetch_ms, rotated = ready, "secrets fetched");
                    self.set(next(Arc::new(rebuilt), true, fresh));
                }
                // Without the stale JWKS no key is left: refuse to serve (503), never verify
                // with keys that may have been revoked.
                Err(error) if jwks_stale => {
                    tracing::error!(error = %error, "no token key left: answering 503");
                    match unready_app(&self.config, &self.parts) {
                        Ok(unready) => self.set(next(Arc::new(unready), false, fresh)),
                        Err(_) => self.set(next(app, ready, values)),
                    }
                }
                Err(error) => {
                    tracing::error!(error = %error, "fetched secrets refused: serving on with the last ones");
                    let retry = Current {
                        next_fetch: std::time::Instant::now()
                            + crate::secrets::RETRY_AFTER_FAILURE.min(self.refresh),
                        ..next(app, ready, values)
                    };
                    self.set(retry);
                }
            }
        }
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        (current.app.clone(), current.ready)
    }
}

/// True at most once per `KID_REFETCH_INTERVAL` for `last` (and marks it): what a request can
/// make a function fetch early, tokens with made-up kids or bad signatures cannot make it
/// fetch on every request.
fn once_a_minute(last: &std::sync::Mutex<Option<std::time::Instant>>) -> bool {
    let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_some_and(|at| at.elapsed() < KID_REFETCH_INTERVAL) {
        return false;
    }
    *last = Some(std::time::Instant::now());
    true
}

/// The state before the secrets are known: it only answers 503s and 413s.
fn unready_app(config: &Config, parts: &Parts) -> Result<App, lambda_http::Error> {
    Ok(parts.app().tokens(refusing(config)).build()?)
}

/// A verifier that refuses every token: for a route that takes no user token, and for the
/// state before the secrets are known.
pub(super) fn refusing(config: &Config) -> crate::auth::TokenVerifier {
    crate::auth::TokenVerifier::refusing(
        config.tokens.issuer.clone(),
        config.tokens.audience.clone(),
    )
}
