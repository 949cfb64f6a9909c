//! Queries on the log store: one table, `logs.entries`, for the audit log (one row per
//! mutating API request: who, from where, what, result) and application events (WireGuard
//! servers starting and stopping, BGP state changes, alerts).
//!
//! The table lives in its own database file, `ATTACH`ed as schema `logs` to the one
//! connection (`Store::open`), so it can be put in RAM (`log_dir = "/tmp/ipv6wgm"` on
//! OpenWrt) while the rest stays on flash. It is bounded twice, on every write: by rows
//! (trimmed in batches, so a write costs one INSERT almost always) and by the bytes of the
//! file and its WAL together ([`Bound`]). [`trim_to_size`] (called by the collector too)
//! shrinks the file after the bound was lowered.

use super::table::{self, columns, set};
use super::StoreResult;
use rusqlite::{params_from_iter, types::Value, Connection, OptionalExtension};

/// The levels, most verbose first; stored and shown upper-case.
pub const LEVELS: [&str; 5] = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub ts: i64,
    /// One of [`LEVELS`]. Audit entries: `INFO` for success, `WARNING` for a refused request
    /// (4xx), `ERROR` for 5xx.
    pub level: &'static str,
    /// `auth`, `users`, `wireguard`, `bgp`, `monitoring`, …
    pub module: String,
    /// Stable action name, e.g. `users.create`, `bgp.state`, `alert.raised`.
    pub action: String,
    pub message: String,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// HTTP method, path and status: audit entries only.
    pub method: Option<String>,
    pub path: Option<String>,
    pub target: Option<String>,
    pub status: Option<u16>,
    /// A JSON object with event-specific fields.
    pub details: Option<serde_json::Value>,
}

impl LogEntry {
    /// An application event (no request behind it).
    pub fn event(level: &'static str, module: &str, action: &str, message: String) -> LogEntry {
        LogEntry {
            ts: crate::time::now(),
            level,
            module: module.into(),
            action: action.into(),
            message,
            user_id: None,
            username: None,
            ip: None,
            user_agent: None,
            method: None,
            path: None,
            target: None,
            status: None,
            details: None,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> LogEntry {
        self.details = Some(details);
        self
    }

    pub fn with_target(mut self, target: String) -> LogEntry {
        self.target = Some(target);
        self
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    pub id: i64,
    pub entry: LogEntry,
}

/// Rows over the cap that are tolerated before a trim (keeps trims rare).
const TRIM_SLACK: i64 = 256;

/// What the log store may hold: the newest `max_entries` rows, in at most `max_bytes` of
/// disk (or RAM, in `/tmp`) for the database file and its WAL together, at every moment.
///
/// The bytes are split in two shares, each enforced where the file grows:
/// - the WAL gets [`Bound::wal_bytes`]; it is checkpointed and truncated to zero whenever it
///   passes half of that, so the next write (a few pages) always fits; every trim is done in
///   small transactions for the same reason;
/// - the database file gets the rest, as SQLite's `max_page_count`: an insert that would
///   grow the file past it fails with `SQLITE_FULL` instead, and the oldest rows make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub max_entries: u32,
    pub max_bytes: u64,
}

impl Bound {
    /// The WAL's share: a quarter of the bound, 64 KiB to 8 MiB. (Each checkpoint costs two
    /// fsyncs; a larger share means fewer of them.)
    pub fn wal_bytes(&self) -> u64 {
        (self.max_bytes / 4)
            .clamp(64 << 10, 8 << 20)
            .min(self.max_bytes / 2)
    }

    /// The database file's share.
    pub fn db_bytes(&self) -> u64 {
        self.max_bytes - self.wal_bytes()
    }
}

/// The log store is full and could not make room (the entry is not stored).
fn full(why: &str) -> super::StoreError {
    super::StoreError::Rule(format!("log store full: {why}"))
}

/// Stores `e` within `bound`: room is made first (oldest rows out) if the database file is
/// at its share, and the WAL is checkpointed after the write if it passed half of its share.
pub fn insert(conn: &Connection, e: &LogEntry, bound: Bound) -> StoreResult<i64> {
    apply_page_limit(conn, bound)?;
    wal_room(conn, bound)?;
    let mut id = None;
    for _ in 0..8 {
        match insert_row(conn, e) {
            Ok(i) => {
                id = Some(i);
                break;
            }
            Err(err) if is_full(&err) => {
                if drop_oldest(conn, OLDEST_BATCH)? == 0 {
                    return Err(full("the entry is larger than the bound"));
                }
                wal_room(conn, bound)?;
            }
            Err(err) => return Err(err.into()),
        }
    }
    let id = id.ok_or_else(|| full("no room could be made"))?;
    // Ids only grow, so "id <= newest - cap" is exactly the rows beyond the cap.
    if id % TRIM_SLACK == 0 {
        let beyond = id - i64::from(bound.max_entries);
        while drop_oldest_upto(conn, beyond, BATCH)? == BATCH as u64 {
            wal_room(conn, bound)?;
        }
    }
    checkpoint_if_over(conn, bound)?;
    Ok(id)
}

/// Oldest rows removed at once when an insert finds the file at its share.
const OLDEST_BATCH: i64 = 16;
/// Rows deleted in one transaction by trims, so that each one's WAL pages stay few.
const BATCH: i64 = 256;

fn insert_row(conn: &Connection, e: &LogEntry) -> rusqlite::Result<i64> {
    let details = e.details.as_ref().map(|d| d.to_string());
    let sets = [
        set("ts", e.ts),
        set("level", e.level),
        set("module", &e.module),
        set("action", &e.action),
        set("message", &e.message),
        set("user_id", e.user_id),
        set("username", &e.username),
        set("ip", &e.ip),
        set("user_agent", &e.user_agent),
        set("method", &e.method),
        set("path", &e.path),
        set("target", &e.target),
        set("status", e.status),
        set("details", details),
    ];
    // Cached: every audited request comes through here.
    conn.prepare_cached(&table::insert_sql("logs.entries", &sets))?
        .execute(params_from_iter(table::values(&sets)))?;
    Ok(conn.last_insert_rowid())
}

fn is_full(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull)
}

fn drop_oldest(conn: &Connection, n: i64) -> StoreResult<u64> {
    drop_oldest_upto(conn, i64::MAX, n)
}

/// Deletes the `n` oldest rows with ids up to `last`; returns how many there were. The
/// newest row always stays: `entries.id` has no AUTOINCREMENT (see `LOG_MIGRATIONS`), so an
/// emptied table would hand out its ids (`/logs/{id}`) again from 1.
fn drop_oldest_upto(conn: &Connection, last: i64, n: i64) -> StoreResult<u64> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM logs.entries WHERE id IN \
             (SELECT id FROM logs.entries WHERE id <= ?1 \
              AND id < (SELECT max(id) FROM logs.entries) ORDER BY id LIMIT ?2)",
        )?
        .execute([last, n])? as u64)
}

/// Sets the database file's page limit (and the WAL's size limit) for `bound`, when it
/// changed. SQLite keeps a limit above the pages in use (after the bound was lowered): then
/// the file is shrunk first.
fn apply_page_limit(conn: &Connection, bound: Bound) -> StoreResult<()> {
    let pages = (bound.db_bytes() / page_size(conn)?).max(1);
    if pragma_u64(conn, "PRAGMA logs.max_page_count")? == pages {
        return Ok(());
    }
    // Belt and braces: a WAL reset after any checkpoint is cut to this length.
    let wal = bound.wal_bytes() / 2;
    conn.query_row(
        &format!("PRAGMA logs.journal_size_limit = {wal}"),
        [],
        |_| Ok(()),
    )?;
    if set_page_limit(conn, pages)? > pages {
        trim_to_size(conn, bound)?;
        set_page_limit(conn, pages)?;
    }
    Ok(())
}

fn set_page_limit(conn: &Connection, pages: u64) -> StoreResult<u64> {
    let limit: i64 = conn
        .prepare_cached(&format!("PRAGMA logs.max_page_count = {pages}"))?
        .query_row([], |r| r.get(0))?;
    Ok(limit.max(0) as u64)
}

fn page_size(conn: &Connection) -> StoreResult<u64> {
    let size: i64 = conn
        .prepare_cached("PRAGMA logs.page_size")?
        .query_row([], |r| r.get(0))?;
    Ok(size.max(512) as u64)
}

/// Bytes of the log store's WAL file (0 for a store in memory or without a WAL).
pub fn wal_file_bytes(conn: &Connection) -> StoreResult<u64> {
    let file: String = conn
        .prepare_cached("SELECT file FROM pragma_database_list WHERE name = 'logs'")?
        .query_row([], |r| r.get(0))?;
    if file.is_empty() {
        return Ok(0);
    }
    Ok(std::fs::metadata(format!("{file}-wal"))
        .map(|m| m.len())
        .unwrap_or(0))
}

/// Once the WAL has passed half of its share, folds it into the database file and truncates
/// it to zero. Returns whether it is (now) below half.
fn checkpoint_if_over(conn: &Connection, bound: Bound) -> StoreResult<bool> {
    let half = bound.wal_bytes() / 2;
    if wal_file_bytes(conn)? < half {
        return Ok(true);
    }
    Ok(checkpoint(conn)? && wal_file_bytes(conn)? < half)
}

/// `wal_checkpoint(TRUNCATE)` of the log store without waiting: false when a reader in
/// another process holds an old snapshot, so the WAL could not be reset. (Waiting for it
/// would stall every request behind the database thread.)
fn checkpoint(conn: &Connection) -> StoreResult<bool> {
    conn.busy_timeout(std::time::Duration::ZERO)?;
    let done = conn.query_row("PRAGMA logs.wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    conn.busy_timeout(super::BUSY_TIMEOUT)?;
    match done {
        Ok(busy) => Ok(busy == 0),
        Err(rusqlite::Error::SqliteFailure(f, _))
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// A write may start: the WAL is below half of its share (so the few pages of one write
/// fit), checkpointing if needed. When another process keeps the WAL from being reset, the
/// write is refused rather than the bound exceeded.
fn wal_room(conn: &Connection, bound: Bound) -> StoreResult<()> {
    if checkpoint_if_over(conn, bound)? {
        Ok(())
    } else {
        Err(full(
            "the WAL cannot be checkpointed (another process is reading it)",
        ))
    }
}

/// Shrinks the database file to its share of `bound`: deletes the oldest entries (the share
/// of rows by which the pages in use are too many, plus a tenth of headroom), then gives the
/// free pages back to the file system, a few at a time with checkpoints in between so the WAL
/// stays within its share too (a WAL that cannot be checkpointed stops it with an error).
/// Stops when a round frees nothing. Returns the rows deleted.
pub fn trim_to_size(conn: &Connection, bound: Bound) -> StoreResult<u64> {
    let page = page_size(conn)?;
    let max_pages = bound.db_bytes() / page;
    // Pages one vacuum step may move: each move writes about three pages to the WAL.
    let step = (bound.wal_bytes() / 2 / (3 * (page + 24))).max(1);
    let mut deleted = 0u64;
    for _ in 0..4 {
        let pages = pragma_u64(conn, "PRAGMA logs.page_count")?;
        if pages <= max_pages {
            break;
        }
        let used = pages.saturating_sub(pragma_u64(conn, "PRAGMA logs.freelist_count")?);
        if used > max_pages * 9 / 10 {
            let n = count(conn)?.max(0) as u64;
            let keep = (max_pages as f64 * 0.9 / used.max(1) as f64).clamp(0.0, 0.9);
            let mut excess = ((n as f64 * (1.0 - keep)).ceil() as u64).clamp(1, n.max(1));
            while excess > 0 {
                wal_room(conn, bound)?;
                let batch = excess.min(BATCH as u64);
                let gone = drop_oldest(conn, batch as i64)?;
                deleted += gone;
                if gone < batch {
                    break;
                }
                excess -= batch;
            }
        }
        vacuum(conn, bound, step)?;
        if pragma_u64(conn, "PRAGMA logs.page_count")? >= pages {
            log::warn!("log store: the file does not shrink; trimming stopped");
            break;
        }
        // The file itself is cut to its new length when the WAL is folded back.
        checkpoint(conn)?;
    }
    Ok(deleted)
}

/// Gives all free pages back to the file system, `step` pages per transaction.
fn vacuum(conn: &Connection, bound: Bound, step: u64) -> StoreResult<()> {
    let mut free = pragma_u64(conn, "PRAGMA logs.freelist_count")?;
    while free > 0 {
        wal_room(conn, bound)?;
        // Each step of this pragma frees one page: step it to the end.
        let mut stmt = conn.prepare_cached(&format!("PRAGMA logs.incremental_vacuum({step})"))?;
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
        drop(rows);
        drop(stmt);
        let left = pragma_u64(conn, "PRAGMA logs.freelist_count")?;
        if left >= free {
            break;
        }
        free = left;
    }
    Ok(())
}

fn pragma_u64(conn: &Connection, sql: &str) -> StoreResult<u64> {
    let v: i64 = conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?;
    Ok(v.max(0) as u64)
}

/// Bytes the log store takes now: the database file's pages and the WAL file.
pub fn file_bytes(conn: &Connection) -> StoreResult<u64> {
    let pages = pragma_u64(conn, "PRAGMA logs.page_count")?;
    Ok(pages * page_size(conn)? + wal_file_bytes(conn)?)
}

pub fn count(conn: &Connection) -> StoreResult<i64> {
    Ok(conn.query_row("SELECT count(*) FROM logs.entries", [], |r| r.get(0))?)
}

/// What `/logs` and `/logs/export` select by.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Upper-case level names (any of them).
    pub levels: Vec<&'static str>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// Substring of the message, action, module, user name, IP or target (case-insensitive).
    pub search: Option<String>,
    pub module: Option<String>,
}

impl Filter {
    fn where_sql(&self) -> (String, Vec<Value>) {
        let mut sql = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        if !self.levels.is_empty() {
            let marks = vec!["?"; self.levels.len()].join(", ");
            sql.push(format!("level IN ({marks})"));
            args.extend(self.levels.iter().map(|l| Value::Text((*l).into())));
        }
        if let Some(s) = self.start {
            sql.push("ts >= ?".into());
            args.push(Value::Integer(s));
        }
        if let Some(e) = self.end {
            sql.push("ts <= ?".into());
            args.push(Value::Integer(e));
        }
        if let Some(m) = &self.module {
            sql.push("module = ?".into());
            args.push(Value::Text(m.clone()));
        }
        if let Some(q) = &self.search {
            // One numbered parameter for all six columns; later `?`s continue after it.
            args.push(Value::Text(super::contains_pattern(q)));
            let n = args.len();
            let like = |col: &str| format!("{col} LIKE ?{n} ESCAPE '\\'");
            let cols = [
                "message",
                "action",
                "module",
                "ifnull(username, '')",
                "ifnull(ip, '')",
                "ifnull(target, '')",
            ];
            sql.push(format!("({})", cols.map(like).join(" OR ")));
        }
        if sql.is_empty() {
            (String::new(), args)
        } else {
            (format!(" WHERE {}", sql.join(" AND ")), args)
        }
    }
}

columns! { entry_col: id, ts, level, module, action, message, user_id, username, ip, user_agent,
method, path, target, status, details }
use entry_col::LIST as COLUMNS;

/// One page, newest first, and the number of matching rows.
pub fn list(
    conn: &Connection,
    filter: &Filter,
    limit: u32,
    offset: u64,
) -> StoreResult<(Vec<LogRow>, u64)> {
    let (cond, args) = filter.where_sql();
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM logs.entries{cond}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let mut all = args;
    all.push(Value::Integer(i64::from(limit)));
    all.push(Value::Integer(offset.min(i64::MAX as u64) as i64));
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM logs.entries{cond} ORDER BY id DESC LIMIT ? OFFSET ?"
    ))?;
    let rows = stmt
        .query_map(params_from_iter(all.iter()), row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total.max(0) as u64))
}

/// The first id an export of at most `limit` matching rows starts from (the newest `limit`
/// when there are more), or `None` when nothing matches.
pub fn export_start(conn: &Connection, filter: &Filter, limit: u32) -> StoreResult<Option<i64>> {
    let (cond, args) = filter.where_sql();
    let last: Option<i64> = conn
        .query_row(
            &format!("SELECT id FROM logs.entries{cond} ORDER BY id DESC LIMIT 1 OFFSET ?"),
            params_from_iter(
                args.iter()
                    .cloned()
                    .chain([Value::Integer(i64::from(limit.max(1)) - 1)]),
            ),
            |r| r.get(0),
        )
        .optional()?;
    if last.is_some() {
        return Ok(last);
    }
    Ok(conn
        .query_row(
            &format!("SELECT min(id) FROM logs.entries{cond}"),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

/// Up to `limit` matching rows with ids from `from`, oldest first (one page of an export).
pub fn export_page(
    conn: &Connection,
    filter: &Filter,
    from: i64,
    limit: u32,
) -> StoreResult<Vec<LogRow>> {
    let (cond, mut args) = filter.where_sql();
    let cond = if cond.is_empty() {
        " WHERE id >= ?".to_string()
    } else {
        format!("{cond} AND id >= ?")
    };
    args.push(Value::Integer(from));
    args.push(Value::Integer(i64::from(limit)));
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM logs.entries{cond} ORDER BY id LIMIT ?"
    ))?;
    let rows = stmt
        .query_map(params_from_iter(args.iter()), row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn get(conn: &Connection, id: i64) -> StoreResult<Option<LogRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM logs.entries WHERE id = ?1"),
            [id],
            row,
        )
        .optional()?)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LogRow> {
    use entry_col as c;
    let level: String = r.get(c::level)?;
    let details: Option<String> = r.get(c::details)?;
    Ok(LogRow {
        id: r.get(c::id)?,
        entry: LogEntry {
            ts: r.get(c::ts)?,
            level: level_name(&level),
            module: r.get(c::module)?,
            action: r.get(c::action)?,
            message: r.get(c::message)?,
            user_id: r.get(c::user_id)?,
            username: r.get(c::username)?,
            ip: r.get(c::ip)?,
            user_agent: r.get(c::user_agent)?,
            method: r.get(c::method)?,
            path: r.get(c::path)?,
            target: r.get(c::target)?,
            status: r.get(c::status)?,
            details: details.and_then(|d| serde_json::from_str(&d).ok()),
        },
    })
}

pub fn level_for_status(status: u16) -> &'static str {
    match status {
        500.. => "ERROR",
        400.. => "WARNING",
        _ => "INFO",
    }
}

/// The stored name for `s` (any case), or `None` when it is not a level.
pub fn parse_level(s: &str) -> Option<&'static str> {
    LEVELS
        .iter()
        .copied()
        .find(|l| l.eq_ignore_ascii_case(s) || (s.eq_ignore_ascii_case("warn") && *l == "WARNING"))
}

fn level_name(s: &str) -> &'static str {
    parse_level(s).unwrap_or("INFO")
}

/// Moves the rows of the old `main.audit_log` table (schema versions 1–5 kept the audit log
/// in the main database) into the log store and drops it. A no-op when it is gone.
pub fn adopt_audit_log(conn: &mut Connection) -> StoreResult<u64> {
    let exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM main.sqlite_master WHERE type = 'table' AND name = 'audit_log'",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    let tx = conn.transaction()?;
    let n = tx.execute(
        "INSERT INTO logs.entries (ts, level, module, action, message, user_id, username, ip, \
         user_agent, method, path, target, status) \
         SELECT ts, level, module, action, message, user_id, username, ip, user_agent, method, \
         path, target, status FROM main.audit_log ORDER BY id",
        [],
    )?;
    tx.execute_batch("DROP TABLE main.audit_log")?;
    tx.commit()?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bound by rows only.
    fn rows(max_entries: u32) -> Bound {
        Bound {
            max_entries,
            max_bytes: 1 << 30,
        }
    }

    fn entry(i: i64) -> LogEntry {
        LogEntry {
            ts: i,
            level: "INFO",
            module: "users".into(),
            action: "users.create".into(),
            message: format!("m{i}"),
            user_id: Some(1),
            username: Some("admin".into()),
            ip: Some("::1".into()),
            user_agent: None,
            method: Some("POST".into()),
            path: Some("/api/v1/users".into()),
            target: None,
            status: Some(201),
            details: None,
        }
    }

    #[test]
    fn log_is_capped_to_newest_entries() {
        let c = crate::store::test_db();
        for i in 1..=1024 {
            insert(&c, &entry(i), rows(100)).expect("insert");
        }
        let n = count(&c).expect("count");
        assert!((100..=100 + TRIM_SLACK).contains(&n), "{n} rows kept");
        let (newest, _) = list(&c, &Filter::default(), 1, 0).expect("list");
        assert_eq!(newest[0].entry, entry(1024));
    }

    /// `/logs/{id}` names an entry: trims never empty the table, so an id is never reused.
    #[test]
    fn trims_keep_the_newest_row_so_ids_never_repeat() {
        let c = crate::store::test_db();
        let first = insert(&c, &entry(1), rows(100)).expect("insert");
        assert_eq!(
            drop_oldest(&c, 1_000).expect("drop"),
            0,
            "the newest row stays"
        );
        let second = insert(&c, &entry(2), rows(100)).expect("insert");
        assert!(second > first, "{second} after {first}");
        assert_eq!(drop_oldest(&c, 1_000).expect("drop"), 1);
        let third = insert(&c, &entry(3), rows(100)).expect("insert");
        assert!(third > second, "{third} after {second}");
    }

    #[test]
    fn filters_by_level_time_and_search() {
        let c = crate::store::test_db();
        for i in 1..=30 {
            let mut e = entry(i * 10);
            if i % 3 == 0 {
                e.level = "ERROR";
                e.message = format!("BGP peer {i} went_down 100%");
            }
            insert(&c, &e, rows(1000)).expect("insert");
        }
        let only = |f: Filter| list(&c, &f, 100, 0).expect("list");
        let (rows, total) = only(Filter {
            levels: vec!["ERROR"],
            ..Default::default()
        });
        assert_eq!(total, 10);
        assert!(rows.iter().all(|r| r.entry.level == "ERROR"));
        let (_, total) = only(Filter {
            start: Some(100),
            end: Some(200),
            ..Default::default()
        });
        assert_eq!(total, 11);
        let (rows, total) = only(Filter {
            search: Some("peer 9 WENT_".into()),
            ..Default::default()
        });
        assert_eq!((total, rows[0].entry.ts), (1, 90));
        // LIKE wildcards in the search are literal.
        let (_, total) = only(Filter {
            search: Some("_%".into()),
            ..Default::default()
        });
        assert_eq!(total, 0);
        let (_, total) = only(Filter {
            search: Some("100%".into()),
            ..Default::default()
        });
        assert_eq!(total, 10);
        // Pages, newest first.
        let (page, total) = list(&c, &Filter::default(), 7, 7).expect("page");
        assert_eq!((total, page.len(), page[0].entry.ts), (30, 7, 230));
        // Export: oldest first, the newest `limit`, page by page.
        let all = Filter::default();
        let start = export_start(&c, &all, 5).expect("start").expect("rows");
        let page = export_page(&c, &all, start, 3).expect("page");
        let ts: Vec<i64> = page.iter().map(|r| r.entry.ts).collect();
        assert_eq!(ts, [260, 270, 280]);
        let page = export_page(&c, &all, page[2].id + 1, 3).expect("page");
        assert_eq!(page.len(), 2);
        let errors = Filter {
            levels: vec!["ERROR"],
            ..Default::default()
        };
        let start = export_start(&c, &errors, 1000).expect("start");
        assert_eq!(start, Some(3), "fewer than the limit: from the first match");
        let none = Filter {
            search: Some("nothing like this".into()),
            ..Default::default()
        };
        assert_eq!(export_start(&c, &none, 10).expect("start"), None);
    }

    #[test]
    fn events_keep_their_details() {
        let c = crate::store::test_db();
        let e = LogEntry::event("WARNING", "bgp", "bgp.state", "down".into())
            .with_details(serde_json::json!({"session_id": 3}));
        let id = insert(&c, &e, rows(1000)).expect("insert");
        let got = get(&c, id).expect("get").expect("row");
        assert_eq!(got.entry, e);
        assert_eq!(get(&c, id + 1).expect("get"), None);
    }

    /// A log store on a real file in WAL mode (where the vacuum mode is easy to lose).
    fn file_store(dir: &tempfile::TempDir) -> Connection {
        let mut c = Connection::open_in_memory().expect("db");
        crate::store::attach_logs(&c, &dir.path().join("logs.db")).expect("attach");
        crate::store::schema::migrate_logs(&mut c).expect("log schema");
        c
    }

    /// What the files take on disk: the database and its WAL.
    fn on_disk(dir: &tempfile::TempDir) -> u64 {
        ["logs.db", "logs.db-wal"]
            .iter()
            .map(|f| std::fs::metadata(dir.path().join(f)).map_or(0, |m| m.len()))
            .sum()
    }

    fn big(i: i64) -> LogEntry {
        let mut e = entry(i);
        e.message = format!("{i} {}", "x".repeat(2000));
        e
    }

    #[test]
    fn trims_to_a_lowered_bound() {
        let dir = tempfile::tempdir().expect("dir");
        let c = file_store(&dir);
        for i in 0..500 {
            insert(&c, &big(i), rows(100_000)).expect("insert");
        }
        assert!(on_disk(&dir) > 1_000_000, "{}", on_disk(&dir));
        let small = Bound {
            max_entries: 100_000,
            max_bytes: 400_000,
        };
        let deleted = trim_to_size(&c, small).expect("trim");
        assert!(deleted > 0);
        assert!(on_disk(&dir) <= 400_000, "{}", on_disk(&dir));
        assert!(file_bytes(&c).expect("size") <= 400_000);
        assert!(count(&c).expect("count") > 0);
    }

    #[test]
    fn database_and_wal_stay_within_the_bound_after_every_write() {
        let dir = tempfile::tempdir().expect("dir");
        let c = file_store(&dir);
        let bound = Bound {
            max_entries: 100_000,
            max_bytes: 1 << 20,
        };
        let mut peak = 0;
        // ~2 MB of entries.
        for i in 0..1000 {
            insert(&c, &big(i), bound).expect("insert");
            peak = peak.max(on_disk(&dir));
        }
        assert!(peak <= 1 << 20, "{peak} bytes on disk");
        // The newest entries are the ones kept, and the file is used, not left empty.
        let (newest, total) = list(&c, &Filter::default(), 1, 0).expect("list");
        assert_eq!(newest[0].entry, big(999));
        assert!(total > 150, "{total} entries kept (one a page)");
        // A lower bound applies at the next write.
        let lower = Bound {
            max_bytes: 256 << 10,
            ..bound
        };
        insert(&c, &big(1000), lower).expect("insert");
        assert!(on_disk(&dir) <= 256 << 10, "{}", on_disk(&dir));
        for i in 1001..1100 {
            insert(&c, &big(i), lower).expect("insert");
            assert!(on_disk(&dir) <= 256 << 10, "{}", on_disk(&dir));
        }
    }

    #[test]
    fn a_reader_holding_the_wal_makes_writes_fail_not_grow() {
        let dir = tempfile::tempdir().expect("dir");
        let c = file_store(&dir);
        let bound = Bound {
            max_entries: 100_000,
            max_bytes: 1 << 20,
        };
        insert(&c, &big(0), bound).expect("insert");
        let reader = Connection::open(dir.path().join("logs.db")).expect("reader");
        reader.execute_batch("BEGIN").expect("begin");
        let n: i64 = reader
            .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
            .expect("read");
        assert_eq!(n, 1);
        let mut refused = 0;
        for i in 1..2000 {
            if insert(&c, &big(i), bound).is_err() {
                refused += 1;
            }
            assert!(on_disk(&dir) <= 1 << 20, "{}", on_disk(&dir));
        }
        assert!(refused > 0);
        reader.execute_batch("COMMIT").expect("end");
        insert(&c, &big(2000), bound).expect("writes again once the reader is done");
    }

    #[test]
    fn an_old_audit_log_moves_to_the_log_store() {
        // A database of schema 4 (audit log in the main file), then the upgrade.
        let mut c = Connection::open_in_memory().expect("db");
        crate::store::schema::migrate(&mut c).expect("schema");
        c.execute_batch(
            "CREATE TABLE IF NOT EXISTS audit_log (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, \
             level TEXT NOT NULL, module TEXT NOT NULL, action TEXT NOT NULL, \
             message TEXT NOT NULL, user_id INTEGER, username TEXT, ip TEXT NOT NULL, \
             user_agent TEXT, method TEXT NOT NULL, path TEXT NOT NULL, target TEXT, \
             status INTEGER NOT NULL);
             INSERT INTO audit_log (ts, level, module, action, message, user_id, username, ip, \
             method, path, status) VALUES (5, 'INFO', 'users', 'users.create', 'm', 1, 'admin', \
             '::1', 'POST', '/api/v1/users', 201);",
        )
        .expect("old rows");
        crate::store::attach_logs(&c, std::path::Path::new(":memory:")).expect("attach");
        crate::store::schema::migrate_logs(&mut c).expect("log schema");
        assert_eq!(adopt_audit_log(&mut c).expect("adopt"), 1);
        assert_eq!(adopt_audit_log(&mut c).expect("again"), 0);
        let (rows, _) = list(&c, &Filter::default(), 10, 0).expect("list");
        assert_eq!(rows[0].entry.action, "users.create");
        assert_eq!(rows[0].entry.status, Some(201));
    }

    #[test]
    fn levels_follow_status_and_parse() {
        assert_eq!(level_for_status(201), "INFO");
        assert_eq!(level_for_status(403), "WARNING");
        assert_eq!(level_for_status(503), "ERROR");
        assert_eq!(parse_level("error"), Some("ERROR"));
        assert_eq!(parse_level("warn"), Some("WARNING"));
        assert_eq!(parse_level("loud"), None);
    }
}
