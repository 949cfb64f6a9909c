//! The pure half of WireGuard servers and clients: request bodies and their validation,
//! the conflict rules checked against rows already loaded (names, ports, overlapping
//! subnets and routed prefixes), address allocation, the JSON views, and rendering a
//! client's wg-quick config. No I/O; `super` runs these inside database closures.

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::store::wireguard::{ClientFields, ClientRow, Routed, ServerFields, ServerRow};
use crate::wg::conf::{self, Interface, Peer, WgQuick};
use crate::wg::keys::{PresharedKey, PrivateKey, PublicKey};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
    #[serde(default, deserialize_with = "crate::api::request::nullable")]
    pub description: Option<Option<String>>,
    pub listen_port: Option<u16>,
    #[serde(default, deserialize_with = "crate::api::request::nullable")]
    pub ipv4_address: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::api::request::nullable")]
    pub ipv6_address: Option<Option<String>>,
    pub dns_servers: Option<Vec<String>>,
    pub mtu: Option<u32>,
    #[serde(default, deserialize_with = "crate::api::request::nullable")]
    pub endpoint: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::api::request::nullable")]
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
    #[serde(default, deserialize_with = "crate::api::request::nullable")]
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "crate::api::request::nullable")]
    pub ipv4_address: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::api::request::nullable")]
    pub ipv6_address: Option<Option<String>>,
    pub allowed_ips: Option<Vec<String>>,
    pub dns_servers: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::api::request::nullable")]
    pub mtu: Option<Option<u32>>,
    #[serde(default, deserialize_with = "crate::api::request::nullable")]
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

pub fn validate_name(s: &str) -> ApiResult<String> {
    let s = s.trim();
    let n = s.chars().count();
    if !(1..=64).contains(&n) || s.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "name",
            "name must be 1-64 printable characters",
        ));
    }
    Ok(s.to_string())
}

/// Empty or blank means none.
pub fn validate_description(s: Option<String>) -> ApiResult<Option<String>> {
    let Some(s) = blank_to_none(s) else {
        return Ok(None);
    };
    if s.chars().count() > 256 || s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ApiError::validation(
            "description",
            "description must be at most 256 printable characters",
        ));
    }
    Ok(Some(s))
}

pub fn validate_interface(s: &str) -> ApiResult<String> {
    if crate::wg::tun::valid_name(s) {
        Ok(s.to_string())
    } else {
        Err(ApiError::validation(
            "interface",
            "interface must be 1-15 letters, digits, '-', '_' or '.'",
        ))
    }
}

pub fn validate_listen_port(p: u16) -> ApiResult<u16> {
    if p == 0 {
        return Err(ApiError::validation(
            "listen_port",
            "listen_port must be 1-65535",
        ));
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
pub fn validate_server_ipv4(s: &str) -> ApiResult<IpNet> {
    let bad = |why: &str| {
        ApiError::validation(
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
pub fn validate_server_ipv6(s: &str) -> ApiResult<IpNet> {
    let bad = |why: &str| {
        ApiError::validation(
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

fn server_ipv4(s: Option<String>) -> ApiResult<Option<IpNet>> {
    blank_to_none(s)
        .map(|s| validate_server_ipv4(&s))
        .transpose()
}

fn server_ipv6(s: Option<String>) -> ApiResult<Option<IpNet>> {
    blank_to_none(s)
        .map(|s| validate_server_ipv6(&s))
        .transpose()
}

fn require_a_subnet(v4: Option<IpNet>, v6: Option<IpNet>) -> ApiResult<()> {
    if v4.is_none() && v6.is_none() {
        return Err(ApiError::validation(
            "ipv4_address",
            "a server needs an ipv4_address, an ipv6_address or both",
        ));
    }
    Ok(())
}

/// IP addresses, at most 8; duplicates dropped.
pub fn validate_dns(list: Vec<String>) -> ApiResult<Vec<IpAddr>> {
    if list.len() > MAX_DNS_SERVERS {
        return Err(ApiError::validation(
            "dns_servers",
            format!("at most {MAX_DNS_SERVERS} dns_servers"),
        ));
    }
    let mut out: Vec<IpAddr> = Vec::with_capacity(list.len());
    for s in list {
        let ip: IpAddr = s.trim().parse().map_err(|_| {
            ApiError::validation(
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

pub fn validate_mtu(m: u32) -> ApiResult<u16> {
    u16::try_from(m)
        .ok()
        .filter(|m| (1280..=9000).contains(m))
        .ok_or_else(|| ApiError::validation("mtu", "mtu must be from 1280 to 9000"))
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
pub fn validate_endpoint(s: Option<String>) -> ApiResult<Option<String>> {
    let Some(s) = blank_to_none(s) else {
        return Ok(None);
    };
    let parts = (s.len() <= 253).then(|| split_endpoint(&s)).flatten();
    let Some((host, port)) = parts else {
        return Err(ApiError::validation(
            "endpoint",
            "endpoint must be a host name, IPv4 or IPv6 address, optionally with :port",
        ));
    };
    Ok(Some(match port {
        Some(p) => conf::endpoint(&host, p),
        None => host,
    }))
}

fn family(field: &str) -> &'static str {
    if field.starts_with("ipv6") {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// A client address as given: `10.0.0.2`, `10.0.0.2/32`, `fd00::2`, `fd00::2/128`; the
/// family is the field's.
pub fn parse_client_address(field: &str, s: &str) -> ApiResult<IpAddr> {
    let v6 = family(field) == "IPv6";
    let (addr, len) = match s.trim().split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s.trim(), None),
    };
    let host_len = if v6 { "128" } else { "32" };
    match addr.parse::<IpAddr>() {
        Ok(a) if a.is_ipv6() == v6 && len.map_or(true, |l| l == host_len) => Ok(a),
        _ => Err(ApiError::validation(
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
) -> ApiResult<IpAddr> {
    let fam = family(field);
    let Some(net) = server_net else {
        return Err(ApiError::validation(
            field,
            format!("the server has no {fam} subnet"),
        ));
    };
    let subnet = net.trunc();
    if !subnet.contains(&addr) {
        return Err(ApiError::validation(
            field,
            format!("{addr} is outside the server's subnet {subnet}"),
        ));
    }
    if addr == net.addr() {
        return Err(ApiError::validation(
            field,
            format!("{addr} is the server's own address"),
        ));
    }
    if addr == subnet.network() || (addr.is_ipv4() && addr == subnet.broadcast()) {
        return Err(ApiError::validation(
            field,
            format!("{addr} is the network or broadcast address of {subnet}"),
        ));
    }
    Ok(addr)
}

fn client_address(field: &str, s: Option<String>, net: Option<IpNet>) -> ApiResult<Option<IpAddr>> {
    blank_to_none(s)
        .map(|s| check_client_address(field, parse_client_address(field, &s)?, net))
        .transpose()
}

fn too_many(field: &str, list: &[String]) -> ApiResult<()> {
    if list.len() > MAX_PREFIXES {
        return Err(ApiError::validation(
            field,
            format!("at most {MAX_PREFIXES} {field}"),
        ));
    }
    Ok(())
}

/// CIDRs (a bare address is a host route) the client sends into the tunnel; host bits are
/// cleared as wg does. At least one, at most 64; duplicates dropped.
pub fn validate_allowed_ips(list: Vec<String>) -> ApiResult<Vec<IpNet>> {
    too_many("allowed_ips", &list)?;
    let mut out: Vec<IpNet> = Vec::with_capacity(list.len());
    for s in &list {
        let t = s.trim();
        let net = t
            .parse::<IpNet>()
            .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| {
                ApiError::validation("allowed_ips", format!("allowed_ips: {s:?} is not a CIDR"))
            })?
            .trunc();
        if !out.contains(&net) {
            out.push(net);
        }
    }
    if out.is_empty() {
        return Err(ApiError::validation(
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
pub fn validate_routed_prefixes(list: Vec<String>) -> ApiResult<Vec<IpNet>> {
    too_many("routed_prefixes", &list)?;
    let mut out: Vec<IpNet> = Vec::with_capacity(list.len());
    for s in &list {
        let net: IpNet = s.trim().parse().map_err(|_| {
            ApiError::validation(
                "routed_prefixes",
                format!("routed_prefixes: {s:?} is not a CIDR prefix like 2001:db8:1::/48"),
            )
        })?;
        if net != net.trunc() {
            return Err(ApiError::validation(
                "routed_prefixes",
                format!(
                    "routed_prefixes: {net} has host bits set (did you mean {}?)",
                    net.trunc()
                ),
            ));
        }
        if let Some(other) = out.iter().find(|o| overlaps(o, &net)) {
            return Err(ApiError::validation(
                "routed_prefixes",
                format!("routed_prefixes: {net} overlaps {other}"),
            ));
        }
        out.push(net);
    }
    Ok(out)
}

/// A base64 WireGuard public key, returned in canonical form.
pub fn validate_public_key(s: &str) -> ApiResult<String> {
    PublicKey::from_base64(s)
        .map(|k| k.to_base64())
        .map_err(|e| ApiError::validation("public_key", format!("public_key: {e}")))
}

// ---- allocation ----

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// The lowest host address of `net`'s subnet that is not the network address, not the IPv4
/// broadcast, not `net`'s own address (the server's) and not in `used`. Sorts the used
/// addresses and walks them, so a /64 costs no more than a /30.
pub fn next_free_host(net: IpNet, used: &[IpAddr]) -> Option<IpAddr> {
    let subnet = net.trunc();
    let first = to_u128(subnet.network()).checked_add(1)?;
    let last = match net {
        IpNet::V4(_) => to_u128(subnet.broadcast()).checked_sub(1)?,
        IpNet::V6(_) => to_u128(subnet.broadcast()),
    };
    let mut taken: Vec<u128> = used
        .iter()
        .chain([net.addr()].iter())
        .filter(|a| subnet.contains(*a))
        .map(|a| to_u128(*a))
        .collect();
    taken.sort_unstable();
    let mut candidate = first;
    for t in taken {
        if t > candidate {
            break;
        }
        if t == candidate {
            candidate = candidate.checked_add(1)?;
        }
    }
    if candidate > last {
        return None;
    }
    Some(match net {
        IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(u32::try_from(candidate).ok()?)),
        IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(candidate)),
    })
}

/// The first `wgN` not in `taken`.
pub fn default_interface(taken: &[&str]) -> String {
    (0..)
        .map(|n| format!("wg{n}"))
        .find(|name| !taken.contains(&name.as_str()))
        .unwrap_or_else(|| "wg0".into())
}

/// 51820, else the next port upward not in `taken`.
pub fn default_listen_port(taken: &[u16]) -> Option<u16> {
    let mut taken = taken.to_vec();
    taken.sort_unstable();
    let mut candidate = DEFAULT_LISTEN_PORT;
    for t in taken.into_iter().filter(|t| *t >= DEFAULT_LISTEN_PORT) {
        if t > candidate {
            break;
        }
        if t == candidate {
            candidate = candidate.checked_add(1)?;
        }
    }
    Some(candidate)
}

// ---- servers: validation and conflicts ----

/// A change validated by `f`, or the current value when absent.
fn merge<T, U: Clone>(
    change: Option<T>,
    current: &U,
    f: impl FnOnce(T) -> ApiResult<U>,
) -> ApiResult<U> {
    change.map_or_else(|| Ok(current.clone()), f)
}

impl NewServer {
    /// Validated fields; an unset interface or port is the first one free among `others`.
    pub fn validate(self, others: &[ServerRow]) -> ApiResult<ServerFields> {
        let name = validate_name(&self.name)?;
        let interface = match self.interface {
            Some(i) => validate_interface(&i)?,
            None => default_interface(
                &others
                    .iter()
                    .map(|s| s.interface.as_str())
                    .collect::<Vec<_>>(),
            ),
        };
        let listen_port = match self.listen_port {
            Some(p) => validate_listen_port(p)?,
            None => default_listen_port(&others.iter().map(|s| s.listen_port).collect::<Vec<_>>())
                .ok_or_else(|| ApiError::conflict("listen_port", "no free listen_port left"))?,
        };
        let ipv4_address = server_ipv4(self.ipv4_address)?;
        let ipv6_address = server_ipv6(self.ipv6_address)?;
        require_a_subnet(ipv4_address, ipv6_address)?;
        Ok(ServerFields {
            name,
            interface,
            description: validate_description(self.description)?,
            listen_port,
            ipv4_address,
            ipv6_address,
            dns_servers: validate_dns(self.dns_servers.unwrap_or_default())?,
            mtu: self
                .mtu
                .map(validate_mtu)
                .transpose()?
                .unwrap_or(DEFAULT_MTU),
            endpoint: validate_endpoint(self.endpoint)?,
            persistent_keepalive: self.persistent_keepalive,
            is_active: self.is_active.unwrap_or(false),
        })
    }
}

impl ServerChanges {
    /// `current` with these changes applied, validated.
    pub fn apply(self, current: &ServerRow) -> ApiResult<ServerFields> {
        let ipv4_address = match self.ipv4_address {
            Some(v) => server_ipv4(v)?,
            None => current.ipv4_address,
        };
        let ipv6_address = match self.ipv6_address {
            Some(v) => server_ipv6(v)?,
            None => current.ipv6_address,
        };
        require_a_subnet(ipv4_address, ipv6_address)?;
        Ok(ServerFields {
            name: merge(self.name, &current.name, |n| validate_name(&n))?,
            interface: merge(self.interface, &current.interface, |i| {
                validate_interface(&i)
            })?,
            description: merge(self.description, &current.description, validate_description)?,
            listen_port: merge(self.listen_port, &current.listen_port, validate_listen_port)?,
            ipv4_address,
            ipv6_address,
            dns_servers: merge(self.dns_servers, &current.dns_servers, validate_dns)?,
            mtu: merge(self.mtu, &current.mtu, validate_mtu)?,
            endpoint: merge(self.endpoint, &current.endpoint, validate_endpoint)?,
            persistent_keepalive: self
                .persistent_keepalive
                .unwrap_or(current.persistent_keepalive),
            is_active: self.is_active.unwrap_or(current.is_active),
        })
    }
}

/// Whether two prefixes share an address (always false across families).
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    let (a, b) = (a.trunc(), b.trunc());
    a.contains(&b.network()) || b.contains(&a.network())
}

fn subnet_field(net: &IpNet) -> &'static str {
    if matches!(net, IpNet::V4(_)) {
        "ipv4_address"
    } else {
        "ipv6_address"
    }
}

/// Name, interface and port are unique among servers; a server's subnets overlap no other
/// server's and no client's routed prefix. `others` excludes the server itself.
pub fn check_server_conflicts(
    f: &ServerFields,
    others: &[ServerRow],
    routed: &[Routed],
) -> ApiResult<()> {
    for o in others {
        if o.name.eq_ignore_ascii_case(&f.name) {
            return Err(ApiError::conflict(
                "name",
                format!("a server named {:?} already exists", o.name),
            ));
        }
        if o.interface == f.interface {
            return Err(ApiError::conflict(
                "interface",
                format!("interface {} is used by server {:?}", f.interface, o.name),
            ));
        }
        if o.listen_port == f.listen_port {
            return Err(ApiError::conflict(
                "listen_port",
                format!("port {} is used by server {:?}", f.listen_port, o.name),
            ));
        }
    }
    for net in [f.ipv4_address, f.ipv6_address].iter().flatten() {
        let mine = net.trunc();
        let server = others.iter().find_map(|o| {
            [o.ipv4_address, o.ipv6_address]
                .into_iter()
                .flatten()
                .find(|n| overlaps(n, &mine))
                .map(|n| (o, n.trunc()))
        });
        if let Some((o, theirs)) = server {
            return Err(ApiError::conflict(
                subnet_field(net),
                format!("subnet {mine} overlaps {theirs} of server {:?}", o.name),
            ));
        }
        if let Some((r, p)) = routed_overlap(&mine, routed, None) {
            return Err(ApiError::conflict(
                subnet_field(net),
                format!(
                    "subnet {mine} overlaps {p} routed to client {:?}",
                    r.client_name
                ),
            ));
        }
    }
    Ok(())
}

fn routed_overlap<'a>(
    net: &IpNet,
    routed: &'a [Routed],
    except_client: Option<i64>,
) -> Option<(&'a Routed, IpNet)> {
    routed
        .iter()
        .filter(|r| Some(r.client_id) != except_client)
        .find_map(|r| {
            r.prefixes
                .iter()
                .find(|p| overlaps(p, net))
                .map(|p| (r, *p))
        })
}

/// After a subnet change every client of the server must still have a valid address of
/// each family it uses.
pub fn check_clients_fit(f: &ServerFields, clients: &[ClientRow]) -> ApiResult<()> {
    let fits = |field: &str, addr: Option<IpAddr>, net: Option<IpNet>| {
        addr.map_or(true, |a| check_client_address(field, a, net).is_ok())
    };
    let misfits = |field: &str, net: Option<IpNet>| {
        clients
            .iter()
            .filter(|c| {
                let a = if field == "ipv4_address" {
                    c.ipv4_address
                } else {
                    c.ipv6_address
                };
                !fits(field, a, net)
            })
            .count()
    };
    for (field, net) in [
        ("ipv4_address", f.ipv4_address),
        ("ipv6_address", f.ipv6_address),
    ] {
        let n = misfits(field, net);
        if n > 0 {
            let fam = family(field);
            return Err(ApiError::conflict(
                field,
                format!(
                    "{n} client(s) have {fam} addresses that would not be valid hosts of the \
                     new subnet; change or delete them first"
                ),
            ));
        }
    }
    Ok(())
}

// ---- clients: validation, placement and conflicts ----

impl NewClient {
    /// Validated fields for a client of `server`. Addresses left `None` are allocated by
    /// [`place_client`]; the preshared key is set by the caller.
    pub fn validate(self, server: &ServerRow) -> ApiResult<ClientFields> {
        Ok(ClientFields {
            name: validate_name(&self.name)?,
            description: validate_description(self.description)?,
            enabled: self.enabled.unwrap_or(true),
            preshared_key: None,
            ipv4_address: client_address("ipv4_address", self.ipv4_address, server.ipv4_address)?,
            ipv6_address: client_address("ipv6_address", self.ipv6_address, server.ipv6_address)?,
            allowed_ips: self
                .allowed_ips
                .map_or_else(|| Ok(default_allowed_ips()), validate_allowed_ips)?,
            dns_servers: validate_dns(self.dns_servers.unwrap_or_default())?,
            mtu: self.mtu.map(validate_mtu).transpose()?,
            persistent_keepalive: self.persistent_keepalive,
            routed_prefixes: validate_routed_prefixes(self.routed_prefixes.unwrap_or_default())?,
        })
    }
}

impl ClientChanges {
    /// `current` (a client of `server`) with these changes applied, validated.
    /// `new_psk` is used when a preshared key is asked for and there is none yet.
    pub fn apply(
        self,
        current: &ClientRow,
        server: &ServerRow,
        new_psk: String,
    ) -> ApiResult<ClientFields> {
        Ok(ClientFields {
            name: merge(self.name, &current.name, |n| validate_name(&n))?,
            description: merge(self.description, &current.description, validate_description)?,
            enabled: self.enabled.unwrap_or(current.enabled),
            preshared_key: match self.use_preshared_key {
                Some(true) => current.preshared_key.clone().or(Some(new_psk)),
                Some(false) => None,
                None => current.preshared_key.clone(),
            },
            ipv4_address: merge(self.ipv4_address, &current.ipv4_address, |a| {
                client_address("ipv4_address", a, server.ipv4_address)
            })?,
            ipv6_address: merge(self.ipv6_address, &current.ipv6_address, |a| {
                client_address("ipv6_address", a, server.ipv6_address)
            })?,
            allowed_ips: merge(self.allowed_ips, &current.allowed_ips, validate_allowed_ips)?,
            dns_servers: merge(self.dns_servers, &current.dns_servers, validate_dns)?,
            mtu: merge(self.mtu, &current.mtu, |m| m.map(validate_mtu).transpose())?,
            persistent_keepalive: self
                .persistent_keepalive
                .unwrap_or(current.persistent_keepalive),
            routed_prefixes: merge(
                self.routed_prefixes,
                &current.routed_prefixes,
                validate_routed_prefixes,
            )?,
        })
    }
}

/// Where a client's rows stand: its server, the server's other clients, every server and
/// every client's routed prefixes. Loaded in the same database closure that writes.
pub struct Neighbourhood<'a> {
    pub server: &'a ServerRow,
    /// The server's clients other than this one.
    pub siblings: &'a [ClientRow],
    pub servers: &'a [ServerRow],
    pub routed: &'a [Routed],
}

/// Checks a client's name, addresses and routed prefixes against its neighbourhood and,
/// if `allocate`, gives it the lowest free address of each family the server has and
/// the client lacks. `self_id` is the client's id on update.
pub fn place_client(
    f: &mut ClientFields,
    self_id: Option<i64>,
    n: &Neighbourhood<'_>,
    allocate: bool,
) -> ApiResult<()> {
    if let Some(o) = n
        .siblings
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(&f.name))
    {
        return Err(ApiError::conflict(
            "name",
            format!("the server already has a client named {:?}", o.name),
        ));
    }
    f.ipv4_address = place_address(
        "ipv4_address",
        f.ipv4_address,
        n.server.ipv4_address,
        n.siblings,
        allocate,
    )?;
    f.ipv6_address = place_address(
        "ipv6_address",
        f.ipv6_address,
        n.server.ipv6_address,
        n.siblings,
        allocate,
    )?;
    check_routed(&f.routed_prefixes, self_id, n.servers, n.routed)
}

fn place_address(
    field: &str,
    addr: Option<IpAddr>,
    net: Option<IpNet>,
    siblings: &[ClientRow],
    allocate: bool,
) -> ApiResult<Option<IpAddr>> {
    let v4 = field == "ipv4_address";
    let of = |c: &ClientRow| if v4 { c.ipv4_address } else { c.ipv6_address };
    match (addr, net) {
        (Some(a), _) => match siblings.iter().find(|c| of(c) == Some(a)) {
            Some(o) => Err(ApiError::conflict(
                field,
                format!("{a} is already used by client {:?}", o.name),
            )),
            None => Ok(Some(a)),
        },
        (None, Some(net)) if allocate => {
            let used: Vec<IpAddr> = siblings.iter().filter_map(of).collect();
            next_free_host(net, &used).map(Some).ok_or_else(|| {
                ApiError::conflict(
                    field,
                    format!("no free {} address left in {}", family(field), net.trunc()),
                )
            })
        }
        (None, _) => Ok(None),
    }
}

/// A client's routed prefixes overlap no other client's (any server) and no server's
/// subnet.
pub fn check_routed(
    prefixes: &[IpNet],
    self_id: Option<i64>,
    servers: &[ServerRow],
    routed: &[Routed],
) -> ApiResult<()> {
    for p in prefixes {
        if let Some((r, theirs)) = routed_overlap(p, routed, self_id) {
            return Err(ApiError::conflict(
                "routed_prefixes",
                format!("{p} overlaps {theirs} routed to client {:?}", r.client_name),
            ));
        }
        let server = servers.iter().find_map(|s| {
            [s.ipv4_address, s.ipv6_address]
                .into_iter()
                .flatten()
                .find(|n| overlaps(n, p))
                .map(|n| (s, n.trunc()))
        });
        if let Some((s, net)) = server {
            return Err(ApiError::conflict(
                "routed_prefixes",
                format!("{p} overlaps the subnet {net} of server {:?}", s.name),
            ));
        }
    }
    Ok(())
}

/// The key material of a new client.
#[derive(Debug, Clone)]
pub struct ClientKeys {
    pub public_key: String,
    /// `None` when the client brought its own public key.
    pub private_key: Option<String>,
    pub preshared_key: Option<String>,
}

impl ClientKeys {
    /// Validates `own_public_key`, or generates a key pair; a preshared key if asked.
    pub fn new(own_public_key: Option<&str>, preshared: bool) -> ApiResult<ClientKeys> {
        let (public_key, private_key) = match own_public_key {
            Some(k) => (validate_public_key(k)?, None),
            None => {
                let k = PrivateKey::generate();
                (k.public_key().to_base64(), Some(k.to_base64()))
            }
        };
        Ok(ClientKeys {
            public_key,
            private_key,
            preshared_key: preshared.then(|| PresharedKey::generate().to_base64()),
        })
    }
}

// ---- rows: derived values ----

fn corrupt(what: &str) -> ApiError {
    log::error!("stored {what} is malformed");
    ApiError::internal()
}

impl ServerRow {
    /// The server's interface addresses (`10.0.0.1/24`, `fd00::1/64`).
    pub fn addresses(&self) -> Vec<IpNet> {
        [self.ipv4_address, self.ipv6_address]
            .into_iter()
            .flatten()
            .collect()
    }

    pub fn wg_private_key(&self) -> ApiResult<PrivateKey> {
        PrivateKey::from_base64(&self.private_key).map_err(|_| corrupt("server private key"))
    }

    pub fn wg_public_key(&self) -> ApiResult<PublicKey> {
        PublicKey::from_base64(&self.public_key).map_err(|_| corrupt("server public key"))
    }
}

impl ClientRow {
    pub fn wg_public_key(&self) -> ApiResult<PublicKey> {
        PublicKey::from_base64(&self.public_key).map_err(|_| corrupt("client public key"))
    }

    pub fn wg_preshared_key(&self) -> ApiResult<Option<PresharedKey>> {
        self.preshared_key
            .as_deref()
            .map(PresharedKey::from_base64)
            .transpose()
            .map_err(|_| corrupt("client preshared key"))
    }

    /// The client's addresses as host routes (`/32`, `/128`).
    pub fn host_routes(&self) -> Vec<IpNet> {
        [self.ipv4_address, self.ipv6_address]
            .into_iter()
            .flatten()
            .map(IpNet::from)
            .collect()
    }
}

/// What the server routes to `client`: its `/32`, its `/128` and its routed prefixes (the
/// peer's AllowedIPs on the server side).
pub fn peer_allowed_ips(client: &ClientRow) -> Vec<IpNet> {
    let mut out = client.host_routes();
    out.extend(client.routed_prefixes.iter().copied());
    out
}

/// The `Endpoint` clients dial: the server's `endpoint` (with `listen_port` appended if it
/// has no port), else `fallback_host` (any port on it is dropped) with `listen_port`.
pub fn advertised_endpoint(server: &ServerRow, fallback_host: &str) -> ApiResult<String> {
    let (host, port) = match &server.endpoint {
        Some(e) => split_endpoint(e).ok_or_else(|| corrupt("server endpoint"))?,
        None => split_endpoint(fallback_host.trim())
            .map(|(h, _)| (h, None))
            .ok_or_else(|| {
                ApiError::conflict(
                    "endpoint",
                    format!(
                        "server {:?} has no endpoint and no public host is known; set the \
                         server's endpoint",
                        server.name
                    ),
                )
            })?,
    };
    Ok(conf::endpoint(&host, port.unwrap_or(server.listen_port)))
}

/// The client's wg-quick config. 409 when its private key is not stored here.
pub fn client_config(
    server: &ServerRow,
    client: &ClientRow,
    fallback_host: &str,
) -> ApiResult<String> {
    let private_key = client.private_key.as_deref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::Conflict,
            "this client's private key is not stored (it was imported or brought its own key)",
        )
    })?;
    let private_key =
        PrivateKey::from_base64(private_key).map_err(|_| corrupt("client private key"))?;
    let dns = if client.dns_servers.is_empty() {
        &server.dns_servers
    } else {
        &client.dns_servers
    };
    let conf = WgQuick {
        interface: Interface {
            private_key: Some(private_key),
            addresses: client.host_routes(),
            listen_port: None,
            dns: dns.iter().map(IpAddr::to_string).collect(),
            mtu: Some(client.mtu.unwrap_or(server.mtu)),
        },
        peers: vec![Peer {
            public_key: server.wg_public_key()?,
            preshared_key: client.wg_preshared_key()?,
            endpoint: Some(advertised_endpoint(server, fallback_host)?),
            allowed_ips: client.allowed_ips.clone(),
            persistent_keepalive: client
                .persistent_keepalive
                .or(server.persistent_keepalive)
                .filter(|k| *k > 0),
        }],
    };
    Ok(conf.render())
}

// ---- views ----

fn nets(list: &[IpNet]) -> Vec<String> {
    list.iter().map(IpNet::to_string).collect()
}

/// A server as the API shows it: never its private key. `status`, `last_error` and
/// `started_at` come from the running engine.
#[derive(Debug, Serialize)]
pub struct ServerView {
    pub id: i64,
    pub name: String,
    pub interface: String,
    pub description: Option<String>,
    pub listen_port: u16,
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
    pub dns_servers: Vec<IpAddr>,
    pub mtu: u16,
    pub endpoint: Option<String>,
    pub persistent_keepalive: Option<u16>,
    pub public_key: String,
    pub is_active: bool,
    pub clients_count: u64,
    pub status: &'static str,
    pub last_error: Option<String>,
    #[serde(serialize_with = "crate::time::ser_opt")]
    pub started_at: Option<i64>,
    #[serde(serialize_with = "crate::time::ser")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::ser")]
    pub updated_at: i64,
}

impl ServerView {
    pub fn new(
        s: ServerRow,
        clients_count: u64,
        status: &'static str,
        last_error: Option<String>,
        started_at: Option<i64>,
    ) -> ServerView {
        ServerView {
            id: s.id,
            name: s.name,
            interface: s.interface,
            description: s.description,
            listen_port: s.listen_port,
            ipv4_address: s.ipv4_address.map(|n| n.to_string()),
            ipv6_address: s.ipv6_address.map(|n| n.to_string()),
            dns_servers: s.dns_servers,
            mtu: s.mtu,
            endpoint: s.endpoint,
            persistent_keepalive: s.persistent_keepalive,
            public_key: s.public_key,
            is_active: s.is_active,
            clients_count,
            status,
            last_error,
            started_at,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// A client's state in the running device; [`Live::default`] is offline.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub status: &'static str,
    pub last_handshake: Option<i64>,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// Where the peer was last seen (`ip:port`).
    pub endpoint: Option<String>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            status: "offline",
            last_handshake: None,
            bytes_received: 0,
            bytes_sent: 0,
            endpoint: None,
        }
    }
}

/// A client as the API shows it: never its private or preshared key.
#[derive(Debug, Serialize)]
pub struct ClientView {
    pub id: i64,
    pub server_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub public_key: String,
    pub use_preshared_key: bool,
    /// Whether `/config` and `/qrcode` can render this client's config (its private key
    /// is stored).
    pub config_available: bool,
    /// `10.0.0.2/32`
    pub ipv4_address: Option<String>,
    /// `fd00::2/128`
    pub ipv6_address: Option<String>,
    pub allowed_ips: Vec<String>,
    pub dns_servers: Vec<IpAddr>,
    pub mtu: Option<u16>,
    pub persistent_keepalive: Option<u16>,
    pub routed_prefixes: Vec<String>,
    pub status: &'static str,
    #[serde(serialize_with = "crate::time::ser_opt")]
    pub last_handshake: Option<i64>,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub endpoint: Option<String>,
    #[serde(serialize_with = "crate::time::ser")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::ser")]
    pub updated_at: i64,
}

impl ClientView {
    pub fn new(c: ClientRow, live: Live) -> ClientView {
        ClientView {
            id: c.id,
            server_id: c.server_id,
            name: c.name,
            description: c.description,
            enabled: c.enabled,
            public_key: c.public_key,
            use_preshared_key: c.preshared_key.is_some(),
            config_available: c.private_key.is_some(),
            ipv4_address: c.ipv4_address.map(|a| IpNet::from(a).to_string()),
            ipv6_address: c.ipv6_address.map(|a| IpNet::from(a).to_string()),
            allowed_ips: nets(&c.allowed_ips),
            dns_servers: c.dns_servers,
            mtu: c.mtu,
            persistent_keepalive: c.persistent_keepalive,
            routed_prefixes: nets(&c.routed_prefixes),
            status: live.status,
            last_handshake: live.last_handshake,
            bytes_received: live.bytes_received,
            bytes_sent: live.bytes_sent,
            endpoint: live.endpoint,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// The create response: the view plus, once, the secrets the client needs (the seed's
/// `private_key`, `config`, `qr_code`).
#[derive(Debug, Serialize)]
pub struct CreatedClientView {
    #[serde(flatten)]
    pub client: ClientView,
    pub private_key: Option<String>,
    pub config: Option<String>,
    pub qr_code: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::request::parse_json;

    fn field<T: std::fmt::Debug>(r: ApiResult<T>) -> String {
        r.unwrap_err().details.map(|d| d.field).unwrap_or_default()
    }

    fn code<T: std::fmt::Debug>(r: ApiResult<T>) -> ErrorCode {
        r.unwrap_err().code
    }

    fn msg<T: std::fmt::Debug>(r: ApiResult<T>) -> String {
        r.unwrap_err().message
    }

    fn net(s: &str) -> IpNet {
        s.parse().expect("net")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    pub(crate) fn server_row(id: i64, name: &str, v4: Option<&str>, v6: Option<&str>) -> ServerRow {
        let key = PrivateKey::generate();
        ServerRow {
            id,
            name: name.into(),
            interface: format!("wg{id}"),
            description: None,
            listen_port: 51820 + id as u16,
            ipv4_address: v4.map(net),
            ipv6_address: v6.map(net),
            dns_servers: vec![ip("10.0.0.1")],
            mtu: 1420,
            endpoint: None,
            persistent_keepalive: None,
            private_key: key.to_base64(),
            public_key: key.public_key().to_base64(),
            is_active: false,
            created_at: 1_704_067_200,
            updated_at: 1_704_067_200,
        }
    }

    fn client_row(id: i64, name: &str, v4: Option<&str>, v6: Option<&str>) -> ClientRow {
        let key = PrivateKey::generate();
        ClientRow {
            id,
            server_id: 1,
            name: name.into(),
            description: None,
            enabled: true,
            public_key: key.public_key().to_base64(),
            private_key: Some(key.to_base64()),
            preshared_key: None,
            ipv4_address: v4.map(ip),
            ipv6_address: v6.map(ip),
            allowed_ips: default_allowed_ips(),
            dns_servers: vec![],
            mtu: None,
            persistent_keepalive: None,
            routed_prefixes: vec![],
            created_at: 1_704_067_200,
            updated_at: 1_704_067_200,
        }
    }

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
    fn new_server_defaults_and_a_subnet_is_required() {
        let others = [server_row(1, "a", Some("10.1.0.1/24"), None)];
        let f = NewServer {
            name: "b".into(),
            ipv6_address: Some("fd00::1/64".into()),
            ..Default::default()
        }
        .validate(&others)
        .expect("valid");
        assert_eq!(
            (f.interface.as_str(), f.listen_port, f.mtu, f.is_active),
            ("wg0", 51820, 1420, false),
            "wg1/51821 are taken by server 1, wg0/51820 are free"
        );
        let mut taken = others.to_vec();
        taken[0].interface = "wg0".into();
        taken[0].listen_port = 51820;
        let f = NewServer {
            name: "b".into(),
            ipv4_address: Some("10.2.0.1/24".into()),
            ..Default::default()
        }
        .validate(&taken)
        .expect("valid");
        assert_eq!((f.interface.as_str(), f.listen_port), ("wg1", 51821));
        let none = NewServer {
            name: "c".into(),
            ipv4_address: Some(" ".into()),
            ..Default::default()
        };
        assert_eq!(field(none.validate(&[])), "ipv4_address");
        let bad_mtu = NewServer {
            name: "c".into(),
            ipv4_address: Some("10.0.0.1/24".into()),
            mtu: Some(70_000),
            ..Default::default()
        };
        assert_eq!(field(bad_mtu.validate(&[])), "mtu");
    }

    #[test]
    fn default_interface_and_port() {
        assert_eq!(default_interface(&[]), "wg0");
        assert_eq!(default_interface(&["wg0", "wg2", "wg1"]), "wg3");
        assert_eq!(default_interface(&["wg1"]), "wg0");
        assert_eq!(default_listen_port(&[]), Some(51820));
        assert_eq!(default_listen_port(&[51820, 51821, 1]), Some(51822));
        let all: Vec<u16> = (51820..=u16::MAX).collect();
        assert_eq!(default_listen_port(&all), None);
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
        assert_eq!(e.code, ErrorCode::Validation);
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
            (e.code, e.message.as_str()),
            (ErrorCode::Validation, "the server has no IPv6 subnet")
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
        assert_eq!(e.details.expect("details").field, "routed_prefixes");
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
    fn allocator_v4() {
        let slash30 = net("10.0.0.1/30");
        assert_eq!(next_free_host(slash30, &[]), Some(ip("10.0.0.2")));
        assert_eq!(
            next_free_host(slash30, &[ip("10.0.0.2")]),
            None,
            "exhausted"
        );
        let s = net("10.0.0.1/24");
        assert_eq!(
            next_free_host(
                s,
                &[
                    ip("10.0.0.5"),
                    ip("10.0.0.3"),
                    ip("10.0.0.2"),
                    ip("10.0.0.3")
                ]
            ),
            Some(ip("10.0.0.4")),
            "unsorted, duplicated input"
        );
        assert_eq!(
            next_free_host(
                net("10.0.0.5/24"),
                &[1, 2, 3, 4].map(|i| ip(&format!("10.0.0.{i}")))
            ),
            Some(ip("10.0.0.6")),
            "the server's own address is skipped wherever it is"
        );
        let full: Vec<IpAddr> = (2..=254).map(|i| ip(&format!("10.0.0.{i}"))).collect();
        assert_eq!(next_free_host(s, &full), None, "no broadcast");
        assert_eq!(
            next_free_host(s, &[ip("10.9.9.9"), ip("fd00::2")]),
            Some(ip("10.0.0.2")),
            "addresses outside the subnet do not matter"
        );
        assert_eq!(next_free_host(net("10.0.0.1/32"), &[]), None);
    }

    #[test]
    fn allocator_v6() {
        let s = net("fd00::1/64");
        assert_eq!(next_free_host(s, &[]), Some(ip("fd00::2")));
        assert_eq!(
            next_free_host(
                s,
                &[ip("fd00::2"), ip("fd00::3"), ip("fd00::5"), ip("fd00::7")]
            ),
            Some(ip("fd00::4"))
        );
        // 100 000 used addresses in a /64: sort and walk, never a scan of the subnet.
        let used: Vec<IpAddr> = (2u128..100_002)
            .rev()
            .map(|i| IpAddr::V6(Ipv6Addr::from((0xfd00u128 << 112) | i)))
            .collect();
        assert_eq!(
            next_free_host(s, &used),
            Some(IpAddr::V6(Ipv6Addr::from((0xfd00u128 << 112) | 100_002)))
        );
        let s126 = net("fd00::1/126");
        assert_eq!(
            next_free_host(s126, &[ip("fd00::2")]),
            Some(ip("fd00::3")),
            "IPv6 has no broadcast"
        );
        assert_eq!(next_free_host(s126, &[ip("fd00::2"), ip("fd00::3")]), None);
        assert_eq!(
            next_free_host(net("fd00::2/64"), &[]),
            Some(ip("fd00::1")),
            "the anycast address is skipped, not the one below the server"
        );
    }

    #[test]
    fn overlap() {
        assert!(overlaps(&net("10.0.0.0/8"), &net("10.1.0.0/16")));
        assert!(overlaps(&net("10.1.0.1/16"), &net("10.0.0.0/8")));
        assert!(!overlaps(&net("10.0.0.0/24"), &net("10.0.1.0/24")));
        assert!(!overlaps(&net("0.0.0.0/0"), &net("::/0")));
        assert!(overlaps(&net("::/0"), &net("fd00::/64")));
    }

    fn fields_of(s: &ServerRow) -> ServerFields {
        ServerFields {
            name: s.name.clone(),
            interface: s.interface.clone(),
            description: None,
            listen_port: s.listen_port,
            ipv4_address: s.ipv4_address,
            ipv6_address: s.ipv6_address,
            dns_servers: vec![],
            mtu: 1420,
            endpoint: None,
            persistent_keepalive: None,
            is_active: false,
        }
    }

    #[test]
    fn server_conflicts() {
        let others = [server_row(
            1,
            "Home",
            Some("10.0.0.1/24"),
            Some("fd00::1/64"),
        )];
        let mut f = fields_of(&server_row(2, "office", Some("10.1.0.1/24"), None));
        assert!(check_server_conflicts(&f, &others, &[]).is_ok());
        let conflict = |f: &ServerFields, routed: &[Routed]| {
            let e = check_server_conflicts(f, &others, routed).unwrap_err();
            assert_eq!(e.code, ErrorCode::Conflict);
            (e.details.expect("details").field, e.message)
        };
        let mut g = f.clone();
        g.name = "HOME".into();
        assert_eq!(conflict(&g, &[]).0, "name");
        let mut g = f.clone();
        g.interface = "wg1".into();
        assert_eq!(conflict(&g, &[]).0, "interface");
        let mut g = f.clone();
        g.listen_port = 51821;
        assert_eq!(conflict(&g, &[]).0, "listen_port");
        let mut g = f.clone();
        g.ipv4_address = Some(net("10.0.0.129/25"));
        let (field, message) = conflict(&g, &[]);
        assert_eq!(field, "ipv4_address");
        assert!(message.contains("10.0.0.0/24"), "{message}");
        g.ipv4_address = Some(net("10.1.0.1/24"));
        g.ipv6_address = Some(net("fd00::1:1/112"));
        assert_eq!(conflict(&g, &[]).0, "ipv6_address");
        let routed = [Routed {
            client_id: 7,
            client_name: "site".into(),
            server_id: 1,
            prefixes: vec![net("10.1.0.0/16")],
        }];
        f.ipv4_address = Some(net("10.1.2.1/24"));
        let (field, message) = conflict(&f, &routed);
        assert_eq!(field, "ipv4_address");
        assert!(message.contains("\"site\""), "{message}");
    }

    #[test]
    fn routed_prefix_conflicts() {
        let servers = [server_row(1, "a", Some("10.0.0.1/24"), Some("fd00::1/64"))];
        let routed = [Routed {
            client_id: 3,
            client_name: "c".into(),
            server_id: 2,
            prefixes: vec![net("2001:db8::/48")],
        }];
        let check = |p: &str, me| check_routed(&[net(p)], me, &servers, &routed);
        assert!(check("2001:db8:1::/48", None).is_ok());
        assert!(check("2001:db8::/56", Some(3)).is_ok(), "its own prefix");
        for p in [
            "2001:db8:0:1::/64",
            "2001::/16",
            "10.0.0.128/25",
            "fd00::/8",
        ] {
            let e = check(p, None).unwrap_err();
            assert_eq!(e.code, ErrorCode::Conflict, "{p}");
            assert_eq!(e.details.expect("d").field, "routed_prefixes");
        }
    }

    #[test]
    fn placing_a_client() {
        let server = server_row(1, "s", Some("10.0.0.1/30"), Some("fd00::1/64"));
        let mut f = NewClient {
            server_id: 1,
            name: "phone".into(),
            ..Default::default()
        }
        .validate(&server)
        .expect("valid");
        let n = Neighbourhood {
            server: &server,
            siblings: &[],
            servers: std::slice::from_ref(&server),
            routed: &[],
        };
        place_client(&mut f, None, &n, true).expect("placed");
        assert_eq!(
            (f.ipv4_address, f.ipv6_address),
            (Some(ip("10.0.0.2")), Some(ip("fd00::2")))
        );
        let siblings = [client_row(2, "Phone", Some("10.0.0.2"), Some("fd00::2"))];
        let n = Neighbourhood {
            siblings: &siblings,
            ..n
        };
        let mut g = f.clone();
        g.name = "other".into();
        g.ipv4_address = None;
        let e = place_client(&mut g, None, &n, true).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                ErrorCode::Conflict,
                "no free IPv4 address left in 10.0.0.0/30"
            )
        );
        assert_eq!(e.details.expect("d").field, "ipv4_address");
        let mut g = f.clone();
        assert_eq!(field(place_client(&mut g, None, &n, true)), "name");
        g.name = "other".into();
        let e = place_client(&mut g, None, &n, false).unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict);
        assert!(
            e.message.contains("already used by client \"Phone\""),
            "{}",
            e.message
        );
        g.ipv4_address = None;
        g.ipv6_address = Some(ip("fd00::9"));
        place_client(&mut g, None, &n, false).expect("no allocation when not asked");
        assert_eq!(g.ipv4_address, None);
    }

    #[test]
    fn new_client_validation_names_fields() {
        let server = server_row(1, "s", Some("10.0.0.1/24"), None);
        let base = || NewClient {
            server_id: 1,
            name: "c".into(),
            ..Default::default()
        };
        let f = base().validate(&server).expect("ok");
        assert_eq!(f.allowed_ips, default_allowed_ips());
        assert!(f.enabled);
        let cases: Vec<(NewClient, &str)> = vec![
            (
                NewClient {
                    name: "".into(),
                    ..base()
                },
                "name",
            ),
            (
                NewClient {
                    ipv4_address: Some("10.0.1.2".into()),
                    ..base()
                },
                "ipv4_address",
            ),
            (
                NewClient {
                    ipv6_address: Some("fd00::2".into()),
                    ..base()
                },
                "ipv6_address",
            ),
            (
                NewClient {
                    allowed_ips: Some(vec![]),
                    ..base()
                },
                "allowed_ips",
            ),
            (
                NewClient {
                    dns_servers: Some(strings(&["x"])),
                    ..base()
                },
                "dns_servers",
            ),
            (
                NewClient {
                    mtu: Some(100),
                    ..base()
                },
                "mtu",
            ),
            (
                NewClient {
                    routed_prefixes: Some(strings(&["10.9.0.1/16"])),
                    ..base()
                },
                "routed_prefixes",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(field(input.validate(&server)), want);
        }
        assert_eq!(
            field(ClientKeys::new(Some("not a key"), false)),
            "public_key"
        );
        let own = PrivateKey::generate().public_key().to_base64();
        let k = ClientKeys::new(Some(&own), true).expect("keys");
        assert_eq!((k.public_key, k.private_key), (own, None));
        assert!(k.preshared_key.is_some());
        let k = ClientKeys::new(None, false).expect("keys");
        let private =
            PrivateKey::from_base64(k.private_key.as_deref().expect("generated")).expect("key");
        assert_eq!(private.public_key().to_base64(), k.public_key);
        assert_eq!(k.preshared_key, None);
    }

    #[test]
    fn changes_merge_and_validate() {
        let server = server_row(1, "s", Some("10.0.0.1/24"), Some("fd00::1/64"));
        let mut current = client_row(5, "c", Some("10.0.0.2"), Some("fd00::2"));
        current.mtu = Some(1300);
        current.persistent_keepalive = Some(25);
        let changes: ClientChanges = parse_json(
            br#"{"ipv6_address":null,"mtu":null,"use_preshared_key":true,"ipv4_address":"10.0.0.9/32"}"#,
        )
        .expect("json");
        let f = changes.apply(&current, &server, "PSK".into()).expect("ok");
        assert_eq!(
            (
                f.ipv4_address,
                f.ipv6_address,
                f.mtu,
                f.persistent_keepalive
            ),
            (Some(ip("10.0.0.9")), None, None, Some(25))
        );
        assert_eq!(f.preshared_key.as_deref(), Some("PSK"));
        current.preshared_key = Some("OLD".into());
        let keep = ClientChanges {
            use_preshared_key: Some(true),
            ..Default::default()
        };
        let f = keep.apply(&current, &server, "NEW".into()).expect("ok");
        assert_eq!(
            f.preshared_key.as_deref(),
            Some("OLD"),
            "an existing key stays"
        );
        let drop = ClientChanges {
            use_preshared_key: Some(false),
            ..Default::default()
        };
        assert_eq!(
            drop.apply(&current, &server, "NEW".into())
                .expect("ok")
                .preshared_key,
            None
        );

        let s: ServerChanges =
            parse_json(br#"{"ipv4_address":null,"endpoint":null,"mtu":1500}"#).expect("json");
        let mut row = server_row(1, "s", Some("10.0.0.1/24"), Some("fd00::1/64"));
        row.endpoint = Some("vpn.example.com".into());
        let f = s.apply(&row).expect("ok");
        assert_eq!((f.ipv4_address, f.endpoint, f.mtu), (None, None, 1500));
        let s: ServerChanges = parse_json(br#"{"ipv4_address":null}"#).expect("json");
        let v4_only = server_row(1, "s", Some("10.0.0.1/24"), None);
        assert_eq!(field(s.apply(&v4_only)), "ipv4_address");
        let minimal: NewServer = parse_json(br#"{"name":"a"}"#).expect("optional fields");
        assert_eq!((minimal.interface, minimal.mtu), (None, None));
        let e = parse_json::<NewClient>(br#"{"server_id":1}"#).unwrap_err();
        assert_eq!(e.details.expect("d").field, "name");
        let e = parse_json::<ServerChanges>(br#"{"private_key":"x"}"#).unwrap_err();
        assert_eq!(e.details.expect("d").field, "private_key");
        let e = parse_json::<NewClient>(br#"{"server_id":1,"name":"a","server":1}"#).unwrap_err();
        assert_eq!(e.details.expect("d").field, "server");
    }

    #[test]
    fn clients_must_fit_a_changed_subnet() {
        let clients = [
            client_row(1, "a", Some("10.0.0.2"), None),
            client_row(2, "b", Some("10.0.0.200"), Some("fd00::2")),
        ];
        let mut f = fields_of(&server_row(1, "s", Some("10.0.0.1/24"), Some("fd00::1/64")));
        assert!(check_clients_fit(&f, &clients).is_ok());
        f.ipv4_address = Some(net("10.0.0.1/25"));
        let e = check_clients_fit(&f, &clients).unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict);
        assert!(e.message.starts_with("1 client(s)"), "{}", e.message);
        f.ipv4_address = Some(net("10.0.0.2/16"));
        assert_eq!(field(check_clients_fit(&f, &clients)), "ipv4_address");
        f.ipv4_address = Some(net("10.0.0.1/16"));
        f.ipv6_address = None;
        assert_eq!(field(check_clients_fit(&f, &clients)), "ipv6_address");
    }

    #[test]
    fn renders_a_client_config() {
        let mut server = server_row(1, "s", Some("10.0.0.1/24"), Some("fd00::1/64"));
        server.endpoint = Some("vpn.example.com".into());
        server.persistent_keepalive = Some(25);
        let mut client = client_row(2, "c", Some("10.0.0.2"), Some("fd00::2"));
        client.preshared_key = Some(PresharedKey::generate().to_base64());
        let text = client_config(&server, &client, "ignored").expect("config");
        let parsed = WgQuick::parse(&text).expect("parses").conf;
        let i = &parsed.interface;
        assert_eq!(
            i.private_key.as_ref().map(PrivateKey::to_base64),
            client.private_key.clone()
        );
        assert_eq!(i.addresses, vec![net("10.0.0.2/32"), net("fd00::2/128")]);
        assert_eq!(
            (i.dns.clone(), i.mtu),
            (vec!["10.0.0.1".to_string()], Some(1420))
        );
        let p = &parsed.peers[0];
        assert_eq!(p.public_key.to_base64(), server.public_key);
        assert_eq!(
            p.preshared_key.as_ref().map(PresharedKey::to_base64),
            client.preshared_key
        );
        assert_eq!(p.endpoint.as_deref(), Some("vpn.example.com:51821"));
        assert_eq!(p.allowed_ips, default_allowed_ips());
        assert_eq!(p.persistent_keepalive, Some(25));

        client.persistent_keepalive = Some(0);
        client.mtu = Some(1280);
        client.dns_servers = vec![ip("9.9.9.9")];
        server.endpoint = Some("[2001:db8::1]:443".into());
        let parsed = WgQuick::parse(&client_config(&server, &client, "x").expect("config"))
            .expect("parses")
            .conf;
        assert_eq!(parsed.peers[0].persistent_keepalive, None, "0 is off");
        assert_eq!(
            parsed.peers[0].endpoint.as_deref(),
            Some("[2001:db8::1]:443")
        );
        assert_eq!(parsed.interface.mtu, Some(1280));
        assert_eq!(parsed.interface.dns, vec!["9.9.9.9".to_string()]);

        client.private_key = None;
        let e = client_config(&server, &client, "x").unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict);
        assert!(e.message.contains("private key is not stored"));
    }

    #[test]
    fn endpoint_falls_back_to_the_public_host() {
        let mut s = server_row(1, "s", Some("10.0.0.1/24"), None);
        assert_eq!(
            advertised_endpoint(&s, "router.lan:8000").expect("ok"),
            "router.lan:51821",
            "the API port of a Host header is dropped"
        );
        assert_eq!(
            advertised_endpoint(&s, "[2001:db8::9]:8000").expect("ok"),
            "[2001:db8::9]:51821"
        );
        assert_eq!(
            advertised_endpoint(&s, "2001:db8::9").expect("ok"),
            "[2001:db8::9]:51821"
        );
        assert_eq!(code(advertised_endpoint(&s, "")), ErrorCode::Conflict);
        s.endpoint = Some("2001:db8::1".into());
        assert_eq!(
            advertised_endpoint(&s, "x").expect("ok"),
            "[2001:db8::1]:51821"
        );
        s.endpoint = Some("vpn.example.com:1000".into());
        assert_eq!(
            advertised_endpoint(&s, "x").expect("ok"),
            "vpn.example.com:1000"
        );
    }

    #[test]
    fn peer_allowed_ips_are_addresses_and_routed_prefixes() {
        let mut c = client_row(1, "c", Some("10.0.0.2"), Some("fd00::2"));
        c.routed_prefixes = vec![net("2001:db8:1::/48")];
        assert_eq!(
            peer_allowed_ips(&c),
            vec![
                net("10.0.0.2/32"),
                net("fd00::2/128"),
                net("2001:db8:1::/48")
            ]
        );
        c.ipv4_address = None;
        c.routed_prefixes.clear();
        assert_eq!(peer_allowed_ips(&c), vec![net("fd00::2/128")]);
    }

    #[test]
    fn views_hide_secrets() {
        let s = server_row(1, "s", Some("10.0.0.1/24"), Some("fd00::1/64"));
        let secret = s.private_key.clone();
        let v = serde_json::to_value(ServerView::new(s, 3, "running", None, Some(1_704_067_200)))
            .expect("json");
        assert!(!v.to_string().contains(&secret));
        assert_eq!(v["ipv4_address"], "10.0.0.1/24");
        assert_eq!(v["clients_count"], 3);
        assert_eq!(v["started_at"], "2024-01-01T00:00:00Z");
        assert_eq!(v["created_at"], "2024-01-01T00:00:00Z");
        assert_eq!(v["dns_servers"][0], "10.0.0.1");

        let mut c = client_row(2, "c", Some("10.0.0.2"), Some("fd00::2"));
        c.preshared_key = Some(PresharedKey::generate().to_base64());
        let (private, psk) = (
            c.private_key.clone().expect("k"),
            c.preshared_key.clone().expect("k"),
        );
        let v = serde_json::to_value(ClientView::new(c, Live::default())).expect("json");
        let text = v.to_string();
        assert!(!text.contains(&private) && !text.contains(&psk));
        assert_eq!(v["ipv4_address"], "10.0.0.2/32");
        assert_eq!(v["ipv6_address"], "fd00::2/128");
        assert_eq!(v["use_preshared_key"], true);
        assert_eq!(v["config_available"], true);
        assert_eq!(v["status"], "offline");
        assert_eq!(v["last_handshake"], serde_json::Value::Null);
        assert_eq!(v["allowed_ips"][1], "::/0");
        assert!(v.get("private_key").is_none() && v.get("preshared_key").is_none());
    }
}
