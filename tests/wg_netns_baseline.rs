//! Proves the namespace/WireGuard harness (tests/common/netns.rs) with two stock peers:
//! wireguard-go ↔ wireguard-go across a veth pair between two network namespaces, the
//! client reaching the server's endpoint over the IPv6 underlay. Pings IPv4 and IPv6 through
//! the tunnel both ways, checks `wg show` saw a handshake and traffic, and that everything
//! is gone afterwards. Needs root etc. (skipped with the reason otherwise). Our own server
//! will replace one side in the interop tests built on the same harness.

mod common;

use common::netns::{self, WgGoPeer};
use std::path::Path;

/// Server side: listens, knows the client by its tunnel addresses.
fn server_conf(private: &str, client_pub: &str) -> String {
    format!(
        "# wg-quick style, as a router would write it\n\
         [Interface]\n\
         PrivateKey = {private}\n\
         Address = 10.99.0.1/24, fd99::1/64\n\
         ListenPort = 51820\n\
         MTU = 1420\n\
         SaveConfig = false\n\
         \n\
         [Peer]\n\
         PublicKey = {client_pub}\n\
         AllowedIPs = 10.99.0.2/32, fd99::2/128\n"
    )
}

/// Client side: a typical downloaded client config (full tunnel, DNS, keepalive). The
/// harness must not take over the namespace's default route for `AllowedIPs = ::/0`.
fn client_conf(private: &str, server_pub: &str, endpoint: &str) -> String {
    format!(
        "[Interface]\n\
         PrivateKey = {private}\n\
         Address = 10.99.0.2/24\n\
         Address = fd99::2/64\n\
         DNS = 10.99.0.1, fd99::1\n\
         PostUp = echo never-run\n\
         \n\
         [Peer]\n\
         PublicKey = {server_pub}\n\
         AllowedIPs = 0.0.0.0/0, ::/0\n\
         Endpoint = {endpoint}\n\
         PersistentKeepalive = 25\n"
    )
}

#[test]
fn wg_quick_config_is_split_for_setconf() {
    let conf =
        client_conf("PRIV", "PUB", "[fd98::1]:51820").replace("DNS", "dns") + "MTU=1380 # c\n";
    let split = netns::split_wg_quick(&conf);
    assert_eq!(split.addresses, ["10.99.0.2/24", "fd99::2/64"]);
    assert_eq!(split.dns, ["10.99.0.1", "fd99::1"]);
    assert_eq!(split.mtu, Some(1380));
    assert_eq!(split.table, None);
    for gone in ["Address", "dns", "PostUp", "MTU"] {
        assert!(
            !split.setconf.contains(gone),
            "{gone} left in:\n{}",
            split.setconf
        );
    }
    for kept in [
        "[Interface]",
        "PrivateKey = PRIV",
        "[Peer]",
        "Endpoint = [fd98::1]:51820",
    ] {
        assert!(
            split.setconf.contains(kept),
            "{kept} missing in:\n{}",
            split.setconf
        );
    }
    let dump = "priv\tpub\t51820\toff\n\
                PK\t(none)\t[fd98::2]:40000\t10.99.0.2/32,fd99::2/128\t1700000000\t1234\t5678\toff\n";
    let peers = netns::parse_dump(dump);
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].endpoint.as_deref(), Some("[fd98::2]:40000"));
    assert_eq!(peers[0].allowed_ips, ["10.99.0.2/32", "fd99::2/128"]);
    assert_eq!(
        (
            peers[0].latest_handshake,
            peers[0].rx_bytes,
            peers[0].tx_bytes
        ),
        (1_700_000_000, 1234, 5678)
    );
}

#[test]
fn wireguard_go_pair_across_namespaces() {
    // Everything lives in this block so that it is dropped before the cleanup checks.
    let (names, sockets) = {
        let Some((srv, cli, veth)) = netns::server_and_client(
            "wgb",
            ["10.98.0.1/24", "10.98.0.2/24", "fd98::1/64", "fd98::2/64"],
        ) else {
            return;
        };
        // Underlay first, so a tunnel failure is not mistaken for a veth one.
        assert!(
            netns::ping(&cli, netns::host(&veth.addr_a), 1, 5),
            "veth v4"
        );
        assert!(netns::ping(&cli, netns::host(&veth.v6_a), 1, 5), "veth v6");

        let (srv_priv, srv_pub) = netns::wg_genkey();
        let (cli_priv, cli_pub) = netns::wg_genkey();
        let endpoint = format!("[{}]:51820", netns::host(&veth.v6_a));
        let server = WgGoPeer::start(&srv, &server_conf(&srv_priv, &cli_pub), &[]);
        let client = WgGoPeer::start(&cli, &client_conf(&cli_priv, &srv_pub, &endpoint), &[]);

        // The defaults were skipped: the client namespace has no default route at all.
        for fam in ["-4", "-6"] {
            let def = cli.run(&["ip", fam, "route", "show", "default"]);
            assert!(def.trim().is_empty(), "default route {fam} added: {def}");
        }
        // MTU from the wg-quick file applied, interface up.
        let link = srv.run(&["ip", "-o", "link", "show", "dev", &server.iface]);
        assert!(link.contains("mtu 1420") && link.contains(",UP"), "{link}");

        // Client first (it knows the endpoint and starts the handshake), then back.
        for (from, to) in [
            (&cli, "10.99.0.1"),
            (&cli, "fd99::1"),
            (&srv, "10.99.0.2"),
            (&srv, "fd99::2"),
        ] {
            assert!(
                netns::ping(from, to, 3, 10),
                "ping {to} from {} through the tunnel\nserver: {}\nclient: {}\n{}\n{}",
                from.name,
                server.show(),
                client.show(),
                server.log(),
                client.log()
            );
        }

        for (side, peer, expect_key) in
            [("server", &server, &cli_pub), ("client", &client, &srv_pub)]
        {
            let dump = peer.show();
            println!("{side} `wg show {} dump`:\n{dump}", peer.iface);
            let peers = netns::parse_dump(&dump);
            assert_eq!(peers.len(), 1, "{side}: {dump}");
            let p = &peers[0];
            assert_eq!(&p.public_key, expect_key, "{side}");
            assert!(p.latest_handshake > 0, "{side}: no handshake: {dump}");
            assert!(
                p.rx_bytes > 0 && p.tx_bytes > 0,
                "{side}: no transfer: {dump}"
            );
            assert!(p.endpoint.is_some(), "{side}: no endpoint: {dump}");
        }
        // The server learnt the client's endpoint from the IPv6 underlay.
        let learnt = server.peers()[0].endpoint.clone().unwrap_or_default();
        assert!(
            learnt.starts_with("[fd98::2]:"),
            "server sees client at {learnt}"
        );

        let names = vec![srv.name.clone(), cli.name.clone()];
        let sockets = vec![server.socket(), client.socket()];
        (names, sockets)
        // Dropped here in reverse order: client, server (wireguard-go stopped), veth,
        // cli, srv (namespaces deleted).
    };

    let list = String::from_utf8_lossy(
        &std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list")
            .stdout,
    )
    .into_owned();
    for n in &names {
        assert!(
            !list.lines().any(|l| l.split_whitespace().next() == Some(n)),
            "namespace {n} left behind: {list}"
        );
        assert!(!Path::new("/run/netns").join(n).exists(), "{n} handle left");
    }
    for s in &sockets {
        assert!(!s.exists(), "{} left behind", s.display());
    }
}
