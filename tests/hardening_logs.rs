//! The log store's size bound under a flood (issue 12, item 4): `logs.db` + `logs.db-wal`
//! stay within `logs.max_size_mb` at every sample while thousands of audited requests with
//! long paths and user agents arrive from several threads, the API keeps answering, and
//! refused unauthenticated requests are summed up per address instead of written one by one.

mod common;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BOUND_MB: u64 = 1;
const THREADS: usize = 4;

fn start() -> Server {
    Server::configured(&format!("[logs]\nmax_size_mb = {BOUND_MB}\n"))
}

/// Bytes of the log database and its WAL right now (a file that does not exist counts 0).
fn log_files_bytes(data: &Path) -> u64 {
    let run = data.join("run");
    ["logs.db", "logs.db-wal"]
        .iter()
        .map(|f| std::fs::metadata(run.join(f)).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Samples the two files' size until `done`; returns the samples taken and the largest.
fn sample_sizes(dir: PathBuf, done: Arc<AtomicBool>) -> std::thread::JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        let (mut n, mut peak) = (0u64, 0u64);
        while !done.load(Ordering::Relaxed) {
            peak = peak.max(log_files_bytes(&dir));
            n += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        peak = peak.max(log_files_bytes(&dir));
        (n + 1, peak)
    })
}

/// Sends `requests` on one keep-alive connection (reconnecting if the server closes it) and
/// returns the statuses seen.
fn flood(
    s: &Server,
    requests: impl Iterator<Item = (String, String, Vec<String>, String)>,
) -> Vec<u16> {
    let mut conn: Option<TcpStream> = None;
    let mut statuses = Vec::new();
    for (method, path, headers, body) in requests {
        let s_conn = conn.get_or_insert_with(|| {
            let c = s.connect();
            c.set_read_timeout(Some(Duration::from_secs(30)))
                .expect("timeout");
            c
        });
        let mut head = format!(
            "{method} /api/v1{path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n",
            body.len()
        );
        for h in &headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        head.push_str(&body);
        s_conn.write_all(head.as_bytes()).expect("write");
        let r = read_response(s_conn);
        if r.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            conn = None;
        }
        statuses.push(r.status);
    }
    statuses
}

/// While the flood runs: `/status/live` answers; returns the slowest answer.
fn probe_liveness(s: Arc<Server>, done: Arc<AtomicBool>) -> std::thread::JoinHandle<Duration> {
    std::thread::spawn(move || {
        let mut slowest = Duration::ZERO;
        while !done.load(Ordering::Relaxed) {
            let t = Instant::now();
            let r = s.get("/status/live", None);
            assert_eq!(r.status, 200, "{}", r.body);
            slowest = slowest.max(t.elapsed());
            std::thread::sleep(Duration::from_millis(20));
        }
        slowest
    })
}

fn long_agent(t: usize) -> String {
    format!("User-Agent: flood-{t}-{}", "A".repeat(400))
}

/// Runs `make(thread, i)` requests from [`THREADS`] threads while sampling the file sizes
/// and probing liveness; asserts the bound at every sample and returns (requests, peak).
fn flood_and_measure(
    s: &Arc<Server>,
    per_thread: usize,
    make: impl Fn(usize, usize) -> (String, String, Vec<String>, String) + Send + Sync + 'static,
) -> (u64, u64) {
    let bound = BOUND_MB << 20;
    let done = Arc::new(AtomicBool::new(false));
    let sampler = sample_sizes(s.data_dir(), done.clone());
    let prober = probe_liveness(s.clone(), done.clone());
    let make = Arc::new(make);
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (s, make) = (s.clone(), make.clone());
            std::thread::spawn(move || flood(&s, (0..per_thread).map(|i| make(t, i))))
        })
        .collect();
    let mut statuses = Vec::new();
    for w in workers {
        statuses.extend(w.join().expect("flood thread"));
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let (samples, peak) = sampler.join().expect("sampler");
    let slowest = prober.join().expect("liveness probe");
    let n = statuses.len() as u64;
    println!(
        "flood: {n} requests in {:.2}s ({:.0}/s); log files peak {peak} bytes over {samples} \
         samples (bound {bound}); slowest /status/live {:.1} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        slowest.as_secs_f64() * 1000.0
    );
    assert!(
        statuses.iter().all(|s| (400..500).contains(s)),
        "every flood request is refused"
    );
    assert!(
        peak <= bound,
        "logs.db + WAL reached {peak} bytes against a bound of {bound}"
    );
    assert!(slowest < Duration::from_secs(5), "API stalled {slowest:?}");
    (n, peak)
}

/// A path of ~1 KiB on a known mutating route (audited).
fn long_user_path(t: usize, i: usize) -> String {
    format!("/users/{t}x{i}{}", "9".repeat(1000))
}

#[test]
fn refused_unauthenticated_flood_is_summed_up_and_files_stay_within_bound() {
    let s = Arc::new(start());
    let (n, _) = flood_and_measure(&s, 1200, |t, i| {
        if t == 0 && i % 4 == 0 {
            // Failed logins (then 429s once the limiter blocks the address).
            let body = format!(r#"{{"username":"guess{i}","password":"wrong-password"}}"#);
            let headers = vec![long_agent(t), "Content-Type: application/json".into()];
            ("POST".into(), "/auth/login".into(), headers, body)
        } else {
            let headers = vec![long_agent(t), "Authorization: Bearer not-a-token".into()];
            (
                "DELETE".into(),
                long_user_path(t, i),
                headers,
                String::new(),
            )
        }
    });
    let (dir, data) = (s.dir.clone(), s.data_dir());
    let s = Arc::into_inner(s).expect("one owner");
    assert!(s.stop().success());
    // Summaries still open at stop are written on the way out.
    let db = open_logs_db(&data);
    let immediate: u64 = db
        .query_row(
            "SELECT count(*) FROM entries WHERE ip = '127.0.0.1' AND user_id IS NULL \
             AND status >= 400 AND action != 'auth.refused'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .expect("count") as u64;
    let summaries: Vec<(String, serde_json::Value)> = db
        .prepare("SELECT message, details FROM entries WHERE action = 'auth.refused' ORDER BY id")
        .expect("prepare")
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .expect("query")
        .map(|r| {
            let (m, d) = r.expect("row");
            (m, serde_json::from_str(&d).expect("details"))
        })
        .collect();
    // One summary per address and minute, plus the first refusal of each minute in full.
    assert!(
        !summaries.is_empty() && immediate <= summaries.len() as u64 + 1,
        "{immediate} single entries, {} summaries for {n} refused requests",
        summaries.len()
    );
    let summed: u64 = summaries
        .iter()
        .map(|(_, d)| d["count"].as_u64().expect("count"))
        .sum();
    assert_eq!(
        summed + immediate,
        n,
        "every refused request is counted once"
    );
    let (message, details) = summaries.last().expect("a summary");
    let count = details["count"].as_u64().expect("count");
    assert!(
        message.starts_with(&format!("{count} refused requests from 127.0.0.1")),
        "{message}"
    );
    let tried = details["usernames"].as_array().expect("usernames tried");
    assert!(!tried.is_empty() && tried.len() <= 8, "{details}");
    assert!(details["failed_logins"].as_u64().expect("failed logins") > 0);
    assert!(details["last_path"].as_str().expect("path").len() <= 260);
    drop(dir);
}

#[test]
fn authenticated_flood_keeps_log_files_within_bound() {
    let s = Arc::new(start());
    let admin = s.admin();
    let token = format!("Authorization: Bearer {admin}");
    // ~4 MB of entries against the 1 MiB bound (each one costs WAL checkpoints: fsyncs).
    let (n, _) = flood_and_measure(&s, 400, move |t, i| {
        let headers = vec![long_agent(t), token.clone()];
        (
            "DELETE".into(),
            long_user_path(t, i),
            headers,
            String::new(),
        )
    });
    // Audited one by one, and the newest entries are the ones kept.
    let r = s.get("/logs?size=1&search=users", Some(&admin));
    assert_eq!(r.status, 200, "{}", r.body);
    let newest = &r.data()["logs"][0];
    assert_eq!(newest["action"], "users.delete", "{newest}");
    assert_eq!(newest["status"], 422);
    let total = s.get("/logs?size=1", Some(&admin)).data()["pagination"]["total"]
        .as_u64()
        .expect("total");
    assert!(total > 50 && total < n, "{total} entries kept of {n}");
    assert!(log_files_bytes(&s.data_dir()) <= BOUND_MB << 20);
}
