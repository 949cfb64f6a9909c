//! Response rendering: the contract's success and error envelopes.
//! Handlers return a [`Reply`] or an [`ApiError`]; only this file builds HTTP bodies.

use crate::error::ApiError;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_ENCODING, CONTENT_TYPE,
    RETRY_AFTER, VARY,
};
use hyper::{Response, StatusCode};
use serde::Serialize;

pub type Body = Full<Bytes>;

/// A successful answer, already serialised: a JSON envelope, or a file download.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    content_type: &'static str,
    /// `Content-Disposition: attachment; filename=…` for downloads.
    filename: Option<String>,
    /// The body holds secrets (client private keys): `Cache-Control: no-store`.
    secret: bool,
    /// `Content-Encoding` of a body served as stored (the gzipped OpenAPI document).
    encoding: Option<&'static str>,
    /// `Vary` of an answer that depends on a request header (`Accept-Encoding`).
    vary: Option<&'static str>,
}

#[derive(Serialize)]
struct Success<'a, T: Serialize> {
    success: bool,
    data: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    timestamp: String,
}

#[derive(Serialize)]
struct Failure<'a> {
    success: bool,
    error: ErrorBody<'a>,
    timestamp: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a crate::error::Details>,
}

const JSON: &str = "application/json";

impl Reply {
    /// 200 with `data`.
    pub fn ok<T: Serialize>(data: T) -> Reply {
        Self::envelope(StatusCode::OK, data, None)
    }

    /// 200 with `data` and a human-readable `message`.
    pub fn ok_with<T: Serialize>(data: T, message: &str) -> Reply {
        Self::envelope(StatusCode::OK, data, Some(message))
    }

    /// 201 for a created resource.
    pub fn created<T: Serialize>(data: T, message: &str) -> Reply {
        Self::envelope(StatusCode::CREATED, data, Some(message))
    }

    /// 200 with only a message (`data` is `null`).
    pub fn message(message: &str) -> Reply {
        Self::envelope(StatusCode::OK, (), Some(message))
    }

    fn envelope<T: Serialize>(status: StatusCode, data: T, message: Option<&str>) -> Reply {
        let env = Success {
            success: true,
            data,
            message,
            timestamp: crate::time::rfc3339(crate::time::now()),
        };
        match serde_json::to_vec(&env) {
            Ok(body) => Reply::raw(status, body.into(), JSON),
            Err(e) => {
                log::error!("cannot serialise response: {e}");
                let err = render_error_body(&ApiError::internal());
                Reply::raw(StatusCode::INTERNAL_SERVER_ERROR, err, JSON)
            }
        }
    }

    pub fn raw(status: StatusCode, body: Bytes, content_type: &'static str) -> Reply {
        Reply {
            status,
            body,
            content_type,
            filename: None,
            secret: false,
            encoding: None,
            vary: None,
        }
    }

    /// The body is already encoded (`gzip`); `vary` names the request header that chose it.
    pub fn encoded(mut self, encoding: Option<&'static str>, vary: &'static str) -> Reply {
        self.encoding = encoding;
        self.vary = Some(vary);
        self
    }

    /// 200 with a file to save (`filename` is reduced to `[A-Za-z0-9._-]`).
    pub fn file(body: impl Into<Bytes>, content_type: &'static str, filename: &str) -> Reply {
        let safe: String = filename
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
                _ => '_',
            })
            .collect();
        Reply {
            filename: Some(safe),
            ..Reply::raw(StatusCode::OK, body.into(), content_type)
        }
    }

    /// Marks the answer as holding secrets, so no cache keeps it.
    pub fn secret(mut self) -> Reply {
        self.secret = true;
        self
    }

    pub fn into_response(self) -> Response<Body> {
        let mut r = Response::new(Full::new(self.body));
        *r.status_mut() = self.status;
        let h = r.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        if let Some(name) = self.filename {
            let v = format!("attachment; filename=\"{name}\"");
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(CONTENT_DISPOSITION, v);
            }
        }
        if self.secret {
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        if let Some(e) = self.encoding {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static(e));
        }
        if let Some(v) = self.vary {
            h.insert(VARY, HeaderValue::from_static(v));
        }
        r
    }
}

fn render_error_body(e: &ApiError) -> Bytes {
    let env = Failure {
        success: false,
        error: ErrorBody {
            code: e.code.as_str(),
            message: &e.message,
            details: e.details.as_ref(),
        },
        timestamp: crate::time::rfc3339(crate::time::now()),
    };
    serde_json::to_vec(&env)
        .map(Bytes::from)
        .unwrap_or_else(|_| Bytes::from_static(b"{\"success\":false}"))
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = Response::new(Full::new(render_error_body(e)));
    *r.status_mut() = e.status();
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    if let Some(secs) = e.retry_after {
        h.insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    if let Some(allow) = e
        .allow
        .as_deref()
        .and_then(|a| HeaderValue::from_str(a).ok())
    {
        h.insert(ALLOW, allow);
    }
    r
}
