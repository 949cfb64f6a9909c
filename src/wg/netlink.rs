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
//! One [`Netlink`] owns one `NETLINK_ROUTE` socket whose connection task runs on the
//! tokio runtime that created it. The socket lives in the network namespace of the thread
//! that called [`Netlink::new`]. Message building and error mapping are pure functions
//! (tested below); only the `Netlink` methods do I/O.

use futures_util::stream::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::route::{RouteMessage, RouteProtocol, RouteScope, RouteType};
use rtnetlink::{AddressMessageBuilder, LinkUnspec, RouteMessageBuilder};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// A failed netlink request: what we tried, and the kernel's errno when it gave one.
#[derive(Debug)]
pub struct NetlinkError {
    /// The operation, e.g. `add address 10.0.0.1/24 to link #4`.
    pub op: String,
    /// Positive errno from the kernel (`ENODEV` = 19, …); `None` when the failure was
    /// local (no runtime, socket closed, unexpected reply).
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

    fn from_rtnetlink(op: String, e: rtnetlink::Error) -> NetlinkError {
        match e {
            rtnetlink::Error::NetlinkError(m) => {
                // The kernel sends -errno; an ACK (code None) is never turned into an error
                // by rtnetlink, but a zero here must not become "errno 0".
                let errno = m.code.map(|c| c.get().saturating_abs());
                NetlinkError {
                    op,
                    errno,
                    message: m.to_io().to_string(),
                }
            }
            other => NetlinkError::local(op, other.to_string()),
        }
    }
}

impl std::fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "netlink: {}: {}", self.op, self.message)
    }
}

impl std::error::Error for NetlinkError {}

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

/// A `NETLINK_ROUTE` socket for configuring links; cheap to share behind an `Arc`, and
/// requests may run concurrently (netlink-proto matches replies by sequence number).
pub struct Netlink {
    handle: rtnetlink::Handle,
}

impl Netlink {
    /// Opens a NETLINK_ROUTE socket and spawns its connection task on the current runtime.
    /// The task ends by itself once every handle (this `Netlink`) is dropped.
    pub fn new() -> Result<Netlink, NetlinkError> {
        let op = || "open NETLINK_ROUTE socket".to_string();
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| NetlinkError::local(op(), e.to_string()))?;
        let (connection, handle, _unsolicited) =
            rtnetlink::new_connection().map_err(|e| NetlinkError {
                op: op(),
                errno: e.raw_os_error(),
                message: e.to_string(),
            })?;
        runtime.spawn(connection);
        Ok(Netlink { handle })
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
                let e = std::io::Error::last_os_error();
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
        let message = LinkUnspec::new_with_index(index).mtu(mtu).build();
        self.set_link(message, format!("set MTU {mtu} on link #{index}"))
            .await
    }

    pub async fn set_up(&self, index: u32, up: bool) -> Result<(), NetlinkError> {
        let builder = LinkUnspec::new_with_index(index);
        let (builder, word) = if up {
            (builder.up(), "up")
        } else {
            (builder.down(), "down")
        };
        self.set_link(builder.build(), format!("set link #{index} {word}"))
            .await
    }

    async fn set_link(&self, message: LinkMessage, op: String) -> Result<(), NetlinkError> {
        request(op, self.handle.link().set(message).execute(), &[]).await
    }

    /// Adds `net` (address with its prefix length, e.g. 10.0.0.1/24 or fd00::1/64) to the
    /// link; already present = Ok. IPv6 addresses get IFA_F_NODAD so they are usable at
    /// once: a point-to-point tunnel has no neighbours to detect duplicates with.
    pub async fn add_address(&self, index: u32, net: IpNet) -> Result<(), NetlinkError> {
        let op = format!("add address {net} to link #{index}");
        let mut request = self
            .handle
            .address()
            .add(index, net.addr(), net.prefix_len())
            .replace();
        *request.message_mut() = address_message(index, net);
        self::request(op, request.execute(), &[libc::EEXIST]).await
    }

    /// Removes `net` from the link; absent = Ok.
    pub async fn del_address(&self, index: u32, net: IpNet) -> Result<(), NetlinkError> {
        let op = format!("delete address {net} from link #{index}");
        let del = self.handle.address().del(address_message(index, net));
        request(op, del.execute(), &[libc::EADDRNOTAVAIL]).await
    }

    /// Routes the prefix of `net` (host bits cleared) via the link: no gateway, main table,
    /// replacing any route to the same prefix, so adding twice is Ok. The link must be up.
    pub async fn add_route(&self, index: u32, net: IpNet) -> Result<(), NetlinkError> {
        let net = net.trunc();
        let op = format!("add route {net} via link #{index}");
        let add = self
            .handle
            .route()
            .add(route_message(index, net, RouteOp::Add))
            .replace();
        request(op, add.execute(), &[]).await
    }

    /// Deletes the route to the prefix of `net` via this link; absent = Ok.
    pub async fn del_route(&self, index: u32, net: IpNet) -> Result<(), NetlinkError> {
        let net = net.trunc();
        let op = format!("delete route {net} via link #{index}");
        let del = self
            .handle
            .route()
            .del(route_message(index, net, RouteOp::Delete));
        request(op, del.execute(), &[libc::ESRCH, libc::ENOENT]).await
    }

    /// All interfaces with their addresses, ordered by index.
    pub async fn interfaces(&self) -> Result<Vec<LinkInfo>, NetlinkError> {
        let links: Vec<LinkMessage> = request(
            "list links".to_string(),
            self.handle.link().get().execute().try_collect(),
            &[],
        )
        .await?;
        let addresses: Vec<AddressMessage> = request(
            "list addresses".to_string(),
            self.handle.address().get().execute().try_collect(),
            &[],
        )
        .await?;
        let mut infos: Vec<LinkInfo> = links.iter().map(link_info).collect();
        for message in &addresses {
            let Some(net) = address_of(message) else {
                continue;
            };
            if let Some(info) = infos.iter_mut().find(|i| i.index == message.header.index) {
                info.addresses.push(net);
            }
        }
        infos.sort_by_key(|i| i.index);
        Ok(infos)
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
/// means a reply was lost or could not be parsed (netlink-proto then never completes the
/// request), and the caller must get an error rather than wait forever.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs one request with [`REPLY_TIMEOUT`]; errnos in `benign` (e.g. EEXIST for an add
/// that is already done) count as success.
async fn request<T: Default>(
    op: String,
    f: impl std::future::Future<Output = Result<T, rtnetlink::Error>>,
    benign: &[i32],
) -> Result<T, NetlinkError> {
    match tokio::time::timeout(REPLY_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => ok_if(NetlinkError::from_rtnetlink(op, e), benign).map(|()| T::default()),
        Err(_) => Err(NetlinkError {
            op,
            errno: Some(libc::ETIMEDOUT),
            message: "the kernel's answer did not arrive or could not be parsed".into(),
        }),
    }
}

/// The RTM_NEWADDR/RTM_DELADDR body for `net` on link `index`.
fn address_message(index: u32, net: IpNet) -> AddressMessage {
    match net.addr() {
        IpAddr::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(a, net.prefix_len())
            .build(),
        IpAddr::V6(a) => {
            let mut m = AddressMessageBuilder::<Ipv6Addr>::new()
                .index(index)
                .address(a, net.prefix_len())
                .build();
            // Old kernels read the 8-bit header flags, newer ones prefer IFA_FLAGS.
            m.header.flags |= AddressHeaderFlags::Nodad;
            m.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
            m
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteOp {
    Add,
    Delete,
}

/// The RTM_NEWROUTE/RTM_DELROUTE body for the canonical prefix `net` via link `index`.
fn route_message(index: u32, net: IpNet, op: RouteOp) -> RouteMessage {
    let mut m = match net {
        IpNet::V4(n) => {
            // Like `ip route add … dev X`: a gateway-less IPv4 route is on-link.
            RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(n.network(), n.prefix_len())
                .scope(RouteScope::Link)
                .output_interface(index)
                .build()
        }
        IpNet::V6(n) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(n.network(), n.prefix_len())
            .output_interface(index)
            .build(),
    };
    if op == RouteOp::Delete {
        // Wildcards, as `ip route del` sends: match the route whoever installed it and
        // whatever its scope (IPv4's fib_table_delete compares any field that is set).
        m.header.protocol = RouteProtocol::Unspec;
        m.header.scope = RouteScope::NoWhere;
        m.header.kind = RouteType::Unspec;
    }
    m
}

fn link_info(message: &LinkMessage) -> LinkInfo {
    let mut info = LinkInfo {
        index: message.header.index,
        name: String::new(),
        up: message.header.flags.contains(LinkFlags::Up),
        mtu: None,
        addresses: Vec::new(),
    };
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => info.name = name.clone(),
            LinkAttribute::Mtu(mtu) => info.mtu = Some(*mtu),
            _ => {}
        }
    }
    info
}

/// The interface's own address: IFA_LOCAL when present (on point-to-point links
/// IFA_ADDRESS is the peer), else IFA_ADDRESS. `None` for a malformed prefix length.
fn address_of(message: &AddressMessage) -> Option<IpNet> {
    let pick = |want_local: bool| {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) if want_local => Some(*ip),
            AddressAttribute::Address(ip) if !want_local => Some(*ip),
            _ => None,
        })
    };
    let addr = pick(true).or_else(|| pick(false))?;
    IpNet::new(addr, message.header.prefix_len).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_core::ErrorMessage;
    use rtnetlink::packet_route::route::RouteAttribute;
    use std::num::NonZeroI32;

    fn kernel_error(code: i32) -> rtnetlink::Error {
        let mut m = ErrorMessage::default();
        m.code = NonZeroI32::new(code);
        rtnetlink::Error::NetlinkError(m)
    }

    fn net(s: &str) -> IpNet {
        s.parse().expect("test prefix")
    }

    #[test]
    fn kernel_errors_carry_positive_errno() {
        let e = NetlinkError::from_rtnetlink("set link #3 up".into(), kernel_error(-libc::EPERM));
        assert_eq!(e.errno, Some(libc::EPERM));
        assert!(e.is_permission());
        assert!(
            e.to_string().starts_with("netlink: set link #3 up: "),
            "{e}"
        );
        let e = NetlinkError::from_rtnetlink("x".into(), kernel_error(-libc::EACCES));
        assert!(e.is_permission());
        let e = NetlinkError::from_rtnetlink("x".into(), kernel_error(-libc::ENODEV));
        assert_eq!(e.errno, Some(19));
        assert!(!e.is_permission());
    }

    #[test]
    fn local_failures_have_no_errno() {
        let e = NetlinkError::from_rtnetlink("x".into(), rtnetlink::Error::RequestFailed);
        assert_eq!(e.errno, None);
        assert!(!e.is_permission());
        let e = NetlinkError::from_rtnetlink(
            "x".into(),
            rtnetlink::Error::NetlinkError(ErrorMessage::default()),
        );
        assert_eq!(e.errno, None, "an ACK is not errno 0");
    }

    #[test]
    fn only_the_listed_errnos_are_benign() {
        let exists = NetlinkError::from_rtnetlink("x".into(), kernel_error(-libc::EEXIST));
        assert!(ok_if(exists, &[libc::EEXIST]).is_ok());
        let perm = NetlinkError::from_rtnetlink("x".into(), kernel_error(-libc::EPERM));
        assert!(ok_if(perm, &[libc::EEXIST]).is_err());
        assert!(ok_if(NetlinkError::local("x".into(), "closed"), &[libc::EEXIST]).is_err());
    }

    #[test]
    fn ipv6_addresses_skip_dad_ipv4_do_not_need_it() {
        let m = address_message(7, net("fd00::1/64"));
        assert_eq!(m.header.index, 7);
        assert_eq!(m.header.prefix_len, 64);
        assert!(m.header.flags.contains(AddressHeaderFlags::Nodad));
        assert!(m
            .attributes
            .contains(&AddressAttribute::Flags(AddressFlags::Nodad)));
        let m = address_message(7, net("10.0.0.1/24"));
        assert_eq!(m.header.prefix_len, 24);
        assert!(!m.header.flags.contains(AddressHeaderFlags::Nodad));
        assert!(m
            .attributes
            .contains(&AddressAttribute::Local("10.0.0.1".parse().expect("ip"))));
    }

    #[test]
    fn route_add_is_specific_delete_is_wildcard() {
        let add = route_message(5, net("10.78.0.0/16"), RouteOp::Add);
        assert_eq!(add.header.destination_prefix_length, 16);
        assert_eq!(add.header.scope, RouteScope::Link);
        assert_eq!(add.header.protocol, RouteProtocol::Static);
        assert!(add.attributes.contains(&RouteAttribute::Oif(5)));
        let del = route_message(5, net("fd78::/48"), RouteOp::Delete);
        assert_eq!(del.header.scope, RouteScope::NoWhere);
        assert_eq!(del.header.protocol, RouteProtocol::Unspec);
        assert_eq!(del.header.kind, RouteType::Unspec);
        assert!(del.attributes.contains(&RouteAttribute::Oif(5)));
    }

    #[test]
    fn interface_address_prefers_local_and_rejects_bad_prefix() {
        let mut m = AddressMessage::default();
        m.header.prefix_len = 32;
        m.attributes
            .push(AddressAttribute::Address("10.0.0.2".parse().expect("ip")));
        m.attributes
            .push(AddressAttribute::Local("10.0.0.1".parse().expect("ip")));
        assert_eq!(address_of(&m), Some(net("10.0.0.1/32")));
        m.attributes.remove(1);
        assert_eq!(address_of(&m), Some(net("10.0.0.2/32")));
        m.header.prefix_len = 33;
        assert_eq!(address_of(&m), None);
        assert_eq!(address_of(&AddressMessage::default()), None);
    }

    #[test]
    fn link_info_reads_name_mtu_and_up() {
        let mut m = LinkMessage::default();
        m.header.index = 4;
        m.header.flags = LinkFlags::Up;
        m.attributes.push(LinkAttribute::IfName("wg0".into()));
        m.attributes.push(LinkAttribute::Mtu(1420));
        let info = link_info(&m);
        assert_eq!(
            (info.index, info.name.as_str(), info.up, info.mtu),
            (4, "wg0", true, Some(1420))
        );
    }
}
