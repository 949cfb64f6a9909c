//! Test harness: starts the real `ipv6wgm` binary on 127.0.0.1:0 with a temporary data dir
//! and talks plain HTTP/1.1 to it over a socket, like `curl` would.
#![allow(dead_code)]

pub mod age;
pub mod backup;
pub mod bgp_peer;
pub mod fixtures;
pub mod netns;
pub mod peers;
pub mod skip;

#[allow(unused_imports)] // not every test binary sets up through the API
pub use fixtures::*;
pub use skip::skip;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const ADMIN_PW: &str = "admin-test-password";

pub struct Server {
    pub addr: SocketAddr,
    pub child: Child,
    pub dir: Arc<tempfile::TempDir>,
    pub stderr: Arc<Output>,
    /// The network namespace the server runs in (`Opts::netns`); connections are made there.
    pub netns: Option<String>,
}

#[derive(Default, Clone)]
pub struct Opts {
    /// TOML written to a file passed with --config.
    pub config: Option<String>,
    /// IPV6WGM_ADMIN_PASSWORD; `None` = let the server generate one.
    pub admin_password: Option<String>,
    /// Reuse a data dir (restart tests).
    pub dir: Option<Arc<tempfile::TempDir>>,
    /// `--listen` (default 127.0.0.1:0).
    pub listen: Option<String>,
    /// Extra command-line arguments.
    pub args: Vec<String>,
    /// Run inside this network namespace (`ip netns` name, see `netns::Netns`).
    pub netns: Option<String>,
    /// A command that runs the binary, e.g. `["setpriv", "--reuid=65534", …]`.
    pub wrapper: Vec<String>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ipv6wgm")
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(Opts {
            admin_password: Some(ADMIN_PW.into()),
            ..Default::default()
        })
    }

    /// A server with the known admin password and this TOML config, and an admin token.
    pub fn with_config(config: &str) -> (Server, String) {
        let s = Self::configured(config);
        let a = s.admin();
        (s, a)
    }

    /// Stops the server cleanly and starts it again on the same data dir; an admin token.
    pub fn restart(self) -> (Server, String) {
        let s = self.restart_with(Opts {
            admin_password: Some(ADMIN_PW.into()),
            ..Default::default()
        });
        let a = s.admin();
        (s, a)
    }

    pub fn start_with(opts: Opts) -> Server {
        let dir = opts
            .dir
            .unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("tempdir")));
        let mut cmd = match opts.wrapper.split_first() {
            None => Command::new(bin()),
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin());
                c
            }
        };
        cmd.arg("--listen")
            .arg(opts.listen.as_deref().unwrap_or("127.0.0.1:0"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("IPV6WGM_LOG", "info")
            .env_remove("IPV6WGM_ADMIN_PASSWORD")
            .env_remove("IPV6WGM_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd.args(&opts.args);
        if let Some(ns) = &opts.netns {
            netns::enter_netns(ns, &mut cmd);
        }
        if let Some(cfg) = &opts.config {
            let p = dir.path().join("test.toml");
            std::fs::write(&p, cfg).expect("write config");
            cmd.arg("--config").arg(p);
        }
        if let Some(pw) = &opts.admin_password {
            cmd.env("IPV6WGM_ADMIN_PASSWORD", pw);
        }
        let mut child = cmd.spawn().expect("spawn ipv6wgm");
        let stderr = Arc::new(Output::default());
        let lines = stderr.clone();
        let pipe = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.push(line);
            }
            lines.close();
        });
        // The address comes from the stored lines, so every line printed before it (the
        // generated admin password, warnings) is readable by the time `start` returns.
        let found = stderr.wait_for(Duration::from_secs(30), |line| {
            let url = line.split("listening on ").nth(1)?;
            url.split("://").nth(1).map(|a| a.trim().to_string())
        });
        let addr = match found {
            Some(a) => {
                let a: SocketAddr = a.parse().expect("listen addr");
                if a.ip().is_unspecified() {
                    SocketAddr::from(([127, 0, 0, 1], a.port()))
                } else {
                    a
                }
            }
            None => {
                let _ = child.kill();
                panic!("server did not start: {}", stderr.text());
            }
        };
        Server {
            addr,
            child,
            dir,
            stderr,
            netns: opts.netns,
        }
    }

    /// A connection to the API, made inside the server's network namespace if it has one (a
    /// socket stays in the namespace it was created in, whichever thread uses it later).
    pub fn connect(&self) -> TcpStream {
        match &self.netns {
            None => TcpStream::connect(self.addr).expect("connect"),
            Some(ns) => {
                let path = PathBuf::from("/run/netns").join(ns);
                let addr = self.addr;
                std::thread::spawn(move || {
                    use std::os::fd::AsRawFd;
                    let f = std::fs::File::open(&path).expect("open netns");
                    // SAFETY: setns on this short-lived thread only, with an fd we hold.
                    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
                    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                    TcpStream::connect(addr).expect("connect")
                })
                .join()
                .expect("connect thread")
            }
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Everything the server has printed on stderr so far (as read by the harness: a line
    /// the server has just written may not be here yet; use [`wait_stderr`](Self::wait_stderr)
    /// to wait for one).
    pub fn stderr_text(&self) -> String {
        self.stderr.text()
    }

    /// Waits (at most `secs`) until a stderr line contains `needle`; false on timeout or exit.
    pub fn wait_stderr(&self, needle: &str, secs: u64) -> bool {
        self.stderr
            .wait_for(Duration::from_secs(secs), |l| {
                l.contains(needle).then_some(())
            })
            .is_some()
    }

    /// Waits (at most `secs`) until `needle` occurs in `count` stderr lines.
    pub fn wait_stderr_count(&self, needle: &str, count: usize, secs: u64) -> bool {
        self.stderr.wait_until(Duration::from_secs(secs), |lines| {
            lines.iter().filter(|l| l.contains(needle)).count() >= count
        })
    }

    /// SIGTERM, then wait (at most 15 s) for a clean exit.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call("GET", path, token, None)
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.call("POST", path, token, Some(&body.to_string()))
    }

    pub fn send(&self, method: &str, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.call(method, path, token, Some(&body.to_string()))
    }

    /// A JSON request (`Content-Type: application/json` when there is a body).
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Resp {
        let mut headers = Vec::new();
        if let Some(t) = token {
            headers.push(format!("Authorization: Bearer {t}"));
        }
        if body.is_some() {
            headers.push("Content-Type: application/json".into());
        }
        self.raw(method, path, &headers, body.unwrap_or("").as_bytes())
    }

    /// Any request, with exactly the given extra headers.
    pub fn raw(&self, method: &str, path: &str, headers: &[String], body: &[u8]) -> Resp {
        let mut s = self.connect();
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut head = format!(
            "{method} /api/v1{path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).expect("write");
        // The server may answer (413, 401) before reading a large body and close.
        let _ = s.write_all(body);
        read_response(&mut s)
    }

    /// POST with a chunked body (no Content-Length for the server to check up front).
    pub fn raw_chunked(&self, path: &str, headers: &[String], body: &[u8]) -> Resp {
        let mut s = self.connect();
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut head = format!(
            "POST /api/v1{path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n"
        );
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).expect("write");
        for chunk in body.chunks(512) {
            let _ = s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
            let _ = s.write_all(chunk);
            let _ = s.write_all(b"\r\n");
        }
        let _ = s.write_all(b"0\r\n\r\n");
        read_response(&mut s)
    }

    pub fn login(&self, username: &str, password: &str) -> Resp {
        self.post(
            "/auth/login",
            None,
            &serde_json::json!({"username": username, "password": password}),
        )
    }

    /// Logs in and returns the access token (panics on failure).
    pub fn token(&self, username: &str, password: &str) -> String {
        let r = self.login(username, password);
        assert_eq!(r.status, 200, "login {username}: {}", r.body);
        r.body["data"]["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    pub fn admin(&self) -> String {
        self.token("admin", ADMIN_PW)
    }

    /// Creates a user with `role` and returns (id, token).
    pub fn user_with_role(&self, admin: &str, name: &str, role: &str) -> (i64, String) {
        let pw = format!("{name}-password");
        let r = self.post(
            "/users",
            Some(admin),
            &serde_json::json!({"username": name, "password": pw, "role": role}),
        );
        assert_eq!(r.status, 201, "create {name}: {}", r.body);
        let id = r.body["data"]["id"].as_i64().expect("id");
        (id, self.token(name, &pw))
    }
}

/// The server's stderr lines as the reader thread stores them, with a condition variable so
/// tests wait for a line instead of polling or sleeping.
#[derive(Default)]
pub struct Output {
    state: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl Output {
    fn push(&self, line: String) {
        self.state.lock().expect("lock").0.push(line);
        self.changed.notify_all();
    }

    /// The pipe closed: the server exited; waiters stop waiting.
    fn close(&self) {
        self.state.lock().expect("lock").1 = true;
        self.changed.notify_all();
    }

    pub fn text(&self) -> String {
        self.state.lock().expect("lock").0.join("\n")
    }

    /// The first line for which `f` answers `Some`, waiting up to `timeout` for it.
    pub fn wait_for<T>(&self, timeout: Duration, f: impl Fn(&str) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock().expect("lock");
        loop {
            if let Some(v) = st.0.iter().find_map(|l| f(l)) {
                return Some(v);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if st.1 {
                return None;
            }
            st = self.changed.wait_timeout(st, left).expect("lock").0;
        }
    }

    /// Waits up to `timeout` until `f` holds for all lines so far.
    pub fn wait_until(&self, timeout: Duration, f: impl Fn(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock().expect("lock");
        loop {
            if f(&st.0) {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            if st.1 {
                return false;
            }
            st = self.changed.wait_timeout(st, left).expect("lock").0;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub raw_body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn field(&self) -> &str {
        self.body["error"]["details"]["field"]
            .as_str()
            .unwrap_or("")
    }

    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// Asserts the contract's error envelope with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "status; body {}", self.body);
        assert_eq!(self.body["success"], false, "{}", self.body);
        assert_eq!(self.code(), code, "{}", self.body);
        assert!(self.body["error"]["message"].is_string(), "{}", self.body);
        assert!(self.body["timestamp"].is_string(), "{}", self.body);
        self
    }

    /// [`assert_error`](Self::assert_error) that also names the offending field.
    pub fn assert_field_error(&self, status: u16, code: &str, field: &str) -> &Self {
        self.assert_error(status, code);
        assert_eq!(self.field(), field, "{}", self.body);
        self
    }
}

/// Reads one response (headers + Content-Length body) from `s`.
pub fn read_response(s: &mut impl Read) -> Resp {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => panic!(
                "connection closed before headers: {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut raw_body = vec![0u8; len];
    s.read_exact(&mut raw_body).expect("body");
    let body = serde_json::from_slice(&raw_body).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        raw_body,
    }
}

/// Opens the server's log store read-only (audit entries and events, table `entries`).
pub fn open_logs_db(data_dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        data_dir.join("run").join("logs.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open logs db")
}

/// Opens the server's database read-only.
pub fn open_db(data_dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        data_dir.join("ipv6wgm.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open db")
}
