//! Real BGP peers from Debian packages (BIRD 2, GoBGP, ExaBGP) run on loopback addresses
//! and high ports for interop tests. Each is killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

// Shared with the tests that use no peer; kept here under the names the BGP tests import.
pub use super::fixtures::{free_port, wait_for};

/// `name` on the PATH, or in /usr/sbin (not on a normal user's PATH).
pub fn sbin(name: &str) -> Option<PathBuf> {
    super::netns::which(name).or_else(|| {
        let p = Path::new("/usr/sbin").join(name);
        p.exists().then_some(p)
    })
}

pub struct Bird {
    child: Child,
    dir: tempfile::TempDir,
}

impl Bird {
    /// `None` (with the reason printed) when BIRD is not installed. `{DIR}` in `config`
    /// is BIRD's own directory (e.g. for `log "{DIR}/bird.log" all;`).
    pub fn start(config: &str) -> Option<Bird> {
        let Some(bin) = sbin("bird") else {
            super::skip("BIRD is not installed (apt-get install bird2)");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("bird.conf");
        let config = config.replace("{DIR}", &dir.path().display().to_string());
        std::fs::write(&conf, config).expect("write bird.conf");
        let child = Command::new(bin)
            .arg("-f")
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(dir.path().join("bird.ctl"))
            .arg("-P")
            .arg(dir.path().join("bird.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bird");
        let bird = Bird { child, dir };
        wait_for(10, "BIRD's control socket", || {
            bird.ctl().exists().then_some(())
        });
        Some(bird)
    }

    fn ctl(&self) -> PathBuf {
        self.dir.path().join("bird.ctl")
    }

    /// Output of `birdc <args>`.
    pub fn birdc(&self, args: &str) -> String {
        let out = Command::new(sbin("birdc").expect("birdc"))
            .arg("-s")
            .arg(self.ctl())
            .args(args.split_whitespace())
            .output()
            .expect("birdc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// BIRD's log, if the config logs to `{DIR}/bird.log`.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bird.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GoBGP (`gobgpd`), driven through its `gobgp` CLI on a private gRPC port.
pub struct GoBgp {
    child: Child,
    _dir: tempfile::TempDir,
    grpc: u16,
}

impl GoBgp {
    /// `None` (with the reason printed) when GoBGP is not installed.
    pub fn start(config: &str) -> Option<GoBgp> {
        let (Some(bin), Some(_)) = (sbin("gobgpd"), sbin("gobgp")) else {
            super::skip("GoBGP is not installed (apt-get install gobgpd)");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("gobgp.toml");
        std::fs::write(&conf, config).expect("write gobgp.toml");
        let grpc = free_port();
        let child = Command::new(bin)
            .arg("-f")
            .arg(&conf)
            .arg("-p")
            .arg("--api-hosts")
            .arg(format!("127.0.0.1:{grpc}"))
            .arg("--pprof-disable")
            .arg("--log-plain")
            .stdin(Stdio::null())
            // gobgpd logs to standard output.
            .stdout(std::fs::File::create(dir.path().join("gobgpd.log")).expect("log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn gobgpd");
        let g = GoBgp {
            child,
            _dir: dir,
            grpc,
        };
        wait_for(10, "gobgpd's API", || {
            g.cli("global").contains("AS").then_some(())
        });
        Some(g)
    }

    /// What gobgpd logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("gobgpd.log")).unwrap_or_default()
    }

    /// Output of `gobgp -p <port> <args>`.
    pub fn cli(&self, args: &str) -> String {
        let out = Command::new(sbin("gobgp").expect("gobgp"))
            .arg("-p")
            .arg(self.grpc.to_string())
            .args(args.split_whitespace())
            .output()
            .expect("gobgp");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for GoBgp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// ExaBGP with a helper process that appends every message it receives (ExaBGP's JSON
/// encoding, one object per line) to `received.json`.
pub struct ExaBgp {
    child: Child,
    dir: tempfile::TempDir,
}

impl ExaBgp {
    /// `None` (with the reason printed) when ExaBGP is not installed. `{RECV}` in `config`
    /// is the path of the receiving helper, to name in a `process { run {RECV}; encoder json; }`.
    pub fn start(config: &str) -> Option<ExaBgp> {
        let Some(bin) = sbin("exabgp") else {
            super::skip("ExaBGP is not installed (apt-get install exabgp)");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let recv = dir.path().join("recv.py");
        let out = dir.path().join("received.json");
        // ExaBGP restarts a helper that exits; `cat` does on the non-blocking stdin it gets.
        std::fs::write(
            &recv,
            format!(
                "#!/usr/bin/env python3\nimport sys\nwith open({:?}, 'a') as f:\n    for line in sys.stdin:\n        f.write(line)\n        f.flush()\n",
                out.display().to_string()
            ),
        )
        .expect("write recv.py");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&recv, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let conf = dir.path().join("exabgp.conf");
        std::fs::write(&conf, config.replace("{RECV}", &recv.display().to_string()))
            .expect("write exabgp.conf");
        let child = Command::new(bin)
            .arg(&conf)
            .env("exabgp.daemon.user", "root")
            .env("exabgp.log.destination", dir.path().join("exabgp.log"))
            .env("exabgp.api.cli", "false")
            .env("exabgp.log.level", "DEBUG")
            // Packets in hex, for messages ExaBGP itself fails to decode.
            .env("exabgp.log.packets", "true")
            .env("exabgp.log.network", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn exabgp");
        Some(ExaBgp { child, dir })
    }

    /// Every message ExaBGP passed to the helper so far, parsed.
    pub fn received(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("received.json"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// ExaBGP's Adj-RIB-In for its neighbour, replayed from the received UPDATEs:
    /// prefix → the attributes it came with.
    pub fn rib(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        let mut rib = std::collections::BTreeMap::new();
        for m in self.received() {
            let u = &m["neighbor"]["message"]["update"];
            if let Some(w) = u["withdraw"].as_object() {
                for nlri in w
                    .values()
                    .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                {
                    rib.remove(nlri["nlri"].as_str().unwrap_or_default());
                }
            }
            if let Some(a) = u["announce"].as_object() {
                for (hop, nlris) in a
                    .values()
                    .flat_map(|v| v.as_object().cloned().unwrap_or_default())
                {
                    for nlri in nlris.as_array().cloned().unwrap_or_default() {
                        let mut attrs = u["attribute"].clone();
                        attrs["next-hop"] = hop.clone().into();
                        rib.insert(nlri["nlri"].as_str().unwrap_or_default().to_string(), attrs);
                    }
                }
            }
        }
        rib
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("exabgp.log")).unwrap_or_default()
    }
}

impl Drop for ExaBgp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
