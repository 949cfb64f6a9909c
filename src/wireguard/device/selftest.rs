//! `ipv6wgm selftest`: a WireGuard handshake and a data packet each way between two
//! in-memory peers, built the way the device builds them ([`super::peer::Peer`] on one side,
//! a plain `Tunn` on the other). No TUN, no sockets, no privilege: it proves the Noise
//! handshake, X25519, BLAKE2s and ChaCha20-Poly1305 work on this CPU (endianness, word
//! size) — the first thing to run on a new router, and what the cross smoke test runs under
//! qemu for every target.

use super::peer::Peer;
use crate::wireguard::keys::PrivateKey;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519;
use std::net::Ipv4Addr;
use std::time::Instant;

/// A minimal IPv4 packet (header + payload) from `src` to `dst`.
fn ipv4_packet(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let len = 20 + payload.len();
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

fn network(r: TunnResult<'_>, what: &str) -> Result<Vec<u8>, String> {
    match r {
        TunnResult::WriteToNetwork(p) => Ok(p.to_vec()),
        other => Err(format!("{what}: expected a datagram, got {other:?}")),
    }
}

fn tunnel(r: TunnResult<'_>, what: &str) -> Result<(Vec<u8>, Ipv4Addr), String> {
    match r {
        TunnResult::WriteToTunnelV4(p, src) => Ok((p.to_vec(), src)),
        other => Err(format!("{what}: expected a packet, got {other:?}")),
    }
}

/// Runs the exchange; `Ok` describes it, `Err` says which step failed.
pub fn run() -> Result<String, String> {
    let started = Instant::now();
    let (srv_key, cli_key) = (PrivateKey::generate(), PrivateKey::generate());
    let psk = crate::wireguard::keys::PresharedKey::generate().to_bytes();
    let server = Peer::new(
        1,
        srv_key.to_static_secret(),
        cli_key.public_key().to_x25519(),
        Some(psk),
        None,
        None,
    );
    let mut client = Tunn::new(
        cli_key.to_static_secret(),
        x25519::PublicKey::from(&srv_key.to_static_secret()),
        Some(psk),
        None,
        2,
        None,
    );
    let (mut a, mut b) = (vec![0u8; 2048], vec![0u8; 2048]);

    let init = network(
        client.format_handshake_initiation(&mut a, false),
        "initiation",
    )?;
    let mut link = server.link();
    let srv = server.tunnel(&mut link);
    let response = network(srv.decapsulate(None, &init, &mut b), "response")?;
    let keepalive = network(client.decapsulate(None, &response, &mut a), "confirmation")?;
    if !matches!(srv.decapsulate(None, &keepalive, &mut b), TunnResult::Done) {
        return Err("server did not accept the client's first keepalive".into());
    }

    let up = ipv4_packet(
        [10, 0, 0, 2],
        [10, 0, 0, 1],
        b"ipv6wgm selftest: client to server",
    );
    let sealed = network(client.encapsulate(&up, &mut a), "client data")?;
    let (opened, src) = tunnel(srv.decapsulate(None, &sealed, &mut b), "server receive")?;
    if opened != up || src != Ipv4Addr::new(10, 0, 0, 2) {
        return Err("server decrypted something else than the client sent".into());
    }
    let down = ipv4_packet(
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        b"ipv6wgm selftest: server to client",
    );
    let sealed = network(srv.encapsulate(&down, &mut b), "server data")?;
    let (opened, _) = tunnel(client.decapsulate(None, &sealed, &mut a), "client receive")?;
    if opened != down {
        return Err("client decrypted something else than the server sent".into());
    }
    drop(link);
    let stats = server.stats();
    Ok(format!(
        "WireGuard selftest OK: handshake (X25519, preshared key) and one packet each way \
         ({} bytes in, {} bytes out) in {:.1} ms",
        stats.rx_bytes,
        stats.tx_bytes,
        started.elapsed().as_secs_f64() * 1000.0
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn selftest_passes() {
        let report = super::run().expect("selftest");
        assert!(report.contains("OK"), "{report}");
    }
}
