//! `/auth/*`: login, refresh (alias `/auth/refresh-token`), logout, me.

use super::request::Request;
use super::response::Reply;
use super::router::{Access, Router};
use crate::api::error::ApiResult;
use crate::auth::login;
use crate::users::UserView;
use crate::{h, users};
use hyper::Method;
use serde::{Deserialize, Serialize};

pub fn routes(r: &mut Router) {
    r.add(
        Method::POST,
        "/auth/login",
        Access::Public,
        "auth.login",
        h!(app.auth => login),
    );
    r.add(
        Method::POST,
        "/auth/refresh",
        Access::Authenticated,
        "auth.refresh",
        h!(app.auth => refresh),
    );
    r.add(
        Method::POST,
        "/auth/refresh-token",
        Access::Authenticated,
        "auth.refresh",
        h!(app.auth => refresh),
    );
    r.add(
        Method::POST,
        "/auth/logout",
        Access::Authenticated,
        "auth.logout",
        h!(app.auth => logout),
    );
    r.add(
        Method::GET,
        "/auth/me",
        Access::Authenticated,
        "auth.me",
        h!(app.users => me),
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

async fn login(auth: &crate::auth::Service, req: &mut Request) -> ApiResult<Reply> {
    let body: LoginBody = req.json().await?;
    req.audit_username = Some(body.username.chars().take(64).collect());
    let (grant, user) = auth
        .login(req.client_ip, &body.username, body.password)
        .await?;
    req.audit_target = Some(format!("users/{}", user.id));
    Ok(Reply::ok_with(
        LoginReply {
            grant,
            user: user.into(),
        },
        "login successful",
    ))
}

async fn refresh(auth: &crate::auth::Service, req: &mut Request) -> ApiResult<Reply> {
    let grant = auth.refresh(req.principal()?).await?;
    Ok(Reply::ok(grant))
}

async fn logout(auth: &crate::auth::Service, req: &mut Request) -> ApiResult<Reply> {
    auth.logout(req.principal()?).await?;
    Ok(Reply::message("logged out"))
}

async fn me(users: &users::Service, req: &mut Request) -> ApiResult<Reply> {
    let user = users.get(req.principal()?.user_id).await?;
    Ok(Reply::ok(UserView::from(user)))
}
