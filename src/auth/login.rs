//! Login, token refresh and logout: the flows behind `/auth/*`.

use super::{password, Error, Principal, Service};
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

impl Service {
    fn grant(&self, token: String) -> TokenGrant {
        TokenGrant {
            access_token: token,
            token_type: "bearer",
            expires_in: self.tokens.ttl_secs(),
        }
    }

    fn sign(&self, user_id: i64, generation: i64, nonce: &str) -> Result<String, Error> {
        self.tokens
            .issue(user_id, generation, nonce)
            .map(|issued| issued.token)
            .map_err(|e| {
                log::error!("cannot sign token: {e}");
                Error::Internal
            })
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, super::ratelimit::LoginLimiter> {
        crate::sync::lock(&self.login_limiter)
    }

    /// Checks the password (on the blocking pool, at most two at once), applying the per-IP
    /// failure limit; on success issues a token and records the login time.
    pub async fn login(
        &self,
        ip: IpAddr,
        username: &str,
        pw: String,
    ) -> Result<(TokenGrant, users::UserRow), Error> {
        let now = self.started.elapsed().as_secs();
        if let Err(wait) = self.limiter().check(ip, now) {
            return Err(Error::TooManyFailures { retry_after: wait });
        }
        let name = username.to_string();
        let user = self
            .store
            .call(move |c| users::get_by_username(c, &name))
            .await?;
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let ok = self
            .hashing
            .run(move || match stored {
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
                self.limiter().record_failure(ip, now);
                return Err(Error::InvalidCredentials("invalid username or password"));
            }
        };
        if !user.is_active {
            return Err(Error::InvalidCredentials("this account is disabled"));
        }
        self.limiter().record_success(ip);
        let token = self.sign(user.id, user.token_generation, &user.token_nonce)?;
        let (id, at) = (user.id, crate::time::now());
        self.store
            .call(move |c| users::record_login(c, id, at))
            .await?;
        let user = users::UserRow {
            last_login: Some(at),
            ..user
        };
        Ok((self.grant(token), user))
    }

    /// A fresh token for the caller. The presented one is revoked (rotation, so a leaked
    /// token cannot be kept alive by refreshing it) after `auth.refresh_grace_secs`, so
    /// requests a client sent with it just before still succeed; it cannot be refreshed a
    /// second time.
    pub async fn refresh(&self, who: &Principal) -> Result<TokenGrant, Error> {
        if who.retiring {
            return Err(Error::Unauthorized(
                "this token was refreshed already; use the new one",
            ));
        }
        let token = self.sign(who.user_id, who.token_generation, &who.token_nonce)?;
        let grace = i64::try_from(self.refresh_grace_secs).unwrap_or(i64::MAX);
        self.revoke(who, crate::time::now().saturating_add(grace))
            .await?;
        Ok(self.grant(token))
    }

    /// Logout: revokes the presented token at once, remembered across restarts until it
    /// would have expired.
    pub async fn logout(&self, who: &Principal) -> Result<(), Error> {
        self.revoke(who, crate::time::now()).await
    }

    /// Revokes `who`'s token from `revoked_from` on: held in memory first (refused from
    /// that moment whatever happens next), then saved. A full disk does not make this fail
    /// while the token keeps working: the revocation stays held and is saved later (see
    /// [`super::revocation`]); only when the memory list is full too is it an error.
    async fn revoke(&self, who: &Principal, revoked_from: i64) -> Result<(), Error> {
        let r = Revocation {
            jti: who.jti.clone(),
            user_id: who.user_id,
            expires_at: who.expires_at,
            revoked_from,
        };
        let held = self.tokens.unsaved.hold(r.clone(), crate::time::now());
        match self.save(false, (!held).then_some(r)).await {
            Ok(()) => Ok(()),
            Err(e) if held && e.disk_problem().is_some() => {
                log::warn!(
                    "token revocation held in memory until the database can be written ({e}); \
                     a restart before then would forget it"
                );
                Ok(())
            }
            Err(e) if e.disk_problem().is_some() => Err(Error::NotRevoked(e)),
            Err(e) => Err(e.into()),
        }
    }

    /// Saves the revocations held in memory (only if a retry is due, with `due_only`), and
    /// `extra` (one that could not be held). Failures keep them held.
    async fn save(
        &self,
        due_only: bool,
        extra: Option<Revocation>,
    ) -> crate::store::StoreResult<()> {
        let mut batch = self
            .tokens
            .unsaved
            .to_save(due_only, std::time::Instant::now());
        batch.extend(extra);
        if batch.is_empty() {
            return Ok(());
        }
        let (rows, now) = (batch.clone(), crate::time::now());
        self.store
            .write(move |tx| {
                for r in &rows {
                    tokens::revoke(tx, r, now)?;
                }
                Ok::<_, crate::store::StoreError>(())
            })
            .await?;
        self.tokens.unsaved.saved(&batch);
        Ok(())
    }

    /// Retries saving held revocations when one is due; called on the way through
    /// authentication, so it costs nothing while none is held.
    pub async fn save_revocations(&self, due_only: bool) {
        if self.tokens.unsaved.is_empty() {
            return;
        }
        match self.save(due_only, None).await {
            Ok(()) if self.tokens.unsaved.is_empty() => log::info!("held token revocations saved"),
            Ok(()) => {}
            Err(e) => log::debug!("held token revocations not saved yet: {e}"),
        }
    }
}
