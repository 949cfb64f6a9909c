//! IPv6 prefix pools: delegating a routed prefix to every client.
//!
//! - [`alloc`]: the pure allocator (lowest free aligned prefix, exact counts, O(log n)).
//! - [`Service`] (this file): the operations the API calls — pools, allocations,
//!   whitelists, RPKI validation. Each commits, then publishes what it changed on the
//!   change bus ([`Change::Pool`], [`Change::Allocation`]): the BGP exports and the
//!   WireGuard peer a delegated prefix is routed to follow from there.
//! - [`model`]: request bodies, pool sizes, overlap rules, allocator errors in pool words.
//! - [`error`]: [`Error`], what the operations fail with (`api::error` maps it).
//! - [`view`]: the JSON views, counts included.
//! - `state`: [`Pools`], one allocator per pool in memory, rebuilt from the tables at
//!   start-up.
//! - `crate::wireguard::delegated`: allocations for a WireGuard client are also its
//!   `routed_prefixes`, written in the same transaction.
//!
//! Each operation here is one closure on the database thread that does its SQL in a
//! transaction **and** changes the pool's allocator, the allocator change surviving only if
//! the transaction commits: an allocation takes its prefix from the allocator first, and
//! gives it back if the SQL or the commit fails; a release gives the prefix back only
//! after the commit; a whitelist or size change builds a new allocator, commits, then swaps
//! it in.
//!
//! **Why this is race-free.** The database thread runs one closure at a time (see
//! [`crate::store`]), and only those closures change an allocator. So "pick the lowest
//! free prefix, record it, commit" cannot interleave with another request's: two
//! concurrent allocations from one pool are serialised and get different, non-overlapping
//! prefixes, and the in-memory state always equals what the tables hold. The mutex around
//! the allocators only makes them shareable; it is never contended by a writer and never
//! held across an `.await`.

pub mod alloc;
pub mod error;
pub mod model;
pub mod rpki;
mod state;
pub mod view;

pub use crate::store::ipam::{AllocationFilter, AllocationRow, PoolRow, PoolStatus, WhitelistRow};
pub use crate::wireguard::delegated::{release_for_clients, ClientChange};
pub use error::{Error, Result};
pub use model::*;
pub use state::{Pools, Released};
pub use view::*;

use crate::changes::{Bus, Change, Op};
use crate::input::Page;
use crate::rpki::Rpki;
use crate::store::ipam::{self as q, AllocationFields};
use crate::store::wireguard as wgq;
use crate::store::{in_transaction, Store};
use ipnet::Ipv6Net;
use rusqlite::{Connection, Transaction};
use std::sync::Arc;

/// The prefix pools: their rows, their in-memory allocators, and what follows a change.
#[derive(Clone)]
pub struct Service {
    store: Store,
    pools: Pools,
    bus: Bus,
    /// The live VRP table `validate-rpki` reads.
    rpki: Arc<Rpki>,
    /// `[bgp] local_asn`: the origin `validate-rpki` checks by default (0 = not set).
    local_asn: u32,
}

impl Service {
    /// The in-memory allocators (rebuilt by a restore: [`Pools::reload_from`]).
    pub fn pools(&self) -> &Pools {
        &self.pools
    }

    pub fn new(store: Store, pools: Pools, bus: Bus, rpki: Arc<Rpki>, local_asn: u32) -> Self {
        Service {
            store,
            pools,
            bus,
            rpki,
            local_asn,
        }
    }

    /// Runs `f` on the database thread with the allocators.
    async fn run<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection, &Pools) -> Result<R> + Send + 'static,
    {
        let pools = self.pools.clone();
        self.store.run(move |c| f(c, &pools)).await
    }

    // ---- pools ----

    pub async fn create_pool(&self, input: NewPool) -> Result<PoolView> {
        let now = crate::time::now();
        let view = self
            .run(move |c, pools| create_pool_in(c, pools, input, now))
            .await?;
        self.bus.publish(pool_change(view.id, Op::Added)).await;
        Ok(view)
    }

    pub async fn get_pool(&self, id: i64) -> Result<PoolView> {
        self.run(move |c, pools| {
            let row = pool_or_404(c, id)?;
            let wl = q::whitelist_of(c, id)?.len() as u64;
            Ok(view(pools, row, wl))
        })
        .await
    }

    /// One page of pools and the total.
    pub async fn list_pools(&self, page: Page) -> Result<(Vec<PoolView>, u64)> {
        self.run(move |c, pools| {
            let (rows, total) = q::list_pools(c, page.size, page.offset())?;
            let views = rows
                .into_iter()
                .map(|(row, wl)| view(pools, row, wl))
                .collect();
            Ok((views, total))
        })
        .await
    }

    /// Every pool with its health, for monitoring.
    pub async fn monitor(&self) -> Result<PoolsMonitor> {
        self.run(move |c, pools| {
            let (rows, _) = q::list_pools(c, u32::MAX, 0)?;
            let all = rows
                .into_iter()
                .map(|(row, wl)| {
                    let counts = pools.counts(row.id);
                    (row, wl, counts)
                })
                .collect();
            Ok(PoolsMonitor::new(all))
        })
        .await
    }

    /// Name, description, status, `auto_announce_bgp` change freely; the sizes only while
    /// the pool holds no allocation (they would no longer fit); the prefix never.
    pub async fn update_pool(&self, id: i64, changes: PoolChanges) -> Result<PoolView> {
        let now = crate::time::now();
        let view = self
            .run(move |c, pools| update_pool_in(c, pools, id, changes, now))
            .await?;
        self.bus.publish(pool_change(id, Op::Changed)).await;
        Ok(view)
    }

    /// Deletes a pool; with `force` also its allocations (taking them off their WireGuard
    /// clients). Without `force` a pool with allocations is a conflict. Returns the number
    /// released.
    pub async fn delete_pool(&self, id: i64, force: bool) -> Result<u64> {
        let now = crate::time::now();
        let (released, unrouted) = self
            .run(move |c, pools| delete_pool_in(c, pools, id, force, now))
            .await?;
        // The pool's other allocations go with it (`Pool` removed); the ones routed to a
        // WireGuard client are published so that client's peer follows.
        let mut changes: Vec<Change> = unrouted
            .into_iter()
            .map(|(a, change)| Change::Allocation {
                pool_id: id,
                id: a.id,
                client: change.as_ref().map(routed_to),
                op: Op::Removed,
            })
            .collect();
        changes.push(pool_change(id, Op::Removed));
        self.bus.publish_all(changes).await;
        Ok(released)
    }

    // ---- allocations ----

    /// Hands out the lowest free prefix of the requested size (or the requested prefix) to
    /// a client; the same client (by `client_id`, else by `client_name`) asking again gets
    /// its existing allocation.
    pub async fn allocate(&self, pool: PoolRef, input: AllocationInput) -> Result<Allocated> {
        let now = crate::time::now();
        let done = self
            .run(move |c, pools| allocate_in(c, pools, pool, input, now))
            .await?;
        if done.created {
            let a = &done.allocation;
            self.bus
                .publish(Change::Allocation {
                    pool_id: a.pool_id,
                    id: a.id,
                    client: done.client.as_ref().map(routed_to),
                    op: Op::Added,
                })
                .await;
        }
        Ok(done)
    }

    /// Releases an allocation of `pool_id` (taking it off its WireGuard client).
    pub async fn release(&self, pool_id: i64, allocation_id: i64) -> Result<AllocationRow> {
        let now = crate::time::now();
        let (a, change) = self
            .run(move |c, pools| release_in(c, pools, pool_id, allocation_id, now))
            .await?;
        self.bus
            .publish(Change::Allocation {
                pool_id: a.pool_id,
                id: a.id,
                client: change.as_ref().map(routed_to),
                op: Op::Removed,
            })
            .await;
        Ok(a)
    }

    /// One page of allocations matching `filter`, and the total.
    pub async fn list_allocations(
        &self,
        filter: AllocationFilter,
        page: Page,
    ) -> Result<(Vec<AllocationRow>, u64)> {
        Ok(self
            .store
            .call(move |c| q::list_allocations(c, &filter, page.size, page.offset()))
            .await?)
    }

    // ---- whitelist ----

    pub async fn whitelist(&self, pool_id: i64) -> Result<Vec<WhitelistRow>> {
        self.run(move |c, _| {
            pool_or_404(c, pool_id)?;
            Ok(q::whitelist_of(c, pool_id)?)
        })
        .await
    }

    /// Adds an entry: from now on the pool hands out only prefixes inside its whitelist,
    /// so the first entry must cover every existing allocation.
    pub async fn add_whitelist(
        &self,
        pool_id: i64,
        input: NewWhitelistEntry,
    ) -> Result<WhitelistRow> {
        let now = crate::time::now();
        let row = self
            .run(move |c, pools| add_whitelist_in(c, pools, pool_id, input, now))
            .await?;
        self.bus.publish(pool_change(pool_id, Op::Changed)).await;
        Ok(row)
    }

    /// Removes an entry that holds no allocation (the last one opens the whole pool again).
    pub async fn remove_whitelist(&self, pool_id: i64, entry_id: i64) -> Result<WhitelistRow> {
        let entry = self
            .run(move |c, pools| remove_whitelist_in(c, pools, pool_id, entry_id))
            .await?;
        self.bus.publish(pool_change(pool_id, Op::Changed)).await;
        Ok(entry)
    }
}

fn pool_change(id: i64, op: Op) -> Change {
    Change::Pool { id, op }
}

/// The WireGuard client a changed route belongs to, as (server id, client id).
fn routed_to((_, new): &ClientChange) -> (i64, i64) {
    (new.server_id, new.id)
}

fn pool_or_404(c: &Connection, id: i64) -> Result<PoolRow> {
    q::get_pool(c, id)?.ok_or(Error::NotFound("pool"))
}

fn whitelist_prefixes(c: &Connection, pool_id: i64) -> Result<Vec<Ipv6Net>> {
    Ok(q::whitelist_of(c, pool_id)?
        .into_iter()
        .map(|w| w.prefix)
        .collect())
}

fn view(pools: &Pools, row: PoolRow, whitelist_count: u64) -> PoolView {
    let counts = pools.counts(row.id);
    PoolView::new(row, whitelist_count, counts)
}

// ---- pools, on the database thread ----

fn create_pool_in(c: &mut Connection, pools: &Pools, input: NewPool, now: i64) -> Result<PoolView> {
    let (row, fresh) = in_transaction(c, |tx| {
        let f = input.validate()?;
        let others = q::all_pools(tx)?;
        check_pool_name(&f.name, None, &others)?;
        check_pool_space(
            f.prefix,
            &others,
            &wgq::all_servers(tx)?,
            &wgq::all_routed(tx)?,
        )?;
        let row = q::insert_pool(tx, &f, now)?;
        let s = Sizes::of(&row);
        let fresh = alloc::Allocator::new(&[row.prefix], s.unit, s.lo, s.hi);
        Ok::<_, Error>((row, fresh))
    })?;
    pools.lock().insert(row.id, fresh);
    Ok(view(pools, row, 0))
}

fn update_pool_in(
    c: &mut Connection,
    pools: &Pools,
    id: i64,
    changes: PoolChanges,
    now: i64,
) -> Result<PoolView> {
    let (row, wl, fresh) = in_transaction(c, |tx| {
        let current = pool_or_404(tx, id)?;
        let f = changes.apply(&current)?;
        check_pool_name(&f.name, Some(id), &q::all_pools(tx)?)?;
        let wl = whitelist_prefixes(tx, id)?;
        let sizes = Sizes {
            unit: f.prefix_length,
            lo: f.min_prefix_length,
            hi: f.max_prefix_length,
        };
        let fresh = if sizes == Sizes::of(&current) {
            None
        } else {
            let held = pools.counts(id).allocations;
            if held > 0 {
                return Err(Error::conflict(
                    "prefix_length",
                    format!(
                        "pool {:?} has {held} allocations; its sizes can change only while it \
                         has none",
                        current.name
                    ),
                ));
            }
            let space = regions(&current, &wl);
            Some(alloc::Allocator::new(
                &space, sizes.unit, sizes.lo, sizes.hi,
            ))
        };
        let row = q::update_pool(tx, id, &f, now)?;
        Ok((row, wl, fresh))
    })?;
    if let Some(a) = fresh {
        pools.lock().insert(id, a);
    }
    Ok(view(pools, row, wl.len() as u64))
}

/// An allocation taken off its WireGuard client: the row, and the client before and after
/// (`None` when the client did not route it).
type Unrouted = (AllocationRow, Option<ClientChange>);

fn delete_pool_in(
    c: &mut Connection,
    pools: &Pools,
    id: i64,
    force: bool,
    now: i64,
) -> Result<(u64, Vec<Unrouted>)> {
    let (held, unrouted) = in_transaction(c, |tx| {
        let pool = pool_or_404(tx, id)?;
        let held = pools.counts(id).allocations;
        if held > 0 && !force {
            return Err(Error::conflict(
                "force",
                format!(
                    "pool {:?} has {held} allocations; use ?force=true to release them",
                    pool.name
                ),
            ));
        }
        let mut unrouted = Vec::new();
        for a in q::linked_allocations_of_pool(tx, id)? {
            if let Some(client) = a.client_id {
                let change = crate::wireguard::delegated::unroute(tx, client, a.prefix, now)?;
                unrouted.push((a, change));
            }
        }
        q::delete_pool(tx, id)?;
        Ok((held, unrouted))
    })?;
    pools.lock().remove(&id);
    Ok((held, unrouted))
}

// ---- allocations, on the database thread ----

/// Where an allocation request names its pool: a missing pool is a 404 in the path, a
/// 422 on `pool_id` in the body.
#[derive(Debug, Clone, Copy)]
pub enum PoolRef {
    Path(i64),
    Body(i64),
}

/// The result of [`Service::allocate`].
#[derive(Debug)]
pub struct Allocated {
    pub allocation: AllocationRow,
    /// `false`: the client already had this allocation (the request is idempotent).
    pub created: bool,
    /// The WireGuard client it was routed to, before and after.
    pub client: Option<ClientChange>,
}

/// What an allocation request resolved to before a prefix is taken.
enum Resolved {
    /// The client already holds one: answered as it is.
    Held(AllocationRow),
    New(Box<Fresh>),
}

/// A new allocation, checked, waiting for its prefix.
struct Fresh {
    pool: PoolRow,
    client: Option<wgq::ClientRow>,
    len: u8,
    fields: AllocationFields,
}

fn allocate_in(
    c: &mut Connection,
    pools: &Pools,
    pool: PoolRef,
    input: AllocationInput,
    now: i64,
) -> Result<Allocated> {
    // The allocator is held from the lookups to the commit: the prefix it picks is the one
    // recorded, and goes back to it if the transaction (or its commit) fails.
    let mut map = pools.lock();
    let mut taken: Option<(i64, Ipv6Net)> = None;
    let result = in_transaction(c, |tx| {
        let Fresh {
            pool,
            client,
            len,
            fields,
        } = match resolve(tx, pool, &input)? {
            Resolved::Held(a) => {
                return Ok(Allocated {
                    allocation: a,
                    created: false,
                    client: None,
                })
            }
            Resolved::New(fresh) => *fresh,
        };
        let prefix = state::with_allocator(&mut map, pool.id, |a| {
            let got = match input.prefix {
                Some(p) => a.take(p).map(|()| p),
                None => a.allocate(len),
            };
            got.map_err(|e| {
                let field = if input.prefix.is_some() {
                    "prefix"
                } else {
                    "prefix_length"
                };
                let whitelisted = q::whitelist_of(tx, pool.id).is_ok_and(|w| !w.is_empty());
                alloc_error(e, &pool, field, whitelisted)
            })
        })?;
        taken = Some((pool.id, prefix));
        record(tx, &AllocationFields { prefix, ..fields }, client, now)
    });
    if let (Err(_), Some((pool_id, prefix))) = (&result, taken) {
        if let Some(Err(e)) = map.get_mut(&pool_id).map(|a| a.release(prefix)) {
            log::error!("IPv6 pool {pool_id}: undoing {prefix}: {e}");
        }
    }
    result
}

/// The pool, the client and the size a request asks for, checked; or the allocation the
/// client already holds.
fn resolve(tx: &Transaction<'_>, pool: PoolRef, input: &AllocationInput) -> Result<Resolved> {
    let pool = match pool {
        PoolRef::Path(id) => pool_or_404(tx, id)?,
        PoolRef::Body(id) => q::get_pool(tx, id)?
            .ok_or_else(|| Error::invalid("pool_id", format!("there is no pool with id {id}")))?,
    };
    let client = match input.client_id {
        Some(id) => Some(wgq::get_client(tx, id)?.ok_or_else(|| {
            Error::invalid(
                "client_id",
                format!("there is no WireGuard client with id {id}"),
            )
        })?),
        None => None,
    };
    let existing = match (&client, &input.client_name) {
        (Some(cl), _) => q::allocation_of_client(tx, pool.id, cl.id)?,
        (None, Some(name)) => q::allocation_of_name(tx, pool.id, name)?,
        (None, None) => None,
    };
    if let Some(a) = existing {
        check_same_request(&a, input, &pool)?;
        return Ok(Resolved::Held(a));
    }
    if pool.status == PoolStatus::Disabled {
        return Err(Error::conflict(
            "pool_id",
            format!("pool {:?} is disabled", pool.name),
        ));
    }
    let len = input.length(&pool)?;
    let fields = AllocationFields {
        pool_id: pool.id,
        prefix: Ipv6Net::default(),
        client_id: client.as_ref().map(|c| c.id),
        client_name: input
            .client_name
            .clone()
            .or_else(|| client.as_ref().map(|c| c.name.clone())),
        description: input.description.clone(),
        auto_announce: input.auto_announce.unwrap_or(pool.auto_announce_bgp),
    };
    Ok(Resolved::New(Box::new(Fresh {
        pool,
        client,
        len,
        fields,
    })))
}

/// Writes the allocation (and the client's route).
fn record(
    tx: &Transaction<'_>,
    f: &AllocationFields,
    client: Option<wgq::ClientRow>,
    now: i64,
) -> Result<Allocated> {
    let allocation = q::insert_allocation(tx, f, now)?;
    let client = client
        .map(|c| crate::wireguard::delegated::route(tx, c, f.prefix, now))
        .transpose()?;
    Ok(Allocated {
        allocation,
        created: true,
        client,
    })
}

/// Asking again for a different prefix or size than the one held is a conflict, not a
/// silent answer with the old one.
fn check_same_request(a: &AllocationRow, input: &AllocationInput, pool: &PoolRow) -> Result<()> {
    let held = a.prefix;
    let differs = match (input.prefix, input.prefix_length) {
        (Some(p), _) => (p != held).then_some("prefix"),
        (None, Some(l)) => (l != held.prefix_len()).then_some("prefix_length"),
        (None, None) => None,
    };
    match differs {
        Some(field) => Err(Error::conflict(
            field,
            format!(
                "this client already has {held} from pool {:?}; release it first",
                pool.name
            ),
        )),
        None => Ok(()),
    }
}

fn release_in(
    c: &mut Connection,
    pools: &Pools,
    pool_id: i64,
    allocation_id: i64,
    now: i64,
) -> Result<Unrouted> {
    let (a, change) = in_transaction(c, |tx| {
        let pool = pool_or_404(tx, pool_id)?;
        let a = q::get_allocation(tx, allocation_id)?
            .filter(|a| a.pool_id == pool.id)
            .ok_or(Error::NotFound("allocation"))?;
        let change = match a.client_id {
            Some(client) => crate::wireguard::delegated::unroute(tx, client, a.prefix, now)?,
            None => None,
        };
        q::delete_allocation(tx, a.id)?;
        Ok::<_, Error>((a, change))
    })?;
    pools.apply(Released(vec![(a.pool_id, a.prefix)]));
    Ok((a, change))
}

// ---- whitelist, on the database thread ----

fn add_whitelist_in(
    c: &mut Connection,
    pools: &Pools,
    pool_id: i64,
    input: NewWhitelistEntry,
    now: i64,
) -> Result<WhitelistRow> {
    let (row, fresh) = in_transaction(c, |tx| {
        let pool = pool_or_404(tx, pool_id)?;
        let prefix = parse_prefix("prefix", &input.prefix)?;
        let description = crate::wireguard::validate_description(input.description)?;
        let entries = q::whitelist_of(tx, pool_id)?;
        check_whitelist_entry(&pool, prefix, &entries)?;
        let mut space: Vec<Ipv6Net> = entries.iter().map(|e| e.prefix).collect();
        space.push(prefix);
        let fresh = rebuilt(pools, &pool, &space).map_err(|p| {
            Error::conflict(
                "prefix",
                format!(
                    "allocation {p} would be outside the whitelist; a pool's whitelist must \
                     cover all of its allocations"
                ),
            )
        })?;
        let row = q::insert_whitelist(tx, pool_id, prefix, description.as_deref(), now)?;
        Ok::<_, Error>((row, fresh))
    })?;
    pools.lock().insert(pool_id, fresh);
    Ok(row)
}

fn remove_whitelist_in(
    c: &mut Connection,
    pools: &Pools,
    pool_id: i64,
    entry_id: i64,
) -> Result<WhitelistRow> {
    let (entry, fresh) = in_transaction(c, |tx| {
        let pool = pool_or_404(tx, pool_id)?;
        let entries = q::whitelist_of(tx, pool_id)?;
        let entry = entries
            .iter()
            .find(|e| e.id == entry_id)
            .cloned()
            .ok_or(Error::NotFound("whitelist entry"))?;
        let rest: Vec<Ipv6Net> = entries
            .iter()
            .filter(|e| e.id != entry_id)
            .map(|e| e.prefix)
            .collect();
        let fresh = rebuilt(pools, &pool, &regions(&pool, &rest)).map_err(|p| {
            Error::conflict(
                "entry_id",
                format!(
                    "whitelist entry {} still holds allocation {p}; release it first",
                    entry.prefix
                ),
            )
        })?;
        q::delete_whitelist(tx, entry_id)?;
        Ok::<_, Error>((entry, fresh))
    })?;
    pools.lock().insert(pool_id, fresh);
    Ok(entry)
}

/// A new allocator for `pool` over `space` holding the pool's current allocations.
fn rebuilt(
    pools: &Pools,
    pool: &PoolRow,
    space: &[Ipv6Net],
) -> std::result::Result<alloc::Allocator, Ipv6Net> {
    let map = pools.lock();
    rebuild(
        pool,
        space,
        map.get(&pool.id).into_iter().flat_map(|a| a.prefixes()),
    )
}

#[cfg(test)]
mod tests;
