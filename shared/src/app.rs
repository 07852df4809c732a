//! The state every handler shares, built once per cold start.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::{
    auth::TokenVerifier,
    clock::Clock,
    domain::channel::Channel,
    domain::{
        crypto::{api_key_hash, Hasher},
        programme::{Countries, Programme},
        random::RandomSource,
        send_limits::SmsBudget,
    },
    events::{Change, Event, EventPublisher, FactorEvent, PaymentEvent, StepUpEvent},
    push::PushProvider,
    sms::SmsSender,
    store::{Store, StoreError, UserKey},
};

/// How long a warm function trusts a programme record it read.
pub const PROGRAMME_CACHE_SECS: i64 = 60;

pub use crate::metrics::Metrics;

/// The adapters an `App` is built from.
pub struct Adapters {
    pub store: Arc<dyn Store>,
    pub sms: Arc<dyn SmsSender>,
    pub push: Arc<dyn PushProvider>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
    pub events: Arc<dyn EventPublisher>,
}

/// What the Authy callback route needs: the key Authy signs with, and the exact public URL
/// Authy calls (part of what is signed).
#[derive(Clone)]
pub struct AuthyCallback {
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

pub struct App {
    pub store: Arc<dyn Store>,
    pub sms: Arc<dyn SmsSender>,
    pub push: Arc<dyn PushProvider>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
    pub events: Arc<dyn EventPublisher>,
    /// Set when Authy is configured: enables `POST /webhooks/authy`.
    pub authy_callback: Option<AuthyCallback>,
    pub hasher: Hasher,
    pub tokens: TokenVerifier,
    pub metrics: Metrics,
    pub policy: DeploymentPolicy,
    /// Signs payment proofs (`iss` = `proof_issuer`).
    pub signer: Arc<dyn crate::proof::ProofSigner>,
    pub proof_issuer: String,
    programmes: Mutex<HashMap<String, (Arc<Programme>, i64)>>,
}

impl App {
    pub fn new(adapters: Adapters, tokens: TokenVerifier, otp_secret: &[u8]) -> Self {
        Self {
            store: adapters.store,
            sms: adapters.sms,
            push: adapters.push,
            clock: adapters.clock,
            random: adapters.random,
            events: adapters.events,
            authy_callback: None,
            hasher: Hasher::new(otp_secret),
            tokens,
            metrics: Metrics::default(),
            policy: DeploymentPolicy::default(),
            signer: Arc::new(crate::proof::UnconfiguredSigner),
            proof_issuer: crate::proof::LOCAL_PROOF_ISSUER.to_owned(),
            programmes: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the proof signer and the `iss` of its proofs.
    /// Where the service's metrics go (default: nowhere; in Lambda, EMF lines).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn with_signer(
        mut self,
        signer: Arc<dyn crate::proof::ProofSigner>,
        issuer: impl Into<String>,
    ) -> Self {
        self.signer = signer;
        self.proof_issuer = issuer.into();
        self
    }

    /// Publishes a payment challenge's outcome; a failure is logged, never answered.
    pub async fn announce_payment(
        &self,
        user: &UserKey,
        challenge: &crate::domain::payment::PaymentChallenge,
        status: crate::domain::step_up::ChallengeStatus,
    ) {
        let event = PaymentEvent {
            credential_id: user.credential_id.clone(),
            programme_id: user.programme_id.clone(),
            sca_challenge_id: challenge.id.clone(),
            channel: challenge.channel,
            reference: challenge.payment.reference.clone(),
            status,
            published_timestamp: self.clock.now().saturating_mul(1_000),
        };
        if let Err(error) = self.events.publish(&Event::Payment(event)).await {
            tracing::warn!(error = %crate::logging::redacted_chain(&error), status = status.as_str(), "payment event not published");
        }
    }

    /// Sets the deployment's policy (default: every country, the default SMS budget).
    pub fn with_policy(mut self, policy: DeploymentPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Enables the Authy callback route.
    pub fn with_authy_callback(mut self, callback: AuthyCallback) -> Self {
        self.authy_callback = Some(callback);
        self
    }

    /// Publishes a factor lifecycle event; a failure is logged, never answered.
    pub async fn announce(&self, user: &UserKey, channel: Channel, change: Change) {
        let event = FactorEvent {
            credential_id: user.credential_id.clone(),
            programme_id: user.programme_id.clone(),
            channel,
            change,
            published_timestamp: self.clock.now().saturating_mul(1_000),
        };
        if let Err(error) = self.events.publish(&Event::Factor(event)).await {
            tracing::warn!(error = %crate::logging::redacted_chain(&error), change = change.as_str(), "factor event not published");
        }
    }

    /// Publishes a step-up challenge's outcome; a failure is logged, never answered.
    pub async fn announce_step_up(
        &self,
        user: &UserKey,
        challenge_id: &str,
        channel: Channel,
        status: crate::domain::step_up::ChallengeStatus,
    ) {
        let event = StepUpEvent {
            credential_id: user.credential_id.clone(),
            programme_id: user.programme_id.clone(),
            challenge_id: challenge_id.to_owned(),
            channel,
            status,
            published_timestamp: self.clock.now().saturating_mul(1_000),
        };
        if let Err(error) = self.events.publish(&Event::StepUp(event)).await {
            tracing::warn!(error = %crate::logging::redacted_chain(&error), status = status.as_str(), "step-up event not published");
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
        {
            let cache = self.programmes.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((programme, fetched_at)) = cache.get(&hash) {
                if now - fetched_at < PROGRAMME_CACHE_SECS && now >= *fetched_at {
                    return Ok(Some(programme.clone()));
                }
            }
        }
        let Some(programme) = self.store.find_programme(&hash).await? else {
            return Ok(None);
        };
        let programme = Arc::new(programme);
        self.programmes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash, (programme.clone(), now));
        Ok(Some(programme))
    }
}
