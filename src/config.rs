//! Configuration: built-in defaults < TOML file (`--config`) < `IPV6WGM_*` environment <
//! command-line flags. Read once at start-up, validated, then passed down by reference; no
//! component re-reads it. Unknown keys in the file are an error so typos do not pass silently.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Bounds shared by the file's keys and `/system/config`.
pub const LOG_ENTRIES: std::ops::RangeInclusive<u32> = 100..=10_000_000;
pub const LOG_SIZE_MB: std::ops::RangeInclusive<u32> = 1..=4096;
pub const METRICS_INTERVAL: std::ops::RangeInclusive<u64> = 5..=3600;
pub const TOKEN_TTL: std::ops::RangeInclusive<u64> = 1..=366 * 86_400;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listen address; `[::]:8000` also accepts IPv4 (dual-stack socket).
    pub listen: SocketAddr,
    /// Database, JWT key and initial admin password live here (flash on OpenWrt).
    pub data_dir: PathBuf,
    /// env_logger filter, e.g. `info` or `ipv6wgm=debug`.
    pub log: String,
    /// High-churn files (the log store, log exports) — RAM (`/tmp`) on OpenWrt so flash is
    /// not worn. Unset: `<data_dir>/run`.
    pub log_dir: Option<PathBuf>,
    /// Host name or address VPN clients use to reach this host (the `Endpoint` of client
    /// configs) when a server has no `endpoint` of its own. Unset: the host the API request
    /// was sent to.
    pub public_host: Option<String>,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    pub logs: LogsConfig,
    pub monitoring: MonitoringConfig,
    pub wireguard: WireguardConfig,
    pub rpki: RpkiConfig,
    pub bgp: BgpConfig,
    pub backup: BackupConfig,
    /// The file and overrides this configuration was loaded from, for a reload.
    #[serde(skip)]
    pub origin: Overrides,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Where backups are kept. Unset: `<data_dir>/backups`. On a router, a USB stick or
    /// other storage than the small flash the database is on.
    pub dir: Option<PathBuf>,
    /// The starting value of `backup_retention` (`/system/config` changes it live): a bare
    /// number is days, or `{ keep_last = N, max_age_days = D }` (`backup::schedule::retention`).
    pub retention: crate::input::retention::Retention,
    /// Cap on the total size of the backups, in MiB (oldest removed first, never the newest
    /// completed one); 0 = no cap.
    pub max_size_mb: u64,
    /// Scheduled backups (`[[backup.schedules]]`, `backup::schedule`); read-only through the API.
    pub schedules: Vec<crate::input::ScheduleInput>,
    /// A file holding the passphrase that encrypts every backup made without one of its
    /// own (request, schedule, pre-restore); read once at start-up. Unset: such backups
    /// are not encrypted.
    pub passphrase_file: Option<PathBuf>,
    /// Largest backup upload accepted, in MiB (413 beyond). Unset: [`UPLOAD_MB_DEFAULT`].
    pub max_upload_mb: Option<u64>,
}

/// `backup.max_upload_mb`: its bounds and default.
pub const UPLOAD_MB: std::ops::RangeInclusive<u64> = 1..=4096;
pub const UPLOAD_MB_DEFAULT: u64 = 256;

impl BackupConfig {
    /// The upload cap in bytes.
    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_mb.unwrap_or(UPLOAD_MB_DEFAULT) << 20
    }

    fn check(&self) -> Result<(), String> {
        if self
            .max_upload_mb
            .is_some_and(|mb| !UPLOAD_MB.contains(&mb))
        {
            return Err("backup.max_upload_mb must be between 1 and 4096".into());
        }
        if self
            .passphrase_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err("backup.passphrase_file must not be empty (leave it unset)".into());
        }
        Ok(())
    }
}

/// Bound of `backup.max_size_mb` (1 TiB).
pub const BACKUP_MAX_SIZE_MB: u64 = 1 << 20;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RpkiConfig {
    /// A JSON VRP export (rpki-client / Routinator / stayrtr format), re-read when it changes.
    pub vrp_file: Option<PathBuf>,
    /// SLURM (RFC 8416) local exceptions applied to the VRPs.
    pub slurm_file: Option<PathBuf>,
    /// An RTR cache (`host:port`, RFC 8210) to take VRPs from instead of a file.
    pub rtr_server: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BgpConfig {
    /// Our AS number: the origin of the prefixes we announce, and the AS their RPKI
    /// validation checks; sessions without their own `local_as` speak as it. 0 = not set.
    pub local_asn: u32,
    /// Our BGP identifier. Default: our IPv4 address on each session (derived from the
    /// IPv6 address on IPv6-only sessions).
    pub router_id: Option<std::net::Ipv4Addr>,
    /// Seconds between connection attempts to a peer that does not answer.
    pub connect_retry_secs: u64,
}

impl Default for BgpConfig {
    fn default() -> Self {
        BgpConfig {
            local_asn: 0,
            router_id: None,
            connect_retry_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WireguardConfig {
    /// Directory of the UAPI sockets that `wg show`/`wg set` use (`<dir>/<iface>.sock`).
    /// wireguard-tools looks in `/var/run/wireguard`; empty = no sockets.
    pub uapi_dir: PathBuf,
}

impl Default for WireguardConfig {
    fn default() -> Self {
        WireguardConfig {
            uapi_dir: PathBuf::from("/var/run/wireguard"),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest accepted request body once the caller is authenticated; larger ones get
    /// 413. Routes without authentication (login) take at most `api::PUBLIC_MAX_BODY`.
    pub max_body_bytes: usize,
    /// Connections served at once; further clients wait in the kernel backlog.
    pub max_connections: usize,
    /// Connections one source address (an IPv6 /64) may hold at once; more are answered
    /// 429 and closed. Unset: a quarter of `max_connections`.
    pub max_connections_per_ip: Option<usize>,
    /// A client must send a request's headers within this many seconds, and a kept-alive
    /// connection that sends no next request is closed after as long (slowloris guard).
    pub header_read_timeout_secs: u64,
    /// Largest request head (request line and headers); larger ones get 431.
    pub max_header_bytes: usize,
    /// A request's whole body must arrive within this many seconds (408 otherwise).
    pub body_read_timeout_secs: u64,
    /// Seconds in-flight requests get to finish on SIGTERM before connections are cut.
    pub shutdown_grace_secs: u64,
    /// PEM certificate chain and key; both set = HTTPS (needs the `tls` cargo feature).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Lifetime of an access token (the seeds' `expires_in`: 8 days).
    pub token_ttl_secs: u64,
    /// Failed logins from one IP address within `login_window_secs` before 429.
    pub login_max_failures: u32,
    pub login_window_secs: u64,
    pub password_min_length: usize,
    /// After `/auth/refresh`, the old token still works this long (requests already on
    /// their way); 0 = revoked at once.
    pub refresh_grace_secs: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// The log store (audit log and events, `<log_dir>/logs.db`) keeps at most this many
    /// newest entries …
    pub max_entries: u32,
    /// … and at most this many MiB of file. Both can be changed through `/system/config`.
    pub max_size_mb: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MonitoringConfig {
    /// Seconds between two samples of the metrics collector (and alert evaluations).
    pub interval_secs: u64,
    /// Hours of history kept in memory per metric (`/monitoring/metrics/system?hours=`).
    pub history_hours: u32,
    /// Serve `GET /metrics` (Prometheus text format).
    pub prometheus: bool,
    /// When set, `/metrics` needs `Authorization: Bearer <this>`.
    pub prometheus_token: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0u16; 8], 8000)),
            data_dir: PathBuf::from("./data"),
            log: "info".into(),
            log_dir: None,
            public_host: None,
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            logs: LogsConfig::default(),
            monitoring: MonitoringConfig::default(),
            wireguard: WireguardConfig::default(),
            rpki: RpkiConfig::default(),
            bgp: BgpConfig::default(),
            backup: BackupConfig::default(),
            origin: Overrides::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 1 << 20,
            max_connections: 256,
            max_connections_per_ip: None,
            header_read_timeout_secs: 10,
            max_header_bytes: 16 << 10,
            body_read_timeout_secs: 30,
            shutdown_grace_secs: 10,
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl HttpConfig {
    /// [`max_connections_per_ip`](Self::max_connections_per_ip) with its default applied.
    pub fn per_ip_limit(&self) -> usize {
        self.max_connections_per_ip
            .unwrap_or((self.max_connections / 4).max(1))
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token_ttl_secs: 691_200,
            login_max_failures: 5,
            login_window_secs: 300,
            password_min_length: 8,
            refresh_grace_secs: 30,
        }
    }
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            max_entries: 20_000,
            max_size_mb: 16,
        }
    }
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            interval_secs: 30,
            history_hours: 24,
            prometheus: true,
            prometheus_token: None,
        }
    }
}

/// Values given on the command line or in the environment; `None` = not given.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub log: Option<String>,
    pub log_dir: Option<PathBuf>,
    pub public_host: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Overrides {
    /// The `IPV6WGM_*` variables, read through `get` so tests need not touch the process env.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Self {
        Overrides {
            config: get("IPV6WGM_CONFIG").map(PathBuf::from),
            listen: get("IPV6WGM_LISTEN"),
            data_dir: get("IPV6WGM_DATA_DIR").map(PathBuf::from),
            log: get("IPV6WGM_LOG"),
            log_dir: get("IPV6WGM_LOG_DIR").map(PathBuf::from),
            public_host: get("IPV6WGM_PUBLIC_HOST"),
            tls_cert: get("IPV6WGM_TLS_CERT").map(PathBuf::from),
            tls_key: get("IPV6WGM_TLS_KEY").map(PathBuf::from),
        }
    }

    /// `self` with every value that `over` sets replaced by it.
    pub fn then(self, over: Overrides) -> Overrides {
        Overrides {
            config: over.config.or(self.config),
            listen: over.listen.or(self.listen),
            data_dir: over.data_dir.or(self.data_dir),
            log: over.log.or(self.log),
            log_dir: over.log_dir.or(self.log_dir),
            public_host: over.public_host.or(self.public_host),
            tls_cert: over.tls_cert.or(self.tls_cert),
            tls_key: over.tls_key.or(self.tls_key),
        }
    }
}

impl Config {
    /// Defaults, then the file named by `ov.config` (if any), then the other overrides.
    pub fn load(ov: &Overrides) -> Result<Config, String> {
        let mut cfg = match &ov.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
                Config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => Config::default(),
        };
        if let Some(l) = &ov.listen {
            cfg.listen = parse_listen(l)?;
        }
        if let Some(d) = &ov.data_dir {
            cfg.data_dir = d.clone();
        }
        if let Some(l) = &ov.log {
            cfg.log = l.clone();
        }
        if ov.log_dir.is_some() {
            cfg.log_dir = ov.log_dir.clone();
        }
        if let Some(h) = &ov.public_host {
            // An empty value (UCI's default) means unset.
            cfg.public_host = Some(h.clone()).filter(|h| !h.is_empty());
        }
        if ov.tls_cert.is_some() {
            cfg.http.tls_cert = ov.tls_cert.clone();
        }
        if ov.tls_key.is_some() {
            cfg.http.tls_key = ov.tls_key.clone();
        }
        cfg.validate()?;
        cfg.origin = ov.clone();
        Ok(cfg)
    }

    /// Names of the settings that differ from `other` and only take effect at the next
    /// start (everything but what `/system/config` changes live).
    pub fn needs_restart(&self, other: &Config) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut check = |name: &'static str, same: bool| {
            if !same {
                out.push(name);
            }
        };
        check("listen", self.listen == other.listen);
        check("data_dir", self.data_dir == other.data_dir);
        check("log_dir", self.log_dir == other.log_dir);
        check("public_host", self.public_host == other.public_host);
        check("http", self.http == other.http);
        let auth = |a: &AuthConfig| {
            (
                a.login_max_failures,
                a.login_window_secs,
                a.password_min_length,
                a.refresh_grace_secs,
            )
        };
        check("auth", auth(&self.auth) == auth(&other.auth));
        let mon =
            |m: &MonitoringConfig| (m.history_hours, m.prometheus, m.prometheus_token.clone());
        check(
            "monitoring",
            mon(&self.monitoring) == mon(&other.monitoring),
        );
        check("wireguard", self.wireguard == other.wireguard);
        check("rpki", self.rpki == other.rpki);
        check("bgp", self.bgp == other.bgp);
        // `backup.retention` is live (`backup_retention`); the rest waits for a restart.
        let backup = |b: &BackupConfig| (b.dir.clone(), b.max_size_mb, b.schedules.clone());
        check("backup", backup(&self.backup) == backup(&other.backup));
        out
    }

    /// The TOML text read into a generic value first, then into `Config` from it: the
    /// derived deserializer instantiated for TOML itself cost ~60 KB on mipsel, while the
    /// one over `serde_json::Value` is shared with the API's. An error names the key
    /// (`http.max_connections: invalid type …`); a syntax error its line.
    pub fn parse(text: &str) -> Result<Config, String> {
        let value: serde_json::Value = basic_toml::from_str(text).map_err(|e| e.to_string())?;
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                e.into_inner().to_string()
            } else {
                format!("{path}: {}", e.into_inner())
            }
        })
    }

    pub fn validate(&self) -> Result<(), String> {
        let h = &self.http;
        if !(1024..=256 << 20).contains(&h.max_body_bytes) {
            return Err("http.max_body_bytes must be between 1024 and 268435456".into());
        }
        if !(1..=65_536).contains(&h.max_connections) {
            return Err("http.max_connections must be between 1 and 65536".into());
        }
        if h.max_connections_per_ip
            .is_some_and(|n| !(1..=h.max_connections).contains(&n))
        {
            return Err(
                "http.max_connections_per_ip must be between 1 and http.max_connections".into(),
            );
        }
        if h.header_read_timeout_secs == 0 || h.body_read_timeout_secs == 0 {
            return Err(
                "http.header_read_timeout_secs and http.body_read_timeout_secs must be at least 1"
                    .into(),
            );
        }
        // hyper's read buffer cannot be smaller than 8 KiB.
        if !(8 << 10..=1 << 20).contains(&h.max_header_bytes) {
            return Err("http.max_header_bytes must be between 8192 and 1048576".into());
        }
        if h.tls_cert.is_some() != h.tls_key.is_some() {
            return Err("TLS needs both a certificate (--tls-cert) and a key (--tls-key)".into());
        }
        let a = &self.auth;
        if !TOKEN_TTL.contains(&a.token_ttl_secs) {
            return Err("auth.token_ttl_secs must be between 1 and 31622400".into());
        }
        if a.login_max_failures == 0 || a.login_window_secs == 0 {
            return Err("auth.login_max_failures and auth.login_window_secs must be > 0".into());
        }
        if !(1..=128).contains(&a.password_min_length) {
            return Err("auth.password_min_length must be between 1 and 128".into());
        }
        if a.refresh_grace_secs > 300 {
            return Err("auth.refresh_grace_secs must be between 0 and 300".into());
        }
        if !LOG_ENTRIES.contains(&self.logs.max_entries) {
            return Err("logs.max_entries must be between 100 and 10000000".into());
        }
        if !LOG_SIZE_MB.contains(&self.logs.max_size_mb) {
            return Err("logs.max_size_mb must be between 1 and 4096".into());
        }
        if !METRICS_INTERVAL.contains(&self.monitoring.interval_secs) {
            return Err("monitoring.interval_secs must be between 5 and 3600".into());
        }
        if !(1..=168).contains(&self.monitoring.history_hours) {
            return Err("monitoring.history_hours must be between 1 and 168".into());
        }
        if self.monitoring.prometheus_token.as_deref() == Some("") {
            return Err("monitoring.prometheus_token must not be empty (leave it unset)".into());
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err("data_dir must not be empty".into());
        }
        if self.rpki.slurm_file.is_some() && self.rpki.vrp_file.is_none() {
            return Err("rpki.slurm_file needs rpki.vrp_file".into());
        }
        if self.rpki.rtr_server.is_some() && self.rpki.vrp_file.is_some() {
            return Err("set either rpki.vrp_file or rpki.rtr_server, not both".into());
        }
        self.validate_backup()?;
        if let Some(h) = &self.public_host {
            if !valid_host(h) {
                return Err(format!(
                    "public_host {h:?} is not a host name or IP address"
                ));
            }
        }
        self.backup.check()?;
        Ok(())
    }

    /// `[backup]`: the size cap's bound. The schedules are checked by the backup service
    /// when it starts (`backup::schedule::from_config`: the rules are its own).
    fn validate_backup(&self) -> Result<(), String> {
        if self.backup.max_size_mb > BACKUP_MAX_SIZE_MB {
            return Err(format!(
                "backup.max_size_mb must be between 0 (no cap) and {BACKUP_MAX_SIZE_MB}"
            ));
        }
        Ok(())
    }

    /// Where high-churn files go (see `log_dir`).
    pub fn run_dir(&self) -> PathBuf {
        self.log_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("run"))
    }

    /// Where backups are kept (`backup.dir`, else `<data_dir>/backups`).
    pub fn backup_dir(&self) -> PathBuf {
        self.backup
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("backups"))
    }
}

/// A DNS name (RFC 1123 labels) or an IPv4/IPv6 literal.
fn valid_host(h: &str) -> bool {
    if h.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    h.len() <= 253
        && h.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `8000`, `127.0.0.1:8000` or `[::1]:8000`. A bare port listens on all addresses.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([0u16; 8], port)));
    }
    s.parse().map_err(|_| {
        format!("invalid listen address {s:?} (expected e.g. [::]:8000 or 127.0.0.1:8000)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_matches_defaults() {
        let text = include_str!("../config/ipv6wgm.toml");
        let cfg = Config::parse(text).expect("example config");
        cfg.validate().expect("example config is valid");
        assert_eq!(
            cfg,
            Config::default(),
            "config/ipv6wgm.toml documents the defaults"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Config::parse("lissten = \"[::]:1\"").unwrap_err();
        assert!(err.contains("lissten"), "{err}");
        let err = Config::parse("[auth]\ntoken_ttl = 5").unwrap_err();
        assert!(err.contains("token_ttl"), "{err}");
    }

    #[test]
    fn errors_name_the_key_or_the_line() {
        let err = Config::parse("[http]\nmax_connections = \"many\"").unwrap_err();
        assert!(
            err.starts_with("http.max_connections: invalid type"),
            "{err}"
        );
        let err = Config::parse("listen = \"nowhere\"").unwrap_err();
        assert!(err.starts_with("listen: "), "{err}");
        let err = Config::parse("[http]\nmax_connections = 1\n[bgp\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn precedence_is_file_then_env_then_flags() {
        let env = Overrides::from_env(|k| match k {
            "IPV6WGM_LISTEN" => Some("127.0.0.1:1".into()),
            "IPV6WGM_LOG" => Some("debug".into()),
            _ => None,
        });
        let flags = Overrides {
            listen: Some("9000".into()),
            ..Default::default()
        };
        let cfg = Config::load(&env.then(flags)).expect("loads");
        assert_eq!(cfg.listen, "[::]:9000".parse().expect("addr"));
        assert_eq!(cfg.log, "debug");
    }

    #[test]
    fn per_address_cap_defaults_to_a_quarter_and_stays_within_the_total() {
        let cfg = Config::parse("[http]\nmax_connections = 40\n").expect("parses");
        assert_eq!(cfg.http.per_ip_limit(), 10);
        let cfg = Config::parse("[http]\nmax_connections = 2\n").expect("parses");
        assert_eq!(cfg.http.per_ip_limit(), 1);
        let cfg = Config::parse("[http]\nmax_connections = 8\nmax_connections_per_ip = 9\n")
            .expect("parses");
        assert!(cfg
            .validate()
            .unwrap_err()
            .contains("max_connections_per_ip"));
        let cfg = Config::parse("[http]\nmax_header_bytes = 4096\n").expect("parses");
        assert!(cfg.validate().unwrap_err().contains("max_header_bytes"));
    }

    #[test]
    fn invalid_values_are_explained() {
        let mut ov = Overrides {
            listen: Some("localhost".into()),
            ..Default::default()
        };
        assert!(Config::load(&ov).unwrap_err().contains("listen"));
        ov.listen = None;
        ov.tls_cert = Some("c.pem".into());
        assert!(Config::load(&ov).unwrap_err().contains("tls-key"));
        let bad = Config::parse("[auth]\ntoken_ttl_secs = 0").expect("parses");
        assert!(bad.validate().unwrap_err().contains("token_ttl_secs"));
        let bad = Config::parse("public_host = \"vpn example.com\"").expect("parses");
        assert!(bad.validate().unwrap_err().contains("public_host"));
    }

    #[test]
    fn backup_schedules_retention_and_size_cap_are_validated() {
        let cfg = Config::parse(
            "[backup]\nmax_size_mb = 10\nretention = { keep_last = 5 }\n\
             [[backup.schedules]]\nname = \"n\"\nfrequency = \"daily\"\n",
        )
        .expect("parses");
        cfg.validate().expect("valid");
        assert_eq!(cfg.backup.schedules.len(), 1);
        assert_eq!(cfg.backup.retention.keep_last, Some(5));
        assert_eq!(cfg.needs_restart(&Config::default()), ["backup"]);
        let e =
            Config::parse("[[backup.schedules]]\nname = \"n\"\nfrequncy = \"daily\"").unwrap_err();
        assert!(e.contains("frequncy"), "{e}");
        let big = Config::parse("[backup]\nmax_size_mb = 2000000").expect("parses");
        assert!(big.validate().unwrap_err().contains("max_size_mb"));
    }

    #[test]
    fn backup_upload_cap_and_passphrase_file() {
        let c = Config::parse("[backup]\nmax_upload_mb = 2\npassphrase_file = \"/etc/p\"")
            .expect("parses");
        c.validate().expect("valid");
        assert_eq!(c.backup.max_upload_bytes(), 2 << 20);
        assert_eq!(Config::default().backup.max_upload_bytes(), 256 << 20);
        for bad in [
            "max_upload_mb = 0",
            "max_upload_mb = 4097",
            "passphrase_file = \"\"",
        ] {
            let c = Config::parse(&format!("[backup]\n{bad}")).expect("parses");
            let e = c.validate().unwrap_err();
            assert!(e.contains("backup."), "{bad}: {e}");
        }
    }

    #[test]
    fn public_host_forms() {
        for ok in [
            "vpn.example.com",
            "router",
            "2001:db8::1",
            "192.0.2.1",
            "a-b.c",
        ] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in ["", "-a.b", "a..b", "a_b.c", "[::1]", "a b"] {
            assert!(!valid_host(bad), "{bad}");
        }
        let ov = Overrides {
            public_host: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(Config::load(&ov).expect("loads").public_host, None);
    }
}
