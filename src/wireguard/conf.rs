//! The wg-quick configuration format: rendered for client configs (`.conf` downloads and QR
//! codes) and parsed for importing existing servers. Pure text in, text out.
//!
//! Parsing follows wg-quick: `#` starts a comment, section and key names are
//! case-insensitive, list values are comma-separated and may repeat. Unknown keys are errors
//! (a typo must not silently drop a setting); wg-quick's shell hooks and routing-table keys
//! (`PostUp`, `Table`, …) are accepted but not executed, and reported as ignored.

use crate::wireguard::keys::{PresharedKey, PrivateKey, PublicKey};
use ipnet::IpNet;
use std::fmt::Write as _;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Interface {
    pub private_key: Option<PrivateKey>,
    pub addresses: Vec<IpNet>,
    pub listen_port: Option<u16>,
    /// DNS servers (IP addresses) and search domains, as wg-quick takes them.
    pub dns: Vec<String>,
    pub mtu: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub public_key: PublicKey,
    pub preshared_key: Option<PresharedKey>,
    /// `host:port`, `[v6]:port`.
    pub endpoint: Option<String>,
    pub allowed_ips: Vec<IpNet>,
    pub persistent_keepalive: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct WgQuick {
    pub interface: Interface,
    pub peers: Vec<Peer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the offending text (0: the file as a whole).
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub conf: WgQuick,
    /// wg-quick keys that were accepted but have no effect here, as `Key (line N)`.
    pub ignored: Vec<String>,
}

/// At most this many peers in an imported file.
pub const MAX_PEERS: usize = 10_000;

/// `host:port` with IPv6 literals bracketed, as WireGuard's `Endpoint` wants.
pub fn endpoint(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(T::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl WgQuick {
    pub fn render(&self) -> String {
        let mut out = String::from("[Interface]\n");
        let i = &self.interface;
        if let Some(k) = &i.private_key {
            let _ = writeln!(out, "PrivateKey = {}", k.to_base64());
        }
        if !i.addresses.is_empty() {
            let _ = writeln!(out, "Address = {}", join(&i.addresses));
        }
        if let Some(p) = i.listen_port {
            let _ = writeln!(out, "ListenPort = {p}");
        }
        if !i.dns.is_empty() {
            let _ = writeln!(out, "DNS = {}", i.dns.join(", "));
        }
        if let Some(m) = i.mtu {
            let _ = writeln!(out, "MTU = {m}");
        }
        for p in &self.peers {
            let _ = write!(out, "\n[Peer]\nPublicKey = {}\n", p.public_key);
            if let Some(k) = &p.preshared_key {
                let _ = writeln!(out, "PresharedKey = {}", k.to_base64());
            }
            if let Some(e) = &p.endpoint {
                let _ = writeln!(out, "Endpoint = {e}");
            }
            if !p.allowed_ips.is_empty() {
                let _ = writeln!(out, "AllowedIPs = {}", join(&p.allowed_ips));
            }
            if let Some(k) = p.persistent_keepalive {
                let _ = writeln!(out, "PersistentKeepalive = {k}");
            }
        }
        out
    }

    pub fn parse(text: &str) -> Result<Parsed, ParseError> {
        Parser::default().run(text)
    }
}

#[derive(PartialEq)]
enum Section {
    None,
    Interface,
    Peer,
}

/// A `[Peer]` being read; its PublicKey may come after other keys.
#[derive(Default)]
struct PeerDraft {
    line: usize,
    public_key: Option<PublicKey>,
    preshared_key: Option<PresharedKey>,
    endpoint: Option<String>,
    allowed_ips: Vec<IpNet>,
    persistent_keepalive: Option<u16>,
}

struct Parser {
    section: Section,
    seen_interface: bool,
    conf: WgQuick,
    peer: Option<PeerDraft>,
    ignored: Vec<String>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            section: Section::None,
            seen_interface: false,
            conf: WgQuick::default(),
            peer: None,
            ignored: Vec::new(),
        }
    }
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// `10.0.0.1/24`, or a bare address meaning a host route (`/32`, `/128`).
fn parse_net(v: &str, line: usize, key: &str) -> Result<IpNet, ParseError> {
    v.parse::<IpNet>()
        .or_else(|_| v.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            err(
                line,
                format!("{key}: {v:?} is not an IP address or CIDR prefix"),
            )
        })
}

fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn parse_endpoint(v: &str, line: usize) -> Result<String, ParseError> {
    let bad = || {
        err(
            line,
            format!("Endpoint: {v:?} is not host:port or [IPv6]:port"),
        )
    };
    let (host, port) = v.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(bad)?;
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => !host.is_empty() && !host.contains(':') && !host.contains(char::is_whitespace),
    };
    if host_ok {
        Ok(v.to_string())
    } else {
        Err(bad())
    }
}

impl Parser {
    fn run(mut self, text: &str) -> Result<Parsed, ParseError> {
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            if content.starts_with('[') {
                self.section(content, line)?;
                continue;
            }
            let (key, value) = content
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| err(line, format!("expected `Key = Value`, got {content:?}")))?;
            match self.section {
                Section::None => return Err(err(line, "key outside [Interface] or [Peer]")),
                Section::Interface => self.interface_key(key, value, line)?,
                Section::Peer => self.peer_key(key, value, line)?,
            }
        }
        self.finish_peer()?;
        if !self.seen_interface {
            return Err(err(0, "no [Interface] section"));
        }
        Ok(Parsed {
            conf: self.conf,
            ignored: self.ignored,
        })
    }

    fn section(&mut self, header: &str, line: usize) -> Result<(), ParseError> {
        self.finish_peer()?;
        if header.eq_ignore_ascii_case("[interface]") {
            if self.seen_interface {
                return Err(err(line, "a second [Interface] section"));
            }
            self.seen_interface = true;
            self.section = Section::Interface;
        } else if header.eq_ignore_ascii_case("[peer]") {
            if self.conf.peers.len() >= MAX_PEERS {
                return Err(err(line, format!("more than {MAX_PEERS} peers")));
            }
            self.section = Section::Peer;
            self.peer = Some(PeerDraft {
                line,
                ..Default::default()
            });
        } else {
            return Err(err(line, format!("unknown section {header}")));
        }
        Ok(())
    }

    fn interface_key(&mut self, key: &str, v: &str, line: usize) -> Result<(), ParseError> {
        let i = &mut self.conf.interface;
        match key.to_ascii_lowercase().as_str() {
            "privatekey" => {
                i.private_key = Some(
                    PrivateKey::from_base64(v)
                        .map_err(|e| err(line, format!("PrivateKey: {e}")))?,
                )
            }
            "address" => {
                for a in list(v) {
                    i.addresses.push(parse_net(a, line, "Address")?);
                }
            }
            "listenport" => {
                i.listen_port = Some(
                    v.parse()
                        .map_err(|_| err(line, format!("ListenPort: {v:?} is not a port")))?,
                )
            }
            "dns" => i.dns.extend(list(v).map(str::to_string)),
            "mtu" => {
                i.mtu = Some(
                    v.parse::<u16>()
                        .ok()
                        .filter(|m| (576..=9000).contains(m))
                        .ok_or_else(|| {
                            err(line, format!("MTU: {v:?} is not between 576 and 9000"))
                        })?,
                )
            }
            "table" | "preup" | "postup" | "predown" | "postdown" | "saveconfig" | "fwmark" => {
                self.ignored.push(format!("{key} (line {line})"))
            }
            _ => return Err(err(line, format!("unknown [Interface] key {key:?}"))),
        }
        Ok(())
    }

    fn peer_key(&mut self, key: &str, v: &str, line: usize) -> Result<(), ParseError> {
        let Some(p) = self.peer.as_mut() else {
            return Err(err(line, "key outside a section"));
        };
        match key.to_ascii_lowercase().as_str() {
            "publickey" => {
                p.public_key = Some(
                    PublicKey::from_base64(v).map_err(|e| err(line, format!("PublicKey: {e}")))?,
                )
            }
            "presharedkey" => {
                p.preshared_key = Some(
                    PresharedKey::from_base64(v)
                        .map_err(|e| err(line, format!("PresharedKey: {e}")))?,
                )
            }
            "endpoint" => p.endpoint = Some(parse_endpoint(v, line)?),
            "allowedips" => {
                for a in list(v) {
                    p.allowed_ips.push(parse_net(a, line, "AllowedIPs")?);
                }
            }
            "persistentkeepalive" => {
                p.persistent_keepalive = if v.eq_ignore_ascii_case("off") {
                    None
                } else {
                    Some(v.parse::<u16>().map_err(|_| {
                        err(
                            line,
                            format!("PersistentKeepalive: {v:?} is not seconds or off"),
                        )
                    })?)
                    .filter(|s| *s > 0)
                }
            }
            _ => return Err(err(line, format!("unknown [Peer] key {key:?}"))),
        }
        Ok(())
    }

    fn finish_peer(&mut self) -> Result<(), ParseError> {
        let Some(d) = self.peer.take() else {
            return Ok(());
        };
        let public_key = d
            .public_key
            .ok_or_else(|| err(d.line, "[Peer] without PublicKey"))?;
        if self.conf.peers.iter().any(|p| p.public_key == public_key) {
            return Err(err(d.line, format!("peer {public_key} appears twice")));
        }
        self.conf.peers.push(Peer {
            public_key,
            preshared_key: d.preshared_key,
            endpoint: d.endpoint,
            allowed_ips: d.allowed_ips,
            persistent_keepalive: d.persistent_keepalive,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "\
# exported from LuCI
[Interface]
PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=
Address = 10.8.0.1/24, fd00:8::1/64
ListenPort = 51820
PostUp = iptables -A FORWARD -i %i -j ACCEPT   # not executed
SaveConfig = true

[Peer]  # laptop
PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
PresharedKey = /UwcSPg38hW/D9Y3tcS1FOV0K1wuURMbS0sesJEP5ak=
AllowedIPs = 10.8.0.2/32
allowedips = fd00:8::2/128, 2001:db8:1::/64
PersistentKeepalive = 25

[peer]
publickey = TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=
Endpoint = [2001:db8::9]:51820
AllowedIPs = 10.8.0.3
PersistentKeepalive = off
";

    #[test]
    fn parses_a_wg_quick_server_file() {
        let p = WgQuick::parse(SERVER).expect("parses");
        let i = &p.conf.interface;
        assert_eq!(i.listen_port, Some(51820));
        assert_eq!(
            i.addresses,
            vec![
                "10.8.0.1/24".parse::<IpNet>().expect("net"),
                "fd00:8::1/64".parse().expect("net")
            ]
        );
        assert_eq!(
            i.private_key.as_ref().expect("key").to_base64(),
            "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
        );
        assert_eq!(p.ignored, vec!["PostUp (line 6)", "SaveConfig (line 7)"]);
        assert_eq!(p.conf.peers.len(), 2);
        let laptop = &p.conf.peers[0];
        assert_eq!(laptop.allowed_ips.len(), 3, "repeated keys accumulate");
        assert_eq!(laptop.persistent_keepalive, Some(25));
        assert!(laptop.preshared_key.is_some());
        let second = &p.conf.peers[1];
        assert_eq!(second.endpoint.as_deref(), Some("[2001:db8::9]:51820"));
        assert_eq!(
            second.allowed_ips,
            vec!["10.8.0.3/32".parse::<IpNet>().expect("net")]
        );
        assert_eq!(second.persistent_keepalive, None);
    }

    #[test]
    fn render_then_parse_is_identity() {
        let conf = WgQuick::parse(SERVER).expect("parses").conf;
        let again = WgQuick::parse(&conf.render()).expect("re-parses");
        assert!(again.ignored.is_empty());
        assert_eq!(again.conf, conf);
    }

    #[test]
    fn renders_a_client_config_like_wg_quick_expects() {
        let key =
            PrivateKey::from_base64("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=").expect("key");
        let conf = WgQuick {
            interface: Interface {
                private_key: Some(key),
                addresses: vec![
                    "10.8.0.2/32".parse().expect("net"),
                    "fd00:8::2/128".parse().expect("net"),
                ],
                listen_port: None,
                dns: vec!["10.8.0.1".into(), "fd00:8::1".into()],
                mtu: Some(1420),
            },
            peers: vec![Peer {
                public_key: PublicKey::from_base64("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=")
                    .expect("key"),
                preshared_key: None,
                endpoint: Some(endpoint("2001:db8::1", 51820)),
                allowed_ips: vec![
                    "0.0.0.0/0".parse().expect("net"),
                    "::/0".parse().expect("net"),
                ],
                persistent_keepalive: Some(25),
            }],
        };
        assert_eq!(
            conf.render(),
            "[Interface]\n\
             PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n\
             Address = 10.8.0.2/32, fd00:8::2/128\n\
             DNS = 10.8.0.1, fd00:8::1\n\
             MTU = 1420\n\
             \n\
             [Peer]\n\
             PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\n\
             Endpoint = [2001:db8::1]:51820\n\
             AllowedIPs = 0.0.0.0/0, ::/0\n\
             PersistentKeepalive = 25\n"
        );
        assert_eq!(endpoint("vpn.example.com", 1), "vpn.example.com:1");
        assert_eq!(endpoint("192.0.2.1", 2), "192.0.2.1:2");
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("Address = 10.0.0.1/24", 1, "outside"),
            ("[Interface]\nAdress = 10.0.0.1/24", 2, "unknown [Interface] key"),
            ("[Interface]\nAddress = 10.0.0.300/24", 2, "Address"),
            ("[Interface]\nPrivateKey = short", 2, "PrivateKey"),
            ("[Interface]\nMTU = 100", 2, "MTU"),
            ("[Interface]\n[Peer]\nAllowedIPs = 10.0.0.2/32", 2, "without PublicKey"),
            ("[Interface]\n[Interface]", 2, "second"),
            ("[Interface]\n[Wat]", 2, "unknown section"),
            ("[Interface]\njust text", 2, "Key = Value"),
            (
                "[Interface]\n[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nEndpoint = nope",
                4,
                "Endpoint",
            ),
            (
                "[Interface]\n[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\n[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
                4,
                "twice",
            ),
            ("# nothing", 0, "no [Interface]"),
        ];
        for (text, line, needle) in cases {
            let e = WgQuick::parse(text).expect_err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn endpoints() {
        for ok in [
            "vpn.example.com:51820",
            "192.0.2.1:1",
            "[2001:db8::1]:51820",
        ] {
            assert!(parse_endpoint(ok, 1).is_ok(), "{ok}");
        }
        for bad in [
            "vpn.example.com",
            "2001:db8::1:51820",
            "[nope]:1",
            "h:0",
            "h:70000",
            ":1",
        ] {
            assert!(parse_endpoint(bad, 1).is_err(), "{bad}");
        }
    }
}
