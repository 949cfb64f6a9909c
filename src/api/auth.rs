//! `/auth/*`: login, refresh (alias `/auth/refresh-token`), logout, me.

use super::request::Request;
use super::response::Reply;
use super::router::{Access, Router};
use crate::app::App;
use crate::auth::login;
use crate::error::ApiResult;
use crate::users::UserView;
use crate::{h, users};
use hyper::Method;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub fn routes(r: &mut Router) {
    r.add(
        Method::POST,
        "/auth/login",
        Access::Public,
        "auth.login",
        h!(login),
    );
    r.add(
        Method::POST,
        "/auth/refresh",
        Access::Authenticated,
        "auth.refresh",
        h!(refresh),
    );
    r.add(
        Method::POST,
        "/auth/refresh-token",
        Access::Authenticated,
        "auth.refresh",
        h!(refresh),
    );
    r.add(
        Method::POST,
        "/auth/logout",
        Access::Authenticated,
        "auth.logout",
        h!(logout),
    );
    r.add(
        Method::GET,
        "/auth/me",
        Access::Authenticated,
        "auth.me",
        h!(me),
    );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct LoginReply {
    #[serde(flatten)]
    grant: login::TokenGrant,
    user: UserView,
}

async fn login(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let body: LoginBody = req.json().await?;
    req.audit_username = Some(body.username.chars().take(64).collect());
    let (grant, user) = login::login(&app, req.client_ip, &body.username, body.password).await?;
    req.audit_target = Some(format!("users/{}", user.id));
    Ok(Reply::ok_with(
        LoginReply {
            grant,
            user: user.into(),
        },
        "login successful",
    ))
}

async fn refresh(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let grant = login::refresh(&app, req.principal()?).await?;
    Ok(Reply::ok(grant))
}

async fn logout(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    login::logout(&app, req.principal()?).await?;
    Ok(Reply::message("logged out"))
}

async fn me(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let user = users::get(&app, req.principal()?.user_id).await?;
    Ok(Reply::ok(UserView::from(user)))
}
