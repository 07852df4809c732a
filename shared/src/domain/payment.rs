//! Payment challenges: the user approves one amount to one payee (PSD2 RTS Art. 5, "dynamic
//! linking"). The code (or the push) is bound to what is shown; a verified challenge yields
//! a signed proof (see `proof`) over exactly these values, so changing any of them breaks it.
//!
//! One challenge per reference per user at a time: a pending or verified challenge holds its
//! reference (`STATE_INVALID`); after `DECLINED` or `EXPIRED` a new one may start, but a new
//! SMS for the same reference waits 15 s (`RETRY_IN_15SEC`).

use super::{channel::Channel, ids::ChallengeId, step_up::ChallengeStatus};

/// The largest amount, in minor units (10^12).
pub const MAX_AMOUNT: u64 = 1_000_000_000_000;

/// What the user approves: the caller's payment reference, the amount and the payee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// 1–64 characters of `[A-Za-z0-9._:-]`.
    pub reference: String,
    /// ISO 4217 alphabetic code, in use.
    pub currency: String,
    /// Minor units, 1 to 10^12.
    pub value: u64,
    /// 1–70 characters in NFC, no control (`Cc`) or format (`Cf`) characters.
    pub payee_name: String,
    /// 1–34 characters of `A-Z a-z 0-9`, space, `-` and `/`. Never logged, never in an event;
    /// shown masked (`masked_account`).
    pub payee_account: String,
}

/// Whether a currency code is ISO 4217, in use (not superseded, not a fund or metal), and
/// its minor units.
pub fn minor_units(currency: &str) -> Option<u16> {
    let found = iso_currency::Currency::from_code(currency)?;
    if found.is_superseded().is_some() || found.is_special() || found.is_fund() {
        return None;
    }
    found.exponent()
}

/// The amount in major units with its currency's decimals: `EUR 125.50`, `JPY 12550`,
/// `KWD 12.550`.
pub fn format_amount(currency: &str, value: u64) -> String {
    let decimals = u32::from(minor_units(currency).unwrap_or(2));
    let scale = 10u64.saturating_pow(decimals);
    if decimals == 0 {
        format!("{currency} {value}")
    } else {
        format!(
            "{currency} {}.{:0width$}",
            value / scale,
            value % scale,
            width = decimals as usize
        )
    }
}

/// GSM 03.38 basic characters (one septet each).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension characters (an escape and a septet: two each).
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// The length of a text in one SMS segment's units, and that segment's capacity: GSM-7
/// septets (160) when every character is in the GSM alphabet, else UCS-2 code units (70).
pub fn sms_units(text: &str) -> (usize, usize) {
    let septets = text.chars().try_fold(0usize, |n, c| {
        if GSM_BASIC.contains(c) {
            Some(n + 1)
        } else if GSM_EXTENDED.contains(c) {
            Some(n + 2)
        } else {
            None
        }
    });
    match septets {
        Some(n) => (n, 160),
        None => (text.encode_utf16().count(), 70),
    }
}

/// The payee account as the user sees it: its first and last four characters (`GB29...6819`),
/// or whole when it has 8 characters or fewer.
pub fn masked_account(account: &str) -> String {
    let chars: Vec<char> = account.chars().collect();
    if chars.len() <= 8 {
        return account.to_owned();
    }
    let head: String = chars.iter().take(4).collect();
    let tail: String = chars.iter().skip(chars.len() - 4).collect();
    format!("{head}...{tail}")
}

/// The line the user approves, `EUR 125.50 to Acme Ltd (GB29...6819)`, with the payee name
/// cut (ending in `...`) until `fits` accepts the whole text; the amount and the masked
/// account are never cut. `whole` builds the text around the line.
fn approval_line(
    payment: &Payment,
    fits: impl Fn(&str) -> bool,
    whole: impl Fn(&str) -> String,
) -> String {
    let amount = format_amount(&payment.currency, payment.value);
    let account = masked_account(&payment.payee_account);
    let line = |name: &str| format!("{amount} to {name} ({account})");
    let full = whole(&line(&payment.payee_name));
    if fits(&full) {
        return full;
    }
    let name: Vec<char> = payment.payee_name.chars().collect();
    let mut keep = name.len();
    loop {
        keep = keep.saturating_sub(1);
        let cut: String = name.iter().take(keep.max(1)).collect();
        let candidate = whole(&line(&format!("{}...", cut.trim_end())));
        if fits(&candidate) || keep <= 1 {
            return candidate;
        }
    }
}

/// The payment SMS: the code, the amount, the payee name and its masked account, within one
/// segment where the name allows: only the name is cut, and a cut name ends in `...`.
pub fn payment_sms_text(code: &str, payment: &Payment) -> String {
    approval_line(
        payment,
        |text| {
            let (used, capacity) = sms_units(text);
            used <= capacity
        },
        |line| format!("{code} approves {line}. Never share this code."),
    )
}

/// What the device shows for a push payment challenge: the SMS's line, after the programme.
pub fn payment_push_message(programme: &str, payment: &Payment) -> String {
    format!(
        "{programme}: approve {}",
        approval_line(payment, |_| true, str::to_owned)
    )
}

/// A payment challenge as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentChallenge {
    pub id: ChallengeId,
    pub payment: Payment,
    /// SMS (a code) or AUTHY (a push).
    pub channel: Channel,
    /// `PENDING`, `VERIFIED` or `DECLINED` as stored; `EXPIRED` is read from the time.
    pub status: ChallengeStatus,
    pub created_at: i64,
    pub expires_at: i64,
    /// The push provider's request (push only).
    pub request_id: Option<String>,
    /// The compact JWS, once verified.
    pub proof: Option<String>,
    /// The attempt (SMS) or provider request (push) that verified it.
    pub verified_by: Option<String>,
}

impl PaymentChallenge {
    /// A new challenge, pending until `expires_at`.
    pub fn pending(
        id: ChallengeId,
        payment: Payment,
        channel: Channel,
        created_at: i64,
        expires_at: i64,
        request_id: Option<String>,
    ) -> Self {
        Self {
            id,
            payment,
            channel,
            status: ChallengeStatus::Pending,
            created_at,
            expires_at,
            request_id,
            proof: None,
            verified_by: None,
        }
    }

    /// The status a reader sees at `now`: a pending challenge past its time is expired.
    pub fn status_at(&self, now: i64) -> ChallengeStatus {
        self.status.seen_at(self.expires_at, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(name: &str) -> Payment {
        Payment {
            reference: "pay_8f2c".into(),
            currency: "EUR".into(),
            value: 12_550,
            payee_name: name.into(),
            payee_account: "GB29NWBK60161331926819".into(),
        }
    }

    #[test]
    fn amounts_use_the_currency_s_minor_units() {
        assert_eq!(format_amount("EUR", 12_550), "EUR 125.50");
        assert_eq!(format_amount("EUR", 5), "EUR 0.05");
        assert_eq!(format_amount("JPY", 12_550), "JPY 12550");
        assert_eq!(format_amount("KWD", 12_550), "KWD 12.550");
        assert_eq!(format_amount("BHD", 12_550), "BHD 12.550");
        assert_eq!(
            minor_units("CLF"),
            None,
            "a fund code, not money one pays with"
        );
        assert_eq!(minor_units("EUR"), Some(2));
        assert_eq!(minor_units("XXX"), None, "no currency");
        assert_eq!(minor_units("XAU"), None, "a metal");
        assert_eq!(minor_units("HRK"), None, "superseded by EUR");
        assert_eq!(minor_units("eur"), None);
        assert_eq!(minor_units("ZZZ"), None);
    }

    #[test]
    fn the_sms_names_amount_payee_and_masked_account_in_one_segment() {
        assert_eq!(
            payment_sms_text("123456", &payment("Acme Ltd")),
            "123456 approves EUR 125.50 to Acme Ltd (GB29...6819). Never share this code."
        );
        // The longest GSM-7 name (70 characters) fits whole in 160 septets.
        let long = payment_sms_text("123456", &payment(&"A".repeat(70)));
        assert_eq!(sms_units(&long), (long.chars().count(), 160));
        assert!(long.contains(&format!("to {} (GB29...6819)", "A".repeat(70))));
        // A name that does not fit is cut, and says so; amount and masked account stay whole.
        let cut = payment_sms_text("123456", &payment(&format!("Ж{}", "A".repeat(69))));
        assert!(cut.starts_with("123456 approves EUR 125.50 to Ж"), "{cut}");
        assert!(
            cut.ends_with("... (GB29...6819). Never share this code."),
            "{cut}"
        );
        let shorter = payment_sms_text("123456", &payment(&format!("{}Ж", "A".repeat(20))));
        // Cutting the one UCS-2 character makes the text GSM-7 again: one segment of 160.
        let (used, capacity) = sms_units(&shorter);
        assert!(used <= capacity, "{shorter}");
        assert!(
            shorter.contains("to AAAA") && shorter.contains("... (GB29...6819)"),
            "{shorter}"
        );
        // A name outside GSM-7 makes the SMS UCS-2 (70 units), where the rest of the line
        // takes 68: the name is cut to its first character, and the amount and the masked
        // account stay whole even though the text then needs a second segment.
        let cyrillic = payment_sms_text("123456", &payment(&"Жук ".repeat(15)));
        assert_eq!(sms_units(&cyrillic).1, 70);
        assert_eq!(
            cyrillic,
            "123456 approves EUR 125.50 to Ж... (GB29...6819). Never share this code."
        );
        let short = payment_sms_text("123456", &payment("Жу"));
        assert!(short.contains("to Жу (GB29...6819)"), "{short}");
        // Extension characters count two septets.
        assert_eq!(sms_units("€"), (2, 160));
        assert_eq!(sms_units("a"), (1, 160));
    }

    #[test]
    fn accounts_are_masked_to_their_first_and_last_four() {
        assert_eq!(masked_account("GB29NWBK60161331926819"), "GB29...6819");
        assert_eq!(masked_account("12345678"), "12345678");
        assert_eq!(masked_account("123456789"), "1234...6789");
        assert_eq!(masked_account("a"), "a");
        // Two payees with one name and different accounts never read the same.
        let mut other = payment("Acme Ltd");
        other.payee_account = "GB29NWBK60161331920000".into();
        assert_ne!(
            payment_sms_text("123456", &payment("Acme Ltd")),
            payment_sms_text("123456", &other)
        );
        assert_ne!(
            payment_push_message("p", &payment("Acme Ltd")),
            payment_push_message("p", &other)
        );
        assert_eq!(
            payment_push_message("Live", &payment("Acme Ltd")),
            "Live: approve EUR 125.50 to Acme Ltd (GB29...6819)"
        );
    }

    #[test]
    fn a_pending_payment_expires_on_read() {
        let c = PaymentChallenge {
            id: "c".into(),
            payment: payment("Acme"),
            channel: Channel::Sms,
            status: ChallengeStatus::Pending,
            created_at: 0,
            expires_at: 300,
            request_id: None,
            proof: None,
            verified_by: None,
        };
        assert_eq!(c.status_at(299), ChallengeStatus::Pending);
        assert_eq!(c.status_at(300), ChallengeStatus::Expired);
    }
}
