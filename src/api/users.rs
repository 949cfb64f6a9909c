//! `/users`: list (search, role and is_active filters, pagination), create, read, update
//! (PUT and PATCH both take any subset of fields), delete, reset-password.

use super::query::Page;
use super::request::Request;
use super::response::Reply;
use super::router::{Access, Router};
use crate::app::App;
use crate::auth::{Permission, Role};
use crate::error::{ApiError, ApiResult};
use crate::h;
use crate::store::users::UserFilter;
use crate::users::{self, NewUser, UserChanges, UserView};
use hyper::Method;
use serde::Deserialize;
use std::sync::Arc;

pub fn routes(r: &mut Router) {
    use Access::Require;
    use Permission::{UsersRead, UsersWrite};
    r.add(
        Method::GET,
        "/users",
        Require(UsersRead),
        "users.list",
        h!(list),
    )
    .query_params(&["page", "size", "role", "search", "is_active"]);
    r.add(
        Method::POST,
        "/users",
        Require(UsersWrite),
        "users.create",
        h!(create),
    );
    r.add(
        Method::GET,
        "/users/{id}",
        Require(UsersRead),
        "users.get",
        h!(get),
    );
    r.add(
        Method::PUT,
        "/users/{id}",
        Require(UsersWrite),
        "users.update",
        h!(update),
    );
    r.add(
        Method::PATCH,
        "/users/{id}",
        Require(UsersWrite),
        "users.update",
        h!(update),
    );
    r.add(
        Method::DELETE,
        "/users/{id}",
        Require(UsersWrite),
        "users.delete",
        h!(delete),
    );
    // Authenticated only: users may change their own password (with the current one).
    r.add(
        Method::POST,
        "/users/{id}/reset-password",
        Access::Authenticated,
        "users.reset_password",
        h!(reset_password),
    );
}

async fn list(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let mut q = req.query()?;
    let page = Page::from_query(&mut q)?;
    let role = match q.take_choice("role") {
        Some(r) => Some(r.parse::<Role>().map_err(|_| {
            ApiError::validation("role", "role must be one of admin, manager, user, viewer")
        })?),
        None => None,
    };
    let filter = UserFilter {
        search: q.take("search"),
        role,
        is_active: q.take_parsed("is_active", "true or false")?,
    };
    let (rows, total) = app
        .store
        .call(move |c| crate::store::users::list(c, &filter, page.size, page.offset()))
        .await?;
    let views: Vec<UserView> = rows.into_iter().map(UserView::from).collect();
    Ok(Reply::ok(page.render("users", views, total)))
}

async fn create(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let input: NewUser = req.json().await?;
    let user = users::create(&app, input).await?;
    req.audit_target = Some(format!("users/{}", user.id));
    Ok(Reply::created(UserView::from(user), "user created"))
}

async fn get(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let user = users::get(&app, req.id("id")?).await?;
    Ok(Reply::ok(UserView::from(user)))
}

async fn update(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let changes: UserChanges = req.json().await?;
    let user = users::update(&app, id, changes).await?;
    Ok(Reply::ok_with(UserView::from(user), "user updated"))
}

async fn delete(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    users::delete(&app, req.id("id")?).await?;
    Ok(Reply::message("user deleted"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetPassword {
    new_password: String,
    /// Required when users change their own password without `users:write`.
    #[serde(default)]
    current_password: Option<String>,
}

async fn reset_password(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let who = req.principal()?.clone();
    let body: ResetPassword = req.json().await?;
    if !who.role.allows(Permission::UsersWrite) {
        if who.user_id != id {
            return Err(ApiError::forbidden());
        }
        let current = body.current_password.ok_or_else(|| {
            ApiError::validation(
                "current_password",
                "current_password is required to change your own password",
            )
        })?;
        let stored = users::get(&app, id).await?.password_hash;
        if !users::check_password(&app, stored, current).await? {
            return Err(ApiError::validation(
                "current_password",
                "current password is incorrect",
            ));
        }
    }
    users::set_password(&app, id, body.new_password).await?;
    Ok(Reply::message(
        "password reset; existing sessions of this user were signed out",
    ))
}
