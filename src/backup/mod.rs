//! Backups: consistent `.tar.gz` archives of the router's state, restored onto the same or a
//! new router, on demand or on a schedule, optionally encrypted.
//!
//! An archive is a gzipped tar whose first member is `manifest.json` (format version, app
//! and schema versions, type, hostname, creation time, and each member's size and SHA-256),
//! then the members of its type:
//!
//! | member                | what                                              | in types          |
//! |-----------------------|---------------------------------------------------|-------------------|
//! | `database/ipv6wgm.db` | a consistent snapshot of the database (`VACUUM INTO`) | full, database |
//! | `config/ipv6wgm.toml` | the configuration file in use, when there is one  | full, config      |
//! | `files/jwt.key`       | the token signing key                             | full, files       |
//!
//! With a passphrase the whole `.tar.gz` is encrypted in the age format (scrypt recipient) as
//! it is written — tar.gz → age → hashing writer → file, no plaintext copy on disk — and the
//! file is `….tar.gz.age`; the catalogue's checksum is always of the file as stored. The
//! passphrase comes from the request or `backup.passphrase_file` ([`passphrase`]); it is never
//! stored. An uploaded encrypted archive is of type [`Kind::Unknown`] until a restore decrypts
//! its manifest.
//!
//! - [`archive`]: writing an archive, and reading one back into a staging directory with
//!   every check (manifest first, names from the table above only — `archive::MEMBERS`,
//!   the same allowlist as a const — regular files only, size and count caps, every
//!   checksum, nothing after the end) — nothing is ever unpacked by a tar program. Members
//!   are staged under their own names (`<stage>/database/ipv6wgm.db`); a bad archive is
//!   `ArchiveError::Invalid` (a 422), a failing disk or input stream `ArchiveError::Io`.
//! - [`ustar`]: the tar headers of an archive, written and parsed (pure): the ustar subset
//!   a backup needs (regular files, short names), checksum verified, octal sizes only; every
//!   other entry type is named for `archive` to refuse. Ours, not the `tar` crate (a
//!   dev-dependency: the tests craft hostile archives with it), to save mipsel bytes.
//! - [`crypt`]: the age v1 format with one scrypt (passphrase) stanza, streamed in 64 KiB
//!   chunks; `age -d` reads what it writes and `age -p` files restore (work factor: see there).
//! - [`schedule`]: when scheduled backups are due (pure, time as a parameter; times of day
//!   in UTC; a slot missed while the router was off runs once at start-up), and
//!   [`schedule::retention`]: which backups `backup_retention` (a bare number is days) and
//!   the directory's size cap remove — never the newest completed one.
//! - [`catalog`]: the backup directory, which lists its backups itself (no database table:
//!   a restore must not rewrite the list), and the last restores (`restores.json`).
//! - [`restore`]: stage → validate → prepare the database → pre-restore backup → swap under
//!   a journal → reload the engines → commit; [`restore::recover`] undoes a restore the
//!   process died in, at the next start. `keep_local_settings` moves a backup between routers.
//!   The swap carries over what only the live database knows: token revocations, and where
//!   WireGuard peers were last seen (so a restored device starts the handshake itself).
//!   Proven against real peers in `tests/backup_interop.rs`: a wireguard-go peer pings
//!   through a restored server, and BIRD has our announcements again.
//! - [`passphrase`]: the rules a passphrase must meet; a type that never prints it and is
//!   zeroed on drop.
//! - [`upload`]: an archive from elsewhere, streamed to `.tmp-upload`, checked (every check of
//!   [`archive::verify`]; an age file up to its header) and kept as a `completed` entry of
//!   origin `upload`, or refused leaving nothing. One upload at a time, beside a backup.
//! - [`schedules`]: the schedules in force — the configuration's (`[[backup.schedules]]`,
//!   read-only) and the API's — and each one's `last_run`, kept in `schedules.json` in the
//!   backup directory (not the database, so a restore does not rewind them); [`runner`]: the
//!   task that starts their backups through [`Service::create`] (origin `schedule:<name>`);
//!   [`pruning`]: retention enforced at the end of every backup job (`backup_retention` from
//!   `/system/config`, the size cap `backup.max_size_mb`).
//! - [`latest`]: `latest.tar.gz` (`.age` when encrypted) in the backup directory, a hard link
//!   to the newest completed full or database backup made here, refreshed after every backup
//!   and deletion; the one fixed path OpenWrt's `/lib/upgrade/keep.d/ipv6wgm` keeps across a
//!   firmware upgrade, restored by the init script at the first start after it. Not an entry:
//!   the catalogue never lists it.
//!
//! ```text
//!  api::backup ─► Service::create ─► catalog: entry "running" ─► task: Store::snapshot
//!                                        (VACUUM INTO) ─► archive::write ─► rename
//!          (through crypt::Encryptor with a passphrase)
//!          ─► pruning (retention, size cap; never this backup) ─► "completed" / "failed"
//!  runner (schedules due) ─► Service::create (origin schedule:<name>) ─► … the same
//! ```
//!
//! The backup directory holds, besides the archives and their `backup-<id>.json`:
//! `next-id`, `.lock`, `schedules.json`, `latest.tar.gz` and `.tmp-*` files of a running job.
//!
//! One backup or restore runs at a time. A backup or restore interrupted by a crash is marked
//! failed at the next start ([`catalog::Catalog::recover`], [`Service::note_recovered`]).
//!
//! Events of module `backup` (process log, log store, WebSocket `logs` channel; requests are
//! audited besides): `backup.completed`, `backup.failed`, `backup.deleted` (through the API),
//! `backup.pruned` (by retention or the size cap), `restore.completed`, `restore.failed`,
//! `restore.interrupted`.

pub mod archive;
pub mod catalog;
pub mod cli;
pub mod crypt;
mod error;
pub mod latest;
pub mod passphrase;
pub mod pruning;
pub mod restore;
pub mod runner;
pub mod schedule;
pub mod schedules;
pub mod upload;
pub mod ustar;

pub use catalog::{Entry, Kind, RestoreRecord, Status};
pub use error::{Error, Result};
pub use passphrase::Passphrase;

use crate::store::Store;
use catalog::Catalog;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

/// The longest backup name.
pub const MAX_NAME: usize = 100;
/// The largest `metadata`, serialised.
pub const MAX_METADATA_BYTES: usize = 4096;

/// Where the files a backup holds come from (and where a restore puts them).
#[derive(Debug, Clone)]
pub struct Sources {
    pub data_dir: PathBuf,
    /// The configuration file the service was started with, if any.
    pub config_file: Option<PathBuf>,
    /// The log store, attached to the database connection (a restore leaves it alone).
    pub logs_file: PathBuf,
}

impl Sources {
    fn targets(&self) -> restore::Targets {
        restore::Targets {
            data_dir: self.data_dir.clone(),
            db: self.data_dir.join(crate::store::DB_FILE),
            key: self.data_dir.join(crate::auth::token::KEY_FILE),
            config: self.config_file.clone(),
        }
    }
}

/// What the rest of the service re-reads when a restore replaces the database under it.
pub trait Engines: Send + Sync {
    /// On the database thread, with the new database open and before any other job sees
    /// it: the state kept in memory beside the tables (the pools' allocators).
    fn reload_tables(&self, c: &mut rusqlite::Connection) -> std::result::Result<(), String>;
    /// Then: the token key (when the backup brought another), the settings, every engine.
    fn restart<'a>(&'a self, key: Option<&'a [u8]>) -> crate::sync::BoxFuture<'a, ()>;
}

/// No engines run (the CLI, with the service stopped).
struct Offline;

impl Engines for Offline {
    fn reload_tables(&self, _: &mut rusqlite::Connection) -> std::result::Result<(), String> {
        Ok(())
    }

    fn restart<'a>(&'a self, _: Option<&'a [u8]>) -> crate::sync::BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// Backups of this router: their catalogue, the jobs that make them, their files.
#[derive(Clone)]
pub struct Service {
    catalog: Arc<Catalog>,
    store: Store,
    sources: Sources,
    /// One backup or restore at a time.
    job: Arc<tokio::sync::Mutex<()>>,
    /// The schedules and their last runs (`schedules.json`).
    schedules: Arc<schedules::Schedules>,
    /// What retention removes after each backup ([`Service::with_automation`]).
    policy: pruning::PolicySource,
    /// Set once the service's engines exist ([`Service::set_engines`]); offline until then.
    engines: Arc<std::sync::OnceLock<Arc<dyn Engines>>>,
    /// Where outcomes are recorded (the event log, and from there the WebSocket `logs`
    /// channel); none in the CLI.
    logs: Arc<std::sync::OnceLock<Arc<crate::logs::Logs>>>,
    /// `backup.passphrase_file`'s passphrase: backups made without one of their own use it.
    passphrase: Option<Passphrase>,
    /// `backup.max_upload_mb`, in bytes.
    max_upload: u64,
    /// One upload at a time (not `job`: an upload must not hold up a backup).
    upload: Arc<tokio::sync::Mutex<()>>,
}

/// A backup to make.
#[derive(Debug, Clone)]
pub struct NewBackup {
    pub name: String,
    pub kind: Kind,
    pub metadata: serde_json::Value,
    /// `manual`, `schedule:<name>`, `pre-restore`.
    pub origin: String,
    /// Encrypt with this; `None`: with the configured one (`backup.passphrase_file`), if any.
    pub passphrase: Option<Passphrase>,
}

impl NewBackup {
    /// Checks what a request gave: a name (1–100 characters, no control characters) and
    /// metadata that is a JSON object of at most [`MAX_METADATA_BYTES`].
    pub fn new(name: &str, kind: Kind, metadata: Option<serde_json::Value>) -> Result<NewBackup> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(Error::invalid(
                "name",
                format!("name must be 1 to {MAX_NAME} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "name",
                "name must not contain control characters",
            ));
        }
        let metadata = metadata.unwrap_or_else(|| serde_json::json!({}));
        if !metadata.is_object() {
            return Err(Error::invalid("metadata", "metadata must be a JSON object"));
        }
        if metadata.to_string().len() > MAX_METADATA_BYTES {
            return Err(Error::invalid(
                "metadata",
                format!("metadata must be at most {MAX_METADATA_BYTES} bytes of JSON"),
            ));
        }
        Ok(NewBackup {
            name: name.to_string(),
            kind,
            metadata,
            origin: "manual".into(),
            passphrase: None,
        })
    }
}

/// A backup as the API shows it (the seed's fields, and ours after them).
#[derive(Debug, Clone, Serialize)]
pub struct BackupView {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub status: Status,
    pub error: Option<String>,
    #[serde(serialize_with = "crate::time::ser")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::ser_opt")]
    pub completed_at: Option<i64>,
    pub size_bytes: Option<u64>,
    /// The archive's file name, relative to the backup directory.
    pub file_path: String,
    /// SHA-256 of the archive file as stored and downloaded (lowercase hex).
    pub checksum: Option<String>,
    pub checksum_algorithm: &'static str,
    pub encrypted: bool,
    pub origin: String,
    pub metadata: serde_json::Value,
}

impl From<Entry> for BackupView {
    fn from(e: Entry) -> BackupView {
        BackupView {
            id: e.id,
            name: e.name,
            kind: e.kind,
            status: e.status,
            error: e.error,
            created_at: e.created_at,
            completed_at: e.completed_at,
            size_bytes: e.size_bytes,
            file_path: e.file,
            checksum: e.checksum,
            checksum_algorithm: "sha256",
            encrypted: e.encrypted,
            origin: e.origin,
            metadata: e.metadata,
        }
    }
}

/// `GET /backup/stats`.
#[derive(Debug, Serialize)]
pub struct Stats {
    pub total_backups: usize,
    pub successful_backups: usize,
    pub failed_backups: usize,
    pub total_size_bytes: u64,
    pub total_size_mb: f64,
    /// By schedule name: `type` (the frequency), `backup_type`, `enabled`, `last_run`,
    /// `next_run` ([`schedules::ScheduleView::stats_row`]).
    pub schedules: serde_json::Map<String, serde_json::Value>,
    pub running_backups: Vec<BackupView>,
}

/// An archive to send: the open file, its length, and its name.
pub struct Download {
    pub file: std::fs::File,
    pub len: u64,
    pub name: String,
    pub encrypted: bool,
}

/// Runs file work off the async workers.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<R, String> + Send + 'static,
) -> Result<R> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::Stopping)?
        .map_err(|e| {
            log::error!("backup: {e}");
            Error::Internal
        })
}

impl Service {
    /// The backups in `dir`; those a crash left running are marked failed.
    pub fn open(
        dir: &std::path::Path,
        store: Store,
        sources: Sources,
    ) -> std::result::Result<Service, String> {
        Service::with_catalog(Catalog::open(dir)?, store, sources)
    }

    /// The backups of an open (locked) catalogue; those a crash left running are marked
    /// failed.
    pub fn with_catalog(
        catalog: Catalog,
        store: Store,
        sources: Sources,
    ) -> std::result::Result<Service, String> {
        for id in catalog.recover(crate::time::now())? {
            log::warn!(
                "backup {id} was interrupted (the service stopped during it): marked failed"
            );
        }
        Ok(Service {
            schedules: Arc::new(schedules::Schedules::open(catalog.dir())),
            catalog: Arc::new(catalog),
            store,
            sources,
            job: Arc::default(),
            engines: Arc::default(),
            logs: Arc::default(),
            passphrase: None,
            max_upload: crate::config::UPLOAD_MB_DEFAULT << 20,
            upload: Arc::default(),
            policy: pruning::PolicySource::default(),
        })
    }

    /// Records outcomes in `logs` from now on.
    pub fn set_logs(&self, logs: Arc<crate::logs::Logs>) {
        let _ = self.logs.set(logs);
    }

    /// An event of module `backup` (also in the process log).
    fn event(&self, level: &'static str, action: &str, message: String, target: String) {
        match self.logs.get() {
            Some(logs) => logs.event(
                crate::store::logs::LogEntry::event(level, "backup", action, message)
                    .with_target(target),
            ),
            None => log::info!("{action}: {message}"),
        }
    }

    /// What a restore reloads in the running service (set once, at start-up).
    pub fn set_engines(&self, e: Arc<dyn Engines>) {
        let _ = self.engines.set(e);
    }

    fn engines(&self) -> Arc<dyn Engines> {
        match self.engines.get() {
            Some(e) => e.clone(),
            None => Arc::new(Offline),
        }
    }

    /// Records what the start-up recovery found: restores that never finished (and the one
    /// whose journal [`restore::recover`] rolled back) are failed.
    pub fn note_recovered(&self, journal: Option<i64>) -> std::result::Result<(), String> {
        for id in self.catalog.recover_restores(journal, crate::time::now())? {
            self.event(
                "WARNING",
                "restore.interrupted",
                format!(
                    "restore {id} was interrupted (the service stopped during it): the state \
                     from before it is back"
                ),
                format!("backup/restores/{id}"),
            );
        }
        Ok(())
    }

    /// Takes what `[backup]` of the configuration says about encryption and uploads: reads
    /// `passphrase_file` (once: a missing or unusable file stops the start, rather than a
    /// scheduled backup failing at night).
    pub fn configure(
        mut self,
        cfg: &crate::config::BackupConfig,
    ) -> std::result::Result<Service, String> {
        if let Some(path) = &cfg.passphrase_file {
            self.passphrase = Some(
                Passphrase::from_file(path).map_err(|e| format!("backup.passphrase_file: {e}"))?,
            );
            warn_if_readable_by_others(path);
        }
        self.max_upload = cfg.max_upload_bytes();
        Ok(self)
    }

    /// The passphrase of `backup.passphrase_file`, if configured: what backups made without
    /// one of their own are encrypted with (a restore of such a backup may need it).
    pub fn config_passphrase(&self) -> Option<&Passphrase> {
        self.passphrase.as_ref()
    }

    /// Waits until no backup or restore runs.
    pub async fn wait_idle(&self) {
        let _idle = self.job.lock().await;
    }

    pub async fn list(&self) -> Result<Vec<BackupView>> {
        let c = self.catalog.clone();
        let entries = blocking(move || c.entries()).await?;
        Ok(entries.into_iter().map(BackupView::from).collect())
    }

    pub async fn get(&self, id: i64) -> Result<BackupView> {
        Ok(self.entry(id).await?.into())
    }

    async fn entry(&self, id: i64) -> Result<Entry> {
        let c = self.catalog.clone();
        blocking(move || Ok(c.get(id)))
            .await?
            .ok_or(Error::NotFound("backup"))
    }

    pub async fn stats(&self) -> Result<Stats> {
        let all = self.list().await?;
        let done = |s: Status| all.iter().filter(|b| b.status == s).count();
        let total_size_bytes: u64 = all.iter().filter_map(|b| b.size_bytes).sum();
        Ok(Stats {
            total_backups: all.len(),
            successful_backups: done(Status::Completed),
            failed_backups: done(Status::Failed),
            total_size_bytes,
            total_size_mb: (total_size_bytes as f64 / 1_048_576.0 * 100.0).round() / 100.0,
            schedules: self.schedules.stats(crate::time::now()),
            running_backups: all
                .iter()
                .filter(|b| b.status == Status::Running)
                .cloned()
                .collect(),
        })
    }

    /// Starts a backup and answers at once with its entry (`running`); the archive is
    /// written in the background. 409 while another backup or restore runs.
    pub async fn create(&self, b: NewBackup) -> Result<BackupView> {
        if b.kind == Kind::Config && self.sources.config_file.is_none() {
            return Err(Error::invalid(
                "backup_type",
                "this service was started without a configuration file (--config): a config \
                 backup would hold nothing; its settings are in the database (type database)",
            ));
        }
        let guard = self.job.clone().try_lock_owned().map_err(|_| Error::Busy)?;
        let (entry, passphrase) = self.start(b).await?;
        let svc = self.clone();
        let running = entry.clone();
        tokio::spawn(async move {
            let _one_at_a_time = guard;
            svc.run(running, passphrase).await;
        });
        Ok(entry.into())
    }

    /// Records a new backup as running (the caller holds the job lock); the passphrase its
    /// archive is encrypted with.
    async fn start(&self, b: NewBackup) -> Result<(Entry, Option<Passphrase>)> {
        let passphrase = b.passphrase.or_else(|| self.passphrase.clone());
        let encrypted = passphrase.is_some();
        let c = self.catalog.clone();
        let entry = blocking(move || {
            let id = c.next_id()?;
            let now = crate::time::now();
            let e = Entry {
                id,
                name: b.name,
                kind: b.kind,
                status: Status::Running,
                error: None,
                metadata: b.metadata,
                file: catalog::file_name(id, b.kind, now, encrypted),
                size_bytes: None,
                checksum: None,
                encrypted,
                origin: b.origin,
                created_at: now,
                completed_at: None,
            };
            c.put(&e)?;
            Ok(e)
        })
        .await?;
        Ok((entry, passphrase))
    }

    /// Makes the archive of `e` and records how that went; returns the final entry.
    async fn run(&self, mut e: Entry, passphrase: Option<Passphrase>) -> Entry {
        let outcome = self.make(&e, passphrase).await;
        e.completed_at = Some(crate::time::now());
        match outcome {
            Ok((size, checksum)) => {
                e.status = Status::Completed;
                e.size_bytes = Some(size);
                e.checksum = Some(checksum);
            }
            Err(why) => {
                e.status = Status::Failed;
                e.error = Some(why);
            }
        }
        // Retention first, in the same trip off the async workers as the record (one
        // blocking task type fewer in the binary): see `pruning::enforce`.
        let (c, done, policy) = (self.catalog.clone(), e.clone(), self.policy.current());
        let pruned = match blocking(move || {
            let pruned = pruning::enforce(&c, policy.as_ref(), &done);
            c.put(&done).map(|()| pruned)
        })
        .await
        {
            Ok(pruned) => pruned,
            Err(_) => {
                log::error!("backup: cannot record the outcome");
                Vec::new()
            }
        };
        for id in pruned {
            self.event(
                "INFO",
                "backup.pruned",
                format!("backup {id} removed by retention (backup_retention or the size cap)"),
                format!("backup/backups/{id}"),
            );
        }
        let target = format!("backup/backups/{}", e.id);
        match &e.error {
            None => self.event(
                "INFO",
                "backup.completed",
                format!(
                    "backup {} ({}) completed: {} bytes",
                    e.id,
                    e.name,
                    e.size_bytes.unwrap_or(0)
                ),
                target,
            ),
            Some(why) => self.event(
                "ERROR",
                "backup.failed",
                format!("backup {} ({}) failed: {why}", e.id, e.name),
                target,
            ),
        }
        latest::refresh(self.catalog.clone()).await;
        e
    }

    /// Writes the archive: a snapshot of the database first (on the database thread), then
    /// the tarball from it and the other files, to a temporary file renamed into place.
    /// Returns its size and SHA-256.
    async fn make(
        &self,
        e: &Entry,
        passphrase: Option<Passphrase>,
    ) -> std::result::Result<(u64, String), String> {
        let db = self.catalog.temp_path(e.id, "db");
        let schema_version = match e.kind.has_database() {
            true => self
                .store
                .snapshot(db.clone())
                .await
                .map_err(|err| format!("database snapshot: {err}"))?,
            false => crate::store::schema::VERSION,
        };
        let (catalog, sources, e2) = (self.catalog.clone(), self.sources.clone(), e.clone());
        let made = tokio::task::spawn_blocking(move || {
            let r = pack(&catalog, &sources, &e2, &db, schema_version, passphrase);
            let _ = std::fs::remove_file(&db);
            if r.is_err() {
                let _ = std::fs::remove_file(catalog.temp_path(e2.id, "archive"));
            }
            r
        })
        .await
        .map_err(|_| "interrupted".to_string())?;
        made
    }

    /// Deletes a backup that is not running.
    pub async fn delete(&self, id: i64) -> Result<()> {
        let e = self.entry(id).await?;
        if e.status == Status::Running {
            return Err(Error::Refused(
                "this backup is still being written; delete it when it is done".into(),
            ));
        }
        let (c, name) = (self.catalog.clone(), e.name.clone());
        blocking(move || c.remove(&e)).await?;
        self.event(
            "INFO",
            "backup.deleted",
            format!("backup {id} ({name}) deleted"),
            format!("backup/backups/{id}"),
        );
        latest::refresh(self.catalog.clone()).await;
        Ok(())
    }

    /// The archive of a completed backup, opened for sending.
    pub async fn download(&self, id: i64) -> Result<Download> {
        let e = self.entry(id).await?;
        if e.status != Status::Completed {
            return Err(Error::Refused(format!(
                "backup {id} is {}: only a completed backup can be downloaded",
                match e.status {
                    Status::Running => "still running",
                    _ => "failed",
                }
            )));
        }
        let path = self.catalog.archive_path(&e);
        let (file, len) = crate::fsutil::open_with_len(path)
            .await
            .map_err(|_| Error::NotFound("backup archive"))?;
        Ok(Download {
            file,
            len,
            name: e.file,
            encrypted: e.encrypted,
        })
    }
}

/// The archive of `e` from the snapshot at `db` and the sources, written to a temporary
/// file, synced and renamed to its name. Its size and SHA-256.
fn pack(
    catalog: &Catalog,
    sources: &Sources,
    e: &Entry,
    db: &std::path::Path,
    schema_version: i64,
    passphrase: Option<Passphrase>,
) -> std::result::Result<(u64, String), String> {
    use archive::{Head, Member};
    let key = sources.data_dir.join(crate::auth::token::KEY_FILE);
    let mut members = Vec::new();
    if e.kind.has_database() {
        members.push(Member {
            name: archive::DATABASE,
            path: db,
        });
    }
    if let Some(config) = sources
        .config_file
        .as_deref()
        .filter(|_| e.kind.has_config())
    {
        members.push(Member {
            name: archive::CONFIG,
            path: config,
        });
    }
    // A router that never started has no key yet (a restore onto it backs it up first).
    if e.kind == Kind::Files && !key.exists() {
        return Err("there is no token signing key yet: start the service once".into());
    }
    if e.kind.has_files() && key.exists() {
        members.push(Member {
            name: archive::JWT_KEY,
            path: &key,
        });
    }
    let head = Head {
        kind: e.kind,
        schema_version,
        hostname: crate::system::uname().map(|u| u.0).unwrap_or_default(),
        created_at: e.created_at,
    };
    let tmp = catalog.temp_path(e.id, "archive");
    let file = crate::fsutil::create_private(&tmp)?;
    let out = write_archive(
        Hashing::new(std::io::BufWriter::new(file)),
        head,
        &members,
        passphrase,
    )?;
    let (size, checksum) = (out.written, out.hex());
    let file = out
        .inner
        .into_inner()
        .map_err(|err| format!("cannot write the archive: {}", err.error()))?;
    file.sync_all()
        .map_err(|err| format!("cannot write the archive: {err}"))?;
    restore::crash_point("backup:archive-written");
    std::fs::rename(&tmp, catalog.archive_path(e))
        .map_err(|err| format!("cannot write the archive: {err}"))?;
    Ok((size, checksum))
}

/// The archive written to `out`, encrypted on the way when there is a passphrase
/// (tar.gz → age → `out`: no plaintext copy on disk); `out` back, finished.
fn write_archive<W: std::io::Write>(
    mut out: W,
    head: archive::Head,
    members: &[archive::Member<'_>],
    passphrase: Option<Passphrase>,
) -> std::result::Result<W, String> {
    // Both ways through `dyn Write`: one copy of the tar and gzip writer in the binary.
    let Some(passphrase) = passphrase else {
        archive::write(&mut out as &mut dyn std::io::Write, head, members)
            .map_err(|err| err.to_string())?;
        return Ok(out);
    };
    let mut sealed = crypt::Encryptor::new(out, passphrase.expose())
        .map_err(|err| format!("cannot encrypt the archive: {err}"))?;
    archive::write(&mut sealed as &mut dyn std::io::Write, head, members)
        .map_err(|err| err.to_string())?;
    sealed
        .finish()
        .map_err(|err| format!("cannot encrypt the archive: {err}"))
}

/// A passphrase file others can read is a backup anyone on the box can decrypt.
fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            log::warn!(
                "backup.passphrase_file {} is readable by others: chmod 600 it",
                path.display()
            );
        }
    }
}

/// A writer that counts and hashes (SHA-256) what goes through it.
struct Hashing<W> {
    inner: W,
    hash: hmac_sha256::Hash,
    written: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hash: hmac_sha256::Hash::new(),
            written: 0,
        }
    }

    fn hex(&self) -> String {
        archive::hex(&self.hash.finalize())
    }
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
