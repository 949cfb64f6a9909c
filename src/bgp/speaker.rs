//! The running speaker: one task per configured session, the listeners that accept peers'
//! connections, and the export set every session announces from.
//!
//! ```text
//!  bgp::Reconciler (bus) ─configure/remove─► Speaker ──mpsc (bounded)──► session task (one per peer)
//!  bgp::Service (operator action) ─command─►  │                            │  FSM + socket + timers
//!  bgp::Reconciler ─changed()─► exports::run ──watch<Arc<ExportSet>>─────────┤  Adj-RIB-In / Adj-RIB-Out
//!                               (DB + pools + VRPs)                         │  RPKI per session
//!  listener task (one per local addr:port) ──accept──► Incoming ────────────┘
//! ```
//! Session tasks publish their live state into [`Shared`], which `bgp::Service` reads; they
//! never block on the API and the API never waits for them (commands are fire-and-forget
//! into a bounded queue). Memory: per session a fixed set of buffers plus its Adj-RIB-In, which
//! the prefix limit bounds.

use super::exports::ExportSet;
use super::fsm::State;
use super::net;
use super::rib::AdjRibIn;
use crate::store::bgp::SessionFields;
pub use crate::sync::lock;
use ipnet::IpNet;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, watch, Notify};
use tokio::task::JoinHandle;

/// What a session task runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub id: i64,
    pub f: SessionFields,
    /// The AS we speak as on this session.
    pub local_as: u32,
    /// `[bgp] router_id`; else derived from the session's local address.
    pub router_id: Option<Ipv4Addr>,
    pub connect_retry: Duration,
}

/// The live state of a session, written by its task.
#[derive(Debug, Clone)]
pub struct Live {
    pub state: State,
    /// Unix seconds of the last state change.
    pub last_change: Option<i64>,
    pub established_at: Option<i64>,
    pub prefixes_received: u64,
    pub prefixes_sent: u64,
    pub last_error: Option<String>,
    pub hold_time: Option<u16>,
    pub remote_id: Option<Ipv4Addr>,
}

impl Default for Live {
    fn default() -> Live {
        Live {
            state: State::Idle,
            last_change: None,
            established_at: None,
            prefixes_received: 0,
            prefixes_sent: 0,
            last_error: None,
            hold_time: None,
            remote_id: None,
        }
    }
}

/// What a session task shares with the API.
/// A session's state changed (for the log and live WebSocket subscribers).
#[derive(Debug, Clone)]
pub struct StateChange {
    pub session_id: i64,
    pub name: String,
    pub from: State,
    pub to: State,
    /// The last NOTIFICATION or error, decoded, when the change is a drop.
    pub last_error: Option<String>,
}

/// State changes kept for a slow subscriber before it skips ahead.
const CHANGES: usize = 64;

#[derive(Debug)]
pub struct Shared {
    pub live: Mutex<Live>,
    /// Where the session task announces its state changes.
    pub changes: broadcast::Sender<StateChange>,
    pub rib: Mutex<AdjRibIn>,
    /// Prefixes currently announced to the peer.
    pub sent: Mutex<HashSet<IpNet>>,
}

#[derive(Debug)]
pub enum Command {
    Start,
    /// Cease / Administrative Shutdown with this message; stays down.
    Stop(String),
    /// Cease / Administrative Reset with this message, then up again.
    Restart(String),
    /// Soft reconfiguration: ROUTE-REFRESH to the peer, our routes sent again.
    Refresh,
    /// A connection the peer opened to us.
    Incoming(TcpStream),
    /// The service is stopping: Cease / Administrative Shutdown and end the task.
    Shutdown,
    /// The session was deleted: Cease / Peer De-configured and end the task.
    Remove,
}

/// Commands queued per session; more means the task is stuck, and the API says so.
const COMMAND_QUEUE: usize = 16;

struct Handle {
    cmd: mpsc::Sender<Command>,
    /// The desired configuration: the latest one wins and none is ever dropped (a burst of
    /// changes cannot overflow the command queue and leave the session on an old one).
    desired: watch::Sender<SessionConfig>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
    config: SessionConfig,
}

struct Listener {
    socket: Arc<TcpListener>,
    task: JoinHandle<()>,
    /// MD5 keys installed on it, by peer.
    keys: HashMap<IpAddr, String>,
}

/// Which session a peer's connection on a local port belongs to.
type Routes = Arc<Mutex<HashMap<(IpAddr, u16), mpsc::Sender<Command>>>>;

pub struct Speaker {
    sessions: Mutex<HashMap<i64, Handle>>,
    listeners: Mutex<HashMap<SocketAddr, Listener>>,
    routes: Routes,
    exports: watch::Sender<Arc<ExportSet>>,
    dirty: Arc<Notify>,
    changes: broadcast::Sender<StateChange>,
}

/// A session an announcement goes to, as [`Speaker::targets`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub session_id: i64,
    /// The AS the session speaks as (its origin for routes we originate).
    pub local_as: u32,
    /// The route is announced on it now.
    pub sent: bool,
}

/// One session as monitoring sees it.
#[derive(Debug, Clone)]
pub struct SessionLive {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    pub live: Live,
}

impl Default for Speaker {
    fn default() -> Speaker {
        Speaker {
            sessions: Mutex::default(),
            listeners: Mutex::default(),
            routes: Arc::default(),
            exports: watch::channel(Arc::default()).0,
            dirty: Arc::new(Notify::new()),
            changes: broadcast::Sender::new(CHANGES),
        }
    }
}

impl Speaker {
    /// Starts, reconfigures or (disabled) stops the session's task.
    pub fn configure(&self, config: SessionConfig) {
        let id = config.id;
        let mut sessions = lock(&self.sessions);
        match sessions.get_mut(&id) {
            Some(h) if !h.task.is_finished() => {
                if h.config != config {
                    h.config = config.clone();
                    h.desired.send_replace(config);
                }
            }
            _ => {
                let shared = Arc::new(Shared {
                    live: Mutex::default(),
                    changes: self.changes.clone(),
                    rib: Mutex::default(),
                    sent: Mutex::default(),
                });
                let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
                let (desired, desired_rx) = watch::channel(config.clone());
                let task = tokio::spawn(super::session::run(
                    desired_rx,
                    shared.clone(),
                    rx,
                    self.exports.subscribe(),
                ));
                sessions.insert(
                    id,
                    Handle {
                        cmd: tx,
                        desired,
                        shared,
                        task,
                        config,
                    },
                );
            }
        }
        drop(sessions);
        self.sync_listeners();
    }

    /// Ends the session's task (Cease / Peer De-configured to the peer) and forgets it.
    pub fn remove(&self, id: i64) {
        if let Some(h) = lock(&self.sessions).remove(&id) {
            send(&h.cmd, Command::Remove);
        }
        self.sync_listeners();
    }

    /// Sends `cmd` to a running session; false if there is none.
    pub fn command(&self, id: i64, cmd: Command) -> bool {
        match lock(&self.sessions).get(&id) {
            Some(h) => send(&h.cmd, cmd),
            None => false,
        }
    }

    pub fn live(&self, id: i64) -> Option<Live> {
        let sessions = lock(&self.sessions);
        let h = sessions.get(&id)?;
        let live = lock(&h.shared.live).clone();
        Some(live)
    }

    /// Every configured session with its live state, by id.
    pub fn overview(&self) -> Vec<SessionLive> {
        let sessions = lock(&self.sessions);
        let mut out: Vec<SessionLive> = sessions
            .iter()
            .map(|(id, h)| SessionLive {
                id: *id,
                name: h.config.f.name.clone(),
                enabled: h.config.f.enabled,
                live: lock(&h.shared.live).clone(),
            })
            .collect();
        out.sort_by_key(|s| s.id);
        out
    }

    /// State changes of every session from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StateChange> {
        self.changes.subscribe()
    }

    pub fn shared(&self, id: i64) -> Option<Arc<Shared>> {
        lock(&self.sessions).get(&id).map(|h| h.shared.clone())
    }

    /// The sessions a route for `prefix` goes to (only `session`, else every one), by id:
    /// the AS each speaks as and whether the route is announced there now.
    pub fn targets(&self, prefix: &IpNet, session: Option<i64>) -> Vec<Target> {
        let mut out: Vec<Target> = lock(&self.sessions)
            .iter()
            .filter(|(id, _)| session.is_none_or(|s| s == **id))
            .map(|(id, h)| Target {
                session_id: *id,
                local_as: h.config.local_as,
                sent: lock(&h.shared.sent).contains(prefix),
            })
            .collect();
        out.sort_by_key(|t| t.session_id);
        out
    }

    /// Something that feeds the export set changed (announcements, pools, RPKI data): the
    /// exports task (`exports::run`) rebuilds it.
    pub fn changed(&self) {
        self.dirty.notify_one();
    }

    pub fn publish(&self, exports: ExportSet) {
        self.exports.send_replace(Arc::new(exports));
    }

    pub fn dirty(&self) -> Arc<Notify> {
        self.dirty.clone()
    }

    /// Stops every session with a Cease and waits (bounded) for their tasks.
    pub async fn shutdown(&self) {
        let handles: Vec<Handle> = lock(&self.sessions).drain().map(|(_, h)| h).collect();
        for h in &handles {
            send(&h.cmd, Command::Shutdown);
        }
        for h in handles {
            if tokio::time::timeout(Duration::from_secs(2), h.task)
                .await
                .is_err()
            {
                log::warn!("bgp: a session task did not stop in time");
            }
        }
        for (_, l) in lock(&self.listeners).drain() {
            l.task.abort();
        }
    }

    /// Opens the listeners the sessions need, closes the others, routes incoming
    /// connections by (peer, port) and installs the MD5 keys. A port we cannot listen on
    /// is reported in the affected sessions' `last_error` (they can still connect out).
    fn sync_listeners(&self) {
        let sessions = lock(&self.sessions);
        let mut wanted: HashMap<SocketAddr, Vec<&Handle>> = HashMap::new();
        let mut routes = HashMap::new();
        for h in sessions.values().filter(|h| h.config.f.enabled) {
            let f = &h.config.f;
            let at = net::listen_addr(f.local_address, f.neighbor, f.local_port);
            wanted.entry(at).or_default().push(h);
            routes.insert((f.neighbor, f.local_port), h.cmd.clone());
        }
        *lock(&self.routes) = routes;
        let mut listeners = lock(&self.listeners);
        listeners.retain(|at, l| {
            let keep = wanted.contains_key(at);
            if !keep {
                l.task.abort();
            }
            keep
        });
        for (at, hs) in wanted {
            let l = match listeners.entry(at) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => match net::listen(at) {
                    Ok(socket) => {
                        let socket = Arc::new(socket);
                        let task = tokio::spawn(accept(socket.clone(), self.routes.clone()));
                        v.insert(Listener {
                            socket,
                            task,
                            keys: HashMap::new(),
                        })
                    }
                    Err(e) => {
                        for h in hs {
                            lock(&h.shared.live).last_error =
                                Some(format!("cannot listen on {at}: {e}"));
                        }
                        continue;
                    }
                },
            };
            install_keys(l, &hs);
        }
    }
}

fn send(tx: &mpsc::Sender<Command>, cmd: Command) -> bool {
    match tx.try_send(cmd) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            log::warn!("bgp: a session's command queue is full; command dropped");
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// Sets the keys the sessions on this listener need and removes the others.
fn install_keys(l: &mut Listener, hs: &[&Handle]) {
    let want: HashMap<IpAddr, (String, &Handle)> = hs
        .iter()
        .filter_map(|h| Some((h.config.f.neighbor, (h.config.f.password.clone()?, *h))))
        .collect();
    let fd = l.socket.as_raw_fd();
    l.keys.retain(|peer, _| {
        let keep = want.contains_key(peer);
        if !keep {
            let _ = net::set_md5(fd, *peer, b"");
        }
        keep
    });
    for (peer, (key, h)) in want {
        if l.keys.get(&peer) == Some(&key) {
            continue;
        }
        match net::set_md5(fd, peer, key.as_bytes()) {
            Ok(()) => {
                l.keys.insert(peer, key);
            }
            Err(e) => lock(&h.shared.live).last_error = Some(e.to_string()),
        }
    }
}

/// Accepts connections and hands each to the session of its peer; strangers are closed.
async fn accept(socket: Arc<TcpListener>, routes: Routes) {
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    loop {
        let (stream, peer) = match socket.accept().await {
            Ok(x) => x,
            Err(e) => {
                log::warn!("bgp: accept on port {port}: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let tx = lock(&routes)
            .get(&(peer.ip().to_canonical(), port))
            .cloned();
        match tx {
            Some(tx) => {
                if !send(&tx, Command::Incoming(stream)) {
                    log::debug!("bgp: connection from {peer} dropped: session busy");
                }
            }
            None => log::info!("bgp: connection from {peer} on port {port}: no session, closed"),
        }
    }
}
