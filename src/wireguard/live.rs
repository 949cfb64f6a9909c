//! Stored servers and clients ↔ the running engine: rows become a [`ServerSpec`] and
//! [`PeerConfig`]s, device statistics become the live fields of the views. Every change the
//! API makes to a server or client goes through here, so the device follows the database.

use super::{ClientRow, Live, ServerRow, ServerView};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::store::logs::LogEntry;
use crate::wg::device::{DeviceError, PeerConfig, PeerStats, SESSION_LIFETIME};
use crate::wg::engine::{ServerSpec, ServerState};
use crate::wg::keys::PublicKey;
use std::collections::HashMap;

pub fn spec(server: &ServerRow) -> ApiResult<ServerSpec> {
    Ok(ServerSpec {
        id: server.id,
        interface: server.interface.clone(),
        private_key: server.wg_private_key()?,
        listen_port: server.listen_port,
        mtu: u32::from(server.mtu),
        addresses: server.addresses(),
    })
}

/// What the server's device knows of a client. The server never keeps the tunnel alive on
/// its own: keepalives are the client's business (it is the one behind NAT).
pub fn peer(client: &ClientRow) -> ApiResult<PeerConfig> {
    Ok(PeerConfig {
        public_key: client.wg_public_key()?,
        preshared_key: client.wg_preshared_key()?,
        endpoint: None,
        persistent_keepalive: 0,
        allowed_ips: super::peer_allowed_ips(client),
    })
}

fn device_error(e: DeviceError) -> ApiError {
    match e {
        DeviceError::Unavailable(m) => ApiError::unavailable(m),
        DeviceError::Bind(m) => ApiError::conflict("listen_port", m),
        DeviceError::Other(m) => ApiError::unavailable(m),
    }
}

/// Brings `server` up (or restarts it) with its enabled clients.
pub async fn start(app: &App, server: &ServerRow, clients: &[ClientRow]) -> ApiResult<()> {
    let peers = clients
        .iter()
        .filter(|c| c.enabled)
        .map(peer)
        .collect::<ApiResult<Vec<_>>>()?;
    let n = peers.len();
    let r = app
        .wg
        .start(spec(server)?, peers)
        .await
        .map_err(device_error);
    let target = format!("wireguard/servers/{}", server.id);
    let entry = match &r {
        Ok(()) => LogEntry::event(
            "INFO",
            "wireguard",
            "wireguard.server.started",
            format!(
                "WireGuard server {} started on {} (UDP {}, {n} peers)",
                server.name, server.interface, server.listen_port
            ),
        ),
        Err(e) => LogEntry::event(
            "ERROR",
            "wireguard",
            "wireguard.server.failed",
            format!(
                "WireGuard server {} failed to start: {}",
                server.name, e.message
            ),
        ),
    };
    app.logs.event(entry.with_target(target));
    r
}

/// Takes the server's device down (if it runs) and logs it.
pub async fn stop(app: &App, server_id: i64, name: &str) {
    if app.wg.stop(server_id).await {
        app.logs.event(
            LogEntry::event(
                "INFO",
                "wireguard",
                "wireguard.server.stopped",
                format!("WireGuard server {name} stopped"),
            )
            .with_target(format!("wireguard/servers/{server_id}")),
        );
    }
}

/// Makes the running device (if any) match a client change: `old` → `new`, either may be
/// absent (create, delete).
pub async fn sync_client(
    app: &App,
    server_id: i64,
    old: Option<&ClientRow>,
    new: Option<&ClientRow>,
) -> ApiResult<()> {
    let r = match (old, new) {
        (_, Some(n)) if n.enabled => app.wg.set_peer(server_id, peer(n)?).await,
        (Some(o), _) => app.wg.remove_peer(server_id, &o.wg_public_key()?).await,
        (None, _) => Ok(()),
    };
    r.map_err(device_error)
}

/// Starts every server marked active, at service start. Failures are logged and shown as the
/// server's `error` status; they do not stop the service.
pub async fn restore(app: &App) {
    let servers = match super::servers_to_start(app).await {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot list WireGuard servers to start: {e}");
            return;
        }
    };
    for server in servers {
        let clients = match super::clients_of_server(app, server.id).await {
            Ok(c) => c,
            Err(e) => {
                log::error!("WireGuard server {}: cannot load clients: {e}", server.name);
                continue;
            }
        };
        match start(app, &server, &clients).await {
            Ok(()) => log::info!(
                "WireGuard server {} ({}) restored with {} clients",
                server.name,
                server.interface,
                clients.iter().filter(|c| c.enabled).count()
            ),
            Err(e) => log::error!("WireGuard server {}: {}", server.name, e.message),
        }
    }
}

/// The API view of a server with its live state.
pub async fn server_view(app: &App, server: ServerRow, clients_count: u64) -> ServerView {
    let state = app.wg.state(server.id).await;
    view_with_state(server, clients_count, &state)
}

pub fn view_with_state(server: ServerRow, clients_count: u64, state: &ServerState) -> ServerView {
    let (last_error, started_at) = match state {
        ServerState::Error(e) => (Some(e.clone()), None),
        ServerState::Running { started_at, .. } => (None, Some(*started_at)),
        ServerState::Stopped => (None, None),
    };
    ServerView::new(
        server,
        clients_count,
        state.as_str(),
        last_error,
        started_at,
    )
}

/// Live statistics of the clients of `server_id` (empty map when it is not running).
pub async fn stats(app: &App, server_id: i64) -> Option<HashMap<PublicKey, PeerStats>> {
    match app.wg.state(server_id).await {
        ServerState::Running { .. } => Some(app.wg.stats(server_id).await),
        _ => None,
    }
}

/// A client's live fields. `stats` is `None` when its server is not running (`offline`).
/// `disabled` clients are not on the device; `active` = a handshake within the session
/// lifetime (180 s), as `wg` users read it; otherwise `inactive`.
pub fn live(client: &ClientRow, stats: Option<&HashMap<PublicKey, PeerStats>>) -> Live {
    if !client.enabled {
        return Live {
            status: "disabled",
            ..Live::default()
        };
    }
    let Some(stats) = stats else {
        return Live::default();
    };
    let Some(s) = client
        .wg_public_key()
        .ok()
        .and_then(|k| stats.get(&k).copied())
    else {
        return Live::default();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let recent = s
        .last_handshake
        .is_some_and(|t| now.saturating_sub(t) < SESSION_LIFETIME);
    Live {
        status: if recent { "active" } else { "inactive" },
        last_handshake: s.last_handshake.map(|d| d.as_secs() as i64),
        bytes_received: s.rx_bytes,
        bytes_sent: s.tx_bytes,
        endpoint: s.endpoint.map(|e| e.to_string()),
    }
}
