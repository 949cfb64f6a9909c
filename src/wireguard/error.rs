//! What can go wrong with WireGuard servers and clients, in WireGuard's words. The API maps
//! each variant to the contract's error envelope in one place (`api::error`).

use crate::error::Invalid;
use crate::store::StoreError;
use crate::wireguard::device::datapath::DeviceError;
use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// No such server or client (`"server"`, `"client"`).
    NotFound(&'static str),
    /// Input that breaks a rule of one field.
    Invalid(Invalid),
    /// Input that clashes with what is stored (a name, port or subnet taken), naming the
    /// field that clashes.
    Conflict { field: String, message: String },
    /// An operation the stored state does not allow, with no one field to blame (a client
    /// whose private key is not stored has no config).
    Refused(String),
    /// The device could not do it (no TUN, no permission, netlink failed).
    Unavailable(String),
    /// A stored value does not parse (a key); logged where it is found.
    Corrupt(&'static str),
    /// Something of ours failed (logged where it happened).
    Internal,
    /// The database failed or is closing.
    Store(StoreError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid(Invalid::new(field, message))
    }

    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Conflict {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The field the error names, if it names one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid(i) => Some(&i.field),
            Error::Conflict { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The error attributed to `field` instead, its message prefixed with `prefix`; errors
    /// that name no field pass unchanged.
    pub fn refield(self, field: &str, prefix: &str) -> Error {
        match self {
            Error::Invalid(i) => Error::invalid(field, format!("{prefix}{}", i.message)),
            Error::Conflict { message, .. } => Error::conflict(field, format!("{prefix}{message}")),
            e => e,
        }
    }
}

/// A stored value that does not parse: logged here, once; the client sees no internals.
pub(crate) fn corrupt(what: &'static str) -> Error {
    log::error!("stored {what} is malformed");
    Error::Corrupt(what)
}

impl From<Invalid> for Error {
    fn from(e: Invalid) -> Self {
        Error::Invalid(e)
    }
}

/// The store's own conflicts and refusals are WireGuard's conflicts (a duplicate public key
/// is a `public_key` conflict, whichever layer saw it first).
impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { field, message } => Error::Conflict { field, message },
            StoreError::NotFound(what) => Error::NotFound(what),
            StoreError::Rule(message) => Error::Refused(message),
            e => Error::Store(e),
        }
    }
}

impl From<DeviceError> for Error {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::Bind(m) => Error::conflict("listen_port", m),
            DeviceError::Unavailable(m) | DeviceError::Other(m) => Error::Unavailable(m),
        }
    }
}

/// Back to the store's words, for callers inside another domain's transaction (ipam's
/// delegations): conflicts keep their field, the rest is a rule or a store failure.
impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Conflict { field, message } => StoreError::Conflict { field, message },
            Error::Invalid(i) => StoreError::Conflict {
                field: i.field,
                message: i.message,
            },
            Error::NotFound(what) => StoreError::NotFound(what),
            Error::Store(e) => e,
            e => StoreError::Rule(e.to_string()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(what) => write!(f, "{what} not found"),
            Error::Invalid(i) => f.write_str(&i.message),
            Error::Conflict { message, .. } | Error::Refused(message) => f.write_str(message),
            Error::Unavailable(m) => f.write_str(m),
            Error::Corrupt(what) => write!(f, "stored {what} is malformed"),
            Error::Internal => f.write_str("internal error"),
            Error::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refield_moves_field_errors_only() {
        let e = Error::conflict("name", "taken").refield("config", "[Peer] k: ");
        assert_eq!(e.field(), Some("config"));
        assert_eq!(e.to_string(), "[Peer] k: taken");
        let e = Error::invalid("mtu", "too big").refield("config", "[Interface]: ");
        assert!(
            matches!(&e, Error::Invalid(i) if i.field == "config" && i.message == "[Interface]: too big")
        );
        let e = Error::Corrupt("server private key").refield("config", "x");
        assert!(matches!(e, Error::Corrupt(_)));
    }

    #[test]
    fn store_conflicts_are_wireguard_conflicts_and_back() {
        let e = Error::from(StoreError::Conflict {
            field: "public_key".into(),
            message: "dup".into(),
        });
        assert_eq!(e.field(), Some("public_key"));
        assert!(matches!(
            StoreError::from(e),
            StoreError::Conflict { field, .. } if field == "public_key"
        ));
        assert!(matches!(
            Error::from(StoreError::NotFound("client")),
            Error::NotFound("client")
        ));
    }
}
