//! SQLite storage, `<data_dir>/ipv6wgm.db`.
//!
//! **Threading.** One dedicated OS thread owns the only `rusqlite::Connection`; async code
//! sends it closures over a bounded channel and awaits the answer on a oneshot. So the tokio
//! workers never block on disk I/O, writes are serialised without lock contention (SQLite
//! allows one writer anyway), a closure can run a whole transaction atomically, and a full
//! queue pushes back on callers instead of growing. A router has one or two cores; a pool of
//! connections would buy nothing but memory.
//!
//! **Layout.** `schema` holds the versioned migrations; one file of queries per table
//! (`users`, `tokens`, `logs`, `settings`, `wireguard`, `ipv6`, `bgp`, `alerts`). SQL lives
//! only here. The log store is a second database file attached as schema `logs` (see
//! [`logs`]), so it can live in RAM while the rest is on flash.

pub mod alerts;
pub mod bgp;
pub mod ipam;
pub mod logs;
pub mod restore;
pub mod schema;
pub mod settings;
mod table;
pub mod tokens;
pub mod users;
pub mod wireguard;

use rusqlite::Connection;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The database, in the data directory.
pub const DB_FILE: &str = "ipv6wgm.db";
/// The log store, in `run_dir()` (RAM on OpenWrt when `log_dir` is in /tmp).
pub const LOGS_FILE: &str = "logs.db";

/// Errors of the storage layer; `ApiError: From<StoreError>` maps them to HTTP once.
#[derive(Debug)]
pub enum StoreError {
    /// A uniqueness rule: `field` already has that value.
    Conflict {
        field: String,
        message: String,
    },
    NotFound(&'static str),
    /// A domain invariant the change would break (e.g. removing the last admin).
    Rule(String),
    /// The database thread has stopped (shutdown in progress).
    Closed,
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Conflict { message, .. } | StoreError::Rule(message) => {
                f.write_str(message)
            }
            StoreError::NotFound(what) => write!(f, "{what} not found"),
            StoreError::Closed => f.write_str("database closed"),
            StoreError::Sqlite(e) => write!(f, "sqlite: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl StoreError {
    /// What to tell the user when the database cannot be written because of the disk
    /// (full, or failing); `None` for every other error.
    pub fn disk_problem(&self) -> Option<&'static str> {
        use rusqlite::ffi::ErrorCode;
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => match f.code {
                ErrorCode::DiskFull => Some(
                    "the disk holding the database is full: free some space on it and try again",
                ),
                ErrorCode::SystemIoFailure => {
                    Some("the database cannot be written (I/O error: is the disk full or failing?)")
                }
                _ => None,
            },
            _ => None,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

enum Msg {
    Run(Job),
    Close,
}

/// How long a statement waits for another process's lock (admin commands over SSH).
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Requests queued for the database thread before callers wait for room.
const QUEUE_DEPTH: usize = 64;

/// Handle to the database thread; clones share it (each domain service holds one).
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Msg>,
    thread: std::sync::Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    /// How long jobs take on the database thread (queueing not included).
    pub timing: std::sync::Arc<crate::monitor::latency::Latencies>,
}

impl Store {
    /// Opens (creating if needed) the database and the log store at `logs_path`, runs
    /// migrations, starts the thread.
    pub fn open(path: &Path, logs_path: &Path) -> Result<Store, String> {
        Ok(Self::start(open_full(path, logs_path)?))
    }

    fn start(mut conn: Connection) -> Store {
        let (tx, mut rx) = mpsc::channel::<Msg>(QUEUE_DEPTH);
        let timing = std::sync::Arc::new(crate::monitor::latency::Latencies::default());
        let thread = std::thread::Builder::new()
            .name("ipv6wgm-db".into())
            .spawn(move || {
                while let Some(Msg::Run(job)) = rx.blocking_recv() {
                    job(&mut conn);
                }
                // Jobs sent after this point are dropped; their callers get `Closed`.
                rx.close();
                // Fold the WAL back into the main file and close.
                let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
                if let Err((_, e)) = conn.close() {
                    log::error!("closing database: {e}");
                }
            })
            .map(Some)
            .unwrap_or_else(|e| {
                log::error!("cannot start database thread: {e}");
                None
            });
        Store {
            tx,
            thread: std::sync::Arc::new(Mutex::new(thread)),
            timing,
        }
    }

    /// Runs `f` on the database thread and returns its result.
    pub async fn call<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<R> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let timing = self.timing.clone();
        let job: Job = Box::new(move |conn| {
            let started = std::time::Instant::now();
            let r = f(conn);
            timing.record(started.elapsed(), if r.is_ok() { 200 } else { 500 });
            let _ = reply.send(r);
        });
        self.tx
            .send(Msg::Run(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a domain operation's closure on the database thread. Its own errors (any type a
    /// [`StoreError`] converts into) pass through unchanged; the job is timed like every other.
    pub async fn run<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, E> + Send + 'static,
    {
        self.call(move |c| Ok(f(c))).await?
    }

    /// [`Store::run`] inside one transaction: committed when `f` succeeds, rolled back (by
    /// dropping it) when `f` fails. The one transaction helper: a rule check, the write it
    /// guards and anything read in between see the same database.
    pub async fn write<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<R, E> + Send + 'static,
    {
        self.run(move |c| in_transaction(c, f)).await
    }

    /// A consistent copy of the database (not the log store) written to `dest`, which must
    /// not exist, and the copy's schema version. `VACUUM INTO` reads one snapshot of the
    /// database (a live WAL file is never copied) and writes it compacted; writers wait for
    /// it on the database thread like for any other job.
    pub async fn snapshot(&self, dest: std::path::PathBuf) -> StoreResult<i64> {
        self.call(move |c| {
            let path = dest.to_str().ok_or_else(|| {
                StoreError::Rule("the backup directory's path is not UTF-8".into())
            })?;
            c.execute("VACUUM main INTO ?1", [path])?;
            Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?)
        })
        .await
    }

    /// Lets queued jobs finish, then closes the connection and joins the thread. Called once
    /// at shutdown, after the HTTP server has drained.
    pub async fn close(&self) {
        let _ = self.tx.send(Msg::Close).await;
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

/// Runs `f` in a transaction of `c`, committing when it succeeds (see [`Store::write`]).
pub fn in_transaction<R, E, F>(c: &mut Connection, f: F) -> Result<R, E>
where
    E: From<StoreError>,
    F: FnOnce(&rusqlite::Transaction<'_>) -> Result<R, E>,
{
    let tx = c.transaction().map_err(StoreError::from)?;
    let r = f(&tx)?;
    tx.commit().map_err(StoreError::from)?;
    Ok(r)
}

/// A LIKE pattern (used with `ESCAPE '\'`) matching values that contain `s`, where `%`, `_`
/// and `\` in the user's text match themselves.
pub fn contains_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The connection the database thread works with: the database at `path` and the log
/// store at `logs_path` attached, both migrated (at start-up, and when a restore swaps the
/// database).
pub fn open_full(path: &Path, logs_path: &Path) -> Result<Connection, String> {
    let mut conn = open_connection(path)?;
    attach_logs(&conn, logs_path)?;
    schema::migrate_logs(&mut conn)?;
    schema::migrate(&mut conn)?;
    let moved = logs::adopt_audit_log(&mut conn)
        .map_err(|e| format!("cannot move the audit log to the log store: {e}"))?;
    if moved > 0 {
        log::info!("moved {moved} audit log entries to {}", logs_path.display());
    }
    Ok(conn)
}

/// Open a connection with the pragmas every process touching the database uses (the
/// server, and admin subcommands run over SSH while it may be running).
pub fn open_connection(path: &Path) -> Result<Connection, String> {
    let conn = Connection::open(path)
        .map_err(|e| format!("cannot open database {}: {e}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .and_then(|_| conn.pragma_update(None, "journal_mode", "WAL"))
        .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
        .and_then(|_| conn.pragma_update(None, "foreign_keys", "ON"))
        .map_err(|e| format!("cannot configure database {}: {e}", path.display()))?;
    Ok(conn)
}

/// Attaches the log store file as schema `logs` (WAL, like the main file), with incremental
/// auto-vacuum so that `logs::trim_to_size` can give pages back. The vacuum mode must be set
/// before anything writes the file (switching to WAL does); a file made without it is
/// rebuilt once with `VACUUM`.
pub fn attach_logs(conn: &Connection, path: &Path) -> Result<(), String> {
    let name = path
        .to_str()
        .ok_or_else(|| format!("log store path {} is not UTF-8", path.display()))?;
    let err = |e: rusqlite::Error| format!("cannot open the log store {}: {e}", path.display());
    conn.execute("ATTACH DATABASE ?1 AS logs", [name])
        .map_err(err)?;
    conn.execute_batch("PRAGMA logs.auto_vacuum = INCREMENTAL")
        .map_err(err)?;
    let mode: i64 = conn
        .query_row("PRAGMA logs.auto_vacuum", [], |r| r.get(0))
        .map_err(err)?;
    if mode != 2 {
        conn.execute_batch("VACUUM logs").map_err(err)?;
    }
    let logs = Some(rusqlite::DatabaseName::Attached("logs"));
    conn.pragma_update(logs, "journal_mode", "WAL")
        .and_then(|_| conn.pragma_update(logs, "synchronous", "NORMAL"))
        .map_err(err)
}

/// An in-memory database (and log store) with the current schema, as the store opens it
/// (foreign keys on).
#[cfg(test)]
pub fn test_db() -> Connection {
    let mut c = Connection::open_in_memory().expect("db");
    c.pragma_update(None, "foreign_keys", "ON").expect("fk");
    attach_logs(&c, Path::new(":memory:")).expect("attach");
    schema::migrate_logs(&mut c).expect("log schema");
    schema::migrate(&mut c).expect("schema");
    logs::adopt_audit_log(&mut c).expect("adopt");
    c
}
