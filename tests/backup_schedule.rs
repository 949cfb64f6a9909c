//! Backup schedules and retention through the API, against the real binary: schedules of the
//! configuration file (read-only) and of the API (CRUD, roles, kept across a restart), a
//! schedule firing (a new one is due at once) and a slot missed while the service was off
//! running once at start-up; retention by count and by age through `/system/config`, and
//! the size cap, each actually deleting archives when the next backup finishes; the
//! `schedules` rows of `/backup/stats`.

mod common;

use common::backup::{backup_event, logs_channel};
use common::fixtures::{id_of, wait_for};
use common::{Opts, Server, ADMIN_PW};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// Waits until backup `id` is no longer running; its view.
fn finished(s: &Server, token: &str, id: i64) -> Value {
    wait_for(60, "the backup to finish", || {
        let b = s.read(&format!("/backup/backups/{id}"), token);
        (b["status"] != "running").then_some(b)
    })
}

/// Makes a backup and waits for it; its view.
fn backup(s: &Server, token: &str, name: &str, kind: &str) -> Value {
    let r = s.post(
        "/backup/backups/create",
        Some(token),
        &json!({"name": name, "backup_type": kind}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let done = finished(s, token, id_of(r.data()));
    assert_eq!(done["status"], "completed", "{done}");
    done
}

fn ids(s: &Server, token: &str) -> Vec<i64> {
    let list = s.read("/backup/backups", token);
    list.as_array().expect("array").iter().map(id_of).collect()
}

fn backup_dir(s: &Server) -> PathBuf {
    s.data_dir().join("backups")
}

/// The backups a schedule made (origin `schedule:<name>`), once none of them is running.
fn scheduled(s: &Server, token: &str, name: &str) -> Vec<Value> {
    let origin = format!("schedule:{name}");
    wait_for(60, "the scheduled backups to finish", || {
        let list = s.read("/backup/backups", token);
        let mine: Vec<Value> = list
            .as_array()
            .expect("array")
            .iter()
            .filter(|b| b["origin"] == origin.as_str())
            .cloned()
            .collect();
        let done = !mine.is_empty() && mine.iter().all(|b| b["status"] != "running");
        done.then_some(mine)
    })
}

const NIGHTLY_OFF: &str = r#"
[[backup.schedules]]
name = "nightly"
frequency = "daily"
at = "03:30"
backup_type = "database"
enabled = false
"#;

#[test]
fn schedules_crud_roles_and_config_ones_read_only() {
    let (s, a) = Server::with_config(NIGHTLY_OFF);
    let (_, viewer) = s.user_with_role(&a, "vera", "viewer");
    let (_, manager) = s.user_with_role(&a, "mia", "manager");

    let list = s.read("/backup/schedules", &viewer);
    assert_eq!(
        list,
        json!([{"name": "nightly", "frequency": "daily", "at": "03:30", "weekday": null,
                "backup_type": "database", "enabled": false, "source": "config",
                "last_run": null, "next_run": null}])
    );
    // Writes are for admins.
    let new = json!({"name": "sunday", "frequency": "weekly", "weekday": "Sunday",
                     "at": "4:00", "enabled": false});
    for t in [&viewer, &manager] {
        s.post("/backup/schedules", Some(t), &new)
            .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    }
    let r = s.post("/backup/schedules", Some(&a), &new);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.data()["source"], "api");
    assert_eq!(r.data()["weekday"], "sun");
    assert_eq!(r.data()["at"], "04:00");
    assert_eq!(r.data()["backup_type"], "full");
    for (body, field) in [
        (json!({"name": "x", "frequency": "monthly"}), "frequency"),
        (json!({"frequency": "daily"}), "name"),
        (
            json!({"name": "x", "frequency": "daily", "at": "25:00"}),
            "at",
        ),
        (json!({"name": "x", "frequency": "weekly"}), "weekday"),
        (
            json!({"name": "x", "frequency": "daily", "time": "03:00"}),
            "time",
        ),
        (json!({"name": "NIGHTLY", "frequency": "daily"}), "name"),
        (json!({"name": "Sunday", "frequency": "daily"}), "name"),
        (
            json!({"name": "x", "frequency": "daily", "backup_type": "logs"}),
            "backup_type",
        ),
    ] {
        s.post("/backup/schedules", Some(&a), &body)
            .assert_field_error(422, "VALIDATION_ERROR", field);
    }

    // The configuration's schedule cannot be changed or deleted here.
    for r in [
        s.send(
            "PUT",
            "/backup/schedules/nightly",
            Some(&a),
            &json!({"enabled": true}),
        ),
        s.call("DELETE", "/backup/schedules/Nightly", Some(&a), None),
    ] {
        r.assert_error(409, "RESOURCE_CONFLICT");
        let m = r.body["error"]["message"].as_str().expect("message");
        assert!(m.contains("configuration file"), "{m}");
    }

    // Changes: the fields given, a rename to a name with a space.
    let r = s.send(
        "PUT",
        "/backup/schedules/SUNDAY",
        Some(&a),
        &json!({"name": "db weekly", "backup_type": "database", "at": "05:15"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (&r.data()["weekday"], &r.data()["at"]),
        (&json!("sun"), &json!("05:15"))
    );
    s.send(
        "PUT",
        "/backup/schedules/db%20weekly",
        Some(&manager),
        &json!({}),
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    s.send(
        "PUT",
        "/backup/schedules/db%20weekly",
        Some(&a),
        &json!({"weekday": "xyz"}),
    )
    .assert_field_error(422, "VALIDATION_ERROR", "weekday");
    s.send(
        "PUT",
        "/backup/schedules/db%20weekly",
        Some(&a),
        &json!({"name": "nightly"}),
    )
    .assert_field_error(422, "VALIDATION_ERROR", "name");
    let one = s.read("/backup/schedules/db%20weekly", &viewer);
    assert_eq!(one["backup_type"], "database");
    s.get("/backup/schedules/sunday", Some(&a))
        .assert_error(404, "RESOURCE_NOT_FOUND");

    // Kept in the backup directory, across a restart.
    let file = backup_dir(&s).join("schedules.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file)
        .expect("schedules.json")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir = s.dir.clone();
    s.stop();
    let s = Server::start_with(Opts {
        dir: Some(dir),
        config: Some(NIGHTLY_OFF.into()),
        admin_password: Some(ADMIN_PW.into()),
        ..Default::default()
    });
    let a = s.admin();
    let names: Vec<(Value, Value)> = s
        .read("/backup/schedules", &a)
        .as_array()
        .expect("array")
        .iter()
        .map(|v| (v["name"].clone(), v["source"].clone()))
        .collect();
    assert_eq!(
        names,
        [
            (json!("nightly"), json!("config")),
            (json!("db weekly"), json!("api"))
        ]
    );
    let (_, viewer) = s.user_with_role(&a, "vic", "viewer");
    s.call(
        "DELETE",
        "/backup/schedules/db%20weekly",
        Some(&viewer),
        None,
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    let r = s.call("DELETE", "/backup/schedules/db%20weekly", Some(&a), None);
    assert_eq!(r.status, 200, "{}", r.body);
    s.get("/backup/schedules/db%20weekly", Some(&a))
        .assert_error(404, "RESOURCE_NOT_FOUND");
    assert_eq!(
        s.read("/backup/schedules", &a).as_array().map(Vec::len),
        Some(1)
    );
    assert!(ids(&s, &a).is_empty(), "disabled schedules made no backup");
}

#[test]
fn a_new_schedule_fires_at_once_records_its_run_and_shows_in_stats() {
    let (s, a) = Server::with_admin();
    // Started without --config: a config schedule would fail at every slot.
    s.post(
        "/backup/schedules",
        Some(&a),
        &json!({"name": "cfg", "frequency": "daily", "backup_type": "config"}),
    )
    .assert_field_error(422, "VALIDATION_ERROR", "backup_type");
    let r = s.post(
        "/backup/schedules",
        Some(&a),
        &json!({"name": "db", "frequency": "hourly", "at": ":07", "backup_type": "database"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let made = scheduled(&s, &a, "db");
    assert_eq!(made.len(), 1, "{made:?}");
    let b = &made[0];
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(b["type"], "database");
    assert!(
        b["name"].as_str().is_some_and(|n| n.starts_with("db 20")),
        "{b}"
    );
    let v = wait_for(10, "last_run recorded", || {
        let v = s.read("/backup/schedules/db", &a);
        v["last_run"].is_string().then_some(v)
    });
    let last = v["last_run"].as_str().expect("last_run");
    let next = v["next_run"].as_str().expect("next_run");
    assert!(next > last && next.ends_with(":07:00Z"), "{v}");
    let stats = s.read("/backup/stats", &a);
    assert_eq!(
        stats["schedules"],
        json!({"db": {"type": "hourly", "backup_type": "database", "enabled": true,
                      "last_run": last, "next_run": next}})
    );
    assert_eq!(stats["total_backups"], 1);
    assert!(s
        .stderr_text()
        .contains("backup schedule \"db\" started backup"));
}

const NIGHTLY: &str = r#"
[[backup.schedules]]
name = "nightly"
frequency = "daily"
at = "00:00"
backup_type = "database"
"#;

#[test]
fn a_slot_missed_while_the_service_was_off_runs_once_at_start_up() {
    let (s, a) = Server::with_config(NIGHTLY);
    // Never ran: runs at start.
    assert_eq!(scheduled(&s, &a, "nightly").len(), 1);
    let first = wait_for(10, "last_run recorded", || {
        let v = s.read("/backup/schedules/nightly", &a);
        v["last_run"].as_str().map(str::to_string)
    });
    let dir: Arc<tempfile::TempDir> = s.dir.clone();
    let file = backup_dir(&s).join("schedules.json");
    s.stop();
    // The service was off for three days: two slots were missed entirely.
    let mut stored: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("schedules.json")).expect("json");
    let last = stored["last_run"]["nightly"].as_i64().expect("last_run");
    stored["last_run"]["nightly"] = json!(last - 3 * 86_400);
    std::fs::write(&file, serde_json::to_vec(&stored).expect("json")).expect("write");
    let s = Server::start_with(Opts {
        dir: Some(dir),
        config: Some(NIGHTLY.into()),
        admin_password: Some(ADMIN_PW.into()),
        ..Default::default()
    });
    let a = s.admin();
    let made = wait_for(60, "the missed slot's backup", || {
        let made = scheduled(&s, &a, "nightly");
        (made.len() >= 2).then_some(made)
    });
    assert_eq!(made.len(), 2, "once, not once per missed slot: {made:?}");
    assert!(
        s.stderr_text()
            .contains("2 slots passed while the service was off"),
        "{}",
        s.stderr_text()
    );
    let v = wait_for(10, "the new last_run", || {
        let v = s.read("/backup/schedules/nightly", &a);
        (v["last_run"].as_str() >= Some(first.as_str())).then_some(v)
    });
    assert!(
        v["next_run"]
            .as_str()
            .is_some_and(|n| n.ends_with("T00:00:00Z")),
        "{v}"
    );
}

#[test]
fn retention_by_count_and_by_age_deletes_archives_when_the_next_backup_finishes() {
    let (s, a) = Server::with_admin();
    let (_, manager) = s.user_with_role(&a, "mia", "manager");
    assert_eq!(s.read("/system/config", &a)["backup_retention"], 30);
    for (body, field) in [
        (json!({"backup_retention": 0}), "backup_retention"),
        (json!({"backup_retention": "7"}), "backup_retention"),
        (json!({"backup_retention": {}}), "backup_retention"),
        (
            json!({"backup_retention": {"keep_last": 0}}),
            "backup_retention.keep_last",
        ),
        (
            json!({"backup_retention": {"keep": 2}}),
            "backup_retention.keep",
        ),
    ] {
        s.send("PUT", "/system/config", Some(&a), &body)
            .assert_field_error(422, "VALIDATION_ERROR", field);
    }
    s.send(
        "PUT",
        "/system/config",
        Some(&manager),
        &json!({"backup_retention": 2}),
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");

    let b1 = backup(&s, &a, "one", "database");
    let b2 = backup(&s, &a, "two", "database");
    let b3 = backup(&s, &a, "three", "database");
    let r = s.send(
        "PUT",
        "/system/config",
        Some(&a),
        &json!({"backup_retention": {"keep_last": 2}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["backup_retention"], json!({"keep_last": 2}));
    // Applied when a backup finishes, not when the setting changes.
    assert_eq!(ids(&s, &a).len(), 3);
    let mut w = logs_channel(&s, &a);
    let b4 = backup(&s, &a, "four", "database");
    assert_eq!(ids(&s, &a), [id_of(&b4), id_of(&b3)]);
    for gone in [&b1, &b2] {
        let f = backup_dir(&s).join(gone["file_path"].as_str().expect("file"));
        assert!(!f.exists(), "{} left", f.display());
        // Each removal is an event (log store and the WebSocket `logs` channel), oldest first.
        let e = backup_event(&mut w, "backup.pruned");
        assert_eq!(
            e["target"],
            format!("backup/backups/{}", id_of(gone)),
            "{e}"
        );
    }
    assert!(s.stderr_text().contains("removed by retention"));
    let logs = s.read("/logs?module=backup&size=100", &a);
    let pruned = logs
        .as_object()
        .and_then(|o| o.values().find_map(Value::as_array))
        .or(logs.as_array())
        .map_or(0, |items| {
            items
                .iter()
                .filter(|l| l["action"] == "backup.pruned")
                .count()
        });
    assert_eq!(pruned, 2, "{logs}");

    // By age: backup 3 was made 40 days ago (its entry says so: the directory is the
    // catalogue), so 30 days removes it once the next backup finishes.
    let entry = backup_dir(&s).join(format!("backup-{}.json", id_of(&b3)));
    let mut e: Value =
        serde_json::from_slice(&std::fs::read(&entry).expect("entry")).expect("json");
    e["created_at"] = json!(e["created_at"].as_i64().expect("created_at") - 40 * 86_400);
    std::fs::write(&entry, serde_json::to_vec(&e).expect("json")).expect("write");
    let r = s.send(
        "PUT",
        "/system/config",
        Some(&a),
        &json!({"backup_retention": 30}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let b5 = backup(&s, &a, "five", "database");
    assert_eq!(ids(&s, &a), [id_of(&b5), id_of(&b4)]);
    let f = backup_dir(&s).join(b3["file_path"].as_str().expect("file"));
    assert!(!f.exists());
    // The setting survives a restart.
    let (s, a) = s.restart();
    assert_eq!(s.read("/system/config", &a)["backup_retention"], 30);
}

/// Hex text that deflate cannot shrink below about half: a config file that makes every
/// full backup some hundreds of KiB.
fn bulky_comment(bytes: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = String::with_capacity(bytes + bytes / 60);
    while out.len() < bytes {
        out.push_str("# ");
        for _ in 0..29 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.push_str(&format!("{:02x}", x as u8));
        }
        out.push('\n');
    }
    out
}

#[test]
fn the_size_cap_removes_the_oldest_but_never_the_newest_completed() {
    let config = format!("[backup]\nmax_size_mb = 1\n{}", bulky_comment(1_400_000));
    let (s, a) = Server::with_config(&config);
    let b1 = backup(&s, &a, "one", "full");
    let size = b1["size_bytes"].as_u64().expect("size");
    assert!(
        (600_000..1_048_576).contains(&size),
        "each backup is over half the cap: {size}"
    );
    // Alone it fits; with the second the directory is over 1 MiB: the oldest goes.
    let b2 = backup(&s, &a, "two", "full");
    assert_eq!(ids(&s, &a), [id_of(&b2)]);
    assert!(!backup_dir(&s)
        .join(b1["file_path"].as_str().expect("file"))
        .exists());
    let stats = s.read("/backup/stats", &a);
    assert_eq!(stats["total_size_bytes"], b2["size_bytes"]);
    assert_eq!(stats["schedules"], json!({}));
}
