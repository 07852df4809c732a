//! The key material a function needs at run time, fetched where it lives and kept fresh:
//! the three secrets from AWS Secrets Manager, and the identity service's public keys from
//! a JWKS URL.
//!
//! A deployed function's environment names its secrets and never holds them:
//! `JWT_HS256_SECRET_ID`, `OTP_HMAC_SECRET_ID` and `AUTHY_API_KEY_SECRET_ID` each name a
//! secret (its name or ARN), and a function has only those its route uses, with
//! `secretsmanager:GetSecretValue` on exactly those secrets (template.yaml). The values are
//! fetched in the init phase (at full CPU; the current ones in one `BatchGetSecretValue`, so
//! init waits for one round trip however many secrets the route uses), kept for the container,
//! and fetched again on the
//! first request after `SECRETS_REFRESH_SECONDS` (300): a rotation takes effect within
//! minutes, without a deploy. For the HS256 key, the version Secrets Manager labels
//! `AWSPREVIOUS` is fetched when a token signed with it arrives in the day after a rotation,
//! and verifies tokens issued before the rotation for that day.
//!
//! A plain value (`JWT_HS256_SECRET`, ...) wins over an id: the local server, the tests and
//! `sam local invoke` (events/env.json) give values; the template gives every function empty
//! values.

use std::time::Duration;

use crate::aws::Lazy;

/// How often a warm function fetches its secrets again, unless `SECRETS_REFRESH_SECONDS`.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
/// The longest a fetch may take (the SDK would retry for up to 5 s): a refresh happens on a
/// request's path, before its 7 s of work, within the function's 10 s.
pub const FETCH_BUDGET: Duration = Duration::from_millis(2_000);
/// After a failed refresh, the function serves on with the values it has and tries again
/// after this long.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// The secrets a function names (none: the value is given, or the route needs none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretIds {
    pub token: Option<String>,
    pub otp: Option<String>,
    pub authy: Option<String>,
    /// The identity service's JWKS (`JWT_JWKS_URL`), fetched like a secret.
    pub jwks_url: Option<String>,
}

impl SecretIds {
    pub fn is_empty(&self) -> bool {
        self.token.is_none()
            && self.otp.is_none()
            && self.authy.is_none()
            && self.jwks_url.is_none()
    }
}

/// What was fetched. Never printed: `Debug` shows which values are present, not what they are.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretValues {
    pub token: Option<String>,
    /// The HS256 key before the last rotation (`AWSPREVIOUS`), while Secrets Manager has one.
    pub token_previous: Option<String>,
    /// When the current HS256 version was created (the rotation that made the previous one
    /// `AWSPREVIOUS`), unix seconds.
    pub token_rotated_at: Option<i64>,
    pub otp: Option<String>,
    pub authy: Option<String>,
    /// The JWKS document (public keys: not secret, but fetched and refreshed the same way).
    pub jwks: Option<String>,
}

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValues")
            .field("token", &self.token.is_some())
            .field("token_previous", &self.token_previous.is_some())
            .field("token_rotated_at", &self.token_rotated_at)
            .field("otp", &self.otp.is_some())
            .field("authy", &self.authy.is_some())
            .field("jwks", &self.jwks.is_some())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secret {id}: {source}")]
    Fetch {
        id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("secret {id} has no SecretString")]
    NotAString { id: String },
    #[error("JWKS {url}: {reason}")]
    Jwks { url: String, reason: String },
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
}

/// A fetch within `FETCH_BUDGET`.
async fn bounded<T>(
    work: impl std::future::Future<Output = Result<T, SecretsError>>,
) -> Result<T, SecretsError> {
    tokio::time::timeout(FETCH_BUDGET, work)
        .await
        .unwrap_or(Err(SecretsError::TimedOut(FETCH_BUDGET)))
}

/// A fetch's value, or `None` with its failure noted.
fn kept<T>(result: Result<T, SecretsError>, failures: &mut Vec<SecretsError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(error) => {
            failures.push(error);
            None
        }
    }
}

/// What one refresh gave: each secret's fresh value, or its last one where its fetch failed.
#[derive(Debug)]
pub struct Refreshed {
    pub values: SecretValues,
    /// The fetches that failed (their secrets keep their last values).
    pub failures: Vec<SecretsError>,
    /// The JWKS was fetched just now (a JWKS not fetched for 3 refresh intervals is dropped).
    pub jwks_fetched: bool,
}

/// Fetches a function's secrets from Secrets Manager (and its JWKS over HTTPS).
pub struct SecretsManagerSource {
    client: Lazy<aws_sdk_secretsmanager::Client>,
    ids: SecretIds,
}

/// The version label Secrets Manager gives the value a rotation replaced.
const PREVIOUS: &str = "AWSPREVIOUS";

impl SecretsManagerSource {
    pub fn new(client: Lazy<aws_sdk_secretsmanager::Client>, ids: SecretIds) -> Self {
        Self { client, ids }
    }

    /// Whether it fetches the identity service's JWKS (`JWT_JWKS_URL`).
    pub fn fetches_jwks(&self) -> bool {
        self.ids.jwks_url.is_some()
    }

    /// Every named secret within `FETCH_BUDGET`: the current values in one
    /// `BatchGetSecretValue` (one network round trip however many the route uses), beside it
    /// the JWKS. The HS256 key's `AWSPREVIOUS` is not among them: `fetch_previous` gets it
    /// when a token needs it (in the day after a rotation, the only time it verifies
    /// anything). Each secret stands on its own: one that
    /// fails (the batch answers each secret's error apart) keeps its `last` value and is
    /// reported, so one failing secret never holds back another's rotation, and a JWKS outage
    /// never takes the HS256 key's callers down.
    pub async fn fetch(&self, last: &SecretValues) -> Refreshed {
        let named: Vec<&str> = {
            let mut named: Vec<&str> = [&self.ids.token, &self.ids.otp, &self.ids.authy]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            named.sort_unstable();
            named.dedup();
            named
        };
        let current = async {
            match tokio::time::timeout(FETCH_BUDGET, self.get_current(&named)).await {
                Ok(values) => values,
                Err(_) => named
                    .iter()
                    .map(|id| ((*id).to_owned(), Err(SecretsError::TimedOut(FETCH_BUDGET))))
                    .collect(),
            }
        };
        let jwks = bounded(async {
            match &self.ids.jwks_url {
                Some(url) => fetch_jwks(url).await.map(Some),
                None => Ok(None),
            }
        });
        // A previous HS256 key the function holds (fetched for a token that needed it) is
        // fetched again with the others: removing its `AWSPREVIOUS` label (the emergency path)
        // takes effect at the next refresh.
        let previous = async {
            match last.token_previous {
                Some(_) => Some(self.fetch_previous().await),
                None => None,
            }
        };
        let (mut current, jwks, previous) = tokio::join!(current, jwks, previous);
        let mut one = |id: &Option<String>| match id {
            Some(id) => current
                .remove(id.as_str())
                .unwrap_or_else(|| Err(missing(id)))
                .map(Some),
            None => Ok(None),
        };
        let (token, otp, authy) = (
            one(&self.ids.token),
            one(&self.ids.otp),
            one(&self.ids.authy),
        );
        let mut failures = Vec::new();
        let token = kept(token, &mut failures);
        let previous = previous.map(|fetched| kept(fetched, &mut failures));
        let otp = kept(otp, &mut failures);
        let authy = kept(authy, &mut failures);
        let jwks = kept(jwks, &mut failures);
        let jwks_fetched = jwks.is_some() && self.ids.jwks_url.is_some();
        let values = match token {
            Some(token) => {
                // Without the current version's date, the previous key cannot be bounded. The
                // previous key is fetched when a token needs it (`fetch_previous`); it stays
                // while the rotation it belongs to does.
                let rotated_at = token.as_ref().and_then(|(_, created)| *created);
                SecretValues {
                    token: token.map(|(value, _)| value),
                    token_previous: match previous {
                        Some(Some(fetched)) => fetched,
                        _ => last.token_previous.clone(),
                    }
                    .filter(|_| rotated_at.is_some() && rotated_at == last.token_rotated_at),
                    token_rotated_at: rotated_at,
                    ..last.clone()
                }
            }
            None => last.clone(),
        };
        Refreshed {
            values: SecretValues {
                otp: otp.map_or(values.otp.clone(), |v| v.map(|(value, _)| value)),
                authy: authy.map_or(values.authy.clone(), |v| v.map(|(value, _)| value)),
                jwks: jwks.unwrap_or(values.jwks.clone()),
                ..values
            },
            failures,
            jwks_fetched,
        }
    }

    /// The current versions of `ids` in one `BatchGetSecretValue`: each id's value and when
    /// its version was created, or that secret's own error (the request failing as a whole
    /// is each one's error).
    async fn get_current(
        &self,
        ids: &[&str],
    ) -> std::collections::HashMap<String, Result<(String, Option<i64>), SecretsError>> {
        if ids.is_empty() {
            return Default::default();
        }
        let answer = self
            .client
            .batch_get_secret_value()
            .set_secret_id_list(Some(ids.iter().map(|id| (*id).to_owned()).collect()))
            .send()
            .await;
        let output = match answer {
            Ok(output) => output,
            Err(error) => {
                let reason =
                    aws_sdk_secretsmanager::error::DisplayErrorContext(error.into_service_error())
                        .to_string();
                return ids
                    .iter()
                    .map(|id| {
                        let error = SecretsError::Fetch {
                            id: (*id).to_owned(),
                            source: reason.clone().into(),
                        };
                        ((*id).to_owned(), Err(error))
                    })
                    .collect();
            }
        };
        ids.iter()
            .map(|id| {
                // An id is the secret's name or its ARN (whole or without its suffix).
                let entry = output.secret_values().iter().find(|e| {
                    e.name() == Some(id) || e.arn().is_some_and(|arn| arn.starts_with(id))
                });
                let result = match entry {
                    Some(entry) => entry
                        .secret_string()
                        .filter(|s| !s.is_empty())
                        .map(|value| (value.to_owned(), entry.created_date().map(|d| d.secs())))
                        .ok_or_else(|| SecretsError::NotAString {
                            id: (*id).to_owned(),
                        }),
                    None => Err(output
                        .errors()
                        .iter()
                        .find(|e| e.secret_id() == Some(id))
                        .map_or_else(
                            || missing(id),
                            |e| SecretsError::Fetch {
                                id: (*id).to_owned(),
                                source: format!(
                                    "{}: {}",
                                    e.error_code().unwrap_or("error"),
                                    e.message().unwrap_or_default()
                                )
                                .into(),
                            },
                        )),
                };
                ((*id).to_owned(), result)
            })
            .collect()
    }

    /// The HS256 key before the last rotation (`AWSPREVIOUS`; none before the first), within
    /// `FETCH_BUDGET`.
    pub async fn fetch_previous(&self) -> Result<Option<String>, SecretsError> {
        match &self.ids.token {
            Some(id) => bounded(self.get_previous(id)).await,
            None => Ok(None),
        }
    }

    async fn get(&self, id: &str, stage: Option<&str>) -> Result<String, SecretsError> {
        self.get_dated(id, stage).await.map(|(value, _)| value)
    }

    /// A secret's value and when its version was created (unix seconds).
    async fn get_dated(
        &self,
        id: &str,
        stage: Option<&str>,
    ) -> Result<(String, Option<i64>), SecretsError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(id)
            .set_version_stage(stage.map(str::to_owned))
            .send()
            .await
            .map_err(|e| SecretsError::Fetch {
                id: id.to_owned(),
                source: e.into_service_error().into(),
            })?;
        let created = output.created_date.map(|date| date.secs());
        output
            .secret_string
            .filter(|s| !s.is_empty())
            .map(|value| (value, created))
            .ok_or_else(|| SecretsError::NotAString { id: id.to_owned() })
    }

    /// The HS256 key before the last rotation; none before the first.
    async fn get_previous(&self, id: &str) -> Result<Option<String>, SecretsError> {
        match self.get(id, Some(PREVIOUS)).await {
            Ok(value) => Ok(Some(value)),
            Err(SecretsError::Fetch { source, .. })
                if source
                    .downcast_ref::<aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError>()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }
}

/// A secret the batch answered neither a value nor an error for.
fn missing(id: &str) -> SecretsError {
    SecretsError::Fetch {
        id: id.to_owned(),
        source: "not in BatchGetSecretValue's answer".into(),
    }
}

/// How long the JWKS URL may take to answer.
const JWKS_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest JWKS document read.
const JWKS_MAX_BYTES: usize = 64 * 1024;

/// GETs the identity service's JWKS (`https://`, or `http://` for a local fake).
async fn fetch_jwks(url: &str) -> Result<String, SecretsError> {
    use http_body_util::{BodyExt, Empty, Limited};
    let failed = |reason: String| SecretsError::Jwks {
        url: url.to_owned(),
        reason,
    };
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| failed(e.to_string()))?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Empty<bytes::Bytes>>(connector);
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| failed(e.to_string()))?;
    let exchange = async {
        let response = client.get(uri).await.map_err(|e| failed(e.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("answered {}", response.status())));
        }
        let body = Limited::new(response.into_body(), JWKS_MAX_BYTES)
            .collect()
            .await
            .map_err(|e| failed(e.to_string()))?
            .to_bytes();
        String::from_utf8(body.to_vec()).map_err(|e| failed(e.to_string()))
    };
    tokio::time::timeout(JWKS_TIMEOUT, exchange)
        .await
        .map_err(|_| failed(format!("no answer within {JWKS_TIMEOUT:?}")))?
}

/// `SECRETS_REFRESH_SECONDS` (at least 1 s).
pub fn refresh_interval() -> Duration {
    std::env::var("SECRETS_REFRESH_SECONDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(DEFAULT_REFRESH, |s| Duration::from_secs(s.max(1)))
}

/// Whether the secrets are fetched in the init phase (the default: Lambda runs init at full
/// CPU, so the TLS handshake costs least there) or on the first request
/// (`SECRETS_FETCH=first-request`: a shorter init, a slower first request). BENCHMARKS.md
/// measures both.
pub fn fetch_at_init() -> bool {
    std::env::var("SECRETS_FETCH").map_or(true, |v| v != "first-request")
}
