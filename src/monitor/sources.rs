//! What the collector reads, and nothing more: one small trait per engine it samples
//! ([`WireguardStats`], [`BgpStats`], [`PoolStats`]) and the handles of the service's own
//! figures ([`Sources`]). `app.rs` registers the engines; the collector never sees `App`.
//!
//! The WireGuard engine, the BGP speaker and the pools' service implement their trait here,
//! on their own types (their figures are the collector's vocabulary, not the engines').

use super::collector::{BgpFigures, PoolFigures, WireguardFigures};
use super::latency::Latencies;
use crate::bgp::speaker::{SessionLive, Speaker};
use crate::logs::Logs;
use crate::store::Store;
use crate::sync::BoxFuture;
use crate::system::Settings;
use crate::wireguard::device::engine::{Engine, ServerState};
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A WireGuard peer is active when its last handshake is younger than this (a session's
/// lifetime, as `wg` users read it).
const ACTIVE_HANDSHAKE_SECS: u64 = 180;

/// The running WireGuard servers and their peers' counters.
pub trait WireguardStats: Send + Sync {
    /// Counts and byte totals (the collector computes the rates).
    fn figures(&self) -> BoxFuture<'_, WireguardFigures>;
}

/// The BGP sessions with their live state.
pub trait BgpStats: Send + Sync {
    fn sessions(&self) -> Vec<SessionLive>;
}

/// The IPv6 pools' usage; `None` when they could not be read this time.
pub trait PoolStats: Send + Sync {
    fn figures(&self) -> BoxFuture<'_, Option<PoolFigures>>;
}

/// Everything the collector reads.
pub struct Sources {
    /// The file system whose usage is reported (the data directory's).
    pub data_dir: PathBuf,
    /// Alert rules, and the database job latencies.
    pub store: Store,
    /// API request latencies.
    pub api: Arc<Latencies>,
    /// Open API connections.
    pub connections: Arc<AtomicUsize>,
    /// Process start (uptime, on the monotonic clock).
    pub started: Instant,
    /// Alert events go here; its housekeeping runs every tick.
    pub logs: Arc<Logs>,
    /// `metrics_interval_secs` and `monitoring_enabled`, watched for changes.
    pub settings: watch::Receiver<Settings>,
    pub wireguard: Arc<dyn WireguardStats>,
    pub bgp: Arc<dyn BgpStats>,
    pub pools: Arc<dyn PoolStats>,
}

/// Figures of one set of server states and peer counters at `now` (Unix time). Pure.
pub fn wireguard_figures<'a>(
    states: impl IntoIterator<Item = &'a ServerState>,
    peers: impl IntoIterator<Item = &'a crate::wireguard::device::datapath::PeerStats>,
    now: Duration,
) -> WireguardFigures {
    let mut w = WireguardFigures::default();
    for state in states {
        match state {
            ServerState::Running { .. } => w.servers_running += 1,
            ServerState::Error(_) => w.servers_error += 1,
            ServerState::Stopped => {}
        }
    }
    for p in peers {
        w.peers += 1;
        w.bytes_received = w.bytes_received.saturating_add(p.rx_bytes);
        w.bytes_sent = w.bytes_sent.saturating_add(p.tx_bytes);
        if p.last_handshake
            .is_some_and(|t| now.saturating_sub(t).as_secs() < ACTIVE_HANDSHAKE_SECS)
        {
            w.peers_active += 1;
        }
    }
    w
}

impl WireguardStats for Engine {
    fn figures(&self) -> BoxFuture<'_, WireguardFigures> {
        Box::pin(async move {
            let states = self.states().await;
            let mut peers = Vec::new();
            for id in self.running_ids().await {
                peers.extend(self.stats(id).await.into_values());
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            wireguard_figures(states.values(), &peers, now)
        })
    }
}

impl BgpStats for Speaker {
    fn sessions(&self) -> Vec<SessionLive> {
        self.overview()
    }
}

impl PoolStats for crate::ipam::Service {
    fn figures(&self) -> BoxFuture<'_, Option<PoolFigures>> {
        Box::pin(async move {
            match self.monitor().await {
                Ok(m) => Some(PoolFigures::of(&m)),
                Err(e) => {
                    log::warn!("monitor: cannot read the pools: {e}");
                    None
                }
            }
        })
    }
}

/// BGP sessions counted (also `/status/status`). Pure.
pub fn bgp_figures(sessions: &[SessionLive]) -> BgpFigures {
    let mut b = BgpFigures::default();
    for s in sessions {
        b.sessions += 1;
        let up = s.live.state == crate::bgp::fsm::State::Established;
        b.established += u64::from(up);
        b.down += u64::from(s.enabled && !up);
        b.prefixes_received = b.prefixes_received.saturating_add(s.live.prefixes_received);
        b.prefixes_sent = b.prefixes_sent.saturating_add(s.live.prefixes_sent);
    }
    b
}

impl PoolFigures {
    /// The collector's figures of the pools' usage view.
    pub fn of(m: &crate::ipam::view::PoolsMonitor) -> PoolFigures {
        PoolFigures {
            pools: m.totals.pools,
            allocations: m.totals.allocations,
            max_usage_percent: m
                .pools
                .iter()
                .map(|p| p.pool.usage_percent)
                .fold(0.0, f64::max),
            allocated_prefixes: m.totals.allocated_prefixes,
            total_prefixes: m.totals.total_prefixes,
        }
    }
}
