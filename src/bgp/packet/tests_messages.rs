//! Hand-built vectors for the other messages: OPEN parameters, framing errors,
//! ROUTE-REFRESH, NOTIFICATION helpers and End-of-RIB.

use super::tests::{attr, message, reset, upd, update_msg, FOUR};
use super::*;
use std::net::Ipv4Addr;

fn open_msg(params: &[u8], opt_len: u8) -> Vec<u8> {
    let mut body = vec![4, 0xfd, 0xe9, 0, 90, 192, 0, 2, 1, opt_len];
    body.extend_from_slice(params);
    message(TYPE_OPEN, &body)
}

fn open_err(msg: &[u8]) -> (u8, u8, Vec<u8>) {
    reset(msg, &FOUR)
}

#[test]
fn open_parameters() {
    // Two capability parameters, the first with two capabilities, an unknown one kept.
    let params = [2, 8, 1, 4, 0, 2, 0, 1, 2, 0, 2, 5, 200, 3, 1, 2, 3];
    let o = match decode(&open_msg(&params, params.len() as u8), &FOUR) {
        Ok(Message::Open(o)) => o,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        o.capabilities,
        vec![
            Capability::Multiprotocol { afi: 2, safi: 1 },
            Capability::RouteRefresh,
            Capability::Unknown {
                code: 200,
                value: vec![1, 2, 3]
            },
        ]
    );
    assert_eq!(
        (o.asn, o.four_octet_as(), o.route_refresh()),
        (65001, None, true)
    );
    assert!(o.supports(2, 1) && !o.supports(1, 1));
    // No Multiprotocol capability at all implies IPv4 unicast (RFC 4760 §8).
    let plain = match decode(&open_msg(&[], 0), &FOUR) {
        Ok(Message::Open(o)) => o,
        other => panic!("{other:?}"),
    };
    assert!(plain.supports(1, 1) && !plain.supports(2, 1));

    // RFC 9072 extended optional parameters.
    let ext = [255, 0, 9, 2, 0, 6, 65, 4, 0xfa, 0x56, 0xea, 0x01];
    match decode(&open_msg(&ext, 255), &FOUR) {
        Ok(Message::Open(o)) => {
            assert_eq!(o.capabilities, vec![Capability::FourOctetAs(4_200_000_001)]);
            assert_eq!(o.asn, 4_200_000_001);
        }
        other => panic!("{other:?}"),
    }
    // And we produce it when the capabilities do not fit 255 bytes.
    let open = Open {
        version: 4,
        asn: 65001,
        hold_time: 0,
        bgp_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities: (0..3)
            .map(|i| Capability::Unknown {
                code: 200 + i,
                value: vec![i; 100],
            })
            .collect(),
    };
    let mut out = Vec::new();
    Message::Open(open.clone()).encode(&FOUR, &mut out);
    assert_eq!(out.get(28..30), Some(&[255, 255][..]));
    assert_eq!(decode(&out, &FOUR), Ok(Message::Open(open)));

    // Unsupported optional parameter (type 1, the old authentication parameter).
    assert_eq!(
        open_err(&open_msg(&[1, 1, 0], 3)),
        (2, UNSUPPORTED_OPTIONAL_PARAMETER, vec![])
    );
    // Version 3.
    let mut v3 = open_msg(&[], 0);
    v3[19] = 3;
    assert_eq!(open_err(&v3), (2, UNSUPPORTED_VERSION_NUMBER, vec![0, 4]));
    // Malformed known capability (4-octet AS with 2 bytes).
    assert_eq!(
        open_err(&open_msg(&[2, 4, 65, 2, 0, 1], 6)),
        (2, 0, vec![65, 2, 0, 1])
    );
    // Truncated parameter, truncated capability, length disagreeing with the message.
    assert_eq!(open_err(&open_msg(&[2, 9, 1, 4], 4)).1, 0);
    assert_eq!(open_err(&open_msg(&[2, 4, 1, 4, 0, 1], 6)).1, 0);
    assert_eq!(open_err(&open_msg(&[2, 0, 7], 2)).1, 0);
    assert_eq!(open_err(&open_msg(&[2, 0], 3)).1, 0);
}

#[test]
fn framing_errors() {
    let ka = message(TYPE_KEEPALIVE, &[]);
    assert_eq!(frame(&ka), Ok(Some(19)));
    assert_eq!(frame(&ka[..18]), Ok(None));
    assert_eq!(frame(&[]), Ok(None));
    let two = [ka.clone(), ka.clone()].concat();
    assert_eq!(frame(&two), Ok(Some(19)));
    let hdr = |e: Result<Option<usize>, Notification>| e.map_err(|n| (n.code, n.subcode, n.data));
    // Marker, even before the whole header has arrived.
    assert_eq!(
        hdr(frame(&[0xff, 0xfe])),
        Err((1, CONNECTION_NOT_SYNCHRONIZED, vec![]))
    );
    let mut bad = ka.clone();
    bad[15] = 0;
    assert_eq!(
        hdr(frame(&bad)).map_err(|e| e.1),
        Err(CONNECTION_NOT_SYNCHRONIZED)
    );
    let with_len = |len: u16, kind: u8| {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&len.to_be_bytes());
        m.push(kind);
        m
    };
    assert_eq!(
        hdr(frame(&with_len(18, 4))),
        Err((1, BAD_MESSAGE_LENGTH, vec![0, 18]))
    );
    assert_eq!(
        hdr(frame(&with_len(4097, 2))),
        Err((1, BAD_MESSAGE_LENGTH, vec![0x10, 0x01]))
    );
    assert_eq!(
        hdr(frame(&with_len(20, 4))),
        Err((1, BAD_MESSAGE_LENGTH, vec![0, 20]))
    );
    assert_eq!(
        hdr(frame(&with_len(28, 1))),
        Err((1, BAD_MESSAGE_LENGTH, vec![0, 28]))
    );
    assert_eq!(
        hdr(frame(&with_len(22, 2))),
        Err((1, BAD_MESSAGE_LENGTH, vec![0, 22]))
    );
    assert_eq!(
        hdr(frame(&with_len(20, 3))),
        Err((1, BAD_MESSAGE_LENGTH, vec![0, 20]))
    );
    assert_eq!(
        hdr(frame(&with_len(22, 5))),
        Err((1, BAD_MESSAGE_LENGTH, vec![0, 22]))
    );
    assert_eq!(
        hdr(frame(&with_len(19, 6))),
        Err((1, BAD_MESSAGE_TYPE, vec![6]))
    );
    assert_eq!(
        hdr(frame(&with_len(19, 0))),
        Err((1, BAD_MESSAGE_TYPE, vec![0]))
    );
    assert_eq!(frame(&with_len(4096, 2)), Ok(None));
    // decode insists on exactly one message.
    assert_eq!(reset(&two, &FOUR).1, BAD_MESSAGE_LENGTH);
    assert_eq!(reset(&ka[..18], &FOUR).1, BAD_MESSAGE_LENGTH);
}

#[test]
fn route_refresh_subtypes() {
    let rr = |body: &[u8]| decode(&message(TYPE_ROUTE_REFRESH, body), &FOUR);
    let ok = |afi, safi, subtype| Ok(Message::RouteRefresh(RouteRefresh { afi, safi, subtype }));
    assert_eq!(rr(&[0, 2, 1, 1]), ok(2, 1, RR_BEGIN));
    assert_eq!(
        rr(&[0, 1, 0, 1, 9, 9]),
        ok(1, 1, RR_NORMAL),
        "ORF entries ignored"
    );
    assert_eq!(
        rr(&[0, 2, 7, 1]),
        ok(2, 1, 7),
        "unknown subtype: the caller ignores it"
    );
    let long = message(TYPE_ROUTE_REFRESH, &[0, 2, 2, 1, 0]);
    assert_eq!(
        reset(&long, &FOUR),
        (7, INVALID_MESSAGE_LENGTH, long.clone())
    );
}

#[test]
fn notifications() {
    let n = Notification::cease_shutdown("maintenance");
    assert_eq!(n.data, b"\x0bmaintenance");
    let mut out = Vec::new();
    Message::Notification(n.clone()).encode(&FOUR, &mut out);
    assert_eq!(out, message(TYPE_NOTIFICATION, b"\x06\x02\x0bmaintenance"));
    assert_eq!(decode(&out, &FOUR), Ok(Message::Notification(n)));

    let long = "é".repeat(200); // 400 bytes: cut to 254, never inside a character
    let n = Notification::cease_reset(&long);
    assert_eq!(
        (n.subcode, n.data.len(), n.data[0]),
        (CEASE_ADMIN_RESET, 255, 254)
    );
    assert_eq!(n.shutdown_message(), Some("é".repeat(127)));
    assert_eq!(Notification::cease_shutdown("").data, Vec::<u8>::new());
    assert_eq!(Notification::cease_shutdown("").shutdown_message(), None);
    assert_eq!(
        Notification::with_data(6, 2, vec![9, b'a']).shutdown_message(),
        None
    );
    assert_eq!(
        Notification::with_data(6, 3, vec![1, b'a']).shutdown_message(),
        None
    );

    let d = |code, subcode| Notification::new(code, subcode).describe();
    assert_eq!(
        Notification::cease_reset("x").describe(),
        "Cease / Administrative Reset: \"x\""
    );
    assert_eq!(d(2, 2), "OPEN Message Error / Bad Peer AS");
    assert_eq!(d(3, 11), "UPDATE Message Error / Malformed AS_PATH");
    assert_eq!(d(3, 0), "UPDATE Message Error / Unspecific");
    assert_eq!(d(4, 0), "Hold Timer Expired");
    assert_eq!(
        d(5, 2),
        "Finite State Machine Error / Receive Unexpected Message in OpenConfirm State"
    );
    assert_eq!(d(6, 1), "Cease / Maximum Number of Prefixes Reached");
    assert_eq!(d(6, 8), "Cease / Out of Resources");
    assert_eq!(d(6, 0), "Cease");
    assert_eq!(d(6, 77), "Cease / subcode 77");
    assert_eq!(
        d(7, 1),
        "ROUTE-REFRESH Message Error / Invalid Message Length"
    );
    assert_eq!(d(1, 3), "Message Header Error / Bad Message Type");
    assert_eq!(d(42, 3), "error code 42 / subcode 3");
}

#[test]
fn end_of_rib() {
    for afi in [AFI_IPV4, AFI_IPV6] {
        let eor = Update::end_of_rib(afi);
        assert_eq!(eor.is_end_of_rib(), Some(afi));
        let mut out = Vec::new();
        Message::Update(eor.clone()).encode(&FOUR, &mut out);
        let want = if afi == AFI_IPV4 {
            update_msg(&[], &[], &[])
        } else {
            update_msg(&[], &attr(0x80, 15, &[0, 2, 1]), &[])
        };
        assert_eq!(out, want);
        assert_eq!(upd(&out, &FOUR).is_end_of_rib(), Some(afi));
    }
    let mut not = Update::end_of_rib(AFI_IPV6);
    not.attributes.origin = Some(Origin::Igp);
    assert_eq!(not.is_end_of_rib(), None);
    let wd = upd(&update_msg(&[], &attr(0x80, 15, &[0, 2, 1, 0]), &[]), &FOUR);
    assert_eq!(wd.is_end_of_rib(), None, "withdraws ::/0");
}
