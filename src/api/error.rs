//! The one API error type. Every failure a client can see is an [`ApiError`]; its
//! [`ErrorCode`] decides the HTTP status, and `api::response` renders the contract's error
//! envelope from it. Domains have their own error types, in domain words (`StoreError`,
//! [`crate::error::Invalid`], each domain's `Error`); each converts into this one here, in
//! exactly one place.

use hyper::StatusCode;
use serde::Serialize;
use std::fmt;

/// The contract's error codes (CONTRACT.md, "Wire format").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    InvalidCredentials,
    TokenExpired,
    Unauthorized,
    InsufficientPermissions,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    /// 408: the request's body did not arrive in time (`http.body_read_timeout_secs`).
    RequestTimeout,
    /// 414 and 431: the request line or head is larger than the server reads.
    UriTooLong,
    HeadersTooLarge,
    Validation,
    RateLimited,
    Internal,
    Unavailable,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::InvalidCredentials | Self::TokenExpired | Self::Unauthorized => {
                StatusCode::UNAUTHORIZED
            }
            Self::InsufficientPermissions => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "BAD_REQUEST",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::TokenExpired => "TOKEN_EXPIRED",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::InsufficientPermissions => "INSUFFICIENT_PERMISSIONS",
            Self::NotFound => "RESOURCE_NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Conflict => "RESOURCE_CONFLICT",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::UriTooLong => "URI_TOO_LONG",
            Self::HeadersTooLarge => "HEADERS_TOO_LARGE",
            Self::Validation => "VALIDATION_ERROR",
            Self::RateLimited => "RATE_LIMIT_EXCEEDED",
            Self::Internal => "INTERNAL_ERROR",
            Self::Unavailable => "SERVICE_UNAVAILABLE",
        }
    }
}

/// `error.details` of the envelope: which input field is wrong and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Details {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Details>,
    /// Seconds for the `Retry-After` header (429).
    pub retry_after: Option<u64>,
    /// Value of the `Allow` header (405).
    pub allow: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
            retry_after: None,
            allow: None,
        }
    }

    /// A 422 naming the offending field; `message` goes both in the envelope and its details.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(ErrorCode::Validation, message.clone());
        e.details = Some(Details {
            field: field.into(),
            message,
        });
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn forbidden() -> Self {
        Self::new(
            ErrorCode::InsufficientPermissions,
            "your role does not allow this operation",
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::validation(field, message);
        e.code = ErrorCode::Conflict;
        e
    }

    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "internal error")
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<crate::error::Invalid> for ApiError {
    fn from(e: crate::error::Invalid) -> Self {
        ApiError::validation(e.field, e.message)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Conflict { field, message } => ApiError::conflict(field, message),
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Rule(message) => ApiError::new(ErrorCode::Conflict, message),
            StoreError::Closed => ApiError::unavailable("database is shutting down"),
            e @ StoreError::Sqlite(_) if e.disk_problem().is_some() => {
                log::error!("database: {e}");
                ApiError::unavailable(e.disk_problem().unwrap_or_default())
            }
            StoreError::Sqlite(e) => {
                // Logged here, once; the client sees no internals.
                log::error!("database error: {e}");
                ApiError::internal()
            }
        }
    }
}

impl From<crate::users::Error> for ApiError {
    fn from(e: crate::users::Error) -> Self {
        use crate::users::Error;
        match e {
            Error::NotFound(what) => ApiError::not_found(what),
            Error::Invalid(e) => e.into(),
            Error::Forbidden => ApiError::forbidden(),
            Error::Hashing => ApiError::internal(),
            Error::Store(e) => e.into(),
        }
    }
}

impl From<crate::auth::Error> for ApiError {
    fn from(e: crate::auth::Error) -> Self {
        use crate::auth::Error;
        match e {
            Error::InvalidCredentials(m) => ApiError::new(ErrorCode::InvalidCredentials, m),
            Error::TooManyFailures { retry_after } => {
                let mut a = ApiError::new(ErrorCode::RateLimited, e.to_string());
                a.retry_after = Some(retry_after);
                a
            }
            Error::TokenExpired => ApiError::new(ErrorCode::TokenExpired, "token has expired"),
            Error::Unauthorized(m) => ApiError::unauthorized(m),
            Error::Internal => ApiError::internal(),
            Error::Store(e) => e.into(),
            Error::NotRevoked(e) => {
                let mut a = ApiError::from(e);
                a.message = format!(
                    "{}; the token could not be revoked and is still valid",
                    a.message
                );
                a
            }
        }
    }
}

impl From<crate::backup::Error> for ApiError {
    fn from(e: crate::backup::Error) -> Self {
        use crate::backup::Error;
        match e {
            Error::NotFound(what) => ApiError::not_found(what),
            Error::Invalid(e) => e.into(),
            Error::Busy => ApiError::conflict(
                "backup",
                "another backup or restore is running; try again when it is done",
            ),
            Error::Refused(m) => ApiError::conflict("backup", m),
            Error::Stopping => ApiError::unavailable("shutting down"),
            Error::Internal => ApiError::internal(),
            Error::Store(e) => e.into(),
        }
    }
}

impl From<crate::logs::Error> for ApiError {
    fn from(e: crate::logs::Error) -> Self {
        use crate::logs::Error;
        match e {
            Error::NotFound(what) => ApiError::not_found(what),
            Error::ExportRunning => ApiError::conflict(
                "format",
                "another log export is being written; try again shortly",
            ),
            Error::Stopping => ApiError::unavailable("shutting down"),
            Error::Internal => ApiError::internal(),
            Error::Store(e) => e.into(),
        }
    }
}

impl From<crate::system::Error> for ApiError {
    fn from(e: crate::system::Error) -> Self {
        use crate::system::Error;
        match e {
            Error::Invalid(e) => e.into(),
            Error::RateLimited { retry_after, .. } => {
                let mut a = ApiError::new(ErrorCode::RateLimited, e.to_string());
                a.retry_after = Some(retry_after);
                a
            }
            Error::Internal => ApiError::internal(),
            Error::Store(e) => e.into(),
        }
    }
}

impl From<crate::monitor::Error> for ApiError {
    fn from(e: crate::monitor::Error) -> Self {
        use crate::monitor::Error;
        match e {
            Error::NoSample(m) => ApiError::unavailable(m),
            Error::NotFound(what) => ApiError::not_found(what),
            Error::Invalid(e) => e.into(),
            Error::Conflict { field, message } => ApiError::conflict(field, message),
            Error::Store(e) => e.into(),
        }
    }
}

impl From<crate::wireguard::Error> for ApiError {
    fn from(e: crate::wireguard::Error) -> Self {
        use crate::wireguard::Error;
        match e {
            Error::NotFound(what) => ApiError::not_found(what),
            Error::Invalid(i) => i.into(),
            Error::Conflict { field, message } => ApiError::conflict(field, message),
            Error::Refused(message) => ApiError::new(ErrorCode::Conflict, message),
            Error::Unavailable(message) => ApiError::unavailable(message),
            // Logged where they were found.
            Error::Corrupt(_) | Error::Internal => ApiError::internal(),
            Error::Store(e) => e.into(),
        }
    }
}

impl From<crate::ipam::Error> for ApiError {
    fn from(e: crate::ipam::Error) -> Self {
        use crate::ipam::Error;
        match e {
            Error::NotFound(what) => ApiError::not_found(what),
            Error::Invalid(e) => e.into(),
            Error::Conflict { field, message } => ApiError::conflict(field, message),
            Error::Unavailable(message) => ApiError::unavailable(message),
            // Logged where it was found.
            Error::Internal(_) => ApiError::internal(),
            Error::Store(e) => e.into(),
        }
    }
}

impl From<crate::bgp::Error> for ApiError {
    fn from(e: crate::bgp::Error) -> Self {
        use crate::bgp::Error;
        match e {
            Error::NotFound(what) => ApiError::not_found(what),
            Error::Invalid(e) => e.into(),
            Error::Unavailable(message) => ApiError::unavailable(message),
            Error::Internal(_) => ApiError::internal(),
            Error::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    fn sqlite(code: std::os::raw::c_int) -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            None,
        ))
    }

    #[test]
    fn a_full_or_failing_disk_is_503_with_a_clear_message() {
        let full = ApiError::from(sqlite(rusqlite::ffi::SQLITE_FULL));
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(full.message.contains("full"), "{}", full.message);
        let io = ApiError::from(sqlite(rusqlite::ffi::SQLITE_IOERR_WRITE));
        assert_eq!(io.code, ErrorCode::Unavailable);
        let other = ApiError::from(sqlite(rusqlite::ffi::SQLITE_CORRUPT));
        assert_eq!(
            (other.code, other.message.as_str()),
            (ErrorCode::Internal, "internal error")
        );
    }

    /// The kinds the WireGuard domain's unit tests assert on (`wireguard::model::fixtures::
    /// Kind`) are exactly these answers.
    #[test]
    fn wireguard_errors_keep_their_answers() {
        use crate::wireguard::Error;
        let answer = |e: Error| {
            let a = ApiError::from(e);
            (a.code, a.message, a.details.map(|d| (d.field, d.message)))
        };
        assert_eq!(
            answer(Error::invalid("mtu", "mtu must be from 1280 to 9000")),
            (
                ErrorCode::Validation,
                "mtu must be from 1280 to 9000".into(),
                Some(("mtu".into(), "mtu must be from 1280 to 9000".into()))
            )
        );
        assert_eq!(
            answer(Error::conflict("name", "taken")),
            (
                ErrorCode::Conflict,
                "taken".into(),
                Some(("name".into(), "taken".into()))
            )
        );
        assert_eq!(
            answer(Error::Refused("no key".into())),
            (ErrorCode::Conflict, "no key".into(), None)
        );
        assert_eq!(
            answer(Error::NotFound("client")),
            (ErrorCode::NotFound, "client not found".into(), None)
        );
        assert_eq!(
            answer(Error::Unavailable("no tun".into())),
            (ErrorCode::Unavailable, "no tun".into(), None)
        );
        assert_eq!(answer(Error::Corrupt("key")).0, ErrorCode::Internal);
        assert_eq!(answer(Error::Internal).1, "internal error");
        assert_eq!(
            answer(Error::from(StoreError::Closed)).0,
            ErrorCode::Unavailable
        );
    }

    fn parts(e: ApiError) -> (StatusCode, &'static str, String, Option<String>) {
        (
            e.status(),
            e.code.as_str(),
            e.message,
            e.details.map(|d| d.field),
        )
    }

    #[test]
    fn pool_errors_answer_as_the_api_always_did() {
        use crate::ipam::Error;
        let conflict = ApiError::from(Error::conflict("prefix", "overlaps"));
        assert_eq!(
            parts(conflict),
            (
                StatusCode::CONFLICT,
                "RESOURCE_CONFLICT",
                "overlaps".into(),
                Some("prefix".into())
            )
        );
        let invalid = ApiError::from(Error::invalid("prefix_length", "too short"));
        assert_eq!(
            parts(invalid.clone()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
                "too short".into(),
                Some("prefix_length".into())
            )
        );
        assert_eq!(
            invalid.details.map(|d| d.message).as_deref(),
            Some("too short")
        );
        assert_eq!(
            parts(ApiError::from(Error::NotFound("pool"))),
            (
                StatusCode::NOT_FOUND,
                "RESOURCE_NOT_FOUND",
                "pool not found".into(),
                None
            )
        );
        assert_eq!(
            ApiError::from(Error::from(StoreError::NotFound("allocation"))).message,
            "allocation not found"
        );
        assert_eq!(
            parts(ApiError::from(Error::Unavailable("no RPKI data".into()))),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "no RPKI data".into(),
                None
            )
        );
        assert_eq!(
            parts(ApiError::from(Error::Internal(
                "pool 3 has no allocator".into()
            ))),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "internal error".into(),
                None
            )
        );
    }

    #[test]
    fn bgp_errors_answer_as_the_api_always_did() {
        assert_eq!(
            parts(ApiError::from(crate::bgp::Error::NotFound("session"))).2,
            "session not found"
        );
    }
}
