//! Authentication and authorisation: password hashing, tokens, the login limiter, roles and
//! permissions (pure parts, one file each), and the [`Service`]: [`Service::authenticate`]
//! turns a bearer token into a [`Principal`] for the router's access check, [`login`] holds
//! the login, refresh and logout flows.

pub mod login;
pub mod password;
pub mod ratelimit;
pub mod revocation;
pub mod roles;
pub mod token;

pub use roles::{Permission, Role};

use crate::config::AuthConfig;
use crate::store::{tokens, users, Store, StoreError};
use ratelimit::LoginLimiter;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use token::{TokenError, TokenService};
use tokio::sync::Semaphore;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub token_generation: i64,
    pub token_nonce: String,
    /// The token's id and expiry, for logout/refresh revocation.
    pub jti: String,
    pub expires_at: i64,
    /// The token was refreshed and is in its grace period: still accepted, not refreshed
    /// again.
    pub retiring: bool,
}

/// What can go wrong authenticating a caller or logging in, in the words of the login.
#[derive(Debug)]
pub enum Error {
    /// Wrong name or password, or a disabled account: which, in words.
    InvalidCredentials(&'static str),
    /// Too many failed logins from the address; seconds until it may try again.
    TooManyFailures {
        retry_after: u64,
    },
    TokenExpired,
    /// A token that is not (or no longer) accepted, and why.
    Unauthorized(&'static str),
    /// Signing a token or running the password hash failed (logged where it happened).
    Internal,
    Store(StoreError),
    /// Logout or refresh could neither save nor hold the revocation (a full disk): the
    /// token is still valid.
    NotRevoked(StoreError),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<HashingStopped> for Error {
    fn from(_: HashingStopped) -> Self {
        Error::Internal
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidCredentials(m) | Error::Unauthorized(m) => f.write_str(m),
            Error::TooManyFailures { retry_after } => {
                write!(f, "too many failed logins; try again in {retry_after} s")
            }
            Error::TokenExpired => f.write_str("token has expired"),
            Error::Internal => f.write_str("internal error"),
            Error::Store(e) => e.fmt(f),
            Error::NotRevoked(e) => {
                write!(f, "{e}; the token could not be revoked and is still valid")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Password hashing on the blocking pool, a bounded number at once (each is ~tens of ms of
/// one core's time), so a burst of logins cannot occupy the async workers or every core.
/// Cheap to clone; clones share the bound.
#[derive(Clone)]
pub struct Hashing(Arc<Semaphore>);

/// The blocking pool is gone (shutting down) or the hash panicked.
#[derive(Debug)]
pub struct HashingStopped;

impl Hashing {
    pub fn new(at_once: usize) -> Hashing {
        Hashing(Arc::new(Semaphore::new(at_once)))
    }

    pub async fn run<R, F>(&self, f: F) -> Result<R, HashingStopped>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let _permit = self.0.acquire().await.map_err(|_| HashingStopped)?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|_| HashingStopped)
    }
}

/// Who is calling: bearer tokens to principals, and the login, refresh and logout flows
/// ([`login`]). Holds the signing key, the login limiter and the revocations not saved yet.
pub struct Service {
    store: Store,
    tokens: Arc<TokenService>,
    login_limiter: Mutex<LoginLimiter>,
    hashing: Hashing,
    refresh_grace_secs: u64,
    /// The login limiter's clock (monotonic, immune to NTP steps).
    started: Instant,
}

impl Service {
    pub fn new(
        store: Store,
        tokens: Arc<TokenService>,
        hashing: Hashing,
        config: &AuthConfig,
    ) -> Service {
        Service {
            store,
            tokens,
            login_limiter: Mutex::new(LoginLimiter::new(
                config.login_max_failures,
                config.login_window_secs,
            )),
            hashing,
            refresh_grace_secs: config.refresh_grace_secs,
            started: Instant::now(),
        }
    }

    /// Verifies a bearer token, then checks in one database round trip that it is not
    /// revoked (or still in a refresh's grace) and that its user row — the very row it was
    /// issued for — still exists, is active and has not voided it.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, Error> {
        let claims = self.tokens.verify(token).map_err(|e| match e {
            TokenError::Expired => Error::TokenExpired,
            TokenError::Invalid => Error::Unauthorized("invalid token"),
        })?;
        let jti = claims.jti.clone();
        let (saved, user) = self
            .store
            .call(move |c| {
                Ok((
                    tokens::revoked_from(c, &jti)?,
                    users::get(c, claims.user_id)?,
                ))
            })
            .await?;
        let revoked_from = match (saved, self.tokens.unsaved.revoked_from(&claims.jti)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let user = match user {
            Some(u)
                if revocation::accepted(revoked_from, crate::time::now())
                    && u.is_active
                    && u.token_generation == claims.generation
                    && u.token_nonce == claims.nonce =>
            {
                u
            }
            _ => return Err(Error::Unauthorized("token has been revoked")),
        };
        self.save_revocations(true).await;
        Ok(Principal {
            user_id: user.id,
            username: user.username,
            role: user.role,
            token_generation: user.token_generation,
            token_nonce: user.token_nonce,
            jti: claims.jti,
            expires_at: claims.expires_at,
            retiring: revoked_from.is_some(),
        })
    }
}

/// Bytes from the OS CSPRNG. Panics only if the kernel has no randomness source at all,
/// in which case no key, salt or password could be made safely anyway.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    #[allow(clippy::expect_used)]
    getrandom::getrandom(&mut b).expect("OS random number generator unavailable");
    b
}

pub fn random_hex<const N: usize>() -> String {
    random_bytes::<N>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A 20-character password from an alphabet without look-alikes (about 115 bits).
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    // 256 % 56 != 0: reject bytes past the last full multiple to stay unbiased.
    let limit = 256 - 256 % ALPHABET.len();
    let mut out = String::with_capacity(20);
    while out.len() < 20 {
        for b in random_bytes::<32>() {
            if (b as usize) < limit && out.len() < 20 {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_password_shape() {
        let p = random_password();
        assert_eq!(p.len(), 20);
        assert!(p
            .chars()
            .all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c)));
        assert_ne!(p, random_password());
    }
}
