//! IPv6 prefix pools: delegating a routed prefix to every client.
//!
//! - [`alloc`]: the pure allocator (lowest free aligned prefix, exact counts, O(log n)).
//! - [`model`]: request bodies, pool sizes, overlap rules, allocator errors as API errors.
//! - [`view`]: the JSON views, counts included.
//! - `state`: [`Pools`], one allocator per pool in memory, rebuilt from the tables at
//!   start-up.
//! - `link`: allocations for a WireGuard client are also its `routed_prefixes`.
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
pub mod model;
pub mod rpki;
mod state;
pub mod view;

pub use crate::store::ipam::{AllocationFilter, AllocationRow, PoolRow, PoolStatus, WhitelistRow};
pub use crate::wireguard::delegated::{release_for_clients, ClientChange};
pub use model::*;
pub use state::{Pools, Released};
pub use view::*;

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::input::Page;
use crate::store::ipam::{self as q, AllocationFields};
use crate::store::wireguard as wgq;
use crate::store::StoreError;
use ipnet::Ipv6Net;
use rusqlite::{Connection, Transaction};

/// Runs `f` on the database thread with the pools; its domain errors pass through.
async fn run<R, F>(app: &App, f: F) -> ApiResult<R>
where
    R: Send + 'static,
    F: FnOnce(&mut Connection, &Pools) -> ApiResult<R> + Send + 'static,
{
    let pools = app.pools.clone();
    app.store.call(move |c| Ok(f(c, &pools))).await?
}

fn begin(c: &mut Connection) -> ApiResult<Transaction<'_>> {
    c.transaction().map_err(|e| StoreError::from(e).into())
}

fn commit(tx: Transaction<'_>) -> ApiResult<()> {
    tx.commit().map_err(|e| StoreError::from(e).into())
}

fn pool_or_404(c: &Connection, id: i64) -> ApiResult<PoolRow> {
    Ok(q::get_pool(c, id)?.ok_or(StoreError::NotFound("pool"))?)
}

fn whitelist_prefixes(c: &Connection, pool_id: i64) -> ApiResult<Vec<Ipv6Net>> {
    Ok(q::whitelist_of(c, pool_id)?
        .into_iter()
        .map(|w| w.prefix)
        .collect())
}

fn view(pools: &Pools, row: PoolRow, whitelist_count: u64) -> PoolView {
    let counts = pools.counts(row.id);
    PoolView::new(row, whitelist_count, counts)
}

// ---- pools ----

pub async fn create_pool(app: &App, input: NewPool) -> ApiResult<PoolView> {
    let now = crate::time::now();
    run(app, move |c, pools| create_pool_in(c, pools, input, now)).await
}

fn create_pool_in(
    c: &mut Connection,
    pools: &Pools,
    input: NewPool,
    now: i64,
) -> ApiResult<PoolView> {
    let tx = begin(c)?;
    let f = input.validate()?;
    let others = q::all_pools(&tx)?;
    check_pool_name(&f.name, None, &others)?;
    check_pool_space(
        f.prefix,
        &others,
        &wgq::all_servers(&tx)?,
        &wgq::all_routed(&tx)?,
    )?;
    let row = q::insert_pool(&tx, &f, now)?;
    let s = Sizes::of(&row);
    let fresh = alloc::Allocator::new(&[row.prefix], s.unit, s.lo, s.hi);
    commit(tx)?;
    pools.lock().insert(row.id, fresh);
    Ok(view(pools, row, 0))
}

pub async fn get_pool(app: &App, id: i64) -> ApiResult<PoolView> {
    run(app, move |c, pools| {
        let row = pool_or_404(c, id)?;
        let wl = q::whitelist_of(c, id)?.len() as u64;
        Ok(view(pools, row, wl))
    })
    .await
}

/// One page of pools and the total.
pub async fn list_pools(app: &App, page: Page) -> ApiResult<(Vec<PoolView>, u64)> {
    run(app, move |c, pools| {
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
pub async fn monitor(app: &App) -> ApiResult<PoolsMonitor> {
    run(app, move |c, pools| {
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

/// Name, description, status, `auto_announce_bgp` change freely; the sizes only while the
/// pool holds no allocation (they would no longer fit); the prefix never.
pub async fn update_pool(app: &App, id: i64, changes: PoolChanges) -> ApiResult<PoolView> {
    let now = crate::time::now();
    run(app, move |c, pools| {
        update_pool_in(c, pools, id, changes, now)
    })
    .await
}

fn update_pool_in(
    c: &mut Connection,
    pools: &Pools,
    id: i64,
    changes: PoolChanges,
    now: i64,
) -> ApiResult<PoolView> {
    let tx = begin(c)?;
    let current = pool_or_404(&tx, id)?;
    let f = changes.apply(&current)?;
    check_pool_name(&f.name, Some(id), &q::all_pools(&tx)?)?;
    let wl = whitelist_prefixes(&tx, id)?;
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
            return Err(ApiError::conflict(
                "prefix_length",
                format!(
                    "pool {:?} has {held} allocations; its sizes can change only while it has \
                     none",
                    current.name
                ),
            ));
        }
        let space = regions(&current, &wl);
        Some(alloc::Allocator::new(
            &space, sizes.unit, sizes.lo, sizes.hi,
        ))
    };
    let row = q::update_pool(&tx, id, &f, now)?;
    commit(tx)?;
    if let Some(a) = fresh {
        pools.lock().insert(id, a);
    }
    Ok(view(pools, row, wl.len() as u64))
}

/// Deletes a pool; with `force` also its allocations (taking them off their WireGuard
/// clients, whose before/after rows are returned for the running devices). Without
/// `force` a pool with allocations is a 409. Returns the number released.
pub async fn delete_pool(app: &App, id: i64, force: bool) -> ApiResult<(u64, Vec<ClientChange>)> {
    let now = crate::time::now();
    run(app, move |c, pools| {
        delete_pool_in(c, pools, id, force, now)
    })
    .await
}

fn delete_pool_in(
    c: &mut Connection,
    pools: &Pools,
    id: i64,
    force: bool,
    now: i64,
) -> ApiResult<(u64, Vec<ClientChange>)> {
    let tx = begin(c)?;
    let pool = pool_or_404(&tx, id)?;
    let held = pools.counts(id).allocations;
    if held > 0 && !force {
        return Err(ApiError::conflict(
            "force",
            format!(
                "pool {:?} has {held} allocations; use ?force=true to release them",
                pool.name
            ),
        ));
    }
    let mut changes = Vec::new();
    for a in q::linked_allocations_of_pool(&tx, id)? {
        if let Some(client) = a.client_id {
            changes.extend(crate::wireguard::delegated::unroute(
                &tx, client, a.prefix, now,
            )?);
        }
    }
    q::delete_pool(&tx, id)?;
    commit(tx)?;
    pools.lock().remove(&id);
    Ok((held, changes))
}

// ---- allocations ----

/// Where an allocation request names its pool: a missing pool is a 404 in the path, a
/// 422 on `pool_id` in the body.
#[derive(Debug, Clone, Copy)]
pub enum PoolRef {
    Path(i64),
    Body(i64),
}

/// The result of [`allocate`].
#[derive(Debug)]
pub struct Allocated {
    pub allocation: AllocationRow,
    /// `false`: the client already had this allocation (the request is idempotent).
    pub created: bool,
    /// The WireGuard client it was routed to, before and after.
    pub client: Option<ClientChange>,
}

/// Hands out the lowest free prefix of the requested size (or the requested prefix) to a
/// client; the same client (by `client_id`, else by `client_name`) asking again gets its
/// existing allocation.
pub async fn allocate(app: &App, pool: PoolRef, input: AllocationInput) -> ApiResult<Allocated> {
    let now = crate::time::now();
    run(app, move |c, pools| allocate_in(c, pools, pool, input, now)).await
}

fn allocate_in(
    c: &mut Connection,
    pools: &Pools,
    pool: PoolRef,
    input: AllocationInput,
    now: i64,
) -> ApiResult<Allocated> {
    let tx = begin(c)?;
    let pool = match pool {
        PoolRef::Path(id) => pool_or_404(&tx, id)?,
        PoolRef::Body(id) => q::get_pool(&tx, id)?.ok_or_else(|| {
            ApiError::validation("pool_id", format!("there is no pool with id {id}"))
        })?,
    };
    let client = match input.client_id {
        Some(id) => Some(wgq::get_client(&tx, id)?.ok_or_else(|| {
            ApiError::validation(
                "client_id",
                format!("there is no WireGuard client with id {id}"),
            )
        })?),
        None => None,
    };
    let existing = match (&client, &input.client_name) {
        (Some(cl), _) => q::allocation_of_client(&tx, pool.id, cl.id)?,
        (None, Some(name)) => q::allocation_of_name(&tx, pool.id, name)?,
        (None, None) => None,
    };
    if let Some(a) = existing {
        check_same_request(&a, &input, &pool)?;
        return Ok(Allocated {
            allocation: a,
            created: false,
            client: None,
        });
    }
    if pool.status == PoolStatus::Disabled {
        return Err(ApiError::conflict(
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
    let mut map = pools.lock();
    state::with_allocator(&mut map, pool.id, |a| {
        let taken = match input.prefix {
            Some(p) => a.take(p).map(|()| p),
            None => a.allocate(len),
        };
        let prefix = taken.map_err(|e| {
            let field = if input.prefix.is_some() {
                "prefix"
            } else {
                "prefix_length"
            };
            let whitelisted = q::whitelist_of(&tx, pool.id).is_ok_and(|w| !w.is_empty());
            alloc_error(e, &pool, field, whitelisted)
        })?;
        let fields = AllocationFields { prefix, ..fields };
        // Undo: the prefix goes back unless the transaction commits.
        record(tx, &fields, client, now).inspect_err(|_| {
            if let Err(e) = a.release(prefix) {
                log::error!("pool {:?}: undoing {prefix}: {e}", pool.name);
            }
        })
    })
}

/// Writes the allocation (and the client's route) and commits.
fn record(
    tx: Transaction<'_>,
    f: &AllocationFields,
    client: Option<wgq::ClientRow>,
    now: i64,
) -> ApiResult<Allocated> {
    let allocation = q::insert_allocation(&tx, f, now)?;
    let client = client
        .map(|c| crate::wireguard::delegated::route(&tx, c, f.prefix, now))
        .transpose()?;
    commit(tx)?;
    Ok(Allocated {
        allocation,
        created: true,
        client,
    })
}

/// Asking again for a different prefix or size than the one held is a conflict, not a
/// silent answer with the old one.
fn check_same_request(a: &AllocationRow, input: &AllocationInput, pool: &PoolRow) -> ApiResult<()> {
    let held = a.prefix;
    let differs = match (input.prefix, input.prefix_length) {
        (Some(p), _) => (p != held).then_some("prefix"),
        (None, Some(l)) => (l != held.prefix_len()).then_some("prefix_length"),
        (None, None) => None,
    };
    match differs {
        Some(field) => Err(ApiError::conflict(
            field,
            format!(
                "this client already has {held} from pool {:?}; release it first",
                pool.name
            ),
        )),
        None => Ok(()),
    }
}

/// Releases an allocation of `pool_id` (taking it off its WireGuard client); returns it
/// and the client's change.
pub async fn release(
    app: &App,
    pool_id: i64,
    allocation_id: i64,
) -> ApiResult<(AllocationRow, Option<ClientChange>)> {
    let now = crate::time::now();
    run(app, move |c, pools| {
        let tx = begin(c)?;
        let pool = pool_or_404(&tx, pool_id)?;
        let a = q::get_allocation(&tx, allocation_id)?
            .filter(|a| a.pool_id == pool.id)
            .ok_or(StoreError::NotFound("allocation"))?;
        let change = match a.client_id {
            Some(client) => crate::wireguard::delegated::unroute(&tx, client, a.prefix, now)?,
            None => None,
        };
        q::delete_allocation(&tx, a.id)?;
        commit(tx)?;
        pools.apply(Released(vec![(pool.id, a.prefix)]));
        Ok((a, change))
    })
    .await
}

/// One page of allocations matching `filter`, and the total.
pub async fn list_allocations(
    app: &App,
    filter: AllocationFilter,
    page: Page,
) -> ApiResult<(Vec<AllocationRow>, u64)> {
    Ok(app
        .store
        .call(move |c| q::list_allocations(c, &filter, page.size, page.offset()))
        .await?)
}

// ---- whitelist ----

pub async fn whitelist(app: &App, pool_id: i64) -> ApiResult<Vec<WhitelistRow>> {
    run(app, move |c, _| {
        pool_or_404(c, pool_id)?;
        Ok(q::whitelist_of(c, pool_id)?)
    })
    .await
}

/// Adds an entry: from now on the pool hands out only prefixes inside its whitelist, so
/// the first entry must cover every existing allocation.
pub async fn add_whitelist(
    app: &App,
    pool_id: i64,
    input: NewWhitelistEntry,
) -> ApiResult<WhitelistRow> {
    let now = crate::time::now();
    run(app, move |c, pools| {
        let tx = begin(c)?;
        let pool = pool_or_404(&tx, pool_id)?;
        let prefix = parse_prefix("prefix", &input.prefix)?;
        let description = crate::wireguard::validate_description(input.description)?;
        let entries = q::whitelist_of(&tx, pool_id)?;
        check_whitelist_entry(&pool, prefix, &entries)?;
        let mut space: Vec<Ipv6Net> = entries.iter().map(|e| e.prefix).collect();
        space.push(prefix);
        let fresh = rebuilt(pools, &pool, &space).map_err(|p| {
            ApiError::conflict(
                "prefix",
                format!(
                    "allocation {p} would be outside the whitelist; a pool's whitelist must \
                     cover all of its allocations"
                ),
            )
        })?;
        let row = q::insert_whitelist(&tx, pool_id, prefix, description.as_deref(), now)?;
        commit(tx)?;
        pools.lock().insert(pool_id, fresh);
        Ok(row)
    })
    .await
}

/// Removes an entry that holds no allocation (the last one opens the whole pool again).
pub async fn remove_whitelist(app: &App, pool_id: i64, entry_id: i64) -> ApiResult<WhitelistRow> {
    run(app, move |c, pools| {
        let tx = begin(c)?;
        let pool = pool_or_404(&tx, pool_id)?;
        let entries = q::whitelist_of(&tx, pool_id)?;
        let entry = entries
            .iter()
            .find(|e| e.id == entry_id)
            .cloned()
            .ok_or(StoreError::NotFound("whitelist entry"))?;
        let rest: Vec<Ipv6Net> = entries
            .iter()
            .filter(|e| e.id != entry_id)
            .map(|e| e.prefix)
            .collect();
        let fresh = rebuilt(pools, &pool, &regions(&pool, &rest)).map_err(|p| {
            ApiError::conflict(
                "entry_id",
                format!(
                    "whitelist entry {} still holds allocation {p}; release it first",
                    entry.prefix
                ),
            )
        })?;
        q::delete_whitelist(&tx, entry_id)?;
        commit(tx)?;
        pools.lock().insert(pool_id, fresh);
        Ok(entry)
    })
    .await
}

/// A new allocator for `pool` over `space` holding the pool's current allocations.
fn rebuilt(pools: &Pools, pool: &PoolRow, space: &[Ipv6Net]) -> Result<alloc::Allocator, Ipv6Net> {
    let map = pools.lock();
    rebuild(
        pool,
        space,
        map.get(&pool.id).into_iter().flat_map(|a| a.prefixes()),
    )
}

#[cfg(test)]
mod tests;
