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

/// An SDK client built on first use. Building one constructs its HTTPS client and loads the
/// TLS root certificates (measured: most of a function's init time), so each function pays
/// only for the clients it actually calls, and only when it calls them.
pub type Lazy<C> = Arc<LazyLock<C, Box<dyn FnOnce() -> C + Send>>>;

pub fn lazy<C: Send + Sync + 'static>(make: impl FnOnce() -> C + Send + 'static) -> Lazy<C> {
    Arc::new(LazyLock::new(Box::new(make)))
}
