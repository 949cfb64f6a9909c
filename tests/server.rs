//! The service as a process: status endpoints, start-up checks, dual-stack listening,
//! keep-alive, graceful shutdown with a request in flight.

mod common;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn probes_need_no_token_and_detailed_health_does() {
    let s = Server::start();
    let h = s.get("/status/health", None);
    assert_eq!(h.status, 200);
    assert_eq!(h.data()["status"], "healthy");
    assert_eq!(h.data()["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s.get("/status/live", None).data()["status"], "alive");
    assert_eq!(s.get("/status/ready", None).data()["status"], "ready");
    s.get("/status/health/detailed", None)
        .assert_error(401, "UNAUTHORIZED");

    let a = s.admin();
    let d = s.get("/status/health/detailed", Some(&a));
    assert_eq!(d.status, 200, "{}", d.body);
    let db = &d.data()["components"]["database"];
    assert_eq!(db["status"], "healthy");
    assert!(db["response_time"].as_f64().expect("ms") >= 0.0);
    assert_eq!(db["users"], 1);
    let api = &d.data()["components"]["api"];
    assert!(api["requests"].as_u64().expect("count") >= 5, "{api}");
    assert!(api["p95_ms"].as_f64().is_some());
    assert_eq!(d.data()["status"], "healthy");
}

#[test]
fn default_style_wildcard_listen_is_dual_stack() {
    let s = Server::start_with(Opts {
        listen: Some("[::]:0".into()),
        admin_password: Some(ADMIN_PW.into()),
        ..Default::default()
    });
    // The harness connects over IPv4 (127.0.0.1) to the [::] socket.
    assert_eq!(s.get("/status/live", None).status, 200);
    if TcpStream::connect(("::1", s.addr.port())).is_ok() {
        eprintln!("reachable on [::1] too");
    }
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let s = Server::start();
    let mut c = TcpStream::connect(s.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for _ in 0..3 {
        c.write_all(b"GET /api/v1/status/live HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("write");
        let r = read_response(&mut c);
        assert_eq!(r.status, 200);
    }
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let s = Server::start();
    let mut c = TcpStream::connect(s.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let body = format!(r#"{{"username":"admin","password":"{ADMIN_PW}"}}"#);
    let (first, rest) = body.split_at(10);
    write!(
        c,
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .expect("write");
    std::thread::sleep(Duration::from_millis(300));
    s.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    c.write_all(rest.as_bytes()).expect("write rest");
    let r = read_response(&mut c);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["data"]["access_token"].is_string());
    // New connections are refused once shutdown has begun; the process exits cleanly.
    assert!(s.stop().success());
}

#[test]
fn refuses_a_database_from_a_newer_release() {
    let s = Server::start();
    let dir = s.dir.clone();
    assert!(s.stop().success());
    let db = rusqlite::Connection::open(dir.path().join("data/ipv6wgm.db")).expect("db");
    db.pragma_update(None, "user_version", 999).expect("bump");
    drop(db);
    let out = run_bin(&[
        &"--listen",
        &"127.0.0.1:0",
        &"--data-dir",
        &dir.path().join("data"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("newer"), "{err}");
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:0\"\n[auth]\ntoken_tll_secs = 5\n",
    )
    .expect("write");
    let out = run_bin(&[&"--config", &cfg]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("token_tll_secs"), "{err}");

    let out = run_bin(&[&"--listen", &"not-an-address"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen"));
}

#[test]
fn help_and_version() {
    let out = run_bin(&[&"--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("ipv6wgm {}", env!("CARGO_PKG_VERSION"))
    );
    let out = run_bin(&[&"--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--data-dir",
        "--config",
        "reset-password",
        "IPV6WGM_ADMIN_PASSWORD",
    ] {
        assert!(text.contains(flag), "{flag}");
    }
}

#[cfg(not(feature = "tls"))]
#[test]
fn tls_flags_without_the_feature_are_refused_not_ignored() {
    let out = run_bin(&[
        &"--listen",
        &"127.0.0.1:0",
        &"--tls-cert",
        &"c.pem",
        &"--tls-key",
        &"k.pem",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("without TLS support"));
}

#[test]
fn a_broken_database_gives_500_without_internals_503_not_ready_and_stays_alive() {
    let (s, a) = Server::with_admin();
    assert_eq!(s.get("/status/ready", None).status, 200);
    // Another process breaks the schema under the running service.
    let db = rusqlite::Connection::open(s.data_dir().join("ipv6wgm.db")).expect("db");
    db.execute_batch("DROP TABLE users;").expect("drop");
    drop(db);

    let r = s.get("/users", Some(&a));
    r.assert_error(500, "INTERNAL_ERROR");
    let text = r.body.to_string();
    assert!(
        !text.contains("no such table") && !text.contains("users"),
        "{text}"
    );
    assert_eq!(r.body["error"]["message"], "internal error");

    s.get("/status/ready", None)
        .assert_error(503, "SERVICE_UNAVAILABLE");
    assert_eq!(s.get("/status/live", None).status, 200, "process alive");
    assert!(s.wait_stderr("database error", 10), "logged server-side");
    assert!(s.stop().success());
}
