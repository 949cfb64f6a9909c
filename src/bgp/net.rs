//! Sockets of the speaker: listening and connecting TCP sockets with TCP-MD5 (RFC 2385).
//!
//! Linux keeps MD5 keys per socket and peer address (`TCP_MD5SIG`): a connecting socket
//! gets its peer's key before `connect`, a listening socket one key per peer it accepts
//! (accepted sockets inherit them). A kernel without `CONFIG_TCP_MD5SIG` refuses the
//! option; that error is returned, never ignored, so a session that asked for MD5 does not
//! run without it.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// `struct tcp_md5sig` of `<linux/tcp.h>`.
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; 80],
}

/// Sets (or with an empty key removes) the MD5 key for `peer` on socket `fd`.
pub fn set_md5(fd: RawFd, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    if key.len() > 80 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TCP-MD5 keys are at most 80 bytes",
        ));
    }
    // SAFETY: all-zero is a valid `sockaddr_storage` and a valid `TcpMd5Sig`.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    let sa = SockAddr::from(SocketAddr::new(peer, 0));
    // SAFETY: `sa` holds a sockaddr of `sa.len()` bytes, which fits a sockaddr_storage.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sa.as_ptr().cast::<u8>(),
            (&mut sig.addr as *mut libc::sockaddr_storage).cast::<u8>(),
            sa.len() as usize,
        );
    }
    sig.keylen = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: `sig` is a properly initialised `tcp_md5sig` of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            (&sig as *const TcpMd5Sig).cast(),
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        Err(io::Error::new(
            e.kind(),
            format!("TCP-MD5 (TCP_MD5SIG) not available: {e}"),
        ))
    }
}

fn tcp_socket(family: &SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(
        Domain::for_address(*family),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    s.set_nonblocking(true)?;
    s.set_cloexec(true)?;
    Ok(s)
}

/// A listening socket on `addr` (IPv6 sockets take IPv6 only: IPv4 peers have their own).
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = tcp_socket(&addr)?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    s.listen(16)?;
    TcpListener::from_std(s.into())
}

/// Connects to `peer` from `local` (address only; any port), with `key` as TCP-MD5 key,
/// giving up after `timeout`.
pub async fn connect(
    peer: SocketAddr,
    local: Option<IpAddr>,
    key: Option<&[u8]>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let s = tcp_socket(&peer)?;
    if let Some(key) = key {
        set_md5(s.as_raw_fd(), peer.ip(), key)?;
    }
    if let Some(ip) = local {
        s.bind(&SocketAddr::new(ip, 0).into())?;
    }
    let socket = tokio::net::TcpSocket::from_std_stream(s.into());
    let stream = tokio::time::timeout(timeout, socket.connect(peer))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Where a session listens: its local address, or any address of the neighbor's family.
pub fn listen_addr(local: Option<IpAddr>, neighbor: IpAddr, port: u16) -> SocketAddr {
    let ip = local.unwrap_or(match neighbor {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    SocketAddr::new(ip, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn md5_keys_are_set_or_the_error_says_why() {
        let l = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        match set_md5(l.as_raw_fd(), "127.0.0.2".parse().unwrap(), b"s3cret") {
            Ok(()) => set_md5(l.as_raw_fd(), "127.0.0.2".parse().unwrap(), b"").unwrap(),
            Err(e) => assert!(e.to_string().contains("TCP_MD5SIG"), "{e}"),
        }
        let e = set_md5(l.as_raw_fd(), "127.0.0.2".parse().unwrap(), &[0; 81]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn connect_reaches_a_listener_from_the_given_address() {
        let l = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = l.local_addr().unwrap();
        let local: IpAddr = "127.0.0.3".parse().unwrap();
        let (c, a) = tokio::join!(
            connect(to, Some(local), None, Duration::from_secs(2)),
            l.accept()
        );
        assert_eq!(c.unwrap().local_addr().unwrap().ip(), local);
        assert_eq!(a.unwrap().1.ip(), local);
    }
}
