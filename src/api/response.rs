//! Response rendering: the contract's success and error envelopes.
//! Handlers return a [`Reply`] or an [`ApiError`]; only this file builds HTTP bodies.
//! A body is either bytes already in memory or a file streamed from disk in
//! [`FILE_CHUNK`]-sized reads ([`FileBody`]), so a download costs the same memory however
//! large the file and however slowly the client reads.

use crate::api::error::{ApiError, ErrorCode};
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_DISPOSITION, CONTENT_ENCODING,
    CONTENT_TYPE, RETRY_AFTER, VARY,
};
use hyper::{Response, StatusCode};
use serde::Serialize;
use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};

/// One read from a streamed file. hyper buffers at most `http.max_header_bytes` of output
/// before it stops asking for more, so a slow reader holds about one chunk plus that.
pub const FILE_CHUNK: usize = 16 * 1024;

/// Every response body.
pub enum Body {
    /// In memory (envelopes, small files); `None` once sent.
    Bytes(Option<Bytes>),
    File(FileBody),
}

impl Body {
    pub fn empty() -> Body {
        Body::Bytes(None)
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body::Bytes(Some(b).filter(|b| !b.is_empty()))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            Body::Bytes(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::File(f) => f.poll_chunk(cx).map(|c| c.map(|c| c.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Bytes(b) => b.is_none(),
            Body::File(f) => f.remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Bytes(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::File(f) => SizeHint::with_exact(f.remaining),
        }
    }
}

/// A file sent in [`FILE_CHUNK`] reads on the blocking pool. `guard` (a concurrency permit)
/// lives as long as the body, that is until the response is sent or the client is gone.
pub struct FileBody {
    state: FileState,
    remaining: u64,
    _guard: Box<dyn Send + Sync>,
}

enum FileState {
    Idle(std::fs::File),
    Reading(tokio::task::JoinHandle<(std::fs::File, std::io::Result<Bytes>)>),
    Done,
}

impl FileBody {
    /// Sends `len` bytes of `file` from its current position.
    pub fn new(file: std::fs::File, len: u64, guard: impl Send + Sync + 'static) -> FileBody {
        FileBody {
            state: FileState::Idle(file),
            remaining: len,
            _guard: Box::new(guard),
        }
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Bytes>>> {
        loop {
            match std::mem::replace(&mut self.state, FileState::Done) {
                FileState::Done => return Poll::Ready(None),
                FileState::Idle(_) if self.remaining == 0 => return Poll::Ready(None),
                FileState::Idle(mut file) => {
                    let want =
                        FILE_CHUNK.min(usize::try_from(self.remaining).unwrap_or(FILE_CHUNK));
                    self.state = FileState::Reading(tokio::task::spawn_blocking(move || {
                        let mut buf = vec![0; want];
                        let read = file.read(&mut buf).map(|n| {
                            buf.truncate(n);
                            Bytes::from(buf)
                        });
                        (file, read)
                    }));
                }
                FileState::Reading(mut job) => {
                    let done = match Pin::new(&mut job).poll(cx) {
                        Poll::Pending => {
                            self.state = FileState::Reading(job);
                            return Poll::Pending;
                        }
                        Poll::Ready(done) => done,
                    };
                    return Poll::Ready(Some(self.took(done)));
                }
            }
        }
    }

    /// The outcome of one read; a file shorter than announced is an error (the client
    /// was promised `Content-Length` bytes).
    fn took(
        &mut self,
        done: Result<(std::fs::File, std::io::Result<Bytes>), tokio::task::JoinError>,
    ) -> std::io::Result<Bytes> {
        let (file, read) = done.map_err(std::io::Error::other)?;
        let chunk = read?;
        if chunk.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
        self.state = FileState::Idle(file);
        Ok(chunk)
    }
}

/// A successful answer, already serialised: a JSON envelope, or a file download.
pub struct Reply {
    pub status: StatusCode,
    body: Body,
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
    details: Option<&'a crate::api::error::Details>,
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

    /// 202: the work asked for has started; `data` is the job to poll.
    pub fn accepted<T: Serialize>(data: T, message: &str) -> Reply {
        Self::envelope(StatusCode::ACCEPTED, data, Some(message))
    }

    /// 200 with `data` written by `data` as JSON we render ourselves (the client list's
    /// kept items): the same envelope as [`ok`](Self::ok), without serialising `data` again.
    pub fn ok_json(data: impl FnOnce(&mut Vec<u8>)) -> Reply {
        let mut body = Vec::with_capacity(4096);
        body.extend_from_slice(b"{\"success\":true,\"data\":");
        data(&mut body);
        body.extend_from_slice(b",\"timestamp\":\"");
        body.extend_from_slice(crate::time::rfc3339(crate::time::now()).as_bytes());
        body.extend_from_slice(b"\"}");
        Reply::raw(StatusCode::OK, body.into(), JSON)
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
            body: body.into(),
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
        Reply {
            filename: Some(safe_filename(filename)),
            ..Reply::raw(StatusCode::OK, body.into(), content_type)
        }
    }

    /// Like [`file`](Self::file), streamed from disk.
    pub fn file_stream(body: FileBody, content_type: &'static str, filename: &str) -> Reply {
        Reply {
            filename: Some(safe_filename(filename)),
            body: Body::File(body),
            ..Reply::raw(StatusCode::OK, Bytes::new(), content_type)
        }
    }

    /// Marks the answer as holding secrets, so no cache keeps it.
    pub fn secret(mut self) -> Reply {
        self.secret = true;
        self
    }

    pub fn into_response(self) -> Response<Body> {
        let mut r = Response::new(self.body);
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

fn safe_filename(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .collect()
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
    let mut r = Response::new(Body::from(render_error_body(e)));
    *r.status_mut() = e.status();
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    if e.code == ErrorCode::RequestTimeout {
        // The rest of a late body would be read as the next request.
        h.insert(CONNECTION, HeaderValue::from_static("close"));
    }
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

/// A whole HTTP/1.1 error response as bytes, for answers written before or instead of
/// hyper's (a refused connection, a request hyper could not parse). It closes the
/// connection.
pub fn error_bytes(e: &ApiError) -> Bytes {
    let body = render_error_body(e);
    let status = e.status();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {JSON}\r\ncontent-length: {}\r\nconnection: close\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if let Some(secs) = e.retry_after {
        out.push_str(&format!("retry-after: {secs}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    bytes.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::io::Write;

    #[tokio::test]
    async fn a_file_streams_in_bounded_chunks_and_keeps_its_guard_to_the_end() {
        let mut f = tempfile::tempfile().expect("tempfile");
        let data: Vec<u8> = (0..FILE_CHUNK * 3 + 7).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).expect("write");
        std::io::Seek::rewind(&mut f).expect("rewind");
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        let guard = permits.clone().try_acquire_owned().expect("permit");
        let mut body = Body::File(FileBody::new(f, data.len() as u64, guard));
        assert_eq!(
            hyper::body::Body::size_hint(&body).exact(),
            Some(data.len() as u64)
        );
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            let chunk = frame.expect("frame").into_data().expect("data");
            assert!(chunk.len() <= FILE_CHUNK);
            got.extend_from_slice(&chunk);
            assert_eq!(permits.available_permits(), 0, "held while sending");
        }
        assert_eq!(got, data);
        drop(body);
        assert_eq!(permits.available_permits(), 1);
    }

    #[tokio::test]
    async fn a_file_shorter_than_announced_is_an_error() {
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(b"abc").expect("write");
        std::io::Seek::rewind(&mut f).expect("rewind");
        let mut body = Body::File(FileBody::new(f, 10, ()));
        assert_eq!(body.frame().await.map(|f| f.is_ok()), Some(true));
        assert!(body.frame().await.is_some_and(|f| f.is_err()));
    }

    #[tokio::test]
    async fn ok_json_is_the_envelope_ok_gives() {
        async fn text(r: Reply) -> String {
            let b = r.body.collect().await.expect("body").to_bytes();
            String::from_utf8(b.to_vec()).expect("utf-8")
        }
        let data = serde_json::json!({"clients": [{"a": 1, "b": "x\"y"}], "n": null});
        let raw = serde_json::to_vec(&data).expect("data");
        let (ok, written) = (
            text(Reply::ok(&data)).await,
            text(Reply::ok_json(|out| out.extend_from_slice(&raw))).await,
        );
        let cut = |t: &str| t.split(",\"timestamp\":").next().unwrap_or("").to_string();
        assert_eq!(cut(&ok), cut(&written));
        let v: serde_json::Value = serde_json::from_str(&written).expect("json");
        assert!(
            v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{v}"
        );
        assert_eq!(v.as_object().map(|o| o.len()), Some(3));
    }

    #[test]
    fn error_bytes_are_a_closing_envelope_response() {
        let mut e = ApiError::new(ErrorCode::RateLimited, "slow down");
        e.retry_after = Some(3);
        let b = error_bytes(&e);
        let text = std::str::from_utf8(&b).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head");
        assert!(
            head.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nconnection: close"), "{head}");
        assert!(head.contains("\r\nretry-after: 3"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["error"]["code"], "RATE_LIMIT_EXCEEDED");
    }
}
