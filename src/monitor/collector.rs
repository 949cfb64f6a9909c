//! The metrics collector: one task that, every `metrics_interval_secs` (default 30 s),
//! reads the host (`/proc`, `statvfs` of the data directory) and the running engines
//! (WireGuard devices, BGP sessions, prefix pools, the API and database latency
//! histograms), keeps the figures as the latest [`Snapshot`] and in the in-memory
//! [`History`], evaluates the alert rules, and writes alert and housekeeping events. Nothing
//! here writes to flash per sample.
//!
//! Memory: the history holds `history_hours * 3600 / interval` samples of 8 bytes for each
//! of the [`METRICS`] (28 at 24 h / 30 s: 2,880 samples, 22.5 KiB each, 630 KiB in all),
//! allocated as metrics first report and never grown; a changed interval starts it afresh.
//!
//! It reads through [`Sources`] (one small trait per engine, registered in `app.rs`) and
//! writes into its [`Monitor`], which the API and the WebSocket channels read.

use super::alerts::{Alert, Evaluator, Event};
use super::history::{capacity_for, History, Sample};
use super::procfs::{self, CpuTimes, DiskUsage, MemInfo, NetDev};
use super::sources::Sources;
use crate::monitor::latency::LatencySummary;
use crate::store::logs::LogEntry;
use crate::sync::lock;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// Every metric the collector records, with its unit (for `/monitoring/metrics/system`).
pub const METRICS: [(&str, &str); 28] = [
    ("system.cpu.usage", "percent"),
    ("system.load.1", "load"),
    ("system.memory.usage", "percent"),
    ("system.memory.used", "bytes"),
    ("system.disk.usage", "percent"),
    ("system.network.rx_rate", "bytes_per_second"),
    ("system.network.tx_rate", "bytes_per_second"),
    ("process.cpu.usage", "percent"),
    ("process.memory.rss", "bytes"),
    ("api.requests.rate", "requests_per_second"),
    ("api.response_time.avg", "milliseconds"),
    ("api.response_time.p95", "milliseconds"),
    ("api.connections", "connections"),
    ("database.query_time.avg", "milliseconds"),
    ("wireguard.servers.running", "servers"),
    ("wireguard.servers.error", "servers"),
    ("wireguard.peers", "peers"),
    ("wireguard.peers.active", "peers"),
    ("wireguard.rx_rate", "bytes_per_second"),
    ("wireguard.tx_rate", "bytes_per_second"),
    ("bgp.sessions", "sessions"),
    ("bgp.sessions.established", "sessions"),
    ("bgp.sessions.down", "sessions"),
    ("bgp.prefixes.received", "prefixes"),
    ("bgp.prefixes.sent", "prefixes"),
    ("ipv6.pools.usage", "percent"),
    ("ipv6.prefixes.allocated", "prefixes"),
    ("alerts.active", "alerts"),
];

/// Samples kept per metric at most (7 days at 30 s: 157 KiB a metric, 4.3 MiB in all), so a
/// long history at a short interval cannot take the router's memory; the history then
/// covers less time than `history_hours`.
pub const MAX_SAMPLES: usize = 20_160;

fn samples(hours: u32, interval_secs: u64) -> usize {
    capacity_for(hours, interval_secs).min(MAX_SAMPLES)
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Cpu {
    /// Percent busy since the previous sample; `None` on the first.
    pub usage: Option<f64>,
    pub cores: usize,
    pub load_average: Option<[f64; 3]>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Memory {
    pub total: u64,
    pub used: u64,
    pub free: u64,
    pub available: u64,
    pub usage_percent: f64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Disk {
    /// The file system holding the data directory.
    pub path: String,
    pub total: u64,
    pub used: u64,
    pub free: u64,
    pub usage_percent: f64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Network {
    /// Sums over every interface but loopback.
    pub bytes_sent: u64,
    pub bytes_recv: u64,
    pub packets_sent: u64,
    pub packets_recv: u64,
    /// Bytes per second since the previous sample.
    pub rx_rate: Option<f64>,
    pub tx_rate: Option<f64>,
    pub interfaces: Vec<NetDev>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Host {
    pub cpu: Cpu,
    /// `None` where `/proc/meminfo` cannot be read.
    pub memory: Option<Memory>,
    pub disk: Option<Disk>,
    pub network: Network,
    pub uptime: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Process {
    pub rss_bytes: u64,
    pub cpu_usage: Option<f64>,
    pub threads: u64,
    pub uptime: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct WireguardFigures {
    pub servers_running: u64,
    pub servers_error: u64,
    pub peers: u64,
    pub peers_active: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// Bytes per second through all tunnels since the previous sample.
    pub rx_rate: Option<f64>,
    pub tx_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct BgpFigures {
    pub sessions: u64,
    pub established: u64,
    /// Enabled sessions that are not established.
    pub down: u64,
    pub prefixes_received: u64,
    pub prefixes_sent: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PoolFigures {
    pub pools: u64,
    pub allocations: u64,
    /// The fullest pool's usage.
    pub max_usage_percent: f64,
    pub allocated_prefixes: u128,
    pub total_prefixes: u128,
}

#[derive(Debug, Clone, Serialize)]
pub struct Application {
    pub api: LatencySummary,
    /// API requests per second since the previous sample.
    pub requests_rate: Option<f64>,
    pub active_connections: usize,
    pub database: LatencySummary,
    pub wireguard: WireguardFigures,
    pub bgp: BgpFigures,
    /// Absent when the pools could not be read this time.
    pub ipv6: Option<PoolFigures>,
    pub log_events_dropped: u64,
}

/// One collector sample.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    #[serde(serialize_with = "crate::time::ser")]
    pub timestamp: i64,
    pub system: Host,
    pub process: Process,
    pub application: Application,
}

impl Snapshot {
    pub fn timestamp_string(&self) -> String {
        crate::time::rfc3339(self.timestamp)
    }

    /// CPU, memory and disk usage in percent, as the status endpoints and the
    /// `system_status` channel show them.
    pub fn usage(&self) -> serde_json::Value {
        serde_json::json!({
            "cpu_usage": self.system.cpu.usage,
            "memory_usage": self.system.memory.as_ref().map(|m| m.usage_percent),
            "disk_usage": self.system.disk.as_ref().map(|d| d.usage_percent),
        })
    }
}

/// What the previous tick saw, for rates.
#[derive(Default)]
struct Previous {
    at: Option<Instant>,
    cpu: Option<CpuTimes>,
    self_ticks: Option<u64>,
    net: Option<(u64, u64)>,
    wg: Option<(u64, u64)>,
    requests: Option<u64>,
}

struct State {
    history: History,
    interval: u64,
    evaluator: Evaluator,
    previous: Previous,
    latest: Option<Arc<Snapshot>>,
    /// Wall time of the last tick's collection and evaluation.
    last_tick: Option<Duration>,
}

/// The collector's shared state: the latest sample, the history, the active alerts, and
/// the feeds the WebSocket channels read.
pub struct Monitor {
    state: Mutex<State>,
    hours: u32,
    snapshots: watch::Sender<Option<Arc<Snapshot>>>,
    alerts: broadcast::Sender<Arc<Alert>>,
    /// False while `monitoring_enabled` is off and the collector is idle.
    sampling: std::sync::atomic::AtomicBool,
}

impl Monitor {
    pub fn new(interval_secs: u64, history_hours: u32) -> Monitor {
        Monitor {
            state: Mutex::new(State {
                history: History::new(samples(history_hours, interval_secs)),
                interval: interval_secs,
                evaluator: Evaluator::new(),
                previous: Previous::default(),
                latest: None,
                last_tick: None,
            }),
            hours: history_hours,
            snapshots: watch::Sender::new(None),
            alerts: broadcast::Sender::new(64),
            sampling: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Whether the collector takes samples (`monitoring_enabled`).
    pub fn sampling(&self) -> bool {
        self.sampling.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Set by the collector as it stops or resumes; rates restart from the next sample.
    fn set_sampling(&self, on: bool) {
        if self.sampling.swap(on, std::sync::atomic::Ordering::Relaxed) != on {
            lock(&self.state).previous = Previous::default();
        }
    }

    /// The newest sample (`None` before the first tick).
    pub fn latest(&self) -> Option<Arc<Snapshot>> {
        lock(&self.state).latest.clone()
    }

    /// The newest sample to show; none only in the instant before the first one, or while
    /// monitoring is off (`monitoring_enabled`) and none was taken before.
    pub fn sample(&self) -> Result<Arc<Snapshot>, super::Error> {
        self.latest()
            .ok_or(super::Error::NoSample(if self.sampling() {
                "the metrics collector has not sampled yet"
            } else {
                "monitoring is off (/system/config monitoring_enabled)"
            }))
    }

    /// Samples of `name` since `since` (Unix seconds), oldest first.
    pub fn series(&self, name: &str, since: i64) -> Vec<Sample> {
        lock(&self.state).history.series(name, since)
    }

    pub fn active_alerts(&self) -> Vec<Alert> {
        lock(&self.state).evaluator.active()
    }

    /// Active alerts per level: (info, warning, error, critical).
    pub fn alert_counts(&self) -> (usize, usize, usize, usize) {
        lock(&self.state).evaluator.counts()
    }

    /// Each new sample, as it is taken.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Snapshot>>> {
        self.snapshots.subscribe()
    }

    /// Alerts as they are raised or resolved.
    pub fn subscribe_alerts(&self) -> broadcast::Receiver<Arc<Alert>> {
        self.alerts.subscribe()
    }

    /// About the collector itself: interval, history size and memory, last tick's cost.
    pub fn about(&self) -> serde_json::Value {
        let s = lock(&self.state);
        serde_json::json!({
            "enabled": self.sampling(),
            "interval_secs": s.interval,
            "history_hours": self.hours,
            "history_capacity": s.history.capacity(),
            "history_metrics": s.history.names().len(),
            "history_bytes": s.history.heap_bytes(),
            "last_tick_ms": s.last_tick.map(|d| d.as_secs_f64() * 1000.0),
        })
    }

    fn set_interval(&self, secs: u64) {
        let mut s = lock(&self.state);
        if s.interval != secs {
            s.interval = secs;
            s.history = History::new(samples(self.hours, secs));
            s.previous = Previous::default();
        }
    }
}

/// Runs the collector until the service stops; idle while `monitoring_enabled` is off.
pub async fn run(monitor: Arc<Monitor>, mut sources: Sources) {
    loop {
        let (secs, enabled) = {
            let s = sources.settings.borrow_and_update();
            (s.metrics_interval_secs, s.monitoring_enabled)
        };
        // Flagged only between ticks, so once it reads false no sample is in progress.
        monitor.set_sampling(enabled);
        if !enabled {
            if sources.settings.changed().await.is_err() {
                return;
            }
            continue;
        }
        monitor.set_interval(secs);
        // A fixed period (not "sleep after each sample", which would drift by its cost).
        let mut every = tokio::time::interval(Duration::from_secs(secs));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => tick(&monitor, &sources).await,
                r = sources.settings.changed() => {
                    if r.is_err() {
                        return;
                    }
                    let s = sources.settings.borrow();
                    if s.metrics_interval_secs != secs || !s.monitoring_enabled {
                        break;
                    }
                }
            }
        }
    }
}

/// One sample: read, record, evaluate, publish.
pub async fn tick(monitor: &Monitor, sources: &Sources) {
    let started = Instant::now();
    let data_dir = sources.data_dir.clone();
    let host = tokio::task::spawn_blocking(move || read_host(&data_dir))
        .await
        .unwrap_or_default();
    let wireguard = sources.wireguard.figures().await;
    let bgp = super::sources::bgp_figures(&sources.bgp.sessions());
    let ipv6 = sources.pools.figures().await;
    // Without the rules this time, alerts stay as they are (rather than all resolving).
    let rules = match sources.store.call(|c| crate::store::alerts::list(c)).await {
        Ok(r) => Some(r),
        Err(e) => {
            log::warn!("monitor: cannot read the alert rules: {e}");
            None
        }
    };
    let now = crate::time::now();
    let mut snap = Snapshot {
        timestamp: now,
        system: host.host,
        process: Process {
            rss_bytes: host
                .self_stat
                .map_or(0, |s| s.rss_pages * procfs::page_size()),
            cpu_usage: None,
            threads: host.self_stat.map_or(0, |s| s.threads),
            uptime: sources.started.elapsed().as_secs(),
        },
        application: Application {
            api: sources.api.summary(),
            requests_rate: None,
            active_connections: sources
                .connections
                .load(std::sync::atomic::Ordering::Relaxed),
            database: sources.store.timing.summary(),
            wireguard,
            bgp,
            ipv6,
            log_events_dropped: sources.logs.dropped(),
        },
    };
    let events = {
        let mut s = lock(&monitor.state);
        rates(&mut s.previous, &mut snap, &host.raw, started);
        let mut values = values(&snap);
        // Alerts active before this evaluation (a rule may watch the alerts themselves).
        values.insert("alerts.active", s.evaluator.active().len() as f64);
        for (name, v) in &values {
            s.history.record(name, now, *v);
        }
        let lookup = |name: &str| values.get(name).copied();
        let events = match &rules {
            Some(rules) => s.evaluator.tick(now, rules, &lookup),
            None => Vec::new(),
        };
        let snap = Arc::new(snap);
        s.latest = Some(snap.clone());
        s.last_tick = Some(started.elapsed());
        log::debug!(
            "monitor: sample taken in {:.2} ms, {} alert events",
            started.elapsed().as_secs_f64() * 1000.0,
            events.len()
        );
        monitor.snapshots.send_replace(Some(snap));
        events
    };
    for e in events {
        let (alert, raised) = match e {
            Event::Raised(a) => (a, true),
            Event::Resolved(a) => (a, false),
        };
        let level = match (raised, alert.level) {
            (false, _) => "INFO",
            (true, super::alerts::Level::Info) => "INFO",
            (true, super::alerts::Level::Warning) => "WARNING",
            (true, super::alerts::Level::Error) => "ERROR",
            (true, super::alerts::Level::Critical) => "CRITICAL",
        };
        let message = format!(
            "{} {}: {} = {} ({} {})",
            alert.name,
            if raised { "raised" } else { "resolved" },
            alert.metric_name,
            round2(alert.current_value),
            alert.condition.as_str(),
            alert.threshold_value
        );
        let action = if raised {
            "alert.raised"
        } else {
            "alert.resolved"
        };
        sources.logs.event(
            LogEntry::event(level, "monitoring", action, message)
                .with_target(format!("monitoring/alerts/rules/{}", alert.rule_id))
                .with_details(serde_json::to_value(&alert).unwrap_or_default()),
        );
        let _ = monitor.alerts.send(Arc::new(alert));
    }
    sources.logs.housekeeping().await;
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Host figures plus the raw counters rates are computed from.
#[derive(Default)]
struct HostRead {
    host: Host,
    raw: Raw,
    self_stat: Option<procfs::SelfStat>,
}

#[derive(Default)]
struct Raw {
    cpu: Option<CpuTimes>,
    self_ticks: Option<u64>,
}

fn read_host(data_dir: &std::path::Path) -> HostRead {
    let (cpu, cores) = procfs::read_stat().map_or((None, 0), |(t, n)| (Some(t), n));
    let memory = procfs::read_meminfo().map(|m: MemInfo| Memory {
        total: m.total,
        used: m.used(),
        free: m.free,
        available: m.available,
        usage_percent: round2(m.usage_percent()),
    });
    let disk = procfs::disk_usage(data_dir).ok().map(|d: DiskUsage| Disk {
        path: data_dir.display().to_string(),
        total: d.total,
        used: d.used(),
        free: d.available,
        usage_percent: round2(d.usage_percent()),
    });
    let interfaces = procfs::read_net_dev();
    let mut network = Network::default();
    for i in interfaces.iter().filter(|i| i.name != "lo") {
        network.bytes_recv = network.bytes_recv.saturating_add(i.rx_bytes);
        network.bytes_sent = network.bytes_sent.saturating_add(i.tx_bytes);
        network.packets_recv = network.packets_recv.saturating_add(i.rx_packets);
        network.packets_sent = network.packets_sent.saturating_add(i.tx_packets);
    }
    network.interfaces = interfaces;
    let self_stat = procfs::read_self_stat();
    HostRead {
        host: Host {
            cpu: Cpu {
                usage: None,
                cores,
                load_average: procfs::read_loadavg(),
            },
            memory,
            disk,
            network,
            uptime: procfs::read_uptime().map(|u| u as u64),
        },
        raw: Raw {
            cpu,
            self_ticks: self_stat.map(|s| s.cpu_ticks),
        },
        self_stat,
    }
}

/// Fills the figures that need the previous sample (CPU usage, rates) and remembers this one.
fn rates(prev: &mut Previous, snap: &mut Snapshot, raw: &Raw, now: Instant) {
    let secs = prev
        .at
        .map(|t| now.duration_since(t).as_secs_f64())
        .filter(|s| *s > 0.0);
    let rate = |before: Option<u64>, after: u64| -> Option<f64> {
        Some(round2(after.checked_sub(before?)? as f64 / secs?))
    };
    if let (Some(p), Some(c)) = (prev.cpu, raw.cpu) {
        snap.system.cpu.usage = procfs::cpu_usage(p, c).map(round2);
    }
    let ticks = raw.self_ticks;
    if let (Some(before), Some(after), Some(s)) = (prev.self_ticks, ticks, secs) {
        let used = after.saturating_sub(before) as f64 / procfs::clock_ticks() as f64;
        snap.process.cpu_usage = Some(round2(used / s * 100.0));
    }
    let n = &mut snap.system.network;
    n.rx_rate = rate(prev.net.map(|p| p.0), n.bytes_recv);
    n.tx_rate = rate(prev.net.map(|p| p.1), n.bytes_sent);
    let w = &mut snap.application.wireguard;
    w.rx_rate = rate(prev.wg.map(|p| p.0), w.bytes_received);
    w.tx_rate = rate(prev.wg.map(|p| p.1), w.bytes_sent);
    let a = &mut snap.application;
    a.requests_rate = rate(prev.requests, a.api.requests);
    *prev = Previous {
        at: Some(now),
        cpu: raw.cpu,
        self_ticks: ticks,
        net: Some((
            snap.system.network.bytes_recv,
            snap.system.network.bytes_sent,
        )),
        wg: Some((
            snap.application.wireguard.bytes_received,
            snap.application.wireguard.bytes_sent,
        )),
        requests: Some(snap.application.api.requests),
    };
}

/// The figures recorded in the history (and checked by alert rules), by metric name.
fn values(s: &Snapshot) -> HashMap<&'static str, f64> {
    let mut v = HashMap::new();
    let mut put = |name: &'static str, x: Option<f64>| {
        if let Some(x) = x {
            v.insert(name, x);
        }
    };
    let h = &s.system;
    put("system.cpu.usage", h.cpu.usage);
    put("system.load.1", h.cpu.load_average.map(|l| l[0]));
    put(
        "system.memory.usage",
        h.memory.as_ref().map(|m| m.usage_percent),
    );
    put(
        "system.memory.used",
        h.memory.as_ref().map(|m| m.used as f64),
    );
    put(
        "system.disk.usage",
        h.disk.as_ref().map(|d| d.usage_percent),
    );
    put("system.network.rx_rate", h.network.rx_rate);
    put("system.network.tx_rate", h.network.tx_rate);
    put("process.cpu.usage", s.process.cpu_usage);
    put("process.memory.rss", Some(s.process.rss_bytes as f64));
    let a = &s.application;
    put("api.requests.rate", a.requests_rate);
    put("api.response_time.avg", a.api.avg_ms);
    put("api.response_time.p95", a.api.p95_ms);
    put("api.connections", Some(a.active_connections as f64));
    put("database.query_time.avg", a.database.avg_ms);
    let w = &a.wireguard;
    put("wireguard.servers.running", Some(w.servers_running as f64));
    put("wireguard.servers.error", Some(w.servers_error as f64));
    put("wireguard.peers", Some(w.peers as f64));
    put("wireguard.peers.active", Some(w.peers_active as f64));
    put("wireguard.rx_rate", w.rx_rate);
    put("wireguard.tx_rate", w.tx_rate);
    let b = &a.bgp;
    put("bgp.sessions", Some(b.sessions as f64));
    put("bgp.sessions.established", Some(b.established as f64));
    put("bgp.sessions.down", Some(b.down as f64));
    put("bgp.prefixes.received", Some(b.prefixes_received as f64));
    put("bgp.prefixes.sent", Some(b.prefixes_sent as f64));
    if let Some(p) = &a.ipv6 {
        put("ipv6.pools.usage", Some(p.max_usage_percent));
        put("ipv6.prefixes.allocated", Some(p.allocated_prefixes as f64));
    }
    v
}
