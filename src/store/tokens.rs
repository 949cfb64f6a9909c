//! Queries on `revoked_tokens`: the token ids (JWT `jti`) voided by logout or refresh, each
//! from a moment on (`revoked_from`: at once for a logout, after a short grace for a
//! refreshed token). A row is only needed until the token would have expired anyway, so
//! expired rows are purged whenever a new one is written; the table stays as small as the
//! live tokens.

use super::StoreResult;
use rusqlite::{params, Connection, OptionalExtension};

/// A token that stops being accepted at `revoked_from` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub jti: String,
    pub user_id: i64,
    /// The token's own expiry: the row can go after it.
    pub expires_at: i64,
    pub revoked_from: i64,
}

/// Records `r`. A token revoked twice keeps the earlier moment (a logout during a refresh's
/// grace ends the grace).
pub fn revoke(conn: &Connection, r: &Revocation, now: i64) -> StoreResult<()> {
    conn.execute("DELETE FROM revoked_tokens WHERE expires_at < ?1", [now])?;
    conn.execute(
        "INSERT INTO revoked_tokens (jti, user_id, expires_at, revoked_from) \
         VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (jti) DO UPDATE SET revoked_from = min(revoked_from, excluded.revoked_from)",
        params![r.jti, r.user_id, r.expires_at, r.revoked_from],
    )?;
    Ok(())
}

/// When token `jti` stops (or stopped) being accepted; `None`: it is not revoked.
pub fn revoked_from(conn: &Connection, jti: &str) -> StoreResult<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT revoked_from FROM revoked_tokens WHERE jti = ?1")?
        .query_row([jti], |r| r.get(0))
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(jti: &str, expires_at: i64, revoked_from: i64) -> Revocation {
        Revocation {
            jti: jti.into(),
            user_id: 1,
            expires_at,
            revoked_from,
        }
    }

    #[test]
    fn revocation_is_remembered_until_expiry() {
        let c = crate::store::test_db();
        revoke(&c, &rev("a", 100, 50), 50).expect("revoke");
        assert_eq!(revoked_from(&c, "a").expect("query"), Some(50));
        assert_eq!(revoked_from(&c, "b").expect("query"), None);
        revoke(&c, &rev("b", 300, 200), 200).expect("revoke");
        assert_eq!(
            revoked_from(&c, "a").expect("query"),
            None,
            "expired row purged"
        );
        assert_eq!(revoked_from(&c, "b").expect("query"), Some(200));
    }

    #[test]
    fn a_second_revocation_only_brings_the_moment_forward() {
        let c = crate::store::test_db();
        revoke(&c, &rev("a", 1000, 130), 100).expect("refresh: grace");
        revoke(&c, &rev("a", 1000, 110), 110).expect("logout");
        assert_eq!(revoked_from(&c, "a").expect("query"), Some(110));
        revoke(&c, &rev("a", 1000, 140), 120).expect("a later refresh");
        assert_eq!(revoked_from(&c, "a").expect("query"), Some(110));
    }
}
