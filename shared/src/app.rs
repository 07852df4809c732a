//! The state every handler shares, built once per cold start.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use crate::{
    clock::Clock,
    domain::{
        otp::{api_key_hash, Hasher, RandomSource},
        programme::Programme,
    },
    http::auth::TokenVerifier,
    push::PushProvider,
    sms::SmsSender,
    store::{Store, StoreError},
};

/// How long a warm function trusts a programme record it read.
pub const PROGRAMME_CACHE_SECS: i64 = 60;

/// Counters the tests and benchmarks read.
#[derive(Default)]
pub struct Metrics {
    /// Verification codes actually compared with a stored hash.
    pub codes_compared: AtomicU64,
}

impl Metrics {
    pub fn codes_compared(&self) -> u64 {
        self.codes_compared.load(Ordering::SeqCst)
    }
}

/// The adapters an `App` is built from.
pub struct Adapters {
    pub store: Arc<dyn Store>,
    pub sms: Arc<dyn SmsSender>,
    pub push: Arc<dyn PushProvider>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
}

pub struct App {
    pub store: Arc<dyn Store>,
    pub sms: Arc<dyn SmsSender>,
    pub push: Arc<dyn PushProvider>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
    pub hasher: Hasher,
    pub tokens: TokenVerifier,
    pub metrics: Metrics,
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
            hasher: Hasher::new(otp_secret),
            tokens,
            metrics: Metrics::default(),
            programmes: Mutex::new(HashMap::new()),
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
