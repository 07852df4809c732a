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

/// The JSON lines of a deployed function, written to `writer`: each event flattened, with
/// every span it is in — lambda_runtime's ("Lambda runtime invoke": Lambda's `requestId`,
/// the X-Ray `xrayTraceId`) and ours ("request": `request_ref`, `route`, `programme`,
/// `cold_start`) — so any line leads to the access log and to the trace.
pub fn json_layer<S, W>(
    writer: W,
) -> tracing_subscriber::fmt::Layer<
    S,
    tracing_subscriber::fmt::format::JsonFields,
    tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Json>,
    W,
>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .with_writer(writer)
        .with_target(false)
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
        let spans = &line["spans"];
        assert_eq!(
            spans[0]["requestId"], "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
            "{text}"
        );
        assert_eq!(
            spans[0]["xrayTraceId"],
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700"
        );
        assert_eq!(spans[1]["request_ref"], "0a1b2c");
        assert_eq!(spans[1]["route"], "verify_sms_otp");
        assert_eq!(spans[1]["programme"], "acme");
        assert_eq!(spans[1]["cold_start"], true);
        assert_eq!(line["attempts"], 2);
        assert_eq!(line["message"], "SMS factor verified");
    }

    #[test]
    fn stars_codes_and_numbers() {
        assert_eq!(redact_digits("code 123456 sent"), "code ****** sent");
        assert_eq!(redact_digits("to +447700900123."), "to +*********123.");
        assert_eq!(redact_digits("after 12345 ms"), "after 12345 ms");
    }
}
