//! Versioned schema migrations, tracked in `PRAGMA user_version`.
//!
//! `MIGRATIONS[i]` moves the schema from version `i` to `i + 1`; each runs in its own
//! transaction together with the version bump. Append new ones, never edit old ones. A
//! database whose version is newer than this binary knows (a downgrade) is refused, because
//! an older binary would silently misread it.

use rusqlite::{Connection, OptionalExtension};

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
    // 6: ids are never reused (issue 12): every table whose id reaches a URL, a token or a
    // log gets AUTOINCREMENT, so a deleted row's id is never handed out again. SQLite cannot
    // add it with ALTER, so each table is rebuilt (create, copy with the same ids, drop,
    // rename — `migrate` runs this with foreign keys off and checks them before the commit);
    // the copy seeds `sqlite_sequence` with each table's current largest id. Indexes go
    // with a dropped table and are made again. Users get `token_nonce`; revoked tokens
    // get `revoked_from`, the time a revocation takes effect (a refreshed token's grace).
    // (alert_rules keys are names users choose, not counters: nothing to do there. The log
    // store's entries are not rebuilt here: on a router that file lives in RAM and a copy
    // of it could exhaust /tmp; see `LOG_MIGRATIONS`.)
    r#"
    CREATE TABLE users_new (
        id                 INTEGER PRIMARY KEY AUTOINCREMENT,
        username           TEXT    NOT NULL UNIQUE COLLATE NOCASE,
        email              TEXT,
        full_name          TEXT,
        role               TEXT    NOT NULL CHECK (role IN ('admin','manager','user','viewer')),
        is_active          INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0,1)),
        password_hash      TEXT    NOT NULL,
        -- a token is valid only while it carries this value (bumped by password reset,
        -- deactivation or role change, which voids every token the user holds)
        token_generation   INTEGER NOT NULL DEFAULT 0,
        -- random per row, never the same twice: tokens carry it, so a token can only ever
        -- authenticate the row it was issued for
        token_nonce        TEXT    NOT NULL DEFAULT (lower(hex(randomblob(16)))),
        last_login         INTEGER,
        created_at         INTEGER NOT NULL,
        updated_at         INTEGER NOT NULL
    );
    -- token_nonce: a fresh random value for every existing row
    INSERT INTO users_new (id, username, email, full_name,
                           role, is_active, password_hash, token_generation,
                           last_login, created_at, updated_at)
        SELECT id, username, email, full_name,
               role, is_active, password_hash, token_generation,
               last_login, created_at, updated_at FROM users;
    DROP TABLE users;
    ALTER TABLE users_new RENAME TO users;
    CREATE TABLE wg_servers_new (
        id                   INTEGER PRIMARY KEY AUTOINCREMENT,
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
    INSERT INTO wg_servers_new SELECT * FROM wg_servers;
    DROP TABLE wg_servers;
    ALTER TABLE wg_servers_new RENAME TO wg_servers;
    CREATE TABLE wg_clients_new (
        id                   INTEGER PRIMARY KEY AUTOINCREMENT,
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
    INSERT INTO wg_clients_new SELECT * FROM wg_clients;
    DROP TABLE wg_clients;
    ALTER TABLE wg_clients_new RENAME TO wg_clients;
    CREATE TABLE ipv6_pools_new (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
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
    INSERT INTO ipv6_pools_new SELECT * FROM ipv6_pools;
    DROP TABLE ipv6_pools;
    ALTER TABLE ipv6_pools_new RENAME TO ipv6_pools;
    CREATE TABLE ipv6_allocations_new (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
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
    INSERT INTO ipv6_allocations_new SELECT * FROM ipv6_allocations;
    DROP TABLE ipv6_allocations;
    ALTER TABLE ipv6_allocations_new RENAME TO ipv6_allocations;
    CREATE TABLE ipv6_whitelist_new (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        pool_id     INTEGER NOT NULL REFERENCES ipv6_pools (id) ON DELETE CASCADE,
        prefix      TEXT    NOT NULL,
        description TEXT,
        created_at  INTEGER NOT NULL,
        UNIQUE (pool_id, prefix)
    );
    INSERT INTO ipv6_whitelist_new SELECT * FROM ipv6_whitelist;
    DROP TABLE ipv6_whitelist;
    ALTER TABLE ipv6_whitelist_new RENAME TO ipv6_whitelist;
    CREATE TABLE bgp_sessions_new (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
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
    INSERT INTO bgp_sessions_new SELECT * FROM bgp_sessions;
    DROP TABLE bgp_sessions;
    ALTER TABLE bgp_sessions_new RENAME TO bgp_sessions;
    CREATE TABLE bgp_announcements_new (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
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
    INSERT INTO bgp_announcements_new SELECT * FROM bgp_announcements;
    DROP TABLE bgp_announcements;
    ALTER TABLE bgp_announcements_new RENAME TO bgp_announcements;
    CREATE UNIQUE INDEX wg_clients_ipv4 ON wg_clients (server_id, ipv4_address);
    CREATE UNIQUE INDEX wg_clients_ipv6 ON wg_clients (server_id, ipv6_address);
    CREATE UNIQUE INDEX ipv6_allocations_client ON ipv6_allocations (pool_id, client_id)
        WHERE client_id IS NOT NULL;
    CREATE UNIQUE INDEX ipv6_allocations_name ON ipv6_allocations (pool_id, client_name)
        WHERE client_id IS NULL AND client_name IS NOT NULL;
    CREATE INDEX ipv6_allocations_pool ON ipv6_allocations (pool_id, id);
    CREATE INDEX ipv6_allocations_client_id ON ipv6_allocations (client_id);
    CREATE UNIQUE INDEX bgp_announcements_prefix
        ON bgp_announcements (prefix, ifnull(session_id, 0));
    ALTER TABLE revoked_tokens ADD COLUMN revoked_from INTEGER NOT NULL DEFAULT 0;
    "#,
    // 7: where each WireGuard peer was last seen (its endpoint when its last handshake
    // completed, and when), saved as it leaves a device (client disabled, server stopped,
    // service stopped), so that our side can start the handshake when it comes back. Keyed
    // by public key, not client id: runtime state that a client's rows never depend on;
    // rows of deleted clients are pruned, once stale, whenever rows are saved.
    r#"
    CREATE TABLE wg_last_seen (
        public_key   TEXT    PRIMARY KEY,
        endpoint     TEXT    NOT NULL,
        handshake_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 8: a version for each client row (`rev`): a random number SQLite sets on every insert
    // and update, so the client list can keep each client's rendered item while the row
    // keeps its version (`wireguard/listing.rs`) whichever path wrote it. Random, not a
    // counter: a restored database cannot hand an old version number to new content. The
    // update trigger's own UPDATE does not fire it again (recursive triggers are off, and
    // its WHEN says the same).
    r#"
    ALTER TABLE wg_clients ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
    UPDATE wg_clients SET rev = random();
    CREATE TRIGGER wg_clients_rev_on_insert AFTER INSERT ON wg_clients
    BEGIN
        UPDATE wg_clients SET rev = random() WHERE id = NEW.id;
    END;
    CREATE TRIGGER wg_clients_rev_on_update AFTER UPDATE ON wg_clients
    WHEN NEW.rev = OLD.rev
    BEGIN
        UPDATE wg_clients SET rev = random() WHERE id = NEW.id;
    END;
    "#,
];

/// The schema version this binary writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Migrations of the log store (schema `logs`, its own file and `user_version`).
///
/// `entries.id` has no AUTOINCREMENT: rebuilding a full log store (up to `logs.max_size_mb`,
/// in RAM on OpenWrt) would need two to three times its size at once. Ids still only grow
/// as long as trimming never deletes the newest entry (SQLite hands out max(id) + 1).
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
    migrate_to(conn, VERSION)
}

/// Migrates up to schema version `target`. Foreign keys are off while migrations run (a
/// table rebuild drops a parent table, which would otherwise cascade into its children);
/// each migration checks them before it commits, and they are switched back on after.
fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), String> {
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
    if current >= target {
        return Ok(());
    }
    let fk: bool = conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .map_err(|e| format!("cannot read foreign_keys: {e}"))?;
    conn.pragma_update(None, "foreign_keys", false)
        .map_err(|e| format!("cannot switch foreign keys off to migrate: {e}"))?;
    let result = run_migrations(conn, current, target);
    let restored = conn
        .pragma_update(None, "foreign_keys", fk)
        .map_err(|e| format!("cannot switch foreign keys back on: {e}"));
    result.and(restored)
}

/// `sql` with each `unixepoch()` replaced by `now`. Router builds compile SQLite without its
/// date and time functions (cross/sqlite-flags: ~17 KB on mipsel), so a migration that stamps
/// the rows it seeds gets the time from here.
fn with_clock(sql: &str, now: i64) -> String {
    sql.replace("unixepoch()", &now.to_string())
}

fn run_migrations(conn: &mut Connection, current: i64, target: i64) -> Result<(), String> {
    let pending = MIGRATIONS.iter().enumerate().take(target as usize);
    for (i, sql) in pending.skip(current as usize) {
        let to = i as i64 + 1;
        let tx = conn
            .transaction()
            .map_err(|e| format!("migration {to}: {e}"))?;
        tx.execute_batch(&with_clock(sql, crate::time::now()))
            .map_err(|e| format!("migration to schema version {to} failed: {e}"))?;
        let broken: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()
            .map_err(|e| format!("migration {to}: foreign key check: {e}"))?;
        if let Some(table) = broken {
            return Err(format!(
                "migration to schema version {to} failed: a row of {table} refers to one that does not exist"
            ));
        }
        tx.pragma_update(None, "user_version", to)
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
    fn seeded_rows_get_the_clock_without_sqlite_date_functions() {
        assert_eq!(
            with_clock("VALUES (unixepoch(), unixepoch())", 1_700_000_000),
            "VALUES (1700000000, 1700000000)"
        );
        let mut conn = Connection::open_in_memory().expect("db");
        let before = crate::time::now();
        migrate(&mut conn).expect("migrate");
        let stamped: i64 = conn
            .query_row("SELECT min(created_at) FROM alert_rules", [], |r| r.get(0))
            .expect("seeded rules");
        assert!(stamped >= before, "{stamped} < {before}");
    }

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

    /// The tables whose integer ids reach URLs, tokens or logs, and a row for each (ids of
    /// parents are 1).
    const TABLES: &[(&str, &str)] = &[
        (
            "users",
            "INSERT INTO users (username, role, password_hash, created_at, updated_at) \
             VALUES ('u' || random(), 'viewer', 'h', 0, 0)",
        ),
        (
            "wg_servers",
            "INSERT INTO wg_servers (name, interface, listen_port, ipv4_address, private_key, \
             public_key, created_at, updated_at) VALUES ('s' || random(), 'wg' || random(), \
             abs(random() % 60000) + 1, '10.0.0.1/24', 'k', 'k', 0, 0)",
        ),
        (
            "wg_clients",
            "INSERT INTO wg_clients (server_id, name, public_key, ipv4_address, created_at, \
             updated_at) VALUES (1, 'c' || random(), 'k' || random(), random(), 0, 0)",
        ),
        (
            "ipv6_pools",
            "INSERT INTO ipv6_pools (name, prefix, prefix_length, min_prefix_length, \
             max_prefix_length, created_at, updated_at) \
             VALUES ('p' || random(), random(), 64, 48, 64, 0, 0)",
        ),
        (
            "ipv6_allocations",
            "INSERT INTO ipv6_allocations (pool_id, prefix, client_id, allocated_at) \
             VALUES (1, random(), NULL, 0)",
        ),
        (
            "ipv6_whitelist",
            "INSERT INTO ipv6_whitelist (pool_id, prefix, created_at) VALUES (1, random(), 0)",
        ),
        (
            "bgp_sessions",
            "INSERT INTO bgp_sessions (name, neighbor, remote_as, max_prefixes, created_at, \
             updated_at) VALUES ('b' || random(), random(), 65000, 100, 0, 0)",
        ),
        (
            "bgp_announcements",
            "INSERT INTO bgp_announcements (session_id, prefix, created_at, updated_at) \
             VALUES (1, random(), 0, 0)",
        ),
    ];

    fn insert(c: &Connection, sql: &str) -> i64 {
        c.execute(sql, []).expect(sql);
        c.last_insert_rowid()
    }

    /// Deletes the newest row of `table` and inserts another: the new id must be new.
    fn assert_ids_not_reused(c: &Connection, table: &str, sql: &str) {
        let last = insert(c, sql);
        c.execute(&format!("DELETE FROM {table} WHERE id = ?1"), [last])
            .expect("delete");
        let next = insert(c, sql);
        assert!(next > last, "{table}: id {last} handed out again");
    }

    /// Per table: columns, foreign keys and index definitions.
    fn shape(c: &Connection, table: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
        let strings = |sql: &str| -> Vec<String> {
            let mut stmt = c.prepare(sql).expect(sql);
            let mut v: Vec<String> = stmt
                .query_map([table], |r| r.get::<_, String>(0))
                .expect(sql)
                .collect::<Result<_, _>>()
                .expect(sql);
            v.sort();
            v
        };
        (
            strings(
                "SELECT name || ' ' || type || ' ' || \"notnull\" || ' ' || \
                 ifnull(dflt_value, '') || ' ' || pk FROM pragma_table_info(?1)",
            ),
            strings(
                "SELECT \"table\" || '.' || \"to\" || ' ' || \"from\" || ' ' || on_delete \
                 FROM pragma_foreign_key_list(?1)",
            ),
            strings("SELECT ifnull(sql, name) FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1"),
        )
    }

    #[test]
    fn no_id_is_handed_out_twice() {
        let c = crate::store::test_db();
        for (table, sql) in TABLES {
            insert(&c, sql);
            assert_ids_not_reused(&c, table, sql);
        }
        // Every table with an integer key says so (a new table cannot forget it). The log
        // store is not covered: see `LOG_MIGRATIONS`.
        let mut stmt = c
            .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
            .expect("tables");
        let tables: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("tables")
            .collect::<Result<_, _>>()
            .expect("tables");
        for (name, sql) in tables {
            if sql.contains("INTEGER PRIMARY KEY") {
                assert!(sql.contains("AUTOINCREMENT"), "{name} reuses ids: {sql}");
            }
        }
    }

    #[test]
    fn the_autoincrement_migration_keeps_rows_keys_and_indexes() {
        // A database as the release before it left it: rows in every table, children
        // pointing at parents, and a deleted newest user (whose id the old schema reused).
        let mut c = Connection::open_in_memory().expect("db");
        c.pragma_update(None, "foreign_keys", true).expect("fk");
        migrate_to(&mut c, 5).expect("old schema");
        for (_, sql) in TABLES {
            for _ in 0..3 {
                insert(&c, sql);
            }
        }
        c.execute("DELETE FROM users WHERE id = 3", [])
            .expect("delete");
        let before: Vec<_> = TABLES.iter().map(|(t, _)| shape(&c, t)).collect();
        let count = |c: &Connection, t: &str| -> i64 {
            c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                .expect("count")
        };
        let rows: Vec<i64> = TABLES.iter().map(|(t, _)| count(&c, t)).collect();

        migrate(&mut c).expect("migrate");
        let fk: bool = c
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .expect("fk");
        assert!(fk, "foreign keys are on again");
        for (i, (table, sql)) in TABLES.iter().enumerate() {
            assert_eq!(
                count(&c, table),
                rows[i],
                "{table}: no row lost to a cascade"
            );
            let (mut cols, keys, indexes) = shape(&c, table);
            if *table == "users" {
                cols.retain(|col| !col.starts_with("token_nonce "));
            }
            if *table == "wg_clients" {
                cols.retain(|col| !col.starts_with("rev "));
            }
            assert_eq!((cols, keys, indexes), before[i].clone(), "{table}");
            let seq: i64 = c
                .query_row(
                    "SELECT seq FROM sqlite_sequence WHERE name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .expect("sequence seeded");
            let max: i64 = c
                .query_row(&format!("SELECT max(id) FROM {table}"), [], |r| r.get(0))
                .expect("max");
            assert_eq!(seq, max, "{table}");
            assert_ids_not_reused(&c, table, sql);
        }
        // Existing users got distinct nonces.
        let distinct: i64 = c
            .query_row(
                "SELECT count(DISTINCT token_nonce) FROM users WHERE length(token_nonce) = 32",
                [],
                |r| r.get(0),
            )
            .expect("nonces");
        assert_eq!(distinct, count(&c, "users"));
        // Revocations made before still hold: they took effect at once.
        let revoked_from: i64 = c
            .query_row(
                "SELECT dflt_value FROM pragma_table_info('revoked_tokens') \
                 WHERE name = 'revoked_from'",
                [],
                |r| r.get::<_, String>(0),
            )
            .expect("column")
            .parse()
            .expect("number");
        assert_eq!(revoked_from, 0);
        assert_eq!(
            c.query_row("PRAGMA foreign_key_check", [], |_| Ok(()))
                .optional()
                .expect("check"),
            None
        );
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
