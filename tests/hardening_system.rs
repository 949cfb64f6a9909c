//! Issue 12, query/alert/system part, against the real binary: one rule for query parameters
//! on every route, alert rule names without control characters, the seed's
//! `/system/config` fields (aliases, `debug_mode`, `monitoring_enabled`, `api_rate_limit`).

mod common;

use common::*;
use serde_json::json;
use std::io::Write;
use std::time::{Duration, Instant};

/// `/users/{id}/reset-password` → `/users/1/reset-password`.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "1" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_route_rejects_unknown_query_parameters() {
    let (s, a) = Server::with_config("");
    // The routes the issue names, then every route in the table, whatever its method: the
    // check runs before the handler, so nothing is created, changed or revoked.
    let named = [
        "/monitoring/alerts/rules",
        "/monitoring/alerts/active",
        "/monitoring/dashboard",
        "/system/config",
        "/system/info",
        "/auth/me",
    ];
    for path in named {
        s.get(&format!("{path}?bogus_param=1"), Some(&a))
            .assert_field_error(422, "VALIDATION_ERROR", "bogus_param");
    }
    let table = ipv6wgm::api::routes();
    let mut checked = 0;
    for (method, path, _) in table.routes() {
        let url = format!("{}?page=1&bogus_param=1", concrete(path));
        let r = s.call(method.as_str(), &url, Some(&a), None);
        assert_eq!(r.status, 422, "{method} {url}: {}", r.body);
        // A route that takes `page` complains about the other one; one that takes nothing
        // complains about whichever comes first.
        assert!(
            ["bogus_param", "page"].contains(&r.field()),
            "{method} {url}: {}",
            r.body
        );
        checked += 1;
    }
    assert!(checked > 80, "{checked} routes");
    // Prometheus' /metrics, outside /api/v1, follows the same rule.
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.write_all(b"GET /metrics?bogus_param=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("write");
    read_response(&mut c).assert_field_error(422, "VALIDATION_ERROR", "bogus_param");
    // Nothing happened: the admin's token still works, no user was deleted.
    let me = s.get("/auth/me", Some(&a));
    assert_eq!(me.status, 200, "{}", me.body);
    let users = s.get("/users", Some(&a));
    assert_eq!(users.data()["pagination"]["total"], 1, "{}", users.body);
    // Authentication comes first: no token, no word about parameters.
    s.get("/monitoring/dashboard?bogus_param=1", None)
        .assert_error(401, "UNAUTHORIZED");
    // What routes declare still passes.
    for url in [
        "/users?page=1&size=5&search=adm&role=admin&is_active=true",
        "/wireguard/servers?page=1&status=running",
        "/wireguard/clients?server_id=1&enabled=true&search=x",
        "/bgp/sessions?page=1&size=10",
        "/bgp/announcements?session_id=1&enabled=true",
        "/ipv6/pools?page=1",
        "/ipv6/allocations?pool_id=1&client_id=1&client_name=x",
        "/logs?page=1&level=INFO&start_time=2024-01-01&end_time=2099-01-01&search=x&module=auth",
        "/logs/export?format=json&level=INFO&module=auth",
        "/monitoring/metrics/system?hours=1&points=10&name=system.cpu.usage",
    ] {
        let r = s.get(url, Some(&a));
        assert_eq!(r.status, 200, "{url}: {}", r.body);
    }
}

#[test]
fn alert_rule_names_reject_control_characters() {
    let (s, a) = Server::with_config("");
    let before = s.get("/monitoring/alerts/rules", Some(&a));
    let count = before.data().as_array().expect("rules").len();
    for name in [
        "nul\u{0}here",
        "esc\u{1b}[31m",
        "two\nlines",
        "tab\there",
        "del\u{7f}",
    ] {
        let rule = json!({"name": name, "metric_name": "system.cpu.usage",
                          "condition": ">", "threshold": 90});
        s.post("/monitoring/alerts/rules", Some(&a), &rule)
            .assert_field_error(422, "VALIDATION_ERROR", "name");
        s.send(
            "PATCH",
            "/monitoring/alerts/rules/cpu_high",
            Some(&a),
            &json!({"name": name}),
        )
        .assert_field_error(422, "VALIDATION_ERROR", "name");
    }
    let rule = json!({"name": "cpu", "metric_name": "system.cpu.usage", "condition": ">",
                      "threshold": 90, "description": "bell\u{7}"});
    s.post("/monitoring/alerts/rules", Some(&a), &rule)
        .assert_field_error(422, "VALIDATION_ERROR", "description");
    let after = s.get("/monitoring/alerts/rules", Some(&a));
    let rules = after.data().as_array().expect("rules");
    assert_eq!(rules.len(), count, "{}", after.body);
    let cpu = rules
        .iter()
        .find(|r| r["id"] == "cpu_high")
        .expect("cpu_high");
    assert!(
        !cpu["name"]
            .as_str()
            .expect("name")
            .chars()
            .any(char::is_control),
        "{cpu}"
    );
    // Ordinary text, multi-line descriptions included, is fine.
    let ok = json!({"name": "CPU > 90 % (Zürich)", "metric_name": "system.cpu.usage",
                    "condition": ">", "threshold": 90, "description": "line one\nline two"});
    let r = s.post("/monitoring/alerts/rules", Some(&a), &ok);
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn system_config_takes_the_seed_example() {
    let (s, a) = Server::with_config("");
    let seed = json!({"log_level": "DEBUG", "max_log_size": 200, "backup_retention": 60,
                      "session_timeout": 7200, "api_rate_limit": 2000});
    let r = s.send("PUT", "/system/config", Some(&a), &seed);
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.data();
    assert!(d["updated_at"].is_string(), "{d}");
    for (k, v) in [
        ("log_level", json!("DEBUG")),
        ("max_log_size", json!(200)),
        ("max_log_size_mb", json!(200)),
        ("session_timeout", json!(7200)),
        ("api_rate_limit", json!(2000)),
        ("debug_mode", json!(true)),
        ("monitoring_enabled", json!(true)),
        ("backup_retention", json!(60)),
    ] {
        assert_eq!(d[k], v, "{k}: {d}");
    }
    // debug_mode is the log filter's switch, stored as the filter.
    let r = s.send(
        "PUT",
        "/system/config",
        Some(&a),
        &json!({"debug_mode": false}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (&r.data()["log_level"], &r.data()["debug_mode"]),
        (&json!("info"), &json!(false))
    );
    for (body, field) in [
        (
            json!({"debug_mode": true, "log_level": "warn"}),
            "debug_mode",
        ),
        (
            json!({"max_log_size": 5, "max_log_size_mb": 6}),
            "max_log_size",
        ),
        (json!({"max_log_size": 0}), "max_log_size_mb"),
        (json!({"api_rate_limit": -1}), "api_rate_limit"),
        (json!({"api_rate_limit": 1_000_001}), "api_rate_limit"),
        (json!({"monitoring_enabled": "yes"}), "monitoring_enabled"),
        (json!({"database_pool_size": 10}), "database_pool_size"),
    ] {
        s.send("PUT", "/system/config", Some(&a), &body)
            .assert_field_error(422, "VALIDATION_ERROR", field);
    }
    let r = s.send(
        "PUT",
        "/system/config",
        Some(&a),
        &json!({"debug_mode": true}),
    );
    assert_eq!(r.data()["log_level"], "debug", "{}", r.body);
    // Stored under the canonical names: a later log_level does not contradict it at start.
    let r = s.send(
        "PUT",
        "/system/config",
        Some(&a),
        &json!({"log_level": "warn", "max_log_size": 300}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (s, a) = s.restart();
    let d = s.get("/system/config", Some(&a));
    assert_eq!(d.data()["log_level"], "warn", "{}", d.body);
    assert_eq!(d.data()["debug_mode"], false);
    assert_eq!(d.data()["max_log_size_mb"], 300);
    assert_eq!(d.data()["api_rate_limit"], 2000);
    assert_eq!(d.data()["session_timeout"], 7200);
}

#[test]
fn api_rate_limit_answers_429_per_user_and_address() {
    let (s, a) = Server::with_config("");
    let (_, vera) = s.user_with_role(&a, "vera", "viewer");
    let (_, otto) = s.user_with_role(&a, "otto", "viewer");
    let r = s.get("/system/config", Some(&a));
    assert_eq!(r.data()["api_rate_limit"], 0, "off by default");
    let r = s.send(
        "PUT",
        "/system/config",
        Some(&a),
        &json!({"api_rate_limit": 3}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // 3 a minute: a burst of 3, then one every 20 s.
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(s.get("/auth/me", Some(&vera)));
    }
    for r in &answers[..3] {
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let limited = &answers[3];
    limited.assert_error(429, "RATE_LIMIT_EXCEEDED");
    let wait: u64 = limited
        .header("Retry-After")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=20).contains(&wait), "Retry-After {wait}");
    // Another user is not affected.
    let r = s.get("/auth/me", Some(&otto));
    assert_eq!(r.status, 200, "{}", r.body);
    // Without a token the source address counts: three probes, then 429.
    let probes: Vec<u16> = (0..4).map(|_| s.get("/status/live", None).status).collect();
    assert_eq!(probes, [200, 200, 200, 429]);
    // 0 turns it off at once.
    let r = s.send(
        "PUT",
        "/system/config",
        Some(&a),
        &json!({"api_rate_limit": 0}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for _ in 0..10 {
        let r = s.get("/auth/me", Some(&vera));
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[test]
fn monitoring_enabled_stops_and_resumes_sampling() {
    let (s, a) = Server::with_config("[monitoring]\ninterval_secs = 5\n");
    let first = wait_for(15, "a first sample", || {
        let d = s.get("/monitoring/dashboard", Some(&a));
        (d.status == 200).then(|| d.data()["timestamp"].clone())
    });
    let r = s.send(
        "PUT",
        "/system/config",
        Some(&a),
        &json!({"monitoring_enabled": false}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["monitoring_enabled"], false);
    // Once the collector says it stopped, no sample is in progress.
    let stopped = wait_for(15, "the collector to stop", || {
        let d = s.get("/monitoring/dashboard", Some(&a));
        (d.data()["collector"]["enabled"] == false).then(|| d.data()["timestamp"].clone())
    });
    assert!(stopped.is_string() && first.is_string());
    let info = s.get("/system/info", Some(&a));
    assert_eq!(
        info.data()["services"]["collector"],
        "stopped",
        "{}",
        info.body
    );
    // Two intervals without a new sample: the figures are frozen.
    let until = Instant::now() + Duration::from_secs(11);
    while Instant::now() < until {
        let d = s.get("/monitoring/dashboard", Some(&a));
        assert_eq!(d.data()["timestamp"], stopped, "sampled while off");
        std::thread::sleep(Duration::from_millis(500));
    }
    let r = s.send(
        "PUT",
        "/system/config",
        Some(&a),
        &json!({"monitoring_enabled": true}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    wait_for(15, "sampling to resume", || {
        let d = s.get("/monitoring/dashboard", Some(&a));
        (d.data()["timestamp"] != stopped && d.data()["collector"]["enabled"] == true).then_some(())
    });
    let info = s.get("/system/info", Some(&a));
    assert_eq!(info.data()["services"]["collector"], "running");
}
