//! The change bus: how the effects of a write follow its commit.
//!
//! A domain operation validates, commits, and then publishes what it changed as a typed
//! [`Change`]. Everything that follows from a write subscribes here, so no handler calls an
//! engine or picks a WebSocket channel, and a write has one path from handler to engine:
//!
//! ```text
//!  handler ─► domain service ─► Store::write (rules + SQL, one transaction) ─► commit
//!                    │
//!                    └─► Bus::publish(Change)
//!                          ├─► appliers, awaited in registration order: each brings its
//!                          │   engine to the database's desired state for what the change
//!                          │   touched (WireGuard devices, BGP exports)
//!                          └─► observers (broadcast; never blocks the writer, a slow one
//!                              sees `Lagged` and re-reads): WebSocket channels, event log
//! ```
//!
//! Appliers are awaited so the answer to the request already shows the running state (a
//! created server is `running`, or `error` with its `last_error`). They reconcile rather than
//! patch: an applier re-reads the desired state and converges, so two changes applied in any
//! order, or one applied twice, end in the same running state — the same entry points serve
//! start-up and a restore of a backup ([`Bus::reconcile_all`]).

use crate::sync::BoxFuture;
use std::sync::{Arc, RwLock};
use tokio::sync::broadcast;

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Added,
    Changed,
    Removed,
}

/// One committed change, by the ids of what it touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A WireGuard server; `Removed` takes its clients with it.
    Server { id: i64, op: Op },
    /// A WireGuard client of `server_id` (its keys, addresses, routed prefixes, state).
    Client { server_id: i64, id: i64, op: Op },
    /// An IPv6 pool (its prefix, state, BGP announcing, whitelist, sizes).
    Pool { id: i64, op: Op },
    /// A prefix allocated from (`Added`), changed in, or released to (`Removed`) pool
    /// `pool_id`; `client` is the WireGuard client it is routed to, as (server id, client id).
    Allocation {
        pool_id: i64,
        id: i64,
        client: Option<(i64, i64)>,
        op: Op,
    },
    /// A manually configured BGP announcement.
    Announcement { id: i64, op: Op },
    /// A configured BGP session (peer).
    BgpSession { id: i64, op: Op },
    /// A user account (role, state, password).
    User { id: i64, op: Op },
    /// Runtime settings (`/system/config`).
    Settings,
}

/// An engine that follows the database: it makes its running state equal the desired state
/// for what `change` touched. Errors are the engine's to record and report (a server's
/// `last_error`, a session's status); the write has committed and stays committed.
pub trait Applier: Send + Sync {
    fn apply<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, ()>;
    /// Everything, from scratch: start-up and after a restore.
    fn reconcile_all(&self) -> BoxFuture<'_, ()>;
}

/// Cheap to clone; every clone publishes to the same subscribers.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    appliers: RwLock<Vec<Arc<dyn Applier>>>,
    observers: broadcast::Sender<Change>,
}

/// Changes an observer may fall behind by before it sees `Lagged` (and re-reads).
const OBSERVER_BACKLOG: usize = 64;

impl Default for Bus {
    fn default() -> Self {
        Bus {
            inner: Arc::new(Inner {
                appliers: RwLock::new(Vec::new()),
                observers: broadcast::Sender::new(OBSERVER_BACKLOG),
            }),
        }
    }
}

impl Bus {
    /// Registers an engine; done once per engine at start-up, before the API listens.
    pub fn add_applier(&self, a: Arc<dyn Applier>) {
        if let Ok(mut v) = self.inner.appliers.write() {
            v.push(a);
        }
    }

    fn appliers(&self) -> Vec<Arc<dyn Applier>> {
        self.inner
            .appliers
            .read()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// Publishes one committed change: every applier first (awaited), then the observers.
    pub async fn publish(&self, change: Change) {
        for a in self.appliers() {
            a.apply(&change).await;
        }
        // No observer listening is fine.
        let _ = self.inner.observers.send(change);
    }

    /// Publishes the changes of one operation, in order.
    pub async fn publish_all(&self, changes: impl IntoIterator<Item = Change>) {
        for c in changes {
            self.publish(c).await;
        }
    }

    /// A feed of every change published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.inner.observers.subscribe()
    }

    /// Brings every engine to the database's desired state (start-up, restore).
    pub async fn reconcile_all(&self) {
        for a in self.appliers() {
            a.reconcile_all().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>, &'static str);

    impl Applier for Recorder {
        fn apply<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, ()> {
            Box::pin(async move {
                crate::sync::lock(&self.0).push(format!("{} {change:?}", self.1));
            })
        }
        fn reconcile_all(&self) -> BoxFuture<'_, ()> {
            Box::pin(async move { crate::sync::lock(&self.0).push(format!("{} all", self.1)) })
        }
    }

    #[tokio::test]
    async fn appliers_run_in_order_before_observers_see_the_change() {
        let bus = Bus::default();
        let a = Arc::new(Recorder(Mutex::default(), "a"));
        let b = Arc::new(Recorder(Mutex::default(), "b"));
        bus.add_applier(a.clone());
        bus.add_applier(b.clone());
        let mut feed = bus.subscribe();
        let c = Change::Pool {
            id: 3,
            op: Op::Added,
        };
        bus.publish(c.clone()).await;
        assert_eq!(*crate::sync::lock(&a.0), vec![format!("a {c:?}")]);
        assert_eq!(*crate::sync::lock(&b.0), vec![format!("b {c:?}")]);
        assert_eq!(feed.try_recv().ok(), Some(c));
        bus.reconcile_all().await;
        assert_eq!(
            crate::sync::lock(&b.0).last().map(String::as_str),
            Some("b all")
        );
    }

    #[tokio::test]
    async fn a_slow_observer_lags_instead_of_blocking_the_writer() {
        let bus = Bus::default();
        let mut feed = bus.subscribe();
        for id in 0..(OBSERVER_BACKLOG as i64 + 10) {
            bus.publish(Change::User {
                id,
                op: Op::Changed,
            })
            .await;
        }
        assert!(matches!(
            feed.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(10))
        ));
    }
}
