//! Rate limiters. Pure: the caller passes the time, so tests use a fake clock. Bounded: at
//! most `CAPACITY` callers are tracked each.
//!
//! - [`LoginLimiter`]: failed logins per source address; when full, expired windows are
//!   dropped first, then the oldest.
//! - [`ApiLimiter`]: requests per minute per caller (user or address), the generic cell
//!   rate algorithm: a caller may send the whole minute's allowance at once, then one
//!   request per `60 s / limit`; one instant per caller is all it keeps. When full, callers
//!   back at a full allowance (the same as untracked) are dropped first, then the one
//!   closest to it.
//!
//! IPv6 clients are keyed by their /64, since anyone holding a /64 can rotate through
//! 2^64 addresses; IPv4-mapped IPv6 addresses count as the IPv4 address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

const CAPACITY: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: u64,
    failures: u32,
}

pub struct LoginLimiter {
    max_failures: u32,
    window_secs: u64,
    clients: HashMap<IpAddr, Window>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window_secs: u64) -> Self {
        LoginLimiter {
            max_failures,
            window_secs,
            clients: HashMap::new(),
        }
    }

    /// `Err(seconds)` while `ip` has used up its failures in the current window.
    pub fn check(&self, ip: IpAddr, now: u64) -> Result<(), u64> {
        match self.clients.get(&key(ip)) {
            Some(w) if w.failures >= self.max_failures && now < w.start + self.window_secs => {
                Err((w.start + self.window_secs - now).max(1))
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&mut self, ip: IpAddr, now: u64) {
        let k = key(ip);
        if !self.clients.contains_key(&k) && self.clients.len() >= CAPACITY {
            self.make_room(now);
        }
        let w = self.clients.entry(k).or_insert(Window {
            start: now,
            failures: 0,
        });
        if now >= w.start + self.window_secs {
            *w = Window {
                start: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }

    /// A successful login clears the address's record.
    pub fn record_success(&mut self, ip: IpAddr) {
        self.clients.remove(&key(ip));
    }

    pub fn tracked(&self) -> usize {
        self.clients.len()
    }

    fn make_room(&mut self, now: u64) {
        let window = self.window_secs;
        self.clients.retain(|_, w| now < w.start + window);
        if self.clients.len() >= CAPACITY {
            if let Some(oldest) = self
                .clients
                .iter()
                .min_by_key(|(_, w)| w.start)
                .map(|(k, _)| *k)
            {
                self.clients.remove(&oldest);
            }
        }
    }
}

/// Whom [`ApiLimiter`] counts a request against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Caller {
    User(i64),
    Addr(IpAddr),
}

#[derive(Default)]
pub struct ApiLimiter {
    per_minute: u32,
    /// Per caller, the earliest time its allowance is full again (GCRA's "theoretical
    /// arrival time"), as time since the service started.
    full_at: HashMap<Caller, Duration>,
}

impl ApiLimiter {
    /// Counts a request at `now`; `Err(seconds)` to wait when `caller` is over `per_minute`
    /// (0 = no limit). A changed limit starts every caller afresh.
    pub fn check(&mut self, caller: Caller, per_minute: u32, now: Duration) -> Result<(), u64> {
        if per_minute != self.per_minute {
            self.per_minute = per_minute;
            self.full_at = HashMap::new();
        }
        if per_minute == 0 {
            return Ok(());
        }
        let caller = match caller {
            Caller::Addr(ip) => Caller::Addr(key(ip)),
            user => user,
        };
        let minute = Duration::from_secs(60);
        let step = minute / per_minute;
        let tolerance = minute - step;
        let full_at = self.full_at.get(&caller).copied().unwrap_or(now).max(now);
        if full_at > now + tolerance {
            let wait = full_at - tolerance - now;
            return Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        }
        if !self.full_at.contains_key(&caller) && self.full_at.len() >= CAPACITY {
            self.make_room(now);
        }
        self.full_at.insert(caller, full_at + step);
        Ok(())
    }

    pub fn tracked(&self) -> usize {
        self.full_at.len()
    }

    fn make_room(&mut self, now: Duration) {
        self.full_at.retain(|_, t| *t > now);
        if self.full_at.len() >= CAPACITY {
            if let Some(c) = self
                .full_at
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(c, _)| *c)
            {
                self.full_at.remove(&c);
            }
        }
    }
}

fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::from(o)
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn blocks_after_max_failures_until_window_ends() {
        let mut l = LoginLimiter::new(3, 60);
        let a = ip("192.0.2.1");
        for t in 0..3 {
            assert_eq!(l.check(a, 100 + t), Ok(()));
            l.record_failure(a, 100 + t);
        }
        assert_eq!(l.check(a, 110), Err(50));
        assert_eq!(
            l.check(ip("192.0.2.2"), 110),
            Ok(()),
            "other clients unaffected"
        );
        assert_eq!(l.check(a, 160), Ok(()), "window over");
        l.record_failure(a, 160);
        assert_eq!(l.check(a, 161), Ok(()), "new window starts counting afresh");
    }

    #[test]
    fn success_resets() {
        let mut l = LoginLimiter::new(2, 60);
        let a = ip("192.0.2.1");
        l.record_failure(a, 0);
        l.record_success(a);
        l.record_failure(a, 1);
        assert_eq!(l.check(a, 2), Ok(()));
    }

    #[test]
    fn ipv6_is_limited_per_64_and_mapped_v4_as_v4() {
        let mut l = LoginLimiter::new(2, 60);
        l.record_failure(ip("2001:db8:1:2::1"), 0);
        l.record_failure(ip("2001:db8:1:2:ffff::9"), 0);
        assert!(l.check(ip("2001:db8:1:2::abcd"), 1).is_err());
        assert!(l.check(ip("2001:db8:1:3::1"), 1).is_ok());
        l.record_failure(ip("::ffff:192.0.2.7"), 0);
        l.record_failure(ip("192.0.2.7"), 0);
        assert!(l.check(ip("192.0.2.7"), 1).is_err());
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn api_limit_allows_a_minutes_burst_then_one_per_step() {
        let mut l = ApiLimiter::default();
        let u = Caller::User(1);
        for _ in 0..3 {
            assert_eq!(l.check(u, 3, secs(100)), Ok(()));
        }
        assert_eq!(l.check(u, 3, secs(100)), Err(20), "one request per 20 s");
        assert_eq!(l.check(u, 3, secs(110)), Err(10));
        assert_eq!(
            l.check(Caller::User(2), 3, secs(110)),
            Ok(()),
            "others unaffected"
        );
        assert_eq!(l.check(u, 3, secs(120)), Ok(()));
        assert_eq!(l.check(u, 3, secs(120)), Err(20));
        assert_eq!(
            l.check(u, 3, Duration::from_millis(120_500)),
            Err(20),
            "rounded up"
        );
        for _ in 0..3 {
            assert_eq!(
                l.check(u, 3, secs(200)),
                Ok(()),
                "a minute idle: full again"
            );
        }
    }

    #[test]
    fn api_limit_zero_is_off_and_a_new_limit_starts_afresh() {
        let mut l = ApiLimiter::default();
        let a = Caller::Addr(ip("192.0.2.1"));
        for _ in 0..1000 {
            assert_eq!(l.check(a, 0, secs(0)), Ok(()));
        }
        assert_eq!(l.tracked(), 0);
        assert_eq!(l.check(a, 1, secs(0)), Ok(()));
        assert_eq!(l.check(a, 1, secs(0)), Err(60));
        assert_eq!(l.check(a, 2, secs(0)), Ok(()));
        assert_eq!(l.check(a, 0, secs(0)), Ok(()));
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn api_limit_counts_ipv6_per_64() {
        let mut l = ApiLimiter::default();
        assert!(l.check(Caller::Addr(ip("2001:db8::1")), 1, secs(0)).is_ok());
        assert!(l
            .check(Caller::Addr(ip("2001:db8::2")), 1, secs(0))
            .is_err());
        assert!(l
            .check(Caller::Addr(ip("2001:db8:0:1::2")), 1, secs(0))
            .is_ok());
    }

    #[test]
    fn api_limit_memory_is_bounded_and_keeps_the_limited() {
        let mut l = ApiLimiter::default();
        let busy = Caller::User(-1);
        for _ in 0..10 {
            let _ = l.check(busy, 10, secs(0));
        }
        for i in 0..(CAPACITY as u32 * 2) {
            let _ = l.check(Caller::Addr(IpAddr::from(i.to_be_bytes())), 10, secs(0));
            assert!(l.tracked() <= CAPACITY);
        }
        assert!(
            l.check(busy, 10, secs(1)).is_err(),
            "a saturated caller is not evicted"
        );
    }

    #[test]
    fn memory_is_bounded() {
        let mut l = LoginLimiter::new(5, 60);
        for i in 0..(CAPACITY as u32 + 500) {
            l.record_failure(IpAddr::from(i.to_be_bytes()), u64::from(i / 1000));
        }
        assert!(l.tracked() <= CAPACITY);
    }
}
