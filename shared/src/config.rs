//! Typed configuration, read once from the environment; a bad value fails with its name.

use crate::auth::{KeyError, TokenVerifier};

/// Where a function runs: in Lambda every secret must be given; locally, development
/// defaults fill the gaps (and the local server prints them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Lambda,
    Local,
}

pub const LOCAL_JWT_SECRET: &str = "local-development-secret-do-not-use-in-production";
pub const LOCAL_JWT_ISSUER: &str = "https://identity.local";
pub const LOCAL_JWT_AUDIENCE: &str = "additional-factors";
/// The `iss` of payment proofs when `PROOF_ISSUER` is not set (local only).
pub use crate::proof::LOCAL_PROOF_ISSUER;

/// The local default HMAC key: stable, so state kept in a local DynamoDB survives a restart.
pub const LOCAL_OTP_SECRET: &str = "local-otp-hmac-secret-do-not-use-in-production";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("token keys: {0}")]
    Keys(#[from] KeyError),
}

/// The token settings.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub hs256_secret: Option<String>,
    /// The HS256 key before a rotation: still verifies tokens (`JWT_HS256_PREVIOUS_SECRET`,
    /// or the secret's `AWSPREVIOUS` version).
    pub hs256_previous: Option<String>,
    /// When the current HS256 key replaced the previous one (unix seconds;
    /// `JWT_HS256_ROTATED_AT`, or the current version's `CreatedDate`): the previous key
    /// verifies only tokens issued before it, for 24 hours after it.
    pub hs256_rotated_at: Option<i64>,
    /// A JWKS document of the identity service's public keys (`JWT_JWKS_FILE`, or fetched
    /// from `JWT_JWKS_URL`).
    pub jwks: Option<String>,
    /// (`alg`, PEM) of a public key.
    pub public_key: Option<(String, String)>,
    pub issuer: String,
    pub audience: String,
    /// The claim holding the audience (`JWT_AUDIENCE_CLAIM`: `aud`, or `client_id` for
    /// Amazon Cognito's access tokens).
    pub audience_claim: crate::auth::AudienceClaim,
}

impl TokenConfig {
    pub fn verifier(&self) -> Result<TokenVerifier, ConfigError> {
        let mut verifier = TokenVerifier::refusing(self.issuer.clone(), self.audience.clone());
        if self.hs256_secret.is_some() || self.public_key.is_some() {
            verifier = TokenVerifier::new(
                self.hs256_secret.as_deref().map(str::as_bytes),
                self.public_key
                    .as_ref()
                    .map(|(alg, pem)| (alg.as_str(), pem.as_str())),
                self.issuer.clone(),
                self.audience.clone(),
            )?;
        }
        if let Some(previous) = &self.hs256_previous {
            let rotated_at = self
                .hs256_rotated_at
                .ok_or(ConfigError::Missing("JWT_HS256_ROTATED_AT"))?;
            verifier = verifier.with_previous_hs256(previous.as_bytes(), rotated_at);
        }
        if let Some(jwks) = &self.jwks {
            verifier = verifier.with_jwks(jwks)?;
        }
        if !verifier.has_keys() {
            return Err(KeyError::None.into());
        }
        Ok(verifier.with_audience_claim(self.audience_claim))
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub tokens: TokenConfig,
    /// The HMAC key for codes and phone numbers (required in Lambda; a fixed default locally).
    pub otp_secret: String,
    /// DynamoDB table; none means the in-memory store.
    pub table_name: Option<String>,
    pub dynamodb_endpoint: Option<String>,
    pub sns_endpoint: Option<String>,
    /// Twilio Authy: API key, base URL and this deployment's public callback URL.
    pub authy: Option<AuthyConfig>,
    /// The SNS topic factor lifecycle events go to.
    pub events_topic_arn: Option<String>,
    /// The SNS platform application of each device platform the deployment supports
    /// (`APNS_PLATFORM_APPLICATION_ARN`, `APNS_SANDBOX_PLATFORM_APPLICATION_ARN`,
    /// `FCM_PLATFORM_APPLICATION_ARN`); `PUSH_OUTBOX` locally.
    pub platform_applications: std::collections::HashMap<crate::domain::device::Platform, String>,
    pub push_outbox: Option<std::path::PathBuf>,
    /// The deployment's default country allow-list and SMS budget.
    pub policy: crate::app::DeploymentPolicy,
    /// How payment proofs are signed.
    pub proof: ProofConfig,
    /// In Lambda: the secrets (and JWKS URL) fetched at run time (crate::secrets), and the
    /// Secrets Manager endpoint (`SECRETS_ENDPOINT`, for a local server).
    pub secret_ids: crate::secrets::SecretIds,
    pub secrets_endpoint: Option<String>,
}

/// Payment proofs: live programmes' by a KMS key (`PROOF_KMS_KEY_ID`, and
/// `PROOF_KMS_PREVIOUS_KEY_ID` after a rotation), sandbox programmes' by a KMS key of their
/// own (`SANDBOX_PROOF_KMS_KEY_ID`, `SANDBOX_PROOF_KMS_PREVIOUS_KEY_ID`) in AWS; local key
/// files (`PROOF_KEY_FILE`, `SANDBOX_PROOF_KEY_FILE`) for the local server; the `iss` of
/// every proof (`PROOF_ISSUER`).
#[derive(Debug, Clone)]
pub struct ProofConfig {
    pub kms: KmsKeys,
    pub sandbox_kms: KmsKeys,
    pub kms_endpoint: Option<String>,
    pub key_file: Option<std::path::PathBuf>,
    pub sandbox_key_file: Option<std::path::PathBuf>,
    pub issuer: String,
}

/// A KMS signing key and, after a rotation, the previous one (still published, never used).
#[derive(Debug, Clone, Default)]
pub struct KmsKeys {
    pub key_id: Option<String>,
    pub previous_key_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AuthyConfig {
    pub api_key: String,
    pub base_url: String,
    pub callback_url: String,
}

/// A JWKS URL a deployed function may fetch keys from: `https://`, or `http://` to this
/// machine's loopback (a local identity service under `sam local invoke` or a test).
pub fn jwks_url_allowed(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(host, _)| host);
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn required(name: &'static str, mode: Mode, local_default: &str) -> Result<String, ConfigError> {
    match (var(name), mode) {
        (Some(value), _) => Ok(value),
        (None, Mode::Local) => Ok(local_default.to_owned()),
        (None, Mode::Lambda) => Err(ConfigError::Missing(name)),
    }
}

impl Config {
    pub fn from_env(mode: Mode) -> Result<Self, ConfigError> {
        let public_key = match (var("JWT_PUBLIC_KEY_PEM"), var("JWT_PUBLIC_KEY_ALG")) {
            (Some(pem), Some(alg)) => Some((alg, pem)),
            (Some(_), None) => return Err(ConfigError::Missing("JWT_PUBLIC_KEY_ALG")),
            (None, _) => None,
        };
        let jwks = match var("JWT_JWKS_FILE") {
            Some(path) => {
                Some(
                    std::fs::read_to_string(&path).map_err(|e| ConfigError::Invalid {
                        name: "JWT_JWKS_FILE",
                        reason: format!("{path}: {e}"),
                    })?,
                )
            }
            None => None,
        };
        // In Lambda, a secret is named (`..._SECRET_ID`) and fetched at run time; a value
        // given in the environment wins (sam local invoke, tests).
        let id = |value: &'static str, id: &'static str| match mode {
            Mode::Lambda if var(value).is_none() => var(id),
            _ => None,
        };
        let secret_ids = crate::secrets::SecretIds {
            token: id("JWT_HS256_SECRET", "JWT_HS256_SECRET_ID"),
            otp: id("OTP_HMAC_SECRET", "OTP_HMAC_SECRET_ID"),
            authy: id("AUTHY_API_KEY", "AUTHY_API_KEY_SECRET_ID"),
            jwks_url: match (var("JWT_JWKS_URL"), mode) {
                (Some(url), Mode::Lambda) if !jwks_url_allowed(&url) => {
                    return Err(ConfigError::Invalid {
                        name: "JWT_JWKS_URL",
                        reason: "must be https (keys fetched in clear can be replaced on the way)"
                            .into(),
                    })
                }
                (url, _) => url,
            },
        };
        let hs256_secret = match (var("JWT_HS256_SECRET"), mode) {
            (Some(secret), _) => Some(secret),
            (None, Mode::Local) if public_key.is_none() && jwks.is_none() => {
                Some(LOCAL_JWT_SECRET.to_owned())
            }
            (None, _) => None,
        };
        let otp_secret = match (var("OTP_HMAC_SECRET"), mode) {
            (Some(secret), _) => secret,
            (None, Mode::Local) => LOCAL_OTP_SECRET.to_owned(),
            // Fetched (OTP_HMAC_SECRET_ID), or this function hashes nothing (lambda).
            (None, Mode::Lambda) => String::new(),
        };
        let authy_key =
            var("AUTHY_API_KEY").or_else(|| secret_ids.authy.as_ref().map(|_| String::new()));
        let config = Self {
            tokens: TokenConfig {
                hs256_secret,
                hs256_previous: var("JWT_HS256_PREVIOUS_SECRET"),
                hs256_rotated_at: match var("JWT_HS256_ROTATED_AT") {
                    None => None,
                    Some(text) => Some(text.parse::<i64>().map_err(|_| ConfigError::Invalid {
                        name: "JWT_HS256_ROTATED_AT",
                        reason: "must be unix seconds".into(),
                    })?),
                },
                jwks,
                public_key,
                issuer: required("JWT_ISSUER", mode, LOCAL_JWT_ISSUER)?,
                audience: required("JWT_AUDIENCE", mode, LOCAL_JWT_AUDIENCE)?,
                audience_claim: match var("JWT_AUDIENCE_CLAIM") {
                    None => crate::auth::AudienceClaim::Aud,
                    Some(raw) => crate::auth::AudienceClaim::parse(&raw).ok_or_else(|| {
                        ConfigError::Invalid {
                            name: "JWT_AUDIENCE_CLAIM",
                            reason: "must be aud or client_id".into(),
                        }
                    })?,
                },
            },
            otp_secret,
            table_name: var("TABLE_NAME"),
            // Ours first, then the AWS SDK's own service-specific and global variables.
            dynamodb_endpoint: var("DYNAMODB_ENDPOINT")
                .or_else(|| var("AWS_ENDPOINT_URL_DYNAMODB"))
                .or_else(|| var("AWS_ENDPOINT_URL")),
            sns_endpoint: var("SNS_ENDPOINT")
                .or_else(|| var("AWS_ENDPOINT_URL_SNS"))
                .or_else(|| var("AWS_ENDPOINT_URL")),
            authy: match authy_key {
                None => None,
                Some(api_key) => Some(AuthyConfig {
                    api_key,
                    base_url: var("AUTHY_BASE_URL")
                        .unwrap_or_else(|| "https://api.authy.com".into()),
                    callback_url: var("AUTHY_CALLBACK_URL")
                        .ok_or(ConfigError::Missing("AUTHY_CALLBACK_URL"))?,
                }),
            },
            events_topic_arn: var("EVENTS_TOPIC_ARN"),
            platform_applications: {
                use crate::domain::device::Platform;
                [
                    (Platform::Apns, "APNS_PLATFORM_APPLICATION_ARN"),
                    (
                        Platform::ApnsSandbox,
                        "APNS_SANDBOX_PLATFORM_APPLICATION_ARN",
                    ),
                    (Platform::Fcm, "FCM_PLATFORM_APPLICATION_ARN"),
                ]
                .into_iter()
                .filter_map(|(platform, name)| var(name).map(|arn| (platform, arn)))
                .collect()
            },
            push_outbox: var("PUSH_OUTBOX").map(std::path::PathBuf::from),
            policy: policy(mode)?,
            proof: ProofConfig {
                kms: KmsKeys {
                    key_id: var("PROOF_KMS_KEY_ID"),
                    previous_key_id: var("PROOF_KMS_PREVIOUS_KEY_ID"),
                },
                sandbox_kms: KmsKeys {
                    key_id: var("SANDBOX_PROOF_KMS_KEY_ID"),
                    previous_key_id: var("SANDBOX_PROOF_KMS_PREVIOUS_KEY_ID"),
                },
                kms_endpoint: var("KMS_ENDPOINT")
                    .or_else(|| var("AWS_ENDPOINT_URL_KMS"))
                    .or_else(|| var("AWS_ENDPOINT_URL")),
                key_file: var("PROOF_KEY_FILE").map(std::path::PathBuf::from),
                sandbox_key_file: var("SANDBOX_PROOF_KEY_FILE").map(std::path::PathBuf::from),
                issuer: var("PROOF_ISSUER").unwrap_or_else(|| LOCAL_PROOF_ISSUER.to_owned()),
            },
            secret_ids,
            secrets_endpoint: var("SECRETS_ENDPOINT")
                .or_else(|| var("AWS_ENDPOINT_URL_SECRETS_MANAGER"))
                .or_else(|| var("AWS_ENDPOINT_URL")),
        };
        if mode == Mode::Lambda {
            config.check_lengths()?;
        }
        Ok(config)
    }

    /// This configuration with the values fetched at run time in place of their ids.
    pub fn with_secrets(&self, values: &crate::secrets::SecretValues) -> Result<Self, ConfigError> {
        let mut config = self.clone();
        if let Some(token) = &values.token {
            config.tokens.hs256_secret = Some(token.clone());
        }
        if values.token_previous.is_some() {
            config.tokens.hs256_previous = values.token_previous.clone();
            config.tokens.hs256_rotated_at = values.token_rotated_at;
        }
        if let Some(jwks) = &values.jwks {
            config.tokens.jwks = Some(jwks.clone());
        }
        if let Some(otp) = &values.otp {
            config.otp_secret = otp.clone();
        }
        if let (Some(key), Some(authy)) = (&values.authy, &mut config.authy) {
            authy.api_key = key.clone();
        }
        config.check_lengths()?;
        Ok(config)
    }

    /// Lambda refuses short keys (the local server's development defaults are not used).
    fn check_lengths(&self) -> Result<(), ConfigError> {
        let short = |name: &'static str, value: Option<&str>| match value {
            Some(value) if value.len() < 32 => Err(ConfigError::Invalid {
                name,
                reason: "must be at least 32 bytes".into(),
            }),
            _ => Ok(()),
        };
        short("JWT_HS256_SECRET", self.tokens.hs256_secret.as_deref())?;
        short(
            "JWT_HS256_PREVIOUS_SECRET",
            self.tokens.hs256_previous.as_deref(),
        )?;
        short(
            "OTP_HMAC_SECRET",
            Some(self.otp_secret.as_str()).filter(|s| !s.is_empty()),
        )
    }
}

/// `DEFAULT_ALLOWED_COUNTRY_CODES` (`44,33` or `*`) and `SMS_BUDGET_PER_HOUR` / `_PER_DAY`.
/// Without the list, a function in Lambda lets live programmes that name no countries of
/// their own send nowhere (closed by default; the template always sets it); the local
/// server allows every country, as before.
fn policy(mode: Mode) -> Result<crate::app::DeploymentPolicy, ConfigError> {
    use crate::domain::{programme::Countries, send_limits::SmsBudget};
    let default_countries = match (var("DEFAULT_ALLOWED_COUNTRY_CODES"), mode) {
        (Some(text), _) => Countries::parse(&text).map_err(|reason| ConfigError::Invalid {
            name: "DEFAULT_ALLOWED_COUNTRY_CODES",
            reason,
        })?,
        (None, Mode::Local) => Countries::All,
        (None, Mode::Lambda) => Countries::Only(Vec::new()),
    };
    let number = |name: &'static str, default: u32| -> Result<u32, ConfigError> {
        var(name).map_or(Ok(default), |v| {
            v.parse().map_err(|_| ConfigError::Invalid {
                name,
                reason: "must be a whole number".into(),
            })
        })
    };
    let defaults = SmsBudget::default();
    Ok(crate::app::DeploymentPolicy {
        default_countries,
        sms_budget: SmsBudget {
            per_hour: number("SMS_BUDGET_PER_HOUR", defaults.per_hour)?,
            per_day: number("SMS_BUDGET_PER_DAY", defaults.per_day)?,
        },
    })
}

/// One entry of `PROGRAMMES_FILE`: `{"id", "apiKey", "sandbox", ...settings}`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProgrammeEntry {
    api_key: String,
    #[serde(flatten, with = "crate::store::dynamodb::settings::field")]
    programme: crate::domain::programme::Programme,
}

/// Reads a JSON array of programmes, each with its api key; every one is validated.
pub fn read_programmes_file(
    path: &std::path::Path,
) -> Result<Vec<(String, crate::domain::programme::Programme)>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: "PROGRAMMES_FILE",
        reason,
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    let entries: Vec<ProgrammeEntry> =
        serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    entries
        .into_iter()
        .map(|entry| {
            entry
                .programme
                .validate()
                .map_err(|e| invalid(format!("programme {:?}: {e}", entry.programme.id)))?;
            if entry.api_key.trim().is_empty() {
                return Err(invalid(format!(
                    "programme {:?}: apiKey is empty",
                    entry.programme.id
                )));
            }
            Ok((entry.api_key, entry.programme))
        })
        .collect()
}

/// The push provider a configuration asks for: Authy when `AUTHY_API_KEY` is set (with its
/// callback settings), otherwise one that refuses (live programmes get a 503).
pub fn push_provider(
    config: &Config,
) -> Result<
    (
        std::sync::Arc<dyn crate::push::PushProvider>,
        Option<crate::app::CallbackSignatureKey>,
    ),
    crate::push::PushError,
> {
    match &config.authy {
        Some(authy) => Ok((
            std::sync::Arc::new(crate::push::authy::AuthyPushProvider::new(
                authy.base_url.clone(),
                authy.api_key.clone(),
                crate::push::authy::AUTHY_TIMEOUT,
            )?),
            authy_signature_key(config),
        )),
        None => Ok((
            std::sync::Arc::new(crate::push::unconfigured::UnconfiguredPushProvider),
            None,
        )),
    }
}

/// How Authy's callbacks are checked, when Authy is configured (no client needed).
pub fn authy_signature_key(config: &Config) -> Option<crate::app::CallbackSignatureKey> {
    config
        .authy
        .as_ref()
        .map(|authy| crate::app::CallbackSignatureKey {
            api_key: authy.api_key.clone(),
            url: authy.callback_url.clone(),
        })
}

/// BIOMETRIC devices' pushes through SNS mobile push, on the platform applications the
/// configuration names (none: every platform unsupported).
pub fn device_push(
    config: &Config,
    sns: &crate::aws::Lazy<aws_sdk_sns::Client>,
) -> std::sync::Arc<dyn crate::push::device::DevicePush> {
    if config.platform_applications.is_empty() {
        return std::sync::Arc::new(crate::push::device::NoDevicePush);
    }
    std::sync::Arc::new(crate::push::device_sns::SnsDevicePush::new(
        sns.clone(),
        config.platform_applications.clone(),
    ))
}

/// Lifecycle events go to `EVENTS_TOPIC_ARN` when it is set, nowhere otherwise.
pub fn event_publisher(
    config: &Config,
    sns: &crate::aws::Lazy<aws_sdk_sns::Client>,
) -> std::sync::Arc<dyn crate::events::EventPublisher> {
    match &config.events_topic_arn {
        Some(arn) => std::sync::Arc::new(crate::events::SnsTopicEvents::with_lazy_client(
            sns.clone(),
            arn.clone(),
        )),
        None => std::sync::Arc::new(crate::events::NoEvents),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployed_jwks_url_is_https_or_loopback() {
        assert!(jwks_url_allowed(
            "https://id.example.com/.well-known/jwks.json"
        ));
        assert!(jwks_url_allowed("http://127.0.0.1:8080/jwks.json"));
        assert!(jwks_url_allowed("http://localhost/jwks.json"));
        assert!(!jwks_url_allowed("http://id.example.com/jwks.json"));
        assert!(!jwks_url_allowed("http://127.0.0.1.evil.example/jwks.json"));
        assert!(!jwks_url_allowed("http://localhost@evil.example/jwks.json"));
        assert!(!jwks_url_allowed("ftp://id.example.com/jwks.json"));
    }
}
