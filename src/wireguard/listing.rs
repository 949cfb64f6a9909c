//! The client list, the API's hottest page. Each client's list item is rendered to JSON
//! once per version of its row and kept, with holes where its live fields go (status,
//! handshake, bytes, endpoint); a request fills the holes from one read of each device.
//! Rendering a page from scratch cost ~8 µs a client (parsing the stored lists, formatting
//! addresses and times, escaping strings); a kept item costs a copy.
//!
//! ```text
//!  client_page (SQL: ids + versions) ─► Listing::kept ─► misses: clients_with_rev ─► Item::render
//!                                                    └──────────────┬──────────────────────┘
//!                                   live_of (one read of each device) ─► ClientList::write_json
//! ```
//!
//! - **Current, whatever wrote the row**: a row's version (`rev`) is a random number SQLite
//!   sets on every insert and update (a trigger, `store/schema.rs` migration 8). An item is
//!   used only while its row has the version it was rendered from; a restore or a write
//!   this module never hears of changes the version, so the item is rendered again.
//! - **The same bytes**: an item is the [`ClientView`] serialised as a JSON map (keys in
//!   sorted order, as lists have always shown them), cut at its live fields; the tests check
//!   it byte for byte against serialising the view.
//! - **Bounded**: at most [`BUDGET`] bytes of items are kept; keeping one that would pass it
//!   empties the cache first, so listing more clients than fit costs renders, not memory.

use super::live::OnDevice;
use super::{ClientRow, ClientView, Live};
use crate::store::wireguard::ClientVersion;
use crate::sync::lock;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The most bytes of rendered items kept: about 1,600 clients, a page of 100 being ~55 KB.
pub const BUDGET: usize = 1 << 20;

/// What an item costs besides its JSON (the item, its holes, its map entry).
const OVERHEAD: usize = 160;

/// A live field of a [`ClientView`]: filled per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LiveField {
    BytesReceived,
    BytesSent,
    Endpoint,
    LastHandshake,
    Status,
}

impl LiveField {
    fn of(key: &str) -> Option<LiveField> {
        Some(match key {
            "bytes_received" => LiveField::BytesReceived,
            "bytes_sent" => LiveField::BytesSent,
            "endpoint" => LiveField::Endpoint,
            "last_handshake" => LiveField::LastHandshake,
            "status" => LiveField::Status,
            _ => return None,
        })
    }

    /// The field's value as [`ClientView`] serialises it.
    fn write(self, live: &Live, out: &mut Vec<u8>) {
        match self {
            LiveField::BytesReceived => put(out, &live.bytes_received),
            LiveField::BytesSent => put(out, &live.bytes_sent),
            LiveField::Endpoint => put(out, &live.endpoint),
            LiveField::LastHandshake => put(out, &live.last_handshake.map(crate::time::rfc3339)),
            LiveField::Status => put(out, live.status),
        }
    }
}

/// Writes `value` as JSON. Numbers, strings and `null` always serialise and a `Vec` takes
/// every write, so there is no error to pass on.
fn put<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let written = serde_json::to_writer(&mut *out, value);
    debug_assert!(written.is_ok());
}

/// One client's list item: its JSON with holes for its live fields.
#[derive(Debug)]
pub struct Item {
    id: i64,
    rev: i64,
    /// Whom to ask the device about.
    on_device: OnDevice,
    json: Box<[u8]>,
    /// Where each live field goes, in order: after `json[..at]`.
    holes: Box<[(usize, LiveField)]>,
}

impl Item {
    /// Renders version `rev` of `row`.
    pub fn render(rev: i64, row: ClientRow) -> serde_json::Result<Item> {
        let (id, on_device) = (row.id, OnDevice::of(&row));
        let map = match serde_json::to_value(ClientView::new(row, Live::default()))? {
            serde_json::Value::Object(map) => map,
            _ => {
                return Err(serde::ser::Error::custom(
                    "a client view is not a JSON object",
                ))
            }
        };
        let mut json = Vec::with_capacity(640);
        let mut holes = Vec::with_capacity(5);
        json.push(b'{');
        for (i, (key, value)) in map.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            serde_json::to_writer(&mut json, key)?;
            json.push(b':');
            match LiveField::of(key) {
                Some(field) => holes.push((json.len(), field)),
                None => serde_json::to_writer(&mut json, value)?,
            }
        }
        json.push(b'}');
        Ok(Item {
            id,
            rev,
            on_device,
            json: json.into(),
            holes: holes.into(),
        })
    }

    /// The item with `live` in its holes.
    fn write(&self, live: &Live, out: &mut Vec<u8>) {
        let mut from = 0;
        for &(at, field) in self.holes.iter() {
            out.extend_from_slice(&self.json[from..at]);
            field.write(live, out);
            from = at;
        }
        out.extend_from_slice(&self.json[from..]);
    }

    fn cost(&self) -> usize {
        self.json.len() + OVERHEAD
    }
}

/// The kept items, by client id, within [`BUDGET`].
#[derive(Default)]
pub struct Listing {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    items: HashMap<i64, Arc<Item>>,
    bytes: usize,
}

impl Listing {
    /// For each client of `page`: its item, if one of that version is kept.
    pub fn kept(&self, page: &[ClientVersion]) -> Vec<Option<Arc<Item>>> {
        let kept = lock(&self.kept);
        page.iter()
            .map(|v| kept.items.get(&v.id).filter(|i| i.rev == v.rev).cloned())
            .collect()
    }

    /// The items of `page`, in its order: those `kept` found, the others rendered from
    /// `rows` (each with its version) and kept. A client whose row is not in `rows` (deleted
    /// in between) is left out.
    pub fn fill(
        &self,
        page: &[ClientVersion],
        kept: Vec<Option<Arc<Item>>>,
        rows: Vec<(i64, ClientRow)>,
    ) -> serde_json::Result<Vec<Arc<Item>>> {
        let mut rendered: HashMap<i64, Arc<Item>> = HashMap::with_capacity(rows.len());
        for (rev, row) in rows {
            let item = Arc::new(Item::render(rev, row)?);
            self.keep(item.clone());
            rendered.insert(item.id, item);
        }
        Ok(page
            .iter()
            .zip(kept)
            .filter_map(|(v, k)| k.or_else(|| rendered.remove(&v.id)))
            .collect())
    }

    fn keep(&self, item: Arc<Item>) {
        let mut kept = lock(&self.kept);
        if let Some(old) = kept.items.remove(&item.id) {
            kept.bytes -= old.cost();
        }
        if kept.bytes + item.cost() > BUDGET {
            kept.items.clear();
            kept.bytes = 0;
        }
        kept.bytes += item.cost();
        kept.items.insert(item.id, item);
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        lock(&self.kept).bytes
    }
}

/// A page of clients with their live fields, ready to write.
pub struct ClientList {
    items: Vec<Arc<Item>>,
    live: Vec<Live>,
}

impl ClientList {
    /// `live[i]` belongs to `items[i]`.
    pub fn new(items: Vec<Arc<Item>>, live: Vec<Live>) -> ClientList {
        debug_assert_eq!(items.len(), live.len());
        ClientList { items, live }
    }

    /// Whom to ask each device about, in the page's order.
    pub fn on_device(items: &[Arc<Item>]) -> Vec<OnDevice> {
        items.iter().map(|i| i.on_device).collect()
    }

    /// The clients as a JSON array.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.reserve(self.items.iter().map(|i| i.json.len() + 64).sum());
        out.push(b'[');
        for (i, (item, live)) in self.items.iter().zip(&self.live).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            item.write(live, out);
        }
        out.push(b']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wireguard::keys::PresharedKey;
    use crate::wireguard::model::fixtures::client_row;

    fn rows() -> Vec<ClientRow> {
        let plain = client_row(2, "phone", Some("10.0.0.2"), Some("fd00::2"));
        let mut odd = client_row(3, "Zoë \"laptop\"\n\\", None, Some("fd00::3"));
        odd.description = Some("</script> \u{1} ünïcödé".into());
        odd.preshared_key = Some(PresharedKey::generate().to_base64());
        odd.private_key = None;
        odd.routed_prefixes = vec!["2001:db8:1::/48".parse().expect("net")];
        odd.dns_servers = vec!["fd00::53".parse().expect("ip")];
        odd.mtu = Some(1280);
        odd.persistent_keepalive = Some(0);
        odd.updated_at = 1_700_000_123;
        let mut off = client_row(4, "off", Some("10.0.0.4"), None);
        off.enabled = false;
        vec![plain, odd, off]
    }

    fn lives() -> Vec<Live> {
        vec![
            Live::default(),
            Live {
                status: "disabled",
                ..Live::default()
            },
            Live {
                status: "active",
                last_handshake: Some(1_700_000_000),
                bytes_received: u64::MAX,
                bytes_sent: 12_345,
                endpoint: Some("[2001:db8::7]:51820".into()),
            },
        ]
    }

    #[test]
    fn an_item_is_the_view_serialised_as_a_map_byte_for_byte() {
        for row in rows() {
            let item = Item::render(7, row.clone()).expect("render");
            assert_eq!(item.holes.len(), 5, "every live field has a hole");
            for live in lives() {
                let mut got = Vec::new();
                item.write(&live, &mut got);
                let view = serde_json::to_value(ClientView::new(row.clone(), live.clone()))
                    .expect("value");
                let want = serde_json::to_vec(&view).expect("bytes");
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want)
                );
            }
        }
    }

    #[test]
    fn keys_come_in_sorted_order_as_lists_always_showed_them() {
        let item = Item::render(1, rows().remove(0)).expect("render");
        let mut out = Vec::new();
        item.write(&Live::default(), &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "a JSON map's keys sort"
        );
        let at: Vec<usize> = keys
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).expect("key"))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    fn version(id: i64, rev: i64) -> ClientVersion {
        ClientVersion { id, rev }
    }

    #[test]
    fn an_item_is_used_only_for_the_version_it_was_rendered_from() {
        let listing = Listing::default();
        let row = rows().remove(0);
        let page = [version(row.id, 1)];
        let kept = listing.kept(&page);
        assert!(kept[0].is_none());
        let items = listing
            .fill(&page, kept, vec![(1, row.clone())])
            .expect("fill");
        assert_eq!(items.len(), 1);
        let again = listing.kept(&page);
        assert!(again[0].as_ref().is_some_and(|i| Arc::ptr_eq(i, &items[0])));
        assert!(
            listing.kept(&[version(row.id, 2)])[0].is_none(),
            "new version"
        );

        let mut renamed = row.clone();
        renamed.name = "renamed".into();
        let page = [version(row.id, 2)];
        let items = listing
            .fill(&page, vec![None], vec![(2, renamed)])
            .expect("fill");
        let list = ClientList::new(items, vec![Live::default()]);
        let mut out = Vec::new();
        list.write_json(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v[0]["name"], "renamed");
        assert_eq!(listing.kept(&page).iter().flatten().count(), 1);
        assert!(listing.kept(&[version(row.id, 1)])[0].is_none(), "replaced");
    }

    #[test]
    fn a_page_keeps_its_order_and_leaves_out_rows_gone_in_between() {
        let listing = Listing::default();
        let rs = rows();
        let page: Vec<ClientVersion> = rs.iter().map(|r| version(r.id, 5)).collect();
        let first = listing
            .fill(&page[..1], vec![None], vec![(5, rs[0].clone())])
            .expect("fill");
        let kept = listing.kept(&page);
        assert_eq!(kept.iter().flatten().count(), 1);
        // The third client was deleted between the page and the read of its row.
        let items = listing
            .fill(&page, kept, vec![(5, rs[1].clone())])
            .expect("fill");
        let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
        assert_eq!(ids, [rs[0].id, rs[1].id]);
        assert!(Arc::ptr_eq(&items[0], &first[0]));
        let list = ClientList::new(items, vec![Live::default(); 2]);
        let mut out = Vec::new();
        list.write_json(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v.as_array().map(Vec::len), Some(2));
        let empty = ClientList::new(Vec::new(), Vec::new());
        let mut out = Vec::new();
        empty.write_json(&mut out);
        assert_eq!(out, b"[]");
    }

    #[test]
    fn the_cache_never_passes_its_budget() {
        let listing = Listing::default();
        let row = rows().remove(1);
        let cost = Item::render(0, row.clone()).expect("render").cost();
        let fits = BUDGET / cost;
        for id in 0..(fits as i64 * 3) {
            let mut r = row.clone();
            r.id = id;
            let page = [version(id, 0)];
            listing.fill(&page, vec![None], vec![(0, r)]).expect("fill");
            assert!(listing.bytes() <= BUDGET);
        }
        assert!(listing.bytes() > 0);
        // Keeping the same client again replaces its item instead of adding to the count.
        let before = listing.bytes();
        let mut r = row.clone();
        r.id = fits as i64 * 3 - 1;
        listing
            .fill(&[version(r.id, 1)], vec![None], vec![(1, r)])
            .expect("fill");
        assert_eq!(listing.bytes(), before);
    }
}
