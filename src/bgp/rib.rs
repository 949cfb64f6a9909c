//! Adj-RIB-In: the routes one peer sent us, kept compact and bounded.
//!
//! A route is its prefix and an index into a table of interned attribute sets: peers send
//! many prefixes with identical attributes (one UPDATE carries hundreds), so a million
//! routes share a few thousand sets. Per route that is one `BTreeMap` entry (18-byte
//! prefix + 4-byte index, no hash-table slack) — see BENCHMARKS.md for bytes per route
//! measured with GoBGP. The caller enforces the session's prefix limit with [`len`] before
//! inserting, so the map never grows past it.
//!
//! Routes are never re-advertised; they are kept to be counted, listed and RPKI-checked.

use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

/// The attributes of a received route that we show.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteAttrs {
    /// 0 IGP, 1 EGP, 2 incomplete (`None`: missing, only for withdrawn-equivalent routes)
    pub origin: Option<u8>,
    /// The AS path flattened (sets included as their members).
    pub as_path: Box<[u32]>,
    /// The last AS of a path that ends in an AS_SEQUENCE: what RPKI validates. `None`
    /// when the path ends in an AS_SET (RFC 6811: origin NONE).
    pub origin_as: Option<u32>,
    pub next_hop: Option<IpAddr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub communities: Box<[u32]>,
    pub large_communities: Box<[[u32; 3]]>,
}

#[derive(Debug, Default)]
pub struct AdjRibIn {
    routes: BTreeMap<IpNet, u32>,
    /// Interned attribute sets with their route counts; freed slots are reused.
    attrs: Vec<Option<(Arc<RouteAttrs>, u32)>>,
    index: HashMap<Arc<RouteAttrs>, u32>,
    free: Vec<u32>,
}

impl AdjRibIn {
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn contains(&self, prefix: &IpNet) -> bool {
        self.routes.contains_key(prefix)
    }

    /// Distinct attribute sets held.
    pub fn attribute_sets(&self) -> usize {
        self.index.len()
    }

    /// Interns `attrs` once for a batch of prefixes (an UPDATE).
    pub fn intern(&mut self, attrs: RouteAttrs) -> u32 {
        if let Some(&i) = self.index.get(&attrs) {
            return i;
        }
        let a = Arc::new(attrs);
        let i = match self.free.pop() {
            Some(i) => {
                self.attrs[i as usize] = Some((a.clone(), 0));
                i
            }
            None => {
                self.attrs.push(Some((a.clone(), 0)));
                (self.attrs.len() - 1) as u32
            }
        };
        self.index.insert(a, i);
        i
    }

    /// Adds or replaces the route for `prefix` with the interned set `attrs`.
    pub fn insert(&mut self, prefix: IpNet, attrs: u32) {
        self.retain(attrs);
        if let Some(old) = self.routes.insert(prefix, attrs) {
            self.release(old);
        }
    }

    /// Removes the route for `prefix`; false if there was none.
    pub fn remove(&mut self, prefix: &IpNet) -> bool {
        match self.routes.remove(prefix) {
            Some(old) => {
                self.release(old);
                true
            }
            None => false,
        }
    }

    /// Drops an interned set no route uses (after a batch whose routes were all refused).
    pub fn unused(&mut self, attrs: u32) {
        if matches!(self.attrs.get(attrs as usize), Some(Some((_, 0)))) {
            self.drop_set(attrs);
        }
    }

    pub fn clear(&mut self) {
        *self = AdjRibIn::default();
    }

    /// Routes in prefix order, from `offset`, at most `limit`.
    pub fn page(&self, offset: usize, limit: usize) -> Vec<(IpNet, Arc<RouteAttrs>)> {
        self.routes
            .iter()
            .skip(offset)
            .take(limit)
            .filter_map(|(p, &i)| Some((*p, self.set(i)?)))
            .collect()
    }

    fn set(&self, i: u32) -> Option<Arc<RouteAttrs>> {
        self.attrs.get(i as usize)?.as_ref().map(|(a, _)| a.clone())
    }

    fn retain(&mut self, i: u32) {
        if let Some(Some((_, n))) = self.attrs.get_mut(i as usize) {
            *n += 1;
        }
    }

    fn release(&mut self, i: u32) {
        let last = match self.attrs.get_mut(i as usize) {
            Some(Some((_, n))) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            _ => false,
        };
        if last {
            self.drop_set(i);
        }
    }

    fn drop_set(&mut self, i: u32) {
        if let Some(Some((a, _))) = self.attrs.get_mut(i as usize).map(Option::take) {
            self.index.remove(&a);
            self.free.push(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(path: &[u32]) -> RouteAttrs {
        RouteAttrs {
            origin: Some(0),
            as_path: path.into(),
            origin_as: path.last().copied(),
            next_hop: Some("2001:db8::2".parse().unwrap()),
            med: None,
            local_pref: None,
            communities: Box::new([]),
            large_communities: Box::new([]),
        }
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn routes_share_attribute_sets_and_free_them_with_the_last_route() {
        let mut rib = AdjRibIn::default();
        let a = rib.intern(attrs(&[65002]));
        rib.insert(net("2001:db8:1::/48"), a);
        rib.insert(net("2001:db8:2::/48"), a);
        assert_eq!(rib.intern(attrs(&[65002])), a, "interned once");
        let b = rib.intern(attrs(&[65002, 65010]));
        rib.insert(net("2001:db8:1::/48"), b);
        assert_eq!((rib.len(), rib.attribute_sets()), (2, 2));
        assert!(rib.remove(&net("2001:db8:2::/48")));
        assert!(!rib.remove(&net("2001:db8:2::/48")));
        assert_eq!(rib.attribute_sets(), 1, "set a had no route left");
        let c = rib.intern(attrs(&[1]));
        assert_eq!(c, a, "slot reused");
        rib.unused(c);
        assert_eq!(rib.attribute_sets(), 1);
        let page = rib.page(0, 10);
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].1.as_path.as_ref(), &[65002, 65010]);
        rib.clear();
        assert!(rib.is_empty() && rib.attribute_sets() == 0);
    }

    #[test]
    fn pages_are_in_prefix_order() {
        let mut rib = AdjRibIn::default();
        let a = rib.intern(attrs(&[65002]));
        for p in ["2001:db8:3::/48", "10.0.0.0/8", "2001:db8:1::/48"] {
            rib.insert(net(p), a);
        }
        let got: Vec<String> = rib.page(1, 5).iter().map(|r| r.0.to_string()).collect();
        assert_eq!(got, ["2001:db8:1::/48", "2001:db8:3::/48"]);
    }
}
