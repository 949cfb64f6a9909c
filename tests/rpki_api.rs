//! Route origin validation through the API with a VRP file source: the four RFC 6811
//! outcomes for a pool's prefixes, a changed file taking effect without a restart, the
//! health view, and the errors (no data: 503, no AS: 422, outside the pool: 422).

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const VRPS: &str = r#"{"roas":[
  {"prefix":"2001:db8:100::/48","maxLength":56,"asn":"AS65001","ta":"test"},
  {"prefix":"2001:db8:300::/48","maxLength":48,"asn":"AS65003","ta":"test"}]}"#;

fn start_with_vrps(vrps: &str, local_asn: u32) -> (Server, std::path::PathBuf) {
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("dir"));
    let file = dir.path().join("vrps.json");
    std::fs::write(&file, vrps).expect("write");
    let s = Server::start_with(Opts {
        admin_password: Some(ADMIN_PW.into()),
        dir: Some(dir),
        config: Some(format!(
            "[rpki]\nvrp_file = {:?}\n[bgp]\nlocal_asn = {local_asn}\n",
            file.display().to_string()
        )),
        ..Default::default()
    });
    (s, file)
}

fn validate(s: &Server, a: &str, pool: i64, body: Value) -> Resp {
    s.post(&format!("/ipv6/pools/{pool}/validate-rpki"), Some(a), &body)
}

#[test]
fn the_four_outcomes_and_a_live_reload() {
    let (s, file) = start_with_vrps(VRPS, 65001);
    let a = s.admin();
    let p1 = s.pool_id(&a, "one", "2001:db8:100::/48");
    let p2 = s.pool_id(&a, "two", "2001:db8:200::/48");
    let p3 = s.pool_id(&a, "three", "2001:db8:300::/48");

    // The pool itself, origin = bgp.local_asn (an empty body is fine).
    let r = s.call(
        "POST",
        &format!("/ipv6/pools/{p1}/validate-rpki"),
        Some(&a),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.data();
    assert_eq!(
        (
            &d["state"],
            &d["valid"],
            &d["reason"],
            &d["asn"],
            &d["max_length"]
        ),
        (
            &json!("valid"),
            &json!(true),
            &json!("valid"),
            &json!(65001),
            &json!(56)
        ),
        "{d}"
    );
    assert_eq!(d["origin_asn"], 65001);
    assert_eq!(d["vrp_prefix"], "2001:db8:100::/48");

    let d = validate(&s, &a, p1, json!({"prefix": "2001:db8:100:ab00::/56"}));
    assert_eq!(d.data()["state"], "valid", "{}", d.body);
    let d = validate(&s, &a, p1, json!({"prefix": "2001:db8:100:ab00::/64"}));
    assert_eq!(
        (
            &d.data()["state"],
            &d.data()["reason"],
            &d.data()["max_length"]
        ),
        (&json!("invalid"), &json!("invalid_length"), &json!(56)),
        "{}",
        d.body
    );
    let d = validate(&s, &a, p3, json!({}));
    assert_eq!(
        (&d.data()["state"], &d.data()["reason"], &d.data()["asn"]),
        (&json!("invalid"), &json!("invalid_asn"), &json!(65003)),
        "{}",
        d.body
    );
    let d = validate(&s, &a, p2, json!({}));
    assert_eq!(
        (&d.data()["state"], &d.data()["reason"], &d.data()["asn"]),
        (&json!("not_found"), &json!("not_found"), &Value::Null),
        "{}",
        d.body
    );
    // An explicit origin AS overrides the local one.
    let d = validate(&s, &a, p3, json!({"asn": 65003}));
    assert_eq!(d.data()["state"], "valid", "{}", d.body);

    // Health shows the source.
    let h = s.get("/status/health/detailed", Some(&a));
    let rpki = &h.data()["components"]["rpki"];
    assert_eq!(
        (
            &rpki["source"],
            &rpki["vrp_count"],
            &rpki["serial"],
            &rpki["status"]
        ),
        (&json!("file"), &json!(2), &json!(1), &json!("healthy")),
        "{rpki}"
    );
    assert!(rpki["last_update"].is_string(), "{rpki}");

    // A new file (new ROA for pool two, a new serial) takes effect without a restart.
    std::thread::sleep(Duration::from_millis(1100)); // a distinct mtime on coarse clocks
    std::fs::write(
        &file,
        VRPS.replace(
            r#"{"prefix":"2001:db8:300::/48""#,
            r#"{"prefix":"2001:db8:200::/48","maxLength":64,"asn":65001},{"prefix":"2001:db8:300::/48""#,
        ),
    )
    .expect("rewrite");
    wait_for(15, "the reload", || {
        (validate(&s, &a, p2, json!({})).data()["state"] == "valid").then_some(())
    });
    let h = s.get("/status/health/detailed", Some(&a));
    assert_eq!(h.data()["components"]["rpki"]["serial"], 2);
    assert_eq!(h.data()["components"]["rpki"]["vrp_count"], 3);

    // A broken file keeps the last good table and shows the error.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&file, "{\"roas\":[").expect("break");
    let rpki = wait_for(15, "the error", || {
        let h = s.get("/status/health/detailed", Some(&a));
        let rpki = h.data()["components"]["rpki"].clone();
        (rpki["status"] == "degraded").then_some(rpki)
    });
    assert!(
        rpki["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("VRP file")),
        "{rpki}"
    );
    assert_eq!(validate(&s, &a, p2, json!({})).data()["state"], "valid");
}

#[test]
fn errors_without_data_as_or_a_prefix_of_the_pool() {
    let (s, a) = Server::with_admin();
    let p = s.pool_id(&a, "one", "2001:db8:100::/48");
    // No source configured: 503, saying what to configure.
    let r = validate(&s, &a, p, json!({"asn": 65001}));
    r.assert_error(503, "SERVICE_UNAVAILABLE");
    assert!(r.body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("rpki.vrp_file")));
    // No AS anywhere: 422 on asn.
    validate(&s, &a, p, json!({})).assert_field_error(422, "VALIDATION_ERROR", "asn");
    let (s, _) = start_with_vrps(VRPS, 65001);
    let a = s.admin();
    let p = s.pool_id(&a, "one", "2001:db8:100::/48");
    validate(&s, &a, p, json!({"prefix": "2001:db8:999::/64"})).assert_field_error(
        422,
        "VALIDATION_ERROR",
        "prefix",
    );
    validate(&s, &a, p, json!({"prefix": "nope"})).assert_field_error(
        422,
        "VALIDATION_ERROR",
        "prefix",
    );
    validate(&s, &a, p, json!({"bogus": 1})).assert_error(422, "VALIDATION_ERROR");
    validate(&s, &a, 999, json!({})).assert_error(404, "RESOURCE_NOT_FOUND");
}
