//! Queries on `revoked_tokens`: the token ids (JWT `jti`) voided by logout or refresh.
//! A row is only needed until the token would have expired anyway, so expired rows are
//! purged whenever a new one is written; the table stays as small as the live tokens.

use super::StoreResult;
use rusqlite::{params, Connection};

pub fn revoke(
    conn: &Connection,
    jti: &str,
    user_id: i64,
    expires_at: i64,
    now: i64,
) -> StoreResult<()> {
    conn.execute("DELETE FROM revoked_tokens WHERE expires_at < ?1", [now])?;
    conn.execute(
        "INSERT OR IGNORE INTO revoked_tokens (jti, user_id, expires_at) VALUES (?1, ?2, ?3)",
        params![jti, user_id, expires_at],
    )?;
    Ok(())
}

pub fn is_revoked(conn: &Connection, jti: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?1)")?
        .query_row([jti], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_is_remembered_until_expiry() {
        let mut c = Connection::open_in_memory().expect("db");
        crate::store::schema::migrate(&mut c).expect("schema");
        revoke(&c, "a", 1, 100, 50).expect("revoke");
        assert!(is_revoked(&c, "a").expect("query"));
        assert!(!is_revoked(&c, "b").expect("query"));
        revoke(&c, "b", 1, 300, 200).expect("revoke");
        assert!(!is_revoked(&c, "a").expect("query"), "expired row purged");
        assert!(is_revoked(&c, "b").expect("query"));
    }
}
