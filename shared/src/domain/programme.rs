//! A programme (tenant) and its settings. Unset settings take the contract's defaults.

use super::{challenge::DEFAULT_WRONG_CODE_LIMIT, channel::Channel, send_limits::SendLimits};

pub const DEFAULT_SMS_TEMPLATE: &str =
    "{code} is your {programme} verification code. It expires in 5 minutes.";

/// A programme's settings. Its JSON document (stored, and what the operator writes) is
/// `store::dynamodb::settings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Programme {
    pub id: String,
    pub name: String,
    /// Fixed code `123456`, no SMS sent, no push provider called.
    pub sandbox: bool,
    /// A disabled programme's api key is refused (401).
    pub disabled: bool,
    pub enabled_channels: Vec<Channel>,
    /// Wrong codes a challenge survives (1–10).
    pub wrong_code_limit: u32,
    pub send_limits: SendLimits,
    /// Country calling codes (`"44"`, `"+44"` also read) allowed for SMS and push; `"*"`:
    /// all. Empty: a live programme inherits the deployment's default list (see
    /// `Countries`), a sandbox allows all (it sends nothing).
    pub allowed_country_codes: Vec<String>,
    pub sms_sender_id: Option<String>,
    /// The SMS text; `{code}` is replaced by the code, `{programme}` by the programme's name.
    pub sms_template: String,
    /// How long after the user proved a second factor (`auth_time`, else `iat`) a token
    /// with `mfa` in `amr` still counts as stepped up (60–3600 s).
    pub step_up_max_age_seconds: u32,
    /// How long a session stays stepped up after a verified step-up challenge (60–3600 s;
    /// never past the `exp` of the token that proved it).
    pub step_up_lifetime_seconds: u32,
}

/// The contract's step-up freshness: 15 minutes.
pub const DEFAULT_STEP_UP_MAX_AGE_SECS: u32 = 900;

fn default_step_up_lifetime() -> u32 {
    super::step_up::DEFAULT_STEP_UP_LIFETIME_SECS
}

fn default_template() -> String {
    DEFAULT_SMS_TEMPLATE.to_owned()
}

/// A list of country calling codes: the deployment's default allow-list for live programmes
/// that name none (`DEFAULT_ALLOWED_COUNTRY_CODES`, e.g. `44,33`, or `*` for all).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Countries {
    /// Every country (`*`).
    #[default]
    All,
    /// Only these calling codes (empty: none).
    Only(Vec<String>),
}

impl Countries {
    /// `*`, or calling codes (1–3 digits, `+` optional) separated by commas or spaces.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "*" {
            return Ok(Countries::All);
        }
        let mut codes = Vec::new();
        for code in text
            .split([',', ' '])
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            let digits = code.trim_start_matches('+');
            // A calling code (1–3 digits), or a North American plan country's four-digit
            // prefix (`1876`: Jamaica; `1` is the US and Canada only).
            let nanp_country = digits.len() == 4 && digits.starts_with('1');
            if digits.is_empty()
                || (digits.len() > 3 && !nanp_country)
                || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(format!("{code:?} is not a country calling code"));
            }
            codes.push(digits.to_owned());
        }
        Ok(Countries::Only(codes))
    }

    pub fn allows(&self, country_code: &str) -> bool {
        match self {
            Countries::All => true,
            Countries::Only(codes) => codes.iter().any(|c| c == country_code),
        }
    }

    /// `*` or the codes, comma-separated (what the operator tool shows).
    pub fn describe(&self) -> String {
        match self {
            Countries::All => "*".into(),
            Countries::Only(codes) if codes.is_empty() => "(none)".into(),
            Countries::Only(codes) => codes.join(","),
        }
    }
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
    #[error("stepUpMaxAgeSeconds must be between 60 and 3600")]
    StepUpMaxAge,
    #[error("stepUpLifetimeSeconds must be between 60 and 3600")]
    StepUpLifetime,
}

impl Programme {
    /// A programme with every setting at its default.
    pub fn new(id: impl Into<String>, sandbox: bool) -> Self {
        Self {
            id: id.into(),
            name: String::new(),
            sandbox,
            disabled: false,
            enabled_channels: Channel::ALL.to_vec(),
            wrong_code_limit: DEFAULT_WRONG_CODE_LIMIT,
            send_limits: SendLimits::default(),
            allowed_country_codes: Vec::new(),
            sms_sender_id: None,
            sms_template: default_template(),
            step_up_max_age_seconds: DEFAULT_STEP_UP_MAX_AGE_SECS,
            step_up_lifetime_seconds: default_step_up_lifetime(),
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
        if !(60..=3_600).contains(&self.step_up_max_age_seconds) {
            return Err(ProgrammeError::StepUpMaxAge);
        }
        if !(60..=3_600).contains(&self.step_up_lifetime_seconds) {
            return Err(ProgrammeError::StepUpLifetime);
        }
        Ok(())
    }

    pub fn channel_enabled(&self, channel: Channel) -> bool {
        self.enabled_channels.contains(&channel)
    }

    /// Whether the programme may send to a number of this allow-list entry
    /// (`PhoneNumber::allow_list_code`: `44`, `1`, `1876`), given the deployment's default
    /// for live programmes that name no list of their own.
    pub fn country_allowed(&self, country_code: &str, deployment_default: &Countries) -> bool {
        if self.allowed_country_codes.is_empty() {
            return self.sandbox || deployment_default.allows(country_code);
        }
        self.allowed_country_codes
            .iter()
            .any(|c| c == "*" || c.trim_start_matches('+') == country_code)
    }

    /// Whether a token whose second factor was proved at `mfa_at` is stepped up at `now`:
    /// at most `stepUpMaxAgeSeconds` old. A time after `now` (a clock ahead of ours) is as
    /// fresh as can be; the token's own `exp` still bounds it.
    pub fn mfa_is_fresh(&self, mfa_at: Option<i64>, now: i64) -> bool {
        mfa_at.is_some_and(|at| now - at <= i64::from(self.step_up_max_age_seconds))
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
        let mut p = Programme::new("p1", false);
        p.step_up_max_age_seconds = 59;
        assert_eq!(p.validate(), Err(ProgrammeError::StepUpMaxAge));
        p.step_up_max_age_seconds = 3_601;
        assert_eq!(p.validate(), Err(ProgrammeError::StepUpMaxAge));
        p.step_up_max_age_seconds = 60;
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn live_programmes_naming_no_country_inherit_the_deployment_s() {
        let uk = Countries::parse("+44, 33").unwrap();
        assert_eq!(uk, Countries::Only(vec!["44".into(), "33".into()]));
        assert_eq!(Countries::parse("*"), Ok(Countries::All));
        assert_eq!(Countries::parse(""), Ok(Countries::Only(vec![])));
        assert!(Countries::parse("44,abc").is_err());
        assert!(Countries::parse("4444").is_err());
        let live = Programme::new("p1", false);
        assert!(live.country_allowed("44", &uk));
        assert!(!live.country_allowed("1", &uk));
        assert!(!live.country_allowed("44", &Countries::Only(vec![])));
        assert!(live.country_allowed("1", &Countries::All));
        let sandbox = Programme::new("s1", true);
        assert!(sandbox.country_allowed("1", &uk), "a sandbox sends nothing");
        let mut own = Programme::new("p2", false);
        own.allowed_country_codes = vec!["1".into()];
        assert!(own.country_allowed("1", &uk) && !own.country_allowed("44", &uk));
        own.allowed_country_codes = vec!["*".into()];
        assert!(own.country_allowed("998", &uk));
    }

    #[test]
    fn mfa_is_fresh_for_the_programme_s_max_age() {
        let p = Programme::new("p1", false);
        assert!(p.mfa_is_fresh(Some(1_000), 1_000 + 900));
        assert!(!p.mfa_is_fresh(Some(1_000), 1_000 + 901));
        assert!(!p.mfa_is_fresh(None, 1_000));
        assert!(p.mfa_is_fresh(Some(1_030), 1_000));
    }
}
