//! Login, token refresh and logout: the flows behind `/auth/*`.

use super::{password, Principal};
use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::store::{tokens, users};
use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, Serialize)]
pub struct TokenGrant {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

fn grant(app: &App, token: String) -> TokenGrant {
    TokenGrant {
        access_token: token,
        token_type: "bearer",
        expires_in: app.tokens.ttl_secs(),
    }
}

fn sign(app: &App, user_id: i64, generation: i64) -> ApiResult<String> {
    app.tokens
        .issue(user_id, generation)
        .map(|issued| issued.token)
        .map_err(|e| {
            log::error!("cannot sign token: {e}");
            ApiError::internal()
        })
}

fn bad_credentials() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidCredentials,
        "invalid username or password",
    )
}

/// Checks the password (on the blocking pool, at most two at once), applying the per-IP
/// failure limit; on success issues a token and records the login time.
pub async fn login(
    app: &App,
    ip: IpAddr,
    username: &str,
    pw: String,
) -> ApiResult<(TokenGrant, users::UserRow)> {
    let now = app.uptime_secs();
    if let Err(wait) = lock(app).check(ip, now) {
        let mut e = ApiError::new(
            ErrorCode::RateLimited,
            format!("too many failed logins; try again in {wait} s"),
        );
        e.retry_after = Some(wait);
        return Err(e);
    }
    let name = username.to_string();
    let user = app
        .store
        .call(move |c| users::get_by_username(c, &name))
        .await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let ok = super::hashing(app, move || match stored {
        Some(h) => password::verify(&pw, &h),
        None => {
            // Same cost for unknown names: response time does not reveal who exists.
            password::verify_dummy(&pw);
            false
        }
    })
    .await?;
    let user = match user {
        Some(u) if ok => u,
        _ => {
            lock(app).record_failure(ip, now);
            return Err(bad_credentials());
        }
    };
    if !user.is_active {
        return Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "this account is disabled",
        ));
    }
    lock(app).record_success(ip);
    let token = sign(app, user.id, user.token_generation)?;
    let (id, at) = (user.id, crate::time::now());
    app.store
        .call(move |c| users::record_login(c, id, at))
        .await?;
    let user = users::UserRow {
        last_login: Some(at),
        ..user
    };
    Ok((grant(app, token), user))
}

/// A fresh token for the caller; the presented one is revoked (rotation), so a leaked
/// token cannot be kept alive by refreshing it.
pub async fn refresh(app: &App, who: &Principal) -> ApiResult<TokenGrant> {
    let token = sign(app, who.user_id, who.token_generation)?;
    revoke(app, who).await?;
    Ok(grant(app, token))
}

/// Revokes the presented token, remembered across restarts until it would have expired.
pub async fn revoke(app: &App, who: &Principal) -> ApiResult<()> {
    let (jti, uid, exp, now) = (
        who.jti.clone(),
        who.user_id,
        who.expires_at,
        crate::time::now(),
    );
    Ok(app
        .store
        .call(move |c| tokens::revoke(c, &jti, uid, exp, now))
        .await?)
}

fn lock(app: &App) -> std::sync::MutexGuard<'_, super::ratelimit::LoginLimiter> {
    // The limiter holds no invariant a panic could break mid-way; recover from poisoning.
    app.login_limiter.lock().unwrap_or_else(|p| p.into_inner())
}
