//! `/backup/schedules`: the backup schedules — the configuration file's (`"source":
//! "config"`, read-only: a change or delete is a 409 saying to edit the file) and the API's
//! (`"source": "api"`). Reading them is a general read like the other backup routes;
//! changing them is for admins (`system:write`): a schedule decides what is written to the
//! backup directory and how often. Thin: parse → [`Service`] → render.

use super::request::Request;
use super::response::Reply;
use super::router::{Access, Router};
use crate::api::error::{ApiError, ApiResult};
use crate::auth::Permission::{BackupRead, SystemWrite};
use crate::backup::schedule::ScheduleInput;
use crate::backup::Service;
use crate::h;
use hyper::Method;

pub fn routes(r: &mut Router) {
    let read = Access::Require(BackupRead);
    let admin = Access::Require(SystemWrite);
    let one = "/backup/schedules/{name}";
    r.add(
        Method::GET,
        "/backup/schedules",
        read,
        "backup.schedules.list",
        h!(app.backup => list),
    );
    r.add(
        Method::POST,
        "/backup/schedules",
        admin,
        "backup.schedules.create",
        h!(app.backup => create),
    );
    r.add(
        Method::GET,
        one,
        read,
        "backup.schedules.get",
        h!(app.backup => get),
    );
    r.add(
        Method::PUT,
        one,
        admin,
        "backup.schedules.update",
        h!(app.backup => update),
    );
    r.add(
        Method::DELETE,
        one,
        admin,
        "backup.schedules.delete",
        h!(app.backup => delete),
    );
}

/// `{name}`, percent-decoded (`nightly%20full`).
fn name(req: &Request) -> ApiResult<String> {
    percent_encoding::percent_decode_str(req.param("name"))
        .decode_utf8()
        .map(|n| n.into_owned())
        .map_err(|_| ApiError::validation("name", "name must be UTF-8"))
}

async fn list(svc: &Service, _req: &mut Request) -> ApiResult<Reply> {
    let all: Vec<_> = svc.schedule_views().iter().map(|v| v.to_json()).collect();
    Ok(Reply::ok(serde_json::Value::Array(all)))
}

async fn get(svc: &Service, req: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(svc.schedule_view(&name(req)?)?.to_json()))
}

async fn create(svc: &Service, req: &mut Request) -> ApiResult<Reply> {
    let input: ScheduleInput = req.json().await?;
    let view = svc.create_schedule(input).await?;
    req.audit_target = Some(format!("backup/schedules/{}", view.name));
    Ok(Reply::created(view.to_json(), "schedule created"))
}

/// The fields given change; the others stay (see `ScheduleInput::update`).
async fn update(svc: &Service, req: &mut Request) -> ApiResult<Reply> {
    let name = name(req)?;
    let input: ScheduleInput = req.json().await?;
    let view = svc.update_schedule(name, input).await?;
    req.audit_target = Some(format!("backup/schedules/{}", view.name));
    Ok(Reply::ok_with(view.to_json(), "schedule updated"))
}

async fn delete(svc: &Service, req: &mut Request) -> ApiResult<Reply> {
    let name = name(req)?;
    req.audit_target = Some(format!("backup/schedules/{name}"));
    svc.delete_schedule(name).await?;
    Ok(Reply::message("schedule deleted"))
}
