//! Versioned schema migrations, tracked in `PRAGMA user_version`.
//!
//! `MIGRATIONS[i]` moves the schema from version `i` to `i + 1`; each runs in its own
//! transaction together with the version bump. Append new ones, never edit old ones. A
//! database whose version is newer than this binary knows (a downgrade) is refused, because
//! an older binary would silently misread it.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: users, revoked tokens, settings, audit log.
    r#"
    CREATE TABLE users (
        id                 INTEGER PRIMARY KEY,
        username           TEXT    NOT NULL UNIQUE COLLATE NOCASE,
        email              TEXT,
        full_name          TEXT,
        role               TEXT    NOT NULL CHECK (role IN ('admin','manager','user','viewer')),
        is_active          INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0,1)),
        password_hash      TEXT    NOT NULL,
        -- a token is valid only while it carries this value (bumped by password reset,
        -- deactivation or role change, which voids every token the user holds)
        token_generation   INTEGER NOT NULL DEFAULT 0,
        last_login         INTEGER,
        created_at         INTEGER NOT NULL,
        updated_at         INTEGER NOT NULL
    );
    CREATE TABLE revoked_tokens (
        jti        TEXT    PRIMARY KEY,
        user_id    INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);
    CREATE TABLE settings (
        key        TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE audit_log (
        id         INTEGER PRIMARY KEY,
        ts         INTEGER NOT NULL,
        level      TEXT    NOT NULL,
        module     TEXT    NOT NULL,
        action     TEXT    NOT NULL,
        message    TEXT    NOT NULL,
        user_id    INTEGER,
        username   TEXT,
        ip         TEXT    NOT NULL,
        user_agent TEXT,
        method     TEXT    NOT NULL,
        path       TEXT    NOT NULL,
        target     TEXT,
        status     INTEGER NOT NULL
    );
    CREATE INDEX audit_log_ts ON audit_log (ts);
    "#,
    // 2: WireGuard servers and their clients. Addresses are canonical text ("10.0.0.1/24"
    // for a server: its address and subnet; "10.0.0.2" for a client), lists are JSON arrays.
    r#"
    CREATE TABLE wg_servers (
        id                   INTEGER PRIMARY KEY,
        name                 TEXT    NOT NULL UNIQUE COLLATE NOCASE,
        interface            TEXT    NOT NULL UNIQUE,
        description          TEXT,
        listen_port          INTEGER NOT NULL UNIQUE CHECK (listen_port BETWEEN 1 AND 65535),
        ipv4_address         TEXT,
        ipv6_address         TEXT,
        dns_servers          TEXT    NOT NULL DEFAULT '[]',
        mtu                  INTEGER NOT NULL DEFAULT 1420,
        endpoint             TEXT,
        -- default for clients that do not set their own
        persistent_keepalive INTEGER,
        private_key          TEXT    NOT NULL,
        public_key           TEXT    NOT NULL,
        -- desired running state: servers with 1 are started again after a restart
        is_active            INTEGER NOT NULL DEFAULT 0 CHECK (is_active IN (0,1)),
        created_at           INTEGER NOT NULL,
        updated_at           INTEGER NOT NULL,
        CHECK (ipv4_address IS NOT NULL OR ipv6_address IS NOT NULL)
    );
    CREATE TABLE wg_clients (
        id                   INTEGER PRIMARY KEY,
        server_id            INTEGER NOT NULL REFERENCES wg_servers (id) ON DELETE CASCADE,
        name                 TEXT    NOT NULL COLLATE NOCASE,
        description          TEXT,
        enabled              INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),
        public_key           TEXT    NOT NULL UNIQUE,
        -- NULL when the client brought its own key pair or was imported
        private_key          TEXT,
        preshared_key        TEXT,
        ipv4_address         TEXT,
        ipv6_address         TEXT,
        -- what the client routes into the tunnel (its own config's AllowedIPs)
        allowed_ips          TEXT    NOT NULL DEFAULT '[]',
        dns_servers          TEXT    NOT NULL DEFAULT '[]',
        mtu                  INTEGER,
        persistent_keepalive INTEGER,
        -- what the server routes to the client besides its addresses
        routed_prefixes      TEXT    NOT NULL DEFAULT '[]',
        created_at           INTEGER NOT NULL,
        updated_at           INTEGER NOT NULL,
        UNIQUE (server_id, name)
    );
    CREATE UNIQUE INDEX wg_clients_ipv4 ON wg_clients (server_id, ipv4_address);
    CREATE UNIQUE INDEX wg_clients_ipv6 ON wg_clients (server_id, ipv6_address);
    "#,
    // 3: IPv6 prefix pools, the prefixes handed out from them, and their whitelists.
    // Prefixes are canonical text ("2001:db8::/48", host bits zero). An allocation for a
    // WireGuard client (`client_id`) is also one of that client's routed_prefixes.
    r#"
    CREATE TABLE ipv6_pools (
        id                INTEGER PRIMARY KEY,
        name              TEXT    NOT NULL UNIQUE COLLATE NOCASE,
        prefix            TEXT    NOT NULL UNIQUE,
        -- the size handed out by default, and the range a request may ask for
        prefix_length     INTEGER NOT NULL CHECK (prefix_length BETWEEN 8 AND 128),
        min_prefix_length INTEGER NOT NULL CHECK (min_prefix_length BETWEEN 8 AND 128),
        max_prefix_length INTEGER NOT NULL CHECK (max_prefix_length BETWEEN 8 AND 128),
        description       TEXT,
        status            TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active','disabled')),
        auto_announce_bgp INTEGER NOT NULL DEFAULT 0 CHECK (auto_announce_bgp IN (0,1)),
        created_at        INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL,
        CHECK (min_prefix_length <= prefix_length AND prefix_length <= max_prefix_length)
    );
    CREATE TABLE ipv6_allocations (
        id            INTEGER PRIMARY KEY,
        pool_id       INTEGER NOT NULL REFERENCES ipv6_pools (id) ON DELETE CASCADE,
        prefix        TEXT    NOT NULL UNIQUE,
        -- a WireGuard client; the domain deletes its allocations with it (the cascade is
        -- the backstop)
        client_id     INTEGER REFERENCES wg_clients (id) ON DELETE CASCADE,
        client_name   TEXT    COLLATE NOCASE,
        description   TEXT,
        auto_announce INTEGER NOT NULL DEFAULT 0 CHECK (auto_announce IN (0,1)),
        allocated_at  INTEGER NOT NULL
    );
    -- one allocation per client and pool (asking again returns it)
    CREATE UNIQUE INDEX ipv6_allocations_client ON ipv6_allocations (pool_id, client_id)
        WHERE client_id IS NOT NULL;
    CREATE UNIQUE INDEX ipv6_allocations_name ON ipv6_allocations (pool_id, client_name)
        WHERE client_id IS NULL AND client_name IS NOT NULL;
    CREATE INDEX ipv6_allocations_pool ON ipv6_allocations (pool_id, id);
    CREATE INDEX ipv6_allocations_client_id ON ipv6_allocations (client_id);
    CREATE TABLE ipv6_whitelist (
        id          INTEGER PRIMARY KEY,
        pool_id     INTEGER NOT NULL REFERENCES ipv6_pools (id) ON DELETE CASCADE,
        prefix      TEXT    NOT NULL,
        description TEXT,
        created_at  INTEGER NOT NULL,
        UNIQUE (pool_id, prefix)
    );
    "#,
    // 4: BGP sessions and the announcements we originate. Addresses and prefixes are
    // canonical text. The password is needed in clear for TCP-MD5 (the database file is
    // private to the service); the API never returns it.
    r#"
    CREATE TABLE bgp_sessions (
        id            INTEGER PRIMARY KEY,
        name          TEXT    NOT NULL UNIQUE COLLATE NOCASE,
        neighbor      TEXT    NOT NULL,
        remote_as     INTEGER NOT NULL CHECK (remote_as BETWEEN 1 AND 4294967295),
        local_as      INTEGER CHECK (local_as BETWEEN 1 AND 4294967295),
        hold_time     INTEGER NOT NULL DEFAULT 90
                      CHECK (hold_time = 0 OR hold_time BETWEEN 3 AND 65535),
        password      TEXT,
        description   TEXT,
        enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),
        local_address TEXT,
        local_port    INTEGER NOT NULL DEFAULT 179 CHECK (local_port BETWEEN 1 AND 65535),
        remote_port   INTEGER NOT NULL DEFAULT 179 CHECK (remote_port BETWEEN 1 AND 65535),
        passive       INTEGER NOT NULL DEFAULT 0 CHECK (passive IN (0,1)),
        max_prefixes  INTEGER NOT NULL CHECK (max_prefixes >= 0),
        next_hop_ipv6 TEXT,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        UNIQUE (neighbor, local_port)
    );
    CREATE TABLE bgp_announcements (
        id          INTEGER PRIMARY KEY,
        -- NULL: announced to every session
        session_id  INTEGER REFERENCES bgp_sessions (id) ON DELETE CASCADE,
        prefix      TEXT    NOT NULL,
        next_hop    TEXT,
        -- ASNs after ours, space-separated ("" = we originate)
        as_path     TEXT    NOT NULL DEFAULT '',
        -- standard and large communities, space-separated
        community   TEXT    NOT NULL DEFAULT '',
        description TEXT,
        enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),
        -- announce even when RPKI says the origin is invalid
        force_announce INTEGER NOT NULL DEFAULT 0 CHECK (force_announce IN (0,1)),
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX bgp_announcements_prefix
        ON bgp_announcements (prefix, ifnull(session_id, 0));
    "#,
    // 5: alert rules, with the built-in defaults users can edit or delete. (The audit log
    // moved to the log store, `logs.entries`; `store::logs::adopt_audit_log` moves old rows.)
    r#"
    CREATE TABLE alert_rules (
        id               TEXT    PRIMARY KEY,
        name             TEXT    NOT NULL,
        metric_name      TEXT    NOT NULL,
        condition        TEXT    NOT NULL CHECK (condition IN ('>','>=','<','<=','==','!=')),
        threshold        REAL    NOT NULL,
        level            TEXT    NOT NULL CHECK (level IN ('info','warning','error','critical')),
        enabled          INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),
        cooldown_minutes INTEGER NOT NULL DEFAULT 5 CHECK (cooldown_minutes >= 0),
        description      TEXT,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO alert_rules (id, name, metric_name, condition, threshold, level, enabled,
                             cooldown_minutes, description, created_at, updated_at)
    VALUES
      ('cpu_high', 'CPU usage high', 'system.cpu.usage', '>', 90, 'warning', 1, 5,
       'CPU busy above 90 %', unixepoch(), unixepoch()),
      ('memory_high', 'Memory usage high', 'system.memory.usage', '>', 90, 'warning', 1, 5,
       'Memory in use above 90 %', unixepoch(), unixepoch()),
      ('disk_high', 'Disk almost full', 'system.disk.usage', '>', 90, 'error', 1, 30,
       'The data directory''s file system is more than 90 % full', unixepoch(), unixepoch()),
      ('bgp_session_down', 'BGP session down', 'bgp.sessions.down', '>', 0, 'error', 1, 5,
       'An enabled BGP session is not established', unixepoch(), unixepoch()),
      ('wireguard_server_error', 'WireGuard server failed', 'wireguard.servers.error', '>', 0,
       'error', 1, 5, 'A WireGuard server that should run is in state error', unixepoch(),
       unixepoch());
    "#,
    // 6: where each WireGuard peer was last seen (its endpoint when its last handshake
    // completed, and when), saved as it leaves a device (client disabled, server stopped,
    // service stopped), so that our side can start the handshake when it comes back. Keyed
    // by public key, not client id: runtime state that a client's rows never depend on;
    // rows of deleted clients are pruned whenever rows are saved.
    r#"
    CREATE TABLE wg_last_seen (
        public_key   TEXT    PRIMARY KEY,
        endpoint     TEXT    NOT NULL,
        handshake_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
];

/// The schema version this binary writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Migrations of the log store (schema `logs`, its own file and `user_version`).
const LOG_MIGRATIONS: &[&str] = &[
    // 1: one table for audit entries and application events.
    r#"
    CREATE TABLE logs.entries (
        id         INTEGER PRIMARY KEY,
        ts         INTEGER NOT NULL,
        level      TEXT    NOT NULL,
        module     TEXT    NOT NULL,
        action     TEXT    NOT NULL,
        message    TEXT    NOT NULL,
        user_id    INTEGER,
        username   TEXT,
        ip         TEXT,
        user_agent TEXT,
        method     TEXT,
        path       TEXT,
        target     TEXT,
        status     INTEGER,
        -- JSON object
        details    TEXT
    );
    CREATE INDEX logs.entries_ts ON entries (ts);
    "#,
];

/// Creates or updates the log store attached as `logs`. A newer log schema than this binary
/// knows is not an error worth refusing to start for: the file is disposable (it may live in
/// RAM), so it is emptied and recreated.
pub fn migrate_logs(conn: &mut Connection) -> Result<(), String> {
    let version = |c: &Connection| -> Result<i64, String> {
        c.pragma_query_value(
            Some(rusqlite::DatabaseName::Attached("logs")),
            "user_version",
            |r| r.get(0),
        )
        .map_err(|e| format!("cannot read the log store's version: {e}"))
    };
    let mut current = version(conn)?;
    if current > LOG_MIGRATIONS.len() as i64 {
        log::warn!("log store written by a newer release: starting it afresh");
        conn.execute_batch("DROP TABLE IF EXISTS logs.entries; PRAGMA logs.user_version = 0")
            .map_err(|e| format!("cannot reset the log store: {e}"))?;
        current = 0;
    }
    for (i, sql) in LOG_MIGRATIONS.iter().enumerate().skip(current as usize) {
        let to = i as i64 + 1;
        let tx = conn
            .transaction()
            .map_err(|e| format!("log store migration {to}: {e}"))?;
        tx.execute_batch(sql)
            .and_then(|_| {
                tx.pragma_update(
                    Some(rusqlite::DatabaseName::Attached("logs")),
                    "user_version",
                    to,
                )
            })
            .and_then(|_| tx.commit())
            .map_err(|e| format!("log store migration {to} failed: {e}"))?;
    }
    Ok(())
}

pub fn migrate(conn: &mut Connection) -> Result<(), String> {
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| format!("cannot read schema version: {e}"))?;
    if current > VERSION {
        return Err(format!(
            "database schema version {current} is newer than this ipv6wgm knows ({VERSION}); \
             it was written by a newer release. Run that release, or restore a backup made \
             for this one."
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let to = i as i64 + 1;
        let tx = conn
            .transaction()
            .map_err(|e| format!("migration {to}: {e}"))?;
        tx.execute_batch(sql)
            .and_then(|_| tx.pragma_update(None, "user_version", to))
            .and_then(|_| tx.commit())
            .map_err(|e| format!("migration to schema version {to} failed: {e}"))?;
        log::info!("database schema migrated to version {to}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_fresh_database_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().expect("db");
        migrate(&mut conn).expect("first");
        migrate(&mut conn).expect("second run is a no-op");
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(v, VERSION);
        conn.execute("SELECT count(*) FROM users", []).ok();
    }

    #[test]
    fn refuses_newer_schema() {
        let mut conn = Connection::open_in_memory().expect("db");
        conn.pragma_update(None, "user_version", VERSION + 1)
            .expect("set");
        let err = migrate(&mut conn).unwrap_err();
        assert!(err.contains("newer"), "{err}");
    }
}
