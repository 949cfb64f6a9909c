//! `/logs`: the audit log and application events — list with filters, one entry, exports
//! (JSON, CSV, text) and their download. Thin: parse → [`Logs`] → render.

use super::query::{Page, Query};
use super::request::Request;
use super::response::{FileBody, Reply};
use super::router::{Access, Router};
use crate::api::error::{ApiError, ApiResult};
use crate::auth::Permission::LogsRead;
use crate::h;
use crate::logs::{Format, Logs};
use crate::store::logs::{parse_level, Filter};
use hyper::Method;

pub fn routes(r: &mut Router) {
    let read = Access::Require(LogsRead);
    r.add(
        Method::GET,
        "/logs",
        read,
        "logs.list",
        h!(app.logs => list),
    )
    .query_params(&[
        "page",
        "size",
        "level",
        "start_time",
        "end_time",
        "search",
        "module",
    ]);
    r.add(
        Method::GET,
        "/logs/export",
        read,
        "logs.export",
        h!(app.logs => export),
    )
    .query_params(&[
        "format",
        "level",
        "start_time",
        "end_time",
        "search",
        "module",
    ]);
    r.add(
        Method::GET,
        "/logs/export/download/{file}",
        read,
        "logs.download",
        h!(app.logs => download),
    );
    r.add(
        Method::GET,
        "/logs/{id}",
        read,
        "logs.get",
        h!(app.logs => get),
    );
}

/// `level=` (one level, or several comma-separated), `start_time=`/`end_time=` (RFC 3339,
/// a date, or Unix seconds), `search=`, `module=`.
fn filter(q: &mut Query) -> ApiResult<Filter> {
    let mut f = Filter::default();
    if let Some(levels) = q.take("level") {
        for l in levels.split(',').map(str::trim).filter(|l| !l.is_empty()) {
            f.levels.push(parse_level(l).ok_or_else(|| {
                ApiError::validation(
                    "level",
                    "level must be DEBUG, INFO, WARNING, ERROR or CRITICAL (comma-separated for several)",
                )
            })?);
        }
    }
    let time = |q: &mut Query, name: &str| -> ApiResult<Option<i64>> {
        q.take(name)
            .map(|t| {
                crate::time::parse(&t).ok_or_else(|| {
                    ApiError::validation(
                        name,
                        format!("{name} must be an RFC 3339 time (2024-01-01T00:00:00Z), a date or Unix seconds"),
                    )
                })
            })
            .transpose()
    };
    f.start = time(q, "start_time")?;
    f.end = time(q, "end_time")?;
    if let (Some(s), Some(e)) = (f.start, f.end) {
        if s > e {
            return Err(ApiError::validation(
                "end_time",
                "end_time must not be before start_time",
            ));
        }
    }
    f.search = q
        .take("search")
        .map(|s| s.trim().chars().take(200).collect::<String>())
        .filter(|s| !s.is_empty());
    f.module = q.take("module").filter(|m| !m.is_empty());
    Ok(f)
}

async fn list(logs: &Logs, req: &mut Request) -> ApiResult<Reply> {
    let mut q = req.query()?;
    let page = Page::from_query(&mut q)?;
    let f = filter(&mut q)?;
    let (views, total) = logs.list(f, page).await?;
    Ok(Reply::ok(page.render("logs", views, total)))
}

async fn get(logs: &Logs, req: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(logs.get(req.id("id")?).await?))
}

async fn export(logs: &Logs, req: &mut Request) -> ApiResult<Reply> {
    let mut q = req.query()?;
    let format = match q.take_choice("format") {
        None => Format::Json,
        Some(f) => Format::parse(&f)
            .ok_or_else(|| ApiError::validation("format", "format must be json, csv or txt"))?,
    };
    let f = filter(&mut q)?;
    let done = logs.export(f, format).await?;
    let msg = format!("{} log entries exported", done.entries);
    Ok(Reply::ok_with(done, &msg))
}

/// Streamed from disk; the download slot is held until the file is sent.
async fn download(logs: &Logs, req: &mut Request) -> ApiResult<Reply> {
    let name = req.param("file").to_string();
    let d = logs.download(&name).await?;
    let body = FileBody::new(d.file, d.len, d.slot);
    Ok(Reply::file_stream(body, Format::content_type(&name), &name))
}
