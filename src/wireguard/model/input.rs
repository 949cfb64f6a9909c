//! Request bodies for servers, clients and imports, their limits and defaults, and the
//! validation of one field at a time (names, subnets, addresses, DNS, MTU, endpoints,
//! AllowedIPs, routed prefixes, public keys). Checks that need other rows are in `rules`.

use crate::error::Invalid;
use crate::wireguard::conf;
use crate::wireguard::keys::PublicKey;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One field checked: its value, or why it is refused.
type Result<T, E = Invalid> = std::result::Result<T, E>;

pub const DEFAULT_LISTEN_PORT: u16 = 51820;
pub const DEFAULT_MTU: u16 = 1420;
pub const MAX_DNS_SERVERS: usize = 8;
/// Per client, for both `allowed_ips` and `routed_prefixes`.
pub const MAX_PREFIXES: usize = 64;

// ---- request bodies ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewServer {
    pub name: String,
    /// Default: the first `wgN` no other server uses.
    pub interface: Option<String>,
    pub description: Option<String>,
    /// Default: 51820, else the next free port upward.
    pub listen_port: Option<u16>,
    /// The server's address and subnet, `10.0.0.1/24`.
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
    pub dns_servers: Option<Vec<String>>,
    pub mtu: Option<u32>,
    pub endpoint: Option<String>,
    pub persistent_keepalive: Option<u16>,
    pub is_active: Option<bool>,
}

/// PUT and PATCH body: every field optional; `null` clears the nullable ones.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerChanges {
    pub name: Option<String>,
    pub interface: Option<String>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub description: Option<Option<String>>,
    pub listen_port: Option<u16>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub ipv4_address: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub ipv6_address: Option<Option<String>>,
    pub dns_servers: Option<Vec<String>>,
    pub mtu: Option<u32>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub endpoint: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub persistent_keepalive: Option<Option<u16>>,
    pub is_active: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    pub server_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    /// Default: the lowest free host address of the server's subnet.
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
    /// Default: everything (`0.0.0.0/0`, `::/0`).
    pub allowed_ips: Option<Vec<String>>,
    /// Default (empty): the server's.
    pub dns_servers: Option<Vec<String>>,
    pub mtu: Option<u32>,
    pub persistent_keepalive: Option<u16>,
    /// The client's own key; then its private key is never known here.
    pub public_key: Option<String>,
    pub use_preshared_key: Option<bool>,
    pub routed_prefixes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientChanges {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub ipv4_address: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub ipv6_address: Option<Option<String>>,
    pub allowed_ips: Option<Vec<String>>,
    pub dns_servers: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub mtu: Option<Option<u32>>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub persistent_keepalive: Option<Option<u16>>,
    /// `true` generates a preshared key if there is none, `false` removes it.
    pub use_preshared_key: Option<bool>,
    pub routed_prefixes: Option<Vec<String>>,
}

/// An existing wg-quick server config to take over.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportServer {
    pub name: String,
    pub interface: Option<String>,
    /// The wg-quick text (`/etc/wireguard/wg0.conf`).
    pub config: String,
    pub endpoint: Option<String>,
    pub description: Option<String>,
    /// Overrides the config's `ListenPort`.
    pub listen_port: Option<u16>,
}

// ---- field validation ----

fn blank_to_none(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

pub fn validate_name(s: &str) -> Result<String> {
    let s = s.trim();
    let n = s.chars().count();
    if !(1..=64).contains(&n) || s.chars().any(char::is_control) {
        return Err(Invalid::new(
            "name",
            "name must be 1-64 printable characters",
        ));
    }
    Ok(s.to_string())
}

/// Empty or blank means none.
pub fn validate_description(s: Option<String>) -> Result<Option<String>> {
    let Some(s) = blank_to_none(s) else {
        return Ok(None);
    };
    if s.chars().count() > 256 || s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Invalid::new(
            "description",
            "description must be at most 256 printable characters",
        ));
    }
    Ok(Some(s))
}

pub fn validate_interface(s: &str) -> Result<String> {
    if crate::wireguard::device::tun::valid_name(s) {
        Ok(s.to_string())
    } else {
        Err(Invalid::new(
            "interface",
            "interface must be 1-15 letters, digits, '-', '_' or '.'",
        ))
    }
}

pub fn validate_listen_port(p: u16) -> Result<u16> {
    if p == 0 {
        return Err(Invalid::new("listen_port", "listen_port must be 1-65535"));
    }
    Ok(p)
}

/// `addr/len` with the standard library's strict address syntax (no leading zeros).
fn addr_and_len<A: std::str::FromStr>(s: &str) -> Option<(A, u8)> {
    let (a, len) = s.trim().split_once('/')?;
    let len = len
        .parse()
        .ok()
        .filter(|_| len.bytes().all(|b| b.is_ascii_digit()))?;
    Some((a.parse().ok()?, len))
}

/// `10.0.0.1/24`: the server's address and its subnet (/8 to /30); the address must be a
/// host of that subnet.
pub fn validate_server_ipv4(s: &str) -> Result<IpNet> {
    let bad = |why: &str| {
        Invalid::new(
            "ipv4_address",
            format!(
                "ipv4_address {why} (expected the server's address and subnet, e.g. 10.0.0.1/24)"
            ),
        )
    };
    let (a, len) = addr_and_len(s).ok_or_else(|| bad("is malformed"))?;
    let net = ipnet::Ipv4Net::new(a, len).map_err(|_| bad("is malformed"))?;
    if !(8..=30).contains(&net.prefix_len()) {
        return Err(bad("needs a prefix length from 8 to 30"));
    }
    let a = net.addr();
    if a == net.network() || a == net.broadcast() {
        return Err(bad("is the network or broadcast address of its subnet"));
    }
    if a.is_loopback() || a.is_multicast() {
        return Err(bad("is a loopback or multicast address"));
    }
    Ok(IpNet::V4(net))
}

/// `fd00::1/64`: the server's address and its subnet (/16 to /126), not the subnet-router
/// anycast address (all-zero host part).
pub fn validate_server_ipv6(s: &str) -> Result<IpNet> {
    let bad = |why: &str| {
        Invalid::new(
            "ipv6_address",
            format!(
                "ipv6_address {why} (expected the server's address and subnet, e.g. fd00::1/64)"
            ),
        )
    };
    let (a, len) = addr_and_len(s).ok_or_else(|| bad("is malformed"))?;
    let net = ipnet::Ipv6Net::new(a, len).map_err(|_| bad("is malformed"))?;
    if !(16..=126).contains(&net.prefix_len()) {
        return Err(bad("needs a prefix length from 16 to 126"));
    }
    let a = net.addr();
    if a == net.network() {
        return Err(bad(
            "has an all-zero host part (the subnet-router anycast address)",
        ));
    }
    if a.is_loopback() || a.is_multicast() {
        return Err(bad("is a loopback or multicast address"));
    }
    Ok(IpNet::V6(net))
}

pub(super) fn server_ipv4(s: Option<String>) -> Result<Option<IpNet>> {
    blank_to_none(s)
        .map(|s| validate_server_ipv4(&s))
        .transpose()
}

pub(super) fn server_ipv6(s: Option<String>) -> Result<Option<IpNet>> {
    blank_to_none(s)
        .map(|s| validate_server_ipv6(&s))
        .transpose()
}

pub(super) fn require_a_subnet(v4: Option<IpNet>, v6: Option<IpNet>) -> Result<()> {
    if v4.is_none() && v6.is_none() {
        return Err(Invalid::new(
            "ipv4_address",
            "a server needs an ipv4_address, an ipv6_address or both",
        ));
    }
    Ok(())
}

/// IP addresses, at most 8; duplicates dropped.
pub fn validate_dns(list: Vec<String>) -> Result<Vec<IpAddr>> {
    if list.len() > MAX_DNS_SERVERS {
        return Err(Invalid::new(
            "dns_servers",
            format!("at most {MAX_DNS_SERVERS} dns_servers"),
        ));
    }
    let mut out: Vec<IpAddr> = Vec::with_capacity(list.len());
    for s in list {
        let ip: IpAddr = s.trim().parse().map_err(|_| {
            Invalid::new(
                "dns_servers",
                format!("dns_servers: {s:?} is not an IP address"),
            )
        })?;
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    Ok(out)
}

pub fn validate_mtu(m: u32) -> Result<u16> {
    u16::try_from(m)
        .ok()
        .filter(|m| (1280..=9000).contains(m))
        .ok_or_else(|| Invalid::new("mtu", "mtu must be from 1280 to 9000"))
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address → (host without
/// brackets, port).
pub fn split_endpoint(s: &str) -> Option<(String, Option<u16>)> {
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let v6: Ipv6Addr = h.parse().ok()?;
        let p = match after {
            "" => None,
            a => Some(port(a.strip_prefix(':')?)?),
        };
        return Some((v6.to_string(), p));
    }
    if s.matches(':').count() > 1 {
        return s.parse::<Ipv6Addr>().ok().map(|v6| (v6.to_string(), None));
    }
    let (host, p) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(port(p)?)),
        None => (s, None),
    };
    valid_host(host).then(|| (host.to_ascii_lowercase(), p))
}

/// An IPv4 address or a DNS name (whose last label is not all digits, so `999.1.1.1` is
/// not taken for a name).
fn valid_host(h: &str) -> bool {
    if h.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let name = h.strip_suffix('.').unwrap_or(h);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(label_ok)
        && !name
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
}

/// Stored normalised: `host`, `host:port`, bare IPv6 or `[v6]:port`. Blank means none.
pub fn validate_endpoint(s: Option<String>) -> Result<Option<String>> {
    let Some(s) = blank_to_none(s) else {
        return Ok(None);
    };
    let parts = (s.len() <= 253).then(|| split_endpoint(&s)).flatten();
    let Some((host, port)) = parts else {
        return Err(Invalid::new(
            "endpoint",
            "endpoint must be a host name, IPv4 or IPv6 address, optionally with :port",
        ));
    };
    Ok(Some(match port {
        Some(p) => conf::endpoint(&host, p),
        None => host,
    }))
}

pub(super) fn family(field: &str) -> &'static str {
    if field.starts_with("ipv6") {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// A client address as given: `10.0.0.2`, `10.0.0.2/32`, `fd00::2`, `fd00::2/128`; the
/// family is the field's.
pub fn parse_client_address(field: &str, s: &str) -> Result<IpAddr> {
    let v6 = family(field) == "IPv6";
    let (addr, len) = match s.trim().split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s.trim(), None),
    };
    let host_len = if v6 { "128" } else { "32" };
    match addr.parse::<IpAddr>() {
        Ok(a) if a.is_ipv6() == v6 && len.is_none_or(|l| l == host_len) => Ok(a),
        _ => Err(Invalid::new(
            field,
            if v6 {
                "ipv6_address must be an IPv6 address like fd00::2 or fd00::2/128"
            } else {
                "ipv4_address must be an IPv4 address like 10.0.0.2 or 10.0.0.2/32"
            },
        )),
    }
}

/// `addr` must be a host of the server's subnet of its family other than the server's own
/// address (`server_net` is the server's `ipv4_address`/`ipv6_address`).
pub fn check_client_address(
    field: &str,
    addr: IpAddr,
    server_net: Option<IpNet>,
) -> Result<IpAddr> {
    let fam = family(field);
    let Some(net) = server_net else {
        return Err(Invalid::new(
            field,
            format!("the server has no {fam} subnet"),
        ));
    };
    let subnet = net.trunc();
    if !subnet.contains(&addr) {
        return Err(Invalid::new(
            field,
            format!("{addr} is outside the server's subnet {subnet}"),
        ));
    }
    if addr == net.addr() {
        return Err(Invalid::new(
            field,
            format!("{addr} is the server's own address"),
        ));
    }
    if addr == subnet.network() || (addr.is_ipv4() && addr == subnet.broadcast()) {
        return Err(Invalid::new(
            field,
            format!("{addr} is the network or broadcast address of {subnet}"),
        ));
    }
    Ok(addr)
}

pub(super) fn client_address(
    field: &str,
    s: Option<String>,
    net: Option<IpNet>,
) -> Result<Option<IpAddr>> {
    blank_to_none(s)
        .map(|s| check_client_address(field, parse_client_address(field, &s)?, net))
        .transpose()
}

fn too_many(field: &str, list: &[String]) -> Result<()> {
    if list.len() > MAX_PREFIXES {
        return Err(Invalid::new(
            field,
            format!("at most {MAX_PREFIXES} {field}"),
        ));
    }
    Ok(())
}

/// CIDRs (a bare address is a host route) the client sends into the tunnel; host bits are
/// cleared as wg does. At least one, at most 64; duplicates dropped.
pub fn validate_allowed_ips(list: Vec<String>) -> Result<Vec<IpNet>> {
    too_many("allowed_ips", &list)?;
    let mut out: Vec<IpNet> = Vec::with_capacity(list.len());
    for s in &list {
        let t = s.trim();
        let net = t
            .parse::<IpNet>()
            .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| Invalid::new("allowed_ips", format!("allowed_ips: {s:?} is not a CIDR")))?
            .trunc();
        if !out.contains(&net) {
            out.push(net);
        }
    }
    if out.is_empty() {
        return Err(Invalid::new(
            "allowed_ips",
            "allowed_ips must list at least one CIDR",
        ));
    }
    Ok(out)
}

/// `0.0.0.0/0` and `::/0`: the whole Internet through the tunnel.
pub fn default_allowed_ips() -> Vec<IpNet> {
    vec![
        IpNet::V4(ipnet::Ipv4Net::default()),
        IpNet::V6(ipnet::Ipv6Net::default()),
    ]
}

/// Canonical CIDRs (host bits zero) routed to the client; at most 64, none overlapping
/// another.
pub fn validate_routed_prefixes(list: Vec<String>) -> Result<Vec<IpNet>> {
    too_many("routed_prefixes", &list)?;
    let mut out: Vec<IpNet> = Vec::with_capacity(list.len());
    for s in &list {
        let net: IpNet = s.trim().parse().map_err(|_| {
            Invalid::new(
                "routed_prefixes",
                format!("routed_prefixes: {s:?} is not a CIDR prefix like 2001:db8:1::/48"),
            )
        })?;
        if net != net.trunc() {
            return Err(Invalid::new(
                "routed_prefixes",
                format!(
                    "routed_prefixes: {net} has host bits set (did you mean {}?)",
                    net.trunc()
                ),
            ));
        }
        if let Some(other) = out.iter().find(|o| overlaps(o, &net)) {
            return Err(Invalid::new(
                "routed_prefixes",
                format!("routed_prefixes: {net} overlaps {other}"),
            ));
        }
        out.push(net);
    }
    Ok(out)
}

/// A base64 WireGuard public key, returned in canonical form.
pub fn validate_public_key(s: &str) -> Result<String> {
    PublicKey::from_base64(s)
        .map(|k| k.to_base64())
        .map_err(|e| Invalid::new("public_key", format!("public_key: {e}")))
}

/// Whether two prefixes share an address (always false across families).
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    let (a, b) = (a.trunc(), b.trunc());
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wireguard::keys::PrivateKey;
    use crate::wireguard::model::fixtures::*;
    use crate::wireguard::model::fixtures::{kind_of, Kind};

    #[test]
    fn names_descriptions_interfaces_ports() {
        assert_eq!(validate_name("  Home VPN ").expect("ok"), "Home VPN");
        assert!(validate_name(&"é".repeat(64)).is_ok());
        for bad in ["", "   ", "a\u{1}b", &"x".repeat(65)] {
            assert_eq!(field(validate_name(bad)), "name", "{bad:?}");
        }
        assert_eq!(validate_description(Some("  ".into())).expect("ok"), None);
        assert_eq!(
            validate_description(Some("two\nlines".into())).expect("ok"),
            Some("two\nlines".into())
        );
        assert_eq!(
            field(validate_description(Some("a\u{7}".into()))),
            "description"
        );
        assert_eq!(
            field(validate_description(Some("x".repeat(257)))),
            "description"
        );
        assert_eq!(validate_interface("wg-home.1").expect("ok"), "wg-home.1");
        for bad in ["", "wg 0", "abcdefghijklmnop", "..", "wg/0"] {
            assert_eq!(field(validate_interface(bad)), "interface", "{bad:?}");
        }
        assert_eq!(field(validate_listen_port(0)), "listen_port");
        assert_eq!(validate_listen_port(65535).expect("ok"), 65535);
    }

    #[test]
    fn server_ipv4_subnets() {
        assert_eq!(
            validate_server_ipv4("10.0.0.1/24").expect("ok"),
            net("10.0.0.1/24")
        );
        assert!(validate_server_ipv4("10.255.255.254/8").is_ok());
        assert!(validate_server_ipv4("192.168.9.2/30").is_ok());
        for bad in [
            "10.0.0.0/24",
            "10.0.0.255/24",
            "10.0.0.1/31",
            "10.0.0.1/32",
            "10.0.0.1/7",
            "10.0.0.1",
            "10.0.0.01/24",
            "fd00::1/64",
            "127.0.0.1/8",
            "224.0.0.1/24",
            "10.0.0.1/24x",
        ] {
            assert_eq!(field(validate_server_ipv4(bad)), "ipv4_address", "{bad}");
        }
    }

    #[test]
    fn server_ipv6_subnets() {
        assert_eq!(
            validate_server_ipv6("fd00::1/64").expect("ok"),
            net("fd00::1/64")
        );
        assert!(validate_server_ipv6("2001:db8::1/126").is_ok());
        assert!(validate_server_ipv6("2001:db8::1/16").is_ok());
        for bad in [
            "fd00::/64",
            "fd00::1/127",
            "fd00::1/128",
            "fd00::1/15",
            "fd00::1",
            "10.0.0.1/24",
            "ff02::1/64",
        ] {
            assert_eq!(field(validate_server_ipv6(bad)), "ipv6_address", "{bad}");
        }
    }

    #[test]
    fn dns_mtu_keepalive() {
        assert_eq!(
            validate_dns(strings(&[" 1.1.1.1", "2606:4700::1111", "1.1.1.1"])).expect("ok"),
            vec![ip("1.1.1.1"), ip("2606:4700::1111")]
        );
        assert_eq!(field(validate_dns(strings(&["dns.google"]))), "dns_servers");
        assert_eq!(
            field(validate_dns(
                (1..=9).map(|i| format!("10.0.0.{i}")).collect()
            )),
            "dns_servers"
        );
        assert_eq!(validate_mtu(1280).expect("ok"), 1280);
        assert_eq!(validate_mtu(9000).expect("ok"), 9000);
        for bad in [0, 1279, 9001, 70_000] {
            assert_eq!(field(validate_mtu(bad)), "mtu", "{bad}");
        }
    }

    #[test]
    fn endpoints_are_validated_and_normalised() {
        let ok = |s: &str| validate_endpoint(Some(s.into())).expect(s).expect(s);
        assert_eq!(ok("vpn.example.com"), "vpn.example.com");
        assert_eq!(ok(" VPN.Example.com:51820 "), "vpn.example.com:51820");
        assert_eq!(ok("192.0.2.1"), "192.0.2.1");
        assert_eq!(ok("192.0.2.1:1"), "192.0.2.1:1");
        assert_eq!(ok("2001:DB8::1"), "2001:db8::1");
        assert_eq!(ok("[2001:db8::1]"), "2001:db8::1");
        assert_eq!(ok("[2001:db8::1]:51820"), "[2001:db8::1]:51820");
        assert_eq!(ok("router.lan."), "router.lan.");
        assert_eq!(validate_endpoint(Some("  ".into())).expect("ok"), None);
        assert_eq!(validate_endpoint(None).expect("ok"), None);
        let long = format!("{}.com", "a.".repeat(125));
        for bad in [
            "host:0",
            "host:65536",
            "host:",
            "999.1.1.1",
            "10.0.0",
            "-a.example.com",
            "a..b",
            "a b",
            "a_b.com",
            "[::1",
            "[::1]x",
            "[nope]:1",
            "1:2:3",
            "http://x",
            long.as_str(),
        ] {
            assert_eq!(
                field(validate_endpoint(Some(bad.into()))),
                "endpoint",
                "{bad}"
            );
        }
    }

    #[test]
    fn client_address_forms() {
        for (f, s, want) in [
            ("ipv4_address", "10.0.0.2", "10.0.0.2"),
            ("ipv4_address", " 10.0.0.2/32", "10.0.0.2"),
            ("ipv6_address", "fd00::2", "fd00::2"),
            ("ipv6_address", "FD00::2/128", "fd00::2"),
        ] {
            assert_eq!(parse_client_address(f, s).expect(s), ip(want));
        }
        for (f, s) in [
            ("ipv4_address", "10.0.0.2/24"),
            ("ipv4_address", "10.0.0.2/33"),
            ("ipv4_address", "fd00::2"),
            ("ipv6_address", "10.0.0.2"),
            ("ipv6_address", "fd00::2/64"),
            ("ipv6_address", "nope"),
        ] {
            assert_eq!(field(parse_client_address(f, s)), f, "{s}");
        }
    }

    #[test]
    fn client_address_must_be_a_free_host_of_the_subnet() {
        let v4 = Some(net("10.0.0.1/24"));
        let v6 = Some(net("fd00::1/64"));
        let check = |f, a: &str, n| check_client_address(f, ip(a), n);
        assert!(check("ipv4_address", "10.0.0.254", v4).is_ok());
        assert!(check("ipv6_address", "fd00::ffff:ffff:ffff:ffff", v6).is_ok());
        let e = check("ipv4_address", "10.0.1.2", v4).unwrap_err();
        assert_eq!(kind_of(&e.clone().into()), Kind::Invalid);
        assert_eq!(
            e.message,
            "10.0.1.2 is outside the server's subnet 10.0.0.0/24"
        );
        assert!(msg(check("ipv6_address", "fd01::2", v6)).contains("outside"));
        assert!(msg(check("ipv4_address", "10.0.0.1", v4)).contains("own address"));
        assert!(msg(check("ipv4_address", "10.0.0.0", v4)).contains("network or broadcast"));
        assert!(msg(check("ipv4_address", "10.0.0.255", v4)).contains("broadcast"));
        assert!(msg(check("ipv6_address", "fd00::", v6)).contains("network"));
        assert!(msg(check("ipv6_address", "fd00::1", v6)).contains("own address"));
        let e = check("ipv6_address", "fd00::2", None).unwrap_err();
        assert_eq!(
            (kind_of(&e.clone().into()), e.message.as_str()),
            (Kind::Invalid, "the server has no IPv6 subnet")
        );
    }

    #[test]
    fn allowed_ips() {
        assert_eq!(default_allowed_ips(), vec![net("0.0.0.0/0"), net("::/0")]);
        assert_eq!(
            validate_allowed_ips(strings(&[
                "10.0.0.5/24",
                "192.0.2.7",
                "10.0.0.0/24",
                "::/0"
            ]))
            .expect("ok"),
            vec![net("10.0.0.0/24"), net("192.0.2.7/32"), net("::/0")]
        );
        assert_eq!(field(validate_allowed_ips(vec![])), "allowed_ips");
        assert_eq!(field(validate_allowed_ips(strings(&["x"]))), "allowed_ips");
        let many: Vec<String> = (0..65).map(|i| format!("10.{i}.0.0/16")).collect();
        assert_eq!(field(validate_allowed_ips(many)), "allowed_ips");
    }

    #[test]
    fn routed_prefixes_are_canonical_and_disjoint() {
        assert_eq!(
            validate_routed_prefixes(strings(&["2001:db8:1::/48", "192.0.2.0/24"])).expect("ok"),
            vec![net("2001:db8:1::/48"), net("192.0.2.0/24")]
        );
        assert!(validate_routed_prefixes(vec![]).expect("ok").is_empty());
        let e = validate_routed_prefixes(strings(&["2001:db8:1::1/48"])).unwrap_err();
        assert_eq!(e.field, "routed_prefixes");
        assert!(e.message.contains("2001:db8:1::/48"), "{}", e.message);
        for bad in [
            vec!["2001:db8::1"],
            vec!["nope"],
            vec!["2001:db8::/32", "2001:db8:5::/48"],
            vec!["192.0.2.0/24", "192.0.2.0/24"],
        ] {
            assert_eq!(
                field(validate_routed_prefixes(strings(&bad))),
                "routed_prefixes",
                "{bad:?}"
            );
        }
        let many: Vec<String> = (0..65).map(|i| format!("2001:db8:{i:x}::/48")).collect();
        assert_eq!(field(validate_routed_prefixes(many)), "routed_prefixes");
    }

    #[test]
    fn public_keys() {
        let k = PrivateKey::generate().public_key().to_base64();
        assert_eq!(validate_public_key(&format!(" {k}\n")).expect("ok"), k);
        for bad in ["", "abc", "hFIOnmk0BOeKmP7bR7DYq3Lq/MVWsAgVdVP8FpYzDG=="] {
            assert_eq!(field(validate_public_key(bad)), "public_key", "{bad}");
        }
    }

    #[test]
    fn overlap() {
        assert!(overlaps(&net("10.0.0.0/8"), &net("10.1.0.0/16")));
        assert!(overlaps(&net("10.1.0.1/16"), &net("10.0.0.0/8")));
        assert!(!overlaps(&net("10.0.0.0/24"), &net("10.0.1.0/24")));
        assert!(!overlaps(&net("0.0.0.0/0"), &net("::/0")));
        assert!(overlaps(&net("::/0"), &net("fd00::/64")));
    }
}
