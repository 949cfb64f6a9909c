//! `/system`: host information, live settings (`/system/config`) and restart/reload
//! (`/system/action`). Thin: parse → `crate::system` → render.

use super::request::Request;
use super::response::Reply;
use super::router::{Access, Router};
use crate::api::error::{ApiError, ApiResult};
use crate::app::App;
use crate::auth::Permission::{SystemRead, SystemWrite};
use crate::h;
use crate::system::{self, Exit, SettingsInput};
use hyper::Method;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

pub fn routes(r: &mut Router) {
    r.add(
        Method::GET,
        "/system/info",
        Access::Require(SystemRead),
        "system.info",
        h!(info),
    );
    r.add(
        Method::GET,
        "/system/config",
        Access::Require(SystemRead),
        "system.config.get",
        h!(app.system => get_config),
    );
    r.add(
        Method::PUT,
        "/system/config",
        Access::Require(SystemWrite),
        "system.config.update",
        h!(app.system => put_config),
    );
    r.add(
        Method::PATCH,
        "/system/config",
        Access::Require(SystemWrite),
        "system.config.update",
        h!(app.system => put_config),
    );
    r.add(
        Method::POST,
        "/system/action",
        Access::Require(SystemWrite),
        "system.action",
        h!(app.system => action),
    );
}

/// Reads across domains (the states of every part of the service).
async fn info(app: Arc<App>, _: &mut Request) -> ApiResult<Reply> {
    let services = super::status::services(&app).await;
    Ok(Reply::ok(app.system.info(services).await))
}

async fn get_config(system: &system::Service, _: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(system.config_view()))
}

async fn put_config(system: &system::Service, req: &mut Request) -> ApiResult<Reply> {
    let input: SettingsInput = req.json().await?;
    system.update(input).await?;
    let mut v = system.config_view();
    v["updated_at"] = json!(crate::time::rfc3339(crate::time::now()));
    Ok(Reply::ok_with(v, "system configuration updated"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionInput {
    action: String,
    /// Accepted for the seeds' clients; there is one service.
    #[serde(default)]
    service: Option<String>,
}

async fn action(system: &system::Service, req: &mut Request) -> ApiResult<Reply> {
    let input: ActionInput = req.json().await?;
    if let Some(s) = input.service.as_deref() {
        if !matches!(s, "ipv6wgm" | "ipv6-wireguard-manager" | "") {
            return Err(ApiError::validation(
                "service",
                "service must be ipv6wgm (the only service)",
            ));
        }
    }
    match input.action.as_str() {
        "restart" => {
            // Answered first; the drain that follows lets this response reach the client.
            system.control().request(Exit::Restart);
            Ok(Reply::ok_with(
                json!({"action": "restart", "status": "restarting"}),
                "the service restarts after finishing in-flight requests",
            ))
        }
        "reload" => {
            let r = system.reload().await?;
            Ok(Reply::ok_with(
                json!({"action": "reload", "status": "reloaded", "settings": r.settings,
                       "restart_required": r.restart_required}),
                "configuration re-read",
            ))
        }
        _ => Err(ApiError::validation(
            "action",
            "action must be restart or reload",
        )),
    }
}
