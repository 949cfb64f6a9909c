//! The OPEN exchange as the session judges it (RFC 4271 §4.2, §6.2), pure: the OPEN we
//! send ([`our_open`], with the identifier [`our_id`] picks), whether we accept the peer's
//! ([`check_open`]) and the address families the two settled ([`families`]).
//!
//! The codec has checked the OPEN's structure (version, parameters, capability lengths);
//! the FSM checks the hold time (1 or 2 s: OPEN Message Error / Unacceptable Hold Time,
//! `fsm::Fsm::handle` on `OpenReceived`). What is left needs the session's configuration:
//! the peer's AS, its identifier and a family in common.

use super::packet::{
    Capability, Notification, Open, AFI_IPV4, AFI_IPV6, OPEN_MESSAGE_ERROR, SAFI_UNICAST,
};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// The unicast families both sides announced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Families {
    pub ipv4: bool,
    pub ipv6: bool,
}

/// The families we can exchange with a peer that sent `peer`: we offer IPv4 and IPv6
/// unicast; a peer without any Multiprotocol capability speaks IPv4 only (RFC 4760 §8).
pub fn families(peer: &Open) -> Families {
    let mp = peer
        .capabilities
        .iter()
        .any(|c| matches!(c, Capability::Multiprotocol { .. }));
    Families {
        ipv4: !mp || peer.supports(AFI_IPV4, SAFI_UNICAST),
        ipv6: peer.supports(AFI_IPV6, SAFI_UNICAST),
    }
}

/// Why we refuse the peer's OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// Subcode 2: the AS in the OPEN (the 4-octet one if the peer sent it) is not the
    /// configured `remote_as`.
    BadPeerAs { sent: u32, configured: u32 },
    /// Subcode 3: 0.0.0.0, or our own identifier.
    BadBgpId(Ipv4Addr),
    /// Subcode 7: no unicast family in common.
    NoCommonFamily,
}

impl Rejected {
    /// The NOTIFICATION that answers the OPEN (OPEN Message Error, RFC 4271 §6.2).
    pub fn notification(&self) -> Notification {
        let subcode = match self {
            Rejected::BadPeerAs { .. } => 2,
            Rejected::BadBgpId(_) => 3,
            Rejected::NoCommonFamily => 7,
        };
        Notification::new(OPEN_MESSAGE_ERROR, subcode)
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::BadPeerAs { sent, configured } => write!(
                f,
                "the peer says it is AS {sent}, configured remote_as is {configured}"
            ),
            Rejected::BadBgpId(id) => write!(f, "the peer's BGP identifier {id} is not usable"),
            Rejected::NoCommonFamily => f.write_str("no address family in common with the peer"),
        }
    }
}

/// Judges the peer's OPEN for a session configured with `remote_as`, where we are
/// `our_id`: the families to exchange, or why not.
pub fn check_open(peer: &Open, remote_as: u32, our_id: Ipv4Addr) -> Result<Families, Rejected> {
    if peer.asn != remote_as {
        return Err(Rejected::BadPeerAs {
            sent: peer.asn,
            configured: remote_as,
        });
    }
    if peer.bgp_id.is_unspecified() || peer.bgp_id == our_id {
        return Err(Rejected::BadBgpId(peer.bgp_id));
    }
    let f = families(peer);
    if f == Families::default() {
        return Err(Rejected::NoCommonFamily);
    }
    Ok(f)
}

/// Our BGP identifier: `router_id` if configured, else our IPv4 address on the session
/// (`local_ip`), else one derived from our IPv6 address (stable for the session's
/// lifetime), else 1.0.0.1.
pub fn our_id(router_id: Option<Ipv4Addr>, local_ip: Option<IpAddr>) -> Ipv4Addr {
    if let Some(id) = router_id {
        return id;
    }
    match local_ip {
        Some(IpAddr::V4(v4)) if !v4.is_unspecified() => v4,
        Some(IpAddr::V6(v6)) => {
            let mut id = [0u8; 4];
            for (i, b) in v6.octets().iter().enumerate() {
                id[i % 4] ^= b;
            }
            id[0] |= 1;
            Ipv4Addr::from(id)
        }
        _ => Ipv4Addr::new(1, 0, 0, 1),
    }
}

/// The OPEN we send: IPv4 and IPv6 unicast, route refresh, 4-octet AS.
pub fn our_open(local_as: u32, hold_time: u16, bgp_id: Ipv4Addr) -> Open {
    Open {
        version: 4,
        asn: local_as,
        hold_time,
        bgp_id,
        capabilities: vec![
            Capability::Multiprotocol {
                afi: AFI_IPV4,
                safi: SAFI_UNICAST,
            },
            Capability::Multiprotocol {
                afi: AFI_IPV6,
                safi: SAFI_UNICAST,
            },
            Capability::RouteRefresh,
            Capability::FourOctetAs(local_as),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::packet::{decode, Context, Message};

    /// An OPEN from AS `asn` (2-octet field, no 4-octet capability) with hold time 90,
    /// identifier `id` and these capabilities (each: code, length, value).
    fn open(asn: u16, id: [u8; 4], caps: &[u8]) -> Open {
        let mut body = vec![4];
        body.extend_from_slice(&asn.to_be_bytes());
        body.extend_from_slice(&[0, 90]);
        body.extend_from_slice(&id);
        if caps.is_empty() {
            body.push(0);
        } else {
            body.extend_from_slice(&[caps.len() as u8 + 2, 2, caps.len() as u8]);
            body.extend_from_slice(caps);
        }
        let mut msg = vec![0xff; 16];
        msg.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        msg.push(1);
        msg.extend_from_slice(&body);
        match decode(&msg, &Context::default()) {
            Ok(Message::Open(o)) => o,
            other => panic!("not an OPEN: {other:?}"),
        }
    }

    const MP_V6: [u8; 6] = [1, 4, 0, 2, 0, 1];
    const MP_V4: [u8; 6] = [1, 4, 0, 1, 0, 1];
    /// Multiprotocol for IPv4 multicast only.
    const MP_V4_MULTICAST: [u8; 6] = [1, 4, 0, 1, 0, 2];
    const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);

    #[test]
    fn an_open_from_the_right_peer_is_accepted_with_the_families_in_common() {
        let both = [MP_V4, MP_V6].concat();
        let got = check_open(&open(65002, [10, 0, 0, 9], &both), 65002, US);
        assert_eq!(
            got,
            Ok(Families {
                ipv4: true,
                ipv6: true
            })
        );
        let v6 = check_open(&open(65002, [10, 0, 0, 9], &MP_V6), 65002, US);
        assert_eq!(v6.map(|f| (f.ipv4, f.ipv6)), Ok((false, true)));
        let none = check_open(&open(65002, [10, 0, 0, 9], &[]), 65002, US);
        assert_eq!(
            none.map(|f| (f.ipv4, f.ipv6)),
            Ok((true, false)),
            "RFC 4760 §8"
        );
    }

    #[test]
    fn a_wrong_peer_as_is_open_error_2() {
        let e = check_open(&open(65009, [10, 0, 0, 9], &MP_V6), 65002, US).unwrap_err();
        let n = e.notification();
        assert_eq!((n.code, n.subcode, n.data.len()), (2, 2, 0));
        assert_eq!(
            e.to_string(),
            "the peer says it is AS 65009, configured remote_as is 65002"
        );
    }

    #[test]
    fn identifier_zero_or_ours_is_open_error_3() {
        for id in [[0, 0, 0, 0], US.octets()] {
            let e = check_open(&open(65002, id, &MP_V6), 65002, US).unwrap_err();
            assert_eq!(e, Rejected::BadBgpId(Ipv4Addr::from(id)));
            let n = e.notification();
            assert_eq!((n.code, n.subcode), (2, 3));
        }
    }

    #[test]
    fn no_family_in_common_is_open_error_7() {
        let e = check_open(&open(65002, [10, 0, 0, 9], &MP_V4_MULTICAST), 65002, US);
        let n = e.unwrap_err().notification();
        assert_eq!((n.code, n.subcode), (2, 7));
    }

    #[test]
    fn our_identifier_is_configured_or_taken_from_our_address() {
        let configured = Some(Ipv4Addr::new(192, 0, 2, 1));
        let v4: IpAddr = "127.0.0.1".parse().expect("ip");
        let v6: IpAddr = "2001:db8::1".parse().expect("ip");
        assert_eq!(our_id(configured, Some(v4)), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(our_id(None, Some(v4)), Ipv4Addr::new(127, 0, 0, 1));
        // 20 01 0d b8 .. 00 01 folded into 4 bytes by XOR, low bit of the first set.
        assert_eq!(
            our_id(None, Some(v6)),
            Ipv4Addr::new(0x21, 0x01, 0x0d, 0xb9)
        );
        assert_eq!(
            our_id(None, Some("0.0.0.0".parse().expect("ip"))),
            Ipv4Addr::new(1, 0, 0, 1)
        );
        assert_eq!(our_id(None, None), Ipv4Addr::new(1, 0, 0, 1));
    }

    #[test]
    fn our_open_on_the_wire() {
        let mut b = Vec::new();
        Message::Open(our_open(4_200_000_000, 90, Ipv4Addr::new(10, 0, 0, 5)))
            .encode(&Context::default(), &mut b);
        let mut want = vec![0xff; 16];
        want.extend_from_slice(&[0, 51, 1, 4]);
        want.extend_from_slice(&[0x5b, 0xa0]); // AS_TRANS in the 2-octet field
        want.extend_from_slice(&[0, 90, 10, 0, 0, 5]);
        want.extend_from_slice(&[22, 2, 20]); // one Capabilities parameter
        want.extend_from_slice(&[1, 4, 0, 1, 0, 1, 1, 4, 0, 2, 0, 1]); // MP IPv4, IPv6
        want.extend_from_slice(&[2, 0]); // route refresh
        want.extend_from_slice(&[65, 4, 0xfa, 0x56, 0xea, 0x00]); // 4-octet AS
        assert_eq!(b, want);
    }
}
