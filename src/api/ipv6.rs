//! `/ipv6`: prefix pools (CRUD), allocations (allocate, release, list), pool whitelists,
//! and `/monitoring/ipv6/pools`. Thin: parse → one [`ipam::Service`] call (store +
//! allocators in one database closure, then the change published) → render.

use super::error::{ApiError, ApiResult};
use super::query::{Page, PageMeta};
use super::request::Request;
use super::response::Reply;
use super::router::{Access, Router};
use crate::auth::Permission;
use crate::h;
use crate::ipam::{
    self, AllocationFilter, AllocationRequest, AllocationView, NewPool, NewWhitelistEntry,
    PoolChanges, PoolRef, PoolView, WhitelistView,
};
use hyper::Method;
use serde::Serialize;

pub fn routes(r: &mut Router) {
    use Access::Require;
    use Method as M;
    use Permission::{Ipv6Read as Read, Ipv6Write as W, MonitoringRead};
    r.add(
        M::GET,
        "/ipv6/pools",
        Require(Read),
        "ipv6.pools.list",
        h!(app.ipam => list_pools),
    )
    .query_params(&["page", "size"]);
    r.add(
        M::POST,
        "/ipv6/pools",
        Require(W),
        "ipv6.pools.create",
        h!(app.ipam => create_pool),
    );
    r.add(
        M::GET,
        "/ipv6/pools/{id}",
        Require(Read),
        "ipv6.pools.get",
        h!(app.ipam => get_pool),
    );
    r.add(
        M::PUT,
        "/ipv6/pools/{id}",
        Require(W),
        "ipv6.pools.update",
        h!(app.ipam => update_pool),
    );
    r.add(
        M::PATCH,
        "/ipv6/pools/{id}",
        Require(W),
        "ipv6.pools.update",
        h!(app.ipam => update_pool),
    );
    r.add(
        M::DELETE,
        "/ipv6/pools/{id}",
        Require(W),
        "ipv6.pools.delete",
        h!(app.ipam => delete_pool),
    )
    .query_params(&["force"]);
    r.add(
        M::POST,
        "/ipv6/pools/{id}/allocate",
        Require(W),
        "ipv6.allocations.create",
        h!(app.ipam => allocate_in_pool),
    );
    r.add(
        M::POST,
        "/ipv6/pools/{id}/validate-rpki",
        Require(Read),
        "ipv6.pools.validate_rpki",
        h!(app.ipam => validate_rpki),
    );
    r.add(
        M::POST,
        "/ipv6/pools/{id}/release/{allocation_id}",
        Require(W),
        "ipv6.allocations.release",
        h!(app.ipam => release),
    );
    r.add(
        M::GET,
        "/ipv6/allocations",
        Require(Read),
        "ipv6.allocations.list",
        h!(app.ipam => list_allocations),
    )
    .query_params(&["page", "size", "pool_id", "client_id", "client_name"]);
    r.add(
        M::POST,
        "/ipv6/allocations",
        Require(W),
        "ipv6.allocations.create",
        h!(app.ipam => allocate),
    );
    r.add(
        M::GET,
        "/ipv6/pools/{id}/whitelist",
        Require(Read),
        "ipv6.whitelist.list",
        h!(app.ipam => list_whitelist),
    );
    r.add(
        M::POST,
        "/ipv6/pools/{id}/whitelist",
        Require(W),
        "ipv6.whitelist.add",
        h!(app.ipam => add_whitelist),
    );
    r.add(
        M::DELETE,
        "/ipv6/pools/{id}/whitelist/{entry_id}",
        Require(W),
        "ipv6.whitelist.remove",
        h!(app.ipam => remove_whitelist),
    );
    r.add(
        M::GET,
        "/monitoring/ipv6/pools",
        Require(MonitoringRead),
        "monitoring.ipv6.pools",
        h!(app.ipam => monitor_pools),
    );
}

/// `{"pools": […], "pagination": {…}}`, serialised directly: `Page::render` goes through
/// `serde_json::Value`, which cannot hold the counts of a big pool.
#[derive(Serialize)]
struct PoolList {
    pools: Vec<PoolView>,
    pagination: PageMeta,
}

// ---- pools ----

async fn list_pools(pools: &ipam::Service, req: &mut Request) -> ApiResult<Reply> {
    let mut q = req.query()?;
    let page = Page::from_query(&mut q)?;
    let (views, total) = pools.list_pools(page).await?;
    Ok(Reply::ok(PoolList {
        pools: views,
        pagination: page.meta(total),
    }))
}

async fn create_pool(pools: &ipam::Service, req: &mut Request) -> ApiResult<Reply> {
    let input: NewPool = req.json().await?;
    let view = pools.create_pool(input).await?;
    req.audit_target = Some(format!("ipv6/pools/{}", view.id));
    Ok(Reply::created(view, "pool created"))
}

async fn get_pool(pools: &ipam::Service, req: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(pools.get_pool(req.id("id")?).await?))
}

async fn update_pool(pools: &ipam::Service, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    req.audit_target = Some(format!("ipv6/pools/{id}"));
    let changes: PoolChanges = req.json().await?;
    let view = pools.update_pool(id, changes).await?;
    Ok(Reply::ok_with(view, "pool updated"))
}

async fn delete_pool(pools: &ipam::Service, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    req.audit_target = Some(format!("ipv6/pools/{id}"));
    let mut q = req.query()?;
    let force = q.take_parsed("force", "true or false")?.unwrap_or(false);
    let released = pools.delete_pool(id, force).await?;
    Ok(Reply::message(&format!(
        "pool deleted ({released} allocations released)"
    )))
}

async fn monitor_pools(pools: &ipam::Service, _: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(pools.monitor().await?))
}

// ---- allocations ----

async fn allocate(pools: &ipam::Service, req: &mut Request) -> ApiResult<Reply> {
    let mut body: AllocationRequest = req.json().await?;
    let pool_id = body
        .pool_id
        .take()
        .ok_or_else(|| ApiError::validation("pool_id", "pool_id is required"))?;
    allocate_from(pools, req, PoolRef::Body(pool_id), body).await
}

async fn allocate_in_pool(pools: &ipam::Service, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    req.audit_target = Some(format!("ipv6/pools/{id}"));
    let mut body: AllocationRequest = req.json().await?;
    if body.pool_id.take().is_some_and(|p| p != id) {
        return Err(ApiError::validation(
            "pool_id",
            "pool_id differs from the pool in the path",
        ));
    }
    allocate_from(pools, req, PoolRef::Path(id), body).await
}

async fn allocate_from(
    pools: &ipam::Service,
    req: &mut Request,
    pool: PoolRef,
    body: AllocationRequest,
) -> ApiResult<Reply> {
    let input = body.validate()?;
    let done = pools.allocate(pool, input).await?;
    req.audit_target = Some(format!("ipv6/allocations/{}", done.allocation.id));
    let view = AllocationView::new(done.allocation, "active");
    Ok(if done.created {
        Reply::created(view, "prefix allocated")
    } else {
        Reply::ok_with(view, "already allocated")
    })
}

async fn release(pools: &ipam::Service, req: &mut Request) -> ApiResult<Reply> {
    let pool_id = req.id("id")?;
    let allocation_id = req.id("allocation_id")?;
    req.audit_target = Some(format!("ipv6/allocations/{allocation_id}"));
    let a = pools.release(pool_id, allocation_id).await?;
    Ok(Reply::ok_with(
        AllocationView::new(a, "released"),
        "prefix released",
    ))
}

async fn list_allocations(pools: &ipam::Service, req: &mut Request) -> ApiResult<Reply> {
    let mut q = req.query()?;
    let page = Page::from_query(&mut q)?;
    let filter = AllocationFilter {
        pool_id: q.take_parsed("pool_id", "a pool id")?,
        client_id: q.take_parsed("client_id", "a client id")?,
        client_name: q.take("client_name"),
    };
    render_allocations(pools, filter, page).await
}

async fn render_allocations(
    pools: &ipam::Service,
    filter: AllocationFilter,
    page: Page,
) -> ApiResult<Reply> {
    let (rows, total) = pools.list_allocations(filter, page).await?;
    let views: Vec<AllocationView> = rows
        .into_iter()
        .map(|a| AllocationView::new(a, "active"))
        .collect();
    Ok(Reply::ok(page.render("allocations", views, total)))
}

// ---- whitelist ----

#[derive(Serialize)]
struct WhitelistList {
    whitelist: Vec<WhitelistView>,
    total: usize,
}

async fn list_whitelist(pools: &ipam::Service, req: &mut Request) -> ApiResult<Reply> {
    let rows = pools.whitelist(req.id("id")?).await?;
    let whitelist: Vec<WhitelistView> = rows.into_iter().map(Into::into).collect();
    Ok(Reply::ok(WhitelistList {
        total: whitelist.len(),
        whitelist,
    }))
}

async fn add_whitelist(pools: &ipam::Service, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    req.audit_target = Some(format!("ipv6/pools/{id}/whitelist"));
    let input: NewWhitelistEntry = req.json().await?;
    let row = pools.add_whitelist(id, input).await?;
    Ok(Reply::created(
        WhitelistView::from(row),
        "whitelist entry added",
    ))
}

async fn remove_whitelist(pools: &ipam::Service, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    req.audit_target = Some(format!("ipv6/pools/{id}/whitelist"));
    let entry = req.id("entry_id")?;
    pools.remove_whitelist(id, entry).await?;
    Ok(Reply::message("whitelist entry removed"))
}

async fn validate_rpki(pools: &ipam::Service, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    // An empty body validates the pool's own prefix with the local AS.
    let body: crate::ipam::rpki::ValidateRequest = req.json_or_default().await?;
    Ok(Reply::ok(pools.validate_rpki(id, body).await?))
}
