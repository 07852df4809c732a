//! Logging set-up, and the redaction every logged error goes through.
//!
//! Nothing the service writes itself contains a code, a token, an api key or a full phone
//! number; errors from dependencies might echo one (an SNS error naming the number), so
//! their text is redacted: every run of six or more digits is starred.

use std::fmt::Write;

/// The error and its sources, joined by `: `, with digit runs starred.
pub fn redacted_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    redact_digits(&text)
}

/// Stars every run of 6 or more digits (codes, phone numbers), keeping the last three of
/// longer runs so a phone number still reads as `+44*******123`.
pub fn redact_digits(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 6 {
            let keep = if run.len() > 8 { 3 } else { 0 };
            out.push_str(&"*".repeat(run.len() - keep));
            out.push_str(run.get(run.len() - keep..).unwrap_or_default());
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Installs the global subscriber: JSON lines in Lambda (or with `LOG_FORMAT=json`), plain
/// text otherwise; `RUST_LOG` filters (default `info`). Writes to stderr.
///
/// `RUST_LOG` takes levels and `target=level` pairs (`debug`, `info,additional_factors=debug`):
/// a `Targets` filter, not an `EnvFilter`, whose span and field matching needs the regex
/// engine (about 0.4 MB of every binary, and its start-up work).
pub fn init() {
    use tracing_subscriber::{filter::Targets, fmt, layer::SubscriberExt, util::SubscriberInitExt};
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let json = std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok()
        || std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json");
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry.with(json_layer(std::io::stderr)).try_init()
    } else {
        registry
            .with(
                fmt::layer()
                    .with_ansi(false)
                    .with_writer(std::io::stderr)
                    .with_target(false),
            )
            .try_init()
    };
}

/// The JSON lines of a deployed function, written to `writer`: one flat object per event, with
/// the keys AWS Lambda Powertools users query — `level`, `message`, `timestamp`, `service`,
/// `cold_start`, `function_name`, `function_request_id`, `xray_trace_id` — and ours
/// (`request_ref`, `route`, `programme`), taken from the spans the event is in (lambda_runtime's
/// "Lambda runtime invoke": `requestId`, `xrayTraceId`; ours, "request"), then the event's
/// own fields. So any line leads to the access log and to the trace.
pub fn json_layer<S, W>(
    writer: W,
) -> tracing_subscriber::fmt::Layer<S, tracing_subscriber::fmt::format::JsonFields, PowertoolsJson, W>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
        .event_format(PowertoolsJson::from_env())
        .with_writer(writer)
}

/// The line format of `json_layer`.
pub struct PowertoolsJson {
    service: String,
    function_name: Option<String>,
}

impl PowertoolsJson {
    /// `service` from `POWERTOOLS_SERVICE_NAME` (else `additional-factors`), `function_name`
    /// from Lambda's `AWS_LAMBDA_FUNCTION_NAME`.
    pub fn from_env() -> Self {
        Self {
            service: std::env::var("POWERTOOLS_SERVICE_NAME")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "additional-factors".into()),
            function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
        }
    }
}

/// The name a span field goes by at the top level of a line.
fn top_level_name(field: &str) -> &str {
    match field {
        "requestId" => "function_request_id",
        "xrayTraceId" => "xray_trace_id",
        other => other,
    }
}

/// An event's fields as JSON values (`message` among them).
struct EventFields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for EventFields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for PowertoolsJson
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use serde_json::Value;
        let mut line = serde_json::Map::new();
        line.insert(
            "level".into(),
            event.metadata().level().as_str().to_owned().into(),
        );
        line.insert("timestamp".into(), timestamp_now().into());
        line.insert("service".into(), self.service.clone().into());
        if let Some(name) = &self.function_name {
            line.insert("function_name".into(), name.clone().into());
        }
        // The spans, outermost first: a field an inner span sets wins.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<tracing_subscriber::fmt::FormattedFields<N>>()
                else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    for (name, value) in fields {
                        line.insert(top_level_name(&name).to_owned(), value);
                    }
                }
            }
        }
        event.record(&mut EventFields(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Now as RFC 3339 UTC with milliseconds (`2026-12-07T18:00:00.123Z`).
fn timestamp_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = crate::domain::device::rfc3339(now.as_secs() as i64);
    format!(
        "{}.{:03}Z",
        seconds.trim_end_matches('Z'),
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_carries_lambdas_request_id_trace_id_and_ours() {
        use tracing_subscriber::layer::SubscriberExt;
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry().with(json_layer(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            // The span lambda_runtime's TracingLayer opens for each invocation.
            let invoke = tracing::info_span!(
                "Lambda runtime invoke",
                requestId = "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
                xrayTraceId = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700"
            );
            let _invoke = invoke.enter();
            let request = tracing::info_span!(
                "request",
                request_ref = "0a1b2c",
                route = "verify_sms_otp",
                programme = tracing::field::Empty,
                cold_start = true,
            );
            let _request = request.enter();
            tracing::Span::current().record("programme", "acme");
            tracing::info!(attempts = 2u32, "SMS factor verified");
        });
        let bytes = buffer.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let text = String::from_utf8(bytes).unwrap_or_default();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_default();
        // Powertools' keys, at the top level.
        assert_eq!(
            line["function_request_id"], "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
            "{text}"
        );
        assert_eq!(
            line["xray_trace_id"],
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700"
        );
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["service"], "additional-factors");
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(line["request_ref"], "0a1b2c");
        assert_eq!(line["route"], "verify_sms_otp");
        assert_eq!(line["programme"], "acme");
        assert_eq!(line["cold_start"], true);
        assert_eq!(line["attempts"], 2);
        assert_eq!(line["message"], "SMS factor verified");
        assert!(line.get("spans").is_none() && line.get("requestId").is_none());
    }

    #[test]
    fn stars_codes_and_numbers() {
        assert_eq!(redact_digits("code 123456 sent"), "code ****** sent");
        assert_eq!(redact_digits("to +447700900123."), "to +*********123.");
        assert_eq!(redact_digits("after 12345 ms"), "after 12345 ms");
    }
}
