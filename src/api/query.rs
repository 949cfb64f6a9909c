//! Query strings and pagination. Every route declares the parameters it accepts
//! (`Route::query_params`, none by default) and the pipeline checks them with
//! [`Query::only`] before the handler runs: an unknown parameter is a 422 naming it, like an
//! unknown JSON field, so a typo such as `?sise=50` is not silently ignored — on every route,
//! including those that take no parameters. Handlers then take the values by name.

use crate::api::error::{ApiError, ApiResult};
use serde::Serialize;
use std::str::FromStr;

#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: &str) -> ApiResult<Query> {
        Ok(Query {
            pairs: form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        })
    }

    /// The last value given for `name` (an empty value counts as absent).
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.take_given(name).filter(|v| !v.is_empty())
    }

    /// The last value given for `name`, even empty: for a parameter with a fixed set of
    /// values, where `?format=` is none of them (the caller's 422), not the default.
    pub fn take_choice(&mut self, name: &str) -> Option<String> {
        self.take_given(name)
    }

    /// The last value given for `name`, empty or not.
    fn take_given(&mut self, name: &str) -> Option<String> {
        let mut found = None;
        self.pairs.retain(|(k, v)| {
            if k == name {
                found = Some(v.clone());
                false
            } else {
                true
            }
        });
        found
    }

    /// `take` and parse; a value that does not parse is a 422 naming the parameter. An empty
    /// value (`?page=`) is not a number or a boolean either: a 422 too, not the default.
    pub fn take_parsed<T: FromStr>(&mut self, name: &str, what: &str) -> ApiResult<Option<T>> {
        match self.take_given(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::validation(name, format!("{name} must be {what}"))),
        }
    }

    /// Errors on the first parameter not in `known`.
    pub fn only(&self, known: &[&str]) -> ApiResult<()> {
        match self
            .pairs
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            Some((k, _)) => {
                let shown: String = k.chars().take(64).collect();
                Err(ApiError::validation(
                    shown.clone(),
                    format!("unknown query parameter {shown:?}"),
                ))
            }
            None => Ok(()),
        }
    }
}

pub use crate::input::{Page, PageMeta, DEFAULT_SIZE, MAX_SIZE};

impl Page {
    pub fn from_query(q: &mut Query) -> ApiResult<Page> {
        let page = q.take_parsed::<u32>("page", "an integer ≥ 1")?.unwrap_or(1);
        if page == 0 {
            return Err(ApiError::validation("page", "page must be an integer ≥ 1"));
        }
        let size = q
            .take_parsed::<u32>("size", "an integer from 1 to 100")?
            .unwrap_or(DEFAULT_SIZE);
        if !(1..=MAX_SIZE).contains(&size) {
            return Err(ApiError::validation(
                "size",
                "size must be an integer from 1 to 100",
            ));
        }
        Ok(Page { page, size })
    }

    /// `{"<key>": items, "pagination": {…}}` — the contract's list shape — serialised
    /// directly: byte for byte what [`Page::render`] gives when each item serialises its
    /// fields in sorted key order (a JSON map's), without building a map per item.
    pub fn paged<T: Serialize>(&self, key: &'static str, items: Vec<T>, total: u64) -> Paged<T> {
        Paged {
            key,
            items,
            meta: self.meta(total),
        }
    }

    /// `{"<key>": items, "pagination": {…}}` — the contract's list shape.
    pub fn render<T: Serialize>(&self, key: &str, items: Vec<T>, total: u64) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert(key.into(), serde_json::to_value(items).unwrap_or_default());
        m.insert(
            "pagination".into(),
            serde_json::to_value(self.meta(total)).unwrap_or_default(),
        );
        serde_json::Value::Object(m)
    }
}

/// A page of a list, ready to serialise (see [`Page::paged`]).
pub struct Paged<T> {
    key: &'static str,
    items: Vec<T>,
    meta: PageMeta,
}

/// `PageMeta` with its keys sorted, as in a JSON map.
#[derive(Serialize)]
struct SortedMeta {
    page: u32,
    pages: u64,
    size: u32,
    total: u64,
}

impl From<&PageMeta> for SortedMeta {
    fn from(m: &PageMeta) -> SortedMeta {
        SortedMeta {
            page: m.page,
            pages: m.pages,
            size: m.size,
            total: m.total,
        }
    }
}

impl Page {
    /// [`Page::paged`] with the items already JSON (`items` writes their array), written
    /// into `out`: byte for byte what `paged` gives for the same items.
    pub fn write_paged(
        &self,
        out: &mut Vec<u8>,
        key: &'static str,
        items: impl FnOnce(&mut Vec<u8>),
        total: u64,
    ) {
        let put_items = |out: &mut Vec<u8>| {
            out.push(b'"');
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
            items(out);
        };
        let put_meta = |out: &mut Vec<u8>| {
            out.extend_from_slice(b"\"pagination\":");
            let written = serde_json::to_writer(&mut *out, &SortedMeta::from(&self.meta(total)));
            debug_assert!(written.is_ok(), "numbers always serialise");
        };
        out.push(b'{');
        if key < "pagination" {
            put_items(out);
            out.push(b',');
            put_meta(out);
        } else {
            put_meta(out);
            out.push(b',');
            put_items(out);
        }
        out.push(b'}');
    }
}

impl<T: Serialize> Serialize for Paged<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let meta = SortedMeta::from(&self.meta);
        let mut m = s.serialize_map(Some(2))?;
        if self.key < "pagination" {
            m.serialize_entry(self.key, &self.items)?;
            m.serialize_entry("pagination", &meta)?;
        } else {
            m.serialize_entry("pagination", &meta)?;
            m.serialize_entry(self.key, &self.items)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(q: &str) -> ApiResult<Page> {
        let mut q = Query::parse(q)?;
        let p = Page::from_query(&mut q)?;
        q.only(&[])?;
        Ok(p)
    }

    fn field(r: ApiResult<Page>) -> String {
        r.unwrap_err().details.map(|d| d.field).unwrap_or_default()
    }

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(page("").expect("ok"), Page { page: 1, size: 20 });
        assert_eq!(
            page("page=3&size=100").expect("ok"),
            Page { page: 3, size: 100 }
        );
        assert_eq!(page("size=1").expect("ok").size, 1);
        assert_eq!(field(page("page=0")), "page");
        assert_eq!(field(page("page=-1")), "page");
        assert_eq!(field(page("page=x")), "page");
        assert_eq!(field(page("size=0")), "size");
        assert_eq!(field(page("size=101")), "size");
        assert_eq!(field(page("size=99999999999")), "size");
        assert_eq!(field(page("sise=5")), "sise");
        assert_eq!(field(page("page=")), "page");
        assert_eq!(field(page("page=2&size=")), "size");
    }

    #[test]
    fn meta_counts_pages() {
        let p = Page { page: 2, size: 20 };
        assert_eq!(p.offset(), 20);
        assert_eq!(p.meta(0).pages, 0);
        assert_eq!(p.meta(20).pages, 1);
        assert_eq!(p.meta(21).pages, 2);
    }

    #[test]
    fn only_declared_parameters_pass() {
        let q = Query::parse("page=2&size=5").expect("parse");
        assert!(q.only(&["page", "size", "search"]).is_ok());
        assert_eq!(
            field(q.only(&["page"]).map(|_| Page { page: 1, size: 1 })),
            "size"
        );
        let q = Query::parse("x%00y=1").expect("parse");
        assert_eq!(
            field(q.only(&[]).map(|_| Page { page: 1, size: 1 })),
            "x\0y"
        );
        let long = format!("{}=1", "k".repeat(5000));
        let e = Query::parse(&long).expect("parse").only(&[]).unwrap_err();
        assert_eq!(e.details.map(|d| d.field.len()), Some(64));
        assert!(Query::parse("").expect("parse").only(&[]).is_ok());
    }

    #[test]
    fn decoding_and_last_value_wins() {
        let mut q = Query::parse("search=a%20b+c&role=x&role=user").expect("parse");
        assert_eq!(q.take("search").as_deref(), Some("a b c"));
        assert_eq!(q.take("role").as_deref(), Some("user"));
        let mut q = Query::parse("search=&enabled=").expect("parse");
        assert_eq!(q.take("search"), None, "an empty text filter is no filter");
        assert!(q.take_parsed::<bool>("enabled", "true or false").is_err());
        let mut q = Query::parse("format=").expect("parse");
        assert_eq!(q.take_choice("format").as_deref(), Some(""));
        assert!(q.only(&[]).is_ok(), "every parameter was taken");
    }

    #[test]
    fn paged_is_byte_for_byte_render() {
        #[derive(Serialize, Clone)]
        struct Item {
            a: u8,
            b: &'static str,
        }
        let items = vec![Item { a: 1, b: "x" }, Item { a: 2, b: "y" }];
        let p = Page { page: 2, size: 2 };
        for key in ["clients", "servers", "zones"] {
            assert_eq!(
                serde_json::to_string(&p.paged(key, items.clone(), 5)).expect("paged"),
                serde_json::to_string(&p.render(key, items.clone(), 5)).expect("render"),
            );
            let mut written = Vec::new();
            let array = serde_json::to_vec(&items).expect("items");
            p.write_paged(&mut written, key, |out| out.extend_from_slice(&array), 5);
            assert_eq!(
                String::from_utf8(written).expect("utf-8"),
                serde_json::to_string(&p.paged(key, items.clone(), 5)).expect("paged"),
                "written with the items already JSON"
            );
        }
    }
}
