//! Setup the API tests share: a server with an admin token, WireGuard servers and clients,
//! prefix pools made through the API (each expecting its 201), reads that expect a 200, and
//! one way to wait for a condition. Assertions stay in the tests; these only set the scene.

use super::{bin, Opts, Resp, Server, ADMIN_PW};
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::net::TcpStream;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A WebSocket to the API (blocking, read timeout 20 s).
pub type Ws = tungstenite::WebSocket<TcpStream>;

impl Server {
    /// A server with the known admin password, and an admin token.
    pub fn with_admin() -> (Server, String) {
        let s = Server::start();
        let a = s.admin();
        (s, a)
    }

    /// A server with the known admin password and this TOML config (no token: see
    /// [`with_config`](Self::with_config) for one).
    pub fn configured(config: &str) -> Server {
        Server::start_with(Opts {
            admin_password: Some(ADMIN_PW.into()),
            config: Some(config.into()),
            ..Default::default()
        })
    }

    /// Stops the server cleanly and starts it again on the same data dir with `opts` (whose
    /// `dir` is replaced).
    pub fn restart_with(self, opts: Opts) -> Server {
        let dir = self.dir.clone();
        assert!(self.stop().success(), "clean stop");
        Server::start_with(Opts {
            dir: Some(dir),
            ..opts
        })
    }

    /// A server (known admin password) inside network namespace `ns`, on `dir` if given.
    pub fn start_in_netns(ns: &str, dir: Option<Arc<tempfile::TempDir>>) -> Server {
        Server::start_with(Opts {
            admin_password: Some(ADMIN_PW.into()),
            netns: Some(ns.into()),
            dir,
            ..Default::default()
        })
    }

    /// `POST path` that must answer 201; the created resource (`data`).
    pub fn create(&self, path: &str, token: &str, body: &Value) -> Value {
        let r = self.post(path, Some(token), body);
        assert_eq!(r.status, 201, "create {path} {body}: {}", r.body);
        r.data().clone()
    }

    /// `GET path` that must answer 200; its `data`.
    pub fn read(&self, path: &str, token: &str) -> Value {
        let r = self.get(path, Some(token));
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.data().clone()
    }

    /// A WebSocket handshake on `/api/v1{path_and_query}`; the refusal's HTTP status if the
    /// server does not upgrade.
    pub fn ws(&self, path_and_query: &str) -> Result<Ws, u16> {
        let stream = self.connect();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let url = format!("ws://{}/api/v1{path_and_query}", self.addr);
        match tungstenite::client(url.as_str(), stream) {
            Ok((ws, resp)) => {
                assert_eq!(resp.status().as_u16(), 101);
                Ok(ws)
            }
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
                Err(r.status().as_u16())
            }
            Err(e) => panic!("handshake: {e}"),
        }
    }

    /// A WireGuard server (201 expected); its view.
    pub fn create_wg_server(&self, token: &str, body: Value) -> Value {
        self.create("/wireguard/servers", token, &body)
    }

    /// A WireGuard server with these subnets; its id.
    pub fn wg_server_id(&self, token: &str, name: &str, v4: Option<&str>, v6: Option<&str>) -> i64 {
        id_of(&self.create_wg_server(
            token,
            json!({"name": name, "ipv4_address": v4, "ipv6_address": v6}),
        ))
    }

    /// A WireGuard client (201 expected); the create response's data (secrets included).
    pub fn create_client(&self, token: &str, body: Value) -> Value {
        self.create("/wireguard/clients", token, &body)
    }

    /// `GET /wireguard/clients/{id}` (200 expected).
    pub fn wg_client(&self, token: &str, id: i64) -> Value {
        self.read(&format!("/wireguard/clients/{id}"), token)
    }

    /// A BGP session (201 expected); its view.
    pub fn create_bgp_session(&self, token: &str, body: Value) -> Value {
        self.create("/bgp/sessions", token, &body)
    }

    /// A prefix pool (201 expected); its view.
    pub fn create_pool(&self, token: &str, body: Value) -> Value {
        self.create("/ipv6/pools", token, &body)
    }

    /// A prefix pool with the defaults; its id.
    pub fn pool_id(&self, token: &str, name: &str, prefix: &str) -> i64 {
        id_of(&self.create_pool(token, json!({"name": name, "prefix": prefix})))
    }
}

impl Resp {
    /// The `access_token` of a login or refresh answer.
    pub fn access_token(&self) -> String {
        self.data()["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }
}

/// Runs the binary with `args` to its end (subcommands, refused starts: no server).
pub fn run_bin(args: &[&dyn AsRef<OsStr>]) -> Output {
    std::process::Command::new(bin())
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("run")
}

/// `ipv6wgm reset-password admin --data-dir <data_dir>` (the server stopped).
pub fn reset_admin_password(data_dir: &Path) -> Output {
    run_bin(&[&"reset-password", &"admin", &"--data-dir", &data_dir])
}

/// The `id` of a resource view.
pub fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().expect("id")
}

/// Polls `f` every 100 ms until it returns `Some`, or panics with `what` after `secs`.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}
