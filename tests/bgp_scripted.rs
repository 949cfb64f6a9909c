//! Our BGP speaker against a scripted peer (`common::bgp_peer`): hand-written messages
//! over TCP on 127.0.0.x, no root, no namespaces, no daemons. Each scenario asserts on the
//! bytes our side sends and on what the API shows. ipv6wgm is AS 65001 with BGP
//! identifier 10.0.0.5; the peer is AS 65002.

mod common;

use common::bgp_peer::*;
use common::peers::{free_port, wait_for};
use common::*;
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener};

const ORIGIN_IGP: &[u8] = &[0x40, 1, 1, 0];
/// AS_PATH SEQUENCE [65002], 4-octet ASNs (both OPENs carry the capability).
const PATH_65002: &[u8] = &[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea];
/// AS_PATH SEQUENCE [65001]: ours, as we send it.
const PATH_65001: &[u8] = &[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9];
const NEXT_HOP_PEER: &[u8] = &[0x40, 3, 4, 192, 0, 2, 254];
/// 198.51.100.0/24, 198.51.101.0/24, 198.51.102.0/24.
const THREE: &[u8] = &[24, 198, 51, 100, 24, 198, 51, 101, 24, 198, 51, 102];

/// The peer's OPEN: AS 65002, hold time 90, identifier `id`.
fn peer_open(id: [u8; 4]) -> Vec<u8> {
    open(65002, 90, id)
}

/// Our OPEN on the wire: version 4, AS 65001, hold time 90, identifier 10.0.0.5,
/// Multiprotocol IPv4 and IPv6 unicast, route refresh, 4-octet AS 65001.
fn our_open() -> Vec<u8> {
    message(
        OPEN,
        &[
            4, 0xfd, 0xe9, 0, 90, 10, 0, 0, 5, // version, AS, hold time, identifier
            22, 2, 20, // one Capabilities parameter
            1, 4, 0, 1, 0, 1, 1, 4, 0, 2, 0, 1, // Multiprotocol IPv4, IPv6 unicast
            2, 0, // route refresh
            65, 4, 0, 0, 0xfd, 0xe9, // 4-octet AS
        ],
    )
}

struct Ours {
    s: Server,
    token: String,
}

impl Ours {
    fn start() -> Ours {
        let (s, token) = Server::with_config(
            "[bgp]\nlocal_asn = 65001\nrouter_id = \"10.0.0.5\"\nconnect_retry_secs = 1\n",
        );
        Ours { s, token }
    }

    /// A session to a scripted peer at `ip` (AS 65002) with `extra` in its body: the
    /// peer's listener (where the session connects), the session id and the port we
    /// listen on for the peer's connections.
    fn session(&self, ip: &str, extra: Value) -> (TcpListener, i64, u16) {
        let listener = TcpListener::bind((ip, 0)).expect("bind the peer's port");
        let remote_port = listener.local_addr().expect("addr").port();
        let local_port = free_port();
        let mut body = json!({"name": format!("peer-{ip}"), "neighbor": ip, "remote_as": 65002,
            "local_port": local_port, "remote_port": remote_port});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            body[k] = v;
        }
        let r = self.s.post("/bgp/sessions", Some(&self.token), &body);
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.data()["id"].as_i64().expect("id");
        (listener, id, local_port)
    }

    fn live(&self, id: i64) -> Value {
        let r = self
            .s
            .get(&format!("/bgp/sessions/{id}"), Some(&self.token));
        assert_eq!(r.status, 200, "{}", r.body);
        r.data().clone()
    }

    /// Waits until the session's view satisfies `f`.
    fn wait(&self, id: i64, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        wait_for(10, what, || Some(self.live(id)).filter(|v| f(v)))
    }

    fn routes(&self, id: i64) -> Vec<Value> {
        let r = self
            .s
            .get(&format!("/bgp/sessions/{id}/routes"), Some(&self.token));
        assert_eq!(r.status, 200, "{}", r.body);
        r.data()["routes"].as_array().expect("routes").clone()
    }
}

#[test]
fn open_rejects_answer_with_the_open_message_error_subcode() {
    let ours = Ours::start();
    let cases = [
        (
            "127.0.0.2",
            open(65009, 90, [10, 0, 0, 9]),
            2,
            "Bad Peer AS",
        ),
        (
            "127.0.0.3",
            open(65002, 1, [10, 0, 0, 9]),
            6,
            "Unacceptable Hold Time",
        ),
        (
            "127.0.0.4",
            open(65002, 2, [10, 0, 0, 9]),
            6,
            "Unacceptable Hold Time",
        ),
        (
            "127.0.0.5",
            open(65002, 90, [0, 0, 0, 0]),
            3,
            "Bad BGP Identifier",
        ),
    ];
    for (ip, theirs, subcode, name) in cases {
        let (listener, id, _) = ours.session(ip, json!({}));
        let mut peer = BgpPeer::accept(&listener, 10);
        assert_eq!(peer.expect(10), our_open(), "{name}");
        peer.send(&theirs);
        assert_eq!(peer.expect(10), notification(2, subcode, &[]), "{name}");
        peer.expect_closed(10);
        let want = format!("sent: OPEN Message Error / {name}");
        let v = ours.wait(id, &want, |v| v["last_error"] == want.as_str());
        assert_ne!(v["status"], "established", "{v}");
    }
}

#[test]
fn more_routes_than_max_prefixes_end_the_session_with_cease_1_and_the_limit() {
    let ours = Ours::start();
    let (listener, id, _) = ours.session("127.0.0.2", json!({"max_prefixes": 2}));
    let mut peer = BgpPeer::accept(&listener, 10);
    assert_eq!(peer.establish(&peer_open([10, 0, 0, 9])), our_open());
    ours.wait(id, "established", |v| v["status"] == "established");

    let attrs = [ORIGIN_IGP, PATH_65002, NEXT_HOP_PEER].concat();
    peer.send(&update(&[], &attrs, THREE));
    // RFC 4486 §4: AFI 1, SAFI 1, the limit (2) as 4 octets.
    let cease = notification(6, 1, &[0, 1, 1, 0, 0, 0, 2]);
    assert_eq!(peer.until(NOTIFICATION, 10), [cease]);
    peer.expect_closed(10);
    let v = ours.wait(id, "the session stopped", |v| v["status"] == "idle");
    let error = v["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("sent: Cease / Maximum Number of Prefixes Reached"),
        "{v}"
    );
    assert_eq!(v["prefixes_received"], 0, "{v}");
}

#[test]
fn a_malformed_attribute_withdraws_the_route_and_the_session_stays_up() {
    let ours = Ours::start();
    let (listener, id, _) = ours.session("127.0.0.2", json!({}));
    let mut peer = BgpPeer::accept(&listener, 10);
    peer.establish(&peer_open([10, 0, 0, 9]));
    let attrs = [ORIGIN_IGP, PATH_65002, NEXT_HOP_PEER].concat();
    let prefix = [24, 198, 51, 100];
    peer.send(&update(&[], &attrs, &prefix));
    ours.wait(id, "1 route received", |v| v["prefixes_received"] == 1);

    // COMMUNITIES of 3 bytes (not a multiple of 4): RFC 7606 §7.8 treat-as-withdraw.
    let bad = [&attrs[..], &[0xc0, 8, 3, 0xfd, 0xea, 0]].concat();
    peer.send(&update(&[], &bad, &prefix));
    ours.wait(id, "the route withdrawn", |v| v["prefixes_received"] == 0);
    assert_eq!(ours.routes(id), Vec::<Value>::new());
    assert!(ours.s.wait_stderr("(treat-as-withdraw)", 5));

    // Still up: what we send next is the UPDATE for a new announcement, no NOTIFICATION.
    let r = ours.s.post(
        "/bgp/announcements",
        Some(&ours.token),
        &json!({"prefix": "192.0.2.0/24"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let next_hop_ours: &[u8] = &[0x40, 3, 4, 127, 0, 0, 1];
    let announced = update(
        &[],
        &[ORIGIN_IGP, PATH_65001, next_hop_ours].concat(),
        &[24, 192, 0, 2],
    );
    assert_eq!(peer.until(UPDATE, 10), [announced]);
    assert_eq!(ours.live(id)["status"], "established");
}

/// RFC 4271 §6.8: both sides connect; after the peer's OPEN on our connection, the peer
/// connects too. The connection opened by the higher BGP identifier survives; the other
/// one is closed with Cease / Connection Collision Resolution.
fn collision(peer_id: [u8; 4]) -> (Ours, i64, BgpPeer, BgpPeer) {
    let ours = Ours::start();
    let (listener, id, local_port) = ours.session("127.0.0.1", json!({}));
    let mut outgoing = BgpPeer::accept(&listener, 10);
    assert_eq!(outgoing.expect(10), our_open());
    outgoing.send(&peer_open(peer_id));
    assert_eq!(
        outgoing.expect(10),
        keepalive(),
        "OpenConfirm on our connection"
    );
    let incoming = BgpPeer::connect(SocketAddr::from(([127, 0, 0, 1], local_port)));
    (ours, id, outgoing, incoming)
}

#[test]
fn collision_with_a_higher_peer_id_keeps_the_peers_connection() {
    let (ours, id, mut outgoing, mut incoming) = collision([10, 0, 0, 9]);
    assert_eq!(outgoing.expect(10), notification(6, 7, &[]));
    outgoing.expect_closed(10);
    assert_eq!(incoming.establish(&peer_open([10, 0, 0, 9])), our_open());
    let v = ours.wait(id, "established", |v| v["status"] == "established");
    assert_eq!(v["remote_id"], "10.0.0.9", "{v}");
}

#[test]
fn collision_with_a_lower_peer_id_keeps_our_connection() {
    let (ours, id, mut outgoing, mut incoming) = collision([10, 0, 0, 1]);
    assert_eq!(incoming.expect(10), notification(6, 7, &[]));
    incoming.expect_closed(10);
    outgoing.send(&keepalive());
    let first = outgoing.until(UPDATE, 10);
    assert_eq!(
        first,
        [update(&[], &[], &[])],
        "Established: End-of-RIB IPv4"
    );
    assert_eq!(outgoing.expect(10), end_of_rib_ipv6());
    let v = ours.wait(id, "established", |v| v["status"] == "established");
    assert_eq!(v["remote_id"], "10.0.0.1", "{v}");
}
