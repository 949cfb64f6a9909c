//! `GET /openapi.json`: the OpenAPI 3.1 document of this API (`openapi/openapi.json` in the
//! repository). `build.rs` embeds it minified and gzipped; a client that accepts gzip gets
//! those bytes as they are, any other gets them inflated into a buffer of the size recorded
//! at build time (so a corrupt embed cannot grow it). Public: it holds no secrets, and a
//! client needs it before it has a token.

use super::request::Request;
use super::response::Reply;
use super::router::{Access, Router};
use crate::api::error::{ApiError, ApiResult};
use crate::app::App;
use crate::h;
use bytes::Bytes;
use hyper::header::ACCEPT_ENCODING;
use hyper::{Method, StatusCode};
use std::io::Read;
use std::sync::Arc;

/// The minified document, gzip-compressed.
pub static GZIPPED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openapi.json.gz"));
/// Its inflated length in bytes.
pub const LEN: usize = include!(concat!(env!("OUT_DIR"), "/openapi_len.rs"));

const JSON: &str = "application/json";

pub fn routes(r: &mut Router) {
    r.add(
        Method::GET,
        "/openapi.json",
        Access::Public,
        "openapi.get",
        h!(document),
    );
}

async fn document(_: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let accepts = req
        .headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(accepts_gzip);
    let reply = if accepts {
        Reply::raw(StatusCode::OK, Bytes::from_static(GZIPPED), JSON)
            .encoded(Some("gzip"), "Accept-Encoding")
    } else {
        let body = inflate().map_err(|e| {
            log::error!("embedded OpenAPI document: {e}");
            ApiError::internal()
        })?;
        Reply::raw(StatusCode::OK, body.into(), JSON).encoded(None, "Accept-Encoding")
    };
    Ok(reply)
}

/// The document as JSON text: at most [`LEN`] bytes are inflated.
pub fn inflate() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(LEN);
    flate2::read::GzDecoder::new(GZIPPED)
        .take(LEN as u64)
        .read_to_end(&mut out)?;
    if out.len() != LEN {
        return Err(std::io::Error::other("embedded document is truncated"));
    }
    Ok(out)
}

/// Whether an `Accept-Encoding` value (`gzip, deflate`, `gzip;q=0`, `*`) admits gzip.
pub fn accepts_gzip(header: &str) -> bool {
    let mut gzip = None;
    let mut any = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q > 0.0);
        } else if coding == "*" {
            any = Some(q > 0.0);
        }
    }
    gzip.or(any).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn doc() -> Value {
        serde_json::from_slice(&inflate().expect("inflates")).expect("JSON")
    }

    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

    /// The coverage rule: the router's (method, path) pairs are exactly the document's.
    #[test]
    fn document_covers_exactly_the_routes() {
        let routes: BTreeSet<(String, String)> = crate::api::routes()
            .entries()
            .map(|(m, p, _)| (m.as_str().to_lowercase(), p.to_string()))
            .collect();
        let doc = doc();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (key, _) in item.as_object().expect("path item") {
                if METHODS.contains(&key.as_str()) {
                    documented.insert((key.clone(), path.clone()));
                }
            }
        }
        let undocumented: Vec<_> = routes.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routes).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "routes missing from openapi/openapi.json: {undocumented:?}; \
             documented but not routed: {unrouted:?}"
        );
    }

    /// The query parameters each operation documents are exactly those its route accepts
    /// (the pipeline refuses any other with a 422).
    #[test]
    fn query_parameters_match_the_routes() {
        let doc = doc();
        let resolve = |p: &Value| -> Value {
            match p["$ref"].as_str() {
                Some(r) => {
                    let name = r.rsplit('/').next().unwrap_or("");
                    doc["components"]["parameters"][name].clone()
                }
                None => p.clone(),
            }
        };
        let mut wrong = Vec::new();
        for (m, path, route) in crate::api::routes().routes() {
            let op = &doc["paths"][path][m.as_str().to_lowercase()];
            // Parameters of the operation and of its path item (shared by its methods).
            let documented: BTreeSet<String> =
                [&op["parameters"], &doc["paths"][path]["parameters"]]
                    .into_iter()
                    .filter_map(Value::as_array)
                    .flatten()
                    .map(resolve)
                    .filter(|p| p["in"] == "query")
                    .filter_map(|p| p["name"].as_str().map(str::to_string))
                    .collect();
            let accepted: BTreeSet<String> = route.query.iter().map(|q| q.to_string()).collect();
            if documented != accepted {
                wrong.push(format!(
                    "{m} {path}: documented {documented:?}, accepted {accepted:?}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// Public routes say `security: []`; every other one inherits the bearer requirement.
    #[test]
    fn security_follows_access() {
        let doc = doc();
        assert_eq!(doc["security"], serde_json::json!([{"bearerAuth": []}]));
        for (m, path, access) in crate::api::routes().entries() {
            let op = &doc["paths"][path][m.as_str().to_lowercase()];
            let public = op.get("security") == Some(&serde_json::json!([]));
            assert_eq!(
                public,
                access == Access::Public,
                "{m} {path}: security must be [] exactly when the route is public"
            );
        }
    }

    #[test]
    fn embedded_document_is_openapi_3_1_with_our_version() {
        let doc = doc();
        assert!(doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")));
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn accept_encoding() {
        for yes in [
            "gzip",
            "deflate, gzip",
            "GZIP;q=0.5",
            "*",
            "br;q=1, *;q=0.1",
            "x-gzip",
        ] {
            assert!(accepts_gzip(yes), "{yes}");
        }
        for no in [
            "",
            "identity",
            "deflate, br",
            "gzip;q=0",
            "*;q=0",
            "gzip;q=0, *",
        ] {
            assert!(!accepts_gzip(no), "{no}");
        }
    }
}
