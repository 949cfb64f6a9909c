//! `/monitoring`: the dashboard, current metrics, metric history, active alerts and alert
//! rules. Reads the collector (`monitor::collector`); rules are stored (`store::alerts`).
//! (`/monitoring/bgp/sessions` and `/monitoring/ipv6/pools` live with their resources.)

use super::query::Query;
use super::request::Request;
use super::response::Reply;
use super::router::{Access, Router};
use crate::app::App;
use crate::auth::Permission::{MonitoringRead, MonitoringWrite};
use crate::error::{ApiError, ApiResult};
use crate::h;
use crate::monitor::alerts::{Condition, Level, Rule};
use crate::monitor::collector::{Snapshot, METRICS};
use crate::monitor::history::Sample;
use crate::store::StoreError;
use hyper::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

pub fn routes(r: &mut Router) {
    let read = Access::Require(MonitoringRead);
    let write = Access::Require(MonitoringWrite);
    r.add(
        Method::GET,
        "/monitoring/dashboard",
        read,
        "monitoring.dashboard",
        h!(dashboard),
    );
    r.add(
        Method::GET,
        "/monitoring/metrics",
        read,
        "monitoring.metrics",
        h!(metrics),
    );
    r.add(
        Method::GET,
        "/monitoring/metrics/system",
        read,
        "monitoring.history",
        h!(history),
    )
    .query_params(&["hours", "points", "name"]);
    r.add(
        Method::GET,
        "/monitoring/alerts/active",
        read,
        "monitoring.alerts.active",
        h!(active_alerts),
    );
    let rules = "/monitoring/alerts/rules";
    r.add(
        Method::GET,
        rules,
        read,
        "monitoring.rules.list",
        h!(list_rules),
    );
    r.add(
        Method::POST,
        rules,
        write,
        "monitoring.rules.create",
        h!(create_rule),
    );
    let one = "/monitoring/alerts/rules/{id}";
    r.add(Method::GET, one, read, "monitoring.rules.get", h!(get_rule));
    r.add(
        Method::PUT,
        one,
        write,
        "monitoring.rules.replace",
        h!(replace_rule),
    );
    r.add(
        Method::PATCH,
        one,
        write,
        "monitoring.rules.update",
        h!(patch_rule),
    );
    r.add(
        Method::DELETE,
        one,
        write,
        "monitoring.rules.delete",
        h!(delete_rule),
    );
}

/// The newest collector sample; 503 only in the instant before the first one.
/// While monitoring is off (`monitoring_enabled`), the last sample taken, if any.
pub fn snapshot(app: &App) -> ApiResult<Arc<Snapshot>> {
    app.monitor.latest().ok_or_else(|| {
        ApiError::unavailable(if app.monitor.sampling() {
            "the metrics collector has not sampled yet"
        } else {
            "monitoring is off (/system/config monitoring_enabled)"
        })
    })
}

fn alert_counts(app: &App) -> Value {
    let (info, warning, error, critical) = app.monitor.alert_counts();
    json!({"active": info + warning + error + critical, "critical": critical,
           "error": error, "warning": warning, "info": info})
}

async fn dashboard(app: Arc<App>, _: &mut Request) -> ApiResult<Reply> {
    let s = snapshot(&app)?;
    let h = &s.system;
    let a = &s.application;
    Ok(Reply::ok(json!({
        "system_metrics": {
            "cpu": h.cpu,
            "memory": h.memory,
            "disk": h.disk,
            "network": {
                "bytes_sent": h.network.bytes_sent,
                "bytes_recv": h.network.bytes_recv,
                "packets_sent": h.network.packets_sent,
                "packets_recv": h.network.packets_recv,
                "rx_rate": h.network.rx_rate,
                "tx_rate": h.network.tx_rate,
            },
            "uptime": h.uptime,
        },
        "application_metrics": {
            "process": s.process,
            "api": a.api,
            "requests_rate": a.requests_rate,
            "active_connections": a.active_connections,
            "database": {"type": "sqlite", "query_time": a.database},
            "wireguard": a.wireguard,
            "bgp": a.bgp,
            "ipv6": a.ipv6,
            "log_events_dropped": a.log_events_dropped,
        },
        "alerts": alert_counts(&app),
        "collector": app.monitor.about(),
        "timestamp": s.timestamp_string(),
    })))
}

async fn metrics(app: Arc<App>, _: &mut Request) -> ApiResult<Reply> {
    let s = snapshot(&app)?;
    let h = &s.system;
    let interfaces: Vec<Value> = h
        .network
        .interfaces
        .iter()
        .map(|i| {
            json!({"name": i.name, "bytes_sent": i.tx_bytes, "bytes_recv": i.rx_bytes,
                   "packets_sent": i.tx_packets, "packets_recv": i.rx_packets,
                   "errors_in": i.rx_errors, "errors_out": i.tx_errors,
                   "drop_in": i.rx_dropped, "drop_out": i.tx_dropped})
        })
        .collect();
    Ok(Reply::ok(json!({
        "timestamp": s.timestamp_string(),
        "metrics": {
            "cpu": {"usage": h.cpu.usage, "cores": h.cpu.cores, "load_avg": h.cpu.load_average},
            "memory": h.memory,
            "disk": h.disk,
            "network": {"interfaces": interfaces},
            "process": s.process,
            "wireguard": s.application.wireguard,
            "bgp": s.application.bgp,
            "ipv6": s.application.ipv6,
        },
    })))
}

/// At most this many points per metric unless `points=` asks otherwise (24 h at 30 s is
/// 2,880 samples; a chart needs far fewer).
const DEFAULT_POINTS: usize = 720;

/// `hours=` (default 24, up to the history kept), `name=` (comma-separated metric names;
/// default every `system.*` metric), `points=` (per metric, 1–10000; more samples than that
/// are averaged in equal buckets).
async fn history(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let mut q = req.query()?;
    let hours: u32 = q
        .take_parsed("hours", "an integer from 1 to 168")?
        .unwrap_or(24);
    if !(1..=168).contains(&hours) {
        return Err(ApiError::validation(
            "hours",
            "hours must be an integer from 1 to 168",
        ));
    }
    let points: usize = q
        .take_parsed("points", "an integer from 1 to 10000")?
        .unwrap_or(DEFAULT_POINTS);
    if !(1..=10_000).contains(&points) {
        return Err(ApiError::validation(
            "points",
            "points must be an integer from 1 to 10000",
        ));
    }
    let names = metric_names(&mut q)?;
    if names.len() * points > MAX_POINTS {
        return Err(ApiError::validation(
            "points",
            format!("at most {MAX_POINTS} points per request: fewer names or a smaller points="),
        ));
    }
    let since = crate::time::now() - i64::from(hours) * 3600;
    let mut out = Vec::new();
    for (name, unit) in names {
        let kind = name.split('.').next().unwrap_or("");
        for p in downsample(&app.monitor.series(name, since), points) {
            out.push(Point {
                name,
                value: p.v,
                timestamp: p.t,
                tags: Tags { r#type: kind },
                metadata: Meta { unit },
            });
        }
    }
    Ok(Reply::ok(out))
}

/// One sample as the seeds show it.
#[derive(Serialize)]
struct Point {
    name: &'static str,
    value: f64,
    #[serde(serialize_with = "crate::time::ser")]
    timestamp: i64,
    tags: Tags,
    metadata: Meta,
}

#[derive(Serialize)]
struct Tags {
    r#type: &'static str,
}

#[derive(Serialize)]
struct Meta {
    unit: &'static str,
}

/// Most points one history request may return (28 metrics × 720 points fit).
const MAX_POINTS: usize = 20_160;

fn metric_names(q: &mut Query) -> ApiResult<Vec<(&'static str, &'static str)>> {
    let Some(list) = q.take("name") else {
        return Ok(METRICS
            .iter()
            .copied()
            .filter(|(n, _)| n.starts_with("system."))
            .collect());
    };
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for n in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let m = METRICS
            .iter()
            .copied()
            .find(|(m, _)| *m == n)
            .ok_or_else(|| {
                let shown: String = n.chars().take(64).collect();
                ApiError::validation(
                    "name",
                    format!("unknown metric {shown:?}; known: {}", known()),
                )
            })?;
        if !out.contains(&m) {
            out.push(m);
        }
    }
    Ok(out)
}

fn known() -> String {
    METRICS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// At most `points` samples: consecutive runs averaged (time of the run's last sample).
fn downsample(samples: &[Sample], points: usize) -> Vec<Sample> {
    if samples.len() <= points {
        return samples.to_vec();
    }
    let per = samples.len().div_ceil(points);
    samples
        .chunks(per)
        .filter_map(|c| {
            let last = c.last()?;
            let v = c.iter().map(|s| s.v).sum::<f64>() / c.len() as f64;
            Some(Sample {
                t: last.t,
                v: (v * 1000.0).round() / 1000.0,
            })
        })
        .collect()
}

async fn active_alerts(app: Arc<App>, _: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(app.monitor.active_alerts()))
}

// ---- rules ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleInput {
    id: Option<String>,
    name: Option<String>,
    metric_name: Option<String>,
    condition: Option<String>,
    threshold: Option<f64>,
    level: Option<String>,
    enabled: Option<bool>,
    cooldown_minutes: Option<u32>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    description: Option<Option<String>>,
}

impl RuleInput {
    /// `base` (a new rule's defaults, or the stored rule) with these fields, validated.
    fn apply(self, mut r: Rule, require_all: bool) -> ApiResult<Rule> {
        let need = |field: &str| ApiError::validation(field, format!("{field} is required"));
        match self.name {
            Some(n) => {
                let n = n.trim().to_string();
                if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
                    return Err(ApiError::validation(
                        "name",
                        "name must be 1 to 100 characters without control characters",
                    ));
                }
                r.name = n;
            }
            None if require_all => return Err(need("name")),
            None => {}
        }
        match self.metric_name {
            Some(m) => {
                let m = m.trim();
                if !METRICS.iter().any(|(n, _)| *n == m) {
                    return Err(ApiError::validation(
                        "metric_name",
                        format!("unknown metric {m:?}; known: {}", known()),
                    ));
                }
                r.metric_name = m.to_string();
            }
            None if require_all => return Err(need("metric_name")),
            None => {}
        }
        match self.condition {
            Some(c) => {
                r.condition = Condition::parse(c.trim()).ok_or_else(|| {
                    ApiError::validation("condition", "condition must be >, >=, <, <=, == or !=")
                })?;
            }
            None if require_all => return Err(need("condition")),
            None => {}
        }
        match self.threshold {
            Some(t) if t.is_finite() => r.threshold = t,
            Some(_) => {
                return Err(ApiError::validation(
                    "threshold",
                    "threshold must be a number",
                ))
            }
            None if require_all => return Err(need("threshold")),
            None => {}
        }
        if let Some(l) = self.level {
            r.level = Level::parse(l.trim()).ok_or_else(|| {
                ApiError::validation("level", "level must be info, warning, error or critical")
            })?;
        }
        if let Some(e) = self.enabled {
            r.enabled = e;
        }
        if let Some(c) = self.cooldown_minutes {
            if c > 10_080 {
                return Err(ApiError::validation(
                    "cooldown_minutes",
                    "cooldown_minutes must be from 0 to 10080 (a week)",
                ));
            }
            r.cooldown_minutes = c;
        }
        if let Some(d) = self.description {
            if d.as_deref()
                .is_some_and(|d| d.chars().any(|c| c.is_control() && c != '\n' && c != '\t'))
            {
                return Err(ApiError::validation(
                    "description",
                    "description must not contain control characters other than newline and tab",
                ));
            }
            r.description = d
                .map(|d| d.trim().chars().take(500).collect())
                .filter(|d: &String| !d.is_empty());
        }
        Ok(r)
    }
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn new_rule(id: String) -> Rule {
    Rule {
        id,
        name: String::new(),
        metric_name: String::new(),
        condition: Condition::Gt,
        threshold: 0.0,
        level: Level::Warning,
        enabled: true,
        cooldown_minutes: 5,
        description: None,
    }
}

fn rule_id(req: &Request) -> ApiResult<String> {
    let id = req.param("id");
    if valid_id(id) {
        Ok(id.to_string())
    } else {
        Err(ApiError::not_found("alert rule"))
    }
}

async fn stored(app: &App, id: String) -> ApiResult<Rule> {
    app.store
        .call(move |c| crate::store::alerts::get(c, &id))
        .await?
        .ok_or_else(|| ApiError::from(StoreError::NotFound("alert rule")))
}

async fn save(app: &App, rule: Rule) -> ApiResult<Rule> {
    let r = rule.clone();
    let now = crate::time::now();
    app.store
        .call(move |c| crate::store::alerts::upsert(c, &r, now))
        .await?;
    Ok(rule)
}

async fn list_rules(app: Arc<App>, _: &mut Request) -> ApiResult<Reply> {
    let rules = app.store.call(|c| crate::store::alerts::list(c)).await?;
    Ok(Reply::ok(rules))
}

async fn get_rule(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(stored(&app, rule_id(req)?).await?))
}

async fn create_rule(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let mut input: RuleInput = req.json().await?;
    let id = match input.id.take() {
        Some(id) if valid_id(id.trim()) => id.trim().to_string(),
        Some(_) => {
            return Err(ApiError::validation(
                "id",
                "id must be 1 to 64 of a-z, 0-9, _ and -",
            ))
        }
        None => format!("rule_{}", crate::auth::random_hex::<4>()),
    };
    let rule = input.apply(new_rule(id.clone()), true)?;
    let check = id.clone();
    let exists = app
        .store
        .call(move |c| crate::store::alerts::get(c, &check))
        .await?
        .is_some();
    if exists {
        return Err(ApiError::conflict(
            "id",
            format!("alert rule {id} already exists"),
        ));
    }
    req.audit_target = Some(format!("monitoring/alerts/rules/{id}"));
    let rule = save(&app, rule).await?;
    Ok(Reply::created(rule, "alert rule created"))
}

async fn replace_rule(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    update(app, req, true).await
}

async fn patch_rule(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    update(app, req, false).await
}

async fn update(app: Arc<App>, req: &mut Request, full: bool) -> ApiResult<Reply> {
    let id = rule_id(req)?;
    req.audit_target = Some(format!("monitoring/alerts/rules/{id}"));
    let input: RuleInput = req.json().await?;
    if input.id.as_deref().is_some_and(|i| i != id) {
        return Err(ApiError::validation("id", "id cannot be changed"));
    }
    let current = stored(&app, id).await?;
    let rule = input.apply(current, full)?;
    Ok(Reply::ok_with(
        save(&app, rule).await?,
        "alert rule updated",
    ))
}

async fn delete_rule(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let id = rule_id(req)?;
    req.audit_target = Some(format!("monitoring/alerts/rules/{id}"));
    app.store
        .call(move |c| crate::store::alerts::delete(c, &id))
        .await?;
    Ok(Reply::message("alert rule deleted"))
}

/// `GET /metrics` (outside `/api/v1`, where scrapers look): the Prometheus text format.
/// With `monitoring.prometheus_token` set, the scraper must send it as a bearer token.
pub async fn prometheus(app: &App, req: &Request) -> ApiResult<Reply> {
    if let Some(want) = &app.config.monitoring.prometheus_token {
        let given = req.bearer_token().unwrap_or("");
        // Compared in constant time: the token is a password.
        let same = given.len() == want.len()
            && given
                .bytes()
                .zip(want.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return Err(ApiError::unauthorized(
                "a valid bearer token is required for /metrics",
            ));
        }
    }
    // Outside the route table, so the table's query rule is applied here.
    req.query()?.only(&[])?;
    let s = snapshot(app)?;
    let sessions = app.bgp.overview();
    let text = crate::monitor::prometheus::render(
        &s,
        &crate::monitor::prometheus::Extra {
            sessions: &sessions,
            alerts: app.monitor.alert_counts(),
            version: env!("CARGO_PKG_VERSION"),
        },
    );
    Ok(Reply::raw(
        hyper::StatusCode::OK,
        text.into(),
        "text/plain; version=0.0.4; charset=utf-8",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_averages_runs() {
        let s: Vec<Sample> = (0..10).map(|i| Sample { t: i, v: i as f64 }).collect();
        assert_eq!(downsample(&s, 20), s);
        let d = downsample(&s, 4);
        assert_eq!(d.len(), 4);
        assert_eq!((d[0].t, d[0].v), (2, 1.0));
        assert_eq!((d[3].t, d[3].v), (9, 9.0));
    }

    #[test]
    fn rule_ids_are_plain() {
        assert!(valid_id("cpu_high") && valid_id("a-1"));
        for bad in ["", "CPU", "a b", "../x", &"x".repeat(65)] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
