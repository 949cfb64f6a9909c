//! The REST API under `/api/v1`: the listener and connection loop ([`serve`]), the request
//! pipeline ([`handle`]: route → authenticate → authorise → handler → render → metrics,
//! request log, audit log), and one module of thin handlers per resource group.
//!
//! What one client can hold, and for how long (all in `[http]` of the config):
//! - connections: `max_connections` in all, `max_connections_per_ip` per source
//!   ([`conn::PerAddress`]; over it: 429 and close);
//! - a request head: `max_header_bytes` (hyper's buffer; 431) within
//!   `header_read_timeout_secs`, which also closes a kept-alive connection left idle;
//! - a body: [`PUBLIC_MAX_BODY`] on routes without authentication, `max_body_bytes` once the
//!   caller is authenticated (the body is read only after that), all of it within
//!   `body_read_timeout_secs` (408); a backup upload is streamed to disk instead
//!   ([`request::Request::body_stream`]: `backup.max_upload_mb`, each piece within
//!   `body_read_timeout_secs` of the one before);
//! - a download streams from disk ([`response::FileBody`]).

pub mod auth;
pub mod backup;
pub mod backup_schedules;
pub mod bgp;
pub mod conn;
pub mod error;
pub mod ipv6;
pub mod logs;
pub mod monitoring;
pub mod openapi;
pub mod query;
pub mod request;
pub mod response;
pub mod router;
pub mod status;
pub mod system;
pub mod tls;
pub mod users;
pub mod wireguard;
pub mod ws;

use crate::api::error::{ApiError, ErrorCode};
use crate::app::App;
use crate::store::logs::{self as logq, LogEntry};
use conn::{EnvelopeParseErrors, PerAddress};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use request::Request;
use response::{Body, Reply};
use router::{Access, Lookup, Route, Router};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

pub const PREFIX: &str = "/api/v1";

/// Largest body of a route that needs no token (`Access::Public`: login is < 1 KiB).
/// Anyone can send it, so it stays small whatever `http.max_body_bytes` says.
pub const PUBLIC_MAX_BODY: usize = 4096;

/// Connections over their source's limit being answered 429 at once; beyond, they are
/// just closed. Each answer takes at most [`REFUSAL_TIME`].
const REFUSALS: usize = 16;
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// The whole route table.
pub fn routes() -> Router {
    let mut r = Router::default();
    auth::routes(&mut r);
    users::routes(&mut r);
    status::routes(&mut r);
    wireguard::routes(&mut r);
    ipv6::routes(&mut r);
    bgp::routes(&mut r);
    logs::routes(&mut r);
    monitoring::routes(&mut r);
    system::routes(&mut r);
    backup::routes(&mut r);
    openapi::routes(&mut r);
    r
}

/// Accepts connections until `shutdown` resolves, then lets in-flight requests finish for
/// up to `shutdown_grace_secs`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tls::Acceptor>,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send,
) {
    // Graceful shutdown by hand: hyper-util's watcher cannot hold connections that may be
    // upgraded to WebSockets. `stop` tells every connection to finish its request and
    // close; the permits tell when all have.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let max = app.config.http.max_connections;
    let slots = Arc::new(Semaphore::new(max));
    let per_source = PerAddress::new(app.config.http.per_ip_limit());
    let refusals = Arc::new(Semaphore::new(REFUSALS));
    let handshake = Duration::from_secs(app.config.http.header_read_timeout_secs);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    log::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(place) = per_source.try_take(peer.ip()) else {
            refuse(stream, peer, tls.is_some(), &refusals);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let open = OpenConnection::new(&app);
        let watcher = stopping.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                // The handshake is part of the head: same deadline.
                Some(acceptor) => {
                    match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => serve_connection(s, peer, app, watcher).await,
                        Ok(Err(e)) => log::debug!("{peer}: TLS handshake failed: {e}"),
                        Err(_) => log::debug!("{peer}: TLS handshake timed out"),
                    }
                }
                None => serve_connection(stream, peer, app, watcher).await,
            }
            drop(open);
            drop(place);
            drop(permit);
        });
    }
    drop(listener);
    let grace = Duration::from_secs(app.config.http.shutdown_grace_secs);
    log::info!(
        "shutting down: finishing in-flight requests (up to {}s)",
        grace.as_secs()
    );
    let _ = stop.send(true);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        log::warn!("grace period over; closing remaining connections");
    }
}

/// A connection from a source that holds `http.max_connections_per_ip` already: answered
/// 429 and closed by at most [`REFUSALS`] short tasks (under a flood the rest are closed
/// unanswered). Over TLS there is no handshake to answer in: closed.
fn refuse(mut stream: TcpStream, peer: SocketAddr, tls: bool, refusals: &Arc<Semaphore>) {
    log::debug!("{peer}: over the per-address connection limit");
    if tls {
        return;
    }
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let mut e = ApiError::new(
            ErrorCode::RateLimited,
            "too many connections from this address",
        );
        e.retry_after = Some(1);
        let answer = async {
            stream.write_all(&response::error_bytes(&e)).await?;
            stream.shutdown().await?;
            // Read what the client sends until it closes: closing with unread data would
            // reset the connection, and a reset can discard the answer at the client.
            let mut sink = [0u8; 512];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<_, std::io::Error>(())
        };
        let _ = tokio::time::timeout(REFUSAL_TIME, answer).await;
        drop(permit);
    });
}

/// Counts a connection in `App::open_connections` while it lives.
struct OpenConnection(Arc<App>);

impl OpenConnection {
    fn new(app: &Arc<App>) -> OpenConnection {
        app.open_connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OpenConnection(app.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0
            .open_connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn serve_connection<IO>(
    io: IO,
    peer: SocketAddr,
    app: Arc<App>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = Duration::from_secs(app.config.http.header_read_timeout_secs);
    let max_head = app.config.http.max_header_bytes;
    let service = service_fn(move |req| handle(app.clone(), peer, req));
    // The header timeout also runs while a kept-alive connection waits for its next
    // request (hyper starts it whenever it waits for a head): that is the idle deadline.
    // `max_buf_size` bounds the head (431 beyond) and what hyper buffers either way.
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(max_head)
        .keep_alive(true)
        .serve_connection(TokioIo::new(EnvelopeParseErrors::new(io)), service)
        .with_upgrades();
    tokio::pin!(conn);
    let r = tokio::select! {
        r = conn.as_mut() => r,
        _ = async { stopping.wait_for(|s| *s).await.map(|_| ()) } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = r {
        log::debug!("{peer}: connection: {e}");
    }
}

/// One request through the pipeline. Never fails: every error becomes an error envelope.
pub async fn handle(
    app: Arc<App>,
    peer: SocketAddr,
    req: hyper::Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    if crate::api::ws::is_upgrade(&req) {
        return Ok(crate::api::ws::upgrade(app, req).await);
    }
    let body_deadline = tokio::time::Instant::from_std(started)
        + Duration::from_secs(app.config.http.body_read_timeout_secs);
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let mut request = Request {
        method: parts.method,
        path: path.clone(),
        params: Vec::new(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body: Some(body),
        client_ip: canonical_ip(peer),
        principal: None,
        audit_target: None,
        audit_username: None,
        max_body: PUBLIC_MAX_BODY.min(app.config.http.max_body_bytes),
        body_deadline,
        body_timeout: Duration::from_secs(app.config.http.body_read_timeout_secs),
    };
    if path == "/metrics" && app.config.monitoring.prometheus {
        let result = if matches!(request.method, Method::GET | Method::HEAD) {
            monitoring::prometheus(&app, &request).await
        } else {
            let mut e = ApiError::new(ErrorCode::MethodNotAllowed, "use GET");
            e.allow = Some("GET, HEAD".into());
            Err(e)
        };
        let response = match result {
            Ok(reply) => reply.into_response(),
            Err(e) => response::error_response(&e),
        };
        app.metrics
            .record(started.elapsed(), response.status().as_u16());
        return Ok(response);
    }
    let lookup = match path.strip_prefix(PREFIX) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            app.router.lookup(&request.method, rest)
        }
        _ => Lookup::NotFound,
    };
    let (result, route) = match lookup {
        Lookup::Found(route, params) => {
            request.params = params;
            (dispatch(&app, route, &mut request).await, Some(route))
        }
        Lookup::MethodNotAllowed(allow) => {
            let mut e = ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{} is not allowed here", request.method),
            );
            e.allow = Some(allow);
            (Err(e), None)
        }
        Lookup::NotFound => (Err(ApiError::not_found("endpoint")), None),
    };
    let (response, error) = match result {
        Ok(reply) => (reply.into_response(), None),
        Err(e) => (response::error_response(&e), Some(e)),
    };
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    app.metrics.record(elapsed, status);
    log::info!(
        "{} {} {} {} {:.1}ms",
        request.client_ip,
        request.method,
        path,
        status,
        elapsed.as_secs_f64() * 1000.0
    );
    if let Some(route) = route.filter(|_| is_mutating(&request.method)) {
        record_audit(&app, route, &request, status, error).await;
    }
    Ok(response)
}

/// Authenticate and authorise per the route's [`Access`], count the request against the
/// API rate limit, check the query parameters the route declares, then run the handler.
/// Until the caller is authenticated its body may be [`PUBLIC_MAX_BODY`] at most.
async fn dispatch(app: &Arc<App>, route: &Route, req: &mut Request) -> Result<Reply, ApiError> {
    if route.access != Access::Public {
        let token = req
            .bearer_token()
            .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?
            .to_string();
        let principal = app.auth.authenticate(&token).await?;
        let allowed = match route.access {
            Access::Require(p) => principal.role.allows(p),
            _ => true,
        };
        req.principal = Some(principal);
        if !allowed {
            return Err(ApiError::forbidden());
        }
        req.max_body = app.config.http.max_body_bytes;
    }
    let caller = match &req.principal {
        Some(p) => crate::auth::ratelimit::Caller::User(p.user_id),
        None => crate::auth::ratelimit::Caller::Addr(req.client_ip),
    };
    app.system.check_rate_limit(caller)?;
    route.check_query(req.query.as_deref())?;
    (route.handler)(app.clone(), req).await
}

fn is_mutating(m: &Method) -> bool {
    matches!(
        *m,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

async fn record_audit(app: &App, route: &Route, req: &Request, status: u16, err: Option<ApiError>) {
    let who = req.principal.as_ref();
    let outcome = match &err {
        None => "ok".to_string(),
        Some(e) => format!("{}: {}", e.code.as_str(), e.message),
    };
    let entry = LogEntry {
        ts: crate::time::now(),
        level: logq::level_for_status(status),
        module: route.module.to_string(),
        action: route.action.to_string(),
        message: clip(&format!(
            "{} {} -> {status} ({outcome})",
            req.method, req.path
        )),
        user_id: who.map(|p| p.user_id),
        username: who
            .map(|p| p.username.clone())
            .or_else(|| req.audit_username.clone()),
        ip: Some(req.client_ip.to_string()),
        user_agent: req.user_agent(),
        method: Some(req.method.to_string()),
        path: Some(clip(&req.path)),
        target: req
            .audit_target
            .clone()
            .or_else(|| target_from_path(&req.path))
            .map(|t| clip(&t)),
        status: Some(status),
        details: None,
    };
    app.logs.audit(entry).await;
}

/// At most 1,024 characters of a request's text in the log (paths are the client's to choose).
fn clip(s: &str) -> String {
    match s.char_indices().nth(1024) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// `/api/v1/users/5/reset-password` → `users/5`: the resource a request acted on.
fn target_from_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix(PREFIX)?.trim_matches('/');
    let mut segs = rest.split('/');
    let kind = segs.next().filter(|s| !s.is_empty())?;
    Some(match segs.next() {
        Some(id) if id.bytes().all(|b| b.is_ascii_digit()) && !id.is_empty() => {
            format!("{kind}/{id}")
        }
        _ => kind.to_string(),
    })
}

/// IPv4 clients of a dual-stack socket appear as `::ffff:a.b.c.d`; log them as IPv4.
fn canonical_ip(peer: SocketAddr) -> std::net::IpAddr {
    peer.ip().to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_targets() {
        assert_eq!(
            target_from_path("/api/v1/users/5/reset-password").as_deref(),
            Some("users/5")
        );
        assert_eq!(target_from_path("/api/v1/users").as_deref(), Some("users"));
        assert_eq!(
            target_from_path("/api/v1/auth/login").as_deref(),
            Some("auth")
        );
        assert_eq!(target_from_path("/api/v1/").as_deref(), None);
    }

    #[test]
    fn mapped_ipv4_is_shown_as_ipv4() {
        let p: SocketAddr = "[::ffff:127.0.0.1]:5".parse().expect("addr");
        assert_eq!(canonical_ip(p).to_string(), "127.0.0.1");
        let p: SocketAddr = "[::1]:5".parse().expect("addr");
        assert_eq!(canonical_ip(p).to_string(), "::1");
    }
}
