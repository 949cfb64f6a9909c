//! Layer-3 TUN interfaces for the userspace WireGuard devices: `/dev/net/tun` opened with
//! `TUNSETIFF` (IFF_TUN | IFF_NO_PI), non-blocking, driven by tokio's `AsyncFd`. Each
//! read or write is one IP packet.
//!
//! `libc::TUNSETIFF` is computed per architecture (`_IOW`), unlike boringtun's `device`
//! layer, which hard-codes the x86 value and fails on MIPS.

use std::ffi::c_short;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Why a TUN interface could not be created; the API reports it as 503.
#[derive(Debug)]
pub enum TunError {
    /// No `/dev/net/tun` (kmod-tun missing) or no privilege (CAP_NET_ADMIN).
    Unavailable(String),
    InvalidName(String),
    Io(io::Error),
}

impl std::fmt::Display for TunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TunError::Unavailable(m) | TunError::InvalidName(m) => f.write_str(m),
            TunError::Io(e) => write!(f, "TUN device: {e}"),
        }
    }
}

impl std::error::Error for TunError {}

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags at the start of the union.
/// The union is 24 bytes on 64-bit Linux and 16 on 32-bit; the larger size fits both.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: c_short,
    _pad: [u8; 22],
}

/// Interface names the kernel and `ip` accept: 1–15 bytes, no `/`, whitespace or `:`.
pub fn valid_name(name: &str) -> bool {
    (1..libc::IFNAMSIZ).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub struct Tun {
    fd: AsyncFd<OwnedFd>,
    name: String,
}

impl Tun {
    /// Creates (or attaches to) the TUN interface `name`. Must run inside a tokio runtime.
    pub fn open(name: &str) -> Result<Tun, TunError> {
        if !valid_name(name) {
            return Err(TunError::InvalidName(format!(
                "interface name {name:?} must be 1-15 letters, digits, '-', '_' or '.'"
            )));
        }
        // SAFETY: plain open(2) of a fixed path; the result is checked before use.
        let raw = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            let e = io::Error::last_os_error();
            return Err(TunError::Unavailable(format!(
                "cannot open /dev/net/tun: {e} (is kmod-tun installed?)"
            )));
        }
        // SAFETY: `raw` is a freshly opened descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: (libc::IFF_TUN | libc::IFF_NO_PI) as c_short,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads an ifreq; `req` is a properly sized, initialised one.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut req) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => TunError::Unavailable(format!(
                    "cannot create interface {name}: {e} (needs root or CAP_NET_ADMIN)"
                )),
                _ => TunError::Io(e),
            });
        }
        let end = req
            .name
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(req.name.len());
        let name = String::from_utf8_lossy(&req.name[..end]).into_owned();
        // SAFETY: the AsyncFd owns `fd` from here on; nothing else replaces or closes it
        // while it is registered.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| TunError::Io(e.into()))?;
        Ok(Tun { fd, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads one packet into `buf`; returns its length.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::READABLE, |fd| {
                // SAFETY: reading into a valid, writable buffer of the given length.
                check(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
            })
            .await
    }

    /// Writes one packet.
    pub async fn send(&self, packet: &[u8]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::WRITABLE, |fd| {
                // SAFETY: writing from a valid buffer of the given length.
                check(unsafe { libc::write(fd.as_raw_fd(), packet.as_ptr().cast(), packet.len()) })
            })
            .await
    }
}

/// A read(2)/write(2) result as `io::Result` (`WouldBlock` makes `async_io` wait again).
fn check(n: isize) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        for ok in ["wg0", "wg-office", "a", "x23456789012345"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "x234567890123456", "wg 0", "wg/0", "wg:0", "..", "wgé"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn ifreq_layout_matches_the_kernel() {
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
        assert_eq!(std::mem::offset_of!(IfReq, flags), 16);
    }
}
