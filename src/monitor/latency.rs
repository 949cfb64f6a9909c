//! Latency histograms of fixed size (constant memory however long the process runs): one
//! records every API request (with its status class), one every database job (run time on
//! the database thread; status 200 or 500). Read by the status and monitoring endpoints.

use serde::Serialize;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds; one more bucket catches the rest.
const BOUNDS_US: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 10_000_000,
];

#[derive(Default)]
struct Inner {
    count: u64,
    sum_us: u64,
    max_us: u64,
    buckets: [u64; BOUNDS_US.len() + 1],
    /// Responses by status class: 1xx..5xx.
    classes: [u64; 5],
}

#[derive(Default)]
pub struct Latencies {
    inner: Mutex<Inner>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatencySummary {
    pub requests: u64,
    /// Milliseconds; `None` until a request has been served.
    pub avg_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub responses_2xx: u64,
    pub responses_4xx: u64,
    pub responses_5xx: u64,
}

impl Latencies {
    pub fn record(&self, elapsed: Duration, status: u16) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BOUNDS_US.len());
        if let Ok(mut m) = self.inner.lock() {
            m.count += 1;
            m.sum_us = m.sum_us.saturating_add(us);
            m.max_us = m.max_us.max(us);
            m.buckets[bucket] += 1;
            if let Some(c) = m.classes.get_mut(usize::from(status / 100).wrapping_sub(1)) {
                *c += 1;
            }
        }
    }

    pub fn summary(&self) -> LatencySummary {
        let Ok(m) = self.inner.lock() else {
            return LatencySummary::empty();
        };
        if m.count == 0 {
            return LatencySummary::empty();
        }
        let ms = |us: u64| Some(us as f64 / 1000.0);
        LatencySummary {
            requests: m.count,
            avg_ms: ms(m.sum_us / m.count),
            p50_ms: ms(quantile(&m, 0.50)),
            p95_ms: ms(quantile(&m, 0.95)),
            p99_ms: ms(quantile(&m, 0.99)),
            max_ms: ms(m.max_us),
            responses_2xx: m.classes[1],
            responses_4xx: m.classes[3],
            responses_5xx: m.classes[4],
        }
    }
}

impl LatencySummary {
    fn empty() -> Self {
        LatencySummary {
            requests: 0,
            avg_ms: None,
            p50_ms: None,
            p95_ms: None,
            p99_ms: None,
            max_ms: None,
            responses_2xx: 0,
            responses_4xx: 0,
            responses_5xx: 0,
        }
    }
}

/// Upper bound of the bucket holding the q-quantile (capped at the observed maximum), so
/// the estimate errs high, never low.
fn quantile(m: &Inner, q: f64) -> u64 {
    let rank = ((m.count as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in m.buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return BOUNDS_US.get(i).copied().unwrap_or(m.max_us).min(m.max_us);
        }
    }
    m.max_us
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_has_no_figures() {
        let m = Latencies::default();
        assert_eq!(m.summary(), LatencySummary::empty());
    }

    #[test]
    fn quantiles_err_high_within_a_bucket() {
        let m = Latencies::default();
        for _ in 0..90 {
            m.record(Duration::from_micros(80), 200);
        }
        for _ in 0..10 {
            m.record(Duration::from_millis(40), 404);
        }
        let s = m.summary();
        assert_eq!(s.requests, 100);
        assert_eq!(s.p50_ms, Some(0.1));
        assert_eq!(s.p95_ms, Some(40.0), "capped at the max seen");
        assert_eq!((s.responses_2xx, s.responses_4xx), (90, 10));
        assert_eq!(s.avg_ms, Some(4.072));
    }
}
