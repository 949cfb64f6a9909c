//! Upload of a backup made elsewhere (`POST /backup/backups/upload`), so that a router's
//! backup can be restored on another. The body is streamed to a temporary file in the backup
//! directory, hashed as it is written, then checked, and kept only if it passes:
//!
//! ```text
//!  body pieces ─► Upload::write ─► .tmp-upload (0600; batches of 256 KiB written off the
//!                                   async workers; size and SHA-256 counted on the way)
//!  Upload::finish ─► sync ─► check (below) ─► entry "running" ─► rename ─► "completed"
//! ```
//! - an **age file** ([`crypt::is_encrypted`]): its header only ([`crypt::check_header`]: one
//!   scrypt stanza we can decrypt, a payload after it). The passphrase is asked at restore,
//!   which authenticates every byte. Its entry: type [`Kind::Unknown`] (the manifest is
//!   inside the encryption), `created_at` = the time of the upload, `encrypted`.
//! - **anything else** is read completely by [`archive::verify`] (gzip, `manifest.json`
//!   first, names from the allowlist, regular files only, sizes, caps, every SHA-256, nothing
//!   after the end; nothing is written). Its entry: type and `created_at` from the manifest;
//!   its hostname, app and schema versions in `metadata`.
//!
//! Either way the entry is `completed`, origin `upload`, with the size and SHA-256 of the file
//! as received (= as stored, = as a download sends it back). A refused upload is
//! [`Error::Invalid`] on the field `body` (422) saying why, and leaves nothing behind: the
//! temporary file is removed however the request ends (an error, a dropped connection), and
//! [`Catalog::recover`](super::catalog::Catalog::recover) removes it after a crash (`.tmp-*`).
//!
//! One upload at a time (a second is refused, 409). An upload does not take the backup and
//! restore lock: a backup runs beside it; only the id and the rename at the end are shared.

use super::archive::{self, Limits, Manifest};
use super::catalog::{self, Entry, Kind, Status};
use super::{blocking, crypt, BackupView, Error, Hashing, Result, Service};
use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;

/// The temporary file of the upload in progress.
const TEMP: &str = ".tmp-upload";
/// Body pieces are gathered to this size before a write (one blocking task per batch).
const BATCH: usize = 256 * 1024;

/// What a received file turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// An age file with this scrypt work factor (log2 N).
    Encrypted { work_factor: u8 },
    /// A plain archive that passed every check, with its manifest.
    Archive(Manifest),
}

/// An upload in progress: the temporary file being written. Dropping it removes the file.
pub struct Upload {
    /// Dropped first (fields drop in order): the file goes before the next upload may start.
    temp: Temp,
    svc: Service,
    _one_at_a_time: tokio::sync::OwnedMutexGuard<()>,
    /// `None` only while a batch is being written.
    out: Option<Hashing<File>>,
    pending: Vec<u8>,
}

impl Service {
    /// The largest upload accepted (`backup.max_upload_mb`), in bytes.
    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload
    }

    /// Starts an upload: creates its temporary file. 409 while another upload runs.
    pub async fn start_upload(&self) -> Result<Upload> {
        let one = self.upload.clone().try_lock_owned().map_err(|_| {
            Error::Refused("another upload is in progress; try again when it is done".into())
        })?;
        let path = self.catalog.dir().join(TEMP);
        let temp = Temp(path.clone());
        let file = blocking(move || {
            // Left by an upload whose task died with the service still running (a panic).
            let _ = std::fs::remove_file(&path);
            crate::fsutil::create_private(&path)
        })
        .await?;
        Ok(Upload {
            temp,
            svc: self.clone(),
            _one_at_a_time: one,
            out: Some(Hashing::new(file)),
            pending: Vec::with_capacity(BATCH),
        })
    }
}

impl Upload {
    /// Appends a piece of the body.
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.pending.extend_from_slice(data);
        if self.pending.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let mut out = self.out.take().ok_or(Error::Internal)?;
        let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH));
        let out = blocking(move || {
            out.write_all(&batch)
                .map_err(|e| format!("upload: cannot write: {e}"))?;
            Ok(out)
        })
        .await?;
        self.out = Some(out);
        Ok(())
    }

    /// The whole body has come: checks it and, if it is a backup, keeps it as one named
    /// `name` (else a name from what it is). 422 on `body` if it is not.
    pub async fn finish(mut self, name: Option<String>) -> Result<BackupView> {
        self.flush().await?;
        let out = self.out.take().ok_or(Error::Internal)?;
        let (size, checksum) = (out.written, out.hex());
        let (c, temp) = (self.svc.catalog.clone(), self.temp.0.clone());
        // One trip off the async workers: check, then keep.
        let e = tokio::task::spawn_blocking(move || {
            let received = check(out.inner, &temp)?;
            let now = crate::time::now();
            let kept = c
                .next_id()
                .and_then(|id| keep(&c, entry(id, &received, name, now, size, checksum), &temp));
            kept.map_err(|why| {
                log::error!("backup upload: {why}");
                Error::Internal
            })
        })
        .await
        .map_err(|_| Error::Stopping)??;
        log::info!(
            "backup {} ({}) uploaded: {size} bytes{}",
            e.id,
            e.name,
            if e.encrypted { ", encrypted" } else { "" }
        );
        Ok(e.into())
    }
}

/// Syncs the received file and says what it is (blocking).
fn check(file: File, path: &std::path::Path) -> Result<Received> {
    let io = |e: std::io::Error| {
        log::error!("backup upload: {}: {e}", path.display());
        Error::Internal
    };
    file.sync_all().map_err(io)?;
    drop(file);
    let mut first = [0u8; crypt::MAGIC.len()];
    let n = File::open(path)
        .and_then(|f| f.take(first.len() as u64).read(&mut first))
        .map_err(io)?;
    let refused = |why: String| Error::invalid("body", why);
    if crypt::is_encrypted(&first[..n]) {
        return match crypt::check_header(File::open(path).map_err(io)?) {
            Ok(work_factor) => Ok(Received::Encrypted { work_factor }),
            Err(crypt::CryptError::Io(e)) => Err(io(e)),
            Err(e) => Err(refused(e.to_string())),
        };
    }
    let input = std::io::BufReader::new(File::open(path).map_err(io)?);
    match archive::verify(input, &Limits::default()) {
        Ok(manifest) => Ok(Received::Archive(manifest)),
        Err(archive::ArchiveError::Io(e)) => Err(io(e)),
        Err(archive::ArchiveError::Invalid(why)) => {
            Err(refused(format!("not a valid backup archive: {why}")))
        }
    }
}

/// The catalogue entry of a valid upload (pure): what it is, named `name` or after what it
/// holds, received at `now`.
pub fn entry(
    id: i64,
    received: &Received,
    name: Option<String>,
    now: i64,
    size: u64,
    checksum: String,
) -> Entry {
    let uploaded_at = crate::time::rfc3339(now);
    let (kind, created_at, encrypted, default_name, metadata) = match received {
        Received::Encrypted { work_factor } => (
            Kind::Unknown,
            now,
            true,
            "uploaded encrypted backup".to_string(),
            serde_json::json!({"uploaded_at": uploaded_at, "scrypt_work_factor": work_factor}),
        ),
        Received::Archive(m) => {
            let host: String = m
                .hostname
                .chars()
                .filter(|c| !c.is_control())
                .take(60)
                .collect();
            let name = match host.trim() {
                "" => format!("uploaded {} backup", m.kind),
                h => format!("uploaded {} backup of {h}", m.kind),
            };
            let meta = serde_json::json!({
                "uploaded_at": uploaded_at,
                "hostname": m.hostname,
                "app_version": m.app_version,
                "schema_version": m.schema_version,
            });
            (m.kind, m.created_at, false, name, meta)
        }
    };
    Entry {
        id,
        name: name.unwrap_or(default_name),
        kind,
        status: Status::Completed,
        error: None,
        metadata,
        file: catalog::file_name(id, kind, created_at, encrypted),
        size_bytes: Some(size),
        checksum: Some(checksum),
        encrypted,
        origin: "upload".into(),
        created_at,
        completed_at: Some(now),
    }
}

/// Records `done` as running, moves the file into place, records it completed: a crash in
/// between leaves a `running` entry that the next start marks failed, its file removed.
fn keep(
    c: &catalog::Catalog,
    done: Entry,
    temp: &std::path::Path,
) -> std::result::Result<Entry, String> {
    let running = Entry {
        status: Status::Running,
        completed_at: None,
        ..done.clone()
    };
    c.put(&running)?;
    if let Err(e) = std::fs::rename(temp, c.archive_path(&done)) {
        let _ = c.remove(&running);
        return Err(format!("upload: cannot keep {}: {e}", done.file));
    }
    c.put(&done)?;
    Ok(done)
}

/// The temporary file's path; the file goes when this does (once renamed, nothing is there).
struct Temp(PathBuf);

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(kind: Kind, hostname: &str) -> Manifest {
        Manifest {
            format: archive::FORMAT,
            app_version: "0.1.0".into(),
            schema_version: 7,
            kind,
            hostname: hostname.into(),
            created_at: 1_764_770_400,
            members: Vec::new(),
        }
    }

    #[test]
    fn a_plain_upload_takes_type_and_time_from_its_manifest() {
        let r = Received::Archive(manifest(Kind::Database, "router-a"));
        let e = entry(4, &r, None, 1_800_000_000, 123, "ab".repeat(32));
        assert_eq!(
            (e.kind, e.created_at, e.encrypted, e.status),
            (Kind::Database, 1_764_770_400, false, Status::Completed)
        );
        assert_eq!(e.name, "uploaded database backup of router-a");
        assert_eq!(e.file, "backup-4-database-20251203-140000.tar.gz");
        assert_eq!((e.size_bytes, e.origin.as_str()), (Some(123), "upload"));
        assert_eq!(e.completed_at, Some(1_800_000_000));
        assert_eq!(e.metadata["hostname"], "router-a");
        assert_eq!(e.metadata["schema_version"], 7);
        assert_eq!(
            e.metadata["uploaded_at"],
            crate::time::rfc3339(1_800_000_000)
        );
    }

    #[test]
    fn an_encrypted_upload_is_of_unknown_type_until_restored() {
        let r = Received::Encrypted { work_factor: 15 };
        let e = entry(
            9,
            &r,
            Some("from the NAS".into()),
            1_764_770_400,
            5,
            "0".repeat(64),
        );
        assert_eq!(
            (e.kind, e.created_at, e.encrypted),
            (Kind::Unknown, 1_764_770_400, true)
        );
        assert_eq!(e.name, "from the NAS");
        assert_eq!(e.file, "backup-9-unknown-20251203-140000.tar.gz.age");
        assert_eq!(e.metadata["scrypt_work_factor"], 15);
        assert_eq!(
            serde_json::to_value(BackupView::from(e)).unwrap()["type"],
            "unknown"
        );
        assert_eq!(Kind::parse("unknown"), None, "never requested");
    }

    #[test]
    fn a_hostile_hostname_makes_a_plain_bounded_name() {
        let r = Received::Archive(manifest(
            Kind::Full,
            &format!("a\u{7}\n{}", "h".repeat(250)),
        ));
        let e = entry(1, &r, None, 0, 0, String::new());
        assert!(e.name.chars().all(|c| !c.is_control()), "{:?}", e.name);
        assert!(
            e.name.chars().count() <= super::super::MAX_NAME,
            "{}",
            e.name
        );
        let blank = entry(
            1,
            &Received::Archive(manifest(Kind::Full, " ")),
            None,
            0,
            0,
            String::new(),
        );
        assert_eq!(blank.name, "uploaded full backup");
    }

    #[tokio::test]
    async fn one_upload_at_a_time_and_a_refused_or_dropped_one_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let store =
            crate::store::Store::open(&d.path().join("db"), &d.path().join("logs")).unwrap();
        let svc = Service::open(
            &d.path().join("backups"),
            store,
            super::super::Sources {
                data_dir: d.path().to_path_buf(),
                config_file: None,
                logs_file: d.path().join("logs"),
            },
        )
        .unwrap();
        let mut up = svc.start_upload().await.unwrap();
        up.write(b"partial").await.unwrap();
        assert!(d.path().join("backups").join(TEMP).exists());
        assert!(matches!(svc.start_upload().await, Err(Error::Refused(_))));
        drop(up);
        assert!(!d.path().join("backups").join(TEMP).exists());
        // Not gzip, not age: refused, nothing kept.
        let mut up = svc.start_upload().await.unwrap();
        up.write(b"hello, not a backup").await.unwrap();
        assert!(matches!(up.finish(None).await, Err(Error::Invalid(_))));
        let left: Vec<_> = std::fs::read_dir(d.path().join("backups"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != ".lock")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
