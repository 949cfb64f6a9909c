//! Authentication and authorisation: password hashing, tokens, the login limiter, roles and
//! permissions (pure parts, one file each), and [`authenticate`], which turns a bearer token
//! into a [`Principal`] for the router's access check.

pub mod login;
pub mod password;
pub mod ratelimit;
pub mod revocation;
pub mod roles;
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
    pub token_nonce: String,
    /// The token's id and expiry, for logout/refresh revocation.
    pub jti: String,
    pub expires_at: i64,
    /// The token was refreshed and is in its grace period: still accepted, not refreshed
    /// again.
    pub retiring: bool,
}

/// Verifies a bearer token, then checks in one database round trip that it is not revoked
/// (or still in a refresh's grace) and that its user row — the very row it was issued
/// for — still exists, is active and has not voided it.
pub async fn authenticate(app: &App, token: &str) -> ApiResult<Principal> {
    let claims = app.tokens.verify(token).map_err(|e| match e {
        TokenError::Expired => ApiError::new(ErrorCode::TokenExpired, "token has expired"),
        TokenError::Invalid => ApiError::unauthorized("invalid token"),
    })?;
    let jti = claims.jti.clone();
    let (saved, user) = app
        .store
        .call(move |c| {
            Ok((
                tokens::revoked_from(c, &jti)?,
                users::get(c, claims.user_id)?,
            ))
        })
        .await?;
    let revoked_from = match (saved, app.tokens.unsaved.revoked_from(&claims.jti)) {
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
        _ => return Err(ApiError::unauthorized("token has been revoked")),
    };
    login::save_revocations(app, true).await;
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
