//! The `/wireguard` API against the real binary, without root: servers and clients (CRUD,
//! defaults, conflicts, validation), client configs (JSON, `.conf` download, endpoint
//! precedence), QR codes that scan back to the config, wg-quick import, the role matrix,
//! the 503 of a start without privilege, and malformed input. No server is ever brought up
//! except in the 503 test, which makes sure it cannot be.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

// ---- helpers ----

/// `key` appears nowhere in `v` (objects at any depth).
fn assert_no_key(v: &Value, key: &str, context: &str) {
    match v {
        Value::Object(m) => {
            assert!(!m.contains_key(key), "{context}: {key:?} present in {v}");
            for x in m.values() {
                assert_no_key(x, key, context);
            }
        }
        Value::Array(a) => {
            for x in a {
                assert_no_key(x, key, context);
            }
        }
        _ => {}
    }
}

/// A request with exactly this `Host` header (or none), for endpoint fallback tests (the
/// harness always sends `Host: test`).
fn with_host(
    s: &Server,
    method: &str,
    path: &str,
    token: &str,
    host: Option<&str>,
    body: Option<&Value>,
) -> Resp {
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!("{method} /api/v1{path} HTTP/1.1\r\n");
    if let Some(h) = host {
        head.push_str(&format!("Host: {h}\r\n"));
    }
    head.push_str(&format!(
        "Authorization: Bearer {token}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    ));
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str("\r\n");
    c.write_all(head.as_bytes()).expect("write");
    c.write_all(body.as_bytes()).expect("write body");
    read_response(&mut c)
}

/// `(section, key, value)` of every setting of a wg-quick file, in order. Panics on a line
/// that is neither a section header, a `Key = value` pair, blank nor a comment.
fn conf_lines(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.starts_with('[') && l.ends_with(']') {
            section = l.to_string();
            continue;
        }
        let (k, v) = l
            .split_once('=')
            .unwrap_or_else(|| panic!("not a setting: {line:?} in\n{text}"));
        assert!(!section.is_empty(), "setting before any section: {line:?}");
        out.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
    }
    out
}

/// The value of `key` in `section` (exactly one expected).
fn setting(text: &str, section: &str, key: &str) -> Option<String> {
    let all: Vec<String> = conf_lines(text)
        .into_iter()
        .filter(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v)
        .collect();
    assert!(all.len() <= 1, "{section} {key} given {} times", all.len());
    all.into_iter().next()
}

/// The client's config text via `/config`.
fn config_of(s: &Server, token: &str, client: i64) -> String {
    let d = s.read(&format!("/wireguard/clients/{client}/config"), token);
    d["config"].as_str().expect("config").to_string()
}

fn endpoint_in(config: &str) -> String {
    setting(config, "[Peer]", "Endpoint").expect("Endpoint")
}

/// Decodes a `data:image/png;base64,…` URL with the `png` crate and the QR code in it with
/// `rqrr`: implementations independent of the ones that made it.
fn scan_data_url(url: &str) -> String {
    use ct_codecs::{Base64, Decoder};
    let b64 = url
        .strip_prefix("data:image/png;base64,")
        .unwrap_or_else(|| panic!("not a PNG data URL: {url}"));
    let bytes = Base64::decode_to_vec(b64, None).expect("base64");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG signature");
    let mut decoder = png::Decoder::new(std::io::Cursor::new(&bytes[..]));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("valid PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("frame");
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let stride = info.line_size;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * stride + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("QR decodes").1
}

fn is_base64_key(v: &Value) -> bool {
    v.as_str().is_some_and(|k| {
        ipv6wgm::wireguard::keys::PublicKey::from_base64(k).is_ok() && k.len() == 44
    })
}

// ---- servers ----

#[test]
fn create_server_applies_defaults_and_never_shows_its_private_key() {
    let (s, a) = Server::with_admin();
    let r = s.post(
        "/wireguard/servers",
        Some(&a),
        &json!({"name": "home", "ipv4_address": "10.0.0.1/24", "ipv6_address": "fd00::1/64"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["success"], true);
    let v = r.data();
    assert_eq!(v["name"], "home");
    assert_eq!(v["interface"], "wg0");
    assert_eq!(v["listen_port"], 51820);
    assert_eq!(v["mtu"], 1420);
    assert_eq!(v["status"], "stopped");
    assert_eq!(v["is_active"], false);
    assert_eq!(v["clients_count"], 0);
    assert_eq!(v["ipv4_address"], "10.0.0.1/24");
    assert_eq!(v["ipv6_address"], "fd00::1/64");
    assert_eq!(v["last_error"], Value::Null);
    assert!(is_base64_key(&v["public_key"]), "{v}");
    assert_no_key(&r.body, "private_key", "create server");

    let second = s.create_wg_server(&a, json!({"name": "office", "ipv4_address": "10.1.0.1/24"}));
    assert_eq!(second["interface"], "wg1");
    assert_eq!(second["listen_port"], 51821);
    assert_ne!(second["public_key"], v["public_key"], "a key pair each");
    assert_no_key(&second, "private_key", "create server");
}

#[test]
fn get_server_returns_the_stored_server_without_its_private_key() {
    let (s, a) = Server::with_admin();
    let created = s.create_wg_server(
        &a,
        json!({"name": "home", "ipv4_address": "10.0.0.1/24", "description": "upstairs",
               "dns_servers": ["10.0.0.1", "2001:4860:4860::8888"], "endpoint": "vpn.example.com",
               "persistent_keepalive": 25, "mtu": 1400}),
    );
    let r = s.get(&format!("/wireguard/servers/{}", id_of(&created)), Some(&a));
    assert_eq!(r.status, 200, "{}", r.body);
    let g = r.data();
    for k in [
        "id",
        "name",
        "interface",
        "description",
        "listen_port",
        "ipv4_address",
        "ipv6_address",
        "dns_servers",
        "mtu",
        "endpoint",
        "persistent_keepalive",
        "public_key",
        "is_active",
        "status",
        "created_at",
    ] {
        assert_eq!(g[k], created[k], "{k}");
    }
    assert_eq!(
        g["dns_servers"],
        json!(["10.0.0.1", "2001:4860:4860::8888"])
    );
    assert_eq!(g["mtu"], 1400);
    assert_eq!(g["endpoint"], "vpn.example.com");
    assert_no_key(&r.body, "private_key", "get server");
}

#[test]
fn list_servers_paginates_and_filters_by_status() {
    let (s, a) = Server::with_admin();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        s.wg_server_id(&a, name, Some(&format!("10.{i}.0.1/24")), None);
    }
    let r = s.get("/wireguard/servers", Some(&a));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["servers"].as_array().expect("servers").len(), 3);
    assert_eq!(
        r.data()["pagination"],
        json!({"page": 1, "size": 20, "total": 3, "pages": 1})
    );
    assert_no_key(&r.body, "private_key", "list servers");

    let r = s.get("/wireguard/servers?page=2&size=2", Some(&a));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.data()["pagination"],
        json!({"page": 2, "size": 2, "total": 3, "pages": 2})
    );
    let page2 = r.data()["servers"].as_array().expect("servers");
    assert_eq!(page2.len(), 1);
    assert_eq!(page2[0]["name"], "c");

    let r = s.get("/wireguard/servers?status=stopped", Some(&a));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["pagination"]["total"], 3);
    let r = s.get("/wireguard/servers?status=stopped&size=1&page=3", Some(&a));
    assert_eq!(r.data()["servers"][0]["name"], "c");
    assert_eq!(r.data()["pagination"]["pages"], 3);
    let r = s.get("/wireguard/servers?status=running", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 0);
    assert_eq!(r.data()["servers"], json!([]));

    let r = s.get("/wireguard/servers?status=up", Some(&a));
    r.assert_field_error(422, "VALIDATION_ERROR", "status");
    s.get("/wireguard/servers?size=0", Some(&a))
        .assert_error(422, "VALIDATION_ERROR");
    let r = s.get("/wireguard/servers?sise=5", Some(&a));
    r.assert_field_error(422, "VALIDATION_ERROR", "sise");
}

#[test]
fn put_and_patch_change_only_the_given_fields() {
    let (s, a) = Server::with_admin();
    let created = s.create_wg_server(
        &a,
        json!({"name": "home", "ipv4_address": "10.0.0.1/24", "description": "old",
               "endpoint": "vpn.example.com"}),
    );
    let path = format!("/wireguard/servers/{}", id_of(&created));

    let r = s.send(
        "PATCH",
        &path,
        Some(&a),
        &json!({"mtu": 1380, "description": "new"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let p = r.data();
    assert_eq!(p["mtu"], 1380);
    assert_eq!(p["description"], "new");
    for k in [
        "name",
        "interface",
        "listen_port",
        "ipv4_address",
        "endpoint",
        "public_key",
    ] {
        assert_eq!(p[k], created[k], "{k} unchanged");
    }
    assert_no_key(&r.body, "private_key", "patch server");

    let r = s.send(
        "PUT",
        &path,
        Some(&a),
        &json!({"name": "house", "listen_port": 40000, "ipv6_address": "fd00::1/64",
                "endpoint": null}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let p = r.data();
    assert_eq!(p["name"], "house");
    assert_eq!(p["listen_port"], 40000);
    assert_eq!(p["ipv6_address"], "fd00::1/64");
    assert_eq!(p["endpoint"], Value::Null, "null clears");
    assert_eq!(p["mtu"], 1380, "kept from the PATCH");
    assert_eq!(p["description"], "new");
    assert_eq!(p["status"], "stopped");

    let g = s.get(&path, Some(&a));
    assert_eq!(g.data()["name"], "house");
    assert_eq!(g.data()["listen_port"], 40000);

    let r = s.send("PATCH", &path, Some(&a), &json!({"mtu": 100}));
    r.assert_field_error(422, "VALIDATION_ERROR", "mtu");
    let r = s.send("PATCH", &path, Some(&a), &json!({"public_key": "x"}));
    r.assert_error(422, "VALIDATION_ERROR");
    assert_eq!(r.field(), "public_key", "not writable: an unknown field");
}

#[test]
fn server_conflicts_name_the_field() {
    let (s, a) = Server::with_admin();
    s.wg_server_id(&a, "home", Some("10.0.0.1/24"), Some("fd00::1/64"));
    let cases = [
        (
            json!({"name": "HOME", "ipv4_address": "10.2.0.1/24"}),
            "name",
        ),
        (
            json!({"name": "x", "interface": "wg0", "ipv4_address": "10.2.0.1/24"}),
            "interface",
        ),
        (
            json!({"name": "x", "listen_port": 51820, "ipv4_address": "10.2.0.1/24"}),
            "listen_port",
        ),
        (
            json!({"name": "x", "ipv4_address": "10.0.0.129/25"}),
            "ipv4_address",
        ),
        (
            json!({"name": "x", "ipv4_address": "10.0.0.1/16"}),
            "ipv4_address",
        ),
        (
            json!({"name": "x", "ipv4_address": "10.2.0.1/24", "ipv6_address": "fd00::1:1/112"}),
            "ipv6_address",
        ),
    ];
    for (body, field) in cases {
        let r = s.post("/wireguard/servers", Some(&a), &body);
        r.assert_error(409, "RESOURCE_CONFLICT");
        assert_eq!(r.field(), field, "{body}: {}", r.body);
    }
    // The same rules on update.
    let other = s.wg_server_id(&a, "other", Some("10.2.0.1/24"), None);
    let r = s.send(
        "PATCH",
        &format!("/wireguard/servers/{other}"),
        Some(&a),
        &json!({"listen_port": 51820}),
    );
    r.assert_field_error(409, "RESOURCE_CONFLICT", "listen_port");
    let r = s.get("/wireguard/servers", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 2, "nothing else stored");
}

#[test]
fn server_validation_errors_name_the_field() {
    let (s, a) = Server::with_admin();
    let cases = [
        (
            json!({"name": "x", "ipv4_address": "10.0.0.1/33"}),
            "ipv4_address",
        ),
        (
            json!({"name": "x", "ipv4_address": "ten.0.0.1/24"}),
            "ipv4_address",
        ),
        (
            json!({"name": "x", "ipv4_address": "10.0.0.1/31"}),
            "ipv4_address",
        ),
        (
            json!({"name": "x", "ipv4_address": "10.0.0.0/24"}),
            "ipv4_address",
        ),
        (
            json!({"name": "x", "ipv6_address": "fd00::/64"}),
            "ipv6_address",
        ),
        (
            json!({"name": "x", "ipv6_address": "fd00::1/64x"}),
            "ipv6_address",
        ),
        // No address at all: reported on ipv4_address ("needs an ipv4_address, an
        // ipv6_address or both").
        (json!({"name": "x"}), "ipv4_address"),
        (
            json!({"name": "x", "ipv4_address": "", "ipv6_address": " "}),
            "ipv4_address",
        ),
        (
            json!({"name": "x", "ipv4_address": "10.0.0.1/24", "mtu": 100}),
            "mtu",
        ),
        (
            json!({"name": "x", "ipv4_address": "10.0.0.1/24", "colour": "blue"}),
            "colour",
        ),
        (
            json!({"name": "x", "ipv4_address": "10.0.0.1/24", "interface": "wg 0"}),
            "interface",
        ),
        (
            json!({"name": "x", "ipv4_address": "10.0.0.1/24", "listen_port": 0}),
            "listen_port",
        ),
        (
            json!({"name": "x", "ipv4_address": "10.0.0.1/24", "dns_servers": ["dns.google"]}),
            "dns_servers",
        ),
        (
            json!({"name": "x", "ipv4_address": "10.0.0.1/24", "endpoint": "vpn example.com"}),
            "endpoint",
        ),
        (json!({"name": "", "ipv4_address": "10.0.0.1/24"}), "name"),
        (json!({"ipv4_address": "10.0.0.1/24"}), "name"),
    ];
    for (body, field) in cases {
        let r = s.post("/wireguard/servers", Some(&a), &body);
        r.assert_error(422, "VALIDATION_ERROR");
        assert_eq!(r.field(), field, "{body}: {}", r.body);
    }
    let r = s.get("/wireguard/servers", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 0, "nothing stored");
}

#[test]
fn deleting_a_server_with_clients_needs_force_and_takes_the_clients() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), None);
    let c1 = id_of(&s.create_client(&a, json!({"server_id": sid, "name": "c1"})));
    let c2 = id_of(&s.create_client(&a, json!({"server_id": sid, "name": "c2"})));
    let path = format!("/wireguard/servers/{sid}");
    assert_eq!(s.get(&path, Some(&a)).data()["clients_count"], 2);

    let r = s.call("DELETE", &path, Some(&a), None);
    r.assert_field_error(409, "RESOURCE_CONFLICT", "force");
    assert_eq!(s.get(&path, Some(&a)).status, 200, "still there");
    let r = s.call("DELETE", &format!("{path}?force=maybe"), Some(&a), None);
    r.assert_field_error(422, "VALIDATION_ERROR", "force");

    let r = s.call("DELETE", &format!("{path}?force=true"), Some(&a), None);
    assert_eq!(r.status, 200, "{}", r.body);
    s.get(&path, Some(&a))
        .assert_error(404, "RESOURCE_NOT_FOUND");
    for c in [c1, c2] {
        s.get(&format!("/wireguard/clients/{c}"), Some(&a))
            .assert_error(404, "RESOURCE_NOT_FOUND");
    }
    let r = s.get("/wireguard/clients", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 0);
    s.call("DELETE", &path, Some(&a), None)
        .assert_error(404, "RESOURCE_NOT_FOUND");

    // Without clients no force is needed; the freed subnet, port and interface are reusable.
    let empty = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), None);
    let r = s.call(
        "DELETE",
        &format!("/wireguard/servers/{empty}"),
        Some(&a),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

// ---- clients ----

#[test]
fn clients_get_the_next_free_addresses_skipping_the_servers() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), Some("fd00::1/64"));
    let c1 = s.create_client(&a, json!({"server_id": sid, "name": "c1"}));
    assert_eq!(c1["ipv4_address"], "10.0.0.2/32");
    assert_eq!(c1["ipv6_address"], "fd00::2/128");
    assert_eq!(c1["server_id"], sid);
    assert_eq!(c1["enabled"], true);
    assert_eq!(c1["config_available"], true);
    assert_eq!(c1["allowed_ips"], json!(["0.0.0.0/0", "::/0"]));
    assert!(is_base64_key(&c1["public_key"]), "{c1}");
    let c2 = s.create_client(&a, json!({"server_id": sid, "name": "c2"}));
    assert_eq!(c2["ipv4_address"], "10.0.0.3/32");
    assert_eq!(c2["ipv6_address"], "fd00::3/128");
    let explicit = s.create_client(
        &a,
        json!({"server_id": sid, "name": "fixed", "ipv4_address": "10.0.0.50",
               "ipv6_address": "fd00::50/128"}),
    );
    assert_eq!(explicit["ipv4_address"], "10.0.0.50/32");
    assert_eq!(explicit["ipv6_address"], "fd00::50/128");
    let c4 = s.create_client(&a, json!({"server_id": sid, "name": "c4"}));
    assert_eq!(c4["ipv4_address"], "10.0.0.4/32");

    // A server whose own address is not the first host: it is skipped, not handed out.
    let mid = s.wg_server_id(&a, "mid", Some("10.1.0.2/24"), Some("fd01::2/64"));
    let m1 = s.create_client(&a, json!({"server_id": mid, "name": "m1"}));
    let m2 = s.create_client(&a, json!({"server_id": mid, "name": "m2"}));
    assert_eq!(
        (&m1["ipv4_address"], &m1["ipv6_address"]),
        (&json!("10.1.0.1/32"), &json!("fd01::1/128"))
    );
    assert_eq!(
        (&m2["ipv4_address"], &m2["ipv6_address"]),
        (&json!("10.1.0.3/32"), &json!("fd01::3/128"))
    );
    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": mid, "name": "own", "ipv4_address": "10.1.0.2"}),
    );
    r.assert_error(422, "VALIDATION_ERROR");
    assert_eq!(r.field(), "ipv4_address", "the server's own address");

    // A v4-only server gives v4-only clients.
    let v4only = s.wg_server_id(&a, "v4", Some("10.2.0.1/24"), None);
    let c = s.create_client(&a, json!({"server_id": v4only, "name": "c"}));
    assert_eq!(c["ipv6_address"], Value::Null);
    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": v4only, "name": "d", "ipv6_address": "fd00::9"}),
    );
    r.assert_field_error(422, "VALIDATION_ERROR", "ipv6_address");
}

#[test]
fn client_address_and_name_conflicts() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), Some("fd00::1/64"));
    let other = s.wg_server_id(&a, "other", Some("10.1.0.1/24"), None);
    s.create_client(&a, json!({"server_id": sid, "name": "laptop"}));

    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": sid, "name": "x", "ipv4_address": "10.0.0.2/32"}),
    );
    r.assert_field_error(409, "RESOURCE_CONFLICT", "ipv4_address");
    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": sid, "name": "x", "ipv6_address": "fd00::2"}),
    );
    r.assert_field_error(409, "RESOURCE_CONFLICT", "ipv6_address");

    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": sid, "name": "x", "ipv4_address": "10.1.0.9"}),
    );
    r.assert_field_error(422, "VALIDATION_ERROR", "ipv4_address");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("outside"),
        "{}",
        r.body
    );

    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": sid, "name": "LAPTOP"}),
    );
    r.assert_field_error(409, "RESOURCE_CONFLICT", "name");
    // Names are per server.
    s.create_client(&a, json!({"server_id": other, "name": "laptop"}));
    let r = s.get("/wireguard/clients", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 2, "nothing else stored");
}

#[test]
fn invalid_public_key_is_a_validation_error() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), None);
    for key in [
        "not-a-key",
        "",
        "AAAA",
        "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8D",
    ] {
        let r = s.post(
            "/wireguard/clients",
            Some(&a),
            &json!({"server_id": sid, "name": "x", "public_key": key}),
        );
        r.assert_error(422, "VALIDATION_ERROR");
        assert_eq!(r.field(), "public_key", "{key:?}: {}", r.body);
    }
}

#[test]
fn a_client_with_its_own_key_has_no_config() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), None);
    let own = ipv6wgm::wireguard::keys::PrivateKey::generate()
        .public_key()
        .to_base64();
    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": sid, "name": "router", "public_key": own}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let c = r.data();
    assert_eq!(c["public_key"], own.as_str());
    assert_eq!(c["config_available"], false);
    assert_eq!(c["private_key"], Value::Null);
    assert_eq!(c["config"], Value::Null);
    assert_eq!(c["qr_code"], Value::Null);
    let id = id_of(c);
    assert_eq!(
        s.get(&format!("/wireguard/clients/{id}"), Some(&a)).data()["config_available"],
        false
    );
    s.get(&format!("/wireguard/clients/{id}/config"), Some(&a))
        .assert_error(409, "RESOURCE_CONFLICT");
    s.get(
        &format!("/wireguard/clients/{id}/config?format=conf"),
        Some(&a),
    )
    .assert_error(409, "RESOURCE_CONFLICT");
    s.get(&format!("/wireguard/clients/{id}/qrcode"), Some(&a))
        .assert_error(409, "RESOURCE_CONFLICT");

    // The same public key on another client (any server) is a conflict.
    let other = s.wg_server_id(&a, "other", Some("10.1.0.1/24"), None);
    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": other, "name": "twin", "public_key": own}),
    );
    r.assert_field_error(409, "RESOURCE_CONFLICT", "public_key");
}

#[test]
fn create_response_carries_the_secrets_once_and_reads_never_do() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), Some("fd00::1/64"));
    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": sid, "name": "laptop", "use_preshared_key": true}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let c = r.data().clone();
    let private_key = c["private_key"].as_str().expect("private_key").to_string();
    let derived = ipv6wgm::wireguard::keys::PrivateKey::from_base64(&private_key)
        .expect("a valid private key")
        .public_key()
        .to_base64();
    assert_eq!(c["public_key"], derived.as_str(), "the pair matches");
    assert_eq!(c["use_preshared_key"], true);
    let config = c["config"].as_str().expect("config");
    assert_eq!(
        setting(config, "[Interface]", "PrivateKey").as_deref(),
        Some(private_key.as_str())
    );
    let psk = setting(config, "[Peer]", "PresharedKey").expect("PresharedKey line");
    assert!(
        ipv6wgm::wireguard::keys::PresharedKey::from_base64(&psk).is_ok(),
        "{psk}"
    );
    assert!(c["qr_code"]
        .as_str()
        .expect("qr_code")
        .starts_with("data:image/png;base64,"));
    assert_no_key(&c, "preshared_key", "create client");

    let plain = s.create_client(&a, json!({"server_id": sid, "name": "phone"}));
    assert_eq!(plain["use_preshared_key"], false);
    let plain_conf = plain["config"].as_str().expect("config");
    assert_eq!(setting(plain_conf, "[Peer]", "PresharedKey"), None);

    let id = id_of(&c);
    let reads = [
        s.get(&format!("/wireguard/clients/{id}"), Some(&a)),
        s.get("/wireguard/clients", Some(&a)),
        s.get(&format!("/wireguard/clients?server_id={sid}"), Some(&a)),
        s.send(
            "PATCH",
            &format!("/wireguard/clients/{id}"),
            Some(&a),
            &json!({"description": "work laptop"}),
        ),
    ];
    for r in reads {
        assert_eq!(r.status, 200, "{}", r.body);
        assert_no_key(&r.body, "private_key", "client read");
        assert_no_key(&r.body, "preshared_key", "client read");
        let text = String::from_utf8_lossy(&r.raw_body);
        assert!(!text.contains(&private_key), "private key leaked: {text}");
        assert!(!text.contains(&psk), "preshared key leaked: {text}");
    }
    let g = s.get(&format!("/wireguard/clients/{id}"), Some(&a));
    assert_eq!(g.data()["use_preshared_key"], true);
    assert_eq!(g.data()["description"], "work laptop");
    assert_eq!(g.data()["public_key"], derived.as_str());
    // The config stays the same key material after the create.
    let again = config_of(&s, &a, id);
    assert_eq!(again, config);
}

#[test]
fn routed_prefixes_must_be_canonical_and_disjoint() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), Some("fd00::1/64"));
    let other = s.wg_server_id(&a, "other", Some("10.1.0.1/24"), None);
    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": sid, "name": "x", "routed_prefixes": ["2001:db8:1::1/48"]}),
    );
    r.assert_field_error(422, "VALIDATION_ERROR", "routed_prefixes");
    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": sid, "name": "x", "routed_prefixes": ["2001:db8:1::/48", "2001:db8:1:2::/64"]}),
    );
    r.assert_error(422, "VALIDATION_ERROR");
    assert_eq!(r.field(), "routed_prefixes", "overlap within one list");

    let site = s.create_client(
        &a,
        json!({"server_id": sid, "name": "site", "routed_prefixes": ["2001:db8:1::/48"]}),
    );
    assert_eq!(site["routed_prefixes"], json!(["2001:db8:1::/48"]));
    for (server, p) in [
        (sid, "2001:db8:1:5::/64"),
        (other, "2001:db8::/32"),
        (other, "2001:db8:1::/48"),
    ] {
        let r = s.post(
            "/wireguard/clients",
            Some(&a),
            &json!({"server_id": server, "name": "y", "routed_prefixes": [p]}),
        );
        r.assert_error(409, "RESOURCE_CONFLICT");
        assert_eq!(r.field(), "routed_prefixes", "{p}: {}", r.body);
    }
    // A server subnet is not routable to a client either.
    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": other, "name": "y", "routed_prefixes": ["10.0.0.0/16"]}),
    );
    r.assert_field_error(409, "RESOURCE_CONFLICT", "routed_prefixes");
    let ok = s.create_client(
        &a,
        json!({"server_id": other, "name": "y", "routed_prefixes": ["2001:db8:2::/48"]}),
    );
    assert_eq!(ok["routed_prefixes"], json!(["2001:db8:2::/48"]));
}

#[test]
fn an_exhausted_subnet_is_a_conflict() {
    let (s, a) = Server::with_admin();
    // 10.9.0.0/30: .0 network, .1 server, .2 the only client host, .3 broadcast.
    let sid = s.wg_server_id(&a, "tiny", Some("10.9.0.1/30"), None);
    let only = s.create_client(&a, json!({"server_id": sid, "name": "only"}));
    assert_eq!(only["ipv4_address"], "10.9.0.2/32");
    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": sid, "name": "more"}),
    );
    r.assert_field_error(409, "RESOURCE_CONFLICT", "ipv4_address");
    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": sid, "name": "more", "ipv4_address": "10.9.0.3"}),
    );
    r.assert_error(422, "VALIDATION_ERROR");
    assert_eq!(r.field(), "ipv4_address", "the broadcast address");
}

#[test]
fn list_clients_filters_by_server_enabled_and_search() {
    let (s, a) = Server::with_admin();
    let one = s.wg_server_id(&a, "one", Some("10.0.0.1/24"), None);
    let two = s.wg_server_id(&a, "two", Some("10.1.0.1/24"), None);
    // Search also matches public keys: fixed ones keep random base64 from matching "RAV".
    let key = |b: u8| ipv6wgm::wireguard::keys::PublicKey::from_bytes([b; 32]).to_base64();
    s.create_client(
        &a,
        json!({"server_id": one, "name": "alpha", "public_key": key(1)}),
    );
    s.create_client(
        &a,
        json!({"server_id": one, "name": "bravo", "enabled": false, "public_key": key(2)}),
    );
    s.create_client(&a, json!({"server_id": two, "name": "charlie", "description": "Office printer", "public_key": key(3)}),
    );
    let names = |r: &Resp| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", r.body);
        r.data()["clients"]
            .as_array()
            .expect("clients")
            .iter()
            .map(|c| c["name"].as_str().expect("name").to_string())
            .collect()
    };
    let r = s.get("/wireguard/clients", Some(&a));
    assert_eq!(names(&r), ["alpha", "bravo", "charlie"]);
    assert_eq!(
        r.data()["pagination"],
        json!({"page": 1, "size": 20, "total": 3, "pages": 1})
    );
    let r = s.get(&format!("/wireguard/clients?server_id={one}"), Some(&a));
    assert_eq!(names(&r), ["alpha", "bravo"]);
    let r = s.get(&format!("/wireguard/clients?server_id={two}"), Some(&a));
    assert_eq!(names(&r), ["charlie"]);
    let r = s.get("/wireguard/clients?enabled=false", Some(&a));
    assert_eq!(names(&r), ["bravo"]);
    let r = s.get(
        &format!("/wireguard/clients?enabled=true&server_id={one}"),
        Some(&a),
    );
    assert_eq!(names(&r), ["alpha"]);
    let r = s.get("/wireguard/clients?search=RAV", Some(&a));
    assert_eq!(names(&r), ["bravo"]);
    let r = s.get("/wireguard/clients?search=printer", Some(&a));
    assert_eq!(names(&r), ["charlie"], "description matches");
    let r = s.get("/wireguard/clients?search=10.1.0.2", Some(&a));
    assert_eq!(names(&r), ["charlie"], "address matches");
    let r = s.get("/wireguard/clients?search=%25", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 0, "'%' is literal");
    let r = s.get("/wireguard/clients?size=2&page=2", Some(&a));
    assert_eq!(names(&r), ["charlie"]);
    assert_eq!(r.data()["pagination"]["pages"], 2);
    let r = s.get("/wireguard/clients?server_id=999", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 0);

    let r = s.get("/wireguard/clients?enabled=maybe", Some(&a));
    r.assert_field_error(422, "VALIDATION_ERROR", "enabled");
    let r = s.get("/wireguard/clients?server_id=abc", Some(&a));
    r.assert_field_error(422, "VALIDATION_ERROR", "server_id");
}

/// The list keeps each client's rendered item (`wireguard/listing.rs`): each item is what
/// `GET /wireguard/clients/{id}` shows, and every kind of write shows in the next list —
/// an update, a prefix delegated from a pool (written by the pool service), a delete.
#[test]
fn the_list_shows_what_get_shows_after_every_write() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), Some("fd00::1/64"));
    let ids: Vec<i64> = ["a", "b", "c"]
        .iter()
        .map(|n| id_of(&s.create_client(&a, json!({"server_id": sid, "name": n}))))
        .collect();
    let listed = |s: &Server| -> Vec<Value> {
        let r = s.get("/wireguard/clients?size=100", Some(&a));
        assert_eq!(r.status, 200, "{}", r.body);
        r.data()["clients"].as_array().expect("clients").clone()
    };
    let same_as_get = |s: &Server| {
        for item in listed(s) {
            let one = s.get(&format!("/wireguard/clients/{}", id_of(&item)), Some(&a));
            assert_eq!(&item, one.data());
        }
    };
    same_as_get(&s);
    let path = format!("/wireguard/clients/{}", ids[0]);
    let r = s.send(
        "PATCH",
        &path,
        Some(&a),
        &json!({"name": "renamed", "description": "x\"y"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Twice within one second: the second write must show too.
    let r = s.send("PATCH", &path, Some(&a), &json!({"enabled": false}));
    assert_eq!(r.status, 200, "{}", r.body);
    let first = listed(&s).remove(0);
    assert_eq!(
        (&first["name"], &first["description"], &first["status"]),
        (&json!("renamed"), &json!("x\"y"), &json!("disabled"))
    );
    same_as_get(&s);

    let pool = s.pool_id(&a, "isp", "2001:db8::/32");
    let r = s.post(
        &format!("/ipv6/pools/{pool}/allocate"),
        Some(&a),
        &json!({"client_id": ids[1]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let prefix = r.data()["allocated_prefix"].clone();
    assert_eq!(listed(&s)[1]["routed_prefixes"], json!([prefix]));
    same_as_get(&s);

    let r = s.call(
        "DELETE",
        &format!("/wireguard/clients/{}", ids[2]),
        Some(&a),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let names: Vec<Value> = listed(&s).iter().map(|c| c["name"].clone()).collect();
    assert_eq!(names, [json!("renamed"), json!("b")]);
}

#[test]
fn disabled_clients_show_disabled_whether_or_not_the_server_runs() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), None);
    let c = s.create_client(&a, json!({"server_id": sid, "name": "laptop"}));
    assert_eq!(c["status"], "offline");
    let path = format!("/wireguard/clients/{}", id_of(&c));
    let r = s.send("PATCH", &path, Some(&a), &json!({"enabled": false}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["enabled"], false);
    // An enabled client of a stopped server is "offline"; a disabled one is "disabled"
    // either way (it is not on the device even when the server runs).
    assert_eq!(r.data()["status"], "disabled");
    let g = s.get(&path, Some(&a));
    assert_eq!(g.data()["enabled"], false);
    assert_eq!(g.data()["status"], "disabled");
    assert_eq!(g.data()["last_handshake"], Value::Null);
    assert_eq!(g.data()["bytes_received"], 0);
    // Disabled clients keep their config and are enabled again by PUT.
    assert_eq!(s.get(&format!("{path}/config"), Some(&a)).status, 200);
    let r = s.send("PUT", &path, Some(&a), &json!({"enabled": true}));
    assert_eq!(r.data()["enabled"], true);
    assert_eq!(r.data()["ipv4_address"], "10.0.0.2/32", "address kept");
}

#[test]
fn client_updates_check_addresses_and_clear_with_null() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), Some("fd00::1/64"));
    let one = id_of(&s.create_client(&a, json!({"server_id": sid, "name": "one"})));
    s.create_client(&a, json!({"server_id": sid, "name": "two"}));
    let path = format!("/wireguard/clients/{one}");
    let r = s.send(
        "PATCH",
        &path,
        Some(&a),
        &json!({"ipv4_address": "10.0.0.50", "ipv6_address": null, "mtu": 1280}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["ipv4_address"], "10.0.0.50/32");
    assert_eq!(r.data()["ipv6_address"], Value::Null);
    assert_eq!(r.data()["mtu"], 1280);
    assert_eq!(r.data()["name"], "one");
    let conf = config_of(&s, &a, one);
    assert_eq!(
        setting(&conf, "[Interface]", "Address").as_deref(),
        Some("10.0.0.50/32")
    );
    assert_eq!(
        setting(&conf, "[Interface]", "MTU").as_deref(),
        Some("1280")
    );
    let r = s.send(
        "PATCH",
        &path,
        Some(&a),
        &json!({"ipv4_address": "10.0.0.3"}),
    );
    r.assert_field_error(409, "RESOURCE_CONFLICT", "ipv4_address");
    let r = s.send("PATCH", &path, Some(&a), &json!({"name": "TWO"}));
    r.assert_field_error(409, "RESOURCE_CONFLICT", "name");
    let r = s.send("PATCH", &path, Some(&a), &json!({"server_id": 5}));
    r.assert_error(422, "VALIDATION_ERROR");
    assert_eq!(r.field(), "server_id", "a client cannot move servers");

    let r = s.call("DELETE", &path, Some(&a), None);
    assert_eq!(r.status, 200, "{}", r.body);
    s.get(&path, Some(&a))
        .assert_error(404, "RESOURCE_NOT_FOUND");
    s.call("DELETE", &path, Some(&a), None)
        .assert_error(404, "RESOURCE_NOT_FOUND");
}

// ---- config ----

#[test]
fn config_is_json_by_default_and_a_conf_download_on_request() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), None);
    let id = id_of(&s.create_client(&a, json!({"server_id": sid, "name": "laptop"})));
    let base = format!("/wireguard/clients/{id}/config");
    let r = s.get(&base, Some(&a));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let config = r.data()["config"].as_str().expect("config").to_string();
    assert!(config.starts_with("[Interface]\n"), "{config}");
    assert_eq!(
        s.get(&format!("{base}?format=json"), Some(&a)).data()["config"],
        config.as_str()
    );

    let r = s.get(&format!("{base}?format=conf"), Some(&a));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"laptop.conf\"")
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(String::from_utf8_lossy(&r.raw_body), config);

    let r = s.get(&format!("{base}?format=xml"), Some(&a));
    r.assert_field_error(422, "VALIDATION_ERROR", "format");
    let r = s.get(&format!("{base}?fromat=conf"), Some(&a));
    r.assert_field_error(422, "VALIDATION_ERROR", "fromat");
}

#[test]
fn config_download_name_is_made_safe() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), None);
    let id = id_of(&s.create_client(&a, json!({"server_id": sid, "name": "Anna's \"phone\"/x"})));
    let r = s.get(
        &format!("/wireguard/clients/{id}/config?format=conf"),
        Some(&a),
    );
    assert_eq!(r.status, 200);
    let cd = r
        .header("content-disposition")
        .expect("content-disposition");
    let name = cd
        .strip_prefix("attachment; filename=\"")
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{cd}"));
    assert!(name.ends_with(".conf"), "{cd}");
    assert!(
        !name.contains(['"', '/', '\'', ' ', '\\']),
        "unsafe characters in {cd}"
    );
}

#[test]
fn config_lines_are_a_complete_wg_quick_client() {
    let (s, a) = Server::with_admin();
    let server = s.create_wg_server(
        &a,
        json!({"name": "home", "ipv4_address": "10.0.0.1/24", "ipv6_address": "fd00::1/64",
               "dns_servers": ["10.0.0.1", "fd00::1"], "endpoint": "vpn.example.com",
               "persistent_keepalive": 25}),
    );
    let created = s.create_client(&a, json!({"server_id": id_of(&server), "name": "laptop"}));
    let config = config_of(&s, &a, id_of(&created));
    assert_eq!(created["config"], config.as_str(), "same as at create");
    let sections: Vec<&str> = config.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(sections, ["[Interface]", "[Peer]"]);
    let i = |k: &str| setting(&config, "[Interface]", k);
    let p = |k: &str| setting(&config, "[Peer]", k);
    assert_eq!(i("PrivateKey").as_deref(), created["private_key"].as_str());
    assert_eq!(i("Address").as_deref(), Some("10.0.0.2/32, fd00::2/128"));
    assert_eq!(i("DNS").as_deref(), Some("10.0.0.1, fd00::1"));
    assert_eq!(i("MTU").as_deref(), Some("1420"));
    assert_eq!(i("ListenPort"), None, "a client does not listen");
    assert_eq!(p("PublicKey").as_deref(), server["public_key"].as_str());
    assert_eq!(p("Endpoint").as_deref(), Some("vpn.example.com:51820"));
    assert_eq!(p("AllowedIPs").as_deref(), Some("0.0.0.0/0, ::/0"));
    assert_eq!(p("PersistentKeepalive").as_deref(), Some("25"));
    assert_eq!(p("PresharedKey"), None);
    let keys: Vec<String> = conf_lines(&config).into_iter().map(|(_, k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "PrivateKey",
            "Address",
            "DNS",
            "MTU",
            "PublicKey",
            "Endpoint",
            "AllowedIPs",
            "PersistentKeepalive"
        ],
        "nothing else (no server-side settings such as PostUp or SaveConfig)"
    );

    // Client-specific values win over the server's.
    let custom = s.create_client(&a, json!({"server_id": id_of(&server), "name": "split", "allowed_ips": ["10.0.0.0/24", "fd00::/64"],
               "dns_servers": ["9.9.9.9"], "mtu": 1280, "persistent_keepalive": 0}),
    );
    let config = config_of(&s, &a, id_of(&custom));
    assert_eq!(
        setting(&config, "[Peer]", "AllowedIPs").as_deref(),
        Some("10.0.0.0/24, fd00::/64")
    );
    assert_eq!(
        setting(&config, "[Interface]", "DNS").as_deref(),
        Some("9.9.9.9")
    );
    assert_eq!(
        setting(&config, "[Interface]", "MTU").as_deref(),
        Some("1280")
    );
    assert_eq!(
        setting(&config, "[Peer]", "PersistentKeepalive"),
        None,
        "0 is off"
    );
}

#[test]
fn endpoint_prefers_the_servers_own_endpoint() {
    let s = Server::start_with(Opts {
        admin_password: Some(ADMIN_PW.into()),
        args: vec!["--public-host".into(), "gw.example.net".into()],
        ..Default::default()
    });
    let a = s.admin();
    let sid = id_of(&s.create_wg_server(
        &a,
        json!({"name": "home", "ipv4_address": "10.0.0.1/24", "endpoint": "vpn.example.com"}),
    ));
    let id = id_of(&s.create_client(&a, json!({"server_id": sid, "name": "laptop"})));
    let path = format!("/wireguard/clients/{id}/config");
    let r = with_host(&s, "GET", &path, &a, Some("router.lan:8000"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        endpoint_in(r.data()["config"].as_str().expect("config")),
        "vpn.example.com:51820"
    );
    // An endpoint with its own port keeps it (a port-forward on the upstream router).
    let r = s.send(
        "PATCH",
        &format!("/wireguard/servers/{sid}"),
        Some(&a),
        &json!({"endpoint": "vpn.example.com:443"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(endpoint_in(&config_of(&s, &a, id)), "vpn.example.com:443");
    let r = s.send(
        "PATCH",
        &format!("/wireguard/servers/{sid}"),
        Some(&a),
        &json!({"endpoint": "2001:db8::1"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(endpoint_in(&config_of(&s, &a, id)), "[2001:db8::1]:51820");
}

#[test]
fn endpoint_falls_back_to_the_public_host_flag() {
    let s = Server::start_with(Opts {
        admin_password: Some(ADMIN_PW.into()),
        args: vec!["--public-host".into(), "gw.example.net".into()],
        ..Default::default()
    });
    let a = s.admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), None);
    let created = s.create_client(&a, json!({"server_id": sid, "name": "laptop"}));
    // The configured public host wins over the request's Host header.
    assert_eq!(
        endpoint_in(created["config"].as_str().expect("config")),
        "gw.example.net:51820",
        "create response"
    );
    let r = with_host(
        &s,
        "GET",
        &format!("/wireguard/clients/{}/config", id_of(&created)),
        &a,
        Some("router.lan:8000"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        endpoint_in(r.data()["config"].as_str().expect("config")),
        "gw.example.net:51820",
        "the flag wins over the Host header"
    );
}

#[test]
fn endpoint_falls_back_to_the_host_header() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), None);
    let body = json!({"server_id": sid, "name": "laptop"});
    let r = with_host(
        &s,
        "POST",
        "/wireguard/clients",
        &a,
        Some("router.lan:8000"),
        Some(&body),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = id_of(r.data());
    assert_eq!(
        endpoint_in(r.data()["config"].as_str().expect("config")),
        "router.lan:51820",
        "the API's port is dropped, the server's listen_port used"
    );
    let path = format!("/wireguard/clients/{id}/config");
    for (host, want) in [
        ("192.0.2.7", "192.0.2.7:51820"),
        ("[2001:db8::9]:8000", "[2001:db8::9]:51820"),
        ("Router.LAN", "router.lan:51820"),
    ] {
        let r = with_host(&s, "GET", &path, &a, Some(host), None);
        assert_eq!(r.status, 200, "{host}: {}", r.body);
        assert_eq!(
            endpoint_in(r.data()["config"].as_str().expect("config")),
            want,
            "Host: {host}"
        );
    }

    // No endpoint, no --public-host and no Host header: the client is still created (without
    // a config), and asking for its config says what to set.
    let body = json!({"server_id": sid, "name": "nohost"});
    let r = with_host(&s, "POST", "/wireguard/clients", &a, None, Some(&body));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.data()["config"], Value::Null);
    assert_eq!(r.data()["qrcode"], Value::Null);
    assert_eq!(r.data()["qr_code"], Value::Null);
    assert!(r.data()["private_key"].is_string());
    let nohost = id_of(r.data());
    let r = with_host(
        &s,
        "GET",
        &format!("/wireguard/clients/{nohost}/config"),
        &a,
        None,
        None,
    );
    r.assert_field_error(409, "RESOURCE_CONFLICT", "endpoint");
}

// ---- QR code ----

#[test]
fn qrcode_scans_back_to_exactly_the_config() {
    let (s, a) = Server::with_admin();
    let sid = id_of(&s.create_wg_server(&a, json!({"name": "home", "ipv4_address": "10.0.0.1/24", "ipv6_address": "fd00::1/64",
               "dns_servers": ["10.0.0.1"], "endpoint": "vpn.example.com", "persistent_keepalive": 25}),
    ));
    let created = s.create_client(
        &a,
        json!({"server_id": sid, "name": "phone", "use_preshared_key": true}),
    );
    let id = id_of(&created);
    let config = config_of(&s, &a, id);
    let r = s.get(&format!("/wireguard/clients/{id}/qrcode"), Some(&a));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let url = r.data()["qrcode"].as_str().expect("qrcode");
    assert!(url.starts_with("data:image/png;base64,"), "{url}");
    assert_eq!(scan_data_url(url), config);
    // The create response names it as /qrcode does; `qr_code` (the seed's name) is an alias.
    assert_eq!(
        scan_data_url(created["qrcode"].as_str().expect("qrcode")),
        config
    );
    assert_eq!(created["qr_code"], created["qrcode"]);
}

/// `n` allowed IPs of the longest IPv6 form (≈ 40 bytes each in the config).
fn long_allowed_ips(n: u16) -> Vec<String> {
    (0..n)
        .map(|i| format!("2001:db8:ffff:ffff:ffff:ffff:{i:x}:0/112"))
        .collect()
}

/// The most DNS servers, each of the longest IPv6 form.
fn long_dns() -> Vec<String> {
    (0..8)
        .map(|i| format!("2001:db8:ffff:ffff:ffff:ffff:ffff:fff{i}"))
        .collect()
}

/// Issue 12 item 6: a config too large for a QR code (≈ 55 long IPv6 allowed IPs) was
/// committed and then answered 500, and its /qrcode answered 500 for ever. Now a create or
/// an update that would make it so is a 422 naming the field, and /qrcode of a client made
/// too large later (its server's DNS and endpoint grew) a 422 while /config still works.
#[test]
fn a_config_too_large_for_a_qr_code_is_refused_up_front_never_a_500() {
    let (s, a) = Server::with_admin();
    let sid = id_of(&s.create_wg_server(
        &a,
        json!({"name": "home", "ipv4_address": "10.0.0.1/24", "endpoint": "vpn.example.com"}),
    ));
    let clients_total = || {
        let r = s.get("/wireguard/clients", Some(&a));
        r.data()["pagination"]["total"].as_u64().expect("total")
    };

    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": sid, "name": "big", "allowed_ips": long_allowed_ips(64)}),
    );
    r.assert_field_error(422, "VALIDATION_ERROR", "allowed_ips");
    assert!(
        r.body.to_string().contains("too large for a QR code"),
        "{}",
        r.body
    );
    assert_eq!(clients_total(), 0, "nothing was committed");

    // Just under the limit: created, with a QR code that is the config.
    let created = s.create_client(
        &a,
        json!({"server_id": sid, "name": "near", "allowed_ips": long_allowed_ips(48)}),
    );
    let id = id_of(&created);
    assert_eq!(
        scan_data_url(created["qrcode"].as_str().expect("qrcode")),
        config_of(&s, &a, id)
    );

    // An update that would push it over is refused; the client is unchanged.
    let r = s.send(
        "PATCH",
        &format!("/wireguard/clients/{id}"),
        Some(&a),
        &json!({"allowed_ips": long_allowed_ips(60)}),
    );
    r.assert_field_error(422, "VALIDATION_ERROR", "allowed_ips");
    let r = s.send(
        "PATCH",
        &format!("/wireguard/clients/{id}"),
        Some(&a),
        &json!({"dns_servers": long_dns()}),
    );
    r.assert_field_error(422, "VALIDATION_ERROR", "dns_servers");
    let r = s.get(&format!("/wireguard/clients/{id}"), Some(&a));
    assert_eq!(r.data()["allowed_ips"].as_array().map(Vec::len), Some(48));
    assert_eq!(r.data()["dns_servers"], json!([]));

    // The server's settings grow every client's config: the server change is allowed, the
    // QR code of the client now too large is a 422 that says what to do, never a 500.
    let long_host = format!("{}example", format!("{}.", "v".repeat(60)).repeat(3));
    let r = s.send(
        "PATCH",
        &format!("/wireguard/servers/{sid}"),
        Some(&a),
        &json!({"endpoint": long_host, "dns_servers": long_dns()}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.get(&format!("/wireguard/clients/{id}/qrcode"), Some(&a));
    r.assert_field_error(422, "VALIDATION_ERROR", "allowed_ips");
    assert!(
        r.body.to_string().contains("format=conf"),
        "the answer says where the config is: {}",
        r.body
    );
    assert!(
        config_of(&s, &a, id).contains(&long_host),
        "config still served"
    );
    // Changes that do not lengthen its config still work.
    let r = s.send(
        "PATCH",
        &format!("/wireguard/clients/{id}"),
        Some(&a),
        &json!({"name": "renamed", "enabled": false}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

// ---- import ----

const SERVER_KEY: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const LAPTOP_PSK: &str = "/UwcSPg38hW/D9Y3tcS1FOV0K1wuURMbS0sesJEP5ak=";
const LAPTOP_KEY: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const OFFICE_KEY: &str = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";

fn wg0_conf() -> String {
    format!(
        "# /etc/wireguard/wg0.conf on the old router
[Interface]
PrivateKey = {SERVER_KEY}
Address = 10.8.0.1/24, fd00:8::1/64
ListenPort = 51830
DNS = 10.8.0.1, fd00:8::1
MTU = 1400
PostUp = iptables -A FORWARD -i %i -j ACCEPT; ip6tables -A FORWARD -i %i -j ACCEPT
PostDown = iptables -D FORWARD -i %i -j ACCEPT

[Peer]
# laptop
PublicKey = {LAPTOP_KEY}
PresharedKey = {LAPTOP_PSK}
AllowedIPs = 10.8.0.2/32, fd00:8::2/128
PersistentKeepalive = 25

[Peer]
# office gateway with its own IPv6 prefix
PublicKey = {OFFICE_KEY}
Endpoint = 198.51.100.7:51820
AllowedIPs = 10.8.0.3/32, fd00:8::3/128, 2001:db8:77::/48
"
    )
}

#[test]
fn import_takes_over_a_wg_quick_server() {
    let (s, a) = Server::with_admin();
    let r = s.post(
        "/wireguard/servers/import",
        Some(&a),
        &json!({"name": "old-router", "config": wg0_conf(), "endpoint": "vpn.example.com"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let text = String::from_utf8_lossy(&r.raw_body).to_string();
    assert!(!text.contains(SERVER_KEY), "server private key leaked");
    assert!(!text.contains(LAPTOP_PSK), "preshared key leaked");
    assert_no_key(&r.body, "private_key", "import");
    assert_no_key(&r.body, "preshared_key", "import");

    let server = &r.data()["server"];
    let expected_public = ipv6wgm::wireguard::keys::PrivateKey::from_base64(SERVER_KEY)
        .expect("key")
        .public_key()
        .to_base64();
    assert_eq!(server["public_key"], expected_public.as_str());
    assert_eq!(server["name"], "old-router");
    assert_eq!(server["status"], "stopped");
    assert_eq!(server["is_active"], false);
    assert_eq!(server["listen_port"], 51830);
    assert_eq!(server["mtu"], 1400);
    assert_eq!(server["ipv4_address"], "10.8.0.1/24");
    assert_eq!(server["ipv6_address"], "fd00:8::1/64");
    assert_eq!(server["dns_servers"], json!(["10.8.0.1", "fd00:8::1"]));
    assert_eq!(server["endpoint"], "vpn.example.com");
    assert_eq!(server["clients_count"], 2);
    let ignored = r.data()["ignored"].to_string();
    assert!(ignored.contains("PostUp"), "{ignored}");
    assert!(ignored.contains("198.51.100.7:51820"), "{ignored}");

    let clients = r.data()["clients"].as_array().expect("clients");
    assert_eq!(clients.len(), 2, "{}", r.body);
    let (laptop, office) = (&clients[0], &clients[1]);
    assert_eq!(laptop["public_key"], LAPTOP_KEY);
    assert_eq!(laptop["ipv4_address"], "10.8.0.2/32");
    assert_eq!(laptop["ipv6_address"], "fd00:8::2/128");
    assert_eq!(laptop["use_preshared_key"], true);
    assert_eq!(laptop["persistent_keepalive"], 25);
    assert_eq!(laptop["routed_prefixes"], json!([]));
    assert_eq!(laptop["config_available"], false);
    assert_eq!(office["public_key"], OFFICE_KEY);
    assert_eq!(office["ipv4_address"], "10.8.0.3/32");
    assert_eq!(office["ipv6_address"], "fd00:8::3/128");
    assert_eq!(office["use_preshared_key"], false);
    assert_eq!(office["routed_prefixes"], json!(["2001:db8:77::/48"]));
    assert_eq!(office["config_available"], false);

    // Stored as shown.
    let sid = id_of(server);
    let g = s.get(&format!("/wireguard/servers/{sid}"), Some(&a));
    assert_eq!(g.data()["public_key"], expected_public.as_str());
    assert_eq!(g.data()["status"], "stopped");
    assert!(!String::from_utf8_lossy(&g.raw_body).contains(SERVER_KEY));
    let l = s.get(&format!("/wireguard/clients?server_id={sid}"), Some(&a));
    assert_eq!(l.data()["pagination"]["total"], 2);
    let text = String::from_utf8_lossy(&l.raw_body).to_string();
    assert!(!text.contains(LAPTOP_PSK), "preshared key leaked in list");
    s.get(
        &format!("/wireguard/clients/{}/config", id_of(laptop)),
        Some(&a),
    )
    .assert_error(409, "RESOURCE_CONFLICT");

    // The imported prefix and subnets are taken.
    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": sid, "name": "x", "routed_prefixes": ["2001:db8:77:1::/64"]}),
    );
    r.assert_field_error(409, "RESOURCE_CONFLICT", "routed_prefixes");
    let next = s.create_client(&a, json!({"server_id": sid, "name": "new"}));
    assert_eq!(next["ipv4_address"], "10.8.0.4/32");
}

#[test]
fn import_of_a_malformed_config_names_the_line() {
    let (s, a) = Server::with_admin();
    let bad = format!("[Interface]\nPrivateKey = {SERVER_KEY}\nAdress = 10.0.0.1/24\n");
    let r = s.post(
        "/wireguard/servers/import",
        Some(&a),
        &json!({"name": "x", "config": bad}),
    );
    r.assert_field_error(422, "VALIDATION_ERROR", "config");
    let msg = r.body["error"]["message"].as_str().unwrap_or("");
    assert!(msg.contains("line 3"), "{msg}");

    let cases = [
        "[Interface]\nAddress = 10.0.0.1/24\n".to_string(),
        format!("[Interface]\nPrivateKey = {SERVER_KEY}\n"),
        format!("[Interface]\nPrivateKey = {SERVER_KEY}\nAddress = 10.0.0.0/24\n"),
        format!(
            "[Interface]\nPrivateKey = {SERVER_KEY}\nAddress = 10.0.0.1/24\n\n[Peer]\nPublicKey = nope\n"
        ),
        "just some text".to_string(),
    ];
    for config in cases {
        let r = s.post(
            "/wireguard/servers/import",
            Some(&a),
            &json!({"name": "x", "config": config}),
        );
        r.assert_error(422, "VALIDATION_ERROR");
        assert_eq!(r.field(), "config", "{config:?}: {}", r.body);
    }
    let r = s.post("/wireguard/servers/import", Some(&a), &json!({"name": "x"}));
    r.assert_field_error(422, "VALIDATION_ERROR", "config");
    let r = s.get("/wireguard/servers", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 0, "nothing stored");
}

#[test]
fn importing_the_same_server_twice_conflicts() {
    let (s, a) = Server::with_admin();
    let body = json!({"name": "old-router", "config": wg0_conf()});
    let r = s.post("/wireguard/servers/import", Some(&a), &body);
    assert_eq!(r.status, 201, "{}", r.body);
    let r = s.post("/wireguard/servers/import", Some(&a), &body);
    r.assert_field_error(409, "RESOURCE_CONFLICT", "name");
    // Under another name it still clashes (port, subnets, peers' keys and prefixes).
    let r = s.post(
        "/wireguard/servers/import",
        Some(&a),
        &json!({"name": "again", "config": wg0_conf()}),
    );
    r.assert_error(409, "RESOURCE_CONFLICT");
    assert!(!r.field().is_empty(), "{}", r.body);
    let r = s.get("/wireguard/servers", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 1);
    let r = s.get("/wireguard/clients", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 2, "all or nothing");
}

// ---- permissions ----

#[test]
fn viewer_reads_but_cannot_change_or_get_secrets() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), None);
    let cid = id_of(&s.create_client(&a, json!({"server_id": sid, "name": "laptop"})));
    let (_, v) = s.user_with_role(&a, "vera", "viewer");
    for path in [
        "/wireguard/servers".to_string(),
        format!("/wireguard/servers/{sid}"),
        "/wireguard/clients".to_string(),
        format!("/wireguard/clients/{cid}"),
    ] {
        let r = s.get(&path, Some(&v));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_no_key(&r.body, "private_key", &path);
    }
    for path in [
        format!("/wireguard/clients/{cid}/config"),
        format!("/wireguard/clients/{cid}/config?format=conf"),
        format!("/wireguard/clients/{cid}/qrcode"),
    ] {
        s.get(&path, Some(&v))
            .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    }
    s.post(
        "/wireguard/servers",
        Some(&v),
        &json!({"name": "x", "ipv4_address": "10.1.0.1/24"}),
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    s.post(
        "/wireguard/clients",
        Some(&v),
        &json!({"server_id": sid, "name": "x"}),
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    s.post(
        "/wireguard/servers/import",
        Some(&v),
        &json!({"name": "x", "config": wg0_conf()}),
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    s.send(
        "PATCH",
        &format!("/wireguard/clients/{cid}"),
        Some(&v),
        &json!({"enabled": false}),
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    s.call(
        "DELETE",
        &format!("/wireguard/clients/{cid}"),
        Some(&v),
        None,
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    s.call(
        "POST",
        &format!("/wireguard/servers/{sid}/start"),
        Some(&v),
        None,
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    s.call(
        "DELETE",
        &format!("/wireguard/servers/{sid}"),
        Some(&v),
        None,
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    // Without a token: 401.
    s.get("/wireguard/servers", None)
        .assert_error(401, "UNAUTHORIZED");
    assert_eq!(
        s.get(&format!("/wireguard/clients/{cid}"), Some(&a)).status,
        200,
        "untouched"
    );
}

#[test]
fn user_role_manages_clients_but_not_servers() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), None);
    let (_, u) = s.user_with_role(&a, "ursula", "user");
    s.post(
        "/wireguard/servers",
        Some(&u),
        &json!({"name": "x", "ipv4_address": "10.1.0.1/24"}),
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    s.send(
        "PATCH",
        &format!("/wireguard/servers/{sid}"),
        Some(&u),
        &json!({"mtu": 1400}),
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    s.call(
        "POST",
        &format!("/wireguard/servers/{sid}/start"),
        Some(&u),
        None,
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    s.post(
        "/wireguard/servers/import",
        Some(&u),
        &json!({"name": "x", "config": wg0_conf()}),
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    assert_eq!(s.get("/wireguard/servers", Some(&u)).status, 200);

    let c = s.create_client(&u, json!({"server_id": sid, "name": "mine"}));
    assert!(c["private_key"].is_string());
    let cid = id_of(&c);
    let r = s.get(&format!("/wireguard/clients/{cid}/config"), Some(&u));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.data()["config"].as_str().is_some());
    let r = s.get(&format!("/wireguard/clients/{cid}/qrcode"), Some(&u));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.send(
        "PATCH",
        &format!("/wireguard/clients/{cid}"),
        Some(&u),
        &json!({"description": "phone"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.call(
        "DELETE",
        &format!("/wireguard/clients/{cid}"),
        Some(&u),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

// ---- start without privilege ----

/// A free UDP port (v4 and v6) for the server to try, so the start fails on the TUN device and
/// not on a port another test holds.
fn free_udp_port() -> u16 {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
    probe.local_addr().expect("addr").port()
}

/// The binary as user `nobody` (via `setpriv`, util-linux), so it has no CAP_NET_ADMIN.
/// Only for root: anyone else already runs the harness unprivileged.
fn start_as_nobody() -> Server {
    use std::os::unix::fs::PermissionsExt;
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod tempdir");
    Server::start_with(Opts {
        admin_password: Some(ADMIN_PW.into()),
        dir: Some(dir),
        wrapper: [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    })
}

#[test]
fn starting_without_privilege_is_503_and_shows_as_error() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let s = if root {
        start_as_nobody()
    } else {
        Server::start()
    };
    let a = s.admin();
    let port = free_udp_port();
    let sid = id_of(&s.create_wg_server(
        &a,
        json!({"name": "home", "ipv4_address": "10.77.0.1/24", "listen_port": port}),
    ));
    let r = s.call(
        "POST",
        &format!("/wireguard/servers/{sid}/start"),
        Some(&a),
        None,
    );
    r.assert_error(503, "SERVICE_UNAVAILABLE");
    let msg = r.body["error"]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("CAP_NET_ADMIN") || msg.contains("root") || msg.contains("/dev/net/tun"),
        "the reason is named: {msg}"
    );

    let g = s.get(&format!("/wireguard/servers/{sid}"), Some(&a));
    assert_eq!(g.status, 200, "{}", g.body);
    assert_eq!(g.data()["status"], "error");
    let last_error = g.data()["last_error"].as_str().unwrap_or("");
    assert!(!last_error.is_empty(), "{}", g.body);
    assert_eq!(
        g.data()["is_active"],
        false,
        "a failed start is not desired"
    );
    assert_eq!(g.data()["started_at"], Value::Null);
    let l = s.get("/wireguard/servers?status=error", Some(&a));
    assert_eq!(l.data()["pagination"]["total"], 1, "{}", l.body);

    // Stopping clears the error.
    let r = s.call(
        "POST",
        &format!("/wireguard/servers/{sid}/stop"),
        Some(&a),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let g = s.get(&format!("/wireguard/servers/{sid}"), Some(&a));
    assert_eq!(g.data()["status"], "stopped");
    assert_eq!(g.data()["last_error"], Value::Null);
}

// ---- malformed input ----

#[test]
fn broken_json_is_a_bad_request() {
    let (s, a) = Server::with_admin();
    for path in [
        "/wireguard/servers",
        "/wireguard/clients",
        "/wireguard/servers/import",
    ] {
        let r = s.call("POST", path, Some(&a), Some("{\"name\": "));
        r.assert_error(400, "BAD_REQUEST");
        let r = s.call("POST", path, Some(&a), Some(""));
        r.assert_error(400, "BAD_REQUEST");
    }
    let r = s.raw(
        "POST",
        "/wireguard/servers",
        &[
            format!("Authorization: Bearer {a}"),
            "Content-Type: text/plain".into(),
        ],
        br#"{"name": "x", "ipv4_address": "10.0.0.1/24"}"#,
    );
    r.assert_error(400, "BAD_REQUEST");
    let r = s.get("/wireguard/servers", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 0);
}

#[test]
fn wrong_types_are_validation_errors_naming_the_field() {
    let (s, a) = Server::with_admin();
    let sid = s.wg_server_id(&a, "home", Some("10.0.0.1/24"), None);
    let cases = [
        (
            "/wireguard/servers",
            json!({"name": 5, "ipv4_address": "10.1.0.1/24"}),
            "name",
        ),
        (
            "/wireguard/servers",
            json!({"name": "x", "ipv4_address": "10.1.0.1/24", "listen_port": "51820"}),
            "listen_port",
        ),
        (
            "/wireguard/servers",
            json!({"name": "x", "ipv4_address": "10.1.0.1/24", "listen_port": 70000}),
            "listen_port",
        ),
        (
            "/wireguard/servers",
            json!({"name": "x", "ipv4_address": "10.1.0.1/24", "dns_servers": "10.0.0.1"}),
            "dns_servers",
        ),
        (
            "/wireguard/servers",
            json!({"name": "x", "ipv4_address": "10.1.0.1/24", "is_active": "yes"}),
            "is_active",
        ),
        (
            "/wireguard/clients",
            json!({"server_id": sid.to_string(), "name": "x"}),
            "server_id",
        ),
        ("/wireguard/clients", json!({"name": "x"}), "server_id"),
        (
            "/wireguard/clients",
            json!({"server_id": sid, "name": "x", "enabled": 1}),
            "enabled",
        ),
        (
            "/wireguard/clients",
            json!({"server_id": sid, "name": "x", "routed_prefixes": "2001:db8::/48"}),
            "routed_prefixes",
        ),
        (
            "/wireguard/clients",
            json!({"server_id": sid, "name": "x", "allowed_ips": []}),
            "allowed_ips",
        ),
        (
            "/wireguard/servers/import",
            json!({"name": "x", "config": 1}),
            "config",
        ),
    ];
    for (path, body, field) in cases {
        let r = s.post(path, Some(&a), &body);
        r.assert_error(422, "VALIDATION_ERROR");
        assert_eq!(r.field(), field, "{path} {body}: {}", r.body);
    }
    let r = s.post("/wireguard/servers", Some(&a), &json!(["name"]));
    r.assert_error(422, "VALIDATION_ERROR");
}

#[test]
fn a_client_of_a_missing_server_is_a_validation_error() {
    let (s, a) = Server::with_admin();
    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": 999, "name": "x"}),
    );
    r.assert_field_error(422, "VALIDATION_ERROR", "server_id");
}

#[test]
fn ids_must_be_positive_integers_and_unknown_ones_are_404() {
    let (s, a) = Server::with_admin();
    for path in [
        "/wireguard/servers/abc",
        "/wireguard/servers/0",
        "/wireguard/servers/-1",
        "/wireguard/servers/1.5",
        "/wireguard/clients/abc",
        "/wireguard/clients/abc/config",
        "/wireguard/clients/abc/qrcode",
    ] {
        let r = s.get(path, Some(&a));
        r.assert_error(422, "VALIDATION_ERROR");
        assert_eq!(r.field(), "id", "{path}");
    }
    s.call("POST", "/wireguard/servers/abc/start", Some(&a), None)
        .assert_error(422, "VALIDATION_ERROR");
    s.send(
        "PATCH",
        "/wireguard/servers/abc",
        Some(&a),
        &json!({"mtu": 1400}),
    )
    .assert_error(422, "VALIDATION_ERROR");

    for path in [
        "/wireguard/servers/999",
        "/wireguard/clients/999",
        "/wireguard/clients/999/config",
        "/wireguard/clients/999/qrcode",
    ] {
        s.get(path, Some(&a))
            .assert_error(404, "RESOURCE_NOT_FOUND");
    }
    s.send(
        "PATCH",
        "/wireguard/servers/999",
        Some(&a),
        &json!({"mtu": 1400}),
    )
    .assert_error(404, "RESOURCE_NOT_FOUND");
    s.send(
        "PUT",
        "/wireguard/clients/999",
        Some(&a),
        &json!({"enabled": false}),
    )
    .assert_error(404, "RESOURCE_NOT_FOUND");
    for path in ["/wireguard/servers/999", "/wireguard/clients/999"] {
        s.call("DELETE", path, Some(&a), None)
            .assert_error(404, "RESOURCE_NOT_FOUND");
    }
    for path in [
        "/wireguard/servers/999/start",
        "/wireguard/servers/999/stop",
    ] {
        s.call("POST", path, Some(&a), None)
            .assert_error(404, "RESOURCE_NOT_FOUND");
    }
}
