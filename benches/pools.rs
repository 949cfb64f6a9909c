//! `cargo bench --bench pools` — the prefix-pool and RPKI figures BENCHMARKS.md asks for:
//!
//! 1. 1,000,000 /64 allocations from a /32 pool through the service's own path
//!    (`ipam::Service::allocate`: validation, allocator, SQLite transaction on the database thread),
//!    in a temporary data dir: time, allocations/s, RSS before and after.
//! 2. The allocator alone for the same million.
//! 3. A 500,000-VRP table (400k IPv4, 100k IPv6, random prefixes): build time, entry
//!    memory, RSS growth, and RFC 6811 lookups/s for random routes.
//!
//! `ALLOCATIONS=…` and `VRPS=…` change the sizes.

use ipv6wgm::ipam::alloc::Allocator;
use ipv6wgm::ipam::{AllocationRequest, NewPool, PoolRef};
use ipv6wgm::rpki::vrp::{Vrp, VrpTable};
use std::net::IpAddr;
use std::time::Instant;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn xorshift(mut s: u64) -> impl FnMut() -> u64 {
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

fn main() {
    let n_alloc = env_usize("ALLOCATIONS", 1_000_000);
    let n_vrps = env_usize("VRPS", 500_000);
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // 2. The allocator alone.
    let mut a = Allocator::new(&["2001:db8::/32".parse().expect("pool")], 64, 64, 64);
    let r0 = rss_kib();
    let t = Instant::now();
    for _ in 0..n_alloc {
        a.allocate(64).expect("allocate");
    }
    let dt = t.elapsed();
    println!(
        "allocator alone: {n_alloc} /64 from a /32 in {:.2} s ({:.0}/s), RSS +{} KiB, {} free left",
        dt.as_secs_f64(),
        n_alloc as f64 / dt.as_secs_f64(),
        rss_kib().saturating_sub(r0),
        a.available()
    );
    drop(a);

    // 1. Through the service's path, with SQLite.
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let config = ipv6wgm::config::Config {
            data_dir: dir.path().join("data"),
            ..Default::default()
        };
        std::env::set_var("IPV6WGM_ADMIN_PASSWORD", "bench-admin-password");
        let app = ipv6wgm::app::App::open(config).await.expect("open");
        let pool = app
            .ipam
            .create_pool(NewPool {
                name: "bench".into(),
                prefix: "2001:db8::/32".into(),
                prefix_length: Some(64),
                ..Default::default()
            })
            .await
            .expect("pool");
        let r0 = rss_kib();
        let t = Instant::now();
        for i in 0..n_alloc {
            let input = AllocationRequest {
                client_name: Some(format!("c{i}")),
                ..Default::default()
            }
            .validate()
            .expect("input");
            app.ipam
                .allocate(PoolRef::Path(pool.id), input)
                .await
                .expect("allocate");
        }
        let dt = t.elapsed();
        let db = std::fs::metadata(dir.path().join("data/ipv6wgm.db")).map_or(0, |m| m.len());
        println!(
            "service path: {n_alloc} /64 allocations from a /32 (one SQLite transaction each) in {:.1} s ({:.0}/s); RSS {} → {} KiB; database {:.1} MiB",
            dt.as_secs_f64(),
            n_alloc as f64 / dt.as_secs_f64(),
            r0,
            rss_kib(),
            db as f64 / 1048576.0
        );
        app.store.close().await;
    });
    drop(rt);

    // 3. The VRP table.
    let mut rnd = xorshift(0x5eed_1234_abcd_0001);
    let mut vrps = Vec::with_capacity(n_vrps);
    for i in 0..n_vrps {
        let v = if i % 5 == 4 {
            let len = 29 + (rnd() % 20) as u8; // /29../48
            let addr = (0x2000u128 << 112) | (u128::from(rnd()) << 64);
            Vrp {
                prefix: ipnet::IpNet::new(IpAddr::V6(addr.into()), len)
                    .expect("net")
                    .trunc(),
                max_length: len + (rnd() % 8) as u8,
                asn: 64512 + (rnd() % 50_000) as u32,
            }
        } else {
            let len = 8 + (rnd() % 17) as u8; // /8../24
            let addr = (rnd() as u32) | 0x0100_0000;
            Vrp {
                prefix: ipnet::IpNet::new(IpAddr::V4(addr.into()), len)
                    .expect("net")
                    .trunc(),
                max_length: len + (rnd() % 4) as u8,
                asn: 64512 + (rnd() % 50_000) as u32,
            }
        };
        vrps.push(v);
    }
    let r0 = rss_kib();
    let t = Instant::now();
    let table = VrpTable::new(vrps);
    let build = t.elapsed();
    let rss = rss_kib();
    let lookups = 1_000_000usize;
    let routes: Vec<(ipnet::IpNet, u32)> = (0..lookups)
        .map(|i| {
            let asn = 64512 + (rnd() % 50_000) as u32;
            if i % 5 == 4 {
                let addr = (0x2000u128 << 112) | (u128::from(rnd()) << 64);
                (
                    ipnet::IpNet::new(IpAddr::V6(addr.into()), 48)
                        .expect("net")
                        .trunc(),
                    asn,
                )
            } else {
                let addr = (rnd() as u32) | 0x0100_0000;
                (
                    ipnet::IpNet::new(IpAddr::V4(addr.into()), 24)
                        .expect("net")
                        .trunc(),
                    asn,
                )
            }
        })
        .collect();
    let t = Instant::now();
    let mut found = 0usize;
    for (route, asn) in &routes {
        if table.validate(*route, *asn).vrp.is_some() {
            found += 1;
        }
    }
    let dt = t.elapsed();
    println!(
        "VRP table: {} VRPs built in {:.2} s; entries {:.1} MiB; process RSS with the input list {} KiB, with the table {} KiB ({:+.1} MiB)",
        table.len(),
        build.as_secs_f64(),
        table.memory() as f64 / 1048576.0,
        r0,
        rss,
        (rss as f64 - r0 as f64) / 1024.0
    );
    println!(
        "RFC 6811 lookups: {lookups} random /24 and /48 routes in {:.2} s = {:.0} lookups/s ({found} had a covering VRP)",
        dt.as_secs_f64(),
        lookups as f64 / dt.as_secs_f64()
    );
}
