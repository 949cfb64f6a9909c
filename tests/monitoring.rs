//! Observe and operate, against the real binary: the collector's figures against `/proc`,
//! metric history, alerts that fire and resolve, the log store (filters, exports in three
//! formats), system config and actions, Prometheus `/metrics`, and the WebSocket channels.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The collector's shortest interval, so tests see several samples quickly.
const FAST: &str = "[monitoring]\ninterval_secs = 5\n";

fn meminfo(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .expect("key")
        * 1024
}

fn close_to(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance
}

#[test]
fn dashboard_and_status_match_proc() {
    let (s, a) = Server::with_config(FAST);
    let d = wait_for(15, "a second sample (cpu usage)", || {
        let r = s.get("/monitoring/dashboard", Some(&a));
        (r.status == 200 && !r.data()["system_metrics"]["cpu"]["usage"].is_null())
            .then(|| r.data().clone())
    });
    let sys = &d["system_metrics"];
    // Memory: the same /proc/meminfo, read a moment apart.
    assert_eq!(sys["memory"]["total"], meminfo("MemTotal"));
    let used = (meminfo("MemTotal") - meminfo("MemAvailable")) as f64;
    let ours = sys["memory"]["used"].as_f64().expect("used");
    assert!(
        close_to(ours, used, used * 0.1 + 64e6),
        "used {ours} vs {used}"
    );
    // CPU: cores from /proc/stat, usage a percentage, load from /proc/loadavg.
    let stat = std::fs::read_to_string("/proc/stat").expect("stat");
    let cores = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    assert_eq!(sys["cpu"]["cores"], cores);
    let usage = sys["cpu"]["usage"].as_f64().expect("usage");
    assert!((0.0..=100.0).contains(&usage), "{usage}");
    let load: f64 = std::fs::read_to_string("/proc/loadavg")
        .expect("loadavg")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("load");
    let ours = sys["cpu"]["load_average"][0].as_f64().expect("load");
    assert!(close_to(ours, load, 2.0), "load {ours} vs {load}");
    // Disk: statvfs of the data dir.
    let total = sys["disk"]["total"].as_u64().expect("disk total");
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let path = std::ffi::CString::new(s.data_dir().to_str().expect("utf8")).expect("cstring");
    // SAFETY: a valid path and a writable statvfs.
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut st) }, 0);
    assert_eq!(total, st.f_blocks as u64 * st.f_frsize as u64);
    // Network: counters only grow; lo is excluded from the sums but listed.
    let rx = sys["network"]["bytes_recv"].as_u64().expect("rx");
    let m = s.get("/monitoring/metrics", Some(&a));
    assert_eq!(m.status, 200, "{}", m.body);
    let ifaces = m.data()["metrics"]["network"]["interfaces"]
        .as_array()
        .expect("ifaces")
        .clone();
    assert!(ifaces.iter().any(|i| i["name"] == "lo"), "{ifaces:?}");
    let later = s.get("/monitoring/dashboard", Some(&a));
    assert!(
        later.data()["system_metrics"]["network"]["bytes_recv"]
            .as_u64()
            .expect("rx")
            >= rx
    );
    // The application side.
    let app = &d["application_metrics"];
    assert_eq!(
        app["process"]["rss_bytes"].as_u64().map(|b| b > 1_000_000),
        Some(true)
    );
    assert_eq!(app["bgp"]["sessions"], 0);
    assert_eq!(app["wireguard"]["servers_running"], 0);
    assert!(app["api"]["requests"].as_u64().expect("requests") >= 1);
    assert!(
        app.get("cache").is_none(),
        "no cache: no invented cache figures"
    );
    assert!(d["alerts"]["active"].as_u64().is_some());
    assert_eq!(d["collector"]["interval_secs"], 5);
    assert_eq!(d["collector"]["history_capacity"], 24 * 3600 / 5);

    // /status/metrics: real request and database timings.
    let r = s.get("/status/metrics", Some(&a));
    assert_eq!(r.status, 200, "{}", r.body);
    let p = &r.data()["performance"];
    assert!(p["api_response_time"]["avg"].as_f64().expect("avg") > 0.0);
    assert!(
        p["api_response_time"]["p99"].as_f64().expect("p99")
            >= p["api_response_time"]["p95"].as_f64().expect("p95")
    );
    assert!(p["database_query_time"]["avg"].as_f64().expect("db avg") > 0.0);
    assert!(p["active_connections"].as_u64().expect("connections") >= 1);
    let r = s.get("/status/status", Some(&a));
    assert_eq!(r.data()["services"]["database"], "running", "{}", r.body);
    assert_eq!(r.data()["services"]["bgp"], "inactive");
    let r = s.get("/status/system", Some(&a));
    assert_eq!(
        r.data()["resources"]["memory"]["total"],
        meminfo("MemTotal")
    );

    // /system/info: uname, /etc/os-release, netlink interfaces.
    let r = s.get("/system/info", Some(&a));
    assert_eq!(r.status, 200, "{}", r.body);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert_eq!(r.data()["system"]["hostname"], host.trim());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    assert_eq!(r.data()["system"]["kernel"], kernel.trim());
    assert!(r.data()["system"]["os"]
        .as_str()
        .is_some_and(|o| !o.is_empty()));
    let lo = r.data()["network"]["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .find(|i| i["name"] == "lo")
        .cloned()
        .expect("lo");
    assert_eq!(lo["ipv4"][0], "127.0.0.1/8", "{lo}");
    assert_eq!(r.data()["database"]["type"], "SQLite");

    // History: samples of the system metrics, filters, bad queries.
    let r = s.get("/monitoring/metrics/system?hours=1", Some(&a));
    assert_eq!(r.status, 200, "{}", r.body);
    let points = r.data().as_array().expect("points").clone();
    assert!(
        points
            .iter()
            .filter(|p| p["name"] == "system.memory.usage")
            .count()
            >= 2
    );
    assert!(points
        .iter()
        .all(|p| p["name"].as_str().is_some_and(|n| n.starts_with("system."))));
    let p = points
        .iter()
        .find(|p| p["name"] == "system.cpu.usage")
        .expect("cpu point");
    assert_eq!(p["metadata"]["unit"], "percent");
    let r = s.get(
        "/monitoring/metrics/system?name=bgp.sessions&points=1",
        Some(&a),
    );
    assert_eq!(r.data().as_array().map(Vec::len), Some(1), "{}", r.body);
    // Names count once; the points a request may ask for are bounded.
    let r = s.get(
        "/monitoring/metrics/system?name=bgp.sessions,bgp.sessions&points=1",
        Some(&a),
    );
    assert_eq!(r.data().as_array().map(Vec::len), Some(1), "{}", r.body);
    let names =
        "system.cpu.usage,system.load.1,system.memory.usage,system.memory.used,system.disk.usage";
    s.get(
        &format!("/monitoring/metrics/system?name={names}&points=5000"),
        Some(&a),
    )
    .assert_field_error(422, "VALIDATION_ERROR", "points");
    s.get("/monitoring/metrics/system?name=nope", Some(&a))
        .assert_field_error(422, "VALIDATION_ERROR", "name");
    s.get("/monitoring/metrics/system?hours=0", Some(&a))
        .assert_field_error(422, "VALIDATION_ERROR", "hours");
    s.get("/monitoring/dashboard", None)
        .assert_error(401, "UNAUTHORIZED");
}

#[test]
fn an_alert_rule_fires_and_resolves() {
    let (s, a) = Server::with_config(FAST);
    let rule = json!({"id": "mem_test", "name": "memory in use", "metric_name": "system.memory.usage",
                      "condition": ">", "threshold": 0, "level": "critical", "cooldown_minutes": 0});
    let r = s.post("/monitoring/alerts/rules", Some(&a), &rule);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.data()["condition"], ">");
    s.post("/monitoring/alerts/rules", Some(&a), &rule)
        .assert_error(409, "RESOURCE_CONFLICT");
    let mut bad = rule.clone();
    bad["id"] = json!("other");
    bad["metric_name"] = json!("system.memory.usagee");
    s.post("/monitoring/alerts/rules", Some(&a), &bad)
        .assert_field_error(422, "VALIDATION_ERROR", "metric_name");
    bad["metric_name"] = json!("system.memory.usage");
    bad["condition"] = json!("=>");
    s.post("/monitoring/alerts/rules", Some(&a), &bad)
        .assert_field_error(422, "VALIDATION_ERROR", "condition");
    let (_, viewer) = s.user_with_role(&a, "vera", "viewer");
    s.post("/monitoring/alerts/rules", Some(&viewer), &bad)
        .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    // The defaults are there and editable.
    let rules = s.get("/monitoring/alerts/rules", Some(&a));
    let ids: Vec<&str> = rules
        .data()
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    for id in [
        "cpu_high",
        "memory_high",
        "disk_high",
        "bgp_session_down",
        "wireguard_server_error",
    ] {
        assert!(ids.contains(&id), "{ids:?}");
    }

    let active = wait_for(15, "the alert", || {
        let r = s.get("/monitoring/alerts/active", Some(&a));
        r.data()
            .as_array()?
            .iter()
            .find(|x| x["rule_id"] == "mem_test")
            .cloned()
    });
    assert_eq!(active["level"], "critical");
    assert_eq!(active["status"], "active");
    assert!(active["current_value"].as_f64().expect("value") > 0.0);
    assert!(active["id"].as_str().expect("id").starts_with("mem_test_"));
    // Timestamps are RFC 3339 here too (CONTRACT.md), not Unix seconds.
    for t in ["created_at", "updated_at"] {
        assert!(
            active[t].as_str().is_some_and(|v| v.ends_with('Z')),
            "{t}: {active}"
        );
    }
    assert!(active["resolved_at"].is_null(), "{active}");
    let d = s.get("/monitoring/dashboard", Some(&a));
    assert!(d.data()["alerts"]["critical"].as_u64().expect("critical") >= 1);
    // A log event says so.
    let logs = s.get("/logs?search=memory%20in%20use&level=CRITICAL", Some(&a));
    assert_eq!(logs.data()["pagination"]["total"], 1, "{}", logs.body);

    // Raising the threshold resolves it on the next tick.
    let r = s.send(
        "PATCH",
        "/monitoring/alerts/rules/mem_test",
        Some(&a),
        &json!({"threshold": 1000}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["threshold"], 1000.0);
    wait_for(15, "the resolution", || {
        let r = s.get("/monitoring/alerts/active", Some(&a));
        (!r.data()
            .as_array()?
            .iter()
            .any(|x| x["rule_id"] == "mem_test"))
        .then_some(())
    });
    let logs = s.get("/logs?search=memory%20in%20use%20resolved", Some(&a));
    assert_eq!(logs.data()["pagination"]["total"], 1, "{}", logs.body);

    let r = s.call(
        "DELETE",
        "/monitoring/alerts/rules/mem_test",
        Some(&a),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    s.call(
        "DELETE",
        "/monitoring/alerts/rules/mem_test",
        Some(&a),
        None,
    )
    .assert_error(404, "RESOURCE_NOT_FOUND");
}

/// A minimal RFC 4180 reader: rows of fields (quoted fields may hold commas, quotes and
/// line breaks).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

fn download(s: &Server, url: &str, token: &str) -> (u16, Vec<u8>, Option<String>) {
    let path = url.strip_prefix("/api/v1").expect("api path");
    let r = s.raw(
        "GET",
        path,
        &[format!("Authorization: Bearer {token}")],
        b"",
    );
    (
        r.status,
        r.raw_body.clone(),
        r.header("content-type").map(str::to_string),
    )
}

#[test]
fn logs_filter_and_export_in_three_formats() {
    let (s, a) = Server::with_config("");
    for name in ["alice", "bob", "carol"] {
        s.user_with_role(&a, name, "viewer");
    }
    s.login("alice", "wrong-password")
        .assert_error(401, "INVALID_CREDENTIALS");
    s.post("/users", Some(&a), &json!({"username": "x"}))
        .assert_error(422, "VALIDATION_ERROR");

    let all = s.get("/logs?size=100", Some(&a));
    assert_eq!(all.status, 200, "{}", all.body);
    let total = all.data()["pagination"]["total"].as_u64().expect("total");
    assert!(total >= 6, "{}", all.body);
    let logs = all.data()["logs"].as_array().expect("logs").clone();
    assert!(
        logs.windows(2)
            .all(|w| w[0]["id"].as_i64() > w[1]["id"].as_i64()),
        "newest first"
    );
    let warnings = s.get("/logs?level=warning", Some(&a));
    let w = warnings.data()["logs"].as_array().expect("logs").clone();
    assert!(
        w.len() >= 2 && w.iter().all(|l| l["level"] == "WARNING"),
        "{w:?}"
    );
    let bob = s.get("/logs?search=bob", Some(&a));
    assert!(bob.data()["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .all(|l| l.to_string().contains("bob")));
    assert!(bob.data()["pagination"]["total"].as_u64().expect("n") >= 1);
    let future = s.get("/logs?start_time=2100-01-01T00:00:00Z", Some(&a));
    assert_eq!(future.data()["pagination"]["total"], 0);
    let past = s.get("/logs?end_time=2000-01-01", Some(&a));
    assert_eq!(past.data()["pagination"]["total"], 0);
    let window = s.get(
        "/logs?start_time=2000-01-01T00:00:00%2B02:00&end_time=2100-01-01",
        Some(&a),
    );
    assert_eq!(window.data()["pagination"]["total"], total);
    s.get("/logs?level=LOUD", Some(&a))
        .assert_field_error(422, "VALIDATION_ERROR", "level");
    s.get("/logs?start_time=yesterday", Some(&a))
        .assert_field_error(422, "VALIDATION_ERROR", "start_time");
    s.get("/logs?start_time=2024-02-01&end_time=2024-01-01", Some(&a))
        .assert_field_error(422, "VALIDATION_ERROR", "end_time");
    let one = &logs[0];
    let r = s.get(&format!("/logs/{}", one["id"]), Some(&a));
    assert_eq!(r.data(), one);
    s.get("/logs/999999", Some(&a))
        .assert_error(404, "RESOURCE_NOT_FOUND");

    // Exports: JSON, CSV and text, each parsed back.
    let mut counts = Vec::new();
    for fmt in ["json", "csv", "txt"] {
        let r = s.get(
            &format!("/logs/export?format={fmt}&level=INFO,WARNING"),
            Some(&a),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let d = r.data();
        let url = d["download_url"].as_str().expect("url");
        assert!(
            url.starts_with("/api/v1/logs/export/download/export_") && url.ends_with(fmt),
            "{url}"
        );
        assert!(d["expires_at"].as_str().is_some());
        let entries = d["entries"].as_u64().expect("entries") as usize;
        let (status, body, ctype) = download(&s, url, &a);
        assert_eq!(status, 200);
        assert_eq!(body.len() as u64, d["file_size"].as_u64().expect("size"));
        let text = String::from_utf8(body).expect("utf8");
        match fmt {
            "json" => {
                let rows: Vec<Value> = serde_json::from_str(&text).expect("json export");
                assert_eq!(rows.len(), entries);
                assert!(rows
                    .iter()
                    .all(|r| r["level"] == "INFO" || r["level"] == "WARNING"));
                assert!(
                    rows.windows(2)
                        .all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64()),
                    "oldest first"
                );
                assert_eq!(ctype.as_deref(), Some("application/json"));
            }
            "csv" => {
                let rows = csv_rows(&text);
                assert_eq!(rows[0][0], "id");
                assert_eq!(rows.len() - 1, entries);
                assert!(
                    rows[1..].iter().all(|r| r.len() == rows[0].len()),
                    "{rows:?}"
                );
                assert!(rows[1..].iter().any(|r| r[7] == "admin"));
            }
            _ => {
                assert_eq!(text.lines().count(), entries);
                assert!(text
                    .lines()
                    .all(|l| l.contains(" INFO ") || l.contains(" WARNING ")));
            }
        }
        counts.push(entries);
    }
    // Each export is itself an audited… read: not audited, so the three agree.
    assert!(counts.windows(2).all(|w| w[0] == w[1]), "{counts:?}");
    s.get("/logs/export?format=xml", Some(&a))
        .assert_field_error(422, "VALIDATION_ERROR", "format");
    for bad in [
        "export_1_zzzzzzzz.json",
        "..%2F..%2Fipv6wgm.db",
        "export_1704067200_0a1b2c3d.json",
    ] {
        let (status, _, _) = download(&s, &format!("/api/v1/logs/export/download/{bad}"), &a);
        assert_eq!(status, 404, "{bad}");
    }
}

#[test]
fn system_config_applies_persists_and_validates() {
    let (s, a) = Server::with_config("");
    let r = s.get("/system/config", Some(&a));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["log_level"], "info");
    assert_eq!(r.data()["app_name"], "ipv6wgm");
    let r = s.send(
        "PUT",
        "/system/config",
        Some(&a),
        &json!({"log_level": "debug", "max_log_entries": 5000, "metrics_interval_secs": 10}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["log_level"], "debug");
    assert!(r.data()["updated_at"].is_string());
    // The filter applies at once: debug lines appear.
    s.get("/status/health", None);
    wait_for(5, "a debug line", || {
        s.stderr_text().contains("DEBUG").then_some(())
    });
    let d = wait_for(15, "the new interval", || {
        let d = s.get("/monitoring/dashboard", Some(&a));
        (d.data()["collector"]["interval_secs"] == 10).then(|| d.data().clone())
    });
    assert_eq!(d["collector"]["history_capacity"], 24 * 360);
    for (body, field) in [
        (json!({"log_level": "chatty"}), "log_level"),
        (json!({"max_log_entries": 1}), "max_log_entries"),
        (json!({"metrics_interval_secs": 1}), "metrics_interval_secs"),
        (json!({"session_timeout": 0}), "session_timeout"),
    ] {
        s.send("PUT", "/system/config", Some(&a), &body)
            .assert_field_error(422, "VALIDATION_ERROR", field);
    }
    s.send(
        "PUT",
        "/system/config",
        Some(&a),
        &json!({"backup_retention": {"keep_last": 0}}),
    )
    .assert_field_error(422, "VALIDATION_ERROR", "backup_retention.keep_last");
    let (_, manager) = s.user_with_role(&a, "mona", "manager");
    s.send(
        "PUT",
        "/system/config",
        Some(&manager),
        &json!({"log_level": "warn"}),
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    s.post("/system/action", Some(&a), &json!({"action": "explode"}))
        .assert_field_error(422, "VALIDATION_ERROR", "action");
    s.post(
        "/system/action",
        Some(&manager),
        &json!({"action": "reload"}),
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    // reload: the file is re-read, the API's settings stay on top.
    let r = s.post("/system/action", Some(&a), &json!({"action": "reload"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["settings"]["log_level"], "debug");
    assert_eq!(r.data()["restart_required"], json!([]));
    // Only what was PUT is kept over the file: a setting changed in the file applies.
    std::fs::write(
        s.dir.path().join("test.toml"),
        "[logs]\nmax_size_mb = 20\n[http]\nmax_connections = 99\n",
    )
    .expect("rewrite config");
    let r = s.post("/system/action", Some(&a), &json!({"action": "reload"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["settings"]["max_log_size_mb"], 20);
    assert_eq!(r.data()["settings"]["max_log_entries"], 5000);
    assert_eq!(r.data()["restart_required"], json!(["http"]));

    // Kept across a restart of the service.
    let (s, a) = s.restart();
    let r = s.get("/system/config", Some(&a));
    assert_eq!(r.data()["log_level"], "debug");
    assert_eq!(r.data()["max_log_entries"], 5000);
}

#[test]
fn restart_action_re_executes_the_service() {
    let port = free_port();
    let s = Server::start_with(Opts {
        admin_password: Some(ADMIN_PW.into()),
        listen: Some(format!("127.0.0.1:{port}")),
        ..Default::default()
    });
    let a = s.admin();
    let pid = s.child.id();
    std::thread::sleep(Duration::from_secs(2));
    let before = s.get("/status/health/detailed", Some(&a)).data()["uptime"]
        .as_u64()
        .expect("uptime");
    assert!(before >= 2);
    let asked = std::time::Instant::now();
    let r = s.post(
        "/system/action",
        Some(&a),
        &json!({"action": "restart", "service": "ipv6wgm"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    wait_for(20, "the service back", || {
        let mut c = TcpStream::connect(s.addr).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        c.write_all(b"GET /api/v1/status/live HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut out = String::new();
        c.read_to_string(&mut out).ok()?;
        out.starts_with("HTTP/1.1 200").then_some(())
    });
    // Same process (procd keeps tracking it), fresh start; tokens stay valid.
    let after = s.get("/status/health/detailed", Some(&a));
    assert_eq!(after.status, 200, "{}", after.body);
    // A fresh start: up no longer than since the restart was asked. The old process would
    // be up `before` seconds more than that, however long the restart took.
    let up = after.data()["uptime"].as_u64().expect("uptime");
    let since = asked.elapsed().as_secs();
    assert!(
        up <= since,
        "uptime {up} s, {since} s after the restart was asked ({before} s before it)"
    );
    assert!(
        std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok(),
        "same pid"
    );
    // The re-executed process has answered, but its line may still be in the pipe.
    s.wait_stderr_count("listening on", 2, 10);
    assert_eq!(
        s.stderr_text().matches("listening on").count(),
        2,
        "{}",
        s.stderr_text()
    );
}

fn scrape(s: &Server, token: Option<&str>) -> (u16, String) {
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        c,
        "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{auth}\r\n"
    )
    .expect("write");
    let r = read_response(&mut c);
    (r.status, String::from_utf8_lossy(&r.raw_body).into_owned())
}

#[test]
fn prometheus_metrics_parse() {
    let (s, a) = Server::with_config("");
    s.post("/bgp/sessions", Some(&a), &json!({"name": "up\"stream", "neighbor": "192.0.2.1",
                                              "remote_as": 65002, "local_as": 65001, "enabled": false}));
    let (status, text) = scrape(&s, None);
    assert_eq!(status, 200, "{text}");
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    let value = |name: &str| {
        parsed
            .samples
            .iter()
            .find(|s| s.metric == name)
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
    };
    assert_eq!(
        value("ipv6wgm_host_memory_total_bytes"),
        meminfo("MemTotal") as f64
    );
    assert_eq!(value("ipv6wgm_build_info"), 1.0);
    assert!(value("ipv6wgm_process_resident_memory_bytes") > 1e6);
    assert!(parsed
        .samples
        .iter()
        .any(|x| x.metric == "ipv6wgm_network_receive_bytes_total"
            && x.labels.get("interface") == Some("lo")));
    assert!(
        parsed
            .samples
            .iter()
            .any(|x| x.metric == "ipv6wgm_bgp_session_up"),
        "{text}"
    );
    // Label values are escaped (prometheus-parse 0.2 hands them back still escaped).
    assert!(
        text.contains(r#"ipv6wgm_bgp_session_up{id="1",session="up\"stream"} 0"#),
        "{text}"
    );
    assert!(parsed
        .docs
        .contains_key("ipv6wgm_http_request_duration_seconds"));
    // Only GET.
    let r = s.raw("POST", "/../metrics", &[], b"");
    assert_ne!(r.status, 200);
    drop(s);

    let (s, _) = Server::with_config("[monitoring]\nprometheus_token = \"scrape-me\"\n");
    assert_eq!(scrape(&s, None).0, 401);
    assert_eq!(scrape(&s, Some("scrape-mE")).0, 401);
    assert_eq!(scrape(&s, Some("scrape-me")).0, 200);
    drop(s);
    let (s, _) = Server::with_config("[monitoring]\nprometheus = false\n");
    assert_eq!(scrape(&s, None).0, 404);
}

// ---- WebSockets ----

fn ws(s: &Server, path_and_query: &str) -> Ws {
    s.ws(path_and_query)
        .unwrap_or_else(|status| panic!("handshake refused: {status}"))
}

/// The next text message as JSON (skipping pings).
fn next(ws: &mut Ws) -> Value {
    loop {
        match ws.read().expect("read") {
            tungstenite::Message::Text(t) => return serde_json::from_str(&t).expect("json"),
            tungstenite::Message::Close(f) => panic!("closed: {f:?}"),
            _ => {}
        }
    }
}

/// Reads until a message of `kind` for which `pred` holds.
fn next_of(ws: &mut Ws, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let m = next(ws);
        assert!(m["timestamp"].is_string(), "{m}");
        if m["type"] == kind && pred(&m["data"]) {
            return m["data"].clone();
        }
    }
    panic!("no {kind} message");
}

fn close_code(mut ws: Ws) -> u16 {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(Some(f))) => return f.code.into(),
            Ok(tungstenite::Message::Close(None)) => return 1005,
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    }
}

#[test]
fn websocket_channels_push_state_and_changes() {
    let (s, a) = Server::with_config(FAST);
    let mut w = ws(
        &s,
        &format!("/ws/connect?token={a}&channels=system,wireguard,bgp"),
    );
    let hello = next(&mut w);
    assert_eq!(hello["type"], "connected", "{hello}");
    // Each channel's state at once; system_status again within the interval.
    next_of(&mut w, "system_status", |d| d["memory_usage"].is_number());
    next_of(&mut w, "wireguard_status", |d| d["servers"].is_array());
    next_of(&mut w, "bgp_status", |d| d["sessions"].is_array());
    let started = std::time::Instant::now();
    next_of(&mut w, "system_status", |_| true);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    // A change through the API is pushed.
    s.create_wg_server(
        &a,
        json!({"name": "ws-test", "interface": "wgws0",
               "listen_port": free_port(), "ipv4_address": "10.77.0.1/24"}),
    );
    let d = next_of(&mut w, "wireguard_status", |d| {
        d["servers"]
            .as_array()
            .is_some_and(|v| v.iter().any(|s| s["name"] == "ws-test"))
    });
    assert_eq!(d["servers"][0]["status"], "stopped");
    let session = s.create_bgp_session(
        &a,
        json!({"name": "ws-peer", "neighbor": "192.0.2.9",
               "remote_as": 65009, "local_as": 65001, "passive": true}),
    );
    next_of(&mut w, "bgp_status", |d| {
        d["sessions"]
            .as_array()
            .is_some_and(|v| v.iter().any(|s| s["name"] == "ws-peer"))
    });

    // Messages from the client.
    w.send(tungstenite::Message::text(r#"{"type":"ping"}"#))
        .expect("send");
    next_of(&mut w, "pong", |_| true);
    w.send(tungstenite::Message::text(
        r#"{"type":"subscribe","channel":"logs"}"#,
    ))
    .expect("send");
    next_of(&mut w, "subscribed", |d| {
        d["channels"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("logs")))
    });
    s.post("/users", Some(&a), &json!({"username": "x"}));
    next_of(&mut w, "log_entry", |d| {
        d["action"] == "users.create" && d["level"] == "WARNING"
    });
    w.send(tungstenite::Message::text("not json"))
        .expect("send");
    next_of(&mut w, "error", |_| true);
    w.close(None).expect("close");

    // /ws/{user_id}: subscriptions with ids, the second seed's message types.
    let me = s.get("/auth/me", Some(&a)).data()["id"]
        .as_i64()
        .expect("id");
    let sid = id_of(&session);
    let mut u = ws(
        &s,
        &format!("/ws/{me}?connection_type=bgp_status&token={a}"),
    );
    next(&mut u);
    next_of(&mut u, "bgp_status_update", |_| true);
    u.send(tungstenite::Message::text(
        json!({"type": "subscribe", "channel": "bgp_sessions", "session_id": sid}).to_string(),
    ))
    .expect("send");
    let d = next_of(&mut u, "bgp_status_update", |d| {
        d["sessions"].as_array().is_some_and(|v| v.len() == 1)
    });
    assert_eq!(d["sessions"][0]["session_id"], sid);
    u.send(tungstenite::Message::text(
        r#"{"type":"subscribe","channel":"ipv6_pools"}"#,
    ))
    .expect("send");
    next_of(&mut u, "pool_status_update", |d| d["pools"].is_array());
    drop(u);

    // Refusals: 1008 for a bad token or someone else's channel.
    assert_eq!(close_code(ws(&s, "/ws/connect?token=not-a-token")), 1008);
    assert_eq!(close_code(ws(&s, "/ws/system/status")), 1008);
    assert_eq!(
        close_code(ws(&s, &format!("/ws/{}?token={a}", me + 1))),
        1008
    );
    // The token as the first message works too.
    let mut f = ws(&s, "/ws/connect");
    f.send(tungstenite::Message::text(
        json!({"token": a, "channels": ["bgp"]}).to_string(),
    ))
    .expect("send");
    assert_eq!(next(&mut f)["type"], "connected");
    next_of(&mut f, "bgp_status", |_| true);
    // And /ws/monitoring/alerts answers with the active alerts.
    let mut m = ws(&s, &format!("/ws/monitoring/alerts?token={a}"));
    next(&mut m);
    next_of(&mut m, "alerts_active", |d| d["alerts"].is_array());
    // Stopping the service says goodbye (1001) instead of dropping the socket.
    s.signal(libc::SIGTERM);
    assert_eq!(close_code(m), 1001);
}

#[test]
fn websocket_frames_ping_close_and_size_cap() {
    let (s, a) = Server::with_config(FAST);
    let path = format!("/ws/connect?token={a}&channels=system");
    let mut w = ws(&s, &path);
    assert_eq!(next(&mut w)["type"], "connected");
    // A ping is answered with its payload.
    w.send(tungstenite::Message::Ping(b"hi"[..].into()))
        .expect("send");
    let pong = (0..50).find_map(|_| match w.read().expect("read") {
        tungstenite::Message::Pong(p) => Some(p),
        _ => None,
    });
    assert_eq!(pong.as_deref(), Some(&b"hi"[..]));
    // A message over the 16 KiB cap ends the connection with 1009.
    w.send(tungstenite::Message::text("x".repeat(20_000)))
        .expect("send");
    assert_eq!(close_code(w), 1009);
    // The client's close code is echoed.
    let mut c = ws(&s, &path);
    assert_eq!(next(&mut c)["type"], "connected");
    c.close(Some(tungstenite::protocol::CloseFrame {
        code: 4000.into(),
        reason: "done".into(),
    }))
    .expect("close");
    assert_eq!(close_code(c), 4000);
}
