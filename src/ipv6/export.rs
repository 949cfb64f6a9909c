//! What the BGP speaker should originate from the pools: every active pool with
//! `auto_announce_bgp` as an aggregate, and its allocations marked `auto_announce` as
//! more-specifics — each with its RPKI state for our AS, so the speaker can refuse to
//! announce what RPKI says is invalid. The BGP side reads [`originations`]; the decision of
//! what to list is the pure [`plan`].

use super::{PoolRow, PoolStatus};
use crate::app::App;
use crate::error::ApiResult;
use crate::rpki::vrp::VrpTable;
use crate::store::ipv6 as q;
use ipnet::{IpNet, Ipv6Net};

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
    /// `None` when there is no RPKI data or no local AS to check with.
    pub rpki: Option<&'static str>,
    /// `invalid_asn` / `invalid_length` for invalid ones.
    pub rpki_reason: Option<&'static str>,
}

impl Origination {
    /// RPKI-invalid prefixes are not announced unless the operator forces them.
    pub fn rpki_invalid(&self) -> bool {
        self.rpki == Some("invalid")
    }
}

/// The originations for `pools` and their announced `allocations` (pool id, allocation
/// id, prefix), validated against `table` for `asn` when both are known.
pub fn plan(
    pools: &[PoolRow],
    allocations: &[(i64, i64, Ipv6Net)],
    table: Option<&VrpTable>,
    asn: u32,
) -> Vec<Origination> {
    let check = |p: Ipv6Net| crate::rpki::verdict(table, IpNet::V6(p), asn);
    let announced = |id: i64| {
        pools
            .iter()
            .any(|p| p.id == id && p.auto_announce_bgp && p.status == PoolStatus::Active)
    };
    let mut out = Vec::new();
    for pool in pools.iter().filter(|p| announced(p.id)) {
        let (rpki, rpki_reason) = check(pool.prefix);
        out.push(Origination {
            prefix: pool.prefix,
            source: Source::Pool { pool_id: pool.id },
            rpki,
            rpki_reason,
        });
    }
    for (pool_id, allocation_id, prefix) in allocations {
        if !announced(*pool_id) {
            continue;
        }
        let (rpki, rpki_reason) = check(*prefix);
        out.push(Origination {
            prefix: *prefix,
            source: Source::Allocation {
                pool_id: *pool_id,
                allocation_id: *allocation_id,
            },
            rpki,
            rpki_reason,
        });
    }
    out
}

/// The current originations, read from the database and the live VRP table.
pub async fn originations(app: &App) -> ApiResult<Vec<Origination>> {
    let (pools, allocations) = app
        .store
        .call(|c| Ok((q::all_pools(c)?, q::announced_allocations(c)?)))
        .await?;
    let table = app.rpki.loaded().then(|| app.rpki.table());
    Ok(plan(
        &pools,
        &allocations,
        table.as_deref(),
        app.config.bgp.local_asn,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpki::vrp::Vrp;

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
    fn pools_and_allocations_with_their_rpki_state() {
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
        let table = VrpTable::new([Vrp {
            prefix: "2001:db8:100::/48".parse().expect("vrp"),
            max_length: 56,
            asn: 65001,
        }]);
        let got = plan(&pools, &allocs, Some(&table), 65001);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].prefix, n("2001:db8:100::/48"));
        assert_eq!(
            (got[0].rpki, got[0].source),
            (Some("valid"), Source::Pool { pool_id: 1 })
        );
        assert_eq!(got[1].prefix, n("2001:db8:100::/64"));
        assert_eq!(
            (got[1].rpki, got[1].rpki_reason),
            (Some("invalid"), Some("invalid_length"))
        );
        assert!(got[1].rpki_invalid());
        // No data or no AS: no verdict, nothing refused.
        let got = plan(&pools, &allocs, None, 65001);
        assert!(got.iter().all(|o| o.rpki.is_none() && !o.rpki_invalid()));
        let got = plan(&pools, &allocs, Some(&table), 0);
        assert!(got.iter().all(|o| o.rpki.is_none()));
    }
}
