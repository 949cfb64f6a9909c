//! Errors without HTTP in them, shared by the domains. Each domain (WireGuard, pools, BGP,
//! users, …) has its own error enum in its own words; the API maps every one of them to the
//! contract's error envelope in one place, `api::error`.

use std::fmt;

/// Input that breaks a rule: which field, and why. Domains report bad input with it (the API
/// answers 422 naming the field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for Invalid {}
