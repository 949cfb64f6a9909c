//! Component health for `/status/health/detailed` and `/status/ready`. Each component
//! registers a [`HealthCheck`] in `app.rs`, holding the handle of what it checks (the
//! store, the latency histograms, the VRP table). A check that does not answer within
//! [`CHECK_TIMEOUT`] is reported unhealthy rather than stalling the endpoint.

use super::latency::Latencies;
use crate::store::Store;
use crate::sync::BoxFuture;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Healthy,
    Degraded,
    Unhealthy,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComponentHealth {
    pub status: Status,
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

pub trait HealthCheck: Send + Sync {
    fn name(&self) -> &'static str;
    fn check(&self) -> BoxFuture<'_, ComponentHealth>;
}

/// The database answers a round trip; `response_time` in milliseconds.
pub struct DatabaseCheck(pub Store);

impl HealthCheck for DatabaseCheck {
    fn name(&self) -> &'static str {
        "database"
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async move {
            let t = Instant::now();
            let r = self.0.call(|c| crate::store::users::count(c)).await;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let (status, mut d) = match r {
                Ok(users) => (Status::Healthy, json!({"users": users})),
                Err(e) => (Status::Unhealthy, json!({"error": e.to_string()})),
            };
            d["type"] = json!("sqlite");
            d["version"] = json!(rusqlite::version());
            d["response_time"] = json!(round3(ms));
            component(status, d)
        })
    }
}

/// The API's own request latency since start (from [`crate::monitor::latency`]).
pub struct ApiCheck(pub Arc<Latencies>);

impl HealthCheck for ApiCheck {
    fn name(&self) -> &'static str {
        "api"
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async move {
            let s = self.0.summary();
            component(Status::Healthy, serde_json::to_value(s).unwrap_or_default())
        })
    }
}

/// The VRP table: source, count, serial, last update. Without a configured source RPKI is
/// simply off (healthy); a source that failed its last load is degraded. Reads the live
/// table's handle, nothing else.
pub struct RpkiCheck(pub Arc<crate::rpki::Rpki>);

impl HealthCheck for RpkiCheck {
    fn name(&self) -> &'static str {
        "rpki"
    }

    fn check(&self) -> BoxFuture<'_, ComponentHealth> {
        Box::pin(async move {
            let info = self.0.info();
            let status = match (&info.last_error, info.last_update) {
                (Some(_), None) => Status::Unhealthy,
                (Some(_), Some(_)) => Status::Degraded,
                _ => Status::Healthy,
            };
            component(status, serde_json::to_value(info).unwrap_or_default())
        })
    }
}

fn component(status: Status, details: Value) -> ComponentHealth {
    let details = match details {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    ComponentHealth { status, details }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Runs every check (each bounded by [`CHECK_TIMEOUT`]); the overall status is the worst.
pub async fn run_all(checks: &[Box<dyn HealthCheck>]) -> (Status, Map<String, Value>) {
    let mut overall = Status::Healthy;
    let mut out = Map::new();
    for check in checks {
        let c = match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
            Ok(c) => c,
            Err(_) => component(Status::Unhealthy, json!({"error": "check timed out"})),
        };
        overall = overall.max(c.status);
        out.insert(
            check.name().into(),
            serde_json::to_value(&c).unwrap_or_default(),
        );
    }
    (overall, out)
}
