//! The Twilio Authy push provider, over HTTPS (rustls) with a bounded timeout.
//!
//! - register: `POST /protected/json/users/new` (`user[email]`, `user[cellphone]`,
//!   `user[country_code]`, `send_install_link_via_sms=false`) → `user.id`;
//! - push an enrolment approval request: `POST /onetouch/json/users/{id}/approval_requests`
//!   (`message`, `details[...]`, `seconds_to_expire`) → `approval_request.uuid`;
//! - forget a user on unlink: `POST /protected/json/users/{id}/remove`.
//!
//! Every call carries `X-Authy-API-Key`. Authy requires an email per user and this API has
//! none: a stable placeholder derived from the number is sent (`<hash>@users.invalid`).

use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::digest;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use serde_json::Value;

use super::{Approval, PushError, PushProvider};
use crate::domain::{hex::hex, phone::PhoneNumber};

/// How long one Authy call may take before the request answers 503.
pub const AUTHY_TIMEOUT: Duration = Duration::from_secs(3);

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub struct AuthyPushProvider {
    /// Built on first use: loading the root certificates costs milliseconds that functions
    /// which never call Authy should not pay at cold start.
    client: std::sync::OnceLock<Option<HttpsClient>>,
    base_url: String,
    api_key: String,
    timeout: Duration,
}

fn failure(what: impl Into<String>) -> PushError {
    PushError {
        source: what.into().into(),
    }
}

fn form_encode(pairs: &[(&str, String)]) -> String {
    let encode = |text: &str| {
        let mut out = String::new();
        for byte in text.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    out.push(char::from(byte))
                }
                _ => out.push_str(&format!("%{byte:02X}")),
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl AuthyPushProvider {
    /// `base_url` is `https://api.authy.com` in production (plain `http://` is accepted for
    /// local fakes).
    pub fn new(
        base_url: impl Into<String>,
        api_key: impl Into<String>,
        timeout: Duration,
    ) -> Result<Self, PushError> {
        Ok(Self {
            client: std::sync::OnceLock::new(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key: api_key.into(),
            timeout,
        })
    }

    fn client(&self) -> Result<&HttpsClient, PushError> {
        self.client
            .get_or_init(|| {
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_native_roots()
                    .map_err(|e| tracing::error!(error = %e, "no root certificates for Authy"))
                    .ok()?
                    .https_or_http()
                    .enable_http1()
                    .build();
                Some(Client::builder(TokioExecutor::new()).build(connector))
            })
            .as_ref()
            .ok_or_else(|| failure("no TLS root certificates to reach Authy"))
    }

    async fn post(&self, path: &str, form: &[(&str, String)]) -> Result<Value, PushError> {
        let request = hyper::Request::post(format!("{}{path}", self.base_url))
            .header("X-Authy-API-Key", &self.api_key)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(Full::new(Bytes::from(form_encode(form))))
            .map_err(|e| PushError { source: e.into() })?;
        let exchange = async {
            let response = self
                .client()?
                .request(request)
                .await
                .map_err(|e| PushError { source: e.into() })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| PushError { source: e.into() })?
                .to_bytes();
            Ok::<_, PushError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                failure(format!(
                    "Authy did not answer {path} within {:?}",
                    self.timeout
                ))
            })??;
        // The body of an error may echo what was sent; only the status is reported.
        if !status.is_success() {
            return Err(failure(format!(
                "Authy answered {path} with HTTP {}",
                status.as_u16()
            )));
        }
        let value: Value = serde_json::from_slice(&body)
            .map_err(|_| failure(format!("Authy's answer to {path} is not JSON")))?;
        if value.get("success") == Some(&Value::Bool(false)) {
            return Err(failure(format!("Authy refused {path}")));
        }
        Ok(value)
    }
}

#[async_trait]
impl PushProvider for AuthyPushProvider {
    async fn register_user(&self, phone: &PhoneNumber) -> Result<String, PushError> {
        let digest = digest::digest(&digest::SHA256, phone.expose_e164().as_bytes());
        let email = format!(
            "{}@users.invalid",
            hex(digest.as_ref().get(..10).unwrap_or_default())
        );
        let answer = self
            .post(
                "/protected/json/users/new",
                &[
                    ("user[email]", email),
                    ("user[cellphone]", phone.national_number().to_owned()),
                    ("user[country_code]", phone.country_code().to_owned()),
                    // Authy would otherwise text the number its own app's install link: an
                    // SMS nobody limits, to any number a token names.
                    ("send_install_link_via_sms", "false".to_owned()),
                ],
            )
            .await?;
        match answer.get("user").and_then(|user| user.get("id")) {
            Some(Value::Number(id)) => Ok(id.to_string()),
            Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
            _ => Err(failure("Authy's new user has no id")),
        }
    }

    async fn request_approval(
        &self,
        provider_user_id: &str,
        approval: &Approval,
    ) -> Result<String, PushError> {
        let path = format!("/onetouch/json/users/{provider_user_id}/approval_requests");
        let answer = self
            .post(
                &path,
                &[
                    ("message", approval.message.clone()),
                    ("details[Action]", approval.action.clone()),
                    ("seconds_to_expire", approval.seconds_to_expire.to_string()),
                ],
            )
            .await?;
        answer
            .get("approval_request")
            .and_then(|request| request.get("uuid"))
            .and_then(Value::as_str)
            .filter(|uuid| !uuid.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| failure("Authy's approval request has no uuid"))
    }

    async fn forget_user(&self, provider_user_id: &str) -> Result<(), PushError> {
        self.post(
            &format!("/protected/json/users/{provider_user_id}/remove"),
            &[],
        )
        .await?;
        Ok(())
    }
}
