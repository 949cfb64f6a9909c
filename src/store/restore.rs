//! SQL on a database being restored (`backup::restore` does the files and the journal):
//! making a staged copy ready to be this router's, carrying over what only the live
//! database knows, and closing the live connection in place for the swap.

use super::schema;
use rusqlite::Connection;
use std::path::Path;

/// Makes the database at `path` (a staged copy) ready to be this router's: sound
/// (`integrity_check`, foreign keys), of a schema this version knows (newer refused, older
/// migrated forward here, on the copy), with an active admin to log in with. With
/// `keep_local`, what names the old host is cleared. An `Err` says, in words, why the
/// archive is refused.
pub fn prepare(path: &Path, manifest_version: i64, keep_local: bool) -> Result<(), String> {
    let damaged = |e: rusqlite::Error| format!("the database in the archive is unusable: {e}");
    let mut c = Connection::open(path).map_err(damaged)?;
    let check: Vec<String> = c
        .prepare("PRAGMA integrity_check(3)")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(damaged)?;
    if check != ["ok"] {
        return Err(format!(
            "the database in the archive is damaged (integrity_check: {})",
            check.join("; ")
        ));
    }
    let version: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(damaged)?;
    if version != manifest_version {
        return Err(format!(
            "manifest.json says schema version {manifest_version}, the database is {version}"
        ));
    }
    if version > schema::VERSION {
        return Err(format!(
            "the backup was made by a newer ipv6wgm (schema version {version}; this one knows \
             up to {}): restore it with that release or a later one",
            schema::VERSION
        ));
    }
    if version < 1 {
        return Err("the database in the archive is empty (schema version 0)".into());
    }
    schema::migrate(&mut c).map_err(|e| format!("cannot bring its schema forward: {e}"))?;
    c.pragma_update(None, "foreign_keys", true)
        .map_err(damaged)?;
    let dangling: Option<String> = c
        .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(damaged)?;
    if let Some(table) = dangling {
        return Err(format!(
            "the database in the archive is inconsistent: a row of {table} refers to one that \
             does not exist"
        ));
    }
    let admins: i64 = c
        .query_row(
            "SELECT count(*) FROM users WHERE role = 'admin' AND is_active = 1",
            [],
            |r| r.get(0),
        )
        .map_err(damaged)?;
    if admins == 0 {
        return Err(
            "the database in the archive has no active admin: nobody could log in after it".into(),
        );
    }
    // The audit log lives in the log store, which a restore leaves alone (a database from
    // before it moved there still has the table).
    let mut edits = String::from("DROP TABLE IF EXISTS audit_log;");
    if keep_local {
        edits.push_str(
            "UPDATE wg_servers SET endpoint = NULL; UPDATE bgp_sessions SET local_address = NULL;",
        );
    }
    c.execute_batch(&edits).map_err(damaged)?;
    c.close().map_err(|(_, e)| damaged(e))
}

/// What the live database knows that the backup cannot, into the incoming database:
/// logouts done since the backup stay done, and where WireGuard peers were last seen (the
/// newer fact wins), so a restored device starts the handshake with a peer that still
/// holds a session instead of waiting 10–15 s for the peer's timers (`wireguard::live`).
pub fn carry_over(conn: &Connection, incoming: &Path) -> rusqlite::Result<()> {
    let name = incoming.to_string_lossy();
    conn.execute("ATTACH DATABASE ?1 AS incoming", [&*name])?;
    let r = conn
        .execute(
            "INSERT OR IGNORE INTO incoming.revoked_tokens SELECT * FROM main.revoked_tokens",
            [],
        )
        .and_then(|_| {
            conn.execute(
                "INSERT OR REPLACE INTO incoming.wg_last_seen (public_key, endpoint, handshake_at) \
                 SELECT m.public_key, m.endpoint, m.handshake_at FROM main.wg_last_seen m \
                 LEFT JOIN incoming.wg_last_seen i ON i.public_key = m.public_key \
                 WHERE i.handshake_at IS NULL OR m.handshake_at >= i.handshake_at",
                [],
            )
        });
    conn.execute("DETACH DATABASE incoming", [])?;
    r.map(|_| ())
}

/// Folds the WAL into the file and closes `conn` (an in-memory placeholder takes its place
/// until the swapped-in database is opened), so the live file is complete on its own and
/// can be renamed.
pub fn close_in_place(conn: &mut Connection) -> Result<(), String> {
    let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
    let placeholder = Connection::open_in_memory().map_err(|e| e.to_string())?;
    let old = std::mem::replace(conn, placeholder);
    if let Err((old, e)) = old.close() {
        *conn = old;
        return Err(format!("cannot close the database: {e}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database file with the current schema and one admin.
    fn database(path: &Path) {
        let mut c = Connection::open(path).expect("open");
        schema::migrate(&mut c).expect("migrate");
        c.execute(
            "INSERT INTO users (username, role, password_hash, created_at, updated_at) \
             VALUES ('admin', 'admin', 'x', 0, 0)",
            [],
        )
        .expect("admin");
    }

    #[test]
    fn a_sound_database_is_prepared_and_local_fields_cleared() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = tmp.path();
        let db = d.join("a.db");
        database(&db);
        let c = Connection::open(&db).expect("open");
        c.execute(
            "INSERT INTO wg_servers (name, interface, listen_port, endpoint, private_key, \
             public_key, created_at, updated_at) VALUES ('s','wg0',51820,'old.example',\
             'k','p',0,0)",
            [],
        )
        .ok();
        drop(c);
        prepare(&db, schema::VERSION, true).expect("prepared");
        let c = Connection::open(&db).expect("open");
        let endpoints: i64 = c
            .query_row(
                "SELECT count(*) FROM wg_servers WHERE endpoint IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(endpoints, 0);
    }

    #[test]
    fn newer_schemas_no_admin_and_garbage_are_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = tmp.path();
        let db = d.join("newer.db");
        database(&db);
        let c = Connection::open(&db).expect("open");
        c.pragma_update(None, "user_version", schema::VERSION + 1)
            .expect("version");
        drop(c);
        let e = prepare(&db, schema::VERSION + 1, false).expect_err("newer");
        assert!(e.contains("newer"), "{e}");

        let db = d.join("noadmin.db");
        let mut c = Connection::open(&db).expect("open");
        schema::migrate(&mut c).expect("migrate");
        drop(c);
        let e = prepare(&db, schema::VERSION, false).expect_err("no admin");
        assert!(e.contains("admin"), "{e}");

        let db = d.join("garbage.db");
        std::fs::write(&db, vec![0x55u8; 8192]).expect("write");
        let e = prepare(&db, schema::VERSION, false).expect_err("garbage");
        assert!(e.contains("unusable") || e.contains("damaged"), "{e}");

        let db = d.join("mismatch.db");
        database(&db);
        let e = prepare(&db, schema::VERSION - 1, false).expect_err("mismatch");
        assert!(e.contains("manifest.json"), "{e}");
    }
}
