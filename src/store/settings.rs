//! Queries on `settings`: small JSON values by key (system configuration changed through
//! the API, component state that must survive restarts).

use super::StoreResult;
use rusqlite::{params, Connection, OptionalExtension};

pub fn get(conn: &Connection, key: &str) -> StoreResult<Option<serde_json::Value>> {
    let text: Option<String> = conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?;
    // A value that no longer parses is treated as unset rather than failing every read.
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

pub fn put(conn: &Connection, key: &str, value: &serde_json::Value, now: i64) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        params![key, value.to_string(), now],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_overwrites_and_get_reads_back() {
        let mut c = Connection::open_in_memory().expect("db");
        crate::store::schema::migrate(&mut c).expect("schema");
        assert_eq!(get(&c, "k").expect("get"), None);
        put(&c, "k", &serde_json::json!({"a": 1}), 1).expect("put");
        put(&c, "k", &serde_json::json!([2]), 2).expect("put");
        assert_eq!(get(&c, "k").expect("get"), Some(serde_json::json!([2])));
    }
}
