//! The local server's SMS sender: prints a masked line, and appends the real message to the
//! `SMS_OUTBOX` file (one JSON line `{"to": "+44...", "body": "..."}`) when one is set, so a
//! developer or a test can read the code without it ever reaching a log.

use std::{io::Write, path::PathBuf, sync::Mutex};

use async_trait::async_trait;

use super::{SmsError, SmsMessage, SmsSender};

pub struct ConsoleSmsSender {
    outbox: Option<Mutex<PathBuf>>,
}

impl ConsoleSmsSender {
    pub fn new(outbox: Option<PathBuf>) -> Self {
        Self {
            outbox: outbox.map(Mutex::new),
        }
    }
}

#[async_trait]
impl SmsSender for ConsoleSmsSender {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsError> {
        tracing::info!(to = %message.to, text = %message.masked_text(), "SMS delivered to the console");
        if let Some(outbox) = &self.outbox {
            let line = serde_json::json!({"to": message.to.expose_e164(), "body": message.text});
            let path = outbox.lock().unwrap_or_else(|p| p.into_inner());
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&*path)
                .map_err(SmsError::not_sent)?;
            writeln!(file, "{line}").map_err(SmsError::not_sent)?;
        }
        Ok(())
    }
}
