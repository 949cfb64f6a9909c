//! The request as handlers see it: path parameters, query, JSON body (content type, size
//! limit and unknown-field checks live here, once), the caller, and what the audit log
//! should name as the request's target.

use super::query::Query;
use crate::api::error::{ApiError, ApiResult, ErrorCode};
use crate::auth::Principal;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, USER_AGENT};
use hyper::{HeaderMap, Method};
use serde::de::DeserializeOwned;
use std::net::IpAddr;

pub struct Request {
    pub method: Method,
    pub path: String,
    pub params: Vec<(String, String)>,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Option<Incoming>,
    pub client_ip: IpAddr,
    /// Set by the router for routes that require authentication.
    pub principal: Option<Principal>,
    /// What the audit log records as the target (default: the request path).
    pub audit_target: Option<String>,
    /// Who the audit log names when there is no principal (the username of a login attempt).
    pub audit_username: Option<String>,
    /// Largest body accepted: small until the caller is authenticated (`api::dispatch`).
    pub max_body: usize,
    /// When the whole body must have arrived (`http.body_read_timeout_secs` after the head).
    pub body_deadline: tokio::time::Instant,
    /// `http.body_read_timeout_secs`: for a streamed body ([`Request::body_stream`]), the
    /// longest wait for its next piece.
    pub body_timeout: std::time::Duration,
}

impl Request {
    /// The caller; only routes declared with an access requirement have one.
    pub fn principal(&self) -> ApiResult<&Principal> {
        self.principal
            .as_ref()
            .ok_or_else(|| ApiError::unauthorized("authentication required"))
    }

    /// A path parameter as given (`{file}` in `/logs/export/download/{file}`).
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// A path parameter that must be an integer id, e.g. `{id}` in `/users/{id}`.
    pub fn id(&self, name: &str) -> ApiResult<i64> {
        let raw = self
            .params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        raw.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| ApiError::validation(name, format!("{name} must be a positive integer")))
    }

    pub fn query(&self) -> ApiResult<Query> {
        Query::parse(self.query.as_deref().unwrap_or(""))
    }

    pub fn user_agent(&self) -> Option<String> {
        self.headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect())
    }

    /// The `Host` header (port included), `""` if absent.
    pub fn host(&self) -> &str {
        self.headers
            .get(hyper::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The bearer token of the `Authorization` header, if any.
    pub fn bearer_token(&self) -> Option<&str> {
        Self::bearer_from(&self.headers)
    }

    /// The bearer token of an `Authorization` header in `headers`.
    pub fn bearer_from(headers: &hyper::HeaderMap) -> Option<&str> {
        let v = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    /// The whole body, at most `max_body` bytes (413 beyond).
    pub async fn body_bytes(&mut self) -> ApiResult<bytes::Bytes> {
        let too_large = || too_large(self.max_body as u64);
        if self
            .declared_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(too_large());
        }
        let Some(body) = self.body.take() else {
            return Ok(bytes::Bytes::new());
        };
        // Late: 408 with `Connection: close` rather than a silent close, so that a client
        // on a slow link learns why; the connection cannot carry another request anyway
        // (the rest of the body would be read as one), and closing it frees the slot.
        let read = Limited::new(body, self.max_body).collect();
        let Ok(read) = tokio::time::timeout_at(self.body_deadline, read).await else {
            return Err(ApiError::new(
                ErrorCode::RequestTimeout,
                "the request body did not arrive in time",
            ));
        };
        match read {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(_) => Err(ApiError::bad_request("could not read the request body")),
        }
    }

    /// `Content-Length`, if the client sent one.
    fn declared_length(&self) -> Option<u64> {
        self.headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    }

    /// The body as it arrives, for a route that streams it to disk rather than hold it (a
    /// backup upload): at most `cap` bytes — 413 at once when `Content-Length` says more,
    /// else as soon as more has come. The whole-body deadline does not apply (256 MiB take
    /// minutes on a slow link); each piece must come within `http.body_read_timeout_secs`
    /// of the one before (408), so a stalled body still ends.
    pub fn body_stream(&mut self, cap: u64) -> ApiResult<BodyStream> {
        if self.declared_length().is_some_and(|n| n > cap) {
            return Err(too_large(cap));
        }
        Ok(BodyStream {
            body: self.body.take(),
            cap,
            read: 0,
            idle: self.body_timeout,
        })
    }

    /// Parses the body as JSON into `T`. `T` should be `#[serde(deny_unknown_fields)]`.
    /// Wrong content type or broken JSON: 400. Unknown field, missing field, wrong type: 422
    /// naming the field.
    pub async fn json<T: DeserializeOwned>(&mut self) -> ApiResult<T> {
        let body = self.json_body().await?;
        parse_json(&body)
    }

    /// Like [`json`](Self::json) for a body that is a JSON array (the ids of a batch).
    pub async fn json_array<T: DeserializeOwned>(&mut self) -> ApiResult<T> {
        let body = self.json_body().await?;
        parse_json_array(&body)
    }

    /// The body of a request that must be `application/json`.
    async fn json_body(&mut self) -> ApiResult<bytes::Bytes> {
        let ct = self
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(ct) {
            return Err(ApiError::bad_request(
                "Content-Type must be application/json",
            ));
        }
        self.body_bytes().await
    }

    /// Like [`json`](Self::json), but an empty body (any content type) is `T::default()`:
    /// for actions whose body is optional (`curl -X POST` without `-d`).
    pub async fn json_or_default<T: DeserializeOwned + Default>(&mut self) -> ApiResult<T> {
        let ct = self
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = self.body_bytes().await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        if !is_json(&ct) {
            return Err(ApiError::bad_request(
                "Content-Type must be application/json",
            ));
        }
        parse_json(&body)
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("request body exceeds {limit} bytes"),
    )
}

/// A request body read piece by piece ([`Request::body_stream`]).
pub struct BodyStream {
    body: Option<Incoming>,
    cap: u64,
    read: u64,
    idle: std::time::Duration,
}

impl BodyStream {
    /// The next piece of the body; `None` at its end.
    pub async fn next(&mut self) -> ApiResult<Option<bytes::Bytes>> {
        while let Some(body) = self.body.as_mut() {
            let frame = match tokio::time::timeout(self.idle, body.frame()).await {
                Err(_) => {
                    return Err(ApiError::new(
                        ErrorCode::RequestTimeout,
                        "the request body stopped coming",
                    ))
                }
                Ok(None) => break,
                Ok(Some(Err(_))) => {
                    return Err(ApiError::bad_request("could not read the request body"))
                }
                Ok(Some(Ok(frame))) => frame,
            };
            // Trailers carry no data.
            let Ok(data) = frame.into_data() else {
                continue;
            };
            self.read = self.read.saturating_add(data.len() as u64);
            if self.read > self.cap {
                return Err(too_large(self.cap));
            }
            return Ok(Some(data));
        }
        self.body = None;
        Ok(None)
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// A JSON object → `T` with the contract's error mapping (see [`Request::json`]). Anything
/// else is a 422: serde would fill a struct from an array too, field by position
/// (`["alice", "pw"]` as a new user).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    parse_document(body, b'{', "a JSON object")
}

/// A JSON array → `T`, otherwise like [`parse_json`].
pub fn parse_json_array<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    parse_document(body, b'[', "a JSON array")
}

fn parse_document<T: DeserializeOwned>(body: &[u8], open: u8, what: &str) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "request body must be a JSON document",
        ));
    }
    // Syntax first, into a generic value, so broken JSON is always a 400 even when its
    // first part already fails the typed parse below. The typed parse then reads that
    // value: one derived deserializer per input type over `Value`, instead of one over the
    // byte parser each, which inlined a JSON parser into every handler (−15 KB on mipsel).
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    let shape = match value {
        serde_json::Value::Object(_) => b'{',
        serde_json::Value::Array(_) => b'[',
        _ => 0,
    };
    if shape != open {
        return Err(ApiError::validation(
            "body",
            format!("request body must be {what}"),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        json_error(&path, &inner)
    })
}

fn json_error(path: &str, e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            let msg = strip_position(&e.to_string());
            // serde_path_to_error's path already ends in an unknown field's name; a missing
            // field is reported on the enclosing object and named only in backticks.
            let missing = backticked(&msg).filter(|_| msg.starts_with("missing field"));
            let field = match (path, missing) {
                (".", Some(n)) => n.to_string(),
                (".", None) => "body".to_string(),
                (p, Some(n)) => format!("{p}.{n}"),
                (p, None) => p.to_string(),
            };
            ApiError::validation(field, msg)
        }
        _ => ApiError::bad_request(format!("malformed JSON: {e}")),
    }
}

fn backticked(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

/// serde_json appends " at line L column C"; useless for a one-field message.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

pub use crate::input::nullable;

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct In {
        name: String,
        n: Option<u32>,
        #[serde(default, deserialize_with = "nullable")]
        email: Option<Option<String>>,
    }

    fn err(body: &str) -> ApiError {
        parse_json::<In>(body.as_bytes()).unwrap_err()
    }

    fn field(e: &ApiError) -> &str {
        e.details.as_ref().map(|d| d.field.as_str()).unwrap_or("")
    }

    #[test]
    fn syntax_errors_are_400() {
        for b in [
            "",
            "  ",
            "{",
            "{\"name\":",
            "nope",
            "{\"name\":\"a\"} x",
            "{} x",
        ] {
            assert_eq!(err(b).code, ErrorCode::BadRequest, "{b:?}");
        }
    }

    #[test]
    fn data_errors_are_422_with_field() {
        let e = err(r#"{"name":"a","nmae":1}"#);
        assert_eq!((e.code, field(&e)), (ErrorCode::Validation, "nmae"));
        let e = err(r#"{"n":1}"#);
        assert_eq!(field(&e), "name");
        let e = err(r#"{"name":5}"#);
        assert_eq!(field(&e), "name");
        assert!(!e.message.contains("line"), "{}", e.message);
        let e = err(r#"{"name":"a","n":-1}"#);
        assert_eq!(field(&e), "n");
        let e = err("5");
        assert_eq!(field(&e), "body");
    }

    /// serde fills a struct from an array by position; a request struct takes objects only.
    #[test]
    fn a_struct_body_must_be_an_object() {
        for b in [r#"["a", 1, null]"#, "[null, null]", " []", "null", "\"a\""] {
            let e = err(b);
            assert_eq!((e.code, field(&e)), (ErrorCode::Validation, "body"), "{b}");
        }
        assert!(parse_json::<In>(br#" {"name":"a"}"#).is_ok());
        let ids: Vec<i64> = parse_json_array(b"[1, 2]").expect("array");
        assert_eq!(ids, [1, 2]);
        let e = parse_json_array::<Vec<i64>>(br#"{"ids":[1]}"#).unwrap_err();
        assert_eq!((e.code, field(&e)), (ErrorCode::Validation, "body"));
    }

    #[test]
    fn nullable_tells_absent_from_null() {
        let a: In = parse_json(br#"{"name":"a"}"#).expect("ok");
        let b: In = parse_json(br#"{"name":"a","email":null}"#).expect("ok");
        let c: In = parse_json(br#"{"name":"a","email":"x@y"}"#).expect("ok");
        assert_eq!(a.email, None);
        assert_eq!(b.email, Some(None));
        assert_eq!(c.email, Some(Some("x@y".into())));
    }

    #[test]
    fn content_type_essence() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
    }
}
