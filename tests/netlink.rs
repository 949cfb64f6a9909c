//! `wg::netlink` against the real kernel (root and /dev/net/tun; skipped with a reason
//! otherwise). Each test moves a dedicated thread into a network namespace private to it,
//! so nothing touches the host's interfaces or routes. What `Netlink` reports is checked
//! independently with iproute2 (`ip -j`) run in the same namespace through `nsenter`.

#[path = "common/kernel.rs"]
mod kernel;
#[path = "common/skip.rs"]
mod skip;

use ipnet::IpNet;
use ipv6wgm::wireguard::device::netlink::{LinkInfo, Netlink};
use ipv6wgm::wireguard::device::tun::Tun;
use kernel::{in_private_netns, ip, skip_reason};
use serde_json::Value;
use skip::skip;

const DEV: &str = "nltest0";

/// `ip -j <args>` in the namespace, parsed.
fn ip_json(netns: &str, args: &[&str]) -> Value {
    let stdout = ip(netns, &[&["-j"], args].concat());
    // `ip -j` prints nothing at all (not `[]`) for some empty listings.
    if stdout.iter().all(u8::is_ascii_whitespace) {
        return Value::Array(Vec::new());
    }
    serde_json::from_slice(&stdout).expect("ip -j output is JSON")
}

/// `(local/prefixlen, addr_info entry)` of every address iproute2 sees on DEV.
fn ip_addresses(netns: &str) -> Vec<(String, Value)> {
    let links = ip_json(netns, &["addr", "show", "dev", DEV]);
    let link = &links[0];
    link["addr_info"]
        .as_array()
        .expect("addr_info")
        .iter()
        .map(|a| {
            (
                format!("{}/{}", a["local"].as_str().expect("local"), a["prefixlen"]),
                a.clone(),
            )
        })
        .collect()
}

/// Routes via DEV to `dst` in the main table, as iproute2 lists them.
fn ip_routes_to(netns: &str, family: &str, dst: &str) -> Vec<Value> {
    let routes = ip_json(netns, &[family, "route", "show"]);
    routes
        .as_array()
        .expect("route list")
        .iter()
        .filter(|r| r["dst"] == dst && r["dev"] == DEV)
        .cloned()
        .collect()
}

fn net(s: &str) -> IpNet {
    s.parse().expect("test prefix")
}

fn find<'a>(links: &'a [LinkInfo], name: &str) -> &'a LinkInfo {
    links
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("{name} in {links:?}"))
}

#[test]
fn configures_a_tun_link_addresses_and_routes() {
    if let Some(why) = skip_reason() {
        skip(why);
        return;
    }
    in_private_netns(
        || {},
        |netns| async move {
            let _tun = Tun::open(DEV).expect("open TUN");
            let nl = Netlink::new().expect("netlink socket");
            let index = nl.link_index(DEV).await.expect("link index");
            assert!(index > 1, "lo is 1, the TUN comes later: {index}");

            let e = nl
                .link_index("nonexistent0")
                .await
                .expect_err("unknown link");
            assert_eq!(e.errno, Some(libc::ENODEV), "{e}");
            assert!(!e.is_permission());

            nl.set_mtu(index, 1400).await.expect("set MTU");
            nl.set_up(index, true).await.expect("set up");
            let (v4, v6) = (net("10.77.0.1/24"), net("fd77::1/64"));
            for _ in 0..2 {
                nl.add_address(index, v4).await.expect("add IPv4 address");
                nl.add_address(index, v6).await.expect("add IPv6 address");
            }
            let (r4, r6) = (net("10.78.0.0/16"), net("fd78::/48"));
            for _ in 0..2 {
                nl.add_route(index, r4).await.expect("add IPv4 route");
                nl.add_route(index, r6).await.expect("add IPv6 route");
            }

            // What Netlink itself reports.
            let links = nl.interfaces().await.expect("interfaces");
            let lo = find(&links, "lo");
            assert_eq!((lo.index, lo.up), (1, false), "fresh namespace: lo down");
            let tun = find(&links, DEV);
            assert_eq!((tun.index, tun.up, tun.mtu), (index, true, Some(1400)));
            for a in [v4, v6] {
                let n = tun.addresses.iter().filter(|x| **x == a).count();
                assert_eq!(n, 1, "{a} once in {:?}", tun.addresses);
            }

            // What iproute2 sees.
            let link = &ip_json(&netns, &["link", "show", "dev", DEV])[0];
            assert_eq!(link["mtu"], 1400);
            assert!(
                link["flags"]
                    .as_array()
                    .expect("flags")
                    .contains(&"UP".into()),
                "{link}"
            );
            let addrs = ip_addresses(&netns);
            let names: Vec<&str> = addrs.iter().map(|(n, _)| n.as_str()).collect();
            for a in ["10.77.0.1/24", "fd77::1/64"] {
                assert_eq!(
                    names.iter().filter(|n| **n == a).count(),
                    1,
                    "{a} in {names:?}"
                );
            }
            let (_, info6) = addrs.iter().find(|(n, _)| n == "fd77::1/64").expect("v6");
            assert_eq!(info6["nodad"], true, "IPv6 address without DAD: {info6}");
            assert!(info6.get("tentative").is_none(), "usable at once: {info6}");
            let routes4 = ip_routes_to(&netns, "-4", "10.78.0.0/16");
            assert_eq!(
                routes4.len(),
                1,
                "one IPv4 route after two adds: {routes4:?}"
            );
            assert_eq!(routes4[0]["scope"], "link");
            assert!(routes4[0].get("gateway").is_none(), "{}", routes4[0]);
            let routes6 = ip_routes_to(&netns, "-6", "fd78::/48");
            assert_eq!(
                routes6.len(),
                1,
                "one IPv6 route after two adds: {routes6:?}"
            );
            assert!(routes6[0].get("gateway").is_none(), "{}", routes6[0]);

            // Delete twice: the second time everything is already gone, which is fine.
            for _ in 0..2 {
                nl.del_route(index, r4).await.expect("delete IPv4 route");
                nl.del_route(index, r6).await.expect("delete IPv6 route");
                nl.del_address(index, v4)
                    .await
                    .expect("delete IPv4 address");
                nl.del_address(index, v6)
                    .await
                    .expect("delete IPv6 address");
            }
            assert!(ip_routes_to(&netns, "-4", "10.78.0.0/16").is_empty());
            assert!(ip_routes_to(&netns, "-6", "fd78::/48").is_empty());
            let names: Vec<String> = ip_addresses(&netns).into_iter().map(|(n, _)| n).collect();
            assert!(
                !names
                    .iter()
                    .any(|n| n == "10.77.0.1/24" || n == "fd77::1/64"),
                "{names:?}"
            );
            let tun = find(&nl.interfaces().await.expect("interfaces"), DEV).clone();
            assert!(
                !tun.addresses.contains(&v4) && !tun.addresses.contains(&v6),
                "{tun:?}"
            );

            nl.set_up(index, false).await.expect("set down");
            let link = &ip_json(&netns, &["link", "show", "dev", DEV])[0];
            assert!(
                !link["flags"]
                    .as_array()
                    .expect("flags")
                    .contains(&"UP".into()),
                "{link}"
            );
            assert!(!find(&nl.interfaces().await.expect("interfaces"), DEV).up);
        },
    );
}

/// Linux capability sets as capget/capset(2) exchange them (version 3: two 32-bit words).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_NET_ADMIN: u32 = 12;

/// Drops CAP_NET_ADMIN from this thread's effective set (capabilities are per thread).
fn drop_net_admin() {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and a two-element data array, as version 3 of capget requires.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget");
    data[0].effective &= !(1 << CAP_NET_ADMIN);
    // SAFETY: as above; lowering our own effective set needs no privilege.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset");
}

#[test]
fn missing_cap_net_admin_is_a_permission_error() {
    if let Some(why) = skip_reason() {
        skip(why);
        return;
    }
    in_private_netns(drop_net_admin, |_netns| async move {
        let nl = Netlink::new().expect("netlink socket (opening needs no privilege)");
        // Reading is allowed without privilege…
        let lo = nl.link_index("lo").await.expect("look up lo");
        // …changing is not.
        let e = nl
            .set_up(lo, true)
            .await
            .expect_err("set lo up without CAP_NET_ADMIN");
        assert!(e.is_permission(), "{e:?}");
        assert_eq!(e.errno, Some(libc::EPERM));
        assert!(e.to_string().contains("set link #1 up"), "{e}");
        let e = nl
            .add_address(lo, net("10.79.0.1/8"))
            .await
            .expect_err("add address without CAP_NET_ADMIN");
        assert!(e.is_permission(), "{e:?}");
    });
}
