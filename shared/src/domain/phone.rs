//! `PhoneNumber`: an E.164 mobile number, parsed once at the edge.
//!
//! Valid means `+`, a country calling code that the ITU has assigned, and 8–15 digits in all
//! (the calling code included). The number itself is personal data: its `Debug` and `Display`
//! print only the masked form (`+44*******123`), so it cannot leak into a log by accident.

use std::fmt;

/// Country calling codes assigned by the ITU (E.164 Annex to ITU OB), geographic ones only:
/// the set is prefix-free, so the first match by length is the only one.
const CALLING_CODES: &[&str] = &[
    "1", "7", //
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47",
    "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65",
    "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98", //
    "211", "212", "213", "216", "218", "220", "221", "222", "223", "224", "225", "226", "227",
    "228", "229", "230", "231", "232", "233", "234", "235", "236", "237", "238", "239", "240",
    "241", "242", "243", "244", "245", "246", "247", "248", "249", "250", "251", "252", "253",
    "254", "255", "256", "257", "258", "260", "261", "262", "263", "264", "265", "266", "267",
    "268", "269", "290", "291", "297", "298", "299", "350", "351", "352", "353", "354", "355",
    "356", "357", "358", "359", "370", "371", "372", "373", "374", "375", "376", "377", "378",
    "380", "381", "382", "383", "385", "386", "387", "389", "420", "421", "423", "500", "501",
    "502", "503", "504", "505", "506", "507", "508", "509", "590", "591", "592", "593", "594",
    "595", "596", "597", "598", "599", "670", "672", "673", "674", "675", "676", "677", "678",
    "679", "680", "681", "682", "683", "685", "686", "687", "688", "689", "690", "691", "692",
    "850", "852", "853", "855", "856", "880", "886", "960", "961", "962", "963", "964", "965",
    "966", "967", "968", "970", "971", "972", "973", "974", "975", "976", "977", "992", "993",
    "994", "995", "996", "998",
];

/// Calling codes whose E.164 numbers may start with `0` after the code (Italy's and San
/// Marino's fixed lines keep it, and Côte d'Ivoire, Congo and Gabon numbered their lines so).
/// Anywhere else a `0` there is the national trunk prefix, which E.164 drops (`+44 07…` is
/// `+44 7…`): one handset has one spelling, so it has one set of counters and one factor.
const LEADING_ZERO_CODES: &[&str] = &["39", "378", "225", "242", "241"];

/// The area codes of the North American Numbering Plan (`+1`) that belong to countries other
/// than the United States and Canada: each is an allow-list entry of its own, by its
/// four-digit prefix (`1876`, Jamaica), so entry `1` admits the US and Canada only.
const NANP_OTHER_COUNTRIES: &[&str] = &[
    "242", "246", "264", "268", "284", "345", "441", "473", "649", "658", "664", "721", "758",
    "767", "784", "809", "829", "849", "868", "869", "876",
];

/// Why a `phone_number` claim is not a usable E.164 number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("the number does not start with '+'")]
    MissingPlus,
    #[error("the number has a character that is not a digit")]
    NotDigits,
    #[error("the number has fewer than 8 or more than 15 digits")]
    Length,
    #[error("the country calling code is not assigned")]
    UnknownCountryCode,
    #[error("the national trunk prefix 0 is not part of an E.164 number for this country")]
    TrunkZero,
}

/// A valid E.164 number. The field is private: the only way in is [`PhoneNumber::parse`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    e164: String,
    country_code_len: usize,
}

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, PhoneNumberError> {
        let digits = raw.strip_prefix('+').ok_or(PhoneNumberError::MissingPlus)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneNumberError::NotDigits);
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(PhoneNumberError::Length);
        }
        let country_code_len = (1..=3)
            .find(|&len| {
                digits
                    .get(..len)
                    .is_some_and(|p| CALLING_CODES.contains(&p))
            })
            .ok_or(PhoneNumberError::UnknownCountryCode)?;
        let code = digits.get(..country_code_len).unwrap_or_default();
        let national = digits.get(country_code_len..).unwrap_or_default();
        if national.starts_with('0') && !LEADING_ZERO_CODES.contains(&code) {
            return Err(PhoneNumberError::TrunkZero);
        }
        Ok(Self {
            e164: raw.to_owned(),
            country_code_len,
        })
    }

    /// The full number, for the SMS and push adapters only. Never log it.
    pub fn expose_e164(&self) -> &str {
        &self.e164
    }

    /// The country calling code, without `+` (`"44"`).
    pub fn country_code(&self) -> &str {
        self.e164.get(1..=self.country_code_len).unwrap_or_default()
    }

    /// The entry of a programme's allow-list that admits this number: its calling code
    /// (`"44"`), or for the North American plan's countries other than the US and Canada the
    /// four-digit prefix (`"1876"`).
    pub fn allow_list_code(&self) -> &str {
        let national = self.national_number();
        match (self.country_code(), national.get(..3)) {
            ("1", Some(area)) if NANP_OTHER_COUNTRIES.contains(&area) => {
                self.e164.get(1..5).unwrap_or_default()
            }
            (code, _) => code,
        }
    }

    /// The digits after the country calling code.
    pub fn national_number(&self) -> &str {
        self.e164
            .get(1 + self.country_code_len..)
            .unwrap_or_default()
    }

    /// `+44*******123`: the calling code and the last three digits, the rest starred.
    pub fn masked(&self) -> String {
        let national = self.national_number();
        let keep = national.len().saturating_sub(3);
        let tail = national.get(keep..).unwrap_or_default();
        format!("+{}{}{}", self.country_code(), "*".repeat(keep), tail)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// The `phone_number` a user's token carries: none, one that is not a valid E.164 number
/// (it matches no stored phone), or a valid one. The token verifier yields
/// `TokenPhone<PhoneNumber>`; the pipeline hashes a valid number once per request, and
/// handlers see `TokenPhone<HashedPhone>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenPhone<P = HashedPhone> {
    Absent,
    Invalid,
    Valid(P),
}

impl<P> TokenPhone<P> {
    pub fn map<Q>(self, f: impl FnOnce(P) -> Q) -> TokenPhone<Q> {
        match self {
            TokenPhone::Absent => TokenPhone::Absent,
            TokenPhone::Invalid => TokenPhone::Invalid,
            TokenPhone::Valid(phone) => TokenPhone::Valid(f(phone)),
        }
    }
}

/// A valid number and its keyed hash (what the store compares and keeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedPhone {
    pub number: PhoneNumber,
    pub hash: super::ids::PhoneHash,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_numbers_of_every_calling_code_length() {
        for raw in [
            "+447700900123",
            "+14155550100",
            "+79161234567",
            "+35312345678",
        ] {
            assert!(PhoneNumber::parse(raw).is_ok(), "{raw}");
        }
        assert_eq!(
            PhoneNumber::parse("+447700900123").map(|p| p.country_code().to_owned()),
            Ok("44".into())
        );
        assert_eq!(
            PhoneNumber::parse("+35312345678").map(|p| p.country_code().to_owned()),
            Ok("353".into())
        );
        assert_eq!(
            PhoneNumber::parse("+14155550100").map(|p| p.country_code().to_owned()),
            Ok("1".into())
        );
    }

    #[test]
    fn names_each_kind_of_reject() {
        assert_eq!(
            PhoneNumber::parse("447700900123"),
            Err(PhoneNumberError::MissingPlus)
        );
        assert_eq!(
            PhoneNumber::parse("+44 7700 900123"),
            Err(PhoneNumberError::NotDigits)
        );
        assert_eq!(
            PhoneNumber::parse("+4477009001a3"),
            Err(PhoneNumberError::NotDigits)
        );
        assert_eq!(
            PhoneNumber::parse("+٤٤٧٧٠٠٩٠٠١٢٣"),
            Err(PhoneNumberError::NotDigits)
        );
        assert_eq!(
            PhoneNumber::parse("+4477009"),
            Err(PhoneNumberError::Length)
        );
        assert_eq!(
            PhoneNumber::parse("+4477009001234567"),
            Err(PhoneNumberError::Length)
        );
        assert_eq!(PhoneNumber::parse("+"), Err(PhoneNumberError::Length));
        assert_eq!(
            PhoneNumber::parse("+0123456789"),
            Err(PhoneNumberError::UnknownCountryCode)
        );
        assert_eq!(
            PhoneNumber::parse("+2851234567"),
            Err(PhoneNumberError::UnknownCountryCode)
        );
    }

    #[test]
    fn length_bounds_are_8_and_15_digits_in_all() {
        assert!(PhoneNumber::parse("+4412345").is_err());
        assert!(PhoneNumber::parse("+44123456").is_ok());
        assert!(PhoneNumber::parse("+441234567890123").is_ok());
        assert!(PhoneNumber::parse("+4412345678901234").is_err());
    }

    #[test]
    fn masks_all_but_code_and_last_three() {
        let phone = PhoneNumber::parse("+447700900123").ok();
        assert_eq!(
            phone.as_ref().map(PhoneNumber::masked),
            Some("+44*******123".to_owned())
        );
        assert_eq!(
            phone.map(|p| format!("{p:?} {p}")),
            Some("PhoneNumber(+44*******123) +44*******123".to_owned())
        );
    }

    #[test]
    fn a_trunk_zero_is_not_e164() {
        for raw in [
            "+4407700900123",
            "+33061234567",
            "+49015112345678",
            "+1020555010",
        ] {
            assert_eq!(
                PhoneNumber::parse(raw),
                Err(PhoneNumberError::TrunkZero),
                "{raw}"
            );
        }
        // Italy's (and a few others') numbers do start with 0 after the code.
        for raw in ["+390612345678", "+3780549123456", "+2250701234567"] {
            assert!(PhoneNumber::parse(raw).is_ok(), "{raw}");
        }
        assert!(PhoneNumber::parse("+447700900123").is_ok());
    }

    #[test]
    fn nanp_countries_other_than_us_and_canada_have_their_own_entry() {
        let code = |raw: &str| {
            PhoneNumber::parse(raw)
                .unwrap()
                .allow_list_code()
                .to_owned()
        };
        assert_eq!(code("+18765551234"), "1876", "Jamaica");
        assert_eq!(code("+12425551234"), "1242", "Bahamas");
        assert_eq!(code("+18095551234"), "1809", "Dominican Republic");
        assert_eq!(code("+14155550100"), "1", "the US");
        assert_eq!(code("+16045550100"), "1", "Canada");
        assert_eq!(code("+447700900123"), "44");
        assert_eq!(code("+35312345678"), "353");
        for area in NANP_OTHER_COUNTRIES {
            assert_eq!(code(&format!("+1{area}5550100")), format!("1{area}"));
        }
    }

    #[test]
    fn calling_codes_are_prefix_free() {
        for a in CALLING_CODES {
            for b in CALLING_CODES {
                assert!(a == b || !b.starts_with(a), "{a} is a prefix of {b}");
            }
        }
    }

    /// Property: every digit string of a valid length behind every calling code parses, and
    /// round-trips to the same code and national part.
    #[test]
    fn every_valid_number_parses() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for code in CALLING_CODES {
            for total in 8..=15usize {
                if total <= code.len() {
                    continue;
                }
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // The first digit is not a trunk 0 (see `a_trunk_zero_is_not_e164`).
                let national: String = (0..total - code.len())
                    .map(|i| char::from(b'0' + ((seed >> (i % 60)) % 10) as u8))
                    .enumerate()
                    .map(|(i, c)| if i == 0 && c == '0' { '5' } else { c })
                    .collect();
                let raw = format!("+{code}{national}");
                let parsed = PhoneNumber::parse(&raw);
                assert!(parsed.is_ok(), "{raw}");
                if let Ok(p) = parsed {
                    assert_eq!(
                        (p.country_code(), p.national_number()),
                        (*code, national.as_str())
                    );
                }
            }
        }
    }
}
