//! Restores through the API and the CLI: a round trip brings every object back exactly; a
//! backup moves to a second router keeping that router's local settings; hostile archives
//! are refused with 422 and change nothing; a restore or backup killed (SIGKILL) at its
//! worst moment leaves the old state or the new, and the lists say what happened.

mod common;

use common::backup::{backup, backup_event, logs_channel, restore, sha256_hex};
use common::fixtures::{id_of, run_bin};
use common::{Opts, Server, ADMIN_PW};
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;

/// Fields that come from the running engines, not from the database.
const LIVE: &[&str] = &[
    "last_handshake",
    "rx_bytes",
    "tx_bytes",
    "transfer_rx",
    "transfer_tx",
    "endpoint_seen",
    "uptime",
    "uptime_seconds",
    "state",
    "last_error",
    "prefixes_received",
    "prefixes_sent",
    "last_state_change",
    "connected",
    "last_seen",
    // set by logging in (the tests log in again after a restart) and by session events
    "last_login",
    "last_status_change",
];

/// The two states are the same, listing by listing.
fn same(got: &[(String, Value)], want: &[(String, Value)], when: &str) {
    assert_eq!(got.len(), want.len(), "{when}");
    for ((path, w), (_, g)) in want.iter().zip(got) {
        assert_eq!(g, w, "{path} differs {when}");
    }
}

fn strip_live(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in LIVE {
                m.remove(*k);
            }
            m.values_mut().for_each(strip_live);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_live),
        _ => {}
    }
}

/// What the API lists of everything a backup holds.
fn state(s: &Server, token: &str) -> Vec<(String, Value)> {
    let mut paths: Vec<String> = [
        "/users?size=100",
        "/wireguard/servers",
        "/wireguard/clients?size=100",
        "/ipv6/pools",
        "/ipv6/allocations?size=100",
        "/bgp/sessions",
        "/bgp/announcements",
        "/monitoring/alerts/rules",
        "/system/config",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    let pools = s.read("/ipv6/pools", token);
    for p in pools.as_array().into_iter().flatten() {
        paths.push(format!("/ipv6/pools/{}/whitelist", id_of(p)));
    }
    paths
        .into_iter()
        .map(|p| {
            let mut v = s.read(&p, token);
            strip_live(&mut v);
            if p == "/system/config" {
                if let Some(m) = v.as_object_mut() {
                    m.remove("updated_at");
                }
            }
            (p, v)
        })
        .collect()
}

/// A router with some of everything: users, a WireGuard server with clients, a pool with
/// allocations (one routed to a client) and a whitelist, a BGP session and announcement, an
/// alert rule, stored settings.
fn furnish(s: &Server, a: &str) {
    s.user_with_role(a, "operator", "manager");
    let sid = s.wg_server_id(a, "home", Some("10.70.0.1/24"), Some("fd70::1/64"));
    let pool = s.pool_id(a, "customers", "2001:db8:7000::/40");
    s.create(
        &format!("/ipv6/pools/{pool}/whitelist"),
        a,
        &json!({"prefix": "2001:db8:7000::/44", "description": "first block"}),
    );
    let phone = s.create_client(a, json!({"server_id": sid, "name": "phone"}));
    s.create_client(
        a,
        json!({"server_id": sid, "name": "laptop", "enabled": false}),
    );
    s.create(
        &format!("/ipv6/pools/{pool}/allocate"),
        a,
        &json!({"client_name": "phone", "client_id": id_of(&phone)}),
    );
    for i in 0..3 {
        s.create(
            &format!("/ipv6/pools/{pool}/allocate"),
            a,
            &json!({"client_name": format!("site-{i}")}),
        );
    }
    s.create_bgp_session(
        a,
        json!({"name": "upstream", "neighbor": "192.0.2.70", "remote_as": 65070,
               "local_as": 65001, "passive": true}),
    );
    s.create(
        "/bgp/announcements",
        a,
        &json!({"prefix": "2001:db8:7000::/40", "description": "ours"}),
    );
    s.create(
        "/monitoring/alerts/rules",
        a,
        &json!({"id": "mem_high", "name": "memory", "metric_name": "system.memory.usage",
                "condition": ">", "threshold": 95, "level": "warning", "cooldown_minutes": 5}),
    );
    let r = s.send(
        "PUT",
        "/system/config",
        Some(a),
        &json!({"log_level": "DEBUG", "api_rate_limit": 5000}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Changes and deletes some of everything [`furnish`] made.
fn disturb(s: &Server, a: &str) {
    let phone = list(&s.read("/wireguard/clients?size=100", a))
        .into_iter()
        .find(|c| c["name"] == "phone")
        .expect("phone");
    let r = s.send(
        "DELETE",
        &format!("/wireguard/clients/{}", id_of(&phone)),
        Some(a),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let sid = s.wg_server_id(a, "office", Some("10.71.0.1/24"), None);
    s.create_client(a, json!({"server_id": sid, "name": "printer"}));
    let r = s.send(
        "PUT",
        "/system/config",
        Some(a),
        &json!({"log_level": "ERROR", "api_rate_limit": 100}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let rules = s.read("/monitoring/alerts/rules", a);
    assert!(!rules.as_array().expect("rules").is_empty());
    let r = s.send(
        "DELETE",
        "/monitoring/alerts/rules/mem_high",
        Some(a),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn a_restore_brings_every_object_back_exactly() {
    let (s, a) = Server::with_admin();
    furnish(&s, &a);
    let before = state(&s, &a);
    let b = backup(&s, &a, "known good");
    let operator = s.token("operator", "operator-password");

    disturb(&s, &a);
    let (_, newcomer) = s.user_with_role(&a, "newcomer", "user");
    assert_ne!(state(&s, &a), before, "the test changed nothing");

    let done = restore(&s, &a, id_of(&b), json!({}));
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["restored"], json!(["database"]), "{done}");
    assert_eq!(done["rolled_back"], false);
    assert_eq!(done["restart_required"], false);
    let pre = done["pre_restore_backup_id"]
        .as_i64()
        .expect("pre-restore id");
    let pre = s.read(&format!("/backup/backups/{pre}"), &a);
    assert_eq!(pre["origin"], "pre-restore", "{pre}");
    assert_eq!(pre["status"], "completed", "{pre}");

    // The token of the admin who restored is still good (the same user row is back), as is
    // the operator's; the user made after the backup no longer exists.
    same(&state(&s, &a), &before, "after the restore");
    assert_eq!(s.get("/auth/me", Some(&operator)).status, 200);
    s.get("/auth/me", Some(&newcomer))
        .assert_error(401, "UNAUTHORIZED");
    assert_eq!(s.login("newcomer", "newcomer-password").status, 401);

    // The list of restores says what happened; the backups made since are all still listed.
    let restores = s.read("/backup/restores", &a);
    assert_eq!(restores[0]["id"], done["id"], "{restores}");
    let backups = s.read("/backup/backups", &a);
    assert_eq!(backups.as_array().expect("list").len(), 2, "{backups}");

    // The restored state survives a restart.
    let (s, a) = s.restart();
    same(&state(&s, &a), &before, "after a restart");
}

#[test]
fn the_seed_parameter_target_dir_and_a_running_backup_are_refused() {
    let (s, a) = Server::with_admin();
    let b = backup(&s, &a, "b");
    s.post(
        &format!("/backup/backups/{}/restore?target_dir=/tmp", id_of(&b)),
        Some(&a),
        &json!({}),
    )
    .assert_field_error(422, "VALIDATION_ERROR", "target_dir");
    s.post(
        &format!(
            "/backup/backups/{}/restore?keep_local_settings=maybe",
            id_of(&b)
        ),
        Some(&a),
        &json!({}),
    )
    .assert_field_error(422, "VALIDATION_ERROR", "keep_local_settings");
    s.post("/backup/backups/999/restore", Some(&a), &json!({}))
        .assert_error(404, "RESOURCE_NOT_FOUND");
    // Only admins restore.
    let (_, manager) = s.user_with_role(&a, "mgr", "manager");
    let r = s.post(
        &format!("/backup/backups/{}/restore", id_of(&b)),
        Some(&manager),
        &json!({}),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(s
        .read("/backup/restores", &a)
        .as_array()
        .expect("list")
        .is_empty());
}

// ---------------------------------------------------------------------------------------
// Hostile archives

/// One tar member as a hostile archive has it: any name, type and content.
#[derive(Clone, Copy)]
struct Raw<'a> {
    name: &'a str,
    kind: u8,
    link: &'a str,
    data: &'a [u8],
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}\0", v, width = field.len() - 1);
    field.copy_from_slice(s.as_bytes());
}

/// A ustar archive of `members`, written by hand so that nothing refuses what it holds.
fn tar_of(members: &[Raw<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        let mut h = [0u8; 512];
        h[..m.name.len()].copy_from_slice(m.name.as_bytes());
        octal(&mut h[100..108], 0o600);
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], m.data.len() as u64);
        octal(&mut h[136..148], 1_764_770_400);
        h[156] = m.kind;
        h[157..157 + m.link.len()].copy_from_slice(m.link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(m.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

/// A manifest of a `kind` backup for `members` (name, size, sha256).
fn manifest(kind: &str, schema: i64, members: &[(&str, u64, String)]) -> Vec<u8> {
    let members: Vec<Value> = members
        .iter()
        .map(|(n, size, sha)| json!({"name": n, "size": size, "sha256": sha}))
        .collect();
    serde_json::to_vec(&json!({
        "format": 1, "app_version": "0.0.0", "schema_version": schema, "type": kind,
        "hostname": "elsewhere", "created_at": "2026-12-03T10:00:00Z", "members": members,
    }))
    .expect("manifest")
}

/// A database-only archive with `db` as its database, its manifest saying the truth.
fn database_archive(schema: i64, db: &[u8]) -> Vec<u8> {
    let m = manifest(
        "database",
        schema,
        &[("database/ipv6wgm.db", db.len() as u64, sha256_hex(db))],
    );
    gzip(&tar_of(&[
        Raw {
            name: "manifest.json",
            kind: b'0',
            link: "",
            data: &m,
        },
        Raw {
            name: "database/ipv6wgm.db",
            kind: b'0',
            link: "",
            data: db,
        },
    ]))
}

/// Puts `archive` into the server's backup directory as a completed backup with `id`.
fn plant(s: &Server, id: i64, archive: &[u8]) {
    let dir = s.data_dir().join("backups");
    let file = format!("planted-{id}.tar.gz");
    std::fs::write(dir.join(&file), archive).expect("archive");
    let entry = json!({
        "id": id, "name": format!("planted {id}"), "type": "database", "status": "completed",
        "error": null, "metadata": {}, "file": file, "size_bytes": archive.len(),
        "checksum": sha256_hex(archive), "encrypted": false, "origin": "upload",
        "created_at": 1_764_770_400, "completed_at": 1_764_770_400,
    });
    std::fs::write(
        dir.join(format!("backup-{id}.json")),
        serde_json::to_vec(&entry).expect("entry"),
    )
    .expect("entry");
}

/// The database member of a real backup of `s`.
fn real_database(s: &Server, a: &str) -> Vec<u8> {
    let b = backup(s, a, "source");
    let d = s.get(&format!("/backup/backups/{}/download", id_of(&b)), Some(a));
    assert_eq!(d.status, 200);
    let mut t = tar::Archive::new(flate2::read::GzDecoder::new(&d.raw_body[..]));
    for e in t.entries().expect("entries") {
        let mut e = e.expect("entry");
        if e.path().expect("path").to_str() == Some("database/ipv6wgm.db") {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).expect("read");
            return v;
        }
    }
    panic!("no database in the backup");
}

/// What a database must not be changed by: the listings, the files of the data dir.
fn fingerprint(s: &Server, a: &str) -> (Vec<(String, Value)>, Vec<String>) {
    let mut files: Vec<String> = std::fs::read_dir(s.data_dir())
        .expect("data dir")
        .filter_map(|d| d.ok())
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with("-shm") && !n.ends_with("-wal"))
        .collect();
    files.sort();
    (state(s, a), files)
}

#[test]
fn hostile_archives_are_refused_with_422_and_change_nothing() {
    let (s, a) = Server::with_admin();
    furnish(&s, &a);
    let db = real_database(&s, &a);
    let schema = user_version(&db);
    assert!(schema > 0);
    let m = manifest(
        "database",
        schema,
        &[("database/ipv6wgm.db", db.len() as u64, sha256_hex(&db))],
    );
    let valid = archive_with(&m, &db, &[]);
    let odd = |name, kind, link| Raw {
        name,
        kind,
        link,
        data: b"x",
    };
    let full = manifest(
        "full",
        schema,
        &[("database/ipv6wgm.db", db.len() as u64, sha256_hex(&db))],
    );
    let wrong_sum = manifest(
        "database",
        schema,
        &[("database/ipv6wgm.db", db.len() as u64, sha256_hex(b"other"))],
    );
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a ../ member",
            archive_with(&m, &db, &[odd("../evil", b'0', "")]),
        ),
        (
            "an absolute path",
            archive_with(&m, &db, &[odd("/etc/evil", b'0', "")]),
        ),
        (
            "a symlink",
            archive_with(&full, &db, &[odd("files/jwt.key", b'2', "/etc/shadow")]),
        ),
        (
            "a hard link",
            archive_with(
                &full,
                &db,
                &[odd("files/jwt.key", b'1', "database/ipv6wgm.db")],
            ),
        ),
        (
            "a device node",
            archive_with(&full, &db, &[odd("files/jwt.key", b'3', "")]),
        ),
        (
            "a member not in the manifest",
            archive_with(&full, &db, &[odd("files/jwt.key", b'0', "")]),
        ),
        ("a checksum mismatch", archive_with(&wrong_sum, &db, &[])),
        ("a truncated gzip", valid[..valid.len() / 2].to_vec()),
        ("not gzip at all", b"PK\x03\x04 a zip file".to_vec()),
        ("a 1 GiB bomb", bomb(schema)),
    ];
    // A newer schema, and a damaged database (pages overwritten).
    let newer = with_user_version(&db, schema + 1);
    cases.push(("a newer schema", database_archive(schema + 1, &newer)));
    let mut damaged = db.clone();
    for b in damaged.iter_mut().skip(4096 + 16).take(3000) {
        *b = 0xA5;
    }
    cases.push(("a damaged database", database_archive(schema, &damaged)));

    let (listings, files) = fingerprint(&s, &a);
    for (i, (what, archive)) in cases.iter().enumerate() {
        let id = 500 + i as i64;
        plant(&s, id, archive);
        let r = s.post(
            &format!("/backup/backups/{id}/restore"),
            Some(&a),
            &json!({}),
        );
        assert_eq!(r.status, 422, "{what}: {}", r.body);
        eprintln!("{what}: {}", r.body["error"]["message"]);
        assert_eq!(r.body["error"]["code"], "VALIDATION_ERROR", "{what}");
        assert_eq!(
            r.body["error"]["details"]["field"], "archive",
            "{what}: {}",
            r.body
        );
    }
    // Nothing changed: the listings, the data dir's files, no restore, no backup made, no
    // staging left behind.
    let (now_listings, now_files) = fingerprint(&s, &a);
    same(&now_listings, &listings, "after the refusals");
    assert_eq!(now_files, files);
    assert!(s
        .read("/backup/restores", &a)
        .as_array()
        .expect("list")
        .is_empty());
    let dir = s.data_dir().join("backups");
    let leftovers: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|d| d.ok())
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Encrypted (age, passphrase): without the passphrase, or with a wrong one, a 422 naming
    // `passphrase`, and nothing changes either.
    let mut sealed = Vec::new();
    ipv6wgm::backup::crypt::encrypt_with_work_factor(&valid[..], &mut sealed, "right horse", 10)
        .expect("encrypt");
    plant(&s, 700, &sealed);
    for body in [json!({}), json!({"passphrase": "wrong horse"})] {
        let r = s.post("/backup/backups/700/restore", Some(&a), &body);
        r.assert_field_error(422, "VALIDATION_ERROR", "passphrase");
        eprintln!("encrypted, {body}: {}", r.body["error"]["message"]);
    }
    let (now_listings, now_files) = fingerprint(&s, &a);
    same(&now_listings, &listings, "after the refusals");
    assert_eq!(now_files, files);
    let done = restore(&s, &a, 700, json!({"passphrase": "right horse"}));
    assert_eq!(done["status"], "completed", "{done}");

    // The valid archive of the same content restores (the cases failed for their flaw).
    plant(&s, 600, &valid);
    let done = restore(&s, &a, 600, json!({}));
    assert_eq!(done["status"], "completed", "{done}");
}

/// `manifest.json` and `db` as a database member, then `extra`.
fn archive_with(manifest: &[u8], db: &[u8], extra: &[Raw<'_>]) -> Vec<u8> {
    let mut all = vec![
        Raw {
            name: "manifest.json",
            kind: b'0',
            link: "",
            data: manifest,
        },
        Raw {
            name: "database/ipv6wgm.db",
            kind: b'0',
            link: "",
            data: db,
        },
    ];
    all.extend(extra.iter().copied());
    gzip(&tar_of(&all))
}

/// A gzip bomb: the manifest claims a 4 KiB database, whose member inflates to 1 GiB of
/// zeros. Made in milliseconds: one sync-flushed deflate chunk of 1 MiB of zeros (which
/// refers only to itself) repeated 1,024 times.
fn bomb(schema: i64) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let m = manifest(
        "database",
        schema,
        &[("database/ipv6wgm.db", 4096, sha256_hex(b""))],
    );
    let mut head = tar_of(&[Raw {
        name: "manifest.json",
        kind: b'0',
        link: "",
        data: &m,
    }]);
    head.truncate(head.len() - 1024);
    let mut h = tar_of(&[Raw {
        name: "database/ipv6wgm.db",
        kind: b'0',
        link: "",
        data: b"",
    }]);
    h.truncate(512);
    octal(&mut h[124..136], 1 << 30);
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    head.extend_from_slice(&h);
    let chunk = |input: &[u8]| {
        let mut c = Compress::new(Compression::best(), false);
        let mut out = Vec::with_capacity(input.len() + 1024);
        c.compress_vec(input, &mut out, FlushCompress::Sync)
            .expect("deflate");
        out
    };
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    gz.extend_from_slice(&chunk(&head));
    let zeros = chunk(&vec![0u8; 1 << 20]);
    for _ in 0..1024 {
        gz.extend_from_slice(&zeros);
    }
    // A final empty block; the trailer is never reached.
    gz.extend_from_slice(&[0x03, 0x00]);
    gz.extend_from_slice(&[0; 8]);
    assert!(gz.len() < 8 << 20, "the bomb is small: {}", gz.len());
    gz
}

/// The `user_version` of a database file.
fn user_version(db: &[u8]) -> i64 {
    i64::from(u32::from_be_bytes([db[60], db[61], db[62], db[63]]))
}

/// `db` with its `user_version` (header bytes 60..64) set.
fn with_user_version(db: &[u8], v: i64) -> Vec<u8> {
    let mut out = db.to_vec();
    out[60..64].copy_from_slice(&(v as u32).to_be_bytes());
    out
}

// ---------------------------------------------------------------------------------------
// A second router

#[test]
fn a_backup_moves_to_a_second_router_keeping_its_local_settings() {
    let (one, a1) = Server::with_config("public_host = \"one.example\"\n");
    furnish(&one, &a1);
    let r = one.send(
        "PATCH",
        "/wireguard/servers/1",
        Some(&a1),
        &json!({"endpoint": "one.example:51820"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let b = backup(&one, &a1, "move me");
    let d = one.get(
        &format!("/backup/backups/{}/download", id_of(&b)),
        Some(&a1),
    );
    assert_eq!(d.status, 200);

    let (two, a2) = Server::with_config("public_host = \"two.example\"\n");
    let key_before = std::fs::read(two.data_dir().join("jwt.key")).expect("key");
    let config_before = std::fs::read(two.dir.path().join("test.toml")).expect("config");
    plant(&two, 50, &d.raw_body);
    let done = restore(&two, &a2, 50, json!({"keep_local_settings": true}));
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["keep_local_settings"], true);
    assert_eq!(done["restored"], json!(["database"]), "{done}");

    // Router two now has router one's objects, with its own key, config and endpoint.
    assert_eq!(
        std::fs::read(two.data_dir().join("jwt.key")).expect("key"),
        key_before
    );
    assert_eq!(
        std::fs::read(two.dir.path().join("test.toml")).expect("config"),
        config_before
    );
    let a2 = two.admin();
    let users: Vec<String> = list(&two.read("/users?size=100", &a2))
        .iter()
        .map(|u| u["username"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(users.contains(&"operator".to_string()), "{users:?}");
    let servers = two.read("/wireguard/servers", &a2);
    let home = &list(&servers)[0];
    assert_eq!(home["name"], "home");
    assert!(home["endpoint"].is_null(), "{home}");
    let clients = list(&two.read("/wireguard/clients?size=100", &a2));
    let phone = clients
        .iter()
        .find(|c| c["name"] == "phone")
        .expect("phone");
    let conf = two.get(
        &format!("/wireguard/clients/{}/config", id_of(phone)),
        Some(&a2),
    );
    assert_eq!(conf.status, 200, "{}", conf.body);
    let text = String::from_utf8_lossy(&conf.raw_body);
    assert!(text.contains("two.example"), "{text}");
    // Router one's tokens are not valid on router two (two kept its own key).
    assert_eq!(one.get("/auth/me", Some(&a1)).status, 200);
    two.get("/auth/me", Some(&a1))
        .assert_error(401, "UNAUTHORIZED");
}

/// The items of a list answer: the array itself, or the array beside `pagination`.
fn list(v: &Value) -> Vec<Value> {
    v.as_array()
        .or_else(|| v.as_object()?.values().find_map(Value::as_array))
        .cloned()
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// The CLI

#[test]
fn the_cli_restores_with_the_service_stopped_and_refuses_while_it_runs() {
    let (s, a) = Server::with_admin();
    furnish(&s, &a);
    let before = state(&s, &a);
    let b = backup(&s, &a, "for the cli");
    let archive = s
        .data_dir()
        .join("backups")
        .join(b["file_path"].as_str().expect("file"));
    disturb(&s, &a);
    let data = s.data_dir();

    let out = run_bin(&[&"--data-dir", &data, &"backup", &"restore", &archive]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the service is running"), "{err}");

    let dir = s.dir.clone();
    assert!(s.stop().success());
    let out = run_bin(&[&"--data-dir", &data, &"backup", &"restore", &archive]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("restored"), "{said}");

    let (s, a) = start_on(dir);
    same(&state(&s, &a), &before, "after the CLI restore");
    let restores = s.read("/backup/restores", &a);
    assert_eq!(restores[0]["status"], "completed", "{restores}");
    assert!(restores[0]["backup_id"].is_null());

    // A new router: nothing in its data directory yet (first boot after a reflash).
    let fresh = std::sync::Arc::new(tempfile::tempdir().expect("tmp"));
    let out = run_bin(&[
        &"--data-dir",
        &fresh.path().join("data"),
        &"backup",
        &"restore",
        &archive,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, a) = start_on(fresh);
    same(&state(&s, &a), &before, "on a new router");
}

// ---------------------------------------------------------------------------------------
// Killed at the worst moment

/// The server on `dir` again (no crash point); an admin token.
fn start_on(dir: std::sync::Arc<tempfile::TempDir>) -> (Server, String) {
    let s = Server::start_with(Opts {
        admin_password: Some(ADMIN_PW.into()),
        dir: Some(dir),
        ..Default::default()
    });
    let a = s.admin();
    (s, a)
}

fn crash_opts(dir: std::sync::Arc<tempfile::TempDir>, point: &str) -> Opts {
    Opts {
        admin_password: Some(ADMIN_PW.into()),
        dir: Some(dir),
        ..Default::default()
    }
    .with_env("IPV6WGM_TEST_CRASH_AT", point)
}

trait WithEnv {
    fn with_env(self, k: &str, v: &str) -> Opts;
}

impl WithEnv for Opts {
    fn with_env(mut self, k: &str, v: &str) -> Opts {
        self.wrapper = vec!["env".into(), format!("{k}={v}")];
        self
    }
}

/// Waits for the process to be gone (it killed itself at the crash point).
fn killed(mut s: Server) -> PathBuf {
    let status = s.child.wait().expect("wait");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
    s.data_dir()
}

#[test]
fn a_restore_killed_after_the_swap_leaves_the_old_state_and_says_so() {
    for point in ["restore:swapped", "restore:reloaded"] {
        let (s, a) = Server::with_admin();
        furnish(&s, &a);
        let b = backup(&s, &a, "good");
        disturb(&s, &a);
        let changed = state(&s, &a);
        let dir = s.dir.clone();
        assert!(s.stop().success());

        let s = Server::start_with(crash_opts(dir.clone(), point));
        let a = s.admin();
        let r = s.post(
            &format!("/backup/backups/{}/restore", id_of(&b)),
            Some(&a),
            &json!({}),
        );
        assert_eq!(r.status, 202, "{}", r.body);
        let data = killed(s);
        assert!(
            data.join("restore.journal").exists(),
            "{point}: journal left"
        );

        let (s, a) = start_on(dir);
        assert!(!data.join("restore.journal").exists());
        same(
            &state(&s, &a),
            &changed,
            &format!("{point}: from before it"),
        );
        let restores = s.read("/backup/restores", &a);
        assert_eq!(restores[0]["status"], "failed", "{point}: {restores}");
        assert_eq!(restores[0]["rolled_back"], true, "{point}");
        assert!(
            restores[0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("interrupted")),
            "{restores}"
        );
        // Nothing half-restored lingers beside the files.
        let stray: Vec<String> = std::fs::read_dir(&data)
            .expect("data")
            .filter_map(|d| d.ok())
            .map(|d| d.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("incoming") || n.contains("pre-restore"))
            .collect();
        assert!(stray.is_empty(), "{point}: {stray:?}");
        // And the same restore, run again without a crash, completes.
        let done = restore(&s, &a, id_of(&b), json!({}));
        assert_eq!(done["status"], "completed", "{point}: {done}");
    }
}

#[test]
fn a_backup_killed_before_its_archive_is_in_place_is_listed_failed() {
    let (s, a) = Server::with_admin();
    let dir = s.dir.clone();
    assert!(s.stop().success());
    drop(a);
    let s = Server::start_with(crash_opts(dir.clone(), "backup:archive-written"));
    let a = s.admin();
    let r = s.post(
        "/backup/backups/create",
        Some(&a),
        &json!({"name": "doomed"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = id_of(r.data());
    let data = killed(s);
    let (s, a) = start_on(dir);
    let b = s.read(&format!("/backup/backups/{id}"), &a);
    assert_eq!(b["status"], "failed", "{b}");
    assert!(
        b["error"]
            .as_str()
            .is_some_and(|e| e.contains("interrupted")),
        "{b}"
    );
    let leftovers: Vec<String> = std::fs::read_dir(data.join("backups"))
        .expect("dir")
        .filter_map(|d| d.ok())
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp") || n.ends_with(".tar.gz"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The database is sound and the service works.
    assert_eq!(s.get("/auth/me", Some(&a)).status, 200);
}

// ---------------------------------------------------------------------------------------
// Events

#[test]
fn every_outcome_is_an_event_on_the_logs_channel_and_in_the_log() {
    let (s, a) = Server::with_admin();
    let mut w = logs_channel(&s, &a);
    let b = backup(&s, &a, "watched");
    let e = backup_event(&mut w, "backup.completed");
    assert_eq!(e["module"], "backup", "{e}");
    assert_eq!(e["target"], format!("backup/backups/{}", id_of(&b)), "{e}");
    let done = restore(&s, &a, id_of(&b), json!({}));
    assert_eq!(done["status"], "completed", "{done}");
    // The pre-restore backup, then the restore itself.
    backup_event(&mut w, "backup.completed");
    let e = backup_event(&mut w, "restore.completed");
    assert_eq!(e["target"], format!("backup/restores/{}", id_of(&done)));
    let logs = s.read("/logs?module=backup", &a);
    let actions: Vec<String> = list(&logs)
        .iter()
        .map(|l| l["action"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        actions.iter().any(|x| x == "restore.completed"),
        "{actions:?}"
    );
}
