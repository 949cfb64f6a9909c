//! The speaker's applier on the change bus: it makes the running speaker follow the
//! database.
//!
//! - `Change::BgpSession` → that session's task matches its row: started, reconfigured, or
//!   stopped (Cease / Peer De-configured when the row is gone, or when the session can no
//!   longer run for want of a local AS).
//! - A change to what we originate — pools, allocations, announcements, and WireGuard
//!   servers and clients (deleting them releases their prefixes' allocations) — marks the
//!   export set dirty; [`super::exports::run`] rebuilds it off the request path, once per
//!   burst of changes, and hands it to every session.
//! - [`Reconciler::reconcile_all`] (start-up, restore): every session as its row says, no
//!   task without a row, and the exports rebuilt.
//!
//! Each entry re-reads the rows, so applying a change twice or out of order converges.

use super::speaker::Speaker;
use crate::changes::{Applier, Change};
use crate::config::BgpConfig;
use crate::store::bgp as q;
use crate::store::Store;
use crate::sync::BoxFuture;
use std::collections::HashSet;
use std::sync::Arc;

pub struct Reconciler {
    store: Store,
    speaker: Arc<Speaker>,
    config: BgpConfig,
}

impl Reconciler {
    pub fn new(store: Store, speaker: Arc<Speaker>, config: BgpConfig) -> Self {
        Reconciler {
            store,
            speaker,
            config,
        }
    }

    /// Session `id`'s task as its row says (no row: no task).
    async fn session(&self, id: i64) {
        match self.store.call(move |c| q::get_session(c, id)).await {
            Ok(Some(row)) => self.follow(&row),
            Ok(None) => self.speaker.remove(id),
            Err(e) => log::warn!("bgp: cannot read session {id}: {e}"),
        }
    }

    async fn sessions(&self) {
        let rows = match self.store.call(|c| q::all_sessions(c)).await {
            Ok(rows) => rows,
            Err(e) => {
                log::warn!("bgp: cannot start the sessions: {e}");
                return;
            }
        };
        let ids: HashSet<i64> = rows.iter().map(|r| r.id).collect();
        for gone in self
            .speaker
            .overview()
            .iter()
            .filter(|s| !ids.contains(&s.id))
        {
            self.speaker.remove(gone.id);
        }
        for row in &rows {
            self.follow(row);
        }
    }

    /// The session's task made to match its row (stopped when the row says it should not run).
    fn follow(&self, row: &q::SessionRow) {
        match super::config_of(&self.config, row) {
            Some(cfg) => self.speaker.configure(cfg),
            None => self.speaker.remove(row.id),
        }
    }
}

/// Whether `change` can alter the export set (what we originate, or to which session).
pub fn feeds_exports(change: &Change) -> bool {
    match change {
        Change::Pool { .. }
        | Change::Allocation { .. }
        | Change::Announcement { .. }
        | Change::Server { .. }
        | Change::Client { .. } => true,
        // A deleted session takes its announcements with it.
        Change::BgpSession { op, .. } => *op == crate::changes::Op::Removed,
        Change::User { .. } | Change::Settings => false,
    }
}

impl Applier for Reconciler {
    fn apply<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Change::BgpSession { id, .. } = change {
                self.session(*id).await;
            }
            if feeds_exports(change) {
                self.speaker.changed();
            }
        })
    }

    fn reconcile_all(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.sessions().await;
            self.speaker.changed();
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::Op;

    #[test]
    fn what_we_originate_follows_pools_allocations_announcements_and_wireguard() {
        let yes = [
            Change::Pool {
                id: 1,
                op: Op::Changed,
            },
            Change::Allocation {
                pool_id: 1,
                id: 2,
                client: None,
                op: Op::Added,
            },
            Change::Announcement {
                id: 1,
                op: Op::Removed,
            },
            Change::Client {
                server_id: 1,
                id: 2,
                op: Op::Removed,
            },
            Change::Server {
                id: 1,
                op: Op::Removed,
            },
            Change::BgpSession {
                id: 1,
                op: Op::Removed,
            },
        ];
        for c in &yes {
            assert!(feeds_exports(c), "{c:?}");
        }
        let no = [
            Change::BgpSession {
                id: 1,
                op: Op::Changed,
            },
            Change::User {
                id: 1,
                op: Op::Added,
            },
            Change::Settings,
        ];
        for c in &no {
            assert!(!feeds_exports(c), "{c:?}");
        }
    }

    /// A session's task follows its row through the bus, and its removal (which takes its
    /// announcements along) marks the exports dirty.
    #[tokio::test]
    async fn a_session_task_follows_its_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db"), &dir.path().join("logs")).expect("store");
        let speaker = Arc::new(Speaker::default());
        let config = BgpConfig {
            local_asn: 65001,
            ..BgpConfig::default()
        };
        let r = Reconciler::new(store.clone(), speaker.clone(), config.clone());
        let input: crate::bgp::SessionInput = serde_json::from_value(serde_json::json!({
            "name": "up", "neighbor": "192.0.2.1", "remote_as": 65002, "enabled": false
        }))
        .expect("input");
        let f = input.create().expect("valid");
        let row = store
            .call(move |c| q::insert_session(c, &f, 1))
            .await
            .expect("insert");
        let id = row.id;
        let ids = |s: &Speaker| s.overview().iter().map(|s| s.id).collect::<Vec<_>>();
        r.apply(&Change::BgpSession { id, op: Op::Added }).await;
        assert_eq!(ids(&speaker), [id]);
        let dirty = speaker.dirty();
        store
            .call(move |c| q::delete_session(c, id))
            .await
            .expect("delete");
        r.apply(&Change::BgpSession {
            id,
            op: Op::Removed,
        })
        .await;
        assert!(ids(&speaker).is_empty(), "no task without a row");
        tokio::time::timeout(std::time::Duration::from_secs(5), dirty.notified())
            .await
            .expect("the exports are marked dirty");
        // A task whose row vanished behind the bus's back goes at the next reconcile.
        speaker.configure(crate::bgp::config_of(&config, &row).expect("runnable"));
        assert_eq!(ids(&speaker), [id]);
        r.reconcile_all().await;
        assert!(ids(&speaker).is_empty());
        store.close().await;
    }
}
