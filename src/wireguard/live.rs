//! The running devices follow the database: the [`Reconciler`] is the WireGuard engine's
//! [`Applier`]. For a changed server it makes that server's device match its row and
//! clients (started, restarted when its interface settings changed, stopped when inactive
//! or gone); for a changed client or allocation it makes that one peer match its row (added,
//! updated, removed); [`Applier::reconcile_all`] does every server (start-up, restore). It
//! re-reads the rows each time, so changes applied in any order, or twice, converge.
//!
//! Reconciles are serialised (one lock over what each device was built from): two
//! concurrent requests end with the device matching the last committed state. The engine
//! serialises every device change with one lock anyway, so a lock per server would buy no
//! parallelism.
//!
//! Where each peer was last seen (`wg_last_seen`) is saved when it leaves a device — its
//! client is disabled, its server stopped (or restarted), the service stopped — and handed
//! back when it returns, so the device sends the first handshake instead of waiting 10–15 s
//! for the peer to notice that the session it still holds is gone. A deleted client's is
//! kept too while still fresh: a restore may bring the client back (and carries these rows
//! into the restored database, `backup::restore`). Not saved on every
//! handshake (flash wear): after a crash the peers reconnect on their own timers.
//!
//! Also here: the live fields of the views (status, handshake, bytes, endpoint), read from
//! one snapshot of each device per request.

use super::error::{Error, Result};
use super::{ClientRow, LastSeen, Live, ServerRow, ServerView};
use crate::changes::{Applier, Change};
use crate::logs::Logs;
use crate::store::logs::LogEntry;
use crate::store::wireguard as q;
use crate::store::Store;
use crate::sync::BoxFuture;
use crate::wireguard::device::datapath::{PeerConfig, PeerStats, SESSION_LIFETIME};
use crate::wireguard::device::engine::{Engine, PeerSpec, ServerSpec, ServerState};
use crate::wireguard::device::peer::IDLE_AFTER;
use crate::wireguard::keys::PublicKey;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub fn spec(server: &ServerRow) -> Result<ServerSpec> {
    Ok(ServerSpec {
        id: server.id,
        interface: server.interface.clone(),
        private_key: server.wg_private_key()?,
        listen_port: server.listen_port,
        mtu: u32::from(server.mtu),
        addresses: server.addresses(),
    })
}

/// What the server's device knows of a client. The server never keeps the tunnel alive on
/// its own: keepalives are the client's business (it is the one behind NAT).
pub fn peer(client: &ClientRow) -> Result<PeerConfig> {
    Ok(PeerConfig {
        public_key: client.wg_public_key()?,
        preshared_key: client.wg_preshared_key()?,
        endpoint: None,
        persistent_keepalive: 0,
        allowed_ips: super::peer_allowed_ips(client),
    })
}

/// Where to reach a peer first: where it was last seen, if its last handshake is recent
/// enough that it may still hold the session (a session is wiped [`IDLE_AFTER`] after its
/// handshake). Older endpoints are likely stale, and the peer starts afresh anyway.
pub fn resumable(seen: Option<&LastSeen>, now: i64) -> Option<SocketAddr> {
    let seen = seen?;
    // A handshake "in the future" (the clock stepped back) counts as just now.
    let age = u64::try_from(now.saturating_sub(seen.handshake_at)).unwrap_or(0);
    (age < IDLE_AFTER.as_secs()).then_some(seen.endpoint)
}

/// The peers that have completed a handshake, and where each was then.
fn seen_rows(stats: HashMap<PublicKey, PeerStats>) -> Vec<LastSeen> {
    stats
        .into_iter()
        .filter_map(|(key, s)| {
            Some(LastSeen {
                public_key: key.to_base64(),
                endpoint: s.endpoint?,
                handshake_at: i64::try_from(s.last_handshake?.as_secs()).ok()?,
            })
        })
        .collect()
}

/// Whether a running device built from `old` must be restarted to become `new` (clients
/// re-handshake): its interface, port, addresses, MTU or key changed.
pub fn device_changed(old: &ServerRow, new: &ServerRow) -> bool {
    old.interface != new.interface
        || old.listen_port != new.listen_port
        || old.ipv4_address != new.ipv4_address
        || old.ipv6_address != new.ipv6_address
        || old.mtu != new.mtu
        || old.private_key != new.private_key
}

/// A running device and what it was built from.
struct Applied {
    server: ServerRow,
    /// The peers on the device, by client id.
    peers: HashMap<i64, PeerConfig>,
}

/// The WireGuard engine's [`Applier`] (see the module doc).
pub struct Reconciler {
    store: Store,
    engine: Arc<Engine>,
    logs: Arc<Logs>,
    /// The running devices, by server id; held for the whole of a reconcile.
    applied: tokio::sync::Mutex<HashMap<i64, Applied>>,
}

impl Applier for Reconciler {
    fn apply<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match *change {
                Change::Server { id, .. } => self.server(id).await,
                Change::Client { server_id, id, .. }
                | Change::Allocation {
                    client: Some((server_id, id)),
                    ..
                } => self.client(server_id, id).await,
                _ => {}
            }
        })
    }

    fn reconcile_all(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.all())
    }
}

impl Reconciler {
    pub fn new(store: Store, engine: Arc<Engine>, logs: Arc<Logs>) -> Reconciler {
        Reconciler {
            store,
            engine,
            logs,
            applied: Default::default(),
        }
    }

    /// Server `id`'s device made to match its row and clients.
    async fn server(&self, id: i64) {
        let mut applied = self.applied.lock().await;
        let desired = self
            .store
            .call(move |c| match q::get_server(c, id)? {
                Some(s) => Ok(Some((s, q::clients_of_server(c, id)?))),
                None => Ok(None),
            })
            .await;
        match desired {
            Ok(d) => self.converge(&mut applied, id, d).await,
            Err(e) => log::error!("WireGuard server {id}: cannot read its desired state: {e}"),
        }
    }

    async fn converge(
        &self,
        applied: &mut HashMap<i64, Applied>,
        id: i64,
        desired: Option<(ServerRow, Vec<ClientRow>)>,
    ) {
        let running = matches!(self.engine.state(id).await, ServerState::Running { .. });
        match desired {
            Some((server, clients)) if server.is_active => {
                let built_from = applied.get(&id).filter(|_| running);
                match built_from {
                    Some(a) if !device_changed(&a.server, &server) => {
                        self.sync_peers(applied, &server, &clients).await
                    }
                    // Start it, or restart it with the new interface settings. A failure is
                    // the server's `error` status and `last_error`, and an event.
                    _ => {
                        let _ = self.start(applied, &server, &clients).await;
                    }
                }
            }
            // A failed start stays visible (`error`, `last_error`) until the next one.
            Some((server, _)) if running => self.stop(applied, id, &server.name).await,
            Some(_) => {
                applied.remove(&id);
            }
            None => {
                let name = applied.get(&id).map(|a| a.server.name.clone());
                self.stop(applied, id, name.as_deref().unwrap_or("?")).await
            }
        }
    }

    /// The peers of a running device made to match `clients` (which are all of its server's).
    async fn sync_peers(
        &self,
        applied: &mut HashMap<i64, Applied>,
        server: &ServerRow,
        clients: &[ClientRow],
    ) {
        let Some(a) = applied.get_mut(&server.id) else {
            return;
        };
        a.server = server.clone();
        let rows: BTreeMap<i64, &ClientRow> = clients.iter().map(|c| (c.id, c)).collect();
        let gone: Vec<i64> = a
            .peers
            .keys()
            .filter(|id| !rows.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            self.peer(a, id, None).await;
        }
        for (id, row) in rows {
            self.peer(a, id, Some(row)).await;
        }
    }

    /// Client `id`'s peer on server `server_id`'s device (if it runs) made to match its row.
    async fn client(&self, server_id: i64, id: i64) {
        let mut applied = self.applied.lock().await;
        let Some(a) = applied.get_mut(&server_id) else {
            return;
        };
        match self.store.call(move |c| q::get_client(c, id)).await {
            Ok(row) => self.peer(a, id, row.as_ref()).await,
            Err(e) => log::error!("WireGuard client {id}: cannot read its desired state: {e}"),
        }
    }

    /// One peer converged: `row` is the client as stored (`None`: deleted).
    async fn peer(&self, a: &mut Applied, id: i64, row: Option<&ClientRow>) {
        let server_id = a.server.id;
        let want = match row.filter(|c| c.enabled && c.server_id == server_id) {
            Some(c) => match peer(c) {
                Ok(p) => Some(p),
                Err(e) => {
                    log::error!("WireGuard client {id}: {e}");
                    None
                }
            },
            None => None,
        };
        let have = a.peers.get(&id);
        if want.as_ref() == have {
            return;
        }
        if let Some(h) = have.filter(|h| want.as_ref().is_none_or(|w| w.public_key != h.public_key))
        {
            let key = h.public_key;
            a.peers.remove(&id);
            match self.engine.remove_peer(server_id, &key).await {
                // A disabled client may come back, and so may a deleted one (a restore).
                Ok(Some(s)) => self.save_seen(HashMap::from([(key, s)])).await,
                Ok(_) => {}
                Err(e) => log::warn!("WireGuard server {server_id}: removing a peer: {e}"),
            }
        }
        let Some(want) = want else { return };
        // Only a peer coming back needs to know where it was; one staying keeps its own.
        let seen = match a.peers.contains_key(&id) {
            true => None,
            false => self.last_seen(&want.public_key).await,
        };
        let spec = PeerSpec {
            config: want.clone(),
            last_seen: resumable(seen.as_ref(), crate::time::now()),
        };
        match self.engine.set_peer(server_id, spec).await {
            Ok(()) => {
                a.peers.insert(id, want);
            }
            Err(e) => log::warn!("WireGuard server {server_id}: setting a peer: {e}"),
        }
    }

    /// Brings `server` up (or restarts it) with its enabled clients, and logs the outcome.
    async fn start(
        &self,
        applied: &mut HashMap<i64, Applied>,
        server: &ServerRow,
        clients: &[ClientRow],
    ) -> Result<()> {
        applied.remove(&server.id);
        let seen = self.last_seen_of_server(server.id).await;
        let now = crate::time::now();
        let mut peers = HashMap::new();
        let mut specs = Vec::new();
        for c in clients.iter().filter(|c| c.enabled) {
            let config = peer(c)?;
            specs.push(PeerSpec {
                config: config.clone(),
                last_seen: resumable(seen.get(&c.public_key), now),
            });
            peers.insert(c.id, config);
        }
        let n = specs.len();
        let r = self.engine.start(spec(server)?, specs).await;
        let entry = match &r {
            Ok(()) => LogEntry::event(
                "INFO",
                "wireguard",
                "wireguard.server.started",
                format!(
                    "WireGuard server {} started on {} (UDP {}, {n} peers)",
                    server.name, server.interface, server.listen_port
                ),
            ),
            Err(e) => LogEntry::event(
                "ERROR",
                "wireguard",
                "wireguard.server.failed",
                format!("WireGuard server {} failed to start: {e}", server.name),
            ),
        };
        self.logs
            .event(entry.with_target(format!("wireguard/servers/{}", server.id)));
        r?;
        applied.insert(
            server.id,
            Applied {
                server: server.clone(),
                peers,
            },
        );
        Ok(())
    }

    /// Takes the server's device down (if it runs) and logs it.
    async fn stop(&self, applied: &mut HashMap<i64, Applied>, id: i64, name: &str) {
        applied.remove(&id);
        if let Some(stats) = self.engine.stop(id).await {
            self.save_seen(stats).await;
            self.logs.event(
                LogEntry::event(
                    "INFO",
                    "wireguard",
                    "wireguard.server.stopped",
                    format!("WireGuard server {name} stopped"),
                )
                .with_target(format!("wireguard/servers/{id}")),
            );
        }
    }

    /// `POST /servers/{id}/start`: starts the server now — its device error is the caller's
    /// answer — and, once it runs, records that it should (started again after a restart).
    /// Returns the row and its number of clients.
    pub(super) async fn start_server(&self, id: i64) -> Result<(ServerRow, u64)> {
        let mut applied = self.applied.lock().await;
        let (server, clients) = self
            .store
            .run(move |c| {
                let s = q::get_server(c, id)?.ok_or(Error::NotFound("server"))?;
                Ok::<_, Error>((s, q::clients_of_server(c, id)?))
            })
            .await?;
        self.start(&mut applied, &server, &clients).await?;
        let now = crate::time::now();
        let row = self
            .store
            .call(move |c| q::set_server_active(c, id, true, now))
            .await?;
        if let Some(a) = applied.get_mut(&id) {
            a.server = row.clone();
        }
        Ok((row, clients.len() as u64))
    }

    /// `POST /servers/{id}/stop`: records that the server should not run and takes its
    /// device down; unlike a change of `is_active`, this also clears the error of a failed
    /// start (the user acknowledged it).
    pub(super) async fn stop_server(&self, id: i64) -> Result<ServerRow> {
        let mut applied = self.applied.lock().await;
        let now = crate::time::now();
        let row = self
            .store
            .call(move |c| q::set_server_active(c, id, false, now))
            .await?;
        self.stop(&mut applied, id, &row.name).await;
        Ok(row)
    }

    /// Every server made to match the database: start-up, and after a restore.
    async fn all(&self) {
        let mut applied = self.applied.lock().await;
        let servers = match self.store.call(|c| q::all_servers(c)).await {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot list the WireGuard servers: {e}");
                return;
            }
        };
        let mut gone: BTreeSet<i64> = applied.keys().copied().collect();
        for server in servers {
            gone.remove(&server.id);
            let id = server.id;
            let clients = match self.store.call(move |c| q::clients_of_server(c, id)).await {
                Ok(c) => c,
                Err(e) => {
                    log::error!("WireGuard server {}: cannot load clients: {e}", server.name);
                    continue;
                }
            };
            let (name, active) = (server.name.clone(), server.is_active);
            let was_running = applied.contains_key(&id);
            self.converge(&mut applied, id, Some((server, clients)))
                .await;
            if active && !was_running {
                match self.engine.state(id).await {
                    ServerState::Running { .. } => log::info!(
                        "WireGuard server {name} restored with {} clients",
                        applied.get(&id).map_or(0, |a| a.peers.len())
                    ),
                    ServerState::Error(e) => log::error!("WireGuard server {name}: {e}"),
                    ServerState::Stopped => {}
                }
            }
        }
        for id in gone {
            self.converge(&mut applied, id, None).await;
        }
    }

    /// Takes every device down at service stop, keeping where their peers were.
    pub async fn stop_all(&self) {
        let mut applied = self.applied.lock().await;
        applied.clear();
        for (_, stats) in self.engine.stop_all().await {
            self.save_seen(stats).await;
        }
    }

    /// Keeps where peers were (best effort: the change that removed them has been made).
    async fn save_seen(&self, stats: HashMap<PublicKey, PeerStats>) {
        let rows = seen_rows(stats);
        let stale = i64::try_from(IDLE_AFTER.as_secs()).unwrap_or(i64::MAX);
        let forget_before = crate::time::now().saturating_sub(stale);
        let save = self
            .store
            .call(move |c| q::save_last_seen(c, &rows, forget_before));
        if let Err(e) = save.await {
            log::warn!("cannot record where WireGuard peers were last seen: {e}");
        }
    }

    async fn last_seen_of_server(&self, server_id: i64) -> HashMap<String, LastSeen> {
        match self
            .store
            .call(move |c| q::last_seen_of_server(c, server_id))
            .await
        {
            Ok(rows) => rows
                .into_iter()
                .map(|s| (s.public_key.clone(), s))
                .collect(),
            Err(e) => {
                log::warn!("WireGuard server {server_id}: last seen peers: {e}");
                HashMap::new()
            }
        }
    }

    async fn last_seen(&self, key: &PublicKey) -> Option<LastSeen> {
        let key = key.to_base64();
        self.store
            .call(move |c| q::last_seen(c, &key))
            .await
            .unwrap_or(None)
    }
}

pub fn view_with_state(server: ServerRow, clients_count: u64, state: &ServerState) -> ServerView {
    let (last_error, started_at) = match state {
        ServerState::Error(e) => (Some(e.clone()), None),
        ServerState::Running { started_at, .. } => (None, Some(*started_at)),
        ServerState::Stopped => (None, None),
    };
    ServerView::new(
        server,
        clients_count,
        state.as_str(),
        last_error,
        started_at,
    )
}

/// Who a client is on its server's device: what its live fields are read by.
#[derive(Debug, Clone, Copy)]
pub struct OnDevice {
    pub server_id: i64,
    pub enabled: bool,
    /// `None` when the stored key does not decode (the client cannot be on the device).
    pub key: Option<PublicKey>,
}

impl OnDevice {
    pub fn of(c: &ClientRow) -> OnDevice {
        OnDevice {
            server_id: c.server_id,
            enabled: c.enabled,
            key: c.wg_public_key().ok(),
        }
    }
}

/// The live fields of `clients` (of any servers), in their order, from one read of each
/// running device among their servers: `disabled`, or `offline` when their server is not
/// running or they are not on its device. `now` decides which handshakes are recent.
pub async fn live_of(engine: &Engine, clients: &[OnDevice], now: SystemTime) -> Vec<Live> {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let mut out: Vec<Live> = clients
        .iter()
        .map(|c| match c.enabled {
            true => Live::default(),
            false => Live {
                status: "disabled",
                ..Live::default()
            },
        })
        .collect();
    let on = |c: &OnDevice| c.enabled.then_some(c.key).flatten();
    let servers: BTreeSet<i64> = clients.iter().map(|c| c.server_id).collect();
    for server_id in servers {
        let at: Vec<usize> = (0..clients.len())
            .filter(|&i| clients[i].server_id == server_id && on(&clients[i]).is_some())
            .collect();
        let wanted: Vec<PublicKey> = at.iter().filter_map(|&i| on(&clients[i])).collect();
        let Some(stats) = engine.peer_stats(server_id, &wanted).await else {
            continue; // not running: offline
        };
        for (i, s) in at.into_iter().zip(stats) {
            if let Some(s) = s {
                out[i] = live(&s, now);
            }
        }
    }
    out
}

/// A peer's live fields: `active` = a handshake within the session lifetime (180 s), as
/// `wg` users read it; otherwise `inactive`. `now` is since the Unix epoch.
pub fn live(s: &PeerStats, now: Duration) -> Live {
    let recent = s
        .last_handshake
        .is_some_and(|t| now.saturating_sub(t) < SESSION_LIFETIME);
    Live {
        status: if recent { "active" } else { "inactive" },
        last_handshake: s.last_handshake.map(|d| d.as_secs() as i64),
        bytes_received: s.rx_bytes,
        bytes_sent: s.tx_bytes,
        endpoint: s.endpoint.map(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_reached_first_only_while_it_may_hold_a_session() {
        let seen = LastSeen {
            public_key: "k".into(),
            endpoint: "192.0.2.7:51820".parse().expect("endpoint"),
            handshake_at: 1_000,
        };
        let idle = IDLE_AFTER.as_secs() as i64;
        assert_eq!(resumable(Some(&seen), 1_000), Some(seen.endpoint));
        assert_eq!(
            resumable(Some(&seen), 1_000 + idle - 1),
            Some(seen.endpoint)
        );
        assert_eq!(
            resumable(Some(&seen), 1_000 + idle),
            None,
            "session wiped by now"
        );
        assert_eq!(
            resumable(Some(&seen), 999),
            Some(seen.endpoint),
            "clock step back"
        );
        assert_eq!(resumable(None, 1_000), None);
    }

    #[test]
    fn only_peers_that_completed_a_handshake_are_recorded() {
        let key = |n: u8| PublicKey::from_bytes([n; 32]);
        let stats = |endpoint: Option<&str>, secs: Option<u64>| PeerStats {
            last_handshake: secs.map(std::time::Duration::from_secs),
            rx_bytes: 0,
            tx_bytes: 0,
            endpoint: endpoint.map(|e| e.parse().expect("endpoint")),
        };
        let rows = seen_rows(HashMap::from([
            (key(1), stats(Some("[2001:db8::1]:4000"), Some(77))),
            (key(2), stats(Some("192.0.2.2:1"), None)),
            (key(3), stats(None, Some(5))),
        ]));
        assert_eq!(
            rows,
            vec![LastSeen {
                public_key: key(1).to_base64(),
                endpoint: "[2001:db8::1]:4000".parse().expect("endpoint"),
                handshake_at: 77,
            }]
        );
    }
}
