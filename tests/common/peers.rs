//! Real BGP peers from Debian packages (BIRD 2, GoBGP, ExaBGP) run on loopback addresses
//! and high ports for interop tests. Each is killed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
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
            eprintln!("skipped: BIRD is not installed (apt-get install bird2)");
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
            eprintln!("skipped: GoBGP is not installed (apt-get install gobgpd)");
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
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("gobgpd.log")).expect("log"))
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
