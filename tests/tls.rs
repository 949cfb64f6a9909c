//! HTTPS (`cargo test --features tls --test tls`): a self-signed certificate made with the
//! openssl CLI, the server started with --tls-cert/--tls-key, and curl as the client.
#![cfg(feature = "tls")]

mod common;
use common::*;
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
        || Command::new(tool).arg("version").output().is_ok()
}

#[test]
fn serves_the_api_over_https() {
    if !have("openssl") || !have("curl") {
        skip("openssl and curl are needed (apt-get install openssl curl)");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let s = Server::start_with(Opts {
        admin_password: Some(ADMIN_PW.into()),
        args: vec![
            "--tls-cert".into(),
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
        ],
        ..Default::default()
    });
    assert!(s.stderr_text().contains("listening on https://"));
    let url = format!("https://127.0.0.1:{}/api/v1", s.addr.port());
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&cert)
        .args(["-H", "Content-Type: application/json", "-d"])
        .arg(format!(r#"{{"username":"admin","password":"{ADMIN_PW}"}}"#))
        .arg(format!("{url}/auth/login"))
        .output()
        .expect("curl");
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(body["success"], true, "{body}");
    assert!(body["data"]["access_token"].is_string());

    // Plain HTTP to the TLS port gets no API answer.
    let plain = Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .arg(format!(
            "http://127.0.0.1:{}/api/v1/status/health",
            s.addr.port()
        ))
        .output()
        .expect("curl");
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("\"success\":true"));
    assert!(s.stop().success());
}

#[test]
fn missing_key_file_is_a_startup_error() {
    let out = run_bin(&[
        &"--listen",
        &"127.0.0.1:0",
        &"--tls-cert",
        &"/nonexistent/c.pem",
        &"--tls-key",
        &"/nonexistent/k.pem",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/c.pem"));
}
