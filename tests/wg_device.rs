//! The WireGuard device and engine in-process against wireguard-go: our `Engine` runs on a
//! thread that has entered one network namespace, wireguard-go runs in another, a veth pair
//! joins them. Pings go through the tunnel both ways over IPv4 and IPv6, `wg show` reads our
//! UAPI socket, peer removal stops traffic. Root only (skips with the reason otherwise).

mod common;

use common::netns::{self, Netns, WgGoPeer};
use ipv6wgm::wireguard::device::datapath::PeerConfig;
use ipv6wgm::wireguard::device::engine::{Engine, ServerSpec, ServerState};
use ipv6wgm::wireguard::keys::{PrivateKey, PublicKey};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::Duration;

enum Cmd {
    RemovePeer(PublicKey),
    AddPeer(PeerConfig),
    State(mpsc::Sender<ServerState>),
    Stop,
}

/// Runs an `Engine` with one server inside `ns` on its own thread; returns the command
/// channel and the thread.
fn engine_in(
    ns: &Netns,
    spec: ServerSpec,
    peer: PeerConfig,
) -> (mpsc::Sender<Cmd>, std::thread::JoinHandle<()>) {
    let path = ns.path();
    let (tx, rx) = mpsc::channel::<Cmd>();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let handle = std::thread::spawn(move || {
        let f = std::fs::File::open(&path).expect("open netns");
        // SAFETY: setns on this thread only, with a namespace fd we hold open.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let engine = Engine::new(Some("/var/run/wireguard".into()));
            let r = engine.start(spec, vec![peer.into()]).await;
            ready_tx.send(r.map_err(|e| e.to_string())).ok();
            loop {
                match rx.try_recv() {
                    Ok(Cmd::RemovePeer(k)) => {
                        engine.remove_peer(1, &k).await.expect("remove");
                    }
                    Ok(Cmd::AddPeer(p)) => engine.set_peer(1, p.into()).await.expect("add"),
                    Ok(Cmd::State(reply)) => {
                        reply.send(engine.state(1).await).ok();
                    }
                    Ok(Cmd::Stop) | Err(mpsc::TryRecvError::Disconnected) => break,
                    // Nothing to do: let the device's tasks run.
                    Err(mpsc::TryRecvError::Empty) => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            engine.stop_all().await;
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("engine thread answered")
        .expect("server started");
    (tx, handle)
}

/// Sends junk datagrams to `to` from inside `ns`: random bytes of many sizes, and packets
/// with each WireGuard message type and a plausible length but garbage contents.
fn send_junk(ns: &Netns, to: &str) {
    let path = ns.path();
    let to: std::net::SocketAddr = to.parse().expect("addr");
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).expect("open netns");
        // SAFETY: setns on this short-lived thread only, with an fd we hold.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        let s = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for i in 0..2000usize {
            let len = match i % 5 {
                0 => 148, // handshake initiation
                1 => 92,  // handshake response
                2 => 64,  // cookie reply
                3 => 32 + (next() % 1500) as usize,
                _ => (next() % 2000) as usize,
            };
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if i % 5 < 4 && len >= 4 {
                b[..4].copy_from_slice(&[(i % 5 + 1) as u8, 0, 0, 0]);
            }
            let _ = s.send_to(&b, to);
        }
    })
    .join()
    .expect("junk sender");
}

#[test]
fn engine_interoperates_with_wireguard_go() {
    let Some((srv_ns, cli_ns, _veth)) = netns::server_and_client(
        "wgd",
        [
            "10.211.0.1/24",
            "10.211.0.2/24",
            "fd21:1::1/64",
            "fd21:1::2/64",
        ],
    ) else {
        return;
    };
    let server_key = PrivateKey::generate();
    let client_key = PrivateKey::generate();
    let iface = format!("wgd{}", std::process::id() % 100_000);
    let spec = ServerSpec {
        id: 1,
        interface: iface.clone(),
        private_key: server_key.clone(),
        listen_port: 51871,
        mtu: 1420,
        addresses: vec![
            "10.212.0.1/24".parse().expect("v4"),
            "fd21:2::1/64".parse().expect("v6"),
        ],
    };
    let peer = PeerConfig {
        public_key: client_key.public_key(),
        preshared_key: None,
        endpoint: None,
        persistent_keepalive: 0,
        allowed_ips: vec![
            "10.212.0.2/32".parse().expect("v4"),
            "fd21:2::2/128".parse().expect("v6"),
            // A routed prefix outside the interface subnets: the engine adds a route.
            "fd21:3::/48".parse().expect("v6"),
        ],
    };
    let (cmd, thread) = engine_in(&srv_ns, spec, peer.clone());

    let conf = format!(
        "[Interface]\nPrivateKey = {}\nAddress = 10.212.0.2/24, fd21:2::2/64, fd21:3::1/48\n\n\
         [Peer]\nPublicKey = {}\nEndpoint = 10.211.0.1:51871\n\
         AllowedIPs = 10.212.0.0/24, fd21:2::/64\nPersistentKeepalive = 1\n",
        client_key.to_base64(),
        server_key.public_key().to_base64()
    );
    let wg = WgGoPeer::start(&cli_ns, &conf, &[]);

    assert!(
        netns::ping(&cli_ns, "10.212.0.1", 3, 10),
        "IPv4 ping through the tunnel\n{}",
        wg.log()
    );
    assert!(
        netns::ping(&cli_ns, "fd21:2::1", 3, 10),
        "IPv6 ping through the tunnel"
    );
    // Server → client, including the routed prefix (its route points into our interface).
    assert!(
        netns::ping(&srv_ns, "10.212.0.2", 2, 10),
        "server-side ping to the client"
    );
    assert!(
        netns::ping(&srv_ns, "fd21:3::1", 2, 10),
        "ping into the routed prefix"
    );

    // Hostile datagrams change nothing: the tunnel keeps working.
    send_junk(&cli_ns, "10.211.0.1:51871");
    assert!(
        netns::ping(&cli_ns, "10.212.0.1", 3, 10),
        "tunnel alive after junk"
    );

    // `wg` reads our UAPI socket.
    let dump = srv_ns.run(&["wg", "show", &iface, "dump"]);
    let client_pub = client_key.public_key().to_base64();
    let line = dump
        .lines()
        .find(|l| l.starts_with(&client_pub))
        .unwrap_or_else(|| panic!("peer in wg show dump:\n{dump}"));
    let f: Vec<&str> = line.split('\t').collect();
    assert!(
        f[4].parse::<u64>().expect("handshake") > 0,
        "handshake time: {line}"
    );
    assert!(f[5].parse::<u64>().expect("rx") > 0, "rx bytes: {line}");
    assert!(f[6].parse::<u64>().expect("tx") > 0, "tx bytes: {line}");
    assert!(f[3].contains("fd21:3::/48"), "allowed ips: {line}");
    let route = srv_ns.run(&["ip", "-6", "route", "show", "fd21:3::/48"]);
    assert!(route.contains(&iface), "route via our interface: {route}");

    // Malformed UAPI requests get an errno, not a hang or a crash.
    for bad in [
        "hello\n\n",
        "set=1\nlisten_port=abc\n\n",
        "set=1\npublic_key=zz\n\n",
    ] {
        use std::io::{Read, Write};
        let mut c =
            std::os::unix::net::UnixStream::connect(format!("/var/run/wireguard/{iface}.sock"))
                .expect("UAPI socket");
        c.write_all(bad.as_bytes()).expect("write");
        c.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut answer = String::new();
        c.read_to_string(&mut answer).expect("read");
        assert_eq!(answer, "errno=22\n\n", "{bad:?}");
    }

    // `wg showconf` and `wg set` work too (the UAPI `set` path).
    let conf = srv_ns.run(&["wg", "showconf", &iface]);
    assert!(conf.contains("ListenPort = 51871"), "{conf}");
    assert!(conf.contains(&client_pub), "{conf}");
    let extra = PrivateKey::generate().public_key().to_base64();
    srv_ns.run(&[
        "wg",
        "set",
        &iface,
        "peer",
        &extra,
        "allowed-ips",
        "10.212.0.9/32",
    ]);
    let peers = srv_ns.run(&["wg", "show", &iface, "allowed-ips"]);
    assert!(
        peers.contains(&format!("{extra}\t10.212.0.9/32")),
        "{peers}"
    );
    srv_ns.run(&["wg", "set", &iface, "peer", &extra, "remove"]);
    let peers = srv_ns.run(&["wg", "show", &iface, "peers"]);
    assert!(
        !peers.contains(&extra) && peers.contains(&client_pub),
        "{peers}"
    );

    // Removing the peer stops traffic at once and withdraws its route.
    cmd.send(Cmd::RemovePeer(client_key.public_key()))
        .expect("send");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !netns::ping(&cli_ns, "10.212.0.1", 2, 3),
        "no traffic after removal"
    );
    let route = srv_ns.run(&["ip", "-6", "route", "show", "fd21:3::/48"]);
    assert!(route.trim().is_empty(), "route withdrawn: {route}");
    // Re-adding restores it (wireguard-go re-handshakes by itself).
    cmd.send(Cmd::AddPeer(peer)).expect("send");
    assert!(
        netns::ping(&cli_ns, "10.212.0.1", 5, 15),
        "traffic after re-adding"
    );

    let (stx, srx) = mpsc::channel();
    cmd.send(Cmd::State(stx)).expect("send");
    let st = srx.recv_timeout(Duration::from_secs(5)).expect("state");
    assert!(
        matches!(
            st,
            ServerState::Running {
                listen_port: 51871,
                ..
            }
        ),
        "{st:?}"
    );

    cmd.send(Cmd::Stop).expect("send");
    thread.join().expect("engine thread");
    // The interface and the UAPI socket are gone after stop.
    let links = srv_ns.run(&["ip", "link"]);
    assert!(!links.contains(&iface), "interface removed: {links}");
    assert!(!std::path::Path::new(&format!("/var/run/wireguard/{iface}.sock")).exists());
}
