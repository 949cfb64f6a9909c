//! The OpenWrt package: `openwrt/build-ipk.sh` produces an ipk that unpacks like opkg
//! expects, and the procd init script maps UCI options to the binary's flags, and those
//! flags are ones the binary accepts; it writes the sysupgrade keep list for the settings.
//! On OpenWrt 19.07.7's own userland (`router`: root, the shared rootfs, qemu-user; skipped
//! elsewhere), a firmware upgrade keeps the router's state: `opkg install`, procd, a backup,
//! `sysupgrade -l`/`-b`/`-r`, the first start restoring the kept backup (~50 s).

mod common;
#[path = "openwrt/router.rs"]
mod router;
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
    assert_eq!(mode_of("./lib/upgrade/keep.d/ipv6wgm"), "-rw-r--r-- 0/0");
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
    init_run(options).0
}

/// [`init_command`], and the sysupgrade keep list the script wrote (to a temporary file
/// instead of `/lib/upgrade/keep.d/ipv6wgm`).
fn init_run(options: &[(&str, &str)]) -> (Vec<String>, String) {
    let tmp = tempfile::tempdir().expect("tmp");
    let keep = tmp.path().join("keep");
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
logger() {{ :; }}
. "{init}"
KEEP="{keep}"
start_service
"#,
        init = root().join("openwrt/files/ipv6wgm.init").display(),
        keep = keep.display()
    );
    let script = tmp.path().join("harness.sh");
    std::fs::write(&script, harness).expect("write");
    let args = run(Command::new("sh").arg(&script))
        .lines()
        .map(str::to_string)
        .collect();
    (args, std::fs::read_to_string(&keep).unwrap_or_default())
}

#[test]
fn the_keep_list_follows_the_data_dir_and_the_config_files_backup_dir() {
    let (_, keep) = init_run(&[]);
    assert_eq!(
        keep,
        std::fs::read_to_string(root().join("openwrt/files/ipv6wgm.keep")).expect("keep"),
        "the shipped list is what the defaults give"
    );
    let (_, keep) = init_run(&[("data_dir", "/srv/ipv6wgm")]);
    assert_eq!(
        keep,
        "/etc/config/ipv6wgm\n/srv/ipv6wgm/backups/latest.tar.gz\n\
         /srv/ipv6wgm/backups/latest.tar.gz.age\n"
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let toml = tmp.path().join("ipv6wgm.toml");
    std::fs::write(
        &toml,
        "[rpki]\ndir = \"/not/this\"\n\n[backup]  # on the stick\nmax_size_mb = 8\n\
         dir = \"/mnt/usb/backups\"\n",
    )
    .expect("write");
    let (args, keep) = init_run(&[("config_file", &toml.display().to_string())]);
    assert_eq!(
        keep,
        format!(
            "/etc/config/ipv6wgm\n{}\n/mnt/usb/backups/latest.tar.gz\n\
             /mnt/usb/backups/latest.tar.gz.age\n",
            toml.display()
        )
    );
    assert!(args
        .windows(2)
        .any(|w| w == ["--config", &toml.display().to_string()]));
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

/// The firmware-upgrade round trip on a genuine OpenWrt userland (`router`): the package is
/// installed with opkg and started by procd; state is made through the API and a backup
/// taken; `sysupgrade -l` lists the UCI file and the newest backup (`latest.tar.gz`, a hard
/// link to it) and not the live database; `sysupgrade -b` saves what an upgrade keeps; the
/// upgrade is simulated (package and state gone, `sysupgrade -r` puts the kept files back,
/// the package installed again); the first start restores the kept backup, says so in the
/// system log, and the state is back. Then a damaged kept backup: the failure is logged and
/// the service starts fresh.
#[test]
fn firmware_upgrade_keeps_the_state_through_the_newest_backup() {
    if let Some(why) = router::skip_reason() {
        return common::skip(&why);
    }
    let t0 = std::time::Instant::now();
    let step = |what: &str| eprintln!("[{:5.1} s] {what}", t0.elapsed().as_secs_f64());
    let r = router::Router::start();
    step("router up");
    r.provide_libraries(Path::new(common::bin()));
    r.pretend_installed("kmod-tun");
    // Without its debug sections (135 MB → 17 MB): opkg unpacks it under qemu.
    let binary = r.path("/tmp/pkg/ipv6wgm");
    std::fs::create_dir_all(r.path("/tmp/pkg")).expect("mkdir");
    run(Command::new("strip")
        .arg("-o")
        .arg(&binary)
        .arg(common::bin()));
    run(Command::new("bash")
        .arg(root().join("openwrt/build-ipk.sh"))
        .arg("aarch64_generic")
        .arg(&binary)
        .arg(r.path("/tmp/pkg")));
    let ipk = format!(
        "/tmp/pkg/ipv6wgm_{}-1_aarch64_generic.ipk",
        env!("CARGO_PKG_VERSION")
    );
    r.ok(&format!("opkg install {ipk}"));
    step("installed");

    // The service runs under procd; the first admin password is in the data dir.
    let pw_file = r.path("/etc/ipv6wgm/initial-admin-password");
    r.wait(60, "the initial admin password", || {
        pw_file.is_file().then_some(())
    });
    let admin_pw = std::fs::read_to_string(&pw_file).expect("password");
    let admin_pw = admin_pw.trim();
    let login = |user: &str, pw: &str| {
        r.api(
            8000,
            "POST",
            "/auth/login",
            None,
            Some(&serde_json::json!({"username": user, "password": pw})),
        )
    };
    let admin = r
        .wait(60, "the API", || {
            login("admin", admin_pw).filter(|l| l.status == 200)
        })
        .body["data"]["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let alice =
        serde_json::json!({"username": "alice", "password": "alice-password-1", "role": "viewer"});
    let made = r
        .api(8000, "POST", "/users", Some(&admin), Some(&alice))
        .expect("create user");
    assert_eq!(made.status, 201, "{}", made.body);
    step("user made");

    // A backup through the API; `latest.tar.gz` then links to its archive.
    let b = r
        .api(
            8000,
            "POST",
            "/backup/backups/create",
            Some(&admin),
            Some(&serde_json::json!({"name": "before upgrade", "backup_type": "full"})),
        )
        .expect("create backup");
    assert!(
        b.status == 200 || b.status == 201 || b.status == 202,
        "{}",
        b.body
    );
    let id = b.body["data"]["id"].as_i64().expect("id");
    let done = r.wait(60, "the backup", || {
        let got = r.api(
            8000,
            "GET",
            &format!("/backup/backups/{id}"),
            Some(&admin),
            None,
        )?;
        (got.body["data"]["status"] != "running").then_some(got.body["data"].clone())
    });
    assert_eq!(done["status"], "completed", "{done}");
    let backups = r.path("/etc/ipv6wgm/backups");
    let archive = backups.join(done["file_path"].as_str().expect("file_path"));
    let latest = backups.join("latest.tar.gz");
    let ino = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).map(|m| m.ino()).ok()
    };
    r.wait(30, "latest.tar.gz", || {
        (ino(&latest).is_some() && ino(&latest) == ino(&archive)).then_some(())
    });

    step("backup made");

    // What an upgrade keeps: the UCI file and the newest backup, not the live database.
    let kept = r.ok("sysupgrade -l");
    let kept: Vec<&str> = kept.lines().collect();
    for want in ["/etc/config/ipv6wgm", "/etc/ipv6wgm/backups/latest.tar.gz"] {
        assert!(kept.contains(&want), "{want} in sysupgrade -l: {kept:?}");
    }
    assert!(
        !kept
            .iter()
            .any(|f| f.ends_with(".db") || f.contains("/backups/backup-")),
        "{kept:?}"
    );
    // Backups on the root flash are worth a warning naming the cap.
    assert!(r.log().contains("backup.max_size_mb"), "{}", r.log());

    r.ok("sysupgrade -b /tmp/sysupgrade.tgz");
    let saved = run(Command::new("tar")
        .arg("-tzf")
        .arg(r.path("/tmp/sysupgrade.tgz")));
    assert!(
        saved
            .lines()
            .any(|l| l == "etc/ipv6wgm/backups/latest.tar.gz")
            && saved.lines().any(|l| l == "etc/config/ipv6wgm")
            && !saved.contains(".db"),
        "{saved}"
    );
    step("sysupgrade -l and -b");
    // The upgrade: the package and everything it wrote are gone; the new firmware's first
    // boot puts the kept files back (`sysupgrade -r` is that same untar); the package is
    // installed again and started.
    r.stop_service("opkg remove ipv6wgm");
    r.ok("rm -rf /etc/ipv6wgm /etc/config/ipv6wgm");
    assert!(!r.path("/etc/ipv6wgm").exists());
    r.ok("sysupgrade -r /tmp/sysupgrade.tgz");
    assert!(latest.is_file() && !r.path("/etc/ipv6wgm/ipv6wgm.db").exists());
    r.ok(&format!("opkg install {ipk}"));
    step("upgraded, installed again");

    let alice_back = r.wait(60, "the service after the upgrade", || {
        login("alice", "alice-password-1")
    });
    assert_eq!(
        alice_back.status,
        200,
        "alice is back: {}\n{}",
        alice_back.body,
        r.log()
    );
    assert_eq!(
        login("admin", admin_pw).map(|l| l.status),
        Some(200),
        "admin's password too"
    );
    let log = r.log();
    assert!(
        log.contains("restored the backup kept across the firmware upgrade"),
        "{log}"
    );
    // The restored state is backed up at once, and that backup is what the next upgrade
    // keeps: the archive kept by this one is in no catalogue.
    let admin = login("admin", admin_pw).expect("login").body["data"]["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let list = r
        .api(8000, "GET", "/backup/backups", Some(&admin), None)
        .expect("list");
    let after = list.body["data"]
        .as_array()
        .and_then(|all| all.iter().find(|b| b["name"] == "after firmware upgrade"))
        .unwrap_or_else(|| panic!("no backup of the restored state: {}", list.body));
    assert_eq!(after["status"], "completed", "{after}");
    let after = backups.join(after["file_path"].as_str().expect("file_path"));
    assert_eq!(ino(&latest), ino(&after), "latest is the new backup");
    assert!(r
        .ok("sysupgrade -l")
        .lines()
        .any(|l| l == "/etc/ipv6wgm/backups/latest.tar.gz"));
    step("state back");

    // A kept backup that cannot be restored: said in the system log, and the service starts
    // with a fresh state rather than not at all.
    r.stop_service("/etc/init.d/ipv6wgm stop");
    r.ok(
        "rm -f /etc/ipv6wgm/ipv6wgm.db* /etc/ipv6wgm/initial-admin-password && \
          echo damaged > /etc/ipv6wgm/backups/latest.tar.gz && /etc/init.d/ipv6wgm start",
    );
    r.wait(60, "a fresh first start", || {
        pw_file.is_file().then_some(())
    });
    let fresh_pw = std::fs::read_to_string(&pw_file).expect("password");
    let fresh = r.wait(60, "the fresh service", || login("admin", fresh_pw.trim()));
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert_eq!(
        login("alice", "alice-password-1").map(|l| l.status),
        Some(401)
    );
    let log = r.log();
    assert!(
        log.contains("restoring the kept backup /etc/ipv6wgm/backups/latest.tar.gz failed, starting with a fresh state"),
        "{log}"
    );
    step("a damaged kept backup: logged, fresh start");
}
