//! Queries on `wg_servers` and `wg_clients`. Addresses are stored as canonical text and
//! lists as JSON arrays; rows come back parsed ([`IpNet`], [`IpAddr`]). Validation and the
//! cross-row rules (subnet overlap, address allocation) live in `crate::wireguard`.

use super::table::{self, bad, columns, json_list, parsed_list, parsed_opt, set, text, Set};
use super::{StoreError, StoreResult};
use ipnet::IpNet;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, PartialEq)]
pub struct ServerRow {
    pub id: i64,
    pub name: String,
    pub interface: String,
    pub description: Option<String>,
    pub listen_port: u16,
    /// The server's own address with its subnet's prefix length, e.g. `10.0.0.1/24`.
    pub ipv4_address: Option<IpNet>,
    pub ipv6_address: Option<IpNet>,
    pub dns_servers: Vec<IpAddr>,
    pub mtu: u16,
    /// `host` or `host:port` advertised to clients.
    pub endpoint: Option<String>,
    /// Default for clients that set none; 0 = off.
    pub persistent_keepalive: Option<u16>,
    /// Base64; never leaves the device through the API.
    pub private_key: String,
    pub public_key: String,
    /// Desired running state (survives restarts).
    pub is_active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a create or an update of a server writes (updates merge first). Keys are written
/// once, on insert.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerFields {
    pub name: String,
    pub interface: String,
    pub description: Option<String>,
    pub listen_port: u16,
    pub ipv4_address: Option<IpNet>,
    pub ipv6_address: Option<IpNet>,
    pub dns_servers: Vec<IpAddr>,
    pub mtu: u16,
    pub endpoint: Option<String>,
    pub persistent_keepalive: Option<u16>,
    pub is_active: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientRow {
    pub id: i64,
    pub server_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub public_key: String,
    /// `None` when the client brought its own key or was imported.
    pub private_key: Option<String>,
    pub preshared_key: Option<String>,
    pub ipv4_address: Option<IpAddr>,
    pub ipv6_address: Option<IpAddr>,
    /// Routed by the client into the tunnel (its config's `AllowedIPs`).
    pub allowed_ips: Vec<IpNet>,
    /// Empty: the server's.
    pub dns_servers: Vec<IpAddr>,
    /// `None`: the server's.
    pub mtu: Option<u16>,
    /// `None`: the server's default; 0 = off.
    pub persistent_keepalive: Option<u16>,
    /// Canonical prefixes the server routes to this client besides its addresses.
    pub routed_prefixes: Vec<IpNet>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a create or an update of a client writes. The public and private key are written
/// once, on insert; the preshared key may change.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFields {
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub preshared_key: Option<String>,
    pub ipv4_address: Option<IpAddr>,
    pub ipv6_address: Option<IpAddr>,
    pub allowed_ips: Vec<IpNet>,
    pub dns_servers: Vec<IpAddr>,
    pub mtu: Option<u16>,
    pub persistent_keepalive: Option<u16>,
    pub routed_prefixes: Vec<IpNet>,
}

#[derive(Debug, Default, Clone)]
pub struct ClientFilter {
    pub server_id: Option<i64>,
    pub enabled: Option<bool>,
    /// Case-insensitive substring of name, description, public key or address.
    pub search: Option<String>,
}

/// One client's routed prefixes, for overlap checks across all servers.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub client_id: i64,
    pub client_name: String,
    pub server_id: i64,
    pub prefixes: Vec<IpNet>,
}

// ---- row mapping ----

columns! { server_col: id, name, interface, description, listen_port, ipv4_address, ipv6_address,
dns_servers, mtu, endpoint, persistent_keepalive, private_key, public_key, is_active,
created_at, updated_at }

use server_col::LIST as SERVER_COLUMNS;

fn server_from_row(r: &Row<'_>) -> rusqlite::Result<ServerRow> {
    use server_col as c;
    Ok(ServerRow {
        id: r.get(c::id)?,
        name: r.get(c::name)?,
        interface: r.get(c::interface)?,
        description: r.get(c::description)?,
        listen_port: r.get(c::listen_port)?,
        ipv4_address: parsed_opt(r, c::ipv4_address)?,
        ipv6_address: parsed_opt(r, c::ipv6_address)?,
        dns_servers: parsed_list(r, c::dns_servers)?,
        mtu: r.get(c::mtu)?,
        endpoint: r.get(c::endpoint)?,
        persistent_keepalive: r.get(c::persistent_keepalive)?,
        private_key: r.get(c::private_key)?,
        public_key: r.get(c::public_key)?,
        is_active: r.get(c::is_active)?,
        created_at: r.get(c::created_at)?,
        updated_at: r.get(c::updated_at)?,
    })
}

/// The columns a create or an update of a server writes, with their values.
fn server_written(f: &ServerFields) -> Vec<Set<'_>> {
    vec![
        set("name", &f.name),
        set("interface", &f.interface),
        set("description", &f.description),
        set("listen_port", f.listen_port),
        set("ipv4_address", text(&f.ipv4_address)),
        set("ipv6_address", text(&f.ipv6_address)),
        set("dns_servers", json_list(&f.dns_servers)),
        set("mtu", f.mtu),
        set("endpoint", &f.endpoint),
        set("persistent_keepalive", f.persistent_keepalive),
        set("is_active", f.is_active),
    ]
}

columns! { client_col: id, server_id, name, description, enabled, public_key, private_key,
preshared_key, ipv4_address, ipv6_address, allowed_ips, dns_servers, mtu, persistent_keepalive,
routed_prefixes, created_at, updated_at }

use client_col::LIST as CLIENT_COLUMNS;

fn client_from_row(r: &Row<'_>) -> rusqlite::Result<ClientRow> {
    use client_col as c;
    Ok(ClientRow {
        id: r.get(c::id)?,
        server_id: r.get(c::server_id)?,
        name: r.get(c::name)?,
        description: r.get(c::description)?,
        enabled: r.get(c::enabled)?,
        public_key: r.get(c::public_key)?,
        private_key: r.get(c::private_key)?,
        preshared_key: r.get(c::preshared_key)?,
        ipv4_address: parsed_opt(r, c::ipv4_address)?,
        ipv6_address: parsed_opt(r, c::ipv6_address)?,
        allowed_ips: parsed_list(r, c::allowed_ips)?,
        dns_servers: parsed_list(r, c::dns_servers)?,
        mtu: r.get(c::mtu)?,
        persistent_keepalive: r.get(c::persistent_keepalive)?,
        routed_prefixes: parsed_list(r, c::routed_prefixes)?,
        created_at: r.get(c::created_at)?,
        updated_at: r.get(c::updated_at)?,
    })
}

/// The columns a create or an update of a client writes, with their values.
fn client_written(f: &ClientFields) -> Vec<Set<'_>> {
    vec![
        set("name", &f.name),
        set("description", &f.description),
        set("enabled", f.enabled),
        set("preshared_key", &f.preshared_key),
        set("ipv4_address", text(&f.ipv4_address)),
        set("ipv6_address", text(&f.ipv6_address)),
        set("allowed_ips", json_list(&f.allowed_ips)),
        set("dns_servers", json_list(&f.dns_servers)),
        set("mtu", f.mtu),
        set("persistent_keepalive", f.persistent_keepalive),
        set("routed_prefixes", json_list(&f.routed_prefixes)),
    ]
}

/// A UNIQUE violation becomes a conflict on the column SQLite names last
/// ("UNIQUE constraint failed: wg_clients.server_id, wg_clients.name" → `name`); the
/// domain checks these first with friendlier messages, so this is the backstop.
fn unique_violation(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, Some(msg))
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            let field = msg.rsplit(['.', ' ']).next().unwrap_or("id").to_string();
            let message = match field.as_str() {
                "public_key" => "a client with this public key already exists".to_string(),
                f => format!("{f} is already in use"),
            };
            StoreError::Conflict { field, message }
        }
        e => StoreError::Sqlite(e),
    }
}

// ---- servers ----

pub fn insert_server(
    conn: &Connection,
    f: &ServerFields,
    private_key: &str,
    public_key: &str,
    now: i64,
) -> StoreResult<ServerRow> {
    let mut sets = server_written(f);
    sets.extend([
        set("private_key", private_key),
        set("public_key", public_key),
        set("created_at", now),
        set("updated_at", now),
    ]);
    table::insert(conn, "wg_servers", &sets).map_err(unique_violation)?;
    let id = conn.last_insert_rowid();
    get_server(conn, id)?.ok_or(StoreError::NotFound("server"))
}

pub fn get_server(conn: &Connection, id: i64) -> StoreResult<Option<ServerRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SERVER_COLUMNS} FROM wg_servers WHERE id = ?1"
        ))?
        .query_row([id], server_from_row)
        .optional()?)
}

/// Every server, by id (a router has a handful).
pub fn all_servers(conn: &Connection) -> StoreResult<Vec<ServerRow>> {
    super::table::rows(
        conn,
        &format!("SELECT {SERVER_COLUMNS} FROM wg_servers ORDER BY id"),
        [],
        server_from_row,
    )
}

/// Servers whose desired state is running.
pub fn active_servers(conn: &Connection) -> StoreResult<Vec<ServerRow>> {
    super::table::rows(
        conn,
        &format!("SELECT {SERVER_COLUMNS} FROM wg_servers WHERE is_active = 1 ORDER BY id"),
        [],
        server_from_row,
    )
}

/// One page of servers, each with its number of clients, and the total.
pub fn list_servers(
    conn: &Connection,
    limit: u32,
    offset: u64,
) -> StoreResult<(Vec<(ServerRow, u64)>, u64)> {
    let total: u64 = conn.query_row("SELECT count(*) FROM wg_servers", [], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SERVER_COLUMNS}, \
         (SELECT count(*) FROM wg_clients c WHERE c.server_id = wg_servers.id) \
         FROM wg_servers ORDER BY id LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = stmt
        .query_map(params![limit, offset as i64], |r| {
            Ok((server_from_row(r)?, r.get::<_, u64>(server_col::COUNT)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total))
}

/// Writes every field of `f` (not the keys).
pub fn update_server(
    conn: &Connection,
    id: i64,
    f: &ServerFields,
    now: i64,
) -> StoreResult<ServerRow> {
    let mut sets = server_written(f);
    sets.push(set("updated_at", now));
    let n = table::update(conn, "wg_servers", id, &sets).map_err(unique_violation)?;
    if n == 0 {
        return Err(StoreError::NotFound("server"));
    }
    get_server(conn, id)?.ok_or(StoreError::NotFound("server"))
}

pub fn set_server_active(
    conn: &Connection,
    id: i64,
    active: bool,
    now: i64,
) -> StoreResult<ServerRow> {
    let n = conn.execute(
        "UPDATE wg_servers SET is_active = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, active, now],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("server"));
    }
    get_server(conn, id)?.ok_or(StoreError::NotFound("server"))
}

/// Deletes the server and its clients (explicitly, so it does not depend on the
/// connection having foreign keys on).
pub fn delete_server(conn: &Connection, id: i64) -> StoreResult<()> {
    conn.execute("DELETE FROM wg_clients WHERE server_id = ?1", [id])?;
    if conn.execute("DELETE FROM wg_servers WHERE id = ?1", [id])? == 0 {
        return Err(StoreError::NotFound("server"));
    }
    Ok(())
}

// ---- clients ----

pub fn insert_client(
    conn: &Connection,
    server_id: i64,
    f: &ClientFields,
    public_key: &str,
    private_key: Option<&str>,
    now: i64,
) -> StoreResult<ClientRow> {
    let mut sets = vec![set("server_id", server_id)];
    sets.extend(client_written(f));
    sets.extend([
        set("public_key", public_key),
        set("private_key", private_key),
        set("created_at", now),
        set("updated_at", now),
    ]);
    table::insert(conn, "wg_clients", &sets).map_err(unique_violation)?;
    let id = conn.last_insert_rowid();
    get_client(conn, id)?.ok_or(StoreError::NotFound("client"))
}

pub fn get_client(conn: &Connection, id: i64) -> StoreResult<Option<ClientRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {CLIENT_COLUMNS} FROM wg_clients WHERE id = ?1"
        ))?
        .query_row([id], client_from_row)
        .optional()?)
}

pub fn clients_of_server(conn: &Connection, server_id: i64) -> StoreResult<Vec<ClientRow>> {
    super::table::rows(
        conn,
        &format!("SELECT {CLIENT_COLUMNS} FROM wg_clients WHERE server_id = ?1 ORDER BY id"),
        [server_id],
        client_from_row,
    )
}

pub fn count_clients(conn: &Connection, server_id: i64) -> StoreResult<u64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM wg_clients WHERE server_id = ?1",
        [server_id],
        |r| r.get(0),
    )?)
}

/// A client row's version: a random number SQLite sets on every insert and update of the
/// row (`schema.rs`, migration 8), so that what was rendered from one version is known
/// current while the row still has it, whichever path wrote the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientVersion {
    pub id: i64,
    pub rev: i64,
}

/// The versions of one page of clients matching `filter` (by id), and the total. Only the
/// filters given become conditions, so the plain list counts with SQLite's b-tree count and
/// both statements are prepared once per shape (the page is the API's hottest list).
pub fn client_page(
    conn: &Connection,
    filter: &ClientFilter,
    limit: u32,
    offset: u64,
) -> StoreResult<(Vec<ClientVersion>, u64)> {
    use rusqlite::types::Value;
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(s) = filter.search.as_deref() {
        args.push(Value::Text(super::contains_pattern(s)));
        let n = args.len();
        conds.push(format!(
            "(name LIKE ?{n} ESCAPE '\\' OR description LIKE ?{n} ESCAPE '\\' \
             OR public_key LIKE ?{n} ESCAPE '\\' OR ipv4_address LIKE ?{n} ESCAPE '\\' \
             OR ipv6_address LIKE ?{n} ESCAPE '\\')"
        ));
    }
    if let Some(id) = filter.server_id {
        args.push(Value::Integer(id));
        conds.push(format!("server_id = ?{}", args.len()));
    }
    if let Some(e) = filter.enabled {
        args.push(Value::Integer(i64::from(e)));
        conds.push(format!("enabled = ?{}", args.len()));
    }
    let cond = match conds.is_empty() {
        true => String::new(),
        false => format!(" WHERE {}", conds.join(" AND ")),
    };
    let total: u64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM wg_clients{cond}"))?
        .query_row(rusqlite::params_from_iter(&args), |r| r.get(0))?;
    let n = args.len();
    args.push(Value::Integer(i64::from(limit)));
    args.push(Value::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, rev FROM wg_clients{cond} ORDER BY id LIMIT ?{} OFFSET ?{}",
        n + 1,
        n + 2
    ))?;
    let page = stmt
        .query_map(rusqlite::params_from_iter(&args), |r| {
            Ok(ClientVersion {
                id: r.get(0)?,
                rev: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((page, total))
}

/// The clients with these ids that exist (by id), each with its version.
pub fn clients_with_rev(conn: &Connection, ids: &[i64]) -> StoreResult<Vec<(i64, ClientRow)>> {
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    let ids = format!("[{}]", ids.join(","));
    table::rows(
        conn,
        &format!(
            "SELECT {CLIENT_COLUMNS}, rev FROM wg_clients \
             WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id"
        ),
        [ids],
        |r| Ok((r.get(client_col::COUNT)?, client_from_row(r)?)),
    )
}

/// Every client that has routed prefixes (any server).
pub fn all_routed(conn: &Connection) -> StoreResult<Vec<Routed>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, server_id, routed_prefixes FROM wg_clients \
         WHERE routed_prefixes != '[]' ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Routed {
            client_id: r.get(0)?,
            client_name: r.get(1)?,
            server_id: r.get(2)?,
            prefixes: parsed_list(r, 3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Writes every field of `f` (not the key pair).
pub fn update_client(
    conn: &Connection,
    id: i64,
    f: &ClientFields,
    now: i64,
) -> StoreResult<ClientRow> {
    let mut sets = client_written(f);
    sets.push(set("updated_at", now));
    let n = table::update(conn, "wg_clients", id, &sets).map_err(unique_violation)?;
    if n == 0 {
        return Err(StoreError::NotFound("client"));
    }
    get_client(conn, id)?.ok_or(StoreError::NotFound("client"))
}

pub fn delete_client(conn: &Connection, id: i64) -> StoreResult<()> {
    if conn.execute("DELETE FROM wg_clients WHERE id = ?1", [id])? == 0 {
        return Err(StoreError::NotFound("client"));
    }
    Ok(())
}

// ---- where peers were last seen ----

/// Where a peer was when its last handshake completed (`handshake_at`, Unix seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct LastSeen {
    pub public_key: String,
    pub endpoint: SocketAddr,
    pub handshake_at: i64,
}

/// Records `seen` (newer facts replace older ones) and forgets peers that are no longer
/// clients once their handshake is older than `forget_before` (too old to resume): until
/// then a restore may bring the deleted client back, and the device reaches it at once.
/// The table never outgrows `wg_clients` plus the clients deleted that recently.
pub fn save_last_seen(
    conn: &mut Connection,
    seen: &[LastSeen],
    forget_before: i64,
) -> StoreResult<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO wg_last_seen (public_key, endpoint, handshake_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (public_key) DO UPDATE SET endpoint = excluded.endpoint, \
             handshake_at = excluded.handshake_at \
             WHERE excluded.handshake_at >= wg_last_seen.handshake_at",
        )?;
        for s in seen {
            stmt.execute(params![
                s.public_key,
                s.endpoint.to_string(),
                s.handshake_at
            ])?;
        }
    }
    tx.execute(
        "DELETE FROM wg_last_seen WHERE handshake_at < ?1 \
         AND public_key NOT IN (SELECT public_key FROM wg_clients)",
        [forget_before],
    )?;
    Ok(tx.commit()?)
}

/// Where the clients of `server_id` were last seen (those never seen have no row).
pub fn last_seen_of_server(conn: &Connection, server_id: i64) -> StoreResult<Vec<LastSeen>> {
    super::table::rows(
        conn,
        "SELECT s.public_key, s.endpoint, s.handshake_at FROM wg_last_seen s \
         JOIN wg_clients c ON c.public_key = s.public_key WHERE c.server_id = ?1",
        [server_id],
        last_seen_from_row,
    )
}

/// Where the peer with `public_key` was last seen, if ever.
pub fn last_seen(conn: &Connection, public_key: &str) -> StoreResult<Option<LastSeen>> {
    Ok(conn
        .prepare_cached(
            "SELECT public_key, endpoint, handshake_at FROM wg_last_seen WHERE public_key = ?1",
        )?
        .query_row([public_key], last_seen_from_row)
        .optional()?)
}

fn last_seen_from_row(r: &Row<'_>) -> rusqlite::Result<LastSeen> {
    Ok(LastSeen {
        public_key: r.get(0)?,
        endpoint: parsed_opt(r, 1)?.ok_or_else(|| bad(1, "no endpoint".into()))?,
        handshake_at: r.get(2)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        crate::store::test_db()
    }

    fn net(s: &str) -> IpNet {
        s.parse().expect("net")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn server(name: &str, iface: &str, port: u16) -> ServerFields {
        ServerFields {
            name: name.into(),
            interface: iface.into(),
            description: Some("d".into()),
            listen_port: port,
            ipv4_address: Some(net("10.0.0.1/24")),
            ipv6_address: Some(net("fd00::1/64")),
            dns_servers: vec![ip("1.1.1.1"), ip("2606:4700::1111")],
            mtu: 1420,
            endpoint: Some("vpn.example.com".into()),
            persistent_keepalive: Some(25),
            is_active: true,
        }
    }

    fn client(name: &str, v4: &str) -> ClientFields {
        ClientFields {
            name: name.into(),
            description: None,
            enabled: true,
            preshared_key: Some("psk".into()),
            ipv4_address: Some(ip(v4)),
            ipv6_address: None,
            allowed_ips: vec![net("0.0.0.0/0"), net("::/0")],
            dns_servers: vec![],
            mtu: None,
            persistent_keepalive: Some(0),
            routed_prefixes: vec![net("2001:db8:1::/48")],
        }
    }

    fn field(e: StoreError) -> String {
        match e {
            StoreError::Conflict { field, .. } => field,
            e => panic!("not a conflict: {e:?}"),
        }
    }

    #[test]
    fn last_seen_keeps_the_newest_and_forgets_deleted_clients_once_stale() {
        let mut c = db();
        let s = insert_server(&c, &server("a", "wg0", 1), "p", "q", 1).expect("server");
        let one = insert_client(&c, s.id, &client("one", "10.0.0.2"), "k1", None, 1).expect("1");
        insert_client(&c, s.id, &client("two", "10.0.0.3"), "k2", None, 1).expect("2");
        let seen = |key: &str, ep: &str, at: i64| LastSeen {
            public_key: key.into(),
            endpoint: ep.parse().expect("endpoint"),
            handshake_at: at,
        };
        save_last_seen(
            &mut c,
            &[
                seen("k1", "192.0.2.1:1", 10),
                seen("k2", "[2001:db8::2]:2", 10),
            ],
            0,
        )
        .expect("save");
        save_last_seen(&mut c, &[seen("k1", "192.0.2.9:9", 5)], 0).expect("older");
        assert_eq!(
            last_seen(&c, "k1").expect("get"),
            Some(seen("k1", "192.0.2.1:1", 10))
        );
        save_last_seen(&mut c, &[seen("k1", "192.0.2.9:9", 11)], 0).expect("newer");
        let mut all = last_seen_of_server(&c, s.id).expect("all");
        all.sort_by(|a, b| a.public_key.cmp(&b.public_key));
        assert_eq!(
            all,
            vec![
                seen("k1", "192.0.2.9:9", 11),
                seen("k2", "[2001:db8::2]:2", 10)
            ]
        );
        delete_client(&c, one.id).expect("delete");
        // A deleted client is kept while its handshake is recent (a restore may bring it
        // back), then forgotten; a client's row is never forgotten.
        save_last_seen(&mut c, &[], 11).expect("recent");
        assert_eq!(
            last_seen(&c, "k1").expect("get"),
            Some(seen("k1", "192.0.2.9:9", 11))
        );
        save_last_seen(&mut c, &[], 12).expect("prune");
        assert_eq!(last_seen(&c, "k1").expect("get"), None);
        assert_eq!(last_seen_of_server(&c, s.id).expect("all").len(), 1);
    }

    #[test]
    fn server_round_trip_and_uniques() {
        let c = db();
        let f = server("Home", "wg0", 51820);
        let s = insert_server(&c, &f, "priv", "pub", 7).expect("insert");
        assert_eq!(get_server(&c, s.id).expect("get"), Some(s.clone()));
        assert_eq!(
            (
                s.ipv4_address,
                s.dns_servers.len(),
                s.is_active,
                s.created_at
            ),
            (Some(net("10.0.0.1/24")), 2, true, 7)
        );
        let dup = |g: ServerFields| field(insert_server(&c, &g, "p", "q", 1).unwrap_err());
        assert_eq!(dup(server("HOME", "wg1", 1)), "name");
        assert_eq!(dup(server("b", "wg0", 2)), "interface");
        assert_eq!(dup(server("b", "wg1", 51820)), "listen_port");
        let mut g = f.clone();
        g.mtu = 1280;
        g.ipv4_address = None;
        let s2 = update_server(&c, s.id, &g, 9).expect("update");
        assert_eq!((s2.mtu, s2.ipv4_address, s2.updated_at), (1280, None, 9));
        assert_eq!(s2.private_key, "priv");
        g.ipv6_address = None;
        assert!(
            update_server(&c, s.id, &g, 9).is_err(),
            "a server keeps an address family"
        );
        let off = set_server_active(&c, s.id, false, 10).expect("set");
        assert!(!off.is_active);
        assert!(active_servers(&c).expect("active").is_empty());
    }

    #[test]
    fn client_round_trip_uniques_and_cascade() {
        let c = db();
        let s = insert_server(&c, &server("a", "wg0", 1), "p", "q", 1).expect("server");
        let s2 = insert_server(&c, &server("b", "wg1", 2), "p", "q", 1).expect("server");
        let f = client("Laptop", "10.0.0.2");
        let row = insert_client(&c, s.id, &f, "k1", Some("sk"), 5).expect("insert");
        assert_eq!(get_client(&c, row.id).expect("get"), Some(row.clone()));
        assert_eq!(row.routed_prefixes, vec![net("2001:db8:1::/48")]);
        assert_eq!(row.persistent_keepalive, Some(0));
        let dup = |sid, g: ClientFields, key: &str| {
            field(insert_client(&c, sid, &g, key, None, 1).unwrap_err())
        };
        assert_eq!(dup(s.id, client("LAPTOP", "10.0.0.3"), "k2"), "name");
        assert_eq!(dup(s.id, client("x", "10.0.0.2"), "k2"), "ipv4_address");
        assert_eq!(dup(s2.id, client("x", "10.0.0.9"), "k1"), "public_key");
        insert_client(&c, s2.id, &client("laptop", "10.0.0.2"), "k3", None, 1)
            .expect("names and addresses are per server");
        let (rows, total) = list_servers(&c, 10, 0).expect("list");
        assert_eq!((rows[0].1, rows[1].1, total), (1, 1, 2));
        let mut g = f.clone();
        g.enabled = false;
        g.routed_prefixes.clear();
        let up = update_client(&c, row.id, &g, 6).expect("update");
        assert_eq!((up.enabled, up.routed_prefixes.len()), (false, 0));
        assert_eq!(all_routed(&c).expect("routed").len(), 1);
        delete_server(&c, s.id).expect("delete");
        assert_eq!(get_client(&c, row.id).expect("get"), None);
        assert_eq!(count_clients(&c, s2.id).expect("count"), 1);
        assert!(matches!(
            delete_server(&c, s.id),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn every_write_of_a_client_gives_it_a_new_version() {
        let c = db();
        let s = insert_server(&c, &server("a", "wg0", 1), "p", "q", 1).expect("server");
        let f = client("phone", "10.0.0.2");
        let row = insert_client(&c, s.id, &f, "k", None, 1).expect("insert");
        let rev = |c: &Connection| {
            let (page, _) = client_page(c, &ClientFilter::default(), 10, 0).expect("page");
            assert_eq!(page.len(), 1);
            page[0].rev
        };
        let mut seen = vec![rev(&c)];
        update_client(&c, row.id, &f, 2).expect("same fields");
        seen.push(rev(&c));
        c.execute("UPDATE wg_clients SET enabled = 0", [])
            .expect("any other path");
        seen.push(rev(&c));
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "{seen:?}");
        let again = clients_with_rev(&c, &[row.id, row.id + 7]).expect("rows");
        assert_eq!(again.len(), 1, "ids that do not exist are left out");
        assert_eq!(again[0].0, rev(&c), "reading does not change it");
    }

    #[test]
    fn list_clients_filters() {
        let c = db();
        let s = insert_server(&c, &server("a", "wg0", 1), "p", "q", 1).expect("server");
        for (i, n) in ["phone_1", "phone2", "laptop"].iter().enumerate() {
            let mut f = client(n, &format!("10.0.0.{}", i + 2));
            f.enabled = i != 2;
            insert_client(&c, s.id, &f, &format!("k{i}"), None, 1).expect("insert");
        }
        let page = |f: ClientFilter| {
            let (page, total) = client_page(&c, &f, 10, 0).expect("page");
            let ids: Vec<i64> = page.iter().map(|v| v.id).collect();
            let rows = clients_with_rev(&c, &ids).expect("rows");
            let revs: Vec<i64> = rows.iter().map(|(rev, _)| *rev).collect();
            assert_eq!(revs, page.iter().map(|v| v.rev).collect::<Vec<_>>());
            (rows.into_iter().map(|(_, r)| r).collect::<Vec<_>>(), total)
        };
        let (rows, total) = page(ClientFilter {
            search: Some("phone".into()),
            ..Default::default()
        });
        assert_eq!((rows.len(), total), (2, 2));
        let (rows, _) = page(ClientFilter {
            search: Some("e_".into()),
            ..Default::default()
        });
        assert_eq!(rows[0].name, "phone_1", "'_' is literal");
        assert_eq!(rows.len(), 1);
        let (_, total) = page(ClientFilter {
            enabled: Some(false),
            server_id: Some(s.id),
            ..Default::default()
        });
        assert_eq!(total, 1);
        let (_, total) = page(ClientFilter {
            server_id: Some(s.id + 1),
            ..Default::default()
        });
        assert_eq!(total, 0);
        let (rows, _) = page(ClientFilter {
            search: Some("10.0.0.4".into()),
            ..Default::default()
        });
        assert_eq!(rows[0].name, "laptop");
    }
}
