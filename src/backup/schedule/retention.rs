//! Retention: which backups to remove, given the policy and `now` (pure, like its parent).
//!
//! `backup_retention` (in `/system/config` and the configuration) is a [`Retention`]:
//! - a bare number is **days** (the seed's `30`): `30` ≡ `{"max_age_days": 30}`;
//! - `{"keep_last": 10}` keeps the 10 newest;
//! - `{"keep_last": 10, "max_age_days": 30}` keeps a backup when **either** rule keeps it
//!   (the 10 newest, and everything from the last 30 days).
//!
//! In TOML the same: `retention = 30`, `retention = { keep_last = 10 }`. Unknown keys,
//! `{}`, 0, negative or fractional numbers and strings are refused, naming the field
//! (`backup_retention.keep_last`); bounds are [`KEEP_LAST`] and [`MAX_AGE_DAYS`].
//!
//! With the size cap of the backup directory ([`Policy::max_size_mib`]), [`prune`] applies
//! these rules, in this order, to the backups on disk:
//! 1. The **newest completed backup is never removed**, by any rule — not even when it alone
//!    is over the size cap (then [`Prune::over_cap_bytes`] says by how much, for a warning).
//! 2. Running backups are never removed (they count toward the size cap).
//! 3. Failed backups: the [`KEEP_FAILED`] newest stay (to read their error), older ones go;
//!    a failed backup older than `max_age_days` goes too. They never count toward `keep_last`.
//! 4. Completed backups: removed when the retention keeps them by no rule. `keep_last`
//!    counts regular and pre-restore backups separately, so a restore's automatic backup
//!    does not push out a scheduled one, and scheduled ones do not push out the way back.
//!    A backup is older than `max_age_days` when `now - created_at > max_age_days × 86400`
//!    (one created in the future — the clock went back — is young).
//! 5. Size cap: while the rest is over `max_size_mib` MiB, failed backups go first, then
//!    completed ones (regular or pre-restore), oldest first.
//!
//! The ids come back oldest first, so a caller interrupted half-way has removed the oldest.
//! `prune` is idempotent: run again on what it kept, it removes nothing more.

use super::DAY;
pub use crate::input::retention::{Retention, KEEP_LAST, MAX_AGE_DAYS};

/// Failed backups kept for their error message; older failed ones are removed.
pub const KEEP_FAILED: usize = 3;

impl Retention {
    /// Whether a completed backup `rank` places from the newest of its kind (0 = newest),
    /// created at `created_at`, is kept at `now`.
    fn keeps(&self, rank: usize, created_at: i64, now: i64) -> bool {
        let by_count = self.keep_last.map(|k| rank < k as usize);
        let by_age = self.max_age_days.map(|d| !too_old(d, created_at, now));
        match (by_count, by_age) {
            (None, None) => true,
            (a, b) => a.unwrap_or(false) || b.unwrap_or(false),
        }
    }
}

fn too_old(days: u32, created_at: i64, now: i64) -> bool {
    now.saturating_sub(created_at) > i64::from(days) * DAY
}

/// Retention and the backup directory's size cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    pub retention: Retention,
    /// Cap on the total size of the backups, in MiB; `None` = no cap.
    pub max_size_mib: Option<u64>,
}

/// A backup's state, as [`prune`] needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    Completed,
    Failed,
}

/// One backup on disk, as [`prune`] sees it. `Id` is whatever the store uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<Id> {
    pub id: Id,
    pub created_at: i64,
    pub size_bytes: u64,
    pub status: Status,
    /// The automatic backup taken before a restore.
    pub pre_restore: bool,
}

/// What [`prune`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prune<Id> {
    /// Backups to remove, oldest first.
    pub delete: Vec<Id>,
    /// By how much what is kept still exceeds the size cap (0 = within it): only when the
    /// newest completed and the running backups alone are over it.
    pub over_cap_bytes: u64,
}

/// The backups `policy` removes at `now` (rules in the module doc). Ties in `created_at`
/// are broken by position in `backups`: later is newer.
pub fn prune<Id: Clone>(backups: &[Stored<Id>], policy: &Policy, now: i64) -> Prune<Id> {
    let mut plan = Plan::new(backups);
    plan.by_rules(&policy.retention, now);
    let over_cap_bytes = policy
        .max_size_mib
        .map_or(0, |mib| plan.by_size(mib.saturating_mul(1 << 20)));
    Prune {
        delete: plan
            .newest
            .iter()
            .rev()
            .filter(|&&i| plan.delete[i])
            .map(|&i| backups[i].id.clone())
            .collect(),
        over_cap_bytes,
    }
}

/// [`prune`]'s work: backups by position, newest first, and a mark per position.
struct Plan<'a, Id> {
    backups: &'a [Stored<Id>],
    /// Positions, newest first (ties: later in the list is newer).
    newest: Vec<usize>,
    /// The newest completed backup, never removed.
    protected: Option<usize>,
    delete: Vec<bool>,
}

impl<'a, Id> Plan<'a, Id> {
    fn new(backups: &'a [Stored<Id>]) -> Self {
        let mut newest: Vec<usize> = (0..backups.len()).collect();
        newest.sort_by_key(|&i| std::cmp::Reverse((backups[i].created_at, i)));
        let protected = newest
            .iter()
            .copied()
            .find(|&i| backups[i].status == Status::Completed);
        Plan {
            backups,
            newest,
            protected,
            delete: vec![false; backups.len()],
        }
    }

    /// Positions newest first that `pick` selects.
    fn select(&self, pick: impl Fn(&Stored<Id>) -> bool) -> Vec<usize> {
        let b = self.backups;
        self.newest
            .iter()
            .copied()
            .filter(|&i| pick(&b[i]))
            .collect()
    }

    /// Rules 3 and 4: failed ones beyond the few or too old, completed ones no rule keeps.
    fn by_rules(&mut self, retention: &Retention, now: i64) {
        let failed = self.select(|b| b.status == Status::Failed);
        for (rank, i) in failed.into_iter().enumerate() {
            let created = self.backups[i].created_at;
            let old = retention
                .max_age_days
                .is_some_and(|d| too_old(d, created, now));
            self.delete[i] = rank >= KEEP_FAILED || old;
        }
        for pre_restore in [false, true] {
            let kind =
                self.select(|b| b.status == Status::Completed && b.pre_restore == pre_restore);
            for (rank, i) in kind.into_iter().enumerate() {
                let keep = retention.keeps(rank, self.backups[i].created_at, now);
                self.delete[i] = !keep && Some(i) != self.protected;
            }
        }
    }

    /// Rule 5: failed, then completed backups, oldest first, until the rest fits `cap`
    /// bytes. Returns by how much the rest is still over it.
    fn by_size(&mut self, cap: u64) -> u64 {
        let mut total = (0..self.backups.len())
            .filter(|&i| !self.delete[i])
            .map(|i| self.backups[i].size_bytes)
            .fold(0, u64::saturating_add);
        let failed = self.select(|b| b.status == Status::Failed);
        let completed = self.select(|b| b.status == Status::Completed);
        let oldest_failed_first = failed.into_iter().rev().chain(completed.into_iter().rev());
        for i in oldest_failed_first {
            if total <= cap {
                break;
            }
            if !self.delete[i] && Some(i) != self.protected {
                self.delete[i] = true;
                total = total.saturating_sub(self.backups[i].size_bytes);
            }
        }
        total.saturating_sub(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::schedule::tests::Rng;

    // ---- retention input ----

    fn keep(k: Option<u32>, d: Option<u32>) -> Retention {
        Retention {
            keep_last: k,
            max_age_days: d,
        }
    }

    #[test]
    fn retention_reads_days_or_rules() {
        use serde_json::json;
        for (v, want) in [
            (json!(30), keep(None, Some(30))),
            (json!({"max_age_days": 30}), keep(None, Some(30))),
            (json!({"keep_last": 10}), keep(Some(10), None)),
            (
                json!({"keep_last": 1, "max_age_days": 3650}),
                keep(Some(1), Some(3650)),
            ),
        ] {
            let r = Retention::from_json(&v).unwrap();
            assert_eq!(r, want, "{v}");
            assert_eq!(
                Retention::from_json(&serde_json::to_value(r).unwrap()),
                Ok(r)
            );
        }
        assert_eq!(
            serde_json::to_value(keep(None, Some(30))).unwrap(),
            json!(30)
        );
        for (v, field) in [
            (json!(0), "backup_retention"),
            (json!(-1), "backup_retention"),
            (json!(3651), "backup_retention"),
            (json!(30.5), "backup_retention"),
            (json!("30"), "backup_retention"),
            (json!(null), "backup_retention"),
            (json!({}), "backup_retention"),
            (json!({"keep_last": 0}), "backup_retention.keep_last"),
            (json!({"keep_last": 10_001}), "backup_retention.keep_last"),
            (
                json!({"max_age_days": 1u64 << 40}),
                "backup_retention.max_age_days",
            ),
            (json!({"keep_last": "3"}), "backup_retention.keep_last"),
            (json!({"keep_lsat": 3}), "backup_retention.keep_lsat"),
        ] {
            let e = Retention::from_json(&v).unwrap_err();
            assert_eq!(e.field, field, "{v}: {e}");
        }
        let e = Retention::from_json(&json!({"keep_lsat": 3})).unwrap_err();
        assert!(e.message.contains("keep_last"), "{e}");
    }

    // ---- prune ----

    const NOW: i64 = 1_800_000_000;
    const MIB: u64 = 1 << 20;

    fn b(id: u32, days_ago: i64, mib: u64, status: Status) -> Stored<u32> {
        Stored {
            id,
            created_at: NOW - days_ago * DAY,
            size_bytes: mib * MIB,
            status,
            pre_restore: false,
        }
    }
    use Status::{Completed as Done, Failed, Running};

    fn policy(r: Retention, cap: Option<u64>) -> Policy {
        Policy {
            retention: r,
            max_size_mib: cap,
        }
    }

    fn deleted(backups: &[Stored<u32>], p: Policy) -> Vec<u32> {
        prune(backups, &p, NOW).delete
    }

    /// Ten daily completed backups, id = days ago (1 is the newest), listed out of order.
    fn ten_days() -> Vec<Stored<u32>> {
        [4, 9, 1, 7, 2, 10, 3, 8, 6, 5]
            .map(|d| b(d, d as i64, 1, Done))
            .to_vec()
    }

    #[test]
    fn by_count_oldest_first() {
        let p = policy(keep(Some(3), None), None);
        assert_eq!(deleted(&ten_days(), p), [10, 9, 8, 7, 6, 5, 4]);
    }

    #[test]
    fn by_age() {
        let p = policy(keep(None, Some(5)), None);
        assert_eq!(deleted(&ten_days(), p), [10, 9, 8, 7, 6]);
        // Exactly the limit is kept; a second more is not.
        let edge = [b(1, 0, 1, Done), b(2, 5, 1, Done), b(3, 5, 1, Done)];
        let mut edge = edge.to_vec();
        edge[2].created_at -= 1;
        assert_eq!(deleted(&edge, p), [3]);
        // Created "in the future" (clock went back): young.
        let future = [b(1, -400, 1, Done), b(2, 0, 1, Done)];
        assert!(deleted(&future, p).is_empty());
    }

    #[test]
    fn count_and_age_keep_what_either_keeps() {
        let p = policy(keep(Some(7), Some(3)), None);
        assert_eq!(deleted(&ten_days(), p), [10, 9, 8]);
        let p = policy(keep(Some(2), Some(6)), None);
        assert_eq!(deleted(&ten_days(), p), [10, 9, 8, 7]);
    }

    #[test]
    fn never_the_newest_completed() {
        // All older than the age limit, the newest completed survives; failed ones after
        // it do not protect it away.
        let list = [
            b(1, 100, 1, Done),
            b(2, 90, 1, Done),
            b(3, 1, 1, Failed),
            b(4, 0, 1, Running),
        ];
        let p = policy(keep(None, Some(30)), None);
        assert_eq!(deleted(&list, p), [1]);
        // Nor the size cap, which says how far over it stays.
        let big = [b(1, 3, 50, Done), b(2, 2, 200, Done), b(3, 0, 10, Running)];
        let out = prune(&big, &policy(keep(Some(10), None), Some(100)), NOW);
        assert_eq!(out.delete, [1]);
        assert_eq!(out.over_cap_bytes, 110 * MIB);
        // Only failed ones: nothing completed to protect, the newest three stay.
        let failed: Vec<_> = (1..=5).map(|i| b(i, i as i64, 1, Failed)).collect();
        assert_eq!(deleted(&failed, policy(keep(Some(1), None), None)), [5, 4]);
    }

    #[test]
    fn failed_ones_go_beyond_a_few_and_first_under_the_cap() {
        let mut list: Vec<_> = (1..=6).map(|i| b(i, i as i64, 1, Failed)).collect();
        list.push(b(10, 10, 1, Done));
        list.push(b(11, 11, 1, Done));
        let p = policy(keep(Some(5), None), None);
        assert_eq!(deleted(&list, p), [6, 5, 4]);
        // Failed ones older than the age limit go even among the newest few.
        let p = policy(keep(Some(5), Some(2)), None);
        assert_eq!(deleted(&list, p), [6, 5, 4, 3]);
        // Over the cap: the failed ones left go before any completed one.
        let p = policy(keep(Some(5), None), Some(4));
        assert_eq!(deleted(&list, p), [6, 5, 4, 3]);
        let p = policy(keep(Some(5), None), Some(1));
        assert_eq!(deleted(&list, p), [11, 6, 5, 4, 3, 2, 1]);
    }

    #[test]
    fn by_size_cap_oldest_first() {
        let list = ten_days();
        let out = prune(&list, &policy(keep(Some(100), None), Some(4)), NOW);
        assert_eq!(out.delete, [10, 9, 8, 7, 6, 5]);
        assert_eq!(out.over_cap_bytes, 0);
        // Running backups count toward the cap but are never removed.
        let mut list = ten_days();
        list.push(b(0, 0, 3, Running));
        assert_eq!(
            deleted(&list, policy(keep(Some(100), None), Some(4))),
            [10, 9, 8, 7, 6, 5, 4, 3, 2]
        );
        // A huge cap changes nothing; so does the absence of one.
        assert!(deleted(&list, policy(keep(Some(100), None), Some(u64::MAX))).is_empty());
    }

    #[test]
    fn pre_restore_backups_count_apart() {
        let mut list = ten_days();
        for (id, days) in [(21, 20), (22, 9), (23, 0)] {
            let mut p = b(id, days, 1, Done);
            p.pre_restore = true;
            list.push(p);
        }
        // Keep 2 of each kind; the newest completed (a pre-restore one) is among them.
        let p = policy(keep(Some(2), None), None);
        assert_eq!(deleted(&list, p), [21, 10, 9, 8, 7, 6, 5, 4, 3]);
        // Age and size treat them like any other.
        let p = policy(keep(None, Some(5)), None);
        assert_eq!(deleted(&list, p), [21, 10, 9, 22, 8, 7, 6]);
    }

    #[test]
    fn ties_and_empty() {
        assert!(deleted(&[], policy(keep(Some(1), None), Some(0))).is_empty());
        let same = [b(1, 2, 1, Done), b(2, 2, 1, Done), b(3, 2, 1, Done)];
        assert_eq!(deleted(&same, policy(keep(Some(1), None), None)), [1, 2]);
    }

    /// Random sets of backups and policies: the rules hold, and pruning what was kept removes
    /// nothing more.
    #[test]
    fn prune_invariants_over_random_sets() {
        let mut rng = Rng(7);
        for _ in 0..3000 {
            let n = rng.below(14) as u32;
            let list: Vec<Stored<u32>> = (0..n)
                .map(|id| Stored {
                    id,
                    created_at: NOW - rng.below(60 * DAY as u64) as i64 + DAY,
                    size_bytes: rng.below(8 * MIB),
                    status: [Done, Done, Done, Failed, Running][rng.below(5) as usize],
                    pre_restore: rng.below(4) == 0,
                })
                .collect();
            let r = keep(
                Some(rng.below(5) as u32 + 1).filter(|_| rng.below(3) > 0),
                Some(rng.below(40) as u32 + 1).filter(|_| rng.below(3) > 0),
            );
            let p = policy(r, Some(rng.below(40)).filter(|_| rng.below(2) == 0));
            let out = prune(&list, &p, NOW);
            let gone = |id: u32| out.delete.contains(&id);
            let newest_ok = list
                .iter()
                .enumerate()
                .filter(|(_, x)| x.status == Done)
                .max_by_key(|(i, x)| (x.created_at, *i));
            if let Some((_, x)) = newest_ok {
                assert!(!gone(x.id), "the newest completed went");
            }
            assert!(list
                .iter()
                .filter(|x| x.status == Running)
                .all(|x| !gone(x.id)));
            let times: Vec<i64> = out
                .delete
                .iter()
                .map(|&id| list[id as usize].created_at)
                .collect();
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "not oldest first");
            let kept: Vec<_> = list.iter().filter(|x| !gone(x.id)).cloned().collect();
            let total: u64 = kept.iter().map(|x| x.size_bytes).sum();
            if let Some(cap) = p.max_size_mib {
                assert_eq!(out.over_cap_bytes, total.saturating_sub(cap * MIB));
                if out.over_cap_bytes > 0 {
                    let removable = kept.iter().filter(|x| {
                        x.status != Running && Some(x.id) != newest_ok.map(|(_, n)| n.id)
                    });
                    assert_eq!(removable.count(), 0, "over the cap with more to remove");
                }
            }
            assert!(kept.iter().filter(|x| x.status == Failed).count() <= KEEP_FAILED);
            assert!(prune(&kept, &p, NOW).delete.is_empty(), "not idempotent");
        }
    }
}
