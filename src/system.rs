//! `/system`: the settings that can change while the service runs (`/system/config`), what
//! the host is (`/system/info`), and restart/reload (`/system/action`).
//!
//! **Settings.** The configuration file gives the starting values; a `PUT /system/config`
//! validates, applies at once and stores its values in the `settings` table (key
//! `system.config`), which overlays the file at the next start. Only settings that take
//! effect live are offered: the log filter, the log store's bounds, the collector interval
//! and on/off, the lifetime of new tokens and the API rate limit. The seed's names are
//! accepted too: `max_log_size` (MiB) is `max_log_size_mb`, `debug_mode` switches the log
//! filter between `debug` and `info`; they are stored under the canonical names.
//! `backup_retention` is refused by name until retention is enforced.
//!
//! **API rate limit.** `api_rate_limit` requests per minute per authenticated user (per
//! source address, IPv6 per /64, when not authenticated), 0 = off (the default); the
//! pipeline calls [`Service::check_rate_limit`] for every routed request and answers 429 with
//! `Retry-After` beyond it. The table is the pure, bounded
//! [`crate::auth::ratelimit::ApiLimiter`].

use crate::auth::ratelimit::{ApiLimiter, Caller};
use crate::auth::token::TokenService;
use crate::changes::{Bus, Change};
use crate::config::{Config, LOG_ENTRIES, LOG_SIZE_MB, METRICS_INTERVAL, TOKEN_TTL};
use crate::error::Invalid;
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

/// The service's name, as the status endpoints and `/system/info` report it.
pub const SERVICE: &str = "ipv6wgm";

/// What can go wrong with a system operation.
#[derive(Debug)]
pub enum Error {
    Invalid(Invalid),
    /// The caller is over `api_rate_limit`; seconds until its next request is taken.
    RateLimited {
        per_minute: u32,
        retry_after: u64,
    },
    /// The configuration file could not be read (a task failed) or a value not encoded.
    Internal,
    Store(StoreError),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<Invalid> for Error {
    fn from(e: Invalid) -> Self {
        Error::Invalid(e)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Invalid(e) => e.fmt(f),
            Error::RateLimited {
                per_minute,
                retry_after,
            } => write!(
                f,
                "more than {per_minute} requests per minute; retry in {retry_after} s"
            ),
            Error::Internal => f.write_str("internal error"),
            Error::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

const SETTINGS_KEY: &str = "system.config";

/// `api_rate_limit`: requests per minute, 0 = off.
pub const API_RATE_LIMIT: std::ops::RangeInclusive<u32> = 0..=1_000_000;

/// The live settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// env_logger filter (`info`, `warn,ipv6wgm::bgp=debug`).
    pub log_level: String,
    pub max_log_entries: u32,
    pub max_log_size_mb: u32,
    pub metrics_interval_secs: u64,
    /// Lifetime of new tokens, seconds.
    pub session_timeout: u64,
    /// Requests per minute per user (per address when not authenticated); 0 = no limit.
    pub api_rate_limit: u32,
    /// Whether the collector samples (off: `/monitoring` figures stop updating).
    pub monitoring_enabled: bool,
}

impl Settings {
    pub fn from_config(c: &Config) -> Settings {
        Settings {
            log_level: c.log.clone(),
            max_log_entries: c.logs.max_entries,
            max_log_size_mb: c.logs.max_size_mb,
            metrics_interval_secs: c.monitoring.interval_secs,
            session_timeout: c.auth.token_ttl_secs,
            api_rate_limit: 0,
            monitoring_enabled: true,
        }
    }

    /// The seed's `debug_mode`: the filter's default level is `debug` or `trace`.
    pub fn debug_mode(&self) -> bool {
        is_debug(&self.log_level)
    }
}

fn is_debug(filter: &str) -> bool {
    filter
        .split(',')
        .filter(|item| !item.contains('='))
        .any(|l| matches!(l.trim().to_ascii_lowercase().as_str(), "debug" | "trace"))
}

/// A `PUT /system/config` body: any subset of the settings.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_log_entries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_log_size_mb: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_interval_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_timeout: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_rate_limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring_enabled: Option<bool>,
    /// The seed's name of `max_log_size_mb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_log_size: Option<u32>,
    /// The seed's switch for the log filter (`debug` / `info`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_mode: Option<bool>,
    /// Named by the seed; refused until backups exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_retention: Option<serde_json::Value>,
}

impl SettingsInput {
    /// The same change in canonical fields only (aliases resolved against `current`), as it
    /// is stored; the first field that cannot be honoured is a 422.
    pub fn canonical(mut self, current: &Settings) -> Result<SettingsInput, Invalid> {
        if self.backup_retention.is_some() {
            return Err(Invalid::new(
                "backup_retention",
                "backup_retention is not supported yet: retention arrives in a later release",
            ));
        }
        if let Some(mb) = self.max_log_size.take() {
            if self.max_log_size_mb.is_some_and(|m| m != mb) {
                return Err(Invalid::new(
                    "max_log_size",
                    "max_log_size is another name for max_log_size_mb; give one or equal values",
                ));
            }
            self.max_log_size_mb = Some(mb);
        }
        if let Some(debug) = self.debug_mode.take() {
            let level = self.log_level.as_deref().unwrap_or(&current.log_level);
            if is_debug(level) != debug {
                if self.log_level.is_some() {
                    return Err(Invalid::new(
                        "debug_mode",
                        "debug_mode contradicts the log_level given with it",
                    ));
                }
                self.log_level = Some(if debug { "debug" } else { "info" }.to_string());
            }
        }
        Ok(self)
    }

    /// `current` with these changes, or the first invalid field.
    pub fn apply_to(self, current: &Settings) -> Result<Settings, Invalid> {
        let input = self.canonical(current)?;
        let mut s = current.clone();
        input.apply_canonical(&mut s)?;
        Ok(s)
    }

    fn apply_canonical(self, s: &mut Settings) -> Result<(), Invalid> {
        if let Some(l) = self.log_level {
            let l = l.trim().to_string();
            if !crate::logging::valid_filter(&l) {
                return Err(Invalid::new(
                    "log_level",
                    "log_level must be error, warn, info, debug, trace or off, optionally per \
                     module (\"warn,ipv6wgm::bgp=debug\")",
                ));
            }
            s.log_level = l;
        }
        if let Some(n) = self.max_log_entries {
            in_range("max_log_entries", n, LOG_ENTRIES)?;
            s.max_log_entries = n;
        }
        if let Some(n) = self.max_log_size_mb {
            in_range("max_log_size_mb", n, LOG_SIZE_MB)?;
            s.max_log_size_mb = n;
        }
        if let Some(n) = self.metrics_interval_secs {
            in_range("metrics_interval_secs", n, METRICS_INTERVAL)?;
            s.metrics_interval_secs = n;
        }
        if let Some(n) = self.session_timeout {
            in_range("session_timeout", n, TOKEN_TTL)?;
            s.session_timeout = n;
        }
        if let Some(n) = self.api_rate_limit {
            in_range("api_rate_limit", n, API_RATE_LIMIT)?;
            s.api_rate_limit = n;
        }
        if let Some(on) = self.monitoring_enabled {
            s.monitoring_enabled = on;
        }
        Ok(())
    }
}

fn in_range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    v: T,
    r: std::ops::RangeInclusive<T>,
) -> Result<(), Invalid> {
    if r.contains(&v) {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("{field} must be between {} and {}", r.start(), r.end()),
        ))
    }
}

/// The live settings, readable everywhere; the collector watches it for interval changes.
pub struct Runtime {
    tx: watch::Sender<Settings>,
}

impl Runtime {
    pub fn new(s: Settings) -> Runtime {
        Runtime {
            tx: watch::Sender::new(s),
        }
    }

    pub fn get(&self) -> Settings {
        self.tx.borrow().clone()
    }

    /// `api_rate_limit` without cloning the settings (read on every request).
    pub fn get_rate_limit(&self) -> u32 {
        self.tx.borrow().api_rate_limit
    }

    pub fn subscribe(&self) -> watch::Receiver<Settings> {
        self.tx.subscribe()
    }

    fn set(&self, s: Settings) {
        self.tx.send_replace(s);
    }
}

/// How `app::run` ended.
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

    /// Resolves when a stop or restart is requested.
    pub async fn requested(&self) -> Exit {
        self.requested.notified().await;
        if self.restart.load(std::sync::atomic::Ordering::SeqCst) {
            Exit::Restart
        } else {
            Exit::Stop
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Reloaded {
    /// The live settings now in force (the file's, under those set through the API).
    pub settings: Settings,
    /// Settings whose new value in the file waits for a restart.
    pub restart_required: Vec<&'static str>,
}

/// The live settings and what they drive: the stored overlay, the token lifetime, the API
/// rate limit, and stop/restart requests.
pub struct Service {
    store: Store,
    bus: Bus,
    /// The configuration as loaded at start (the file, flags and environment).
    config: Config,
    runtime: Runtime,
    tokens: Arc<TokenService>,
    control: Control,
    api_limiter: Mutex<ApiLimiter>,
    /// The rate limiter's clock (monotonic).
    started: Instant,
}

impl Service {
    pub fn new(store: Store, bus: Bus, config: Config, tokens: Arc<TokenService>) -> Service {
        Service {
            runtime: Runtime::new(Settings::from_config(&config)),
            store,
            bus,
            config,
            tokens,
            control: Control::default(),
            api_limiter: Mutex::default(),
            started: Instant::now(),
        }
    }

    /// The live settings, readable everywhere; the collector and the log store watch them.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn settings(&self) -> Settings {
        self.runtime.get()
    }

    /// Stop and restart requests (`/system/action`).
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// At start: the stored settings over the file's, applied. A stored value that is no
    /// longer valid is ignored (with a warning) rather than stopping the service.
    pub async fn load(&self) {
        let s = self.overlay(Settings::from_config(&self.config)).await;
        self.apply(s);
    }

    /// `base` with the settings stored by `PUT /system/config` over it.
    async fn overlay(&self, base: Settings) -> Settings {
        let stored = self
            .store
            .call(|c| crate::store::settings::get(c, SETTINGS_KEY))
            .await;
        let Ok(Some(v)) = stored else { return base };
        let input: SettingsInput = match serde_json::from_value(v) {
            Ok(i) => i,
            Err(e) => {
                log::warn!("stored system config ignored: {e}");
                return base;
            }
        };
        match input.apply_to(&base) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("stored system config ignored: {}", e.message);
                base
            }
        }
    }

    /// `reload`: reads the configuration file again (with the same flags and environment),
    /// applies what can change live and names what needs a restart. An invalid file changes
    /// nothing.
    pub async fn reload(&self) -> Result<Reloaded, Error> {
        let origin = self.config.origin.clone();
        let new = tokio::task::spawn_blocking(move || Config::load(&origin))
            .await
            .map_err(|_| Error::Internal)?
            .map_err(|e| Invalid::new("config", e))?;
        let settings = self.overlay(Settings::from_config(&new)).await;
        self.apply(settings.clone());
        self.bus.publish(Change::Settings).await;
        Ok(Reloaded {
            settings,
            restart_required: new.needs_restart(&self.config),
        })
    }

    /// Validates, stores and applies a change; returns the new settings. Only the settings
    /// given are stored (over those stored before), so the file still decides the others.
    pub async fn update(&self, input: SettingsInput) -> Result<Settings, Error> {
        let current = self.runtime.get();
        let input = input.canonical(&current)?;
        let new = input.clone().apply_to(&current)?;
        let given = serde_json::to_value(&input).map_err(|_| Error::Internal)?;
        let now = crate::time::now();
        self.store
            .write(move |c| {
                let mut stored = match crate::store::settings::get(c, SETTINGS_KEY)? {
                    Some(serde_json::Value::Object(m)) => m,
                    _ => serde_json::Map::new(),
                };
                if let serde_json::Value::Object(g) = given {
                    stored.extend(g);
                }
                crate::store::settings::put(
                    c,
                    SETTINGS_KEY,
                    &serde_json::Value::Object(stored),
                    now,
                )
            })
            .await?;
        self.apply(new.clone());
        self.bus.publish(Change::Settings).await;
        Ok(new)
    }

    fn apply(&self, s: Settings) {
        let old = self.runtime.get();
        if s.log_level != old.log_level {
            crate::logging::set_filter(&s.log_level);
        }
        self.tokens.set_ttl_secs(s.session_timeout);
        self.runtime.set(s);
    }

    /// The `api_rate_limit` check for one request of `caller` (the user when authenticated,
    /// else the source address).
    pub fn check_rate_limit(&self, caller: Caller) -> Result<(), Error> {
        let per_minute = self.runtime.get_rate_limit();
        let now = self.started.elapsed();
        let verdict = crate::sync::lock(&self.api_limiter).check(caller, per_minute, now);
        verdict.map_err(|wait| Error::RateLimited {
            per_minute,
            retry_after: wait,
        })
    }

    /// The settings as `/system/config` shows them, with the seed's names next to ours
    /// (`max_log_size` = `max_log_size_mb`, `debug_mode` from the log filter;
    /// `backup_retention` is null until backups exist).
    pub fn config_view(&self) -> serde_json::Value {
        use serde_json::json;
        let s = self.runtime.get();
        let mut v = serde_json::to_value(&s).unwrap_or_default();
        v["app_name"] = json!(SERVICE);
        v["app_version"] = json!(env!("CARGO_PKG_VERSION"));
        v["max_log_size"] = json!(s.max_log_size_mb);
        v["debug_mode"] = json!(s.debug_mode());
        v["backup_retention"] = serde_json::Value::Null;
        v
    }

    /// Seconds since start, on the monotonic clock.
    fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// `uname(2)`: (node name, kernel release, machine).
pub fn uname() -> Option<(String, String, String)> {
    // SAFETY: all-zero is a valid `utsname`; uname fills it with NUL-terminated strings.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let field = |f: &[libc::c_char]| -> String {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some((field(&u.nodename), field(&u.release), field(&u.machine)))
}

/// The host: name, OS, kernel, architecture, uptime, load.
pub fn host() -> serde_json::Value {
    let (hostname, kernel, arch) = uname().unwrap_or_default();
    serde_json::json!({
        "hostname": hostname,
        "os": crate::monitor::procfs::read_os_name(),
        "kernel": kernel,
        "architecture": arch,
        "uptime": crate::monitor::procfs::read_uptime().map(|u| u as u64),
        "load_average": crate::monitor::procfs::read_loadavg(),
    })
}

/// The host's network interfaces with their addresses, as `/system/info` shows them.
async fn interfaces() -> serde_json::Value {
    use serde_json::json;
    let links = match crate::wireguard::device::netlink::Netlink::new() {
        Ok(n) => n.interfaces().await,
        Err(e) => return json!({"error": e.to_string()}),
    };
    let list = match links {
        Ok(list) => list,
        Err(e) => return json!({"error": e.to_string()}),
    };
    let text =
        |v: Vec<&ipnet::IpNet>| -> Vec<String> { v.into_iter().map(|a| a.to_string()).collect() };
    list.into_iter()
        .map(|l| {
            let (v4, v6): (Vec<_>, Vec<_>) = l
                .addresses
                .iter()
                .partition(|a| matches!(a, ipnet::IpNet::V4(_)));
            json!({
                "name": l.name, "index": l.index, "up": l.up, "mtu": l.mtu,
                "ipv4": text(v4), "ipv6": text(v6),
            })
        })
        .collect()
}

impl Service {
    /// Everything `/system/info` shows; `services` are the states of the parts of the
    /// service, which the caller reads from them.
    pub async fn info(&self, services: serde_json::Value) -> serde_json::Value {
        let config = &self.config;
        let db_path = config.data_dir.join(crate::store::DB_FILE);
        let logs_path = config.run_dir().join(crate::store::LOGS_FILE);
        let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).ok();
        let entries = self.store.call(|c| crate::store::logs::count(c)).await.ok();
        serde_json::json!({
            "system": host(),
            "application": {
                "name": SERVICE,
                "version": env!("CARGO_PKG_VERSION"),
                "target": format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
                "pid": std::process::id(),
                "uptime": self.uptime_secs(),
                "data_dir": config.data_dir.display().to_string(),
                "log_dir": config.run_dir().display().to_string(),
            },
            "database": {
                "type": "SQLite",
                "version": rusqlite::version(),
                "status": "connected",
                "path": db_path.display().to_string(),
                "size_bytes": size(&db_path),
                "log_store": {
                    "path": logs_path.display().to_string(),
                    "size_bytes": size(&logs_path),
                    "entries": entries,
                },
            },
            "network": {"interfaces": interfaces().await},
            "services": services,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Settings {
        Settings::from_config(&Config::default())
    }

    #[test]
    fn partial_changes_apply_and_bad_values_name_their_field() {
        let s = SettingsInput {
            log_level: Some(" debug ".into()),
            max_log_entries: Some(500),
            ..Default::default()
        }
        .apply_to(&base())
        .expect("valid");
        assert_eq!(s.log_level, "debug");
        assert_eq!(s.max_log_entries, 500);
        assert_eq!(s.metrics_interval_secs, base().metrics_interval_secs);
        for (input, field) in [
            (
                SettingsInput {
                    log_level: Some("chatty".into()),
                    ..Default::default()
                },
                "log_level",
            ),
            (
                SettingsInput {
                    max_log_entries: Some(5),
                    ..Default::default()
                },
                "max_log_entries",
            ),
            (
                SettingsInput {
                    max_log_size_mb: Some(0),
                    ..Default::default()
                },
                "max_log_size_mb",
            ),
            (
                SettingsInput {
                    metrics_interval_secs: Some(1),
                    ..Default::default()
                },
                "metrics_interval_secs",
            ),
            (
                SettingsInput {
                    session_timeout: Some(0),
                    ..Default::default()
                },
                "session_timeout",
            ),
        ] {
            let e = input.apply_to(&base()).unwrap_err();
            assert_eq!(Some(e.field.as_str()), Some(field));
        }
    }

    fn input(v: serde_json::Value) -> SettingsInput {
        serde_json::from_value(v).expect("input")
    }

    #[test]
    fn seed_names_resolve_to_canonical_fields() {
        let b = base();
        let c = input(serde_json::json!({"max_log_size": 7, "debug_mode": true}))
            .canonical(&b)
            .expect("valid");
        assert_eq!(
            serde_json::to_value(&c).expect("json"),
            serde_json::json!({"max_log_size_mb": 7, "log_level": "debug"}),
            "stored without the aliases"
        );
        let on = c.apply_to(&b).expect("valid");
        assert!(on.debug_mode());
        let off = input(serde_json::json!({"debug_mode": false}))
            .apply_to(&on)
            .expect("valid");
        assert_eq!(off.log_level, "info");
        // Already in that state: the filter is left as it is.
        let quiet = Settings {
            log_level: "warn,ipv6wgm::bgp=debug".into(),
            ..b.clone()
        };
        let same = input(serde_json::json!({"debug_mode": false}))
            .apply_to(&quiet)
            .expect("valid");
        assert_eq!(same.log_level, quiet.log_level);
        assert!(Settings {
            log_level: "TRACE,hyper=info".into(),
            ..b.clone()
        }
        .debug_mode());
        for (v, field) in [
            (
                serde_json::json!({"backup_retention": 30}),
                "backup_retention",
            ),
            (
                serde_json::json!({"max_log_size": 1, "max_log_size_mb": 2}),
                "max_log_size",
            ),
            (
                serde_json::json!({"debug_mode": true, "log_level": "info"}),
                "debug_mode",
            ),
            (
                serde_json::json!({"api_rate_limit": 1_000_001}),
                "api_rate_limit",
            ),
        ] {
            let e = input(v).apply_to(&b).unwrap_err();
            assert_eq!(Some(e.field.as_str()), Some(field));
        }
        let s = input(serde_json::json!({"api_rate_limit": 60, "monitoring_enabled": false}))
            .apply_to(&b)
            .expect("valid");
        assert_eq!((s.api_rate_limit, s.monitoring_enabled), (60, false));
        assert_eq!(
            (b.api_rate_limit, b.monitoring_enabled),
            (0, true),
            "defaults"
        );
    }
}
