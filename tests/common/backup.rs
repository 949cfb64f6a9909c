//! Backups and restores driven through the API, as a client would: create and wait for the
//! archive, restore and poll the job until it is no longer `running`. Shared by the
//! API-level restore tests and the interop tests that restore under real peers.

use super::fixtures::{id_of, wait_for};
use super::Server;
use serde_json::{json, Value};

/// SHA-256 of `bytes` in lowercase hex, as backups state their checksums.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hmac_sha256::Hash::hash(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Waits until backup `id` is no longer running; its view.
pub fn backup_done(s: &Server, token: &str, id: i64) -> Value {
    wait_for(120, "the backup to finish", || {
        let b = s.read(&format!("/backup/backups/{id}"), token);
        (b["status"] != "running").then_some(b)
    })
}

/// A completed full backup; its view.
pub fn backup(s: &Server, token: &str, name: &str) -> Value {
    let r = s.post(
        "/backup/backups/create",
        Some(token),
        &json!({"name": name, "backup_type": "full"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let done = backup_done(s, token, id_of(r.data()));
    assert_eq!(done["status"], "completed", "{done}");
    done
}

/// Starts a restore of backup `id` (202 expected) and waits for it to finish; its view.
pub fn restore(s: &Server, token: &str, id: i64, body: Value) -> Value {
    let r = s.post(&format!("/backup/backups/{id}/restore"), Some(token), &body);
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.data()["status"], "running", "{}", r.body);
    let rid = id_of(r.data());
    wait_for(60, "the restore to finish", || {
        let r = s.get(&format!("/backup/restores/{rid}"), Some(token));
        // The restored database may not know the token any more: then the state is read
        // with a fresh login.
        let v = match r.status {
            200 => r.data().clone(),
            401 => s.read(&format!("/backup/restores/{rid}"), &s.admin()),
            other => panic!("restore status {other}: {}", r.body),
        };
        (v["status"] != "running").then_some(v)
    })
}

/// A WebSocket of `token`'s user subscribed to the `logs` channel.
pub fn logs_channel(s: &Server, token: &str) -> super::fixtures::Ws {
    let mut w = s
        .ws(&format!("/ws/connect?token={token}"))
        .unwrap_or_else(|status| panic!("handshake refused: {status}"));
    w.send(tungstenite::Message::text(
        r#"{"type":"subscribe","channel":"logs"}"#,
    ))
    .expect("send");
    w
}

/// The next `log_entry` of module `backup` on `w` whose action is `action`.
pub fn backup_event(w: &mut super::fixtures::Ws, action: &str) -> Value {
    for _ in 0..200 {
        let m = match w.read().expect("read") {
            tungstenite::Message::Text(t) => serde_json::from_str::<Value>(&t).expect("json"),
            tungstenite::Message::Close(f) => panic!("closed: {f:?}"),
            _ => continue,
        };
        if m["type"] == "log_entry" && m["data"]["action"] == action {
            return m["data"].clone();
        }
    }
    panic!("no {action} event");
}
