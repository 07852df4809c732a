//! A programme (tenant) and its settings. Unset settings take the contract's defaults.

use serde::{Deserialize, Serialize};

use super::{challenge::DEFAULT_WRONG_CODE_LIMIT, channel::Channel, limits::SendLimits};

pub const DEFAULT_SMS_TEMPLATE: &str =
    "{code} is your {programme} verification code. It expires in 5 minutes.";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Programme {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Fixed code `123456`, no SMS sent, no push provider called.
    #[serde(default)]
    pub sandbox: bool,
    /// A disabled programme's api key is refused (401).
    #[serde(default)]
    pub disabled: bool,
    #[serde(default = "all_channels")]
    pub enabled_channels: Vec<Channel>,
    /// Wrong codes a challenge survives (1–10).
    #[serde(
        default = "default_wrong_code_limit",
        alias = "maxWrongCodes",
        alias = "maxVerificationAttempts"
    )]
    pub wrong_code_limit: u32,
    #[serde(default)]
    pub send_limits: SendLimits,
    /// Country calling codes (`"44"`, `"+44"` also read) allowed for SMS and push; empty: all.
    #[serde(default, alias = "allowedCountries")]
    pub allowed_country_codes: Vec<String>,
    #[serde(default)]
    pub sms_sender_id: Option<String>,
    /// The SMS text; `{code}` is replaced by the code, `{programme}` by the programme's name.
    #[serde(default = "default_template", alias = "smsMessageTemplate")]
    pub sms_template: String,
}

fn all_channels() -> Vec<Channel> {
    Channel::ALL.to_vec()
}

fn default_wrong_code_limit() -> u32 {
    DEFAULT_WRONG_CODE_LIMIT
}

fn default_template() -> String {
    DEFAULT_SMS_TEMPLATE.to_owned()
}

/// Why a programme's settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgrammeError {
    #[error("programme id must be 1-128 characters of letters, digits, '-' or '_'")]
    Id,
    #[error("wrongCodeLimit must be between 1 and 10")]
    WrongCodeLimit,
    #[error("smsTemplate must contain {{code}}")]
    Template,
}

impl Programme {
    /// A programme with every setting at its default.
    pub fn new(id: impl Into<String>, sandbox: bool) -> Self {
        Self {
            id: id.into(),
            name: String::new(),
            sandbox,
            disabled: false,
            enabled_channels: all_channels(),
            wrong_code_limit: DEFAULT_WRONG_CODE_LIMIT,
            send_limits: SendLimits::default(),
            allowed_country_codes: Vec::new(),
            sms_sender_id: None,
            sms_template: default_template(),
        }
    }

    pub fn validate(&self) -> Result<(), ProgrammeError> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 128
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(ProgrammeError::Id);
        }
        if !(1..=10).contains(&self.wrong_code_limit) {
            return Err(ProgrammeError::WrongCodeLimit);
        }
        if !self.sms_template.contains("{code}") {
            return Err(ProgrammeError::Template);
        }
        Ok(())
    }

    pub fn channel_enabled(&self, channel: Channel) -> bool {
        self.enabled_channels.contains(&channel)
    }

    pub fn country_allowed(&self, country_code: &str) -> bool {
        self.allowed_country_codes.is_empty()
            || self
                .allowed_country_codes
                .iter()
                .any(|c| c.trim_start_matches('+') == country_code)
    }

    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }

    pub fn sms_text(&self, code: &str) -> String {
        self.sms_template
            .replace("{programme}", self.display_name())
            .replace("{code}", code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_to_the_contract() {
        let p: Result<Programme, _> = serde_json::from_str(r#"{"id": "p1"}"#);
        assert_eq!(p.ok(), Some(Programme::new("p1", false)));
    }

    #[test]
    fn reads_camel_case_settings() {
        let p: Programme = serde_json::from_str(
            r#"{"id": "p1", "sandbox": true, "enabledChannels": ["SMS"], "wrongCodeLimit": 3,
                "sendLimits": {"perUserPerHour": 2}, "allowedCountryCodes": ["+44", "33"],
                "smsSenderId": "ACME", "smsTemplate": "Code {code}"}"#,
        )
        .unwrap_or_else(|_| Programme::new("bad", false));
        assert_eq!(p.wrong_code_limit, 3);
        assert_eq!(p.send_limits.per_user_per_hour, 2);
        assert_eq!(p.send_limits.per_user_per_day, 20);
        assert!(p.country_allowed("44") && p.country_allowed("33") && !p.country_allowed("1"));
        assert!(!p.channel_enabled(Channel::Authy));
        assert_eq!(p.sms_text("123456"), "Code 123456");
        assert!(p.validate().is_ok());
    }

    #[test]
    fn refuses_out_of_range_settings() {
        let mut p = Programme::new("p1", false);
        p.wrong_code_limit = 11;
        assert_eq!(p.validate(), Err(ProgrammeError::WrongCodeLimit));
        p.wrong_code_limit = 0;
        assert_eq!(p.validate(), Err(ProgrammeError::WrongCodeLimit));
        p.wrong_code_limit = 1;
        p.sms_template = "no code".into();
        assert_eq!(p.validate(), Err(ProgrammeError::Template));
        assert_eq!(
            Programme::new("a b", false).validate(),
            Err(ProgrammeError::Id)
        );
    }
}
