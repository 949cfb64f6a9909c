//! `/status/*`: liveness, readiness and health. `health`, `ready` and `live` need no token
//! (for procd, load balancers, monitoring); `health/detailed` does.

use super::request::Request;
use super::response::Reply;
use super::router::{Access, Router};
use crate::app::App;
use crate::auth::Permission;
use crate::error::{ApiError, ApiResult};
use crate::h;
use crate::health::{self, HealthCheck, Status};
use hyper::Method;
use serde_json::json;
use std::sync::Arc;

pub const SERVICE: &str = "ipv6wgm";

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
    let db = health::DatabaseCheck.check(&app).await;
    if db.status != Status::Healthy {
        return Err(ApiError::unavailable("database is not reachable"));
    }
    Ok(Reply::ok(json!({"status": "ready", "timestamp": now()})))
}

async fn detailed(app: Arc<App>, _: &mut Request) -> ApiResult<Reply> {
    let (status, components) = health::run_all(&app).await;
    Ok(Reply::ok(json!({
        "status": status,
        "service": SERVICE,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime": app.uptime_secs(),
        "components": components,
        "timestamp": now(),
    })))
}
