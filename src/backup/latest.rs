//! `latest.tar.gz` (or `latest.tar.gz.age` when encrypted) in the backup directory: a hard
//! link to the newest backup of this router's state, under a name that never changes. A
//! firmware upgrade on OpenWrt keeps the files `/lib/upgrade/keep.d/ipv6wgm` lists, and it can
//! only list fixed paths: it lists this one (not the live database, not every backup), and
//! the init script restores it at the first start after the upgrade (`openwrt/files/`).
//!
//! Refreshed after every completed backup and every deletion. A hard link costs no flash; on a
//! file system without them (a FAT stick as `backup.dir`) it is a copy. The link is made under
//! a temporary name and renamed over `latest…`, so an upgrade or a crash at any moment finds
//! the previous archive or the new one, whole. The catalogue lists only `backup-<id>.json`
//! entries, so it never sees these names; a deleted backup's archive lives on under `latest…`
//! until the next refresh only if it was the newest.

use super::catalog::{Catalog, Entry, Kind, Status};
use std::path::Path;

/// The newest unencrypted backup.
pub const LATEST: &str = "latest.tar.gz";
/// The newest backup, when it is encrypted (the other name is then removed).
pub const LATEST_AGE: &str = "latest.tar.gz.age";

/// The backup `latest…` should be: the newest completed one (highest id) that holds the
/// database (`full` or `database`) and is a state this router chose to keep — not an uploaded
/// archive (another router's state), not a `pre-restore` one (the state a restore replaced:
/// keeping it across an upgrade would undo the restore), and not a `config` or `files`
/// backup (no database to bring back).
pub fn choose(entries: &[Entry]) -> Option<&Entry> {
    entries
        .iter()
        .filter(|e| e.status == Status::Completed)
        .filter(|e| !matches!(e.origin.as_str(), "upload" | "pre-restore"))
        .filter(|e| matches!(e.kind, Kind::Full | Kind::Database))
        .max_by_key(|e| e.id)
}

/// Points `latest…` at [`choose`]'s backup, or removes it when there is none. Logs what fails
/// (a stale `latest` is not worth failing a backup or a deletion for).
pub async fn refresh(catalog: std::sync::Arc<Catalog>) {
    let done = tokio::task::spawn_blocking(move || update(&catalog)).await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::warn!("backup: cannot update {LATEST}: {e}"),
        Err(_) => log::warn!("backup: {LATEST} not updated: the service is stopping"),
    }
}

/// [`refresh`]'s file work, on the calling thread.
pub fn update(catalog: &Catalog) -> Result<(), String> {
    let dir = catalog.dir();
    let mut entries = catalog.entries()?;
    entries.retain(|e| catalog.archive_path(e).is_file());
    let Some(newest) = choose(&entries) else {
        remove(&dir.join(LATEST))?;
        return remove(&dir.join(LATEST_AGE));
    };
    let (name, other) = match newest.encrypted {
        true => (LATEST_AGE, LATEST),
        false => (LATEST, LATEST_AGE),
    };
    let source = catalog.archive_path(newest);
    let target = dir.join(name);
    if !same_file(&source, &target) {
        let tmp = catalog.temp_path(newest.id, "latest");
        remove(&tmp)?;
        if std::fs::hard_link(&source, &tmp).is_err() {
            copy(&source, &tmp).map_err(|e| format!("cannot copy {}: {e}", newest.file))?;
        }
        std::fs::rename(&tmp, &target)
            .map_err(|e| format!("cannot rename to {}: {e}", target.display()))?;
    }
    remove(&dir.join(other))
}

/// A private copy (`io::copy`, already in the binary; `fs::copy` would add its own).
fn copy(from: &Path, to: &Path) -> Result<(), String> {
    let mut input = std::fs::File::open(from).map_err(|e| e.to_string())?;
    let mut out = crate::fsutil::create_private(to)?;
    std::io::copy(&mut input, &mut out).map_err(|e| e.to_string())?;
    out.sync_all().map_err(|e| e.to_string())
}

/// Both names are links to one file (then there is nothing to write).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

fn remove(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::catalog::file_name;
    use std::os::unix::fs::MetadataExt;

    fn entry(id: i64, kind: Kind, status: Status, origin: &str) -> Entry {
        Entry {
            id,
            name: format!("b{id}"),
            kind,
            status,
            error: None,
            metadata: serde_json::json!({}),
            file: file_name(id, kind, 1_764_770_400 + id, false),
            size_bytes: None,
            checksum: None,
            encrypted: false,
            origin: origin.into(),
            created_at: 1_764_770_400 + id,
            completed_at: None,
        }
    }

    #[test]
    fn the_newest_completed_backup_of_this_routers_database_is_chosen() {
        use Kind::*;
        use Status::*;
        let all = [
            entry(1, Full, Completed, "manual"),
            entry(2, Database, Completed, "schedule:nightly"),
            entry(3, Full, Failed, "manual"),
            entry(4, Config, Completed, "manual"),
            entry(5, Files, Completed, "manual"),
            entry(6, Full, Completed, "upload"),
            entry(7, Full, Running, "manual"),
        ];
        assert_eq!(choose(&all).map(|e| e.id), Some(2));
        assert_eq!(choose(&all[2..]).map(|e| e.id), None);
        let restored = [
            entry(8, Full, Completed, "manual"),
            entry(9, Full, Completed, "pre-restore"),
        ];
        assert_eq!(choose(&restored).map(|e| e.id), Some(8));
    }

    /// Writes a completed backup with an archive holding `content`.
    fn add(c: &Catalog, id: i64, content: &[u8], encrypted: bool) -> Entry {
        let mut e = entry(id, Kind::Full, Status::Completed, "manual");
        e.encrypted = encrypted;
        e.file = file_name(id, Kind::Full, e.created_at, encrypted);
        std::fs::write(c.archive_path(&e), content).expect("write");
        c.put(&e).expect("put");
        e
    }

    fn ino(p: &Path) -> u64 {
        std::fs::metadata(p).expect("stat").ino()
    }

    #[test]
    fn latest_follows_creations_and_deletions_as_a_hard_link() {
        let d = tempfile::tempdir().expect("tmp");
        let c = Catalog::open(d.path()).expect("open");
        let latest = d.path().join(LATEST);
        update(&c).expect("nothing to link");
        assert!(!latest.exists());

        let first = add(&c, 1, b"one", false);
        update(&c).expect("update");
        assert_eq!(ino(&latest), ino(&c.archive_path(&first)), "a hard link");
        let second = add(&c, 2, b"two", false);
        update(&c).expect("update");
        assert_eq!(std::fs::read(&latest).expect("read"), b"two");
        update(&c).expect("unchanged");
        assert_eq!(ino(&latest), ino(&c.archive_path(&second)));

        // The catalogue does not see it, and no temporary file is left behind.
        let ids: Vec<i64> = c.entries().expect("list").iter().map(|e| e.id).collect();
        assert_eq!(ids, [2, 1]);
        let names: Vec<String> = std::fs::read_dir(d.path())
            .expect("ls")
            .filter_map(|f| f.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(".tmp-"))
            .collect();
        assert!(names.is_empty(), "{names:?}");

        c.remove(&second).expect("delete");
        update(&c).expect("update");
        assert_eq!(std::fs::read(&latest).expect("read"), b"one");
        c.remove(&first).expect("delete");
        update(&c).expect("update");
        assert!(!latest.exists(), "no backup left, no latest");
    }

    #[test]
    fn an_encrypted_newest_backup_is_latest_age_and_the_plain_name_goes() {
        let d = tempfile::tempdir().expect("tmp");
        let c = Catalog::open(d.path()).expect("open");
        add(&c, 1, b"plain", false);
        update(&c).expect("update");
        let sealed = add(&c, 2, b"sealed", true);
        update(&c).expect("update");
        assert!(!d.path().join(LATEST).exists());
        assert_eq!(
            std::fs::read(d.path().join(LATEST_AGE)).expect("read"),
            b"sealed"
        );
        c.remove(&sealed).expect("delete");
        update(&c).expect("update");
        assert!(!d.path().join(LATEST_AGE).exists());
        assert_eq!(
            std::fs::read(d.path().join(LATEST)).expect("read"),
            b"plain"
        );
    }

    #[test]
    fn a_completed_entry_whose_archive_is_gone_is_not_linked() {
        let d = tempfile::tempdir().expect("tmp");
        let c = Catalog::open(d.path()).expect("open");
        add(&c, 1, b"one", false);
        let gone = add(&c, 2, b"two", false);
        std::fs::remove_file(c.archive_path(&gone)).expect("rm");
        update(&c).expect("update");
        assert_eq!(std::fs::read(d.path().join(LATEST)).expect("read"), b"one");
    }
}
