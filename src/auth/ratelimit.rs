//! Failed-login limiter per source address. Pure: the caller passes the time, so tests use
//! a fake clock. Bounded: at most `CAPACITY` addresses are tracked; when full, expired
//! windows are dropped first, then the oldest.
//!
//! IPv6 clients are keyed by their /64, since anyone holding a /64 can rotate through
//! 2^64 addresses; IPv4-mapped IPv6 addresses count as the IPv4 address.

use std::collections::HashMap;
use std::net::IpAddr;

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

    #[test]
    fn memory_is_bounded() {
        let mut l = LoginLimiter::new(5, 60);
        for i in 0..(CAPACITY as u32 + 500) {
            l.record_failure(IpAddr::from(i.to_be_bytes()), u64::from(i / 1000));
        }
        assert!(l.tracked() <= CAPACITY);
    }
}
