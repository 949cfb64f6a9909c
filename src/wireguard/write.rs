//! Every write to servers and clients as one function over a transaction: the rule checks,
//! the address allocation and the write they guard see the same database (the service runs
//! each in [`crate::store::Store::write`], and the database thread serialises all writes, so
//! two concurrent creates cannot get the same address). Pure rules come from [`super::model`].

use super::error::{Error, Result};
use super::model::*;
use super::pool_rules;
use crate::changes::{Change, Op};
use crate::ipam::Released;
use crate::store::ipam::allocations_of_clients;
use crate::store::wireguard::{self as q, ClientFields, ClientRow, Routed, ServerRow};
use crate::wireguard::conf::{Peer, WgQuick};
use crate::wireguard::keys::{PresharedKey, PrivateKey};
use rusqlite::Connection;
use std::net::IpAddr;

pub(super) fn server_or_404(c: &Connection, id: i64) -> Result<ServerRow> {
    q::get_server(c, id)?.ok_or(Error::NotFound("server"))
}

pub(super) fn client_or_404(c: &Connection, id: i64) -> Result<ClientRow> {
    q::get_client(c, id)?.ok_or(Error::NotFound("client"))
}

/// Errors of one field of the `[Interface]` section, blamed on the imported `config`.
fn in_config(e: impl Into<Error>) -> Error {
    e.into().refield("config", "[Interface]: ")
}

// ---- servers ----

pub(super) fn create_server_in(
    tx: &Connection,
    input: NewServer,
    key: &PrivateKey,
    now: i64,
) -> Result<ServerRow> {
    let servers = q::all_servers(tx)?;
    let fields = input.validate(&servers)?;
    check_server_conflicts(&fields, &servers, &q::all_routed(tx)?)?;
    pool_rules::check_server_subnet(tx, fields.ipv6_address)?;
    let row = q::insert_server(
        tx,
        &fields,
        &key.to_base64(),
        &key.public_key().to_base64(),
        now,
    )?;
    Ok(row)
}

pub(super) fn update_server_in(
    tx: &Connection,
    id: i64,
    changes: ServerChanges,
    now: i64,
) -> Result<(ServerRow, ServerRow)> {
    let current = server_or_404(tx, id)?;
    let fields = changes.apply(&current)?;
    let others: Vec<ServerRow> = q::all_servers(tx)?
        .into_iter()
        .filter(|s| s.id != id)
        .collect();
    check_server_conflicts(&fields, &others, &q::all_routed(tx)?)?;
    pool_rules::check_server_subnet(tx, fields.ipv6_address)?;
    check_clients_fit(&fields, &q::clients_of_server(tx, id)?)?;
    let new = q::update_server(tx, id, &fields, now)?;
    Ok((current, new))
}

/// What a delete took with it: the clients, and their IPv6 prefix allocations, released in
/// the same transaction. Apply `freed` to the pools' allocators in the same database
/// closure, after the commit ([`Released`]), so they stay in step with the tables.
#[derive(Debug)]
pub(super) struct Deleted<T> {
    pub row: T,
    pub clients: Vec<ClientRow>,
    pub freed: Released,
    /// One `Allocation` change per released prefix (what BGP withdraws).
    pub released: Vec<Change>,
}

fn release(tx: &Connection, clients: &[ClientRow]) -> Result<(Released, Vec<Change>)> {
    let ids: Vec<i64> = clients.iter().map(|c| c.id).collect();
    let released = allocations_of_clients(tx, &ids)?
        .into_iter()
        .map(|a| Change::Allocation {
            pool_id: a.pool_id,
            id: a.id,
            client: a.client_id.and_then(|id| {
                let c = clients.iter().find(|c| c.id == id)?;
                Some((c.server_id, id))
            }),
            op: Op::Removed,
        })
        .collect();
    Ok((crate::ipam::release_for_clients(tx, &ids)?, released))
}

/// Without `force` a server with clients is a 409.
pub(super) fn delete_server_in(
    tx: &Connection,
    id: i64,
    force: bool,
) -> Result<Deleted<ServerRow>> {
    let server = server_or_404(tx, id)?;
    let clients = q::clients_of_server(tx, id)?;
    if !clients.is_empty() && !force {
        return Err(Error::conflict(
            "force",
            format!("server has {} clients; use ?force=true", clients.len()),
        ));
    }
    let (freed, released) = release(tx, &clients)?;
    q::delete_server(tx, id)?;
    Ok(Deleted {
        row: server,
        clients,
        freed,
        released,
    })
}

pub(super) fn delete_client_in(tx: &Connection, id: i64) -> Result<Deleted<ClientRow>> {
    let client = client_or_404(tx, id)?;
    let (freed, released) = release(tx, std::slice::from_ref(&client))?;
    q::delete_client(tx, id)?;
    Ok(Deleted {
        row: client,
        clients: Vec::new(),
        freed,
        released,
    })
}

// ---- clients ----

/// 422 when the config of `new` would not fit a QR code, unless it is an update that does
/// not make the config longer (a client may already be past the limit because its server's
/// DNS or endpoint grew; renaming or disabling it must still work). `set`: the fields the
/// request set, one of which is named. Clients without a stored private key have no config.
pub(super) fn check_qr(
    server: &ServerRow,
    old: Option<&ClientRow>,
    new: &ClientRow,
    fallback_host: &str,
    set: &[&str],
) -> Result<()> {
    let Ok(config) = client_config(server, new, fallback_host) else {
        return Ok(());
    };
    let before = old.and_then(|o| client_config(server, o, fallback_host).ok());
    if before.is_some_and(|b| config.len() <= b.len()) {
        return Ok(());
    }
    check_fits_qr(
        &config,
        set,
        "list fewer allowed_ips (or dns_servers), e.g. a covering prefix instead of many",
    )
}

/// The fields of a client body that end up in its config, when set.
fn config_fields(allowed_ips: bool, dns_servers: bool) -> Vec<&'static str> {
    [("allowed_ips", allowed_ips), ("dns_servers", dns_servers)]
        .into_iter()
        .filter_map(|(f, set)| set.then_some(f))
        .collect()
}

pub(super) fn create_client_in(
    tx: &Connection,
    input: NewClient,
    keys: ClientKeys,
    fallback_host: &str,
    now: i64,
) -> Result<ClientRow> {
    let set = config_fields(input.allowed_ips.is_some(), input.dns_servers.is_some());
    let server_id = input.server_id;
    let server = q::get_server(tx, server_id)?.ok_or_else(|| {
        Error::invalid(
            "server_id",
            format!("there is no server with id {server_id}"),
        )
    })?;
    let mut fields = input.validate(&server)?;
    fields.preshared_key = keys.preshared_key;
    let siblings = q::clients_of_server(tx, server_id)?;
    let servers = q::all_servers(tx)?;
    let routed = q::all_routed(tx)?;
    let n = Neighbourhood {
        server: &server,
        siblings: &siblings,
        servers: &servers,
        routed: &routed,
    };
    place_client(&mut fields, None, &n, true)?;
    pool_rules::check_client_routed(tx, None, &fields.routed_prefixes)?;
    let row = q::insert_client(
        tx,
        server_id,
        &fields,
        &keys.public_key,
        keys.private_key.as_deref(),
        now,
    )?;
    check_qr(&server, None, &row, fallback_host, &set)?;
    Ok(row)
}

pub(super) fn update_client_in(
    tx: &Connection,
    id: i64,
    changes: ClientChanges,
    new_psk: String,
    fallback_host: &str,
    now: i64,
) -> Result<(ClientRow, ClientRow)> {
    let set = config_fields(changes.allowed_ips.is_some(), changes.dns_servers.is_some());
    let current = client_or_404(tx, id)?;
    let server = server_or_404(tx, current.server_id)?;
    let mut fields = changes.apply(&current, &server, new_psk)?;
    let siblings: Vec<ClientRow> = q::clients_of_server(tx, server.id)?
        .into_iter()
        .filter(|c| c.id != id)
        .collect();
    let servers = q::all_servers(tx)?;
    let routed = q::all_routed(tx)?;
    let n = Neighbourhood {
        server: &server,
        siblings: &siblings,
        servers: &servers,
        routed: &routed,
    };
    place_client(&mut fields, Some(id), &n, false)?;
    pool_rules::check_client_routed(tx, Some(id), &fields.routed_prefixes)?;
    let new = q::update_client(tx, id, &fields, now)?;
    check_qr(&server, Some(&current), &new, fallback_host, &set)?;
    Ok((current, new))
}

// ---- import ----

/// The result of [`import_server`].
#[derive(Debug)]
pub struct Imported {
    pub server: ServerRow,
    pub clients: Vec<ClientRow>,
    /// Settings of the file that have no effect here, for the response's message.
    pub ignored: Vec<String>,
}

/// A parsed wg-quick file, checked as far as it can be without the database.
pub(super) struct ImportPlan {
    server: NewServer,
    key: PrivateKey,
    peers: Vec<Peer>,
    ignored: Vec<String>,
}

pub(super) fn plan_import(input: ImportServer) -> Result<ImportPlan> {
    let parsed =
        WgQuick::parse(&input.config).map_err(|e| Error::invalid("config", e.to_string()))?;
    let WgQuick { interface, peers } = parsed.conf;
    let mut ignored = parsed.ignored;
    let key = interface
        .private_key
        .ok_or_else(|| Error::invalid("config", "[Interface] has no PrivateKey"))?;
    let (mut v4, mut v6) = (None, None);
    for a in interface.addresses {
        let slot = if matches!(a, ipnet::IpNet::V4(_)) {
            &mut v4
        } else {
            &mut v6
        };
        match slot {
            None => *slot = Some(a.to_string()),
            Some(_) => ignored.push(format!(
                "Address {a} (only the first of each family is used)"
            )),
        }
    }
    if v4.is_none() && v6.is_none() {
        return Err(Error::invalid("config", "[Interface] has no Address"));
    }
    v4.as_deref()
        .map(validate_server_ipv4)
        .transpose()
        .map_err(in_config)?;
    v6.as_deref()
        .map(validate_server_ipv6)
        .transpose()
        .map_err(in_config)?;
    let (dns, domains): (Vec<String>, Vec<String>) = interface
        .dns
        .into_iter()
        .partition(|d| d.parse::<IpAddr>().is_ok());
    ignored.extend(domains.iter().map(|d| format!("DNS search domain {d}")));
    validate_dns(dns.clone()).map_err(in_config)?;
    let mtu = interface.mtu.map(u32::from);
    mtu.map(validate_mtu).transpose().map_err(in_config)?;
    for (i, p) in peers.iter().enumerate() {
        if let Some(e) = &p.endpoint {
            ignored.push(format!(
                "Endpoint {e} of peer-{} (learned when it connects)",
                i + 1
            ));
        }
    }
    let server = NewServer {
        name: input.name,
        interface: input.interface,
        description: input.description,
        listen_port: input.listen_port.or(interface.listen_port),
        ipv4_address: v4,
        ipv6_address: v6,
        dns_servers: Some(dns),
        mtu,
        endpoint: input.endpoint,
        persistent_keepalive: None,
        is_active: Some(false),
    };
    Ok(ImportPlan {
        server,
        key,
        peers,
        ignored,
    })
}

/// A `[Peer]` as the fields of client number `i` (0-based) of `server`.
fn peer_fields(i: usize, peer: &Peer, server: &ServerRow) -> Result<ClientFields> {
    let (mut v4, mut v6, mut routed) = (None, None, Vec::new());
    for net in &peer.allowed_ips {
        let host = (net.prefix_len() == net.max_prefix_len()).then(|| net.addr());
        match host {
            Some(a @ IpAddr::V4(_))
                if v4.is_none()
                    && check_client_address("ipv4_address", a, server.ipv4_address).is_ok() =>
            {
                v4 = Some(a)
            }
            Some(a @ IpAddr::V6(_))
                if v6.is_none()
                    && check_client_address("ipv6_address", a, server.ipv6_address).is_ok() =>
            {
                v6 = Some(a)
            }
            _ => routed.push(net.trunc().to_string()),
        }
    }
    Ok(ClientFields {
        name: format!("peer-{}", i + 1),
        description: None,
        enabled: true,
        preshared_key: peer.preshared_key.as_ref().map(PresharedKey::to_base64),
        ipv4_address: v4,
        ipv6_address: v6,
        allowed_ips: default_allowed_ips(),
        dns_servers: Vec::new(),
        mtu: None,
        persistent_keepalive: peer.persistent_keepalive,
        routed_prefixes: validate_routed_prefixes(routed)?,
    })
}

pub(super) fn import_in(tx: &Connection, plan: ImportPlan, now: i64) -> Result<Imported> {
    let servers = q::all_servers(tx)?;
    let fields = plan.server.validate(&servers)?;
    let mut routed = q::all_routed(tx)?;
    check_server_conflicts(&fields, &servers, &routed)?;
    pool_rules::check_server_subnet(tx, fields.ipv6_address)
        .map_err(|e| e.refield("config", ""))?;
    let server = q::insert_server(
        tx,
        &fields,
        &plan.key.to_base64(),
        &plan.key.public_key().to_base64(),
        now,
    )?;
    let servers = q::all_servers(tx)?;
    let mut clients: Vec<ClientRow> = Vec::with_capacity(plan.peers.len());
    for (i, peer) in plan.peers.iter().enumerate() {
        let in_peer = |e: Error| e.refield("config", &format!("[Peer] {}: ", peer.public_key));
        let mut f = peer_fields(i, peer, &server).map_err(in_peer)?;
        let n = Neighbourhood {
            server: &server,
            siblings: &clients,
            servers: &servers,
            routed: &routed,
        };
        place_client(&mut f, None, &n, false).map_err(in_peer)?;
        pool_rules::check_client_routed(tx, None, &f.routed_prefixes).map_err(in_peer)?;
        let row = q::insert_client(tx, server.id, &f, &peer.public_key.to_base64(), None, now)
            .map_err(|e| in_peer(e.into()))?;
        if !row.routed_prefixes.is_empty() {
            routed.push(Routed {
                client_id: row.id,
                client_name: row.name.clone(),
                server_id: server.id,
                prefixes: row.routed_prefixes.clone(),
            });
        }
        clients.push(row);
    }
    Ok(Imported {
        server,
        clients,
        ignored: plan.ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::in_transaction;
    use crate::store::wireguard::ClientFilter;
    use crate::wireguard::model::fixtures::{kind_of, Kind};

    fn db() -> Connection {
        crate::store::test_db()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn net(s: &str) -> ipnet::IpNet {
        s.parse().expect("net")
    }

    fn strings(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|s| s.to_string()).collect())
    }

    fn new_server(name: &str, v4: Option<&str>, v6: Option<&str>) -> NewServer {
        NewServer {
            name: name.into(),
            ipv4_address: v4.map(Into::into),
            ipv6_address: v6.map(Into::into),
            ..Default::default()
        }
    }

    fn add_server(c: &mut Connection, input: NewServer) -> Result<ServerRow> {
        in_transaction(c, |tx| {
            create_server_in(tx, input, &PrivateKey::generate(), 1)
        })
    }

    fn new_client(server_id: i64, name: &str) -> NewClient {
        NewClient {
            server_id,
            name: name.into(),
            ..Default::default()
        }
    }

    fn add_client(c: &mut Connection, input: NewClient) -> Result<ClientRow> {
        let keys = ClientKeys::new(
            input.public_key.as_deref(),
            input.use_preshared_key.unwrap_or(false),
        )?;
        in_transaction(c, |tx| create_client_in(tx, input, keys, "x", 1))
    }

    fn update_client_in(
        c: &mut Connection,
        id: i64,
        changes: ClientChanges,
        psk: String,
        host: &str,
        now: i64,
    ) -> Result<(ClientRow, ClientRow)> {
        in_transaction(c, |tx| {
            super::update_client_in(tx, id, changes, psk, host, now)
        })
    }

    fn update_server_in(
        c: &mut Connection,
        id: i64,
        changes: ServerChanges,
        now: i64,
    ) -> Result<(ServerRow, ServerRow)> {
        in_transaction(c, |tx| super::update_server_in(tx, id, changes, now))
    }

    fn delete_server_in(
        c: &mut Connection,
        id: i64,
        force: bool,
    ) -> Result<(ServerRow, Vec<ClientRow>)> {
        in_transaction(c, |tx| super::delete_server_in(tx, id, force)).map(|d| (d.row, d.clients))
    }

    /// (kind, field, message) of an error.
    fn err<T: std::fmt::Debug>(r: Result<T>) -> (Kind, String, String) {
        let e = r.unwrap_err();
        let field = e.field().unwrap_or_default().to_string();
        (kind_of(&e), field, e.to_string())
    }

    fn conflict_on<T: std::fmt::Debug>(r: Result<T>) -> String {
        let (code, field, message) = err(r);
        assert_eq!(code, Kind::Conflict, "{message}");
        field
    }

    #[test]
    fn servers_get_defaults_and_unique_settings() {
        let c = &mut db();
        let a = add_server(
            c,
            new_server("Home", Some("10.0.0.1/24"), Some("fd00::1/64")),
        )
        .expect("a");
        assert_eq!(
            (a.interface.as_str(), a.listen_port, a.mtu),
            ("wg0", 51820, 1420)
        );
        let key = PrivateKey::from_base64(&a.private_key).expect("stored key");
        assert_eq!(key.public_key().to_base64(), a.public_key);
        let b = add_server(c, new_server("b", Some("10.1.0.1/24"), None)).expect("b");
        assert_eq!((b.interface.as_str(), b.listen_port), ("wg1", 51821));

        let with = |f: fn(&mut NewServer)| {
            let mut s = new_server("c", Some("10.2.0.1/24"), None);
            f(&mut s);
            s
        };
        let cases: [(NewServer, &str); 5] = [
            (with(|s| s.name = "HOME".into()), "name"),
            (with(|s| s.interface = Some("wg0".into())), "interface"),
            (with(|s| s.listen_port = Some(51821)), "listen_port"),
            (
                with(|s| s.ipv4_address = Some("10.0.0.129/25".into())),
                "ipv4_address",
            ),
            (
                with(|s| s.ipv6_address = Some("fd00::1:1/112".into())),
                "ipv6_address",
            ),
        ];
        for (input, field) in cases {
            assert_eq!(conflict_on(add_server(c, input)), field);
        }
        let (code, field, _) = err(add_server(c, new_server("d", None, None)));
        assert_eq!((code, field.as_str()), (Kind::Invalid, "ipv4_address"));
        let (rows, total) = q::list_servers(c, 1, 1).expect("list");
        assert_eq!((rows[0].0.name.as_str(), total), ("b", 2));
    }

    #[test]
    fn clients_are_allocated_and_checked() {
        let c = &mut db();
        let a = add_server(c, new_server("a", Some("10.0.0.1/24"), Some("fd00::1/64"))).expect("a");
        let b = add_server(c, new_server("b", Some("10.1.0.1/24"), None)).expect("b");
        let c1 = add_client(c, new_client(a.id, "c1")).expect("c1");
        assert_eq!(
            (c1.ipv4_address, c1.ipv6_address),
            (Some(ip("10.0.0.2")), Some(ip("fd00::2")))
        );
        assert!(c1.private_key.is_some() && c1.preshared_key.is_none());
        let c2 = add_client(
            c,
            NewClient {
                ipv4_address: Some("10.0.0.3/32".into()),
                use_preshared_key: Some(true),
                ..new_client(a.id, "c2")
            },
        )
        .expect("c2");
        assert_eq!(c2.ipv6_address, Some(ip("fd00::3")));
        assert!(c2.preshared_key.is_some());
        let c3 = add_client(c, new_client(a.id, "c3")).expect("c3");
        assert_eq!(c3.ipv4_address, Some(ip("10.0.0.4")));

        assert_eq!(conflict_on(add_client(c, new_client(a.id, "C1"))), "name");
        let taken = NewClient {
            ipv4_address: Some("10.0.0.2".into()),
            ..new_client(a.id, "x")
        };
        assert_eq!(conflict_on(add_client(c, taken)), "ipv4_address");
        let outside = NewClient {
            ipv4_address: Some("10.1.0.9".into()),
            ..new_client(a.id, "x")
        };
        let (code, field, message) = err(add_client(c, outside));
        assert_eq!((code, field.as_str()), (Kind::Invalid, "ipv4_address"));
        assert!(message.contains("outside the server's subnet 10.0.0.0/24"));
        let (code, field, _) = err(add_client(c, new_client(999, "x")));
        assert_eq!((code, field.as_str()), (Kind::Invalid, "server_id"));
        let no_v6 = NewClient {
            ipv6_address: Some("fd00::9".into()),
            ..new_client(b.id, "x")
        };
        assert_eq!(err(add_client(c, no_v6)).1, "ipv6_address");
        let on_b = add_client(c, new_client(b.id, "c1")).expect("names are per server");
        assert_eq!(
            (on_b.ipv4_address, on_b.ipv6_address),
            (Some(ip("10.1.0.2")), None)
        );

        let own = PrivateKey::generate().public_key().to_base64();
        let mine = add_client(
            c,
            NewClient {
                public_key: Some(own.clone()),
                routed_prefixes: strings(&["2001:db8:1::/48"]),
                ..new_client(a.id, "router")
            },
        )
        .expect("own key");
        assert_eq!(
            (mine.public_key.as_str(), mine.private_key.as_deref()),
            (own.as_str(), None)
        );
        let dup_key = NewClient {
            public_key: Some(own),
            ..new_client(b.id, "y")
        };
        assert_eq!(conflict_on(add_client(c, dup_key)), "public_key");
        for p in ["2001:db8:1:5::/64", "10.0.0.0/16", "10.1.0.0/25"] {
            let overlap = NewClient {
                routed_prefixes: strings(&[p]),
                ..new_client(b.id, "y")
            };
            assert_eq!(
                conflict_on(add_client(c, overlap)),
                "routed_prefixes",
                "{p}"
            );
        }

        let gone = delete_client_in(c, c1.id);
        assert_eq!(gone.id, c1.id);
        let again = add_client(c, new_client(a.id, "c4")).expect("c4");
        assert_eq!(
            again.ipv4_address,
            Some(ip("10.0.0.2")),
            "freed address is reused"
        );
    }

    fn delete_client_in(c: &mut Connection, id: i64) -> ClientRow {
        in_transaction(c, |tx| super::delete_client_in(tx, id))
            .expect("delete")
            .row
    }

    #[test]
    fn exhausted_subnet_is_a_conflict() {
        let c = &mut db();
        let s = add_server(c, new_server("tiny", Some("10.9.0.1/30"), None)).expect("s");
        add_client(c, new_client(s.id, "only")).expect("one host left");
        let (code, field, message) = err(add_client(c, new_client(s.id, "more")));
        assert_eq!(
            (code, field.as_str(), message.as_str()),
            (
                Kind::Conflict,
                "ipv4_address",
                "no free IPv4 address left in 10.9.0.0/30"
            )
        );
    }

    #[test]
    fn updating_clients() {
        let c = &mut db();
        let s = add_server(c, new_server("a", Some("10.0.0.1/24"), Some("fd00::1/64"))).expect("s");
        let one = add_client(c, new_client(s.id, "one")).expect("one");
        let two = add_client(c, new_client(s.id, "two")).expect("two");
        let changes: ClientChanges = serde_json::from_slice(
            br#"{"ipv4_address":"10.0.0.50","ipv6_address":null,"use_preshared_key":true,"enabled":false}"#,
        )
        .expect("json");
        let (old, new) =
            update_client_in(c, one.id, changes, "psk".into(), "x", 5).expect("update");
        assert_eq!(old, one);
        assert_eq!(
            (
                new.ipv4_address,
                new.ipv6_address,
                new.enabled,
                new.updated_at
            ),
            (Some(ip("10.0.0.50")), None, false, 5)
        );
        assert_eq!(new.preshared_key.as_deref(), Some("psk"));
        assert_eq!(new.private_key, one.private_key, "keys stay");
        let same = ClientChanges {
            ipv4_address: Some(Some("10.0.0.50".into())),
            ..Default::default()
        };
        update_client_in(c, one.id, same, "x".into(), "x", 6).expect("its own address is fine");
        let steal = ClientChanges {
            ipv4_address: Some(Some("10.0.0.50".into())),
            ..Default::default()
        };
        assert_eq!(
            conflict_on(update_client_in(c, two.id, steal, "x".into(), "x", 6)),
            "ipv4_address"
        );
        let rename = ClientChanges {
            name: Some("ONE".into()),
            ..Default::default()
        };
        assert_eq!(
            conflict_on(update_client_in(c, two.id, rename, "x".into(), "x", 6)),
            "name"
        );
        let missing = update_client_in(c, 999, ClientChanges::default(), "x".into(), "x", 6);
        assert_eq!(err(missing).0, Kind::NotFound);
    }

    #[test]
    fn updating_servers_keeps_clients_valid() {
        let c = &mut db();
        let s = add_server(c, new_server("a", Some("10.0.0.1/24"), Some("fd00::1/64"))).expect("s");
        add_server(c, new_server("b", Some("10.1.0.1/24"), None)).expect("b");
        let cl = add_client(c, new_client(s.id, "c")).expect("c");
        let grow = ServerChanges {
            ipv4_address: Some(Some("10.0.0.1/23".into())),
            listen_port: Some(40000),
            ..Default::default()
        };
        let (old, new) = update_server_in(c, s.id, grow, 9).expect("grow");
        assert_eq!((old.listen_port, new.listen_port), (51820, 40000));
        assert_eq!(new.ipv4_address, Some(net("10.0.0.1/23")));
        assert_eq!(new.private_key, old.private_key);
        let onto_client = ServerChanges {
            ipv4_address: Some(Some("10.0.0.2/24".into())),
            ..Default::default()
        };
        assert_eq!(
            conflict_on(update_server_in(c, s.id, onto_client, 9)),
            "ipv4_address"
        );
        let drop_v6 = ServerChanges {
            ipv6_address: Some(None),
            ..Default::default()
        };
        assert_eq!(
            conflict_on(update_server_in(c, s.id, drop_v6, 9)),
            "ipv6_address"
        );
        let overlap = ServerChanges {
            ipv4_address: Some(Some("10.0.0.1/15".into())),
            ..Default::default()
        };
        assert_eq!(
            conflict_on(update_server_in(c, s.id, overlap, 9)),
            "ipv4_address"
        );
        let rename = ServerChanges {
            name: Some("B".into()),
            ..Default::default()
        };
        assert_eq!(conflict_on(update_server_in(c, s.id, rename, 9)), "name");
        assert_eq!(client_or_404(c, cl.id).expect("c"), cl, "client untouched");
    }

    #[test]
    fn deleting_a_server_with_clients_needs_force() {
        let c = &mut db();
        let s = add_server(c, new_server("a", Some("10.0.0.1/24"), None)).expect("s");
        let c1 = add_client(c, new_client(s.id, "c1")).expect("c1");
        let c2 = add_client(c, new_client(s.id, "c2")).expect("c2");
        let (code, field, message) = err(delete_server_in(c, s.id, false));
        assert_eq!(
            (code, field.as_str(), message.as_str()),
            (
                Kind::Conflict,
                "force",
                "server has 2 clients; use ?force=true"
            )
        );
        let (server, clients) = delete_server_in(c, s.id, true).expect("forced");
        assert_eq!((server.id, clients), (s.id, vec![c1.clone(), c2]));
        assert!(q::get_client(c, c1.id).expect("get").is_none());
        assert_eq!(err(delete_server_in(c, s.id, true)).0, Kind::NotFound);
        let empty = add_server(c, new_server("e", Some("10.0.0.1/24"), None)).expect("e");
        assert!(delete_server_in(c, empty.id, false)
            .expect("no clients")
            .1
            .is_empty());
    }

    const WG0: &str = "\
# /etc/wireguard/wg0.conf on the old router
[Interface]
PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=
Address = 10.8.0.1/24, fd00:8::1/64
ListenPort = 51830
DNS = 10.8.0.1, fd00:8::1, home.lan
MTU = 1400
PostUp = iptables -A FORWARD -i %i -j ACCEPT

[Peer]
# laptop
PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
PresharedKey = /UwcSPg38hW/D9Y3tcS1FOV0K1wuURMbS0sesJEP5ak=
AllowedIPs = 10.8.0.2/32, fd00:8::2/128
PersistentKeepalive = 25

[Peer]
# office gateway with its own IPv6 prefix
PublicKey = TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=
Endpoint = 198.51.100.7:51820
AllowedIPs = 10.8.0.3/32, fd00:8::3/128, 2001:db8:77::/48
";

    fn import(name: &str, config: &str) -> ImportServer {
        ImportServer {
            name: name.into(),
            config: config.into(),
            endpoint: Some("vpn.example.com".into()),
            ..Default::default()
        }
    }

    fn import_into(c: &mut Connection, input: ImportServer) -> Result<Imported> {
        let plan = plan_import(input)?;
        in_transaction(c, |tx| import_in(tx, plan, 3))
    }

    #[test]
    fn imports_a_wg_quick_server() {
        let c = &mut db();
        let got = import_into(c, import("home", WG0)).expect("import");
        let s = &got.server;
        assert_eq!(
            (
                s.ipv4_address,
                s.ipv6_address,
                s.listen_port,
                s.mtu,
                s.is_active
            ),
            (
                Some(net("10.8.0.1/24")),
                Some(net("fd00:8::1/64")),
                51830,
                1400,
                false
            )
        );
        assert_eq!(
            s.private_key,
            "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
        );
        assert_eq!(
            s.public_key,
            PrivateKey::from_base64(&s.private_key)
                .expect("key")
                .public_key()
                .to_base64()
        );
        assert_eq!(s.dns_servers, vec![ip("10.8.0.1"), ip("fd00:8::1")]);
        assert_eq!(s.endpoint.as_deref(), Some("vpn.example.com"));
        let [laptop, office] = &got.clients[..] else {
            panic!("two clients: {:?}", got.clients);
        };
        assert_eq!(laptop.name, "peer-1");
        assert_eq!(
            laptop.preshared_key.as_deref(),
            Some("/UwcSPg38hW/D9Y3tcS1FOV0K1wuURMbS0sesJEP5ak=")
        );
        assert_eq!(
            (
                laptop.ipv4_address,
                laptop.ipv6_address,
                laptop.persistent_keepalive
            ),
            (Some(ip("10.8.0.2")), Some(ip("fd00:8::2")), Some(25))
        );
        assert!(laptop.routed_prefixes.is_empty() && laptop.private_key.is_none());
        assert_eq!(office.name, "peer-2");
        assert_eq!(office.preshared_key, None);
        assert_eq!(
            (office.ipv4_address, office.ipv6_address),
            (Some(ip("10.8.0.3")), Some(ip("fd00:8::3")))
        );
        assert_eq!(office.routed_prefixes, vec![net("2001:db8:77::/48")]);
        assert_eq!(
            peer_allowed_ips(office),
            vec![
                net("10.8.0.3/32"),
                net("fd00:8::3/128"),
                net("2001:db8:77::/48")
            ]
        );
        let ignored = got.ignored.join("; ");
        for needle in ["PostUp", "home.lan", "198.51.100.7:51820"] {
            assert!(ignored.contains(needle), "{ignored}");
        }
        assert_eq!(q::clients_of_server(c, s.id).expect("stored"), got.clients);
        // Imported clients bring no private key: their config cannot be rendered.
        assert_eq!(err(client_config(s, laptop, "x")).0, Kind::Conflict);
    }

    #[test]
    fn import_is_all_or_nothing() {
        let c = &mut db();
        let other = add_server(c, new_server("other", Some("10.20.0.1/24"), None)).expect("s");
        add_client(
            c,
            NewClient {
                routed_prefixes: strings(&["2001:db8:77:100::/56"]),
                ..new_client(other.id, "site")
            },
        )
        .expect("site");
        let (code, field, message) = err(import_into(c, import("home", WG0)));
        assert_eq!((code, field.as_str()), (Kind::Conflict, "config"));
        assert!(message.contains("2001:db8:77::/48"), "{message}");
        assert_eq!(
            q::all_servers(c).expect("servers").len(),
            1,
            "nothing stored"
        );
        assert_eq!(
            q::client_page(c, &ClientFilter::default(), 10, 0)
                .expect("l")
                .1,
            1
        );

        let (code, field, message) = err(import_into(
            c,
            import("x", "[Interface]\nAdress = 10.0.0.1/24"),
        ));
        assert_eq!((code, field.as_str()), (Kind::Invalid, "config"));
        assert!(message.starts_with("line 2:"), "{message}");
        let no_key = import("x", "[Interface]\nAddress = 10.0.0.1/24");
        assert_eq!(err(import_into(c, no_key)).1, "config");
        let bad_subnet = import(
            "x",
            "[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\nAddress = 10.0.0.0/24",
        );
        assert_eq!(err(import_into(c, bad_subnet)).1, "config");
        let overlapping = import(
            "x",
            "[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\nAddress = 10.20.0.9/16",
        );
        assert_eq!(conflict_on(import_into(c, overlapping)), "ipv4_address");
    }
}
