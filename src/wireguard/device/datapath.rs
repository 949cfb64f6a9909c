//! A userspace WireGuard device: one TUN interface, UDP sockets (IPv4 and IPv6) on the
//! listen port, and one `boringtun::noise::Tunn` per peer, wired together on tokio.
//!
//! ```text
//!   TUN ──read──► tun task ──LPM(dst)──► peer.tunn.encapsulate ──► UDP send_to(peer endpoint)
//!   UDP ──recv──► udp task ──index / handshake──► peer.tunn.decapsulate ──src check──► TUN write
//!   timer task (250 ms): every peer's update_timers (rekey, keepalive, expiry) + rate-limit reset
//!   UAPI task: /var/run/wireguard/<iface>.sock (`wg show`, `wg set`), see `uapi_socket`
//! ```
//!
//! Routing follows the whitepaper: an outgoing packet goes to the peer whose allowed IPs hold the
//! longest match of its destination; an incoming packet is written to the TUN only if its source is
//! in the sending peer's allowed IPs. A handshake initiation names no receiver, so its sender's
//! static key is recovered first (`parse_handshake_anon`, after the device's rate limiter has
//! checked the MAC and applied cookies under load); every other message carries our 24-bit peer
//! index in its receiver field.
//!
//! ## Resources
//! - **Threads:** none of its own; the device's tasks (TUN, one per UDP socket, timers, UAPI)
//!   run on the shared tokio runtime (one worker per core, at most 4).
//! - **Memory per device:** two packet buffers of [`BUF`] bytes for each packet task (TUN,
//!   UDP v4, UDP v6: 6 × 9 KiB = 54 KiB), the device rate limiter, the kernel's socket
//!   buffers. `BENCHMARKS.md`: a started server with no clients adds ≈ 0.2 MiB RSS.
//! - **Memory per peer:** a configured peer costs ≈ 0.5 KiB (its `Peer`, map entries, its
//!   allowed IPs in the prefix tree); its 11 KiB `Tunn` exists only while it is in use
//!   (see [`super::peer`]). Measured with 100 and 1000 configured clients in `BENCHMARKS.md`.
//! - **No per-peer packet queue:** boringtun queues up to 256 packets per peer while a
//!   handshake is under way. We never let it: a packet for a peer without a live session
//!   starts a handshake and is dropped (TCP resends it), so traffic towards 1000 idle clients
//!   cannot grow memory.

use super::allowed_ips::AllowedIps;
use super::peer::Peer;
use super::tun::{Tun, TunError};
use super::uapi::{DeviceSnapshot, PeerSnapshot, SetDevice};
use crate::sync::lock;
use crate::wireguard::keys::{PresharedKey, PrivateKey, PublicKey};
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Packet, Tunn, TunnResult};
use boringtun::x25519;
use ipnet::IpNet;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Packet buffer size: the largest MTU we configure (9000) plus WireGuard's 32-byte overhead,
/// rounded up. A larger packet is dropped by the kernel before it reaches us (MTU).
pub const BUF: usize = 9216;
/// Handshake initiations per second the device answers before it demands cookies.
const HANDSHAKE_RATE_LIMIT: u64 = 100;
/// How often per-peer timers run (boringtun's timers have 250 ms granularity in practice).
const TIMER_TICK: Duration = Duration::from_millis(250);
/// A session is unusable this long after its handshake (WireGuard's REJECT_AFTER_TIME).
pub const SESSION_LIFETIME: Duration = Duration::from_secs(180);

#[derive(Debug)]
pub enum DeviceError {
    /// No TUN / no privilege: the API answers 503.
    Unavailable(String),
    /// The listen port is taken or cannot be bound.
    Bind(String),
    Other(String),
}

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceError::Unavailable(m) | DeviceError::Bind(m) | DeviceError::Other(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for DeviceError {}

impl From<TunError> for DeviceError {
    fn from(e: TunError) -> Self {
        match e {
            TunError::Unavailable(m) => DeviceError::Unavailable(m),
            other => DeviceError::Other(other.to_string()),
        }
    }
}

/// What the owner of a device says about one peer.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerConfig {
    pub public_key: PublicKey,
    pub preshared_key: Option<PresharedKey>,
    /// Where to send before the peer has spoken; learnt (and updated) from its packets.
    pub endpoint: Option<SocketAddr>,
    /// Seconds, 0 = off.
    pub persistent_keepalive: u16,
    pub allowed_ips: Vec<IpNet>,
}

/// A peer's live figures, read from its `Tunn`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PeerStats {
    /// Time since the Unix epoch of the last completed handshake.
    pub last_handshake: Option<Duration>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub endpoint: Option<SocketAddr>,
}

struct PeerEntry {
    peer: Arc<Peer>,
    config: PeerConfig,
}

struct StaticKeys {
    private: PrivateKey,
    secret: x25519::StaticSecret,
    public: x25519::PublicKey,
    limiter: Arc<RateLimiter>,
}

impl StaticKeys {
    fn new(private: PrivateKey) -> StaticKeys {
        let secret = private.to_static_secret();
        let public = x25519::PublicKey::from(&secret);
        StaticKeys {
            limiter: Arc::new(RateLimiter::new(&public, HANDSHAKE_RATE_LIMIT)),
            private,
            secret,
            public,
        }
    }
}

struct State {
    keys: StaticKeys,
    fwmark: u32,
    peers: HashMap<[u8; 32], PeerEntry>,
    by_index: HashMap<u32, Arc<Peer>>,
    routes: AllowedIps<u32>,
    next_index: u32,
}

impl State {
    /// A fresh 24-bit index (boringtun puts a session counter in the low 8 bits).
    fn allocate_index(&mut self) -> u32 {
        loop {
            self.next_index = (self.next_index + 1) & 0x00ff_ffff;
            if self.next_index != 0 && !self.by_index.contains_key(&self.next_index) {
                return self.next_index;
            }
        }
    }

    fn new_peer(&self, config: &PeerConfig, index: u32, endpoint: Option<SocketAddr>) -> Peer {
        Peer::new(
            index,
            self.keys.secret.clone(),
            config.public_key.to_x25519(),
            config.preshared_key.as_ref().map(PresharedKey::to_bytes),
            (config.persistent_keepalive > 0).then_some(config.persistent_keepalive),
            endpoint,
        )
    }

    /// Returns the peer when it got a fresh `Peer` (it is new, or its keys or timers
    /// changed): then it has no session, whatever the other side still believes.
    fn set_peer(&mut self, config: PeerConfig) -> Option<Arc<Peer>> {
        let key = *config.public_key.as_bytes();
        let reuse = self.peers.get(&key).filter(|e| {
            e.config.preshared_key == config.preshared_key
                && e.config.persistent_keepalive == config.persistent_keepalive
        });
        let (peer, fresh) = match reuse {
            // Same keys and timers: keep the session, only routes/endpoint change.
            Some(e) => (Arc::clone(&e.peer), false),
            None => {
                let (index, endpoint) = match self.peers.get(&key) {
                    Some(e) => (e.peer.index, e.peer.endpoint()),
                    None => (self.allocate_index(), None),
                };
                let peer = Arc::new(self.new_peer(&config, index, endpoint));
                self.by_index.insert(index, Arc::clone(&peer));
                (peer, true)
            }
        };
        if let Some(ep) = config.endpoint {
            peer.set_endpoint(ep);
        }
        self.routes.remove_peer(peer.index);
        for net in &config.allowed_ips {
            self.routes.insert(*net, peer.index);
        }
        self.peers.insert(
            key,
            PeerEntry {
                peer: Arc::clone(&peer),
                config,
            },
        );
        fresh.then_some(peer)
    }

    fn remove_peer(&mut self, key: &PublicKey) -> Option<Arc<Peer>> {
        let e = self.peers.remove(key.as_bytes())?;
        self.by_index.remove(&e.peer.index);
        self.routes.remove_peer(e.peer.index);
        Some(e.peer)
    }

    fn set_private_key(&mut self, private: PrivateKey) {
        self.keys = StaticKeys::new(private);
        // New static key: every session is void; rebuild the tunnels, keep indices/endpoints.
        let rebuilt: Vec<([u8; 32], Arc<Peer>)> = self
            .peers
            .iter()
            .map(|(key, e)| {
                let peer = self.new_peer(&e.config, e.peer.index, e.peer.endpoint());
                (*key, Arc::new(peer))
            })
            .collect();
        for (key, peer) in rebuilt {
            self.by_index.insert(peer.index, Arc::clone(&peer));
            if let Some(e) = self.peers.get_mut(&key) {
                e.peer = peer;
            }
        }
    }
}

struct Sockets {
    v4: Option<Arc<UdpSocket>>,
    v6: Option<Arc<UdpSocket>>,
    port: u16,
}

impl Sockets {
    fn for_addr(&self, addr: &SocketAddr) -> Option<(&UdpSocket, SocketAddr)> {
        match addr {
            SocketAddr::V4(_) => self.v4.as_deref().map(|s| (s, *addr)),
            SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
                Some(v4) => self
                    .v4
                    .as_deref()
                    .map(|s| (s, SocketAddr::new(IpAddr::V4(v4), a.port()))),
                None => self.v6.as_deref().map(|s| (s, *addr)),
            },
        }
    }
}

/// Everything the device's tasks share.
pub(crate) struct Inner {
    name: String,
    tun: Tun,
    state: RwLock<State>,
    sockets: RwLock<Arc<Sockets>>,
    udp_tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// Offset of `part` inside the buffer starting at `base` (boringtun hands back sub-slices).
fn offset(base: usize, part: &[u8]) -> usize {
    part.as_ptr() as usize - base
}

/// A running device. Dropping it without [`Device::shutdown`] aborts its tasks; the TUN
/// interface disappears once they have let go of it.
pub struct Device {
    inner: Arc<Inner>,
    tasks: Vec<JoinHandle<()>>,
    uapi_path: Option<PathBuf>,
}

/// How a device is brought up.
pub struct DeviceConfig {
    pub interface: String,
    pub private_key: PrivateKey,
    /// 0 picks a free port.
    pub listen_port: u16,
    pub fwmark: u32,
    /// Directory of the UAPI socket (`/var/run/wireguard`); `None` = no socket.
    pub uapi_dir: Option<PathBuf>,
}

impl Device {
    /// Creates the TUN interface, binds the UDP sockets and starts the tasks. The interface is
    /// left down and unaddressed: that is netlink's job (see `wg::netlink`).
    pub async fn start(cfg: DeviceConfig) -> Result<Device, DeviceError> {
        let sockets = bind(cfg.listen_port, cfg.fwmark)?;
        let tun = Tun::open(&cfg.interface)?;
        let inner = Arc::new(Inner {
            name: tun.name().to_string(),
            tun,
            state: RwLock::new(State {
                keys: StaticKeys::new(cfg.private_key),
                fwmark: cfg.fwmark,
                peers: HashMap::new(),
                by_index: HashMap::new(),
                routes: AllowedIps::new(),
                next_index: random_index(),
            }),
            sockets: RwLock::new(Arc::new(sockets)),
            udp_tasks: Mutex::new(Vec::new()),
        });
        inner.spawn_udp_tasks();
        let mut tasks = vec![
            tokio::spawn(tun_task(Arc::clone(&inner))),
            tokio::spawn(timer_task(Arc::clone(&inner))),
        ];
        let mut uapi_path = None;
        if let Some(dir) = cfg.uapi_dir {
            match super::uapi_socket::listen(&dir, &inner.name) {
                Ok((listener, path)) => {
                    tasks.push(tokio::spawn(super::uapi_socket::serve(
                        listener,
                        Arc::clone(&inner),
                    )));
                    uapi_path = Some(path);
                }
                // `wg show` not working is no reason to refuse the tunnel.
                Err(e) => log::warn!("{}: no UAPI socket: {e}", inner.name),
            }
        }
        log::info!(
            "{}: WireGuard device up, UDP port {}",
            inner.name,
            inner.listen_port()
        );
        Ok(Device {
            inner,
            tasks,
            uapi_path,
        })
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn listen_port(&self) -> u16 {
        self.inner.listen_port()
    }

    pub fn public_key(&self) -> PublicKey {
        read(&self.inner.state).keys.private.public_key()
    }

    /// Adds the peer or changes it in place. The session survives a change of allowed IPs or
    /// endpoint; a new preshared key or keepalive starts a fresh `Tunn` (one new handshake).
    pub fn set_peer(&self, config: PeerConfig) {
        write(&self.inner.state).set_peer(config);
    }

    /// [`set_peer`](Self::set_peer), and when that leaves the peer without a session (it is
    /// new here, or its keys changed) while we know where it is — its endpoint on this
    /// device, else `last_seen` — sends it a handshake initiation at once. The other side
    /// may still hold the session we have just lost (this device replaced one that had it,
    /// or the peer was removed and added again) and would keep sending on it, unanswered,
    /// until its own timers start a handshake (10–15 s).
    pub async fn set_peer_and_resume(&self, config: PeerConfig, last_seen: Option<SocketAddr>) {
        let fresh = write(&self.inner.state).set_peer(config);
        if let Some(peer) = fresh {
            self.inner.resume(&peer, last_seen).await;
        }
    }

    /// Sends the peer a handshake initiation now, to its endpoint on this device or else
    /// `last_seen` (which becomes its endpoint). For a device just started with peers that
    /// may still hold sessions with the one before it.
    pub async fn resume_peer(&self, key: &PublicKey, last_seen: Option<SocketAddr>) {
        let peer = read(&self.inner.state)
            .peers
            .get(key.as_bytes())
            .map(|e| Arc::clone(&e.peer));
        if let Some(peer) = peer {
            self.inner.resume(&peer, last_seen).await;
        }
    }

    /// Removes the peer; returns its figures (where it was last seen) if it was there.
    pub fn remove_peer(&self, key: &PublicKey) -> Option<PeerStats> {
        let removed = write(&self.inner.state).remove_peer(key);
        removed.map(|p| p.stats())
    }

    /// Removes every peer not in `keep`.
    pub fn retain_peers(&self, keep: &[PublicKey]) {
        let mut st = write(&self.inner.state);
        let gone: Vec<PublicKey> = st
            .peers
            .values()
            .map(|e| e.config.public_key)
            .filter(|k| !keep.contains(k))
            .collect();
        for k in gone {
            st.remove_peer(&k);
        }
    }

    pub fn peer_stats(&self, key: &PublicKey) -> Option<PeerStats> {
        let st = read(&self.inner.state);
        st.peers.get(key.as_bytes()).map(|e| e.peer.stats())
    }

    /// Stats of the peers with `keys`, in that order (`None`: no such peer), read under one
    /// lock: what a list of clients shows.
    pub fn stats_of(&self, keys: &[PublicKey]) -> Vec<Option<PeerStats>> {
        let st = read(&self.inner.state);
        keys.iter()
            .map(|k| st.peers.get(k.as_bytes()).map(|e| e.peer.stats()))
            .collect()
    }

    /// Stats of every peer, by public key.
    pub fn all_stats(&self) -> HashMap<PublicKey, PeerStats> {
        let st = read(&self.inner.state);
        st.peers
            .values()
            .map(|e| (e.config.public_key, e.peer.stats()))
            .collect()
    }

    pub fn snapshot(&self) -> DeviceSnapshot {
        self.inner.snapshot()
    }

    /// Stops the tasks and waits for them, so the TUN descriptor is closed (and the kernel
    /// interface gone) when this returns; removes the UAPI socket.
    pub async fn shutdown(mut self) {
        let mut tasks = std::mem::take(&mut self.tasks);
        tasks.append(&mut lock(&self.inner.udp_tasks));
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        if let Some(p) = self.uapi_path.take() {
            let _ = std::fs::remove_file(p);
        }
        log::info!("{}: WireGuard device down", self.inner.name);
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        for t in self.tasks.iter().chain(lock(&self.inner.udp_tasks).iter()) {
            t.abort();
        }
        if let Some(p) = self.uapi_path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn random_index() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::getrandom(&mut b);
    u32::from_le_bytes(b) & 0x00ff_ffff
}

/// Binds the IPv4 socket and an IPv6-only socket on the same port. A host without IPv6 runs
/// on IPv4 alone; the IPv4 socket is required.
fn bind(port: u16, fwmark: u32) -> Result<Sockets, DeviceError> {
    let v4 = udp_socket(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)), fwmark)
        .map_err(|e| DeviceError::Bind(format!("cannot bind UDP port {port}: {e}")))?;
    let port = v4
        .local_addr()
        .map_err(|e| DeviceError::Bind(e.to_string()))?
        .port();
    let v6 = match udp_socket(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)), fwmark) {
        Ok(s) => Some(Arc::new(s)),
        Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => None,
        Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => None,
        Err(e) => {
            return Err(DeviceError::Bind(format!(
                "cannot bind UDP port [::]:{port}: {e}"
            )))
        }
    };
    Ok(Sockets {
        v4: Some(Arc::new(v4)),
        v6,
        port,
    })
}

fn udp_socket(addr: SocketAddr, fwmark: u32) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::DGRAM.cloexec(), Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    if fwmark != 0 {
        set_mark(&s, fwmark)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

fn set_mark(s: &impl AsRawFd, mark: u32) -> io::Result<()> {
    // SAFETY: setsockopt with a pointer to a live u32 and its size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            (&mark as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Inner {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    fn listen_port(&self) -> u16 {
        read(&self.sockets).port
    }

    fn sockets(&self) -> Arc<Sockets> {
        Arc::clone(&read(&self.sockets))
    }

    fn spawn_udp_tasks(self: &Arc<Self>) {
        let sockets = self.sockets();
        let mut tasks = lock(&self.udp_tasks);
        for t in tasks.drain(..) {
            t.abort();
        }
        for s in [&sockets.v4, &sockets.v6].into_iter().flatten() {
            tasks.push(tokio::spawn(udp_task(Arc::clone(self), Arc::clone(s))));
        }
    }

    async fn send_to(&self, packet: &[u8], to: SocketAddr) {
        let sockets = self.sockets();
        let Some((sock, to)) = sockets.for_addr(&to) else {
            return;
        };
        if let Err(e) = sock.send_to(packet, to).await {
            log::debug!("{}: send to {to}: {e}", self.name);
        }
    }

    pub(crate) fn snapshot(&self) -> DeviceSnapshot {
        let st = read(&self.state);
        let mut peers: Vec<PeerSnapshot> = st
            .peers
            .values()
            .map(|e| {
                let s = e.peer.stats();
                PeerSnapshot {
                    public_key: e.config.public_key,
                    preshared_key: e.config.preshared_key.clone(),
                    endpoint: s.endpoint,
                    last_handshake: s.last_handshake,
                    tx_bytes: s.tx_bytes,
                    rx_bytes: s.rx_bytes,
                    persistent_keepalive: e.config.persistent_keepalive,
                    allowed_ips: e.config.allowed_ips.clone(),
                }
            })
            .collect();
        peers.sort_by(|a, b| a.public_key.as_bytes().cmp(b.public_key.as_bytes()));
        DeviceSnapshot {
            private_key: Some(st.keys.private.clone()),
            listen_port: self.listen_port(),
            fwmark: st.fwmark,
            peers,
        }
    }

    /// Applies a UAPI `set` (what `wg set` / `wg setconf` send). `Err(errno)` on failure; a
    /// failed request may have applied its earlier lines, as in the reference implementations.
    pub(crate) fn apply(self: &Arc<Self>, set: SetDevice) -> Result<(), i32> {
        if let Some(port) = set.listen_port {
            if port != self.listen_port() || set.fwmark.is_some() {
                let fwmark = set.fwmark.unwrap_or_else(|| read(&self.state).fwmark);
                let sockets = bind(port, fwmark).map_err(|_| libc::EADDRINUSE)?;
                *write(&self.sockets) = Arc::new(sockets);
                self.spawn_udp_tasks();
            }
        } else if let Some(mark) = set.fwmark {
            let sockets = self.sockets();
            for s in [&sockets.v4, &sockets.v6].into_iter().flatten() {
                set_mark(s.as_ref(), mark).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
            }
        }
        let mut st = write(&self.state);
        if let Some(mark) = set.fwmark {
            st.fwmark = mark;
        }
        match set.private_key {
            Some(Some(k)) => st.set_private_key(k),
            // A device without a private key cannot run; we do not support removing it.
            Some(None) => return Err(libc::EINVAL),
            None => {}
        }
        if set.replace_peers {
            let keys: Vec<PublicKey> = st.peers.values().map(|e| e.config.public_key).collect();
            for k in keys {
                st.remove_peer(&k);
            }
        }
        for p in set.peers {
            if p.remove {
                st.remove_peer(&p.public_key);
                continue;
            }
            let existing = st
                .peers
                .get(p.public_key.as_bytes())
                .map(|e| e.config.clone());
            if existing.is_none() && p.update_only {
                continue;
            }
            let mut config = existing.unwrap_or(PeerConfig {
                public_key: p.public_key,
                preshared_key: None,
                endpoint: None,
                persistent_keepalive: 0,
                allowed_ips: Vec::new(),
            });
            if let Some(psk) = p.preshared_key {
                config.preshared_key = psk;
            }
            config.endpoint = p.endpoint;
            if let Some(k) = p.persistent_keepalive {
                config.persistent_keepalive = k;
            }
            if p.replace_allowed_ips {
                config.allowed_ips.clear();
            }
            for net in p.allowed_ips {
                if !config.allowed_ips.contains(&net) {
                    config.allowed_ips.push(net);
                }
            }
            st.set_peer(config);
        }
        Ok(())
    }

    /// Sends `peer` a handshake initiation if its endpoint (else `last_seen`) is known. Its
    /// tunnel is created
    /// for it; boringtun's timers retry (every 5 s, for 90 s) if no answer comes, and an
    /// unanswered tunnel is dropped once idle (see [`super::peer`]), so memory stays bounded.
    async fn resume(&self, peer: &Peer, last_seen: Option<SocketAddr>) {
        let endpoint = match (peer.endpoint(), last_seen) {
            (Some(ep), _) => ep,
            (None, Some(ep)) => {
                peer.set_endpoint(ep);
                ep
            }
            (None, None) => return,
        };
        // A handshake initiation is 148 bytes.
        let mut out = [0u8; 256];
        let base = out.as_ptr() as usize;
        let range = {
            let mut link = peer.link();
            match peer
                .tunnel(&mut link)
                .format_handshake_initiation(&mut out, false)
            {
                TunnResult::WriteToNetwork(p) => offset(base, p)..offset(base, p) + p.len(),
                _ => return,
            }
        };
        log::debug!("{}: handshake initiation to {endpoint}", self.name);
        self.send_to(&out[range], endpoint).await;
    }

    /// One packet from the TUN: find its peer, encrypt, send.
    async fn outbound(&self, packet: &[u8], out: &mut [u8]) {
        let Some(dst) = Tunn::dst_address(packet) else {
            return;
        };
        let peer = {
            let st = read(&self.state);
            match st.routes.lookup(dst).and_then(|i| st.by_index.get(&i)) {
                Some(p) => Arc::clone(p),
                None => return,
            }
        };
        let Some(endpoint) = peer.endpoint() else {
            return; // never heard from, no configured endpoint: nowhere to send
        };
        let base = out.as_ptr() as usize;
        let range = {
            let mut link = peer.link();
            let tunn = peer.tunnel(&mut link);
            let live = matches!(tunn.stats().0, Some(d) if d < SESSION_LIFETIME);
            let res = if live {
                tunn.encapsulate(packet, out)
            } else {
                // No usable session: start a handshake (unless one is under way) and drop the
                // packet rather than letting boringtun queue it (bounded memory).
                tunn.format_handshake_initiation(out, false)
            };
            match res {
                TunnResult::WriteToNetwork(p) => offset(base, p)..offset(base, p) + p.len(),
                TunnResult::Err(e) => {
                    log::trace!("{}: encapsulate: {e:?}", self.name);
                    return;
                }
                _ => return,
            }
        };
        self.send_to(&out[range], endpoint).await;
    }

    /// The peer a datagram is for; for a handshake initiation, after checking its MAC (and
    /// demanding a cookie under load, in which case the reply is returned instead).
    fn peer_for(
        &self,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Result<(Arc<Peer>, bool), Option<usize>> {
        let st = read(&self.state);
        let packet = Tunn::parse_incoming_packet(datagram).map_err(|_| None)?;
        let index = match packet {
            Packet::HandshakeInit(ref init) => {
                let base = out.as_ptr() as usize;
                match st
                    .keys
                    .limiter
                    .verify_packet(Some(from.ip()), datagram, out)
                {
                    Ok(_) => {}
                    Err(TunnResult::WriteToNetwork(cookie)) => {
                        debug_assert_eq!(offset(base, cookie), 0);
                        return Err(Some(cookie.len()));
                    }
                    Err(_) => return Err(None),
                }
                let half = parse_handshake_anon(&st.keys.secret, &st.keys.public, init)
                    .map_err(|_| None)?;
                let entry = st.peers.get(&half.peer_static_public).ok_or(None)?;
                return Ok((Arc::clone(&entry.peer), true));
            }
            Packet::HandshakeResponse(ref p) => p.receiver_idx,
            Packet::PacketCookieReply(ref p) => p.receiver_idx,
            Packet::PacketData(ref p) => p.receiver_idx,
        };
        let peer = st.by_index.get(&(index >> 8)).cloned().ok_or(None)?;
        Ok((peer, false))
    }

    /// One datagram from the network: decrypt, check the source, write to the TUN; send
    /// whatever the protocol answers (handshake response, keepalive, queued data).
    async fn inbound(&self, from: SocketAddr, datagram: &[u8], out: &mut [u8]) {
        let (peer, handshake) = match self.peer_for(from, datagram, out) {
            Ok(p) => p,
            Err(Some(cookie_len)) => {
                self.send_to(&out[..cookie_len], from).await;
                return;
            }
            Err(None) => return,
        };
        let base = out.as_ptr() as usize;
        let mut input = datagram;
        loop {
            enum Next {
                Network(std::ops::Range<usize>),
                Tunnel(std::ops::Range<usize>, IpAddr),
                Done,
            }
            let next = {
                let mut link = peer.link();
                // Only a handshake initiation brings a tunnel to life; anything else for a
                // peer without one is stale (or forged) and is dropped without allocating.
                let tunn = match link.existing() {
                    Some(t) => t,
                    None if handshake => peer.tunnel(&mut link),
                    None => return,
                };
                match tunn.decapsulate(Some(from.ip()), input, out) {
                    TunnResult::WriteToNetwork(p) => {
                        Next::Network(offset(base, p)..offset(base, p) + p.len())
                    }
                    TunnResult::WriteToTunnelV4(p, src) => {
                        Next::Tunnel(offset(base, p)..offset(base, p) + p.len(), src.into())
                    }
                    TunnResult::WriteToTunnelV6(p, src) => {
                        Next::Tunnel(offset(base, p)..offset(base, p) + p.len(), src.into())
                    }
                    TunnResult::Done => Next::Done,
                    TunnResult::Err(e) => {
                        log::trace!("{}: decapsulate from {from}: {e:?}", self.name);
                        return;
                    }
                }
            };
            // Authenticated: this is where the peer is now (roaming).
            peer.set_endpoint(from);
            match next {
                Next::Network(r) => {
                    self.send_to(&out[r], from).await;
                    // Repeat with no input until boringtun has nothing more to send.
                    input = &[];
                }
                Next::Tunnel(r, src) => {
                    let allowed = read(&self.state).routes.allows(peer.index, src);
                    if allowed {
                        if let Err(e) = self.tun.send(&out[r]).await {
                            log::debug!("{}: TUN write: {e}", self.name);
                        }
                    } else {
                        log::trace!(
                            "{}: dropped packet from {src}: not in allowed IPs",
                            self.name
                        );
                    }
                    return;
                }
                Next::Done => return,
            }
        }
    }

    /// Timers of every peer: handshake retries, rekeying, keepalives, session expiry.
    async fn tick(&self, out: &mut [u8]) {
        let peers: Vec<Arc<Peer>> = read(&self.state)
            .peers
            .values()
            .map(|e| Arc::clone(&e.peer))
            .collect();
        let base = out.as_ptr() as usize;
        for peer in peers {
            let range = {
                let mut link = peer.link();
                if link.retire_if_idle() {
                    continue;
                }
                let Some(tunn) = link.existing() else {
                    continue;
                };
                match tunn.update_timers(out) {
                    TunnResult::WriteToNetwork(p) => offset(base, p)..offset(base, p) + p.len(),
                    _ => continue,
                }
            };
            if let Some(ep) = peer.endpoint() {
                self.send_to(&out[range], ep).await;
            }
        }
    }
}

async fn tun_task(inner: Arc<Inner>) {
    let mut buf = vec![0u8; BUF];
    let mut out = vec![0u8; BUF];
    loop {
        match inner.tun.recv(&mut buf).await {
            Ok(n) => inner.outbound(&buf[..n], &mut out).await,
            Err(e) => {
                log::warn!("{}: TUN read: {e}", inner.name);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn udp_task(inner: Arc<Inner>, socket: Arc<UdpSocket>) {
    let mut buf = vec![0u8; BUF];
    let mut out = vec![0u8; BUF];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => inner.inbound(from, &buf[..n], &mut out).await,
            Err(e) => {
                // ICMP errors surface here (ECONNREFUSED…); they are not fatal.
                log::debug!("{}: UDP receive: {e}", inner.name);
            }
        }
    }
}

async fn timer_task(inner: Arc<Inner>) {
    let mut out = vec![0u8; 256];
    let mut interval = tokio::time::interval(TIMER_TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u32 = 0;
    loop {
        interval.tick().await;
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(4) {
            read(&inner.state).keys.limiter.reset_count();
        }
        inner.tick(&mut out).await;
    }
}
