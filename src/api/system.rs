//! `/system`: host information, live settings (`/system/config`) and restart/reload
//! (`/system/action`). Thin: parse → `crate::system` → render.

use super::request::Request;
use super::response::Reply;
use super::router::{Access, Router};
use crate::app::{App, Exit};
use crate::auth::Permission::{SystemRead, SystemWrite};
use crate::error::{ApiError, ApiResult};
use crate::h;
use crate::system::{self, SettingsInput};
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
        h!(get_config),
    );
    r.add(
        Method::PUT,
        "/system/config",
        Access::Require(SystemWrite),
        "system.config.update",
        h!(put_config),
    );
    r.add(
        Method::PATCH,
        "/system/config",
        Access::Require(SystemWrite),
        "system.config.update",
        h!(put_config),
    );
    r.add(
        Method::POST,
        "/system/action",
        Access::Require(SystemWrite),
        "system.action",
        h!(action),
    );
}

async fn info(app: Arc<App>, _: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(system::info(&app).await))
}

/// The settings, with the seed's names next to ours (`max_log_size` = `max_log_size_mb`,
/// `debug_mode` from the log filter; `backup_retention` is null until backups exist).
fn config_view(app: &App) -> serde_json::Value {
    let s = app.runtime.get();
    let mut v = serde_json::to_value(&s).unwrap_or_default();
    v["app_name"] = json!(crate::api::status::SERVICE);
    v["app_version"] = json!(env!("CARGO_PKG_VERSION"));
    v["max_log_size"] = json!(s.max_log_size_mb);
    v["debug_mode"] = json!(s.debug_mode());
    v["backup_retention"] = serde_json::Value::Null;
    v
}

async fn get_config(app: Arc<App>, _: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(config_view(&app)))
}

async fn put_config(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let input: SettingsInput = req.json().await?;
    system::update(&app, input).await?;
    let mut v = config_view(&app);
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

async fn action(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
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
            app.control.request(Exit::Restart);
            Ok(Reply::ok_with(
                json!({"action": "restart", "status": "restarting"}),
                "the service restarts after finishing in-flight requests",
            ))
        }
        "reload" => {
            let r = system::reload(&app).await?;
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
