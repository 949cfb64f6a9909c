//! The in-memory allocators, one per pool, shared by the pools' service and the WireGuard
//! operations that release a deleted client's prefixes. Only
//! closures running on the database thread change them (see the parent module for why that
//! makes allocation race-free); the mutex is there so the map can be shared at all, and is
//! never held across an `.await`.

use super::alloc::Allocator;
use super::error::{Error, Result};
use super::model::{regions, Sizes};
use super::view::Counts;
use crate::store::ipam as q;
use crate::store::{Store, StoreResult};
use ipnet::Ipv6Net;
use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Every pool's allocator, by pool id.
#[derive(Clone, Default)]
pub struct Pools {
    inner: Arc<Mutex<HashMap<i64, Allocator>>>,
}

/// Prefixes a transaction took out of the tables, to hand back to their allocators once it
/// has committed ([`Pools::apply`]).
#[must_use = "apply it to the pools once the transaction commits"]
#[derive(Debug, Default)]
pub struct Released(pub(crate) Vec<(i64, Ipv6Net)>);

impl Released {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Pools {
    /// Rebuilds every pool's allocator from the tables (at start-up): its whitelist (or the
    /// pool) as the space, then every stored allocation taken out of it.
    pub async fn load(store: &Store) -> std::result::Result<Pools, String> {
        let map = store
            .call(load_in)
            .await
            .map_err(|e| format!("cannot load IPv6 pools: {e}"))?;
        Ok(Pools {
            inner: Arc::new(Mutex::new(map)),
        })
    }

    /// Rebuilds every allocator from the tables of `c`, which a restore has just put in
    /// place. It runs as a job on the database thread like every allocation, so none sees
    /// the old allocators with the new tables.
    pub fn reload_from(&self, c: &mut Connection) -> StoreResult<()> {
        let map = load_in(c)?;
        *self.lock() = map;
        Ok(())
    }

    /// The map. A panic elsewhere while it was held cannot leave an allocator half
    /// changed (each operation completes or is undone before the closure returns), so a
    /// poisoned lock is still usable.
    pub fn lock(&self) -> MutexGuard<'_, HashMap<i64, Allocator>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pool's counts (zero, logged, if it has no allocator: that would be a bug).
    pub fn counts(&self, pool_id: i64) -> Counts {
        match self.lock().get(&pool_id) {
            Some(a) => Counts::of(a),
            None => {
                log::error!("IPv6 pool {pool_id} has no allocator");
                Counts::default()
            }
        }
    }

    /// Gives back what a committed transaction released.
    pub fn apply(&self, released: Released) {
        let mut map = self.lock();
        for (pool, prefix) in released.0 {
            let r = map
                .get_mut(&pool)
                .map(|a| a.release(prefix).map_err(|e| e.to_string()));
            match r {
                Some(Ok(())) => {}
                Some(Err(e)) => log::error!("IPv6 pool {pool}: releasing {prefix}: {e}"),
                None => log::error!("IPv6 pool {pool} has no allocator (releasing {prefix})"),
            }
        }
    }
}

/// `f` on the allocator of `pool_id`.
pub(super) fn with_allocator<R>(
    map: &mut HashMap<i64, Allocator>,
    pool_id: i64,
    f: impl FnOnce(&mut Allocator) -> Result<R>,
) -> Result<R> {
    match map.get_mut(&pool_id) {
        Some(a) => f(a),
        None => {
            let e = format!("IPv6 pool {pool_id} has no allocator");
            log::error!("{e}");
            Err(Error::Internal(e))
        }
    }
}

fn load_in(c: &mut Connection) -> StoreResult<HashMap<i64, Allocator>> {
    let mut whitelists: HashMap<i64, Vec<Ipv6Net>> = HashMap::new();
    for w in q::all_whitelist(c)? {
        whitelists.entry(w.pool_id).or_default().push(w.prefix);
    }
    let mut map = HashMap::new();
    for p in q::all_pools(c)? {
        let wl = whitelists.get(&p.id).map(Vec::as_slice).unwrap_or(&[]);
        let s = Sizes::of(&p);
        map.insert(p.id, Allocator::new(&regions(&p, wl), s.unit, s.lo, s.hi));
    }
    // Only a hand-edited database gets here with allocations that do not fit: they are
    // kept in the table and reported, and their space may be handed out again.
    q::each_allocation(c, |pool, prefix| match map.get_mut(&pool) {
        Some(a) => {
            if let Err(e) = a.take(prefix) {
                log::error!("IPv6 pool {pool}: stored allocation {prefix} does not fit: {e}");
            }
        }
        None => log::error!("allocation {prefix} belongs to no IPv6 pool ({pool})"),
    })?;
    let held: usize = map.values().map(Allocator::allocated).sum();
    if !map.is_empty() {
        log::info!("IPv6 pools: {} loaded, {held} allocations", map.len());
    }
    Ok(map)
}
