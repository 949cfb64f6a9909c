//! One peer of a device: its identity, where it was last seen, and its tunnel — a
//! `boringtun::noise::Tunn` that exists only while the peer is in use.
//!
//! A `Tunn` is 11 KiB however idle (eight session slots, inline), so a server with 1000
//! configured clients would hold 11 MiB for peers that mostly sleep. Instead the tunnel is
//! created on the first handshake, on the first packet for a peer with a known endpoint, or
//! when the device reaches out to a peer that may still hold a session (only peers seen
//! within [`IDLE_AFTER`], see `Device::set_peer_and_resume`), and dropped again once it has
//! been idle for [`IDLE_AFTER`] (no handshake for that long — boringtun itself wipes the
//! sessions at that point). Byte counters and the last handshake
//! time of dropped tunnels are kept, so statistics continue across it. An idle configured
//! peer costs its `Peer` (≈ 200 bytes) plus its map and prefix-tree entries.

use super::datapath::PeerStats;
use crate::sync::lock;
use boringtun::noise::Tunn;
use boringtun::x25519;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// A tunnel without a handshake for this long is dropped (3 × REJECT_AFTER_TIME, the point
/// where WireGuard gives a session up entirely).
pub const IDLE_AFTER: Duration = Duration::from_secs(540);

/// Everything needed to build the peer's tunnel, fixed for the peer's life (a new preshared
/// key, keepalive or device key makes a new `Peer`).
pub struct Peer {
    pub index: u32,
    secret: x25519::StaticSecret,
    public: x25519::PublicKey,
    psk: Option<[u8; 32]>,
    keepalive: Option<u16>,
    link: Mutex<Link>,
    endpoint: Mutex<Option<SocketAddr>>,
}

/// The tunnel, if any, and what dropped tunnels left behind.
#[derive(Default)]
pub struct Link {
    tunn: Option<Box<Tunn>>,
    created: Option<Instant>,
    rx: u64,
    tx: u64,
    /// Time since the Unix epoch of the last handshake of a dropped tunnel.
    last_handshake: Option<Duration>,
}

fn epoch_now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Whether a tunnel created `age` ago whose last handshake was `since_handshake` ago (None:
/// never) should be dropped.
pub fn is_idle(age: Duration, since_handshake: Option<Duration>) -> bool {
    age >= IDLE_AFTER && since_handshake.is_none_or(|d| d >= IDLE_AFTER)
}

impl Peer {
    pub fn new(
        index: u32,
        secret: x25519::StaticSecret,
        public: x25519::PublicKey,
        psk: Option<[u8; 32]>,
        keepalive: Option<u16>,
        endpoint: Option<SocketAddr>,
    ) -> Peer {
        Peer {
            index,
            secret,
            public,
            psk,
            keepalive,
            link: Mutex::new(Link::default()),
            endpoint: Mutex::new(endpoint),
        }
    }

    pub fn endpoint(&self) -> Option<SocketAddr> {
        *lock(&self.endpoint)
    }

    pub fn set_endpoint(&self, ep: SocketAddr) {
        *lock(&self.endpoint) = Some(ep);
    }

    /// Locks the link for one packet's work.
    pub fn link(&self) -> MutexGuard<'_, Link> {
        lock(&self.link)
    }

    pub fn stats(&self) -> PeerStats {
        let link = self.link();
        let (last, rx, tx) = link.totals();
        PeerStats {
            last_handshake: last,
            rx_bytes: rx,
            tx_bytes: tx,
            endpoint: self.endpoint(),
        }
    }

    /// The tunnel, created now if the peer had none.
    pub fn tunnel<'a>(&self, link: &'a mut Link) -> &'a mut Tunn {
        if link.tunn.is_none() {
            link.created = Some(Instant::now());
        }
        link.tunn.get_or_insert_with(|| {
            Box::new(Tunn::new(
                self.secret.clone(),
                self.public,
                self.psk,
                self.keepalive,
                self.index,
                None,
            ))
        })
    }
}

impl Link {
    /// The live tunnel, if the peer has one.
    pub fn existing(&mut self) -> Option<&mut Tunn> {
        self.tunn.as_deref_mut()
    }

    /// (last handshake since the epoch, received bytes, sent bytes), across dropped tunnels.
    pub fn totals(&self) -> (Option<Duration>, u64, u64) {
        match &self.tunn {
            None => (self.last_handshake, self.rx, self.tx),
            Some(t) => {
                let (since, tx, rx, _, _) = t.stats();
                let last = since
                    .and_then(|d| epoch_now().checked_sub(d))
                    .or(self.last_handshake);
                (last, self.rx + rx as u64, self.tx + tx as u64)
            }
        }
    }

    /// Drops the tunnel if it has been idle long enough; returns whether it did.
    pub fn retire_if_idle(&mut self) -> bool {
        let idle = match (&self.tunn, self.created) {
            (Some(t), Some(created)) => is_idle(created.elapsed(), t.stats().0),
            _ => false,
        };
        if idle {
            self.retire();
        }
        idle
    }

    /// Folds the tunnel's figures into the totals and drops it.
    pub fn retire(&mut self) {
        let (last, rx, tx) = self.totals();
        self.last_handshake = last;
        self.rx = rx;
        self.tx = tx;
        self.tunn = None;
        self.created = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boringtun::noise::TunnResult;

    #[test]
    fn idleness() {
        let min = Duration::from_secs(60);
        assert!(!is_idle(min, None), "young tunnel");
        assert!(is_idle(IDLE_AFTER, None), "never completed a handshake");
        assert!(!is_idle(IDLE_AFTER * 2, Some(min)), "recent handshake");
        assert!(is_idle(IDLE_AFTER * 2, Some(IDLE_AFTER)), "old handshake");
    }

    fn keypair() -> (x25519::StaticSecret, x25519::PublicKey) {
        let k = crate::wireguard::keys::PrivateKey::generate().to_static_secret();
        let p = x25519::PublicKey::from(&k);
        (k, p)
    }

    /// A ping-sized IPv4 packet from 10.0.0.2 to 10.0.0.1.
    fn packet() -> Vec<u8> {
        let mut p = vec![0u8; 84];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&84u16.to_be_bytes());
        p[8] = 64;
        p[9] = 1;
        p[12..16].copy_from_slice(&[10, 0, 0, 2]);
        p[16..20].copy_from_slice(&[10, 0, 0, 1]);
        p
    }

    #[test]
    fn lazy_tunnel_handshakes_and_keeps_counters_when_retired() {
        let (srv_key, srv_pub) = keypair();
        let (cli_key, cli_pub) = keypair();
        let server = Peer::new(1, srv_key, cli_pub, None, None, None);
        let mut client = Tunn::new(cli_key, srv_pub, None, None, 2, None);
        assert!(server.link().existing().is_none(), "no tunnel before use");

        let mut buf = vec![0u8; 2048];
        let mut out = vec![0u8; 2048];
        // client → handshake initiation → server (tunnel created on demand) → response
        let init = match client.format_handshake_initiation(&mut buf, false) {
            TunnResult::WriteToNetwork(p) => p.to_vec(),
            r => panic!("{r:?}"),
        };
        let resp = {
            let mut link = server.link();
            match server.tunnel(&mut link).decapsulate(None, &init, &mut out) {
                TunnResult::WriteToNetwork(p) => p.to_vec(),
                r => panic!("{r:?}"),
            }
        };
        // client completes the handshake (and sends a keepalive), then data
        let keepalive = match client.decapsulate(None, &resp, &mut buf) {
            TunnResult::WriteToNetwork(p) => p.to_vec(),
            r => panic!("{r:?}"),
        };
        let data = match client.encapsulate(&packet(), &mut buf) {
            TunnResult::WriteToNetwork(p) => p.to_vec(),
            r => panic!("{r:?}"),
        };
        {
            let mut link = server.link();
            let t = server.tunnel(&mut link);
            assert!(matches!(
                t.decapsulate(None, &keepalive, &mut out),
                TunnResult::Done
            ));
            match t.decapsulate(None, &data, &mut out) {
                TunnResult::WriteToTunnelV4(p, src) => {
                    assert_eq!(p, &packet()[..]);
                    assert_eq!(src, std::net::Ipv4Addr::new(10, 0, 0, 2));
                }
                r => panic!("{r:?}"),
            }
        }
        let before = server.stats();
        assert_eq!(before.rx_bytes, 84);
        assert!(before.last_handshake.is_some());

        // Retiring keeps the figures and frees the tunnel; a new one starts from them.
        let mut link = server.link();
        assert!(!link.retire_if_idle(), "fresh tunnel is not idle");
        link.retire();
        assert!(link.existing().is_none());
        drop(link);
        let after = server.stats();
        assert_eq!(
            (after.rx_bytes, after.tx_bytes),
            (before.rx_bytes, before.tx_bytes)
        );
        // (now - time since handshake) moves by microseconds between two reads
        let (a, b) = (after.last_handshake, before.last_handshake);
        let drift = a.zip(b).map(|(a, b)| a.abs_diff(b));
        assert!(
            drift.is_some_and(|d| d < Duration::from_secs(1)),
            "{a:?} {b:?}"
        );
        let mut link = server.link();
        server.tunnel(&mut link);
        drop(link);
        assert_eq!(server.stats().rx_bytes, 84);
    }
}
