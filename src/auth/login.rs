//! Login, token refresh and logout: the flows behind `/auth/*`.

use super::{password, Principal};
use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::store::tokens::{self, Revocation};
use crate::store::users;
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

fn sign(app: &App, user_id: i64, generation: i64, nonce: &str) -> ApiResult<String> {
    app.tokens
        .issue(user_id, generation, nonce)
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
    let token = sign(app, user.id, user.token_generation, &user.token_nonce)?;
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

/// A fresh token for the caller. The presented one is revoked (rotation, so a leaked token
/// cannot be kept alive by refreshing it) after `auth.refresh_grace_secs`, so requests a
/// client sent with it just before still succeed; it cannot be refreshed a second time.
pub async fn refresh(app: &App, who: &Principal) -> ApiResult<TokenGrant> {
    if who.retiring {
        return Err(ApiError::unauthorized(
            "this token was refreshed already; use the new one",
        ));
    }
    let token = sign(app, who.user_id, who.token_generation, &who.token_nonce)?;
    let grace = i64::try_from(app.config.auth.refresh_grace_secs).unwrap_or(i64::MAX);
    revoke(app, who, crate::time::now().saturating_add(grace)).await?;
    Ok(grant(app, token))
}

/// Logout: revokes the presented token at once, remembered across restarts until it would
/// have expired.
pub async fn logout(app: &App, who: &Principal) -> ApiResult<()> {
    revoke(app, who, crate::time::now()).await
}

/// Revokes `who`'s token from `revoked_from` on: held in memory first (refused from that
/// moment whatever happens next), then saved. A full disk does not make this fail while the
/// token keeps working: the revocation stays held and is saved later (see
/// [`super::revocation`]); only when the memory list is full too is it an error.
async fn revoke(app: &App, who: &Principal, revoked_from: i64) -> ApiResult<()> {
    let r = Revocation {
        jti: who.jti.clone(),
        user_id: who.user_id,
        expires_at: who.expires_at,
        revoked_from,
    };
    let held = app.tokens.unsaved.hold(r.clone(), crate::time::now());
    match save(app, false, (!held).then_some(r)).await {
        Ok(()) => Ok(()),
        Err(e) if held && e.disk_problem().is_some() => {
            log::warn!(
                "token revocation held in memory until the database can be written ({e}); \
                 a restart before then would forget it"
            );
            Ok(())
        }
        Err(e) if e.disk_problem().is_some() => {
            let mut err = ApiError::from(e);
            err.message = format!(
                "{}; the token could not be revoked and is still valid",
                err.message
            );
            Err(err)
        }
        Err(e) => Err(e.into()),
    }
}

/// Saves the revocations held in memory (only if a retry is due, with `due_only`), and
/// `extra` (one that could not be held). Failures keep them held.
async fn save(
    app: &App,
    due_only: bool,
    extra: Option<Revocation>,
) -> crate::store::StoreResult<()> {
    let mut batch = app
        .tokens
        .unsaved
        .to_save(due_only, std::time::Instant::now());
    batch.extend(extra);
    if batch.is_empty() {
        return Ok(());
    }
    let (rows, now) = (batch.clone(), crate::time::now());
    app.store
        .call(move |c| {
            let tx = c.transaction()?;
            for r in &rows {
                tokens::revoke(&tx, r, now)?;
            }
            Ok(tx.commit()?)
        })
        .await?;
    app.tokens.unsaved.saved(&batch);
    Ok(())
}

/// Retries saving held revocations when one is due; called on the way through
/// authentication, so it costs nothing while none is held.
pub async fn save_revocations(app: &App, due_only: bool) {
    if app.tokens.unsaved.is_empty() {
        return;
    }
    match save(app, due_only, None).await {
        Ok(()) if app.tokens.unsaved.is_empty() => log::info!("held token revocations saved"),
        Ok(()) => {}
        Err(e) => log::debug!("held token revocations not saved yet: {e}"),
    }
}

fn lock(app: &App) -> std::sync::MutexGuard<'_, super::ratelimit::LoginLimiter> {
    // The limiter holds no invariant a panic could break mid-way; recover from poisoning.
    app.login_limiter.lock().unwrap_or_else(|p| p.into_inner())
}
