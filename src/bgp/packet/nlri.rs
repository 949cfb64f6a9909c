//! Prefix encoding shared by the classic NLRI/withdrawn fields and MP_(UN)REACH_NLRI
//! (RFC 4271 §4.3, RFC 4760 §5): a length in bits, then just enough bytes to hold it.

use super::reader::Reader;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// One prefix's address bytes (zero-padded) and length, or `None` if the length exceeds
/// the family's maximum or the bytes run out.
fn read_prefix<const N: usize>(r: &mut Reader<'_>) -> Option<([u8; N], u8)> {
    let len = r.u8()?;
    if usize::from(len) > N * 8 {
        return None;
    }
    let bytes = r.take(usize::from(len).div_ceil(8))?;
    let mut addr = [0u8; N];
    addr.get_mut(..bytes.len())?.copy_from_slice(bytes);
    Some((addr, len))
}

/// Decodes a run of IPv4 prefixes filling `bytes` exactly. Host bits past the prefix
/// length are cleared (RFC 4271 says they are irrelevant), so equal routes compare equal.
/// The Vec grows one entry per prefix actually read, at least one byte each.
pub(super) fn decode_v4(bytes: &[u8]) -> Option<Vec<Ipv4Net>> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_empty() {
        let (addr, len) = read_prefix::<4>(&mut r)?;
        out.push(Ipv4Net::new(Ipv4Addr::from(addr), len).ok()?.trunc());
    }
    Some(out)
}

/// Same as [`decode_v4`] for IPv6.
pub(super) fn decode_v6(bytes: &[u8]) -> Option<Vec<Ipv6Net>> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_empty() {
        let (addr, len) = read_prefix::<16>(&mut r)?;
        out.push(Ipv6Net::new(Ipv6Addr::from(addr), len).ok()?.trunc());
    }
    Some(out)
}

/// Decodes the prefixes of a unicast AFI (1 or 2) as `IpNet`s.
pub(super) fn decode_afi(afi: u16, bytes: &[u8]) -> Option<Vec<IpNet>> {
    match afi {
        super::AFI_IPV4 => Some(decode_v4(bytes)?.into_iter().map(IpNet::V4).collect()),
        super::AFI_IPV6 => Some(decode_v6(bytes)?.into_iter().map(IpNet::V6).collect()),
        _ => None,
    }
}

/// Wire size of one prefix.
pub(super) fn encoded_len(net: &IpNet) -> usize {
    1 + usize::from(net.prefix_len()).div_ceil(8)
}

/// Host bits are cleared so that what goes out is what [`decode_v4`]/[`decode_v6`] give back.
pub(super) fn encode(net: &IpNet, out: &mut Vec<u8>) {
    let len = net.prefix_len();
    let n = usize::from(len).div_ceil(8);
    out.push(len);
    match net {
        IpNet::V4(v4) => out.extend_from_slice(v4.trunc().addr().octets().get(..n).unwrap_or(&[])),
        IpNet::V6(v6) => out.extend_from_slice(v6.trunc().addr().octets().get(..n).unwrap_or(&[])),
    }
}
