//! Restoring a backup onto this router: every step before the swap can refuse the archive
//! and change nothing; the swap itself is journalled, so a crash at any point leaves the old
//! state or the new one, never a mix.
//!
//! ```text
//!  stage     decrypt (age) to a temporary file, then archive::read into a stage directory
//!            (manifest, allowlist, caps, checksums)                          ─┐
//!  prepare   database copied next to the live one; integrity_check, schema    │ 422, nothing
//!            version (newer refused, older migrated forward), foreign keys,   │ changed
//!            an active admin; "keep local settings" clears host-bound fields ─┘
//!  backup    an automatic full backup of the current state (origin pre-restore)
//!  swap      one job on the database thread: revocations (and where WireGuard
//!            peers were last seen) carried over, the old
//!            connection closed, journal written, live files renamed to
//!            *.pre-restore, incoming files renamed in, new connection opened and
//!            the in-memory state rebuilt from it (pools) — any failure: files
//!            put back, the old database reopened
//!  reload    settings, the token key, every engine on the bus (reconcile_all)
//!  commit    journal removed, *.pre-restore files removed
//! ```
//!
//! [`recover`] runs at start-up before the database is opened: a journal still present
//! means the restore never committed, so the saved files go back into place.

use super::archive::{self, Limits, Manifest};
use super::catalog::{Kind, RestoreRecord};
use super::crypt;
use super::{Error, Service};
use crate::store::restore as store;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The journal of a restore in progress, in the data directory.
pub const JOURNAL: &str = "restore.journal";
/// What a replaced file is renamed to until the restore commits.
const SAVED: &str = "pre-restore";
/// What an incoming file is called next to the file it replaces.
const INCOMING: &str = "incoming";
/// The largest token signing key a backup may bring.
const MAX_KEY: u64 = 4096;

/// What the client asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Restore onto another router: keep this host's configuration file and token key, and
    /// clear what names the old host in the database (WireGuard servers' `endpoint`, BGP
    /// sessions' `local_address`), so this host's `public_host` and routes apply.
    pub keep_local_settings: bool,
    pub passphrase: Option<String>,
}

/// Where the restored files go on this router.
#[derive(Debug, Clone)]
pub struct Targets {
    pub data_dir: PathBuf,
    pub db: PathBuf,
    pub key: PathBuf,
    /// The configuration file the service runs with, if any.
    pub config: Option<PathBuf>,
}

/// A file of the archive on its way in: staged next to the file it replaces.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Swap {
    /// The file in use.
    pub live: PathBuf,
    /// The restored content, written beside it.
    pub incoming: PathBuf,
    /// Where the file in use goes until the restore commits; `None` when there was none.
    pub saved: Option<PathBuf>,
}

/// A restore ready to swap in: everything validated and written next to its target.
#[derive(Debug)]
pub struct Plan {
    pub manifest: Manifest,
    /// The database first, when there is one.
    pub swaps: Vec<Swap>,
    /// The token key the archive brings, when it replaces ours.
    pub key: Option<Vec<u8>>,
    /// The configuration file changes: the service must restart for it to apply.
    pub restart_required: bool,
    /// What the restore puts back, for the record (`database`, `config`, `jwt key`).
    pub restores: Vec<&'static str>,
}

/// The journal's content.
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    restore_id: i64,
    swaps: Vec<Swap>,
}

/// For tests of crash safety: with `IPV6WGM_TEST_CRASH_AT=<point>` in its environment the
/// process kills itself (SIGKILL, as `kill -9` or a power cut: no cleanup of any kind) when
/// it reaches that point. Points: `backup:archive-written`, `restore:swapped`,
/// `restore:reloaded`.
pub(crate) fn crash_point(point: &str) {
    if std::env::var_os("IPV6WGM_TEST_CRASH_AT").is_some_and(|v| v == point) {
        log::error!("IPV6WGM_TEST_CRASH_AT={point}: killing this process (a test)");
        // SAFETY: signals our own process; nothing is shared.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
}

fn refuse(why: impl Into<String>) -> Error {
    Error::invalid("archive", why)
}

fn io(what: &str, e: impl std::fmt::Display) -> Error {
    log::error!("restore: {what}: {e}");
    Error::Internal
}

/// Reads the archive at `path` into `stage` (which must not exist), decrypting it first
/// into `decrypted` when it is encrypted. Every refusal is a 422 naming `archive` or
/// `passphrase`.
pub fn stage(
    path: &Path,
    stage: &Path,
    decrypted: &Path,
    passphrase: Option<&str>,
    limits: &Limits,
) -> Result<Manifest, Error> {
    use std::io::{Read, Seek};
    let mut file = std::fs::File::open(path).map_err(|e| io("cannot open the archive", e))?;
    let mut head = [0u8; 32];
    let n = file
        .read(&mut head)
        .and_then(|n| file.rewind().map(|()| n))
        .map_err(|e| io("cannot read the archive", e))?;
    let input: std::fs::File = if crypt::is_encrypted(&head[..n]) {
        let Some(pass) = passphrase.filter(|p| !p.is_empty()) else {
            return Err(Error::invalid(
                "passphrase",
                "this backup is encrypted: give its passphrase",
            ));
        };
        let out = crate::fsutil::create_private(decrypted).map_err(|e| io("decrypting", e))?;
        let mut out = std::io::BufWriter::new(out);
        let r = crypt::decrypt(std::io::BufReader::new(file), &mut out, pass).and_then(|()| {
            use std::io::Write;
            out.flush().map_err(crypt::CryptError::Io)
        });
        drop(out);
        match r {
            Ok(()) => {}
            Err(e) => {
                let _ = std::fs::remove_file(decrypted);
                return Err(match e {
                    crypt::CryptError::WrongPassphrase => Error::invalid(
                        "passphrase",
                        "wrong passphrase: this backup was encrypted with another one",
                    ),
                    crypt::CryptError::Invalid(why) => refuse(format!(
                        "the encrypted backup is damaged or not ours: {why}"
                    )),
                    crypt::CryptError::Io(e) => io("decrypting", e),
                });
            }
        }
        let f = std::fs::File::open(decrypted).map_err(|e| io("decrypting", e));
        let _ = std::fs::remove_file(decrypted);
        f?
    } else {
        file
    };
    archive::read(std::io::BufReader::new(input), stage, limits).map_err(|e| match e {
        archive::ArchiveError::Invalid(why) => refuse(why),
        archive::ArchiveError::Io(e) => io("staging the archive", e),
    })
}

/// Checks what was staged and writes each file next to the one it replaces, the database
/// prepared (see [`crate::store::restore::prepare`]). Nothing in use is touched; on a refusal the
/// incoming files are removed again.
pub fn plan(
    manifest: Manifest,
    stage: &Path,
    to: &Targets,
    keep_local: bool,
) -> Result<Plan, Error> {
    let has = |name: &str| manifest.member(name).is_some();
    let required: &[&str] = match manifest.kind {
        Kind::Full | Kind::Database => &[archive::DATABASE],
        Kind::Config => &[archive::CONFIG],
        Kind::Files => &[archive::JWT_KEY],
        Kind::Unknown => return Err(refuse("manifest.json does not say what the backup holds")),
    };
    if let Some(missing) = required.iter().find(|m| !has(m)) {
        return Err(refuse(format!(
            "a {} backup must hold {missing}, and this one does not",
            manifest.kind.as_str()
        )));
    }
    let mut plan = Plan {
        manifest,
        swaps: Vec::new(),
        key: None,
        restart_required: false,
        restores: Vec::new(),
    };
    let result = fill(&mut plan, stage, to, keep_local);
    if result.is_err() {
        for s in &plan.swaps {
            let _ = std::fs::remove_file(&s.incoming);
        }
    }
    result.map(|()| plan)
}

fn fill(plan: &mut Plan, stage: &Path, to: &Targets, keep_local: bool) -> Result<(), Error> {
    let staged = |name: &str| stage.join(name);
    if plan.manifest.member(archive::DATABASE).is_some() {
        let s = swap_for(&to.db);
        plan.swaps.push(s.clone());
        copy(&staged(archive::DATABASE), &s.incoming)?;
        store::prepare(&s.incoming, plan.manifest.schema_version, keep_local).map_err(refuse)?;
        plan.restores.push("database");
    }
    if plan.manifest.member(archive::JWT_KEY).is_some() && !keep_local {
        let key = std::fs::read(staged(archive::JWT_KEY)).map_err(|e| io("reading the key", e))?;
        if key.len() < 32 || key.len() as u64 > MAX_KEY {
            return Err(refuse(format!(
                "{}: a token key is 32 to {MAX_KEY} bytes, this one is {}",
                archive::JWT_KEY,
                key.len()
            )));
        }
        let current = std::fs::read(&to.key).unwrap_or_default();
        if current != key {
            let s = swap_for(&to.key);
            plan.swaps.push(s.clone());
            copy(&staged(archive::JWT_KEY), &s.incoming)?;
            plan.key = Some(key);
            plan.restores.push("jwt key");
        }
    }
    let config = (plan.manifest.member(archive::CONFIG).is_some() && !keep_local)
        .then_some(to.config.as_ref())
        .flatten();
    if let Some(config) = config {
        let text = std::fs::read(staged(archive::CONFIG)).map_err(|e| io("reading config", e))?;
        let parsed = std::str::from_utf8(&text)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                let c = crate::config::Config::parse(t)?;
                c.validate()?;
                super::schedule::from_config(&c.backup).map(|_| ())
            });
        if let Err(why) = parsed {
            return Err(refuse(format!(
                "{}: not a configuration this version reads: {why}",
                archive::CONFIG
            )));
        }
        if std::fs::read(config).ok().as_deref() != Some(&text[..]) {
            let s = swap_for(config);
            plan.swaps.push(s.clone());
            copy(&staged(archive::CONFIG), &s.incoming)?;
            plan.restart_required = true;
            plan.restores.push("config");
        }
    }
    Ok(())
}

fn swap_for(live: &Path) -> Swap {
    let beside = |what: &str| {
        let mut name = live.as_os_str().to_owned();
        name.push(format!(".{what}"));
        PathBuf::from(name)
    };
    Swap {
        live: live.to_path_buf(),
        incoming: beside(INCOMING),
        saved: live.exists().then(|| beside(SAVED)),
    }
}

/// Copies a staged file next to its target (mode 0600, synced).
fn copy(from: &Path, to: &Path) -> Result<(), Error> {
    let _ = std::fs::remove_file(to);
    let mut out = crate::fsutil::create_private(to).map_err(|e| io("copying", e))?;
    let mut input = std::fs::File::open(from).map_err(|e| io("copying", e))?;
    std::io::copy(&mut input, &mut out)
        .and_then(|_| out.sync_all())
        .map_err(|e| io(&format!("copying to {}", to.display()), e))
}

/// Runs on the database thread with its connection: swaps the plan's files in and opens the
/// new database in place of `conn`, then `reload` rebuilds what is kept in memory from it.
/// The journal (`journal`) is left in place: [`commit`] removes it once the rest of the
/// service follows. On any failure everything is put back and `conn` is the old database
/// again (with `reload` run on it).
pub fn swap_in(
    conn: &mut Connection,
    restore_id: i64,
    swaps: &[Swap],
    journal: &Path,
    logs: &Path,
    reload: &dyn Fn(&mut Connection) -> Result<(), String>,
) -> Result<(), String> {
    let db = conn
        .path()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .ok_or("the database has no file")?;
    let db_swap = swaps.iter().find(|s| s.live == db);
    if let Some(s) = db_swap {
        store::carry_over(conn, &s.incoming)
            .map_err(|e| format!("cannot carry revocations and last-seen peers over: {e}"))?;
    }
    store::close_in_place(conn)?;
    let swapped = write_journal(journal, restore_id, swaps).and_then(|()| rename_in(swaps));
    crash_point("restore:swapped");
    let opened = swapped.and_then(|()| {
        let mut c = crate::store::open_full(&db, logs)?;
        reload(&mut c)?;
        Ok(c)
    });
    match opened {
        Ok(c) => {
            *conn = c;
            Ok(())
        }
        Err(why) => {
            log::error!("restore failed while swapping in: {why}; putting the old state back");
            roll_back(swaps);
            let _ = std::fs::remove_file(journal);
            let mut c = crate::store::open_full(&db, logs)
                .map_err(|e| format!("{why}; and the old database does not open: {e}"))?;
            reload(&mut c).map_err(|e| format!("{why}; and reloading the old state: {e}"))?;
            *conn = c;
            Err(why)
        }
    }
}

fn write_journal(path: &Path, restore_id: i64, swaps: &[Swap]) -> Result<(), String> {
    let j = Journal {
        restore_id,
        swaps: swaps.to_vec(),
    };
    let text = serde_json::to_vec_pretty(&j).map_err(|e| e.to_string())?;
    crate::fsutil::write_private(path, &text)?;
    sync_parent(path)
}

/// Each live file to its saved name, each incoming file to the live name.
fn rename_in(swaps: &[Swap]) -> Result<(), String> {
    for s in swaps {
        if let Some(saved) = &s.saved {
            std::fs::rename(&s.live, saved)
                .map_err(|e| format!("cannot move {} aside: {e}", s.live.display()))?;
        }
        remove_sidecars(&s.live);
        std::fs::rename(&s.incoming, &s.live)
            .map_err(|e| format!("cannot move {} into place: {e}", s.incoming.display()))?;
        sync_parent(&s.live)?;
    }
    Ok(())
}

/// Puts every saved file back (and removes what came in where nothing was before).
fn roll_back(swaps: &[Swap]) {
    for s in swaps.iter().rev() {
        match &s.saved {
            Some(saved) if saved.exists() => {
                remove_sidecars(&s.live);
                if let Err(e) = std::fs::rename(saved, &s.live) {
                    log::error!("restore: cannot put {} back: {e}", s.live.display());
                }
            }
            Some(_) => {}
            None => {
                let _ = std::fs::remove_file(&s.live);
            }
        }
        let _ = std::fs::remove_file(&s.incoming);
        let _ = sync_parent(&s.live);
    }
}

/// A database's WAL and shared-memory files: they belong to the file that was open, never
/// to the one renamed into its place.
fn remove_sidecars(live: &Path) {
    for ext in ["-wal", "-shm"] {
        let mut name = live.as_os_str().to_owned();
        name.push(ext);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

fn sync_parent(path: &Path) -> Result<(), String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot sync {}: {e}", dir.display()))
}

/// The restore is complete: the journal goes (from now on a crash keeps the new state),
/// then the saved files.
pub fn commit(journal: &Path, swaps: &[Swap]) -> Result<(), String> {
    std::fs::remove_file(journal)
        .map_err(|e| format!("cannot remove {}: {e}", journal.display()))?;
    sync_parent(journal)?;
    for saved in swaps.iter().filter_map(|s| s.saved.as_ref()) {
        let _ = std::fs::remove_file(saved);
    }
    Ok(())
}

/// At start-up, before the database is opened: a journal in `data_dir` is a restore that
/// never committed (the process died during it). Its saved files go back, so the service
/// starts on the state from before the restore. Returns that restore's id, if any.
pub fn recover(data_dir: &Path) -> Result<Option<i64>, String> {
    let path = data_dir.join(JOURNAL);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let j: Journal = crate::input::from_json(&text).map_err(|e| {
        format!(
            "{} is unreadable ({e}): a restore was interrupted; check the data directory \
             (files ending in .{SAVED} are the state from before it)",
            path.display()
        )
    })?;
    roll_back(&j.swaps);
    std::fs::remove_file(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    sync_parent(&path)?;
    log::warn!(
        "restore {} was interrupted (the service stopped during it): the state from before it \
         is back",
        j.restore_id
    );
    Ok(Some(j.restore_id))
}

/// Runs `f` off the async workers; its own errors pass through.
async fn off_thread<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, Error> + Send + 'static,
) -> Result<R, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::Stopping)?
}

impl Service {
    /// Restores backup `id` of this directory: checks it completely first (a refusal is a
    /// 422 and changes nothing), then answers with the restore `running` while the
    /// pre-restore backup, the swap and the reload run in the background.
    pub async fn restore(&self, id: i64, opts: Options) -> Result<RestoreRecord, Error> {
        let e = self.entry(id).await?;
        if e.status != super::Status::Completed {
            return Err(Error::Refused(format!(
                "backup {id} did not complete: only a completed backup can be restored"
            )));
        }
        let path = self.catalog.archive_path(&e);
        self.restore_file(path, Some((e.id, e.name)), opts).await
    }

    /// Restores the archive at `path` (`from`: the backup of this directory it is).
    pub async fn restore_file(
        &self,
        path: PathBuf,
        from: Option<(i64, String)>,
        opts: Options,
    ) -> Result<RestoreRecord, Error> {
        let guard = self.job.clone().try_lock_owned().map_err(|_| Error::Busy)?;
        let (catalog, targets) = (self.catalog.clone(), self.sources.targets());
        let id = {
            let c = catalog.clone();
            off_thread(move || Ok(c.next_restore_id())).await?
        };
        let keep_local = opts.keep_local_settings;
        let backup_name = match &from {
            Some((_, name)) => name.clone(),
            None => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let plan = off_thread(move || {
            let stage_dir = catalog.temp_path(id, "restore");
            let decrypted = catalog.temp_path(id, "restore-archive");
            let _ = std::fs::remove_dir_all(&stage_dir);
            let limits = Limits::default();
            let staged = stage(
                &path,
                &stage_dir,
                &decrypted,
                opts.passphrase.as_deref(),
                &limits,
            );
            let planned = staged.and_then(|m| plan(m, &stage_dir, &targets, keep_local));
            let _ = std::fs::remove_dir_all(&stage_dir);
            planned
        })
        .await?;
        let record = RestoreRecord {
            id,
            backup_id: from.map(|f| f.0),
            backup_name,
            status: super::Status::Running,
            error: None,
            keep_local_settings: keep_local,
            restored: plan.restores.iter().map(|r| r.to_string()).collect(),
            restart_required: plan.restart_required,
            pre_restore_backup_id: None,
            rolled_back: false,
            started_at: crate::time::now(),
            completed_at: None,
        };
        self.put_restore(record.clone()).await;
        let svc = self.clone();
        let running = record.clone();
        tokio::spawn(async move {
            let _one_at_a_time = guard;
            svc.run_restore(running, plan).await;
        });
        Ok(record)
    }

    /// The restores recorded, newest first.
    pub async fn restores(&self) -> Result<Vec<RestoreRecord>, Error> {
        let c = self.catalog.clone();
        let all = off_thread(move || Ok(c.restores())).await?;
        Ok(all)
    }

    pub async fn restore_status(&self, id: i64) -> Result<RestoreRecord, Error> {
        self.restores()
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or(Error::NotFound("restore"))
    }

    async fn put_restore(&self, r: RestoreRecord) {
        let c = self.catalog.clone();
        let id = r.id;
        if let Err(e) = off_thread(move || c.put_restore(&r).map_err(|e| io("recording", e))).await
        {
            log::error!("restore {id}: cannot record its state: {e}");
        }
    }

    /// The steps after the checks: pre-restore backup, swap, reload, commit.
    async fn run_restore(&self, mut r: RestoreRecord, plan: Plan) {
        let outcome = self.swap_and_reload(&mut r, &plan).await;
        r.completed_at = Some(crate::time::now());
        let target = format!("backup/restores/{}", r.id);
        match outcome {
            Ok(()) => {
                r.status = super::Status::Completed;
                self.event(
                    "INFO",
                    "restore.completed",
                    format!(
                        "restore {} of {:?} completed: {} put back",
                        r.id,
                        r.backup_name,
                        r.restored.join(", ")
                    ),
                    target,
                );
            }
            Err(why) => {
                r.status = super::Status::Failed;
                self.event(
                    "ERROR",
                    "restore.failed",
                    format!("restore {} of {:?} failed: {why}", r.id, r.backup_name),
                    target,
                );
                r.error = Some(why);
                for s in &plan.swaps {
                    let _ = std::fs::remove_file(&s.incoming);
                }
            }
        }
        self.put_restore(r.clone()).await;
        if r.status == super::Status::Completed {
            let journal = self.sources.data_dir.join(JOURNAL);
            let swaps = plan.swaps.clone();
            let committed =
                off_thread(move || commit(&journal, &swaps).map_err(|e| io("committing", e))).await;
            if committed.is_err() {
                log::error!("restore {}: cannot remove its journal", r.id);
            }
        }
    }

    async fn swap_and_reload(&self, r: &mut RestoreRecord, plan: &Plan) -> Result<(), String> {
        if plan.swaps.is_empty() {
            return Ok(());
        }
        let before = super::NewBackup {
            name: format!("before restore {}", r.id),
            kind: Kind::Full,
            metadata: serde_json::json!({ "restore_id": r.id }),
            origin: "pre-restore".into(),
            passphrase: None,
        };
        let (entry, passphrase) = self.start(before).await.map_err(|e| e.to_string())?;
        let made = self.run(entry, passphrase).await;
        r.pre_restore_backup_id = Some(made.id);
        self.put_restore(r.clone()).await;
        if made.status != super::Status::Completed {
            return Err(format!(
                "the automatic backup of the current state failed ({}): nothing was restored",
                made.error.as_deref().unwrap_or("unknown error")
            ));
        }
        let engines = self.engines();
        let (id, swaps) = (r.id, plan.swaps.clone());
        let journal = self.sources.data_dir.join(JOURNAL);
        let logs = self.sources.logs_file.clone();
        let reloader = engines.clone();
        let swapped = self
            .store
            .call(move |c| {
                Ok(swap_in(c, id, &swaps, &journal, &logs, &|c| {
                    reloader.reload_tables(c)
                }))
            })
            .await
            .map_err(|e| format!("the database is not available: {e}"))?;
        if let Err(why) = swapped {
            r.rolled_back = true;
            return Err(format!("{why}; the state from before the restore is back"));
        }
        engines.restart(plan.key.as_deref()).await;
        crash_point("restore:reloaded");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_puts_saved_files_back_and_drops_the_journal() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = tmp.path();
        let live = d.join("ipv6wgm.db");
        std::fs::write(&live, b"old").expect("old");
        let s = swap_for(&live);
        std::fs::write(&s.incoming, b"new").expect("incoming");
        // A second file that did not exist before the restore.
        let fresh = swap_for(&d.join("new.toml"));
        std::fs::write(&fresh.incoming, b"cfg").expect("cfg");
        let swaps = vec![s.clone(), fresh.clone()];
        let journal = d.join(JOURNAL);
        write_journal(&journal, 7, &swaps).expect("journal");
        rename_in(&swaps).expect("renamed");
        std::fs::write(d.join("ipv6wgm.db-wal"), b"wal of the new one").expect("wal");
        assert_eq!(std::fs::read(&live).expect("live"), b"new");

        assert_eq!(recover(d).expect("recover"), Some(7));
        assert_eq!(std::fs::read(&live).expect("live"), b"old");
        assert!(
            !fresh.live.exists(),
            "what came in where nothing was is gone"
        );
        assert!(
            !d.join("ipv6wgm.db-wal").exists(),
            "the new file's WAL is gone"
        );
        assert!(!journal.exists());
        assert_eq!(recover(d).expect("again"), None);
    }

    #[test]
    fn commit_keeps_the_new_files() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = tmp.path();
        let live = d.join("jwt.key");
        std::fs::write(&live, b"old").expect("old");
        let s = swap_for(&live);
        std::fs::write(&s.incoming, b"new").expect("incoming");
        let journal = d.join(JOURNAL);
        write_journal(&journal, 1, std::slice::from_ref(&s)).expect("journal");
        rename_in(std::slice::from_ref(&s)).expect("renamed");
        commit(&journal, std::slice::from_ref(&s)).expect("commit");
        assert_eq!(std::fs::read(&live).expect("live"), b"new");
        assert!(!s.saved.as_ref().expect("saved").exists());
        assert_eq!(recover(d).expect("nothing to recover"), None);
    }
}
