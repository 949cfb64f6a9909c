//! UPDATE messages (RFC 4271 §4.3, RFC 4760, RFC 7606), End-of-RIB (RFC 4724 §2) and
//! the size-bounded encoders for the routes we originate.

use super::attributes::{self, Attributes, MpReach, MpUnreach, NextHop};
use super::header::{begin_message, finish_message, TYPE_UPDATE};
use super::nlri;
use super::notification::*;
use super::reader::Reader;
use super::{Context, AFI_IPV4, HEADER_LEN, MAX_MESSAGE_LEN, SAFI_UNICAST};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// Classic IPv4 withdrawn routes.
    pub withdrawn: Vec<Ipv4Net>,
    pub attributes: Attributes,
    /// Classic IPv4 NLRI.
    pub nlri: Vec<Ipv4Net>,
    /// RFC 7606: set when an attribute error means every prefix announced in this UPDATE
    /// (classic NLRI and MP_REACH) must be treated as withdrawn. Human-readable reason.
    /// Ignored by the encoder.
    pub treat_as_withdraw: Option<String>,
    /// RFC 7606 attribute-discard: type codes of attributes dropped as malformed (and of
    /// repeated attributes dropped by RFC 7606 §3 g). Ignored by the encoder.
    pub discarded: Vec<u8>,
}

impl Update {
    /// Classic NLRI then MP_REACH NLRI. Listed even under `treat_as_withdraw`: the caller
    /// checks that field and withdraws these instead.
    pub fn announced(&self) -> impl Iterator<Item = IpNet> + '_ {
        let mp = self.attributes.mp_reach.iter().flat_map(|m| m.nlri.iter());
        self.nlri.iter().map(|&n| IpNet::V4(n)).chain(mp.copied())
    }

    /// Classic withdrawn routes then MP_UNREACH withdrawn routes.
    pub fn withdrawn_all(&self) -> impl Iterator<Item = IpNet> + '_ {
        let mp = self
            .attributes
            .mp_unreach
            .iter()
            .flat_map(|m| m.withdrawn.iter());
        self.withdrawn
            .iter()
            .map(|&n| IpNet::V4(n))
            .chain(mp.copied())
    }

    /// The End-of-RIB marker: an empty UPDATE for IPv4 unicast, otherwise an UPDATE with
    /// only an empty MP_UNREACH_NLRI for (afi, unicast).
    pub fn end_of_rib(afi: u16) -> Update {
        let mut u = Update::default();
        if afi != AFI_IPV4 {
            u.attributes.mp_unreach = Some(MpUnreach {
                afi,
                safi: SAFI_UNICAST,
                withdrawn: Vec::new(),
            });
        }
        u
    }

    /// `Some(afi)` if this is a unicast End-of-RIB marker (see [`Update::end_of_rib`]).
    pub fn is_end_of_rib(&self) -> Option<u16> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        let mut rest = self.attributes.clone();
        match rest.mp_unreach.take() {
            None if rest == Attributes::default() => Some(AFI_IPV4),
            Some(mp)
                if mp.safi == SAFI_UNICAST
                    && mp.withdrawn.is_empty()
                    && rest == Attributes::default() =>
            {
                Some(mp.afi)
            }
            _ => None,
        }
    }
}

/// Decodes an UPDATE body (after the header). `Err` is a session reset; see `mod.rs`.
pub(super) fn decode(body: &[u8], ctx: &Context) -> Result<Update, Notification> {
    // RFC 4271 §6.3: lengths that overrun the message are a Malformed Attribute List.
    let overrun = || Notification::new(UPDATE_MESSAGE_ERROR, MALFORMED_ATTRIBUTE_LIST);
    let invalid_network = || Notification::new(UPDATE_MESSAGE_ERROR, INVALID_NETWORK_FIELD);
    let mut r = Reader::new(body);
    let withdrawn_len = r.u16().ok_or_else(overrun)?;
    let withdrawn = r.take(usize::from(withdrawn_len)).ok_or_else(overrun)?;
    let attrs_len = r.u16().ok_or_else(overrun)?;
    let attrs = r.take(usize::from(attrs_len)).ok_or_else(overrun)?;
    let withdrawn = nlri::decode_v4(withdrawn).ok_or_else(invalid_network)?;
    let nlri = nlri::decode_v4(r.rest()).ok_or_else(invalid_network)?;
    let decoded = attributes::decode(attrs, ctx)?;
    let mut update = Update {
        withdrawn,
        attributes: decoded.attributes,
        nlri,
        treat_as_withdraw: decoded.treat_as_withdraw,
        discarded: decoded.discarded,
    };
    // RFC 7606 §3 d: a missing well-known mandatory attribute only matters when something
    // is announced; an UPDATE that only withdraws needs no attributes at all.
    if update.treat_as_withdraw.is_none() && update.announced().next().is_some() {
        let a = &update.attributes;
        let missing = if a.origin.is_none() {
            Some("ORIGIN")
        } else if a.as_path.is_none() {
            Some("AS_PATH")
        } else if a.next_hop.is_none() && !update.nlri.is_empty() {
            Some("NEXT_HOP")
        } else {
            None
        };
        if let Some(name) = missing {
            update.treat_as_withdraw = Some(format!("missing well-known attribute {name}"));
        }
    }
    Ok(update)
}

/// Appends the UPDATE body. No splitting: a caller building an Update over 4096 bytes
/// gets an oversized message (use [`encode_announcements`]/[`encode_withdrawals`]).
pub(super) fn encode_body(u: &Update, ctx: &Context, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    u.withdrawn
        .iter()
        .for_each(|n| nlri::encode(&IpNet::V4(*n), out));
    patch_len(out, start);
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    attributes::encode(&u.attributes, ctx, out);
    patch_len(out, start);
    u.nlri
        .iter()
        .for_each(|n| nlri::encode(&IpNet::V4(*n), out));
}

/// Writes the length of what follows the 2-byte field at `at`.
fn patch_len(out: &mut [u8], at: usize) {
    let len = out.len().saturating_sub(at + 2);
    let len = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
    if let Some(field) = out.get_mut(at..at + 2) {
        field.copy_from_slice(&len);
    }
}

fn encode_message(u: &Update, ctx: &Context) -> Vec<u8> {
    let mut out = Vec::new();
    let start = begin_message(&mut out, TYPE_UPDATE);
    encode_body(u, ctx, &mut out);
    finish_message(&mut out, start);
    out
}

fn split_families(prefixes: &[IpNet]) -> (Vec<IpNet>, Vec<IpNet>) {
    prefixes.iter().partition(|p| matches!(p, IpNet::V6(_)))
}

fn v4(p: &[IpNet]) -> Vec<Ipv4Net> {
    p.iter()
        .filter_map(|p| match p {
            IpNet::V4(n) => Some(*n),
            IpNet::V6(_) => None,
        })
        .collect()
}

/// How many prefixes from the front of `prefixes` fit in `room` bytes.
fn fit(prefixes: &[IpNet], mut room: usize) -> usize {
    prefixes
        .iter()
        .take_while(|p| {
            let len = nlri::encoded_len(p);
            let fits = len <= room;
            room = room.saturating_sub(len);
            fits
        })
        .count()
}

/// Greedy packing shared by both encoders: IPv6 prefixes fill an MP attribute first; once
/// they are all placed, IPv4 prefixes take the rest of that message and then messages of
/// their own. `build(v6, v4)` makes the Update for one message. `base6`/`base4`/`base46`
/// are the encoded sizes of messages with no prefixes (v6-only, v4-only, both), each
/// already counting one byte for the MP attribute's possible 2-byte length.
fn pack(
    prefixes: &[IpNet],
    sizes: [usize; 3],
    ctx: &Context,
    build: impl Fn(&[IpNet], &[IpNet]) -> Update,
    out: &mut Vec<Vec<u8>>,
) {
    let [base6, base4, base46] = sizes;
    let (all6, all4) = split_families(prefixes);
    let (mut v6, mut v4) = (all6.as_slice(), all4.as_slice());
    while !v6.is_empty() || !v4.is_empty() {
        let room6 = MAX_MESSAGE_LEN.saturating_sub(base6);
        let n6 = fit(v6, room6);
        let (take6, rest6) = v6.split_at(n6);
        let n4 = if !rest6.is_empty() {
            0
        } else if take6.is_empty() {
            fit(v4, MAX_MESSAGE_LEN.saturating_sub(base4))
        } else {
            let used6: usize = take6.iter().map(nlri::encoded_len).sum();
            fit(v4, MAX_MESSAGE_LEN.saturating_sub(base46 + used6))
        };
        let (take4, rest4) = v4.split_at(n4);
        if take6.is_empty() && take4.is_empty() {
            // The attributes alone leave no room for a single prefix: nothing sensible can
            // be sent (see `encode_announcements`).
            return;
        }
        out.push(encode_message(&build(take6, take4), ctx));
        (v6, v4) = (rest6, rest4);
    }
}

/// Appends UPDATE messages (each <= 4096 bytes, as few as possible) announcing `prefixes`
/// with `attrs`: IPv4 prefixes in classic NLRI with `attrs.next_hop`; IPv6 prefixes in
/// MP_REACH_NLRI(2,1) with `v6_next_hop`. Attributes other than NEXT_HOP/MP_* come from
/// `attrs`. NEXT_HOP is only sent in messages that carry IPv4 prefixes. If `attrs` are so
/// large that not even one prefix fits in 4096 bytes, the prefixes that cannot be placed
/// are left out rather than sending a message every peer would reject.
pub fn encode_announcements(
    ctx: &Context,
    attrs: &Attributes,
    v6_next_hop: &NextHop,
    prefixes: &[IpNet],
    out: &mut Vec<Vec<u8>>,
) {
    let build = |v6: &[IpNet], v4: &[IpNet]| {
        let mut a = attrs.clone();
        a.mp_unreach = None;
        a.mp_reach = (!v6.is_empty()).then(|| MpReach {
            afi: super::AFI_IPV6,
            safi: SAFI_UNICAST,
            next_hop: *v6_next_hop,
            nlri: v6.to_vec(),
        });
        if v4.is_empty() {
            a.next_hop = None;
        }
        Update {
            nlri: self::v4(v4),
            attributes: a,
            ..Update::default()
        }
    };
    let size = |u: Update| encode_message(&u, ctx).len();
    let dummy4 = [IpNet::V4(Ipv4Net::default())];
    let dummy6 = [IpNet::V6(Ipv6Net::default())];
    // Measured with one-byte /0 prefixes so that the MP attribute and NEXT_HOP exist:
    // subtract those, add one for MP_REACH switching to a 2-byte length once it is full.
    let base6 = size(build(&dummy6, &[]));
    let base4 = size(build(&[], &dummy4)) - 1;
    let base46 = size(build(&dummy6, &dummy4)) - 1;
    pack(prefixes, [base6, base4, base46], ctx, build, out);
}

/// Appends UPDATEs withdrawing `prefixes` (IPv4 in the classic withdrawn field, IPv6 in
/// MP_UNREACH_NLRI(2,1)), each <= 4096 bytes, as few as possible.
pub fn encode_withdrawals(ctx: &Context, prefixes: &[IpNet], out: &mut Vec<Vec<u8>>) {
    let build = |v6: &[IpNet], v4: &[IpNet]| {
        let mut u = Update {
            withdrawn: self::v4(v4),
            ..Update::default()
        };
        u.attributes.mp_unreach = (!v6.is_empty()).then(|| MpUnreach {
            afi: super::AFI_IPV6,
            safi: SAFI_UNICAST,
            withdrawn: v6.to_vec(),
        });
        u
    };
    // Header, two length fields; MP_UNREACH header (4 with extended length) + AFI/SAFI.
    let base4 = HEADER_LEN + 4;
    let base6 = base4 + 4 + 3;
    pack(prefixes, [base6, base4, base6], ctx, build, out);
}
