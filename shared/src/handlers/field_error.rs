//! The vocabulary of a 400's `syntaxErrors.invalidFields`: which field, what is wrong with
//! it, the rule's parameters. `reply` renders them.

/// The `error` of a 400 field error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    Required,
    Size,
    In,
    Regex,
    Range,
}

impl FieldErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "REQUIRED",
            FieldErrorKind::Size => "SIZE",
            FieldErrorKind::In => "IN",
            FieldErrorKind::Regex => "REGEX",
            FieldErrorKind::Range => "RANGE",
        }
    }
}

/// One entry of `syntaxErrors.invalidFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field_name: &'static str,
    pub error: FieldErrorKind,
    pub params: Vec<String>,
}

impl FieldError {
    pub fn new(field_name: &'static str, error: FieldErrorKind, params: &[&str]) -> Self {
        Self {
            field_name,
            error,
            params: params.iter().map(|p| (*p).to_owned()).collect(),
        }
    }
}
