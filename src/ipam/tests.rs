//! The pool operations against an in-memory database, allocators included: the rules that
//! need rows, and that a failed transaction leaves the allocator as it was. The API tests
//! (`tests/ipv6_api.rs`) cover the rest through the binary.

use super::*;
use crate::ipam::error::tests::{code, ErrorCode};
use crate::store::wireguard::{ClientFields, ClientRow, ServerFields};
use ipnet::IpNet;

fn db() -> (Connection, Pools) {
    (crate::store::test_db(), Pools::default())
}

fn net(s: &str) -> Ipv6Net {
    s.parse().expect("net")
}

fn err<T: std::fmt::Debug>(r: Result<T>) -> (ErrorCode, String, String) {
    code(r.unwrap_err())
}

fn new_pool(name: &str, prefix: &str) -> NewPool {
    NewPool {
        name: name.into(),
        prefix: prefix.into(),
        ..Default::default()
    }
}

fn add_pool(c: &mut Connection, pools: &Pools, input: NewPool) -> Result<PoolView> {
    create_pool_in(c, pools, input, 1)
}

fn by_name(name: &str) -> AllocationInput {
    AllocationInput {
        client_id: None,
        client_name: Some(name.into()),
        description: None,
        prefix_length: None,
        prefix: None,
        auto_announce: None,
    }
}

fn give(c: &mut Connection, pools: &Pools, pool: i64, input: AllocationInput) -> Result<Allocated> {
    allocate_in(c, pools, PoolRef::Path(pool), input, 2)
}

fn wg_server(c: &Connection, v6: &str) -> i64 {
    let f = ServerFields {
        name: "s".into(),
        interface: "wg0".into(),
        description: None,
        listen_port: 51820,
        ipv4_address: None,
        ipv6_address: Some(v6.parse().expect("net")),
        dns_servers: vec![],
        mtu: 1420,
        endpoint: None,
        persistent_keepalive: None,
        is_active: false,
    };
    wgq::insert_server(c, &f, "priv", "pub", 1)
        .expect("server")
        .id
}

fn wg_client(c: &Connection, server: i64, name: &str, routed: &[&str]) -> ClientRow {
    let f = ClientFields {
        name: name.into(),
        description: None,
        enabled: true,
        preshared_key: None,
        ipv4_address: None,
        ipv6_address: None,
        allowed_ips: vec![],
        dns_servers: vec![],
        mtu: None,
        persistent_keepalive: None,
        routed_prefixes: routed.iter().map(|r| r.parse().expect("net")).collect(),
    };
    wgq::insert_client(c, server, &f, &format!("key-{name}"), None, 1).expect("client")
}

#[test]
fn pools_do_not_overlap_each_other_or_wireguard() {
    let (c, p) = &mut db();
    let a = add_pool(c, p, new_pool("a", "2001:db8::/32")).expect("a");
    assert_eq!((a.total_prefixes, a.available_prefixes), (1 << 32, 1 << 32));
    let cases = [
        (new_pool("b", "2001:db8:1::/48"), "prefix"),
        (new_pool("A", "2001:db9::/32"), "name"),
    ];
    for (input, field) in cases {
        let (code, f, _) = err(add_pool(c, p, input));
        assert_eq!((code, f.as_str()), (ErrorCode::Conflict, field));
    }
    let server = wg_server(c, "fd00::1/64");
    let (code, f, m) = err(add_pool(c, p, new_pool("c", "fd00::/48")));
    assert_eq!((code, f.as_str()), (ErrorCode::Conflict, "prefix"));
    assert!(m.contains("WireGuard server"), "{m}");
    wg_client(c, server, "site", &["2001:dba:5::/48"]);
    let (code, _, m) = err(add_pool(c, p, new_pool("d", "2001:dba::/32")));
    assert_eq!(code, ErrorCode::Conflict);
    assert!(m.contains("\"site\""), "{m}");
    assert_eq!(p.lock().len(), 1, "no allocator for refused pools");
}

#[test]
fn allocation_is_lowest_first_idempotent_and_released() {
    let (c, p) = &mut db();
    let pool = add_pool(c, p, new_pool("tiny", "2001:db8::/62")).expect("pool");
    let mut got = Vec::new();
    for i in 0..4 {
        let a = give(c, p, pool.id, by_name(&format!("c{i}"))).expect("alloc");
        assert!(a.created);
        got.push(a.allocation);
    }
    let prefixes: Vec<String> = got.iter().map(|a| a.prefix.to_string()).collect();
    assert_eq!(
        prefixes,
        [
            "2001:db8::/64",
            "2001:db8:0:1::/64",
            "2001:db8:0:2::/64",
            "2001:db8:0:3::/64"
        ]
    );
    let again = give(c, p, pool.id, by_name("C1")).expect("idempotent");
    assert_eq!((again.created, again.allocation.id), (false, got[1].id));
    let (code, f, m) = err(give(c, p, pool.id, by_name("c4")));
    assert_eq!(
        (code, f.as_str(), m.as_str()),
        (
            ErrorCode::Conflict,
            "pool_id",
            "no free /64 left in pool \"tiny\""
        )
    );
    let mut other = by_name("c0");
    other.prefix = Some(net("2001:db8:0:3::/64"));
    assert_eq!(
        err(give(c, p, pool.id, other)).1,
        "prefix",
        "c0 holds another"
    );
    let released = release_in_test(c, p, pool.id, got[2].id);
    assert_eq!(released.prefix, got[2].prefix);
    assert_eq!(p.counts(pool.id).available, 1);
    let reuse = give(c, p, pool.id, by_name("c5")).expect("reuse");
    assert_eq!(reuse.allocation.prefix, got[2].prefix);
}

fn release_in_test(c: &mut Connection, pools: &Pools, pool: i64, id: i64) -> AllocationRow {
    let tx = c.transaction().expect("tx");
    let a = q::get_allocation(&tx, id).expect("get").expect("exists");
    q::delete_allocation(&tx, id).expect("delete");
    tx.commit().expect("commit");
    pools.apply(Released(vec![(pool, a.prefix)]));
    a
}

#[test]
fn a_failed_transaction_leaves_the_allocator_as_it_was() {
    let (c, p) = &mut db();
    let pool = add_pool(c, p, new_pool("p", "2001:db8:100::/48")).expect("pool");
    let server = wg_server(c, "fd00::1/64");
    // Another client routes the pool's first /64 (set by hand through the WireGuard API,
    // which knows nothing of pools): allocating it for `cl` breaks the routed-prefix rule
    // after the allocator took it, so the transaction fails and the prefix must go back.
    let squatter = wg_client(c, server, "squatter", &[]);
    let cl = wg_client(c, server, "cl", &[]);
    {
        let tx = c.transaction().expect("tx");
        let mut f = fields(&squatter);
        f.routed_prefixes = vec!["2001:db8:100::/64".parse().expect("net")];
        wgq::update_client(&tx, squatter.id, &f, 1).expect("route");
        tx.commit().expect("commit");
    }
    let before = p.counts(pool.id);
    let mut req = by_name("x");
    req.client_id = Some(cl.id);
    let (code, field, _) = err(give(c, p, pool.id, req.clone()));
    assert_eq!((code, field.as_str()), (ErrorCode::Conflict, "prefix"));
    assert_eq!(p.counts(pool.id), before, "prefix given back");
    assert_eq!(
        q::list_allocations(c, &Default::default(), 10, 0)
            .expect("l")
            .1,
        0
    );
    // A specific free prefix works, and lands in the client's routed prefixes.
    req.prefix = Some(net("2001:db8:100:1::/64"));
    let ok = give(c, p, pool.id, req).expect("alloc");
    let (old, new) = ok.client.expect("routed");
    assert!(old.routed_prefixes.is_empty());
    assert_eq!(
        new.routed_prefixes,
        vec![IpNet::V6(net("2001:db8:100:1::/64"))]
    );
    assert_eq!(ok.allocation.client_name.as_deref(), Some("x"));
    let missing = AllocationInput {
        client_id: Some(999),
        ..by_name("y")
    };
    assert_eq!(err(give(c, p, pool.id, missing)).1, "client_id");
}

fn fields(c: &ClientRow) -> ClientFields {
    ClientFields {
        name: c.name.clone(),
        description: None,
        enabled: c.enabled,
        preshared_key: None,
        ipv4_address: c.ipv4_address,
        ipv6_address: c.ipv6_address,
        allowed_ips: c.allowed_ips.clone(),
        dns_servers: vec![],
        mtu: None,
        persistent_keepalive: None,
        routed_prefixes: c.routed_prefixes.clone(),
    }
}

#[test]
fn sizes_change_only_while_empty_and_disabled_pools_refuse() {
    let (c, p) = &mut db();
    let pool = add_pool(c, p, new_pool("p", "2001:db8::/48")).expect("pool");
    let grow = |max| PoolChanges {
        max_prefix_length: Some(max),
        ..Default::default()
    };
    let v = update_pool_in(c, p, pool.id, grow(128), 3).expect("empty pool");
    assert_eq!((v.min_prefix_length, v.max_prefix_length), (64, 128));
    let mut small = by_name("a");
    small.prefix_length = Some(128);
    let a = give(c, p, pool.id, small).expect("a /128");
    assert_eq!(a.allocation.prefix, net("2001:db8::/128"));
    assert_eq!(p.counts(pool.id).available, 65535, "its /64 is in use");
    let (code, f, _) = err(update_pool_in(c, p, pool.id, grow(120), 3));
    assert_eq!((code, f.as_str()), (ErrorCode::Conflict, "prefix_length"));
    let off = PoolChanges {
        status: Some("disabled".into()),
        ..Default::default()
    };
    update_pool_in(c, p, pool.id, off, 4).expect("disable");
    let (code, f, _) = err(give(c, p, pool.id, by_name("b")));
    assert_eq!((code, f.as_str()), (ErrorCode::Conflict, "pool_id"));
    assert!(
        !give(c, p, pool.id, by_name("a")).expect("held").created,
        "an existing allocation is still answered"
    );
    let (code, f, _) = err(delete_pool_in(c, p, pool.id, false, 5));
    assert_eq!((code, f.as_str()), (ErrorCode::Conflict, "force"));
    assert_eq!(delete_pool_in(c, p, pool.id, true, 5).expect("forced").0, 1);
    assert!(p.lock().is_empty());
}

#[test]
fn announced_allocations_come_from_announcing_pools_only() {
    let (mut c, pools) = db();
    let on = add_pool(
        &mut c,
        &pools,
        NewPool {
            auto_announce_bgp: Some(true),
            ..new_pool("on", "2001:db8:100::/48")
        },
    )
    .expect("pool");
    let off = add_pool(&mut c, &pools, new_pool("off", "2001:db8:200::/48")).expect("pool");
    for (pool, name) in [(on.id, "a"), (off.id, "b")] {
        let input = AllocationRequest {
            client_name: Some(name.into()),
            ..Default::default()
        }
        .validate()
        .expect("input");
        allocate_in(&mut c, &pools, PoolRef::Path(pool), input, 1).expect("allocate");
    }
    let rows = crate::store::ipam::announced_allocations(&c).expect("query");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].0, rows[0].2), (on.id, net("2001:db8:100::/64")));
    let all = crate::store::ipam::all_pools(&c).expect("pools");
    let plan = crate::bgp::originations::plan(&all, &rows);
    let prefixes: Vec<Ipv6Net> = plan.iter().map(|o| o.prefix).collect();
    assert_eq!(
        prefixes,
        vec![net("2001:db8:100::/48"), net("2001:db8:100::/64")]
    );
}

/// Records what the bus publishes.
#[derive(Default)]
struct Published(std::sync::Mutex<Vec<Change>>);

impl crate::changes::Applier for Published {
    fn apply<'a>(&'a self, change: &'a Change) -> crate::sync::BoxFuture<'a, ()> {
        Box::pin(async move { crate::sync::lock(&self.0).push(change.clone()) })
    }
    fn reconcile_all(&self) -> crate::sync::BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[tokio::test]
async fn the_service_publishes_what_it_committed_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db"), &dir.path().join("logs")).expect("store");
    let bus = Bus::default();
    let seen = Arc::new(Published::default());
    bus.add_applier(seen.clone());
    let svc = Service::new(store.clone(), Pools::default(), bus, Arc::default(), 0);
    let taken = |seen: &Published| std::mem::take(&mut *crate::sync::lock(&seen.0));

    let pool = svc
        .create_pool(new_pool("p", "2001:db8::/63"))
        .await
        .expect("pool");
    assert_eq!(
        taken(&seen),
        [Change::Pool {
            id: pool.id,
            op: Op::Added
        }]
    );
    let (server, client) = store
        .call(|c| {
            let s = wg_server(c, "fd00::1/64");
            Ok((s, wg_client(c, s, "site", &[])))
        })
        .await
        .expect("wireguard rows");
    let mut input = by_name("site");
    input.client_id = Some(client.id);
    let a = svc
        .allocate(PoolRef::Path(pool.id), input.clone())
        .await
        .expect("allocate");
    let id = a.allocation.id;
    let routed = Some((server, client.id));
    let added = Change::Allocation {
        pool_id: pool.id,
        id,
        client: routed,
        op: Op::Added,
    };
    assert_eq!(taken(&seen), [added]);
    // Asking again changes nothing; a refusal commits nothing: neither is published.
    svc.allocate(PoolRef::Path(pool.id), input)
        .await
        .expect("idempotent");
    svc.update_pool(
        pool.id,
        PoolChanges {
            prefix_length: Some(60),
            ..Default::default()
        },
    )
    .await
    .expect_err("sizes are fixed while allocations are held");
    assert_eq!(taken(&seen), []);
    svc.delete_pool(pool.id, true).await.expect("forced");
    let removed = Change::Allocation {
        pool_id: pool.id,
        id,
        client: routed,
        op: Op::Removed,
    };
    assert_eq!(
        taken(&seen),
        [
            removed,
            Change::Pool {
                id: pool.id,
                op: Op::Removed
            }
        ]
    );
    store.close().await;
}
