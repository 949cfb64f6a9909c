//! Users and roles against the real binary: CRUD, filters, pagination edges, validation,
//! the last-admin rule, the role matrix, and the audit log they leave.

mod common;
use common::*;
use serde_json::json;

#[test]
fn crud_round_trip() {
    let (s, a) = Server::with_admin();
    let r = s.post(
        "/users",
        Some(&a),
        &json!({"username": "newuser", "email": "user@example.com", "password": "password123",
                "full_name": "New User", "role": "user", "is_active": true}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["message"], "user created");
    let id = r.data()["id"].as_i64().expect("id");
    assert_eq!(r.data()["role"], "user");
    assert_eq!(r.data()["is_superuser"], false);
    assert!(r.data()["permissions"]
        .as_array()
        .expect("list")
        .contains(&json!("wireguard.clients:write")));
    assert!(r.data().get("password").is_none() && r.data().get("password_hash").is_none());

    let g = s.get(&format!("/users/{id}"), Some(&a));
    assert_eq!(g.status, 200);
    assert_eq!(g.data()["email"], "user@example.com");

    // PUT and PATCH both update the given fields; null clears a nullable one.
    let p = s.send(
        "PUT",
        &format!("/users/{id}"),
        Some(&a),
        &json!({"email": "newemail@example.com", "full_name": "Updated Name", "role": "manager", "is_active": true}),
    );
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.data()["role"], "manager");
    assert_eq!(p.data()["username"], "newuser");
    let p = s.send(
        "PATCH",
        &format!("/users/{id}"),
        Some(&a),
        &json!({"email": null}),
    );
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.data()["email"], json!(null));
    assert_eq!(p.data()["full_name"], "Updated Name");
    // is_superuser (api-reference.zh.md) means role admin.
    let p = s.send(
        "PATCH",
        &format!("/users/{id}"),
        Some(&a),
        &json!({"is_superuser": true}),
    );
    assert_eq!(p.data()["role"], "admin");

    let d = s.call("DELETE", &format!("/users/{id}"), Some(&a), None);
    assert_eq!(d.status, 200, "{}", d.body);
    s.get(&format!("/users/{id}"), Some(&a))
        .assert_error(404, "RESOURCE_NOT_FOUND");
    s.call("DELETE", &format!("/users/{id}"), Some(&a), None)
        .assert_error(404, "RESOURCE_NOT_FOUND");
}

#[test]
fn duplicate_usernames_conflict_ignoring_case() {
    let (s, a) = Server::with_admin();
    s.user_with_role(&a, "erin", "viewer");
    let r = s.post(
        "/users",
        Some(&a),
        &json!({"username": "ERIN", "password": "password123"}),
    );
    r.assert_field_error(409, "RESOURCE_CONFLICT", "username");
    let (id, _) = s.user_with_role(&a, "frank", "viewer");
    let r = s.send(
        "PATCH",
        &format!("/users/{id}"),
        Some(&a),
        &json!({"username": "erin"}),
    );
    r.assert_error(409, "RESOURCE_CONFLICT");
}

#[test]
fn list_filters_and_pagination_edges() {
    let (s, a) = Server::with_admin();
    for (n, role) in [
        ("alpha", "viewer"),
        ("bravo", "user"),
        ("charlie", "viewer"),
        ("delta", "manager"),
    ] {
        s.user_with_role(&a, n, role);
    }
    let r = s.get("/users", Some(&a));
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["users"].as_array().expect("users").len(), 5);
    assert_eq!(
        r.data()["pagination"],
        json!({"page": 1, "size": 20, "total": 5, "pages": 1})
    );

    let r = s.get("/users?role=viewer", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 2);
    let r = s.get("/users?search=RAV", Some(&a));
    assert_eq!(r.data()["users"][0]["username"], "bravo");
    let r = s.get("/users?search=%25", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 0, "'%' is literal");

    let r = s.get("/users?page=2&size=2", Some(&a));
    assert_eq!(
        r.data()["pagination"],
        json!({"page": 2, "size": 2, "total": 5, "pages": 3})
    );
    let names: Vec<_> = r.data()["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["username"].clone())
        .collect();
    assert_eq!(names, vec![json!("bravo"), json!("charlie")]);
    let r = s.get("/users?page=9&size=2", Some(&a));
    assert_eq!(r.status, 200);
    assert_eq!(r.data()["users"], json!([]));
    let r = s.get("/users?size=100", Some(&a));
    assert_eq!(r.status, 200);

    for (q, field) in [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("size=0", "size"),
        ("size=101", "size"),
        ("role=root", "role"),
        ("is_active=maybe", "is_active"),
        ("sise=5", "sise"),
    ] {
        let r = s.get(&format!("/users?{q}"), Some(&a));
        r.assert_error(422, "VALIDATION_ERROR");
        assert_eq!(r.field(), field, "{q}");
    }
}

#[test]
fn bad_input_gets_the_documented_error_and_changes_nothing() {
    let (s, a) = Server::with_config("[http]\nmax_body_bytes = 2048\n");
    let auth = format!("Authorization: Bearer {a}");
    let ct = "Content-Type: application/json".to_string();
    let post = |headers: &[String], body: &[u8]| s.raw("POST", "/users", headers, body);

    post(&[auth.clone(), ct.clone()], b"{\"username\": ").assert_error(400, "BAD_REQUEST");
    post(&[auth.clone(), ct.clone()], b"").assert_error(400, "BAD_REQUEST");
    post(&[auth.clone(), ct.clone()], b"{} trailing").assert_error(400, "BAD_REQUEST");
    post(
        &[auth.clone(), "Content-Type: text/plain".into()],
        br#"{"username":"x1x","password":"password123"}"#,
    )
    .assert_error(400, "BAD_REQUEST");
    post(
        std::slice::from_ref(&auth),
        br#"{"username":"x1x","password":"password123"}"#,
    )
    .assert_error(400, "BAD_REQUEST");

    let cases = [
        (
            json!({"username": "ok-name", "password": "password123", "rolee": "user"}),
            "rolee",
        ),
        (json!({"username": "ok-name"}), "password"),
        (
            json!({"username": 7, "password": "password123"}),
            "username",
        ),
        (
            json!({"username": "ok-name", "password": "password123", "is_active": "yes"}),
            "is_active",
        ),
        (
            json!({"username": "a", "password": "password123"}),
            "username",
        ),
        (
            json!({"username": "ok-name", "password": "short"}),
            "password",
        ),
        (
            json!({"username": "ok-name", "password": "password123", "role": "root"}),
            "role",
        ),
        (
            json!({"username": "ok-name", "password": "password123", "email": "nope"}),
            "email",
        ),
        (
            json!({"username": "ok-name", "password": "password123", "role": "viewer", "is_superuser": true}),
            "is_superuser",
        ),
    ];
    for (body, field) in cases {
        let r = post(&[auth.clone(), ct.clone()], body.to_string().as_bytes());
        r.assert_error(422, "VALIDATION_ERROR");
        assert_eq!(r.field(), field, "{body}");
        assert!(r.body["error"]["details"]["message"].is_string());
    }

    let big = format!(
        r#"{{"username":"bigone","password":"{}"}}"#,
        "x".repeat(4096)
    );
    post(&[auth.clone(), ct.clone()], big.as_bytes()).assert_error(413, "PAYLOAD_TOO_LARGE");
    // The same without a Content-Length the server can trust up front: chunked.
    let chunked = s.raw_chunked("/users", &[auth.clone(), ct.clone()], big.as_bytes());
    chunked.assert_error(413, "PAYLOAD_TOO_LARGE");

    // Nothing was created; the server is alive.
    let r = s.get("/users", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 1, "{}", r.body);
}

#[test]
fn routing_errors() {
    let (s, a) = Server::with_admin();
    s.get("/nope", Some(&a))
        .assert_error(404, "RESOURCE_NOT_FOUND");
    s.get("/nope", None).assert_error(404, "RESOURCE_NOT_FOUND");
    let r = s.raw("GET", "/../status/health", &[], b"");
    assert_eq!(r.status, 404);
    let r = s.call("PUT", "/users", Some(&a), None);
    r.assert_error(405, "METHOD_NOT_ALLOWED");
    let allow = r.header("allow").expect("Allow");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let r = s.call("GET", "/auth/login", None, None);
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    let r = s.get("/users/abc", Some(&a));
    r.assert_field_error(422, "VALIDATION_ERROR", "id");
    s.get("/users/999", Some(&a))
        .assert_error(404, "RESOURCE_NOT_FOUND");
    // Trailing slash is the same route.
    assert_eq!(s.get("/users/", Some(&a)).status, 200);
}

#[test]
fn the_last_admin_cannot_be_removed_or_demoted() {
    let (s, a) = Server::with_admin();
    let me = s.get("/auth/me", Some(&a)).data()["id"]
        .as_i64()
        .expect("id");
    let path = format!("/users/{me}");
    s.call("DELETE", &path, Some(&a), None)
        .assert_error(409, "RESOURCE_CONFLICT");
    s.send("PATCH", &path, Some(&a), &json!({"role": "manager"}))
        .assert_error(409, "RESOURCE_CONFLICT");
    s.send("PUT", &path, Some(&a), &json!({"is_superuser": false}))
        .assert_error(409, "RESOURCE_CONFLICT");
    s.send("PATCH", &path, Some(&a), &json!({"is_active": false}))
        .assert_error(409, "RESOURCE_CONFLICT");
    assert_eq!(
        s.get("/auth/me", Some(&a)).data()["role"],
        "admin",
        "unchanged"
    );

    // An inactive admin does not count; an active second admin does.
    let (other, _) = s.user_with_role(&a, "backup-admin", "admin");
    s.send(
        "PATCH",
        &format!("/users/{other}"),
        Some(&a),
        &json!({"is_active": false}),
    );
    s.send("PATCH", &path, Some(&a), &json!({"role": "viewer"}))
        .assert_error(409, "RESOURCE_CONFLICT");
    s.send(
        "PATCH",
        &format!("/users/{other}"),
        Some(&a),
        &json!({"is_active": true}),
    );
    let r = s.send("PATCH", &path, Some(&a), &json!({"role": "viewer"}));
    assert_eq!(r.status, 200, "{}", r.body);
    // Now `other` is the last admin.
    let t = s.token("backup-admin", "backup-admin-password");
    s.call("DELETE", &format!("/users/{other}"), Some(&t), None)
        .assert_error(409, "RESOURCE_CONFLICT");
    assert_eq!(s.call("DELETE", &path, Some(&t), None).status, 200);
}

#[test]
fn every_role_against_allowed_and_forbidden_routes() {
    let (s, a) = Server::with_admin();
    let (target, _) = s.user_with_role(&a, "target", "viewer");
    let mut tokens = vec![("admin", a.clone())];
    for role in ["manager", "user", "viewer"] {
        tokens.push((role, s.user_with_role(&a, &format!("{role}-1"), role).1));
    }
    let user_path = format!("/users/{target}");
    let reset_path = format!("{user_path}/reset-password");
    for (role, t) in &tokens {
        let admin = *role == "admin";
        let expect = |ok: u16| if admin { ok } else { 403 };
        let checks: Vec<(&str, &str, Option<serde_json::Value>, u16)> = vec![
            ("GET", "/users", None, expect(200)),
            ("GET", &user_path, None, expect(200)),
            (
                "PATCH",
                &user_path,
                Some(json!({"full_name": "T"})),
                expect(200),
            ),
            (
                "PUT",
                &user_path,
                Some(json!({"full_name": "T"})),
                expect(200),
            ),
            (
                "POST",
                "/users",
                Some(json!({"username": format!("made-by-{role}"), "password": "password123"})),
                expect(201),
            ),
            (
                "POST",
                &reset_path,
                Some(json!({"new_password": "another-pass"})),
                expect(200),
            ),
            ("GET", "/auth/me", None, 200),
            ("GET", "/status/health/detailed", None, 200),
        ];
        for (method, path, body, want) in checks {
            let r = s.call(
                method,
                path,
                Some(t),
                body.map(|b| b.to_string()).as_deref(),
            );
            assert_eq!(r.status, want, "{role} {method} {path}: {}", r.body);
            if want == 403 {
                r.assert_error(403, "INSUFFICIENT_PERMISSIONS");
            }
        }
    }
    // Deleting is last, so the target exists for every role above.
    for (role, t) in tokens.iter().rev() {
        let r = s.call("DELETE", &user_path, Some(t), None);
        assert_eq!(r.status, if *role == "admin" { 200 } else { 403 }, "{role}");
    }
}

#[test]
fn users_change_their_own_password_with_the_current_one() {
    let (s, a) = Server::with_admin();
    let (id, t) = s.user_with_role(&a, "vera", "viewer");
    let (other, _) = s.user_with_role(&a, "walt", "viewer");
    let path = format!("/users/{id}/reset-password");
    let r = s.post(&path, Some(&t), &json!({"new_password": "vera-second-pw"}));
    r.assert_field_error(422, "VALIDATION_ERROR", "current_password");
    let r = s.post(
        &path,
        Some(&t),
        &json!({"new_password": "vera-second-pw", "current_password": "wrong-one"}),
    );
    assert_eq!(r.field(), "current_password");
    s.post(
        &format!("/users/{other}/reset-password"),
        Some(&t),
        &json!({"new_password": "x-password-x", "current_password": "vera-password"}),
    )
    .assert_error(403, "INSUFFICIENT_PERMISSIONS");
    let r = s.post(
        &path,
        Some(&t),
        &json!({"new_password": "vera-second-pw", "current_password": "vera-password"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.login("vera", "vera-second-pw").status, 200);
    let r = s.post(
        &format!("/users/{other}/reset-password"),
        Some(&a),
        &json!({"new_password": "short"}),
    );
    assert_eq!(r.field(), "new_password");
}

#[test]
fn mutations_are_audited_with_user_ip_action_and_target() {
    let (s, a) = Server::with_admin();
    let (id, _) = s.user_with_role(&a, "gina", "user");
    s.login("gina", "wrong-password");
    s.send(
        "PATCH",
        &format!("/users/{id}"),
        Some(&a),
        &json!({"role": "viewer"}),
    );
    let (_, v) = s.user_with_role(&a, "hank", "viewer");
    s.call("DELETE", &format!("/users/{id}"), Some(&v), None); // forbidden, still audited
    s.get("/users", Some(&a)); // reads are not audited
    let (dir, data) = (s.dir.clone(), s.data_dir());
    assert!(s.stop().success());

    let db = open_logs_db(&data);
    type Row = (String, Option<String>, String, Option<String>, i64);
    let rows: Vec<Row> = db
        .prepare(
            "SELECT action, username, ip, target, status FROM entries \
             WHERE method IS NOT NULL ORDER BY id",
        )
        .expect("prepare")
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let find = |action: &str, status: i64| {
        rows.iter()
            .find(|r| r.0 == action && r.4 == status)
            .unwrap_or_else(|| panic!("no {action} {status} in {rows:?}"))
    };
    let create = find("users.create", 201);
    assert_eq!(create.1.as_deref(), Some("admin"));
    assert_eq!(create.2, "127.0.0.1");
    assert_eq!(create.3.as_deref(), Some(format!("users/{id}").as_str()));
    let failed = find("auth.login", 401);
    assert_eq!(
        failed.1.as_deref(),
        Some("gina"),
        "attempted username recorded"
    );
    find("users.update", 200);
    let denied = find("users.delete", 403);
    assert_eq!(denied.1.as_deref(), Some("hank"));
    assert!(rows.iter().all(|r| r.0 != "users.list"));
    drop(dir);
}

#[test]
fn users_persist_across_restart() {
    let (s, a) = Server::with_admin();
    s.user_with_role(&a, "ivan", "manager");
    let s = s.restart_with(Opts::default());
    let t = s.token("ivan", "ivan-password");
    assert_eq!(s.get("/auth/me", Some(&t)).data()["role"], "manager");
}

/// An empty value is none of a parameter's choices and no number or boolean: a 422, not the
/// default (found by schemathesis). An empty text filter is still no filter.
#[test]
fn empty_typed_query_values_are_refused() {
    let (s, a) = Server::with_admin();
    for (q, field) in [
        ("role=", "role"),
        ("is_active=", "is_active"),
        ("page=", "page"),
    ] {
        s.get(&format!("/users?{q}"), Some(&a))
            .assert_field_error(422, "VALIDATION_ERROR", field);
    }
    assert_eq!(s.get("/users?search=", Some(&a)).status, 200);
}

/// A body that is not a JSON object is a 422: serde would otherwise fill the request struct
/// from an array by position (found by schemathesis).
#[test]
fn an_array_body_is_not_a_user() {
    let (s, a) = Server::with_admin();
    let r = s.call(
        "POST",
        "/users",
        Some(&a),
        Some(r#"["arrayuser", "password123", null, null, "admin"]"#),
    );
    r.assert_field_error(422, "VALIDATION_ERROR", "body");
    let users = s.get("/users?search=arrayuser", Some(&a));
    assert_eq!(users.data()["pagination"]["total"], 0, "{}", users.body);
}
