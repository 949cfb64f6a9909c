//! BGP-4 message codec: bytes <-> [`Message`] for the small BGP speaker.
//!
//! Pure code: no I/O, clocks or async. The session layer feeds received bytes to
//! [`frame`] until a whole message is buffered, passes it to [`decode`] with the
//! [`Context`] the OPENs negotiated, and sends whatever [`Message::encode`],
//! [`encode_announcements`] and [`encode_withdrawals`] produce. Every decode error is a
//! ready-to-send [`Notification`].
//!
//! # Hostile input
//! All reads go through a bounds-checked reader (`reader.rs`), so nothing indexes past
//! the input and no length field is trusted before the bytes it announces are present.
//! Messages are at most 4096 bytes and every Vec grows only with bytes actually consumed
//! (each prefix, community, ASN or attribute takes at least one byte), so a length field
//! can never cause a large allocation. Extended messages (RFC 8654) are not supported:
//! we never advertise the capability, so peers may not send more than 4096 bytes.
//!
//! # UPDATE error handling (RFC 7606)
//! [`decode`] returns `Err` (session reset, UPDATE Message Error) for:
//! - withdrawn routes length or total path attribute length overrunning the message, and
//!   an attribute header or length overrunning the attribute section: subcode 1
//!   Malformed Attribute List. RFC 7606 §4 would allow treat-as-withdraw for the last
//!   case, but treat-as-withdraw needs every MP_(UN)REACH_NLRI to be parsed (§3, §5) and
//!   one may hide in the unparseable rest, so we reset (stricter, never wrong);
//! - a malformed classic NLRI or withdrawn prefix (length > 32, truncated): subcode 10
//!   Invalid Network Field;
//! - MP_REACH_NLRI / MP_UNREACH_NLRI that cannot be parsed (bad next-hop length, bad or
//!   truncated prefix): subcode 9 Optional Attribute Error with the attribute as data, as
//!   RFC 4760 §7 says and RFC 7606 §7.11/§7.12 keep; with wrong flags: subcode 4
//!   Attribute Flags Error; present twice: subcode 1 (RFC 7606 §3 g);
//! - an unrecognized attribute without the Optional bit: subcode 2 Unrecognized
//!   Well-known Attribute (RFC 4271; RFC 7606 does not relax it).
//!
//! `Ok` with [`Update::treat_as_withdraw`] set (the first reason found) for: malformed
//! ORIGIN, AS_PATH (bad segment type, zero-length or overrunning segment), NEXT_HOP (not
//! 4 bytes), MULTI_EXIT_DISC, COMMUNITIES (not a non-zero multiple of 4),
//! LARGE_COMMUNITY (not a non-zero multiple of 12); wrong Optional/Transitive flags on
//! any of these; a missing ORIGIN or AS_PATH when the UPDATE announces anything, or a
//! missing NEXT_HOP when it has classic NLRI (§3 d). An UPDATE that only withdraws is
//! fine whatever its attribute errors. Semantic checks (martian next hop, AS_CONFED_*
//! segments from an eBGP peer, first AS = peer AS) belong to the session layer, which
//! knows the peer; the codec only decodes them. A malformed attribute is left out of
//! [`Attributes`] (its field stays `None`/empty).
//!
//! `Ok` with the code pushed to [`Update::discarded`] (attribute discard) for malformed
//! or wrongly flagged ATOMIC_AGGREGATE, AGGREGATOR, AS4_PATH, AS4_AGGREGATOR and
//! LOCAL_PREF. LOCAL_PREF: §7.5 says discard from eBGP peers, treat-as-withdraw from
//! iBGP ones; the codec does not know which, so it discards, and an iBGP session layer
//! that requires LOCAL_PREF turns the now-missing attribute into treat-as-withdraw.
//! Repeated attributes other than MP_*: the first is kept, the rest dropped and their
//! codes pushed to `discarded` too (§3 g).
//!
//! # 4-octet ASNs (RFC 6793)
//! Without the capability ([`Context::four_octet_as`] false) AS_PATH and AGGREGATOR are
//! 2-byte on the wire; decoding merges AS4_PATH/AS4_AGGREGATOR into the 4-byte
//! `as_path`/`aggregator` (§4.2.3) and does not keep them; encoding writes AS_TRANS and
//! adds AS4_PATH/AS4_AGGREGATOR when some ASN needs them. AS_CONFED_* segments are
//! never put in AS4_PATH and are dropped from a received one (§6). With the capability,
//! received AS4_* attributes are silently ignored (not reported as discarded).
//!
//! MP_REACH_NLRI/MP_UNREACH_NLRI are decoded into prefixes only for IPv4/IPv6 unicast.
//! Other families (never negotiated by us) keep AFI/SAFI with empty NLRI and no error,
//! so a confused peer costs nothing; the session layer ignores them. IPv6 next hops may
//! be 16 or 32 (global + link-local) bytes; IPv4-mapped ones stay IPv6; AFI 1 takes a
//! 4-byte next hop (or an RFC 8950 IPv6 one).
//!
//! # OPEN
//! Only structure is checked; AS, BGP Identifier and hold time are judged by the session
//! layer. Version other than 4: Unsupported Version Number (data = 4). Optional
//! parameters other than Capabilities: Unsupported Optional Parameter; RFC 9072
//! extended parameters are understood. Unknown capabilities are kept as
//! [`Capability::Unknown`] and ignored (RFC 5492). A known fixed-size capability with
//! the wrong length, or lengths that disagree with the message, are OPEN Message Error /
//! Unspecific: treating a broken 4-octet AS capability as unknown would silently change
//! how every later AS_PATH is parsed.
//!
//! # Encoding
//! Attributes go out in ascending type-code order (RFC 4271 §5) with correct flags and
//! the Extended Length bit only when a value exceeds 255 bytes. Decoding accepts any
//! order (BIRD puts MP_REACH_NLRI first as RFC 7606 §5.1 suggests, ExaBGP last) and
//! canonicalizes what it can so that decode -> encode -> decode is stable: host bits of
//! prefixes are cleared, unknown attributes are sorted by code and stored without the
//! Extended Length flag.
//!
//! # Why our own codec (measured 2026-11-21, details in BENCHMARKS.md)
//! - `netgauze-bgp-pkt` 0.13: +339–423 KiB on mipsel (16 crates incl. two `syn`s), no
//!   panic in ~100 M fuzz inputs, but no treat-as-withdraw (malformed attributes fail the
//!   whole UPDATE, or are silently discarded), no AS4_PATH merge, and its encoder writes
//!   UPDATEs over 4096 bytes (silently truncating the length past 65535).
//! - `zettabgp` 0.6: +150–191 KiB, but 21 distinct panics on hostile UPDATEs, an AS_PATH
//!   (`02 00 00`) that loops allocating forever, AS_SEQUENCE re-encoded as AS_SET, no
//!   RFC 7606, no AS4_PATH.
//!
//! Both would need our own RFC 7606 layer, AS4 merge and UPDATE splitting anyway; the whole
//! BGP speaker (this codec, FSM, sessions, API) added 333 KiB on mipsel.

mod as_path;
mod attributes;
mod header;
mod nlri;
mod notification;
mod open;
mod reader;
mod route_refresh;
mod update;

#[cfg(test)]
mod test_vectors;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fuzz;
#[cfg(test)]
mod tests_messages;
#[cfg(test)]
mod tests_peers;
#[cfg(test)]
mod tests_split;

pub use as_path::{Segment, SegmentKind};
pub use attributes::{
    Attributes, MpReach, MpUnreach, NextHop, Origin, RawAttribute, ATTR_AGGREGATOR,
    ATTR_AS4_AGGREGATOR, ATTR_AS4_PATH, ATTR_AS_PATH, ATTR_ATOMIC_AGGREGATE, ATTR_COMMUNITIES,
    ATTR_LARGE_COMMUNITIES, ATTR_LOCAL_PREF, ATTR_MED, ATTR_MP_REACH_NLRI, ATTR_MP_UNREACH_NLRI,
    ATTR_NEXT_HOP, ATTR_ORIGIN, FLAG_EXTENDED_LENGTH, FLAG_OPTIONAL, FLAG_PARTIAL, FLAG_TRANSITIVE,
};
pub use header::{
    frame, TYPE_KEEPALIVE, TYPE_NOTIFICATION, TYPE_OPEN, TYPE_ROUTE_REFRESH, TYPE_UPDATE,
};
pub use notification::*;
pub use open::{Capability, Open, BGP_VERSION};
pub use route_refresh::{RouteRefresh, RR_BEGIN, RR_END, RR_NORMAL};
pub use update::{encode_announcements, encode_withdrawals, Update};

pub const HEADER_LEN: usize = 19;
pub const MAX_MESSAGE_LEN: usize = 4096;
/// The 2-octet placeholder for a 4-octet ASN (RFC 6793).
pub const AS_TRANS: u32 = 23456;

pub const AFI_IPV4: u16 = 1;
pub const AFI_IPV6: u16 = 2;
pub const SAFI_UNICAST: u8 = 1;

/// What the two OPENs negotiated that changes how messages are encoded/decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    /// Both sides advertised the 4-octet AS capability (RFC 6793).
    pub four_octet_as: bool,
}

// Unboxed on purpose: messages are decoded and handled one at a time, so the size of the
// enum costs nothing, and the variants are part of the API other modules match on.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// Decodes one whole message (header included, as framed by [`frame`]). `msg` must be
/// exactly the message: a length field that disagrees is a Bad Message Length.
pub fn decode(msg: &[u8], ctx: &Context) -> Result<Message, Notification> {
    let len = frame(msg)?;
    let (Some(len), Some(&kind), Some(body)) = (len, msg.get(18), msg.get(HEADER_LEN..)) else {
        // `frame` wants more bytes than `msg` has: the length field lies.
        let field = msg.get(16..18).unwrap_or_default().to_vec();
        return Err(Notification::with_data(
            MESSAGE_HEADER_ERROR,
            BAD_MESSAGE_LENGTH,
            field,
        ));
    };
    if len != msg.len() {
        let field = u16::try_from(len)
            .unwrap_or(u16::MAX)
            .to_be_bytes()
            .to_vec();
        return Err(Notification::with_data(
            MESSAGE_HEADER_ERROR,
            BAD_MESSAGE_LENGTH,
            field,
        ));
    }
    Ok(match kind {
        TYPE_OPEN => Message::Open(open::decode(body)?),
        TYPE_UPDATE => Message::Update(update::decode(body, ctx)?),
        TYPE_NOTIFICATION => {
            let (code, subcode, data) = match body {
                [code, subcode, data @ ..] => (*code, *subcode, data.to_vec()),
                // `frame` guarantees 2 bytes; answer as it would if it did not.
                _ => return Err(Notification::new(MESSAGE_HEADER_ERROR, BAD_MESSAGE_LENGTH)),
            };
            Message::Notification(Notification::with_data(code, subcode, data))
        }
        TYPE_ROUTE_REFRESH => Message::RouteRefresh(route_refresh::decode(msg, body)?),
        TYPE_KEEPALIVE => Message::Keepalive,
        // `frame` has rejected every other type already.
        _ => {
            return Err(Notification::with_data(
                MESSAGE_HEADER_ERROR,
                BAD_MESSAGE_TYPE,
                vec![kind],
            ))
        }
    })
}

impl Message {
    /// Appends one message, header included. Does not split: an Update too large for
    /// 4096 bytes is the caller's bug (use [`encode_announcements`]); lengths that do not
    /// fit their fields saturate rather than panic.
    pub fn encode(&self, ctx: &Context, out: &mut Vec<u8>) {
        let kind = match self {
            Message::Open(_) => TYPE_OPEN,
            Message::Update(_) => TYPE_UPDATE,
            Message::Notification(_) => TYPE_NOTIFICATION,
            Message::Keepalive => TYPE_KEEPALIVE,
            Message::RouteRefresh(_) => TYPE_ROUTE_REFRESH,
        };
        let start = header::begin_message(out, kind);
        match self {
            Message::Open(o) => open::encode_body(o, out),
            Message::Update(u) => update::encode_body(u, ctx, out),
            Message::Notification(n) => {
                out.extend_from_slice(&[n.code, n.subcode]);
                out.extend_from_slice(&n.data);
            }
            Message::Keepalive => {}
            Message::RouteRefresh(rr) => route_refresh::encode_body(rr, out),
        }
        header::finish_message(out, start);
    }
}
