//! The pure half of prefix pools: request bodies, their validation, the sizes a pool hands
//! out, the overlap rules checked against rows already loaded, and how an allocator error
//! reads to a client. No I/O; `super` runs it inside database closures.

use super::alloc::{AllocError, Allocator};
use super::error::{Error, Result};
use crate::error::Invalid;
use crate::store::ipam::{PoolFields, PoolRow, PoolStatus, WhitelistRow};
use crate::store::wireguard::{Routed, ServerRow};
use crate::wireguard::{overlaps, validate_description};
use ipnet::{IpNet, Ipv6Net};
use serde::Deserialize;

/// Shortest pool prefix: /8 keeps every count (2^(128-8) /128s) inside a `u128`.
pub const MIN_POOL_LENGTH: u8 = 8;
/// Whitelist entries per pool (each is a region of the in-memory allocator).
pub const MAX_WHITELIST: usize = 1024;

// ---- request bodies ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPool {
    pub name: String,
    pub prefix: String,
    /// Default: /64 (/128 for a pool longer than /64), inside the range if one is given.
    pub prefix_length: Option<u8>,
    /// The range of sizes a request may ask for, in either order (`min 128, max 64` and
    /// `min 64, max 128` both mean /64 to /128). Default: `prefix_length` only.
    pub min_prefix_length: Option<u8>,
    pub max_prefix_length: Option<u8>,
    pub description: Option<String>,
    pub status: Option<String>,
    pub auto_announce_bgp: Option<bool>,
}

/// PUT and PATCH body. The prefix cannot change; it is accepted only unchanged (PUT clients
/// send whole objects).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolChanges {
    pub name: Option<String>,
    pub prefix: Option<String>,
    pub prefix_length: Option<u8>,
    pub min_prefix_length: Option<u8>,
    pub max_prefix_length: Option<u8>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub description: Option<Option<String>>,
    pub status: Option<String>,
    pub auto_announce_bgp: Option<bool>,
}

/// `POST /ipv6/allocations` (with `pool_id`) and `POST /ipv6/pools/{id}/allocate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationRequest {
    pub pool_id: Option<i64>,
    /// A WireGuard client: the prefix is routed to it.
    pub client_id: Option<i64>,
    /// Default: the WireGuard client's name.
    pub client_name: Option<String>,
    pub description: Option<String>,
    /// Default: the pool's `prefix_length`.
    pub prefix_length: Option<u8>,
    /// A specific prefix instead of the lowest free one.
    pub prefix: Option<String>,
    /// Default: the pool's `auto_announce_bgp`.
    pub auto_announce: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWhitelistEntry {
    pub prefix: String,
    pub description: Option<String>,
}

// ---- field validation ----

/// An IPv6 prefix with its host bits zero, e.g. `2001:db8::/48`.
pub fn parse_prefix(field: &str, s: &str) -> Result<Ipv6Net> {
    let t = s.trim();
    let net: Ipv6Net = t.parse().map_err(|_| {
        let why = if t.parse::<IpNet>().is_ok() {
            "is not an IPv6 prefix"
        } else {
            "is not a prefix like 2001:db8::/48"
        };
        Error::invalid(field, format!("{field} {s:?} {why}"))
    })?;
    Ok(without_host_bits(field, net, net.trunc())?)
}

/// `net` if it equals its truncation `trunc`, else bad input suggesting `trunc` (BGP's
/// prefixes follow the same rule).
pub fn without_host_bits<N: PartialEq + std::fmt::Display>(
    field: &str,
    net: N,
    trunc: N,
) -> std::result::Result<N, Invalid> {
    if net != trunc {
        return Err(Invalid::new(
            field,
            format!("{field} {net} has host bits set (did you mean {trunc}?)"),
        ));
    }
    Ok(net)
}

fn pool_prefix(s: &str) -> Result<Ipv6Net> {
    let net = parse_prefix("prefix", s)?;
    if net.prefix_len() < MIN_POOL_LENGTH {
        return Err(Error::invalid(
            "prefix",
            format!("prefix must be /{MIN_POOL_LENGTH} or longer"),
        ));
    }
    Ok(net)
}

pub fn validate_pool_name(s: &str) -> Result<String> {
    printable("name", s)
}

/// 1–64 printable characters, trimmed.
fn printable(field: &str, s: &str) -> Result<String> {
    let s = s.trim();
    if !(1..=64).contains(&s.chars().count()) || s.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("{field} must be 1-64 printable characters"),
        ));
    }
    Ok(s.to_string())
}

fn status(s: &str) -> Result<PoolStatus> {
    s.parse()
        .map_err(|_| Error::invalid("status", "status must be active or disabled"))
}

/// The size a pool hands out when none is given: a /64 (the standard LAN), or single /128
/// addresses from a pool too small for a /64.
pub fn default_length(pool_len: u8) -> u8 {
    if pool_len <= 64 {
        64
    } else {
        128
    }
}

/// The sizes of a pool: `unit` by default, any of `lo..=hi` on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub unit: u8,
    pub lo: u8,
    pub hi: u8,
}

impl Sizes {
    pub fn of(p: &PoolRow) -> Sizes {
        Sizes {
            unit: p.prefix_length,
            lo: p.min_prefix_length,
            hi: p.max_prefix_length,
        }
    }

    /// From what a request gave: a missing `unit` is [`default_length`] moved into the
    /// given range, a missing bound is `unit`, bounds come in either order. Every length
    /// must be within `pool_len..=128`, and `lo ≤ unit ≤ hi`.
    pub fn new(pool_len: u8, unit: Option<u8>, a: Option<u8>, b: Option<u8>) -> Result<Sizes> {
        for (field, v) in [
            ("prefix_length", unit),
            ("min_prefix_length", a),
            ("max_prefix_length", b),
        ] {
            match v {
                Some(v) if v > 128 => {
                    return Err(Error::invalid(
                        field,
                        format!("{field} must be at most 128"),
                    ))
                }
                Some(v) if v < pool_len => {
                    return Err(Error::invalid(
                        field,
                        format!("{field} /{v} is shorter than the pool's /{pool_len}"),
                    ))
                }
                _ => {}
            }
        }
        let unit = unit.unwrap_or_else(|| {
            let base = default_length(pool_len);
            match (a, b) {
                (Some(a), Some(b)) => base.clamp(a.min(b), a.max(b)),
                _ => base,
            }
        });
        let (a, b) = (a.unwrap_or(unit), b.unwrap_or(unit));
        let (lo, hi) = (a.min(b), a.max(b));
        if !(lo..=hi).contains(&unit) {
            return Err(Error::invalid(
                "prefix_length",
                format!("prefix_length /{unit} is outside the range /{lo}–/{hi}"),
            ));
        }
        Ok(Sizes { unit, lo, hi })
    }
}

impl NewPool {
    pub fn validate(self) -> Result<PoolFields> {
        let name = validate_pool_name(&self.name)?;
        let prefix = pool_prefix(&self.prefix)?;
        let s = Sizes::new(
            prefix.prefix_len(),
            self.prefix_length,
            self.min_prefix_length,
            self.max_prefix_length,
        )?;
        Ok(PoolFields {
            name,
            prefix,
            prefix_length: s.unit,
            min_prefix_length: s.lo,
            max_prefix_length: s.hi,
            description: validate_description(self.description)?,
            status: self
                .status
                .as_deref()
                .map(status)
                .transpose()?
                .unwrap_or(PoolStatus::Active),
            auto_announce_bgp: self.auto_announce_bgp.unwrap_or(false),
        })
    }
}

impl PoolChanges {
    /// `current` with these changes applied, validated. Bounds not given keep their
    /// current value, except that a pool handing out one size only (`lo = hi = unit`)
    /// follows a new `prefix_length`.
    pub fn apply(self, current: &PoolRow) -> Result<PoolFields> {
        if let Some(p) = &self.prefix {
            if parse_prefix("prefix", p)? != current.prefix {
                return Err(Error::invalid(
                    "prefix",
                    "prefix cannot change; create a new pool",
                ));
            }
        }
        let cur = Sizes::of(current);
        let sizes = if self.prefix_length.is_none()
            && self.min_prefix_length.is_none()
            && self.max_prefix_length.is_none()
        {
            cur
        } else {
            let follow = cur.lo == cur.hi
                && self.min_prefix_length.is_none()
                && self.max_prefix_length.is_none();
            let unit = self.prefix_length.unwrap_or(cur.unit);
            let (a, b) = if follow {
                (unit, unit)
            } else {
                (
                    self.min_prefix_length.unwrap_or(cur.lo),
                    self.max_prefix_length.unwrap_or(cur.hi),
                )
            };
            Sizes::new(current.prefix.prefix_len(), Some(unit), Some(a), Some(b))?
        };
        Ok(PoolFields {
            name: match self.name {
                Some(n) => validate_pool_name(&n)?,
                None => current.name.clone(),
            },
            prefix: current.prefix,
            prefix_length: sizes.unit,
            min_prefix_length: sizes.lo,
            max_prefix_length: sizes.hi,
            description: match self.description {
                Some(d) => validate_description(d)?,
                None => current.description.clone(),
            },
            status: match self.status.as_deref() {
                Some(s) => status(s)?,
                None => current.status,
            },
            auto_announce_bgp: self.auto_announce_bgp.unwrap_or(current.auto_announce_bgp),
        })
    }
}

/// An allocation request, validated on its own (the pool and client are checked later).
#[derive(Debug, Clone, PartialEq)]
pub struct AllocationInput {
    pub client_id: Option<i64>,
    pub client_name: Option<String>,
    pub description: Option<String>,
    pub prefix_length: Option<u8>,
    pub prefix: Option<Ipv6Net>,
    pub auto_announce: Option<bool>,
}

impl AllocationRequest {
    pub fn validate(self) -> Result<AllocationInput> {
        if self.client_id.is_some_and(|id| id <= 0) {
            return Err(Error::invalid(
                "client_id",
                "client_id must be a positive integer",
            ));
        }
        let client_name = self
            .client_name
            .filter(|n| !n.trim().is_empty())
            .map(|n| printable("client_name", &n))
            .transpose()?;
        if self.client_id.is_none() && client_name.is_none() {
            return Err(Error::invalid(
                "client_name",
                "client_name or client_id is required",
            ));
        }
        let prefix = self
            .prefix
            .as_deref()
            .map(|p| parse_prefix("prefix", p))
            .transpose()?;
        if let (Some(p), Some(l)) = (prefix, self.prefix_length) {
            if p.prefix_len() != l {
                return Err(Error::invalid(
                    "prefix_length",
                    format!("prefix_length /{l} does not match prefix {p}"),
                ));
            }
        }
        Ok(AllocationInput {
            client_id: self.client_id,
            client_name,
            description: validate_description(self.description)?,
            prefix_length: self.prefix_length,
            prefix,
            auto_announce: self.auto_announce,
        })
    }
}

impl AllocationInput {
    /// The length this request asks of `pool`: the given prefix's, the given length, or
    /// the pool's default; 422 outside the pool's range.
    pub fn length(&self, pool: &PoolRow) -> Result<u8> {
        let (len, field) = match (self.prefix, self.prefix_length) {
            (Some(p), _) => (p.prefix_len(), "prefix"),
            (None, Some(l)) => (l, "prefix_length"),
            (None, None) => return Ok(pool.prefix_length),
        };
        let (lo, hi) = (pool.min_prefix_length, pool.max_prefix_length);
        if !(lo..=hi).contains(&len) {
            return Err(Error::invalid(
                field,
                format!(
                    "/{len} is outside the sizes pool {:?} hands out (/{lo}–/{hi})",
                    pool.name
                ),
            ));
        }
        Ok(len)
    }
}

// ---- rules against loaded rows ----

/// A pool name is unique (case-insensitive); `self_id` is the pool's own id on update.
pub fn check_pool_name(name: &str, self_id: Option<i64>, pools: &[PoolRow]) -> Result<()> {
    match pools
        .iter()
        .find(|p| Some(p.id) != self_id && p.name.eq_ignore_ascii_case(name))
    {
        Some(p) => Err(Error::conflict(
            "name",
            format!("a pool named {:?} already exists", p.name),
        )),
        None => Ok(()),
    }
}

/// A new pool's prefix overlaps no other pool, no WireGuard server's IPv6 subnet and no
/// prefix already routed to a WireGuard client.
pub fn check_pool_space(
    prefix: Ipv6Net,
    pools: &[PoolRow],
    servers: &[ServerRow],
    routed: &[Routed],
) -> Result<()> {
    let mine = IpNet::V6(prefix);
    if let Some(p) = pools.iter().find(|p| overlaps(&IpNet::V6(p.prefix), &mine)) {
        return Err(Error::conflict(
            "prefix",
            format!("{prefix} overlaps pool {:?} ({})", p.name, p.prefix),
        ));
    }
    let server = servers.iter().find_map(|s| {
        s.ipv6_address
            .filter(|n| overlaps(n, &mine))
            .map(|n| (s, n.trunc()))
    });
    if let Some((s, net)) = server {
        return Err(Error::conflict(
            "prefix",
            format!(
                "{prefix} overlaps the subnet {net} of WireGuard server {:?}",
                s.name
            ),
        ));
    }
    let client = routed.iter().find_map(|r| {
        r.prefixes
            .iter()
            .find(|p| overlaps(p, &mine))
            .map(|p| (r, p))
    });
    if let Some((r, p)) = client {
        return Err(Error::conflict(
            "prefix",
            format!(
                "{prefix} overlaps {p} routed to WireGuard client {:?}",
                r.client_name
            ),
        ));
    }
    Ok(())
}

/// A whitelist entry lies inside its pool and overlaps no other entry of it.
pub fn check_whitelist_entry(
    pool: &PoolRow,
    prefix: Ipv6Net,
    entries: &[WhitelistRow],
) -> Result<()> {
    if !pool.prefix.contains(&prefix) {
        return Err(Error::invalid(
            "prefix",
            format!(
                "{prefix} is not inside pool {:?} ({})",
                pool.name, pool.prefix
            ),
        ));
    }
    let mine = IpNet::V6(prefix);
    if let Some(e) = entries
        .iter()
        .find(|e| overlaps(&IpNet::V6(e.prefix), &mine))
    {
        return Err(Error::conflict(
            "prefix",
            format!("{prefix} overlaps whitelist entry {}", e.prefix),
        ));
    }
    if entries.len() >= MAX_WHITELIST {
        return Err(Error::conflict(
            "prefix",
            format!("a pool has at most {MAX_WHITELIST} whitelist entries"),
        ));
    }
    Ok(())
}

/// The space a pool hands out from: its whitelist entries, or the whole pool.
pub fn regions(pool: &PoolRow, whitelist: &[Ipv6Net]) -> Vec<Ipv6Net> {
    if whitelist.is_empty() {
        vec![pool.prefix]
    } else {
        whitelist.to_vec()
    }
}

/// A fresh allocator for `pool` over `regions` holding `allocated`; the first prefix that
/// no longer fits is the error.
pub fn rebuild(
    pool: &PoolRow,
    regions: &[Ipv6Net],
    allocated: impl IntoIterator<Item = Ipv6Net>,
) -> std::result::Result<Allocator, Ipv6Net> {
    let s = Sizes::of(pool);
    let mut a = Allocator::new(regions, s.unit, s.lo, s.hi);
    for p in allocated {
        a.take(p).map_err(|_| p)?;
    }
    Ok(a)
}

/// An allocator refusal as the client sees it. `field` names what the request asked for
/// (`prefix` or `prefix_length`); `whitelisted`: the pool has a whitelist.
pub fn alloc_error(e: AllocError, pool: &PoolRow, field: &str, whitelisted: bool) -> Error {
    let name = &pool.name;
    match e {
        AllocError::Length { .. } => Error::invalid(field, format!("{e} ({name:?})")),
        AllocError::Outside(p) if whitelisted => Error::invalid(
            "prefix",
            format!("{p} is outside the whitelist of pool {name:?}"),
        ),
        AllocError::Outside(p) => Error::invalid(
            "prefix",
            format!("{p} is not inside pool {name:?} ({})", pool.prefix),
        ),
        AllocError::Taken(p) => Error::conflict(
            "prefix",
            format!("{p} overlaps a prefix already allocated from pool {name:?}"),
        ),
        AllocError::Exhausted { length } => Error::conflict(
            "pool_id",
            format!("no free /{length} left in pool {name:?}"),
        ),
        AllocError::NotAllocated(p) => {
            let e = format!("pool {name:?}: {p} was expected to be allocated");
            log::error!("{e}");
            Error::Internal(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::error::tests::{code, ErrorCode};

    fn net(s: &str) -> Ipv6Net {
        s.parse().expect("net")
    }

    fn err<T: std::fmt::Debug>(r: Result<T>) -> (ErrorCode, String, String) {
        code(r.unwrap_err())
    }

    fn field<T: std::fmt::Debug>(r: Result<T>) -> String {
        err(r).1
    }

    fn pool_row(id: i64, name: &str, prefix: &str, s: Sizes) -> PoolRow {
        PoolRow {
            id,
            name: name.into(),
            prefix: net(prefix),
            prefix_length: s.unit,
            min_prefix_length: s.lo,
            max_prefix_length: s.hi,
            description: None,
            status: PoolStatus::Active,
            auto_announce_bgp: false,
            created_at: 1,
            updated_at: 1,
        }
    }

    fn sizes(unit: u8, lo: u8, hi: u8) -> Sizes {
        Sizes { unit, lo, hi }
    }

    #[test]
    fn prefixes_are_canonical_ipv6() {
        assert_eq!(
            parse_prefix("prefix", " 2001:db8::/32 ").expect("ok"),
            net("2001:db8::/32")
        );
        for bad in ["10.0.0.0/8", "2001:db8::", "nope", "2001:db8::/129", ""] {
            let (code, f, _) = err(parse_prefix("prefix", bad));
            assert_eq!(
                (code, f.as_str()),
                (ErrorCode::Validation, "prefix"),
                "{bad}"
            );
        }
        let (_, _, m) = err(parse_prefix("prefix", "2001:db8::1/64"));
        assert!(m.contains("did you mean 2001:db8::/64"), "{m}");
        assert!(err(parse_prefix("prefix", "10.0.0.0/8"))
            .2
            .contains("not an IPv6 prefix"));
        assert_eq!(field(pool_prefix("2000::/7")), "prefix");
        assert_eq!(pool_prefix("2000::/8").expect("ok").prefix_len(), 8);
    }

    #[test]
    fn sizes_defaults_ranges_and_either_order() {
        assert_eq!(
            Sizes::new(48, None, None, None).expect("ok"),
            sizes(64, 64, 64)
        );
        assert_eq!(
            Sizes::new(96, None, None, None).expect("ok"),
            sizes(128, 128, 128),
            "a pool longer than /64 hands out addresses"
        );
        // api-reference.zh.md: max 64, min 128 means "from /64 to /128".
        assert_eq!(
            Sizes::new(48, None, Some(128), Some(64)).expect("ok"),
            sizes(64, 64, 128)
        );
        assert_eq!(
            Sizes::new(48, None, Some(64), Some(128)).expect("ok"),
            sizes(64, 64, 128)
        );
        assert_eq!(
            Sizes::new(48, None, Some(52), Some(56)).expect("ok"),
            sizes(56, 52, 56),
            "the default moves into the range"
        );
        assert_eq!(
            Sizes::new(32, Some(56), None, Some(64)).expect("ok"),
            sizes(56, 56, 64)
        );
        assert_eq!(
            Sizes::new(128, None, None, None).expect("ok"),
            sizes(128, 128, 128)
        );
        assert_eq!(field(Sizes::new(48, Some(40), None, None)), "prefix_length");
        assert_eq!(
            field(Sizes::new(48, None, Some(44), None)),
            "min_prefix_length"
        );
        assert_eq!(
            field(Sizes::new(48, None, None, Some(129))),
            "max_prefix_length"
        );
        let (_, f, m) = err(Sizes::new(48, Some(64), Some(56), Some(60)));
        assert_eq!(f, "prefix_length");
        assert!(m.contains("/56–/60"), "{m}");
    }

    #[test]
    fn new_pool_validation() {
        let f = NewPool {
            name: " lan ".into(),
            prefix: "2001:db8::/32".into(),
            ..Default::default()
        }
        .validate()
        .expect("valid");
        assert_eq!(
            (
                f.name.as_str(),
                f.prefix_length,
                f.min_prefix_length,
                f.max_prefix_length,
                f.status,
                f.auto_announce_bgp
            ),
            ("lan", 64, 64, 64, PoolStatus::Active, false)
        );
        let with = |f: fn(&mut NewPool)| {
            let mut p = NewPool {
                name: "x".into(),
                prefix: "2001:db8::/48".into(),
                ..Default::default()
            };
            f(&mut p);
            field(p.validate())
        };
        assert_eq!(with(|p| p.name = " ".into()), "name");
        assert_eq!(with(|p| p.prefix = "2001:db8::1/48".into()), "prefix");
        assert_eq!(with(|p| p.status = Some("on".into())), "status");
        assert_eq!(
            with(|p| p.description = Some("x".repeat(300))),
            "description"
        );
        assert_eq!(with(|p| p.prefix_length = Some(32)), "prefix_length");
    }

    #[test]
    fn pool_changes() {
        let cur = pool_row(1, "a", "2001:db8::/48", sizes(64, 64, 64));
        let f = PoolChanges {
            prefix_length: Some(56),
            ..Default::default()
        }
        .apply(&cur)
        .expect("a single size follows prefix_length");
        assert_eq!(
            (f.prefix_length, f.min_prefix_length, f.max_prefix_length),
            (56, 56, 56)
        );
        let f = PoolChanges {
            max_prefix_length: Some(128),
            ..Default::default()
        }
        .apply(&cur)
        .expect("widen");
        assert_eq!(
            (f.prefix_length, f.min_prefix_length, f.max_prefix_length),
            (64, 64, 128)
        );
        let ranged = pool_row(1, "a", "2001:db8::/48", sizes(64, 60, 64));
        assert_eq!(
            field(
                PoolChanges {
                    prefix_length: Some(56),
                    ..Default::default()
                }
                .apply(&ranged)
            ),
            "prefix_length"
        );
        let f = PoolChanges {
            prefix: Some("2001:db8::/48".into()),
            status: Some("disabled".into()),
            description: Some(None),
            name: Some("b".into()),
            ..Default::default()
        }
        .apply(&cur)
        .expect("the same prefix is fine");
        assert_eq!((f.status, f.name.as_str()), (PoolStatus::Disabled, "b"));
        let (code, fld, m) = err(PoolChanges {
            prefix: Some("2001:db9::/48".into()),
            ..Default::default()
        }
        .apply(&cur));
        assert_eq!(
            (code, fld.as_str(), m.as_str()),
            (
                ErrorCode::Validation,
                "prefix",
                "prefix cannot change; create a new pool"
            )
        );
    }

    #[test]
    fn allocation_requests() {
        let ok = AllocationRequest {
            client_name: Some(" alice ".into()),
            prefix: Some("2001:db8:0:5::/64".into()),
            ..Default::default()
        }
        .validate()
        .expect("valid");
        assert_eq!(ok.client_name.as_deref(), Some("alice"));
        assert_eq!(ok.prefix, Some(net("2001:db8:0:5::/64")));
        assert_eq!(
            field(AllocationRequest::default().validate()),
            "client_name"
        );
        let mismatch = AllocationRequest {
            client_id: Some(1),
            prefix: Some("2001:db8::/64".into()),
            prefix_length: Some(56),
            ..Default::default()
        };
        assert_eq!(field(mismatch.validate()), "prefix_length");
        let bad_id = AllocationRequest {
            client_id: Some(0),
            ..Default::default()
        };
        assert_eq!(field(bad_id.validate()), "client_id");

        let pool = pool_row(1, "p", "2001:db8::/48", sizes(64, 56, 64));
        let req = |prefix: Option<&str>, len: Option<u8>| AllocationInput {
            client_id: None,
            client_name: Some("x".into()),
            description: None,
            prefix_length: len,
            prefix: prefix.map(net),
            auto_announce: None,
        };
        assert_eq!(req(None, None).length(&pool).expect("default"), 64);
        assert_eq!(req(None, Some(56)).length(&pool).expect("in range"), 56);
        assert_eq!(field(req(None, Some(48)).length(&pool)), "prefix_length");
        assert_eq!(
            field(req(Some("2001:db8::/72"), None).length(&pool)),
            "prefix"
        );
    }

    #[test]
    fn pool_space_and_whitelist_rules() {
        let pools = [pool_row(1, "a", "2001:db8::/32", sizes(64, 64, 64))];
        assert_eq!(
            field(check_pool_space(net("2001:db8:5::/48"), &pools, &[], &[])),
            "prefix"
        );
        check_pool_space(net("2001:db9::/32"), &pools, &[], &[]).expect("disjoint");
        let routed = [Routed {
            client_id: 1,
            client_name: "site".into(),
            server_id: 1,
            prefixes: vec!["2001:dba:1::/48".parse().expect("net")],
        }];
        let (code, f, m) = err(check_pool_space(net("2001:dba::/32"), &[], &[], &routed));
        assert_eq!((code, f.as_str()), (ErrorCode::Conflict, "prefix"));
        assert!(m.contains("\"site\""), "{m}");
        assert_eq!(
            err(check_pool_name("A", None, &pools)).0,
            ErrorCode::Conflict
        );
        check_pool_name("A", Some(1), &pools).expect("its own name");

        let pool = &pools[0];
        let entry = |id, p: &str| WhitelistRow {
            id,
            pool_id: 1,
            prefix: net(p),
            description: None,
            created_at: 1,
        };
        let entries = [entry(1, "2001:db8:1::/48")];
        let (code, f, _) = err(check_whitelist_entry(pool, net("2001:db9::/48"), &entries));
        assert_eq!((code, f.as_str()), (ErrorCode::Validation, "prefix"));
        let (code, _, _) = err(check_whitelist_entry(
            pool,
            net("2001:db8:1:1::/64"),
            &entries,
        ));
        assert_eq!(code, ErrorCode::Conflict);
        check_whitelist_entry(pool, net("2001:db8:2::/48"), &entries).expect("ok");
    }

    #[test]
    fn rebuild_keeps_allocations_or_names_the_misfit() {
        let pool = pool_row(1, "a", "2001:db8::/48", sizes(64, 64, 64));
        let held = [net("2001:db8::/64"), net("2001:db8:0:1::/64")];
        let a = rebuild(&pool, &regions(&pool, &[]), held).expect("fits the pool");
        assert_eq!((a.allocated(), a.available()), (2, 65534));
        let wl = [net("2001:db8::/63")];
        let a = rebuild(&pool, &regions(&pool, &wl), held).expect("fits the whitelist");
        assert_eq!((a.total(), a.available()), (2, 0));
        assert_eq!(
            rebuild(&pool, &[net("2001:db8:0:1::/64")], held).unwrap_err(),
            held[0]
        );
    }

    #[test]
    fn allocator_errors_read_well() {
        let pool = pool_row(1, "lan", "2001:db8::/62", sizes(64, 64, 64));
        let e = alloc_error(
            AllocError::Exhausted { length: 64 },
            &pool,
            "prefix_length",
            false,
        );
        let (code_of_e, _, message) = code(e);
        assert_eq!(
            (code_of_e, message.as_str()),
            (ErrorCode::Conflict, "no free /64 left in pool \"lan\"")
        );
        let p = net("2001:db9::/64");
        let (c, _, message) = code(alloc_error(AllocError::Outside(p), &pool, "prefix", true));
        assert_eq!(c, ErrorCode::Validation);
        assert!(message.contains("whitelist"), "{message}");
        let e = alloc_error(AllocError::Taken(p), &pool, "prefix", false);
        assert_eq!(code(e).0, ErrorCode::Conflict);
    }
}
