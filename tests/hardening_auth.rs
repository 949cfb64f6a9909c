//! Issue 12, identity and tokens: a deleted user's token must not come back as whoever gets
//! the id next, refresh keeps the old token alive for a short grace period, a full disk is a
//! 503 (and logout still revokes), the initial admin password file goes once it is stale.

mod common;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn a_deleted_users_token_does_not_authenticate_the_next_user_created() {
    let (s, admin) = Server::with_admin();
    let (viewer_id, viewer_token) = s.user_with_role(&admin, "old-viewer", "viewer");
    assert_eq!(s.get("/auth/me", Some(&viewer_token)).status, 200);
    let r = s.send(
        "DELETE",
        &format!("/users/{viewer_id}"),
        Some(&admin),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // The next user, an admin: before the fix it got the deleted viewer's id and token
    // generation, and the viewer's token authenticated as this admin.
    let (new_id, _) = s.user_with_role(&admin, "new-admin", "admin");
    s.get("/auth/me", Some(&viewer_token))
        .assert_error(401, "UNAUTHORIZED");
    s.get("/users", Some(&viewer_token))
        .assert_error(401, "UNAUTHORIZED");
    assert_ne!(new_id, viewer_id, "user ids are never reused");
}

#[test]
fn refresh_keeps_the_old_token_for_the_grace_period_only() {
    let grace = 2;
    let (s, old) = Server::with_config(&format!("[auth]\nrefresh_grace_secs = {grace}\n"));
    let r = s.call("POST", "/auth/refresh", Some(&old), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let refreshed_at = Instant::now();
    let new = r.access_token();
    // Requests a browser tab sent with the old token just before the refresh still work…
    assert_eq!(s.get("/auth/me", Some(&old)).status, 200);
    assert_eq!(s.get("/auth/me", Some(&new)).status, 200);
    // …but the old token cannot be refreshed a second time (no forking a leaked token).
    s.call("POST", "/auth/refresh", Some(&old), None)
        .assert_error(401, "UNAUTHORIZED");
    // The grace period ends on time.
    wait_for(grace + 5, "the old token to expire", || {
        (s.get("/auth/me", Some(&old)).status == 401).then_some(())
    });
    let lived = refreshed_at.elapsed();
    assert!(
        lived >= Duration::from_secs(grace - 1),
        "refused after {lived:?}, grace is {grace} s"
    );
    assert_eq!(s.get("/auth/me", Some(&new)).status, 200);
}

#[test]
fn logout_during_the_grace_period_revokes_at_once() {
    let s = Server::start(); // default grace: 30 s
    let old = s.admin();
    let r = s.call("POST", "/auth/refresh", Some(&old), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.get("/auth/me", Some(&old)).status, 200, "in grace");
    let r = s.post("/auth/logout", Some(&old), &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    s.get("/auth/me", Some(&old))
        .assert_error(401, "UNAUTHORIZED");
    // A password change also ends the grace of every token of that user at once.
    let t1 = s.admin();
    let r = s.call("POST", "/auth/refresh", Some(&t1), None);
    let t2 = r.access_token();
    let r = s.post(
        "/users/1/reset-password",
        Some(&t2),
        &json!({"new_password": "another-admin-password"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    s.get("/auth/me", Some(&t1))
        .assert_error(401, "UNAUTHORIZED");
    s.get("/auth/me", Some(&t2))
        .assert_error(401, "UNAUTHORIZED");
}

#[test]
fn the_initial_admin_password_file_goes_when_the_password_is_changed() {
    let s = Server::start_with(Opts::default());
    let file = s.data_dir().join("initial-admin-password");
    let pw = std::fs::read_to_string(&file).expect("password file");
    let token = s.token("admin", pw.trim());
    // Another user's password change leaves it alone.
    let (id, _) = s.user_with_role(&token, "erin", "user");
    let r = s.post(
        &format!("/users/{id}/reset-password"),
        Some(&token),
        &json!({"new_password": "erins-new-password"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(file.exists(), "still the admin's password");
    let r = s.post(
        "/users/1/reset-password",
        Some(&token),
        &json!({"new_password": "the-admins-own-password"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!file.exists(), "stale initial password removed");
    assert_eq!(s.login("admin", "the-admins-own-password").status, 200);
}

#[test]
fn the_reset_password_command_removes_the_initial_password_file() {
    let s = Server::start_with(Opts::default());
    let file = s.data_dir().join("initial-admin-password");
    assert!(file.exists());
    let data = s.data_dir();
    let dir = s.dir.clone();
    assert!(s.stop().success());
    let out = reset_admin_password(&data);
    assert!(out.status.success(), "{out:?}");
    assert!(!file.exists(), "stale initial password removed");
    drop(dir);
}

/// A tmpfs of a few MiB mounted over a directory, unmounted on drop (root only).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mkdir");
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .expect("mount")
            .success();
        assert!(ok, "mount tmpfs on {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }

    /// Writes file `name` until the file system refuses even one byte: the disk is full.
    fn fill(&self, name: &str) -> std::path::PathBuf {
        use std::io::Write;
        let p = self.0.join(name);
        let mut f = std::fs::File::create(&p).expect("filler");
        for size in [64 << 10, 4 << 10, 512, 1] {
            let chunk = vec![0u8; size];
            while f.write_all(&chunk).and_then(|_| f.sync_all()).is_ok() {}
        }
        p
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn revoked_count(s: &Server) -> i64 {
    open_db(&s.data_dir())
        .query_row("SELECT count(*) FROM revoked_tokens", [], |r| r.get(0))
        .unwrap_or(-1)
}

#[test]
fn a_full_disk_is_503_and_logout_still_revokes() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::skip("needs root to mount a tmpfs");
        return;
    }
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("tmp"));
    let disk = Tmpfs::mount(&dir.path().join("data"), "3m");
    let s = Server::start_with(Opts {
        dir: Some(dir.clone()),
        admin_password: Some(ADMIN_PW.into()),
        ..Default::default()
    });
    let admin = s.admin();
    let leaving = s.admin();
    let filler = disk.fill("filler");

    // Writes fail with a clear 503 (never a 500) and change nothing.
    let mut refused = None;
    for i in 0..100 {
        let r = s.post(
            "/users",
            Some(&admin),
            &json!({"username": format!("full{i}"), "password": "long-enough-password"}),
        );
        assert!(
            r.status == 201 || r.status == 503,
            "{} {}",
            r.status,
            r.body
        );
        if r.status == 503 {
            refused = Some((i, r));
            break;
        }
    }
    let (i, r) = refused.expect("a write on a full disk is refused");
    r.assert_error(503, "SERVICE_UNAVAILABLE");
    let msg = r.body["error"]["message"].as_str().unwrap_or("");
    assert!(msg.contains("full"), "{msg}");
    let name = format!("full{i}");
    assert_eq!(
        s.get(&format!("/users?search={name}"), Some(&admin)).data()["pagination"]["total"],
        0
    );

    // Logout does not report failure while leaving the token valid. (Whatever the
    // refused writes left free is taken first.)
    let rest = disk.fill("rest");
    let before = revoked_count(&s);
    let r = s.post("/auth/logout", Some(&leaving), &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(revoked_count(&s), before, "the disk is full: not saved yet");
    wait_for(5, "the warning in the log", || {
        s.stderr_text().contains("held in memory").then_some(())
    });
    s.get("/auth/me", Some(&leaving))
        .assert_error(401, "UNAUTHORIZED");
    assert_eq!(s.get("/auth/me", Some(&admin)).status, 200);

    // Once there is room again, the revocation is saved and survives a restart.
    std::fs::remove_file(filler).expect("free space");
    std::fs::remove_file(rest).expect("free space");
    wait_for(20, "the revocation to be saved", || {
        assert_eq!(s.get("/auth/me", Some(&admin)).status, 200);
        (revoked_count(&s) > before).then_some(())
    });
    assert!(s.stop().success());
    let s = Server::start_with(Opts {
        dir: Some(dir.clone()),
        ..Default::default()
    });
    s.get("/auth/me", Some(&leaving))
        .assert_error(401, "UNAUTHORIZED");
    assert_eq!(s.get("/auth/me", Some(&admin)).status, 200);
    drop(s);
    drop(disk);
}
