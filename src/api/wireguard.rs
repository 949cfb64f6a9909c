//! `/wireguard`: servers (CRUD, start/stop, import of a wg-quick file) and clients (CRUD,
//! config download, QR code). Thin: parse → `crate::wireguard` (store + rules) → apply to the
//! running device through `wireguard::live` → render with live state.

use super::query::Page;
use super::request::Request;
use super::response::Reply;
use super::router::{Access, Router};
use crate::app::App;
use crate::auth::Permission;
use crate::error::{ApiError, ApiResult};
use crate::h;
use crate::wireguard::{
    self as wg, live, ClientChanges, ClientFilter, ClientRow, ClientView, CreatedClientView,
    ImportServer, NewClient, NewServer, ServerChanges, ServerRow,
};
use hyper::Method;
use serde::Serialize;
use std::sync::Arc;

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
        h!(list_servers),
    )
    .query_params(&["page", "size", "status"]);
    r.add(
        M::POST,
        "/wireguard/servers",
        Require(W),
        "wireguard.servers.create",
        h!(create_server),
    );
    r.add(
        M::POST,
        "/wireguard/servers/import",
        Require(W),
        "wireguard.servers.import",
        h!(import_server),
    );
    r.add(
        M::GET,
        "/wireguard/servers/{id}",
        Require(Read),
        "wireguard.servers.get",
        h!(get_server),
    );
    r.add(
        M::PUT,
        "/wireguard/servers/{id}",
        Require(W),
        "wireguard.servers.update",
        h!(update_server),
    );
    r.add(
        M::PATCH,
        "/wireguard/servers/{id}",
        Require(W),
        "wireguard.servers.update",
        h!(update_server),
    );
    r.add(
        M::DELETE,
        "/wireguard/servers/{id}",
        Require(W),
        "wireguard.servers.delete",
        h!(delete_server),
    )
    .query_params(&["force"]);
    r.add(
        M::POST,
        "/wireguard/servers/{id}/start",
        Require(W),
        "wireguard.servers.start",
        h!(start_server),
    );
    r.add(
        M::POST,
        "/wireguard/servers/{id}/stop",
        Require(W),
        "wireguard.servers.stop",
        h!(stop_server),
    );
    r.add(
        M::GET,
        "/wireguard/clients",
        Require(Read),
        "wireguard.clients.list",
        h!(list_clients),
    )
    .query_params(&["page", "size", "server_id", "enabled", "search"]);
    r.add(
        M::POST,
        "/wireguard/clients",
        Require(ClientsW),
        "wireguard.clients.create",
        h!(create_client),
    );
    r.add(
        M::GET,
        "/wireguard/clients/{id}",
        Require(Read),
        "wireguard.clients.get",
        h!(get_client),
    );
    r.add(
        M::PUT,
        "/wireguard/clients/{id}",
        Require(ClientsW),
        "wireguard.clients.update",
        h!(update_client),
    );
    r.add(
        M::PATCH,
        "/wireguard/clients/{id}",
        Require(ClientsW),
        "wireguard.clients.update",
        h!(update_client),
    );
    r.add(
        M::DELETE,
        "/wireguard/clients/{id}",
        Require(ClientsW),
        "wireguard.clients.delete",
        h!(delete_client),
    );
    // The config holds the client's private key: only roles that manage clients get it.
    r.add(
        M::GET,
        "/wireguard/clients/{id}/config",
        Require(ClientsW),
        "wireguard.clients.config",
        h!(client_config),
    )
    .query_params(&["format"]);
    r.add(
        M::GET,
        "/wireguard/clients/{id}/qrcode",
        Require(ClientsW),
        "wireguard.clients.qrcode",
        h!(client_qrcode),
    );
}

// ---- servers ----

async fn list_servers(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
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
    let states = app.wg.states().await;
    let state_of = |id: i64| {
        states
            .get(&id)
            .cloned()
            .unwrap_or(crate::wireguard::device::engine::ServerState::Stopped)
    };
    let (rows, total) = match &status {
        None => wg::list_servers(&app, page).await?,
        // Status is live, not stored: filter the (few) servers here, then paginate.
        Some(s) => {
            let (all, _) = wg::list_servers(
                &app,
                Page {
                    page: 1,
                    size: u32::MAX,
                },
            )
            .await?;
            let matching: Vec<(ServerRow, u64)> = all
                .into_iter()
                .filter(|(row, _)| state_of(row.id).as_str() == s)
                .collect();
            let total = matching.len() as u64;
            let rows = matching
                .into_iter()
                .skip(page.offset() as usize)
                .take(page.size as usize)
                .collect();
            (rows, total)
        }
    };
    let views: Vec<_> = rows
        .into_iter()
        .map(|(row, n)| {
            let st = state_of(row.id);
            live::view_with_state(row, n, &st)
        })
        .collect();
    Ok(Reply::ok(page.render("servers", views, total)))
}

async fn create_server(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let input: NewServer = req.json().await?;
    let row = wg::create_server(&app, input).await?;
    req.audit_target = Some(format!("wireguard/servers/{}", row.id));
    let mut message = "server created";
    if row.is_active {
        // Created either way; a failed start shows as status `error` with `last_error`.
        if live::start(&app, &row, &[]).await.is_err() {
            message = "server created, but it could not be started (see last_error)";
        }
    }
    let view = live::server_view(&app, row, 0).await;
    Ok(Reply::created(view, message))
}

async fn get_server(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let (row, n) = wg::server_summary(&app, req.id("id")?).await?;
    Ok(Reply::ok(live::server_view(&app, row, n).await))
}

async fn update_server(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let changes: ServerChanges = req.json().await?;
    let (old, new) = wg::update_server(&app, id, changes).await?;
    let running = matches!(
        app.wg.state(id).await,
        crate::wireguard::device::engine::ServerState::Running { .. }
    );
    let device_changed = old.interface != new.interface
        || old.listen_port != new.listen_port
        || old.ipv4_address != new.ipv4_address
        || old.ipv6_address != new.ipv6_address
        || old.mtu != new.mtu;
    let mut message = "server updated";
    if new.is_active && (!running || device_changed) {
        // Start it, or restart it with the new interface settings (clients re-handshake).
        let clients = wg::clients_of_server(&app, id).await?;
        if live::start(&app, &new, &clients).await.is_err() {
            message = "server updated, but it could not be started (see last_error)";
        }
    } else if !new.is_active && running {
        live::stop(&app, id, &new.name).await;
    }
    let (row, n) = wg::server_summary(&app, id).await?;
    Ok(Reply::ok_with(
        live::server_view(&app, row, n).await,
        message,
    ))
}

async fn delete_server(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let mut q = req.query()?;
    let force = q.take_parsed("force", "true or false")?.unwrap_or(false);
    let (server, clients) = wg::delete_server(&app, id, force).await?;
    live::stop(&app, id, &server.name).await;
    Ok(Reply::message(&format!(
        "server deleted with {} clients",
        clients.len()
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
    server: wg::ServerView,
}

async fn start_server(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let (server, clients) = wg::server_with_clients(&app, id).await?;
    live::start(&app, &server, &clients).await?;
    let row = wg::set_server_active(&app, id, true).await?;
    let view = live::server_view(&app, row, clients.len() as u64).await;
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

async fn stop_server(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let row = wg::set_server_active(&app, id, false).await?;
    live::stop(&app, id, &row.name).await;
    let (_, n) = wg::server_summary(&app, id).await?;
    let view = live::server_view(&app, row, n).await;
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
    server: wg::ServerView,
    clients: Vec<ClientView>,
    /// Settings of the file that have no effect here (PostUp, peer endpoints, …).
    ignored: Vec<String>,
}

async fn import_server(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let input: ImportServer = req.json().await?;
    let imported = wg::import_server(&app, input).await?;
    req.audit_target = Some(format!("wireguard/servers/{}", imported.server.id));
    let n = imported.clients.len() as u64;
    let view = ImportedView {
        server: live::server_view(&app, imported.server, n).await,
        clients: imported
            .clients
            .into_iter()
            .map(|c| ClientView::new(c, wg::Live::default()))
            .collect(),
        ignored: imported.ignored,
    };
    Ok(Reply::created(
        view,
        &format!("server imported with {n} clients (stopped; start it to take over)"),
    ))
}

// ---- clients ----

async fn list_clients(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let mut q = req.query()?;
    let page = Page::from_query(&mut q)?;
    let filter = ClientFilter {
        server_id: q.take_parsed("server_id", "a server id")?,
        enabled: q.take_parsed("enabled", "true or false")?,
        search: q.take("search"),
    };
    let (rows, total) = wg::list_clients(&app, filter, page).await?;
    // One statistics read per server on the page.
    let mut stats = std::collections::HashMap::new();
    for c in &rows {
        if let std::collections::hash_map::Entry::Vacant(e) = stats.entry(c.server_id) {
            e.insert(live::stats(&app, c.server_id).await);
        }
    }
    let views: Vec<ClientView> = rows
        .into_iter()
        .map(|c| {
            let l = live::live(&c, stats.get(&c.server_id).and_then(Option::as_ref));
            ClientView::new(c, l)
        })
        .collect();
    Ok(Reply::ok(page.render("clients", views, total)))
}

async fn client_view(app: &App, c: ClientRow) -> ClientView {
    let stats = live::stats(app, c.server_id).await;
    let l = live::live(&c, stats.as_ref());
    ClientView::new(c, l)
}

async fn create_client(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let input: NewClient = req.json().await?;
    let host = fallback_host(&app, req).to_string();
    let client = wg::create_client(&app, input, &host).await?;
    req.audit_target = Some(format!("wireguard/clients/{}", client.id));
    live::sync_client(&app, client.server_id, None, Some(&client)).await?;
    let server = wg::get_server(&app, client.server_id).await?;
    // The config needs an endpoint; without one (no server endpoint, public_host or Host
    // header) the client is still created and its config can be fetched later. The QR
    // code was checked to fit before the commit; nothing after it may fail the request.
    let config = wg::client_config(&server, &client, &host).ok();
    let qrcode = config.as_deref().and_then(|c| {
        crate::wireguard::qr::data_url(c)
            .inspect_err(|e| log::warn!("client {}: QR code: {e}", client.id))
            .ok()
    });
    let view = CreatedClientView {
        private_key: client.private_key.clone(),
        client: client_view(&app, client).await,
        config,
        qr_code: qrcode.clone(),
        qrcode,
    };
    Ok(Reply::created(view, "client created").secret())
}

async fn get_client(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let c = wg::get_client(&app, req.id("id")?).await?;
    Ok(Reply::ok(client_view(&app, c).await))
}

async fn update_client(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let changes: ClientChanges = req.json().await?;
    let host = fallback_host(&app, req).to_string();
    let (old, new) = wg::update_client(&app, id, changes, &host).await?;
    live::sync_client(&app, new.server_id, Some(&old), Some(&new)).await?;
    Ok(Reply::ok_with(
        client_view(&app, new).await,
        "client updated",
    ))
}

async fn delete_client(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let c = wg::delete_client(&app, req.id("id")?).await?;
    live::sync_client(&app, c.server_id, Some(&c), None).await?;
    Ok(Reply::message("client deleted"))
}

/// Where clients connect when their server names no `endpoint`: the configured public host,
/// else the host this API request was addressed to.
fn fallback_host<'a>(app: &'a App, req: &'a Request) -> &'a str {
    app.config.public_host.as_deref().unwrap_or(req.host())
}

#[derive(Serialize)]
struct ConfigView {
    config: String,
}

async fn client_config(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let id = req.id("id")?;
    let mut q = req.query()?;
    let format = q.take_choice("format");
    let (server, client) = wg::client_with_server(&app, id).await?;
    let config = wg::client_config(&server, &client, fallback_host(&app, req))?;
    match format.as_deref() {
        None | Some("json") => Ok(Reply::ok(ConfigView { config }).secret()),
        Some("conf") => Ok(Reply::file(
            config,
            "text/plain; charset=utf-8",
            &format!("{}.conf", client.name),
        )
        .secret()),
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

/// 422 (naming the field that takes most of the config) when the config does not fit a QR
/// code: creates and updates refuse that, but the server's DNS or endpoint may have grown
/// since. The config itself is still there to download.
async fn client_qrcode(app: Arc<App>, req: &mut Request) -> ApiResult<Reply> {
    let (server, client) = wg::client_with_server(&app, req.id("id")?).await?;
    let config = wg::client_config(&server, &client, fallback_host(&app, req))?;
    wg::check_fits_qr(
        &config,
        &[],
        "download it from /config?format=conf instead, or shorten that field",
    )?;
    let qrcode = crate::wireguard::qr::data_url(&config).map_err(|e| {
        log::error!("QR code: {e}");
        ApiError::internal()
    })?;
    Ok(Reply::ok(QrView { qrcode }).secret())
}
