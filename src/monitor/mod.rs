//! Observe and operate: the metrics collector ([`collector`]) reading narrow [`sources`],
//! its bounded history, alerts, component health, the event log of engine notifications.
//!
//! Pure parts: [`procfs`] (parsers of `/proc` files and `statvfs`), [`history`] (fixed-size
//! sample rings), [`alerts`] (rule evaluation with a fake clock).

pub mod alerts;
pub mod collector;
pub mod events;
pub mod health;
pub mod history;
pub mod latency;
pub mod procfs;
pub mod prometheus;
pub mod rules;
pub mod sources;

use crate::error::Invalid;
use crate::store::StoreError;

/// What can go wrong with monitoring: no sample to show yet, or a rule operation.
#[derive(Debug)]
pub enum Error {
    /// No collector sample to show (none taken yet, or monitoring is off): why.
    NoSample(&'static str),
    NotFound(&'static str),
    Invalid(Invalid),
    /// A rule with that id exists already.
    Conflict {
        field: &'static str,
        message: String,
    },
    Store(StoreError),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<Invalid> for Error {
    fn from(e: Invalid) -> Self {
        Error::Invalid(e)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NoSample(m) => f.write_str(m),
            Error::NotFound(what) => write!(f, "{what} not found"),
            Error::Invalid(e) => e.fmt(f),
            Error::Conflict { message, .. } => f.write_str(message),
            Error::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}
