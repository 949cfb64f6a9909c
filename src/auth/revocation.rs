//! When a revoked token stops being accepted (pure), and the revocations the database could
//! not take yet (a full disk), held in memory until it can.
//!
//! Logout must never answer "failed" while the token keeps working, nor "done" while it
//! does. So a revocation is held here first — `auth::Service::authenticate` refuses held tokens
//! at once — and then saved; if saving fails because the disk is full, it stays held, the
//! logout succeeds, and saving is tried again (at most every [`RETRY`]) until the disk has
//! room. Only a restart before then forgets it, which the log says. The list is bounded:
//! when it is full, the logout answers 503 and says that the token is still valid.

use crate::store::tokens::Revocation;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Whether a token revoked from `revoked_from` (`None`: not revoked) is accepted at `now`.
pub fn accepted(revoked_from: Option<i64>, now: i64) -> bool {
    revoked_from.is_none_or(|t| now < t)
}

/// Revocations held in memory at most (about 100 bytes each).
pub const CAPACITY: usize = 1024;
/// How often saving held revocations is retried.
pub const RETRY: Duration = Duration::from_secs(2);

#[derive(Default)]
struct State {
    held: Vec<Revocation>,
    last_try: Option<Instant>,
}

/// Revocations not saved yet.
#[derive(Default)]
pub struct Unsaved(Mutex<State>);

impl Unsaved {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain data, no invariant a panic could break half-way.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds `r` until [`saved`](Self::saved) (tokens past their expiry are dropped first).
    /// `false`: the list is full and `r` is not held.
    pub fn hold(&self, r: Revocation, now: i64) -> bool {
        let mut s = self.state();
        s.held.retain(|h| h.expires_at >= now);
        if r.expires_at < now {
            return true; // expired: refused anyway
        }
        if let Some(h) = s.held.iter_mut().find(|h| h.jti == r.jti) {
            h.revoked_from = h.revoked_from.min(r.revoked_from);
            return true;
        }
        if s.held.len() >= CAPACITY {
            return false;
        }
        s.held.push(r);
        true
    }

    /// The earliest held revocation of token `jti`.
    pub fn revoked_from(&self, jti: &str) -> Option<i64> {
        let s = self.state();
        if s.held.is_empty() {
            return None;
        }
        s.held
            .iter()
            .filter(|h| h.jti == jti)
            .map(|h| h.revoked_from)
            .min()
    }

    /// What to save now: everything held, unless nothing is or `due_only` and the last
    /// try was less than [`RETRY`] ago.
    pub fn to_save(&self, due_only: bool, now: Instant) -> Vec<Revocation> {
        let mut s = self.state();
        if s.held.is_empty() {
            return Vec::new();
        }
        if due_only && s.last_try.is_some_and(|t| now.duration_since(t) < RETRY) {
            return Vec::new();
        }
        s.last_try = Some(now);
        s.held.clone()
    }

    /// `saved` are in the database now; stop holding them (unless one was revoked again,
    /// earlier, in the meantime).
    pub fn saved(&self, saved: &[Revocation]) {
        self.state().held.retain(|h| !saved.contains(h));
    }

    pub fn len(&self) -> usize {
        self.state().held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(jti: &str, revoked_from: i64) -> Revocation {
        Revocation {
            jti: jti.into(),
            user_id: 1,
            expires_at: 1000,
            revoked_from,
        }
    }

    #[test]
    fn accepted_until_the_moment_of_revocation() {
        assert!(accepted(None, 500));
        // Logout: revoked from now.
        assert!(!accepted(Some(100), 100));
        // Refresh with a 30 s grace at 100: accepted up to 129, refused from 130.
        assert!(accepted(Some(130), 100));
        assert!(accepted(Some(130), 129));
        assert!(!accepted(Some(130), 130));
        assert!(!accepted(Some(130), 10_000));
    }

    #[test]
    fn held_revocations_count_until_saved() {
        let u = Unsaved::default();
        assert!(u.hold(rev("a", 130), 100));
        assert!(u.hold(rev("a", 110), 110), "an earlier moment wins");
        assert_eq!(u.revoked_from("a"), Some(110));
        assert_eq!(u.revoked_from("b"), None);
        let t0 = Instant::now();
        let batch = u.to_save(true, t0);
        assert_eq!(batch, vec![rev("a", 110)]);
        assert!(u.to_save(true, t0 + RETRY / 2).is_empty(), "not due yet");
        assert_eq!(
            u.to_save(false, t0 + RETRY / 2).len(),
            1,
            "a logout saves now"
        );
        u.saved(&batch);
        assert!(u.is_empty());
        assert!(u.to_save(false, t0 + RETRY).is_empty());
    }

    #[test]
    fn bounded_and_expired_ones_leave() {
        let u = Unsaved::default();
        for i in 0..CAPACITY {
            assert!(u.hold(rev(&i.to_string(), 0), 0));
        }
        assert!(!u.hold(rev("one more", 0), 0), "full");
        assert_eq!(u.len(), CAPACITY);
        // Past the tokens' expiry nothing needs holding.
        assert!(u.hold(rev("later", 1001), 1001));
        assert_eq!(u.len(), 0, "expired entries dropped, and 'later' too");
    }
}
