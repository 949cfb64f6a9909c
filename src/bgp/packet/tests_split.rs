//! Splitting of our announcements and withdrawals into messages of at most 4096 bytes.

use super::tests::{FOUR, TWO};
use super::*;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

fn v6_48s(n: u32) -> Vec<IpNet> {
    (0..n)
        .map(|i| {
            let addr = Ipv6Addr::new(0x2001, 0x0db8, i as u16, 0, 0, 0, 0, 0);
            let len = 48;
            IpNet::V6(Ipv6Net::new(addr, len).expect("prefix"))
        })
        .collect()
}

/// IPv6 prefixes of assorted lengths (/19 to /64) and IPv4 /8 to /32 ones.
fn mixed(n6: u32, n4: u32) -> Vec<IpNet> {
    let mut out = Vec::new();
    for i in 0..n6.max(n4) {
        if i < n6 {
            let addr = Ipv6Addr::new(0x2001, 0x0db8, i as u16, i as u16, 0, 0, 0, 0);
            let len = 19 + (i % 46) as u8;
            out.push(IpNet::V6(Ipv6Net::new(addr, len).expect("prefix").trunc()));
        }
        if i < n4 {
            let addr = Ipv4Addr::from(0x0a00_0000 + (i << 8));
            let len = 8 + (i % 25) as u8;
            out.push(IpNet::V4(Ipv4Net::new(addr, len).expect("prefix").trunc()));
        }
    }
    out
}

fn our_attrs() -> Attributes {
    Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(vec![Segment {
            kind: SegmentKind::Sequence,
            asns: vec![4_200_000_001],
        }]),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        communities: vec![(65001 << 16) | 100],
        large_communities: vec![[4_200_000_001, 1, 2]],
        ..Attributes::default()
    }
}

fn hop() -> NextHop {
    NextHop::V6 {
        global: "2001:db8::1".parse().expect("addr"),
        link_local: Some("fe80::1".parse().expect("addr")),
    }
}

/// Decodes every message, checking size and framing, and returns them.
fn decode_all(msgs: &[Vec<u8>], ctx: &Context) -> Vec<Update> {
    msgs.iter()
        .map(|m| {
            assert!(m.len() <= MAX_MESSAGE_LEN, "{} bytes", m.len());
            assert_eq!(frame(m), Ok(Some(m.len())));
            match decode(m, ctx) {
                Ok(Message::Update(u)) => {
                    assert_eq!(u.treat_as_withdraw, None);
                    assert!(u.discarded.is_empty());
                    u
                }
                other => panic!("{other:?}"),
            }
        })
        .collect()
}

/// Asserts that `got` holds each of `want` exactly once.
fn same_multiset(got: impl Iterator<Item = IpNet>, want: &[IpNet]) {
    let mut count: HashMap<IpNet, i64> = HashMap::new();
    for p in want {
        *count.entry(*p).or_default() += 1;
    }
    let mut n = 0;
    for p in got {
        *count.entry(p).or_default() -= 1;
        n += 1;
    }
    assert_eq!(n, want.len());
    assert!(
        count.values().all(|&c| c == 0),
        "prefix missing or repeated"
    );
}

/// All messages but the last are full to within one prefix (as few as possible).
fn packed(msgs: &[Vec<u8>], max_prefix: usize) {
    for m in msgs.iter().rev().skip(1) {
        assert!(m.len() + max_prefix > MAX_MESSAGE_LEN, "{} bytes", m.len());
    }
}

#[test]
fn ten_thousand_v6_announcements() {
    let prefixes = v6_48s(10_000);
    let mut msgs = Vec::new();
    encode_announcements(&FOUR, &our_attrs(), &hop(), &prefixes, &mut msgs);
    assert!(msgs.len() < 140, "{} messages", msgs.len());
    packed(&msgs, 7);
    let updates = decode_all(&msgs, &FOUR);
    same_multiset(updates.iter().flat_map(|u| u.announced()), &prefixes);
    for u in &updates {
        let mp = u.attributes.mp_reach.as_ref().expect("MP_REACH");
        assert_eq!(
            (mp.afi, mp.safi, mp.next_hop),
            (AFI_IPV6, SAFI_UNICAST, hop())
        );
        assert_eq!(u.attributes.next_hop, None, "no NEXT_HOP without IPv4 NLRI");
        let mut rest = u.attributes.clone();
        rest.mp_reach = None;
        rest.next_hop = our_attrs().next_hop;
        assert_eq!(rest, our_attrs());
    }
}

#[test]
fn ten_thousand_v6_withdrawals() {
    let prefixes = v6_48s(10_000);
    let mut msgs = Vec::new();
    encode_withdrawals(&FOUR, &prefixes, &mut msgs);
    assert!(msgs.len() < 140, "{} messages", msgs.len());
    packed(&msgs, 7);
    let updates = decode_all(&msgs, &FOUR);
    same_multiset(updates.iter().flat_map(|u| u.withdrawn_all()), &prefixes);
    assert!(updates.iter().all(|u| u.announced().next().is_none()));
}

#[test]
fn mixed_families_share_messages() {
    let prefixes = mixed(5_000, 3_000);
    for ctx in [FOUR, TWO] {
        let mut msgs = Vec::new();
        encode_announcements(&ctx, &our_attrs(), &hop(), &prefixes, &mut msgs);
        packed(&msgs, 9);
        let updates = decode_all(&msgs, &ctx);
        same_multiset(updates.iter().flat_map(|u| u.announced()), &prefixes);
        let both = updates
            .iter()
            .filter(|u| u.attributes.mp_reach.is_some() && !u.nlri.is_empty())
            .count();
        assert_eq!(both, 1, "the last IPv6 message is topped up with IPv4");
        for u in &updates {
            assert_eq!(u.attributes.next_hop.is_some(), !u.nlri.is_empty());
            assert_eq!(u.attributes.as_path, our_attrs().as_path, "AS4_PATH merged");
        }

        msgs.clear();
        encode_withdrawals(&ctx, &prefixes, &mut msgs);
        packed(&msgs, 17);
        let updates = decode_all(&msgs, &ctx);
        same_multiset(updates.iter().flat_map(|u| u.withdrawn_all()), &prefixes);
    }
}

#[test]
fn large_attributes_and_edge_cases() {
    let prefixes = mixed(300, 300);
    // 3600 bytes of communities leave room for a few prefixes per message.
    let mut attrs = our_attrs();
    attrs.communities = (0..900).collect();
    let mut msgs = Vec::new();
    encode_announcements(&FOUR, &attrs, &hop(), &prefixes, &mut msgs);
    let updates = decode_all(&msgs, &FOUR);
    same_multiset(updates.iter().flat_map(|u| u.announced()), &prefixes);

    // Attributes that cannot fit at all: nothing is sent, and the call returns.
    attrs.communities = (0..1100).collect();
    msgs.clear();
    encode_announcements(&FOUR, &attrs, &hop(), &prefixes, &mut msgs);
    assert!(msgs.is_empty());

    // Nothing to send.
    encode_announcements(&FOUR, &our_attrs(), &hop(), &[], &mut msgs);
    encode_withdrawals(&FOUR, &[], &mut msgs);
    assert!(msgs.is_empty());

    // IPv4 only: classic NLRI, no MP_REACH.
    let v4: Vec<IpNet> = mixed(0, 2_000);
    encode_announcements(&FOUR, &our_attrs(), &hop(), &v4, &mut msgs);
    let updates = decode_all(&msgs, &FOUR);
    assert!(updates.iter().all(|u| u.attributes.mp_reach.is_none()));
    same_multiset(updates.iter().flat_map(|u| u.announced()), &v4);
}
