//! Authentication and authorisation: password hashing, tokens, the login limiter, roles and
//! permissions (pure parts, one file each), and [`authenticate`], which turns a bearer token
//! into a [`Principal`] for the router's access check.

pub mod password;
pub mod ratelimit;
pub mod roles;
pub mod session;
pub mod token;

pub use roles::{Permission, Role};

use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::store::{tokens, users};
use token::TokenError;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub token_generation: i64,
    /// The token's id and expiry, for logout/refresh revocation.
    pub jti: String,
    pub expires_at: i64,
}

/// Verifies a bearer token, then checks in one database round trip that it is not revoked
/// and that its user still exists, is active and has not voided it.
pub async fn authenticate(app: &App, token: &str) -> ApiResult<Principal> {
    let claims = app.tokens.verify(token).map_err(|e| match e {
        TokenError::Expired => ApiError::new(ErrorCode::TokenExpired, "token has expired"),
        TokenError::Invalid => ApiError::unauthorized("invalid token"),
    })?;
    let jti = claims.jti.clone();
    let (revoked, user) = app
        .store
        .call(move |c| Ok((tokens::is_revoked(c, &jti)?, users::get(c, claims.user_id)?)))
        .await?;
    let user = match user {
        Some(u) if !revoked && u.is_active && u.token_generation == claims.generation => u,
        _ => return Err(ApiError::unauthorized("token has been revoked")),
    };
    Ok(Principal {
        user_id: user.id,
        username: user.username,
        role: user.role,
        token_generation: user.token_generation,
        jti: claims.jti,
        expires_at: claims.expires_at,
    })
}

/// Runs password hashing `f` on the blocking pool, at most `App::hashing` at once, so a
/// burst of logins cannot occupy the async workers or every core.
pub async fn hashing<R, F>(app: &App, f: F) -> ApiResult<R>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let _permit = app
        .hashing
        .acquire()
        .await
        .map_err(|_| ApiError::internal())?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::internal())
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
