//! Live WebSocket channels (contract `websocket`): `/ws/connect`, `/ws/system/status`,
//! `/ws/wireguard/status`, `/ws/bgp/status`, `/ws/monitoring/alerts` and
//! `/ws/{user_id}?connection_type=…` with `subscribe`/`unsubscribe` messages.
//!
//! The HTTP upgrade is hyper's; frames are ours ([`codec`], pure). Every message is
//! `{"type", "data", "timestamp"}`. A connection gets the current state of its channels at
//! once, then a message when something changes (a collector sample, a BGP state change, a
//! WireGuard/BGP/pool change through the API, an alert, a log entry) and at least every
//! [`STEADY`].
//!
//! Bounds: at most `http.max_connections` authenticated sockets — the token is checked
//! before a slot is taken — and [`UNAUTHENTICATED_SLOTS`] more that have no valid token yet
//! (`/ws/connect` waiting [`AUTH_WAIT`] for its first message, or a bad token being closed);
//! nothing is queued per connection — each
//! message is written (with a [`WRITE_TIMEOUT`]) before the next is built, so a client that
//! does not read is dropped instead of buffered for; a subscriber that falls behind a
//! broadcast skips to the newest state. A bad token closes with 1008 (policy violation).

use crate::api::error::ApiError;
use crate::api::query::Query;
use crate::api::request::Request;
use crate::api::response::error_response;
use crate::app::App;
use crate::auth::{Permission, Principal};
use codec::{Message, Opcode, Violation};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast::error::RecvError;

mod codec;

/// Every channel's state is sent at least this often.
pub const STEADY: Duration = Duration::from_secs(30);
/// A client that takes longer to accept one message is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Without any frame from the client for this long (pings are sent every [`PING`]), the
/// connection is closed.
pub const IDLE: Duration = Duration::from_secs(90);
pub const PING: Duration = Duration::from_secs(30);
/// `/ws/connect` without a token in the URL waits this long for `{"token", "channels"}`.
pub const AUTH_WAIT: Duration = Duration::from_secs(5);
/// Sockets without a valid token yet, all clients together.
pub const UNAUTHENTICATED_SLOTS: usize = 16;
/// Largest message accepted from a client.
const MAX_IN: usize = 16 * 1024;
/// Session or pool ids one connection may subscribe to.
const MAX_IDS: usize = 256;
/// Read buffer per connection.
const READ_BUFFER: usize = 4 * 1024;
/// Largest message out (a status of a thousand sessions is ~300 KiB).
const MAX_OUT: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Channel {
    System,
    Wireguard,
    Bgp,
    Monitoring,
    Logs,
    Pools,
}

impl Channel {
    pub fn parse(s: &str) -> Option<Channel> {
        Some(match s {
            "system" | "system_status" | "status" => Channel::System,
            "wireguard" | "wireguard_status" => Channel::Wireguard,
            "bgp" | "bgp_status" | "bgp_sessions" => Channel::Bgp,
            "monitoring" | "alerts" | "monitoring_alert" | "system_alert" => Channel::Monitoring,
            "logs" | "log_entry" => Channel::Logs,
            "ipv6_pools" | "pools" | "pool_status" => Channel::Pools,
            _ => return None,
        })
    }

    fn permission(self) -> Permission {
        match self {
            Channel::System => Permission::StatusRead,
            Channel::Wireguard => Permission::WireguardRead,
            Channel::Bgp => Permission::BgpRead,
            Channel::Monitoring => Permission::MonitoringRead,
            Channel::Logs => Permission::LogsRead,
            Channel::Pools => Permission::Ipv6Read,
        }
    }
}

/// The payloads of the channels read from the database (WireGuard servers, pools), shared by
/// every connection: built once per change, not once per client (a change reaches all
/// clients at the same moment). A payload is reused while no write went through the API
/// since it was built and it is younger than [`CACHE_AGE`].
#[derive(Default)]
pub struct Cache {
    generation: Arc<std::sync::atomic::AtomicUsize>,
    wireguard: tokio::sync::Mutex<Option<Cached>>,
    pools: tokio::sync::Mutex<Option<Cached>>,
}

struct Cached {
    generation: usize,
    at: tokio::time::Instant,
    value: Arc<Vec<Value>>,
}

/// How long a shared payload may serve changes that do not go through the API (a device
/// that died, a pool filled by another route).
const CACHE_AGE: Duration = Duration::from_secs(1);

impl Cache {
    /// The cached payload, or the one `build` makes (others asking meanwhile wait for it).
    async fn get(
        &self,
        slot: &tokio::sync::Mutex<Option<Cached>>,
        build: impl std::future::Future<Output = Vec<Value>>,
    ) -> Arc<Vec<Value>> {
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        let mut c = slot.lock().await;
        if let Some(c) = c.as_ref() {
            if c.generation == generation && c.at.elapsed() < CACHE_AGE {
                return c.value.clone();
            }
        }
        let value = Arc::new(build.await);
        *c = Some(Cached {
            generation,
            at: tokio::time::Instant::now(),
            value: value.clone(),
        });
        value
    }
}

/// The channel a committed change concerns, if it has no engine feed of its own.
fn channel_of(change: &crate::changes::Change) -> Option<Channel> {
    use crate::changes::Change as C;
    match change {
        C::Server { .. } | C::Client { .. } => Some(Channel::Wireguard),
        C::Pool { .. } | C::Allocation { .. } => Some(Channel::Pools),
        C::Announcement { .. } | C::BgpSession { .. } => Some(Channel::Bgp),
        C::User { .. } | C::Settings => None,
    }
}

/// Marks the shared payloads stale when a change concerns their channel: an applier of the
/// bus, so it runs before any connection hears of the change and rebuilds.
struct Invalidate(Arc<std::sync::atomic::AtomicUsize>);

impl crate::changes::Applier for Invalidate {
    fn apply<'a>(&'a self, change: &'a crate::changes::Change) -> crate::sync::BoxFuture<'a, ()> {
        if channel_of(change).is_some() {
            self.0.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        Box::pin(std::future::ready(()))
    }

    fn reconcile_all(&self) -> crate::sync::BoxFuture<'_, ()> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Box::pin(std::future::ready(()))
    }
}

impl Cache {
    /// What keeps this cache in step with the change bus (registered once at start-up).
    pub fn invalidator(&self) -> Arc<dyn crate::changes::Applier> {
        Arc::new(Invalidate(self.generation.clone()))
    }
}

/// Which endpoint was asked for, from the path after `/api/v1/ws/`.
#[derive(Debug, Clone, PartialEq)]
enum Endpoint {
    Connect,
    Fixed(Channel),
    User(i64),
}

fn endpoint(rest: &str) -> Option<Endpoint> {
    Some(match rest {
        "connect" => Endpoint::Connect,
        "system/status" => Endpoint::Fixed(Channel::System),
        "wireguard/status" => Endpoint::Fixed(Channel::Wireguard),
        "bgp/status" => Endpoint::Fixed(Channel::Bgp),
        "monitoring/alerts" => Endpoint::Fixed(Channel::Monitoring),
        id if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            Endpoint::User(id.parse().ok()?)
        }
        _ => return None,
    })
}

/// Whether `req` asks for a WebSocket under `/api/v1/ws/`.
pub fn is_upgrade(req: &hyper::Request<Incoming>) -> bool {
    req.uri().path().starts_with("/api/v1/ws/")
        && req
            .headers()
            .get(UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Who is asking, as far as known when the socket opens, and the slot it holds: one of
/// `App::ws_slots` with a principal, one of `App::ws_unauthenticated` without.
struct Caller {
    token: Option<String>,
    principal: Option<Principal>,
    slot: tokio::sync::OwnedSemaphorePermit,
}

/// Answers the upgrade request (101) and runs the connection in its own task.
pub async fn upgrade(
    app: Arc<App>,
    mut req: hyper::Request<Incoming>,
) -> Response<crate::api::response::Body> {
    let rest = req
        .uri()
        .path()
        .trim_start_matches("/api/v1/ws/")
        .trim_end_matches('/');
    let Some(ep) = endpoint(rest) else {
        return error_response(&ApiError::not_found("WebSocket endpoint"));
    };
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY).cloned() else {
        return error_response(&ApiError::bad_request("Sec-WebSocket-Key is missing"));
    };
    let mut query = Query::parse(req.uri().query().unwrap_or("")).unwrap_or_default();
    let token = query
        .take("token")
        .or_else(|| Request::bearer_from(req.headers()).map(str::to_string));
    // Authenticated first: sockets without a valid token cannot take the real slots.
    let principal = match &token {
        Some(t) => app.auth.authenticate(t).await.ok(),
        None => None,
    };
    let slots = match principal {
        Some(_) => &app.ws_slots,
        None => &app.ws_unauthenticated,
    };
    let Ok(slot) = slots.clone().try_acquire_owned() else {
        return error_response(&ApiError::unavailable("too many WebSocket connections"));
    };
    let caller = Caller {
        token,
        principal,
        slot,
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let accept = codec::accept_key(key.as_bytes());
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                log::debug!("websocket upgrade failed: {e}");
                return;
            }
        };
        run(app, Ws::new(upgraded), ep, query, caller).await;
    });
    let mut r = Response::new(crate::api::response::Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

/// One upgraded connection: bytes in through [`codec::decode`] and [`codec::Assembler`],
/// frames out written through at once (nothing is queued, see the module doc).
struct Ws {
    io: TokioIo<hyper::upgrade::Upgraded>,
    /// Received bytes not yet decoded: at most one frame's worth and a read more.
    input: Vec<u8>,
    messages: codec::Assembler,
    /// A protocol violation was answered with a close frame: nothing more is read.
    refused: bool,
    /// A close frame went out: nothing more is written.
    closed: bool,
}

impl Ws {
    fn new(upgraded: hyper::upgrade::Upgraded) -> Ws {
        Ws {
            io: TokioIo::new(upgraded),
            input: Vec::with_capacity(READ_BUFFER),
            messages: codec::Assembler::new(MAX_IN),
            refused: false,
            closed: false,
        }
    }

    /// The next message from the client; `None` when the connection is closed or broken.
    /// A protocol violation is answered with its close code first. Cancel-safe: reading is
    /// (tokio's `read_buf`), and decoding happens between awaits.
    async fn next(&mut self) -> Option<Message> {
        while !self.refused {
            match codec::decode(&self.input, MAX_IN) {
                Ok(Some((frame, used))) => {
                    self.input.drain(..used);
                    match self.messages.push(frame) {
                        Ok(Some(m)) => return Some(m),
                        Ok(None) => continue,
                        Err(Violation(code)) => return self.refuse(code).await,
                    }
                }
                Ok(None) => {}
                Err(Violation(code)) => return self.refuse(code).await,
            }
            self.input.reserve(READ_BUFFER);
            match self.io.read_buf(&mut self.input).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        None
    }

    async fn refuse(&mut self, code: u16) -> Option<Message> {
        self.refused = true;
        close(self, code, "").await;
        None
    }

    /// Writes one frame, failing a client that does not take it within [`WRITE_TIMEOUT`]
    /// or a message larger than [`MAX_OUT`].
    async fn send(&mut self, opcode: Opcode, payload: &[u8]) -> Result<(), Gone> {
        if payload.len() > MAX_OUT {
            return Err(Gone);
        }
        let mut frame = Vec::with_capacity(payload.len() + 10);
        codec::encode(opcode, payload, &mut frame);
        let write = async {
            self.io.write_all(&frame).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Gone),
        }
    }
}

async fn close(ws: &mut Ws, code: u16, reason: &str) {
    if std::mem::replace(&mut ws.closed, true) {
        return;
    }
    let _ = ws
        .send(Opcode::Close, &codec::close_payload(code, reason))
        .await;
    let _ = tokio::time::timeout(WRITE_TIMEOUT, ws.io.shutdown()).await;
}

/// Subscriptions of one connection: channels, and for `bgp_sessions`/`ipv6_pools` the ids
/// asked for (empty = all).
#[derive(Debug, Default)]
struct Subs {
    channels: BTreeSet<Channel>,
    sessions: BTreeSet<i64>,
    pools: BTreeSet<i64>,
    /// `/ws/{user_id}` speaks the `*_update` message types of the second seed.
    updates: bool,
}

async fn run(app: Arc<App>, mut ws: Ws, ep: Endpoint, mut query: Query, caller: Caller) {
    let mut channels: Vec<String> = query
        .take("channels")
        .map(|c| c.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    let Caller {
        mut token,
        mut principal,
        mut slot,
    } = caller;
    if token.is_none() && ep == Endpoint::Connect {
        // The seed's connect parameters as a first message: {"token", "channels"}.
        if let Ok(Some(Message::Text(t))) = tokio::time::timeout(AUTH_WAIT, ws.next()).await {
            if let Ok(v) = serde_json::from_str::<Value>(&t) {
                token = v["token"].as_str().map(str::to_string);
                if let Some(list) = v["channels"].as_array() {
                    channels = list
                        .iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect();
                }
            }
        }
        if let Some(t) = &token {
            principal = app.auth.authenticate(t).await.ok();
            if principal.is_some() {
                // From the unauthenticated quota to a real slot.
                let Ok(real) = app.ws_slots.clone().try_acquire_owned() else {
                    close(&mut ws, codec::TRY_AGAIN, "too many WebSocket connections").await;
                    return;
                };
                slot = real;
            }
        }
    }
    let _slot = slot;
    let Some(principal) = principal else {
        close(&mut ws, codec::POLICY, "invalid or missing token").await;
        return;
    };
    let mut subs = Subs::default();
    match &ep {
        Endpoint::Connect => {
            if channels.is_empty() {
                channels = ["system", "wireguard", "bgp", "monitoring"]
                    .map(String::from)
                    .to_vec();
            }
            for c in &channels {
                match Channel::parse(c) {
                    Some(ch) => {
                        subs.channels.insert(ch);
                    }
                    None => {
                        close(
                            &mut ws,
                            codec::INVALID_DATA,
                            &format!("unknown channel {c:?}"),
                        )
                        .await;
                        return;
                    }
                }
            }
        }
        Endpoint::Fixed(c) => {
            subs.channels.insert(*c);
        }
        Endpoint::User(id) => {
            if *id != principal.user_id {
                close(&mut ws, codec::POLICY, "this is another user's channel").await;
                return;
            }
            subs.updates = true;
            let kind = query.take("connection_type");
            if let Some(c) = kind.as_deref().and_then(Channel::parse) {
                subs.channels.insert(c);
            }
        }
    }
    if let Some(c) = subs
        .channels
        .iter()
        .find(|c| !principal.role.allows(c.permission()))
    {
        close(&mut ws, codec::POLICY, &format!("no permission for {c:?}")).await;
        return;
    }
    if serve(
        &app,
        &mut ws,
        &principal,
        subs,
        token.as_deref().unwrap_or(""),
    )
    .await
    .is_ok()
    {
        close(&mut ws, codec::NORMAL, "bye").await;
    }
}

/// A write that did not finish in time, or failed: the connection is over.
struct Gone;

async fn send(ws: &mut Ws, kind: &str, data: Value) -> Result<(), Gone> {
    let text = json!({
        "type": kind,
        "data": data,
        "timestamp": crate::time::rfc3339(crate::time::now()),
    })
    .to_string();
    ws.send(Opcode::Text, text.as_bytes()).await
}

async fn serve(
    app: &App,
    ws: &mut Ws,
    who: &Principal,
    mut subs: Subs,
    token: &str,
) -> Result<(), Gone> {
    let mut snapshots = app.monitor.subscribe();
    let mut bgp = app.bgp.subscribe();
    let mut changes = app.bus.subscribe();
    let mut alerts = app.monitor.subscribe_alerts();
    let mut logs = app.logs.subscribe();
    let mut stopping = app.stopping.subscribe();
    let mut steady = tokio::time::interval(STEADY);
    let mut ping = tokio::time::interval(PING);
    ping.reset();
    let mut last_heard = tokio::time::Instant::now();
    send(
        ws,
        "connected",
        json!({"user_id": who.user_id, "channels": names(&subs)}),
    )
    .await?;
    // `steady` fires at once: every channel's state goes out first.
    loop {
        tokio::select! {
            _ = steady.tick() => {
                // A token revoked (logout, password change, user disabled) or expired since
                // the connection opened ends it.
                if app.auth.authenticate(token).await.is_err() {
                    close(ws, codec::POLICY, "token no longer valid").await;
                    return Err(Gone);
                }
                for c in subs.channels.clone() {
                    push(app, ws, &subs, c).await?;
                }
            }
            r = snapshots.changed() => {
                if r.is_err() { return Ok(()) }
                if subs.channels.contains(&Channel::System) {
                    push(app, ws, &subs, Channel::System).await?;
                }
            }
            r = bgp.recv() => match r {
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    if subs.channels.contains(&Channel::Bgp) {
                        push(app, ws, &subs, Channel::Bgp).await?;
                    }
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            r = changes.recv() => {
                let targets: Vec<Channel> = match r {
                    Ok(c) => channel_of(&c).into_iter().collect(),
                    // Fell behind: every channel the bus feeds is sent afresh.
                    Err(RecvError::Lagged(_)) => {
                        vec![Channel::Wireguard, Channel::Bgp, Channel::Pools]
                    }
                    Err(RecvError::Closed) => return Ok(()),
                };
                for c in targets.into_iter().filter(|c| subs.channels.contains(c)) {
                    push(app, ws, &subs, c).await?;
                }
            }
            r = alerts.recv() => match r {
                Ok(a) if subs.channels.contains(&Channel::Monitoring) => {
                    let kind = if subs.updates { "system_alert" } else { "monitoring_alert" };
                    send(ws, kind, serde_json::to_value(&*a).unwrap_or_default()).await?;
                }
                Err(RecvError::Closed) => return Ok(()),
                _ => {}
            },
            r = logs.recv() => match r {
                Ok(l) if subs.channels.contains(&Channel::Logs) => {
                    send(ws, "log_entry", serde_json::to_value(&*l).unwrap_or_default()).await?;
                }
                Err(RecvError::Closed) => return Ok(()),
                _ => {}
            },
            _ = async { stopping.wait_for(|s| *s).await.map(|_| ()) } => {
                close(ws, codec::AWAY, "the service is stopping").await;
                return Err(Gone);
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE {
                    close(ws, codec::AWAY, "no answer to pings").await;
                    return Err(Gone);
                }
                ws.send(Opcode::Ping, &[]).await?;
            }
            m = ws.next() => {
                last_heard = tokio::time::Instant::now();
                match m {
                    Some(Message::Text(t)) => {
                        if let Some(c) = command(&mut subs, who, &t) {
                            match c {
                                Reply::Send(kind, data) => send(ws, kind, data).await?,
                                Reply::Subscribed(c) => {
                                    send(ws, "subscribed", json!({"channels": names(&subs)})).await?;
                                    push(app, ws, &subs, c).await?;
                                }
                            }
                        }
                    }
                    Some(Message::Ping(p)) => ws.send(Opcode::Pong, &p).await?,
                    Some(Message::Close(c)) => {
                        // Echo the client's code (RFC 6455 §5.5.1), then hang up.
                        close(ws, c.map_or(codec::NORMAL, |(code, _)| code), "").await;
                        return Err(Gone);
                    }
                    None => return Err(Gone),
                    Some(Message::Pong(_) | Message::Binary(_)) => {}
                }
            }
        }
    }
}

fn names(subs: &Subs) -> Vec<&'static str> {
    subs.channels
        .iter()
        .map(|c| match c {
            Channel::System => "system",
            Channel::Wireguard => "wireguard",
            Channel::Bgp => "bgp",
            Channel::Monitoring => "monitoring",
            Channel::Logs => "logs",
            Channel::Pools => "ipv6_pools",
        })
        .collect()
}

enum Reply {
    Send(&'static str, Value),
    Subscribed(Channel),
}

/// A client message: `{"type": "subscribe"|"unsubscribe", "channel", "session_id"?,
/// "pool_id"?}` or `{"type": "ping"}`. Anything else gets an `error` message.
fn command(subs: &mut Subs, who: &Principal, text: &str) -> Option<Reply> {
    let err = |m: String| Some(Reply::Send("error", json!({"message": m})));
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return err("messages must be JSON objects".into());
    };
    let id = |k: &str| -> Option<i64> {
        v[k].as_i64()
            .or_else(|| v[k].as_str().and_then(|s| s.parse().ok()))
    };
    match v["type"].as_str() {
        Some("ping") => Some(Reply::Send("pong", json!({}))),
        Some(t @ ("subscribe" | "unsubscribe")) => {
            let name = v["channel"].as_str().unwrap_or("");
            let Some(c) = Channel::parse(name) else {
                return err(format!("unknown channel {name:?}"));
            };
            if !who.role.allows(c.permission()) {
                return err(format!("no permission for channel {name:?}"));
            }
            if t == "subscribe" {
                if subs.sessions.len() >= MAX_IDS || subs.pools.len() >= MAX_IDS {
                    return err(format!("at most {MAX_IDS} ids per channel"));
                }
                subs.channels.insert(c);
                if let Some(s) = id("session_id") {
                    subs.sessions.insert(s);
                }
                if let Some(p) = id("pool_id") {
                    subs.pools.insert(p);
                }
                Some(Reply::Subscribed(c))
            } else {
                subs.channels.remove(&c);
                match c {
                    Channel::Bgp => subs.sessions.clear(),
                    Channel::Pools => subs.pools.clear(),
                    _ => {}
                }
                Some(Reply::Send(
                    "unsubscribed",
                    json!({"channels": names(subs)}),
                ))
            }
        }
        _ => err("type must be subscribe, unsubscribe or ping".into()),
    }
}

/// Sends the current state of one channel.
async fn push(app: &App, ws: &mut Ws, subs: &Subs, c: Channel) -> Result<(), Gone> {
    match c {
        Channel::System => {
            if let Some(s) = app.monitor.latest() {
                let h = &s.system;
                let mut data = s.usage();
                data["load_average"] = json!(h.cpu.load_average);
                data["network_traffic"] = json!({
                    "bytes_sent": h.network.bytes_sent,
                    "bytes_recv": h.network.bytes_recv,
                    "rx_rate": h.network.rx_rate,
                    "tx_rate": h.network.tx_rate,
                });
                data["uptime"] = json!(h.uptime);
                data["sampled_at"] = json!(s.timestamp_string());
                send(ws, "system_status", data).await?;
            }
        }
        Channel::Wireguard => {
            let servers = app
                .ws_cache
                .get(&app.ws_cache.wireguard, wireguard_status(app))
                .await;
            send(ws, "wireguard_status", json!({"servers": *servers})).await?;
        }
        Channel::Bgp => {
            let sessions: Vec<Value> = app
                .bgp
                .overview()
                .into_iter()
                .filter(|s| subs.sessions.is_empty() || subs.sessions.contains(&s.id))
                .map(|s| {
                    let now = crate::time::now();
                    json!({
                        "id": s.id,
                        "session_id": s.id,
                        "name": s.name,
                        "enabled": s.enabled,
                        "status": s.live.state.as_str(),
                        "uptime": s.live.established_at.map_or(0, |t| (now - t).max(0)),
                        "prefixes_received": s.live.prefixes_received,
                        "prefixes_sent": s.live.prefixes_sent,
                        "routes_received": s.live.prefixes_received,
                        "routes_advertised": s.live.prefixes_sent,
                        "last_error": s.live.last_error,
                        "last_update": s.live.last_change.map(crate::time::rfc3339),
                    })
                })
                .collect();
            let kind = if subs.updates {
                "bgp_status_update"
            } else {
                "bgp_status"
            };
            send(ws, kind, json!({"sessions": sessions})).await?;
        }
        Channel::Pools => {
            let all = app
                .ws_cache
                .get(&app.ws_cache.pools, pool_status(app))
                .await;
            let pools: Vec<&Value> = all
                .iter()
                .filter(|p| {
                    subs.pools.is_empty()
                        || p["pool_id"]
                            .as_i64()
                            .is_some_and(|id| subs.pools.contains(&id))
                })
                .collect();
            let kind = if subs.updates {
                "pool_status_update"
            } else {
                "pool_status"
            };
            send(ws, kind, json!({"pools": pools})).await?;
        }
        Channel::Monitoring => {
            let kind = if subs.updates {
                "system_alert"
            } else {
                "monitoring_alert"
            };
            // The active alerts as one message; new ones arrive as they are raised.
            send(
                ws,
                "alerts_active",
                json!({"alerts": app.monitor.active_alerts(), "message_type": kind}),
            )
            .await?;
        }
        Channel::Logs => {}
    }
    Ok(())
}

async fn pool_status(app: &App) -> Vec<Value> {
    match app.ipam.monitor().await {
        Ok(m) => m
            .pools
            .into_iter()
            .map(|p| serde_json::to_value(p).unwrap_or_default())
            .collect(),
        Err(_) => Vec::new(),
    }
}

async fn wireguard_status(app: &App) -> Vec<Value> {
    let all = crate::api::query::Page {
        page: 1,
        size: 1000,
    };
    let Ok((rows, _)) = app.wireguard.server_rows(all).await else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(rows.len());
    for (row, clients) in rows {
        let state = app.wg.state(row.id).await;
        let stats = app.wg.stats(row.id).await;
        let (rx, tx) = stats.values().fold((0u64, 0u64), |(r, t), s| {
            (r.saturating_add(s.rx_bytes), t.saturating_add(s.tx_bytes))
        });
        out.push(json!({
            "id": row.id,
            "name": row.name,
            "interface": row.interface,
            "status": state.as_str(),
            "clients_count": clients,
            "peers": stats.len(),
            "bytes_received": rx,
            "bytes_sent": tx,
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_channels() {
        assert_eq!(endpoint("connect"), Some(Endpoint::Connect));
        assert_eq!(endpoint("bgp/status"), Some(Endpoint::Fixed(Channel::Bgp)));
        assert_eq!(endpoint("42"), Some(Endpoint::User(42)));
        assert_eq!(endpoint("x/y"), None);
        assert_eq!(endpoint(""), None);
        assert_eq!(Channel::parse("bgp_sessions"), Some(Channel::Bgp));
        assert_eq!(Channel::parse("ipv6_pools"), Some(Channel::Pools));
        assert_eq!(Channel::parse("nope"), None);
    }
}
