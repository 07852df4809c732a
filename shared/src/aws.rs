//! AWS SDK configuration shared by the DynamoDB and SNS adapters, loaded once per cold start.
//!
//! Timeouts are bounded so a stuck dependency turns into a 503 well inside the function's
//! timeout: 1 s to connect, 2 s per attempt, 3 attempts (standard retry mode, which backs
//! off on throttling), 5 s for the whole operation.

use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};

use aws_config::{retry::RetryConfig, timeout::TimeoutConfig, BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
pub const MAX_ATTEMPTS: u32 = 3;
/// A request's budget for its work, under the functions' 10 s timeout. A request makes
/// several calls in a row, each allowed `OPERATION_TIMEOUT`: past this budget the work is cut
/// and answered 503 with `Retry-After` (a killed function would give the caller a 502 and
/// log nothing), and its idempotency claim is dropped so that the retry runs.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(7);
/// After the work, what keeping its answer for replay (or dropping the claim) may take: not
/// cut by `REQUEST_DEADLINE`, since an answer whose SMS has gone out must not become a 503.
/// Deadline and budget together stay under the 10 s function timeout.
pub const RECORDING_BUDGET: Duration = Duration::from_millis(1_500);

/// The SDK configuration from the environment (region, credentials), with our timeouts.
/// With an `endpoint` (a local DynamoDB/SNS-compatible server), a region and static
/// credentials are filled in when the environment has none, so no AWS account is needed.
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    if let Some(config) = from_environment(endpoint) {
        return config;
    }
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(timeouts())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            loader = loader.region(Region::new("us-east-1"));
        }
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
            && std::env::var_os("AWS_PROFILE").is_none()
        {
            loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local",
                "local",
                None,
                None,
                "local-endpoint",
            ));
        }
    }
    loader.load().await
}

/// The one HTTPS client every SDK client of the process shares. Left to the SDK, each service
/// client builds an HTTPS client of its own and, with it, a trust store (the root
/// certificates parsed) twice: once when the SDK client is built (its "validation", a
/// connector thrown away) and once for its first connection. Shared, the store is built once,
/// for the first connection; the client keeps one pool per host, so each service still has
/// its own connections. The same client as the SDK's default: rustls on aws-lc, the proxy
/// settings from the environment.
fn https_client() -> SharedHttpClient {
    static CLIENT: LazyLock<SharedHttpClient> = LazyLock::new(|| {
        use aws_smithy_http_client::{proxy::ProxyConfig, tls, Builder, ConnectorBuilder};
        let client = Builder::new().build_with_connector_fn(|settings, components| {
            #[cfg(test)]
            tests::CONNECTORS_BUILT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ));
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        });
        SharedHttpClient::new(WithoutValidation(client))
    });
    CLIENT.clone()
}

/// The shared client without the check the SDK runs as each service client is built, which
/// builds a connector (a trust store included) only to drop it. What it would catch, an
/// unusable trust store, fails the first connection instead, at init.
#[derive(Debug)]
struct WithoutValidation(SharedHttpClient);

impl HttpClient for WithoutValidation {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        #[cfg(test)]
        tests::CONNECTORS_ASKED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The cold-start fast path: in Lambda the region and the credentials are environment
/// variables, so the config is built from them directly instead of by the default loader,
/// which also reads the shared config and credentials files for a dozen settings (measured:
/// most of a function's init time; see BENCHMARKS.md).
fn from_environment(endpoint: Option<&str>) -> Option<SdkConfig> {
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .ok()?;
    std::env::var_os("AWS_ACCESS_KEY_ID")?;
    std::env::var_os("AWS_SECRET_ACCESS_KEY")?;
    let credentials = aws_config::environment::EnvironmentVariableCredentialsProvider::new();
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .http_client(https_client())
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            credentials,
        ))
        .timeout_config(timeouts())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    Some(builder.build())
}

/// An SDK client built on first use, so each function pays only for the clients it actually
/// calls, and only when it calls them.
pub type Lazy<C> = Arc<LazyLock<C, Box<dyn FnOnce() -> C + Send>>>;

pub fn lazy<C: Send + Sync + 'static>(make: impl FnOnce() -> C + Send + 'static) -> Lazy<C> {
    Arc::new(LazyLock::new(Box::new(make)))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Connectors built (each with its trust store and connection pools), and requests that
    /// asked the shared client for one.
    pub(super) static CONNECTORS_BUILT: AtomicUsize = AtomicUsize::new(0);
    pub(super) static CONNECTORS_ASKED: AtomicUsize = AtomicUsize::new(0);

    /// A local endpoint that answers every request 400 and counts its connections.
    async fn endpoint() -> (String, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut connection, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = [0u8; 16 * 1024];
                    while let Ok(n) = connection.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        let answer = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
                        if connection.write_all(answer.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (endpoint, accepted)
    }

    /// Two services at two hosts: the second service's client builds no connector of its own
    /// (no second trust store), and each host still gets its own connection.
    #[tokio::test]
    async fn every_service_shares_one_https_client_and_keeps_its_own_connections() {
        let (dynamodb_at, dynamodb_connections) = endpoint().await;
        let (sns_at, sns_connections) = endpoint().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config(Some(&dynamodb_at)).await);
        assert!(dynamodb.get_item().table_name("t").send().await.is_err());
        let built = CONNECTORS_BUILT.load(Ordering::SeqCst);
        assert!(built >= 1);
        let asked = CONNECTORS_ASKED.load(Ordering::SeqCst);
        let sns = aws_sdk_sns::Client::new(&sdk_config(Some(&sns_at)).await);
        assert!(sns.get_sms_attributes().send().await.is_err());
        assert!(CONNECTORS_ASKED.load(Ordering::SeqCst) > asked);
        assert_eq!(CONNECTORS_BUILT.load(Ordering::SeqCst), built);
        assert_eq!(dynamodb_connections.load(Ordering::SeqCst), 1);
        assert_eq!(sns_connections.load(Ordering::SeqCst), 1);
    }
}
