//! WireGuard servers and clients as stored: the desired state the running devices are
//! built from. Validation, conflict rules, address allocation, views and client configs
//! are pure ([`model`]); each operation here is one closure on the database thread, so a
//! rule check, an allocation and the write they guard are atomic (the thread serialises
//! all writes: two concurrent creates cannot get the same address).
//!
//! Handlers stay thin: parse the body into [`NewServer`]/[`ServerChanges`]/[`NewClient`]/
//! [`ClientChanges`]/[`ImportServer`], call one function here, render [`ServerView`] or
//! [`ClientView`] with the engine's live state. Operations that change what a running
//! device should do return what the caller needs to apply it (old and new rows, deleted
//! rows with their clients).

pub mod conf;
pub mod delegated;
pub mod device;
pub mod keys;
pub mod live;
pub mod model;
pub mod pool_rules;
pub mod qr;

pub use crate::store::wireguard::{
    ClientFields, ClientFilter, ClientRow, LastSeen, ServerFields, ServerRow,
};
pub use model::*;

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::input::Page;

use crate::ipam::Pools;
use crate::store::wireguard::{self as q, Routed};
use crate::store::StoreError;
use crate::wireguard::conf::{Peer, WgQuick};
use crate::wireguard::keys::{PresharedKey, PrivateKey};
use rusqlite::{Connection, Transaction};
use std::net::IpAddr;

/// Runs `f` on the database thread; its domain errors pass through unchanged.
async fn run<R, F>(app: &App, f: F) -> ApiResult<R>
where
    R: Send + 'static,
    F: FnOnce(&mut Connection) -> ApiResult<R> + Send + 'static,
{
    app.store.call(move |c| Ok(f(c))).await?
}

fn begin(c: &mut Connection) -> ApiResult<Transaction<'_>> {
    c.transaction().map_err(|e| StoreError::from(e).into())
}

fn commit(tx: Transaction<'_>) -> ApiResult<()> {
    tx.commit().map_err(|e| StoreError::from(e).into())
}

fn server_or_404(c: &Connection, id: i64) -> ApiResult<ServerRow> {
    Ok(q::get_server(c, id)?.ok_or(StoreError::NotFound("server"))?)
}

fn client_or_404(c: &Connection, id: i64) -> ApiResult<ClientRow> {
    Ok(q::get_client(c, id)?.ok_or(StoreError::NotFound("client"))?)
}

// ---- servers ----

pub async fn create_server(app: &App, input: NewServer) -> ApiResult<ServerRow> {
    let key = PrivateKey::generate();
    let now = crate::time::now();
    run(app, move |c| create_server_in(c, input, &key, now)).await
}

fn create_server_in(
    c: &mut Connection,
    input: NewServer,
    key: &PrivateKey,
    now: i64,
) -> ApiResult<ServerRow> {
    let tx = begin(c)?;
    let servers = q::all_servers(&tx)?;
    let fields = input.validate(&servers)?;
    check_server_conflicts(&fields, &servers, &q::all_routed(&tx)?)?;
    pool_rules::check_server_subnet(&tx, fields.ipv6_address)?;
    let row = q::insert_server(
        &tx,
        &fields,
        &key.to_base64(),
        &key.public_key().to_base64(),
        now,
    )?;
    commit(tx)?;
    Ok(row)
}

pub async fn get_server(app: &App, id: i64) -> ApiResult<ServerRow> {
    run(app, move |c| server_or_404(c, id)).await
}

/// The server and its number of clients (what [`ServerView::new`] needs).
pub async fn server_summary(app: &App, id: i64) -> ApiResult<(ServerRow, u64)> {
    run(app, move |c| {
        let s = server_or_404(c, id)?;
        Ok((s, q::count_clients(c, id)?))
    })
    .await
}

/// One page of servers, each with its number of clients, and the total.
pub async fn list_servers(app: &App, page: Page) -> ApiResult<(Vec<(ServerRow, u64)>, u64)> {
    Ok(app
        .store
        .call(move |c| q::list_servers(c, page.size, page.offset()))
        .await?)
}

/// Returns the server before and after, so the caller can tell what the running device
/// must change. A subnet change must keep every client's address valid.
pub async fn update_server(
    app: &App,
    id: i64,
    changes: ServerChanges,
) -> ApiResult<(ServerRow, ServerRow)> {
    let now = crate::time::now();
    run(app, move |c| update_server_in(c, id, changes, now)).await
}

fn update_server_in(
    c: &mut Connection,
    id: i64,
    changes: ServerChanges,
    now: i64,
) -> ApiResult<(ServerRow, ServerRow)> {
    let tx = begin(c)?;
    let current = server_or_404(&tx, id)?;
    let fields = changes.apply(&current)?;
    let others: Vec<ServerRow> = q::all_servers(&tx)?
        .into_iter()
        .filter(|s| s.id != id)
        .collect();
    check_server_conflicts(&fields, &others, &q::all_routed(&tx)?)?;
    pool_rules::check_server_subnet(&tx, fields.ipv6_address)?;
    check_clients_fit(&fields, &q::clients_of_server(&tx, id)?)?;
    let new = q::update_server(&tx, id, &fields, now)?;
    commit(tx)?;
    Ok((current, new))
}

/// Deletes a server and (with `force`) its clients; returns both so the caller can tear
/// the device down. Without `force` a server with clients is a 409.
pub async fn delete_server(
    app: &App,
    id: i64,
    force: bool,
) -> ApiResult<(ServerRow, Vec<ClientRow>)> {
    let pools = app.pools.clone();
    run(app, move |c| delete_server_in(c, id, force, &pools))
        .await
        .inspect(|_| app.bgp.changed())
}

/// The clients' IPv6 prefix allocations are released with them, in the same closure, so
/// the pools' allocators stay in step with the tables.
fn delete_server_in(
    c: &mut Connection,
    id: i64,
    force: bool,
    pools: &Pools,
) -> ApiResult<(ServerRow, Vec<ClientRow>)> {
    let tx = begin(c)?;
    let server = server_or_404(&tx, id)?;
    let clients = q::clients_of_server(&tx, id)?;
    if !clients.is_empty() && !force {
        return Err(ApiError::conflict(
            "force",
            format!("server has {} clients; use ?force=true", clients.len()),
        ));
    }
    let ids: Vec<i64> = clients.iter().map(|c| c.id).collect();
    let freed = crate::ipam::release_for_clients(&tx, &ids)?;
    q::delete_server(&tx, id)?;
    commit(tx)?;
    pools.apply(freed);
    Ok((server, clients))
}

/// Records the desired running state (started again after a restart when `true`).
pub async fn set_server_active(app: &App, id: i64, active: bool) -> ApiResult<ServerRow> {
    let now = crate::time::now();
    Ok(app
        .store
        .call(move |c| q::set_server_active(c, id, active, now))
        .await?)
}

/// Servers whose desired state is running, for start-up.
pub async fn servers_to_start(app: &App) -> ApiResult<Vec<ServerRow>> {
    Ok(app.store.call(|c| q::active_servers(c)).await?)
}

/// The clients of a server (404 if there is no such server).
pub async fn clients_of_server(app: &App, server_id: i64) -> ApiResult<Vec<ClientRow>> {
    Ok(server_with_clients(app, server_id).await?.1)
}

/// Where the clients of `server_id` were last seen, by public key.
pub async fn last_seen_of_server(
    app: &App,
    server_id: i64,
) -> ApiResult<std::collections::HashMap<String, LastSeen>> {
    let rows = app
        .store
        .call(move |c| q::last_seen_of_server(c, server_id))
        .await?;
    Ok(rows
        .into_iter()
        .map(|s| (s.public_key.clone(), s))
        .collect())
}

/// Where the peer with `public_key` was last seen, if ever.
pub async fn last_seen(app: &App, public_key: &str) -> ApiResult<Option<LastSeen>> {
    let key = public_key.to_string();
    Ok(app.store.call(move |c| q::last_seen(c, &key)).await?)
}

/// Records where peers were last seen (see [`live`]).
pub async fn save_last_seen(app: &App, seen: Vec<LastSeen>) -> ApiResult<()> {
    Ok(app.store.call(move |c| q::save_last_seen(c, &seen)).await?)
}

/// A server and its clients, read together (what starting a device needs).
pub async fn server_with_clients(app: &App, id: i64) -> ApiResult<(ServerRow, Vec<ClientRow>)> {
    run(app, move |c| {
        let s = server_or_404(c, id)?;
        Ok((s, q::clients_of_server(c, id)?))
    })
    .await
}

// ---- clients ----

/// Creates a client, allocating the lowest free address of each family its server has
/// unless given. The returned row carries the private key (when generated here).
/// `fallback_host` is where its config points when the server names no endpoint (see
/// [`advertised_endpoint`]): a config that would not fit a QR code is refused.
pub async fn create_client(
    app: &App,
    input: NewClient,
    fallback_host: &str,
) -> ApiResult<ClientRow> {
    let keys = ClientKeys::new(
        input.public_key.as_deref(),
        input.use_preshared_key.unwrap_or(false),
    )?;
    let now = crate::time::now();
    let host = fallback_host.to_string();
    run(app, move |c| create_client_in(c, input, keys, &host, now)).await
}

/// 422 when the config of `new` would not fit a QR code, unless it is an update that does
/// not make the config longer (a client may already be past the limit because its server's
/// DNS or endpoint grew; renaming or disabling it must still work). `set`: the fields the
/// request set, one of which is named. Clients without a stored private key have no config.
fn check_qr(
    server: &ServerRow,
    old: Option<&ClientRow>,
    new: &ClientRow,
    fallback_host: &str,
    set: &[&str],
) -> ApiResult<()> {
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

fn create_client_in(
    c: &mut Connection,
    input: NewClient,
    keys: ClientKeys,
    fallback_host: &str,
    now: i64,
) -> ApiResult<ClientRow> {
    let set = config_fields(input.allowed_ips.is_some(), input.dns_servers.is_some());
    let tx = begin(c)?;
    let server_id = input.server_id;
    let server = q::get_server(&tx, server_id)?.ok_or_else(|| {
        ApiError::validation(
            "server_id",
            format!("there is no server with id {server_id}"),
        )
    })?;
    let mut fields = input.validate(&server)?;
    fields.preshared_key = keys.preshared_key;
    let siblings = q::clients_of_server(&tx, server_id)?;
    let servers = q::all_servers(&tx)?;
    let routed = q::all_routed(&tx)?;
    let n = Neighbourhood {
        server: &server,
        siblings: &siblings,
        servers: &servers,
        routed: &routed,
    };
    place_client(&mut fields, None, &n, true)?;
    pool_rules::check_client_routed(&tx, None, &fields.routed_prefixes)?;
    let row = q::insert_client(
        &tx,
        server_id,
        &fields,
        &keys.public_key,
        keys.private_key.as_deref(),
        now,
    )?;
    check_qr(&server, None, &row, fallback_host, &set)?;
    commit(tx)?;
    Ok(row)
}

pub async fn get_client(app: &App, id: i64) -> ApiResult<ClientRow> {
    run(app, move |c| client_or_404(c, id)).await
}

/// A client and its server, read together (what rendering its config needs).
pub async fn client_with_server(app: &App, id: i64) -> ApiResult<(ServerRow, ClientRow)> {
    run(app, move |c| {
        let client = client_or_404(c, id)?;
        Ok((server_or_404(c, client.server_id)?, client))
    })
    .await
}

/// One page of clients matching `filter`, and the total.
pub async fn list_clients(
    app: &App,
    filter: ClientFilter,
    page: Page,
) -> ApiResult<(Vec<ClientRow>, u64)> {
    Ok(app
        .store
        .call(move |c| q::list_clients(c, &filter, page.size, page.offset()))
        .await?)
}

/// Returns the client before and after, so the caller can update the live peer.
/// `fallback_host` as for [`create_client`].
pub async fn update_client(
    app: &App,
    id: i64,
    changes: ClientChanges,
    fallback_host: &str,
) -> ApiResult<(ClientRow, ClientRow)> {
    let psk = PresharedKey::generate().to_base64();
    let now = crate::time::now();
    let host = fallback_host.to_string();
    run(app, move |c| {
        update_client_in(c, id, changes, psk, &host, now)
    })
    .await
}

fn update_client_in(
    c: &mut Connection,
    id: i64,
    changes: ClientChanges,
    new_psk: String,
    fallback_host: &str,
    now: i64,
) -> ApiResult<(ClientRow, ClientRow)> {
    let set = config_fields(changes.allowed_ips.is_some(), changes.dns_servers.is_some());
    let tx = begin(c)?;
    let current = client_or_404(&tx, id)?;
    let server = server_or_404(&tx, current.server_id)?;
    let mut fields = changes.apply(&current, &server, new_psk)?;
    let siblings: Vec<ClientRow> = q::clients_of_server(&tx, server.id)?
        .into_iter()
        .filter(|c| c.id != id)
        .collect();
    let servers = q::all_servers(&tx)?;
    let routed = q::all_routed(&tx)?;
    let n = Neighbourhood {
        server: &server,
        siblings: &siblings,
        servers: &servers,
        routed: &routed,
    };
    place_client(&mut fields, Some(id), &n, false)?;
    pool_rules::check_client_routed(&tx, Some(id), &fields.routed_prefixes)?;
    let new = q::update_client(&tx, id, &fields, now)?;
    check_qr(&server, Some(&current), &new, fallback_host, &set)?;
    commit(tx)?;
    Ok((current, new))
}

/// Returns the deleted row so the caller can remove the live peer. The client's IPv6
/// prefix allocations are released with it (tables and allocators, in this one closure).
pub async fn delete_client(app: &App, id: i64) -> ApiResult<ClientRow> {
    let pools = app.pools.clone();
    run(app, move |c| {
        let tx = begin(c)?;
        let client = client_or_404(&tx, id)?;
        let freed = crate::ipam::release_for_clients(&tx, &[id])?;
        q::delete_client(&tx, id)?;
        commit(tx)?;
        pools.apply(freed);
        Ok(client)
    })
    .await
    .inspect(|_| app.bgp.changed())
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
struct ImportPlan {
    server: NewServer,
    key: PrivateKey,
    peers: Vec<Peer>,
    ignored: Vec<String>,
}

/// Takes over an existing wg-quick server config: the server from `[Interface]` (its
/// private key kept), one client per `[Peer]` named `peer-N` (wg-quick files carry no
/// names). A peer's first `/32` inside the server's IPv4 subnet and first `/128` inside
/// its IPv6 subnet become its addresses, its other AllowedIPs its routed prefixes. All or
/// nothing; the server is stored inactive.
pub async fn import_server(app: &App, input: ImportServer) -> ApiResult<Imported> {
    let plan = plan_import(input)?;
    let now = crate::time::now();
    run(app, move |c| import_in(c, plan, now)).await
}

/// `e` re-attributed to `field`, its message prefixed.
/// Errors without a field (internal ones) pass unchanged.
fn refield(mut e: ApiError, field: &str, prefix: &str) -> ApiError {
    if let Some(d) = e.details.as_mut() {
        d.field = field.to_string();
        d.message = format!("{prefix}{}", d.message);
        e.message = format!("{prefix}{}", e.message);
    }
    e
}

fn in_config(e: ApiError) -> ApiError {
    refield(e, "config", "[Interface]: ")
}

fn plan_import(input: ImportServer) -> ApiResult<ImportPlan> {
    let parsed =
        WgQuick::parse(&input.config).map_err(|e| ApiError::validation("config", e.to_string()))?;
    let WgQuick { interface, peers } = parsed.conf;
    let mut ignored = parsed.ignored;
    let key = interface
        .private_key
        .ok_or_else(|| ApiError::validation("config", "[Interface] has no PrivateKey"))?;
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
        return Err(ApiError::validation("config", "[Interface] has no Address"));
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
fn peer_fields(i: usize, peer: &Peer, server: &ServerRow) -> ApiResult<ClientFields> {
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

fn import_in(c: &mut Connection, plan: ImportPlan, now: i64) -> ApiResult<Imported> {
    let tx = begin(c)?;
    let servers = q::all_servers(&tx)?;
    let fields = plan.server.validate(&servers)?;
    let mut routed = q::all_routed(&tx)?;
    check_server_conflicts(&fields, &servers, &routed)?;
    pool_rules::check_server_subnet(&tx, fields.ipv6_address)
        .map_err(|e| refield(e, "config", ""))?;
    let server = q::insert_server(
        &tx,
        &fields,
        &plan.key.to_base64(),
        &plan.key.public_key().to_base64(),
        now,
    )?;
    let servers = q::all_servers(&tx)?;
    let mut clients: Vec<ClientRow> = Vec::with_capacity(plan.peers.len());
    for (i, peer) in plan.peers.iter().enumerate() {
        let in_peer = |e: ApiError| refield(e, "config", &format!("[Peer] {}: ", peer.public_key));
        let mut f = peer_fields(i, peer, &server).map_err(in_peer)?;
        let n = Neighbourhood {
            server: &server,
            siblings: &clients,
            servers: &servers,
            routed: &routed,
        };
        place_client(&mut f, None, &n, false).map_err(in_peer)?;
        pool_rules::check_client_routed(&tx, None, &f.routed_prefixes).map_err(in_peer)?;
        let row = q::insert_client(&tx, server.id, &f, &peer.public_key.to_base64(), None, now)
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
    commit(tx)?;
    Ok(Imported {
        server,
        clients,
        ignored: plan.ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use std::collections::HashSet;

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

    fn add_server(c: &mut Connection, input: NewServer) -> ApiResult<ServerRow> {
        create_server_in(c, input, &PrivateKey::generate(), 1)
    }

    fn new_client(server_id: i64, name: &str) -> NewClient {
        NewClient {
            server_id,
            name: name.into(),
            ..Default::default()
        }
    }

    fn add_client(c: &mut Connection, input: NewClient) -> ApiResult<ClientRow> {
        let keys = ClientKeys::new(
            input.public_key.as_deref(),
            input.use_preshared_key.unwrap_or(false),
        )?;
        create_client_in(c, input, keys, "x", 1)
    }

    /// (code, details.field, message) of an error.
    fn err<T: std::fmt::Debug>(r: ApiResult<T>) -> (ErrorCode, String, String) {
        let e = r.unwrap_err();
        let field = e.details.map(|d| d.field).unwrap_or_default();
        (e.code, field, e.message)
    }

    fn conflict_on<T: std::fmt::Debug>(r: ApiResult<T>) -> String {
        let (code, field, message) = err(r);
        assert_eq!(code, ErrorCode::Conflict, "{message}");
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
        assert_eq!(
            (code, field.as_str()),
            (ErrorCode::Validation, "ipv4_address")
        );
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
        assert_eq!(
            (code, field.as_str()),
            (ErrorCode::Validation, "ipv4_address")
        );
        assert!(message.contains("outside the server's subnet 10.0.0.0/24"));
        let (code, field, _) = err(add_client(c, new_client(999, "x")));
        assert_eq!((code, field.as_str()), (ErrorCode::Validation, "server_id"));
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
        let row = client_or_404(c, id).expect("exists");
        q::delete_client(c, id).expect("delete");
        row
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
                ErrorCode::Conflict,
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
        let changes: ClientChanges = crate::api::request::parse_json(
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
        assert_eq!(err(missing).0, ErrorCode::NotFound);
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
        let (code, field, message) = err(delete_server_in(c, s.id, false, &Pools::default()));
        assert_eq!(
            (code, field.as_str(), message.as_str()),
            (
                ErrorCode::Conflict,
                "force",
                "server has 2 clients; use ?force=true"
            )
        );
        let (server, clients) = delete_server_in(c, s.id, true, &Pools::default()).expect("forced");
        assert_eq!((server.id, clients), (s.id, vec![c1.clone(), c2]));
        assert!(q::get_client(c, c1.id).expect("get").is_none());
        assert_eq!(
            err(delete_server_in(c, s.id, true, &Pools::default())).0,
            ErrorCode::NotFound
        );
        let empty = add_server(c, new_server("e", Some("10.0.0.1/24"), None)).expect("e");
        assert!(delete_server_in(c, empty.id, false, &Pools::default())
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

    fn import_into(c: &mut Connection, input: ImportServer) -> ApiResult<Imported> {
        import_in(c, plan_import(input)?, 3)
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
        assert_eq!(err(client_config(s, laptop, "x")).0, ErrorCode::Conflict);
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
        assert_eq!((code, field.as_str()), (ErrorCode::Conflict, "config"));
        assert!(message.contains("2001:db8:77::/48"), "{message}");
        assert_eq!(
            q::all_servers(c).expect("servers").len(),
            1,
            "nothing stored"
        );
        assert_eq!(
            q::list_clients(c, &ClientFilter::default(), 10, 0)
                .expect("l")
                .1,
            1
        );

        let (code, field, message) = err(import_into(
            c,
            import("x", "[Interface]\nAdress = 10.0.0.1/24"),
        ));
        assert_eq!((code, field.as_str()), (ErrorCode::Validation, "config"));
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_creates_get_distinct_addresses() {
        let dir = tempfile::tempdir().expect("tmp");
        let config = crate::config::Config {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        let app = std::sync::Arc::new(App::open(config).await.expect("app"));
        let server = create_server(
            &app,
            new_server("s", Some("10.0.0.1/24"), Some("fd00::1/64")),
        )
        .await
        .expect("server");
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let app = app.clone();
                tokio::spawn(async move {
                    create_client(&app, new_client(server.id, &format!("c{i}")), "x").await
                })
            })
            .collect();
        let (mut v4, mut v6) = (HashSet::new(), HashSet::new());
        for t in tasks {
            let c = t.await.expect("join").expect("created");
            assert!(v4.insert(c.ipv4_address.expect("v4")), "{c:?}");
            assert!(v6.insert(c.ipv6_address.expect("v6")), "{c:?}");
        }
        let want: HashSet<IpAddr> = (2..52).map(|i| ip(&format!("10.0.0.{i}"))).collect();
        assert_eq!(v4, want, "the 50 lowest hosts, each once");
        assert_eq!(
            clients_of_server(&app, server.id)
                .await
                .expect("list")
                .len(),
            50
        );
        let (rows, total) = list_servers(&app, Page { page: 1, size: 20 })
            .await
            .expect("list");
        assert_eq!((rows[0].1, total), (50, 1));
        app.store.close().await;
    }
}
