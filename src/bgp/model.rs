//! The pure half of BGP configuration: request bodies of sessions and announcements, their
//! validation into store fields, and the typed AS path and communities of an announcement.
//! No I/O; `super` runs it inside database closures.

use super::error::{Error, Result};
use crate::store::bgp::{AnnouncementFields, SessionFields};
use crate::wireguard::validate_description;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, Ipv6Addr};

pub const DEFAULT_HOLD_TIME: u16 = 90;
pub const DEFAULT_PORT: u16 = 179;
/// Routes a session accepts when none is configured: bounded memory on a router (a full
/// IPv6 table is ~200k routes; a full IPv4 table does not fit a 64 MiB router anyway).
pub const DEFAULT_MAX_PREFIXES: u32 = 250_000;
/// TCP-MD5 keys are at most 80 bytes (`TCP_MD5SIG_MAXKEYLEN`).
pub const MAX_PASSWORD_LEN: usize = 80;
/// ASNs in a configured AS path, and communities per announcement.
pub const MAX_PATH: usize = 32;
pub const MAX_COMMUNITIES: usize = 32;
/// What reads show instead of a password; sending it back keeps the stored one.
pub const PASSWORD_MASK: &str = "***";

// ---- sessions ----

/// POST, PUT and PATCH body of a session. On create `name`, `neighbor` and `remote_as`
/// are required; on update every field is optional and `null` clears the nullable ones.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionInput {
    pub name: Option<String>,
    pub neighbor: Option<String>,
    pub remote_as: Option<u32>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub local_as: Option<Option<u32>>,
    pub hold_time: Option<u16>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub password: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub local_address: Option<Option<String>>,
    pub local_port: Option<u16>,
    pub remote_port: Option<u16>,
    pub passive: Option<bool>,
    pub max_prefixes: Option<u32>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub next_hop_ipv6: Option<Option<String>>,
}

impl SessionInput {
    /// A new session: the required fields, defaults for the rest.
    pub fn create(self) -> Result<SessionFields> {
        let required = |v: bool, field: &str| {
            if v {
                Ok(())
            } else {
                Err(Error::invalid(field, format!("{field} is required")))
            }
        };
        required(self.name.is_some(), "name")?;
        required(self.neighbor.is_some(), "neighbor")?;
        required(self.remote_as.is_some(), "remote_as")?;
        let base = SessionFields {
            name: String::new(),
            neighbor: IpAddr::from([0, 0, 0, 0]),
            remote_as: 0,
            local_as: None,
            hold_time: DEFAULT_HOLD_TIME,
            password: None,
            description: None,
            enabled: true,
            local_address: None,
            local_port: DEFAULT_PORT,
            remote_port: DEFAULT_PORT,
            passive: false,
            max_prefixes: DEFAULT_MAX_PREFIXES,
            next_hop_ipv6: None,
        };
        self.apply(&base)
    }

    /// `current` with these changes applied, validated.
    pub fn apply(self, current: &SessionFields) -> Result<SessionFields> {
        let mut f = current.clone();
        if let Some(n) = self.name {
            f.name = printable("name", &n)?;
        }
        if let Some(n) = self.neighbor {
            f.neighbor = address("neighbor", &n)?;
        }
        if let Some(a) = self.remote_as {
            f.remote_as = asn("remote_as", a)?;
        }
        if let Some(a) = self.local_as {
            f.local_as = a.map(|a| asn("local_as", a)).transpose()?;
        }
        if let Some(h) = self.hold_time {
            f.hold_time = hold_time(h)?;
        }
        if let Some(p) = self.password {
            f.password = match p.as_deref().map(str::trim) {
                Some(PASSWORD_MASK) => current.password.clone(),
                _ => password(p)?,
            };
        }
        if let Some(d) = self.description {
            f.description = validate_description(d)?;
        }
        if let Some(e) = self.enabled {
            f.enabled = e;
        }
        if let Some(a) = self.local_address {
            f.local_address = a.map(|a| address("local_address", &a)).transpose()?;
        }
        if let Some(p) = self.local_port {
            f.local_port = port("local_port", p)?;
        }
        if let Some(p) = self.remote_port {
            f.remote_port = port("remote_port", p)?;
        }
        if let Some(p) = self.passive {
            f.passive = p;
        }
        if let Some(m) = self.max_prefixes {
            f.max_prefixes = m;
        }
        if let Some(n) = self.next_hop_ipv6 {
            f.next_hop_ipv6 = n.map(|n| next_hop_v6(&n)).transpose()?;
        }
        check_session(&f)?;
        Ok(f)
    }
}

/// Rules across fields.
fn check_session(f: &SessionFields) -> Result<()> {
    if let Some(local) = f.local_address {
        if local.is_ipv4() != f.neighbor.is_ipv4() {
            return Err(Error::invalid(
                "local_address",
                "local_address must be of the neighbor's address family",
            ));
        }
        if local == f.neighbor {
            return Err(Error::invalid(
                "neighbor",
                "neighbor must not be our own local_address",
            ));
        }
    }
    Ok(())
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

/// A unicast address a BGP peer can have.
fn address(field: &str, s: &str) -> Result<IpAddr> {
    let ip: IpAddr = s
        .trim()
        .parse()
        .map_err(|_| Error::invalid(field, format!("{field} {s:?} is not an IP address")))?;
    if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]) {
        return Err(Error::invalid(
            field,
            format!("{field} {ip} is not a unicast address"),
        ));
    }
    Ok(ip)
}

fn next_hop_v6(s: &str) -> Result<Ipv6Addr> {
    match address("next_hop_ipv6", s)? {
        IpAddr::V6(a) => Ok(a),
        IpAddr::V4(_) => Err(Error::invalid(
            "next_hop_ipv6",
            "next_hop_ipv6 must be an IPv6 address",
        )),
    }
}

/// 1–4294967295 (4-octet ASNs, RFC 6793); 0 is reserved (RFC 7607).
fn asn(field: &str, a: u32) -> Result<u32> {
    if a == 0 {
        return Err(Error::invalid(
            field,
            format!("{field} must be 1-4294967295 (AS 0 is reserved)"),
        ));
    }
    Ok(a)
}

/// RFC 4271 §4.2: 0 (no keepalives) or at least 3 seconds.
fn hold_time(h: u16) -> Result<u16> {
    if h == 1 || h == 2 {
        return Err(Error::invalid(
            "hold_time",
            "hold_time must be 0 or 3-65535 seconds",
        ));
    }
    Ok(h)
}

fn port(field: &str, p: u16) -> Result<u16> {
    if p == 0 {
        return Err(Error::invalid(field, format!("{field} must be 1-65535")));
    }
    Ok(p)
}

/// A TCP-MD5 key: 1–80 bytes; empty or null = no password.
fn password(p: Option<String>) -> Result<Option<String>> {
    let Some(p) = p.filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    if p.len() > MAX_PASSWORD_LEN || p.chars().any(char::is_control) {
        return Err(Error::invalid(
            "password",
            format!("password must be 1-{MAX_PASSWORD_LEN} bytes without control characters"),
        ));
    }
    Ok(Some(p))
}

// ---- announcements ----

/// POST, PUT and PATCH body of an announcement (`prefix` required on create).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnouncementInput {
    pub prefix: Option<String>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub session_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub next_hop: Option<Option<String>>,
    /// The ASes behind ours, origin last ("64999 64998"); eBGP sessions prepend our AS.
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub as_path: Option<Option<String>>,
    /// The origin AS (the last of the path); `as_path` or our AS when absent.
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub asn: Option<Option<u32>>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub community: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub force: Option<bool>,
}

impl AnnouncementInput {
    pub fn create(self) -> Result<AnnouncementFields> {
        if self.prefix.is_none() {
            return Err(Error::invalid("prefix", "prefix is required"));
        }
        let base = AnnouncementFields {
            session_id: None,
            prefix: IpNet::from(IpAddr::from([0, 0, 0, 0])),
            next_hop: None,
            as_path: String::new(),
            community: String::new(),
            description: None,
            enabled: true,
            force: false,
        };
        self.apply(&base)
    }

    pub fn apply(self, current: &AnnouncementFields) -> Result<AnnouncementFields> {
        let mut f = current.clone();
        if let Some(p) = self.prefix {
            f.prefix = prefix("prefix", &p)?;
        }
        if let Some(s) = self.session_id {
            f.session_id = s;
        }
        if let Some(n) = self.next_hop {
            f.next_hop = n
                .filter(|n| !n.trim().is_empty())
                .map(|n| address("next_hop", &n))
                .transpose()?;
        }
        if let Some(p) = self.as_path {
            f.as_path = render_path(&parse_path(p.as_deref().unwrap_or(""))?);
        }
        if let Some(a) = self.asn {
            f.as_path = with_origin(&parse_path(&f.as_path)?, a)?;
        }
        if let Some(c) = self.community {
            f.community = render_communities(&parse_communities(c.as_deref().unwrap_or(""))?);
        }
        if let Some(d) = self.description {
            f.description = validate_description(d)?;
        }
        if let Some(e) = self.enabled {
            f.enabled = e;
        }
        if let Some(x) = self.force {
            f.force = x;
        }
        if let Some(nh) = f.next_hop {
            if nh.is_ipv4() != matches!(f.prefix, IpNet::V4(_)) {
                return Err(Error::invalid(
                    "next_hop",
                    "next_hop must be of the prefix's address family",
                ));
            }
        }
        Ok(f)
    }
}

/// A prefix with its host bits zero, IPv4 or IPv6.
pub fn prefix(field: &str, s: &str) -> Result<IpNet> {
    let net: IpNet = s.trim().parse().map_err(|_| {
        Error::invalid(
            field,
            format!("{field} {s:?} is not a prefix like 2001:db8::/48 or 192.0.2.0/24"),
        )
    })?;
    Ok(crate::ipam::model::without_host_bits(
        field,
        net,
        net.trunc(),
    )?)
}

/// `"65010 65020"` (spaces or commas) → ASNs, at most [`MAX_PATH`].
pub fn parse_path(s: &str) -> Result<Vec<u32>> {
    let path = s
        .split([' ', ',', '\t'])
        .filter(|t| !t.is_empty())
        .map(|t| {
            let t = t
                .strip_prefix("AS")
                .or_else(|| t.strip_prefix("as"))
                .unwrap_or(t);
            match t.parse::<u32>() {
                Ok(a) if a > 0 => Ok(a),
                _ => Err(Error::invalid(
                    "as_path",
                    format!("as_path: {t:?} is not an AS number 1-4294967295"),
                )),
            }
        })
        .collect::<Result<Vec<u32>>>()?;
    if path.len() > MAX_PATH {
        return Err(Error::invalid(
            "as_path",
            format!("as_path has more than {MAX_PATH} ASNs"),
        ));
    }
    Ok(path)
}

pub fn render_path(path: &[u32]) -> String {
    path.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The path with `origin` as its last AS: a path ending elsewhere conflicts; an empty
/// path becomes `[origin]` (we announce for that AS); `None` keeps the path.
fn with_origin(path: &[u32], origin: Option<u32>) -> Result<String> {
    let Some(origin) = origin else {
        return Ok(render_path(path));
    };
    let origin = asn("asn", origin)?;
    match path.last() {
        None => Ok(origin.to_string()),
        Some(&last) if last == origin => Ok(render_path(path)),
        Some(&last) => Err(Error::invalid(
            "asn",
            format!("asn {origin} is not the origin of as_path (which ends in {last})"),
        )),
    }
}

/// A BGP community: standard (RFC 1997) or large (RFC 8092).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Community {
    Standard(u32),
    Large([u32; 3]),
}

const WELL_KNOWN: &[(&str, u32)] = &[
    ("no-export", 0xFFFF_FF01),
    ("no-advertise", 0xFFFF_FF02),
    ("no-export-subconfed", 0xFFFF_FF03),
    ("blackhole", 0xFFFF_029A),
];

/// `"65000:100 65000:1:2 no-export"` (spaces or commas) → communities.
pub fn parse_communities(s: &str) -> Result<Vec<Community>> {
    let bad = |t: &str| {
        Error::invalid(
            "community",
            format!(
                "community: {t:?} is neither ASN:VALUE (16-bit each), \
                 ASN:VALUE:VALUE (32-bit each) nor a well-known name like no-export"
            ),
        )
    };
    let out = s
        .split([' ', ',', '\t'])
        .filter(|t| !t.is_empty())
        .map(|t| {
            if let Some(&(_, v)) = WELL_KNOWN.iter().find(|(n, _)| n.eq_ignore_ascii_case(t)) {
                return Ok(Community::Standard(v));
            }
            let parts: Vec<&str> = t.split(':').collect();
            match parts.as_slice() {
                [a, b] => match (a.parse::<u16>(), b.parse::<u16>()) {
                    (Ok(a), Ok(b)) => Ok(Community::Standard(u32::from(a) << 16 | u32::from(b))),
                    _ => Err(bad(t)),
                },
                [a, b, c] => match (a.parse::<u32>(), b.parse::<u32>(), c.parse::<u32>()) {
                    (Ok(a), Ok(b), Ok(c)) => Ok(Community::Large([a, b, c])),
                    _ => Err(bad(t)),
                },
                _ => Err(bad(t)),
            }
        })
        .collect::<Result<Vec<Community>>>()?;
    if out.len() > MAX_COMMUNITIES {
        return Err(Error::invalid(
            "community",
            format!("at most {MAX_COMMUNITIES} communities"),
        ));
    }
    Ok(out)
}

pub fn render_communities(cs: &[Community]) -> String {
    cs.iter()
        .map(|c| match c {
            Community::Standard(v) => match WELL_KNOWN.iter().find(|(_, w)| w == v) {
                Some((name, _)) => name.to_string(),
                None => format!("{}:{}", v >> 16, v & 0xFFFF),
            },
            Community::Large([a, b, c]) => format!("{a}:{b}:{c}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The origin AS of an announcement: the last of its path, or `local_as` when we originate.
pub fn origin_as(as_path: &str, local_as: u32) -> u32 {
    parse_path(as_path)
        .ok()
        .and_then(|p| p.last().copied())
        .unwrap_or(local_as)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn session(v: serde_json::Value) -> Result<SessionFields> {
        serde_json::from_value::<SessionInput>(v).unwrap().create()
    }

    fn field(r: Result<impl std::fmt::Debug>) -> String {
        match r.unwrap_err() {
            Error::Invalid(i) => i.field,
            _ => String::new(),
        }
    }

    #[test]
    fn a_session_needs_name_neighbor_and_remote_as_and_gets_defaults() {
        let f = session(json!({"name": " up1 ", "neighbor": "2001:db8::2", "remote_as": 65002}))
            .unwrap();
        assert_eq!(f.name, "up1");
        assert_eq!(f.neighbor, "2001:db8::2".parse::<IpAddr>().unwrap());
        assert_eq!((f.hold_time, f.local_port, f.remote_port), (90, 179, 179));
        assert_eq!(
            (f.enabled, f.passive, f.max_prefixes),
            (true, false, 250_000)
        );
        assert_eq!(
            field(session(json!({"neighbor": "192.0.2.1", "remote_as": 1}))),
            "name"
        );
        assert_eq!(
            field(session(json!({"name": "a", "remote_as": 1}))),
            "neighbor"
        );
        assert_eq!(
            field(session(json!({"name": "a", "neighbor": "192.0.2.1"}))),
            "remote_as"
        );
    }

    #[test]
    fn session_fields_are_validated() {
        let base = json!({"name": "a", "neighbor": "192.0.2.1", "remote_as": 65002});
        let with = |k: &str, v: serde_json::Value| {
            let mut b = base.clone();
            b[k] = v;
            session(b)
        };
        assert_eq!(field(with("neighbor", json!("192.0.2.300"))), "neighbor");
        assert_eq!(field(with("neighbor", json!("ff02::1"))), "neighbor");
        assert_eq!(field(with("remote_as", json!(0))), "remote_as");
        assert_eq!(field(with("local_as", json!(0))), "local_as");
        assert_eq!(field(with("hold_time", json!(2))), "hold_time");
        assert!(with("hold_time", json!(0)).is_ok());
        assert_eq!(field(with("local_port", json!(0))), "local_port");
        assert_eq!(field(with("password", json!("x".repeat(81)))), "password");
        assert_eq!(
            field(with("local_address", json!("2001:db8::1"))),
            "local_address"
        );
        assert_eq!(field(with("local_address", json!("192.0.2.1"))), "neighbor");
        assert_eq!(
            field(with("next_hop_ipv6", json!("192.0.2.9"))),
            "next_hop_ipv6"
        );
        assert_eq!(with("password", json!("")).unwrap().password, None);
    }

    #[test]
    fn the_password_mask_keeps_the_stored_password() {
        let cur = session(json!({"name": "a", "neighbor": "192.0.2.1", "remote_as": 1,
            "password": "s3cret"}))
        .unwrap();
        let keep: SessionInput = serde_json::from_value(json!({"password": "***"})).unwrap();
        assert_eq!(
            keep.apply(&cur).unwrap().password.as_deref(),
            Some("s3cret")
        );
        let clear: SessionInput = serde_json::from_value(json!({"password": null})).unwrap();
        assert_eq!(clear.apply(&cur).unwrap().password, None);
    }

    fn ann(v: serde_json::Value) -> Result<AnnouncementFields> {
        serde_json::from_value::<AnnouncementInput>(v)
            .unwrap()
            .create()
    }

    #[test]
    fn announcements_parse_paths_origins_and_communities() {
        let f = ann(
            json!({"prefix": "2001:db8:100::/48", "as_path": "AS65010, 65020",
            "community": "65000:100 65000:1:2 NO-EXPORT"}),
        )
        .unwrap();
        assert_eq!(f.as_path, "65010 65020");
        assert_eq!(f.community, "65000:100 65000:1:2 no-export");
        assert_eq!(origin_as(&f.as_path, 65001), 65020);
        let f = ann(json!({"prefix": "192.0.2.0/24", "asn": 65030})).unwrap();
        assert_eq!(
            (f.as_path.as_str(), origin_as(&f.as_path, 1)),
            ("65030", 65030)
        );
        let f = ann(json!({"prefix": "192.0.2.0/24"})).unwrap();
        assert_eq!(origin_as(&f.as_path, 65001), 65001, "we originate");
        assert_eq!(
            field(ann(
                json!({"prefix": "192.0.2.0/24", "as_path": "1 2", "asn": 3})
            )),
            "asn"
        );
        assert!(ann(json!({"prefix": "192.0.2.0/24", "as_path": "1 2", "asn": 2})).is_ok());
    }

    #[test]
    fn announcement_fields_are_validated() {
        assert_eq!(field(ann(json!({}))), "prefix");
        assert_eq!(field(ann(json!({"prefix": "2001:db8::1/48"}))), "prefix");
        assert_eq!(field(ann(json!({"prefix": "nope"}))), "prefix");
        assert_eq!(
            field(ann(
                json!({"prefix": "192.0.2.0/24", "next_hop": "2001:db8::1"})
            )),
            "next_hop"
        );
        assert_eq!(
            field(ann(json!({"prefix": "192.0.2.0/24", "as_path": "1 x"}))),
            "as_path"
        );
        assert_eq!(
            field(ann(json!({"prefix": "192.0.2.0/24", "as_path": "0"}))),
            "as_path"
        );
        for bad in ["65536:1", "1:2:3:4", "a:b", "1:4294967296:1"] {
            assert_eq!(
                field(ann(json!({"prefix": "192.0.2.0/24", "community": bad}))),
                "community",
                "{bad}"
            );
        }
        let many = (0..33)
            .map(|i| format!("1:{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            field(ann(json!({"prefix": "192.0.2.0/24", "community": many}))),
            "community"
        );
    }
}
