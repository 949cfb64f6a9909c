//! From a validated body to the fields stored, and the rules that need rows already
//! loaded: defaults (the first free interface and port, the lowest free address of a
//! subnet), uniqueness of names, interfaces and ports, subnets and routed prefixes that
//! must not overlap, clients that must still fit a changed subnet, and a new client's keys.

use super::input::{
    check_client_address, client_address, default_allowed_ips, family, overlaps, require_a_subnet,
    server_ipv4, server_ipv6, validate_allowed_ips, validate_description, validate_dns,
    validate_endpoint, validate_interface, validate_listen_port, validate_mtu, validate_name,
    validate_public_key, validate_routed_prefixes, ClientChanges, NewClient, NewServer,
    ServerChanges, DEFAULT_LISTEN_PORT, DEFAULT_MTU,
};
use crate::store::wireguard::{ClientFields, ClientRow, Routed, ServerFields, ServerRow};
use crate::wireguard::error::{Error, Result};
use crate::wireguard::keys::{PresharedKey, PrivateKey};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
    f: impl FnOnce(T) -> Result<U, crate::error::Invalid>,
) -> Result<U> {
    Ok(change.map_or_else(|| Ok(current.clone()), f)?)
}

impl NewServer {
    /// Validated fields; an unset interface or port is the first one free among `others`.
    pub fn validate(self, others: &[ServerRow]) -> Result<ServerFields> {
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
                .ok_or_else(|| Error::conflict("listen_port", "no free listen_port left"))?,
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
    pub fn apply(self, current: &ServerRow) -> Result<ServerFields> {
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
) -> Result<()> {
    for o in others {
        if o.name.eq_ignore_ascii_case(&f.name) {
            return Err(Error::conflict(
                "name",
                format!("a server named {:?} already exists", o.name),
            ));
        }
        if o.interface == f.interface {
            return Err(Error::conflict(
                "interface",
                format!("interface {} is used by server {:?}", f.interface, o.name),
            ));
        }
        if o.listen_port == f.listen_port {
            return Err(Error::conflict(
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
            return Err(Error::conflict(
                subnet_field(net),
                format!("subnet {mine} overlaps {theirs} of server {:?}", o.name),
            ));
        }
        if let Some((r, p)) = routed_overlap(&mine, routed, None) {
            return Err(Error::conflict(
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
pub fn check_clients_fit(f: &ServerFields, clients: &[ClientRow]) -> Result<()> {
    let fits = |field: &str, addr: Option<IpAddr>, net: Option<IpNet>| {
        addr.is_none_or(|a| check_client_address(field, a, net).is_ok())
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
            return Err(Error::conflict(
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
    pub fn validate(self, server: &ServerRow) -> Result<ClientFields> {
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
    ) -> Result<ClientFields> {
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
) -> Result<()> {
    if let Some(o) = n
        .siblings
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(&f.name))
    {
        return Err(Error::conflict(
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
) -> Result<Option<IpAddr>> {
    let v4 = field == "ipv4_address";
    let of = |c: &ClientRow| if v4 { c.ipv4_address } else { c.ipv6_address };
    match (addr, net) {
        (Some(a), _) => match siblings.iter().find(|c| of(c) == Some(a)) {
            Some(o) => Err(Error::conflict(
                field,
                format!("{a} is already used by client {:?}", o.name),
            )),
            None => Ok(Some(a)),
        },
        (None, Some(net)) if allocate => {
            let used: Vec<IpAddr> = siblings.iter().filter_map(of).collect();
            next_free_host(net, &used).map(Some).ok_or_else(|| {
                Error::conflict(
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
) -> Result<()> {
    for p in prefixes {
        if let Some((r, theirs)) = routed_overlap(p, routed, self_id) {
            return Err(Error::conflict(
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
            return Err(Error::conflict(
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
    pub fn new(own_public_key: Option<&str>, preshared: bool) -> Result<ClientKeys> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wireguard::model::fixtures::*;

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
            assert_eq!(kind_of(&e), Kind::Conflict);
            (e.field().expect("details").to_string(), e.to_string())
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
            assert_eq!(kind_of(&e), Kind::Conflict, "{p}");
            assert_eq!(e.field().expect("d").to_string(), "routed_prefixes");
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
            (kind_of(&e), e.to_string().as_str()),
            (Kind::Conflict, "no free IPv4 address left in 10.0.0.0/30")
        );
        assert_eq!(e.field().expect("d").to_string(), "ipv4_address");
        let mut g = f.clone();
        assert_eq!(field(place_client(&mut g, None, &n, true)), "name");
        g.name = "other".into();
        let e = place_client(&mut g, None, &n, false).unwrap_err();
        assert_eq!(kind_of(&e), Kind::Conflict);
        assert!(
            e.to_string().contains("already used by client \"Phone\""),
            "{}",
            e.to_string()
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
        let changes: ClientChanges = serde_json::from_slice(
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
            serde_json::from_slice(br#"{"ipv4_address":null,"endpoint":null,"mtu":1500}"#)
                .expect("json");
        let mut row = server_row(1, "s", Some("10.0.0.1/24"), Some("fd00::1/64"));
        row.endpoint = Some("vpn.example.com".into());
        let f = s.apply(&row).expect("ok");
        assert_eq!((f.ipv4_address, f.endpoint, f.mtu), (None, None, 1500));
        let s: ServerChanges = serde_json::from_slice(br#"{"ipv4_address":null}"#).expect("json");
        let v4_only = server_row(1, "s", Some("10.0.0.1/24"), None);
        assert_eq!(field(s.apply(&v4_only)), "ipv4_address");
        let minimal: NewServer =
            serde_json::from_slice(br#"{"name":"a"}"#).expect("optional fields");
        assert_eq!((minimal.interface, minimal.mtu), (None, None));
        // Which field a bad body names is the API's parser's part: see `api::wireguard`.
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
        assert_eq!(kind_of(&e), Kind::Conflict);
        assert!(
            e.to_string().starts_with("1 client(s)"),
            "{}",
            e.to_string()
        );
        f.ipv4_address = Some(net("10.0.0.2/16"));
        assert_eq!(field(check_clients_fit(&f, &clients)), "ipv4_address");
        f.ipv4_address = Some(net("10.0.0.1/16"));
        f.ipv6_address = None;
        assert_eq!(field(check_clients_fit(&f, &clients)), "ipv6_address");
    }
}
