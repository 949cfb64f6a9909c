//! A router to install the package on: OpenWrt's own 19.07.7 rootfs (armvirt/64,
//! `../shared/openwrt/`), unpacked into a temporary directory and run as a chroot in a
//! network namespace of its own, with its ubusd, logd and procd — so `opkg`, the procd init
//! script, `logger`/`logread` and `sysupgrade` are the genuine ones (aarch64, through
//! qemu-user). The ipv6wgm binary in the package is this build for the host (running natively,
//! with the host's C library copied into the rootfs): building the aarch64 one takes minutes,
//! and what is tested here is the package around it.
//!
//! No `/dev` bind mount: the few device nodes needed are made (`logd` makes its `/dev/log`
//! inside the chroot, not on the host). Dropping a `Router` kills every process of its
//! namespace, unmounts `/proc` and `/tmp`, and removes the tree (left in place if an unmount
//! fails, never removed through a mount).

use crate::common::netns::{wait_until, Netns};
use crate::common::Resp;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The rootfs tarball: `IPV6WGM_OPENWRT_ROOTFS`, else the shared copy beside the checkout.
fn rootfs_tarball() -> PathBuf {
    std::env::var_os("IPV6WGM_OPENWRT_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/openwrt/openwrt-19.07.7-armvirt-64-rootfs.tar.gz")
        })
}

const BINFMT: &str = "/proc/sys/fs/binfmt_misc";

/// Why the router cannot run here, if it cannot.
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root: chroot, mounts, a network namespace (CI runs as root)".into());
    }
    if !rootfs_tarball().is_file() {
        return Some(format!(
            "no OpenWrt rootfs at {} (set IPV6WGM_OPENWRT_ROOTFS)",
            rootfs_tarball().display()
        ));
    }
    if !Path::new(&format!("{BINFMT}/qemu-aarch64")).exists()
        && !Path::new("/usr/lib/binfmt.d/qemu-aarch64.conf").exists()
    {
        return Some("no qemu-user-static for aarch64".into());
    }
    None
}

/// Lets the kernel run the rootfs's aarch64 programs through qemu (registered with the F
/// flag, so the interpreter is found from inside the chroot).
fn register_qemu() {
    if !Path::new(&format!("{BINFMT}/register")).exists() {
        let _ = Command::new("mount")
            .args(["-t", "binfmt_misc", "binfmt_misc", BINFMT])
            .status();
    }
    if !Path::new(&format!("{BINFMT}/qemu-aarch64")).exists() {
        let conf = std::fs::read("/usr/lib/binfmt.d/qemu-aarch64.conf").expect("qemu conf");
        // Another test process may register it at the same moment: EEXIST is fine.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("{BINFMT}/register"))
            .and_then(|mut f| f.write_all(&conf));
    }
    assert!(
        Path::new(&format!("{BINFMT}/qemu-aarch64")).exists(),
        "qemu-aarch64 not registered"
    );
}

pub struct Router {
    /// Dropped first (in `Drop`): every process of the router dies before the unmounts.
    netns: Option<Netns>,
    /// ubusd, logd, procd: reaped once the namespace's cleanup has killed them.
    daemons: Vec<std::process::Child>,
    dir: Option<tempfile::TempDir>,
    mounts: Vec<PathBuf>,
}

impl Router {
    /// Unpacks the rootfs and starts ubusd, logd and procd; returns once procd serves ubus.
    pub fn start() -> Router {
        register_qemu();
        let dir = tempfile::Builder::new()
            .prefix("openwrt-")
            .tempdir()
            .expect("tmp");
        let mut r = Router {
            netns: None,
            daemons: Vec::new(),
            dir: Some(dir),
            mounts: Vec::new(),
        };
        let root = r.root().to_path_buf();
        crate::run(
            Command::new("tar")
                .arg("-xzf")
                .arg(rootfs_tarball())
                .arg("-C")
                .arg(&root),
        );
        // The root a mount of its own, as on a router: sysupgrade refuses to save anything
        // when / is not a mount ("running from ramdisk").
        r.mount(&["--bind", root.to_str().expect("utf-8 path")], "");
        r.mount(&["-t", "proc", "proc"], "proc");
        r.mount(&["-t", "tmpfs", "tmpfs"], "tmp");
        for d in ["tmp/lock", "tmp/run", "dev/net"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        for (node, major, minor) in [
            ("null", 1, 3),
            ("zero", 1, 5),
            ("random", 1, 8),
            ("urandom", 1, 9),
            ("net/tun", 10, 200),
        ] {
            crate::run(
                Command::new("mknod")
                    .args(["-m", "0666"])
                    .arg(root.join("dev").join(node))
                    .args(["c", &major.to_string(), &minor.to_string()]),
            );
        }
        r.netns = Some(Netns::new("owrt"));
        r.daemon(&["/sbin/ubusd"]);
        assert!(
            wait_until(Duration::from_secs(20), || root
                .join("tmp/run/ubus.sock")
                .exists()),
            "ubusd did not start"
        );
        r.daemon(&["/sbin/logd", "-S", "64"]);
        r.daemon(&["/sbin/procd"]);
        assert!(
            wait_until(Duration::from_secs(30), || {
                let list = r.sh("ubus list");
                let names = String::from_utf8_lossy(&list.stdout).into_owned();
                ["log", "service", "system"]
                    .iter()
                    .all(|n| names.lines().any(|l| l == *n))
            }),
            "procd and logd did not register on ubus"
        );
        r
    }

    pub fn root(&self) -> &Path {
        self.dir.as_ref().expect("root").path()
    }

    /// `<root>/<path>`, for a path as the router names it.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root().join(path.trim_start_matches('/'))
    }

    fn netns(&self) -> &Netns {
        self.netns.as_ref().expect("netns")
    }

    fn mount(&mut self, how: &[&str], at: &str) {
        let target = self.root().join(at);
        crate::run(Command::new("mount").args(how).arg(&target));
        self.mounts.push(target);
    }

    fn daemon(&mut self, argv: &[&str]) {
        let mut cmd = Command::new("chroot");
        cmd.arg(self.root())
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = self.netns().spawn(&mut cmd);
        self.daemons.push(child);
    }

    /// `sh -c script` on the router, as root in `/`; its output whatever the exit status.
    pub fn sh(&self, script: &str) -> Output {
        self.netns()
            .command("chroot")
            .arg(self.root())
            .args(["/bin/sh", "-c", script])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", "/root")
            .stdin(Stdio::null())
            .output()
            .expect("chroot")
    }

    /// Like [`sh`](Self::sh), but the script must succeed; its stdout.
    pub fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "router: {script}: exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls `f` until it gives a value; after `secs`, fails showing the system log.
    pub fn wait<T>(&self, secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let mut got = None;
        wait_until(Duration::from_secs(secs), || {
            got = f();
            got.is_some()
        });
        got.unwrap_or_else(|| {
            panic!(
                "timed out after {secs} s waiting for {what}\n{}",
                self.log()
            )
        })
    }

    /// The ipv6wgm processes of this router.
    pub fn service_pids(&self) -> Vec<i32> {
        self.netns()
            .pids()
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "ipv6wgm")
            })
            .collect()
    }

    /// Stops the service (`/etc/init.d/ipv6wgm stop`, or `how`) and waits until its
    /// process is gone: procd only signals it.
    pub fn stop_service(&self, how: &str) {
        self.ok(how);
        self.wait(30, "the service to stop", || {
            self.service_pids().is_empty().then_some(())
        });
    }

    /// The system log (`logread`).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.sh("logread").stdout).into_owned()
    }

    /// Copies `binary`'s shared libraries and loader (`ldd`) to the same paths in the
    /// rootfs, so a host build runs there.
    pub fn provide_libraries(&self, binary: &Path) {
        let ldd = crate::run(Command::new("ldd").arg(binary));
        for path in ldd
            .split_whitespace()
            .filter(|w| w.starts_with('/') && !w.contains("vdso"))
        {
            let to = self.path(path);
            std::fs::create_dir_all(to.parent().expect("dir")).expect("mkdir");
            std::fs::copy(path, &to).unwrap_or_else(|e| panic!("copy {path}: {e}"));
        }
    }

    /// Marks `package` installed (the rootfs has no feeds to install it from).
    pub fn pretend_installed(&self, package: &str) {
        let mut status = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path("/usr/lib/opkg/status"))
            .expect("status");
        write!(
            status,
            "\nPackage: {package}\nVersion: 1\nStatus: install user installed\n\
             Architecture: aarch64_generic\nInstalled-Time: 1\n"
        )
        .expect("write");
        std::fs::write(self.path(&format!("/usr/lib/opkg/info/{package}.list")), "").expect("list");
    }

    /// An HTTP request to the router's API on `[::1]:port`, from inside its namespace.
    pub fn api(
        &self,
        port: u16,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Option<Resp> {
        let ns = self.netns().path();
        let mut head =
            format!("{method} /api/v1{path} HTTP/1.1\r\nHost: router\r\nConnection: close\r\n");
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let f = std::fs::File::open(&ns).expect("open netns");
            // SAFETY: setns on this short-lived thread only, with an fd we hold.
            let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            let mut s = std::net::TcpStream::connect(("::1", port)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
            s.write_all(head.as_bytes()).ok()?;
            Some(crate::common::read_response(&mut s))
        })
        .join()
        .expect("api thread")
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        drop(self.netns.take());
        for mut d in self.daemons.drain(..) {
            let _ = d.kill();
            let _ = d.wait();
        }
        let mut all_unmounted = true;
        for m in self.mounts.iter().rev() {
            let ok = Command::new("umount")
                .arg(m)
                .status()
                .is_ok_and(|s| s.success())
                || Command::new("umount")
                    .arg("-l")
                    .arg(m)
                    .status()
                    .is_ok_and(|s| s.success());
            all_unmounted &= ok;
        }
        if let Some(dir) = self.dir.take() {
            if !all_unmounted {
                eprintln!(
                    "router: a mount is left: not removing {}",
                    dir.path().display()
                );
                let _ = dir.keep();
            }
        }
    }
}
