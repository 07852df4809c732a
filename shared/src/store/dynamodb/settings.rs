//! The programme settings document: the JSON a programme's items keep in the table, and the
//! JSON the operator writes (`factors-admin --settings`, the local server's
//! `PROGRAMMES_FILE`). camelCase; an unset setting takes the contract's default; older names
//! are still read (`maxWrongCodes`, `allowedCountries`, `smsMessageTemplate`).
//!
//! The domain's `Programme` has no serde shape of its own: this is the one, so a change to
//! the domain type cannot silently change what is stored.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::{
    challenge::DEFAULT_WRONG_CODE_LIMIT,
    channel::Channel,
    programme::{Programme, DEFAULT_SMS_TEMPLATE, DEFAULT_STEP_UP_MAX_AGE_SECS},
    send_limits::SendLimits,
    step_up::DEFAULT_STEP_UP_LIFETIME_SECS,
};

#[derive(Serialize, Deserialize)]
#[serde(remote = "Programme", rename_all = "camelCase")]
struct ProgrammeDocument {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    sandbox: bool,
    #[serde(default)]
    disabled: bool,
    #[serde(default = "all_channels", with = "channels")]
    enabled_channels: Vec<Channel>,
    #[serde(
        default = "default_wrong_code_limit",
        alias = "maxWrongCodes",
        alias = "maxVerificationAttempts"
    )]
    wrong_code_limit: u32,
    #[serde(default = "SendLimits::default", with = "SendLimitsDocument")]
    send_limits: SendLimits,
    #[serde(default, alias = "allowedCountries")]
    allowed_country_codes: Vec<String>,
    #[serde(default)]
    sms_sender_id: Option<String>,
    #[serde(default = "default_template", alias = "smsMessageTemplate")]
    sms_template: String,
    #[serde(default = "default_step_up_max_age")]
    step_up_max_age_seconds: u32,
    #[serde(default = "default_step_up_lifetime")]
    step_up_lifetime_seconds: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "SendLimits", rename_all = "camelCase", default)]
struct SendLimitsDocument {
    per_user_per_hour: u32,
    per_user_per_day: u32,
    per_number_per_day: u32,
    per_programme_per_day: u32,
    per_country_per_day: u32,
    per_country_per_day_overrides: std::collections::BTreeMap<String, u32>,
    push_per_user_per_hour: u32,
    push_per_number_per_day: u32,
}

/// Unset send limits take the contract's (`SendLimits::default`).
impl Default for SendLimitsDocument {
    fn default() -> Self {
        let SendLimits {
            per_user_per_hour,
            per_user_per_day,
            per_number_per_day,
            per_programme_per_day,
            per_country_per_day,
            per_country_per_day_overrides,
            push_per_user_per_hour,
            push_per_number_per_day,
        } = SendLimits::default();
        Self {
            per_user_per_hour,
            per_user_per_day,
            per_number_per_day,
            per_programme_per_day,
            per_country_per_day,
            per_country_per_day_overrides,
            push_per_user_per_hour,
            push_per_number_per_day,
        }
    }
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

fn default_step_up_max_age() -> u32 {
    DEFAULT_STEP_UP_MAX_AGE_SECS
}

fn default_step_up_lifetime() -> u32 {
    DEFAULT_STEP_UP_LIFETIME_SECS
}

/// Channels by their contract names (`"SMS"`, `"AUTHY"`, `"BIOMETRIC"`).
mod channels {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    use crate::domain::channel::Channel;

    pub fn serialize<S: Serializer>(channels: &[Channel], writer: S) -> Result<S::Ok, S::Error> {
        writer.collect_seq(channels.iter().map(|c| c.as_str()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(reader: D) -> Result<Vec<Channel>, D::Error> {
        Vec::<String>::deserialize(reader)?
            .iter()
            .map(|name| {
                Channel::parse_among(name, &Channel::ALL)
                    .ok_or_else(|| D::Error::custom(format!("unknown channel {name:?}")))
            })
            .collect()
    }
}

/// A programme's settings from their JSON document.
pub fn parse(json: &str) -> Result<Programme, serde_json::Error> {
    let mut reader = serde_json::Deserializer::from_str(json);
    let programme = ProgrammeDocument::deserialize(&mut reader)?;
    reader.end()?;
    Ok(programme)
}

/// A programme's settings as their JSON document.
pub fn to_json(programme: &Programme) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    ProgrammeDocument::serialize(programme, &mut serde_json::Serializer::new(&mut out))?;
    String::from_utf8(out).map_err(serde::ser::Error::custom)
}

/// A `Programme` field of another document (`#[serde(with = "settings::field")]`).
pub mod field {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(reader: D) -> Result<Programme, D::Error> {
        ProgrammeDocument::deserialize(reader)
    }

    pub fn serialize<S: Serializer>(programme: &Programme, writer: S) -> Result<S::Ok, S::Error> {
        ProgrammeDocument::serialize(programme, writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::programme::Countries;

    #[test]
    fn settings_default_to_the_contract() {
        assert_eq!(
            parse(r#"{"id": "p1"}"#).ok(),
            Some(Programme::new("p1", false))
        );
    }

    #[test]
    fn reads_camel_case_settings_and_older_names() {
        let p = parse(
            r#"{"id": "p1", "sandbox": true, "enabledChannels": ["SMS"], "wrongCodeLimit": 3,
                "sendLimits": {"perUserPerHour": 2}, "allowedCountryCodes": ["+44", "33"],
                "smsSenderId": "ACME", "smsTemplate": "Code {code}"}"#,
        )
        .unwrap();
        assert_eq!(p.wrong_code_limit, 3);
        assert_eq!(p.send_limits.per_user_per_hour, 2);
        assert_eq!(p.send_limits.per_user_per_day, 20);
        let all = Countries::All;
        assert!(
            p.country_allowed("44", &all)
                && p.country_allowed("33", &all)
                && !p.country_allowed("1", &all)
        );
        assert!(!p.channel_enabled(Channel::Authy));
        assert_eq!(p.sms_text("123456"), "Code 123456");
        assert!(p.validate().is_ok());
        let old =
            parse(r#"{"id": "p1", "maxWrongCodes": 4, "smsMessageTemplate": "{code}!"}"#).unwrap();
        assert_eq!((old.wrong_code_limit, old.sms_text("1")), (4, "1!".into()));
    }

    #[test]
    fn a_document_round_trips() {
        let mut p = Programme::new("p1", true);
        p.send_limits
            .per_country_per_day_overrides
            .insert("44".into(), 7);
        p.sms_sender_id = Some("ACME".into());
        let json = to_json(&p).unwrap();
        assert!(
            json.contains(r#""perCountryPerDayOverrides":{"44":7}"#),
            "{json}"
        );
        assert_eq!(parse(&json).unwrap(), p);
        assert!(parse(&format!("{json} trailing")).is_err());
        assert!(
            json.contains(r#""enabledChannels":["SMS","AUTHY","BIOMETRIC"]"#),
            "{json}"
        );
        assert!(parse(r#"{"id": "p1", "enabledChannels": ["SMS", "FAX"]}"#).is_err());
    }
}
