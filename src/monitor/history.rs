//! Bounded metric history for `?hours=` queries: one fixed-capacity ring of samples per
//! metric, allocated once when the metric is first recorded and never grown.
//!
//! ## Memory
//! A sample is stored as `{ t: u32, v: f32 }` = **8 bytes** (unix seconds, fine until 2106;
//! about 7 significant digits, plenty for percentages, rates and byte counts shown as
//! graphs). At the default of 24 h at a 30 s interval ([`capacity_for`]`(24, 30)` = 2,880
//! samples) a metric costs 2,880 × 8 = **23,040 bytes** (22.5 KiB); 40 metrics ≈ 900 KiB.
//! [`History::heap_bytes`] reports the real figure. At most [`MAX_METRICS`] metrics are kept,
//! so even a bug that records ever-new names cannot grow memory without bound.

use serde::Serialize;
use std::collections::BTreeMap;

/// Most metrics a [`History`] keeps; samples of further names are dropped.
pub const MAX_METRICS: usize = 128;

/// One sample as callers see it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Unix seconds.
    pub t: i64,
    pub v: f64,
}

/// The compact stored form of a [`Sample`]: 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Slot {
    t: u32,
    v: f32,
}

impl Slot {
    fn sample(self) -> Sample {
        Sample {
            t: i64::from(self.t),
            v: widen(self.v),
        }
    }
}

/// f32 → f64 keeping the short decimal form (12.3 stays 12.3, not 12.300000190734863), so
/// the JSON of a series shows the value that was recorded.
fn widen(v: f32) -> f64 {
    use std::io::Write;
    let mut buf = [0u8; 64];
    let mut w = &mut buf[..];
    if write!(w, "{v}").is_ok() {
        let n = 64 - w.len();
        if let Some(x) = std::str::from_utf8(&buf[..n])
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
        {
            return x;
        }
    }
    f64::from(v)
}

/// A fixed-capacity ring of samples, oldest overwritten first. Timestamps never decrease.
#[derive(Debug, Clone)]
pub struct Ring {
    buf: Box<[Slot]>,
    /// Index of the oldest sample.
    start: usize,
    len: usize,
}

impl Ring {
    /// A ring of `capacity` samples (0 is treated as 1), its whole buffer allocated now.
    pub fn new(capacity: usize) -> Ring {
        Ring {
            buf: vec![Slot { t: 0, v: 0.0 }; capacity.max(1)].into_boxed_slice(),
            start: 0,
            len: 0,
        }
    }

    /// Appends a sample, overwriting the oldest when full. Skipped: a non-finite `v`, a `t`
    /// outside `0..=u32::MAX`, a `t` before the newest sample's (the clock went back). A
    /// finite `v` beyond the f32 range is clamped to ±f32::MAX.
    pub fn push(&mut self, t: i64, v: f64) {
        if !v.is_finite() {
            return;
        }
        let Ok(t) = u32::try_from(t) else {
            return;
        };
        if self.newest().is_some_and(|s| t < s.t) {
            return;
        }
        let v = v.clamp(f64::from(f32::MIN), f64::from(f32::MAX)) as f32;
        let cap = self.buf.len();
        let slot = Slot { t, v };
        if self.len < cap {
            self.buf[(self.start + self.len) % cap] = slot;
            self.len += 1;
        } else {
            self.buf[self.start] = slot;
            self.start = (self.start + 1) % cap;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The newest sample.
    pub fn latest(&self) -> Option<Sample> {
        self.newest().map(Slot::sample)
    }

    /// Samples with `t >= since`, oldest first.
    pub fn since(&self, since: i64) -> Vec<Sample> {
        // Timestamps are non-decreasing, so the first match is found by bisection.
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if i64::from(self.get(mid).t) < since {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo..self.len).map(|i| self.get(i).sample()).collect()
    }

    /// Bytes this ring holds (its buffer), for the memory figure.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.buf)
    }

    /// The `i`-th sample, oldest first; `i < len`.
    fn get(&self, i: usize) -> Slot {
        self.buf[(self.start + i) % self.buf.len()]
    }

    fn newest(&self) -> Option<Slot> {
        self.len.checked_sub(1).map(|i| self.get(i))
    }
}

/// The rings of all metrics, keyed by metric name, every ring of the same capacity. A
/// metric's ring is created on its first [`record`](History::record): the set of names is
/// fixed by the collector's code, and capped at [`MAX_METRICS`] regardless.
#[derive(Debug, Clone)]
pub struct History {
    capacity: usize,
    rings: BTreeMap<String, Ring>,
}

impl History {
    /// Rings of `capacity` samples each (0 is treated as 1).
    pub fn new(capacity: usize) -> History {
        History {
            capacity: capacity.max(1),
            rings: BTreeMap::new(),
        }
    }

    /// Appends a sample to `name`'s ring (see [`Ring::push`]), creating the ring on first use
    /// unless [`MAX_METRICS`] are already kept.
    pub fn record(&mut self, name: &str, t: i64, v: f64) {
        if let Some(ring) = self.rings.get_mut(name) {
            ring.push(t, v);
        } else if self.rings.len() < MAX_METRICS {
            let mut ring = Ring::new(self.capacity);
            ring.push(t, v);
            self.rings.insert(name.to_owned(), ring);
        }
    }

    /// `name`'s samples with `t >= since`, oldest first; empty for an unknown metric.
    pub fn series(&self, name: &str, since: i64) -> Vec<Sample> {
        self.rings
            .get(name)
            .map(|r| r.since(since))
            .unwrap_or_default()
    }

    pub fn latest(&self, name: &str) -> Option<Sample> {
        self.rings.get(name)?.latest()
    }

    /// Metric names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.rings.keys().map(String::as_str).collect()
    }

    /// The sample buffers of all rings plus the bytes of their names (map nodes not counted).
    pub fn heap_bytes(&self) -> usize {
        self.rings
            .iter()
            .map(|(k, r)| k.capacity() + r.heap_bytes())
            .sum()
    }

    /// Samples per metric.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Capacity for `hours` of history at one sample every `interval_secs` (rounded up; at least
/// 1; an interval of 0 counts as 1 s).
pub fn capacity_for(hours: u32, interval_secs: u64) -> usize {
    let secs = u64::from(hours) * 3600;
    let n = secs.div_ceil(interval_secs.max(1)).max(1);
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(samples: &[Sample]) -> Vec<i64> {
        samples.iter().map(|s| s.t).collect()
    }

    #[test]
    fn slot_is_eight_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 8);
    }

    #[test]
    fn wrap_around_keeps_newest() {
        let mut r = Ring::new(4);
        assert!(r.is_empty());
        assert_eq!(r.latest(), None);
        assert!(r.since(0).is_empty());
        for t in 1..=10 {
            r.push(t * 30, t as f64);
        }
        assert_eq!(r.len(), 4);
        assert_eq!(r.capacity(), 4);
        assert_eq!(ts(&r.since(0)), [210, 240, 270, 300]);
        let vs: Vec<f64> = r.since(0).iter().map(|s| s.v).collect();
        assert_eq!(vs, [7.0, 8.0, 9.0, 10.0]);
        assert_eq!(r.latest(), Some(Sample { t: 300, v: 10.0 }));
    }

    #[test]
    fn since_filters_in_order_after_wrap() {
        let mut r = Ring::new(5);
        for t in 0..8 {
            r.push(100 + t, t as f64); // keeps 103..=107
        }
        assert_eq!(ts(&r.since(0)), [103, 104, 105, 106, 107]);
        assert_eq!(ts(&r.since(i64::MIN)), [103, 104, 105, 106, 107]);
        assert_eq!(ts(&r.since(105)), [105, 106, 107]);
        assert_eq!(ts(&r.since(106)), [106, 107]);
        assert_eq!(ts(&r.since(107)), [107]);
        assert!(r.since(108).is_empty());
        assert!(r.since(i64::MAX).is_empty());
        // Every split point on every rotation of a full ring.
        for extra in 0..10 {
            let mut r = Ring::new(5);
            for t in 0..(5 + extra) {
                r.push(t, 0.0);
            }
            for since in 0..(5 + extra + 2) {
                let want: Vec<i64> = (extra..5 + extra).filter(|&t| t >= since).collect();
                assert_eq!(ts(&r.since(since)), want, "extra {extra} since {since}");
            }
        }
    }

    #[test]
    fn non_finite_and_out_of_range_skipped() {
        let mut r = Ring::new(8);
        r.push(10, f64::NAN);
        r.push(11, f64::INFINITY);
        r.push(12, f64::NEG_INFINITY);
        r.push(-1, 1.0);
        r.push(i64::from(u32::MAX) + 1, 1.0);
        assert!(r.is_empty());
        r.push(13, 12.3);
        r.push(14, 1e300);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r.since(0)[0].v,
            12.3,
            "short decimal form survives f32 storage"
        );
        // Clamped to f32::MAX, read back in its short form.
        assert_eq!(r.latest().map(|s| s.v), Some(3.4028235e38));
    }

    #[test]
    fn clock_going_back_ignored() {
        let mut r = Ring::new(8);
        r.push(100, 1.0);
        r.push(90, 2.0);
        r.push(100, 3.0); // same second: kept
        r.push(130, 4.0);
        r.push(120, 5.0);
        let got = r.since(0);
        assert_eq!(ts(&got), [100, 100, 130]);
        assert_eq!(r.latest(), Some(Sample { t: 130, v: 4.0 }));
    }

    #[test]
    fn capacity_zero_is_one() {
        let mut r = Ring::new(0);
        assert_eq!(r.capacity(), 1);
        r.push(1, 1.0);
        r.push(2, 2.0);
        assert_eq!(r.len(), 1);
        assert_eq!(r.since(0), [Sample { t: 2, v: 2.0 }]);
        assert_eq!(History::new(0).capacity(), 1);
    }

    #[test]
    fn heap_bytes_is_capacity_times_eight() {
        assert_eq!(Ring::new(2880).heap_bytes(), 2880 * 8);
        assert_eq!(Ring::new(1).heap_bytes(), 8);
        let mut h = History::new(100);
        assert_eq!(h.heap_bytes(), 0);
        h.record("cpu", 1, 1.0);
        h.record("mem", 1, 1.0);
        h.record("cpu", 2, 1.0);
        assert!(h.heap_bytes() >= 2 * 800);
        assert!(h.heap_bytes() < 2 * 800 + 64);
    }

    #[test]
    fn capacity_for_hours() {
        assert_eq!(capacity_for(24, 30), 2880);
        assert_eq!(capacity_for(1, 60), 60);
        assert_eq!(capacity_for(1, 7), 515); // 3600 / 7 = 514.3, rounded up
        assert_eq!(capacity_for(0, 30), 1);
        assert_eq!(capacity_for(1, 0), 3600);
        assert_eq!(capacity_for(1, u64::MAX), 1);
    }

    #[test]
    fn history_records_per_metric() {
        let mut h = History::new(3);
        assert_eq!(h.capacity(), 3);
        for t in 0..5 {
            h.record("mem.used", 1000 + t, t as f64);
            h.record("cpu.usage", 1000 + t, 10.0 * t as f64);
        }
        assert_eq!(h.names(), ["cpu.usage", "mem.used"]);
        assert_eq!(ts(&h.series("cpu.usage", 0)), [1002, 1003, 1004]);
        assert_eq!(ts(&h.series("mem.used", 1004)), [1004]);
        assert!(h.series("nope", 0).is_empty());
        assert_eq!(h.latest("cpu.usage"), Some(Sample { t: 1004, v: 40.0 }));
        assert_eq!(h.latest("nope"), None);
    }

    #[test]
    fn history_metric_count_is_capped() {
        let mut h = History::new(2);
        for i in 0..(MAX_METRICS + 10) {
            h.record(&format!("m{i}"), 1, 1.0);
        }
        assert_eq!(h.names().len(), MAX_METRICS);
        assert_eq!(h.latest(&format!("m{}", MAX_METRICS + 5)), None);
        // Known metrics still record.
        h.record("m0", 2, 2.0);
        assert_eq!(h.latest("m0"), Some(Sample { t: 2, v: 2.0 }));
    }
}
