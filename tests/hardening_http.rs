//! The HTTP layer under hostile or careless clients (issue 12): what one source address can
//! hold, slow and oversized heads and bodies, downloads read slowly, WebSockets without a
//! token, hyper's own error answers, and HEAD.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A connection to `s` from another loopback address (all of 127/8 is local), so that a
/// test can be two clients.
fn connect_from(s: &Server, source: &str) -> TcpStream {
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let from: SocketAddr = format!("{source}:0").parse().expect("source");
    sock.bind(&from.into()).expect("bind");
    sock.connect(&s.addr.into()).expect("connect");
    let c: TcpStream = sock.into();
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c
}

/// Reads until the server closes; `Err` if it did not within the read timeout.
fn read_to_close(c: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

fn live(c: &mut TcpStream) -> Resp {
    c.write_all(b"GET /api/v1/status/live HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    read_response(c)
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

const STALLED_LOGIN: &[u8] = b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\n\
Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";

#[test]
fn stalled_login_bodies_from_one_address_do_not_lock_out_the_api() {
    // Defaults: 256 connections, 64 per address.
    let s = Server::configured("");
    let flood: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut c = connect_from(&s, "127.0.0.2");
            c.write_all(STALLED_LOGIN).expect("write");
            c
        })
        .collect();
    // Everyone else is still served, at once.
    let mut other = connect_from(&s, "127.0.0.1");
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    assert_eq!(live(&mut other).status, 200);
    // The flood's first connection beyond its address's share is told why.
    let mut over = flood.into_iter().nth(64).expect("65th");
    let r = read_response(&mut over);
    r.assert_error(429, "RATE_LIMIT_EXCEEDED");
    assert!(r.header("retry-after").is_some());
}

#[test]
fn bodies_are_small_before_authentication() {
    let s = Server::configured("");
    let a = s.admin();
    // No Content-Length to check up front: the read itself stops at 4 KiB.
    let big = format!(
        r#"{{"username":"admin","password":"{}"}}"#,
        "x".repeat(5000)
    );
    let json = ["Content-Type: application/json".to_string()];
    s.raw_chunked("/auth/login", &json, big.as_bytes())
        .assert_error(413, "PAYLOAD_TOO_LARGE");
    // Authenticated, the full http.max_body_bytes applies (this one fails validation).
    let body = json!({"username": "user1", "password": "password1", "role": "viewer",
                      "full_name": "f".repeat(8000)});
    s.post("/users", Some(&a), &body)
        .assert_field_error(422, "VALIDATION_ERROR", "full_name");
}

#[test]
fn a_body_that_stops_coming_is_answered_408_and_closed() {
    let s = Server::configured("[http]\nbody_read_timeout_secs = 1\n");
    // A body that stops coming: 408 with the envelope when the deadline passes, then close.
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let sent = Instant::now();
    c.write_all(STALLED_LOGIN).expect("write");
    let r = read_response(&mut c);
    r.assert_error(408, "REQUEST_TIMEOUT");
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(r.header("connection"), Some("close"));
    read_to_close(&mut c).expect("closed after the 408");
}

#[test]
fn heads_are_bounded_and_hypers_own_errors_have_an_envelope() {
    let s = Server::configured("[http]\nheader_read_timeout_secs = 1\n");
    // 20 KB of a head that never ends: refused at http.max_header_bytes (16 KiB).
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let head = format!(
        "GET /api/v1/status/live HTTP/1.1\r\nHost: t\r\nX-Pad: {}",
        "a".repeat(20_000)
    );
    let _ = c.write_all(head.as_bytes());
    read_response(&mut c).assert_error(431, "HEADERS_TOO_LARGE");
    // A head hyper cannot parse.
    let mut c = s.connect();
    c.write_all(b"GET /api/v1/status/live HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n")
        .expect("write");
    read_response(&mut c).assert_error(400, "BAD_REQUEST");
    // An unfinished head, and a kept-alive connection left idle, are closed after
    // http.header_read_timeout_secs.
    for first in [&b"GET /api/v1/status/live HTTP/1.1\r\nHo"[..], &b""[..]] {
        let mut c = s.connect();
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        if first.is_empty() {
            assert_eq!(live(&mut c).status, 200);
        } else {
            c.write_all(first).expect("write");
        }
        let t = Instant::now();
        read_to_close(&mut c).expect("closed by the server");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }
}

#[test]
fn head_answers_like_get_without_a_body() {
    let s = Server::configured("");
    let get = s.get("/status/live", None);
    let mut c = s.connect();
    c.write_all(b"HEAD /api/v1/status/live HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    // No body follows: the next answer on the connection starts right after the head.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut byte).expect("head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let len = get.raw_body.len();
    assert!(head.contains(&format!("content-length: {len}")), "{head}");
    assert_eq!(live(&mut c).status, 200, "HEAD sent no body");
    let a = s.admin();
    let r = s.call("PUT", "/users", Some(&a), None);
    let allow = r.header("allow").expect("Allow");
    assert!(allow.contains("HEAD"), "{allow}");
}

/// Fills the log store with `n` long audit entries (a DELETE with a 1,000-digit id is
/// audited with its path), pipelined on one connection.
fn fill_log(s: &Server, token: &str, n: usize) {
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let req = format!(
        "DELETE /api/v1/users/{} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nUser-Agent: {}\r\n\r\n",
        "9".repeat(1000),
        "u".repeat(250)
    );
    let mut reader = std::io::BufReader::new(c.try_clone().expect("clone"));
    for _ in 0..n / 100 {
        c.write_all(req.repeat(100).as_bytes()).expect("write");
        for _ in 0..100 {
            assert_eq!(read_response(&mut reader).status, 422);
        }
    }
}

fn download_request(c: &mut TcpStream, url: &str, token: &str) {
    write!(
        c,
        "GET {url} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .expect("write");
}

/// The status line and headers of a response, without its body.
fn read_head(c: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

#[test]
fn export_downloads_stream_and_hold_their_slot_until_sent() {
    let s = Server::configured("[logs]\nmax_size_mb = 64\nmax_entries = 100000\n");
    let a = s.admin();
    fill_log(&s, &a, 2500);
    let r = s.get("/logs/export?format=json", Some(&a));
    assert_eq!(r.status, 200, "{}", r.body);
    let url = r.data()["download_url"].as_str().expect("url").to_string();
    let size = r.data()["file_size"].as_u64().expect("size");
    // Larger than what the kernel buffers for a client that does not read.
    assert!(size > 8 << 20, "export of {size} bytes");
    let pid = s.child.id();
    let before = vm_rss_kib(pid);
    // Two slow readers take the two download slots …
    let mut slow: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut c = s.connect();
            c.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            download_request(&mut c, &url, &a);
            let head = read_head(&mut c).expect("head");
            assert!(head.contains(&format!("content-length: {size}")), "{head}");
            c
        })
        .collect();
    // … and keep them while their answer is not sent: a third waits.
    let mut third = s.connect();
    download_request(&mut third, &url, &a);
    third
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("timeout");
    let early = read_head(&mut third);
    assert!(early.is_err(), "third download answered early: {early:?}");
    let grown = vm_rss_kib(pid).saturating_sub(before);
    assert!(grown * 1024 < size / 2, "RSS grew by {grown} KiB");
    // Reading one to the end frees its slot, and the third is served.
    let mut first = slow.remove(0);
    let body = read_to_close(&mut first).expect("whole file");
    assert_eq!(body.len() as u64, size);
    let rows: Vec<Value> = serde_json::from_slice(&body).expect("json export");
    assert!(rows.len() >= 2500);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = read_head(&mut third).expect("third answered");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let rest = read_to_close(&mut third).expect("third body");
    assert_eq!(rest.len() as u64, size);
}

#[test]
fn websockets_without_a_token_cannot_take_the_real_slots() {
    // Defaults: 256 WebSocket slots; one at a time, the handshakes stay within the
    // per-address connection cap (a socket no longer counts once upgraded).
    let s = Server::configured("");
    let a = s.admin();
    // As many sockets as there are slots, none sending its token.
    let waiting: Vec<Result<Ws, u16>> = (0..256).map(|_| s.ws("/ws/connect")).collect();
    let refused = waiting.iter().filter(|w| matches!(w, Err(503))).count();
    assert!(
        refused > 0,
        "unauthenticated sockets have their own small quota"
    );
    assert!(waiting.iter().all(|w| matches!(w, Ok(_) | Err(503))));
    // A real user still gets in.
    let mut ws = s
        .ws(&format!("/ws/system/status?token={a}"))
        .expect("authenticated");
    let first = wait_for(20, "the connected message", || match ws.read().ok()? {
        tungstenite::Message::Text(t) => serde_json::from_str::<Value>(&t).ok(),
        _ => None,
    });
    assert_eq!(first["type"], "connected", "{first}");
}
