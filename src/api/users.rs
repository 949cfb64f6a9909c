//! `/users`: list (search, role and is_active filters, pagination), create, read, update
//! (PUT and PATCH both take any subset of fields), delete, reset-password.

use super::query::Page;
use super::request::Request;
use super::response::Reply;
use super::router::{Access, Router};
use crate::api::error::{ApiError, ApiResult};
use crate::auth::{Permission, Role};
use crate::h;
use crate::store::users::UserFilter;
use crate::users::{self, NewUser, PasswordChange, UserChanges, UserView};
use hyper::Method;

pub fn routes(r: &mut Router) {
    use Access::Require;
    use Permission::{UsersRead, UsersWrite};
    r.add(
        Method::GET,
        "/users",
        Require(UsersRead),
        "users.list",
        h!(app.users => list),
    )
    .query_params(&["page", "size", "role", "search", "is_active"]);
    r.add(
        Method::POST,
        "/users",
        Require(UsersWrite),
        "users.create",
        h!(app.users => create),
    );
    r.add(
        Method::GET,
        "/users/{id}",
        Require(UsersRead),
        "users.get",
        h!(app.users => get),
    );
    r.add(
        Method::PUT,
        "/users/{id}",
        Require(UsersWrite),
        "users.update",
        h!(app.users => update),
    );
    r.add(
        Method::PATCH,
        "/users/{id}",
        Require(UsersWrite),
        "users.update",
        h!(app.users => update),
    );
    r.add(
        Method::DELETE,
        "/users/{id}",
        Require(UsersWrite),
        "users.delete",
        h!(app.users => delete),
    );
    // Authenticated only: users may change their own password (with the current one).
    r.add(
        Method::POST,
        "/users/{id}/reset-password",
        Access::Authenticated,
        "users.reset_password",
        h!(app.users => reset_password),
    );
}

async fn list(users: &users::Service, req: &mut Request) -> ApiResult<Reply> {
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
    let (views, total) = users.list(filter, page).await?;
    Ok(Reply::ok(page.render("users", views, total)))
}

async fn create(users: &users::Service, req: &mut Request) -> ApiResult<Reply> {
    let input: NewUser = req.json().await?;
    let user = users.create(input).await?;
    req.audit_target = Some(format!("users/{}", user.id));
    Ok(Reply::created(UserView::from(user), "user created"))
}

async fn get(users: &users::Service, req: &mut Request) -> ApiResult<Reply> {
    let user = users.get(req.id("id")?).await?;
    Ok(Reply::ok(UserView::from(user)))
}

async fn update(users: &users::Service, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let changes: UserChanges = req.json().await?;
    let user = users.update(id, changes).await?;
    Ok(Reply::ok_with(UserView::from(user), "user updated"))
}

async fn delete(users: &users::Service, req: &mut Request) -> ApiResult<Reply> {
    users.delete(req.id("id")?).await?;
    Ok(Reply::message("user deleted"))
}

async fn reset_password(users: &users::Service, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let who = req.principal()?.clone();
    let change: PasswordChange = req.json().await?;
    users.change_password(&who, id, change).await?;
    Ok(Reply::message(
        "password reset; existing sessions of this user were signed out",
    ))
}
