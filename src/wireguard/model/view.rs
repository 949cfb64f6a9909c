//! What stored rows become for the device and the API: parsed keys and host routes, the
//! AllowedIPs the server routes to a peer, the endpoint clients dial, a client's wg-quick
//! config, and the JSON views (which never carry a private or preshared key).

use super::input::split_endpoint;
use crate::store::wireguard::{ClientRow, ServerRow};
use crate::wireguard::conf::{self, Interface, Peer, WgQuick};
use crate::wireguard::error::{corrupt, Error, Result};
use crate::wireguard::keys::{PresharedKey, PrivateKey, PublicKey};
use ipnet::IpNet;
use serde::Serialize;
use std::net::IpAddr;

// ---- rows: derived values ----

impl ServerRow {
    /// The server's interface addresses (`10.0.0.1/24`, `fd00::1/64`).
    pub fn addresses(&self) -> Vec<IpNet> {
        [self.ipv4_address, self.ipv6_address]
            .into_iter()
            .flatten()
            .collect()
    }

    pub fn wg_private_key(&self) -> Result<PrivateKey> {
        PrivateKey::from_base64(&self.private_key).map_err(|_| corrupt("server private key"))
    }

    pub fn wg_public_key(&self) -> Result<PublicKey> {
        PublicKey::from_base64(&self.public_key).map_err(|_| corrupt("server public key"))
    }
}

impl ClientRow {
    pub fn wg_public_key(&self) -> Result<PublicKey> {
        PublicKey::from_base64(&self.public_key).map_err(|_| corrupt("client public key"))
    }

    pub fn wg_preshared_key(&self) -> Result<Option<PresharedKey>> {
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
pub fn advertised_endpoint(server: &ServerRow, fallback_host: &str) -> Result<String> {
    let (host, port) = match &server.endpoint {
        Some(e) => split_endpoint(e).ok_or_else(|| corrupt("server endpoint"))?,
        None => split_endpoint(fallback_host.trim())
            .map(|(h, _)| (h, None))
            .ok_or_else(|| {
                Error::conflict(
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
) -> Result<String> {
    let private_key = client.private_key.as_deref().ok_or_else(|| {
        Error::Refused(
            "this client's private key is not stored (it was imported or brought its own key)"
                .into(),
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

// ---- QR codes ----

/// The config keys whose values can make a client config long, and the field behind each.
const LONG_PARTS: [(&str, &str); 3] = [
    ("AllowedIPs", "allowed_ips"),
    ("DNS", "dns_servers"),
    ("Endpoint", "endpoint"),
];

/// The field behind the longest line of `config` among `candidates` (among all of
/// [`LONG_PARTS`] when it names none of them), with that line's length.
fn longest_part(config: &str, candidates: &[&str]) -> (&'static str, usize) {
    let parts = || {
        config.lines().filter_map(|line| {
            let key = line.split('=').next()?.trim();
            let (_, field) = LONG_PARTS.iter().find(|(k, _)| *k == key)?;
            Some((*field, line.len()))
        })
    };
    let best = |only: bool| {
        parts()
            .filter(|(f, _)| !only || candidates.contains(f))
            .max_by_key(|(_, n)| *n)
    };
    best(true)
        .or_else(|| best(false))
        .unwrap_or(("allowed_ips", 0))
}

/// 422 when `config` does not fit a QR code, naming the field with the longest part of it
/// among `candidates` (the fields the request set; see [`longest_part`]). `advice` ends the
/// message (what the user can do).
pub fn check_fits_qr(config: &str, candidates: &[&str], advice: &str) -> Result<()> {
    if crate::wireguard::qr::fits(config) {
        return Ok(());
    }
    let (field, part) = longest_part(config, candidates);
    Err(Error::invalid(
        field,
        format!(
            "the client's config is {} bytes, too large for a QR code (at most about {} \
             bytes; {field} takes {part} of them): {advice}",
            config.len(),
            crate::wireguard::qr::MAX_BYTES
        ),
    ))
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
/// `private_key`, `config`, `qr_code`). The QR code is `qrcode`, as `/qrcode` names it;
/// `qr_code` is the seed's name for the same image, kept as an alias.
#[derive(Debug, Serialize)]
pub struct CreatedClientView {
    #[serde(flatten)]
    pub client: ClientView,
    pub private_key: Option<String>,
    pub config: Option<String>,
    pub qrcode: Option<String>,
    pub qr_code: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wireguard::model::default_allowed_ips;
    use crate::wireguard::model::fixtures::*;

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
        assert_eq!(kind_of(&e), Kind::Conflict);
        assert!(e.to_string().contains("private key is not stored"));
    }

    /// Issue 12 item 6: what makes a config too large for a QR code. Only `allowed_ips` can
    /// do it alone (64 long IPv6 prefixes); the most DNS servers (8 IPv6) and the longest
    /// endpoint (253 bytes) together still fit with the default AllowedIPs.
    #[test]
    fn which_configs_fit_a_qr_code() {
        let mut server = server_row(1, "s", Some("10.0.0.1/24"), Some("fd00::1/64"));
        let mut client = client_row(2, "c", Some("10.0.0.2"), Some("fd00::2"));
        client.preshared_key = Some(PresharedKey::generate().to_base64());
        client.persistent_keepalive = Some(25);
        let config = |s: &ServerRow, c: &ClientRow| client_config(s, c, "x").expect("config");
        let label = format!("{}.", "a".repeat(62));
        server.endpoint = Some(format!(
            "{}{}.example:65535",
            label.repeat(3),
            "b".repeat(51)
        ));
        client.dns_servers = (0..8)
            .map(|i| ip(&format!("2001:db8:ffff:ffff:ffff:ffff:ffff:fff{i}")))
            .collect();
        assert!(check_fits_qr(&config(&server, &client), &[], "").is_ok());

        let v6 = |n: u16| -> Vec<IpNet> {
            (0..n)
                .map(|i| net(&format!("2001:db8:ffff:ffff:ffff:ffff:{i:x}:0/112")))
                .collect()
        };
        client.dns_servers.clear();
        server.endpoint = Some("vpn.example.com".into());
        client.allowed_ips = v6(64);
        let text = config(&server, &client);
        let e = check_fits_qr(&text, &["allowed_ips", "dns_servers"], "list fewer").unwrap_err();
        assert_eq!(e.field().expect("details").to_string(), "allowed_ips");
        assert!(
            e.to_string().contains("too large for a QR code"),
            "{}",
            e.to_string()
        );
        assert!(e.to_string().ends_with(": list fewer"), "{}", e.to_string());
        // The limit lies between 40 and 64 such prefixes.
        client.allowed_ips = v6(40);
        assert!(check_fits_qr(&config(&server, &client), &[], "").is_ok());

        // Among the fields a request set, the one with the longest part is named.
        client.allowed_ips = v6(56);
        client.dns_servers = vec![ip("10.0.0.1"); 8];
        let text = config(&server, &client);
        let e = check_fits_qr(&text, &["dns_servers"], "").unwrap_err();
        assert_eq!(e.field().expect("details").to_string(), "dns_servers");
        let e = check_fits_qr(&text, &["name"], "").unwrap_err();
        assert_eq!(
            e.field().expect("details").to_string(),
            "allowed_ips",
            "none set: the longest"
        );
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
        assert_eq!(code(advertised_endpoint(&s, "")), Kind::Conflict);
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
