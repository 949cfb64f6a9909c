//! Hand-built UPDATE vectors: every RFC 7606 branch, 4-octet AS handling, next-hop
//! forms, extended lengths and attribute order. Shared vector builders live here too.

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

pub(super) const FOUR: Context = Context {
    four_octet_as: true,
};
pub(super) const TWO: Context = Context {
    four_octet_as: false,
};

pub(super) fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

pub(super) fn update_msg(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut body = (withdrawn.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(withdrawn);
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(attrs);
    body.extend_from_slice(nlri);
    message(TYPE_UPDATE, &body)
}

/// One attribute; the Extended Length flag in `flags` selects a 2-byte length.
pub(super) fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut a = vec![flags, code];
    if flags & FLAG_EXTENDED_LENGTH != 0 {
        a.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        a.push(value.len() as u8);
    }
    a.extend_from_slice(value);
    a
}

fn origin() -> Vec<u8> {
    attr(0x40, 1, &[0])
}
fn as_path4() -> Vec<u8> {
    attr(0x40, 2, &[2, 1, 0, 0, 0xfd, 0xe9])
}
fn next_hop() -> Vec<u8> {
    attr(0x40, 3, &[192, 0, 2, 1])
}
fn mandatory() -> Vec<u8> {
    [origin(), as_path4(), next_hop()].concat()
}
const NLRI: &[u8] = &[24, 198, 51, 100];

fn mp_reach_v6(nh: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 2, 1, nh.len() as u8];
    v.extend_from_slice(nh);
    v.push(0);
    v.extend_from_slice(nlri);
    attr(0x80, 14, &v)
}
const V6_NLRI: &[u8] = &[48, 0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00];

pub(super) fn upd(msg: &[u8], ctx: &Context) -> Update {
    match decode(msg, ctx) {
        Ok(Message::Update(u)) => u,
        other => panic!("expected an UPDATE, got {other:?}"),
    }
}

pub(super) fn reset(msg: &[u8], ctx: &Context) -> (u8, u8, Vec<u8>) {
    match decode(msg, ctx) {
        Err(n) => (n.code, n.subcode, n.data),
        Ok(m) => panic!("expected a NOTIFICATION, decoded {m:?}"),
    }
}

/// Asserts treat-as-withdraw and returns the decoded UPDATE.
fn withdraw(attrs: &[u8]) -> Update {
    let u = upd(&update_msg(&[], attrs, NLRI), &FOUR);
    assert!(
        u.treat_as_withdraw.is_some(),
        "expected treat-as-withdraw: {u:?}"
    );
    assert_eq!(u.nlri.len(), 1, "the announced prefixes are still listed");
    u
}

/// Asserts a clean decode with exactly `discarded` dropped.
fn discard(attrs: &[u8], ctx: &Context, discarded: &[u8]) -> Update {
    let u = upd(&update_msg(&[], attrs, NLRI), ctx);
    assert_eq!(u.treat_as_withdraw, None);
    assert_eq!(u.discarded, discarded);
    u
}

#[test]
fn session_reset_on_lengths() {
    let m = |body: &[u8]| message(TYPE_UPDATE, body);
    // Withdrawn routes length overruns the message.
    assert_eq!(reset(&m(&[0, 9, 0, 0]), &FOUR).0, UPDATE_MESSAGE_ERROR);
    assert_eq!(reset(&m(&[0, 9, 0, 0]), &FOUR).1, MALFORMED_ATTRIBUTE_LIST);
    // Total path attribute length overruns.
    assert_eq!(
        reset(&m(&[0, 0, 0, 5, 0x40]), &FOUR).1,
        MALFORMED_ATTRIBUTE_LIST
    );
    // An attribute's length overruns the attribute section.
    let mut attrs = mandatory();
    attrs.extend_from_slice(&[0xc0, 8, 8, 0, 0, 0, 1]);
    let msg = update_msg(&[], &attrs, NLRI);
    assert_eq!(reset(&msg, &FOUR).1, MALFORMED_ATTRIBUTE_LIST);
    // The same with the extended-length flag and a 2-byte length.
    let msg = update_msg(&[], &[0x50, 1, 0, 2, 0], &[]);
    assert_eq!(reset(&msg, &FOUR).1, MALFORMED_ATTRIBUTE_LIST);
    // Fewer than 3 bytes left for an attribute header.
    let msg = update_msg(&[], &[origin(), vec![0x40, 2]].concat(), &[]);
    assert_eq!(reset(&msg, &FOUR).1, MALFORMED_ATTRIBUTE_LIST);
}

#[test]
fn session_reset_on_invalid_network_field() {
    let bad = [
        &[33, 1, 2, 3, 4, 5][..], // prefix length > 32
        &[24, 198, 51],           // truncated
        &[24, 198, 51, 100, 16],  // second prefix truncated
    ];
    for nlri in bad {
        let withdrawn = update_msg(nlri, &[], &[]);
        assert_eq!(reset(&withdrawn, &FOUR), (3, INVALID_NETWORK_FIELD, vec![]));
        let announced = update_msg(&[], &mandatory(), nlri);
        assert_eq!(reset(&announced, &FOUR), (3, INVALID_NETWORK_FIELD, vec![]));
    }
}

#[test]
fn session_reset_on_bad_mp_attributes() {
    let base = [origin(), as_path4()].concat();
    let bad_reach = [
        mp_reach_v6(&[1; 8], V6_NLRI),            // next hop length 8
        mp_reach_v6(&[192, 0, 2, 1], V6_NLRI),    // IPv4-sized hop for AFI 2
        mp_reach_v6(&[0; 16], &[129, 0]),         // prefix length > 128
        mp_reach_v6(&[0; 16], &[48, 0x20, 0x01]), // truncated prefix
        attr(0x80, 14, &[0, 2, 1, 16, 0, 0]),     // truncated next hop
        attr(0x80, 14, &[0, 2]),                  // truncated AFI/SAFI
        attr(0x80, 15, &[0, 2, 1, 64, 0]),        // truncated withdrawn prefix
    ];
    for mp in bad_reach {
        let msg = update_msg(&[], &[base.clone(), mp.clone()].concat(), &[]);
        assert_eq!(reset(&msg, &FOUR), (3, OPTIONAL_ATTRIBUTE_ERROR, mp));
    }
    // Present twice, even if both are fine.
    let mp = mp_reach_v6(&[0; 16], V6_NLRI);
    let msg = update_msg(&[], &[base.clone(), mp.clone(), mp].concat(), &[]);
    assert_eq!(reset(&msg, &FOUR).1, MALFORMED_ATTRIBUTE_LIST);
    let unreach = attr(0x80, 15, &[0, 2, 1]);
    let msg = update_msg(&[], &[unreach.clone(), unreach].concat(), &[]);
    assert_eq!(reset(&msg, &FOUR).1, MALFORMED_ATTRIBUTE_LIST);
    // Wrong flags (well-known transitive).
    let mp = attr(
        0x40,
        14,
        &[
            0, 2, 1, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    );
    let msg = update_msg(&[], &[base, mp.clone()].concat(), &[]);
    assert_eq!(reset(&msg, &FOUR), (3, ATTRIBUTE_FLAGS_ERROR, mp));
}

#[test]
fn session_reset_on_unrecognized_well_known() {
    let unknown = attr(0x40, 99, &[1, 2]);
    let msg = update_msg(&[], &[mandatory(), unknown.clone()].concat(), NLRI);
    assert_eq!(
        reset(&msg, &FOUR),
        (3, UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE, unknown)
    );
    // The same code as optional is kept.
    let u = upd(
        &update_msg(&[], &[mandatory(), attr(0xe0, 99, &[1, 2])].concat(), NLRI),
        &FOUR,
    );
    assert_eq!(
        u.attributes.other,
        vec![RawAttribute {
            flags: 0xe0,
            code: 99,
            value: vec![1, 2]
        }]
    );
}

#[test]
fn treat_as_withdraw_on_malformed_attributes() {
    let nh_as = [as_path4(), next_hop()].concat();
    let o_nh = [origin(), next_hop()].concat();
    let o_as = [origin(), as_path4()].concat();
    let cases: Vec<Vec<u8>> = vec![
        [attr(0x40, 1, &[3]), nh_as.clone()].concat(), // ORIGIN value
        [attr(0x40, 1, &[0, 0]), nh_as.clone()].concat(), // ORIGIN length
        [attr(0xc0, 1, &[0]), nh_as.clone()].concat(), // ORIGIN flags
        [attr(0x40, 2, &[5, 1, 0, 0, 0, 1]), o_nh.clone()].concat(), // segment type 5
        [attr(0x40, 2, &[2, 0]), o_nh.clone()].concat(), // zero-length segment
        [attr(0x40, 2, &[2, 2, 0, 0, 0, 1]), o_nh.clone()].concat(), // segment overrun
        [attr(0x40, 2, &[2, 1, 0, 0, 0, 1, 2]), o_nh].concat(), // lone trailing byte
        [attr(0x40, 3, &[192, 0, 2, 1, 0]), o_as.clone()].concat(), // NEXT_HOP length
        [mandatory(), attr(0x80, 4, &[0, 0, 1])].concat(), // MED length
        [mandatory(), attr(0x40, 4, &[0, 0, 0, 1])].concat(), // MED flags
        [mandatory(), attr(0xc0, 8, &[0, 0, 0, 1, 0])].concat(), // COMMUNITIES length
        [mandatory(), attr(0xc0, 8, &[])].concat(),    // COMMUNITIES empty
        [mandatory(), attr(0x40, 8, &[0, 0, 0, 1])].concat(), // COMMUNITIES flags
        [mandatory(), attr(0xc0, 32, &[0; 13])].concat(), // LARGE_COMMUNITY length
        [mandatory(), attr(0xc0, 32, &[])].concat(),   // LARGE_COMMUNITY empty
    ];
    for attrs in cases {
        withdraw(&attrs);
    }
    let u = withdraw(&[attr(0x40, 1, &[3]), nh_as].concat());
    assert_eq!(
        u.treat_as_withdraw.as_deref(),
        Some("malformed ORIGIN attribute")
    );
    assert_eq!(u.attributes.origin, None);
    assert_eq!(u.attributes.next_hop, Some(Ipv4Addr::new(192, 0, 2, 1)));
}

#[test]
fn treat_as_withdraw_on_missing_mandatory() {
    let u = withdraw(&[as_path4(), next_hop()].concat());
    assert_eq!(
        u.treat_as_withdraw.as_deref(),
        Some("missing well-known attribute ORIGIN")
    );
    let u = withdraw(&[origin(), next_hop()].concat());
    assert_eq!(
        u.treat_as_withdraw.as_deref(),
        Some("missing well-known attribute AS_PATH")
    );
    let u = withdraw(&[origin(), as_path4()].concat());
    assert_eq!(
        u.treat_as_withdraw.as_deref(),
        Some("missing well-known attribute NEXT_HOP")
    );

    // MP_REACH only: NEXT_HOP is not needed, ORIGIN/AS_PATH are.
    let mp = mp_reach_v6(
        &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        V6_NLRI,
    );
    let u = upd(
        &update_msg(&[], &[origin(), as_path4(), mp.clone()].concat(), &[]),
        &FOUR,
    );
    assert_eq!(u.treat_as_withdraw, None);
    let u = upd(&update_msg(&[], &[origin(), mp].concat(), &[]), &FOUR);
    assert!(u.treat_as_withdraw.is_some());
    assert_eq!(u.announced().count(), 1);

    // Withdrawals only: no attributes needed, and attribute errors do not stop them.
    let u = upd(&update_msg(NLRI, &[], &[]), &FOUR);
    assert_eq!((u.treat_as_withdraw, u.withdrawn.len()), (None, 1));
    let u = upd(&update_msg(NLRI, &attr(0x40, 1, &[7]), &[]), &FOUR);
    assert_eq!((u.withdrawn.len(), u.announced().count()), (1, 0));
}

#[test]
fn attribute_discard() {
    let agg4 = [0, 0, 0xfd, 0xe9, 10, 0, 0, 1];
    let u = discard(&[mandatory(), attr(0x40, 6, &[1])].concat(), &FOUR, &[6]);
    assert!(!u.attributes.atomic_aggregate);
    discard(&[mandatory(), attr(0xc0, 6, &[])].concat(), &FOUR, &[6]);
    let u = discard(&[mandatory(), attr(0x40, 6, &[])].concat(), &FOUR, &[]);
    assert!(u.attributes.atomic_aggregate);
    discard(
        &[mandatory(), attr(0xc0, 7, &agg4[..7])].concat(),
        &FOUR,
        &[7],
    );
    // 8 bytes is right with 4-octet ASNs and wrong without.
    let u = discard(&[mandatory(), attr(0xc0, 7, &agg4)].concat(), &FOUR, &[]);
    assert_eq!(
        u.attributes.aggregator,
        Some((65001, Ipv4Addr::new(10, 0, 0, 1)))
    );
    let as_path2 = attr(0x40, 2, &[2, 1, 0xfd, 0xe9]);
    let two = [origin(), as_path2, next_hop()].concat();
    discard(&[two.clone(), attr(0xc0, 7, &agg4)].concat(), &TWO, &[7]);
    discard(
        &[two.clone(), attr(0x80, 7, &agg4[..6])].concat(),
        &TWO,
        &[7],
    );
    // AS4_PATH / AS4_AGGREGATOR malformed: dropped, the 2-octet values stand.
    let u = discard(
        &[two.clone(), attr(0xc0, 17, &[2, 0])].concat(),
        &TWO,
        &[17],
    );
    assert_eq!(
        u.attributes.as_path.map(|p| p[0].asns.clone()),
        Some(vec![65001])
    );
    discard(
        &[two.clone(), attr(0xc0, 18, &agg4[..6])].concat(),
        &TWO,
        &[18],
    );
    discard(
        &[two, attr(0x40, 17, &[2, 1, 0, 0, 0, 1])].concat(),
        &TWO,
        &[17],
    );
    // LOCAL_PREF: discarded (see mod.rs), not treat-as-withdraw.
    let u = discard(&[mandatory(), attr(0x40, 5, &[0, 1])].concat(), &FOUR, &[5]);
    assert_eq!(u.attributes.local_pref, None);
    let u = discard(
        &[mandatory(), attr(0x40, 5, &[0, 0, 0, 100])].concat(),
        &FOUR,
        &[],
    );
    assert_eq!(u.attributes.local_pref, Some(100));
    // With 4-octet AS negotiated AS4_* are ignored outright.
    let u = discard(&[mandatory(), attr(0xc0, 17, &[2, 0])].concat(), &FOUR, &[]);
    assert!(u.attributes.other.is_empty());
}

#[test]
fn duplicate_attributes_keep_the_first() {
    let attrs = [mandatory(), attr(0x40, 1, &[2]), attr(0x40, 1, &[9])].concat();
    let u = discard(&attrs, &FOUR, &[1, 1]);
    assert_eq!(u.attributes.origin, Some(Origin::Igp));
    // Even a malformed first occurrence wins (and a malformed duplicate is not looked at).
    let attrs = [
        attr(0x40, 1, &[9]),
        attr(0x40, 1, &[0]),
        as_path4(),
        next_hop(),
    ]
    .concat();
    let u = withdraw(&attrs);
    assert_eq!(u.discarded, vec![1]);
    let opt = attr(0xc0, 200, &[1]);
    let u = discard(&[mandatory(), opt.clone(), opt].concat(), &FOUR, &[200]);
    assert_eq!(u.attributes.other.len(), 1);
}

fn seq(asns: &[u32]) -> Segment {
    Segment {
        kind: SegmentKind::Sequence,
        asns: asns.to_vec(),
    }
}

#[test]
fn two_octet_as_path_merges_as4_path() {
    // An OLD speaker (65010) prepended itself to a path from two 4-octet ASes.
    let as_path = attr(0x40, 2, &[2, 3, 0xfd, 0xf2, 0x5b, 0xa0, 0x5b, 0xa0]);
    let as4 = attr(
        0xc0,
        17,
        &[2, 2, 0xfa, 0x56, 0xea, 0x01, 0xfa, 0x56, 0xea, 0x02],
    );
    let agg = attr(0xc0, 7, &[0x5b, 0xa0, 10, 0, 0, 1]);
    let as4_agg = attr(0xc0, 18, &[0xfa, 0x56, 0xea, 0x01, 10, 0, 0, 1]);
    let attrs = [
        origin(),
        as_path.clone(),
        next_hop(),
        agg,
        as4.clone(),
        as4_agg.clone(),
    ];
    let u = discard(&attrs.concat(), &TWO, &[]);
    let merged = vec![seq(&[65010, 4_200_000_001, 4_200_000_002])];
    assert_eq!(u.attributes.as_path, Some(merged.clone()));
    assert_eq!(
        u.attributes.aggregator,
        Some((4_200_000_001, Ipv4Addr::new(10, 0, 0, 1)))
    );
    assert!(u.attributes.other.is_empty());

    // AS4_PATH longer than AS_PATH: ignored.
    let short = attr(0x40, 2, &[2, 1, 0x5b, 0xa0]);
    let u = discard(
        &[origin(), short, next_hop(), as4.clone()].concat(),
        &TWO,
        &[],
    );
    assert_eq!(u.attributes.as_path, Some(vec![seq(&[AS_TRANS])]));

    // AGGREGATOR from an OLD speaker (not AS_TRANS): AS4_AGGREGATOR and AS4_PATH ignored.
    let old_agg = attr(0xc0, 7, &[0xfd, 0xf2, 10, 0, 0, 2]);
    let attrs = [origin(), as_path, next_hop(), old_agg, as4, as4_agg];
    let u = discard(&attrs.concat(), &TWO, &[]);
    assert_eq!(
        u.attributes.as_path,
        Some(vec![seq(&[65010, AS_TRANS, AS_TRANS])])
    );
    assert_eq!(
        u.attributes.aggregator,
        Some((65010, Ipv4Addr::new(10, 0, 0, 2)))
    );

    // AS_SET counts as one; confederation segments count zero and stay in front.
    let as_path = attr(
        0x40,
        2,
        &[3, 1, 0xfd, 0xe8, 2, 1, 0x5b, 0xa0, 1, 2, 0, 1, 0, 2],
    );
    let as4 = attr(0xc0, 17, &[2, 1, 0xfa, 0x56, 0xea, 0x01, 1, 1, 0, 0, 0, 7]);
    let u = discard(&[origin(), as_path, next_hop(), as4].concat(), &TWO, &[]);
    let want = vec![
        Segment {
            kind: SegmentKind::ConfedSequence,
            asns: vec![65000],
        },
        seq(&[4_200_000_001]),
        Segment {
            kind: SegmentKind::Set,
            asns: vec![7],
        },
    ];
    assert_eq!(u.attributes.as_path, Some(want));
}

#[test]
fn as_trans_encoding() {
    let mut u = Update::default();
    u.attributes.origin = Some(Origin::Igp);
    u.attributes.as_path = Some(vec![seq(&[65001, 4_200_000_001])]);
    u.attributes.next_hop = Some(Ipv4Addr::new(192, 0, 2, 1));
    u.attributes.aggregator = Some((4_200_000_001, Ipv4Addr::new(10, 0, 0, 1)));
    u.nlri = vec!["198.51.100.0/24".parse().expect("net")];
    let mut out = Vec::new();
    Message::Update(u.clone()).encode(&TWO, &mut out);
    let attrs = [
        origin(),
        attr(0x40, 2, &[2, 2, 0xfd, 0xe9, 0x5b, 0xa0]),
        next_hop(),
        attr(0xc0, 7, &[0x5b, 0xa0, 10, 0, 0, 1]),
        attr(0xc0, 17, &[2, 2, 0, 0, 0xfd, 0xe9, 0xfa, 0x56, 0xea, 0x01]),
        attr(0xc0, 18, &[0xfa, 0x56, 0xea, 0x01, 10, 0, 0, 1]),
    ];
    assert_eq!(out, update_msg(&[], &attrs.concat(), NLRI));
    assert_eq!(decode(&out, &TWO), Ok(Message::Update(u.clone())));
    // No AS4_* when every ASN fits, and none with 4-octet peers.
    out.clear();
    Message::Update(u.clone()).encode(&FOUR, &mut out);
    assert_eq!(out.len(), 19 + 4 + 4 + 13 + 7 + 11 + 4);
    u.attributes.as_path = Some(vec![seq(&[65001])]);
    u.attributes.aggregator = None;
    out.clear();
    Message::Update(u).encode(&TWO, &mut out);
    assert_eq!(
        out,
        update_msg(
            &[],
            &[origin(), attr(0x40, 2, &[2, 1, 0xfd, 0xe9]), next_hop()].concat(),
            NLRI
        )
    );

    let open = Open {
        version: 4,
        asn: 4_200_000_001,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities: vec![Capability::FourOctetAs(4_200_000_001)],
    };
    out.clear();
    Message::Open(open.clone()).encode(&TWO, &mut out);
    assert_eq!(out.get(20..22), Some(&[0x5b, 0xa0][..]), "My AS = AS_TRANS");
    assert_eq!(decode(&out, &TWO), Ok(Message::Open(open)));
}

#[test]
fn next_hop_forms() {
    let global: Ipv6Addr = "2001:db8::1".parse().expect("addr");
    let ll: Ipv6Addr = "fe80::1".parse().expect("addr");
    let both = [global.octets(), ll.octets()].concat();
    let base = [origin(), as_path4()].concat();
    let u = upd(
        &update_msg(
            &[],
            &[base.clone(), mp_reach_v6(&both, V6_NLRI)].concat(),
            &[],
        ),
        &FOUR,
    );
    let mp = u.attributes.mp_reach.clone().expect("mp");
    assert_eq!(
        mp.next_hop,
        NextHop::V6 {
            global,
            link_local: Some(ll)
        }
    );
    assert_eq!(mp.nlri, vec!["2001:db8:100::/48".parse().expect("net")]);
    let mut out = Vec::new();
    Message::Update(u.clone()).encode(&FOUR, &mut out);
    assert_eq!(decode(&out, &FOUR), Ok(Message::Update(u)));

    // IPv4-mapped stays a V6 global.
    let mapped: Ipv6Addr = "::ffff:192.0.2.1".parse().expect("addr");
    let u = upd(
        &update_msg(
            &[],
            &[base.clone(), mp_reach_v6(&mapped.octets(), V6_NLRI)].concat(),
            &[],
        ),
        &FOUR,
    );
    let nh = u.attributes.mp_reach.map(|m| m.next_hop);
    assert_eq!(
        nh,
        Some(NextHop::V6 {
            global: mapped,
            link_local: None
        })
    );

    // AFI 1 in MP_REACH with a 4-byte next hop.
    let v4 = attr(0x80, 14, &[0, 1, 1, 4, 192, 0, 2, 9, 0, 24, 203, 0, 113]);
    let u = upd(&update_msg(&[], &[base.clone(), v4].concat(), &[]), &FOUR);
    let mp = u.attributes.mp_reach.clone().expect("mp");
    assert_eq!(mp.next_hop, NextHop::V4(Ipv4Addr::new(192, 0, 2, 9)));
    assert_eq!(
        u.announced().collect::<Vec<_>>(),
        vec!["203.0.113.0/24".parse::<ipnet::IpNet>().expect("net")]
    );

    // Families we never negotiate: kept, not decoded, no error.
    let vpn = attr(0x80, 14, &[0, 2, 128, 24, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
    let unreach = attr(0x80, 15, &[0, 1, 2, 0xff, 0xff]);
    let u = upd(&update_msg(&[], &[base, vpn, unreach].concat(), &[]), &FOUR);
    let mp = u.attributes.mp_reach.expect("mp");
    assert_eq!((mp.afi, mp.safi, mp.nlri.len()), (2, 128, 0));
    let mp = u.attributes.mp_unreach.expect("mp");
    assert_eq!((mp.afi, mp.safi, mp.withdrawn.len()), (1, 2, 0));
}

#[test]
fn extended_length_attributes() {
    // Accepted on a short value (BIRD does this) ...
    let attrs = [attr(0x50, 1, &[2]), as_path4(), next_hop()].concat();
    let u = discard(&attrs, &FOUR, &[]);
    assert_eq!(u.attributes.origin, Some(Origin::Incomplete));
    // ... and produced only above 255 bytes.
    let mut u = Update::default();
    u.attributes.communities = (0..70).collect();
    u.attributes.large_communities = vec![[1, 2, 3]];
    let mut out = Vec::new();
    Message::Update(u.clone()).encode(&FOUR, &mut out);
    assert_eq!(out.get(23..27), Some(&[0xd0, 8, 1, 24][..]));
    assert_eq!(out.get(27 + 280..27 + 283), Some(&[0xc0, 32, 12][..]));
    assert_eq!(decode(&out, &FOUR), Ok(Message::Update(u)));
}

#[test]
fn attributes_go_out_in_code_order_with_right_flags() {
    let mut a = Attributes {
        origin: Some(Origin::Egp),
        as_path: Some(vec![seq(&[65001])]),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        med: Some(5),
        local_pref: Some(100),
        atomic_aggregate: true,
        aggregator: Some((65001, Ipv4Addr::new(10, 0, 0, 1))),
        communities: vec![1],
        large_communities: vec![[1, 2, 3]],
        ..Attributes::default()
    };
    a.other = [40u8, 9, 16]
        .iter()
        .map(|&code| RawAttribute {
            flags: 0xc0,
            code,
            value: vec![code],
        })
        .collect();
    a.mp_unreach = Some(MpUnreach {
        afi: 2,
        safi: 1,
        withdrawn: vec![],
    });
    let u = Update {
        attributes: a,
        ..Update::default()
    };
    let mut out = Vec::new();
    Message::Update(u).encode(&FOUR, &mut out);
    // No attribute here needs the extended length, so each header is 3 bytes.
    let attrs = out.get(23..).expect("attrs");
    let (mut i, mut seen) = (0, Vec::new());
    while i + 3 <= attrs.len() {
        seen.push((attrs[i + 1], attrs[i]));
        i += 3 + usize::from(attrs[i + 2]);
    }
    let want = [
        (1, 0x40),
        (2, 0x40),
        (3, 0x40),
        (4, 0x80),
        (5, 0x40),
        (6, 0x40),
        (7, 0xc0),
        (8, 0xc0),
        (9, 0xc0),
        (15, 0x80),
        (16, 0xc0),
        (32, 0xc0),
        (40, 0xc0),
    ];
    assert_eq!(seen, want);
}
