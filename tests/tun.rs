//! The TUN device against the real kernel (root and /dev/net/tun; skipped with a reason
//! otherwise). Everything happens in a network namespace private to the test thread, so no
//! packet can leave it: the kernel routes a UDP datagram into our TUN, and a packet we write
//! to the TUN is delivered to a local socket.

#[path = "common/kernel.rs"]
mod kernel;
#[path = "common/skip.rs"]
mod skip;

use ipv6wgm::wireguard::device::tun::Tun;
use kernel::{in_private_netns, ip, skip_reason};
use skip::skip;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// IPv4 + UDP (checksum 0, allowed for IPv4) carrying `payload`.
fn udp4(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = (20 + 8 + payload.len()) as u16;
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

#[test]
fn tun_carries_ip_packets_both_ways() {
    if let Some(why) = skip_reason() {
        skip(why);
        return;
    }
    in_private_netns(
        || {},
        |netns| async move {
            let tun = Tun::open("ipv6wgm-t0").expect("open TUN");
            assert_eq!(tun.name(), "ipv6wgm-t0");
            ip(
                &netns,
                &["addr", "add", "10.99.0.1/30", "dev", "ipv6wgm-t0"],
            );
            ip(&netns, &["link", "set", "ipv6wgm-t0", "up"]);

            // kernel → TUN
            let sender = UdpSocket::bind("10.99.0.1:0").expect("bind");
            sender
                .send_to(b"into the tunnel", "10.99.0.2:9999")
                .expect("send");
            let mut buf = [0u8; 2048];
            let packet = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    let n = tun.recv(&mut buf).await.expect("recv");
                    // The interface may also emit IPv6 neighbour discovery; skip it.
                    if n >= 28 && buf[0] >> 4 == 4 && buf[9] == 17 {
                        return buf[..n].to_vec();
                    }
                }
            })
            .await
            .expect("a UDP packet arrives on the TUN");
            assert_eq!(&packet[16..20], &[10, 99, 0, 2], "destination");
            assert_eq!(u16::from_be_bytes([packet[22], packet[23]]), 9999);
            assert_eq!(&packet[28..], b"into the tunnel");

            // TUN → kernel
            let receiver = UdpSocket::bind("10.99.0.1:0").expect("bind");
            receiver
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let port = receiver.local_addr().expect("addr").port();
            let reply = udp4(
                Ipv4Addr::new(10, 99, 0, 2),
                7777,
                Ipv4Addr::new(10, 99, 0, 1),
                port,
                b"out of the tunnel",
            );
            assert_eq!(tun.send(&reply).await.expect("send"), reply.len());
            let mut got = [0u8; 64];
            let (n, from) = receiver
                .recv_from(&mut got)
                .expect("delivered by the kernel");
            assert_eq!(&got[..n], b"out of the tunnel");
            assert_eq!(from, "10.99.0.2:7777".parse().expect("addr"));
        },
    );
}

#[test]
fn bad_names_are_refused_before_touching_the_kernel() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let e = Tun::open("no/slashes").err().expect("refused");
        assert!(e.to_string().contains("interface name"), "{e}");
    });
}
