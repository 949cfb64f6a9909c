//! Path attributes (RFC 4271 §4.3/§5, RFC 4760, RFC 1997, RFC 8092, RFC 6793) and their
//! RFC 7606 error handling. See the module docs in `mod.rs` for the choices made.

use super::as_path::{self, Segment};
use super::nlri;
use super::notification::*;
use super::reader::Reader;
use super::{Context, AFI_IPV4, AFI_IPV6, AS_TRANS, SAFI_UNICAST};
use ipnet::IpNet;
use std::net::{Ipv4Addr, Ipv6Addr};

pub const ATTR_ORIGIN: u8 = 1;
pub const ATTR_AS_PATH: u8 = 2;
pub const ATTR_NEXT_HOP: u8 = 3;
pub const ATTR_MED: u8 = 4;
pub const ATTR_LOCAL_PREF: u8 = 5;
pub const ATTR_ATOMIC_AGGREGATE: u8 = 6;
pub const ATTR_AGGREGATOR: u8 = 7;
pub const ATTR_COMMUNITIES: u8 = 8;
pub const ATTR_MP_REACH_NLRI: u8 = 14;
pub const ATTR_MP_UNREACH_NLRI: u8 = 15;
pub const ATTR_AS4_PATH: u8 = 17;
pub const ATTR_AS4_AGGREGATOR: u8 = 18;
pub const ATTR_LARGE_COMMUNITIES: u8 = 32;

pub const FLAG_OPTIONAL: u8 = 0x80;
pub const FLAG_TRANSITIVE: u8 = 0x40;
pub const FLAG_PARTIAL: u8 = 0x20;
pub const FLAG_EXTENDED_LENGTH: u8 = 0x10;

const WELL_KNOWN: u8 = FLAG_TRANSITIVE;
const OPTIONAL_TRANSITIVE: u8 = FLAG_OPTIONAL | FLAG_TRANSITIVE;
const OPTIONAL_NON_TRANSITIVE: u8 = FLAG_OPTIONAL;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub origin: Option<Origin>,
    pub as_path: Option<Vec<Segment>>,
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<(u32, Ipv4Addr)>,
    pub communities: Vec<u32>,
    pub large_communities: Vec<[u32; 3]>,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    /// Unrecognized optional attributes, sorted by type code (the order they are sent
    /// in; codes are unique since repeats are discarded). Flags are stored without the
    /// Extended Length bit, an encoding detail chosen again on output.
    pub other: Vec<RawAttribute>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Igp,
    Egp,
    Incomplete,
}

/// MP_REACH_NLRI. Only unicast IPv4/IPv6 NLRI is decoded; for any other AFI/SAFI (which
/// we never negotiate, so a peer sending it is misbehaving but harmless) `nlri` is empty
/// and `next_hop` is best effort (`V4(0.0.0.0)` if it is not 4, 16 or 32 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpReach {
    pub afi: u16,
    pub safi: u8,
    pub next_hop: NextHop,
    pub nlri: Vec<IpNet>,
}

/// MP_UNREACH_NLRI; `withdrawn` is empty for families other than IPv4/IPv6 unicast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpUnreach {
    pub afi: u16,
    pub safi: u8,
    pub withdrawn: Vec<IpNet>,
}

/// MP_REACH next hop. An IPv4-mapped address (`::ffff:a.b.c.d`) stays a `V6` global; the
/// caller decides whether to map it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHop {
    V4(Ipv4Addr),
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAttribute {
    pub flags: u8,
    pub code: u8,
    pub value: Vec<u8>,
}

/// The attribute section of an UPDATE after RFC 7606 handling.
#[derive(Default)]
pub(super) struct Decoded {
    pub attributes: Attributes,
    pub treat_as_withdraw: Option<String>,
    pub discarded: Vec<u8>,
}

/// What RFC 7606 prescribes when a recognized attribute is malformed.
enum OnError {
    TreatAsWithdraw,
    Discard,
}

/// The Optional and Transitive bits a recognized attribute must carry (RFC 7606 §3 c
/// checks only these two; Partial and the low bits are not checked).
fn expected_flags(code: u8) -> Option<u8> {
    Some(match code {
        ATTR_ORIGIN | ATTR_AS_PATH | ATTR_NEXT_HOP | ATTR_LOCAL_PREF | ATTR_ATOMIC_AGGREGATE => {
            WELL_KNOWN
        }
        ATTR_MED | ATTR_MP_REACH_NLRI | ATTR_MP_UNREACH_NLRI => OPTIONAL_NON_TRANSITIVE,
        ATTR_AGGREGATOR
        | ATTR_COMMUNITIES
        | ATTR_AS4_PATH
        | ATTR_AS4_AGGREGATOR
        | ATTR_LARGE_COMMUNITIES => OPTIONAL_TRANSITIVE,
        _ => return None,
    })
}

pub(super) fn name(code: u8) -> &'static str {
    match code {
        ATTR_ORIGIN => "ORIGIN",
        ATTR_AS_PATH => "AS_PATH",
        ATTR_NEXT_HOP => "NEXT_HOP",
        ATTR_MED => "MULTI_EXIT_DISC",
        ATTR_LOCAL_PREF => "LOCAL_PREF",
        ATTR_ATOMIC_AGGREGATE => "ATOMIC_AGGREGATE",
        ATTR_AGGREGATOR => "AGGREGATOR",
        ATTR_COMMUNITIES => "COMMUNITIES",
        ATTR_MP_REACH_NLRI => "MP_REACH_NLRI",
        ATTR_MP_UNREACH_NLRI => "MP_UNREACH_NLRI",
        ATTR_AS4_PATH => "AS4_PATH",
        ATTR_AS4_AGGREGATOR => "AS4_AGGREGATOR",
        ATTR_LARGE_COMMUNITIES => "LARGE_COMMUNITY",
        _ => "unknown",
    }
}

fn update_error(subcode: u8, data: &[u8]) -> Notification {
    Notification::with_data(UPDATE_MESSAGE_ERROR, subcode, data.to_vec())
}

/// Decodes the path attribute section. `Err` only for the session-reset cases; attribute
/// errors that RFC 7606 lets us survive are reported in the returned `Decoded`.
pub(super) fn decode(bytes: &[u8], ctx: &Context) -> Result<Decoded, Notification> {
    let malformed_list = || Notification::new(UPDATE_MESSAGE_ERROR, MALFORMED_ATTRIBUTE_LIST);
    let mut d = Decoded::default();
    let mut seen = [0u64; 4];
    let mut as4_path = None;
    let mut as4_aggregator = None;
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let whole = r.peek_rest();
        let flags = r.u8().ok_or_else(malformed_list)?;
        let code = r.u8().ok_or_else(malformed_list)?;
        let len = if flags & FLAG_EXTENDED_LENGTH != 0 {
            r.u16()
        } else {
            r.u8().map(u16::from)
        };
        // An attribute running past the section (RFC 7606 §4) hides whatever follows,
        // possibly MP_(UN)REACH_NLRI, so the NLRI cannot be known: session reset.
        let value = len.and_then(|len| r.take(usize::from(len)));
        let value = value.ok_or_else(malformed_list)?;
        let raw = whole.get(..whole.len() - r.len()).unwrap_or(whole);
        let flags = flags & !FLAG_EXTENDED_LENGTH;

        let (word, bit) = (usize::from(code / 64), 1u64 << (code % 64));
        let first = seen.get(word).is_some_and(|w| w & bit == 0);
        if let Some(w) = seen.get_mut(word) {
            *w |= bit;
        }
        if !first {
            // RFC 7606 §3 g.
            if code == ATTR_MP_REACH_NLRI || code == ATTR_MP_UNREACH_NLRI {
                return Err(update_error(MALFORMED_ATTRIBUTE_LIST, &[]));
            }
            d.discarded.push(code);
            continue;
        }

        let Some(expected) = expected_flags(code) else {
            if flags & FLAG_OPTIONAL == 0 {
                return Err(update_error(UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE, raw));
            }
            d.attributes.other.push(RawAttribute {
                flags,
                code,
                value: value.to_vec(),
            });
            continue;
        };
        let flags_ok = flags & OPTIONAL_TRANSITIVE == expected;
        let a = &mut d.attributes;
        let four = ctx.four_octet_as;
        let (ok, on_error) = match code {
            ATTR_MP_REACH_NLRI | ATTR_MP_UNREACH_NLRI => {
                // RFC 7606 §7.11/§7.12 defer to RFC 4760 §7: no treat-as-withdraw for the
                // attribute that says what to withdraw. Wrong flags make it malformed too
                // (§3 c) but are reported as such.
                if !flags_ok {
                    return Err(update_error(ATTRIBUTE_FLAGS_ERROR, raw));
                }
                let bad = || update_error(OPTIONAL_ATTRIBUTE_ERROR, raw);
                if code == ATTR_MP_REACH_NLRI {
                    a.mp_reach = Some(decode_mp_reach(value).ok_or_else(bad)?);
                } else {
                    a.mp_unreach = Some(decode_mp_unreach(value).ok_or_else(bad)?);
                }
                continue;
            }
            // With 4-octet AS negotiated these are meaningless (RFC 6793 §4.1): ignored,
            // not reported as malformed.
            ATTR_AS4_PATH | ATTR_AS4_AGGREGATOR if four => continue,
            ATTR_ORIGIN => (
                flags_ok && set(&mut a.origin, decode_origin(value)),
                OnError::TreatAsWithdraw,
            ),
            ATTR_AS_PATH => (
                flags_ok && set(&mut a.as_path, as_path::decode(value, width(four))),
                OnError::TreatAsWithdraw,
            ),
            ATTR_NEXT_HOP => (
                flags_ok && set(&mut a.next_hop, ipv4(value)),
                OnError::TreatAsWithdraw,
            ),
            ATTR_MED => (
                flags_ok && set(&mut a.med, u32_value(value)),
                OnError::TreatAsWithdraw,
            ),
            ATTR_LOCAL_PREF => (
                flags_ok && set(&mut a.local_pref, u32_value(value)),
                OnError::Discard,
            ),
            ATTR_ATOMIC_AGGREGATE => {
                a.atomic_aggregate = flags_ok && value.is_empty();
                (a.atomic_aggregate, OnError::Discard)
            }
            ATTR_AGGREGATOR => (
                flags_ok && set(&mut a.aggregator, decode_aggregator(value, width(four))),
                OnError::Discard,
            ),
            ATTR_COMMUNITIES => (
                flags_ok && set_vec(&mut a.communities, decode_communities(value)),
                OnError::TreatAsWithdraw,
            ),
            ATTR_LARGE_COMMUNITIES => (
                flags_ok && set_vec(&mut a.large_communities, decode_large(value)),
                OnError::TreatAsWithdraw,
            ),
            ATTR_AS4_PATH => (
                flags_ok && set(&mut as4_path, as_path::decode(value, 4)),
                OnError::Discard,
            ),
            ATTR_AS4_AGGREGATOR => (
                flags_ok && set(&mut as4_aggregator, decode_aggregator(value, 4)),
                OnError::Discard,
            ),
            // `expected_flags` knows no other code.
            _ => continue,
        };
        if ok {
            continue;
        }
        match on_error {
            OnError::Discard => d.discarded.push(code),
            OnError::TreatAsWithdraw => {
                let what = if flags_ok {
                    "malformed"
                } else {
                    "bad flags on"
                };
                d.treat_as_withdraw
                    .get_or_insert_with(|| format!("{what} {} attribute", name(code)));
            }
        }
    }
    if !ctx.four_octet_as {
        merge_as4(&mut d.attributes, as4_path, as4_aggregator);
    }
    d.attributes.other.sort_by_key(|o| o.code);
    Ok(d)
}

/// RFC 6793 §4.2.3 reconstruction of the 4-octet AGGREGATOR and AS_PATH.
fn merge_as4(a: &mut Attributes, as4_path: Option<Vec<Segment>>, as4_agg: Option<(u32, Ipv4Addr)>) {
    if let (Some((asn, _)), Some(as4)) = (a.aggregator, as4_agg) {
        if asn != AS_TRANS {
            // Aggregated by an OLD speaker after the AS4_* were attached: both are stale.
            return;
        }
        a.aggregator = Some(as4);
    }
    if let Some(as4) = as4_path {
        a.as_path = a.as_path.take().map(|path| as_path::merge_as4(path, as4));
    }
}

fn width(four_octet_as: bool) -> usize {
    if four_octet_as {
        4
    } else {
        2
    }
}

/// Stores a parsed value, reporting whether it parsed.
fn set<T>(slot: &mut Option<T>, parsed: Option<T>) -> bool {
    let ok = parsed.is_some();
    *slot = parsed;
    ok
}

fn set_vec<T>(slot: &mut Vec<T>, parsed: Option<Vec<T>>) -> bool {
    match parsed {
        Some(v) => {
            *slot = v;
            true
        }
        None => false,
    }
}

fn decode_origin(value: &[u8]) -> Option<Origin> {
    match value {
        [0] => Some(Origin::Igp),
        [1] => Some(Origin::Egp),
        [2] => Some(Origin::Incomplete),
        _ => None,
    }
}

fn ipv4(value: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(value).ok().map(Ipv4Addr::from)
}

fn u32_value(value: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(value).ok().map(u32::from_be_bytes)
}

/// AGGREGATOR is 6 bytes with 2-octet ASNs and 8 with 4-octet ones (RFC 7606 §7.7).
fn decode_aggregator(value: &[u8], width: usize) -> Option<(u32, Ipv4Addr)> {
    if value.len() != width + 4 {
        return None;
    }
    let mut r = Reader::new(value);
    let asn = if width == 2 {
        u32::from(r.u16()?)
    } else {
        r.u32()?
    };
    Some((asn, Ipv4Addr::from(r.array::<4>()?)))
}

/// RFC 7606 §7.8: malformed unless a non-zero multiple of 4.
fn decode_communities(value: &[u8]) -> Option<Vec<u32>> {
    if value.is_empty() || !value.len().is_multiple_of(4) {
        return None;
    }
    let mut r = Reader::new(value);
    Some(std::iter::from_fn(|| r.u32()).collect())
}

/// RFC 8092 §6: malformed unless a non-zero multiple of 12.
fn decode_large(value: &[u8]) -> Option<Vec<[u32; 3]>> {
    if value.is_empty() || !value.len().is_multiple_of(12) {
        return None;
    }
    let mut r = Reader::new(value);
    Some(std::iter::from_fn(|| Some([r.u32()?, r.u32()?, r.u32()?])).collect())
}

fn is_unicast(afi: u16, safi: u8) -> bool {
    safi == SAFI_UNICAST && (afi == AFI_IPV4 || afi == AFI_IPV6)
}

/// Next hop forms: 4 bytes (IPv4, AFI 1 only), 16 (global) or 32 (global + link-local,
/// RFC 2545). AFI 1 with 16/32 is RFC 8950's IPv6 next hop for IPv4 NLRI.
fn decode_next_hop(afi: u16, nh: &[u8]) -> Option<NextHop> {
    let mut r = Reader::new(nh);
    match nh.len() {
        4 if afi == AFI_IPV4 => Some(NextHop::V4(Ipv4Addr::from(r.array::<4>()?))),
        16 => Some(NextHop::V6 {
            global: Ipv6Addr::from(r.array::<16>()?),
            link_local: None,
        }),
        32 => Some(NextHop::V6 {
            global: Ipv6Addr::from(r.array::<16>()?),
            link_local: Some(Ipv6Addr::from(r.array::<16>()?)),
        }),
        _ => None,
    }
}

fn decode_mp_reach(value: &[u8]) -> Option<MpReach> {
    let mut r = Reader::new(value);
    let afi = r.u16()?;
    let safi = r.u8()?;
    if !is_unicast(afi, safi) {
        // Not negotiated by us: keep the family so the caller can log it, skip the rest.
        let next_hop = r
            .u8()
            .and_then(|len| r.take(usize::from(len)))
            .and_then(|nh| decode_next_hop(AFI_IPV4, nh))
            .unwrap_or(NextHop::V4(Ipv4Addr::UNSPECIFIED));
        return Some(MpReach {
            afi,
            safi,
            next_hop,
            nlri: Vec::new(),
        });
    }
    let nh_len = r.u8()?;
    let next_hop = decode_next_hop(afi, r.take(usize::from(nh_len))?)?;
    let _reserved = r.u8()?; // RFC 4760: formerly the SNPA count, ignored on receipt
    let nlri = nlri::decode_afi(afi, r.rest())?;
    Some(MpReach {
        afi,
        safi,
        next_hop,
        nlri,
    })
}

fn decode_mp_unreach(value: &[u8]) -> Option<MpUnreach> {
    let mut r = Reader::new(value);
    let afi = r.u16()?;
    let safi = r.u8()?;
    let withdrawn = if is_unicast(afi, safi) {
        nlri::decode_afi(afi, r.rest())?
    } else {
        Vec::new()
    };
    Some(MpUnreach {
        afi,
        safi,
        withdrawn,
    })
}

/// Starts an attribute with room for a 2-byte length; [`end_attr`] shrinks it to one
/// byte when the value allows, so values need not be built twice.
fn begin_attr(out: &mut Vec<u8>, flags: u8, code: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[flags | FLAG_EXTENDED_LENGTH, code, 0, 0]);
    start
}

fn end_attr(out: &mut Vec<u8>, start: usize) {
    let mut len = out.len().saturating_sub(start + 4);
    if len > usize::from(u16::MAX) {
        // Cannot be said on the wire; only reachable by a caller bug (see `Message::encode`).
        out.truncate(start + 4 + usize::from(u16::MAX));
        len = usize::from(u16::MAX);
    }
    if len <= 255 {
        if let Some(flags) = out.get_mut(start) {
            *flags &= !FLAG_EXTENDED_LENGTH;
        }
        out.remove(start + 2);
        if let Some(l) = out.get_mut(start + 2) {
            *l = len as u8;
        }
    } else if let Some(l) = out.get_mut(start + 2..start + 4) {
        l.copy_from_slice(&(len as u16).to_be_bytes());
    }
}

fn put_attr(out: &mut Vec<u8>, flags: u8, code: u8, value: &[u8]) {
    let start = begin_attr(out, flags, code);
    out.extend_from_slice(value);
    end_attr(out, start);
}

fn put_next_hop(nh: &NextHop, out: &mut Vec<u8>) {
    match nh {
        NextHop::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        NextHop::V6 { global, link_local } => {
            out.push(if link_local.is_some() { 32 } else { 16 });
            out.extend_from_slice(&global.octets());
            if let Some(ll) = link_local {
                out.extend_from_slice(&ll.octets());
            }
        }
    }
}

/// Encodes the attribute section in ascending type-code order (RFC 4271 §5 SHOULD),
/// unknown attributes interleaved by code. With 2-octet peers AS_PATH/AGGREGATOR carry
/// AS_TRANS and AS4_PATH/AS4_AGGREGATOR are added when some ASN needs them.
pub(super) fn encode(a: &Attributes, ctx: &Context, out: &mut Vec<u8>) {
    let four = ctx.four_octet_as;
    let mut others: Vec<&RawAttribute> = a.other.iter().collect();
    others.sort_by_key(|o| o.code);
    let mut others = others.into_iter().peekable();
    let mut flush_below = |code: u16, out: &mut Vec<u8>| {
        while let Some(o) = others.next_if(|o| u16::from(o.code) < code) {
            put_attr(out, o.flags, o.code, &o.value);
        }
    };

    flush_below(ATTR_ORIGIN.into(), out);
    if let Some(origin) = a.origin {
        let v = match origin {
            Origin::Igp => 0,
            Origin::Egp => 1,
            Origin::Incomplete => 2,
        };
        put_attr(out, WELL_KNOWN, ATTR_ORIGIN, &[v]);
    }
    flush_below(ATTR_AS_PATH.into(), out);
    if let Some(path) = &a.as_path {
        let start = begin_attr(out, WELL_KNOWN, ATTR_AS_PATH);
        as_path::encode(path, width(four), false, out);
        end_attr(out, start);
    }
    flush_below(ATTR_NEXT_HOP.into(), out);
    if let Some(nh) = a.next_hop {
        put_attr(out, WELL_KNOWN, ATTR_NEXT_HOP, &nh.octets());
    }
    flush_below(ATTR_MED.into(), out);
    if let Some(med) = a.med {
        put_attr(out, OPTIONAL_NON_TRANSITIVE, ATTR_MED, &med.to_be_bytes());
    }
    flush_below(ATTR_LOCAL_PREF.into(), out);
    if let Some(lp) = a.local_pref {
        put_attr(out, WELL_KNOWN, ATTR_LOCAL_PREF, &lp.to_be_bytes());
    }
    flush_below(ATTR_ATOMIC_AGGREGATE.into(), out);
    if a.atomic_aggregate {
        put_attr(out, WELL_KNOWN, ATTR_ATOMIC_AGGREGATE, &[]);
    }
    flush_below(ATTR_AGGREGATOR.into(), out);
    if let Some((asn, id)) = a.aggregator {
        let start = begin_attr(out, OPTIONAL_TRANSITIVE, ATTR_AGGREGATOR);
        if four {
            out.extend_from_slice(&asn.to_be_bytes());
        } else {
            let short = u16::try_from(asn).unwrap_or(AS_TRANS as u16);
            out.extend_from_slice(&short.to_be_bytes());
        }
        out.extend_from_slice(&id.octets());
        end_attr(out, start);
    }
    flush_below(ATTR_COMMUNITIES.into(), out);
    if !a.communities.is_empty() {
        let start = begin_attr(out, OPTIONAL_TRANSITIVE, ATTR_COMMUNITIES);
        a.communities
            .iter()
            .for_each(|c| out.extend_from_slice(&c.to_be_bytes()));
        end_attr(out, start);
    }
    flush_below(ATTR_MP_REACH_NLRI.into(), out);
    if let Some(mp) = &a.mp_reach {
        let start = begin_attr(out, OPTIONAL_NON_TRANSITIVE, ATTR_MP_REACH_NLRI);
        out.extend_from_slice(&mp.afi.to_be_bytes());
        out.push(mp.safi);
        put_next_hop(&mp.next_hop, out);
        out.push(0);
        mp.nlri.iter().for_each(|n| nlri::encode(n, out));
        end_attr(out, start);
    }
    flush_below(ATTR_MP_UNREACH_NLRI.into(), out);
    if let Some(mp) = &a.mp_unreach {
        let start = begin_attr(out, OPTIONAL_NON_TRANSITIVE, ATTR_MP_UNREACH_NLRI);
        out.extend_from_slice(&mp.afi.to_be_bytes());
        out.push(mp.safi);
        mp.withdrawn.iter().for_each(|n| nlri::encode(n, out));
        end_attr(out, start);
    }
    flush_below(ATTR_AS4_PATH.into(), out);
    if let Some(path) = a
        .as_path
        .as_deref()
        .filter(|p| !four && as_path::has_four_octet(p))
    {
        let start = begin_attr(out, OPTIONAL_TRANSITIVE, ATTR_AS4_PATH);
        as_path::encode(path, 4, true, out);
        end_attr(out, start);
    }
    flush_below(ATTR_AS4_AGGREGATOR.into(), out);
    if let Some((asn, id)) = a.aggregator.filter(|&(asn, _)| !four && asn > 0xffff) {
        let start = begin_attr(out, OPTIONAL_TRANSITIVE, ATTR_AS4_AGGREGATOR);
        out.extend_from_slice(&asn.to_be_bytes());
        out.extend_from_slice(&id.octets());
        end_attr(out, start);
    }
    flush_below(ATTR_LARGE_COMMUNITIES.into(), out);
    if !a.large_communities.is_empty() {
        let start = begin_attr(out, OPTIONAL_TRANSITIVE, ATTR_LARGE_COMMUNITIES);
        for c in a.large_communities.iter().flatten() {
            out.extend_from_slice(&c.to_be_bytes());
        }
        end_attr(out, start);
    }
    flush_below(256, out);
}
