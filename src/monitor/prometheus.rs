//! `GET /metrics`: the collector's figures in the Prometheus text exposition format 0.0.4,
//! the way routers are scraped today (node_exporter-style names, `ipv6wgm_` prefix).
//! [`render`] is pure: it formats a snapshot plus the per-session BGP states.

use super::collector::Snapshot;
use crate::bgp::speaker::SessionLive;
use crate::monitor::latency::LatencySummary;
use std::fmt::Write;

/// What a scrape shows besides the snapshot.
pub struct Extra<'a> {
    pub sessions: &'a [SessionLive],
    /// Active alerts per level: (info, warning, error, critical).
    pub alerts: (usize, usize, usize, usize),
    pub version: &'a str,
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP ipv6wgm_{name} {help}");
        let _ = writeln!(self.0, "# TYPE ipv6wgm_{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        let _ = write!(self.0, "ipv6wgm_{name}");
        if !labels.is_empty() {
            let l: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", l.join(","));
        }
        let _ = writeln!(self.0, " {}", number(v));
    }

    /// A family with one unlabelled sample.
    fn one(&mut self, name: &str, kind: &str, help: &str, v: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], v);
    }

    fn summary(&mut self, name: &str, help: &str, s: &LatencySummary) {
        self.family(name, "summary", help);
        for (q, v) in [("0.5", s.p50_ms), ("0.95", s.p95_ms), ("0.99", s.p99_ms)] {
            if let Some(v) = v {
                self.sample(name, &[("quantile", q)], v / 1000.0);
            }
        }
        let sum = s.avg_ms.unwrap_or(0.0) * s.requests as f64 / 1000.0;
        self.sample(&format!("{name}_sum"), &[], sum);
        self.sample(&format!("{name}_count"), &[], s.requests as f64);
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

pub fn render(s: &Snapshot, x: &Extra<'_>) -> String {
    let mut o = Out(String::with_capacity(8192));
    o.family("build_info", "gauge", "Version of the running ipv6wgm.");
    o.sample("build_info", &[("version", x.version)], 1.0);
    o.one(
        "process_uptime_seconds",
        "gauge",
        "Seconds since the service started.",
        s.process.uptime as f64,
    );
    o.one(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory of the service.",
        s.process.rss_bytes as f64,
    );
    if let Some(c) = s.process.cpu_usage {
        o.one(
            "process_cpu_usage_percent",
            "gauge",
            "CPU used by the service since the previous sample, percent of one core.",
            c,
        );
    }
    let h = &s.system;
    if let Some(c) = h.cpu.usage {
        o.one(
            "host_cpu_usage_percent",
            "gauge",
            "Host CPU busy since the previous sample.",
            c,
        );
    }
    o.one(
        "host_cpu_cores",
        "gauge",
        "CPU cores of the host.",
        h.cpu.cores as f64,
    );
    if let Some(l) = h.cpu.load_average {
        o.family("host_load", "gauge", "Load average.");
        for (p, v) in ["1m", "5m", "15m"].iter().zip(l) {
            o.sample("host_load", &[("period", p)], v);
        }
    }
    if let Some(m) = &h.memory {
        o.one(
            "host_memory_total_bytes",
            "gauge",
            "Host memory.",
            m.total as f64,
        );
        o.one(
            "host_memory_used_bytes",
            "gauge",
            "Host memory in use (total - available).",
            m.used as f64,
        );
        o.one(
            "host_memory_available_bytes",
            "gauge",
            "Host memory available.",
            m.available as f64,
        );
    }
    if let Some(d) = &h.disk {
        let labels = [("path", d.path.as_str())];
        o.family(
            "disk_total_bytes",
            "gauge",
            "Size of the file system holding the data directory.",
        );
        o.sample("disk_total_bytes", &labels, d.total as f64);
        o.family(
            "disk_used_bytes",
            "gauge",
            "Used bytes of that file system.",
        );
        o.sample("disk_used_bytes", &labels, d.used as f64);
        o.family(
            "disk_free_bytes",
            "gauge",
            "Bytes available to the service on it.",
        );
        o.sample("disk_free_bytes", &labels, d.free as f64);
    }
    let nets = &h.network.interfaces;
    for (name, help, f) in [
        (
            "network_receive_bytes_total",
            "Bytes received per interface.",
            (|i| i.rx_bytes) as fn(&super::procfs::NetDev) -> u64,
        ),
        (
            "network_transmit_bytes_total",
            "Bytes sent per interface.",
            |i| i.tx_bytes,
        ),
        (
            "network_receive_packets_total",
            "Packets received per interface.",
            |i| i.rx_packets,
        ),
        (
            "network_transmit_packets_total",
            "Packets sent per interface.",
            |i| i.tx_packets,
        ),
        (
            "network_receive_errors_total",
            "Receive errors per interface.",
            |i| i.rx_errors,
        ),
        (
            "network_transmit_errors_total",
            "Transmit errors per interface.",
            |i| i.tx_errors,
        ),
    ] {
        o.family(name, "counter", help);
        for i in nets {
            o.sample(name, &[("interface", &i.name)], f(i) as f64);
        }
    }
    let a = &s.application;
    o.summary(
        "http_request_duration_seconds",
        "API request latency since start.",
        &a.api,
    );
    o.family(
        "http_responses_total",
        "counter",
        "API responses by status class.",
    );
    for (class, n) in [
        ("2xx", a.api.responses_2xx),
        ("4xx", a.api.responses_4xx),
        ("5xx", a.api.responses_5xx),
    ] {
        o.sample("http_responses_total", &[("class", class)], n as f64);
    }
    o.one(
        "http_connections",
        "gauge",
        "Open API connections.",
        a.active_connections as f64,
    );
    o.summary(
        "database_query_duration_seconds",
        "Time of database jobs on the database thread.",
        &a.database,
    );
    let w = &a.wireguard;
    o.family("wireguard_servers", "gauge", "WireGuard servers by state.");
    o.sample(
        "wireguard_servers",
        &[("state", "running")],
        w.servers_running as f64,
    );
    o.sample(
        "wireguard_servers",
        &[("state", "error")],
        w.servers_error as f64,
    );
    o.one(
        "wireguard_peers",
        "gauge",
        "Peers of running WireGuard servers.",
        w.peers as f64,
    );
    o.one(
        "wireguard_peers_active",
        "gauge",
        "Peers with a handshake in the last 180 s.",
        w.peers_active as f64,
    );
    o.one(
        "wireguard_receive_bytes_total",
        "counter",
        "Bytes received through all tunnels.",
        w.bytes_received as f64,
    );
    o.one(
        "wireguard_transmit_bytes_total",
        "counter",
        "Bytes sent through all tunnels.",
        w.bytes_sent as f64,
    );
    type PerSession = fn(&SessionLive) -> f64;
    let per_session: [(&str, &str, PerSession); 3] = [
        (
            "bgp_session_up",
            "1 when the BGP session is established.",
            |s| {
                f64::from(u8::from(
                    s.live.state == crate::bgp::fsm::State::Established,
                ))
            },
        ),
        (
            "bgp_session_prefixes_received",
            "Routes held from the peer.",
            |s| s.live.prefixes_received as f64,
        ),
        (
            "bgp_session_prefixes_sent",
            "Our routes announced to the peer.",
            |s| s.live.prefixes_sent as f64,
        ),
    ];
    for (name, help, value) in per_session {
        o.family(name, "gauge", help);
        for ss in x.sessions {
            let id = ss.id.to_string();
            o.sample(name, &[("id", &id), ("session", &ss.name)], value(ss));
        }
    }
    if let Some(p) = &a.ipv6 {
        o.one("ipv6_pools", "gauge", "IPv6 prefix pools.", p.pools as f64);
        o.one(
            "ipv6_allocations",
            "gauge",
            "Prefixes allocated from the pools.",
            p.allocations as f64,
        );
        o.one(
            "ipv6_pool_usage_max_percent",
            "gauge",
            "Usage of the fullest pool.",
            p.max_usage_percent,
        );
    }
    let (info, warning, error, critical) = x.alerts;
    o.family("alerts_active", "gauge", "Active alerts by level.");
    for (l, n) in [
        ("info", info),
        ("warning", warning),
        ("error", error),
        ("critical", critical),
    ] {
        o.sample("alerts_active", &[("level", l)], n as f64);
    }
    o.one(
        "log_events_dropped_total",
        "counter",
        "Log events lost because the log store could not keep up.",
        a.log_events_dropped as f64,
    );
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_numbers_plain() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
    }
}
