//! The authentication flow against the real binary: login, me, refresh, logout, expiry,
//! revocation across restarts, rate limiting, first-start admin bootstrap.

mod common;
use common::*;
use serde_json::json;
use std::sync::Arc;

#[test]
fn login_returns_token_and_user_with_permissions() {
    let s = Server::start();
    let r = s.login("admin", ADMIN_PW);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true);
    let d = r.data();
    assert_eq!(d["token_type"], "bearer");
    assert_eq!(d["expires_in"], 691_200);
    assert_eq!(d["user"]["username"], "admin");
    assert_eq!(d["user"]["role"], "admin");
    assert_eq!(d["user"]["permissions"], json!(["*"]));
    assert!(d["user"].get("password_hash").is_none());
    assert!(d["user"]["last_login"].is_string());

    let token = d["access_token"].as_str().expect("token");
    let me = s.get("/auth/me", Some(token));
    assert_eq!(me.status, 200);
    assert_eq!(me.data()["username"], "admin");
    assert_eq!(me.data()["full_name"], "Administrator");
    assert!(me.data()["created_at"].as_str().expect("ts").ends_with('Z'));
}

#[test]
fn bad_credentials_are_401_without_telling_which_part() {
    let s = Server::start();
    let wrong_pw = s.login("admin", "not-the-password");
    wrong_pw.assert_error(401, "INVALID_CREDENTIALS");
    let no_user = s.login("nobody", "whatever-password");
    no_user.assert_error(401, "INVALID_CREDENTIALS");
    assert_eq!(
        wrong_pw.body["error"]["message"],
        no_user.body["error"]["message"]
    );
    // There is no built-in default password.
    for pw in ["admin", "admin123", "password123"] {
        assert_eq!(s.login("admin", pw).status, 401);
    }
}

#[test]
fn missing_invalid_and_foreign_tokens_are_unauthorized() {
    let s = Server::start();
    s.get("/auth/me", None).assert_error(401, "UNAUTHORIZED");
    s.get("/auth/me", Some("garbage"))
        .assert_error(401, "UNAUTHORIZED");
    let r = s.raw(
        "GET",
        "/auth/me",
        &["Authorization: Basic YWRtaW46eA==".into()],
        b"",
    );
    r.assert_error(401, "UNAUTHORIZED");
    // A token signed by another install's key is rejected.
    let other = Server::start();
    let foreign = other.admin();
    s.get("/auth/me", Some(&foreign))
        .assert_error(401, "UNAUTHORIZED");
}

#[test]
fn logout_revokes_and_revocation_survives_restart() {
    let (s, kept) = Server::with_admin();
    let dropped = s.admin();
    let r = s.post("/auth/logout", Some(&dropped), &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    s.get("/auth/me", Some(&dropped))
        .assert_error(401, "UNAUTHORIZED");
    assert_eq!(s.get("/auth/me", Some(&kept)).status, 200);

    let s = s.restart_with(Opts::default());
    s.get("/auth/me", Some(&dropped))
        .assert_error(401, "UNAUTHORIZED");
    assert_eq!(
        s.get("/auth/me", Some(&kept)).status,
        200,
        "signing key persisted"
    );
}

#[test]
fn refresh_rotates_the_token_and_alias_works() {
    let (s, t1) = Server::with_admin();
    let r = s.call("POST", "/auth/refresh", Some(&t1), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["expires_in"], 691_200);
    let t2 = r.access_token();
    assert_ne!(t1, t2);
    assert_eq!(s.get("/auth/me", Some(&t2)).status, 200);
    // The old token lives on for the grace period (30 s), but is not refreshed again.
    assert_eq!(s.get("/auth/me", Some(&t1)).status, 200);
    s.call("POST", "/auth/refresh", Some(&t1), None)
        .assert_error(401, "UNAUTHORIZED");
    let r = s.call("POST", "/auth/refresh-token", Some(&t2), None);
    assert_eq!(r.status, 200, "{}", r.body);
    s.call("POST", "/auth/refresh", None, None)
        .assert_error(401, "UNAUTHORIZED");
}

#[test]
fn expired_tokens_say_so() {
    let s = Server::start_with(Opts {
        config: Some("[auth]\ntoken_ttl_secs = 2\n".into()),
        admin_password: Some(ADMIN_PW.into()),
        ..Default::default()
    });
    let r = s.login("admin", ADMIN_PW);
    let t = r.access_token();
    assert_eq!(s.get("/auth/me", Some(&t)).status, 200);
    assert_eq!(r.data()["expires_in"], 2);
    std::thread::sleep(std::time::Duration::from_millis(3100));
    s.get("/auth/me", Some(&t))
        .assert_error(401, "TOKEN_EXPIRED");
    s.call("POST", "/auth/refresh", Some(&t), None)
        .assert_error(401, "TOKEN_EXPIRED");
}

#[test]
fn failed_logins_are_rate_limited_per_ip() {
    let s = Server::start_with(Opts {
        config: Some("[auth]\nlogin_max_failures = 3\nlogin_window_secs = 60\n".into()),
        admin_password: Some(ADMIN_PW.into()),
        ..Default::default()
    });
    for _ in 0..3 {
        s.login("admin", "wrong-password")
            .assert_error(401, "INVALID_CREDENTIALS");
    }
    let r = s.login("admin", "wrong-password");
    r.assert_error(429, "RATE_LIMIT_EXCEEDED");
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    // While blocked, even the right password is refused.
    s.login("admin", ADMIN_PW)
        .assert_error(429, "RATE_LIMIT_EXCEEDED");
}

#[test]
fn password_reset_and_deactivation_void_existing_tokens() {
    let (s, admin) = Server::with_admin();
    let (id, old) = s.user_with_role(&admin, "carol", "user");
    let r = s.post(
        &format!("/users/{id}/reset-password"),
        Some(&admin),
        &json!({"new_password": "brand-new-pass"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    s.get("/auth/me", Some(&old))
        .assert_error(401, "UNAUTHORIZED");
    s.login("carol", "carol-password")
        .assert_error(401, "INVALID_CREDENTIALS");
    let fresh = s.token("carol", "brand-new-pass");

    let r = s.send(
        "PATCH",
        &format!("/users/{id}"),
        Some(&admin),
        &json!({"is_active": false}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    s.get("/auth/me", Some(&fresh))
        .assert_error(401, "UNAUTHORIZED");
    let r = s.login("carol", "brand-new-pass");
    r.assert_error(401, "INVALID_CREDENTIALS");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("disabled"));
    // Reactivation does not revive the old token.
    s.send(
        "PATCH",
        &format!("/users/{id}"),
        Some(&admin),
        &json!({"is_active": true}),
    );
    s.get("/auth/me", Some(&fresh))
        .assert_error(401, "UNAUTHORIZED");
    assert_eq!(s.login("carol", "brand-new-pass").status, 200);
}

#[test]
fn demotion_takes_effect_on_the_next_request() {
    let (s, admin) = Server::with_admin();
    let (id, t) = s.user_with_role(&admin, "dave", "admin");
    assert_eq!(s.get("/users", Some(&t)).status, 200);
    s.send(
        "PATCH",
        &format!("/users/{id}"),
        Some(&admin),
        &json!({"role": "viewer"}),
    );
    s.get("/users", Some(&t))
        .assert_error(403, "INSUFFICIENT_PERMISSIONS");
}

#[test]
fn first_start_generates_a_private_admin_password() {
    let s = Server::start_with(Opts::default());
    let file = s.data_dir().join("initial-admin-password");
    let pw = std::fs::read_to_string(&file).expect("password file");
    let pw = pw.trim();
    assert!(pw.len() >= 16, "{pw}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(s.stderr_text().contains(pw), "printed once to stderr");
    assert_eq!(s.login("admin", pw).status, 200);
    let db_mode = std::fs::metadata(s.data_dir().join("ipv6wgm.db"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(db_mode & 0o077, 0, "database not readable by others");

    // A restart neither re-creates the admin nor prints a password again.
    let s = s.restart_with(Opts::default());
    assert!(!s.stderr_text().contains(pw));
    assert_eq!(s.login("admin", pw).status, 200);
}

#[test]
fn reset_password_subcommand_works_with_server_stopped() {
    let (s, t) = Server::with_admin();
    let dir: Arc<tempfile::TempDir> = s.dir.clone();
    assert!(s.stop().success());
    let out = reset_admin_password(&dir.path().join("data"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let new_pw = text
        .rsplit(": ")
        .next()
        .expect("password")
        .trim()
        .to_string();
    let s = Server::start_with(Opts {
        dir: Some(dir),
        ..Default::default()
    });
    s.get("/auth/me", Some(&t))
        .assert_error(401, "UNAUTHORIZED");
    s.login("admin", ADMIN_PW)
        .assert_error(401, "INVALID_CREDENTIALS");
    assert_eq!(s.login("admin", &new_pw).status, 200);
}
