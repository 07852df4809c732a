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
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr)
                    .with_target(false),
            )
            .try_init()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_codes_and_numbers() {
        assert_eq!(redact_digits("code 123456 sent"), "code ****** sent");
        assert_eq!(redact_digits("to +447700900123."), "to +*********123.");
        assert_eq!(redact_digits("after 12345 ms"), "after 12345 ms");
    }
}
