//! Retention enforced: after every backup (manual, scheduled, pre-restore) the backup
//! directory is pruned by the live `backup_retention` and the configured size cap
//! (`backup.max_size_mb`). Which backups go is decided by the pure
//! [`retention::prune`](super::schedule::retention::prune) (never the newest completed one,
//! never a running one); each is logged and deleted through the catalogue.

use super::catalog::{Catalog, Entry, Status};
use super::schedule::retention::{self, Policy, Retention, Stored};
use super::schedule::Schedule;
use super::Service;
use tokio::sync::watch;

/// Where the policy comes from: the live settings (`backup_retention`) and the size cap.
/// The default (the CLI's) prunes nothing.
#[derive(Clone, Default)]
pub struct PolicySource {
    settings: Option<watch::Receiver<crate::system::Settings>>,
    max_size_mib: Option<u64>,
}

impl PolicySource {
    /// `max_size_mb` 0 = no cap.
    pub fn new(settings: watch::Receiver<crate::system::Settings>, max_size_mb: u64) -> Self {
        PolicySource {
            settings: Some(settings),
            max_size_mib: Some(max_size_mb).filter(|m| *m > 0),
        }
    }

    /// The policy in force now; `None` = none set (nothing is pruned).
    pub fn current(&self) -> Option<Policy> {
        let retention: Retention = self.settings.as_ref()?.borrow().backup_retention;
        Some(Policy {
            retention,
            max_size_mib: self.max_size_mib,
        })
    }
}

impl Service {
    /// This service with its schedules (the configuration's) and its retention policy; the
    /// service `App::open` starts. Without it (the CLI) nothing is scheduled or pruned.
    pub fn with_automation(self, schedules: Vec<Schedule>, policy: PolicySource) -> Service {
        self.schedules.set_config(schedules);
        Service { policy, ..self }
    }
}

/// Removes what the policy says to, at the end of every backup job (on the blocking
/// thread, just before the job's outcome is recorded): `done` is the job's backup in its
/// final state — pruning before the record means a client that sees the backup finished
/// also sees what retention removed. `done` itself is never removed. No policy (the CLI):
/// nothing is pruned. The ids removed, oldest first.
pub(super) fn enforce(c: &Catalog, policy: Option<&Policy>, done: &Entry) -> Vec<i64> {
    match policy {
        // Failures are logged where they happen; the backup itself is done either way.
        Some(policy) => {
            prune_catalog(c, policy, crate::time::now(), Some(done)).unwrap_or_default()
        }
        None => Vec::new(),
    }
}

/// The catalogue's entries as `prune` sees them, oldest first (ties: the higher id is newer).
fn stored(entries: &[Entry]) -> Vec<Stored<i64>> {
    entries
        .iter()
        .rev()
        .map(|e| Stored {
            id: e.id,
            created_at: e.created_at,
            size_bytes: e.size_bytes.unwrap_or(0),
            status: match e.status {
                Status::Running => retention::Status::Running,
                Status::Completed => retention::Status::Completed,
                Status::Failed => retention::Status::Failed,
            },
            pre_restore: e.origin == "pre-restore",
        })
        .collect()
}

/// Prunes `c` by `policy` at `now`, with `done` (the backup a job just finished, not yet
/// recorded) in its final state and kept; the ids removed, oldest first.
pub(super) fn prune_catalog(
    c: &Catalog,
    policy: &Policy,
    now: i64,
    done: Option<&Entry>,
) -> Result<Vec<i64>, String> {
    let mut entries = c.entries()?;
    if let Some(d) = done {
        match entries.iter_mut().find(|e| e.id == d.id) {
            Some(e) => *e = d.clone(),
            None => entries.insert(0, d.clone()),
        }
    }
    let plan = retention::prune(&stored(&entries), policy, now);
    let mut removed = Vec::new();
    for id in plan.delete {
        if done.is_some_and(|d| d.id == id) {
            continue;
        }
        let Some(e) = entries.iter().find(|e| e.id == id) else {
            continue;
        };
        log::info!(
            "backup {id} ({:?}, {:?}, created {}) removed by retention (backup_retention {}, \
             size cap {})",
            e.name,
            e.status,
            crate::time::rfc3339(e.created_at),
            serde_json::to_string(&policy.retention).unwrap_or_default(),
            policy
                .max_size_mib
                .map_or("none".to_string(), |m| format!("{m} MiB")),
        );
        c.remove(e)?;
        removed.push(id);
    }
    if plan.over_cap_bytes > 0 {
        log::warn!(
            "the backups exceed the size cap by {} bytes: the newest completed backup and \
             running ones are never removed; raise backup.max_size_mb or free space",
            plan.over_cap_bytes
        );
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::catalog::{file_name, Kind};

    fn entry(c: &Catalog, id: i64, status: Status, size: u64, origin: &str) -> Entry {
        let e = Entry {
            id,
            name: format!("b{id}"),
            kind: Kind::Full,
            status,
            error: None,
            metadata: serde_json::json!({}),
            file: file_name(id, Kind::Full, 1_000 + id, false),
            size_bytes: Some(size),
            checksum: None,
            encrypted: false,
            origin: origin.into(),
            created_at: 1_000 + id,
            completed_at: None,
        };
        c.put(&e).unwrap();
        std::fs::write(c.archive_path(&e), b"x").unwrap();
        e
    }

    fn ids(c: &Catalog) -> Vec<i64> {
        c.entries().unwrap().iter().map(|e| e.id).collect()
    }

    #[test]
    fn keeps_the_newest_by_count_and_deletes_archives_through_the_catalogue() {
        let d = tempfile::tempdir().unwrap();
        let c = Catalog::open(d.path()).unwrap();
        let old = entry(&c, 1, Status::Completed, 10, "manual");
        entry(&c, 2, Status::Completed, 10, "schedule:n");
        entry(&c, 3, Status::Completed, 10, "pre-restore");
        entry(&c, 4, Status::Completed, 10, "manual");
        entry(&c, 5, Status::Running, 0, "manual");
        let p = Policy {
            retention: Retention {
                keep_last: Some(1),
                max_age_days: None,
            },
            max_size_mib: None,
        };
        // Pre-restore backups count apart; the running one stays.
        assert_eq!(prune_catalog(&c, &p, 2_000, None).unwrap(), [1, 2]);
        assert_eq!(ids(&c), [5, 4, 3]);
        assert!(!c.archive_path(&old).exists());
        assert!(prune_catalog(&c, &p, 2_000, None).unwrap().is_empty());
        // The running one finishes: as the newest completed it pushes out 4, before it is
        // recorded.
        let mut done = c.get(5).unwrap();
        done.status = Status::Completed;
        assert_eq!(prune_catalog(&c, &p, 2_000, Some(&done)).unwrap(), [4]);
        assert_eq!(ids(&c), [5, 3]);
    }

    #[test]
    fn the_size_cap_removes_oldest_first_but_never_the_newest_completed() {
        let d = tempfile::tempdir().unwrap();
        let c = Catalog::open(d.path()).unwrap();
        let mib = 1 << 20;
        entry(&c, 1, Status::Completed, mib, "manual");
        entry(&c, 2, Status::Failed, 0, "manual");
        entry(&c, 3, Status::Completed, 3 * mib, "manual");
        let p = Policy {
            retention: Retention {
                keep_last: Some(100),
                max_age_days: None,
            },
            max_size_mib: Some(2),
        };
        assert_eq!(prune_catalog(&c, &p, 2_000, None).unwrap(), [1, 2]);
        assert_eq!(ids(&c), [3], "alone over the cap, and kept");
        // A job's own backup is never removed, even a failed one under the cap.
        let failed = entry(&c, 4, Status::Running, 0, "manual");
        let mut done = failed.clone();
        done.status = Status::Failed;
        done.size_bytes = Some(mib);
        assert!(prune_catalog(&c, &p, 2_000, Some(&done))
            .unwrap()
            .is_empty());
        assert_eq!(ids(&c), [4, 3]);
        let none = PolicySource::default();
        assert_eq!(none.current(), None, "the CLI prunes nothing");
    }
}
