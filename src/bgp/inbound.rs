//! Inbound UPDATE policy, pure: what an UPDATE does to the Adj-RIB-In ([`inbound`]:
//! withdrawals, RFC 7606 treat-as-withdraw, AS-path loops, unusable next hops) and the
//! session's prefix limit ([`apply`], [`over_limit`], [`max_prefix_cease`]). The session
//! task decodes the bytes, calls these and sends the Cease they return.

use super::packet::{
    self as pkt, NextHop, Notification, SegmentKind, Update, AFI_IPV4, AFI_IPV6,
    CEASE_MAX_PREFIXES, SAFI_UNICAST,
};
use super::rib::{AdjRibIn, RouteAttrs};
use ipnet::IpNet;
use std::net::IpAddr;

/// `count` routes break a limit of `max` (0: no limit).
pub fn over_limit(count: usize, max: u32) -> bool {
    max > 0 && count > max as usize
}

/// Cease / Maximum Number of Prefixes Reached (RFC 4486 §4): with the family that
/// overflowed and the limit when one did; without data when the limit itself was lowered
/// under what the peer had already sent (the limit is per session, not per family).
pub fn max_prefix_cease(afi: Option<u16>, max: u32) -> Notification {
    let data = match afi {
        Some(afi) => {
            let mut d = afi.to_be_bytes().to_vec();
            d.push(SAFI_UNICAST);
            d.extend_from_slice(&max.to_be_bytes());
            d
        }
        None => Vec::new(),
    };
    Notification::with_data(pkt::CEASE, CEASE_MAX_PREFIXES, data)
}

/// What one UPDATE does to the Adj-RIB-In.
#[derive(Debug, Default, PartialEq)]
pub struct Inbound {
    /// Prefixes to remove: the withdrawn ones and those treated as withdrawn.
    pub withdraw: Vec<IpNet>,
    /// Prefixes to add or replace, grouped by the attributes they carry.
    pub announce: Vec<(Vec<IpNet>, RouteAttrs)>,
    /// Why routes were treated as withdrawn (errors, not loops), for the log.
    pub ignored: Vec<String>,
}

/// Applies RFC 4271 §9 / RFC 7606 to an UPDATE from `remote_as` received on a session
/// speaking as `local_as` over our address `local_ip`: an attribute error (the codec's
/// `treat_as_withdraw`) or our AS in the path (a loop) withdraws everything announced;
/// a semantically wrong next hop (RFC 4271 §6.3, RFC 4760 §3) withdraws the routes of
/// that next hop only.
pub fn inbound(u: &Update, local_as: u32, remote_as: u32, local_ip: Option<IpAddr>) -> Inbound {
    let mut out = Inbound {
        withdraw: u.withdrawn_all().collect(),
        ..Inbound::default()
    };
    if u.is_end_of_rib().is_some() {
        return out;
    }
    let looped = u
        .attributes
        .as_path
        .iter()
        .flatten()
        .any(|s| s.asns.contains(&local_as));
    if u.treat_as_withdraw.is_some() || looped {
        // A loop is routine (our own routes coming back), not worth a log line.
        out.ignored.extend(u.treat_as_withdraw.clone());
        out.withdraw.extend(u.announced());
        return out;
    }
    let (v4, mp) = route_attrs(u, remote_as);
    let mp_nlri = u.attributes.mp_reach.as_ref().map(|m| m.nlri.clone());
    let classic = u.nlri.iter().map(|n| IpNet::V4(*n)).collect::<Vec<_>>();
    for (nlri, attrs) in [(classic, v4), (mp_nlri.unwrap_or_default(), mp)] {
        if nlri.is_empty() {
            continue;
        }
        match bad_next_hop(attrs.next_hop, local_ip) {
            Some(why) => {
                out.ignored.push(why);
                out.withdraw.extend(nlri);
            }
            None => out.announce.push((nlri, attrs)),
        }
    }
    out
}

/// Carries out `plan` on `rib`, keeping at most `max` routes (0: no limit). A batch that
/// would break the limit is not taken: the error is the Cease to send (RFC 4486 data: the
/// family of that batch and the limit), and the session ends.
pub fn apply(plan: Inbound, rib: &mut AdjRibIn, max: u32) -> Result<(), Notification> {
    for p in &plan.withdraw {
        rib.remove(p);
    }
    for (nlri, attrs) in plan.announce {
        let fresh = nlri.iter().filter(|p| !rib.contains(p)).count();
        if over_limit(rib.len() + fresh, max) {
            let afi = match nlri.first() {
                Some(IpNet::V4(_)) => AFI_IPV4,
                _ => AFI_IPV6,
            };
            return Err(max_prefix_cease(Some(afi), max));
        }
        let id = rib.intern(attrs);
        for p in nlri {
            rib.insert(p, id);
        }
        rib.unused(id);
    }
    Ok(())
}

/// Why a received next hop cannot be used, if it cannot: missing, unspecified
/// (0.0.0.0, ::), multicast or broadcast, or our own address on the session.
fn bad_next_hop(hop: Option<IpAddr>, local_ip: Option<IpAddr>) -> Option<String> {
    let Some(hop) = hop else {
        return Some("no next hop".into());
    };
    let bad = hop.is_unspecified()
        || hop.is_multicast()
        || matches!(hop, IpAddr::V4(a) if a.is_broadcast())
        || Some(hop) == local_ip;
    bad.then(|| format!("next hop {hop} is not usable"))
}

/// The attributes of an UPDATE's routes as the Adj-RIB-In keeps them: one set for its
/// IPv4 NLRI (classic next hop), one for its MP_REACH NLRI (that next hop).
fn route_attrs(u: &Update, remote_as: u32) -> (RouteAttrs, RouteAttrs) {
    let a = &u.attributes;
    let segments = a.as_path.as_deref().unwrap_or(&[]);
    let flat: Box<[u32]> = segments
        .iter()
        .flat_map(|s| s.asns.iter().copied())
        .collect();
    let origin_as = match segments.last() {
        None => Some(remote_as),
        Some(s) if s.kind == SegmentKind::Sequence => s.asns.last().copied(),
        Some(_) => None,
    };
    let base = RouteAttrs {
        origin: a.origin.map(|o| o as u8),
        as_path: flat,
        origin_as,
        next_hop: a.next_hop.map(IpAddr::V4),
        med: a.med,
        local_pref: a.local_pref,
        communities: a.communities.clone().into_boxed_slice(),
        large_communities: a.large_communities.clone().into_boxed_slice(),
    };
    let mut mp = base.clone();
    mp.next_hop = a.mp_reach.as_ref().map(|m| match m.next_hop {
        NextHop::V4(v4) => IpAddr::V4(v4),
        NextHop::V6 { global, .. } => IpAddr::V6(global).to_canonical(),
    });
    (base, mp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::packet::{decode, Context, Message};

    /// A whole UPDATE message from its body (after the 19-byte header).
    fn update(body: &[u8]) -> Update {
        let mut msg = vec![0xff; 16];
        msg.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        msg.push(2);
        msg.extend_from_slice(body);
        match decode(
            &msg,
            &Context {
                four_octet_as: true,
            },
        ) {
            Ok(Message::Update(u)) => u,
            other => panic!("not an UPDATE: {other:?}"),
        }
    }

    /// ORIGIN IGP, AS_PATH [65002] (4-octet), NEXT_HOP `hop`, NLRI 198.51.100.0/24.
    fn ipv4_update(hop: [u8; 4]) -> Update {
        let mut attrs = vec![
            0x40, 1, 1, 0, // ORIGIN IGP
            0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea, // AS_PATH SEQUENCE [65002]
            0x40, 3, 4, // NEXT_HOP
        ];
        attrs.extend_from_slice(&hop);
        let mut body = vec![0, 0]; // no withdrawn routes
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs);
        body.extend_from_slice(&[24, 198, 51, 100]);
        update(&body)
    }

    /// An UPDATE body: `withdrawn` (IPv4 prefixes), ORIGIN IGP, AS_PATH [65002], NEXT_HOP
    /// 127.0.0.2, `extra` attributes, then `nlri`.
    fn ipv4_body(withdrawn: &[u8], extra: &[u8], nlri: &[u8]) -> Vec<u8> {
        let mut attrs = vec![
            0x40, 1, 1, 0, // ORIGIN IGP
            0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea, // AS_PATH SEQUENCE [65002]
            0x40, 3, 4, 127, 0, 0, 2, // NEXT_HOP 127.0.0.2
        ];
        attrs.extend_from_slice(extra);
        let mut body = (withdrawn.len() as u16).to_be_bytes().to_vec();
        body.extend_from_slice(withdrawn);
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs);
        body.extend_from_slice(nlri);
        body
    }

    fn ipv4_update_with(extra: &[u8], nlri: &[u8]) -> Update {
        update(&ipv4_body(&[], extra, nlri))
    }

    /// 198.51.100.0/24, 198.51.101.0/24, 198.51.102.0/24.
    const THREE: [u8; 12] = [24, 198, 51, 100, 24, 198, 51, 101, 24, 198, 51, 102];

    fn net(s: &str) -> IpNet {
        s.parse().expect("prefix")
    }

    const LOCAL: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)));

    #[test]
    fn an_ipv4_route_with_a_usable_next_hop_is_taken() {
        let got = inbound(&ipv4_update([127, 0, 0, 2]), 65001, 65002, LOCAL);
        assert_eq!(got.withdraw, []);
        assert_eq!(got.announce.len(), 1);
        let (nlri, attrs) = &got.announce[0];
        assert_eq!(nlri, &[net("198.51.100.0/24")]);
        assert_eq!(attrs.next_hop, Some("127.0.0.2".parse().expect("ip")));
        assert_eq!(attrs.origin_as, Some(65002));
    }

    #[test]
    fn next_hop_0_0_0_0_is_treated_as_withdraw() {
        let got = inbound(&ipv4_update([0, 0, 0, 0]), 65001, 65002, LOCAL);
        assert_eq!(got.announce, []);
        assert_eq!(got.withdraw, [net("198.51.100.0/24")]);
        assert_eq!(got.ignored, ["next hop 0.0.0.0 is not usable"]);
        for hop in [[224, 0, 0, 1], [255, 255, 255, 255], [127, 0, 0, 1]] {
            let got = inbound(&ipv4_update(hop), 65001, 65002, LOCAL);
            assert_eq!(got.announce, [], "{hop:?}");
            assert_eq!(got.withdraw, [net("198.51.100.0/24")], "{hop:?}");
        }
    }

    #[test]
    fn an_ipv6_route_with_next_hop_unspecified_is_treated_as_withdraw() {
        // ORIGIN, AS_PATH [65002], MP_REACH_NLRI IPv6 unicast, next hop `hop`, 2001:db8:200::/48.
        let mp = |hop: [u8; 16]| {
            let mut reach = vec![0, 2, 1, 16];
            reach.extend_from_slice(&hop);
            reach.extend_from_slice(&[0, 48, 0x20, 0x01, 0x0d, 0xb8, 0x02, 0x00]);
            let mut attrs = vec![0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea];
            attrs.extend_from_slice(&[0x80, 14, reach.len() as u8]);
            attrs.extend_from_slice(&reach);
            let mut body = vec![0, 0];
            body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
            body.extend_from_slice(&attrs);
            update(&body)
        };
        let mut good = [0u8; 16];
        good[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        good[15] = 2;
        let got = inbound(&mp(good), 65001, 65002, LOCAL);
        assert_eq!(got.announce.len(), 1);
        assert_eq!(got.announce[0].0, [net("2001:db8:200::/48")]);
        let got = inbound(&mp([0; 16]), 65001, 65002, LOCAL);
        assert_eq!(got.announce, []);
        assert_eq!(got.withdraw, [net("2001:db8:200::/48")]);
    }

    #[test]
    fn a_path_with_our_as_is_treated_as_withdraw() {
        let got = inbound(&ipv4_update([127, 0, 0, 2]), 65002, 65003, LOCAL);
        assert_eq!(got.announce, []);
        assert_eq!(got.withdraw, [net("198.51.100.0/24")]);
    }

    #[test]
    fn a_malformed_attribute_withdraws_what_the_update_announces() {
        let mut rib = AdjRibIn::default();
        let good = inbound(&ipv4_update([127, 0, 0, 2]), 65001, 65002, LOCAL);
        assert_eq!(apply(good, &mut rib, 0), Ok(()));
        assert_eq!(rib.len(), 1);
        // COMMUNITIES of 3 bytes (not a multiple of 4): RFC 7606 §7.8 treat-as-withdraw.
        let bad = ipv4_update_with(&[0xc0, 8, 3, 0xfd, 0xea, 0], &[24, 198, 51, 100]);
        assert!(bad.treat_as_withdraw.is_some());
        let got = inbound(&bad, 65001, 65002, LOCAL);
        assert_eq!(got.announce, []);
        assert_eq!(got.withdraw, [net("198.51.100.0/24")]);
        assert_eq!(got.ignored.len(), 1, "logged: {:?}", got.ignored);
        assert_eq!(apply(got, &mut rib, 0), Ok(()));
        assert!(rib.is_empty(), "the route sent before is gone");
    }

    #[test]
    fn an_update_over_the_limit_is_not_taken_and_ceases_with_family_and_limit() {
        let three = ipv4_update_with(&[], &THREE);
        let mut rib = AdjRibIn::default();
        let n = apply(inbound(&three, 65001, 65002, LOCAL), &mut rib, 2).unwrap_err();
        assert_eq!(
            (n.code, n.subcode),
            (6, 1),
            "Cease / Maximum Number of Prefixes"
        );
        assert_eq!(
            n.data,
            [0, 1, 1, 0, 0, 0, 2],
            "RFC 4486: AFI 1, SAFI 1, limit 2"
        );
        assert!(rib.is_empty(), "none of the batch is taken");
        // At the limit is fine, and routes sent again are not new.
        for _ in 0..2 {
            assert_eq!(
                apply(inbound(&three, 65001, 65002, LOCAL), &mut rib, 3),
                Ok(())
            );
        }
        assert_eq!((rib.len(), rib.attribute_sets()), (3, 1));
        // A withdrawal in the same UPDATE frees room first.
        let swap = update(&ipv4_body(&[24, 198, 51, 100], &[], &[24, 198, 51, 103]));
        assert_eq!(
            apply(inbound(&swap, 65001, 65002, LOCAL), &mut rib, 3),
            Ok(())
        );
        assert!(!rib.contains(&net("198.51.100.0/24")));
        assert!(rib.contains(&net("198.51.103.0/24")));
    }

    #[test]
    fn the_prefix_limit() {
        assert!(!over_limit(5, 0), "0 is no limit");
        assert!(!over_limit(5, 5));
        assert!(over_limit(6, 5));
        let n = max_prefix_cease(Some(2), 5);
        assert_eq!((n.code, n.subcode), (6, 1));
        assert_eq!(n.data, [0, 2, 1, 0, 0, 0, 5]);
        assert!(max_prefix_cease(None, 5).data.is_empty());
    }
}
