//! The body of a payment challenge, validated at the edge: every invalid field is listed,
//! each by its JSON path (`amount.value`).
//!
//! ```json
//! {"reference": "pay_8f2c", "amount": {"currency": "EUR", "value": 12550},
//!  "payee": {"name": "Acme Ltd", "account": "GB29NWBK60161331926819"}}
//! ```

use serde_json::Value;

use crate::domain::payment::{minor_units, Payment, MAX_AMOUNT};
use crate::handlers::reply::{ApiError, FieldError, FieldErrorKind};

/// A string field: present, a string, `min..=max` characters, and (when given) every
/// character allowed.
fn text(
    value: Option<&Value>,
    field: &'static str,
    (min, max): (usize, usize),
    allowed: fn(char) -> bool,
    pattern: &'static str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let size = [min.to_string(), max.to_string()];
    match value {
        None | Some(Value::Null) => {
            errors.push(FieldError::new(field, FieldErrorKind::Required, &[]));
            None
        }
        Some(Value::String(s)) => {
            let chars = s.chars().count();
            if chars < min || chars > max {
                errors.push(FieldError::new(
                    field,
                    FieldErrorKind::Size,
                    &[size[0].as_str(), size[1].as_str()],
                ));
                None
            } else if !s.chars().all(allowed) {
                errors.push(FieldError::new(field, FieldErrorKind::Regex, &[pattern]));
                None
            } else {
                Some(s.clone())
            }
        }
        Some(_) => {
            errors.push(FieldError::new(field, FieldErrorKind::Regex, &[pattern]));
            None
        }
    }
}

fn reference_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

fn printable(c: char) -> bool {
    !c.is_control()
}

/// Parses and validates a payment challenge's body.
pub fn parse_payment(body: &[u8]) -> Result<Payment, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let value: Value = match first {
        None => Value::Object(Default::default()),
        Some(b'{') => serde_json::from_slice(body)
            .map_err(|_| ApiError::MalformedBody("The request body is not valid JSON."))?,
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
            text(
                payee.get("name"),
                "payee.name",
                (1, 70),
                printable,
                "^[^\\p{Cc}]{1,70}$",
                &mut errors,
            ),
            text(
                payee.get("account"),
                "payee.account",
                (1, 34),
                printable,
                "^[^\\p{Cc}]{1,34}$",
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
}
