//! The WireGuard cross-platform userspace API ("UAPI"): the line protocol `wg` speaks over
//! `/var/run/wireguard/<iface>.sock`, so `wg show` / `wg set` / `wg showconf` work on our
//! interfaces. Pure codec: [`parse_request`] turns the text a client sent into a
//! [`Request`]; [`render_get`] turns a device snapshot into the answer to `get=1`. The socket
//! server that uses it lives with the device.
//!
//! Protocol (wireguard.com/xplatform): a request is `get=1\n\n` or `set=1\n` followed by
//! `key=value` lines and an empty line. Keys are hex. Peer keys follow the `public_key` line
//! that opens the peer. Every answer ends with `errno=N\n\n`.

use crate::wireguard::keys::{from_hex, PresharedKey, PrivateKey, PublicKey, KEY_LEN};
use ipnet::IpNet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// Largest request accepted (a `set` for ~1000 peers with a few allowed IPs each).
pub const MAX_REQUEST: usize = 1 << 20;

/// POSIX errno values the protocol reports.
pub const EINVAL: i32 = 22;
pub const EPROTO: i32 = 71;

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Get,
    Set(SetDevice),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SetDevice {
    /// `Some(None)`: remove the private key (all-zero key on the wire).
    pub private_key: Option<Option<PrivateKey>>,
    pub listen_port: Option<u16>,
    pub fwmark: Option<u32>,
    pub replace_peers: bool,
    pub peers: Vec<SetPeer>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SetPeer {
    pub public_key: PublicKey,
    pub remove: bool,
    /// Only change the peer if it exists already.
    pub update_only: bool,
    /// `Some(None)`: remove the preshared key.
    pub preshared_key: Option<Option<PresharedKey>>,
    pub endpoint: Option<SocketAddr>,
    /// Seconds; `Some(0)` turns keepalives off.
    pub persistent_keepalive: Option<u16>,
    pub replace_allowed_ips: bool,
    pub allowed_ips: Vec<IpNet>,
}

impl SetPeer {
    fn new(public_key: PublicKey) -> SetPeer {
        SetPeer {
            public_key,
            remove: false,
            update_only: false,
            preshared_key: None,
            endpoint: None,
            persistent_keepalive: None,
            replace_allowed_ips: false,
            allowed_ips: Vec::new(),
        }
    }
}

/// What `get=1` reports, read from the running device.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceSnapshot {
    pub private_key: Option<PrivateKey>,
    pub listen_port: u16,
    pub fwmark: u32,
    pub peers: Vec<PeerSnapshot>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PeerSnapshot {
    pub public_key: PublicKey,
    pub preshared_key: Option<PresharedKey>,
    pub endpoint: Option<SocketAddr>,
    /// Time since the Unix epoch of the last completed handshake.
    pub last_handshake: Option<Duration>,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub persistent_keepalive: u16,
    pub allowed_ips: Vec<IpNet>,
}

/// Parses one request (the text up to and including its terminating empty line).
/// `Err(errno)` is what the answer must report.
pub fn parse_request(text: &str) -> Result<Request, i32> {
    // A request ends with an empty line; nothing may follow it.
    let body = text.strip_suffix("\n\n").ok_or(EINVAL)?;
    let mut lines = body.split('\n');
    match lines.next() {
        Some("get=1") if body == "get=1" => return Ok(Request::Get),
        Some("set=1") => {}
        _ => return Err(EINVAL),
    }
    let mut dev = SetDevice::default();
    for line in lines {
        let (key, value) = line.split_once('=').ok_or(EINVAL)?;
        set_line(&mut dev, key, value)?;
    }
    Ok(Request::Set(dev))
}

fn key_bytes(v: &str) -> Result<[u8; KEY_LEN], i32> {
    from_hex(v).map_err(|_| EINVAL)
}

fn flag(v: &str) -> Result<bool, i32> {
    match v {
        "true" => Ok(true),
        _ => Err(EINVAL),
    }
}

fn num<T: std::str::FromStr>(v: &str) -> Result<T, i32> {
    v.parse().map_err(|_| EINVAL)
}

fn set_line(dev: &mut SetDevice, key: &str, v: &str) -> Result<(), i32> {
    if key == "public_key" {
        dev.peers
            .push(SetPeer::new(PublicKey::from_bytes(key_bytes(v)?)));
        return Ok(());
    }
    let Some(peer) = dev.peers.last_mut() else {
        // Interface-level keys come before the first peer.
        match key {
            "private_key" => {
                let b = key_bytes(v)?;
                dev.private_key = Some((b != [0; KEY_LEN]).then(|| PrivateKey::from_bytes(b)));
            }
            "listen_port" => dev.listen_port = Some(num(v)?),
            "fwmark" => dev.fwmark = Some(num(v)?),
            "replace_peers" => dev.replace_peers = flag(v)?,
            _ => return Err(EINVAL),
        }
        return Ok(());
    };
    match key {
        "remove" => peer.remove = flag(v)?,
        "update_only" => peer.update_only = flag(v)?,
        "preshared_key" => {
            let b = key_bytes(v)?;
            peer.preshared_key = Some((b != [0; KEY_LEN]).then(|| PresharedKey::from_bytes(b)));
        }
        "endpoint" => peer.endpoint = Some(num(v)?),
        "persistent_keepalive_interval" => peer.persistent_keepalive = Some(num(v)?),
        "replace_allowed_ips" => peer.replace_allowed_ips = flag(v)?,
        "allowed_ip" => peer.allowed_ips.push(v.parse().map_err(|_| EINVAL)?),
        "protocol_version" if v == "1" => {}
        "protocol_version" => return Err(EPROTO),
        _ => return Err(EINVAL),
    }
    Ok(())
}

/// The answer to `get=1`, including the final `errno=0` and empty line.
pub fn render_get(d: &DeviceSnapshot) -> String {
    let mut out = String::new();
    if let Some(k) = &d.private_key {
        let _ = writeln!(out, "private_key={}", k.to_hex());
    }
    let _ = writeln!(out, "listen_port={}", d.listen_port);
    if d.fwmark != 0 {
        let _ = writeln!(out, "fwmark={}", d.fwmark);
    }
    for p in &d.peers {
        let _ = writeln!(out, "public_key={}", p.public_key.to_hex());
        if let Some(k) = &p.preshared_key {
            let _ = writeln!(out, "preshared_key={}", k.to_hex());
        }
        let _ = writeln!(out, "protocol_version=1");
        if let Some(e) = p.endpoint {
            let _ = writeln!(out, "endpoint={e}");
        }
        let hs = p.last_handshake.unwrap_or_default();
        let _ = writeln!(out, "last_handshake_time_sec={}", hs.as_secs());
        let _ = writeln!(out, "last_handshake_time_nsec={}", hs.subsec_nanos());
        let _ = writeln!(out, "tx_bytes={}", p.tx_bytes);
        let _ = writeln!(out, "rx_bytes={}", p.rx_bytes);
        let _ = writeln!(
            out,
            "persistent_keepalive_interval={}",
            p.persistent_keepalive
        );
        for ip in &p.allowed_ips {
            let _ = writeln!(out, "allowed_ip={ip}");
        }
    }
    out.push_str("errno=0\n\n");
    out
}

/// The answer to a `set` (or a failed `get`).
pub fn render_errno(errno: i32) -> String {
    format!("errno={errno}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUB_HEX: &str = "c5154c0b1a8e97f1d0fd0b9b2c59dcbf3290f7d6c55a73d1c72b9e3e8a1dd13f";

    #[test]
    fn get_request() {
        assert_eq!(parse_request("get=1\n\n"), Ok(Request::Get));
        assert_eq!(parse_request("get=1\n"), Err(EINVAL));
        assert_eq!(parse_request("hello\n\n"), Err(EINVAL));
        assert_eq!(parse_request("get=1\nx=1\n\n"), Err(EINVAL));
        assert_eq!(
            parse_request("set=1\n\n"),
            Ok(Request::Set(SetDevice::default()))
        );
    }

    #[test]
    fn set_request_like_wg_set_sends() {
        let text = format!(
            "set=1\nprivate_key={}\nlisten_port=51820\nreplace_peers=true\n\
             public_key={PUB_HEX}\nreplace_allowed_ips=true\nallowed_ip=10.0.0.2/32\n\
             allowed_ip=fd00::2/128\nendpoint=[2001:db8::1]:51820\n\
             persistent_keepalive_interval=25\nprotocol_version=1\n\
             public_key={}\nremove=true\n\n",
            "11".repeat(32),
            "22".repeat(32)
        );
        let Ok(Request::Set(d)) = parse_request(&text) else {
            panic!("not a set");
        };
        assert_eq!(
            d.private_key,
            Some(Some(PrivateKey::from_bytes([0x11; 32])))
        );
        assert_eq!(d.listen_port, Some(51820));
        assert!(d.replace_peers);
        assert_eq!(d.peers.len(), 2);
        let p = &d.peers[0];
        assert_eq!(p.public_key.to_hex(), PUB_HEX);
        assert!(p.replace_allowed_ips && !p.remove);
        assert_eq!(p.allowed_ips.len(), 2);
        assert_eq!(
            p.endpoint,
            Some("[2001:db8::1]:51820".parse().expect("addr"))
        );
        assert_eq!(p.persistent_keepalive, Some(25));
        assert!(d.peers[1].remove);
    }

    #[test]
    fn zero_keys_mean_remove() {
        let text = format!(
            "set=1\nprivate_key={z}\npublic_key={PUB_HEX}\npreshared_key={z}\n\n",
            z = "00".repeat(32)
        );
        let Ok(Request::Set(d)) = parse_request(&text) else {
            panic!("not a set");
        };
        assert_eq!(d.private_key, Some(None));
        assert_eq!(d.peers[0].preshared_key, Some(None));
    }

    #[test]
    fn malformed_sets_are_einval() {
        for bad in [
            "set=1\nlisten_port=70000\n\n".to_string(),
            "set=1\nremove=true\n\n".to_string(),
            "set=1\nlisten_port=1\n".to_string(),
            "set=1\nbogus=1\n\n".to_string(),
            "set=1\npublic_key=abc\n\n".to_string(),
            format!("set=1\npublic_key={PUB_HEX}\nallowed_ip=10.0.0.300/32\n\n"),
            format!("set=1\npublic_key={PUB_HEX}\nremove=yes\n\n"),
            format!("set=1\npublic_key={PUB_HEX}\nlisten_port=1\n\n"),
        ] {
            assert_eq!(parse_request(&bad), Err(EINVAL), "{bad:?}");
        }
        let v2 = format!("set=1\npublic_key={PUB_HEX}\nprotocol_version=2\n\n");
        assert_eq!(parse_request(&v2), Err(EPROTO));
    }

    #[test]
    fn get_answer_has_what_wg_show_reads() {
        let d = DeviceSnapshot {
            private_key: Some(PrivateKey::from_bytes([0x11; 32])),
            listen_port: 51820,
            fwmark: 0,
            peers: vec![PeerSnapshot {
                public_key: PublicKey::from_bytes(from_hex(PUB_HEX).expect("hex")),
                preshared_key: None,
                endpoint: Some("192.0.2.7:40000".parse().expect("addr")),
                last_handshake: Some(Duration::new(1_700_000_000, 5)),
                tx_bytes: 1234,
                rx_bytes: 5678,
                persistent_keepalive: 0,
                allowed_ips: vec!["10.0.0.2/32".parse().expect("net")],
            }],
        };
        let text = render_get(&d);
        let expected = format!(
            "private_key={}\nlisten_port=51820\npublic_key={PUB_HEX}\nprotocol_version=1\n\
             endpoint=192.0.2.7:40000\nlast_handshake_time_sec=1700000000\n\
             last_handshake_time_nsec=5\ntx_bytes=1234\nrx_bytes=5678\n\
             persistent_keepalive_interval=0\nallowed_ip=10.0.0.2/32\nerrno=0\n\n",
            "11".repeat(32)
        );
        assert_eq!(text, expected);
        assert_eq!(render_errno(EINVAL), "errno=22\n\n");
    }
}
