//! What can go wrong with a BGP operation, in BGP's own words; `api::error` maps each to
//! the contract's envelope in one place.

use crate::error::Invalid;
use crate::store::StoreError;
use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// `session`, `announcement`.
    NotFound(&'static str),
    /// Bad input, naming the field.
    Invalid(Invalid),
    /// The running speaker cannot take the request now (a session's command queue is full).
    Unavailable(String),
    /// A broken invariant, logged where found.
    Internal(String),
    Store(StoreError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid(Invalid::new(field, message))
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Error::NotFound(what),
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
            Error::Unavailable(message) | Error::Internal(message) => f.write_str(message),
            Error::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

/// `wireguard::validate_description` answers in WireGuard's words.
impl From<crate::wireguard::Error> for Error {
    fn from(e: crate::wireguard::Error) -> Self {
        use crate::wireguard::Error as Wg;
        match e {
            Wg::NotFound(what) => Error::NotFound(what),
            Wg::Invalid(i) => Error::Invalid(i),
            Wg::Conflict { message, .. } | Wg::Refused(message) => {
                Error::Store(StoreError::Rule(message))
            }
            Wg::Unavailable(message) => Error::Unavailable(message),
            Wg::Corrupt(what) => Error::Internal(format!("corrupt {what}")),
            Wg::Internal => Error::Internal("wireguard".into()),
            Wg::Store(e) => Error::Store(e),
        }
    }
}
