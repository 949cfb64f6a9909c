//! Interop with a real RTR cache: stayrtr (Debian package) serves a VRP file over RFC 8210,
//! ipv6wgm follows it (`[rpki] rtr_server`), `validate-rpki` gives the four outcomes, and a
//! changed file (new serial, Serial Notify) changes the answers without a restart. Skips with
//! the reason when stayrtr is not installed (CI installs it).

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};

const VRPS: &str = r#"{"roas":[
  {"prefix":"2001:db8:100::/48","maxLength":56,"asn":"AS65001","ta":"test"},
  {"prefix":"2001:db8:300::/48","maxLength":48,"asn":"AS65003","ta":"test"}]}"#;

struct Stayrtr(Child);

impl Drop for Stayrtr {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn validate(s: &Server, a: &str, pool: i64) -> Value {
    let r = s.post(
        &format!("/ipv6/pools/{pool}/validate-rpki"),
        Some(a),
        &json!({}),
    );
    r.body.clone()
}

#[test]
fn follows_stayrtr_over_rtr() {
    let Some(bin) = common::netns::which("stayrtr") else {
        common::skip("stayrtr is not installed (apt-get install stayrtr)");
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("vrps.json");
    std::fs::write(&file, VRPS).expect("write");
    let port = free_port();
    let cache = Stayrtr(
        Command::new(bin)
            .arg("-cache")
            .arg(&file)
            .args(["-bind", &format!("127.0.0.1:{port}")])
            .args(["-metrics.addr", &format!("127.0.0.1:{}", free_port())])
            .args(["-checktime=false", "-refresh", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn stayrtr"),
    );
    wait_for(30, "stayrtr to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });

    let (s, a) = Server::with_config(&format!(
        "[rpki]\nrtr_server = \"127.0.0.1:{port}\"\n[bgp]\nlocal_asn = 65001\n"
    ));
    let (p1, p2, p3) = (
        s.pool_id(&a, "one", "2001:db8:100::/48"),
        s.pool_id(&a, "two", "2001:db8:200::/48"),
        s.pool_id(&a, "three", "2001:db8:300::/48"),
    );
    wait_for(30, "the first RTR sync", || {
        (validate(&s, &a, p1)["success"] == true).then_some(())
    });

    let v = validate(&s, &a, p1);
    assert_eq!(
        (&v["data"]["state"], &v["data"]["max_length"]),
        (&json!("valid"), &json!(56)),
        "{v}"
    );
    let r = s.post(
        &format!("/ipv6/pools/{p1}/validate-rpki"),
        Some(&a),
        &json!({"prefix": "2001:db8:100:1::/64"}),
    );
    assert_eq!(r.data()["reason"], "invalid_length", "{}", r.body);
    assert_eq!(validate(&s, &a, p3)["data"]["reason"], "invalid_asn");
    assert_eq!(validate(&s, &a, p2)["data"]["state"], "not_found");

    let h = s.get("/status/health/detailed", Some(&a));
    let rpki = h.data()["components"]["rpki"].clone();
    assert_eq!(
        (&rpki["source"], &rpki["vrp_count"]),
        (&json!("rtr"), &json!(2)),
        "{rpki}"
    );
    let serial = rpki["serial"].as_u64().expect("serial");

    // A new ROA for pool two: stayrtr re-reads the file, bumps the serial and notifies us.
    std::fs::write(
        &file,
        VRPS.replace(
            r#"{"prefix":"2001:db8:300::/48""#,
            r#"{"prefix":"2001:db8:200::/48","maxLength":64,"asn":"AS65001","ta":"test"},{"prefix":"2001:db8:300::/48""#,
        ),
    )
    .expect("rewrite");
    wait_for(30, "the incremental update", || {
        (validate(&s, &a, p2)["data"]["state"] == "valid").then_some(())
    });
    let h = s.get("/status/health/detailed", Some(&a));
    let rpki = &h.data()["components"]["rpki"];
    assert_eq!(rpki["vrp_count"], 3, "{rpki}");
    assert!(rpki["serial"].as_u64().expect("serial") > serial, "{rpki}");

    // The cache going away keeps the last data (until it expires) and says so.
    drop(cache);
    wait_for(30, "the lost connection to show", || {
        let h = s.get("/status/health/detailed", Some(&a));
        (h.data()["components"]["rpki"]["status"] == "degraded").then_some(())
    });
    assert_eq!(validate(&s, &a, p2)["data"]["state"], "valid");
}
