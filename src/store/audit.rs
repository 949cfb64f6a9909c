//! Queries on `audit_log`: one row per mutating API request (who, from where, what, result).
//! The table is capped at a configured number of newest rows, trimmed in batches so that
//! a write costs one INSERT almost always.

use super::StoreResult;
use rusqlite::{params, Connection};

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub ts: i64,
    /// `INFO` for success, `WARNING` for a refused request (4xx), `ERROR` for 5xx.
    pub level: &'static str,
    /// Endpoint group: `auth`, `users`, …
    pub module: String,
    /// Stable action name, e.g. `users.create`.
    pub action: String,
    pub message: String,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub ip: String,
    pub user_agent: Option<String>,
    pub method: String,
    pub path: String,
    pub target: Option<String>,
    pub status: u16,
}

/// Rows over the cap that are tolerated before a trim (keeps trims rare).
const TRIM_SLACK: i64 = 256;

pub fn insert(conn: &Connection, e: &AuditEntry, max_entries: u32) -> StoreResult<i64> {
    conn.prepare_cached(
        "INSERT INTO audit_log (ts, level, module, action, message, user_id, username, ip, \
         user_agent, method, path, target, status) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        e.ts,
        e.level,
        e.module,
        e.action,
        e.message,
        e.user_id,
        e.username,
        e.ip,
        e.user_agent,
        e.method,
        e.path,
        e.target,
        e.status
    ])?;
    let id = conn.last_insert_rowid();
    // Ids only grow, so "id <= newest - cap" removes exactly the rows beyond the cap.
    if id % TRIM_SLACK == 0 {
        conn.execute(
            "DELETE FROM audit_log WHERE id <= ?1",
            [id - i64::from(max_entries)],
        )?;
    }
    Ok(id)
}

pub fn count(conn: &Connection) -> StoreResult<i64> {
    Ok(conn.query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))?)
}

/// The newest `limit` entries, newest first.
pub fn recent(conn: &Connection, limit: u32) -> StoreResult<Vec<AuditEntry>> {
    let mut stmt = conn.prepare(
        "SELECT ts, level, module, action, message, user_id, username, ip, user_agent, \
         method, path, target, status FROM audit_log ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        let level: String = r.get(1)?;
        Ok(AuditEntry {
            ts: r.get(0)?,
            level: level_name(&level),
            module: r.get(2)?,
            action: r.get(3)?,
            message: r.get(4)?,
            user_id: r.get(5)?,
            username: r.get(6)?,
            ip: r.get(7)?,
            user_agent: r.get(8)?,
            method: r.get(9)?,
            path: r.get(10)?,
            target: r.get(11)?,
            status: r.get(12)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn level_for_status(status: u16) -> &'static str {
    match status {
        500.. => "ERROR",
        400.. => "WARNING",
        _ => "INFO",
    }
}

fn level_name(s: &str) -> &'static str {
    match s {
        "ERROR" => "ERROR",
        "WARNING" => "WARNING",
        _ => "INFO",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: i64) -> AuditEntry {
        AuditEntry {
            ts: i,
            level: "INFO",
            module: "users".into(),
            action: "users.create".into(),
            message: format!("m{i}"),
            user_id: Some(1),
            username: Some("admin".into()),
            ip: "::1".into(),
            user_agent: None,
            method: "POST".into(),
            path: "/api/v1/users".into(),
            target: None,
            status: 201,
        }
    }

    #[test]
    fn log_is_capped_to_newest_entries() {
        let mut c = Connection::open_in_memory().expect("db");
        crate::store::schema::migrate(&mut c).expect("schema");
        for i in 1..=1024 {
            insert(&c, &entry(i), 100).expect("insert");
        }
        let n = count(&c).expect("count");
        assert!((100..=100 + TRIM_SLACK).contains(&n), "{n} rows kept");
        let newest = recent(&c, 1).expect("recent");
        assert_eq!(newest[0], entry(1024));
    }

    #[test]
    fn levels_follow_status() {
        assert_eq!(level_for_status(201), "INFO");
        assert_eq!(level_for_status(403), "WARNING");
        assert_eq!(level_for_status(503), "ERROR");
    }
}
