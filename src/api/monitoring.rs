//! `/monitoring`: the dashboard, current metrics, metric history, active alerts and alert
//! rules. Reads the collector (`monitor::collector`); rules are stored (`store::alerts`).
//! (`/monitoring/bgp/sessions` and `/monitoring/ipv6/pools` live with their resources.)

use super::query::Query;
use super::request::Request;
use super::response::Reply;
use super::router::{Access, Router};
use crate::api::error::{ApiError, ApiResult};
use crate::app::App;
use crate::auth::Permission::{MonitoringRead, MonitoringWrite};
use crate::h;
use crate::monitor::collector::{Monitor, METRICS};
use crate::monitor::history::Sample;
use crate::monitor::rules::{self, RuleInput, Rules};
use hyper::Method;
use serde::Serialize;
use serde_json::{json, Value};

pub fn routes(r: &mut Router) {
    let read = Access::Require(MonitoringRead);
    let write = Access::Require(MonitoringWrite);
    r.add(
        Method::GET,
        "/monitoring/dashboard",
        read,
        "monitoring.dashboard",
        h!(app.monitor => dashboard),
    );
    r.add(
        Method::GET,
        "/monitoring/metrics",
        read,
        "monitoring.metrics",
        h!(app.monitor => metrics),
    );
    r.add(
        Method::GET,
        "/monitoring/metrics/system",
        read,
        "monitoring.history",
        h!(app.monitor => history),
    )
    .query_params(&["hours", "points", "name"]);
    r.add(
        Method::GET,
        "/monitoring/alerts/active",
        read,
        "monitoring.alerts.active",
        h!(app.monitor => active_alerts),
    );
    let rules = "/monitoring/alerts/rules";
    r.add(
        Method::GET,
        rules,
        read,
        "monitoring.rules.list",
        h!(app.alert_rules => list_rules),
    );
    r.add(
        Method::POST,
        rules,
        write,
        "monitoring.rules.create",
        h!(app.alert_rules => create_rule),
    );
    let one = "/monitoring/alerts/rules/{id}";
    r.add(
        Method::GET,
        one,
        read,
        "monitoring.rules.get",
        h!(app.alert_rules => get_rule),
    );
    r.add(
        Method::PUT,
        one,
        write,
        "monitoring.rules.replace",
        h!(app.alert_rules => replace_rule),
    );
    r.add(
        Method::PATCH,
        one,
        write,
        "monitoring.rules.update",
        h!(app.alert_rules => patch_rule),
    );
    r.add(
        Method::DELETE,
        one,
        write,
        "monitoring.rules.delete",
        h!(app.alert_rules => delete_rule),
    );
}

fn alert_counts(monitor: &Monitor) -> Value {
    let (info, warning, error, critical) = monitor.alert_counts();
    json!({"active": info + warning + error + critical, "critical": critical,
           "error": error, "warning": warning, "info": info})
}

async fn dashboard(monitor: &Monitor, _: &mut Request) -> ApiResult<Reply> {
    let s = monitor.sample()?;
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
        "alerts": alert_counts(monitor),
        "collector": monitor.about(),
        "timestamp": s.timestamp_string(),
    })))
}

async fn metrics(monitor: &Monitor, _: &mut Request) -> ApiResult<Reply> {
    let s = monitor.sample()?;
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
async fn history(monitor: &Monitor, req: &mut Request) -> ApiResult<Reply> {
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
        for p in downsample(&monitor.series(name, since), points) {
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
                    format!("unknown metric {shown:?}; known: {}", rules::known()),
                )
            })?;
        if !out.contains(&m) {
            out.push(m);
        }
    }
    Ok(out)
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

async fn active_alerts(monitor: &Monitor, _: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(monitor.active_alerts()))
}

// ---- rules ----

/// The rule id of the path; one that could not be a rule's is a 404 before the body is read.
fn rule_id(req: &Request) -> ApiResult<String> {
    let id = req.param("id");
    if rules::valid_id(id) {
        Ok(id.to_string())
    } else {
        Err(ApiError::not_found("alert rule"))
    }
}

async fn list_rules(rules: &Rules, _: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(rules.list().await?))
}

async fn get_rule(rules: &Rules, req: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(rules.get(&rule_id(req)?).await?))
}

async fn create_rule(rules: &Rules, req: &mut Request) -> ApiResult<Reply> {
    let input: RuleInput = req.json().await?;
    let rule = rules.create(input).await?;
    req.audit_target = Some(format!("monitoring/alerts/rules/{}", rule.id));
    Ok(Reply::created(rule, "alert rule created"))
}

async fn replace_rule(rules: &Rules, req: &mut Request) -> ApiResult<Reply> {
    update(rules, req, true).await
}

async fn patch_rule(rules: &Rules, req: &mut Request) -> ApiResult<Reply> {
    update(rules, req, false).await
}

async fn update(rules: &Rules, req: &mut Request, full: bool) -> ApiResult<Reply> {
    let id = rule_id(req)?;
    req.audit_target = Some(format!("monitoring/alerts/rules/{id}"));
    let input: RuleInput = req.json().await?;
    Ok(Reply::ok_with(
        rules.update(&id, input, full).await?,
        "alert rule updated",
    ))
}

async fn delete_rule(rules: &Rules, req: &mut Request) -> ApiResult<Reply> {
    let id = rule_id(req)?;
    req.audit_target = Some(format!("monitoring/alerts/rules/{id}"));
    rules.delete(&id).await?;
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
    let s = app.monitor.sample()?;
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
}
