//! The `/ipv6` API against the real binary, without root: pools (CRUD, defaults, exact
//! counts for huge pools, overlap and validation errors), allocations (lowest first,
//! specific prefixes, sizes, exhaustion, release and reuse, idempotency per client, 200
//! concurrent requests), whitelists, disabled pools, forced deletes, roles, the WireGuard
//! client link, `/monitoring/ipv6/pools`, and a restart that rebuilds the allocators.

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;

// ---- helpers ----

/// `POST /ipv6/pools/{pool}/allocate` (201 expected); returns the allocation.
fn allocate(s: &Server, token: &str, pool: i64, body: Value) -> Value {
    let r = s.post(&format!("/ipv6/pools/{pool}/allocate"), Some(token), &body);
    assert_eq!(r.status, 201, "allocate {body}: {}", r.body);
    assert_eq!(r.body["message"], "prefix allocated");
    r.data().clone()
}

fn prefix_of(v: &Value) -> String {
    v["allocated_prefix"]
        .as_str()
        .expect("allocated_prefix")
        .to_string()
}

fn get_pool(s: &Server, token: &str, id: i64) -> Value {
    s.read(&format!("/ipv6/pools/{id}"), token)
}

/// The raw JSON text of a response (for counts beyond what a JSON `Value` holds exactly).
fn raw(r: &Resp) -> String {
    String::from_utf8_lossy(&r.raw_body).to_string()
}

fn counts(s: &Server, token: &str, id: i64) -> (u64, u64, u64, u64) {
    let d = get_pool(s, token, id);
    let n = |k: &str| d[k].as_u64().unwrap_or_else(|| panic!("{k} in {d}"));
    (
        n("total_prefixes"),
        n("allocated_prefixes"),
        n("available_prefixes"),
        n("allocations_count"),
    )
}

fn release(s: &Server, token: &str, pool: i64, allocation: i64) -> Resp {
    s.call(
        "POST",
        &format!("/ipv6/pools/{pool}/release/{allocation}"),
        Some(token),
        None,
    )
}

fn list_allocations(s: &Server, token: &str, query: &str) -> Value {
    s.read(&format!("/ipv6/allocations?{query}"), token)
}

/// A parsed IPv6 prefix as (first, last) addresses.
fn span(p: &str) -> (u128, u128) {
    let (a, l) = p.split_once('/').expect("prefix");
    let first = u128::from(a.parse::<std::net::Ipv6Addr>().expect("addr"));
    let len: u32 = l.parse().expect("len");
    let last = if len == 0 {
        u128::MAX
    } else {
        first | (u128::MAX >> len)
    };
    (first, last)
}

// ---- pools ----

#[test]
fn create_pool_applies_defaults_and_counts_exactly() {
    let (s, a) = Server::with_admin();
    let r = s.post(
        "/ipv6/pools",
        Some(&a),
        &json!({"name": "isp", "prefix": "2001:db8::/32", "description": "from the ISP"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["success"], true);
    let v = r.data();
    assert_eq!(v["prefix"], "2001:db8::/32");
    assert_eq!(
        (
            &v["prefix_length"],
            &v["min_prefix_length"],
            &v["max_prefix_length"]
        ),
        (&json!(64), &json!(64), &json!(64))
    );
    assert_eq!(v["status"], "active");
    assert_eq!(v["auto_announce_bgp"], false);
    assert_eq!(v["description"], "from the ISP");
    assert_eq!(v["total_prefixes"], 4_294_967_296u64);
    assert_eq!(v["available_prefixes"], 4_294_967_296u64);
    assert_eq!(v["allocated_prefixes"], 0);
    assert_eq!(v["usage_percent"], 0.0);
    assert_eq!(v["whitelist_count"], 0);
    assert!(v["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));

    // /48 into /128s: 2^80, beyond u64; written as an exact JSON integer.
    let r = s.post(
        "/ipv6/pools",
        Some(&a),
        &json!({"name": "hosts", "prefix": "2001:db9::/48", "prefix_length": 128,
                "max_prefix_length": 64, "min_prefix_length": 128, "auto_announce_bgp": true}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let text = raw(&r);
    for field in ["total_prefixes", "available_prefixes"] {
        assert!(
            text.contains(&format!("\"{field}\":1208925819614629174706176")),
            "{field}: {text}"
        );
    }
    let v = r.data();
    assert_eq!(
        (
            &v["prefix_length"],
            &v["min_prefix_length"],
            &v["max_prefix_length"]
        ),
        (&json!(128), &json!(64), &json!(128)),
        "min/max in either order, stored low to high"
    );
    // api-reference.zh.md's example: no prefix_length, max 64 / min 128.
    let v = s.create_pool(
        &a,
        json!({"name": "ref", "prefix": "2001:dba::/48", "max_prefix_length": 64,
               "min_prefix_length": 128}),
    );
    assert_eq!(
        (
            &v["prefix_length"],
            &v["min_prefix_length"],
            &v["max_prefix_length"],
            &v["total_prefixes"]
        ),
        (&json!(64), &json!(64), &json!(128), &json!(65536))
    );
    let v = s.create_pool(&a, json!({"name": "small", "prefix": "2001:dbb::/96"}));
    assert_eq!(
        v["prefix_length"], 128,
        "pools longer than /64 hand out /128s"
    );

    let r = s.get("/ipv6/pools?page=2&size=3", Some(&a));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.data()["pagination"],
        json!({"page": 2, "size": 3, "total": 4, "pages": 2})
    );
    let pools = r.data()["pools"].as_array().expect("pools");
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0]["name"], "small");
    assert!(
        raw(&s.get("/ipv6/pools", Some(&a))).contains("1208925819614629174706176"),
        "lists keep the exact counts too"
    );
}

#[test]
fn pool_validation_errors_name_the_field() {
    let (s, a) = Server::with_admin();
    let cases = [
        (json!({"name": "x", "prefix": "2001:db8::1/48"}), "prefix"),
        (json!({"name": "x", "prefix": "10.0.0.0/8"}), "prefix"),
        (json!({"name": "x", "prefix": "2001:db8::"}), "prefix"),
        (json!({"name": "x", "prefix": "2000::/7"}), "prefix"),
        (
            json!({"name": "x", "prefix": "2001:db8::/48", "prefix_length": 40}),
            "prefix_length",
        ),
        (
            json!({"name": "x", "prefix": "2001:db8::/48", "prefix_length": 129}),
            "prefix_length",
        ),
        (
            json!({"name": "x", "prefix": "2001:db8::/48", "prefix_length": 300}),
            "prefix_length",
        ),
        (
            json!({"name": "x", "prefix": "2001:db8::/48", "min_prefix_length": 32}),
            "min_prefix_length",
        ),
        (
            json!({"name": "x", "prefix": "2001:db8::/48", "prefix_length": 64,
                   "min_prefix_length": 56, "max_prefix_length": 60}),
            "prefix_length",
        ),
        (
            json!({"name": "x", "prefix": "2001:db8::/48", "status": "on"}),
            "status",
        ),
        (json!({"name": "", "prefix": "2001:db8::/48"}), "name"),
        (json!({"name": "x"}), "prefix"),
        (
            json!({"name": "x", "prefix": "2001:db8::/48", "colour": "red"}),
            "colour",
        ),
    ];
    for (body, field) in cases {
        s.post("/ipv6/pools", Some(&a), &body)
            .assert_field_error(422, "VALIDATION_ERROR", field);
    }
    let r = s.get("/ipv6/pools", Some(&a));
    assert_eq!(r.data()["pagination"]["total"], 0, "nothing stored");
}

#[test]
fn overlapping_pools_and_wireguard_subnets_conflict() {
    let (s, a) = Server::with_admin();
    s.pool_id(&a, "isp", "2001:db8::/32");
    for (body, field) in [
        (json!({"name": "in", "prefix": "2001:db8:5::/48"}), "prefix"),
        (
            json!({"name": "around", "prefix": "2001:d00::/24"}),
            "prefix",
        ),
        (json!({"name": "ISP", "prefix": "2001:db9::/32"}), "name"),
    ] {
        s.post("/ipv6/pools", Some(&a), &body)
            .assert_field_error(409, "RESOURCE_CONFLICT", field);
    }
    s.create_wg_server(&a, json!({"name": "wg", "ipv6_address": "fd00:1::1/64"}));
    let r = s.post(
        "/ipv6/pools",
        Some(&a),
        &json!({"name": "ula", "prefix": "fd00::/16"}),
    );
    r.assert_field_error(409, "RESOURCE_CONFLICT", "prefix");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("WireGuard server")),
        "{}",
        r.body
    );
}

#[test]
fn get_patch_put_and_delete_pools() {
    let (s, a) = Server::with_admin();
    let id = s.pool_id(&a, "p", "2001:db8::/48");
    let v = get_pool(&s, &a, id);
    assert_eq!(v["name"], "p");
    s.get("/ipv6/pools/999", Some(&a))
        .assert_error(404, "RESOURCE_NOT_FOUND");

    let r = s.send(
        "PATCH",
        &format!("/ipv6/pools/{id}"),
        Some(&a),
        &json!({"name": "lan", "description": "site", "auto_announce_bgp": true,
                "max_prefix_length": 56, "min_prefix_length": 64}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.data();
    assert_eq!(
        (&v["name"], &v["description"], &v["auto_announce_bgp"]),
        (&json!("lan"), &json!("site"), &json!(true))
    );
    assert_eq!(
        (&v["min_prefix_length"], &v["max_prefix_length"]),
        (&json!(56), &json!(64))
    );
    let r = s.send(
        "PUT",
        &format!("/ipv6/pools/{id}"),
        Some(&a),
        &json!({"name": "lan", "prefix": "2001:db8::/48", "description": null}),
    );
    assert_eq!(r.status, 200, "PUT with the same prefix: {}", r.body);
    assert_eq!(r.data()["description"], Value::Null);
    let r = s.send(
        "PATCH",
        &format!("/ipv6/pools/{id}"),
        Some(&a),
        &json!({"prefix": "2001:db8::/47"}),
    );
    r.assert_field_error(422, "VALIDATION_ERROR", "prefix");
    assert_eq!(
        r.body["error"]["message"],
        "prefix cannot change; create a new pool"
    );
    s.send(
        "PATCH",
        &format!("/ipv6/pools/{id}"),
        Some(&a),
        &json!({"prefix_length": 40}),
    )
    .assert_field_error(422, "VALIDATION_ERROR", "prefix_length");

    // Sizes change only while the pool is empty.
    allocate(&s, &a, id, json!({"client_name": "c"}));
    s.send(
        "PATCH",
        &format!("/ipv6/pools/{id}"),
        Some(&a),
        &json!({"prefix_length": 60}),
    )
    .assert_field_error(409, "RESOURCE_CONFLICT", "prefix_length");

    let r = s.call("DELETE", &format!("/ipv6/pools/{id}"), Some(&a), None);
    r.assert_field_error(409, "RESOURCE_CONFLICT", "force");
    let r = s.call(
        "DELETE",
        &format!("/ipv6/pools/{id}?force=true"),
        Some(&a),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["message"], "pool deleted (1 allocations released)");
    s.get(&format!("/ipv6/pools/{id}"), Some(&a))
        .assert_error(404, "RESOURCE_NOT_FOUND");
    assert_eq!(list_allocations(&s, &a, "")["pagination"]["total"], 0);
    // The space is free for a new pool, which starts empty.
    let id = s.pool_id(&a, "again", "2001:db8::/48");
    assert_eq!(counts(&s, &a, id), (65536, 0, 65536, 0));
}

// ---- allocations ----

#[test]
fn allocations_are_lowest_first_and_sized_on_request() {
    let (s, a) = Server::with_admin();
    let pool = id_of(&s.create_pool(
        &a,
        json!({"name": "p", "prefix": "2001:db8::/48", "min_prefix_length": 56,
               "max_prefix_length": 64}),
    ));
    let one = allocate(&s, &a, pool, json!({"client_name": "one"}));
    assert_eq!(prefix_of(&one), "2001:db8::/64");
    assert_eq!(
        (&one["pool_id"], &one["client_name"], &one["status"]),
        (&json!(pool), &json!("one"), &json!("active"))
    );
    assert_eq!(one["allocation_id"], one["id"]);
    assert_eq!(one["client_id"], Value::Null);
    let two = allocate(&s, &a, pool, json!({"client_name": "two"}));
    assert_eq!(prefix_of(&two), "2001:db8:0:1::/64");
    // A /56 must be aligned: the first /56 is partly used, so the next one.
    let big = allocate(
        &s,
        &a,
        pool,
        json!({"client_name": "big", "prefix_length": 56}),
    );
    assert_eq!(prefix_of(&big), "2001:db8:0:100::/56");
    let want = allocate(
        &s,
        &a,
        pool,
        json!({"client_name": "want", "prefix": "2001:db8:0:5::/64", "description": "d"}),
    );
    assert_eq!(prefix_of(&want), "2001:db8:0:5::/64");
    assert_eq!(want["description"], "d");
    assert_eq!(
        prefix_of(&allocate(&s, &a, pool, json!({"client_name": "three"}))),
        "2001:db8:0:2::/64",
        "lowest free, skipping nothing below"
    );
    assert_eq!(counts(&s, &a, pool), (65536, 256 + 4, 65536 - 260, 5));

    let err = |body: Value, status: u16, code: &str, field: &str| {
        s.post(&format!("/ipv6/pools/{pool}/allocate"), Some(&a), &body)
            .assert_field_error(status, code, field);
    };
    err(
        json!({"client_name": "x", "prefix_length": 48}),
        422,
        "VALIDATION_ERROR",
        "prefix_length",
    );
    err(
        json!({"client_name": "x", "prefix": "2001:db8::/72"}),
        422,
        "VALIDATION_ERROR",
        "prefix",
    );
    err(
        json!({"client_name": "x", "prefix": "2001:db9::/64"}),
        422,
        "VALIDATION_ERROR",
        "prefix",
    );
    err(
        json!({"client_name": "x", "prefix": "2001:db8::1/64"}),
        422,
        "VALIDATION_ERROR",
        "prefix",
    );
    err(
        json!({"client_name": "x", "prefix": "2001:db8:0:5::/64"}),
        409,
        "RESOURCE_CONFLICT",
        "prefix",
    );
    err(
        json!({"client_name": "x", "prefix": "2001:db8:0:100::/64"}),
        409,
        "RESOURCE_CONFLICT",
        "prefix",
    );
    err(json!({}), 422, "VALIDATION_ERROR", "client_name");
    err(
        json!({"client_name": "x", "pool_id": pool + 1}),
        422,
        "VALIDATION_ERROR",
        "pool_id",
    );
    s.post(
        "/ipv6/pools/999/allocate",
        Some(&a),
        &json!({"client_name": "x"}),
    )
    .assert_error(404, "RESOURCE_NOT_FOUND");
}

#[test]
fn post_allocations_takes_the_pool_from_the_body() {
    let (s, a) = Server::with_admin();
    let pool = id_of(&s.create_pool(
        &a,
        json!({"name": "p", "prefix": "2001:db8::/48", "auto_announce_bgp": true}),
    ));
    let r = s.post(
        "/ipv6/allocations",
        Some(&a),
        &json!({"pool_id": pool, "client_name": "client1", "description": "客户端1的IPv6前缀"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.data();
    assert_eq!(
        (&v["allocated_prefix"], &v["status"], &v["auto_announce"]),
        (&json!("2001:db8::/64"), &json!("active"), &json!(true)),
        "auto_announce defaults to the pool's auto_announce_bgp"
    );
    assert!(v["allocated_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    s.post("/ipv6/allocations", Some(&a), &json!({"client_name": "c"}))
        .assert_field_error(422, "VALIDATION_ERROR", "pool_id");
    s.post(
        "/ipv6/allocations",
        Some(&a),
        &json!({"pool_id": 999, "client_name": "c"}),
    )
    .assert_field_error(422, "VALIDATION_ERROR", "pool_id");
}

#[test]
fn a_tiny_pool_runs_out_then_reuses_released_prefixes() {
    let (s, a) = Server::with_admin();
    let pool = s.pool_id(&a, "tiny", "2001:db8::/62");
    assert_eq!(counts(&s, &a, pool), (4, 0, 4, 0));
    let got: Vec<Value> = (0..4)
        .map(|i| allocate(&s, &a, pool, json!({"client_name": format!("c{i}")})))
        .collect();
    let r = s.post(
        &format!("/ipv6/pools/{pool}/allocate"),
        Some(&a),
        &json!({"client_name": "late"}),
    );
    r.assert_error(409, "RESOURCE_CONFLICT");
    assert_eq!(
        r.body["error"]["message"],
        "no free /64 left in pool \"tiny\""
    );
    let p = get_pool(&s, &a, pool);
    assert_eq!(p["usage_percent"], 100.0);

    let r = release(&s, &a, pool, id_of(&got[1]));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["message"], "prefix released");
    assert_eq!(r.data()["status"], "released");
    assert_eq!(r.data()["allocated_prefix"], "2001:db8:0:1::/64");
    release(&s, &a, pool, id_of(&got[1])).assert_error(404, "RESOURCE_NOT_FOUND");
    release(&s, &a, pool + 1, id_of(&got[2])).assert_error(404, "RESOURCE_NOT_FOUND");
    assert_eq!(counts(&s, &a, pool), (4, 3, 1, 3));
    let p = get_pool(&s, &a, pool);
    assert_eq!(p["usage_percent"], 75.0);
    let again = allocate(&s, &a, pool, json!({"client_name": "late"}));
    assert_eq!(prefix_of(&again), "2001:db8:0:1::/64", "the freed hole");
    assert_eq!(counts(&s, &a, pool), (4, 4, 0, 4));
}

#[test]
fn allocation_is_idempotent_per_client() {
    let (s, a) = Server::with_admin();
    let pool = s.pool_id(&a, "p", "2001:db8::/48");
    let first = allocate(&s, &a, pool, json!({"client_name": "Alice"}));
    let r = s.post(
        &format!("/ipv6/pools/{pool}/allocate"),
        Some(&a),
        &json!({"client_name": "alice"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["message"], "already allocated");
    assert_eq!(r.data()["id"], first["id"]);
    assert_eq!(r.data()["allocated_prefix"], first["allocated_prefix"]);
    let r = s.post(
        "/ipv6/allocations",
        Some(&a),
        &json!({"pool_id": pool, "client_name": "ALICE", "prefix_length": 64}),
    );
    assert_eq!((r.status, &r.data()["id"]), (200, &first["id"]));
    s.post(
        &format!("/ipv6/pools/{pool}/allocate"),
        Some(&a),
        &json!({"client_name": "alice", "prefix": "2001:db8:0:9::/64"}),
    )
    .assert_field_error(409, "RESOURCE_CONFLICT", "prefix");
    assert_eq!(counts(&s, &a, pool).3, 1, "still one allocation");
    let other = allocate(&s, &a, pool, json!({"client_name": "bob"}));
    assert_ne!(other["allocated_prefix"], first["allocated_prefix"]);

    let d = list_allocations(&s, &a, &format!("pool_id={pool}&client_name=alice"));
    assert_eq!(d["pagination"]["total"], 1);
    assert_eq!(d["allocations"][0]["id"], first["id"]);
    let d = list_allocations(&s, &a, "size=1&page=2");
    assert_eq!(d["pagination"]["total"], 2);
    assert_eq!(d["allocations"][0]["client_name"], "bob");
    assert_eq!(
        list_allocations(&s, &a, &format!("pool_id={}", pool + 1))["pagination"]["total"],
        0
    );
    s.get("/ipv6/allocations?pool=1", Some(&a))
        .assert_field_error(422, "VALIDATION_ERROR", "pool");
    s.get("/ipv6/allocations?client_id=x", Some(&a))
        .assert_field_error(422, "VALIDATION_ERROR", "client_id");
}

#[test]
fn disabled_pools_refuse_new_allocations() {
    let (s, a) = Server::with_admin();
    let pool = s.pool_id(&a, "p", "2001:db8::/48");
    let held = allocate(&s, &a, pool, json!({"client_name": "old"}));
    let r = s.send(
        "PATCH",
        &format!("/ipv6/pools/{pool}"),
        Some(&a),
        &json!({"status": "disabled"}),
    );
    assert_eq!(r.data()["status"], "disabled", "{}", r.body);
    s.post(
        &format!("/ipv6/pools/{pool}/allocate"),
        Some(&a),
        &json!({"client_name": "new"}),
    )
    .assert_field_error(409, "RESOURCE_CONFLICT", "pool_id");
    let r = s.post(
        &format!("/ipv6/pools/{pool}/allocate"),
        Some(&a),
        &json!({"client_name": "old"}),
    );
    assert_eq!(
        (r.status, &r.data()["id"]),
        (200, &held["id"]),
        "an existing allocation is still answered"
    );
    assert_eq!(release(&s, &a, pool, id_of(&held)).status, 200);
    s.send(
        "PATCH",
        &format!("/ipv6/pools/{pool}"),
        Some(&a),
        &json!({"status": "active"}),
    );
    allocate(&s, &a, pool, json!({"client_name": "new"}));
}

// ---- whitelist ----

#[test]
fn a_whitelist_limits_what_a_pool_hands_out() {
    let (s, a) = Server::with_admin();
    let pool = s.pool_id(&a, "p", "2001:db8::/48");
    let path = format!("/ipv6/pools/{pool}/whitelist");
    let add = |prefix: &str| s.post(&path, Some(&a), &json!({"prefix": prefix}));
    let r = s.post(
        &path,
        Some(&a),
        &json!({"prefix": "2001:db8:0:10::/63", "description": "允许的客户端前缀"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let first = id_of(r.data());
    assert_eq!(r.data()["prefix"], "2001:db8:0:10::/63");
    assert_eq!(add("2001:db8:0:40::/64").status, 201);
    add("2001:db9::/64").assert_field_error(422, "VALIDATION_ERROR", "prefix");
    add("2001:db8:0:10::/64").assert_field_error(409, "RESOURCE_CONFLICT", "prefix");
    add("2001:db8:0:10::1/64").assert_field_error(422, "VALIDATION_ERROR", "prefix");
    let r = s.get(&path, Some(&a));
    assert_eq!(r.data()["total"], 2, "{}", r.body);
    assert_eq!(get_pool(&s, &a, pool)["whitelist_count"], 2);
    assert_eq!(counts(&s, &a, pool), (3, 0, 3, 0));

    let got: Vec<String> = (0..3)
        .map(|i| {
            prefix_of(&allocate(
                &s,
                &a,
                pool,
                json!({"client_name": format!("c{i}")}),
            ))
        })
        .collect();
    assert_eq!(
        got,
        [
            "2001:db8:0:10::/64",
            "2001:db8:0:11::/64",
            "2001:db8:0:40::/64"
        ]
    );
    s.post(
        &format!("/ipv6/pools/{pool}/allocate"),
        Some(&a),
        &json!({"client_name": "more"}),
    )
    .assert_error(409, "RESOURCE_CONFLICT");
    s.post(
        &format!("/ipv6/pools/{pool}/allocate"),
        Some(&a),
        &json!({"client_name": "more", "prefix": "2001:db8:0:20::/64"}),
    )
    .assert_field_error(422, "VALIDATION_ERROR", "prefix");

    // An entry that still holds allocations cannot go.
    s.call("DELETE", &format!("{path}/{first}"), Some(&a), None)
        .assert_field_error(409, "RESOURCE_CONFLICT", "entry_id");
    let d = list_allocations(&s, &a, &format!("pool_id={pool}"));
    for v in d["allocations"].as_array().expect("list") {
        if v["allocated_prefix"] != "2001:db8:0:40::/64" {
            assert_eq!(release(&s, &a, pool, id_of(v)).status, 200);
        }
    }
    let r = s.call("DELETE", &format!("{path}/{first}"), Some(&a), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(counts(&s, &a, pool), (1, 1, 0, 1));
    s.call("DELETE", &format!("{path}/{first}"), Some(&a), None)
        .assert_error(404, "RESOURCE_NOT_FOUND");
    // Removing the last entry opens the whole pool again.
    let last = id_of(&s.get(&path, Some(&a)).data()["whitelist"][0]);
    assert_eq!(
        s.call("DELETE", &format!("{path}/{last}"), Some(&a), None)
            .status,
        200
    );
    assert_eq!(counts(&s, &a, pool), (65536, 1, 65535, 1));
    // A first entry must cover what is already allocated.
    add("2001:db8:1::/48").assert_field_error(422, "VALIDATION_ERROR", "prefix");
    add("2001:db8:0:80::/57").assert_field_error(409, "RESOURCE_CONFLICT", "prefix");
    assert_eq!(add("2001:db8::/56").status, 201);
}

// ---- roles and monitoring ----

#[test]
fn viewers_read_but_cannot_change_pools() {
    let (s, a) = Server::with_admin();
    let pool = s.pool_id(&a, "p", "2001:db8::/48");
    let held = allocate(&s, &a, pool, json!({"client_name": "c"}));
    let (_, v) = s.user_with_role(&a, "vera", "viewer");
    let (_, u) = s.user_with_role(&a, "ursula", "user");
    for t in [&v, &u] {
        assert_eq!(s.get("/ipv6/pools", Some(t)).status, 200);
        assert_eq!(s.get(&format!("/ipv6/pools/{pool}"), Some(t)).status, 200);
        assert_eq!(s.get("/ipv6/allocations", Some(t)).status, 200);
        assert_eq!(
            s.get(&format!("/ipv6/pools/{pool}/whitelist"), Some(t))
                .status,
            200
        );
        assert_eq!(s.get("/monitoring/ipv6/pools", Some(t)).status, 200);
        for (method, path, body) in [
            (
                "POST",
                "/ipv6/pools".to_string(),
                json!({"name": "x", "prefix": "2001:db9::/48"}),
            ),
            ("PATCH", format!("/ipv6/pools/{pool}"), json!({"name": "y"})),
            (
                "DELETE",
                format!("/ipv6/pools/{pool}?force=true"),
                json!({}),
            ),
            (
                "POST",
                format!("/ipv6/pools/{pool}/allocate"),
                json!({"client_name": "z"}),
            ),
            (
                "POST",
                "/ipv6/allocations".to_string(),
                json!({"pool_id": pool, "client_name": "z"}),
            ),
            (
                "POST",
                format!("/ipv6/pools/{pool}/release/{}", id_of(&held)),
                json!({}),
            ),
            (
                "POST",
                format!("/ipv6/pools/{pool}/whitelist"),
                json!({"prefix": "2001:db8::/56"}),
            ),
        ] {
            s.send(method, &path, Some(t), &body)
                .assert_error(403, "INSUFFICIENT_PERMISSIONS");
        }
    }
    s.get("/ipv6/pools", None).assert_error(401, "UNAUTHORIZED");
    assert_eq!(counts(&s, &a, pool).3, 1, "nothing changed");
    let (_, m) = s.user_with_role(&a, "max", "manager");
    allocate(&s, &m, pool, json!({"client_name": "by-manager"}));
}

#[test]
fn monitoring_shows_every_pool_with_health_and_totals() {
    let (s, a) = Server::with_admin();
    let tiny = s.pool_id(&a, "tiny", "2001:db8::/62");
    let big = id_of(&s.create_pool(
        &a,
        json!({"name": "big", "prefix": "2001:db9::/48", "prefix_length": 128}),
    ));
    for i in 0..4 {
        allocate(&s, &a, tiny, json!({"client_name": format!("c{i}")}));
    }
    allocate(&s, &a, big, json!({"client_name": "h"}));
    let r = s.get("/monitoring/ipv6/pools", Some(&a));
    assert_eq!(r.status, 200, "{}", r.body);
    let pools = r.data()["pools"].as_array().expect("pools");
    assert_eq!(pools.len(), 2);
    let t = &pools[0];
    assert_eq!(
        (
            &t["pool_id"],
            &t["name"],
            &t["total_capacity"],
            &t["allocated"]
        ),
        (&json!(tiny), &json!("tiny"), &json!(4), &json!(4))
    );
    assert_eq!(
        (&t["usage_percent"], &t["health"], &t["status"]),
        (&json!(100.0), &json!("exhausted"), &json!("active"))
    );
    assert_eq!(pools[1]["health"], "healthy");
    let totals = &r.data()["totals"];
    assert_eq!(
        (
            &totals["pools"],
            &totals["active_pools"],
            &totals["allocations"]
        ),
        (&json!(2), &json!(2), &json!(5))
    );
    let text = raw(&r);
    assert!(
        text.contains("\"available_prefixes\":1208925819614629174706175"),
        "{text}"
    );
}

// ---- concurrency ----

/// 200 requests at once, each on its own connection, from one pool: 200 distinct,
/// non-overlapping prefixes, and counts that add up.
#[test]
fn concurrent_allocations_never_overlap() {
    // 200 clients at once from 127.0.0.1: more than one address's default share.
    let s = Arc::new(Server::start_with(Opts {
        admin_password: Some(ADMIN_PW.into()),
        config: Some("[http]\nmax_connections_per_ip = 256\n".into()),
        ..Default::default()
    }));
    let a = Arc::new(s.admin());
    let pool = id_of(&s.create_pool(
        &a,
        json!({"name": "p", "prefix": "2001:db8::/48", "min_prefix_length": 56,
               "max_prefix_length": 64}),
    ));
    let barrier = Arc::new(std::sync::Barrier::new(200));
    let threads: Vec<_> = (0..200)
        .map(|i| {
            let (s, a, barrier) = (s.clone(), a.clone(), barrier.clone());
            std::thread::spawn(move || {
                // Some ask for a /56 so that sizes interleave.
                let body = if i % 10 == 0 {
                    json!({"client_name": format!("c{i}"), "prefix_length": 56})
                } else {
                    json!({"client_name": format!("c{i}")})
                };
                barrier.wait();
                let r = s.post(&format!("/ipv6/pools/{pool}/allocate"), Some(&a), &body);
                assert_eq!(r.status, 201, "{}", r.body);
                prefix_of(r.data())
            })
        })
        .collect();
    let got: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    let distinct: HashSet<&String> = got.iter().collect();
    assert_eq!(distinct.len(), 200, "distinct prefixes");
    let mut spans: Vec<(u128, u128)> = got.iter().map(|p| span(p)).collect();
    spans.sort_unstable();
    for w in spans.windows(2) {
        assert!(w[0].1 < w[1].0, "overlap: {w:?}");
    }
    let (lo, hi) = span("2001:db8::/48");
    assert!(spans.iter().all(|(f, l)| *f >= lo && *l <= hi));
    let (total, allocated, available, n) = counts(&s, &a, pool);
    assert_eq!(n, 200);
    assert_eq!(allocated, 180 + 20 * 256, "180 /64s and 20 /56s");
    assert_eq!(total, allocated + available);
    let d = list_allocations(&s, &a, &format!("pool_id={pool}&size=100"));
    assert_eq!(d["pagination"]["total"], 200);
}

// ---- the WireGuard link ----

#[test]
fn allocations_for_a_wireguard_client_are_its_routed_prefixes() {
    let (s, a) = Server::with_admin();
    let server = id_of(&s.create_wg_server(
        &a,
        json!({"name": "wg", "ipv6_address": "fd00::1/64", "endpoint": "vpn.example.com"}),
    ));
    let client = id_of(&s.create_client(
        &a,
        json!({"server_id": server, "name": "router", "routed_prefixes": ["2001:db8:9::/48"]}),
    ));
    let pool = s.pool_id(&a, "delegated", "2001:db8:100::/48");

    let given = allocate(
        &s,
        &a,
        pool,
        json!({"client_id": client, "auto_announce": true}),
    );
    assert_eq!(prefix_of(&given), "2001:db8:100::/64");
    assert_eq!(
        (
            &given["client_id"],
            &given["client_name"],
            &given["auto_announce"]
        ),
        (&json!(client), &json!("router"), &json!(true)),
        "client_name defaults to the WireGuard client's"
    );
    assert_eq!(
        s.wg_client(&a, client)["routed_prefixes"],
        json!(["2001:db8:9::/48", "2001:db8:100::/64"])
    );
    let r = s.get(&format!("/wireguard/clients/{client}/config"), Some(&a));
    assert_eq!(r.status, 200, "the config still renders: {}", r.body);
    assert!(r.data()["config"]
        .as_str()
        .is_some_and(|c| c.contains("[Peer]")));
    // Asking again is idempotent and does not route it twice.
    let r = s.post(
        &format!("/ipv6/pools/{pool}/allocate"),
        Some(&a),
        &json!({"client_id": client}),
    );
    assert_eq!((r.status, &r.data()["id"]), (200, &given["id"]));
    assert_eq!(
        s.wg_client(&a, client)["routed_prefixes"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let d = list_allocations(&s, &a, &format!("client_id={client}"));
    assert_eq!(d["pagination"]["total"], 1);
    s.post(
        &format!("/ipv6/pools/{pool}/allocate"),
        Some(&a),
        &json!({"client_id": 999}),
    )
    .assert_field_error(422, "VALIDATION_ERROR", "client_id");

    assert_eq!(release(&s, &a, pool, id_of(&given)).status, 200);
    assert_eq!(
        s.wg_client(&a, client)["routed_prefixes"],
        json!(["2001:db8:9::/48"])
    );

    // Allocated again, then the client is deleted: its allocation goes with it.
    let again = allocate(&s, &a, pool, json!({"client_id": client}));
    assert_eq!(prefix_of(&again), "2001:db8:100::/64");
    assert_eq!(counts(&s, &a, pool), (65536, 1, 65535, 1));
    let r = s.call(
        "DELETE",
        &format!("/wireguard/clients/{client}"),
        Some(&a),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(list_allocations(&s, &a, "")["pagination"]["total"], 0);
    assert_eq!(counts(&s, &a, pool), (65536, 0, 65536, 0));
    let next = allocate(&s, &a, pool, json!({"client_name": "someone"}));
    assert_eq!(
        prefix_of(&next),
        "2001:db8:100::/64",
        "the allocator got it back"
    );

    // Force-deleting a server releases its clients' allocations too.
    let second = id_of(&s.create_client(&a, json!({"server_id": server, "name": "second"})));
    allocate(&s, &a, pool, json!({"client_id": second}));
    assert_eq!(counts(&s, &a, pool).3, 2);
    let r = s.call(
        "DELETE",
        &format!("/wireguard/servers/{server}?force=true"),
        Some(&a),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(counts(&s, &a, pool), (65536, 1, 65535, 1));
}

#[test]
fn force_deleting_a_pool_unroutes_its_prefixes() {
    let (s, a) = Server::with_admin();
    let server = s.wg_server_id(&a, "wg", Some("10.0.0.1/24"), None);
    let client = id_of(&s.create_client(&a, json!({"server_id": server, "name": "c"})));
    let pool = s.pool_id(&a, "p", "2001:db8::/48");
    allocate(&s, &a, pool, json!({"client_id": client}));
    assert_eq!(
        s.wg_client(&a, client)["routed_prefixes"],
        json!(["2001:db8::/64"])
    );
    let r = s.call(
        "DELETE",
        &format!("/ipv6/pools/{pool}?force=true"),
        Some(&a),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.wg_client(&a, client)["routed_prefixes"], json!([]));
}

// ---- restart ----

#[test]
fn allocations_survive_a_restart_and_the_allocator_is_rebuilt() {
    let (s, a) = Server::with_admin();
    let pool = s.pool_id(&a, "p", "2001:db8::/48");
    let wl = s.pool_id(&a, "w", "2001:db9::/48");
    let r = s.post(
        &format!("/ipv6/pools/{wl}/whitelist"),
        Some(&a),
        &json!({"prefix": "2001:db9:0:10::/63"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let held: Vec<Value> = (0..3)
        .map(|i| allocate(&s, &a, pool, json!({"client_name": format!("c{i}")})))
        .collect();
    assert_eq!(release(&s, &a, pool, id_of(&held[1])).status, 200);
    allocate(&s, &a, wl, json!({"client_name": "w0"}));

    let s = s.restart_with(Opts::default());
    let a = s.admin();
    assert_eq!(counts(&s, &a, pool), (65536, 2, 65534, 2));
    assert_eq!(
        counts(&s, &a, wl),
        (2, 1, 1, 1),
        "the whitelist is the space again"
    );
    let r = s.post(
        &format!("/ipv6/pools/{pool}/allocate"),
        Some(&a),
        &json!({"client_name": "c0"}),
    );
    assert_eq!((r.status, &r.data()["id"]), (200, &held[0]["id"]));
    let next = allocate(&s, &a, pool, json!({"client_name": "new"}));
    assert_eq!(
        prefix_of(&next),
        "2001:db8:0:1::/64",
        "the hole, not a duplicate"
    );
    let next = allocate(&s, &a, pool, json!({"client_name": "newer"}));
    assert_eq!(prefix_of(&next), "2001:db8:0:3::/64");
    assert_eq!(
        prefix_of(&allocate(&s, &a, wl, json!({"client_name": "w1"}))),
        "2001:db9:0:11::/64"
    );
}

// ---- the delegated prefix through a real tunnel (root only) ----

/// ipv6wgm in one namespace, wireguard-go configured from the client's `.conf` in another:
/// after the allocation the server's device and kernel route the delegated /64 into the
/// tunnel (a ping to an address inside it, configured on the client, is answered), and
/// after the release they no longer do. Skips with the reason unless root.
#[test]
fn a_delegated_prefix_is_routed_through_the_tunnel() {
    use common::netns::{self, WgGoPeer};
    let Some((srv_ns, cli_ns, _veth)) = netns::server_and_client(
        "v6p",
        [
            "10.231.0.1/24",
            "10.231.0.2/24",
            "fd23:1::1/64",
            "fd23:1::2/64",
        ],
    ) else {
        return;
    };
    let s = Server::start_in_netns(&srv_ns.name, None);
    let a = s.admin();
    let iface = format!("v6p{}", std::process::id() % 100_000);
    let server = id_of(&s.create_wg_server(
        &a,
        json!({"name": "pd", "interface": iface, "listen_port": 51891,
                "ipv6_address": "fd23:2::1/64", "endpoint": "10.231.0.1"}),
    ));
    let r = s.post(
        &format!("/wireguard/servers/{server}/start"),
        Some(&a),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}\n{}", r.body, s.stderr_text());
    let client = id_of(&s.create_client(
        &a,
        json!({"server_id": server, "name": "site", "allowed_ips": ["fd23:2::/64"],
                "persistent_keepalive": 5}),
    ));
    let pool = s.pool_id(&a, "delegated", "2001:db8:100::/48");
    let given = allocate(&s, &a, pool, json!({"client_id": client}));
    assert_eq!(prefix_of(&given), "2001:db8:100::/64");

    let allowed = srv_ns.run(&["wg", "show", &iface, "allowed-ips"]);
    assert!(allowed.contains("2001:db8:100::/64"), "{allowed}");
    let routes = srv_ns.run(&["ip", "-6", "route", "show", "dev", &iface]);
    assert!(routes.contains("2001:db8:100::/64"), "{routes}");

    // The client's router numbers its LAN from the delegated prefix.
    let r = s.call(
        "GET",
        &format!("/wireguard/clients/{client}/config?format=conf"),
        Some(&a),
        None,
    );
    assert_eq!(r.status, 200);
    let conf = String::from_utf8(r.raw_body.clone()).expect("utf-8");
    let conf = conf.replacen("Address = ", "Address = 2001:db8:100::1/64, ", 1);
    let wg = WgGoPeer::start(&cli_ns, &conf, &[]);
    assert!(
        netns::ping(&srv_ns, "2001:db8:100::1", 3, 15),
        "ping into the delegated prefix\n{}\n{}",
        wg.log(),
        s.stderr_text()
    );

    assert_eq!(release(&s, &a, pool, id_of(&given)).status, 200);
    let allowed = srv_ns.run(&["wg", "show", &iface, "allowed-ips"]);
    assert!(!allowed.contains("2001:db8:100::/64"), "{allowed}");
    let routes = srv_ns.run(&["ip", "-6", "route", "show", "dev", &iface]);
    assert!(!routes.contains("2001:db8:100::/64"), "{routes}");
    assert!(
        !netns::ping(&srv_ns, "2001:db8:100::1", 2, 3),
        "no route once released"
    );
    drop(wg);
}

#[test]
fn the_wireguard_side_respects_pools() {
    let (s, a) = Server::with_admin();
    let pool = s.pool_id(&a, "isp", "2001:db8:100::/48");
    // A server subnet inside a pool is a conflict.
    let r = s.post(
        "/wireguard/servers",
        Some(&a),
        &json!({"name": "bad", "ipv6_address": "2001:db8:100:ff::1/64"}),
    );
    r.assert_field_error(409, "RESOURCE_CONFLICT", "ipv6_address");
    let server = s.wg_server_id(&a, "wg", None, Some("fd00::1/64"));
    // A client cannot take a pool prefix by hand, on create or update.
    let r = s.post(
        "/wireguard/clients",
        Some(&a),
        &json!({"server_id": server, "name": "x", "routed_prefixes": ["2001:db8:100:5::/64"]}),
    );
    r.assert_field_error(409, "RESOURCE_CONFLICT", "routed_prefixes");
    let client = id_of(&s.create_client(&a, json!({"server_id": server, "name": "router"})));
    let path = format!("/wireguard/clients/{client}");
    let r = s.send(
        "PATCH",
        &path,
        Some(&a),
        &json!({"routed_prefixes": ["2001:db8:100:5::/64"]}),
    );
    r.assert_field_error(409, "RESOURCE_CONFLICT", "routed_prefixes");
    // Its allocation cannot be dropped by hand either; other prefixes can be added.
    let given = allocate(&s, &a, pool, json!({"client_id": client}));
    let r = s.send("PATCH", &path, Some(&a), &json!({"routed_prefixes": []}));
    r.assert_field_error(409, "RESOURCE_CONFLICT", "routed_prefixes");
    let r = s.send(
        "PATCH",
        &path,
        Some(&a),
        &json!({"routed_prefixes": [prefix_of(&given), "2001:db8:9::/48"]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}
