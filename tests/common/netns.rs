//! Network-namespace harness for WireGuard interop tests: throwaway namespaces, veth pairs
//! between them, and a stock userspace WireGuard peer (`wireguard-go` configured with `wg`)
//! inside a namespace. Needs root, /dev/net/tun, iproute2, wireguard-go, wireguard-tools and
//! iputils-ping; tests call [`skip_reason`] first and return early (printing it) when any is
//! missing.
//!
//! Everything is torn down by `Drop`, which also runs when a test panics (unwinding), so a
//! failing test leaves no namespace, interface or wireguard-go process behind. Names are
//! unique per process (pid) and per object (counter), so tests can run in parallel.
//!
//! Gotchas this module handles:
//! * wireguard-go's control socket lives in `/var/run/wireguard/<iface>.sock`, which is a
//!   plain filesystem path shared by *all* network namespaces — so interface names must be
//!   unique machine-wide even though each namespace has its own interface list.
//! * A namespace whose last process is still alive outlives `ip netns del` (with its veth
//!   and TUN devices), so [`Netns`]'s `Drop` kills every process inside it first.
//! * IPv6 addresses are added with `nodad`; without it they stay "tentative" for ~1-2 s and
//!   the first packets (or a bind) fail.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where `ip netns add` puts the namespace handles.
const NETNS_DIR: &str = "/run/netns";
/// Where wireguard-go (and `wg`) keep the per-interface control sockets.
const WG_SOCK_DIR: &str = "/var/run/wireguard";

/// Per-process counter making every namespace / interface name unique.
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A short, machine-unique interface name (Linux allows at most 15 bytes):
/// `<tag><pid in hex>n<counter>`, e.g. `wg1a2b3n4`. `tag` must be ≤ 3 bytes.
fn iface_name(tag: &str) -> String {
    let name = format!("{tag}{:x}n{}", std::process::id(), next_id());
    assert!(name.len() <= 15, "interface name too long: {name}");
    name
}

/// Polls `cond` every 20 ms until it is true or `timeout` has passed; returns whether it
/// became true. The only way this module waits for anything.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The executable `name` on `$PATH`, if any.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// `Some(reason)` when namespace/WireGuard interop tests cannot run here. Tests print it
/// and return (CI runs as root with everything installed by `.ci/run`).
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (CI runs as root)".into());
    }
    for (bin, pkg) in [
        ("ip", "iproute2"),
        ("wireguard-go", "wireguard-go"),
        ("wg", "wireguard-tools"),
        ("ping", "iputils-ping"),
    ] {
        if which(bin).is_none() {
            return Some(format!("no `{bin}` on PATH (apt-get install {pkg})"));
        }
    }
    // The node can exist while a container's device cgroup still refuses it: really open it.
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        return Some(format!("cannot open /dev/net/tun: {e}"));
    }
    // Root without CAP_SYS_ADMIN (an unprivileged container) cannot make namespaces.
    let probe = format!("ipv6wgm-probe-{}-{}", std::process::id(), next_id());
    match Command::new("ip").args(["netns", "add", &probe]).output() {
        Ok(o) if o.status.success() => {
            let _ = Command::new("ip").args(["netns", "del", &probe]).output();
        }
        Ok(o) => {
            return Some(format!(
                "cannot create a network namespace: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Err(e) => return Some(format!("cannot run ip: {e}")),
    }
    None
}

/// Panics with the command and its stderr unless `out` is a success; returns stdout.
fn check(what: &str, out: io::Result<Output>) -> String {
    let out = out.unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ip <args>` in the current (root) namespace; panics on failure.
fn ip_root(args: &[&str]) -> String {
    check(
        &format!("ip {args:?}"),
        Command::new("ip").args(args).output(),
    )
}

/// Makes `cmd` enter the namespace `name` between fork and exec (like `ip netns exec`, but
/// keeping `cmd`'s environment, working directory and stdio settings).
pub fn enter_netns(name: &str, cmd: &mut Command) {
    let path = Path::new(NETNS_DIR).join(name);
    let path = CString::new(path.as_os_str().as_bytes()).expect("netns path");
    // SAFETY: the hook runs in the forked child before exec and only makes
    // async-signal-safe system calls (open, setns, close) on pre-allocated data; it
    // allocates nothing (io::Error::last_os_error only reads errno).
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let rc = libc::setns(fd, libc::CLONE_NEWNET);
            let err = io::Error::last_os_error();
            libc::close(fd);
            if rc != 0 {
                return Err(err);
            }
            Ok(())
        });
    }
}

/// Runs `args` inside the namespace `name`; its output whatever the exit status.
fn exec_in(name: &str, args: &[&str]) -> Output {
    let (program, rest) = args.split_first().expect("exec: empty argument list");
    let mut cmd = Command::new(program);
    enter_netns(name, &mut cmd);
    cmd.args(rest)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("netns {name}: cannot run {args:?}: {e}"))
}

/// A named network namespace (`ip netns add`), deleted on drop together with every process
/// still running in it.
pub struct Netns {
    /// The `ip netns` name (also usable as `ip -n <name>`).
    pub name: String,
}

impl Netns {
    /// Creates `<prefix>-<pid>-<counter>` with its loopback up.
    pub fn new(prefix: &str) -> Netns {
        let name = format!("{prefix}-{}-{}", std::process::id(), next_id());
        ip_root(&["netns", "add", &name]);
        // From here on Drop cleans up, even if the next step panics.
        let ns = Netns { name };
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// `/run/netns/<name>`: the handle `setns(2)` enters.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    /// A `Command` for `program` that runs inside this namespace (however it is started:
    /// `output()`, `status()`, `spawn()`).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        enter_netns(&self.name, &mut cmd);
        cmd
    }

    /// Runs `args[0] args[1..]` inside the namespace and returns its output, whatever the
    /// exit status.
    pub fn exec(&self, args: &[&str]) -> Output {
        exec_in(&self.name, args)
    }

    /// Like [`exec`](Self::exec) but panics (with stderr) unless it succeeds; returns stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let what = format!("netns {}: {args:?}", self.name);
        check(&what, Ok(self.exec(args)))
    }

    /// Spawns `cmd` (any `Command`, e.g. with envs and piped stdio) inside the namespace.
    /// The caller owns the `Child`; whatever is still running in the namespace when the
    /// `Netns` is dropped gets killed then.
    pub fn spawn(&self, cmd: &mut Command) -> Child {
        enter_netns(&self.name, cmd);
        cmd.spawn()
            .unwrap_or_else(|e| panic!("netns {}: cannot spawn {cmd:?}: {e}", self.name))
    }

    /// Pids of the processes living in this namespace (`ip netns pids`; zombies excluded).
    pub fn pids(&self) -> Vec<i32> {
        Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// SIGTERM to everything in the namespace, SIGKILL after 3 s, give up after 6 s.
    fn kill_all(&self) {
        let start = Instant::now();
        let mut termed = false;
        let gone = wait_until(Duration::from_secs(6), || {
            let pids = self.pids();
            if pids.is_empty() {
                return true;
            }
            let sig = if !termed {
                termed = true;
                Some(libc::SIGTERM)
            } else if start.elapsed() >= Duration::from_secs(3) {
                Some(libc::SIGKILL) // repeated each poll: catches late forks too
            } else {
                None
            };
            if let Some(sig) = sig {
                for pid in pids {
                    // SAFETY: plain kill(2) of a process inside our own throwaway namespace.
                    unsafe { libc::kill(pid, sig) };
                }
            }
            false
        });
        if !gone {
            eprintln!(
                "netns {}: processes still alive after SIGKILL: {:?}",
                self.name,
                self.pids()
            );
        }
    }

    /// A veth pair with one end in `a` and the other in `b`, addressed (IPv4 and IPv6, the
    /// latter `nodad`) and up, both ends' carrier seen before returning. Addresses are CIDR
    /// strings such as `"10.98.0.1/24"` and `"fd98::1/64"`.
    pub fn veth_pair(
        a: &Netns,
        b: &Netns,
        addr_a: &str,
        addr_b: &str,
        v6_a: &str,
        v6_b: &str,
    ) -> VethPair {
        let (if_a, if_b) = (iface_name("va"), iface_name("vb"));
        // Created directly inside the namespaces: never visible in the root namespace.
        ip_root(&[
            "link", "add", &if_a, "netns", &a.name, "type", "veth", "peer", "name", &if_b, "netns",
            &b.name,
        ]);
        let pair = VethPair {
            ns_a: a.name.clone(),
            ns_b: b.name.clone(),
            if_a,
            if_b,
            addr_a: addr_a.into(),
            addr_b: addr_b.into(),
            v6_a: v6_a.into(),
            v6_b: v6_b.into(),
        };
        for (ns, dev, v4, v6) in [(a, &pair.if_a, addr_a, v6_a), (b, &pair.if_b, addr_b, v6_b)] {
            ns.run(&["ip", "addr", "add", v4, "dev", dev]);
            ns.run(&["ip", "-6", "addr", "add", v6, "dev", dev, "nodad"]);
            ns.run(&["ip", "link", "set", dev, "up"]);
        }
        // A veth has carrier only once both ends are up; wait for it on both sides.
        for (ns, dev) in [(a, &pair.if_a), (b, &pair.if_b)] {
            let up = wait_until(Duration::from_secs(5), || {
                let out = ns.exec(&["ip", "-o", "link", "show", "dev", dev]);
                String::from_utf8_lossy(&out.stdout).contains("LOWER_UP")
            });
            assert!(up, "veth {dev} in {} has no carrier after 5 s", ns.name);
        }
        pair
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.kill_all();
        // Also destroys the interfaces inside (a veth dies with either end's namespace).
        match Command::new("ip")
            .args(["netns", "del", &self.name])
            .output()
        {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "ip netns del {}: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => eprintln!("ip netns del {}: {e}", self.name),
        }
    }
}

/// Two namespaces for a tunnel test, `<prefix>-s` (server side) and `<prefix>-c` (client
/// side), joined by a veth pair addressed `[server v4, client v4, server v6, client v6]` —
/// or `None`, the test recorded as skipped with the reason, where namespace tests cannot run.
pub fn server_and_client(prefix: &str, addrs: [&str; 4]) -> Option<(Netns, Netns, VethPair)> {
    if let Some(reason) = skip_reason() {
        super::skip(&reason);
        return None;
    }
    let srv = Netns::new(&format!("{prefix}-s"));
    let cli = Netns::new(&format!("{prefix}-c"));
    let [v4_s, v4_c, v6_s, v6_c] = addrs;
    let veth = Netns::veth_pair(&srv, &cli, v4_s, v4_c, v6_s, v6_c);
    Some((srv, cli, veth))
}

/// Host part of a CIDR string: `"10.98.0.1/24"` → `"10.98.0.1"`.
pub fn host(cidr: &str) -> &str {
    cidr.split('/').next().unwrap_or(cidr)
}

/// Two veth ends in two namespaces (see [`Netns::veth_pair`]). Dropping it deletes the
/// pair (a no-op when a namespace went first, which already took the pair with it).
pub struct VethPair {
    pub ns_a: String,
    pub ns_b: String,
    /// Interface names (unique, ≤ 15 bytes).
    pub if_a: String,
    pub if_b: String,
    /// The CIDR strings given to `veth_pair`; [`host`] strips the prefix length.
    pub addr_a: String,
    pub addr_b: String,
    pub v6_a: String,
    pub v6_b: String,
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting one end deletes both. Errors just mean it is already gone.
        let _ = Command::new("ip")
            .args(["-n", &self.ns_a, "link", "del", &self.if_a])
            .output();
    }
}

/// `(private key, public key)` from `wg genkey` / `wg pubkey`.
pub fn wg_genkey() -> (String, String) {
    let private = check("wg genkey", Command::new("wg").arg("genkey").output())
        .trim()
        .to_string();
    let mut child = Command::new("wg")
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wg pubkey");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(format!("{private}\n").as_bytes())
            .expect("write wg pubkey stdin");
    } // stdin closed here: wg pubkey reads to EOF.
    let public = check("wg pubkey", child.wait_with_output())
        .trim()
        .to_string();
    (private, public)
}

/// A wg-quick file split into what `wg setconf` accepts and the wg-quick-only settings.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WgQuickConf {
    /// The file without the wg-quick-only keys, for `wg setconf`.
    pub setconf: String,
    /// `Address` entries (CIDR strings), in file order.
    pub addresses: Vec<String>,
    pub dns: Vec<String>,
    pub mtu: Option<u32>,
    /// `Table` (`off` means: add no routes for AllowedIPs).
    pub table: Option<String>,
}

/// Keys only wg-quick understands (`wg setconf` rejects them).
const WG_QUICK_ONLY: &[&str] = &[
    "address",
    "dns",
    "mtu",
    "table",
    "preup",
    "postup",
    "predown",
    "postdown",
    "saveconfig",
];

/// Splits a wg-quick config (keys case-insensitive, `#` comments, comma-separated and
/// repeated lists, like wg-quick itself parses them).
pub fn split_wg_quick(conf: &str) -> WgQuickConf {
    let mut out = WgQuickConf::default();
    for line in conf.lines() {
        let content = line.split('#').next().unwrap_or("").trim();
        let Some((key, value)) = content.split_once('=') else {
            out.setconf.push_str(line);
            out.setconf.push('\n');
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        if !WG_QUICK_ONLY.contains(&key.as_str()) {
            out.setconf.push_str(line);
            out.setconf.push('\n');
            continue;
        }
        let list = || {
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
        };
        match key.as_str() {
            "address" => out.addresses.extend(list()),
            "dns" => out.dns.extend(list()),
            "mtu" => {
                out.mtu = Some(
                    value
                        .trim()
                        .parse()
                        .unwrap_or_else(|_| panic!("bad MTU line: {line}")),
                )
            }
            "table" => out.table = Some(value.trim().to_string()),
            _ => {} // Pre/Post hooks and SaveConfig: never run by the harness.
        }
    }
    out
}

/// One peer line of `wg show <iface> dump`.
#[derive(Debug, Clone, PartialEq)]
pub struct WgPeerDump {
    pub public_key: String,
    /// `None` when `(none)`.
    pub endpoint: Option<String>,
    pub allowed_ips: Vec<String>,
    /// Unix seconds of the latest handshake, 0 = never.
    pub latest_handshake: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// Parses the peer lines of `wg show <iface> dump` (the first line is the interface).
pub fn parse_dump(dump: &str) -> Vec<WgPeerDump> {
    dump.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() < 8 {
                return None;
            }
            let num = |s: &str| s.parse().unwrap_or(0);
            Some(WgPeerDump {
                public_key: f[0].into(),
                endpoint: (f[2] != "(none)").then(|| f[2].to_string()),
                allowed_ips: if f[3] == "(none)" {
                    Vec::new()
                } else {
                    f[3].split(',').map(String::from).collect()
                },
                latest_handshake: num(f[4]),
                rx_bytes: num(f[5]),
                tx_bytes: num(f[6]),
            })
        })
        .collect()
}

/// A stock WireGuard peer: `wireguard-go` in a namespace, configured from a wg-quick file.
/// Dropping it stops wireguard-go (SIGTERM, then SIGKILL) and removes its interface and
/// control socket.
pub struct WgGoPeer {
    pub ns: String,
    /// The WireGuard interface (unique machine-wide, see the module docs).
    pub iface: String,
    pub child: Child,
    /// Holds wireguard-go's log (stdout+stderr) and the stripped config.
    dir: tempfile::TempDir,
}

impl WgGoPeer {
    /// Starts wireguard-go in `ns` and applies `conf` (wg-quick syntax) the way wg-quick
    /// would: `wg setconf` with the wg-quick-only keys stripped, the `Address`es (IPv6 with
    /// `nodad`), `MTU`, link up, and a route for each peer's AllowedIPs — except the
    /// defaults `0.0.0.0/0` and `::/0`, which are skipped (no default route is ever taken
    /// over); `routes` (prefixes such as `"10.0.0.0/8"` or `"fd00::/8"`) are added to the
    /// interface instead. `Table = off` skips the AllowedIPs routes, as in wg-quick.
    /// wireguard-go logs verbosely (handshakes and keepalives, not data packets) into
    /// [`WgGoPeer::log`]: failure messages show it, and tests read who started a handshake.
    pub fn start(ns: &Netns, conf: &str, routes: &[&str]) -> WgGoPeer {
        let iface = iface_name("wg");
        let dir = tempfile::tempdir().expect("tempdir");
        let log = std::fs::File::create(dir.path().join("wireguard-go.log")).expect("log file");
        let mut cmd = Command::new("wireguard-go");
        cmd.arg(&iface)
            // Stay in the foreground: the Child is wireguard-go itself, not a launcher.
            .env("WG_PROCESS_FOREGROUND", "1")
            .env("LOG_LEVEL", "verbose")
            .stdin(Stdio::null())
            // A file, not a pipe: nobody reads it while the test runs, and a full pipe
            // would block wireguard-go.
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        let child = ns.spawn(&mut cmd);
        // Owned from here: Drop stops it however the rest of the setup ends.
        let mut peer = WgGoPeer {
            ns: ns.name.clone(),
            iface,
            child,
            dir,
        };

        let sock = peer.socket();
        let ready = wait_until(Duration::from_secs(10), || {
            sock.exists() || matches!(peer.child.try_wait(), Ok(Some(_)))
        });
        if let Ok(Some(status)) = peer.child.try_wait() {
            panic!(
                "wireguard-go {} exited ({status}): {}",
                peer.iface,
                peer.log()
            );
        }
        assert!(
            ready,
            "wireguard-go {}: no {} after 10 s: {}",
            peer.iface,
            sock.display(),
            peer.log()
        );

        let parsed = split_wg_quick(conf);
        let conf_path = peer.dir.path().join("setconf.conf");
        std::fs::write(&conf_path, &parsed.setconf).expect("write setconf file");
        let conf_arg = conf_path.to_str().expect("utf-8 temp path");
        peer.ns_run(&["wg", "setconf", &peer.iface, conf_arg]);

        for addr in &parsed.addresses {
            if addr.contains(':') {
                peer.ns_run(&["ip", "-6", "addr", "add", addr, "dev", &peer.iface, "nodad"]);
            } else {
                peer.ns_run(&["ip", "-4", "addr", "add", addr, "dev", &peer.iface]);
            }
        }
        if let Some(mtu) = parsed.mtu {
            peer.ns_run(&[
                "ip",
                "link",
                "set",
                "dev",
                &peer.iface,
                "mtu",
                &mtu.to_string(),
            ]);
        }
        peer.ns_run(&["ip", "link", "set", "dev", &peer.iface, "up"]);

        // Like wg-quick: routes from what wg itself parsed (normalised prefixes), skipping
        // those an existing route on the interface (e.g. an Address's subnet) covers.
        let mut prefixes: Vec<String> = Vec::new();
        if !parsed
            .table
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("off"))
        {
            let allowed = peer.ns_run(&["wg", "show", &peer.iface, "allowed-ips"]);
            prefixes.extend(
                allowed
                    .lines()
                    .flat_map(|l| l.split_whitespace().skip(1))
                    .filter(|p| *p != "(none)" && *p != "0.0.0.0/0" && *p != "::/0")
                    .map(String::from),
            );
        }
        for p in prefixes {
            let fam = if p.contains(':') { "-6" } else { "-4" };
            let covered =
                peer.ns_run(&["ip", fam, "route", "show", "dev", &peer.iface, "match", &p]);
            if covered.trim().is_empty() {
                peer.ns_run(&["ip", fam, "route", "add", &p, "dev", &peer.iface]);
            }
        }
        for r in routes {
            let fam = if r.contains(':') { "-6" } else { "-4" };
            peer.ns_run(&["ip", fam, "route", "add", r, "dev", &peer.iface]);
        }
        peer
    }

    /// `/var/run/wireguard/<iface>.sock`.
    pub fn socket(&self) -> PathBuf {
        Path::new(WG_SOCK_DIR).join(format!("{}.sock", self.iface))
    }

    /// wireguard-go's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("wireguard-go.log")).unwrap_or_default()
    }

    /// How many handshakes the other side has started with this peer so far.
    pub fn initiations_received(&self) -> usize {
        self.log().matches("Received handshake initiation").count()
    }

    /// Runs a command in the peer's namespace; panics (with wireguard-go's log) on failure.
    fn ns_run(&self, args: &[&str]) -> String {
        let out = exec_in(&self.ns, args);
        let what = format!(
            "netns {}: {args:?} (wireguard-go log: {:?})",
            self.ns,
            self.log()
        );
        check(&what, Ok(out))
    }

    /// `wg show <iface> dump`.
    pub fn show(&self) -> String {
        self.ns_run(&["wg", "show", &self.iface, "dump"])
    }

    /// The peers of [`show`](Self::show), parsed.
    pub fn peers(&self) -> Vec<WgPeerDump> {
        parse_dump(&self.show())
    }
}

impl Drop for WgGoPeer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: signalling our own child (not yet reaped, so the pid is still ours).
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let stopped = wait_until(Duration::from_secs(5), || {
                !matches!(self.child.try_wait(), Ok(None))
            });
            if !stopped {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        // On SIGTERM wireguard-go removes both itself; after SIGKILL (or if it was killed
        // by the namespace's Drop first) the socket file may remain.
        let _ = std::fs::remove_file(self.socket());
        let _ = Command::new("ip")
            .args(["-n", &self.ns, "link", "del", &self.iface])
            .stderr(Stdio::null())
            .output();
    }
}

/// `ping` from `ns`: true when `count` echo replies arrive within `timeout_s` seconds in
/// total (ping keeps sending, every 0.2 s, until then). Works for IPv4 and IPv6 addresses
/// (iputils ping picks the family). Prints ping's output when it fails.
pub fn ping(ns: &Netns, addr: &str, count: u32, timeout_s: u32) -> bool {
    let out = ns.exec(&[
        "ping",
        "-n",
        "-q",
        "-i",
        "0.2",
        "-c",
        &count.to_string(),
        "-w",
        &timeout_s.to_string(),
        addr,
    ]);
    if !out.status.success() {
        eprintln!(
            "ping {addr} from {} failed ({}): {}{}",
            ns.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.status.success()
}

/// How long until the first echo reply from `addr` arrives at `ns` (ping sends every 0.1 s),
/// or `None` if none arrives within `timeout_s` seconds.
pub fn time_to_first_reply(ns: &Netns, addr: &str, timeout_s: u32) -> Option<Duration> {
    let started = Instant::now();
    let out = ns.exec(&[
        "ping",
        "-n",
        "-q",
        "-i",
        "0.1",
        "-c",
        "1",
        "-w",
        &timeout_s.to_string(),
        addr,
    ]);
    out.status.success().then(|| started.elapsed())
}
