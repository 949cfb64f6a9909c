//! The product proof for WireGuard: ipv6wgm (the real binary, in its own network namespace)
//! serves a tunnel that a stock WireGuard peer — wireguard-go, configured from the `.conf`
//! our API hands out — connects to across a veth pair. Root only; skips with the reason
//! otherwise (CI runs it as root).

mod common;

use common::netns::{self, WgGoPeer};
use common::{id_of, Server};
use serde_json::json;

#[test]
fn wireguard_go_connects_to_our_server() {
    let Some((srv_ns, cli_ns, _veth)) = netns::server_and_client(
        "wgi",
        [
            "10.221.0.1/24",
            "10.221.0.2/24",
            "fd22:1::1/64",
            "fd22:1::2/64",
        ],
    ) else {
        return;
    };
    let s = Server::start_in_netns(&srv_ns.name, None);
    let token = s.admin();
    let iface = format!("wgi{}", std::process::id() % 100_000);

    let server = s.create_wg_server(
        &token,
        json!({
            "name": "office",
            "interface": iface,
            "listen_port": 51881,
            "ipv4_address": "10.222.0.1/24",
            "ipv6_address": "fd22:2::1/64",
            "endpoint": "10.221.0.1",
            "dns_servers": ["10.222.0.1"],
        }),
    );
    let server_id = id_of(&server);
    assert_eq!(server["status"], "stopped");

    let r = s.post(
        &format!("/wireguard/servers/{server_id}/start"),
        Some(&token),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{:?}\n{}", r.body, s.stderr_text());
    assert_eq!(r.data()["status"], "running");

    let client = s.create_client(
        &token,
        json!({
            "server_id": server_id,
            "name": "laptop",
            "allowed_ips": ["10.222.0.0/24", "fd22:2::/64"],
            "persistent_keepalive": 5,
            "use_preshared_key": true,
        }),
    );
    let client_id = id_of(&client);
    assert_eq!(client["ipv4_address"], "10.222.0.2/32");
    assert_eq!(client["ipv6_address"], "fd22:2::2/128");

    // The downloadable .conf, exactly as a user would save it.
    let r = s.call(
        "GET",
        &format!("/wireguard/clients/{client_id}/config?format=conf"),
        Some(&token),
        None,
    );
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-disposition")
            .is_some_and(|v| v.contains("laptop.conf")),
        "{:?}",
        r.headers
    );
    let conf = String::from_utf8(r.raw_body.clone()).expect("utf-8");
    assert!(conf.contains("Endpoint = 10.221.0.1:51881"), "{conf}");
    assert!(conf.contains("PresharedKey = "), "{conf}");

    let wg = WgGoPeer::start(&cli_ns, &conf, &[]);
    assert!(
        netns::ping(&cli_ns, "10.222.0.1", 3, 10),
        "IPv4 ping through the tunnel\n{}\n{}",
        wg.log(),
        s.stderr_text()
    );
    assert!(
        netns::ping(&cli_ns, "fd22:2::1", 3, 10),
        "IPv6 ping through the tunnel"
    );

    // Handshake and counters, read from the device through the API.
    let c = s.wg_client(&token, client_id);
    assert_eq!(c["status"], "active", "{c}");
    assert!(c["last_handshake"].is_string(), "{c}");
    assert!(c["bytes_received"].as_u64().unwrap_or(0) > 0, "{c}");
    assert!(c["bytes_sent"].as_u64().unwrap_or(0) > 0, "{c}");
    assert!(
        c["endpoint"]
            .as_str()
            .is_some_and(|e| e.starts_with("10.221.0.2:")),
        "{c}"
    );
    let before = c["bytes_received"].as_u64().unwrap_or(0);
    assert!(netns::ping(&cli_ns, "10.222.0.1", 2, 10));
    let c = s.wg_client(&token, client_id);
    assert!(
        c["bytes_received"].as_u64().unwrap_or(0) > before,
        "counters move: {c}"
    );

    // `wg show` (wireguard-tools) on our interface lists the peer.
    let dump = srv_ns.run(&["wg", "show", &iface, "dump"]);
    let client_pub = c["public_key"].as_str().expect("public key");
    assert!(dump.contains(client_pub), "wg show dump:\n{dump}");

    // Disabling the client stops traffic at once; enabling restores it.
    let r = s.send(
        "PATCH",
        &format!("/wireguard/clients/{client_id}"),
        Some(&token),
        &json!({"enabled": false}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.data()["status"], "disabled");
    assert!(
        !netns::ping(&cli_ns, "10.222.0.1", 2, 3),
        "no traffic while disabled"
    );
    let dump = srv_ns.run(&["wg", "show", &iface, "dump"]);
    assert!(
        !dump.contains(client_pub),
        "disabled peer gone from the device:\n{dump}"
    );
    let r = s.send(
        "PATCH",
        &format!("/wireguard/clients/{client_id}"),
        Some(&token),
        &json!({"enabled": true}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(
        netns::ping(&cli_ns, "10.222.0.1", 5, 20),
        "traffic after re-enabling\n{}",
        wg.log()
    );

    // Restarting ipv6wgm brings the server back with its clients; the interface went away
    // cleanly on shutdown.
    let dir = s.dir.clone();
    let status = s.stop();
    assert!(status.success(), "clean exit: {status:?}");
    let links = srv_ns.run(&["ip", "link"]);
    assert!(
        !links.contains(&iface),
        "interface removed on shutdown: {links}"
    );
    let s = Server::start_in_netns(&srv_ns.name, Some(dir));
    let token = s.admin();
    let r = s.get(&format!("/wireguard/servers/{server_id}"), Some(&token));
    assert_eq!(
        r.data()["status"],
        "running",
        "{:?}\n{}",
        r.body,
        s.stderr_text()
    );
    // Our side knows where the peer was and starts the handshake (timed in the test below).
    assert!(
        netns::ping(&cli_ns, "10.222.0.1", 3, 40),
        "traffic after restart\n{}",
        s.stderr_text()
    );
    let c = s.wg_client(&token, client_id);
    assert_eq!(c["status"], "active", "{c}");

    // Stopping through the API removes the interface.
    let r = s.post(
        &format!("/wireguard/servers/{server_id}/stop"),
        Some(&token),
        &json!({}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["status"], "stopped");
    let links = srv_ns.run(&["ip", "link"]);
    assert!(
        !links.contains(&iface),
        "interface removed on stop: {links}"
    );
    drop(wg);
}

/// Issue 12 item 13: after a client is re-enabled, its server restarts or the service
/// restarts, wireguard-go still holds the session our side has just forgotten and would keep
/// using it until its own timers give up (~14 s with keepalive 5 s). Our side knows where the
/// peer was and sends the handshake initiation itself, so traffic flows again at once.
#[test]
fn traffic_resumes_at_once_after_reenable_and_restarts() {
    let Some((srv_ns, cli_ns, _veth)) = netns::server_and_client(
        "wgr",
        [
            "10.223.0.1/24",
            "10.223.0.2/24",
            "fd22:3::1/64",
            "fd22:3::2/64",
        ],
    ) else {
        return;
    };
    let s = Server::start_in_netns(&srv_ns.name, None);
    let token = s.admin();
    let server = s.create_wg_server(
        &token,
        json!({
            "name": "resume",
            "interface": format!("wgr{}", std::process::id() % 100_000),
            "listen_port": 51882,
            "ipv4_address": "10.224.0.1/24",
            "endpoint": "10.223.0.1",
            "is_active": true,
        }),
    );
    assert_eq!(server["status"], "running", "{server}");
    let server_id = id_of(&server);
    let client = s.create_client(
        &token,
        json!({
            "server_id": server_id,
            "name": "phone",
            "allowed_ips": ["10.224.0.0/24"],
            "persistent_keepalive": 5,
        }),
    );
    let client_id = id_of(&client);
    let conf = client["config"].as_str().expect("config").to_string();
    let wg = WgGoPeer::start(&cli_ns, &conf, &[]);
    assert!(
        netns::ping(&cli_ns, "10.224.0.1", 2, 10),
        "tunnel up\n{}",
        s.stderr_text()
    );

    // Before the fix each of these took 10–15 s: the client noticed only by its own timers
    // that the session it held was gone. With it our side starts the handshake as soon as
    // the peer is back on a device. What is checked is that cause (the client's log shows
    // a handshake it did not start, and traffic flows again), not a wall-clock bound that
    // a loaded machine can miss; the times are printed for BENCHMARKS.md. All three are
    // checked before the verdict, so a failure reports every figure.
    let mut failed = Vec::new();
    let mut resumed = |what: &str, wg: &WgGoPeer, initiations_before: usize| {
        let t = netns::time_to_first_reply(&cli_ns, "10.224.0.1", 30);
        eprintln!("traffic resumed after {what}: first reply after {t:?}");
        let ours = wg.initiations_received() > initiations_before;
        if t.is_none() || !ours {
            failed.push(format!(
                "{what}: first reply {t:?}, handshake started by our side: {ours}"
            ));
        }
    };

    let patch = |enabled: bool| {
        let r = s.send(
            "PATCH",
            &format!("/wireguard/clients/{client_id}"),
            Some(&token),
            &json!({ "enabled": enabled }),
        );
        assert_eq!(r.status, 200, "{:?}", r.body);
    };
    patch(false);
    assert!(
        !netns::ping(&cli_ns, "10.224.0.1", 1, 2),
        "no traffic while disabled"
    );
    let before = wg.initiations_received();
    patch(true);
    resumed("re-enabling the client", &wg, before);

    let before = wg.initiations_received();
    for action in ["stop", "start"] {
        let r = s.post(
            &format!("/wireguard/servers/{server_id}/{action}"),
            Some(&token),
            &json!({}),
        );
        assert_eq!(r.status, 200, "{action}: {:?}", r.body);
    }
    resumed("restarting the server", &wg, before);

    // A device setting changed on a running server restarts its device in place.
    let before = wg.initiations_received();
    let r = s.send(
        "PATCH",
        &format!("/wireguard/servers/{server_id}"),
        Some(&token),
        &json!({ "mtu": 1400 }),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    resumed("restarting the server in place (new MTU)", &wg, before);

    let before = wg.initiations_received();
    let dir = s.dir.clone();
    assert!(s.stop().success(), "clean exit");
    let s = Server::start_in_netns(&srv_ns.name, Some(dir));
    let token = s.admin();
    let r = s.get(&format!("/wireguard/servers/{server_id}"), Some(&token));
    assert_eq!(r.data()["status"], "running", "{:?}", r.body);
    resumed("restarting the service", &wg, before);
    assert!(failed.is_empty(), "{failed:?}\n{}", wg.log());
    drop(wg);
}
