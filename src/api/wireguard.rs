//! `/wireguard`: servers (CRUD, start/stop, import of a wg-quick file) and clients (CRUD,
//! config download, QR code). Thin: parse → one [`wireguard::Service`] call (rules, commit,
//! the running device following through the change bus) → render.

use super::query::Page;
use super::request::Request;
use super::response::Reply;
use super::router::{Access, Router};
use crate::api::error::{ApiError, ApiResult};
use crate::auth::Permission;
use crate::h;
use crate::wireguard::{
    self, ClientChanges, ClientFilter, ClientView, ImportServer, NewClient, NewServer,
    ServerChanges,
};
use hyper::Method;
use serde::Serialize;

pub fn routes(r: &mut Router) {
    use Access::Require;
    use Method as M;
    use Permission::{
        WireguardClientsWrite as ClientsW, WireguardRead as Read, WireguardWrite as W,
    };
    r.add(
        M::GET,
        "/wireguard/servers",
        Require(Read),
        "wireguard.servers.list",
        h!(app.wireguard => list_servers),
    )
    .query_params(&["page", "size", "status"]);
    r.add(
        M::POST,
        "/wireguard/servers",
        Require(W),
        "wireguard.servers.create",
        h!(app.wireguard => create_server),
    );
    r.add(
        M::POST,
        "/wireguard/servers/import",
        Require(W),
        "wireguard.servers.import",
        h!(app.wireguard => import_server),
    );
    r.add(
        M::GET,
        "/wireguard/servers/{id}",
        Require(Read),
        "wireguard.servers.get",
        h!(app.wireguard => get_server),
    );
    r.add(
        M::PUT,
        "/wireguard/servers/{id}",
        Require(W),
        "wireguard.servers.update",
        h!(app.wireguard => update_server),
    );
    r.add(
        M::PATCH,
        "/wireguard/servers/{id}",
        Require(W),
        "wireguard.servers.update",
        h!(app.wireguard => update_server),
    );
    r.add(
        M::DELETE,
        "/wireguard/servers/{id}",
        Require(W),
        "wireguard.servers.delete",
        h!(app.wireguard => delete_server),
    )
    .query_params(&["force"]);
    r.add(
        M::POST,
        "/wireguard/servers/{id}/start",
        Require(W),
        "wireguard.servers.start",
        h!(app.wireguard => start_server),
    );
    r.add(
        M::POST,
        "/wireguard/servers/{id}/stop",
        Require(W),
        "wireguard.servers.stop",
        h!(app.wireguard => stop_server),
    );
    r.add(
        M::GET,
        "/wireguard/clients",
        Require(Read),
        "wireguard.clients.list",
        h!(app.wireguard => list_clients),
    )
    .query_params(&["page", "size", "server_id", "enabled", "search"]);
    r.add(
        M::POST,
        "/wireguard/clients",
        Require(ClientsW),
        "wireguard.clients.create",
        h!(app.wireguard => create_client),
    );
    r.add(
        M::GET,
        "/wireguard/clients/{id}",
        Require(Read),
        "wireguard.clients.get",
        h!(app.wireguard => get_client),
    );
    r.add(
        M::PUT,
        "/wireguard/clients/{id}",
        Require(ClientsW),
        "wireguard.clients.update",
        h!(app.wireguard => update_client),
    );
    r.add(
        M::PATCH,
        "/wireguard/clients/{id}",
        Require(ClientsW),
        "wireguard.clients.update",
        h!(app.wireguard => update_client),
    );
    r.add(
        M::DELETE,
        "/wireguard/clients/{id}",
        Require(ClientsW),
        "wireguard.clients.delete",
        h!(app.wireguard => delete_client),
    );
    // The config holds the client's private key: only roles that manage clients get it.
    r.add(
        M::GET,
        "/wireguard/clients/{id}/config",
        Require(ClientsW),
        "wireguard.clients.config",
        h!(app.wireguard => client_config),
    )
    .query_params(&["format"]);
    r.add(
        M::GET,
        "/wireguard/clients/{id}/qrcode",
        Require(ClientsW),
        "wireguard.clients.qrcode",
        h!(app.wireguard => client_qrcode),
    );
}

// ---- servers ----

type Wg = wireguard::Service;

async fn list_servers(wg: &Wg, req: &mut Request) -> ApiResult<Reply> {
    let mut q = req.query()?;
    let page = Page::from_query(&mut q)?;
    let status = q.take_choice("status");
    if let Some(s) = &status {
        if !matches!(s.as_str(), "running" | "stopped" | "error") {
            return Err(ApiError::validation(
                "status",
                "status must be one of running, stopped, error",
            ));
        }
    }
    let (views, total) = wg.list_servers(page, status.as_deref()).await?;
    Ok(Reply::ok(page.render("servers", views, total)))
}

async fn create_server(wg: &Wg, req: &mut Request) -> ApiResult<Reply> {
    let input: NewServer = req.json().await?;
    let done = wg.create_server(input).await?;
    req.audit_target = Some(format!("wireguard/servers/{}", done.view.id));
    // Created either way; a failed start shows as status `error` with `last_error`.
    let message = match done.start_failed {
        true => "server created, but it could not be started (see last_error)",
        false => "server created",
    };
    Ok(Reply::created(done.view, message))
}

async fn get_server(wg: &Wg, req: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(wg.get_server(req.id("id")?).await?))
}

async fn update_server(wg: &Wg, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let changes: ServerChanges = req.json().await?;
    let done = wg.update_server(id, changes).await?;
    let message = match done.start_failed {
        true => "server updated, but it could not be started (see last_error)",
        false => "server updated",
    };
    Ok(Reply::ok_with(done.view, message))
}

async fn delete_server(wg: &Wg, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let mut q = req.query()?;
    let force = q.take_parsed("force", "true or false")?.unwrap_or(false);
    let clients = wg.delete_server(id, force).await?;
    Ok(Reply::message(&format!(
        "server deleted with {clients} clients"
    )))
}

#[derive(Serialize)]
struct StateChange {
    id: i64,
    status: &'static str,
    #[serde(serialize_with = "crate::time::ser_opt")]
    started_at: Option<i64>,
    #[serde(serialize_with = "crate::time::ser_opt")]
    stopped_at: Option<i64>,
    server: wireguard::ServerView,
}

async fn start_server(wg: &Wg, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let view = wg.start_server(id).await?;
    Ok(Reply::ok_with(
        StateChange {
            id,
            status: view.status,
            started_at: view.started_at,
            stopped_at: None,
            server: view,
        },
        "server started",
    ))
}

async fn stop_server(wg: &Wg, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let view = wg.stop_server(id).await?;
    Ok(Reply::ok_with(
        StateChange {
            id,
            status: view.status,
            started_at: None,
            stopped_at: Some(crate::time::now()),
            server: view,
        },
        "server stopped",
    ))
}

#[derive(Serialize)]
struct ImportedView {
    server: wireguard::ServerView,
    clients: Vec<ClientView>,
    /// Settings of the file that have no effect here (PostUp, peer endpoints, …).
    ignored: Vec<String>,
}

async fn import_server(wg: &Wg, req: &mut Request) -> ApiResult<Reply> {
    let input: ImportServer = req.json().await?;
    let (server, imported) = wg.import_server(input).await?;
    req.audit_target = Some(format!("wireguard/servers/{}", server.id));
    let n = imported.clients.len();
    let view = ImportedView {
        server,
        clients: imported
            .clients
            .into_iter()
            .map(|c| ClientView::new(c, wireguard::Live::default()))
            .collect(),
        ignored: imported.ignored,
    };
    Ok(Reply::created(
        view,
        &format!("server imported with {n} clients (stopped; start it to take over)"),
    ))
}

// ---- clients ----

async fn list_clients(wg: &Wg, req: &mut Request) -> ApiResult<Reply> {
    let mut q = req.query()?;
    let page = Page::from_query(&mut q)?;
    let filter = ClientFilter {
        server_id: q.take_parsed("server_id", "a server id")?,
        enabled: q.take_parsed("enabled", "true or false")?,
        search: q.take("search"),
    };
    let (list, total) = wg.list_clients(filter, page).await?;
    Ok(Reply::ok_json(|out| {
        page.write_paged(out, "clients", |out| list.write_json(out), total)
    }))
}

async fn create_client(wg: &Wg, req: &mut Request) -> ApiResult<Reply> {
    let input: NewClient = req.json().await?;
    let host = wg.fallback_host(req.host()).to_string();
    let view = wg.create_client(input, &host).await?;
    req.audit_target = Some(format!("wireguard/clients/{}", view.client.id));
    Ok(Reply::created(view, "client created").secret())
}

async fn get_client(wg: &Wg, req: &mut Request) -> ApiResult<Reply> {
    Ok(Reply::ok(wg.get_client(req.id("id")?).await?))
}

async fn update_client(wg: &Wg, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let changes: ClientChanges = req.json().await?;
    let host = wg.fallback_host(req.host()).to_string();
    let view = wg.update_client(id, changes, &host).await?;
    Ok(Reply::ok_with(view, "client updated"))
}

async fn delete_client(wg: &Wg, req: &mut Request) -> ApiResult<Reply> {
    wg.delete_client(req.id("id")?).await?;
    Ok(Reply::message("client deleted"))
}

#[derive(Serialize)]
struct ConfigView {
    config: String,
}

async fn client_config(wg: &Wg, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let mut q = req.query()?;
    let format = q.take_choice("format");
    let (name, config) = wg.client_config(id, wg.fallback_host(req.host())).await?;
    match format.as_deref() {
        None | Some("json") => Ok(Reply::ok(ConfigView { config }).secret()),
        Some("conf") => {
            Ok(Reply::file(config, "text/plain; charset=utf-8", &format!("{name}.conf")).secret())
        }
        Some(_) => Err(ApiError::validation(
            "format",
            "format must be json or conf",
        )),
    }
}

#[derive(Serialize)]
struct QrView {
    qrcode: String,
}

async fn client_qrcode(wg: &Wg, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let qrcode = wg.client_qrcode(id, wg.fallback_host(req.host())).await?;
    Ok(Reply::ok(QrView { qrcode }).secret())
}

#[cfg(test)]
mod tests {
    use super::super::request::parse_json;
    use crate::wireguard::{NewClient, ServerChanges};

    /// Moved from `wireguard::model::rules`: which field a bad body names is the parser's.
    #[test]
    fn bad_bodies_name_their_field() {
        let e = parse_json::<NewClient>(br#"{"server_id":1}"#).unwrap_err();
        assert_eq!(e.details.expect("d").field, "name");
        let e = parse_json::<ServerChanges>(br#"{"private_key":"x"}"#).unwrap_err();
        assert_eq!(e.details.expect("d").field, "private_key");
        let e = parse_json::<NewClient>(br#"{"server_id":1,"name":"a","server":1}"#).unwrap_err();
        assert_eq!(e.details.expect("d").field, "server");
    }
}
