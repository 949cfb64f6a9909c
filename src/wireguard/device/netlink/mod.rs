//! Interface configuration of our userspace WireGuard TUN devices over rtnetlink: link
//! lookup, MTU, up/down, addresses and device routes, plus a read-only dump of every
//! interface for status pages.
//!
//! Why netlink and not `ip`: a router image may ship BusyBox `ip` (no `-j`, different
//! error text) or full iproute2, and spawning a process per change costs a fork on a
//! 64 MiB box. Netlink is the kernel's own interface: one socket, typed messages, and an
//! errno per request, so "already there" (EEXIST) and "already gone" (EADDRNOTAVAIL,
//! ESRCH) are told apart from real failures without parsing text in two dialects.
//!
//! Why our own messages and not the `rtnetlink` crate: we send six kinds of request and
//! read two dumps, and `rtnetlink` + `netlink-packet-route` cost ≈ 420 KiB of code (a
//! tenth of the 4 MiB router budget) to type every attribute the kernel knows. Here a
//! request is a `nlmsghdr`, a fixed header (`ifinfomsg`, `ifaddrmsg`, `rtmsg`) and a few
//! attributes, encoded by hand in host byte order (netlink is host-endian; addresses
//! inside attributes are network order). Replies are parsed defensively: every length is
//! checked, and a truncated or malformed reply is an error, never a panic or a loop.
//!
//! One [`Netlink`] owns one `NETLINK_ROUTE` socket (bound with port id 0: the kernel picks
//! one), registered with the reactor of the tokio runtime that created it. The socket lives
//! in the network namespace of the thread that called [`Netlink::new`]. Requests are rare
//! and run one at a time; each has its own sequence number, and replies with another
//! sequence number (left over from a request that timed out) or from a sender other than
//! the kernel are ignored. Message building and parsing are pure functions (tested below on
//! byte vectors, including captured kernel replies); only the `Netlink` methods do I/O.
//!
//! Emulation pitfall (see `cross/smoke.sh`): qemu-user translates NETLINK_ROUTE messages
//! between guest and host byte order, and 7.2 gets two things wrong for big-endian guests:
//! RTM_SETLINK attributes reach the kernel unswapped (IFLA_MTU → EINVAL) and link dumps come
//! back mistranslated. A real big-endian kernel is not affected; that is why
//! [`Netlink::link_index`] avoids the link dump, and why every request has a deadline.

use ipnet::IpNet;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;
use tokio::io::unix::AsyncFd;

mod msg;
use msg::*;

/// A failed netlink request: what we tried, and the kernel's errno when it gave one.
#[derive(Debug)]
pub struct NetlinkError {
    /// The operation, e.g. `add address 10.0.0.1/24 to link #4`.
    pub op: String,
    /// Positive errno from the kernel (`ENODEV` = 19, …); `None` when the failure was
    /// local (no runtime, unexpected or malformed reply).
    pub errno: Option<i32>,
    pub message: String,
}

impl NetlinkError {
    /// The process lacks CAP_NET_ADMIN (not root, or a capability-restricted service).
    pub fn is_permission(&self) -> bool {
        matches!(self.errno, Some(libc::EPERM) | Some(libc::EACCES))
    }

    fn local(op: String, message: impl Into<String>) -> NetlinkError {
        NetlinkError {
            op,
            errno: None,
            message: message.into(),
        }
    }

    fn new(op: String, failure: Failure) -> NetlinkError {
        match failure {
            Failure::Errno(errno) => NetlinkError {
                op,
                errno: Some(errno),
                message: io::Error::from_raw_os_error(errno).to_string(),
            },
            Failure::Local(message) => NetlinkError::local(op, message),
        }
    }
}

impl std::fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "netlink: {}: {}", self.op, self.message)
    }
}

impl std::error::Error for NetlinkError {}

/// Why a request failed, before we know which operation it was.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Positive errno: from the kernel's NLMSG_ERROR, or from the socket itself.
    Errno(i32),
    /// Nothing the kernel said: a malformed or truncated reply.
    Local(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        match e.raw_os_error() {
            Some(errno) => Failure::Errno(errno),
            None => Failure::Local(e.to_string()),
        }
    }
}

fn malformed(what: &str) -> Failure {
    Failure::Local(format!("malformed reply from the kernel: {what}"))
}

/// One interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    /// Administratively up (IFF_UP), not carrier.
    pub up: bool,
    pub mtu: Option<u32>,
    pub addresses: Vec<IpNet>,
}

/// A `NETLINK_ROUTE` socket for configuring links; cheap to share behind an `Arc`.
/// Concurrent requests wait for each other (they are rare and answered in microseconds).
pub struct Netlink {
    socket: tokio::sync::Mutex<Socket>,
}

impl Netlink {
    /// Opens a NETLINK_ROUTE socket and registers it with the current runtime.
    pub fn new() -> Result<Netlink, NetlinkError> {
        let op = || "open NETLINK_ROUTE socket".to_string();
        let io_error = |e: io::Error| NetlinkError {
            op: op(),
            errno: e.raw_os_error(),
            message: e.to_string(),
        };
        // AsyncFd needs a runtime (it would panic without one).
        tokio::runtime::Handle::try_current()
            .map_err(|e| NetlinkError::local(op(), e.to_string()))?;
        let fd = open_socket().map_err(io_error)?;
        // SAFETY: an OwnedFd keeps its descriptor open and unchanged until the AsyncFd that
        // owns it drops it.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| io_error(e.into_parts().1))?;
        Ok(Netlink {
            socket: tokio::sync::Mutex::new(Socket {
                fd,
                seq: 0,
                buf: vec![0; RECV_BUFFER],
            }),
        })
    }

    /// Index of the interface `name`; an unknown name is errno ENODEV. Asked with
    /// `if_nametoindex(3)` (one ioctl) rather than RTM_GETLINK: the full link dump it would
    /// parse is the one message qemu-user mistranslates on big-endian targets, and its
    /// answer is all we need.
    pub async fn link_index(&self, name: &str) -> Result<u32, NetlinkError> {
        let op = || format!("look up link {name}");
        let c = std::ffi::CString::new(name)
            .map_err(|_| NetlinkError::local(op(), "interface name contains NUL"))?;
        // SAFETY: a valid NUL-terminated string; the call only reads it.
        match unsafe { libc::if_nametoindex(c.as_ptr()) } {
            0 => {
                let e = io::Error::last_os_error();
                Err(NetlinkError {
                    op: op(),
                    errno: Some(e.raw_os_error().unwrap_or(libc::ENODEV)),
                    message: e.to_string(),
                })
            }
            index => Ok(index),
        }
    }

    pub async fn set_mtu(&self, index: u32, mtu: u32) -> Result<(), NetlinkError> {
        let body = link_body(index, 0, 0, Some(mtu));
        self.change(
            format!("set MTU {mtu} on link #{index}"),
            libc::RTM_SETLINK,
            SET_LINK_FLAGS,
            &body,
            &[],
        )
        .await
    }

    pub async fn set_up(&self, index: u32, up: bool) -> Result<(), NetlinkError> {
        let (flags, word) = if up { (IFF_UP, "up") } else { (0, "down") };
        let body = link_body(index, flags, IFF_UP, None);
        self.change(
            format!("set link #{index} {word}"),
            libc::RTM_SETLINK,
            SET_LINK_FLAGS,
            &body,
            &[],
        )
        .await
    }

    /// Adds `net` (address with its prefix length, e.g. 10.0.0.1/24 or fd00::1/64) to the
    /// link; already present = Ok. IPv6 addresses get IFA_F_NODAD so they are usable at
    /// once: a point-to-point tunnel has no neighbours to detect duplicates with.
    pub async fn add_address(&self, index: u32, net: IpNet) -> Result<(), NetlinkError> {
        self.change(
            format!("add address {net} to link #{index}"),
            libc::RTM_NEWADDR,
            CREATE_OR_REPLACE,
            &address_body(index, net),
            &[libc::EEXIST],
        )
        .await
    }

    /// Removes `net` from the link; absent = Ok.
    pub async fn del_address(&self, index: u32, net: IpNet) -> Result<(), NetlinkError> {
        self.change(
            format!("delete address {net} from link #{index}"),
            libc::RTM_DELADDR,
            REQUEST_ACK,
            &address_body(index, net),
            &[libc::EADDRNOTAVAIL],
        )
        .await
    }

    /// Routes the prefix of `net` (host bits cleared) via the link: no gateway, main table,
    /// replacing any route to the same prefix, so adding twice is Ok. The link must be up.
    pub async fn add_route(&self, index: u32, net: IpNet) -> Result<(), NetlinkError> {
        let net = net.trunc();
        self.change(
            format!("add route {net} via link #{index}"),
            libc::RTM_NEWROUTE,
            CREATE_OR_REPLACE,
            &route_body(index, net, RouteOp::Add),
            &[],
        )
        .await
    }

    /// Deletes the route to the prefix of `net` via this link; absent = Ok.
    pub async fn del_route(&self, index: u32, net: IpNet) -> Result<(), NetlinkError> {
        let net = net.trunc();
        self.change(
            format!("delete route {net} via link #{index}"),
            libc::RTM_DELROUTE,
            REQUEST_ACK,
            &route_body(index, net, RouteOp::Delete),
            &[libc::ESRCH, libc::ENOENT],
        )
        .await
    }

    /// All interfaces with their addresses, ordered by index.
    pub async fn interfaces(&self) -> Result<Vec<LinkInfo>, NetlinkError> {
        let op = "list links".to_string();
        let links = self
            .request(op.clone(), libc::RTM_GETLINK, DUMP, &[0; IFINFOMSG_LEN])
            .await?;
        let mut infos = Vec::with_capacity(links.len());
        for (kind, payload) in &links {
            if *kind == libc::RTM_NEWLINK {
                infos.push(link_info(payload).map_err(|f| NetlinkError::new(op.clone(), f))?);
            }
        }
        let op = "list addresses".to_string();
        let addresses = self
            .request(op.clone(), libc::RTM_GETADDR, DUMP, &[0; IFADDRMSG_LEN])
            .await?;
        for (kind, payload) in &addresses {
            if *kind != libc::RTM_NEWADDR {
                continue;
            }
            let Some((index, net)) =
                address_of(payload).map_err(|f| NetlinkError::new(op.clone(), f))?
            else {
                continue;
            };
            if let Some(info) = infos.iter_mut().find(|i| i.index == index) {
                info.addresses.push(net);
            }
        }
        infos.sort_by_key(|i| i.index);
        Ok(infos)
    }

    /// A request answered by an ACK; errnos in `benign` count as success.
    async fn change(
        &self,
        op: String,
        kind: u16,
        flags: u16,
        body: &[u8],
        benign: &[i32],
    ) -> Result<(), NetlinkError> {
        match self.request(op, kind, flags, body).await {
            Ok(_) => Ok(()),
            Err(e) => ok_if(e, benign),
        }
    }

    /// Sends one request and waits at most [`REPLY_TIMEOUT`] for its complete answer: the
    /// data messages (type, payload) of a dump, none for an ACKed change.
    async fn request(
        &self,
        op: String,
        kind: u16,
        flags: u16,
        body: &[u8],
    ) -> Result<Vec<(u16, Vec<u8>)>, NetlinkError> {
        let mut socket = self.socket.lock().await;
        match tokio::time::timeout(REPLY_TIMEOUT, socket.exchange(kind, flags, body)).await {
            Ok(Ok(replies)) => Ok(replies),
            Ok(Err(failure)) => Err(NetlinkError::new(op, failure)),
            Err(_) => Err(NetlinkError {
                op,
                errno: Some(libc::ETIMEDOUT),
                message: "the kernel's answer did not arrive".into(),
            }),
        }
    }
}

/// `Ok(())` when the kernel's errno is one of `benign` ("already so"), else the error.
fn ok_if(e: NetlinkError, benign: &[i32]) -> Result<(), NetlinkError> {
    match e.errno {
        Some(errno) if benign.contains(&errno) => Ok(()),
        _ => Err(e),
    }
}

/// How long the kernel gets to answer one request. It answers in microseconds; no answer
/// means a reply was lost (e.g. dropped by an emulator that could not translate it), and
/// the caller must get an error rather than wait forever.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Receive buffer: the kernel caps a dump's datagrams at 32 KiB minus overhead for a
/// reader with a buffer this size (`netlink_recvmsg`), so no reply is truncated.
const RECV_BUFFER: usize = 32 * 1024;

/// At most this many stale datagrams are discarded before a request.
const DRAIN_LIMIT: usize = 1024;

// Wire format (include/uapi/linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h).
const NLMSG_HDRLEN: usize = 16;
const NLA_HDRLEN: usize = 4;
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTMSG_LEN: usize = 12;
/// nla_type without NLA_F_NESTED and NLA_F_NET_BYTEORDER.
const NLA_TYPE_MASK: u16 = 0x3fff;

const NLM_F_REQUEST: u16 = libc::NLM_F_REQUEST as u16;
const NLM_F_ACK: u16 = libc::NLM_F_ACK as u16;
const NLM_F_EXCL: u16 = libc::NLM_F_EXCL as u16;
const NLM_F_CREATE: u16 = libc::NLM_F_CREATE as u16;
const NLM_F_REPLACE: u16 = libc::NLM_F_REPLACE as u16;
const NLM_F_DUMP: u16 = libc::NLM_F_DUMP as u16;
const REQUEST_ACK: u16 = NLM_F_REQUEST | NLM_F_ACK;
/// RTM_NEWADDR/RTM_NEWROUTE: create, or replace what is there.
const CREATE_OR_REPLACE: u16 = REQUEST_ACK | NLM_F_REPLACE | NLM_F_CREATE;
/// RTM_SETLINK, with the flags `rtnetlink` (and so far this code) always sent.
const SET_LINK_FLAGS: u16 = REQUEST_ACK | NLM_F_EXCL | NLM_F_CREATE;
const DUMP: u16 = NLM_F_REQUEST | NLM_F_DUMP;

const NLMSG_NOOP: u16 = libc::NLMSG_NOOP as u16;
const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;
const NLMSG_DONE: u16 = libc::NLMSG_DONE as u16;
const NLMSG_OVERRUN: u16 = libc::NLMSG_OVERRUN as u16;

const IFF_UP: u32 = libc::IFF_UP as u32;
const IFA_F_NODAD: u8 = libc::IFA_F_NODAD as u8;

/// The socket and its state; behind the `Netlink` mutex.
struct Socket {
    fd: AsyncFd<OwnedFd>,
    seq: u32,
    buf: Vec<u8>,
}

impl Socket {
    /// Sends one request and reads its replies until it is complete.
    async fn exchange(
        &mut self,
        kind: u16,
        flags: u16,
        body: &[u8],
    ) -> Result<Vec<(u16, Vec<u8>)>, Failure> {
        self.drain();
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        self.send(&message(kind, flags, seq, body)).await?;
        let mut replies = Vec::new();
        loop {
            let (len, sender, truncated) = self.recv().await?;
            if sender != 0 {
                continue; // Not the kernel: another process cannot answer for it.
            }
            if truncated {
                return Err(malformed("datagram larger than the receive buffer"));
            }
            let datagram = self.buf.get(..len).ok_or_else(|| malformed("length"))?;
            if read_replies(datagram, seq, &mut replies)? {
                return Ok(replies);
            }
        }
    }

    /// Discards whatever is queued: replies to a request that timed out or was cancelled
    /// (reading them also lets an interrupted dump finish, which would otherwise make the
    /// next dump fail with EBUSY).
    fn drain(&mut self) {
        for _ in 0..DRAIN_LIMIT {
            match recv_datagram(self.fd.as_raw_fd(), &mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                _ => {}
            }
        }
    }

    async fn send(&self, message: &[u8]) -> Result<(), Failure> {
        loop {
            let mut guard = self.fd.writable().await?;
            let sent = guard.try_io(|fd| {
                // SAFETY: a valid buffer of message.len() bytes, only read by the call. No
                // address: an unconnected netlink socket sends to the kernel (port id 0).
                let n = unsafe {
                    libc::send(fd.as_raw_fd(), message.as_ptr().cast(), message.len(), 0)
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n.unsigned_abs())
                }
            });
            match sent {
                Ok(Ok(n)) if n == message.len() => return Ok(()),
                Ok(Ok(_)) => return Err(Failure::Local("short send to netlink".into())),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e.into()),
                Err(_would_block) => {}
            }
        }
    }

    /// One datagram into `buf`: (length, sender's port id, truncated).
    async fn recv(&mut self) -> Result<(usize, u32, bool), Failure> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| recv_datagram(fd.as_raw_fd(), &mut self.buf)) {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e.into()),
                Err(_would_block) => {}
            }
        }
    }
}

/// A non-blocking, close-on-exec NETLINK_ROUTE socket bound to a port id the kernel picks.
fn open_socket() -> io::Result<OwnedFd> {
    // SAFETY: no pointers; the result is checked.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just returned by socket(2) that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_nl is plain data; all-zero is valid (and pads must be zero).
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: a valid sockaddr_nl and its exact size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// recvmsg(2) of one datagram without blocking: (length, sender's port id, MSG_TRUNC).
fn recv_datagram(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, u32, bool)> {
    // SAFETY: plain C structs; all-zero is a valid value for both.
    let mut from: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    msg.msg_name = (&mut from as *mut libc::sockaddr_nl).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: msg points at `from` and at one iovec covering `buf`, all alive and
    // exclusively borrowed for the duration of the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let truncated = msg.msg_flags & libc::MSG_TRUNC != 0;
    Ok((n.unsigned_abs(), from.nl_pid, truncated))
}
