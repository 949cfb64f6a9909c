//! The VRP table (Validated ROA Payloads: prefix, maxLength, origin ASN) and route origin
//! validation exactly as RFC 6811 §2 defines it.
//!
//! A route's *covering* VRPs are those whose prefix contains the route's prefix. If none:
//! `NotFound`. If one of them has the route's origin AS and a maxLength ≥ the route's
//! length: `Valid`. Otherwise `Invalid` — split here into `invalid_asn` (no covering VRP
//! names this AS) and `invalid_length` (one does, but the route is more specific than its
//! maxLength allows). AS 0 never matches (RFC 6483 §4).
//!
//! Storage is two sorted vectors of fixed-size entries (12 bytes per IPv4 VRP, 24 per IPv6),
//! so 500k VRPs take a few MiB and load without per-entry allocation. A lookup walks the
//! route's covering prefix lengths that occur in the table (a bitmap) and binary-searches
//! each: at most 33 or 129 searches, typically a handful — never a scan.

use ipnet::IpNet;
use std::cmp::Ordering;
use std::net::IpAddr;

/// One VRP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vrp {
    pub prefix: IpNet,
    pub max_length: u8,
    pub asn: u32,
}

/// Why an incremental update was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateError {
    UnknownWithdraw(Vrp),
    DuplicateAnnounce(Vrp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Valid,
    InvalidAsn,
    InvalidLength,
    NotFound,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Valid => "valid",
            State::InvalidAsn | State::InvalidLength => "invalid",
            State::NotFound => "not_found",
        }
    }

    /// `invalid_asn` / `invalid_length` for invalid routes.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            State::InvalidAsn => Some("invalid_asn"),
            State::InvalidLength => Some("invalid_length"),
            _ => None,
        }
    }
}

/// The verdict and the VRP it rests on: the matching one for `Valid`; for `Invalid`, the
/// covering VRP with the route's AS (length case) or the most specific covering one (AS
/// case); `None` for `NotFound`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validation {
    pub state: State,
    pub vrp: Option<Vrp>,
}

/// Compact entry: network bits (left-aligned in a u128 for v6, u32 for v4), lengths, ASN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry<A> {
    net: A,
    len: u8,
    max_len: u8,
    asn: u32,
}

/// The IPv6 network as two u64s: alignment 8, so an entry is 24 bytes rather than 32.
type V6 = (u64, u64);

fn v6_bits(a: std::net::Ipv6Addr) -> V6 {
    let x = u128::from(a);
    ((x >> 64) as u64, x as u64)
}

fn v6_mask((hi, lo): V6, len: u8) -> V6 {
    let x = (u128::from(hi) << 64) | u128::from(lo);
    let m = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    };
    let y = x & m;
    ((y >> 64) as u64, y as u64)
}

fn v4_mask(x: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        x & (u32::MAX << (32 - u32::from(len)))
    }
}

/// The VRPs of one address family, sorted by (network, length, maxLength, ASN).
#[derive(Debug, Clone)]
struct Family<A> {
    entries: Vec<Entry<A>>,
    /// Bit `l` set: some VRP has prefix length `l`.
    lengths: u128,
    /// `lengths` has no room for /128 (bit 128): tracked apart.
    has_128: bool,
}

impl<A> Default for Family<A> {
    fn default() -> Self {
        Family {
            entries: Vec::new(),
            lengths: 0,
            has_128: false,
        }
    }
}

impl<A: Ord + Copy> Family<A> {
    fn finish(&mut self) {
        self.entries.sort_unstable();
        self.entries.dedup();
        self.lengths = 0;
        self.has_128 = false;
        for e in &self.entries {
            if e.len == 128 {
                self.has_128 = true;
            } else {
                self.lengths |= 1u128 << e.len;
            }
        }
        self.entries.shrink_to_fit();
    }

    fn has_len(&self, len: u8) -> bool {
        if len == 128 {
            self.has_128
        } else {
            self.lengths & (1u128 << len) != 0
        }
    }

    /// Entries with exactly this network and length.
    fn exact(&self, net: A, len: u8) -> &[Entry<A>] {
        let key = |e: &Entry<A>| (e.net, e.len);
        let start = self
            .entries
            .partition_point(|e| key(e).cmp(&(net, len)) == Ordering::Less);
        let end = start
            + self.entries[start..]
                .iter()
                .take_while(|e| key(e) == (net, len))
                .count();
        &self.entries[start..end]
    }

    /// RFC 6811 over the covering entries, most specific first.
    fn validate(
        &self,
        route_len: u8,
        asn: u32,
        mask: impl Fn(u8) -> A,
        to_vrp: impl Fn(&Entry<A>) -> Vrp,
    ) -> Validation {
        let mut most_specific: Option<Vrp> = None;
        let mut same_as: Option<Vrp> = None;
        for len in (0..=route_len).rev() {
            if !self.has_len(len) {
                continue;
            }
            for e in self.exact(mask(len), len) {
                if e.asn == asn && asn != 0 {
                    if route_len <= e.max_len {
                        return Validation {
                            state: State::Valid,
                            vrp: Some(to_vrp(e)),
                        };
                    }
                    same_as.get_or_insert(to_vrp(e));
                }
                most_specific.get_or_insert(to_vrp(e));
            }
        }
        match (same_as, most_specific) {
            (Some(v), _) => Validation {
                state: State::InvalidLength,
                vrp: Some(v),
            },
            (None, Some(v)) => Validation {
                state: State::InvalidAsn,
                vrp: Some(v),
            },
            (None, None) => Validation {
                state: State::NotFound,
                vrp: None,
            },
        }
    }
}

/// Collects VRPs one at a time (e.g. while a file is parsed) into a table.
#[derive(Default)]
pub struct Builder(VrpTable);

impl Builder {
    pub fn push(&mut self, v: Vrp) {
        let t = &mut self.0;
        let len = v.prefix.prefix_len();
        let max_len = v.max_length.max(len).min(v.prefix.max_prefix_len());
        match v.prefix.trunc().addr() {
            IpAddr::V4(a) => t.v4.entries.push(Entry {
                net: u32::from(a),
                len,
                max_len,
                asn: v.asn,
            }),
            IpAddr::V6(a) => t.v6.entries.push(Entry {
                net: v6_bits(a),
                len,
                max_len,
                asn: v.asn,
            }),
        }
    }

    /// Sorts and deduplicates: the table is ready for lookups.
    pub fn finish(mut self) -> VrpTable {
        self.0.v4.finish();
        self.0.v6.finish();
        self.0
    }
}

/// All VRPs, both families.
#[derive(Debug, Clone, Default)]
pub struct VrpTable {
    v4: Family<u32>,
    v6: Family<V6>,
}

impl VrpTable {
    /// Builds the table; duplicates collapse, host bits are cleared, maxLength below the
    /// prefix length is raised to it (RFC 6482 makes such ROAs invalid; callers reject
    /// them when parsing, this only keeps the table consistent).
    pub fn new(vrps: impl IntoIterator<Item = Vrp>) -> VrpTable {
        let mut b = Builder::default();
        for v in vrps {
            b.push(v);
        }
        b.finish()
    }

    pub fn len(&self) -> usize {
        self.v4.entries.len() + self.v6.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the entries (for status and benchmarks).
    pub fn memory(&self) -> usize {
        self.v4.entries.capacity() * std::mem::size_of::<Entry<u32>>()
            + self.v6.entries.capacity() * std::mem::size_of::<Entry<V6>>()
    }

    /// Every VRP, IPv4 first, in table order.
    pub fn iter(&self) -> impl Iterator<Item = Vrp> + '_ {
        let v4 = self.v4.entries.iter().map(|e| Vrp {
            prefix: IpNet::new(IpAddr::V4(e.net.into()), e.len).unwrap_or_default(),
            max_length: e.max_len,
            asn: e.asn,
        });
        let v6 = self.v6.entries.iter().map(|e| {
            let x = (u128::from(e.net.0) << 64) | u128::from(e.net.1);
            Vrp {
                prefix: IpNet::new(IpAddr::V6(x.into()), e.len).unwrap_or_default(),
                max_length: e.max_len,
                asn: e.asn,
            }
        });
        v4.chain(v6)
    }

    pub fn contains(&self, v: &Vrp) -> bool {
        let len = v.prefix.prefix_len();
        let hit = |max_len: u8, asn: u32| max_len == v.max_length && asn == v.asn;
        match v.prefix.trunc().addr() {
            IpAddr::V4(a) => self
                .v4
                .exact(u32::from(a), len)
                .iter()
                .any(|e| hit(e.max_len, e.asn)),
            IpAddr::V6(a) => self
                .v6
                .exact(v6_bits(a), len)
                .iter()
                .any(|e| hit(e.max_len, e.asn)),
        }
    }

    /// A new table with `withdraw` removed and `announce` added (an RTR serial update).
    /// Withdrawing an absent VRP or announcing a present one is an error, as RFC 8210 §5.6
    /// requires; the table is then left as it was.
    pub fn updated(&self, announce: &[Vrp], withdraw: &[Vrp]) -> Result<VrpTable, UpdateError> {
        let gone: std::collections::HashSet<&Vrp> = withdraw.iter().collect();
        if let Some(w) = withdraw.iter().find(|w| !self.contains(w)) {
            return Err(UpdateError::UnknownWithdraw(*w));
        }
        let mut kept: Vec<Vrp> = self.iter().filter(|v| !gone.contains(v)).collect();
        if let Some(a) = announce
            .iter()
            .find(|a| self.contains(a) && !gone.contains(a))
        {
            return Err(UpdateError::DuplicateAnnounce(*a));
        }
        kept.extend_from_slice(announce);
        Ok(VrpTable::new(kept))
    }

    /// Origin validation of `route` announced by `asn` (RFC 6811).
    pub fn validate(&self, route: IpNet, asn: u32) -> Validation {
        let len = route.prefix_len();
        match route.trunc().addr() {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                self.v4.validate(
                    len,
                    asn,
                    |l| v4_mask(bits, l),
                    |e| Vrp {
                        prefix: IpNet::new(IpAddr::V4(e.net.into()), e.len).unwrap_or_default(),
                        max_length: e.max_len,
                        asn: e.asn,
                    },
                )
            }
            IpAddr::V6(a) => {
                let bits = v6_bits(a);
                self.v6.validate(
                    len,
                    asn,
                    |l| v6_mask(bits, l),
                    |e| {
                        let x = (u128::from(e.net.0) << 64) | u128::from(e.net.1);
                        Vrp {
                            prefix: IpNet::new(IpAddr::V6(x.into()), e.len).unwrap_or_default(),
                            max_length: e.max_len,
                            asn: e.asn,
                        }
                    },
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vrp(p: &str, max: u8, asn: u32) -> Vrp {
        Vrp {
            prefix: p.parse().expect("prefix"),
            max_length: max,
            asn,
        }
    }

    fn check(t: &VrpTable, route: &str, asn: u32) -> (State, Option<Vrp>) {
        let v = t.validate(route.parse().expect("route"), asn);
        (v.state, v.vrp)
    }

    #[test]
    fn entries_are_compact() {
        assert_eq!(std::mem::size_of::<Entry<u32>>(), 12);
        assert_eq!(std::mem::size_of::<Entry<V6>>(), 24);
    }

    #[test]
    fn rfc6811_outcomes() {
        let t = VrpTable::new([
            vrp("2001:db8:100::/48", 56, 65001),
            vrp("192.0.2.0/24", 24, 65002),
            vrp("10.0.0.0/8", 16, 65003),
            vrp("10.1.0.0/16", 24, 65004),
        ]);
        assert_eq!(t.len(), 4);
        // valid: covered, same AS, within maxLength
        let (s, v) = check(&t, "2001:db8:100:ff00::/56", 65001);
        assert_eq!(
            (s, v),
            (State::Valid, Some(vrp("2001:db8:100::/48", 56, 65001)))
        );
        assert_eq!(check(&t, "192.0.2.0/24", 65002).0, State::Valid);
        // invalid_length: same AS, too specific
        let (s, v) = check(&t, "2001:db8:100::/64", 65001);
        assert_eq!(
            (s, v),
            (
                State::InvalidLength,
                Some(vrp("2001:db8:100::/48", 56, 65001))
            )
        );
        assert_eq!(s.reason(), Some("invalid_length"));
        // invalid_asn: covered, no VRP with this AS
        let (s, v) = check(&t, "192.0.2.0/24", 65099);
        assert_eq!(
            (s, v),
            (State::InvalidAsn, Some(vrp("192.0.2.0/24", 24, 65002)))
        );
        // not_found: nothing covers it (a less specific route is not covered by a VRP)
        assert_eq!(check(&t, "2001:db8::/32", 65001), (State::NotFound, None));
        assert_eq!(check(&t, "198.51.100.0/24", 65002), (State::NotFound, None));
        // any covering VRP can make it valid: 10.1.2.0/24 is covered by both
        assert_eq!(check(&t, "10.1.2.0/24", 65004).0, State::Valid);
        assert_eq!(check(&t, "10.1.0.0/16", 65003).0, State::Valid);
        let (s, v) = check(&t, "10.1.2.0/24", 65003);
        assert_eq!(
            (s, v),
            (State::InvalidLength, Some(vrp("10.0.0.0/8", 16, 65003)))
        );
        // the most specific covering VRP is reported for invalid_asn
        let (s, v) = check(&t, "10.1.2.0/24", 65099);
        assert_eq!(
            (s, v),
            (State::InvalidAsn, Some(vrp("10.1.0.0/16", 24, 65004)))
        );
    }

    #[test]
    fn incremental_updates() {
        let t = VrpTable::new([
            vrp("192.0.2.0/24", 24, 65001),
            vrp("2001:db8::/32", 48, 65002),
        ]);
        let u = t
            .updated(
                &[vrp("198.51.100.0/24", 24, 65003)],
                &[vrp("192.0.2.0/24", 24, 65001)],
            )
            .expect("update");
        assert_eq!(u.len(), 2);
        assert!(u.contains(&vrp("198.51.100.0/24", 24, 65003)));
        assert!(!u.contains(&vrp("192.0.2.0/24", 24, 65001)));
        assert!(u.contains(&vrp("2001:db8::/32", 48, 65002)));
        assert_eq!(
            t.updated(&[], &[vrp("192.0.2.0/24", 25, 65001)]).err(),
            Some(UpdateError::UnknownWithdraw(vrp("192.0.2.0/24", 25, 65001)))
        );
        assert_eq!(
            t.updated(&[vrp("2001:db8::/32", 48, 65002)], &[]).err(),
            Some(UpdateError::DuplicateAnnounce(vrp(
                "2001:db8::/32",
                48,
                65002
            )))
        );
        // withdraw and re-announce in one update is fine
        assert!(t
            .updated(
                &[vrp("2001:db8::/32", 48, 65002)],
                &[vrp("2001:db8::/32", 48, 65002)]
            )
            .is_ok());
        assert_eq!(t.iter().count(), 2);
    }

    #[test]
    fn as0_never_validates() {
        let t = VrpTable::new([vrp("203.0.113.0/24", 24, 0)]);
        assert_eq!(check(&t, "203.0.113.0/24", 0).0, State::InvalidAsn);
    }

    #[test]
    fn host_routes_and_default() {
        let t = VrpTable::new([vrp("::/0", 128, 65000), vrp("2001:db8::1/128", 128, 65001)]);
        assert_eq!(check(&t, "2001:db8::1/128", 65001).0, State::Valid);
        assert_eq!(check(&t, "2001:db8::2/128", 65000).0, State::Valid);
        assert_eq!(check(&t, "2001:db8::1/128", 65099).0, State::InvalidAsn);
    }

    /// Against a brute-force reading of RFC 6811 on random tables and routes.
    #[test]
    fn matches_brute_force() {
        let mut rnd = crate::testutil::xorshift(0x1234_5678_9abc_def1u64);
        let mut vrps = Vec::new();
        for _ in 0..300 {
            let len = 8 + (rnd() % 17) as u8; // /8../24 in 10.0.0.0/8-ish space
            let addr = 0x0a00_0000u32 | (rnd() as u32 & 0x00ff_ffff);
            let p = IpNet::new(IpAddr::V4(addr.into()), len)
                .expect("net")
                .trunc();
            vrps.push(Vrp {
                prefix: p,
                max_length: len + (rnd() % 4) as u8,
                asn: 65000 + (rnd() % 4) as u32,
            });
        }
        let t = VrpTable::new(vrps.clone());
        for _ in 0..5000 {
            let len = 8 + (rnd() % 20) as u8;
            let addr = 0x0a00_0000u32 | (rnd() as u32 & 0x00ff_ffff);
            let route = IpNet::new(IpAddr::V4(addr.into()), len)
                .expect("net")
                .trunc();
            let asn = 65000 + (rnd() % 5) as u32;
            let covering: Vec<&Vrp> = vrps.iter().filter(|v| v.prefix.contains(&route)).collect();
            let expect = if covering.is_empty() {
                State::NotFound
            } else if covering.iter().any(|v| v.asn == asn && len <= v.max_length) {
                State::Valid
            } else if covering.iter().any(|v| v.asn == asn) {
                State::InvalidLength
            } else {
                State::InvalidAsn
            };
            assert_eq!(t.validate(route, asn).state, expect, "{route} AS{asn}");
        }
    }
}
