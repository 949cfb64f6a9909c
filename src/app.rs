//! Start-up and shutdown: everything the service runs, and how it is wired.
//!
//! ```text
//!            SIGINT/SIGTERM ──► shutdown future
//!                                   │
//!  TcpListener ──accept──► api::serve ──spawn per connection──► hyper http1 ──► api::handle
//!                                   │                                            │
//!                                   │  (graceful: stop accepting, drain)         ├─► auth::authenticate
//!                                   ▼                                            ├─► handler ─► domain ─► Store
//!                              Store::close  ◄── after the server has drained    └─► audit log (Store)
//!                                   │
//!                      ipv6wgm-db thread (the one SQLite connection)
//! ```
//! `App` is the shared state handed (as `Arc<App>`) to every handler. Later components
//! (WireGuard devices, BGP speaker, RPKI client) are started here too and put their handles
//! and health checks in `App`.

use crate::api::router::Router;
use crate::auth::ratelimit::LoginLimiter;
use crate::auth::token::{self, TokenService};
use crate::config::Config;
use crate::monitor::health::HealthCheck;
use crate::monitor::latency::Latencies;
use crate::store::Store;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Semaphore;

pub struct App {
    pub config: Config,
    /// Committed changes, to the engines that follow the database and to observers
    /// ([`crate::changes`]).
    pub bus: crate::changes::Bus,
    pub store: Store,
    pub tokens: TokenService,
    pub login_limiter: Mutex<LoginLimiter>,
    /// `api_rate_limit` (`/system/config`): requests per minute per user or address.
    pub api_limiter: Mutex<crate::auth::ratelimit::ApiLimiter>,
    /// Password hashes computed at once (each is ~tens of ms of one core's time).
    pub hashing: Semaphore,
    pub health: Vec<Box<dyn HealthCheck>>,
    pub metrics: Latencies,
    pub router: Router,
    pub started: Instant,
    /// The running WireGuard servers (read by monitoring; changed only by `wireguard`).
    pub wg: Arc<crate::wireguard::device::engine::Engine>,
    /// WireGuard servers and clients.
    pub wireguard: crate::wireguard::Service,
    /// The live VRP table for route origin validation.
    pub rpki: Arc<crate::rpki::Rpki>,
    /// One prefix allocator per IPv6 pool, changed only on the database thread.
    pub pools: crate::ipam::Pools,
    /// The BGP speaker: one task per session.
    pub bgp: crate::bgp::Speaker,
    /// The log store's writer queue and live feed.
    pub logs: Arc<crate::logs::Logs>,
    /// Settings that can change while running (`/system/config`).
    pub runtime: crate::system::Runtime,
    /// Stop or restart requested through the API (`/system/action`).
    pub control: Control,
    /// The metrics collector's latest sample, history and alerts.
    pub monitor: crate::monitor::collector::Monitor,
    /// Open API connections (HTTP keep-alive and WebSocket).
    pub open_connections: std::sync::atomic::AtomicUsize,
    /// Authenticated WebSocket connections allowed at once (`http.max_connections`).
    pub ws_slots: Arc<Semaphore>,
    /// WebSocket connections without a valid token yet (`ws::UNAUTHENTICATED_SLOTS`).
    pub ws_unauthenticated: Arc<Semaphore>,
    /// Writes through the API, for the WebSocket channels without an engine feed.
    pub changes: tokio::sync::broadcast::Sender<crate::api::ws::Change>,
    /// WebSocket payloads shared by all connections.
    pub ws_cache: crate::api::ws::Cache,
    /// Set when the service stops: WebSocket connections close with 1001.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

/// How `run` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Stop,
    /// `POST /system/action {"action": "restart"}`: the caller executes the binary again.
    Restart,
}

/// A stop requested from inside (the API), next to SIGTERM from outside.
#[derive(Default)]
pub struct Control {
    requested: tokio::sync::Notify,
    restart: std::sync::atomic::AtomicBool,
}

impl Control {
    /// Asks `run` to drain and return `Exit::Restart` (or `Exit::Stop`).
    pub fn request(&self, exit: Exit) {
        self.restart
            .store(exit == Exit::Restart, std::sync::atomic::Ordering::SeqCst);
        self.requested.notify_one();
    }

    async fn requested(&self) -> Exit {
        self.requested.notified().await;
        if self.restart.load(std::sync::atomic::Ordering::SeqCst) {
            Exit::Restart
        } else {
            Exit::Stop
        }
    }
}

pub const DB_FILE: &str = "ipv6wgm.db";
pub const KEY_FILE: &str = "jwt.key";
/// The log store, in `run_dir()` (RAM on OpenWrt when `log_dir` is in /tmp).
pub const LOGS_FILE: &str = "logs.db";

impl App {
    /// Opens the data dir (creating it, the database and the signing key as needed) and
    /// makes sure an admin exists.
    pub async fn open(config: Config) -> Result<App, String> {
        crate::fsutil::ensure_private_dir(&config.data_dir)?;
        crate::fsutil::ensure_private_dir(&config.run_dir())?;
        let store = Store::open(
            &config.data_dir.join(DB_FILE),
            &config.run_dir().join(LOGS_FILE),
        )?;
        let key = token::load_or_create_key(&config.data_dir.join(KEY_FILE))?;
        let pools = crate::ipam::Pools::load(&store).await?;
        let bus = crate::changes::Bus::default();
        let logs = Arc::new(crate::logs::Logs::default());
        let wg = Arc::new(crate::wireguard::device::engine::Engine::new(
            Some(config.wireguard.uapi_dir.clone()).filter(|d| !d.as_os_str().is_empty()),
        ));
        let reconciler = Arc::new(crate::wireguard::Reconciler::new(
            store.clone(),
            wg.clone(),
            logs.clone(),
        ));
        bus.add_applier(reconciler.clone());
        let wireguard = crate::wireguard::Service::new(
            store.clone(),
            wg.clone(),
            bus.clone(),
            pools.clone(),
            reconciler,
            config.public_host.clone(),
        );
        let app = App {
            tokens: TokenService::new(&key, config.auth.token_ttl_secs),
            login_limiter: Mutex::new(LoginLimiter::new(
                config.auth.login_max_failures,
                config.auth.login_window_secs,
            )),
            api_limiter: Mutex::default(),
            hashing: Semaphore::new(2),
            health: vec![
                Box::new(crate::monitor::health::DatabaseCheck),
                Box::new(crate::monitor::health::ApiCheck),
                Box::new(crate::monitor::health::RpkiCheck),
            ],
            metrics: Latencies::default(),
            router: crate::api::routes(),
            started: Instant::now(),
            rpki: Arc::default(),
            wg,
            wireguard,
            pools,
            bgp: crate::bgp::Speaker::default(),
            logs,
            runtime: crate::system::Runtime::new(crate::system::Settings::from_config(&config)),
            control: Control::default(),
            monitor: crate::monitor::collector::Monitor::new(
                config.monitoring.interval_secs,
                config.monitoring.history_hours,
            ),
            open_connections: Default::default(),
            ws_slots: Arc::new(Semaphore::new(config.http.max_connections)),
            ws_unauthenticated: Arc::new(Semaphore::new(crate::api::ws::UNAUTHENTICATED_SLOTS)),
            changes: tokio::sync::broadcast::Sender::new(16),
            stopping: tokio::sync::watch::Sender::new(false),
            ws_cache: crate::api::ws::Cache::default(),
            bus,
            store,
            config,
        };
        let env_password = std::env::var("IPV6WGM_ADMIN_PASSWORD").ok();
        crate::users::bootstrap_admin(&app, env_password).await?;
        Ok(app)
    }

    /// Open API connections right now.
    pub fn connections(&self) -> usize {
        self.open_connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Seconds since start, on the monotonic clock (immune to NTP steps).
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// Runs the service until `shutdown` resolves (or the API asks for a stop or restart), then
/// drains requests and closes the database.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<Exit, String> {
    let listener = bind(config.listen)?;
    let tls = crate::api::tls::acceptor(&config.http)?;
    let app = Arc::new(App::open(config).await?);
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    log::info!(
        "ipv6wgm {} listening on {scheme}://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    crate::system::load(&app).await;
    let log_writer = tokio::spawn(crate::logs::writer(app.clone()));
    app.bus
        .add_applier(Arc::new(BgpExports(Arc::downgrade(&app))));
    crate::changes::Applier::reconcile_all(&*app.wireguard.reconciler()).await;
    let rpki = &app.config.rpki;
    let rpki_task = match (&rpki.vrp_file, &rpki.rtr_server) {
        (Some(f), _) => Some(tokio::spawn(crate::rpki::source::watch_files(
            app.rpki.clone(),
            f.clone(),
            rpki.slurm_file.clone(),
        ))),
        (None, Some(server)) => Some(tokio::spawn(crate::rpki::rtr::run(
            app.rpki.clone(),
            server.clone(),
        ))),
        (None, None) => None,
    };
    let exports_task = tokio::spawn(crate::bgp::exports_task(app.clone()));
    let collector = tokio::spawn(crate::monitor::collector::run(app.clone()));
    let events = tokio::spawn(crate::monitor::events::run(app.clone()));
    if let Err(e) = crate::bgp::restore(&app).await {
        log::warn!("bgp: cannot start the sessions: {e}");
    }
    let exit = std::sync::Mutex::new(Exit::Stop);
    let stop = async {
        tokio::select! {
            _ = shutdown => {}
            e = app.control.requested() => {
                log::info!("{} requested through the API", if e == Exit::Restart { "restart" } else { "stop" });
                if let Ok(mut x) = exit.lock() {
                    *x = e;
                }
            }
        }
    };
    crate::api::serve(listener, tls, app.clone(), stop).await;
    app.stopping.send_replace(true);
    // Peers get a Cease (administrative shutdown) rather than a hold-timer expiry.
    app.bgp.shutdown().await;
    exports_task.abort();
    // Interfaces go away with the service; `is_active` brings them back on the next start.
    app.wireguard.stop_all().await;
    if let Some(t) = rpki_task {
        t.abort();
    }
    collector.abort();
    events.abort();
    // Events still queued are written (the writer drains once `stopping` is set).
    if tokio::time::timeout(std::time::Duration::from_secs(2), log_writer)
        .await
        .is_err()
    {
        log::warn!("log events still queued at stop were not written");
    }
    app.store.close().await;
    log::info!("stopped");
    Ok(exit.into_inner().unwrap_or(Exit::Stop))
}

/// Until the BGP exports follow the bus themselves: a prefix delegated to a WireGuard client
/// and released with it (the client or its server deleted) is no longer announced.
struct BgpExports(std::sync::Weak<App>);

impl crate::changes::Applier for BgpExports {
    fn apply<'a>(&'a self, change: &'a crate::changes::Change) -> crate::sync::BoxFuture<'a, ()> {
        if let (crate::changes::Change::Allocation { .. }, Some(app)) = (change, self.0.upgrade()) {
            app.bgp.changed();
        }
        Box::pin(async {})
    }

    fn reconcile_all(&self) -> crate::sync::BoxFuture<'_, ()> {
        if let Some(app) = self.0.upgrade() {
            app.bgp.changed();
        }
        Box::pin(async {})
    }
}

/// Binds the API socket. `[::]` is made dual-stack explicitly (routers may set
/// `bindv6only`); on a host without IPv6 it falls back to `0.0.0.0`.
fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    use socket2::{Domain, Protocol, Socket, Type};
    let open = |addr: SocketAddr| -> std::io::Result<Socket> {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        if addr.is_ipv6() && addr.ip().is_unspecified() {
            s.set_only_v6(false)?;
        }
        s.set_reuse_address(true)?;
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        s.listen(1024)?;
        Ok(s)
    };
    let socket = match open(addr) {
        Err(e)
            if addr.is_ipv6()
                && addr.ip().is_unspecified()
                && e.raw_os_error() == Some(libc::EAFNOSUPPORT) =>
        {
            let v4 = SocketAddr::from(([0, 0, 0, 0], addr.port()));
            log::warn!("IPv6 is unavailable on this host; listening on {v4} instead");
            open(v4)
        }
        r => r,
    }
    .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    tokio::net::TcpListener::from_std(socket.into())
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}
