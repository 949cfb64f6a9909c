//! Refused requests without a principal (bad or missing token, failed logins), summed up per
//! source address so that a stranger cannot fill the log store. Pure: the caller passes the
//! time.
//!
//! The first refusal from an address in a window of [`WINDOW_SECS`] is logged at once, in
//! full; the rest of that window are only counted, and when the window ends one summary entry
//! says "N refused requests from ADDR in the last minute", with the last request, how many
//! were failed logins and the first few usernames tried (clipped). An address thus costs at
//! most two entries a minute, however fast it sends.
//!
//! Bounded: at most [`CAPACITY`] addresses are tracked (IPv6 by /64, as the login limiter
//! does: a /64 is one client's to rotate through). When a new address finds the table full,
//! windows that have ended are summed up first; then the oldest window is folded into one
//! "other addresses" tally and the newcomer is counted, not logged: rotating through
//! addresses buys no entries either.

use crate::store::logs::LogEntry;
use std::collections::HashMap;
use std::net::IpAddr;

pub const WINDOW_SECS: i64 = 60;
pub const CAPACITY: usize = 256;
/// Usernames of failed logins named in one summary, and their length.
const USERNAMES: usize = 8;
const USERNAME_CHARS: usize = 32;
/// Of the last request's path in a summary.
const PATH_CHARS: usize = 256;

/// The refusals of one address (or of the evicted ones) in one window.
#[derive(Debug)]
struct Tally {
    start: i64,
    /// Refusals not logged one by one.
    count: u64,
    failed_logins: u64,
    usernames: Vec<String>,
    /// The last refusal counted (path clipped, message dropped).
    last: Option<LogEntry>,
    /// Addresses folded in (the "other addresses" tally only).
    addresses: u64,
}

impl Tally {
    fn new(start: i64) -> Tally {
        Tally {
            start,
            count: 0,
            failed_logins: 0,
            usernames: Vec::new(),
            last: None,
            addresses: 0,
        }
    }

    fn add(&mut self, mut e: LogEntry) {
        self.count += 1;
        if e.action == "auth.login" {
            self.failed_logins += 1;
            if let Some(u) = e.username.take() {
                self.name(clip(&u, USERNAME_CHARS));
            }
        }
        e.message = String::new();
        e.target = None;
        e.path = e.path.map(|p| clip(&p, PATH_CHARS));
        self.last = Some(e);
    }

    fn name(&mut self, u: String) {
        if self.usernames.len() < USERNAMES && !self.usernames.contains(&u) {
            self.usernames.push(u);
        }
    }

    fn fold(&mut self, other: Tally) {
        self.count += other.count;
        self.failed_logins += other.failed_logins;
        for u in other.usernames {
            self.name(u);
        }
        if other.last.is_some() {
            self.last = other.last;
        }
        self.addresses += 1;
    }

    /// The entry that sums this window up, `None` when there is nothing to say.
    fn summary(self, now: i64, others: Option<usize>) -> Option<LogEntry> {
        let last = self.last?;
        if self.count == 0 {
            return None;
        }
        let ip = last
            .ip
            .clone()
            .unwrap_or_else(|| "an unknown address".into());
        let from = match others {
            None => ip,
            Some(capacity) => format!(
                "{} other addresses (more than {capacity} at once; the last {ip})",
                self.addresses
            ),
        };
        let method = last.method.clone().unwrap_or_default();
        let path = last.path.clone().unwrap_or_default();
        let status = last.status.unwrap_or_default();
        let mut message = format!(
            "{} refused requests from {from} in the last minute; the last: {method} {path} -> {status}",
            self.count
        );
        if self.failed_logins > 0 {
            let names: Vec<String> = self.usernames.iter().map(|u| format!("{u:?}")).collect();
            message.push_str(&format!(
                "; {} failed logins, as {}",
                self.failed_logins,
                names.join(", ")
            ));
        }
        let mut details = serde_json::json!({
            "count": self.count,
            "failed_logins": self.failed_logins,
            "usernames": self.usernames,
            "window_start": crate::time::rfc3339(self.start),
            "window_secs": WINDOW_SECS,
            "last_method": method,
            "last_path": path,
            "last_status": status,
        });
        if others.is_some() {
            details["addresses"] = self.addresses.into();
        }
        Some(LogEntry {
            ts: now,
            level: "WARNING",
            module: "auth".into(),
            action: "auth.refused".into(),
            message,
            user_id: None,
            username: None,
            ip: last.ip,
            user_agent: last.user_agent,
            method: last.method,
            path: last.path,
            target: None,
            status: last.status,
            details: Some(details),
        })
    }
}

pub struct Refused {
    capacity: usize,
    window: i64,
    tallies: HashMap<IpAddr, Tally>,
    others: Option<Tally>,
}

impl Default for Refused {
    fn default() -> Self {
        Refused::new(CAPACITY, WINDOW_SECS)
    }
}

impl Refused {
    pub fn new(capacity: usize, window_secs: i64) -> Refused {
        Refused {
            capacity: capacity.max(1),
            window: window_secs.max(1),
            tallies: HashMap::new(),
            others: None,
        }
    }

    /// A refused request without a principal, `e` being its audit entry, at `now`. Returns
    /// the entries to write now: `e` itself when it opens its address's window, a summary
    /// when it finds that address's last window over, or nothing (it was counted).
    pub fn refuse(&mut self, e: LogEntry, now: i64) -> Vec<LogEntry> {
        let key = key(e.ip.as_deref());
        let mut out = Vec::new();
        if let Some(t) = self.tallies.get_mut(&key) {
            if now < t.start + self.window {
                t.add(e);
                return out;
            }
            if let Some(t) = self.tallies.remove(&key) {
                out.extend(t.summary(now, None));
            }
        }
        if self.tallies.len() >= self.capacity {
            out.extend(self.due(now));
        }
        if self.tallies.len() >= self.capacity {
            self.evict_oldest(now);
            let mut t = Tally::new(now);
            t.add(e);
            self.tallies.insert(key, t);
            return out;
        }
        self.tallies.insert(key, Tally::new(now));
        out.push(e);
        out
    }

    /// Summaries of the windows over by `now`, oldest first; their addresses are forgotten.
    pub fn due(&mut self, now: i64) -> Vec<LogEntry> {
        let window = self.window;
        let over: Vec<IpAddr> = self
            .tallies
            .iter()
            .filter(|(_, t)| now >= t.start + window)
            .map(|(k, _)| *k)
            .collect();
        let mut ended: Vec<Tally> = over.iter().filter_map(|k| self.tallies.remove(k)).collect();
        ended.sort_by_key(|t| t.start);
        let mut out: Vec<LogEntry> = ended
            .into_iter()
            .filter_map(|t| t.summary(now, None))
            .collect();
        if self
            .others
            .as_ref()
            .is_some_and(|o| now >= o.start + window)
        {
            out.extend(self.others_summary(now));
        }
        out
    }

    /// Summaries of every window, over or not (the service is stopping).
    pub fn drain(&mut self, now: i64) -> Vec<LogEntry> {
        let mut all: Vec<Tally> = self.tallies.drain().map(|(_, t)| t).collect();
        all.sort_by_key(|t| t.start);
        let mut out: Vec<LogEntry> = all
            .into_iter()
            .filter_map(|t| t.summary(now, None))
            .collect();
        out.extend(self.others_summary(now));
        out
    }

    /// Addresses tracked now (at most the capacity).
    pub fn tracked(&self) -> usize {
        self.tallies.len()
    }

    fn others_summary(&mut self, now: i64) -> Option<LogEntry> {
        self.others.take()?.summary(now, Some(self.capacity))
    }

    fn evict_oldest(&mut self, now: i64) {
        let oldest = self
            .tallies
            .iter()
            .min_by_key(|(_, t)| t.start)
            .map(|(k, _)| *k);
        if let Some(t) = oldest.and_then(|k| self.tallies.remove(&k)) {
            self.others.get_or_insert_with(|| Tally::new(now)).fold(t);
        }
    }
}

/// The address a refusal is counted under: IPv4 as is, IPv6 by its /64.
fn key(ip: Option<&str>) -> IpAddr {
    match ip.and_then(|s| s.parse::<IpAddr>().ok()) {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::from(o)
            }
        },
        Some(v4) => v4,
        None => IpAddr::from([0u8; 4]),
    }
}

fn clip(s: &str, chars: usize) -> String {
    match s.char_indices().nth(chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(ip: &str, path: &str) -> LogEntry {
        LogEntry {
            ts: 0,
            level: "WARNING",
            module: "users".into(),
            action: "users.delete".into(),
            message: format!("DELETE {path} -> 401 (UNAUTHORIZED: missing bearer token)"),
            user_id: None,
            username: None,
            ip: Some(ip.into()),
            user_agent: Some("curl".into()),
            method: Some("DELETE".into()),
            path: Some(path.into()),
            target: None,
            status: Some(401),
            details: None,
        }
    }

    fn failed_login(ip: &str, username: &str) -> LogEntry {
        LogEntry {
            module: "auth".into(),
            action: "auth.login".into(),
            method: Some("POST".into()),
            username: Some(username.into()),
            ..refusal(ip, "/api/v1/auth/login")
        }
    }

    #[test]
    fn first_refusal_is_logged_then_the_window_is_summed_up() {
        let mut r = Refused::new(4, 60);
        let first = refusal("192.0.2.1", "/api/v1/users/1");
        assert_eq!(r.refuse(first.clone(), 1000), vec![first]);
        for i in 2..=500 {
            let out = r.refuse(
                refusal("192.0.2.1", &format!("/api/v1/users/{i}")),
                1000 + i / 10,
            );
            assert!(out.is_empty(), "counted, not written");
        }
        assert!(r.due(1059).is_empty(), "the window is not over");
        let s = r.due(1060);
        assert_eq!(s.len(), 1);
        let s = &s[0];
        assert_eq!(
            s.message,
            "499 refused requests from 192.0.2.1 in the last minute; the last: DELETE \
             /api/v1/users/500 -> 401"
        );
        assert_eq!(
            (s.level, s.action.as_str(), s.ts, s.status),
            ("WARNING", "auth.refused", 1060, Some(401))
        );
        let d = s.details.as_ref().expect("details");
        assert_eq!(d["count"], 499);
        assert_eq!(d["window_start"], crate::time::rfc3339(1000));
        assert_eq!(r.tracked(), 0, "the address is forgotten");
        // The next window starts again with one entry in full.
        assert_eq!(r.refuse(refusal("192.0.2.1", "/x"), 1061).len(), 1);
    }

    #[test]
    fn a_window_found_over_is_summed_up_at_once() {
        let mut r = Refused::new(4, 60);
        r.refuse(refusal("192.0.2.1", "/a"), 0);
        r.refuse(refusal("192.0.2.1", "/b"), 10);
        let out = r.refuse(refusal("192.0.2.1", "/c"), 70);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[0]
            .message
            .starts_with("1 refused requests from 192.0.2.1"));
        assert_eq!(out[1].path.as_deref(), Some("/c"));
        // A window with nothing beyond its first entry leaves no summary.
        assert!(r.due(200).is_empty());
    }

    #[test]
    fn failed_logins_name_a_few_clipped_usernames() {
        let mut r = Refused::new(4, 60);
        r.refuse(failed_login("192.0.2.9", "first"), 0);
        let long = "u".repeat(64);
        for i in 0..20 {
            let name = if i == 0 {
                long.clone()
            } else {
                format!("user{}", i % 12)
            };
            r.refuse(failed_login("192.0.2.9", &name), 1);
        }
        r.refuse(refusal("192.0.2.9", "/api/v1/users"), 2);
        let s = r.drain(3).pop().expect("summary");
        let d = s.details.expect("details");
        assert_eq!(
            (d["count"].as_u64(), d["failed_logins"].as_u64()),
            (Some(21), Some(20))
        );
        let names = d["usernames"].as_array().expect("names");
        assert_eq!(names.len(), USERNAMES);
        assert_eq!(names[0], format!("{}…", "u".repeat(USERNAME_CHARS)));
        assert!(
            s.message.contains("20 failed logins, as \"uuu"),
            "{}",
            s.message
        );
        assert_eq!(s.username, None);
    }

    #[test]
    fn paths_and_names_are_quoted_and_clipped() {
        let mut r = Refused::new(4, 60);
        r.refuse(refusal("192.0.2.1", "/a"), 0);
        r.refuse(failed_login("192.0.2.1", "x\", \"admin\nforged"), 1);
        r.refuse(refusal("192.0.2.1", &format!("/{}", "p".repeat(5000))), 2);
        let s = r.drain(3).pop().expect("summary");
        assert!(
            s.message.contains(r#""x\", \"admin\nforged""#),
            "{}",
            s.message
        );
        assert!(!s.message.contains('\n'));
        assert!(s.path.expect("path").chars().count() <= PATH_CHARS + 1);
    }

    #[test]
    fn ipv6_is_counted_by_its_64_and_ipv4_mapped_as_ipv4() {
        let mut r = Refused::new(4, 60);
        assert_eq!(r.refuse(refusal("2001:db8:1:2::1", "/a"), 0).len(), 1);
        assert!(r.refuse(refusal("2001:db8:1:2::ffff", "/a"), 0).is_empty());
        assert_eq!(r.refuse(refusal("2001:db8:1:3::1", "/a"), 0).len(), 1);
        assert_eq!(r.refuse(refusal("::ffff:192.0.2.1", "/a"), 0).len(), 1);
        assert!(r.refuse(refusal("192.0.2.1", "/a"), 0).is_empty());
        assert_eq!(r.tracked(), 3);
    }

    #[test]
    fn a_full_table_folds_the_oldest_into_other_addresses() {
        let mut r = Refused::new(3, 60);
        for (i, ip) in ["192.0.2.1", "192.0.2.2", "192.0.2.3"].iter().enumerate() {
            assert_eq!(r.refuse(refusal(ip, "/a"), i as i64).len(), 1);
            r.refuse(refusal(ip, "/b"), i as i64);
        }
        // Rotating through new addresses: each is counted, none written, the table stays full.
        for i in 0..1000 {
            let ip = format!("198.51.{}.{}", i / 250, i % 250);
            assert!(r.refuse(refusal(&ip, "/c"), 10).is_empty(), "{ip}");
            assert_eq!(r.tracked(), 3);
        }
        let out = r.due(70);
        let others = out
            .iter()
            .find(|e| e.message.contains("other addresses"))
            .expect("others summary");
        let d = others.details.as_ref().expect("details");
        // The three first addresses' counted refusal each, and 997 newcomers evicted in turn.
        assert_eq!(d["count"], 3 + 997);
        assert_eq!(d["addresses"], 1000);
        assert!(
            others.message.starts_with(
                "1000 refused requests from 1000 other addresses (more than 3 at once; the last \
                 198.51."
            ),
            "{}",
            others.message
        );
        // The three still in the table are summed up on their own.
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!(r.tracked(), 0);
    }

    #[test]
    fn a_full_table_first_sums_up_ended_windows() {
        let mut r = Refused::new(2, 60);
        r.refuse(refusal("192.0.2.1", "/a"), 0);
        r.refuse(refusal("192.0.2.1", "/b"), 1);
        r.refuse(refusal("192.0.2.2", "/a"), 30);
        let out = r.refuse(refusal("192.0.2.3", "/a"), 61);
        assert_eq!(out.len(), 2, "summary of .1, then .3 in full: {out:?}");
        assert!(out[0]
            .message
            .starts_with("1 refused requests from 192.0.2.1"));
        assert_eq!(out[1].ip.as_deref(), Some("192.0.2.3"));
        assert!(
            r.drain(62).is_empty(),
            ".2 and .3 had nothing beyond their first"
        );
    }
}
