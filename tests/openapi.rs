//! The OpenAPI document as a published, tested contract: served at `/api/v1/openapi.json`
//! (gzip when the client accepts it, plain JSON otherwise), the same as
//! `openapi/openapi.json` in the repository, and the real server conforms to it under
//! schemathesis (`st`, installed by `.ci/run`). The route-coverage rule (router = document)
//! is a unit test in `src/api/openapi.rs`.

mod common;

use common::netns::{self, Netns};
use common::{Opts, Server, ADMIN_PW};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

fn repo_document() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    let text = std::fs::read_to_string(&path).expect("openapi/openapi.json");
    let mut doc: Value = serde_json::from_str(&text).expect("valid JSON");
    doc["info"]["version"] = Value::from(env!("CARGO_PKG_VERSION"));
    doc
}

#[test]
fn served_gzipped_when_accepted_and_plain_otherwise() {
    let s = Server::start();
    let gz = s.raw(
        "GET",
        "/openapi.json",
        &["Accept-Encoding: br, gzip;q=0.8".into()],
        b"",
    );
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("content-type"), Some("application/json"));
    assert_eq!(gz.header("vary"), Some("Accept-Encoding"));
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&gz.raw_body[..])
        .read_to_end(&mut inflated)
        .expect("gzip body");
    assert!(
        gz.raw_body.len() * 4 < inflated.len(),
        "compressed {} of {} bytes",
        gz.raw_body.len(),
        inflated.len()
    );

    for headers in [
        vec![],
        vec!["Accept-Encoding: gzip;q=0, identity".to_string()],
    ] {
        let plain = s.raw("GET", "/openapi.json", &headers, b"");
        assert_eq!(plain.status, 200, "{headers:?}");
        assert_eq!(plain.header("content-encoding"), None, "{headers:?}");
        assert_eq!(plain.header("content-type"), Some("application/json"));
        assert_eq!(plain.raw_body, inflated, "{headers:?}");
    }

    let served: Value = serde_json::from_slice(&inflated).expect("JSON");
    assert_eq!(
        served,
        repo_document(),
        "the served document is openapi/openapi.json"
    );
    // Public: no token needed, and unknown query parameters are refused like everywhere.
    s.get("/openapi.json?x=1", None)
        .assert_field_error(422, "VALIDATION_ERROR", "x");
}

/// Runs schemathesis (all checks, every phase) against the real binary, authenticated as
/// the admin, inside a throwaway network namespace: fuzzed BGP neighbours, WireGuard
/// interfaces and routes stay in it, and nothing leaves the machine.
#[test]
fn schemathesis_finds_nothing() {
    let Some(st) = netns::which("st") else {
        common::skip("no `st` on PATH (pip install schemathesis)");
        return;
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || netns::which("ip").is_none() {
        common::skip("needs root and `ip` for a network namespace");
        return;
    }
    let ns = Netns::new("st");
    let dir = tempfile::tempdir().expect("tempdir");
    // Configured like a router in use, so that operations reach their logic: an RPKI source
    // (else validate-rpki is a 503 by design) and a local AS. UAPI sockets stay private, and
    // fuzzed logins may fail as often as they like without locking the hooks' logins out.
    let vrps = dir.path().join("vrps.json");
    std::fs::write(
        &vrps,
        r#"{"roas":[{"prefix":"2001:db8:100::/48","maxLength":56,"asn":"AS64500","ta":"test"}]}"#,
    )
    .expect("write VRPs");
    let config = format!(
        "[wireguard]\nuapi_dir = {:?}\n[auth]\nlogin_max_failures = 1000000\n\
         [rpki]\nvrp_file = {:?}\n[bgp]\nlocal_asn = 64501\n",
        dir.path().join("uapi"),
        vrps
    );
    let s = Server::start_with(Opts {
        admin_password: Some(ADMIN_PW.into()),
        config: Some(config),
        netns: Some(ns.name.clone()),
        ..Default::default()
    });
    let token = s.admin();
    let me = s.get("/auth/me", Some(&token));
    let user_id = me.data()["id"].as_i64().expect("admin id");
    let base = format!("http://{}/api/v1", s.addr);
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis");
    let examples = std::env::var("IPV6WGM_ST_EXAMPLES").unwrap_or_else(|_| "25".into());
    let started = Instant::now();
    let out = ns
        .command(st)
        .arg("--config-file")
        .arg(hooks.join("schemathesis.toml"))
        .args(["run", &format!("{base}/openapi.json")])
        .args([
            "--checks",
            "all",
            "--max-examples",
            &examples,
            "--seed",
            "1",
        ])
        .args(["--workers", "2", "--request-timeout", "30", "--no-color"])
        // The one operation left out: it ends the process under test.
        .args(["--exclude-path", "/system/action"])
        .current_dir(dir.path())
        .env("PYTHONPATH", &hooks)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("IPV6WGM_ST_BASE", &base)
        .env("IPV6WGM_ST_TOKEN", &token)
        .env("IPV6WGM_ST_USER_ID", user_id.to_string())
        .env("IPV6WGM_ST_USERNAME", "admin")
        .env("IPV6WGM_ST_PASSWORD", ADMIN_PW)
        .output()
        .expect("run st");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    println!(
        "schemathesis: {:.0} s, exit {}",
        started.elapsed().as_secs_f64(),
        out.status
    );
    assert!(
        out.status.success(),
        "schemathesis found problems (see above); stderr: {}\nserver: {}",
        String::from_utf8_lossy(&out.stderr),
        tail(&s.stderr_text(), 40)
    );
    // The run's token survived (the hooks kept revoking operations off it).
    assert_eq!(s.get("/auth/me", Some(&token)).status, 200);
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
