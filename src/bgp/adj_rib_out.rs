//! Adj-RIB-Out (RFC 4271 §3.2): the routes one peer has from us, and the UPDATEs that
//! bring it to what we want it to have. Pure: the session task gives it the export set
//! and what the OPEN exchange settled ([`Peer`]), writes the bytes it returns and, once
//! they are out, records them with [`AdjRibOut::sent`].
//!
//! ```text
//!  ExportSet ──wanted(peer)──► Wanted ──AdjRibOut::updates──► UPDATE bytes ──► socket
//!   (routes, VRPs)            family, next hop,   (withdrawals, then one run
//!                             RPKI withholding     per attribute set)
//! ```

use super::exports::{self, Export, ExportSet};
use super::model::Community;
use super::open::Families;
use super::packet::{
    self as pkt, Context, Message, NextHop, SegmentKind, Update, AFI_IPV4, AFI_IPV6,
};
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};

/// What one session announces with: its configuration and what its OPENs settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub session_id: i64,
    pub local_as: u32,
    pub remote_as: u32,
    pub families: Families,
    /// Our address on the connection: the next hop of routes of its family without one.
    pub local_ip: IpAddr,
    /// The next hop of IPv6 routes without one when the session runs over IPv4.
    pub next_hop_ipv6: Option<Ipv6Addr>,
}

/// Routes by prefix, each with a concrete next hop.
pub type Routes = BTreeMap<IpNet, Export>;

/// What a peer should have from us.
#[derive(Debug, Default, PartialEq)]
pub struct Wanted {
    pub routes: Routes,
    /// IPv6 routes were left out: the session runs over IPv4 and has no IPv6 next hop.
    pub no_v6_hop: bool,
}

/// The exports for `peer` with concrete next hops; routes of a family the peer did not
/// negotiate, without a usable next hop, or RPKI-invalid for the origin this session
/// sends ([`exports::withheld`]) are left out. A route for this session wins over one for
/// every session.
pub fn wanted(exports: &ExportSet, peer: &Peer) -> Wanted {
    let mut out = Wanted::default();
    let vrps = exports.vrps.as_deref();
    let mine = exports.routes.iter().filter(|e| {
        e.session_id.is_none_or(|s| s == peer.session_id)
            && !exports::withheld(e, peer.local_as, vrps)
    });
    for e in mine {
        let Some(hop) = next_hop(e, peer) else {
            out.no_v6_hop |= e.prefix.addr().is_ipv6() && peer.families.ipv6;
            continue;
        };
        if e.session_id.is_none() && out.routes.contains_key(&e.prefix) {
            continue;
        }
        let mut e = e.clone();
        e.next_hop = Some(hop);
        out.routes.insert(e.prefix, e);
    }
    out
}

/// The next hop `e` goes out with to `peer`: its own, else (IPv6) the session's
/// `next_hop_ipv6`, else our address on the connection if it is of the route's family.
/// `None` when the family was not negotiated or no next hop fits.
fn next_hop(e: &Export, peer: &Peer) -> Option<IpAddr> {
    let ours = |v6: bool| Some(peer.local_ip).filter(|a| a.is_ipv6() == v6);
    match e.prefix {
        IpNet::V4(_) if peer.families.ipv4 => e.next_hop.or_else(|| ours(false)),
        IpNet::V6(_) if peer.families.ipv6 => e
            .next_hop
            .or(peer.next_hop_ipv6.map(IpAddr::V6))
            .or_else(|| ours(true)),
        _ => None,
    }
}

/// The routes a peer has from us, with the attributes they were sent with.
#[derive(Debug, Default)]
pub struct AdjRibOut {
    routes: Routes,
}

/// What routes are grouped by: one run of UPDATEs per distinct set.
type AttrKey<'a> = (Option<IpAddr>, &'a [u32], &'a [Community]);

impl AdjRibOut {
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn prefixes(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.routes.keys().copied()
    }

    /// The peer has nothing from us (session down, or about to be sent everything again).
    pub fn clear(&mut self) {
        self.routes.clear();
    }

    /// The UPDATEs (encoded with `ctx`, each at most 4096 bytes) that turn what the peer
    /// has into `want`: withdrawals first, then the new and changed routes, one run of
    /// messages per attribute set, in prefix order. Empty when nothing changes.
    pub fn updates(&self, want: &Routes, peer: &Peer, ctx: &Context) -> Vec<Vec<u8>> {
        let mut msgs = Vec::new();
        let gone: Vec<IpNet> = self
            .routes
            .keys()
            .filter(|p| !want.contains_key(p))
            .copied()
            .collect();
        pkt::encode_withdrawals(ctx, &gone, &mut msgs);
        let mut index: HashMap<AttrKey<'_>, usize> = HashMap::new();
        let mut groups: Vec<(AttrKey<'_>, Vec<IpNet>)> = Vec::new();
        for (p, e) in want.iter().filter(|(p, e)| self.routes.get(p) != Some(e)) {
            let key = (e.next_hop, e.as_path.as_slice(), e.communities.as_slice());
            let i = *index.entry(key).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push(*p);
        }
        for ((next_hop, path, communities), prefixes) in groups {
            let attrs = attributes(peer, next_hop, path, communities);
            let v6_hop = NextHop::V6 {
                global: match next_hop {
                    Some(IpAddr::V6(a)) => a,
                    _ => Ipv6Addr::UNSPECIFIED,
                },
                link_local: None,
            };
            pkt::encode_announcements(ctx, &attrs, &v6_hop, &prefixes, &mut msgs);
        }
        msgs
    }

    /// The UPDATEs of [`updates`](Self::updates) went out: the peer has `want` now.
    pub fn sent(&mut self, want: Routes) {
        self.routes = want;
    }
}

/// The End-of-RIB markers (RFC 4724 §2) for the families of a session.
pub fn end_of_rib(families: Families, ctx: &Context) -> Vec<Vec<u8>> {
    [(families.ipv4, AFI_IPV4), (families.ipv6, AFI_IPV6)]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, afi)| {
            let mut b = Vec::new();
            Message::Update(Update::end_of_rib(afi)).encode(ctx, &mut b);
            b
        })
        .collect()
}

/// The path attributes of our routes with this next hop, configured path and
/// communities: ORIGIN IGP, the AS_PATH [`exports::wire_path`] makes, LOCAL_PREF 100 on
/// iBGP, standard and large communities.
fn attributes(
    peer: &Peer,
    next_hop: Option<IpAddr>,
    path: &[u32],
    communities: &[Community],
) -> pkt::Attributes {
    let asns = exports::wire_path(peer.local_as, peer.remote_as, path);
    let as_path = if asns.is_empty() {
        Vec::new()
    } else {
        vec![pkt::Segment {
            kind: SegmentKind::Sequence,
            asns,
        }]
    };
    pkt::Attributes {
        origin: Some(pkt::Origin::Igp),
        as_path: Some(as_path),
        next_hop: match next_hop {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        },
        local_pref: (peer.local_as == peer.remote_as).then_some(100),
        communities: communities
            .iter()
            .filter_map(|c| match c {
                Community::Standard(v) => Some(*v),
                Community::Large(_) => None,
            })
            .collect(),
        large_communities: communities
            .iter()
            .filter_map(|c| match c {
                Community::Large(v) => Some(*v),
                Community::Standard(_) => None,
            })
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpki::vrp::{Vrp, VrpTable};
    use std::sync::Arc;

    const CTX: Context = Context {
        four_octet_as: true,
    };

    fn net(s: &str) -> IpNet {
        s.parse().expect("prefix")
    }

    fn export(prefix: &str) -> Export {
        Export {
            prefix: net(prefix),
            session_id: None,
            next_hop: None,
            as_path: Vec::new(),
            communities: Vec::new(),
            force: false,
        }
    }

    /// eBGP 65001 → 65002 over 127.0.0.1, both families, IPv6 next hop 2001:db8::1.
    fn ebgp() -> Peer {
        Peer {
            session_id: 1,
            local_as: 65001,
            remote_as: 65002,
            families: Families {
                ipv4: true,
                ipv6: true,
            },
            local_ip: "127.0.0.1".parse().expect("ip"),
            next_hop_ipv6: Some("2001:db8::1".parse().expect("ip")),
        }
    }

    fn set(routes: Vec<Export>) -> ExportSet {
        ExportSet { routes, vrps: None }
    }

    /// A whole UPDATE from its body.
    fn update(body: &[u8]) -> Vec<u8> {
        let mut msg = vec![0xff; 16];
        msg.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        msg.push(2);
        msg.extend_from_slice(body);
        msg
    }

    /// An UPDATE body without withdrawals: these attributes, then `nlri`.
    fn announce(attrs: &[&[u8]], nlri: &[u8]) -> Vec<u8> {
        let attrs = attrs.concat();
        let mut body = vec![0, 0];
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs);
        body.extend_from_slice(nlri);
        update(&body)
    }

    const ORIGIN_IGP: &[u8] = &[0x40, 1, 1, 0];
    /// AS_PATH SEQUENCE [65001] with 4-octet ASNs.
    const PATH_65001: &[u8] = &[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9];
    const NEXT_HOP_LOCAL: &[u8] = &[0x40, 3, 4, 127, 0, 0, 1];

    #[test]
    fn an_ipv6_route_over_ipv4_goes_out_with_the_sessions_ipv6_next_hop() {
        let mut e = export("2001:db8:100::/48");
        e.communities = vec![
            Community::Standard(0xfde9_0064),
            Community::Large([65001, 1, 2]),
        ];
        let want = wanted(&set(vec![e]), &ebgp());
        assert!(!want.no_v6_hop);
        let msgs = AdjRibOut::default().updates(&want.routes, &ebgp(), &CTX);
        let mut reach = vec![0x80, 14, 28, 0, 2, 1, 16];
        reach.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        reach.extend_from_slice(&[0, 48, 0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00]);
        let communities: &[u8] = &[0xc0, 8, 4, 0xfd, 0xe9, 0, 0x64]; // 65001:100
        let large: &[u8] = &[0xc0, 32, 12, 0, 0, 0xfd, 0xe9, 0, 0, 0, 1, 0, 0, 0, 2];
        let want_msg = announce(&[ORIGIN_IGP, PATH_65001, communities, &reach, large], &[]);
        assert_eq!(msgs, [want_msg]);
    }

    #[test]
    fn the_diff_withdraws_what_is_gone_and_sends_only_what_changed() {
        let peer = ebgp();
        let mut rib = AdjRibOut::default();
        let first = wanted(
            &set(vec![export("192.0.2.0/24"), export("198.51.100.0/24")]),
            &peer,
        );
        let msgs = rib.updates(&first.routes, &peer, &CTX);
        let both = announce(
            &[ORIGIN_IGP, PATH_65001, NEXT_HOP_LOCAL],
            &[24, 192, 0, 2, 24, 198, 51, 100],
        );
        assert_eq!(
            msgs,
            [both],
            "one UPDATE for one attribute set, prefix order"
        );
        rib.sent(first.routes.clone());
        assert_eq!(
            rib.updates(&first.routes, &peer, &CTX),
            Vec::<Vec<u8>>::new()
        );

        // 192.0.2.0/24 withdrawn; 198.51.100.0/24 now with a path; 203.0.113.0/24 new.
        let mut changed = export("198.51.100.0/24");
        changed.as_path = vec![65100];
        let next = wanted(&set(vec![changed, export("203.0.113.0/24")]), &peer);
        let msgs = rib.updates(&next.routes, &peer, &CTX);
        let withdraw = update(&[0, 4, 24, 192, 0, 2, 0, 0]);
        let path: &[u8] = &[0x40, 2, 10, 2, 2, 0, 0, 0xfd, 0xe9, 0, 0, 0xfe, 0x4c];
        let moved = announce(&[ORIGIN_IGP, path, NEXT_HOP_LOCAL], &[24, 198, 51, 100]);
        let new = announce(
            &[ORIGIN_IGP, PATH_65001, NEXT_HOP_LOCAL],
            &[24, 203, 0, 113],
        );
        assert_eq!(msgs, [withdraw, moved, new]);
        rib.sent(next.routes);
        let sent: Vec<IpNet> = rib.prefixes().collect();
        assert_eq!(sent, [net("198.51.100.0/24"), net("203.0.113.0/24")]);
    }

    #[test]
    fn ibgp_sends_local_pref_and_the_path_as_configured() {
        let peer = Peer {
            remote_as: 65001,
            ..ebgp()
        };
        let want = wanted(&set(vec![export("192.0.2.0/24")]), &peer);
        let msgs = AdjRibOut::default().updates(&want.routes, &peer, &CTX);
        let empty_path: &[u8] = &[0x40, 2, 0];
        let local_pref: &[u8] = &[0x40, 5, 4, 0, 0, 0, 100];
        let want_msg = announce(
            &[ORIGIN_IGP, empty_path, NEXT_HOP_LOCAL, local_pref],
            &[24, 192, 0, 2],
        );
        assert_eq!(msgs, [want_msg]);
    }

    #[test]
    fn what_a_session_is_not_sent() {
        let mut other = export("192.0.2.0/24");
        other.session_id = Some(2);
        let mut mine = export("198.51.100.0/24");
        mine.session_id = Some(1);
        mine.next_hop = Some("192.0.2.1".parse().expect("ip"));
        let everyone = export("198.51.100.0/24");
        let v6 = export("2001:db8:100::/48");
        let routes = vec![other, mine, everyone, v6.clone()];

        let got = wanted(&set(routes.clone()), &ebgp());
        let sent: Vec<_> = got
            .routes
            .values()
            .map(|e| (e.prefix, e.next_hop))
            .collect();
        assert_eq!(
            sent,
            [
                (
                    net("198.51.100.0/24"),
                    Some("192.0.2.1".parse().expect("ip"))
                ),
                (
                    net("2001:db8:100::/48"),
                    Some("2001:db8::1".parse().expect("ip"))
                ),
            ],
            "another session's route is left out; this session's wins over everyone's"
        );

        let v4_only = Peer {
            families: Families {
                ipv4: true,
                ipv6: false,
            },
            ..ebgp()
        };
        let got = wanted(&set(vec![v6.clone()]), &v4_only);
        assert_eq!(
            (got.routes.len(), got.no_v6_hop),
            (0, false),
            "not negotiated"
        );
        let no_hop = Peer {
            next_hop_ipv6: None,
            ..ebgp()
        };
        let got = wanted(&set(vec![v6.clone()]), &no_hop);
        assert_eq!(
            (got.routes.len(), got.no_v6_hop),
            (0, true),
            "no IPv6 next hop"
        );

        // RPKI: our origin 65001 is invalid for a ROA that names 65009, unless forced.
        let vrps = VrpTable::new([Vrp {
            prefix: net("2001:db8::/32"),
            max_length: 48,
            asn: 65009,
        }]);
        let mut forced = v6.clone();
        forced.prefix = net("2001:db8:200::/48");
        forced.force = true;
        let with_vrps = ExportSet {
            routes: vec![v6, forced],
            vrps: Some(Arc::new(vrps)),
        };
        let got = wanted(&with_vrps, &ebgp());
        let sent: Vec<IpNet> = got.routes.keys().copied().collect();
        assert_eq!(sent, [net("2001:db8:200::/48")]);
    }

    #[test]
    fn end_of_rib_per_family() {
        let both = Families {
            ipv4: true,
            ipv6: true,
        };
        let v6 = update(&[0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1]);
        assert_eq!(end_of_rib(both, &CTX), [update(&[0, 0, 0, 0]), v6.clone()]);
        let only_v6 = Families {
            ipv4: false,
            ipv6: true,
        };
        assert_eq!(end_of_rib(only_v6, &CTX), [v6]);
    }
}
