//! Interop of the pure WireGuard parts with wireguard-tools' `wg` (Debian package
//! `wireguard-tools`): keys derive the same way, and `wg` accepts our config files.

#[path = "common/skip.rs"]
mod skip;

use ipv6wgm::wireguard::conf::WgQuick;
use ipv6wgm::wireguard::keys::{PresharedKey, PrivateKey, PublicKey};
use skip::skip;
use std::io::Write;
use std::process::{Command, Stdio};

fn wg(args: &[&str], stdin: &str) -> Option<String> {
    let mut child = Command::new("wg")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(stdin.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    assert!(
        out.status.success(),
        "wg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn have_wg() -> bool {
    let ok = Command::new("wg").arg("--version").output().is_ok();
    if !ok {
        skip("`wg` not installed (apt-get install wireguard-tools)");
    }
    ok
}

#[test]
fn our_public_keys_match_wg_pubkey() {
    if !have_wg() {
        return;
    }
    for _ in 0..5 {
        let ours = PrivateKey::generate();
        let theirs = wg(&["pubkey"], &ours.to_base64()).expect("wg pubkey");
        assert_eq!(ours.public_key().to_base64(), theirs);
    }
    // And keys made by `wg genkey` / `wg genpsk` parse and derive the same public key.
    let genkey = wg(&["genkey"], "").expect("wg genkey");
    let pubkey = wg(&["pubkey"], &genkey).expect("wg pubkey");
    let parsed = PrivateKey::from_base64(&genkey).expect("parses");
    assert_eq!(
        parsed.public_key(),
        PublicKey::from_base64(&pubkey).expect("parses")
    );
    PresharedKey::from_base64(&wg(&["genpsk"], "").expect("wg genpsk")).expect("psk parses");
}

#[test]
fn wg_accepts_our_rendered_config() {
    if !have_wg() {
        return;
    }
    // `wg` itself reads only the WireGuard keys; wg-quick's Address/DNS/MTU lines are
    // stripped first (what `wg-quick strip` does) and checked by our own parser.
    let text = "[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n\
                Address = 10.8.0.2/32\nDNS = 10.8.0.1\nMTU = 1420\n\n[Peer]\n\
                PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\n\
                PresharedKey = /UwcSPg38hW/D9Y3tcS1FOV0K1wuURMbS0sesJEP5ak=\n\
                Endpoint = [2001:db8::1]:51820\nAllowedIPs = 0.0.0.0/0, ::/0\n\
                PersistentKeepalive = 25\n";
    let conf = WgQuick::parse(text).expect("parses").conf;
    let rendered = conf.render();
    let stripped: String = rendered
        .lines()
        .filter(|l| !["Address", "DNS", "MTU"].iter().any(|k| l.starts_with(k)))
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("wg0.conf");
    std::fs::write(&path, stripped).expect("write");
    // `wg setconf` needs an interface; parsing is what we check, so use a name that
    // does not exist: a config error is reported before the interface lookup fails.
    let out = Command::new("wg")
        .args(["setconf", "ipv6wgm-nonexistent"])
        .arg(&path)
        .output()
        .expect("wg");
    let err = String::from_utf8_lossy(&out.stderr);
    // A good file gets past parsing to the interface lookup; a bad one stops at
    // "Configuration parsing error".
    assert!(
        err.contains("Unable to modify interface") && !err.contains("parsing error"),
        "wg rejected the file: {err}"
    );
}

#[test]
fn genkey_pubkey_genpsk_subcommands_agree_with_wg() {
    let bin = env!("CARGO_BIN_EXE_ipv6wgm");
    let run = |args: &[&str], stdin: &str| -> String {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // RFC 7748 §6.1 (Alice), base64.
    assert_eq!(
        run(
            &["pubkey"],
            "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n"
        ),
        "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
    );
    let key = run(&["genkey"], "");
    PresharedKey::from_base64(&run(&["genpsk"], "")).expect("psk");
    if have_wg() {
        assert_eq!(run(&["pubkey"], &key), wg(&["pubkey"], &key).expect("wg"));
    }
    let bad = Command::new(bin)
        .arg("pubkey")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!bad.status.success());
}
