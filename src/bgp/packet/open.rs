//! OPEN messages (RFC 4271 §4.2), capabilities (RFC 5492) and extended optional
//! parameters (RFC 9072).

use super::notification::*;
use super::reader::Reader;
use super::{AFI_IPV4, AS_TRANS, SAFI_UNICAST};
use std::net::Ipv4Addr;

pub const BGP_VERSION: u8 = 4;

const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072: this "Non-Ext OP Type" announces 2-byte parameter lengths.
const PARAM_EXTENDED: u8 = 255;

pub const CAP_MULTIPROTOCOL: u8 = 1;
pub const CAP_ROUTE_REFRESH: u8 = 2;
pub const CAP_EXTENDED_MESSAGE: u8 = 6;
pub const CAP_GRACEFUL_RESTART: u8 = 64;
pub const CAP_FOUR_OCTET_AS: u8 = 65;
pub const CAP_ADD_PATH: u8 = 69;
pub const CAP_ENHANCED_ROUTE_REFRESH: u8 = 70;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    /// The real ASN: the 4-octet AS capability's if present, else My AS.
    pub asn: u32,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

/// Capabilities we understand, plus everything else kept verbatim (RFC 5492: unknown
/// capabilities are ignored, not rejected). Graceful Restart and ADD-PATH are carried
/// raw: we neither use nor validate them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    Multiprotocol { afi: u16, safi: u8 },
    RouteRefresh,
    EnhancedRouteRefresh,
    FourOctetAs(u32),
    GracefulRestart(Vec<u8>),
    AddPath(Vec<u8>),
    ExtendedMessage,
    Unknown { code: u8, value: Vec<u8> },
}

impl Open {
    /// The ASN of the 4-octet AS capability (RFC 6793), if the peer sent one.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
    }

    /// Whether the peer advertised (afi, safi). RFC 4760 §8: a peer that advertises no
    /// Multiprotocol capability at all supports IPv4 unicast only.
    pub fn supports(&self, afi: u16, safi: u8) -> bool {
        let mut any_mp = false;
        for c in &self.capabilities {
            if let Capability::Multiprotocol { afi: a, safi: s } = *c {
                if (a, s) == (afi, safi) {
                    return true;
                }
                any_mp = true;
            }
        }
        !any_mp && (afi, safi) == (AFI_IPV4, SAFI_UNICAST)
    }

    /// Whether the peer can be sent ROUTE-REFRESH (RFC 2918).
    pub fn route_refresh(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::RouteRefresh))
    }
}

fn open_error(subcode: u8) -> Notification {
    Notification::new(OPEN_MESSAGE_ERROR, subcode)
}

/// Decodes an OPEN body. Only the structure is checked here; AS, BGP ID and hold time
/// are judged by the session layer, which knows the configuration.
pub(super) fn decode(body: &[u8]) -> Result<Open, Notification> {
    let short = || open_error(OPEN_UNSPECIFIC);
    let mut r = Reader::new(body);
    let version = r.u8().ok_or_else(short)?;
    if version != BGP_VERSION {
        // RFC 4271 §6.2: data = the largest version we support.
        return Err(Notification::with_data(
            OPEN_MESSAGE_ERROR,
            UNSUPPORTED_VERSION_NUMBER,
            u16::from(BGP_VERSION).to_be_bytes().to_vec(),
        ));
    }
    let my_as = r.u16().ok_or_else(short)?;
    let hold_time = r.u16().ok_or_else(short)?;
    let bgp_id = Ipv4Addr::from(r.array::<4>().ok_or_else(short)?);
    let opt_len = r.u8().ok_or_else(short)?;
    let extended = opt_len != 0 && r.peek_rest().first() == Some(&PARAM_EXTENDED);
    let params = if extended {
        r.u8().ok_or_else(short)?;
        let ext_len = r.u16().ok_or_else(short)?;
        r.take(usize::from(ext_len)).ok_or_else(short)?
    } else {
        r.take(usize::from(opt_len)).ok_or_else(short)?
    };
    // Bytes after the parameters mean the lengths disagree: the message is not what the
    // peer thinks it sent, so refuse it rather than guess.
    if !r.is_empty() {
        return Err(short());
    }
    let mut capabilities = Vec::new();
    let mut r = Reader::new(params);
    while !r.is_empty() {
        let kind = r.u8().ok_or_else(short)?;
        let len = if extended {
            r.u16()
        } else {
            r.u8().map(u16::from)
        };
        let value = len
            .and_then(|len| r.take(usize::from(len)))
            .ok_or_else(short)?;
        if kind != PARAM_CAPABILITIES {
            return Err(open_error(UNSUPPORTED_OPTIONAL_PARAMETER));
        }
        decode_capabilities(value, &mut capabilities)?;
    }
    let asn = capabilities
        .iter()
        .find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
        .unwrap_or(u32::from(my_as));
    Ok(Open {
        version,
        asn,
        hold_time,
        bgp_id,
        capabilities,
    })
}

/// Capabilities of one parameter. A known capability with the wrong length is an OPEN
/// Message Error / Unspecific (data = the capability): guessing would be worse, e.g.
/// ignoring a broken 4-octet AS capability would make us misparse every AS_PATH.
fn decode_capabilities(bytes: &[u8], caps: &mut Vec<Capability>) -> Result<(), Notification> {
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let whole = r.peek_rest();
        let bad = || open_error(OPEN_UNSPECIFIC);
        let code = r.u8().ok_or_else(bad)?;
        let len = r.u8().ok_or_else(bad)?;
        let value = r.take(usize::from(len)).ok_or_else(bad)?;
        let mut v = Reader::new(value);
        let cap = match (code, value.len()) {
            (CAP_MULTIPROTOCOL, 4) => {
                let afi = v.u16();
                let _reserved = v.u8();
                afi.zip(v.u8())
                    .map(|(afi, safi)| Capability::Multiprotocol { afi, safi })
            }
            (CAP_ROUTE_REFRESH, 0) => Some(Capability::RouteRefresh),
            (CAP_ENHANCED_ROUTE_REFRESH, 0) => Some(Capability::EnhancedRouteRefresh),
            (CAP_EXTENDED_MESSAGE, 0) => Some(Capability::ExtendedMessage),
            (CAP_FOUR_OCTET_AS, 4) => v.u32().map(Capability::FourOctetAs),
            (CAP_GRACEFUL_RESTART, _) => Some(Capability::GracefulRestart(value.to_vec())),
            (CAP_ADD_PATH, _) => Some(Capability::AddPath(value.to_vec())),
            (
                CAP_MULTIPROTOCOL
                | CAP_ROUTE_REFRESH
                | CAP_ENHANCED_ROUTE_REFRESH
                | CAP_EXTENDED_MESSAGE
                | CAP_FOUR_OCTET_AS,
                _,
            ) => None,
            _ => Some(Capability::Unknown {
                code,
                value: value.to_vec(),
            }),
        };
        let Some(cap) = cap else {
            let data = whole.get(..2 + value.len()).unwrap_or_default().to_vec();
            return Err(Notification::with_data(
                OPEN_MESSAGE_ERROR,
                OPEN_UNSPECIFIC,
                data,
            ));
        };
        caps.push(cap);
    }
    Ok(())
}

fn encode_capability(cap: &Capability, out: &mut Vec<u8>) {
    let (code, value): (u8, Vec<u8>) = match cap {
        Capability::Multiprotocol { afi, safi } => {
            let [a, b] = afi.to_be_bytes();
            (CAP_MULTIPROTOCOL, vec![a, b, 0, *safi])
        }
        Capability::RouteRefresh => (CAP_ROUTE_REFRESH, Vec::new()),
        Capability::EnhancedRouteRefresh => (CAP_ENHANCED_ROUTE_REFRESH, Vec::new()),
        Capability::FourOctetAs(asn) => (CAP_FOUR_OCTET_AS, asn.to_be_bytes().to_vec()),
        Capability::GracefulRestart(v) => (CAP_GRACEFUL_RESTART, v.clone()),
        Capability::AddPath(v) => (CAP_ADD_PATH, v.clone()),
        Capability::ExtendedMessage => (CAP_EXTENDED_MESSAGE, Vec::new()),
        Capability::Unknown { code, value } => (*code, value.clone()),
    };
    // A capability value has a 1-byte length; longer is a caller bug, cut rather than panic.
    let value = value.get(..255).unwrap_or(&value);
    out.push(code);
    out.push(value.len() as u8);
    out.extend_from_slice(value);
}

/// Appends an OPEN body. My AS is AS_TRANS when the ASN needs 4 octets (the caller adds
/// the FourOctetAs capability). All capabilities go in one Capabilities parameter; if
/// that does not fit the 1-byte parameter length, RFC 9072's extended form is used.
pub(super) fn encode_body(open: &Open, out: &mut Vec<u8>) {
    out.push(open.version);
    let my_as = u16::try_from(open.asn).unwrap_or(AS_TRANS as u16);
    out.extend_from_slice(&my_as.to_be_bytes());
    out.extend_from_slice(&open.hold_time.to_be_bytes());
    out.extend_from_slice(&open.bgp_id.octets());
    let mut caps = Vec::new();
    open.capabilities
        .iter()
        .for_each(|c| encode_capability(c, &mut caps));
    if caps.is_empty() {
        out.push(0);
    } else if caps.len() <= 253 {
        out.extend_from_slice(&[caps.len() as u8 + 2, PARAM_CAPABILITIES, caps.len() as u8]);
        out.extend_from_slice(&caps);
    } else {
        caps.truncate(usize::from(u16::MAX) - 3);
        let param_len = (caps.len() as u16).to_be_bytes();
        let total = (caps.len() as u16 + 3).to_be_bytes();
        out.extend_from_slice(&[255, PARAM_EXTENDED]);
        out.extend_from_slice(&total);
        out.push(PARAM_CAPABILITIES);
        out.extend_from_slice(&param_len);
        out.extend_from_slice(&caps);
    }
}
