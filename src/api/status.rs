//! `/status/*`: liveness, readiness and health. `health`, `ready` and `live` need no token
//! (for procd, load balancers, monitoring); `health/detailed` does.

use super::request::Request;
use super::response::Reply;
use super::router::{Access, Router};
use crate::api::error::{ApiError, ApiResult};
use crate::app::App;
use crate::auth::Permission;
use crate::h;
use crate::monitor::health::{self, HealthCheck, Status};
use hyper::Method;
use serde_json::json;
use std::sync::Arc;

pub use crate::system::SERVICE;

pub fn routes(r: &mut Router) {
    r.add(
        Method::GET,
        "/status/health",
        Access::Public,
        "status.health",
        h!(health),
    );
    r.add(
        Method::GET,
        "/status/ready",
        Access::Public,
        "status.ready",
        h!(ready),
    );
    r.add(
        Method::GET,
        "/status/live",
        Access::Public,
        "status.live",
        h!(live),
    );
    for (path, action, handler) in [
        ("/status/metrics", "status.metrics", h!(metrics)),
        ("/status/status", "status.status", h!(status)),
        ("/status/system", "status.system", h!(system)),
    ] {
        r.add(
            Method::GET,
            path,
            Access::Require(Permission::StatusRead),
            action,
            handler,
        );
    }
    r.add(
        Method::GET,
        "/status/health/detailed",
        Access::Require(Permission::StatusRead),
        "status.detailed",
        h!(detailed),
    );
}

fn now() -> String {
    crate::time::rfc3339(crate::time::now())
}

async fn health(_: Arc<App>, _: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(json!({
        "status": "healthy",
        "service": SERVICE,
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": now(),
    })))
}

async fn live(_: Arc<App>, _: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(json!({"status": "alive", "timestamp": now()})))
}

/// Ready when the database answers.
async fn ready(app: Arc<App>, _: &mut Request) -> ApiResult<Reply> {
    let db = health::DatabaseCheck(app.store.clone()).check().await;
    if db.status != Status::Healthy {
        return Err(ApiError::unavailable("database is not reachable"));
    }
    Ok(Reply::ok(json!({"status": "ready", "timestamp": now()})))
}

async fn detailed(app: Arc<App>, _: &mut Request) -> ApiResult<Reply> {
    let (status, components) = health::run_all(&app.health).await;
    Ok(Reply::ok(json!({
        "status": status,
        "service": SERVICE,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime": app.uptime_secs(),
        "components": components,
        "timestamp": now(),
    })))
}

/// API latency (every request since start), database job time, open connections.
async fn metrics(app: Arc<App>, _: &mut Request) -> ApiResult<Reply> {
    let s = app.monitor.sample()?;
    let api = app.metrics.summary();
    let db = app.store.timing.summary();
    Ok(Reply::ok(json!({
        "timestamp": now(),
        "performance": {
            "api_response_time": {"avg": api.avg_ms, "p50": api.p50_ms, "p95": api.p95_ms,
                                  "p99": api.p99_ms, "max": api.max_ms},
            "requests": api.requests,
            "responses": {"2xx": api.responses_2xx, "4xx": api.responses_4xx, "5xx": api.responses_5xx},
            "database_query_time": {"avg": db.avg_ms, "p50": db.p50_ms, "p95": db.p95_ms,
                                    "p99": db.p99_ms, "max": db.max_ms},
            "database_queries": db.requests,
            "active_connections": app.connections(),
            "websocket_connections": app.config.http.max_connections
                .saturating_sub(app.ws_slots.available_permits()),
        },
        "system": s.usage(),
    })))
}

async fn status(app: Arc<App>, _: &mut Request) -> ApiResult<Reply> {
    let s = app.monitor.sample()?;
    let (overall, _) = health::run_all(&app.health).await;
    Ok(Reply::ok(json!({
        "system": {"status": overall, "uptime": app.uptime_secs(), "version": env!("CARGO_PKG_VERSION")},
        "services": services(&app).await,
        "resources": s.usage(),
        "timestamp": now(),
    })))
}

async fn system(app: Arc<App>, _: &mut Request) -> ApiResult<Reply> {
    let s = app.monitor.sample()?;
    let h = &s.system;
    Ok(Reply::ok(json!({
        "system": crate::system::host(),
        "resources": {
            "cpu": {"usage": h.cpu.usage, "cores": h.cpu.cores},
            "memory": h.memory,
            "disk": h.disk,
        },
        "timestamp": now(),
    })))
}

/// States of the parts of the service, as `/system/info` and `/status/status` show them.
/// Reads across domains: the database, the engines, the collector.
pub(super) async fn services(app: &App) -> serde_json::Value {
    let db = health::DatabaseCheck(app.store.clone()).check().await;
    let running = app.wg.running_ids().await.len();
    let bgp = crate::monitor::sources::bgp_figures(&app.bgp.overview());
    let info = app.rpki.info();
    let rpki = match (info.source, info.vrp_count, &info.last_error) {
        ("none", _, _) => "off",
        (_, 0, Some(_)) => "error",
        (_, 0, None) => "loading",
        _ => "active",
    };
    json!({
        "api": "running",
        "database": if db.status == Status::Healthy { "running" } else { "error" },
        "wireguard": if running > 0 { "active" } else { "inactive" },
        "wireguard_servers_running": running,
        "bgp": if bgp.established > 0 { "active" } else if bgp.sessions == 0 { "inactive" } else { "connecting" },
        "bgp_sessions_established": bgp.established,
        "bgp_sessions": bgp.sessions,
        "rpki": rpki,
        "collector": if app.monitor.sampling() { "running" } else { "stopped" },
    })
}
