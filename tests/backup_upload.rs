//! Encrypted backups and uploads through the API, as a router owner uses them: a backup made
//! with a passphrase (or `backup.passphrase_file`) downloads as an age file that `age -d`
//! opens into a tarball GNU tar lists; a backup downloaded from one router and uploaded to a
//! second is the same backup there; hostile uploads are refused (422, 413) and leave nothing
//! in the backup directory.

mod common;

use common::age::{age_on_pty, tools_present};
use common::backup::{backup_done, sha256_hex};
use common::fixtures::{id_of, run_bin, wait_for};
use common::{Resp, Server};
use ipv6wgm::backup::crypt;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PASS: &str = "a long backup passphrase";

/// A backup made through the API and finished (completed expected); its view.
fn backup(s: &Server, token: &str, body: Value) -> Value {
    let r = s.post("/backup/backups/create", Some(token), &body);
    assert_eq!(r.status, 201, "{}", r.body);
    let done = backup_done(s, token, id_of(r.data()));
    assert_eq!(done["status"], "completed", "{done}");
    done
}

fn download(s: &Server, token: &str, id: i64) -> Resp {
    let d = s.get(&format!("/backup/backups/{id}/download"), Some(token));
    assert_eq!(d.status, 200, "{}", d.body);
    d
}

/// `POST /backup/backups/upload{query}` with `body` as `content_type`.
fn upload(s: &Server, token: &str, query: &str, content_type: &str, body: &[u8]) -> Resp {
    let headers = [
        format!("Authorization: Bearer {token}"),
        format!("Content-Type: {content_type}"),
    ];
    s.raw(
        "POST",
        &format!("/backup/backups/upload{query}"),
        &headers,
        body,
    )
}

fn tar_list(archive: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .arg("-tzf")
        .arg(archive)
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The files in the backup directory besides its lock.
fn backup_dir_files(s: &Server) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(s.data_dir().join("backups"))
        .expect("backup dir")
        .map(|d| d.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".lock")
        .collect();
    v.sort();
    v
}

#[test]
fn an_encrypted_backup_downloads_as_an_age_file_that_age_and_gnu_tar_open() {
    let (s, a) = Server::with_admin();
    s.wg_server_id(&a, "home", Some("10.0.0.1/24"), None);
    let r = s.post(
        "/backup/backups/create",
        Some(&a),
        &json!({"name": "sealed", "passphrase": PASS}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.data()["encrypted"], true);
    let done = backup_done(&s, &a, id_of(r.data()));
    assert_eq!(done["status"], "completed", "{done}");
    let file_path = done["file_path"].as_str().expect("file_path");
    assert!(file_path.ends_with(".tar.gz.age"), "{file_path}");

    let d = download(&s, &a, id_of(&done));
    assert_eq!(d.header("content-type"), Some("application/octet-stream"));
    assert!(
        d.header("content-disposition")
            .is_some_and(|c| c.contains(file_path)),
        "{:?}",
        d.headers
    );
    assert!(crypt::is_encrypted(&d.raw_body));
    assert_eq!(done["size_bytes"], d.raw_body.len());
    assert_eq!(
        done["checksum"],
        sha256_hex(&d.raw_body),
        "of the stored file"
    );

    // The passphrase is nowhere: not in the answers, the log, or the backup directory.
    assert!(!r.raw_body.windows(PASS.len()).any(|w| w == PASS.as_bytes()));
    assert!(!s.stderr_text().contains(PASS));
    for f in backup_dir_files(&s) {
        let bytes = std::fs::read(s.data_dir().join("backups").join(&f)).expect("read");
        assert!(
            !bytes.windows(PASS.len()).any(|w| w == PASS.as_bytes()),
            "{f}"
        );
    }

    if !tools_present() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (enc, plain) = (tmp.path().join(file_path), tmp.path().join("backup.tar.gz"));
    std::fs::write(&enc, &d.raw_body).expect("write");
    let wrong = age_on_pty(
        &[&enc],
        &["-d", "-o", &plain.to_string_lossy()],
        &["not it at all"],
    );
    assert!(!wrong.status.success(), "age accepted a wrong passphrase");
    let run = age_on_pty(&[&enc], &["-d", "-o", &plain.to_string_lossy()], &[PASS]);
    assert!(run.status.success(), "age -d: {run:?}");
    assert_eq!(
        tar_list(&plain),
        ["manifest.json", "database/ipv6wgm.db", "files/jwt.key"]
    );
}

#[test]
fn passphrases_are_checked_and_taken_from_the_body_only() {
    let (s, a) = Server::with_admin();
    let create = |body: Value| s.post("/backup/backups/create", Some(&a), &body);
    for bad in ["", "short", "1234567", "tab\there!", "new\nline!"] {
        let r = create(json!({"name": "x", "passphrase": bad}));
        r.assert_field_error(422, "VALIDATION_ERROR", "passphrase");
        assert!(
            bad.len() < 4 || !r.body.to_string().contains(bad),
            "echoed: {}",
            r.body
        );
    }
    create(json!({"name": "x", "passphrase": 12345678})).assert_field_error(
        422,
        "VALIDATION_ERROR",
        "passphrase",
    );
    // Never a query parameter: URLs end up in logs.
    s.post(
        "/backup/backups/create?name=x&passphrase=long%20enough%20secret",
        Some(&a),
        &json!({}),
    )
    .assert_field_error(422, "VALIDATION_ERROR", "passphrase");
    assert!(!s.stderr_text().contains("long enough secret"));
    assert_eq!(s.read("/backup/backups", &a), json!([]), "nothing was made");
    // Eight characters are enough, unicode counted as characters; unencrypted stays gzip.
    let sealed = backup(
        &s,
        &a,
        json!({"name": "ok", "passphrase": "äöüäöüäö", "backup_type": "files"}),
    );
    assert_eq!(sealed["encrypted"], true);
    let plain = backup(&s, &a, json!({"name": "plain", "backup_type": "files"}));
    assert_eq!(plain["encrypted"], false);
    let d = download(&s, &a, id_of(&plain));
    assert_eq!(d.header("content-type"), Some("application/gzip"));
    assert!(plain["file_path"]
        .as_str()
        .is_some_and(|f| f.ends_with(".tar.gz")));
}

#[test]
fn the_configured_passphrase_file_encrypts_backups_made_without_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("backup-pass");
    std::fs::write(&file, "from the config file\n").expect("write");
    let config = format!(
        "[backup]\npassphrase_file = {:?}\n",
        file.to_str().expect("utf-8")
    );
    let (s, a) = Server::with_config(&config);
    let by_file = backup(&s, &a, json!({"name": "nightly", "backup_type": "files"}));
    assert_eq!(by_file["encrypted"], true);
    let own = backup(
        &s,
        &a,
        json!({"name": "own", "backup_type": "files", "passphrase": PASS}),
    );
    assert_eq!(own["encrypted"], true);
    let open = |id: i64, pass: &str| {
        let d = download(&s, &a, id);
        let mut out = Vec::new();
        crypt::decrypt(&d.raw_body[..], &mut out, pass).map(|()| out)
    };
    assert!(open(id_of(&by_file), "from the config file").is_ok());
    assert!(matches!(
        open(id_of(&own), "from the config file"),
        Err(crypt::CryptError::WrongPassphrase)
    ));
    let tarball = open(id_of(&own), PASS).expect("the request's passphrase");
    let tmp = dir.path().join("own.tar.gz");
    std::fs::write(&tmp, tarball).expect("write");
    assert_eq!(tar_list(&tmp), ["manifest.json", "files/jwt.key"]);
    assert!(!s.stderr_text().contains("from the config file"));
    // A passphrase file that breaks the rules stops the start, saying which setting.
    std::fs::write(&file, "short\n").expect("write");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, &config).expect("write");
    let data = dir.path().join("data2");
    let out = run_bin(&[
        &"--config",
        &cfg,
        &"--data-dir",
        &data,
        &"--listen",
        &"127.0.0.1:0",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("backup.passphrase_file") && err.contains("at least 8"),
        "{err}"
    );
    assert!(
        !err.contains("short\n") && !err.contains("\"short\""),
        "{err}"
    );
}

#[test]
fn a_backup_downloaded_from_one_router_uploads_to_another_as_the_same_backup() {
    let (one, a1) = Server::with_admin();
    one.wg_server_id(&a1, "home", Some("10.0.0.1/24"), None);
    let plain = backup(&one, &a1, json!({"name": "plain"}));
    let sealed = backup(&one, &a1, json!({"name": "sealed", "passphrase": PASS}));
    let plain_bytes = download(&one, &a1, id_of(&plain)).raw_body;
    let sealed_bytes = download(&one, &a1, id_of(&sealed)).raw_body;

    let (two, a2) = Server::with_admin();
    let (_, manager) = two.user_with_role(&a2, "mia", "manager");
    upload(&two, &manager, "", "application/gzip", &plain_bytes)
        .assert_error(403, "INSUFFICIENT_PERMISSIONS");

    let r = upload(
        &two,
        &a2,
        "?name=from%20router%20one",
        "application/gzip",
        &plain_bytes,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let got = r.data();
    assert_eq!(got["status"], "completed", "{got}");
    assert_eq!(got["origin"], "upload");
    assert_eq!(got["name"], "from router one");
    assert_eq!(got["type"], "full");
    assert_eq!(got["encrypted"], false);
    assert_eq!(
        got["created_at"], plain["created_at"],
        "the manifest's time"
    );
    assert_eq!(got["checksum"], plain["checksum"], "the same file");
    assert_eq!(got["size_bytes"], plain["size_bytes"]);
    assert!(got["metadata"]["schema_version"].is_i64(), "{got}");
    let back = download(&two, &a2, id_of(got));
    assert_eq!(back.raw_body, plain_bytes);
    assert_eq!(back.header("content-type"), Some("application/gzip"));

    let r = upload(&two, &a2, "", "application/octet-stream", &sealed_bytes);
    assert_eq!(r.status, 201, "{}", r.body);
    let got = r.data();
    assert_eq!(
        (&got["status"], &got["type"], &got["encrypted"]),
        (&json!("completed"), &json!("unknown"), &json!(true)),
        "{got}"
    );
    assert_eq!(got["checksum"], sealed["checksum"]);
    assert!(got["file_path"]
        .as_str()
        .is_some_and(|f| f.ends_with(".tar.gz.age")));
    let back = download(&two, &a2, id_of(got));
    assert_eq!(back.raw_body, sealed_bytes);
    assert_eq!(
        back.header("content-type"),
        Some("application/octet-stream")
    );

    // Listed with the second router's own backups, and nothing else left behind.
    let list = two.read("/backup/backups", &a2);
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let files = backup_dir_files(&two);
    assert_eq!(
        files.len(),
        5,
        "two archives, two entries, next-id: {files:?}"
    );
    assert!(!files.iter().any(|f| f.starts_with(".tmp")), "{files:?}");
}

#[test]
fn one_upload_at_a_time_and_a_backup_runs_beside_it() {
    let (s, a) = Server::with_admin();
    // An upload whose body is still coming holds the upload slot.
    let mut slow = s.connect();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "POST /api/v1/backup/backups/upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Authorization: Bearer {a}\r\nContent-Type: application/gzip\r\nContent-Length: 100000\r\n\r\n"
    );
    slow.write_all(head.as_bytes()).expect("write");
    slow.write_all(&[0x1f, 0x8b]).expect("write");
    let temp = s.data_dir().join("backups").join(".tmp-upload");
    wait_for(30, "the upload to start", || temp.exists().then_some(()));
    upload(&s, &a, "", "application/gzip", b"x").assert_error(409, "RESOURCE_CONFLICT");
    // A backup is not held up by it.
    let done = backup(&s, &a, json!({"name": "meanwhile", "backup_type": "files"}));
    assert_eq!(done["status"], "completed");
    // The connection goes: its file goes with it.
    drop(slow);
    wait_for(30, "the upload's file to go", || {
        (!temp.exists()).then_some(())
    });
    let r = upload(&s, &a, "", "application/gzip", b"not an archive");
    r.assert_field_error(422, "VALIDATION_ERROR", "body");
}

// ---- hostile archives ----

/// A tar entry: a header with `name` written as raw bytes (the tar crate refuses `..`), the
/// data, padding.
fn entry(name: &[u8], kind: tar::EntryType, data: &[u8], declared: Option<u64>) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_size(declared.unwrap_or(data.len() as u64));
    h.set_mode(0o600);
    h.set_mtime(0);
    h.set_entry_type(kind);
    if kind == tar::EntryType::Symlink {
        h.as_old_mut().linkname[..11].copy_from_slice(b"/etc/passwd");
    }
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn manifest(members: &[(&str, &[u8])]) -> Vec<u8> {
    let members: Vec<Value> = members
        .iter()
        .map(|(n, d)| json!({"name": n, "size": d.len(), "sha256": sha256_hex(d)}))
        .collect();
    serde_json::to_vec(&json!({
        "format": 1, "app_version": "0.1.0", "schema_version": 1, "type": "files",
        "hostname": "elsewhere", "created_at": "2026-12-01T10:00:00Z", "members": members,
    }))
    .expect("json")
}

fn gzip(tar: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(tar).expect("gzip");
    gz.finish().expect("gzip")
}

/// manifest.json, then `members`, then the end marker, gzipped.
fn archive(manifest_json: &[u8], members: &[Vec<u8>]) -> Vec<u8> {
    let mut t = entry(
        b"manifest.json",
        tar::EntryType::Regular,
        manifest_json,
        None,
    );
    for m in members {
        t.extend_from_slice(m);
    }
    t.extend_from_slice(&[0; 1024]);
    gzip(&t)
}

/// A gzip stream of `head` then `zeros` zero bytes that is ~1/1000 of its inflated size: a
/// 1 MiB block of zeros deflated once after a window of zeros is valid after any such window.
fn bomb(head: &[u8], zeros: u64) -> Vec<u8> {
    use flate2::FlushCompress::{Finish, Sync};
    const MIB: u64 = 1 << 20;
    let chunk = vec![0u8; MIB as usize];
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let mut step = |input: &[u8], flush| {
        let mut out = Vec::with_capacity(input.len() + 1024);
        let start = c.total_in();
        loop {
            let done = (c.total_in() - start) as usize;
            out.reserve(64 * 1024);
            let st = c
                .compress_vec(&input[done..], &mut out, flush)
                .expect("deflate");
            let all_in = (c.total_in() - start) as usize == input.len();
            if st == flate2::Status::StreamEnd || (all_in && out.len() < out.capacity()) {
                return out;
            }
        }
    };
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend(step(head, Sync));
    out.extend(step(&chunk, Sync));
    let steady = step(&chunk, Sync);
    for _ in 1..zeros / MIB {
        out.extend_from_slice(&steady);
    }
    out.extend(step(&[], Finish));
    let mut crc = flate2::Crc::new();
    crc.update(head);
    for _ in 0..zeros / MIB {
        crc.update(&chunk);
    }
    out.extend(crc.sum().to_le_bytes());
    out.extend(((head.len() as u64 + zeros) as u32).to_le_bytes());
    out
}

#[test]
fn hostile_uploads_are_refused_and_leave_nothing_behind() {
    let (s, a) = Server::with_admin();
    let regular = tar::EntryType::Regular;
    let good = archive(
        &manifest(&[("files/jwt.key", KEY)]),
        &[entry(b"files/jwt.key", regular, KEY, None)],
    );
    const GB: u64 = 1000 << 20;
    let big_manifest = {
        let mut m: Value = serde_json::from_slice(&manifest(&[("files/jwt.key", KEY)])).expect("m");
        m["members"][0]["size"] = json!(GB);
        serde_json::to_vec(&m).expect("json")
    };
    let mut bomb_head = entry(b"manifest.json", regular, &big_manifest, None);
    bomb_head.extend(entry(b"files/jwt.key", regular, b"", Some(GB)));
    let mut padded = entry(
        b"manifest.json",
        regular,
        &manifest(&[("files/jwt.key", KEY)]),
        None,
    );
    padded.extend(entry(b"files/jwt.key", regular, KEY, None));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not gzip", b"just some text, not an archive".to_vec(), "damaged"),
        ("truncated", good[..good.len() / 2].to_vec(), "cut short"),
        (
            "a ../ member",
            archive(
                &manifest(&[("files/jwt.key", KEY)]),
                &[entry(b"../../etc/cron.d/x", regular, KEY, None)],
            ),
            "not a name a backup holds",
        ),
        (
            "a symlink member",
            archive(
                &manifest(&[("files/jwt.key", b"")]),
                &[entry(b"files/jwt.key", tar::EntryType::Symlink, b"", None)],
            ),
            "symbolic link",
        ),
        (
            "a checksum mismatch",
            archive(
                &manifest(&[("files/jwt.key", KEY)]),
                &[entry(b"files/jwt.key", regular, &KEY.to_ascii_uppercase(), None)],
            ),
            "SHA-256",
        ),
        ("a 1 GB bomb listed as such", bomb(&bomb_head, GB), "256.0 MiB"),
        ("a 1 GB bomb of padding after the end", bomb(&padded, GB), "padding"),
        (
            "an age file with a foreign recipient",
            [
                &b"age-encryption.org/v1\n-> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\nhjabGXwSLQ9c3S6Lw2i+S2Tu2fiwQHHslbBN6B41FLE\n--- "[..],
                &[b'A'; 43],
                b"\n",
                &[0; 64],
            ]
            .concat(),
            "not supported: passphrase (scrypt) only",
        ),
        (
            "an age header cut short",
            b"age-encryption.org/v1\n-> scrypt".to_vec(),
            "truncated header",
        ),
    ];
    for (what, body, says) in &cases {
        let started = Instant::now();
        let r = upload(&s, &a, "", "application/gzip", body);
        r.assert_field_error(422, "VALIDATION_ERROR", "body");
        let message = r.body["error"]["message"].as_str().unwrap_or("");
        eprintln!("{what}: {message}");
        assert!(message.contains(says), "{what}: {message}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: {:?}",
            started.elapsed()
        );
        assert_eq!(backup_dir_files(&s), Vec::<String>::new(), "{what}");
    }
    // Not an archive's content type.
    upload(&s, &a, "", "text/plain", &good).assert_error(400, "BAD_REQUEST");
    // The builder above makes archives the service accepts: the refusals are the defects'.
    let r = upload(&s, &a, "", "application/gzip", &good);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.data()["name"], "uploaded files backup of elsewhere");
    assert_eq!(r.data()["created_at"], "2026-12-01T10:00:00Z");
}

#[test]
fn uploads_over_the_size_cap_are_413_and_leave_nothing_behind() {
    let (s, a) = Server::with_config("[backup]\nmax_upload_mb = 1\n");
    // Declared too large: answered at once, before any of the body is sent.
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST /api/v1/backup/backups/upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Authorization: Bearer {a}\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\n\r\n",
        (1 << 20) + 1
    );
    c.write_all(head.as_bytes()).expect("write");
    common::read_response(&mut c).assert_error(413, "PAYLOAD_TOO_LARGE");
    // Chunked, with no length to check up front: cut off once past the cap. The body is
    // written by another thread while this one reads the answer.
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut w = c.try_clone().expect("clone");
    let head = format!(
        "POST /api/v1/backup/backups/upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Authorization: Bearer {a}\r\nContent-Type: application/gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(head.as_bytes());
        let piece = vec![0x55u8; 64 * 1024];
        for _ in 0..40 {
            if w.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                .is_err()
                || w.write_all(&piece).is_err()
                || w.write_all(b"\r\n").is_err()
            {
                return;
            }
        }
        let _ = w.write_all(b"0\r\n\r\n");
    });
    common::read_response(&mut c).assert_error(413, "PAYLOAD_TOO_LARGE");
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    drop(c);
    writer.join().expect("writer");
    wait_for(30, "the upload's file to go", || {
        backup_dir_files(&s).is_empty().then_some(())
    });
}

#[test]
fn an_upload_may_take_longer_than_the_body_timeout_but_not_stall_for_it() {
    let (s, a) = Server::with_config("[http]\nbody_read_timeout_secs = 2\n");
    let good = archive(
        &manifest(&[("files/jwt.key", KEY)]),
        &[entry(b"files/jwt.key", tar::EntryType::Regular, KEY, None)],
    );
    let head = |len: usize| {
        format!(
            "POST /api/v1/backup/backups/upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
             Authorization: Bearer {a}\r\nContent-Type: application/gzip\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    // A slow client: the body comes in four pieces 0.7 s apart, 2.8 s in all — more than
    // the timeout, which bounds the wait for each piece, not the whole body.
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    c.write_all(head(good.len()).as_bytes()).expect("write");
    let started = Instant::now();
    for piece in good.chunks(good.len().div_ceil(4)) {
        std::thread::sleep(Duration::from_millis(700));
        c.write_all(piece).expect("write");
    }
    let r = common::read_response(&mut c);
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(started.elapsed() > Duration::from_secs(2));
    // A stalled one: 408 once no piece has come for the timeout, and its file is gone.
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    c.write_all(head(good.len()).as_bytes()).expect("write");
    c.write_all(&good[..10]).expect("write");
    common::read_response(&mut c).assert_error(408, "REQUEST_TIMEOUT");
    let files = backup_dir_files(&s);
    assert!(!files.iter().any(|f| f.starts_with(".tmp")), "{files:?}");
    assert_eq!(
        files.len(),
        3,
        "the first upload, its entry, next-id: {files:?}"
    );
}
