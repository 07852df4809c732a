//! The state a function builds once per cold start: the ports every route could reach (each
//! handler is handed only the ones its route declares: `handlers::ports`), the request
//! context handlers share, and what the pipeline itself uses (the token verifier, the
//! programme cache, the clock).
//!
//! There is one way to build it, `App::builder`, used by the Lambda entry point, the local
//! server, the tests and the bench: every port starts as its null adapter (no SMS, no push
//! provider, no events, no signing key, a token verifier that refuses every token), so an
//! entry point names only what it has.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::{
    auth::TokenVerifier,
    clock::{Clock, SystemClock},
    domain::{
        crypto::{api_key_hash, Hasher},
        programme::{Countries, Programme},
        random::{RandomError, RandomSource, SystemRandom},
        send_limits::SmsBudget,
    },
    events::{EventPublisher, NoEvents},
    proof::{ProofKeys, ProofSigner, SandboxKey, UnconfiguredSigner, LOCAL_PROOF_ISSUER},
    push::{unconfigured::UnconfiguredPushProvider, PushProvider},
    sms::{NoSmsSender, SmsSender},
    store::{Store, StoreError},
};

/// How long a warm function trusts a programme record it read.
pub const PROGRAMME_CACHE_SECS: i64 = 60;

pub use crate::metrics::Metrics;

/// What the push provider's signed callbacks are checked with: the key it signs with, and the
/// exact public URL it calls (part of what is signed).
#[derive(Clone)]
pub struct CallbackSignatureKey {
    pub api_key: String,
    pub url: String,
}

/// What the deployment decides for every programme (the template's parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentPolicy {
    /// The calling codes a live programme that names none may send to.
    pub default_countries: Countries,
    /// The SMS budget across every live programme.
    pub sms_budget: SmsBudget,
}

/// What every handler may use that reaches nothing outside the function: the keyed hashes,
/// randomness, metrics, the deployment's policy and the proofs' issuer.
pub struct Context {
    pub hasher: Hasher,
    pub random: Arc<dyn RandomSource>,
    pub metrics: Metrics,
    pub policy: DeploymentPolicy,
    /// The `iss` of payment proofs.
    pub proof_issuer: String,
}

pub struct App {
    pub context: Context,
    pub store: Arc<dyn Store>,
    pub sms: Arc<dyn SmsSender>,
    pub push: Arc<dyn PushProvider>,
    /// BIOMETRIC devices' pushes (SNS mobile push; the outbox locally).
    pub device_push: Arc<dyn crate::push::device::DevicePush>,
    pub events: Arc<dyn EventPublisher>,
    /// Signs payment proofs (`iss` = `context.proof_issuer`): live programmes' with the live
    /// key, sandbox programmes' with the sandbox key.
    pub proof_keys: ProofKeys,
    /// Set when a push provider with signed callbacks is configured: enables its callback
    /// route.
    pub callback_key: Option<CallbackSignatureKey>,
    pub clock: Arc<dyn Clock>,
    pub tokens: TokenVerifier,
    programmes: Arc<ProgrammeCache>,
}

/// The programmes a warm function has read, by api key hash, with when they were read: kept
/// across the states a secrets rotation rebuilds, and filled at init from the registry
/// snapshot (`DynamoStore::warm_up`), so a function's first request reads no programme.
#[derive(Default)]
pub struct ProgrammeCache(Mutex<HashMap<String, (Arc<Programme>, i64)>>);

impl ProgrammeCache {
    /// Programmes read at `now` (unix seconds), trusted for `PROGRAMME_CACHE_SECS` as if each
    /// had been read on its own.
    pub fn fill(&self, programmes: Vec<(String, Programme)>, now: i64) {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (hash, programme) in programmes {
            cache.insert(hash, (Arc::new(programme), now));
        }
    }

    fn get(&self, hash: &str, now: i64) -> Option<Arc<Programme>> {
        let cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (programme, fetched_at) = cache.get(hash)?;
        (now - fetched_at < PROGRAMME_CACHE_SECS && now >= *fetched_at).then(|| programme.clone())
    }
}

/// Builds an `App`: the store, then whatever else the entry point has.
pub struct AppBuilder {
    store: Arc<dyn Store>,
    sms: Arc<dyn SmsSender>,
    push: Arc<dyn PushProvider>,
    device_push: Arc<dyn crate::push::device::DevicePush>,
    events: Arc<dyn EventPublisher>,
    signer: Arc<dyn ProofSigner>,
    sandbox_signer: Arc<dyn ProofSigner>,
    proof_issuer: String,
    callback_key: Option<CallbackSignatureKey>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
    tokens: TokenVerifier,
    otp_secret: Option<Vec<u8>>,
    metrics: Metrics,
    policy: DeploymentPolicy,
    programmes: Arc<ProgrammeCache>,
}

impl App {
    /// An `App` on this store, every other port at its null adapter until set.
    pub fn builder(store: Arc<dyn Store>) -> AppBuilder {
        AppBuilder {
            store,
            sms: Arc::new(NoSmsSender),
            push: Arc::new(UnconfiguredPushProvider),
            device_push: Arc::new(crate::push::device::NoDevicePush),
            events: Arc::new(NoEvents),
            signer: Arc::new(UnconfiguredSigner),
            sandbox_signer: Arc::new(UnconfiguredSigner),
            proof_issuer: LOCAL_PROOF_ISSUER.to_owned(),
            callback_key: None,
            clock: Arc::new(SystemClock),
            random: Arc::new(SystemRandom::default()),
            tokens: TokenVerifier::refusing("", ""),
            otp_secret: None,
            metrics: Metrics::default(),
            policy: DeploymentPolicy::default(),
            programmes: Arc::default(),
        }
    }

    /// The programme of an api key, from the warm cache or the store. Unknown keys are not
    /// cached, so the cache cannot be filled by guessing.
    pub async fn programme_for_key(
        &self,
        api_key: &str,
        now: i64,
    ) -> Result<Option<Arc<Programme>>, StoreError> {
        let hash = api_key_hash(api_key);
        if let Some(programme) = self.programmes.get(&hash, now) {
            return Ok(Some(programme));
        }
        let Some(programme) = self.store.find_programme(&hash).await? else {
            return Ok(None);
        };
        let programme = Arc::new(programme);
        self.programmes
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash, (programme.clone(), now));
        Ok(Some(programme))
    }
}

impl AppBuilder {
    pub fn sms(mut self, sms: Arc<dyn SmsSender>) -> Self {
        self.sms = sms;
        self
    }

    pub fn push(mut self, push: Arc<dyn PushProvider>) -> Self {
        self.push = push;
        self
    }

    /// The programme cache (default: its own, empty): a function shares one across the states
    /// it builds, filled at init.
    pub fn programmes(mut self, programmes: Arc<ProgrammeCache>) -> Self {
        self.programmes = programmes;
        self
    }

    /// BIOMETRIC devices' pushes (default: no platform application, BIOMETRIC unsupported).
    pub fn device_push(mut self, device_push: Arc<dyn crate::push::device::DevicePush>) -> Self {
        self.device_push = device_push;
        self
    }

    /// Lifecycle events (default: published nowhere).
    pub fn events(mut self, events: Arc<dyn EventPublisher>) -> Self {
        self.events = events;
        self
    }

    /// The live proof signer and the `iss` of proofs (default: signing answers 503).
    pub fn signer(mut self, signer: Arc<dyn ProofSigner>, issuer: impl Into<String>) -> Self {
        self.signer = signer;
        self.proof_issuer = issuer.into();
        self
    }

    /// The sandbox programmes' proof signer (default: signing answers 503).
    pub fn sandbox_signer(mut self, signer: Arc<dyn ProofSigner>) -> Self {
        self.sandbox_signer = signer;
        self
    }

    /// Enables the push provider's callback route (default: 404).
    pub fn callback_key(mut self, key: Option<CallbackSignatureKey>) -> Self {
        self.callback_key = key;
        self
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn random(mut self, random: Arc<dyn RandomSource>) -> Self {
        self.random = random;
        self
    }

    /// How user tokens are verified (default: every token refused).
    pub fn tokens(mut self, tokens: TokenVerifier) -> Self {
        self.tokens = tokens;
        self
    }

    /// The HMAC key of codes and phone numbers (default: a random key no one knows, for a
    /// function that hashes nothing).
    pub fn otp_secret(mut self, secret: &[u8]) -> Self {
        self.otp_secret = Some(secret.to_vec());
        self
    }

    /// Where the service's metrics go (default: nowhere; in Lambda, EMF lines).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The deployment's policy (default: every country, the default SMS budget).
    pub fn policy(mut self, policy: DeploymentPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn build(self) -> Result<App, RandomError> {
        let secret = match self.otp_secret {
            Some(secret) => secret,
            None => {
                let mut key = vec![0u8; 32];
                self.random.fill(&mut key)?;
                key
            }
        };
        Ok(App {
            context: Context {
                hasher: Hasher::new(&secret),
                random: self.random,
                metrics: self.metrics,
                policy: self.policy,
                proof_issuer: self.proof_issuer,
            },
            store: self.store,
            sms: self.sms,
            push: self.push,
            device_push: self.device_push,
            events: self.events,
            proof_keys: ProofKeys {
                live: self.signer,
                sandbox: SandboxKey(self.sandbox_signer),
            },
            callback_key: self.callback_key,
            clock: self.clock,
            tokens: self.tokens,
            programmes: self.programmes,
        })
    }
}
