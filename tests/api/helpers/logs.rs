//! Log capture: every `TestApp` writes its requests' log lines to a buffer, and checks them
//! for leaks when dropped.

use std::sync::{Arc, Mutex};

use super::{app::TestApp, extract_code, OTHER_PHONE, PHONE};

#[derive(Clone, Default)]
pub(super) struct LogBuffer(pub(super) Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl TestApp {
    /// Writes one line to this app's captured log (to prove the leak check can fail).
    pub fn log_line(&self, text: &str) {
        tracing::dispatcher::with_default(&self.dispatch, || tracing::info!(text, "planted"));
    }

    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&self.logs.0.lock().unwrap()).into_owned()
    }

    /// Fails if any log line holds a secret, code or full phone number used by the test.
    pub fn assert_logs_clean(&self) {
        let logs = self.log_text();
        // Deduplicated: every secret is one scan of the whole log.
        let mut secrets: std::collections::BTreeSet<String> =
            self.secrets.lock().unwrap().iter().cloned().collect();
        for sent in self.sms.sent() {
            secrets.insert(sent.to.trim_start_matches('+').to_owned());
            secrets.extend(extract_code(&sent.text));
        }
        for phone in [PHONE, OTHER_PHONE] {
            secrets.insert(phone.trim_start_matches('+').to_owned());
        }
        // A code or phone number is a leak as a number of its own, not as digits inside a
        // longer one (a timestamp holds many six-digit runs), nor inside an id (request refs
        // and challenge ids are long hex runs: they may hold any six digits).
        let without_ids = strip_hex_runs(&logs);
        // A decimal (`190.123456ms`, an SDK's retry delay) is no code: a run of digits counts
        // unless a dot joins it to other digits.
        let numbers: std::collections::HashSet<&str> = without_ids
            .split(|c: char| !c.is_ascii_digit() && c != '.')
            .map(|token| token.trim_matches('.'))
            .filter(|token| !token.is_empty() && !token.contains('.'))
            .collect();
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            let leaked = if secret.bytes().all(|b| b.is_ascii_digit()) {
                numbers.contains(secret.as_str())
            } else {
                logs.contains(secret.as_str())
            };
            if leaked {
                // Where, with the secret starred: enough to find the line that leaked.
                let at = logs.find(secret.as_str()).unwrap_or(0);
                let line_start = logs[..at].rfind('\n').map_or(0, |i| i + 1);
                let line_end = logs[at..].find('\n').map_or(logs.len(), |i| at + i);
                let line = logs[line_start..line_end].replace(secret.as_str(), "<SECRET>");
                panic!("a log line holds a secret ({} chars): {line}", secret.len());
            }
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_logs_clean();
        }
    }
}

fn strip_hex_runs(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        if run.len() < 16 {
            out.push_str(&run);
        }
        run.clear();
        out.push(c);
    }
    if run.len() < 16 {
        out.push_str(&run);
    }
    out
}
