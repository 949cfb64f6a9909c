//! For tests that drive the kernel from inside the test process (TUN, netlink) rather than
//! through the server: whether they can run here, a network namespace private to a thread,
//! and iproute2 run inside it. Included with `#[path = "common/kernel.rs"] mod kernel;`
//! (these tests do not start the binary, so they do not take the harness).
#![allow(dead_code)]

use std::future::Future;
use std::process::Command;

/// `Some(reason)` unless this is root with /dev/net/tun, nsenter and iproute2.
pub fn skip_reason() -> Option<&'static str> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (CI runs as root)");
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun");
    }
    if Command::new("nsenter").arg("--version").output().is_err() {
        return Some("no nsenter (util-linux)");
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("no ip (iproute2)");
    }
    None
}

/// Runs `body(netns path)` on a new thread inside a fresh network namespace, on a
/// current-thread runtime (so sockets and their tasks live on that thread).
/// `before` runs in the namespace before the runtime starts.
pub fn in_private_netns<F, Fut>(before: fn(), body: F)
where
    F: FnOnce(String) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let worker = std::thread::spawn(move || {
        // SAFETY: moves only this thread into a new, empty network namespace.
        assert_eq!(
            unsafe { libc::unshare(libc::CLONE_NEWNET) },
            0,
            "unshare(CLONE_NEWNET)"
        );
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) };
        let netns = format!("/proc/{}/task/{tid}/ns/net", std::process::id());
        before();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(body(netns));
    });
    worker.join().expect("worker thread");
}

/// `ip <args>` inside the namespace at `netns` (a path); panics with its stderr unless it
/// succeeds, returns its stdout.
pub fn ip(netns: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new("nsenter")
        .arg(format!("--net={netns}"))
        .arg("ip")
        .args(args)
        .output()
        .expect("nsenter ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
