//! Rules the WireGuard side must keep so that pools stay the only source of the prefixes
//! inside them: a server's IPv6 subnet may not overlap a pool, and a client's
//! `routed_prefixes` may neither drop a prefix allocated to it (release the allocation
//! instead) nor gain, by hand, a prefix inside a pool (allocate it instead). Called inside the
//! WireGuard closures, in their transactions; the decisions themselves are pure.

use crate::store::ipam as q;
use crate::wireguard::error::{Error, Result};
use ipnet::{IpNet, Ipv6Net};
use rusqlite::Connection;

fn overlaps(a: &Ipv6Net, b: &Ipv6Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// `None` if the subnet is clear of every pool; else the 409.
pub fn subnet_conflict(subnet: &Ipv6Net, pools: &[(String, Ipv6Net)]) -> Option<Error> {
    pools
        .iter()
        .find(|(_, p)| overlaps(p, subnet))
        .map(|(name, p)| {
            Error::conflict(
                "ipv6_address",
                format!("subnet {subnet} overlaps IPv6 pool {name:?} ({p})"),
            )
        })
}

/// `None` if `routed` keeps every prefix in `own` (the client's allocations) and adds no
/// other prefix inside a pool; else the 409.
pub fn routed_conflict(
    routed: &[IpNet],
    own: &[Ipv6Net],
    pools: &[(String, Ipv6Net)],
) -> Option<Error> {
    let v6: Vec<Ipv6Net> = routed
        .iter()
        .filter_map(|n| match n {
            IpNet::V6(n) => Some(n.trunc()),
            IpNet::V4(_) => None,
        })
        .collect();
    if let Some(kept) = own.iter().find(|a| !v6.contains(a)) {
        return Some(Error::conflict(
            "routed_prefixes",
            format!(
                "{kept} is delegated to this client from a pool: release the allocation instead"
            ),
        ));
    }
    for p in v6.iter().filter(|p| !own.contains(p)) {
        if let Some((name, pool)) = pools.iter().find(|(_, pool)| overlaps(pool, p)) {
            return Some(Error::conflict(
                "routed_prefixes",
                format!("{p} lies in IPv6 pool {name:?} ({pool}): allocate it from the pool"),
            ));
        }
    }
    None
}

fn pools(conn: &Connection) -> Result<Vec<(String, Ipv6Net)>> {
    Ok(q::all_pools(conn)?
        .into_iter()
        .map(|p| (p.name, p.prefix))
        .collect())
}

/// A WireGuard server's IPv6 subnet against the pools.
pub fn check_server_subnet(conn: &Connection, subnet: Option<IpNet>) -> Result<()> {
    let Some(IpNet::V6(subnet)) = subnet else {
        return Ok(());
    };
    match subnet_conflict(&subnet.trunc(), &pools(conn)?) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A WireGuard client's `routed_prefixes` (`client_id` `None` for a new client) against its
/// allocations and the pools.
pub fn check_client_routed(
    conn: &Connection,
    client_id: Option<i64>,
    routed: &[IpNet],
) -> Result<()> {
    let own: Vec<Ipv6Net> = match client_id {
        Some(id) => q::allocations_of_clients(conn, &[id])?
            .into_iter()
            .map(|a| a.prefix)
            .collect(),
        None => Vec::new(),
    };
    match routed_conflict(routed, &own, &pools(conn)?) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n6(s: &str) -> Ipv6Net {
        s.parse().expect("v6")
    }

    fn n(s: &str) -> IpNet {
        s.parse().expect("net")
    }

    fn pools() -> Vec<(String, Ipv6Net)> {
        vec![("isp".to_string(), n6("2001:db8:100::/48"))]
    }

    #[test]
    fn subnets_must_stay_out_of_pools() {
        assert!(subnet_conflict(&n6("fd00::/64"), &pools()).is_none());
        let e = subnet_conflict(&n6("2001:db8:100:5::/64"), &pools()).expect("inside");
        assert_eq!(e.field(), Some("ipv6_address"));
        assert!(
            subnet_conflict(&n6("2001:db8::/32"), &pools()).is_some(),
            "covering"
        );
    }

    #[test]
    fn routed_prefixes_keep_allocations_and_add_none_from_pools() {
        let own = [n6("2001:db8:100::/64")];
        let ok = [
            n("2001:db8:100::/64"),
            n("10.9.0.0/24"),
            n("2001:db8:200::/56"),
        ];
        assert!(routed_conflict(&ok, &own, &pools()).is_none());
        let e = routed_conflict(&[n("10.9.0.0/24")], &own, &pools()).expect("dropped");
        assert!(e.to_string().contains("release the allocation"), "{e}");
        let e = routed_conflict(
            &[n("2001:db8:100::/64"), n("2001:db8:100:1::/64")],
            &own,
            &pools(),
        )
        .expect("hand-added");
        assert!(e.to_string().contains("allocate it from the pool"), "{e}");
        assert!(routed_conflict(&[n("2001:db8:100::/64")], &[], &pools()).is_some());
    }
}
