//! The log: audit entries (written by the request pipeline, awaited) and application events
//! (written by engines without waiting: [`Logs::event`] queues them for [`Logs::writer`]), both
//! into the one bounded store (`store::logs`), both announced to live subscribers
//! (WebSocket `log_entry`). Listing, filtering and exports in JSON, CSV or text.
//!
//! Refused requests without a principal are not written one by one: [`Logs::audit`] sums them up
//! per source address ([`refused`]), and the writer writes the summaries when their window
//! ends (and at stop).
//!
//! Bounds: the log store holds `max_log_entries` rows in `max_log_size_mb` MiB, WAL
//! included, at every moment ([`q::Bound`]); the event queue holds [`QUEUE`] entries (more are dropped and counted, never
//! buffered without limit); the live channel keeps [`LIVE`] (a slow subscriber skips); an
//! export holds at most [`EXPORT_MAX_ROWS`] rows, at most [`EXPORTS_KEPT`] export files
//! exist, each for [`EXPORT_TTL_SECS`].

pub mod refused;

use crate::store::logs::{self as q, Bound, Filter, LogEntry, LogRow};
use crate::store::{Store, StoreError};
use crate::system::Settings;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, watch};

/// What can go wrong reading or exporting the log.
#[derive(Debug)]
pub enum Error {
    NotFound(&'static str),
    /// Another export is being written (one at a time).
    ExportRunning,
    /// The service is stopping: no more downloads.
    Stopping,
    /// File work for an export failed (logged where it happened).
    Internal,
    Store(StoreError),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotFound(what) => write!(f, "{what} not found"),
            Error::ExportRunning => f.write_str("another log export is being written"),
            Error::Stopping => f.write_str("shutting down"),
            Error::Internal => f.write_str("internal error"),
            Error::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub const QUEUE: usize = 256;
pub const LIVE: usize = 64;
pub const EXPORT_MAX_ROWS: u32 = 100_000;
pub const EXPORTS_KEPT: usize = 8;
/// One export file at most (larger selections are cut, `truncated: true`).
pub const EXPORT_MAX_BYTES: u64 = 16 << 20;
/// All export files together.
pub const EXPORTS_MAX_BYTES: u64 = 32 << 20;
pub const EXPORT_TTL_SECS: i64 = 3600;

/// An entry as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogView {
    pub id: i64,
    pub level: &'static str,
    pub message: String,
    pub module: String,
    pub action: String,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub target: Option<String>,
    pub status: Option<u16>,
    #[serde(serialize_with = "crate::time::ser")]
    pub timestamp: i64,
    pub details: serde_json::Value,
}

impl From<LogRow> for LogView {
    fn from(r: LogRow) -> LogView {
        let e = r.entry;
        LogView {
            id: r.id,
            level: e.level,
            message: e.message,
            module: e.module,
            action: e.action,
            user_id: e.user_id,
            username: e.username,
            ip_address: e.ip,
            user_agent: e.user_agent,
            method: e.method,
            path: e.path,
            target: e.target,
            status: e.status,
            timestamp: e.ts,
            details: e.details.unwrap_or_else(|| serde_json::json!({})),
        }
    }
}

pub struct Logs {
    store: Store,
    /// The live settings: the log store's bound (`/system/config` changes it while running).
    settings: watch::Receiver<Settings>,
    /// Where exports are written (`<log_dir>/exports`).
    exports_dir: PathBuf,
    /// The URL path exports are downloaded under (`/api/v1/logs/export/download`).
    download_base: String,
    tx: mpsc::Sender<LogEntry>,
    rx: Mutex<Option<mpsc::Receiver<LogEntry>>>,
    /// (usize: MIPS32 has no 64-bit atomics.)
    dropped: AtomicUsize,
    live: broadcast::Sender<Arc<LogView>>,
    exporting: tokio::sync::Semaphore,
    downloading: Arc<tokio::sync::Semaphore>,
    /// Refused requests without a principal, counted per address until their summary.
    refused: Mutex<refused::Refused>,
}

impl Logs {
    pub fn new(
        store: Store,
        settings: watch::Receiver<Settings>,
        exports_dir: PathBuf,
        download_base: String,
    ) -> Logs {
        let (tx, rx) = mpsc::channel(QUEUE);
        Logs {
            store,
            settings,
            exports_dir,
            download_base,
            tx,
            rx: Mutex::new(Some(rx)),
            dropped: AtomicUsize::new(0),
            live: broadcast::Sender::new(LIVE),
            exporting: tokio::sync::Semaphore::new(1),
            downloading: Arc::new(tokio::sync::Semaphore::new(2)),
            refused: Mutex::default(),
        }
    }

    /// Queues an application event; never waits. Also written to the process log.
    pub fn event(&self, e: LogEntry) {
        let level = match e.level {
            "ERROR" | "CRITICAL" => log::Level::Error,
            "WARNING" => log::Level::Warn,
            "DEBUG" => log::Level::Debug,
            _ => log::Level::Info,
        };
        log::log!(level, "{}: {}", e.action, e.message);
        if self.tx.try_send(e).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events lost because the queue was full (the database could not keep up).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed) as u64
    }

    /// New entries as they are stored.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogView>> {
        self.live.subscribe()
    }
}

impl Logs {
    /// The log store's bound as set now (`/system/config` changes it while running).
    fn bound(&self) -> Bound {
        let s = self.settings.borrow();
        Bound {
            max_entries: s.max_log_entries,
            max_bytes: u64::from(s.max_log_size_mb) << 20,
        }
    }

    /// Writes the audit entry of a request (the request waits for it). A refusal without a
    /// principal (bad token, failed login) is written in full only when it is its address's
    /// first in a while; the rest are summed up ([`refused`]). Failures are logged, not
    /// returned: the response is already decided.
    pub async fn audit(&self, e: LogEntry) {
        let refused = e.user_id.is_none() && e.status.is_some_and(|s| s >= 400);
        let write = if refused {
            crate::sync::lock(&self.refused).refuse(e, crate::time::now())
        } else {
            vec![e]
        };
        for e in write {
            if let Err(err) = self.record(e).await {
                log::error!("audit log write failed: {err}");
            }
        }
    }

    /// Stores an entry now and announces it.
    pub async fn record(&self, e: LogEntry) -> Result<i64> {
        let bound = self.bound();
        let stored = e.clone();
        let id = self
            .store
            .call(move |c| q::insert(c, &stored, bound))
            .await?;
        let _ = self
            .live
            .send(Arc::new(LogView::from(LogRow { id, entry: e })));
        Ok(id)
    }

    /// Writes queued events and due refusal summaries until `stopping` is set, then what is
    /// still queued and every summary (windows cut short). Runs once.
    pub async fn writer(self: Arc<Self>, mut stopping: watch::Receiver<bool>) {
        let rx = self.rx.lock().ok().and_then(|mut r| r.take());
        let Some(mut rx) = rx else { return };
        let mut tick = tokio::time::interval(SUMMARY_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let e = tokio::select! {
                e = rx.recv() => e,
                _ = tick.tick() => {
                    self.write_summaries(false).await;
                    continue;
                }
                _ = async { stopping.wait_for(|s| *s).await.map(|_| ()) } => break,
            };
            let Some(e) = e else { break };
            if let Err(err) = self.record(e).await {
                log::error!("log store write failed: {err}");
            }
        }
        while let Ok(e) = rx.try_recv() {
            let _ = self.record(e).await;
        }
        self.write_summaries(true).await;
    }

    /// Writes the refusal summaries whose window has ended (`all`: every one).
    async fn write_summaries(&self, all: bool) {
        let now = crate::time::now();
        let due = {
            let mut table = crate::sync::lock(&self.refused);
            if all {
                table.drain(now)
            } else {
                table.due(now)
            }
        };
        for e in due {
            if let Err(err) = self.record(e).await {
                log::error!("log store write failed: {err}");
            }
        }
    }

    /// Keeps the log file under its size bound and removes expired exports; called by the
    /// collector on every tick.
    pub async fn housekeeping(&self) {
        let bound = self.bound();
        match self.store.call(move |c| q::trim_to_size(c, bound)).await {
            Ok(0) => {}
            Ok(n) => log::info!("log store over its size bound: {n} oldest entries removed"),
            Err(e) => log::warn!("log store trim failed: {e}"),
        }
        let now = crate::time::now();
        for (path, made) in export_files(&self.exports_dir) {
            if now - made > EXPORT_TTL_SECS {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    pub async fn list(
        &self,
        filter: Filter,
        page: crate::input::Page,
    ) -> Result<(Vec<LogView>, u64)> {
        let (rows, total) = self
            .store
            .call(move |c| q::list(c, &filter, page.size, page.offset()))
            .await?;
        Ok((rows.into_iter().map(LogView::from).collect(), total))
    }

    pub async fn get(&self, id: i64) -> Result<LogView> {
        let row = self.store.call(move |c| q::get(c, id)).await?;
        row.map(LogView::from).ok_or(Error::NotFound("log entry"))
    }
}

/// How often the writer looks for refusal summaries whose window has ended.
const SUMMARY_TICK: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Txt,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "txt" | "text" => Some(Format::Txt),
            _ => None,
        }
    }

    fn ext(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Txt => "txt",
        }
    }

    pub fn content_type(name: &str) -> &'static str {
        match name.rsplit('.').next() {
            Some("json") => "application/json",
            Some("csv") => "text/csv; charset=utf-8",
            _ => "text/plain; charset=utf-8",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Export {
    pub download_url: String,
    pub file_name: String,
    pub file_size: u64,
    pub entries: usize,
    /// The selection was larger than one export may be; the oldest part is in the file.
    pub truncated: bool,
    pub format: &'static str,
    #[serde(serialize_with = "crate::time::ser")]
    pub expires_at: i64,
}

/// Export files with their creation time (from the name), oldest first.
fn export_files(dir: &std::path::Path) -> Vec<(PathBuf, i64)> {
    let mut files: Vec<(PathBuf, i64)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let made = export_time(&name)?;
            Some((e.path(), made))
        })
        .collect();
    files.sort_by_key(|(p, t)| (*t, p.clone()));
    files
}

/// `export_<unix secs>_<8 hex>.<ext>` → the creation time; `None` for any other name (so a
/// download can never name another file).
fn export_time(name: &str) -> Option<i64> {
    let rest = name.strip_prefix("export_")?;
    let (stem, ext) = rest.rsplit_once('.')?;
    Format::parse(ext).filter(|f| f.ext() == ext)?;
    let (secs, tag) = stem.split_once('_')?;
    let ok = |s: &str, n: usize, f: fn(&u8) -> bool| {
        s.len() <= n && !s.is_empty() && s.as_bytes().iter().all(f)
    };
    if !ok(secs, 12, u8::is_ascii_digit) || tag.len() != 8 || !ok(tag, 8, u8::is_ascii_hexdigit) {
        return None;
    }
    secs.parse().ok()
}

impl Logs {
    /// Writes the matching entries (oldest first, at most [`EXPORT_MAX_ROWS`] and
    /// [`EXPORT_MAX_BYTES`]) to a file under `<log_dir>/exports`, a page of rows at a time, and
    /// says where to download it. One export runs at a time.
    pub async fn export(&self, filter: Filter, format: Format) -> Result<Export> {
        let _one = self
            .exporting
            .try_acquire()
            .map_err(|_| Error::ExportRunning)?;
        let now = crate::time::now();
        let name = format!(
            "export_{now}_{}.{}",
            crate::auth::random_hex::<4>(),
            format.ext()
        );
        let dir = self.exports_dir.clone();
        let path = dir.join(&name);
        let mut file = blocking(move || {
            crate::fsutil::ensure_private_dir(&dir)?;
            // Keep the newest few, and their total bounded: exports are for downloading now,
            // not an archive (on a router they are in RAM).
            let files = export_files(&dir);
            let mut total: u64 = files.iter().map(|(p, _)| file_len(p)).sum();
            let excess = (files.len() + 1).saturating_sub(EXPORTS_KEPT);
            for (i, (old, _)) in files.iter().enumerate() {
                if i >= excess && total + EXPORT_MAX_BYTES <= EXPORTS_MAX_BYTES {
                    break;
                }
                total = total.saturating_sub(file_len(old));
                let _ = std::fs::remove_file(old);
            }
            crate::fsutil::create_private(&path)
        })
        .await?;
        let f = filter.clone();
        let mut next = self
            .store
            .call(move |c| q::export_start(c, &f, EXPORT_MAX_ROWS))
            .await?;
        let (mut entries, mut size, mut truncated) = (0usize, 0u64, false);
        let mut chunk = render_head(format);
        while let Some(from) = next {
            let f = filter.clone();
            let rows = self
                .store
                .call(move |c| q::export_page(c, &f, from, EXPORT_PAGE))
                .await?;
            next = (rows.len() == EXPORT_PAGE as usize)
                .then(|| rows.last().map(|r| r.id + 1))
                .flatten();
            let views: Vec<LogView> = rows.into_iter().map(LogView::from).collect();
            let rest = EXPORT_MAX_ROWS as usize - entries;
            if views.len() >= rest {
                next = None;
            }
            let views = &views[..views.len().min(rest)];
            render_rows(&mut chunk, views, format, entries == 0);
            entries += views.len();
            size += chunk.len() as u64;
            if size > EXPORT_MAX_BYTES {
                truncated = true;
                next = None;
            }
            let bytes = std::mem::take(&mut chunk);
            file = blocking(move || {
                use std::io::Write;
                file.write_all(&bytes).map_err(|e| e.to_string())?;
                Ok(file)
            })
            .await?;
        }
        let tail = render_tail(format);
        size += tail.len() as u64;
        blocking(move || {
            use std::io::Write;
            file.write_all(&tail)
                .and_then(|_| file.sync_data())
                .map_err(|e| e.to_string())
        })
        .await?;
        Ok(Export {
            download_url: format!("{}/{name}", self.download_base),
            file_name: name,
            file_size: size,
            entries,
            truncated,
            format: format.ext(),
            expires_at: now + EXPORT_TTL_SECS,
        })
    }
}

/// Rows read from the database per step of an export.
const EXPORT_PAGE: u32 = 500;

fn file_len(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Runs file work on the blocking pool; its errors are logged and answered as a 500.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::Internal)?
        .map_err(|e| {
            log::error!("log export: {e}");
            Error::Internal
        })
}

/// An export opened for sending: the file, its length, and one of the two download
/// slots, to be held until the file is sent (`api::response::FileBody`).
pub struct Download {
    pub file: std::fs::File,
    pub len: u64,
    pub slot: tokio::sync::OwnedSemaphorePermit,
}

impl Logs {
    /// An export that exists and has not expired, opened. At most two are sent at once.
    pub async fn download(&self, name: &str) -> Result<Download> {
        let made = export_time(name).ok_or(Error::NotFound("export"))?;
        if crate::time::now() - made > EXPORT_TTL_SECS {
            return Err(Error::NotFound("export (expired)"));
        }
        let slot = self
            .downloading
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Stopping)?;
        let path = self.exports_dir.join(name);
        let (file, len) = crate::fsutil::open_with_len(path)
            .await
            .map_err(|_| Error::NotFound("export"))?;
        Ok(Download { file, len, slot })
    }
}

const CSV_HEADER: &str =
    "id,timestamp,level,module,action,message,user_id,username,ip_address,method,path,status,target,details";

/// The whole file for `views` (what an export of them writes). CSV follows RFC 4180
/// (fields with commas, quotes or line breaks are quoted); text is one line per entry with
/// line breaks in any field escaped.
pub fn render(views: &[LogView], format: Format) -> Vec<u8> {
    let mut out = render_head(format);
    render_rows(&mut out, views, format, true);
    out.extend(render_tail(format));
    out
}

fn render_head(format: Format) -> Vec<u8> {
    match format {
        Format::Json => b"[".to_vec(),
        Format::Csv => format!("{CSV_HEADER}\r\n").into_bytes(),
        Format::Txt => Vec::new(),
    }
}

fn render_tail(format: Format) -> Vec<u8> {
    match format {
        Format::Json => b"\n]\n".to_vec(),
        _ => Vec::new(),
    }
}

/// Appends `views` to `out`; `first`: nothing was written before (JSON separators).
fn render_rows(out: &mut Vec<u8>, views: &[LogView], format: Format, first: bool) {
    for (i, v) in views.iter().enumerate() {
        match format {
            Format::Json => {
                out.extend_from_slice(if first && i == 0 { b"\n" } else { b",\n" });
                let _ = serde_json::to_writer(&mut *out, v);
            }
            Format::Csv => {
                let fields = [
                    v.id.to_string(),
                    crate::time::rfc3339(v.timestamp),
                    v.level.to_string(),
                    v.module.clone(),
                    v.action.clone(),
                    v.message.clone(),
                    v.user_id.map(|u| u.to_string()).unwrap_or_default(),
                    v.username.clone().unwrap_or_default(),
                    v.ip_address.clone().unwrap_or_default(),
                    v.method.clone().unwrap_or_default(),
                    v.path.clone().unwrap_or_default(),
                    v.status.map(|s| s.to_string()).unwrap_or_default(),
                    v.target.clone().unwrap_or_default(),
                    v.details.to_string(),
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                out.extend_from_slice(line.join(",").as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Format::Txt => {
                let who = match (&v.username, &v.ip_address) {
                    (Some(u), Some(ip)) => format!(" ({} from {})", one_line(u), one_line(ip)),
                    (Some(u), None) => format!(" ({})", one_line(u)),
                    (None, Some(ip)) => format!(" (from {})", one_line(ip)),
                    (None, None) => String::new(),
                };
                let line = format!(
                    "{} {:<8} [{}] {}: {}{who}\n",
                    crate::time::rfc3339(v.timestamp),
                    v.level,
                    one_line(&v.module),
                    one_line(&v.action),
                    one_line(&v.message),
                );
                out.extend_from_slice(line.as_bytes());
            }
        }
    }
}

/// A field on one text line: backslashes and line breaks escaped, so no entry can forge
/// another.
fn one_line(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn csv_field(s: &str) -> String {
    // A leading =, +, - or @ makes spreadsheets run a formula: prefix it with a quote.
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: i64, message: &str) -> LogView {
        LogView {
            id,
            level: "INFO",
            message: message.into(),
            module: "bgp".into(),
            action: "bgp.state".into(),
            user_id: None,
            username: Some("admin".into()),
            ip_address: Some("::1".into()),
            user_agent: None,
            method: None,
            path: None,
            target: None,
            status: None,
            timestamp: 1_704_067_200,
            details: serde_json::json!({"a": 1}),
        }
    }

    #[test]
    fn export_names_are_checked() {
        assert_eq!(
            export_time("export_1704067200_0a1b2c3d.json"),
            Some(1_704_067_200)
        );
        for bad in [
            "export_1704067200_0a1b2c3d.exe",
            "export_1704067200_0a1b2c3.json",
            "export_1704067200_0a1b2c3d.json/../x",
            "../export_1704067200_0a1b2c3d.json",
            "export__0a1b2c3d.csv",
            "export_17040672000000000_0a1b2c3d.csv",
            "x_1704067200_0a1b2c3d.txt",
            "export_1704067200_0a1b2c3d.text",
        ] {
            assert_eq!(export_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn csv_quotes_and_defuses() {
        let rows = [view(1, "plain"), view(2, "a,\"b\"\nc"), view(3, "=cmd()")];
        let text = String::from_utf8(render(&rows, Format::Csv)).expect("utf8");
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert!(lines[1].starts_with("1,2024-01-01T00:00:00Z,INFO,bgp,bgp.state,plain,,admin,::1,"));
        assert!(text.contains("\"a,\"\"b\"\"\nc\""));
        assert!(text.contains(",'=cmd(),"));
        assert!(lines[1].ends_with("\"{\"\"a\"\":1}\""));
    }

    #[test]
    fn text_is_one_line_per_entry() {
        let rows = [view(1, "two\nlines")];
        let text = String::from_utf8(render(&rows, Format::Txt)).expect("utf8");
        assert_eq!(
            text,
            "2024-01-01T00:00:00Z INFO     [bgp] bgp.state: two\\nlines (admin from ::1)\n"
        );
        let json: Vec<serde_json::Value> =
            serde_json::from_slice(&render(&rows, Format::Json)).expect("json");
        assert_eq!(json[0]["timestamp"], "2024-01-01T00:00:00Z");
    }
}
