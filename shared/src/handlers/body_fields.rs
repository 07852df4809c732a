//! What request bodies share: a text field's rules (length, allowed characters; a payee's
//! name and account, a reference) and a JSON reader that refuses repeated keys at any depth.

use serde_json::Value;

use crate::handlers::reply::{FieldError, FieldErrorKind};

/// A string field: present, a string, `min..=max` characters, and (when given) every
/// character allowed.
pub(super) fn text(
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

pub(super) fn reference_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

/// A payee name: no control (`Cc`) or format (`Cf`: bidi controls, zero-width characters)
/// character. NFC is checked on the whole name.
pub(super) fn name_char(c: char) -> bool {
    !c.is_control() && !is_format(c)
}

/// Unicode's general category `Cf` (Unicode 15.1).
fn is_format(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

/// A payee account: `A-Z a-z 0-9`, space, `-` and `/`.
pub(super) fn account_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '/')
}

/// A JSON value whose objects repeat no key, at any depth: a body whose meaning depends on
/// which duplicate a parser keeps is refused, since the proof must carry what the caller
/// meant.
pub(super) struct Strict(pub(super) Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.insert(key, value).is_some() {
                return Err(serde::de::Error::custom("a repeated key"));
            }
        }
        Ok(Value::Object(object))
    }
}
