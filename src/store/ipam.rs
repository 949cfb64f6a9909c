//! Queries on `ipv6_pools`, `ipv6_allocations` and `ipv6_whitelist`. Prefixes are stored as
//! canonical text and come back parsed ([`Ipv6Net`]). Validation, the overlap rules and the
//! allocator live in `crate::ipv6`.

use super::table::{self, bad, columns, parsed, set, Set};
use super::{StoreError, StoreResult};
use ipnet::Ipv6Net;
use rusqlite::{params, Connection, OptionalExtension, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolStatus {
    Active,
    Disabled,
}

impl PoolStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PoolStatus::Active => "active",
            PoolStatus::Disabled => "disabled",
        }
    }
}

impl std::str::FromStr for PoolStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<PoolStatus, ()> {
        match s {
            "active" => Ok(PoolStatus::Active),
            "disabled" => Ok(PoolStatus::Disabled),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PoolRow {
    pub id: i64,
    pub name: String,
    pub prefix: Ipv6Net,
    /// The size handed out when a request names none.
    pub prefix_length: u8,
    /// The sizes a request may ask for (`min_prefix_length` ≤ `max_prefix_length`).
    pub min_prefix_length: u8,
    pub max_prefix_length: u8,
    pub description: Option<String>,
    pub status: PoolStatus,
    pub auto_announce_bgp: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a create or an update of a pool writes (updates merge first; the prefix is written
/// once, on insert).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolFields {
    pub name: String,
    pub prefix: Ipv6Net,
    pub prefix_length: u8,
    pub min_prefix_length: u8,
    pub max_prefix_length: u8,
    pub description: Option<String>,
    pub status: PoolStatus,
    pub auto_announce_bgp: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AllocationRow {
    pub id: i64,
    pub pool_id: i64,
    pub prefix: Ipv6Net,
    /// The WireGuard client the prefix is routed to, if any.
    pub client_id: Option<i64>,
    pub client_name: Option<String>,
    pub description: Option<String>,
    pub auto_announce: bool,
    pub allocated_at: i64,
}

/// What an allocation writes.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocationFields {
    pub pool_id: i64,
    pub prefix: Ipv6Net,
    pub client_id: Option<i64>,
    pub client_name: Option<String>,
    pub description: Option<String>,
    pub auto_announce: bool,
}

#[derive(Debug, Default, Clone)]
pub struct AllocationFilter {
    pub pool_id: Option<i64>,
    pub client_id: Option<i64>,
    /// Exact, case-insensitive.
    pub client_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WhitelistRow {
    pub id: i64,
    pub pool_id: i64,
    pub prefix: Ipv6Net,
    pub description: Option<String>,
    pub created_at: i64,
}

// ---- row mapping ----

columns! { pool_col: id, name, prefix, prefix_length, min_prefix_length, max_prefix_length,
description, status, auto_announce_bgp, created_at, updated_at }
use pool_col::LIST as POOL_COLUMNS;

fn pool_from_row(r: &Row<'_>) -> rusqlite::Result<PoolRow> {
    use pool_col as c;
    let status: String = r.get(c::status)?;
    Ok(PoolRow {
        id: r.get(c::id)?,
        name: r.get(c::name)?,
        prefix: parsed(r, c::prefix)?,
        prefix_length: r.get(c::prefix_length)?,
        min_prefix_length: r.get(c::min_prefix_length)?,
        max_prefix_length: r.get(c::max_prefix_length)?,
        description: r.get(c::description)?,
        status: status
            .parse()
            .map_err(|_| bad(c::status, format!("malformed status {status:?}")))?,
        auto_announce_bgp: r.get(c::auto_announce_bgp)?,
        created_at: r.get(c::created_at)?,
        updated_at: r.get(c::updated_at)?,
    })
}

/// The columns an update of a pool writes, with their values (an insert adds the prefix).
fn pool_written(f: &PoolFields) -> Vec<Set<'_>> {
    vec![
        set("name", &f.name),
        set("prefix_length", f.prefix_length),
        set("min_prefix_length", f.min_prefix_length),
        set("max_prefix_length", f.max_prefix_length),
        set("description", &f.description),
        set("status", f.status.as_str()),
        set("auto_announce_bgp", f.auto_announce_bgp),
    ]
}

columns! { allocation_col: id, pool_id, prefix, client_id, client_name, description, auto_announce,
allocated_at }
use allocation_col::LIST as ALLOCATION_COLUMNS;

fn allocation_from_row(r: &Row<'_>) -> rusqlite::Result<AllocationRow> {
    use allocation_col as c;
    Ok(AllocationRow {
        id: r.get(c::id)?,
        pool_id: r.get(c::pool_id)?,
        prefix: parsed(r, c::prefix)?,
        client_id: r.get(c::client_id)?,
        client_name: r.get(c::client_name)?,
        description: r.get(c::description)?,
        auto_announce: r.get(c::auto_announce)?,
        allocated_at: r.get(c::allocated_at)?,
    })
}

columns! { whitelist_col: id, pool_id, prefix, description, created_at }
use whitelist_col::LIST as WHITELIST_COLUMNS;

fn whitelist_from_row(r: &Row<'_>) -> rusqlite::Result<WhitelistRow> {
    use whitelist_col as c;
    Ok(WhitelistRow {
        id: r.get(c::id)?,
        pool_id: r.get(c::pool_id)?,
        prefix: parsed(r, c::prefix)?,
        description: r.get(c::description)?,
        created_at: r.get(c::created_at)?,
    })
}

/// A UNIQUE violation as a conflict on the column SQLite names last; the domain checks
/// these first with friendlier messages, so this is the backstop.
fn unique_violation(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, Some(msg))
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            let field = msg.rsplit(['.', ' ']).next().unwrap_or("id").to_string();
            let message = format!("{field} is already in use");
            StoreError::Conflict { field, message }
        }
        e => StoreError::Sqlite(e),
    }
}

// ---- pools ----

pub fn insert_pool(conn: &Connection, f: &PoolFields, now: i64) -> StoreResult<PoolRow> {
    let mut sets = vec![set("prefix", f.prefix.to_string())];
    sets.extend(pool_written(f));
    sets.extend([set("created_at", now), set("updated_at", now)]);
    table::insert(conn, "ipv6_pools", &sets).map_err(unique_violation)?;
    get_pool(conn, conn.last_insert_rowid())?.ok_or(StoreError::NotFound("pool"))
}

pub fn get_pool(conn: &Connection, id: i64) -> StoreResult<Option<PoolRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {POOL_COLUMNS} FROM ipv6_pools WHERE id = ?1"
        ))?
        .query_row([id], pool_from_row)
        .optional()?)
}

/// Every pool, by id (a router has a handful).
pub fn all_pools(conn: &Connection) -> StoreResult<Vec<PoolRow>> {
    super::table::rows(
        conn,
        &format!("SELECT {POOL_COLUMNS} FROM ipv6_pools ORDER BY id"),
        [],
        pool_from_row,
    )
}

/// One page of pools, each with its number of whitelist entries, and the total.
pub fn list_pools(
    conn: &Connection,
    limit: u32,
    offset: u64,
) -> StoreResult<(Vec<(PoolRow, u64)>, u64)> {
    let total: u64 = conn.query_row("SELECT count(*) FROM ipv6_pools", [], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {POOL_COLUMNS}, \
         (SELECT count(*) FROM ipv6_whitelist w WHERE w.pool_id = ipv6_pools.id) \
         FROM ipv6_pools ORDER BY id LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = stmt
        .query_map(params![limit, offset as i64], |r| {
            Ok((pool_from_row(r)?, r.get::<_, u64>(pool_col::COUNT)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total))
}

/// Writes every field of `f` but the prefix.
pub fn update_pool(conn: &Connection, id: i64, f: &PoolFields, now: i64) -> StoreResult<PoolRow> {
    let mut sets = pool_written(f);
    sets.push(set("updated_at", now));
    let n = table::update(conn, "ipv6_pools", id, &sets).map_err(unique_violation)?;
    if n == 0 {
        return Err(StoreError::NotFound("pool"));
    }
    get_pool(conn, id)?.ok_or(StoreError::NotFound("pool"))
}

/// Deletes the pool, its allocations and its whitelist (explicitly, so it does not depend
/// on the connection having foreign keys on).
pub fn delete_pool(conn: &Connection, id: i64) -> StoreResult<()> {
    conn.execute("DELETE FROM ipv6_allocations WHERE pool_id = ?1", [id])?;
    conn.execute("DELETE FROM ipv6_whitelist WHERE pool_id = ?1", [id])?;
    if conn.execute("DELETE FROM ipv6_pools WHERE id = ?1", [id])? == 0 {
        return Err(StoreError::NotFound("pool"));
    }
    Ok(())
}

// ---- allocations ----

pub fn insert_allocation(
    conn: &Connection,
    f: &AllocationFields,
    now: i64,
) -> StoreResult<AllocationRow> {
    let sets = [
        set("pool_id", f.pool_id),
        set("prefix", f.prefix.to_string()),
        set("client_id", f.client_id),
        set("client_name", &f.client_name),
        set("description", &f.description),
        set("auto_announce", f.auto_announce),
        set("allocated_at", now),
    ];
    table::insert(conn, "ipv6_allocations", &sets).map_err(unique_violation)?;
    get_allocation(conn, conn.last_insert_rowid())?.ok_or(StoreError::NotFound("allocation"))
}

pub fn get_allocation(conn: &Connection, id: i64) -> StoreResult<Option<AllocationRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ALLOCATION_COLUMNS} FROM ipv6_allocations WHERE id = ?1"
        ))?
        .query_row([id], allocation_from_row)
        .optional()?)
}

/// The allocation of WireGuard client `client_id` in `pool_id`, if any.
pub fn allocation_of_client(
    conn: &Connection,
    pool_id: i64,
    client_id: i64,
) -> StoreResult<Option<AllocationRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ALLOCATION_COLUMNS} FROM ipv6_allocations \
             WHERE pool_id = ?1 AND client_id = ?2"
        ))?
        .query_row(params![pool_id, client_id], allocation_from_row)
        .optional()?)
}

/// The allocation named `client_name` (case-insensitive) in `pool_id` that is not linked
/// to a WireGuard client, if any.
pub fn allocation_of_name(
    conn: &Connection,
    pool_id: i64,
    client_name: &str,
) -> StoreResult<Option<AllocationRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ALLOCATION_COLUMNS} FROM ipv6_allocations \
             WHERE pool_id = ?1 AND client_id IS NULL AND client_name = ?2"
        ))?
        .query_row(params![pool_id, client_name], allocation_from_row)
        .optional()?)
}

/// Every allocation linked to one of these WireGuard clients.
pub fn allocations_of_clients(
    conn: &Connection,
    client_ids: &[i64],
) -> StoreResult<Vec<AllocationRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ALLOCATION_COLUMNS} FROM ipv6_allocations WHERE client_id = ?1 ORDER BY id"
    ))?;
    let mut out = Vec::new();
    for id in client_ids {
        let rows = stmt.query_map([id], allocation_from_row)?;
        for r in rows {
            out.push(r?);
        }
    }
    Ok(out)
}

/// The allocations of `pool_id` linked to a WireGuard client.
pub fn linked_allocations_of_pool(
    conn: &Connection,
    pool_id: i64,
) -> StoreResult<Vec<AllocationRow>> {
    super::table::rows(
        conn,
        &format!(
            "SELECT {ALLOCATION_COLUMNS} FROM ipv6_allocations \
         WHERE pool_id = ?1 AND client_id IS NOT NULL ORDER BY id"
        ),
        [pool_id],
        allocation_from_row,
    )
}

/// Calls `f(pool_id, prefix)` for every allocation, without collecting them (a pool may
/// hold a million).
pub fn each_allocation(conn: &Connection, mut f: impl FnMut(i64, Ipv6Net)) -> StoreResult<()> {
    let mut stmt = conn.prepare("SELECT pool_id, prefix FROM ipv6_allocations ORDER BY id")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        f(r.get(0)?, parsed(r, 1)?);
    }
    Ok(())
}

/// Allocations to announce over BGP: those with `auto_announce` in pools with
/// `auto_announce_bgp`, as (pool id, allocation id, prefix).
pub fn announced_allocations(conn: &Connection) -> StoreResult<Vec<(i64, i64, Ipv6Net)>> {
    let mut stmt = conn.prepare(
        "SELECT a.pool_id, a.id, a.prefix FROM ipv6_allocations a \
         JOIN ipv6_pools p ON p.id = a.pool_id \
         WHERE a.auto_announce = 1 AND p.auto_announce_bgp = 1 ORDER BY a.id",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push((r.get(0)?, r.get(1)?, parsed(r, 2)?));
    }
    Ok(out)
}

/// One page of allocations matching `filter`, and the total.
pub fn list_allocations(
    conn: &Connection,
    filter: &AllocationFilter,
    limit: u32,
    offset: u64,
) -> StoreResult<(Vec<AllocationRow>, u64)> {
    let cond = "(?1 IS NULL OR pool_id = ?1) AND (?2 IS NULL OR client_id = ?2) \
                AND (?3 IS NULL OR client_name = ?3)";
    let args = params![filter.pool_id, filter.client_id, filter.client_name];
    let total: u64 = conn.query_row(
        &format!("SELECT count(*) FROM ipv6_allocations WHERE {cond}"),
        args,
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ALLOCATION_COLUMNS} FROM ipv6_allocations WHERE {cond} \
         ORDER BY id LIMIT ?4 OFFSET ?5"
    ))?;
    let rows = stmt
        .query_map(
            params![
                filter.pool_id,
                filter.client_id,
                filter.client_name,
                limit,
                offset as i64
            ],
            allocation_from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total))
}

pub fn delete_allocation(conn: &Connection, id: i64) -> StoreResult<()> {
    if conn.execute("DELETE FROM ipv6_allocations WHERE id = ?1", [id])? == 0 {
        return Err(StoreError::NotFound("allocation"));
    }
    Ok(())
}

// ---- whitelist ----

pub fn whitelist_of(conn: &Connection, pool_id: i64) -> StoreResult<Vec<WhitelistRow>> {
    super::table::rows(
        conn,
        &format!("SELECT {WHITELIST_COLUMNS} FROM ipv6_whitelist WHERE pool_id = ?1 ORDER BY id"),
        [pool_id],
        whitelist_from_row,
    )
}

/// Every whitelist entry of every pool (for start-up).
pub fn all_whitelist(conn: &Connection) -> StoreResult<Vec<WhitelistRow>> {
    super::table::rows(
        conn,
        &format!("SELECT {WHITELIST_COLUMNS} FROM ipv6_whitelist ORDER BY id"),
        [],
        whitelist_from_row,
    )
}

pub fn insert_whitelist(
    conn: &Connection,
    pool_id: i64,
    prefix: Ipv6Net,
    description: Option<&str>,
    now: i64,
) -> StoreResult<WhitelistRow> {
    let sets = [
        set("pool_id", pool_id),
        set("prefix", prefix.to_string()),
        set("description", description),
        set("created_at", now),
    ];
    table::insert(conn, "ipv6_whitelist", &sets).map_err(unique_violation)?;
    let id = conn.last_insert_rowid();
    Ok(conn.query_row(
        &format!("SELECT {WHITELIST_COLUMNS} FROM ipv6_whitelist WHERE id = ?1"),
        [id],
        whitelist_from_row,
    )?)
}

pub fn delete_whitelist(conn: &Connection, id: i64) -> StoreResult<()> {
    if conn.execute("DELETE FROM ipv6_whitelist WHERE id = ?1", [id])? == 0 {
        return Err(StoreError::NotFound("whitelist entry"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        crate::store::test_db()
    }

    fn net(s: &str) -> Ipv6Net {
        s.parse().expect("net")
    }

    fn pool(name: &str, prefix: &str) -> PoolFields {
        PoolFields {
            name: name.into(),
            prefix: net(prefix),
            prefix_length: 64,
            min_prefix_length: 56,
            max_prefix_length: 64,
            description: Some("d".into()),
            status: PoolStatus::Active,
            auto_announce_bgp: true,
        }
    }

    fn alloc(pool_id: i64, prefix: &str, name: Option<&str>) -> AllocationFields {
        AllocationFields {
            pool_id,
            prefix: net(prefix),
            client_id: None,
            client_name: name.map(Into::into),
            description: None,
            auto_announce: false,
        }
    }

    fn conflict_field(e: StoreError) -> String {
        match e {
            StoreError::Conflict { field, .. } => field,
            e => panic!("not a conflict: {e:?}"),
        }
    }

    #[test]
    fn pool_round_trip_and_uniques() {
        let c = db();
        let p = insert_pool(&c, &pool("Main", "2001:db8::/32"), 5).expect("insert");
        assert_eq!(get_pool(&c, p.id).expect("get"), Some(p.clone()));
        assert_eq!(
            (p.prefix, p.status, p.auto_announce_bgp, p.created_at),
            (net("2001:db8::/32"), PoolStatus::Active, true, 5)
        );
        let dup = |f: PoolFields| conflict_field(insert_pool(&c, &f, 1).unwrap_err());
        assert_eq!(dup(pool("MAIN", "2001:db9::/32")), "name");
        assert_eq!(dup(pool("b", "2001:db8::/32")), "prefix");
        let mut f = pool("renamed", "2001:db9::/32");
        f.status = PoolStatus::Disabled;
        let up = update_pool(&c, p.id, &f, 9).expect("update");
        assert_eq!(
            (up.name.as_str(), up.prefix, up.status, up.updated_at),
            ("renamed", net("2001:db8::/32"), PoolStatus::Disabled, 9),
            "the prefix is never rewritten"
        );
        insert_whitelist(&c, p.id, net("2001:db8:1::/48"), Some("w"), 3).expect("wl");
        let (rows, total) = list_pools(&c, 10, 0).expect("list");
        assert_eq!((rows[0].1, total), (1, 1));
        assert!(matches!(
            update_pool(&c, 99, &f, 1),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn allocations_filters_and_cascade() {
        let c = db();
        let p = insert_pool(&c, &pool("a", "2001:db8::/32"), 1).expect("pool");
        let q = insert_pool(&c, &pool("b", "2001:db9::/32"), 1).expect("pool");
        let a1 =
            insert_allocation(&c, &alloc(p.id, "2001:db8::/64", Some("Alice")), 2).expect("a1");
        insert_allocation(&c, &alloc(p.id, "2001:db8:0:1::/64", Some("bob")), 2).expect("a2");
        insert_allocation(&c, &alloc(q.id, "2001:db9::/64", Some("alice")), 2)
            .expect("names are per pool");
        assert_eq!(
            conflict_field(
                insert_allocation(&c, &alloc(p.id, "2001:db8:0:2::/64", Some("ALICE")), 2)
                    .unwrap_err()
            ),
            "client_name"
        );
        assert_eq!(
            conflict_field(
                insert_allocation(&c, &alloc(p.id, "2001:db8::/64", None), 2).unwrap_err()
            ),
            "prefix"
        );
        assert_eq!(
            allocation_of_name(&c, p.id, "alice").expect("find"),
            Some(a1.clone())
        );
        let page = |f: AllocationFilter| list_allocations(&c, &f, 10, 0).expect("list");
        assert_eq!(page(AllocationFilter::default()).1, 3);
        let (rows, total) = page(AllocationFilter {
            client_name: Some("ALICE".into()),
            ..Default::default()
        });
        assert_eq!((rows.len(), total), (2, 2));
        let (_, total) = page(AllocationFilter {
            pool_id: Some(p.id),
            ..Default::default()
        });
        assert_eq!(total, 2);
        let mut seen = Vec::new();
        each_allocation(&c, |pool, prefix| seen.push((pool, prefix))).expect("each");
        assert_eq!(seen.len(), 3);
        delete_allocation(&c, a1.id).expect("delete");
        assert!(matches!(
            delete_allocation(&c, a1.id),
            Err(StoreError::NotFound(_))
        ));
        insert_whitelist(&c, p.id, net("2001:db8::/48"), None, 1).expect("wl");
        delete_pool(&c, p.id).expect("delete pool");
        assert_eq!(page(AllocationFilter::default()).1, 1);
        assert!(all_whitelist(&c).expect("wl").is_empty());
    }
}
