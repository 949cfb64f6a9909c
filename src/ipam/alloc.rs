//! The prefix allocator of a pool: hands out the lowest free aligned prefix of a requested
//! length, takes specific prefixes, releases them, and counts exactly — in time and memory
//! proportional to the number of allocations, never to the size of the pool (a /32 holds
//! 2³² /64s; a /48 holds 2⁸⁰ /128s).
//!
//! The free space is a set of disjoint address intervals ("gaps", inclusive bounds so that
//! `::/0`'s end fits in a `u128`). For every prefix length the pool may hand out there is an
//! ordered index of the gaps that can hold an aligned block of that length, so "lowest free
//! block of length L" is the first entry of that index: O(C · log n) per operation, where C
//! is the number of prefix lengths the pool allows (`max - min + 1`) and n the number of gaps
//! (at most allocations + regions). Counts of free blocks of the pool's default length are
//! kept up to date as gaps split and merge.
//!
//! Pure: no I/O, no clock; the pool module rebuilds it from the database at start-up.

use ipnet::Ipv6Net;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;

/// Why an allocation request cannot be met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocError {
    /// The requested length is outside what the pool hands out.
    Length { requested: u8, min: u8, max: u8 },
    /// The prefix is not inside the pool's allowed space (pool or whitelist).
    Outside(Ipv6Net),
    /// The prefix overlaps one already handed out.
    Taken(Ipv6Net),
    /// No aligned block of that length is free.
    Exhausted { length: u8 },
    /// Releasing a prefix that is not allocated.
    NotAllocated(Ipv6Net),
}

impl std::fmt::Display for AllocError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AllocError::Length {
                requested,
                min,
                max,
            } => write!(
                f,
                "prefix length /{requested} is outside this pool's range /{min}–/{max}"
            ),
            AllocError::Outside(p) => write!(f, "{p} is not inside the pool's allocatable space"),
            AllocError::Taken(p) => write!(f, "{p} overlaps a prefix that is already allocated"),
            AllocError::Exhausted { length } => {
                write!(f, "no free /{length} left in this pool")
            }
            AllocError::NotAllocated(p) => write!(f, "{p} is not allocated"),
        }
    }
}

impl std::error::Error for AllocError {}

/// First and last address of a prefix.
fn bounds(p: Ipv6Net) -> (u128, u128) {
    let first = u128::from(p.network());
    let host_bits = 128 - u32::from(p.prefix_len());
    let last = if host_bits == 128 {
        u128::MAX
    } else {
        first | ((1u128 << host_bits) - 1)
    };
    (first, last)
}

fn net(first: u128, len: u8) -> Ipv6Net {
    match Ipv6Net::new(Ipv6Addr::from(first), len) {
        Ok(n) => n,
        Err(_) => unreachable!("prefix lengths are validated to be ≤ 128"),
    }
}

/// The first aligned block of `len` that fits in `[first, last]`, if any.
fn fit(first: u128, last: u128, len: u8) -> Option<u128> {
    let host_bits = 128 - u32::from(len);
    if host_bits == 128 {
        return (first == 0 && last == u128::MAX).then_some(0);
    }
    let size = 1u128 << host_bits;
    let start = first.checked_add(size - 1)? & !(size - 1);
    let end = start.checked_add(size - 1)?;
    (start >= first && end <= last).then_some(start)
}

/// How many aligned blocks of `len` fit in `[first, last]`.
fn blocks(first: u128, last: u128, len: u8) -> u128 {
    let host_bits = 128 - u32::from(len);
    if host_bits == 128 {
        return u128::from(first == 0 && last == u128::MAX);
    }
    let Some(start) = fit(first, last, len) else {
        return 0;
    };
    // Blocks from `start` to the last aligned block ending at or before `last`.
    let size = 1u128 << host_bits;
    let last_start = if last == u128::MAX {
        !(size - 1)
    } else {
        (last + 1) / size * size - size
    };
    // ::/0 in /128s is 2^128 blocks, one more than u128 holds; pools are validated to
    // stay below that, and the count saturates rather than wrapping if one is not.
    ((last_start - start) / size).saturating_add(1)
}

/// Lowest-first prefix allocator over a pool's allowed space.
#[derive(Debug, Clone)]
pub struct Allocator {
    /// Lengths handed out.
    min: u8,
    max: u8,
    /// The pool's default length, the unit of the counts.
    unit: u8,
    /// Free intervals: first → last (inclusive), disjoint, not adjacent.
    gaps: BTreeMap<u128, u128>,
    /// For each length in min..=max, the starts of the gaps that can hold one such block.
    fits: Vec<BTreeSet<u128>>,
    /// Allocated prefixes: first → length.
    allocated: BTreeMap<u128, u8>,
    /// Aligned `unit` blocks in the allowed space / free now.
    total_units: u128,
    free_units: u128,
}

impl Allocator {
    /// An empty allocator over `regions` (the pool itself, or its whitelist entries; they
    /// may overlap or nest — their union is used). `unit` is the default allocation length;
    /// `min..=max` the lengths a request may ask for (must contain `unit`, be ≤ 128, and be at
    /// least as long as every region).
    pub fn new(regions: &[Ipv6Net], unit: u8, min: u8, max: u8) -> Allocator {
        let mut a = Allocator {
            min,
            max,
            unit,
            gaps: BTreeMap::new(),
            fits: (min..=max).map(|_| BTreeSet::new()).collect(),
            allocated: BTreeMap::new(),
            total_units: 0,
            free_units: 0,
        };
        let mut spans: Vec<(u128, u128)> = regions.iter().map(|r| bounds(r.trunc())).collect();
        spans.sort_unstable();
        for (first, last) in spans {
            // Union of sorted spans: extend the previous gap when they touch or overlap.
            let prev = a.gaps.iter().next_back().map(|(f, l)| (*f, *l));
            match prev {
                Some((pf, pl)) if first <= pl.saturating_add(1) => {
                    if last > pl {
                        a.gaps.insert(pf, last);
                    }
                }
                _ => {
                    a.gaps.insert(first, last);
                }
            }
        }
        let gaps: Vec<(u128, u128)> = a.gaps.iter().map(|(f, l)| (*f, *l)).collect();
        for (first, last) in gaps {
            a.index(first, last);
            a.total_units = a.total_units.saturating_add(blocks(first, last, unit));
        }
        a.free_units = a.total_units;
        a
    }

    pub fn unit(&self) -> u8 {
        self.unit
    }

    /// Blocks of the pool's default length in the allowed space (exact, even for 2⁸⁰).
    pub fn total(&self) -> u128 {
        self.total_units
    }

    /// Free aligned blocks of the default length.
    pub fn available(&self) -> u128 {
        self.free_units
    }

    /// Number of prefixes handed out.
    pub fn allocated(&self) -> usize {
        self.allocated.len()
    }

    pub fn is_allocated(&self, p: Ipv6Net) -> bool {
        self.allocated.get(&bounds(p).0) == Some(&p.prefix_len())
    }

    /// Every allocated prefix, lowest first.
    pub fn prefixes(&self) -> impl Iterator<Item = Ipv6Net> + '_ {
        self.allocated.iter().map(|(f, l)| net(*f, *l))
    }

    fn check_len(&self, len: u8) -> Result<(), AllocError> {
        if len < self.min || len > self.max {
            return Err(AllocError::Length {
                requested: len,
                min: self.min,
                max: self.max,
            });
        }
        Ok(())
    }

    fn index(&mut self, first: u128, last: u128) {
        for (i, len) in (self.min..=self.max).enumerate() {
            if fit(first, last, len).is_some() {
                self.fits[i].insert(first);
            }
        }
    }

    fn unindex(&mut self, first: u128) {
        for set in &mut self.fits {
            set.remove(&first);
        }
    }

    fn add_gap(&mut self, first: u128, last: u128) {
        self.gaps.insert(first, last);
        self.index(first, last);
        self.free_units = self
            .free_units
            .saturating_add(blocks(first, last, self.unit));
    }

    fn remove_gap(&mut self, first: u128) -> Option<u128> {
        let last = self.gaps.remove(&first)?;
        self.unindex(first);
        self.free_units = self
            .free_units
            .saturating_sub(blocks(first, last, self.unit));
        Some(last)
    }

    /// The gap containing `[first, last]` entirely, if any.
    fn gap_containing(&self, first: u128, last: u128) -> Option<(u128, u128)> {
        let (gf, gl) = self.gaps.range(..=first).next_back()?;
        (*gl >= last).then_some((*gf, *gl))
    }

    /// Carves `[first, last]` out of the gap `[gf, gl]` that contains it.
    fn carve(&mut self, (gf, gl): (u128, u128), first: u128, last: u128, len: u8) {
        self.remove_gap(gf);
        if gf < first {
            self.add_gap(gf, first - 1);
        }
        if last < gl {
            self.add_gap(last + 1, gl);
        }
        self.allocated.insert(first, len);
    }

    /// Hands out the lowest free aligned prefix of length `len`.
    pub fn allocate(&mut self, len: u8) -> Result<Ipv6Net, AllocError> {
        self.check_len(len)?;
        let i = usize::from(len - self.min);
        let gap_first = *self.fits[i]
            .iter()
            .next()
            .ok_or(AllocError::Exhausted { length: len })?;
        let gap_last = self.gaps[&gap_first];
        let Some(first) = fit(gap_first, gap_last, len) else {
            unreachable!("indexed gaps fit their lengths")
        };
        let p = net(first, len);
        let (_, last) = bounds(p);
        self.carve((gap_first, gap_last), first, last, len);
        Ok(p)
    }

    /// Takes the specific prefix `p` (host bits must be zero).
    pub fn take(&mut self, p: Ipv6Net) -> Result<(), AllocError> {
        self.check_len(p.prefix_len())?;
        let (first, last) = bounds(p);
        match self.gap_containing(first, last) {
            Some(gap) => {
                self.carve(gap, first, last, p.prefix_len());
                Ok(())
            }
            None if self.overlaps_allocation(first, last) => Err(AllocError::Taken(p)),
            None => Err(AllocError::Outside(p)),
        }
    }

    fn overlaps_allocation(&self, first: u128, last: u128) -> bool {
        // An allocation starting inside, or the last one starting before and reaching in.
        self.allocated.range(first..=last).next().is_some()
            || self
                .allocated
                .range(..first)
                .next_back()
                .is_some_and(|(f, l)| bounds(net(*f, *l)).1 >= first)
    }

    /// Gives `p` back, merging it with the free space around it.
    pub fn release(&mut self, p: Ipv6Net) -> Result<(), AllocError> {
        let (mut first, mut last) = bounds(p);
        if self.allocated.get(&first) != Some(&p.prefix_len()) {
            return Err(AllocError::NotAllocated(p));
        }
        self.allocated.remove(&first);
        if first > 0 {
            if let Some((pf, pl)) = self.gaps.range(..first).next_back().map(|(f, l)| (*f, *l)) {
                if pl == first - 1 {
                    self.remove_gap(pf);
                    first = pf;
                }
            }
        }
        if last < u128::MAX {
            if let Some(nl) = self.gaps.get(&(last + 1)).copied() {
                self.remove_gap(last + 1);
                last = nl;
            }
        }
        self.add_gap(first, last);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Ipv6Net {
        s.parse().expect("prefix")
    }

    #[test]
    fn counts_are_exact_for_huge_pools() {
        let a = Allocator::new(&[p("2001:db8::/32")], 64, 64, 64);
        assert_eq!(a.total(), 1u128 << 32);
        assert_eq!(a.available(), 1u128 << 32);
        let a = Allocator::new(&[p("2001:db8::/48")], 128, 64, 128);
        assert_eq!(a.total(), 1u128 << 80);
        let a = Allocator::new(&[p("::/0")], 128, 0, 128);
        assert_eq!(a.total(), u128::MAX, "2^128 does not fit: saturates");
    }

    #[test]
    fn lowest_first_aligned_and_exact_counts() {
        let mut a = Allocator::new(&[p("2001:db8::/32")], 64, 48, 64);
        assert_eq!(a.allocate(64), Ok(p("2001:db8::/64")));
        assert_eq!(a.allocate(64), Ok(p("2001:db8:0:1::/64")));
        // A /48 must be aligned: the first /48 is partly used, so the next one.
        assert_eq!(a.allocate(48), Ok(p("2001:db8:1::/48")));
        assert_eq!(a.allocate(64), Ok(p("2001:db8:0:2::/64")));
        assert_eq!(a.allocated(), 4);
        assert_eq!(a.available(), (1u128 << 32) - 3 - 65536);
        assert_eq!(
            a.allocate(47),
            Err(AllocError::Length {
                requested: 47,
                min: 48,
                max: 64
            })
        );
    }

    #[test]
    fn release_reuses_the_lowest_hole_and_merges() {
        let mut a = Allocator::new(&[p("2001:db8::/62")], 64, 63, 64);
        let all: Vec<Ipv6Net> = (0..4).map(|_| a.allocate(64).expect("alloc")).collect();
        assert_eq!(a.allocate(64), Err(AllocError::Exhausted { length: 64 }));
        assert_eq!(a.available(), 0);
        a.release(all[2]).expect("release");
        a.release(all[1]).expect("release");
        assert_eq!(a.available(), 2);
        // :1:: and :2:: are free and merged, but a /63 must start at :0:: or :2::.
        assert_eq!(a.allocate(63), Err(AllocError::Exhausted { length: 63 }));
        assert_eq!(a.allocate(64), Ok(all[1]));
        a.release(all[3]).expect("release");
        assert_eq!(a.allocate(63), Ok(p("2001:db8:0:2::/63")));
        assert_eq!(
            a.release(p("2001:db8:0:3::/64")),
            Err(AllocError::NotAllocated(p("2001:db8:0:3::/64")))
        );
    }

    #[test]
    fn take_specific_prefixes() {
        let mut a = Allocator::new(&[p("2001:db8::/48")], 64, 56, 64);
        a.take(p("2001:db8:0:5::/64")).expect("take");
        assert_eq!(
            a.take(p("2001:db8:0:5::/64")),
            Err(AllocError::Taken(p("2001:db8:0:5::/64")))
        );
        assert_eq!(
            a.take(p("2001:db8::/56")),
            Err(AllocError::Taken(p("2001:db8::/56")))
        );
        assert_eq!(
            a.take(p("2001:db9::/64")),
            Err(AllocError::Outside(p("2001:db9::/64")))
        );
        assert_eq!(a.allocate(64), Ok(p("2001:db8::/64")));
        for i in 1..5 {
            assert_eq!(
                a.allocate(64),
                Ok(net(
                    u128::from(p("2001:db8::/64").network()) + (i << 64),
                    64
                ))
            );
        }
        assert_eq!(
            a.allocate(64),
            Ok(p("2001:db8:0:6::/64")),
            "skips the taken one"
        );
    }

    #[test]
    fn whitelist_regions_limit_the_space() {
        let mut a = Allocator::new(
            &[p("2001:db8:0:10::/63"), p("2001:db8:0:40::/64")],
            64,
            64,
            64,
        );
        assert_eq!(a.total(), 3);
        assert_eq!(a.allocate(64), Ok(p("2001:db8:0:10::/64")));
        assert_eq!(a.allocate(64), Ok(p("2001:db8:0:11::/64")));
        assert_eq!(a.allocate(64), Ok(p("2001:db8:0:40::/64")));
        assert_eq!(a.allocate(64), Err(AllocError::Exhausted { length: 64 }));
        assert_eq!(
            a.take(p("2001:db8:0:20::/64")),
            Err(AllocError::Outside(p("2001:db8:0:20::/64")))
        );
    }

    #[test]
    fn one_hundred_twenty_eights_in_a_48() {
        let mut a = Allocator::new(&[p("2001:db8::/48")], 128, 128, 128);
        assert_eq!(a.allocate(128), Ok(p("2001:db8::/128")));
        assert_eq!(a.allocate(128), Ok(p("2001:db8::1/128")));
        assert_eq!(a.available(), (1u128 << 80) - 2);
    }

    /// Random allocate/take/release against a brute-force model of a small pool: no
    /// overlaps, alignment, lowest-first, counts.
    #[test]
    fn matches_a_brute_force_model() {
        let pool = p("2001:db8::/120"); // 256 addresses, lengths /120../128
        let mut a = Allocator::new(&[pool], 128, 124, 128);
        let mut used = [false; 256];
        let mut rnd = crate::testutil::xorshift(0x9e37_79b9_7f4a_7c15u64);
        let base = u128::from(pool.network());
        let lowest_free = |used: &[bool; 256], len: u8| {
            let size = 1usize << (128 - len);
            (0..256)
                .step_by(size)
                .find(|s| used[*s..*s + size].iter().all(|u| !u))
        };
        for _ in 0..20_000 {
            let len = 124 + (rnd() % 5) as u8;
            let size = 1usize << (128 - len);
            match rnd() % 3 {
                0 => {
                    let expect = lowest_free(&used, len);
                    match a.allocate(len) {
                        Ok(got) => {
                            let off = (u128::from(got.network()) - base) as usize;
                            assert_eq!(Some(off), expect, "lowest free /{len}");
                            used[off..off + size].iter_mut().for_each(|u| *u = true);
                        }
                        Err(e) => assert_eq!(expect, None, "{e}"),
                    }
                }
                1 => {
                    let off = (rnd() as usize % 256) / size * size;
                    let q = net(base + off as u128, len);
                    let free = used[off..off + size].iter().all(|u| !u);
                    assert_eq!(a.take(q).is_ok(), free, "take {q}");
                    if free {
                        used[off..off + size].iter_mut().for_each(|u| *u = true);
                    }
                }
                _ => {
                    let all: Vec<Ipv6Net> = a.prefixes().collect();
                    if let Some(q) = all.get(rnd() as usize % all.len().max(1)) {
                        let off = (u128::from(q.network()) - base) as usize;
                        let s = 1usize << (128 - q.prefix_len());
                        a.release(*q).expect("release");
                        used[off..off + s].iter_mut().for_each(|u| *u = false);
                    }
                }
            }
            let free = used.iter().filter(|u| !**u).count() as u128;
            assert_eq!(a.available(), free, "free /128 count");
        }
    }
}
