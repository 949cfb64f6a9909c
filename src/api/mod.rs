//! The REST API under `/api/v1`: the listener and connection loop ([`serve`]), the request
//! pipeline ([`handle`]: route → authenticate → authorise → handler → render → metrics,
//! request log, audit log), and one module of thin handlers per resource group.

pub mod auth;
pub mod bgp;
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

use crate::app::App;
use crate::error::{ApiError, ErrorCode};
use crate::store::logs::{self as logq, LogEntry};
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
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

pub const PREFIX: &str = "/api/v1";

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
    let slots = Arc::new(tokio::sync::Semaphore::new(max));
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
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let open = OpenConnection::new(&app);
        let watcher = stopping.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => serve_connection(s, peer, app, watcher).await,
                    Err(e) => log::debug!("{peer}: TLS handshake failed: {e}"),
                },
                None => serve_connection(stream, peer, app, watcher).await,
            }
            drop(open);
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
    let service = service_fn(move |req| handle(app.clone(), peer, req));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service)
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
    if crate::ws::is_upgrade(&req) {
        return Ok(crate::ws::upgrade(app, req));
    }
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
        max_body: app.config.http.max_body_bytes,
    };
    if path == "/metrics" && app.config.monitoring.prometheus {
        let result = if request.method == Method::GET {
            monitoring::prometheus(&app, &request).await
        } else {
            let mut e = ApiError::new(ErrorCode::MethodNotAllowed, "use GET");
            e.allow = Some("GET".into());
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
        let ok = error.is_none();
        record_audit(&app, route, &request, status, error).await;
        let change = match route.module {
            "wireguard" => Some(crate::ws::Change::Wireguard),
            "bgp" => Some(crate::ws::Change::Bgp),
            "ipv6" => Some(crate::ws::Change::Pools),
            _ => None,
        };
        if let Some(c) = change.filter(|_| ok) {
            crate::ws::changed(&app, c);
        }
    }
    Ok(response)
}

/// Authenticate and authorise per the route's [`Access`], then run the handler.
async fn dispatch(app: &Arc<App>, route: &Route, req: &mut Request) -> Result<Reply, ApiError> {
    if route.access != Access::Public {
        let token = req
            .bearer_token()
            .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?
            .to_string();
        let principal = crate::auth::authenticate(app, &token).await?;
        let allowed = match route.access {
            Access::Require(p) => principal.role.allows(p),
            _ => true,
        };
        req.principal = Some(principal);
        if !allowed {
            return Err(ApiError::forbidden());
        }
    }
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
    if let Err(e) = crate::logs::record(app, entry).await {
        log::error!("audit log write failed: {}", e.message);
    }
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
