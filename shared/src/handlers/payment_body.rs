//! The body of a payment challenge, validated at the edge: every invalid field is listed,
//! each by its JSON path (`amount.value`).
//!
//! ```json
//! {"reference": "pay_8f2c", "amount": {"currency": "EUR", "value": 12550},
//!  "payee": {"name": "Acme Ltd", "account": "GB29NWBK60161331926819"}}
//! ```

use serde_json::Value;

use super::body_fields::{account_char, name_char, reference_char, text, Strict};
use crate::domain::payment::{minor_units, Payment, MAX_AMOUNT};
use crate::handlers::reply::{ApiError, FieldError, FieldErrorKind};

/// Parses and validates a payment challenge's body.
pub fn parse_payment(body: &[u8]) -> Result<Payment, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let value: Value = match first {
        None => Value::Object(Default::default()),
        Some(b'{') => {
            serde_json::from_slice::<Strict>(body)
                .map_err(|_| {
                    ApiError::MalformedBody(
                        "The request body is not valid JSON, or repeats a field.",
                    )
                })?
                .0
        }
        Some(_) => {
            return Err(ApiError::MalformedBody(
                "The request body must be a JSON object.",
            ))
        }
    };
    let mut errors = Vec::new();
    let reference = text(
        value.get("reference"),
        "reference",
        (1, 64),
        reference_char,
        "^[A-Za-z0-9._:-]{1,64}$",
        &mut errors,
    );
    let amount = value.get("amount");
    let (currency, amount_value) = match amount {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("amount", FieldErrorKind::Required, &[]));
            (None, None)
        }
        Some(Value::Object(amount)) => {
            let currency = match amount.get("currency") {
                None | Some(Value::Null) => {
                    errors.push(FieldError::new(
                        "amount.currency",
                        FieldErrorKind::Required,
                        &[],
                    ));
                    None
                }
                Some(Value::String(code)) if minor_units(code).is_some() => Some(code.clone()),
                Some(_) => {
                    errors.push(FieldError::new(
                        "amount.currency",
                        FieldErrorKind::In,
                        &["ISO 4217"],
                    ));
                    None
                }
            };
            let max = MAX_AMOUNT.to_string();
            let value = match amount.get("value") {
                None | Some(Value::Null) => {
                    errors.push(FieldError::new(
                        "amount.value",
                        FieldErrorKind::Required,
                        &[],
                    ));
                    None
                }
                Some(Value::Number(n))
                    if n.as_u64().is_some_and(|v| (1..=MAX_AMOUNT).contains(&v)) =>
                {
                    n.as_u64()
                }
                Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
                    errors.push(FieldError::new(
                        "amount.value",
                        FieldErrorKind::Range,
                        &["1", max.as_str()],
                    ));
                    None
                }
                Some(_) => {
                    // Not a JSON integer (a fraction, a string, ...).
                    errors.push(FieldError::new(
                        "amount.value",
                        FieldErrorKind::Regex,
                        &["^[0-9]+$"],
                    ));
                    None
                }
            };
            (currency, value)
        }
        Some(_) => {
            errors.push(FieldError::new("amount", FieldErrorKind::Required, &[]));
            (None, None)
        }
    };
    let (payee_name, payee_account) = match value.get("payee") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("payee", FieldErrorKind::Required, &[]));
            (None, None)
        }
        Some(Value::Object(payee)) => (
            {
                const NAME: &str = "^[^\\p{Cc}\\p{Cf}]{1,70}$ (NFC)";
                let name = text(
                    payee.get("name"),
                    "payee.name",
                    (1, 70),
                    name_char,
                    NAME,
                    &mut errors,
                );
                // Never silently normalised: the proof carries the caller's exact bytes.
                match name {
                    Some(name) if !unicode_normalization::is_nfc(&name) => {
                        errors.push(FieldError::new(
                            "payee.name",
                            FieldErrorKind::Regex,
                            &[NAME],
                        ));
                        None
                    }
                    other => other,
                }
            },
            text(
                payee.get("account"),
                "payee.account",
                (1, 34),
                account_char,
                "^[A-Za-z0-9 /-]{1,34}$",
                &mut errors,
            ),
        ),
        Some(_) => {
            errors.push(FieldError::new("payee", FieldErrorKind::Required, &[]));
            (None, None)
        }
    };
    match (reference, currency, amount_value, payee_name, payee_account) {
        (Some(reference), Some(currency), Some(value), Some(payee_name), Some(payee_account))
            if errors.is_empty() =>
        {
            Ok(Payment {
                reference,
                currency,
                value,
                payee_name,
                payee_account,
            })
        }
        _ => Err(ApiError::InvalidFields(errors)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(body: Value) -> Vec<(&'static str, &'static str)> {
        match parse_payment(body.to_string().as_bytes()) {
            Err(ApiError::InvalidFields(fields)) => fields
                .iter()
                .map(|f| (f.field_name, f.error.as_str()))
                .collect(),
            Ok(_) => vec![],
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_valid_body_parses() {
        let body = json!({"reference": "pay_8f2c", "amount": {"currency": "EUR", "value": 12550},
                          "payee": {"name": "Acme Ltd", "account": "GB29NWBK60161331926819"}});
        let payment = parse_payment(body.to_string().as_bytes()).unwrap();
        assert_eq!(payment.value, 12_550);
        assert_eq!(payment.payee_account, "GB29NWBK60161331926819");
    }

    #[test]
    fn every_invalid_field_is_listed_by_its_path() {
        assert_eq!(
            fields(json!({})),
            [
                ("reference", "REQUIRED"),
                ("amount", "REQUIRED"),
                ("payee", "REQUIRED")
            ]
        );
        assert_eq!(
            fields(
                json!({"reference": "a b", "amount": {"currency": "ABC", "value": 12.5},
                          "payee": {"name": "", "account": "x\u{7}"}})
            ),
            [
                ("reference", "REGEX"),
                ("amount.currency", "IN"),
                ("amount.value", "REGEX"),
                ("payee.name", "SIZE"),
                ("payee.account", "REGEX")
            ]
        );
        assert_eq!(
            fields(
                json!({"reference": "r".repeat(65), "amount": {"currency": "EUR", "value": 0},
                          "payee": {"name": "n".repeat(71), "account": "a".repeat(35)}})
            ),
            [
                ("reference", "SIZE"),
                ("amount.value", "RANGE"),
                ("payee.name", "SIZE"),
                ("payee.account", "SIZE")
            ]
        );
        assert_eq!(
            fields(
                json!({"reference": "r", "amount": {"currency": "EUR", "value": 1_000_000_000_001u64},
                          "payee": {"name": "n", "account": "a"}})
            ),
            [("amount.value", "RANGE")]
        );
        assert_eq!(
            fields(
                json!({"reference": "r", "amount": {"currency": "EUR", "value": "100"},
                          "payee": {"name": "n", "account": "a"}})
            ),
            [("amount.value", "REGEX")]
        );
        assert!(matches!(
            parse_payment(b"[1]"),
            Err(ApiError::MalformedBody(_))
        ));
    }

    #[test]
    fn payee_names_are_nfc_without_format_characters_and_accounts_plain() {
        let body = |name: &str, account: &str| {
            json!({"reference": "r", "amount": {"currency": "EUR", "value": 1},
                   "payee": {"name": name, "account": account}})
        };
        // Bidi controls, zero-width characters, a BOM: format characters.
        for name in [
            "Acme\u{202E}dtL",
            "Ac\u{200B}me",
            "\u{FEFF}Acme",
            "Acme\u{2066}",
        ] {
            assert_eq!(
                fields(body(name, "GB29")),
                [("payee.name", "REGEX")],
                "{name:?}"
            );
        }
        // A decomposed "é" (e + combining acute) is not NFC; the composed one is.
        assert_eq!(
            fields(body("Cafe\u{301}", "GB29")),
            [("payee.name", "REGEX")]
        );
        assert!(fields(body("Caf\u{e9} Zürich Жук", "GB29")).is_empty());
        for account in ["GB29.NWBK", "GB29_NWBK", "GB29\u{200B}", "ÄB12", "a\tb"] {
            assert_eq!(
                fields(body("Acme", account)),
                [("payee.account", "REGEX")],
                "{account:?}"
            );
        }
        assert!(fields(body("Acme", "GB29 NWBK-6016/1331")).is_empty());
    }

    #[test]
    fn a_repeated_key_at_any_depth_is_refused() {
        for raw in [
            r#"{"reference": "a", "reference": "b", "amount": {"currency": "EUR", "value": 1}, "payee": {"name": "n", "account": "a"}}"#,
            r#"{"reference": "a", "amount": {"currency": "EUR", "value": 1, "value": 2}, "payee": {"name": "n", "account": "a"}}"#,
            r#"{"reference": "a", "amount": {"currency": "EUR", "value": 1}, "payee": {"name": "n", "account": "a", "account": "b"}}"#,
            r#"{"reference": "a", "amount": {"currency": "EUR", "value": 1}, "payee": {"name": "n", "account": "a"}, "x": [{"k": 1, "k": 2}]}"#,
        ] {
            assert!(
                matches!(
                    parse_payment(raw.as_bytes()),
                    Err(ApiError::MalformedBody(_))
                ),
                "{raw}"
            );
        }
        let fine = r#"{"reference": "a", "amount": {"currency": "EUR", "value": 1}, "payee": {"name": "n", "account": "a"}, "x": [{"k": 1}, {"k": 2}]}"#;
        assert!(parse_payment(fine.as_bytes()).is_ok());
    }
}
