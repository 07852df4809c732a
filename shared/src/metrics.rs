//! What the service counts, as CloudWatch Embedded Metric Format (EMF): one JSON line per
//! event on stdout, which CloudWatch Logs turns into metrics. No API call, no latency, no
//! permission beyond writing logs.
//!
//! Dimensions are kept bounded: programme ids (created by the operator), calling codes (at
//! most a few hundred), route names, limit kinds, results and status codes, all fixed sets.
//! Only `SmsSent` has two (programme and country); no user, phone or request id is ever one.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex,
};

/// A counted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// An SMS SNS accepted (`programme`, `country`).
    SmsSent,
    /// An SMS refused by a send limit (`programme`, `limit`).
    SmsRefused,
    /// A code compared with a stored hash (`programme`, `result`: right or wrong).
    CodesCompared,
    /// A wrong code that ended its challenge (`programme`).
    ChallengeLimitReached,
    /// A kept answer returned again for an `idempotency-ref` (`route`).
    Replays,
    /// A push sent to a device (Authy, or SNS mobile push for BIOMETRIC): enrolment, step-up
    /// or payment (`programme`).
    PushRequests,
    /// An Authy callback, by the status it was answered (`status`).
    Callbacks,
    /// A 503: a dependency (DynamoDB, SNS, Authy, KMS) failed or was too slow (`route`).
    DependencyFailures,
    /// The first request of an environment (`route`).
    ColdStarts,
    /// A secret (or the JWKS) a function could not refresh (`route`).
    SecretsRefreshFailures,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::SmsSent => "SmsSent",
            Metric::SmsRefused => "SmsRefused",
            Metric::CodesCompared => "CodesCompared",
            Metric::ChallengeLimitReached => "ChallengeLimitReached",
            Metric::Replays => "Replays",
            Metric::PushRequests => "PushRequests",
            Metric::Callbacks => "Callbacks",
            Metric::DependencyFailures => "DependencyFailures",
            Metric::ColdStarts => "ColdStarts",
            Metric::SecretsRefreshFailures => "SecretsRefreshFailures",
        }
    }
}

/// One counted event as the tests read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub metric: Metric,
    pub dimensions: Vec<(&'static str, String)>,
}

enum Sink {
    /// Counted nowhere (the local server, the benchmarks' handler runs).
    Nowhere,
    /// EMF lines on stdout under this namespace (a deployed function).
    Emf(String),
    /// Kept in memory (tests).
    Recorded(Mutex<Vec<Counted>>),
}

/// The service's counters.
pub struct Metrics {
    /// Verification codes actually compared with a stored hash (read by tests and the bench).
    pub codes_compared: AtomicU64,
    sink: Sink,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            codes_compared: AtomicU64::new(0),
            sink: Sink::Nowhere,
        }
    }
}

impl Metrics {
    /// EMF lines on stdout under `namespace`.
    pub fn emf(namespace: impl Into<String>) -> Self {
        Self {
            sink: Sink::Emf(namespace.into()),
            ..Self::default()
        }
    }

    /// Every event kept, for `counted`.
    pub fn recording() -> Self {
        Self {
            sink: Sink::Recorded(Mutex::new(Vec::new())),
            ..Self::default()
        }
    }

    pub fn codes_compared(&self) -> u64 {
        self.codes_compared.load(Ordering::SeqCst)
    }

    /// Counts one `metric` with its dimensions, at `now` (epoch seconds).
    pub fn count(&self, metric: Metric, dimensions: &[(&'static str, &str)], now: i64) {
        match &self.sink {
            Sink::Nowhere => {}
            Sink::Emf(namespace) => println!("{}", emf_line(namespace, metric, dimensions, now)),
            Sink::Recorded(events) => {
                events
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Counted {
                        metric,
                        dimensions: dimensions
                            .iter()
                            .map(|(k, v)| (*k, (*v).to_owned()))
                            .collect(),
                    })
            }
        }
    }

    /// What was counted so far (a recording sink only).
    pub fn counted(&self) -> Vec<Counted> {
        match &self.sink {
            Sink::Recorded(events) => events.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            _ => Vec::new(),
        }
    }
}

/// One EMF line: the metric (a count of 1) with its dimensions as one dimension set.
pub fn emf_line(
    namespace: &str,
    metric: Metric,
    dimensions: &[(&'static str, &str)],
    now: i64,
) -> String {
    let mut line = serde_json::Map::new();
    let names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    // Lambda's log-level filter reads `level` (a line without one is INFO): a metric line is
    // stamped with the function's own application log level, so raising it to WARN keeps
    // the metrics.
    line.insert("level".into(), serde_json::Value::from(emf_level()));
    line.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": now.saturating_mul(1000),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [names],
                "Metrics": [{"Name": metric.name(), "Unit": "Count"}],
            }],
        }),
    );
    for (name, value) in dimensions {
        line.insert(
            (*name).into(),
            serde_json::Value::String((*value).to_owned()),
        );
    }
    line.insert(metric.name().into(), serde_json::Value::from(1));
    serde_json::Value::Object(line).to_string()
}

/// The level metric lines carry: the application log level Lambda filters the function's
/// logs at (`AWS_LAMBDA_LOG_LEVEL`, set from the template's `ApplicationLogLevel`), so they
/// always pass it; `INFO` where none is set.
fn emf_level() -> &'static str {
    static LEVEL: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    LEVEL.get_or_init(|| level_for(std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref()))
}

fn level_for(configured: Option<&str>) -> &'static str {
    const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    configured
        .and_then(|wanted| {
            LEVELS
                .into_iter()
                .find(|l| l.eq_ignore_ascii_case(wanted.trim()))
        })
        .unwrap_or("INFO")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines_pass_the_function_s_log_level_filter() {
        assert_eq!(level_for(Some("WARN")), "WARN");
        assert_eq!(level_for(Some("error")), "ERROR");
        assert_eq!(level_for(None), "INFO");
        assert_eq!(level_for(Some("loud")), "INFO");
        let line = emf_line("ns", Metric::ColdStarts, &[], 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(v["level"], emf_level());
    }

    #[test]
    fn an_emf_line_declares_its_metric_and_dimensions_and_carries_their_values() {
        let line = emf_line(
            "additional-factors/prod",
            Metric::SmsSent,
            &[("programme", "acme"), ("country", "44")],
            1_796_000_000,
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let declared = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_796_000_000_000i64);
        assert_eq!(declared["Namespace"], "additional-factors/prod");
        assert_eq!(
            declared["Dimensions"],
            serde_json::json!([["programme", "country"]])
        );
        assert_eq!(
            declared["Metrics"],
            serde_json::json!([{"Name": "SmsSent", "Unit": "Count"}])
        );
        // Every declared name is a member of the root with its value.
        assert_eq!(v["programme"], "acme");
        assert_eq!(v["country"], "44");
        assert_eq!(v["SmsSent"], 1);
        assert!(!line.contains('\n'));
    }

    #[test]
    fn a_metric_without_dimensions_has_one_empty_dimension_set() {
        let line = emf_line("ns", Metric::ColdStarts, &[], 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([[]])
        );
    }
}
