//! What can go wrong with a pool operation, in the pools' own words; `api::error` maps each
//! to the contract's envelope (status, code, message, details) in one place.

use crate::error::Invalid;
use crate::store::StoreError;
use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// `pool`, `allocation`, `whitelist entry`.
    NotFound(&'static str),
    /// Bad input, naming the field.
    Invalid(Invalid),
    /// The request contradicts what is stored (an overlap, a name taken, a full pool).
    Conflict {
        field: String,
        message: String,
    },
    /// A dependency has nothing to answer with yet (no RPKI data).
    Unavailable(String),
    /// A broken invariant (an allocator out of step with the tables): logged where found.
    Internal(String),
    Store(StoreError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid(Invalid::new(field, message))
    }

    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Conflict {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Error::NotFound(what),
            StoreError::Conflict { field, message } => Error::Conflict { field, message },
            e => Error::Store(e),
        }
    }
}

impl From<Invalid> for Error {
    fn from(e: Invalid) -> Self {
        Error::Invalid(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(what) => write!(f, "{what} not found"),
            Error::Invalid(e) => write!(f, "{e}"),
            Error::Conflict { message, .. }
            | Error::Unavailable(message)
            | Error::Internal(message) => f.write_str(message),
            Error::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

/// The WireGuard rules pools run inside their transactions (`wireguard::delegated`,
/// `validate_description`) answer in WireGuard's words; the same answer in the pools' words.
impl From<crate::wireguard::Error> for Error {
    fn from(e: crate::wireguard::Error) -> Self {
        use crate::wireguard::Error as Wg;
        match e {
            Wg::NotFound(what) => Error::NotFound(what),
            Wg::Invalid(i) => Error::Invalid(i),
            Wg::Conflict { field, message } => Error::Conflict { field, message },
            Wg::Refused(message) => Error::Store(StoreError::Rule(message)),
            Wg::Unavailable(message) => Error::Unavailable(message),
            Wg::Corrupt(what) => Error::Internal(format!("corrupt {what}")),
            Wg::Internal => Error::Internal("wireguard".into()),
            Wg::Store(e) => Error::Store(e),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::Error;

    /// The API error code each domain error becomes (`api::error` maps them; its tests pin
    /// the statuses), so the pool tests read as the API answers.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ErrorCode {
        Validation,
        Conflict,
        NotFound,
        Other,
    }

    /// (code, field, message) of an error.
    pub fn code(e: Error) -> (ErrorCode, String, String) {
        match e {
            Error::Invalid(i) => (ErrorCode::Validation, i.field, i.message),
            Error::Conflict { field, message } => (ErrorCode::Conflict, field, message),
            Error::NotFound(what) => (
                ErrorCode::NotFound,
                String::new(),
                format!("{what} not found"),
            ),
            e => (ErrorCode::Other, String::new(), e.to_string()),
        }
    }
}
