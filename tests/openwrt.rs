//! The OpenWrt package: `openwrt/build-ipk.sh` produces an ipk that unpacks like opkg
//! expects, and the procd init script maps UCI options to the binary's flags, and those
//! flags are ones the binary accepts.

mod common;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn untar(archive: &Path, into: &Path) -> Vec<String> {
    std::fs::create_dir_all(into).expect("mkdir");
    run(Command::new("tar")
        .arg("-xzf")
        .arg(archive)
        .arg("-C")
        .arg(into));
    let listing = run(Command::new("tar").arg("-tzvf").arg(archive));
    listing.lines().map(str::to_string).collect()
}

#[test]
fn ipk_has_the_structure_opkg_expects() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    // A stand-in for the cross binary: the packer must carry it byte for byte, whatever it is.
    let binary = tmp.path().join("ipv6wgm");
    std::fs::write(&binary, b"\x7fELF stand-in for a mipsel build").expect("write");
    let printed = run(Command::new("bash")
        .arg(root().join("openwrt/build-ipk.sh"))
        .arg("mipsel_24kc")
        .arg(&binary)
        .arg(&out));
    let version = env!("CARGO_PKG_VERSION");
    let ipk = out.join(format!("ipv6wgm_{version}-1_mipsel_24kc.ipk"));
    assert!(printed.contains(&ipk.display().to_string()), "{printed}");

    // Outer archive: exactly debian-binary, data.tar.gz, control.tar.gz.
    let outer = tmp.path().join("outer");
    let members = untar(&ipk, &outer);
    let names: Vec<&str> = members
        .iter()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(
        names,
        ["./debian-binary", "./data.tar.gz", "./control.tar.gz"]
    );
    assert_eq!(
        std::fs::read_to_string(outer.join("debian-binary")).expect("read"),
        "2.0\n"
    );

    let control = tmp.path().join("control");
    let listing = untar(&outer.join("control.tar.gz"), &control);
    let ctl = std::fs::read_to_string(control.join("control")).expect("control");
    for line in [
        "Package: ipv6wgm",
        &format!("Version: {version}-1"),
        "Architecture: mipsel_24kc",
        "Depends: kmod-tun",
    ] {
        assert!(ctl.lines().any(|l| l == line), "{line:?} in\n{ctl}");
    }
    assert!(ctl.contains("Installed-Size: ") && ctl.contains("Description: "));
    assert_eq!(
        std::fs::read_to_string(control.join("conffiles")).expect("conffiles"),
        "/etc/config/ipv6wgm\n"
    );
    for script in ["postinst", "prerm"] {
        let entry = listing
            .iter()
            .find(|l| l.ends_with(&format!("./{script}")))
            .expect(script);
        assert!(entry.starts_with("-rwxr-xr-x 0/0"), "{entry}");
        run(Command::new("sh").arg("-n").arg(control.join(script)));
    }
    let postinst = std::fs::read_to_string(control.join("postinst")).expect("postinst");
    assert!(postinst.contains("/etc/init.d/ipv6wgm enable"));
    assert!(postinst.contains("initial-admin-password"));

    let data = tmp.path().join("data");
    let listing = untar(&outer.join("data.tar.gz"), &data);
    let mode_of = |path: &str| {
        listing
            .iter()
            .find(|l| l.ends_with(path))
            .unwrap_or_else(|| panic!("{path} missing: {listing:?}"))
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(mode_of("./usr/bin/ipv6wgm"), "-rwxr-xr-x 0/0");
    assert_eq!(mode_of("./etc/init.d/ipv6wgm"), "-rwxr-xr-x 0/0");
    assert_eq!(mode_of("./etc/config/ipv6wgm"), "-rw------- 0/0");
    assert_eq!(
        std::fs::read(data.join("usr/bin/ipv6wgm")).expect("bin"),
        std::fs::read(&binary).expect("bin")
    );

    // Same inputs, same bytes.
    let again = tmp.path().join("again");
    run(Command::new("bash")
        .arg(root().join("openwrt/build-ipk.sh"))
        .arg("mipsel_24kc")
        .arg(&binary)
        .arg(&again));
    assert_eq!(
        std::fs::read(&ipk).expect("ipk"),
        std::fs::read(again.join(ipk.file_name().expect("name"))).expect("ipk"),
        "reproducible"
    );
}

#[test]
fn unknown_architecture_is_refused() {
    let out = Command::new("bash")
        .arg(root().join("openwrt/build-ipk.sh"))
        .arg("sparc64")
        .arg(common::bin())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sparc64"));
}

/// Sources the init script with stand-ins for OpenWrt's UCI and procd shell functions that
/// answer from `options` and print the command procd would run.
fn init_command(options: &[(&str, &str)]) -> Vec<String> {
    let tmp = tempfile::tempdir().expect("tmp");
    let uci: String = options
        .iter()
        .map(|(k, v)| format!("    {k}) eval \"$1=\\\"{v}\\\"\" ; return ;;\n"))
        .collect();
    let harness = format!(
        r#"
config_load() {{ :; }}
config_get() {{
  case "$3" in
{uci}  esac
  eval "$1=\"$4\""
}}
config_get_bool() {{ config_get "$@"; }}
procd_open_instance() {{ :; }}
procd_close_instance() {{ :; }}
procd_set_param() {{ [ "$1" = command ] && {{ shift; printf '%s\n' "$@"; }}; return 0; }}
procd_append_param() {{ [ "$1" = command ] && {{ shift; printf '%s\n' "$@"; }}; return 0; }}
mkdir() {{ :; }}
chmod() {{ :; }}
. "{init}"
start_service
"#,
        init = root().join("openwrt/files/ipv6wgm.init").display()
    );
    let script = tmp.path().join("harness.sh");
    std::fs::write(&script, harness).expect("write");
    run(Command::new("sh").arg(&script))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn init_script_maps_uci_to_flags_the_binary_accepts() {
    let args = init_command(&[]);
    assert_eq!(
        args,
        [
            "/usr/bin/ipv6wgm",
            "serve",
            "--listen",
            "[::]:8000",
            "--data-dir",
            "/etc/ipv6wgm",
            "--log-dir",
            "/tmp/ipv6wgm",
            "--log",
            "info"
        ]
    );
    let args = init_command(&[
        ("listen", "192.168.1.1"),
        ("port", "8443"),
        ("public_host", "vpn.example.com"),
        ("log_level", "debug"),
    ]);
    assert!(args
        .windows(2)
        .any(|w| w == ["--listen", "192.168.1.1:8443"]));
    assert!(args
        .windows(2)
        .any(|w| w == ["--public-host", "vpn.example.com"]));
    assert!(init_command(&[("enabled", "0")]).is_empty());

    // The binary understands every flag the init script passes (`--help` after them all
    // parses the command line and exits before serving).
    let mut flags = args[1..].to_vec();
    flags.push("--help".into());
    run(Command::new(common::bin()).args(&flags));
}
