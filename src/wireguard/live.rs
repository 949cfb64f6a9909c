//! Stored servers and clients ↔ the running engine: rows become a [`ServerSpec`] and
//! [`PeerSpec`]s, device statistics become the live fields of the views. Every change the
//! API makes to a server or client goes through here, so the device follows the database.
//!
//! Where each peer was last seen (`wg_last_seen`) is saved when it leaves a device — its
//! client is disabled, its server stopped (or restarted), the service stopped — and handed
//! back when it returns, so the device sends the first handshake instead of waiting 10–15 s
//! for the peer to notice that the session it still holds is gone. Not saved on every
//! handshake (flash wear): after a crash the peers reconnect on their own timers.

use super::{ClientRow, LastSeen, Live, ServerRow, ServerView};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::store::logs::LogEntry;
use crate::wireguard::device::datapath::{DeviceError, PeerConfig, PeerStats, SESSION_LIFETIME};
use crate::wireguard::device::engine::{PeerSpec, ServerSpec, ServerState};
use crate::wireguard::device::peer::IDLE_AFTER;
use crate::wireguard::keys::PublicKey;
use std::collections::HashMap;
use std::net::SocketAddr;

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

/// Where to reach a peer first: where it was last seen, if its last handshake is recent
/// enough that it may still hold the session (a session is wiped [`IDLE_AFTER`] after its
/// handshake). Older endpoints are likely stale, and the peer starts afresh anyway.
pub fn resumable(seen: Option<&LastSeen>, now: i64) -> Option<SocketAddr> {
    let seen = seen?;
    // A handshake "in the future" (the clock stepped back) counts as just now.
    let age = u64::try_from(now.saturating_sub(seen.handshake_at)).unwrap_or(0);
    (age < IDLE_AFTER.as_secs()).then_some(seen.endpoint)
}

/// The peers that have completed a handshake, and where each was then.
fn seen_rows(stats: HashMap<PublicKey, PeerStats>) -> Vec<LastSeen> {
    stats
        .into_iter()
        .filter_map(|(key, s)| {
            Some(LastSeen {
                public_key: key.to_base64(),
                endpoint: s.endpoint?,
                handshake_at: i64::try_from(s.last_handshake?.as_secs()).ok()?,
            })
        })
        .collect()
}

/// Keeps where peers were (best effort: the change that removed them has been made).
async fn save_seen(app: &App, stats: HashMap<PublicKey, PeerStats>) {
    let rows = seen_rows(stats);
    if let Err(e) = super::save_last_seen(app, rows).await {
        log::warn!("cannot record where WireGuard peers were last seen: {e}");
    }
}

/// Brings `server` up (or restarts it) with its enabled clients.
pub async fn start(app: &App, server: &ServerRow, clients: &[ClientRow]) -> ApiResult<()> {
    let seen = super::last_seen_of_server(app, server.id)
        .await
        .unwrap_or_else(|e| {
            log::warn!("WireGuard server {}: last seen peers: {e}", server.name);
            HashMap::new()
        });
    let now = crate::time::now();
    let peers = clients
        .iter()
        .filter(|c| c.enabled)
        .map(|c| {
            Ok(PeerSpec {
                config: peer(c)?,
                last_seen: resumable(seen.get(&c.public_key), now),
            })
        })
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

/// Takes every device down at service stop, keeping where their peers were.
pub async fn stop_all(app: &App) {
    for (_, stats) in app.wg.stop_all().await {
        save_seen(app, stats).await;
    }
}

/// Takes the server's device down (if it runs) and logs it.
pub async fn stop(app: &App, server_id: i64, name: &str) {
    if let Some(stats) = app.wg.stop(server_id).await {
        save_seen(app, stats).await;
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
    match (old, new) {
        (_, Some(n)) if n.enabled => {
            // Only a peer coming back needs to know where it was; one staying keeps its own.
            let back = !old.is_some_and(|o| o.enabled);
            let seen = if back {
                super::last_seen(app, &n.public_key).await.unwrap_or(None)
            } else {
                None
            };
            let spec = PeerSpec {
                config: peer(n)?,
                last_seen: resumable(seen.as_ref(), crate::time::now()),
            };
            app.wg.set_peer(server_id, spec).await.map_err(device_error)
        }
        (Some(o), n) => {
            let key = o.wg_public_key()?;
            let seen = app.wg.remove_peer(server_id, &key).await;
            // A disabled client may come back; a deleted one will not.
            if let (Some(s), Some(_)) = (seen.map_err(device_error)?, n) {
                save_seen(app, HashMap::from([(key, s)])).await;
            }
            Ok(())
        }
        (None, _) => Ok(()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_reached_first_only_while_it_may_hold_a_session() {
        let seen = LastSeen {
            public_key: "k".into(),
            endpoint: "192.0.2.7:51820".parse().expect("endpoint"),
            handshake_at: 1_000,
        };
        let idle = IDLE_AFTER.as_secs() as i64;
        assert_eq!(resumable(Some(&seen), 1_000), Some(seen.endpoint));
        assert_eq!(
            resumable(Some(&seen), 1_000 + idle - 1),
            Some(seen.endpoint)
        );
        assert_eq!(
            resumable(Some(&seen), 1_000 + idle),
            None,
            "session wiped by now"
        );
        assert_eq!(
            resumable(Some(&seen), 999),
            Some(seen.endpoint),
            "clock step back"
        );
        assert_eq!(resumable(None, 1_000), None);
    }

    #[test]
    fn only_peers_that_completed_a_handshake_are_recorded() {
        let key = |n: u8| PublicKey::from_bytes([n; 32]);
        let stats = |endpoint: Option<&str>, secs: Option<u64>| PeerStats {
            last_handshake: secs.map(std::time::Duration::from_secs),
            rx_bytes: 0,
            tx_bytes: 0,
            endpoint: endpoint.map(|e| e.parse().expect("endpoint")),
        };
        let rows = seen_rows(HashMap::from([
            (key(1), stats(Some("[2001:db8::1]:4000"), Some(77))),
            (key(2), stats(Some("192.0.2.2:1"), None)),
            (key(3), stats(None, Some(5))),
        ]));
        assert_eq!(
            rows,
            vec![LastSeen {
                public_key: key(1).to_base64(),
                endpoint: "[2001:db8::1]:4000".parse().expect("endpoint"),
                handshake_at: 77,
            }]
        );
    }
}
