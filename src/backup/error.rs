//! What can go wrong with backups; `api::error` maps each to the contract once.

use crate::store::StoreError;

#[derive(Debug)]
pub enum Error {
    NotFound(&'static str),
    /// A request field is wrong (422 naming it).
    Invalid(crate::error::Invalid),
    /// Another backup or restore is running (one at a time).
    Busy,
    /// The backup cannot be used for that now (still running, failed, no archive).
    Refused(String),
    /// The service is stopping.
    Stopping,
    /// File work failed (logged where it happened).
    Internal,
    Store(StoreError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn invalid(field: &str, message: impl Into<String>) -> Error {
        Error::Invalid(crate::error::Invalid::new(field, message))
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotFound(what) => write!(f, "{what} not found"),
            Error::Invalid(e) => f.write_str(&e.message),
            Error::Busy => f.write_str("another backup or restore is running"),
            Error::Refused(m) => f.write_str(m),
            Error::Stopping => f.write_str("shutting down"),
            Error::Internal => f.write_str("internal error"),
            Error::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}
