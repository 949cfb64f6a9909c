//! The `/bgp` contract without a peer: sessions and announcements CRUD, validation errors
//! naming the field, write-only passwords, roles, batch actions, and live state that is
//! real (a session to a port where nobody listens is not established and says why).

mod common;

use common::peers::{free_port, wait_for};
use common::*;
use serde_json::{json, Value};

fn server() -> (Server, String) {
    let s = Server::start_with(Opts {
        admin_password: Some(ADMIN_PW.into()),
        config: Some("[bgp]\nlocal_asn = 65001\nconnect_retry_secs = 1\n".into()),
        ..Default::default()
    });
    let a = s.admin();
    (s, a)
}

fn create_session(s: &Server, a: &str, body: Value) -> Value {
    let r = s.post("/bgp/sessions", Some(a), &body);
    assert_eq!(r.status, 201, "{}", r.body);
    r.data().clone()
}

/// A session to 127.0.0.1 on a port where nothing listens (and we listen elsewhere).
fn unreachable(name: &str) -> Value {
    json!({"name": name, "neighbor": "127.0.0.1", "remote_as": 65002,
           "local_port": free_port(), "remote_port": free_port()})
}

#[test]
fn sessions_crud_with_defaults_and_a_hidden_password() {
    let (s, a) = server();
    let mut body = unreachable("up1");
    body["password"] = json!("s3cret");
    body["description"] = json!("transit");
    let v = create_session(&s, &a, body);
    assert_eq!(v["password"], "***");
    assert_eq!(v["local_as"], 65001, "from [bgp] local_asn");
    assert_eq!(
        (v["hold_time"].as_u64(), v["passive"].as_bool()),
        (Some(90), Some(false))
    );
    assert_eq!(v["max_prefixes"], 250000);
    assert!(!s
        .get("/bgp/sessions", Some(&a))
        .body
        .to_string()
        .contains("s3cret"));
    let id = v["id"].as_i64().unwrap();

    let r = s.get("/bgp/sessions", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 1);
    assert_eq!(r.data()["sessions"][0]["name"], "up1");

    // PATCH: only the given fields; "***" keeps the password.
    let path = format!("/bgp/sessions/{id}");
    let r = s.send(
        "PATCH",
        &path,
        Some(&a),
        &json!({"description": null, "password": "***",
        "hold_time": 0}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["description"], Value::Null);
    assert_eq!(r.data()["password"], "***");
    assert_eq!(r.data()["hold_time"], 0);
    let db = open_db(&s.data_dir());
    let pw: String = db
        .query_row("SELECT password FROM bgp_sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pw, "s3cret");

    let r = s.send("DELETE", &path, Some(&a), &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    s.get(&path, Some(&a))
        .assert_error(404, "RESOURCE_NOT_FOUND");
}

#[test]
fn session_validation_errors_name_the_field() {
    let (s, a) = server();
    let cases = [
        (json!({"neighbor": "192.0.2.1", "remote_as": 1}), "name"),
        (
            json!({"name": "x", "neighbor": "nope", "remote_as": 1}),
            "neighbor",
        ),
        (
            json!({"name": "x", "neighbor": "192.0.2.1", "remote_as": 0}),
            "remote_as",
        ),
        (
            json!({"name": "x", "neighbor": "192.0.2.1", "remote_as": "65001"}),
            "remote_as",
        ),
        (
            json!({"name": "x", "neighbor": "192.0.2.1", "remote_as": 1, "hold_time": 1}),
            "hold_time",
        ),
        (
            json!({"name": "x", "neighbor": "192.0.2.1", "remote_as": 1, "local_port": 70000}),
            "local_port",
        ),
        (
            json!({"name": "x", "neighbor": "192.0.2.1", "remote_as": 1, "bogus": 1}),
            "bogus",
        ),
    ];
    for (body, field) in cases {
        let r = s.post("/bgp/sessions", Some(&a), &body);
        r.assert_field_error(422, "VALIDATION_ERROR", field);
    }
    create_session(&s, &a, unreachable("dup"));
    let mut again = unreachable("DUP");
    again["neighbor"] = json!("127.0.0.9");
    s.post("/bgp/sessions", Some(&a), &again)
        .assert_field_error(409, "RESOURCE_CONFLICT", "name");
    assert_eq!(
        s.get("/bgp/sessions", Some(&a)).data()["pagination"]["total"],
        1
    );
}

#[test]
fn without_a_local_as_a_session_needs_one() {
    let s = Server::start();
    let a = s.admin();
    s.post("/bgp/sessions", Some(&a), &unreachable("x"))
        .assert_field_error(422, "VALIDATION_ERROR", "local_as");
    let mut body = unreachable("x");
    body["local_as"] = json!(4_200_000_001u32);
    let v = create_session(&s, &a, body);
    assert_eq!(v["local_as"], 4_200_000_001u32);
}

#[test]
fn an_unreachable_peer_is_not_established_and_says_why() {
    let (s, a) = server();
    let v = create_session(&s, &a, unreachable("down"));
    let id = v["id"].as_i64().unwrap();
    let v = wait_for(10, "a connect error", || {
        let v = s
            .get(&format!("/bgp/sessions/{id}"), Some(&a))
            .data()
            .clone();
        v["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("refused"))
            .then_some(v)
    });
    assert!(
        ["connect", "active", "idle"].contains(&v["status"].as_str().unwrap()),
        "{v}"
    );
    assert_eq!(v["uptime"], 0);
    let m = s.get("/monitoring/bgp/sessions", Some(&a));
    assert_eq!(m.status, 200, "{}", m.body);
    assert_eq!(m.data()[0]["session_id"], id);

    // stop persists enabled=false and the session goes idle; start brings it back.
    let r = s.post(&format!("/bgp/sessions/{id}/stop"), Some(&a), &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["enabled"], false);
    wait_for(5, "idle", || {
        (s.get(&format!("/bgp/sessions/{id}"), Some(&a)).data()["status"] == "idle").then_some(())
    });
    let r = s.post(&format!("/bgp/sessions/{id}/start"), Some(&a), &json!({}));
    assert_eq!(r.data()["enabled"], true);
}

#[test]
fn batch_actions_report_per_session() {
    let (s, a) = server();
    let id = create_session(&s, &a, unreachable("b1"))["id"]
        .as_i64()
        .unwrap();
    let r = s.post(
        "/bgp/sessions/batch/restart",
        Some(&a),
        &json!([id, id.to_string(), 999]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.data()["succeeded"].as_u64(), r.data()["failed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(r.data()["results"][2]["success"], false);
    s.post("/bgp/sessions/batch/reload", Some(&a), &json!(["x"]))
        .assert_field_error(422, "VALIDATION_ERROR", "[0]");
    s.post("/bgp/sessions/batch/reload", Some(&a), &json!({"ids": [1]}))
        .assert_error(422, "VALIDATION_ERROR");
}

#[test]
fn announcements_crud_and_validation() {
    let (s, a) = server();
    let r = s.post(
        "/bgp/announcements",
        Some(&a),
        &json!({"prefix": "2001:db8:100::/48", "as_path": "65010", "community": "65001:1 65001:1:2",
                "description": "customer"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.data().clone();
    assert_eq!(v["asn"], 65010);
    assert_eq!(v["status"], "pending", "no established session");
    assert_eq!(v["rpki"], Value::Null, "no RPKI data");
    let id = v["id"].as_i64().unwrap();

    s.post(
        "/bgp/announcements",
        Some(&a),
        &json!({"prefix": "2001:db8:100::/48"}),
    )
    .assert_field_error(409, "RESOURCE_CONFLICT", "prefix");
    for (body, field) in [
        (json!({"prefix": "2001:db8::1/48"}), "prefix"),
        (
            json!({"prefix": "192.0.2.0/24", "next_hop": "2001:db8::1"}),
            "next_hop",
        ),
        (
            json!({"prefix": "192.0.2.0/24", "community": "70000:1"}),
            "community",
        ),
        (
            json!({"prefix": "192.0.2.0/24", "session_id": 42}),
            "session_id",
        ),
        (
            json!({"prefix": "192.0.2.0/24", "as_path": "1 2", "asn": 3}),
            "asn",
        ),
    ] {
        s.post("/bgp/announcements", Some(&a), &body)
            .assert_field_error(422, "VALIDATION_ERROR", field);
    }
    let path = format!("/bgp/announcements/{id}");
    let r = s.send("PATCH", &path, Some(&a), &json!({"enabled": false}));
    assert_eq!(r.data()["status"], "disabled");
    let r = s.get("/bgp/announcements?enabled=false", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 1);
    let r = s.send("DELETE", &path, Some(&a), &json!({}));
    assert_eq!(r.status, 200);
    s.get(&path, Some(&a))
        .assert_error(404, "RESOURCE_NOT_FOUND");
}

#[test]
fn viewers_read_but_cannot_change_bgp() {
    let (s, a) = server();
    let (_, viewer) = s.user_with_role(&a, "vera", "viewer");
    assert_eq!(s.get("/bgp/sessions", Some(&viewer)).status, 200);
    s.post("/bgp/sessions", Some(&viewer), &unreachable("x"))
        .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    s.post(
        "/bgp/announcements",
        Some(&viewer),
        &json!({"prefix": "192.0.2.0/24"}),
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
}

/// A burst of changes ends on the last one. Configuration used to travel through the
/// session's 16-command queue, where a change was dropped (with a 200 to the client) when
/// the task was too busy to keep up — seen under schemathesis, not reproducible on demand
/// here; it is now a slot the task reads when free, so no change can be dropped. This test
/// guards the outcome: after 40 quick changes and a disable, the session is idle.
#[test]
fn a_burst_of_session_changes_ends_on_the_last_one() {
    let (s, a) = server();
    // A "peer" that accepts the TCP connection and never sends or reads a byte.
    let peer = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = peer.local_addr().expect("addr").port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for c in peer.incoming().map_while(Result::ok) {
            keep.lock().expect("lock").push(c);
        }
    });
    let mut body = unreachable("busy");
    body["remote_port"] = json!(port);
    let id = create_session(&s, &a, body)["id"].as_i64().expect("id");
    let path = format!("/bgp/sessions/{id}");
    wait_for(15, "OpenSent with the silent peer", || {
        (s.get(&path, Some(&a)).data()["status"] == "opensent").then_some(())
    });
    for i in 0..40 {
        let r = s.send("PATCH", &path, Some(&a), &json!({"remote_as": 65100 + i}));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = s.send("PATCH", &path, Some(&a), &json!({"enabled": false}));
    assert_eq!(r.status, 200, "{}", r.body);
    // Disabled: the running session goes idle and stays there.
    wait_for(30, "the last change (disabled) applied", || {
        let v = s.get(&path, Some(&a));
        (v.data()["status"] == "idle").then_some(())
    });
    assert!(
        !s.stderr_text().contains("command dropped"),
        "{}",
        s.stderr_text()
    );
}
