//! `/bgp`: sessions (CRUD, start/stop/reload/restart, batch, received routes),
//! announcements (CRUD) and `/monitoring/bgp/sessions`. Thin: parse → one [`bgp::Service`]
//! call (store, then the change published for the speaker to follow) → render.

use super::error::{ApiError, ApiResult};
use super::query::Page;
use super::request::Request;
use super::response::Reply;
use super::router::{Access, Router};
use crate::auth::Permission;
use crate::bgp::{self, AnnouncementInput, SessionAction, SessionInput};
use crate::h;
use crate::store::bgp::AnnouncementFilter;
use hyper::Method;
use serde::Serialize;

pub fn routes(r: &mut Router) {
    use Access::Require;
    use Method as M;
    use Permission::{BgpRead as Read, BgpWrite as W, MonitoringRead};
    let s = "/bgp/sessions";
    r.add(
        M::GET,
        s,
        Require(Read),
        "bgp.sessions.list",
        h!(app.bgp => list_sessions),
    )
    .query_params(&["page", "size"]);
    r.add(
        M::POST,
        s,
        Require(W),
        "bgp.sessions.create",
        h!(app.bgp => create_session),
    );
    let one = "/bgp/sessions/{id}";
    r.add(
        M::GET,
        one,
        Require(Read),
        "bgp.sessions.get",
        h!(app.bgp => get_session),
    );
    r.add(
        M::PUT,
        one,
        Require(W),
        "bgp.sessions.update",
        h!(app.bgp => update_session),
    );
    r.add(
        M::PATCH,
        one,
        Require(W),
        "bgp.sessions.update",
        h!(app.bgp => update_session),
    );
    r.add(
        M::DELETE,
        one,
        Require(W),
        "bgp.sessions.delete",
        h!(app.bgp => delete_session),
    );
    r.add(
        M::POST,
        "/bgp/sessions/{id}/start",
        Require(W),
        "bgp.sessions.start",
        h!(app.bgp => start),
    );
    r.add(
        M::POST,
        "/bgp/sessions/{id}/stop",
        Require(W),
        "bgp.sessions.stop",
        h!(app.bgp => stop),
    );
    r.add(
        M::POST,
        "/bgp/sessions/{id}/reload",
        Require(W),
        "bgp.sessions.reload",
        h!(app.bgp => reload),
    );
    r.add(
        M::POST,
        "/bgp/sessions/{id}/restart",
        Require(W),
        "bgp.sessions.restart",
        h!(app.bgp => restart),
    );
    r.add(
        M::POST,
        "/bgp/sessions/batch/reload",
        Require(W),
        "bgp.sessions.batch_reload",
        h!(app.bgp => batch_reload),
    );
    r.add(
        M::POST,
        "/bgp/sessions/batch/restart",
        Require(W),
        "bgp.sessions.batch_restart",
        h!(app.bgp => batch_restart),
    );
    r.add(
        M::GET,
        "/bgp/sessions/{id}/routes",
        Require(Read),
        "bgp.sessions.routes",
        h!(app.bgp => received_routes),
    )
    .query_params(&["page", "size"]);
    let a = "/bgp/announcements";
    r.add(
        M::GET,
        a,
        Require(Read),
        "bgp.announcements.list",
        h!(app.bgp => list_announcements),
    )
    .query_params(&["page", "size", "session_id", "enabled"]);
    r.add(
        M::POST,
        a,
        Require(W),
        "bgp.announcements.create",
        h!(app.bgp => create_announcement),
    );
    let one = "/bgp/announcements/{id}";
    r.add(
        M::GET,
        one,
        Require(Read),
        "bgp.announcements.get",
        h!(app.bgp => get_announcement),
    );
    r.add(
        M::PUT,
        one,
        Require(W),
        "bgp.announcements.update",
        h!(app.bgp => update_announcement),
    );
    r.add(
        M::PATCH,
        one,
        Require(W),
        "bgp.announcements.update",
        h!(app.bgp => update_announcement),
    );
    r.add(
        M::DELETE,
        one,
        Require(W),
        "bgp.announcements.delete",
        h!(app.bgp => delete_announcement),
    );
    r.add(
        M::GET,
        "/monitoring/bgp/sessions",
        Require(MonitoringRead),
        "monitoring.bgp.sessions",
        h!(app.bgp => monitor_sessions),
    );
}

// ---- sessions ----

async fn list_sessions(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    let mut q = req.query()?;
    let page = Page::from_query(&mut q)?;
    let (views, total) = bgp.list_sessions(page).await?;
    Ok(Reply::ok(page.render("sessions", views, total)))
}

async fn create_session(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    let input: SessionInput = req.json().await?;
    let view = bgp.create_session(input).await?;
    req.audit_target = Some(format!("bgp/sessions/{}", view.id));
    Ok(Reply::created(view, "BGP session created"))
}

async fn get_session(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(bgp.get_session(req.id("id")?).await?))
}

async fn update_session(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    req.audit_target = Some(format!("bgp/sessions/{id}"));
    let input: SessionInput = req.json().await?;
    let view = bgp.update_session(id, input).await?;
    Ok(Reply::ok_with(view, "BGP session updated"))
}

async fn delete_session(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    req.audit_target = Some(format!("bgp/sessions/{id}"));
    let n = bgp.delete_session(id).await?;
    Ok(Reply::message(&format!(
        "BGP session deleted ({n} announcements restricted to it deleted)"
    )))
}

async fn action(bgp: &bgp::Service, req: &mut Request, action: SessionAction) -> ApiResult<Reply> {
    let id = req.id("id")?;
    req.audit_target = Some(format!("bgp/sessions/{id}"));
    let view = bgp.session_action(id, action).await?;
    Ok(Reply::ok_with(
        view,
        &format!("BGP session {}: {}", action.as_str(), "requested"),
    ))
}

async fn start(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    action(bgp, req, SessionAction::Start).await
}

async fn stop(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    action(bgp, req, SessionAction::Stop).await
}

async fn reload(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    action(bgp, req, SessionAction::Reload).await
}

async fn restart(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    action(bgp, req, SessionAction::Restart).await
}

/// One entry of a batch answer.
#[derive(Debug, Serialize)]
struct BatchResult {
    id: i64,
    success: bool,
    status: Option<&'static str>,
    error: Option<String>,
}

#[derive(Serialize)]
struct BatchReply {
    results: Vec<BatchResult>,
    succeeded: usize,
    failed: usize,
}

/// The body is an array of session ids (numbers, or numeric strings as the seeds send).
async fn batch(bgp: &bgp::Service, req: &mut Request, action: SessionAction) -> ApiResult<Reply> {
    let body: Vec<serde_json::Value> = req.json_array().await?;
    if body.len() > 256 {
        return Err(ApiError::validation(
            "ids",
            "at most 256 sessions per batch",
        ));
    }
    let ids = body
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|&id| id > 0)
                .ok_or_else(|| {
                    ApiError::validation(format!("[{i}]"), format!("[{i}] {v} is not a session id"))
                })
        })
        .collect::<ApiResult<Vec<i64>>>()?;
    let results: Vec<BatchResult> = bgp
        .batch(ids, action)
        .await
        .into_iter()
        .map(|(id, r)| match r {
            Ok(v) => BatchResult {
                id,
                success: true,
                status: Some(v.live.status),
                error: None,
            },
            Err(e) => BatchResult {
                id,
                success: false,
                status: None,
                error: Some(ApiError::from(e).message),
            },
        })
        .collect();
    let succeeded = results.iter().filter(|r| r.success).count();
    Ok(Reply::ok(BatchReply {
        failed: results.len() - succeeded,
        succeeded,
        results,
    }))
}

async fn batch_reload(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    batch(bgp, req, SessionAction::Reload).await
}

async fn batch_restart(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    batch(bgp, req, SessionAction::Restart).await
}

async fn received_routes(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let mut q = req.query()?;
    let page = Page::from_query(&mut q)?;
    let (routes, total) = bgp.received_routes(id, page).await?;
    Ok(Reply::ok(page.render("routes", routes, total)))
}

async fn monitor_sessions(bgp: &bgp::Service, _: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(bgp.monitor().await?))
}

// ---- announcements ----

async fn list_announcements(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    let mut q = req.query()?;
    let page = Page::from_query(&mut q)?;
    let filter = AnnouncementFilter {
        session_id: q.take_parsed("session_id", "a session id")?,
        enabled: q.take_parsed("enabled", "true or false")?,
    };
    let (views, total) = bgp.list_announcements(filter, page).await?;
    Ok(Reply::ok(page.render("announcements", views, total)))
}

async fn create_announcement(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    let input: AnnouncementInput = req.json().await?;
    let view = bgp.create_announcement(input).await?;
    req.audit_target = Some(format!("bgp/announcements/{}", view.id));
    Ok(Reply::created(view, "BGP announcement created"))
}

async fn get_announcement(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(bgp.get_announcement(req.id("id")?).await?))
}

async fn update_announcement(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    req.audit_target = Some(format!("bgp/announcements/{id}"));
    let input: AnnouncementInput = req.json().await?;
    let view = bgp.update_announcement(id, input).await?;
    Ok(Reply::ok_with(view, "BGP announcement updated"))
}

async fn delete_announcement(bgp: &bgp::Service, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    req.audit_target = Some(format!("bgp/announcements/{id}"));
    bgp.delete_announcement(id).await?;
    Ok(Reply::message("BGP announcement deleted"))
}
