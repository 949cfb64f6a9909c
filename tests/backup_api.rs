//! Backups through the API and the CLI: a backup is a gzipped tarball that GNU tar reads,
//! `manifest.json` first, each member's SHA-256 as the manifest says, the database a
//! consistent SQLite file with the state in it; the list, stats, roles, validation, delete;
//! the CLI with the service stopped, and its refusal while the service runs.

mod common;

use common::backup::{backup_done, sha256_hex};
use common::fixtures::{id_of, run_bin};
use common::Server;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn tar(args: &[&str]) -> String {
    let out = Command::new("tar").args(args).output().expect("run tar");
    assert!(
        out.status.success(),
        "tar {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_full_backup_is_a_tarball_gnu_tar_reads_with_its_manifest_first() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), Some("fd00::1/64"));
    s.create_client(&a, json!({"server_id": sid, "name": "phone"}));

    // The seed's way: query parameters.
    let r = s.post(
        "/backup/backups/create?name=Manual%20Backup&backup_type=full&metadata=%7B%22by%22%3A%22test%22%7D",
        Some(&a),
        &json!({}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.data()["status"], "running");
    assert_eq!(r.data()["type"], "full");
    assert_eq!(r.data()["name"], "Manual Backup");
    assert_eq!(r.data()["metadata"], json!({"by": "test"}));
    let id = id_of(r.data());
    let done = backup_done(&s, &a, id);
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done["completed_at"].is_string());
    assert_eq!(done["checksum_algorithm"], "sha256");

    let d = s.get(&format!("/backup/backups/{id}/download"), Some(&a));
    assert_eq!(d.status, 200);
    assert_eq!(d.header("content-type"), Some("application/gzip"));
    assert_eq!(d.header("cache-control"), Some("no-store"));
    let file_path = done["file_path"].as_str().expect("file_path");
    assert!(
        d.header("content-disposition")
            .is_some_and(|c| c.contains(file_path)),
        "{:?}",
        d.headers
    );
    assert_eq!(done["size_bytes"], d.raw_body.len());
    assert_eq!(done["checksum"], sha256_hex(&d.raw_body));

    let tmp = tempfile::tempdir().expect("tmp");
    let archive = tmp.path().join("backup.tar.gz");
    std::fs::write(&archive, &d.raw_body).expect("write");
    let archive = archive.to_str().expect("utf-8");
    let listing = tar(&["-tvzf", archive]);
    let lines: Vec<&str> = listing.lines().collect();
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().last().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        ["manifest.json", "database/ipv6wgm.db", "files/jwt.key"],
        "{listing}"
    );
    assert!(
        lines.iter().all(|l| l.starts_with("-rw-------")),
        "{listing}"
    );

    let out = tmp.path().join("x");
    std::fs::create_dir(&out).expect("mkdir");
    tar(&["-xzf", archive, "-C", out.to_str().expect("utf-8")]);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["type"], "full", "{manifest}");
    assert_eq!(manifest["format"], 1, "{manifest}");
    assert!(manifest["schema_version"].as_i64().is_some_and(|v| v > 0));
    let members: BTreeMap<String, Value> = manifest["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| (m["name"].as_str().expect("name").to_string(), m.clone()))
        .collect();
    assert_eq!(members.len(), 2, "{manifest}");
    for (name, m) in &members {
        let bytes = std::fs::read(out.join(name)).expect("member");
        assert_eq!(m["size"], bytes.len(), "{name}");
        assert_eq!(m["sha256"], sha256_hex(&bytes), "{name}");
    }
    assert_eq!(
        std::fs::read(out.join("files/jwt.key")).expect("key"),
        std::fs::read(s.data_dir().join("jwt.key")).expect("key"),
    );
    let db = rusqlite::Connection::open(out.join("database/ipv6wgm.db")).expect("db");
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(ok, "ok");
    let clients: i64 = db
        .query_row("SELECT count(*) FROM wg_clients", [], |r| r.get(0))
        .expect("clients");
    assert_eq!(clients, 1);
    let admin: i64 = db
        .query_row(
            "SELECT count(*) FROM users WHERE username = 'admin'",
            [],
            |r| r.get(0),
        )
        .expect("users");
    assert_eq!(admin, 1);
}

#[test]
fn list_stats_roles_validation_and_delete() {
    let (s, a) = Server::with_admin();
    let (_, viewer) = s.user_with_role(&a, "vera", "viewer");
    let (_, manager) = s.user_with_role(&a, "mia", "manager");

    let create = |token: &str, body: Value| s.post("/backup/backups/create", Some(token), &body);
    create(&viewer, json!({"name": "x"})).assert_error(403, "INSUFFICIENT_PERMISSIONS");
    create(&a, json!({})).assert_field_error(422, "VALIDATION_ERROR", "name");
    create(&a, json!({"name": "x", "backup_type": "everything"})).assert_field_error(
        422,
        "VALIDATION_ERROR",
        "backup_type",
    );
    create(&a, json!({"name": "x", "metadata": [1]})).assert_field_error(
        422,
        "VALIDATION_ERROR",
        "metadata",
    );
    create(&a, json!({"name": "x", "colour": "red"})).assert_field_error(
        422,
        "VALIDATION_ERROR",
        "colour",
    );
    create(&a, json!({"name": " "})).assert_field_error(422, "VALIDATION_ERROR", "name");
    // A bad query parameter is refused even when the body gives a good value.
    for (query, field) in [
        ("name=", "name"),
        ("backup_type=bogus", "backup_type"),
        ("metadata=%5B1%5D", "metadata"),
        ("metadata=nope", "metadata"),
    ] {
        s.post(
            &format!("/backup/backups/create?{query}"),
            Some(&a),
            &json!({"name": "ok", "backup_type": "full", "metadata": {}}),
        )
        .assert_field_error(422, "VALIDATION_ERROR", field);
    }

    let r = create(
        &manager,
        json!({"name": "db only", "backup_type": "database"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let one = id_of(r.data());
    assert_eq!(backup_done(&s, &a, one)["status"], "completed");
    // Started without --config: a config backup would hold nothing.
    create(&a, json!({"name": "config", "backup_type": "config"})).assert_field_error(
        422,
        "VALIDATION_ERROR",
        "backup_type",
    );
    let r = create(&a, json!({"name": "key", "backup_type": "files"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let two = id_of(r.data());
    let cfg = backup_done(&s, &a, two);
    assert_eq!(cfg["status"], "completed", "{cfg}");

    let list = s.read("/backup/backups", &viewer);
    let ids: Vec<i64> = list.as_array().expect("array").iter().map(id_of).collect();
    assert_eq!(ids, [two, one], "newest first");
    let stats = s.read("/backup/stats", &viewer);
    assert_eq!(stats["total_backups"], 2, "{stats}");
    assert_eq!(stats["successful_backups"], 2);
    assert_eq!(stats["failed_backups"], 0);
    assert_eq!(stats["running_backups"], json!([]));
    let total = list
        .as_array()
        .expect("array")
        .iter()
        .map(|b| b["size_bytes"].as_u64().expect("size"))
        .sum::<u64>();
    assert_eq!(stats["total_size_bytes"], total);

    // Archives hold every key: only admins download them.
    s.get(&format!("/backup/backups/{one}/download"), Some(&manager))
        .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    s.call(
        "DELETE",
        &format!("/backup/backups/{one}"),
        Some(&viewer),
        None,
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    let r = s.call(
        "DELETE",
        &format!("/backup/backups/{one}"),
        Some(&manager),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // An event (process log, log store, WebSocket `logs` channel) besides the audit entry.
    let said = format!("backup.deleted: backup {one} (");
    assert!(s.stderr_text().contains(&said), "no {said:?} in the log");
    s.get(&format!("/backup/backups/{one}"), Some(&a))
        .assert_error(404, "RESOURCE_NOT_FOUND");
    s.get(&format!("/backup/backups/{one}/download"), Some(&a))
        .assert_error(404, "RESOURCE_NOT_FOUND");
    assert_eq!(s.read("/backup/stats", &a)["total_backups"], 1);
    let files: Vec<String> = std::fs::read_dir(s.data_dir().join("backups"))
        .expect("dir")
        .map(|d| d.expect("entry").file_name().to_string_lossy().into_owned())
        // latest.tar.gz: a hard link to the newest backup (backup::latest), not an archive.
        .filter(|n| !n.starts_with('.') && n != "next-id" && !n.starts_with("latest."))
        .collect();
    assert_eq!(files.len(), 2, "one archive and its entry left: {files:?}");
}

fn cli(data_dir: &Path, args: &[&str]) -> std::process::Output {
    let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"backup"];
    for a in args {
        all.push(a);
    }
    all.push(&"--data-dir");
    all.push(&data_dir);
    run_bin(&all)
}

#[test]
fn the_cli_backs_up_with_the_service_stopped_and_refuses_while_it_runs() {
    let (s, a) = Server::with_admin();
    s.create_client(
        &a,
        json!({"server_id": s.wg_server_id(&a, "home", Some("10.0.0.1/24"), None), "name": "c"}),
    );
    let dir = s.data_dir();
    let busy = cli(&dir, &["create", "--type", "database"]);
    assert!(!busy.status.success());
    let err = String::from_utf8_lossy(&busy.stderr);
    assert!(err.contains("the service is running"), "{err}");

    let data = s.dir.clone();
    assert!(s.stop().success(), "clean stop");
    let made = cli(
        &dir,
        &["create", "--type", "database", "--name", "before upgrade"],
    );
    let out = String::from_utf8_lossy(&made.stdout);
    assert!(
        made.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert!(out.contains("completed"), "{out}");
    let listed = cli(&dir, &["list"]);
    let list = String::from_utf8_lossy(&listed.stdout);
    assert!(
        list.contains("before upgrade") && list.contains("database"),
        "{list}"
    );

    // `backup verify` checks an archive; a damaged (cut) copy is refused.
    let archive = std::fs::read_dir(dir.join("backups"))
        .expect("dir")
        .map(|d| d.expect("entry").path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("an archive");
    let verify = |path: &Path| run_bin(&[&"backup", &"verify", &path]);
    let ok = verify(&archive);
    let said = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        said.contains("intact") && said.contains("database/ipv6wgm.db"),
        "{said}"
    );
    // Cut short. (Not a flipped byte: about one flip in twenty lands where deflate decodes
    // the same bytes — unused code lengths, header fields — so the content is intact.)
    let mut bytes = std::fs::read(&archive).expect("read");
    bytes.truncate(bytes.len() / 2);
    let damaged = dir.join("damaged.tar.gz");
    std::fs::write(&damaged, &bytes).expect("write");
    let bad = verify(&damaged);
    assert!(
        !bad.status.success(),
        "a damaged archive is refused: {}",
        String::from_utf8_lossy(&bad.stdout)
    );
    assert!(!bad.stderr.is_empty());
    drop(data);
}
