//! What the BGP speaker should originate from the pools: every active pool with
//! `auto_announce_bgp` as an aggregate, and its allocations marked `auto_announce` as
//! more-specifics. RPKI is checked by each BGP session for the origin AS it sends
//! (`crate::bgp::exports::withheld`): sessions may speak as different ASes. The BGP side
//! reads [`originations`]; the decision of what to list is the pure [`plan`].

use crate::ipam::{PoolRow, PoolStatus};
use crate::store::ipam as q;
use crate::store::{Store, StoreResult};
use ipnet::Ipv6Net;

/// Where an origination comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Pool { pool_id: i64 },
    Allocation { pool_id: i64, allocation_id: i64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Origination {
    pub prefix: Ipv6Net,
    pub source: Source,
}

/// The originations for `pools` and their announced `allocations` (pool id, allocation
/// id, prefix).
pub fn plan(pools: &[PoolRow], allocations: &[(i64, i64, Ipv6Net)]) -> Vec<Origination> {
    let announced = |id: i64| {
        pools
            .iter()
            .any(|p| p.id == id && p.auto_announce_bgp && p.status == PoolStatus::Active)
    };
    let mut out = Vec::new();
    for pool in pools.iter().filter(|p| announced(p.id)) {
        out.push(Origination {
            prefix: pool.prefix,
            source: Source::Pool { pool_id: pool.id },
        });
    }
    for (pool_id, allocation_id, prefix) in allocations {
        if !announced(*pool_id) {
            continue;
        }
        out.push(Origination {
            prefix: *prefix,
            source: Source::Allocation {
                pool_id: *pool_id,
                allocation_id: *allocation_id,
            },
        });
    }
    out
}

/// The current originations, read from the database.
pub async fn originations(store: &Store) -> StoreResult<Vec<Origination>> {
    let (pools, allocations) = store
        .call(|c| Ok((q::all_pools(c)?, q::announced_allocations(c)?)))
        .await?;
    Ok(plan(&pools, &allocations))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(id: i64, prefix: &str, announce: bool, status: PoolStatus) -> PoolRow {
        PoolRow {
            id,
            name: format!("p{id}"),
            prefix: prefix.parse().expect("prefix"),
            prefix_length: 64,
            min_prefix_length: 64,
            max_prefix_length: 64,
            description: None,
            status,
            auto_announce_bgp: announce,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn n(s: &str) -> Ipv6Net {
        s.parse().expect("net")
    }

    #[test]
    fn pools_and_allocations_that_announce() {
        let pools = [
            pool(1, "2001:db8:100::/48", true, PoolStatus::Active),
            pool(2, "2001:db8:200::/48", false, PoolStatus::Active),
            pool(3, "2001:db8:300::/48", true, PoolStatus::Disabled),
        ];
        let allocs = [
            (1, 10, n("2001:db8:100::/64")),
            (2, 11, n("2001:db8:200::/64")),
            (3, 12, n("2001:db8:300::/64")),
        ];
        let got = plan(&pools, &allocs);
        assert_eq!(
            got,
            [
                Origination {
                    prefix: n("2001:db8:100::/48"),
                    source: Source::Pool { pool_id: 1 }
                },
                Origination {
                    prefix: n("2001:db8:100::/64"),
                    source: Source::Allocation {
                        pool_id: 1,
                        allocation_id: 10
                    }
                },
            ]
        );
    }
}
