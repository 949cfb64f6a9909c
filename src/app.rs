//! Start-up and shutdown: what the service runs, who owns each task, and how it stops.
//!
//! ```text
//!  App::open:  Store (ipv6wgm-db thread) ─► services: auth, users, system, wireguard, ipam,
//!              bgp, logs, monitor rules — each with its store handle, engine and settings
//!              bus appliers, in order: bgp::Reconciler, ws cache invalidation,
//!              wireguard::Reconciler
//!
//!  run:  bind ─► App::open ─► system.load (stored settings)
//!        Tasks (owned here, stopped by `stopping`, joined ≤ 2 s):
//!          log writer      (drains its queue itself once `stopping` is set)
//!          rpki files | rpki rtr   (one of them, per config)
//!          bgp exports     (rebuilds what we originate when the bus marks it dirty)
//!          collector       (one sample per interval; alerts)
//!          events          (BGP state changes → event log)
//!          backup schedules (sleeps until a schedule is due, starts its backup; a missed
//!                           slot runs once at start-up — `backup::runner`)
//!        bus.reconcile_all ─► WireGuard devices of active servers, BGP sessions, exports
//!        api::serve ── per connection: hyper http1 / WebSocket, until the shutdown future
//!                      (SIGINT/SIGTERM) or /system/action; graceful: stop accepting, drain
//!
//!  stop:  stopping = true ─► WebSockets close 1001, Tasks return at their next await
//!         bgp shutdown ─► every session sends its Cease and ends
//!         wireguard stop_all ─► devices down (is_active brings them back at start)
//!         Tasks joined ─► Store::close (queued jobs finish, the thread is joined)
//! ```
//! Device and session tasks are owned by their engines (`wireguard::device::engine`,
//! `bgp::speaker`) and stop with them. `App` is the composition root handed (as `Arc<App>`)
//! to the router; handlers get the one service they use (`h!(app.svc => handler)`).

use crate::api::router::Router;
use crate::auth::token::{self, TokenService};
use crate::config::Config;
use crate::monitor::health::HealthCheck;
use crate::monitor::latency::Latencies;
use crate::store::Store;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

pub use crate::system::{Control, Exit};

pub struct App {
    pub config: Config,
    /// Committed changes, to the engines that follow the database and to observers
    /// ([`crate::changes`]).
    pub bus: crate::changes::Bus,
    pub store: Store,
    /// Bearer tokens to principals; login, refresh, logout.
    pub auth: crate::auth::Service,
    /// The token signing key (replaced by a restore that brings another).
    pub tokens: Arc<TokenService>,
    /// User accounts.
    pub users: crate::users::Service,
    /// Live settings (`/system/config`), the API rate limit, stop and restart.
    pub system: crate::system::Service,
    pub health: Vec<Box<dyn HealthCheck>>,
    /// API request latencies (read by the collector and the health check).
    pub metrics: Arc<Latencies>,
    pub router: Router,
    pub started: Instant,
    /// The running WireGuard servers (read by monitoring; changed only by `wireguard`).
    pub wg: Arc<crate::wireguard::device::engine::Engine>,
    /// WireGuard servers and clients.
    pub wireguard: crate::wireguard::Service,
    /// The live VRP table for route origin validation.
    pub rpki: Arc<crate::rpki::Rpki>,
    /// IPv6 prefix pools, allocations, whitelists.
    pub ipam: crate::ipam::Service,
    /// BGP sessions and announcements; the speaker (one task per session) follows them
    /// through its `bgp::Reconciler` on the bus.
    pub bgp: crate::bgp::Service,
    /// Backups of this router: their catalogue and the jobs that make them.
    pub backup: crate::backup::Service,
    /// The log store: audit entries, engine events, exports, the live feed.
    pub logs: Arc<crate::logs::Logs>,
    /// The metrics collector's latest sample, history and alerts.
    pub monitor: Arc<crate::monitor::collector::Monitor>,
    /// The alert rules the collector evaluates.
    pub alert_rules: crate::monitor::rules::Rules,
    /// Open API connections (HTTP keep-alive and WebSocket).
    pub open_connections: Arc<std::sync::atomic::AtomicUsize>,
    /// Authenticated WebSocket connections allowed at once (`http.max_connections`).
    pub ws_slots: Arc<Semaphore>,
    /// WebSocket connections without a valid token yet (`ws::UNAUTHENTICATED_SLOTS`).
    pub ws_unauthenticated: Arc<Semaphore>,
    /// WebSocket payloads shared by all connections.
    pub ws_cache: crate::api::ws::Cache,
    /// Set when the service stops: WebSocket connections close with 1001.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

pub use crate::auth::token::KEY_FILE;
pub use crate::store::{DB_FILE, LOGS_FILE};

impl App {
    /// Opens the data dir (creating it, the database and the signing key as needed) and
    /// makes sure an admin exists.
    pub async fn open(config: Config) -> Result<App, String> {
        crate::fsutil::ensure_private_dir(&config.data_dir)?;
        crate::fsutil::ensure_private_dir(&config.run_dir())?;
        // A restore that never committed is undone before anything opens its files.
        let interrupted = crate::backup::restore::recover(&config.data_dir)?;
        let store = Store::open(
            &config.data_dir.join(DB_FILE),
            &config.run_dir().join(LOGS_FILE),
        )?;
        let key = token::load_or_create_key(&config.data_dir.join(KEY_FILE))?;
        let pools = crate::ipam::Pools::load(&store).await?;
        let bus = crate::changes::Bus::default();
        let tokens = Arc::new(TokenService::new(&key, config.auth.token_ttl_secs));
        let hashing = crate::auth::Hashing::new(2);
        let rpki: Arc<crate::rpki::Rpki> = Arc::default();
        let metrics = Arc::new(Latencies::default());
        let system =
            crate::system::Service::new(store.clone(), bus.clone(), config.clone(), tokens.clone());
        let logs = Arc::new(crate::logs::Logs::new(
            store.clone(),
            system.runtime().subscribe(),
            config.run_dir().join("exports"),
            format!("{}/logs/export/download", crate::api::PREFIX),
        ));
        let speaker = Arc::new(crate::bgp::Speaker::default());
        bus.add_applier(Arc::new(crate::bgp::Reconciler::new(
            store.clone(),
            speaker.clone(),
            config.bgp.clone(),
        )));
        // WebSocket payloads go stale with the changes of their channel.
        let ws_cache = crate::api::ws::Cache::default();
        bus.add_applier(ws_cache.invalidator());
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
        let backup = crate::backup::Service::open(
            &config.backup_dir(),
            store.clone(),
            crate::backup::Sources {
                data_dir: config.data_dir.clone(),
                config_file: config.origin.config.clone(),
                logs_file: config.run_dir().join(LOGS_FILE),
            },
        )
        .and_then(|b| b.configure(&config.backup))?
        .with_automation(
            crate::backup::schedule::from_config(&config.backup)?,
            crate::backup::pruning::PolicySource::new(
                system.runtime().subscribe(),
                config.backup.max_size_mb,
            ),
        );
        backup.set_logs(logs.clone());
        backup.note_recovered(interrupted)?;
        let app = App {
            auth: crate::auth::Service::new(
                store.clone(),
                tokens.clone(),
                hashing.clone(),
                &config.auth,
            ),
            tokens,
            users: crate::users::Service::new(
                store.clone(),
                hashing,
                bus.clone(),
                config.auth.password_min_length,
                config.data_dir.clone(),
            ),
            system,
            health: vec![
                Box::new(crate::monitor::health::DatabaseCheck(store.clone())),
                Box::new(crate::monitor::health::ApiCheck(metrics.clone())),
                Box::new(crate::monitor::health::RpkiCheck(rpki.clone())),
            ],
            metrics,
            router: crate::api::routes(),
            started: Instant::now(),
            ipam: crate::ipam::Service::new(
                store.clone(),
                pools.clone(),
                bus.clone(),
                rpki.clone(),
                config.bgp.local_asn,
            ),
            bgp: crate::bgp::Service::new(
                store.clone(),
                speaker,
                rpki.clone(),
                config.bgp.clone(),
                bus.clone(),
            ),
            rpki,
            wg,
            wireguard,
            backup,
            logs,
            monitor: Arc::new(crate::monitor::collector::Monitor::new(
                config.monitoring.interval_secs,
                config.monitoring.history_hours,
            )),
            alert_rules: crate::monitor::rules::Rules::new(store.clone()),
            open_connections: Arc::default(),
            ws_slots: Arc::new(Semaphore::new(config.http.max_connections)),
            ws_unauthenticated: Arc::new(Semaphore::new(crate::api::ws::UNAUTHENTICATED_SLOTS)),
            stopping: tokio::sync::watch::Sender::new(false),
            ws_cache,
            bus,
            store,
            config,
        };
        let env_password = std::env::var("IPV6WGM_ADMIN_PASSWORD").ok();
        app.users.bootstrap_admin(env_password).await?;
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
    app.system.load().await;
    app.backup
        .set_engines(Arc::new(Restored(Arc::downgrade(&app))));
    let mut tasks = Tasks::new(app.stopping.subscribe());
    tasks.spawn_draining(
        "log writer",
        app.logs.clone().writer(app.stopping.subscribe()),
    );
    let rpki = &app.config.rpki;
    match (&rpki.vrp_file, &rpki.rtr_server) {
        (Some(f), _) => tasks.spawn(
            "rpki files",
            crate::rpki::source::watch_files(app.rpki.clone(), f.clone(), rpki.slurm_file.clone()),
        ),
        (None, Some(server)) => tasks.spawn(
            "rpki rtr",
            crate::rpki::rtr::run(app.rpki.clone(), server.clone()),
        ),
        (None, None) => {}
    }
    tasks.spawn("bgp exports", app.bgp.exports_task());
    tasks.spawn(
        "collector",
        crate::monitor::collector::run(app.monitor.clone(), collector_sources(&app)),
    );
    tasks.spawn(
        "events",
        crate::monitor::events::run(app.logs.clone(), app.bgp.subscribe()),
    );
    tasks.spawn(
        "backup schedules",
        app.backup.clone().run_schedules(crate::time::now),
    );
    // Every engine on the bus to the database's desired state: WireGuard devices of the
    // active servers, the BGP sessions and their exports.
    app.bus.reconcile_all().await;
    let exit = std::sync::Mutex::new(Exit::Stop);
    let stop = async {
        tokio::select! {
            _ = shutdown => {}
            e = app.system.control().requested() => {
                log::info!("{} requested through the API", if e == Exit::Restart { "restart" } else { "stop" });
                if let Ok(mut x) = exit.lock() {
                    *x = e;
                }
            }
        }
    };
    crate::api::serve(listener, tls, app.clone(), stop).await;
    // One signal stops everything else: WebSocket connections close with 1001, the
    // background tasks return at their next await, the log writer drains its queue.
    app.stopping.send_replace(true);
    // Peers get a Cease (administrative shutdown) rather than a hold-timer expiry.
    app.bgp.shutdown().await;
    // Interfaces go away with the service; `is_active` brings them back on the next start.
    app.wireguard.stop_all().await;
    tasks.join(std::time::Duration::from_secs(2)).await;
    app.store.close().await;
    log::info!("stopped");
    Ok(exit.into_inner().unwrap_or(Exit::Stop))
}

/// What a restore reloads in the running service: the pools' allocators from the new
/// tables (on the database thread), then the token key, the stored settings and every
/// engine on the bus — the same entry points as start-up.
struct Restored(std::sync::Weak<App>);

impl crate::backup::Engines for Restored {
    fn reload_tables(&self, c: &mut rusqlite::Connection) -> Result<(), String> {
        let Some(app) = self.0.upgrade() else {
            return Ok(());
        };
        app.ipam
            .pools()
            .reload_from(c)
            .map_err(|e| format!("cannot load the IPv6 pools: {e}"))
    }

    fn restart<'a>(&'a self, key: Option<&'a [u8]>) -> crate::sync::BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(app) = self.0.upgrade() else { return };
            if let Some(key) = key {
                app.tokens.set_key(key);
            }
            app.system.load().await;
            app.bus.publish(crate::changes::Change::Settings).await;
            app.bus.reconcile_all().await;
        })
    }
}

/// The background tasks `run` starts. Each is stopped through one path, the `stopping`
/// signal, and joined (with a deadline) before the database closes: none is aborted.
struct Tasks {
    stopping: tokio::sync::watch::Receiver<bool>,
    running: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
}

impl Tasks {
    fn new(stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        Tasks {
            stopping,
            running: Vec::new(),
        }
    }

    /// A task whose state lives outside it (in `App`): it returns at its next await once
    /// `stopping` is set.
    fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let mut stopping = self.stopping.clone();
        let handle = tokio::spawn(async move {
            tokio::select! {
                _ = task => {}
                _ = stopping.wait_for(|s| *s) => {}
            }
        });
        self.running.push((name, handle));
    }

    /// A task that watches `stopping` itself and finishes its work first (the log writer
    /// writes what is queued).
    fn spawn_draining(
        &mut self,
        name: &'static str,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        self.running.push((name, tokio::spawn(task)));
    }

    /// Waits for every task to return, at most `deadline` in all (`stopping` must be set).
    async fn join(self, deadline: std::time::Duration) {
        let until = tokio::time::Instant::now() + deadline;
        for (name, handle) in self.running {
            if tokio::time::timeout_at(until, handle).await.is_err() {
                log::warn!("{name} did not stop in time; what it still had queued is lost");
            }
        }
    }
}

/// What the metrics collector reads: the engines through their stats traits, and the
/// service's own figures.
fn collector_sources(app: &Arc<App>) -> crate::monitor::sources::Sources {
    crate::monitor::sources::Sources {
        data_dir: app.config.data_dir.clone(),
        store: app.store.clone(),
        api: app.metrics.clone(),
        connections: app.open_connections.clone(),
        started: app.started,
        logs: app.logs.clone(),
        settings: app.system.runtime().subscribe(),
        wireguard: app.wg.clone(),
        bgp: app.bgp.speaker(),
        pools: Arc::new(app.ipam.clone()),
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
