//! The backup directory describes itself: each backup is an archive file and, beside it,
//! `backup-<id>.json` saying what it is (name, type, status, size, checksum, times). No table
//! in the database lists backups: restoring a database must not make the backups made since
//! (or the automatic pre-restore one) vanish from the list, the CLI reads the directory with
//! the service stopped, and a firmware upgrade that keeps the directory keeps the catalogue.
//!
//! Every write of an entry is atomic (a temporary file renamed over it), so a crash leaves
//! the old entry or the new one. Ids come from `next-id` in the directory and are never
//! handed out twice, deletions included.

use crate::fsutil::{ensure_private_dir, write_private};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a backup holds (the members of each are listed in `backup/mod.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Full,
    Database,
    Config,
    Files,
    /// An encrypted upload: its type is in its manifest, inside the encryption, and is
    /// known only when a restore decrypts it. Never requested ([`Kind::ALL`] omits it).
    Unknown,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Full, Kind::Database, Kind::Config, Kind::Files];

    /// `"full"`, `"Database"`, … (case ignored, trimmed).
    pub fn parse(s: &str) -> Option<Kind> {
        let s = s.trim();
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Full => "full",
            Kind::Database => "database",
            Kind::Config => "config",
            Kind::Files => "files",
            Kind::Unknown => "unknown",
        }
    }

    pub fn has_database(self) -> bool {
        matches!(self, Kind::Full | Kind::Database)
    }

    pub fn has_config(self) -> bool {
        matches!(self, Kind::Full | Kind::Config)
    }

    pub fn has_files(self) -> bool {
        matches!(self, Kind::Full | Kind::Files)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Completed,
    Failed,
}

/// One backup, as its `backup-<id>.json` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub status: Status,
    /// Why it failed.
    pub error: Option<String>,
    /// What the creator attached (the seed's `metadata`), as given.
    pub metadata: serde_json::Value,
    /// The archive's file name in the backup directory.
    pub file: String,
    pub size_bytes: Option<u64>,
    /// SHA-256 of the archive file as stored (lowercase hex).
    pub checksum: Option<String>,
    /// Encrypted with a passphrase (age format).
    pub encrypted: bool,
    /// `manual`, `schedule:<name>`, `pre-restore` or `upload`.
    pub origin: String,
    pub created_at: i64,
    pub completed_at: Option<i64>,
}

/// One restore, as `restores.json` records it (the last [`MAX_RESTORES`]) and the API
/// shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRecord {
    pub id: i64,
    /// The backup restored, when it came from this directory's list.
    pub backup_id: Option<i64>,
    /// Its name, or the file's for `ipv6wgm backup restore FILE`.
    pub backup_name: String,
    pub status: Status,
    pub error: Option<String>,
    pub keep_local_settings: bool,
    /// What was put back: `database`, `config`, `jwt key`.
    pub restored: Vec<String>,
    /// The configuration file was replaced: it applies at the next start.
    pub restart_required: bool,
    /// The automatic backup of the state before the restore.
    pub pre_restore_backup_id: Option<i64>,
    /// The restore failed after it had started to swap, and the state from before it was
    /// put back.
    pub rolled_back: bool,
    #[serde(
        serialize_with = "crate::time::ser",
        deserialize_with = "crate::time::de"
    )]
    pub started_at: i64,
    #[serde(
        serialize_with = "crate::time::ser_opt",
        deserialize_with = "crate::time::de_opt"
    )]
    pub completed_at: Option<i64>,
}

/// Restores remembered in `restores.json`.
pub const MAX_RESTORES: usize = 20;
const RESTORES: &str = "restores.json";

/// The most entries read: retention keeps far fewer; a directory with more (files copied
/// in by hand) lists the newest ids.
pub const MAX_ENTRIES: usize = 1000;

const NEXT_ID: &str = "next-id";

pub struct Catalog {
    dir: PathBuf,
    /// `.lock` in the directory, held (`flock`) as long as this catalogue is open: one
    /// process owns a backup directory at a time (the service, or a CLI command while it
    /// is stopped). The kernel releases it when the process dies, however it dies. `None`
    /// for a catalogue opened only to read.
    _lock: Option<std::fs::File>,
    /// Serialises [`Catalog::next_id`] within this process.
    ids_lock: std::sync::Mutex<()>,
}

/// [`Catalog::open`] found the directory owned by another process.
pub const IN_USE: &str = "the backup directory is in use by another ipv6wgm process";

impl Catalog {
    /// The catalogue of `dir`, created (0700) if missing. Fails (with [`IN_USE`] in the
    /// message) while another process has it open.
    pub fn open(dir: &Path) -> Result<Catalog, String> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        ensure_private_dir(dir)?;
        let path = dir.join(".lock");
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // SAFETY: flock on a descriptor we own; no memory is shared with the kernel.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(format!("{IN_USE} ({})", dir.display()));
        }
        Ok(Catalog {
            dir: dir.to_path_buf(),
            _lock: Some(lock),
            ids_lock: std::sync::Mutex::default(),
        })
    }

    /// The catalogue of `dir` to read only (listing while the service runs): no lock, and
    /// nothing written through it.
    pub fn read_only(dir: &Path) -> Catalog {
        Catalog {
            dir: dir.to_path_buf(),
            _lock: None,
            ids_lock: std::sync::Mutex::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, id: i64) -> PathBuf {
        self.dir.join(format!("backup-{id}.json"))
    }

    /// Where the archive of `e` is.
    pub fn archive_path(&self, e: &Entry) -> PathBuf {
        self.dir.join(&e.file)
    }

    /// A new id, never handed out before in this directory (one caller at a time: a
    /// backup and an upload may ask at once).
    pub fn next_id(&self) -> Result<i64, String> {
        let _one = self.ids_lock.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.dir.join(NEXT_ID);
        let stored = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(1);
        // An entry copied in by hand may carry a higher id than the counter.
        let highest = self.ids()?.into_iter().max().unwrap_or(0);
        let id = stored.max(highest + 1);
        write_private(&path, format!("{}\n", id + 1).as_bytes())?;
        Ok(id)
    }

    /// Writes `e` (replacing its previous state atomically).
    pub fn put(&self, e: &Entry) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(e).map_err(|e| e.to_string())?;
        write_private(&self.entry_path(e.id), &json)
    }

    pub fn get(&self, id: i64) -> Option<Entry> {
        let text = std::fs::read(self.entry_path(id)).ok()?;
        crate::input::from_json::<Entry>(&text)
            .inspect_err(|e| log::warn!("backup {id}: unreadable entry: {e}"))
            .ok()
            .filter(|e| e.id == id && safe_file_name(&e.file))
    }

    fn ids(&self) -> Result<Vec<i64>, String> {
        let rd = std::fs::read_dir(&self.dir)
            .map_err(|e| format!("cannot read {}: {e}", self.dir.display()))?;
        Ok(rd
            .filter_map(|d| d.ok())
            .filter_map(|d| {
                let name = d.file_name();
                let name = name.to_str()?;
                name.strip_prefix("backup-")?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()
            })
            .collect())
    }

    /// Every readable entry, newest first (at most [`MAX_ENTRIES`]).
    pub fn entries(&self) -> Result<Vec<Entry>, String> {
        let mut ids = self.ids()?;
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.truncate(MAX_ENTRIES);
        Ok(ids.into_iter().filter_map(|id| self.get(id)).collect())
    }

    /// Removes the backup's archive, then its entry.
    pub fn remove(&self, e: &Entry) -> Result<(), String> {
        match std::fs::remove_file(self.archive_path(e)) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(format!("cannot remove {}: {err}", e.file)),
        }
        std::fs::remove_file(self.entry_path(e.id))
            .map_err(|err| format!("cannot remove backup {}: {err}", e.id))
    }

    /// Marks backups left `running` by a process that died (power loss, kill -9) as failed,
    /// and removes what they had half written. Run at start-up, before any new backup.
    pub fn recover(&self, now: i64) -> Result<Vec<i64>, String> {
        let mut failed = Vec::new();
        for mut e in self.entries()? {
            if e.status != Status::Running {
                continue;
            }
            let _ = std::fs::remove_file(self.archive_path(&e));
            e.status = Status::Failed;
            e.error =
                Some("interrupted: the service stopped before the backup was complete".into());
            e.completed_at = Some(now);
            self.put(&e)?;
            failed.push(e.id);
        }
        // Temporary files of an interrupted job.
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for d in rd.filter_map(|d| d.ok()) {
                if d.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(".tmp-"))
                {
                    let p = d.path();
                    let _ = match p.is_dir() {
                        true => std::fs::remove_dir_all(p),
                        false => std::fs::remove_file(p),
                    };
                }
            }
        }
        Ok(failed)
    }

    /// The restores recorded, newest first.
    pub fn restores(&self) -> Vec<RestoreRecord> {
        let path = self.dir.join(RESTORES);
        match std::fs::read(&path) {
            Ok(text) => crate::input::from_json(&text)
                .inspect_err(|e| log::warn!("{}: unreadable: {e}", path.display()))
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Records `r` (replacing its previous state), keeping the newest [`MAX_RESTORES`].
    pub fn put_restore(&self, r: &RestoreRecord) -> Result<(), String> {
        let mut all = self.restores();
        all.retain(|x| x.id != r.id);
        all.push(r.clone());
        all.sort_unstable_by_key(|r| std::cmp::Reverse(r.id));
        all.truncate(MAX_RESTORES);
        let json = serde_json::to_vec_pretty(&all).map_err(|e| e.to_string())?;
        write_private(&self.dir.join(RESTORES), &json)
    }

    /// The id for the next restore.
    pub fn next_restore_id(&self) -> i64 {
        self.restores().iter().map(|r| r.id).max().unwrap_or(0) + 1
    }

    /// Marks restores left `running` by a process that died as failed (the journal put the
    /// state from before them back: [`super::restore::recover`]), and `also` — a restore
    /// whose journal was found — even if it was recorded as completed just before the crash.
    pub fn recover_restores(&self, also: Option<i64>, now: i64) -> Result<Vec<i64>, String> {
        let mut failed = Vec::new();
        for mut r in self.restores() {
            if r.status != Status::Running && Some(r.id) != also {
                continue;
            }
            r.status = Status::Failed;
            r.rolled_back = true;
            r.error = Some(
                "interrupted: the service stopped during the restore; the state from before it \
                 was put back"
                    .into(),
            );
            r.completed_at = Some(now);
            self.put_restore(&r)?;
            failed.push(r.id);
        }
        Ok(failed)
    }

    /// A path for a temporary file of job `id` (removed by [`Catalog::recover`] if the job
    /// dies).
    pub fn temp_path(&self, id: i64, what: &str) -> PathBuf {
        self.dir.join(format!(".tmp-{id}-{what}"))
    }
}

/// The archive file name of a backup: `backup-<id>-<type>-<YYYYMMDD-HHMMSS>.tar.gz`.
pub fn file_name(id: i64, kind: Kind, created_at: i64, encrypted: bool) -> String {
    let t = crate::time::rfc3339(created_at);
    let stamp: String = t
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .map(|c| if c == 'T' { '-' } else { c })
        .collect();
    let age = if encrypted { ".age" } else { "" };
    format!("backup-{id}-{}-{stamp}.tar.gz{age}", kind.as_str())
}

/// A name an entry may give for its archive: a plain file name in the directory.
fn safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, status: Status) -> Entry {
        Entry {
            id,
            name: format!("b{id}"),
            kind: Kind::Full,
            status,
            error: None,
            metadata: serde_json::json!({}),
            file: file_name(id, Kind::Full, 1_764_770_400, false),
            size_bytes: None,
            checksum: None,
            encrypted: false,
            origin: "manual".into(),
            created_at: 1_764_770_400 + id,
            completed_at: None,
        }
    }

    #[test]
    fn file_names_say_id_type_and_time() {
        assert_eq!(
            file_name(7, Kind::Database, 1_764_770_400, false),
            "backup-7-database-20251203-140000.tar.gz"
        );
        assert!(file_name(7, Kind::Full, 0, true).ends_with(".tar.gz.age"));
        assert!(safe_file_name(&file_name(7, Kind::Full, 0, true)));
        for bad in ["", "../x", "a/b", ".hidden", "x\0y"] {
            assert!(!safe_file_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_never_handed_out_twice() {
        let d = tempfile::tempdir().expect("tmp");
        let c = Catalog::open(&d.path().join("backups")).expect("open");
        let a = c.next_id().expect("id");
        c.put(&entry(a, Status::Completed)).expect("put");
        let b = c.next_id().expect("id");
        assert!(b > a);
        c.remove(&entry(a, Status::Completed)).expect("remove");
        assert!(c.next_id().expect("id") > b, "not reused after a delete");
        // An entry copied in by hand with a high id.
        c.put(&entry(50, Status::Completed)).expect("put");
        assert_eq!(c.next_id().expect("id"), 51);
    }

    #[test]
    fn entries_are_newest_first_and_unreadable_ones_are_skipped() {
        let d = tempfile::tempdir().expect("tmp");
        let c = Catalog::open(d.path()).expect("open");
        for id in [1, 3, 2] {
            c.put(&entry(id, Status::Completed)).expect("put");
        }
        std::fs::write(d.path().join("backup-9.json"), b"{not json").expect("write");
        let mut bad = entry(8, Status::Completed);
        bad.file = "../../etc/passwd".into();
        std::fs::write(
            d.path().join("backup-8.json"),
            serde_json::to_vec(&bad).expect("json"),
        )
        .expect("write");
        let ids: Vec<i64> = c.entries().expect("list").iter().map(|e| e.id).collect();
        assert_eq!(ids, [3, 2, 1]);
    }

    #[test]
    fn one_process_owns_a_directory_at_a_time() {
        let d = tempfile::tempdir().expect("tmp");
        let first = Catalog::open(d.path()).expect("open");
        let second = Catalog::open(d.path()).err().expect("refused while open");
        assert!(second.contains(IN_USE), "{second}");
        drop(first);
        Catalog::open(d.path()).expect("free again");
    }

    #[test]
    fn recovery_fails_interrupted_backups_and_removes_their_files() {
        let d = tempfile::tempdir().expect("tmp");
        let c = Catalog::open(d.path()).expect("open");
        let running = entry(1, Status::Running);
        c.put(&running).expect("put");
        std::fs::write(c.archive_path(&running), b"half").expect("write");
        std::fs::write(c.temp_path(1, "db"), b"half").expect("write");
        c.put(&entry(2, Status::Completed)).expect("put");
        assert_eq!(c.recover(99).expect("recover"), [1]);
        let e = c.get(1).expect("entry");
        assert_eq!((e.status, e.completed_at), (Status::Failed, Some(99)));
        assert!(e.error.is_some_and(|m| m.contains("interrupted")));
        assert!(!c.archive_path(&running).exists());
        assert!(!c.temp_path(1, "db").exists());
        assert_eq!(c.get(2).map(|e| e.status), Some(Status::Completed));
    }
}
