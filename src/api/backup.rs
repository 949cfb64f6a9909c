//! `/backup`: the backups of this router — list, create (in the background), one backup,
//! its download, delete, stats. Thin: parse → [`Service`] → render.
//!
//! Who may do what: reading the list is a general read (names, sizes, times); creating
//! and deleting take `backup:write`; downloading and uploading take `system:write` (admins
//! only), because an archive holds every password hash and private key of the router, and
//! an uploaded one can be restored over all of them.

use super::request::Request;
use super::response::{FileBody, Reply};
use super::router::{Access, Router};
use crate::api::error::{ApiError, ApiResult};
use crate::auth::Permission::{BackupRead, BackupWrite, SystemWrite};
use crate::backup::{Kind, NewBackup, Passphrase, Service};
use crate::h;
use hyper::Method;
use serde::Deserialize;

pub fn routes(r: &mut Router) {
    let read = Access::Require(BackupRead);
    let write = Access::Require(BackupWrite);
    r.add(
        Method::GET,
        "/backup/backups",
        read,
        "backup.list",
        h!(app.backup => list),
    );
    r.add(
        Method::POST,
        "/backup/backups/create",
        write,
        "backup.create",
        h!(app.backup => create),
    )
    .query_params(&["name", "backup_type", "metadata"]);
    r.add(
        Method::GET,
        "/backup/backups/{id}",
        read,
        "backup.get",
        h!(app.backup => get),
    );
    r.add(
        Method::DELETE,
        "/backup/backups/{id}",
        write,
        "backup.delete",
        h!(app.backup => delete),
    );
    r.add(
        Method::GET,
        "/backup/backups/{id}/download",
        Access::Require(SystemWrite),
        "backup.download",
        h!(app.backup => download),
    );
    r.add(
        Method::POST,
        "/backup/backups/{id}/restore",
        Access::Require(SystemWrite),
        "backup.restore",
        h!(app.backup => restore),
    )
    .query_params(&["keep_local_settings", "target_dir"]);
    r.add(
        Method::GET,
        "/backup/restores",
        read,
        "backup.restores",
        h!(app.backup => restores),
    );
    r.add(
        Method::GET,
        "/backup/restores/{id}",
        read,
        "backup.restore_status",
        h!(app.backup => restore_status),
    );
    r.add(
        Method::POST,
        "/backup/backups/upload",
        Access::Require(SystemWrite),
        "backup.upload",
        h!(app.backup => upload),
    )
    .query_params(&["name"]);
    r.add(
        Method::GET,
        "/backup/stats",
        read,
        "backup.stats",
        h!(app.backup => stats),
    );
    super::backup_schedules::routes(r);
}

async fn list(svc: &Service, _req: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(svc.list().await?))
}

/// The seed's body as JSON; each field may come as a query parameter instead (as the seed
/// shows them), the body winning when both give one. A value given is checked wherever it
/// comes from, so a bad query parameter is a 422 even when the body has a good one.
/// `passphrase` is the exception: body only, because URLs end up in access logs, proxy
/// logs and shell history (`?passphrase=` is refused as an unknown parameter).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: Option<String>,
    backup_type: Option<String>,
    metadata: Option<serde_json::Value>,
    passphrase: Option<String>,
}

fn kind(t: &str) -> ApiResult<Kind> {
    Kind::parse(t).ok_or_else(|| {
        ApiError::validation(
            "backup_type",
            "backup_type must be full, database, config or files",
        )
    })
}

async fn create(svc: &Service, req: &mut Request) -> ApiResult<Reply> {
    let mut q = req.query()?;
    let (q_name, q_type, q_metadata) = (
        q.take_choice("name"),
        q.take_choice("backup_type"),
        q.take_choice("metadata"),
    );
    let body: CreateBody = req.json_or_default().await?;
    let q_kind = q_type.as_deref().map(kind).transpose()?;
    let q_metadata = q_metadata
        .map(|m| match serde_json::from_str::<serde_json::Value>(&m) {
            Ok(v) if v.is_object() => Ok(v),
            _ => Err(ApiError::validation(
                "metadata",
                "metadata must be a JSON object",
            )),
        })
        .transpose()?;
    if let Some(n) = &q_name {
        NewBackup::new(n, Kind::Full, q_metadata.clone())?;
    }
    let name = body
        .name
        .or(q_name)
        .ok_or_else(|| ApiError::validation("name", "name is required"))?;
    let kind = match body.backup_type {
        Some(t) => kind(&t)?,
        None => q_kind.unwrap_or(Kind::Full),
    };
    let metadata = body.metadata.or(q_metadata);
    let mut backup = NewBackup::new(&name, kind, metadata)?;
    backup.passphrase = body
        .passphrase
        .map(Passphrase::new)
        .transpose()
        .map_err(|why| ApiError::validation("passphrase", why))?;
    let view = svc.create(backup).await?;
    req.audit_target = Some(format!("backup/backups/{}", view.id));
    Ok(Reply::created(view, "backup started"))
}

async fn get(svc: &Service, req: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(svc.get(req.id("id")?).await?))
}

async fn delete(svc: &Service, req: &mut Request) -> ApiResult<Reply> {
    svc.delete(req.id("id")?).await?;
    Ok(Reply::message("backup deleted"))
}

/// Streamed from disk: `application/gzip`, or `application/octet-stream` when encrypted.
async fn download(svc: &Service, req: &mut Request) -> ApiResult<Reply> {
    let d = svc.download(req.id("id")?).await?;
    let body = FileBody::new(d.file, d.len, ());
    let content_type = match d.encrypted {
        true => "application/octet-stream",
        false => "application/gzip",
    };
    Ok(Reply::file_stream(body, content_type, &d.name).secret())
}

/// The body is the archive as a download gave it (`.tar.gz`, or `.tar.gz.age` when
/// encrypted), streamed to disk up to `backup.max_upload_mb`; kept if it is a backup
/// (`backup::upload` says what is checked), else 422.
async fn upload(svc: &Service, req: &mut Request) -> ApiResult<Reply> {
    let mut q = req.query()?;
    let name = q
        .take_choice("name")
        .map(|n| NewBackup::new(&n, Kind::Full, None).map(|b| b.name))
        .transpose()?;
    let content_type = req
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !is_archive_type(content_type) {
        return Err(ApiError::bad_request(
            "Content-Type must be application/gzip or application/octet-stream \
             (curl --data-binary @FILE -H 'Content-Type: application/octet-stream')",
        ));
    }
    let mut body = req.body_stream(svc.max_upload_bytes())?;
    let mut upload = svc.start_upload().await?;
    while let Some(piece) = body.next().await? {
        upload.write(&piece).await?;
    }
    let view = upload.finish(name).await?;
    req.audit_target = Some(format!("backup/backups/{}", view.id));
    Ok(Reply::created(view, "backup uploaded"))
}

fn is_archive_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    [
        "application/gzip",
        "application/x-gzip",
        "application/octet-stream",
    ]
    .iter()
    .any(|t| essence.eq_ignore_ascii_case(t))
}

async fn stats(svc: &Service, _req: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(svc.stats().await?))
}

/// `POST …/restore`. The passphrase only in the body: URLs end up in logs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    keep_local_settings: Option<bool>,
    passphrase: Option<String>,
}

/// Checks the archive completely (422 and nothing changed when it is refused), then answers
/// 202 with the restore to poll at `/backup/restores/{id}`.
async fn restore(svc: &Service, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let mut q = req.query()?;
    let q_keep = q.take_parsed("keep_local_settings", "true or false")?;
    if q.take_choice("target_dir").is_some() {
        return Err(ApiError::validation(
            "target_dir",
            "a restore always goes to this router's data directory; to look inside a backup, \
             download it",
        ));
    }
    let body: RestoreBody = req.json_or_default().await?;
    let opts = crate::backup::restore::Options {
        keep_local_settings: body.keep_local_settings.or(q_keep).unwrap_or(false),
        passphrase: body.passphrase,
    };
    let view = svc.restore(id, opts).await?;
    req.audit_target = Some(format!("backup/restores/{}", view.id));
    Ok(Reply::accepted(view, "restore started"))
}

async fn restores(svc: &Service, _req: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(svc.restores().await?))
}

async fn restore_status(svc: &Service, req: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(svc.restore_status(req.id("id")?).await?))
}
