//! The running WireGuard servers: one [`Device`] per started server, its interface configured
//! over netlink (MTU, addresses, link up, routes for peers' prefixes outside the interface
//! subnets), and the live state the API reports. Knows nothing of the database: callers turn
//! rows into a [`ServerSpec`] and [`PeerConfig`]s.
//!
//! One async mutex serialises every change (start, stop, peer changes), so the device, the
//! kernel routes and the recorded state never disagree; reads of peer statistics take it
//! only briefly.
//!
//! A peer that comes (back) onto a device — the server starts or restarts, the client is
//! enabled again — may still hold a session with the device that had it before, and would
//! keep using it unanswered until its own timers give up (10–15 s). So each peer comes with
//! where it was last seen ([`PeerSpec::last_seen`]) and the device sends it the first
//! handshake itself; stopping a server or removing a peer hands back where its peers were
//! ([`PeerStats`]), for the caller to keep.

use super::datapath::{Device, DeviceConfig, DeviceError, PeerConfig, PeerStats};
use super::netlink::Netlink;
use crate::wireguard::keys::{PrivateKey, PublicKey};
use ipnet::IpNet;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::sync::Mutex;

/// A peer as the engine is given it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerSpec {
    pub config: PeerConfig,
    /// Where the peer was when it last completed a handshake, if that is recent enough that
    /// it may still hold a session: the device then initiates the handshake itself.
    pub last_seen: Option<SocketAddr>,
}

impl From<PeerConfig> for PeerSpec {
    fn from(config: PeerConfig) -> PeerSpec {
        PeerSpec {
            config,
            last_seen: None,
        }
    }
}

/// What a server needs to run.
pub struct ServerSpec {
    pub id: i64,
    pub interface: String,
    pub private_key: PrivateKey,
    pub listen_port: u16,
    pub mtu: u32,
    /// Interface addresses with their subnets (`10.0.0.1/24`, `fd00::1/64`).
    pub addresses: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ServerState {
    Stopped,
    Running {
        started_at: i64,
        listen_port: u16,
    },
    /// The last start failed (or the device died); the reason is shown as `last_error`.
    Error(String),
}

impl ServerState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ServerState::Stopped => "stopped",
            ServerState::Running { .. } => "running",
            ServerState::Error(_) => "error",
        }
    }
}

struct Running {
    device: Device,
    ifindex: u32,
    subnets: Vec<IpNet>,
    /// Routes we added to the kernel for peers' prefixes outside `subnets`.
    routes: BTreeSet<IpNet>,
    started_at: i64,
}

#[derive(Default)]
struct Inner {
    running: HashMap<i64, Running>,
    errors: HashMap<i64, String>,
    netlink: Option<Netlink>,
}

pub struct Engine {
    inner: Mutex<Inner>,
    uapi_dir: Option<PathBuf>,
}

impl Engine {
    /// `uapi_dir`: where the `wg` sockets go (`/var/run/wireguard`); `None` for none.
    pub fn new(uapi_dir: Option<PathBuf>) -> Engine {
        Engine {
            inner: Mutex::new(Inner::default()),
            uapi_dir,
        }
    }

    /// Brings the server up with `peers` (restarting it if it runs: then where its peers
    /// were on the old device is where the new one reaches them first). On failure nothing
    /// of it is left behind and its state is `Error`.
    pub async fn start(
        &self,
        spec: ServerSpec,
        mut peers: Vec<PeerSpec>,
    ) -> Result<(), DeviceError> {
        let mut inner = self.inner.lock().await;
        if let Some(old) = inner.running.remove(&spec.id) {
            let seen = old.device.all_stats();
            old.device.shutdown().await;
            for p in &mut peers {
                let was = seen
                    .get(&p.config.public_key)
                    .filter(|s| s.last_handshake.is_some());
                if let Some(ep) = was.and_then(|s| s.endpoint) {
                    p.last_seen = Some(ep);
                }
            }
        }
        let id = spec.id;
        match start(&mut inner, spec, peers, self.uapi_dir.clone()).await {
            Ok(running) => {
                inner.errors.remove(&id);
                inner.running.insert(id, running);
                Ok(())
            }
            Err(e) => {
                log::warn!("WireGuard server {id}: start failed: {e}");
                inner.errors.insert(id, e.to_string());
                Err(e)
            }
        }
    }

    /// Stops the server; its interface is gone when this returns. Returns its peers' last
    /// figures (where each was seen), or `None` if it was not running.
    pub async fn stop(&self, id: i64) -> Option<HashMap<PublicKey, PeerStats>> {
        let mut inner = self.inner.lock().await;
        inner.errors.remove(&id);
        let r = inner.running.remove(&id)?;
        let seen = r.device.all_stats();
        r.device.shutdown().await;
        Some(seen)
    }

    /// Stops everything (service shutdown); returns each server's peers' last figures.
    pub async fn stop_all(&self) -> Vec<(i64, HashMap<PublicKey, PeerStats>)> {
        let mut inner = self.inner.lock().await;
        let mut seen = Vec::with_capacity(inner.running.len());
        for (id, r) in inner.running.drain() {
            seen.push((id, r.device.all_stats()));
            r.device.shutdown().await;
        }
        seen
    }

    pub async fn state(&self, id: i64) -> ServerState {
        let inner = self.inner.lock().await;
        state_of(&inner, id)
    }

    /// State of every server the engine knows about (others are `Stopped`).
    pub async fn states(&self) -> HashMap<i64, ServerState> {
        let inner = self.inner.lock().await;
        inner
            .running
            .keys()
            .chain(inner.errors.keys())
            .map(|id| (*id, state_of(&inner, *id)))
            .collect()
    }

    /// Adds or changes a peer of a running server (no-op when it is not running) and keeps
    /// the kernel routes for its prefixes in step.
    pub async fn set_peer(&self, id: i64, peer: PeerSpec) -> Result<(), DeviceError> {
        let mut inner = self.inner.lock().await;
        let Inner {
            running, netlink, ..
        } = &mut *inner;
        let Some(r) = running.get_mut(&id) else {
            return Ok(());
        };
        r.device
            .set_peer_and_resume(peer.config, peer.last_seen)
            .await;
        sync_routes(r, netlink.as_ref()).await
    }

    /// Removes a peer of a running server; returns its last figures if it was there.
    pub async fn remove_peer(
        &self,
        id: i64,
        key: &PublicKey,
    ) -> Result<Option<PeerStats>, DeviceError> {
        let mut inner = self.inner.lock().await;
        let Inner {
            running, netlink, ..
        } = &mut *inner;
        let Some(r) = running.get_mut(&id) else {
            return Ok(None);
        };
        let seen = r.device.remove_peer(key);
        sync_routes(r, netlink.as_ref()).await?;
        Ok(seen)
    }

    /// Live figures of a running server's peers (empty when it is not running).
    pub async fn stats(&self, id: i64) -> HashMap<PublicKey, PeerStats> {
        let inner = self.inner.lock().await;
        inner
            .running
            .get(&id)
            .map(|r| r.device.all_stats())
            .unwrap_or_default()
    }

    /// Live figures of the peers with `keys` of a running server, in that order, from one
    /// read of its device; `None` when it is not running.
    pub async fn peer_stats(&self, id: i64, keys: &[PublicKey]) -> Option<Vec<Option<PeerStats>>> {
        let inner = self.inner.lock().await;
        inner.running.get(&id).map(|r| r.device.stats_of(keys))
    }

    /// Ids of the running servers (monitoring).
    pub async fn running_ids(&self) -> Vec<i64> {
        self.inner.lock().await.running.keys().copied().collect()
    }
}

fn state_of(inner: &Inner, id: i64) -> ServerState {
    if let Some(r) = inner.running.get(&id) {
        return ServerState::Running {
            started_at: r.started_at,
            listen_port: r.device.listen_port(),
        };
    }
    match inner.errors.get(&id) {
        Some(e) => ServerState::Error(e.clone()),
        None => ServerState::Stopped,
    }
}

fn netlink_error(e: super::netlink::NetlinkError) -> DeviceError {
    if e.is_permission() {
        DeviceError::Unavailable(format!("{e} (needs root or CAP_NET_ADMIN)"))
    } else {
        DeviceError::Other(e.to_string())
    }
}

async fn start(
    inner: &mut Inner,
    spec: ServerSpec,
    peers: Vec<PeerSpec>,
    uapi_dir: Option<PathBuf>,
) -> Result<Running, DeviceError> {
    if inner.netlink.is_none() {
        inner.netlink = Some(Netlink::new().map_err(netlink_error)?);
    }
    let Some(nl) = inner.netlink.as_ref() else {
        unreachable!("set above")
    };
    let device = Device::start(DeviceConfig {
        interface: spec.interface.clone(),
        private_key: spec.private_key.clone(),
        listen_port: spec.listen_port,
        fwmark: 0,
        uapi_dir,
    })
    .await?;
    let resume: Vec<(PublicKey, Option<SocketAddr>)> = peers
        .iter()
        .map(|p| (p.config.public_key, p.last_seen))
        .collect();
    for p in peers {
        device.set_peer(p.config);
    }
    let mut running = Running {
        ifindex: 0,
        subnets: spec.addresses.iter().map(IpNet::trunc).collect(),
        routes: BTreeSet::new(),
        started_at: crate::time::now(),
        device,
    };
    // Any failure from here on must take the device down again.
    match configure(nl, &mut running, &spec).await {
        Ok(()) => {
            // Configured: what the peers send once the handshake is done can be delivered.
            for (key, last_seen) in resume {
                running.device.resume_peer(&key, last_seen).await;
            }
            Ok(running)
        }
        Err(e) => {
            running.device.shutdown().await;
            Err(e)
        }
    }
}

async fn configure(nl: &Netlink, r: &mut Running, spec: &ServerSpec) -> Result<(), DeviceError> {
    r.ifindex = nl
        .link_index(r.device.name())
        .await
        .map_err(netlink_error)?;
    nl.set_mtu(r.ifindex, spec.mtu)
        .await
        .map_err(netlink_error)?;
    // Up first: the kernel only accepts IPv6 routes via a link that is up.
    nl.set_up(r.ifindex, true).await.map_err(netlink_error)?;
    for a in &spec.addresses {
        nl.add_address(r.ifindex, *a).await.map_err(netlink_error)?;
    }
    sync_routes(r, Some(nl)).await
}

/// Makes the kernel's routes via the interface match the peers' prefixes that the interface
/// subnets do not already cover.
async fn sync_routes(r: &mut Running, nl: Option<&Netlink>) -> Result<(), DeviceError> {
    let Some(nl) = nl else { return Ok(()) };
    let wanted: BTreeSet<IpNet> = r
        .device
        .snapshot()
        .peers
        .iter()
        .flat_map(|p| p.allowed_ips.iter().map(IpNet::trunc))
        .filter(|net| !r.subnets.iter().any(|s| s.contains(net)))
        .collect();
    let stale: Vec<IpNet> = r.routes.difference(&wanted).copied().collect();
    for net in stale {
        nl.del_route(r.ifindex, net).await.map_err(netlink_error)?;
        r.routes.remove(&net);
    }
    let missing: Vec<IpNet> = wanted.difference(&r.routes).copied().collect();
    for net in missing {
        nl.add_route(r.ifindex, net).await.map_err(netlink_error)?;
        r.routes.insert(net);
    }
    Ok(())
}
