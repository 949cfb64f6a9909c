//! Issue 14's proof that a restore brings the running router back, not just its rows: a
//! stock WireGuard peer (wireguard-go, from the `.conf` our API handed out) pings through
//! the restored server again with its keys and config unchanged, and a real BGP peer
//! (BIRD) has our announcements again after the session comes back. The WireGuard test
//! needs root (network namespaces) and the BGP test BIRD; each is skipped with the reason
//! otherwise. CI runs both.

mod common;

use common::backup::{backup, restore};
use common::netns::{self, WgGoPeer};
use common::peers::{free_port, Bird};
use common::{id_of, wait_for, Opts, Server, ADMIN_PW};
use serde_json::{json, Value};

/// The restore finished cleanly and swapped the database in, with nothing rolled back.
fn assert_restored(done: &Value) {
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["rolled_back"], false, "{done}");
    assert_eq!(done["restart_required"], false, "{done}");
}

/// `DELETE path` that must succeed.
fn delete(s: &Server, token: &str, path: &str) {
    let r = s.send("DELETE", path, Some(token), &json!({}));
    assert!(
        r.status == 200 || r.status == 204,
        "DELETE {path}: {}",
        r.body
    );
}

#[test]
fn a_wireguard_go_peer_pings_through_a_restored_server() {
    let Some((srv_ns, cli_ns, _veth)) = netns::server_and_client(
        "bkw",
        [
            "10.241.0.1/24",
            "10.241.0.2/24",
            "fd24:1::1/64",
            "fd24:1::2/64",
        ],
    ) else {
        return;
    };
    let s = Server::start_in_netns(&srv_ns.name, None);
    let token = s.admin();
    let iface = format!("bkw{}", std::process::id() % 100_000);
    let server = s.create_wg_server(
        &token,
        json!({
            "name": "office",
            "interface": iface,
            "listen_port": 51893,
            "ipv4_address": "10.242.0.1/24",
            "ipv6_address": "fd24:2::1/64",
            "endpoint": "10.241.0.1",
            "is_active": true,
        }),
    );
    assert_eq!(server["status"], "running", "{server}");
    let server_id = id_of(&server);
    let client = s.create_client(
        &token,
        json!({
            "server_id": server_id,
            "name": "laptop",
            "allowed_ips": ["10.242.0.0/24", "fd24:2::/64"],
            "persistent_keepalive": 5,
            "use_preshared_key": true,
        }),
    );
    let client_id = id_of(&client);
    let client_pub = client["public_key"]
        .as_str()
        .expect("public key")
        .to_string();
    // The downloadable .conf, exactly as a user would save it; the peer keeps it unchanged.
    let r = s.call(
        "GET",
        &format!("/wireguard/clients/{client_id}/config?format=conf"),
        Some(&token),
        None,
    );
    assert_eq!(r.status, 200);
    let conf = String::from_utf8(r.raw_body.clone()).expect("utf-8");
    let wg = WgGoPeer::start(&cli_ns, &conf, &[]);
    assert!(
        netns::ping(&cli_ns, "10.242.0.1", 2, 10),
        "tunnel up before the backup\n{}\n{}",
        wg.log(),
        s.stderr_text()
    );
    let b = backup(&s, &token, "tunnel up");

    // Break it: the client goes (no traffic), then the whole server (no interface).
    delete(&s, &token, &format!("/wireguard/clients/{client_id}"));
    assert!(
        !netns::ping(&cli_ns, "10.242.0.1", 1, 2),
        "no traffic once the client is deleted"
    );
    delete(&s, &token, &format!("/wireguard/servers/{server_id}"));
    assert!(
        !srv_ns.run(&["ip", "link"]).contains(&iface),
        "the deleted server's interface is gone"
    );

    let initiations = wg.initiations_received();
    assert_restored(&restore(&s, &token, id_of(&b), json!({})));
    let server = s.read(&format!("/wireguard/servers/{server_id}"), &token);
    assert_eq!(server["status"], "running", "{server}\n{}", s.stderr_text());
    let c = s.wg_client(&token, client_id);
    assert_eq!(c["public_key"], client_pub.as_str(), "{c}");
    assert_eq!(c["enabled"], true, "{c}");
    // The device is back with the client as a peer (`wg show` reads it as wireguard-tools).
    wait_for(10, "the restored client on the device", || {
        let dump = srv_ns.exec(&["wg", "show", &iface, "dump"]);
        String::from_utf8_lossy(&dump.stdout)
            .contains(&client_pub)
            .then_some(())
    });
    // The same peer, same keys and config, pings through it again. wireguard-go still holds
    // the session the deleted device forgot and would wait 10–15 s for its own timers; our
    // side knows where it was (carried over by the restore) and starts the handshake. The
    // cause is checked, not a wall-clock bound; the time is printed.
    let t = netns::time_to_first_reply(&cli_ns, "10.242.0.1", 40);
    eprintln!("traffic resumed after the restore: first reply after {t:?}");
    assert!(
        t.is_some(),
        "IPv4 ping through the restored server\n{}\n{}",
        wg.log(),
        s.stderr_text()
    );
    assert!(
        wg.initiations_received() > initiations,
        "the restored device started the handshake\n{}",
        wg.log()
    );
    assert!(
        netns::ping(&cli_ns, "fd24:2::1", 2, 10),
        "IPv6 ping through the restored server"
    );
    let c = s.wg_client(&token, client_id);
    assert_eq!(c["status"], "active", "{c}");
    drop(wg);
}

/// BIRD (AS 65002 at 127.0.0.2) peering with us (AS 65001 at 127.0.0.1), importing all we
/// send; high ports, as in `bgp_interop.rs`.
fn bird_config(our_port: u16, bird_port: u16) -> String {
    format!(
        r#"
router id 127.0.0.2;
log "{{DIR}}/bird.log" all;
protocol device {{}}
protocol bgp peer1 {{
  local 127.0.0.2 port {bird_port} as 65002;
  neighbor 127.0.0.1 port {our_port} as 65001;
  hold time 90; connect retry time 2; error wait time 1, 2;
  multihop 2;
  ipv4 {{ import all; export none; }};
  ipv6 {{ import all; export none; }};
}}
"#
    )
}

#[test]
fn bgp_announcements_are_back_at_bird_after_a_restore() {
    let (ours, theirs) = (free_port(), free_port());
    let Some(bird) = Bird::start(&bird_config(ours, theirs)) else {
        return;
    };
    let s = Server::start_with(Opts {
        admin_password: Some(ADMIN_PW.into()),
        config: Some("[bgp]\nlocal_asn = 65001\nconnect_retry_secs = 2\n".into()),
        ..Default::default()
    });
    let token = s.admin();
    let session = id_of(&s.create_bgp_session(
        &token,
        json!({"name": "bird", "neighbor": "127.0.0.2", "remote_as": 65002,
               "local_address": "127.0.0.1", "local_port": ours, "remote_port": theirs,
               "next_hop_ipv6": "2001:db8::1", "hold_time": 30}),
    ));
    let manual = "2001:db8:510::/48";
    let pooled = "2001:db8:520::/44";
    let announcement = id_of(&s.create(
        "/bgp/announcements",
        &token,
        &json!({"prefix": manual, "description": "manual"}),
    ));
    s.create_pool(
        &token,
        json!({"name": "customers", "prefix": pooled, "auto_announce_bgp": true}),
    );
    let established = || {
        wait_for(30, "the session established", || {
            let v = s.read(&format!("/bgp/sessions/{session}"), &token);
            (v["status"] == "established").then_some(())
        })
    };
    let routes = || bird.birdc("show route all protocol peer1");
    let has = |prefixes: &[&str]| {
        let r = routes();
        prefixes.iter().all(|p| r.contains(p)).then_some(())
    };
    established();
    wait_for(10, "both prefixes in BIRD", || has(&[manual, pooled]));
    let b = backup(&s, &token, "announced");

    // Break it: the announcement goes (BIRD sees the withdraw), then the session.
    delete(&s, &token, &format!("/bgp/announcements/{announcement}"));
    wait_for(10, "the withdraw in BIRD", || {
        (!routes().contains(manual)).then_some(())
    });
    delete(&s, &token, &format!("/bgp/sessions/{session}"));
    wait_for(10, "the session down in BIRD", || {
        (!bird.birdc("show protocols peer1").contains("Established")).then_some(())
    });
    assert!(!routes().contains(pooled), "{}", routes());

    assert_restored(&restore(&s, &token, id_of(&b), json!({})));
    established();
    wait_for(10, "both prefixes in BIRD again", || has(&[manual, pooled]));
    let v = s.read(&format!("/bgp/sessions/{session}"), &token);
    assert_eq!(v["prefixes_sent"], 2, "{v}");
}
