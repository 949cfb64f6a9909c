//! Cryptokey routing (WireGuard whitepaper §2): an outgoing packet goes to the peer whose
//! allowed IPs hold the longest prefix matching its destination; a packet arriving from a
//! peer is accepted only if its source falls in that peer's allowed IPs. Pure; the longest-
//! prefix match is `ip_network_table`'s tree bitmap (already in the tree through boringtun).

use ip_network::IpNetwork;
use ip_network_table::IpNetworkTable;
use ipnet::IpNet;
use std::net::IpAddr;

/// Prefixes → peer handle (an index or id, `Copy`).
pub struct AllowedIps<P> {
    table: IpNetworkTable<P>,
}

impl<P: Copy + PartialEq> Default for AllowedIps<P> {
    fn default() -> Self {
        AllowedIps {
            table: IpNetworkTable::new(),
        }
    }
}

/// `10.0.0.1/24` → `10.0.0.0/24`: host bits cleared, as `wg` stores allowed IPs.
fn network(net: IpNet) -> IpNetwork {
    // The prefix length of an `IpNet` is always valid for its family, so truncating
    // construction cannot fail.
    match IpNetwork::new_truncate(net.addr(), net.prefix_len()) {
        Ok(n) => n,
        Err(_) => unreachable!("IpNet prefix lengths are in range"),
    }
}

fn to_ipnet(n: IpNetwork) -> IpNet {
    match n {
        IpNetwork::V4(v4) => {
            IpNet::V4(ipnet::Ipv4Net::new(v4.network_address(), v4.netmask()).unwrap_or_default())
        }
        IpNetwork::V6(v6) => {
            IpNet::V6(ipnet::Ipv6Net::new(v6.network_address(), v6.netmask()).unwrap_or_default())
        }
    }
}

impl<P: Copy + PartialEq> AllowedIps<P> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `net` to `peer`. A prefix belongs to one peer: giving it to another moves it
    /// (what `wg set … allowed-ips` does). Returns the previous owner.
    pub fn insert(&mut self, net: IpNet, peer: P) -> Option<P> {
        self.table.insert(network(net), peer)
    }

    /// Removes every prefix of `peer`.
    pub fn remove_peer(&mut self, peer: P) {
        self.table.retain(|_, p| *p != peer);
    }

    /// The peer an outgoing packet to `dst` is for.
    pub fn lookup(&self, dst: IpAddr) -> Option<P> {
        self.table.longest_match(dst).map(|(_, p)| *p)
    }

    /// Whether `peer` may send packets from `src` (the inbound check).
    pub fn allows(&self, peer: P, src: IpAddr) -> bool {
        self.lookup(src) == Some(peer)
    }

    /// The prefixes of `peer`, for status and `wg show`.
    pub fn of_peer(&self, peer: P) -> Vec<IpNet> {
        self.table
            .iter()
            .filter(|(_, p)| **p == peer)
            .map(|(n, _)| to_ipnet(n))
            .collect()
    }

    pub fn len(&self) -> usize {
        let (v4, v6) = self.table.len();
        v4 + v6
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Source and destination of an IPv4 or IPv6 packet; `None` if it is neither or truncated.
pub fn packet_addresses(packet: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match packet.first()? >> 4 {
        4 if packet.len() >= 20 => {
            let src: [u8; 4] = packet[12..16].try_into().ok()?;
            let dst: [u8; 4] = packet[16..20].try_into().ok()?;
            Some((IpAddr::from(src), IpAddr::from(dst)))
        }
        6 if packet.len() >= 40 => {
            let src: [u8; 16] = packet[8..24].try_into().ok()?;
            let dst: [u8; 16] = packet[24..40].try_into().ok()?;
            Some((IpAddr::from(src), IpAddr::from(dst)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("net")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = AllowedIps::new();
        t.insert(net("0.0.0.0/0"), 1);
        t.insert(net("10.0.0.0/8"), 2);
        t.insert(net("10.1.2.3/32"), 3);
        t.insert(net("::/0"), 1);
        t.insert(net("2001:db8:1::/48"), 4);
        assert_eq!(t.lookup(ip("192.0.2.1")), Some(1));
        assert_eq!(t.lookup(ip("10.9.9.9")), Some(2));
        assert_eq!(t.lookup(ip("10.1.2.3")), Some(3));
        assert_eq!(t.lookup(ip("2001:db8:1:ffff::1")), Some(4));
        assert_eq!(t.lookup(ip("2001:db8:2::1")), Some(1));
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn host_bits_are_cleared_and_a_prefix_has_one_owner() {
        let mut t = AllowedIps::new();
        assert_eq!(t.insert(net("10.8.0.1/24"), 1), None);
        assert_eq!(t.of_peer(1), vec![net("10.8.0.0/24")]);
        assert_eq!(t.insert(net("10.8.0.0/24"), 2), Some(1), "moved to peer 2");
        assert!(t.of_peer(1).is_empty());
        assert_eq!(t.lookup(ip("10.8.0.77")), Some(2));
    }

    #[test]
    fn removing_a_peer_removes_only_its_routes() {
        let mut t = AllowedIps::new();
        t.insert(net("10.8.0.2/32"), 1);
        t.insert(net("fd00::2/128"), 1);
        t.insert(net("10.8.0.3/32"), 2);
        t.remove_peer(1);
        assert_eq!(t.lookup(ip("10.8.0.2")), None);
        assert_eq!(t.lookup(ip("fd00::2")), None);
        assert_eq!(t.lookup(ip("10.8.0.3")), Some(2));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn inbound_source_check() {
        let mut t = AllowedIps::new();
        t.insert(net("10.8.0.2/32"), 1);
        t.insert(net("2001:db8:100::/56"), 1);
        t.insert(net("10.8.0.3/32"), 2);
        assert!(t.allows(1, ip("10.8.0.2")));
        assert!(t.allows(1, ip("2001:db8:100:ff::1")));
        assert!(!t.allows(1, ip("10.8.0.3")), "spoofing peer 2's address");
        assert!(!t.allows(1, ip("192.0.2.1")));
    }

    #[test]
    fn packet_addresses_of_both_families() {
        let mut v4 = vec![0u8; 20];
        v4[0] = 0x45;
        v4[12..16].copy_from_slice(&[10, 8, 0, 2]);
        v4[16..20].copy_from_slice(&[192, 0, 2, 1]);
        assert_eq!(
            packet_addresses(&v4),
            Some((ip("10.8.0.2"), ip("192.0.2.1")))
        );
        let mut v6 = vec![0u8; 40];
        v6[0] = 0x60;
        v6[8..24].copy_from_slice(&ip6("fd00::2"));
        v6[24..40].copy_from_slice(&ip6("2001:db8::1"));
        assert_eq!(
            packet_addresses(&v6),
            Some((ip("fd00::2"), ip("2001:db8::1")))
        );
        assert_eq!(packet_addresses(&v4[..19]), None, "truncated");
        assert_eq!(packet_addresses(&v6[..39]), None, "truncated");
        assert_eq!(packet_addresses(&[0x50; 40]), None, "not IP");
        assert_eq!(packet_addresses(&[]), None);
    }

    fn ip6(s: &str) -> [u8; 16] {
        s.parse::<std::net::Ipv6Addr>().expect("v6").octets()
    }
}
