//! What pools, allocations and whitelist entries look like through the API. Counts are
//! exact `u128`s, written as plain JSON integers (serde_json prints a `u128` as digits; do
//! not pass these views through `serde_json::Value`, which cannot hold one above 2⁶⁴).

use super::alloc::Allocator;
use crate::store::ipam::{AllocationRow, PoolRow, PoolStatus, WhitelistRow};
use serde::Serialize;

/// A pool's counts, read from its allocator, in blocks of the pool's `prefix_length`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u128,
    pub available: u128,
    /// Prefixes handed out (of any size).
    pub allocations: u64,
}

impl Counts {
    pub fn of(a: &Allocator) -> Counts {
        Counts {
            total: a.total(),
            available: a.available(),
            allocations: a.allocated() as u64,
        }
    }

    /// Blocks that are not free: `total = allocated + available`, whatever sizes were
    /// handed out (a /128 makes its /64 unavailable; a /56 takes 256 /64s).
    pub fn allocated(&self) -> u128 {
        self.total.saturating_sub(self.available)
    }
}

/// `used / total` in percent, two decimals (0 for an empty pool).
pub fn usage_percent(used: u128, total: u128) -> f64 {
    if total == 0 {
        return 0.0;
    }
    // f64 keeps ~16 significant digits: plenty for two decimals of a ratio.
    let pct = used as f64 / total as f64 * 100.0;
    (pct * 100.0).round() / 100.0
}

#[derive(Debug, Serialize)]
pub struct PoolView {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub prefix_length: u8,
    pub min_prefix_length: u8,
    pub max_prefix_length: u8,
    pub description: Option<String>,
    pub status: &'static str,
    pub auto_announce_bgp: bool,
    pub total_prefixes: u128,
    pub allocated_prefixes: u128,
    pub available_prefixes: u128,
    pub allocations_count: u64,
    pub usage_percent: f64,
    pub whitelist_count: u64,
    #[serde(serialize_with = "crate::time::ser")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::ser")]
    pub updated_at: i64,
}

impl PoolView {
    pub fn new(p: PoolRow, whitelist_count: u64, c: Counts) -> PoolView {
        PoolView {
            id: p.id,
            name: p.name,
            prefix: p.prefix.to_string(),
            prefix_length: p.prefix_length,
            min_prefix_length: p.min_prefix_length,
            max_prefix_length: p.max_prefix_length,
            description: p.description,
            status: p.status.as_str(),
            auto_announce_bgp: p.auto_announce_bgp,
            total_prefixes: c.total,
            allocated_prefixes: c.allocated(),
            available_prefixes: c.available,
            allocations_count: c.allocations,
            usage_percent: usage_percent(c.allocated(), c.total),
            whitelist_count,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// `healthy` below 80 % used, `warning` below 95 %, then `critical`; `exhausted` when
/// nothing of the default size is free; `disabled` pools hand out nothing anyway.
pub fn health(status: PoolStatus, c: &Counts) -> &'static str {
    if status == PoolStatus::Disabled {
        return "disabled";
    }
    if c.available == 0 {
        return "exhausted";
    }
    match usage_percent(c.allocated(), c.total) {
        u if u >= 95.0 => "critical",
        u if u >= 80.0 => "warning",
        _ => "healthy",
    }
}

/// A pool in `GET /monitoring/ipv6/pools`: its view plus the names
/// `api-reference.zh.md` uses (`pool_id`, `total_capacity`, `allocated`) and `health`.
#[derive(Debug, Serialize)]
pub struct PoolHealthView {
    #[serde(flatten)]
    pub pool: PoolView,
    pub pool_id: i64,
    pub total_capacity: u128,
    pub allocated: u128,
    pub health: &'static str,
}

/// Sums over all pools (each pool counts in its own `prefix_length`).
#[derive(Debug, Default, Serialize)]
pub struct PoolTotals {
    pub pools: u64,
    pub active_pools: u64,
    pub allocations: u64,
    pub total_prefixes: u128,
    pub allocated_prefixes: u128,
    pub available_prefixes: u128,
    pub usage_percent: f64,
}

#[derive(Debug, Serialize)]
pub struct PoolsMonitor {
    pub pools: Vec<PoolHealthView>,
    pub totals: PoolTotals,
}

impl PoolsMonitor {
    pub fn new(pools: Vec<(PoolRow, u64, Counts)>) -> PoolsMonitor {
        let mut t = PoolTotals::default();
        let views = pools
            .into_iter()
            .map(|(row, wl, c)| {
                t.pools += 1;
                t.active_pools += u64::from(row.status == PoolStatus::Active);
                t.allocations += c.allocations;
                t.total_prefixes = t.total_prefixes.saturating_add(c.total);
                t.allocated_prefixes = t.allocated_prefixes.saturating_add(c.allocated());
                t.available_prefixes = t.available_prefixes.saturating_add(c.available);
                let health = health(row.status, &c);
                let pool = PoolView::new(row, wl, c);
                PoolHealthView {
                    pool_id: pool.id,
                    total_capacity: pool.total_prefixes,
                    allocated: pool.allocated_prefixes,
                    health,
                    pool,
                }
            })
            .collect();
        t.usage_percent = usage_percent(t.allocated_prefixes, t.total_prefixes);
        PoolsMonitor {
            pools: views,
            totals: t,
        }
    }
}

/// An allocation with the names of both seeds (`id` and `allocation_id`).
#[derive(Debug, Serialize)]
pub struct AllocationView {
    pub id: i64,
    pub allocation_id: i64,
    pub pool_id: i64,
    pub allocated_prefix: String,
    pub prefix_length: u8,
    pub client_id: Option<i64>,
    pub client_name: Option<String>,
    pub description: Option<String>,
    /// `active`, or `released` in the answer to a release.
    pub status: &'static str,
    pub auto_announce: bool,
    #[serde(serialize_with = "crate::time::ser")]
    pub allocated_at: i64,
}

impl AllocationView {
    pub fn new(a: AllocationRow, status: &'static str) -> AllocationView {
        AllocationView {
            id: a.id,
            allocation_id: a.id,
            pool_id: a.pool_id,
            allocated_prefix: a.prefix.to_string(),
            prefix_length: a.prefix.prefix_len(),
            client_id: a.client_id,
            client_name: a.client_name,
            description: a.description,
            status,
            auto_announce: a.auto_announce,
            allocated_at: a.allocated_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct WhitelistView {
    pub id: i64,
    pub pool_id: i64,
    pub prefix: String,
    pub description: Option<String>,
    #[serde(serialize_with = "crate::time::ser")]
    pub created_at: i64,
}

impl From<WhitelistRow> for WhitelistView {
    fn from(w: WhitelistRow) -> WhitelistView {
        WhitelistView {
            id: w.id,
            pool_id: w.pool_id,
            prefix: w.prefix.to_string(),
            description: w.description,
            created_at: w.created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: PoolStatus) -> PoolRow {
        PoolRow {
            id: 7,
            name: "big".into(),
            prefix: "2001:db8::/48".parse().expect("net"),
            prefix_length: 128,
            min_prefix_length: 64,
            max_prefix_length: 128,
            description: None,
            status,
            auto_announce_bgp: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn huge_counts_are_json_integers() {
        let a = Allocator::new(&[row(PoolStatus::Active).prefix], 128, 64, 128);
        let v = PoolView::new(row(PoolStatus::Active), 0, Counts::of(&a));
        let json = serde_json::to_string(&v).expect("json");
        assert!(
            json.contains("\"total_prefixes\":1208925819614629174706176"),
            "{json}"
        );
        assert!(json.contains("\"allocated_prefixes\":0,"), "{json}");
        let m = PoolsMonitor::new(vec![(row(PoolStatus::Active), 0, Counts::of(&a))]);
        let json = serde_json::to_string(&m).expect("flattened json");
        assert!(
            json.contains("\"total_capacity\":1208925819614629174706176"),
            "{json}"
        );
        assert!(json.contains("\"health\":\"healthy\""), "{json}");
    }

    #[test]
    fn usage_and_health() {
        assert_eq!(usage_percent(0, 0), 0.0);
        assert_eq!(usage_percent(1, 3), 33.33);
        assert_eq!(usage_percent(2, 3), 66.67);
        assert_eq!(usage_percent(1, 1u128 << 80), 0.0);
        let c = |total, available| Counts {
            total,
            available,
            allocations: 0,
        };
        assert_eq!(c(4, 1).allocated(), 3);
        assert_eq!(health(PoolStatus::Active, &c(100, 21)), "healthy");
        assert_eq!(health(PoolStatus::Active, &c(100, 20)), "warning");
        assert_eq!(health(PoolStatus::Active, &c(100, 5)), "critical");
        assert_eq!(health(PoolStatus::Active, &c(100, 0)), "exhausted");
        assert_eq!(health(PoolStatus::Disabled, &c(100, 50)), "disabled");
    }
}
