//! A lightweight BGP-4 speaker: announces our prefixes (configured announcements and the
//! prefix pools' originations) to upstream routers and accepts — counts, lists,
//! RPKI-checks, never re-advertises — their routes.
//!
//! - [`packet`]: the message codec, pure (`decode(&[u8]) -> Result<Message, Notification>`).
//! - [`fsm`]: the RFC 4271 state machine, pure, time passed in.
//! - [`rib`]: the compact Adj-RIB-In.
//! - [`model`], [`view`]: request bodies and JSON views; [`exports`]: what we announce
//!   and, per session, with which AS path and origin (RPKI is decided per session).
//! - The session's pure decisions: `open` (our OPEN, accepting the peer's), `inbound`
//!   (UPDATE → Adj-RIB-In changes, treat-as-withdraw, the prefix limit), `adj_rib_out`
//!   (what the peer should have from us → UPDATE bytes), `stop` (which Cease ends it).
//! - `speaker`, `session`, `net`: the I/O — one task per peer, listeners, TCP-MD5 sockets.
//!
//! This file is the domain the API calls: configuration in the database, applied to the
//! running speaker after each change.

mod adj_rib_out;
pub mod exports;
pub mod fsm;
mod inbound;
pub mod model;
mod net;
mod open;
pub mod originations;
pub mod packet;
pub mod rib;
mod session;
pub mod speaker;
mod stop;
pub mod view;

pub use model::{AnnouncementInput, SessionInput};
pub use speaker::{Command, Speaker};
pub use view::{AnnouncementView, SessionMonitor, SessionView};

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::input::Page;
use crate::store::bgp::{self as q, AnnouncementFilter, AnnouncementRow, SessionRow};
use crate::store::StoreError;
use serde::Serialize;
use speaker::SessionConfig;
use std::sync::Arc;
use std::time::Duration;
use view::{AnnouncementState, LiveView, SessionRpki};

/// Seconds between connection attempts to a peer that does not answer.
pub const CONNECT_RETRY: Duration = Duration::from_secs(30);

/// Runs `f` on the database thread; its domain errors pass through.
async fn db<R, F>(app: &App, f: F) -> ApiResult<R>
where
    R: Send + 'static,
    F: FnOnce(&mut rusqlite::Connection) -> ApiResult<R> + Send + 'static,
{
    app.store.call(move |c| Ok(f(c))).await?
}

fn session_or_404(c: &rusqlite::Connection, id: i64) -> ApiResult<SessionRow> {
    Ok(q::get_session(c, id)?.ok_or(StoreError::NotFound("session"))?)
}

/// The AS a session speaks as: its own, else the config's.
fn local_as(app: &App, row: &SessionRow) -> Option<u32> {
    row.f
        .local_as
        .or(Some(app.config.bgp.local_asn).filter(|&a| a != 0))
}

fn require_local_as(local_asn: u32, f: &crate::store::bgp::SessionFields) -> ApiResult<()> {
    if f.local_as.is_none() && local_asn == 0 {
        return Err(ApiError::validation(
            "local_as",
            "local_as is required (the config has no [bgp] local_asn)",
        ));
    }
    Ok(())
}

fn config_of(app: &App, row: &SessionRow) -> Option<SessionConfig> {
    Some(SessionConfig {
        id: row.id,
        f: row.f.clone(),
        local_as: local_as(app, row)?,
        router_id: app.config.bgp.router_id,
        connect_retry: Duration::from_secs(app.config.bgp.connect_retry_secs.max(1)),
    })
}

/// Makes the speaker run `row` as configured.
fn apply(app: &App, row: &SessionRow) {
    match config_of(app, row) {
        Some(cfg) => app.bgp.configure(cfg),
        None => app.bgp.remove(row.id),
    }
}

fn view(app: &App, row: SessionRow) -> SessionView {
    let live = app.bgp.live(row.id);
    SessionView::new(
        row,
        app.config.bgp.local_asn,
        live.as_ref(),
        crate::time::now(),
    )
}

/// Starts every configured session (at service start).
pub async fn restore(app: &App) -> Result<(), String> {
    let rows = db(app, |c| Ok(q::all_sessions(c)?))
        .await
        .map_err(|e| e.to_string())?;
    for row in &rows {
        apply(app, row);
    }
    app.bgp.changed();
    Ok(())
}

/// Rebuilds the export set whenever [`Speaker::changed`] is signalled or the RPKI table
/// changes (debounced), and every minute as a backstop.
pub async fn exports_task(app: Arc<App>) {
    let dirty = app.bgp.dirty();
    let rpki = app.rpki.updated();
    loop {
        tokio::select! {
            _ = dirty.notified() => {}
            _ = rpki.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        match exports::build(&app).await {
            Ok(e) => app.bgp.publish(e),
            Err(e) => log::warn!("bgp: cannot build the export set: {}", e.message),
        }
    }
}

// ---- sessions ----

pub async fn create_session(app: &App, input: SessionInput) -> ApiResult<SessionView> {
    let f = input.create()?;
    require_local_as(app.config.bgp.local_asn, &f)?;
    let now = crate::time::now();
    let row = db(app, move |c| Ok(q::insert_session(c, &f, now)?)).await?;
    apply(app, &row);
    Ok(view(app, row))
}

pub async fn get_session(app: &App, id: i64) -> ApiResult<SessionView> {
    let row = db(app, move |c| session_or_404(c, id)).await?;
    Ok(view(app, row))
}

pub async fn list_sessions(app: &App, page: Page) -> ApiResult<(Vec<SessionView>, u64)> {
    let (rows, total) = db(app, move |c| {
        Ok(q::list_sessions(c, page.size, page.offset())?)
    })
    .await?;
    Ok((rows.into_iter().map(|r| view(app, r)).collect(), total))
}

pub async fn update_session(app: &App, id: i64, input: SessionInput) -> ApiResult<SessionView> {
    let now = crate::time::now();
    let local_asn = app.config.bgp.local_asn;
    let row = db(app, move |c| {
        let cur = session_or_404(c, id)?;
        let f = input.apply(&cur.f)?;
        require_local_as(local_asn, &f)?;
        Ok(q::update_session(c, id, &f, now)?)
    })
    .await?;
    apply(app, &row);
    Ok(view(app, row))
}

/// Deletes a session (Cease / Peer De-configured to the peer) and the announcements
/// restricted to it.
pub async fn delete_session(app: &App, id: i64) -> ApiResult<u64> {
    let n = db(app, move |c| Ok(q::delete_session(c, id)?)).await?;
    app.bgp.remove(id);
    if n > 0 {
        app.bgp.changed();
    }
    Ok(n)
}

/// `start`, `stop`, `reload`, `restart` of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAction {
    Start,
    Stop,
    Reload,
    Restart,
}

impl SessionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionAction::Start => "start",
            SessionAction::Stop => "stop",
            SessionAction::Reload => "reload",
            SessionAction::Restart => "restart",
        }
    }
}

/// Start and stop also persist `enabled`, so a restart of the service keeps them.
pub async fn session_action(app: &App, id: i64, action: SessionAction) -> ApiResult<SessionView> {
    let now = crate::time::now();
    let row = db(app, move |c| {
        let mut row = session_or_404(c, id)?;
        let enabled = match action {
            SessionAction::Start | SessionAction::Restart => true,
            SessionAction::Stop => false,
            SessionAction::Reload => row.f.enabled,
        };
        if enabled != row.f.enabled {
            row.f.enabled = enabled;
            row = q::update_session(c, id, &row.f, now)?;
        }
        Ok(row)
    })
    .await?;
    let Some(cfg) = config_of(app, &row) else {
        return Err(ApiError::validation(
            "local_as",
            "the session has no local_as and the config no [bgp] local_asn",
        ));
    };
    let cmd = match action {
        SessionAction::Start => Command::Start,
        SessionAction::Stop => Command::Stop("stopped by the operator".into()),
        SessionAction::Restart => Command::Restart("restarted by the operator".into()),
        SessionAction::Reload => Command::Refresh,
    };
    // The command goes first, so the peer reads why (the new `enabled` that follows is
    // then already in effect); a session without a task gets one that starts as `enabled`
    // says.
    if app.bgp.live(id).is_some() && !app.bgp.command(id, cmd) {
        return Err(ApiError::unavailable(
            "the session is busy; try again in a moment",
        ));
    }
    app.bgp.configure(cfg);
    Ok(view(app, row))
}

/// One entry of a batch answer.
#[derive(Debug, Serialize)]
pub struct BatchResult {
    pub id: i64,
    pub success: bool,
    pub status: Option<&'static str>,
    pub error: Option<String>,
}

pub async fn batch(app: &App, ids: Vec<i64>, action: SessionAction) -> Vec<BatchResult> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(match session_action(app, id, action).await {
            Ok(v) => BatchResult {
                id,
                success: true,
                status: Some(v.live.status),
                error: None,
            },
            Err(e) => BatchResult {
                id,
                success: false,
                status: None,
                error: Some(e.message),
            },
        });
    }
    out
}

pub async fn monitor(app: &App) -> ApiResult<Vec<SessionMonitor>> {
    let rows = db(app, |c| Ok(q::all_sessions(c)?)).await?;
    let now = crate::time::now();
    Ok(rows
        .into_iter()
        .map(|r| {
            let live = app.bgp.live(r.id);
            SessionMonitor {
                session_id: r.id,
                name: r.f.name,
                neighbor: r.f.neighbor.to_string(),
                remote_as: r.f.remote_as,
                enabled: r.f.enabled,
                live: LiveView::new(live.as_ref(), now),
            }
        })
        .collect())
}

/// A route received from a peer, as listed.
#[derive(Debug, Serialize)]
pub struct ReceivedRoute {
    pub prefix: String,
    pub next_hop: Option<String>,
    pub as_path: String,
    pub origin: Option<&'static str>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub community: String,
    /// valid / invalid / not_found (origin = the last AS of the path), or null without
    /// RPKI data.
    pub rpki: Option<&'static str>,
    pub rpki_reason: Option<&'static str>,
}

/// One page of the routes a session received.
pub async fn received_routes(
    app: &App,
    id: i64,
    page: Page,
) -> ApiResult<(Vec<ReceivedRoute>, u64)> {
    db(app, move |c| session_or_404(c, id)).await?;
    let Some(shared) = app.bgp.shared(id) else {
        return Ok((Vec::new(), 0));
    };
    let (routes, total) = {
        let rib = crate::sync::lock(&shared.rib);
        let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
        (rib.page(offset, page.size as usize), rib.len() as u64)
    };
    let table = app.rpki.loaded().then(|| app.rpki.table());
    let out = routes
        .into_iter()
        .map(|(prefix, a)| {
            let (rpki, rpki_reason) = match &table {
                Some(t) => {
                    let s = t.validate(prefix, a.origin_as.unwrap_or(0)).state;
                    (Some(s.as_str()), s.reason())
                }
                None => (None, None),
            };
            ReceivedRoute {
                prefix: prefix.to_string(),
                next_hop: a.next_hop.map(|h| h.to_string()),
                as_path: model::render_path(&a.as_path),
                origin: a.origin.map(|o| match o {
                    0 => "igp",
                    1 => "egp",
                    _ => "incomplete",
                }),
                med: a.med,
                local_pref: a.local_pref,
                community: render_received_communities(&a.communities, &a.large_communities),
                rpki,
                rpki_reason,
            }
        })
        .collect();
    Ok((out, total))
}

fn render_received_communities(std: &[u32], large: &[[u32; 3]]) -> String {
    let cs: Vec<model::Community> = std
        .iter()
        .map(|&v| model::Community::Standard(v))
        .chain(large.iter().map(|&v| model::Community::Large(v)))
        .collect();
    model::render_communities(&cs)
}

// ---- announcements ----

fn announcement_or_404(c: &rusqlite::Connection, id: i64) -> ApiResult<AnnouncementRow> {
    Ok(q::get_announcement(c, id)?.ok_or(StoreError::NotFound("announcement"))?)
}

fn check_session_ref(c: &rusqlite::Connection, session_id: Option<i64>) -> ApiResult<()> {
    if let Some(id) = session_id {
        if q::get_session(c, id)?.is_none() {
            return Err(ApiError::validation(
                "session_id",
                format!("there is no BGP session with id {id}"),
            ));
        }
    }
    Ok(())
}

/// The announcement with its RPKI verdict for `[bgp] local_asn` and, per session it goes
/// to, for the origin that session sends (what the session decides with).
fn announcement_view(app: &App, row: AnnouncementRow) -> AnnouncementView {
    let table = app.rpki.loaded().then(|| app.rpki.table());
    let vrps = table.as_deref();
    let path = model::parse_path(&row.f.as_path).unwrap_or_default();
    let prefix = row.f.prefix;
    let (rpki, rpki_reason) = exports::verdict_on(prefix, &path, app.config.bgp.local_asn, vrps);
    let sessions = app
        .bgp
        .targets(&prefix, row.f.session_id)
        .into_iter()
        .map(|t| {
            let (rpki, rpki_reason) = exports::verdict_on(prefix, &path, t.local_as, vrps);
            SessionRpki {
                session_id: t.session_id,
                origin_as: exports::origin_on(&path, t.local_as),
                rpki,
                rpki_reason,
                sent: t.sent,
            }
        })
        .collect();
    let st = AnnouncementState {
        rpki,
        rpki_reason,
        sessions,
    };
    AnnouncementView::new(row, app.config.bgp.local_asn, st)
}

pub async fn create_announcement(
    app: &App,
    input: AnnouncementInput,
) -> ApiResult<AnnouncementView> {
    let f = input.create()?;
    let now = crate::time::now();
    let row = db(app, move |c| {
        check_session_ref(c, f.session_id)?;
        Ok(q::insert_announcement(c, &f, now)?)
    })
    .await?;
    app.bgp.changed();
    Ok(announcement_view(app, row))
}

pub async fn get_announcement(app: &App, id: i64) -> ApiResult<AnnouncementView> {
    let row = db(app, move |c| announcement_or_404(c, id)).await?;
    Ok(announcement_view(app, row))
}

pub async fn list_announcements(
    app: &App,
    filter: AnnouncementFilter,
    page: Page,
) -> ApiResult<(Vec<AnnouncementView>, u64)> {
    let (rows, total) = db(app, move |c| {
        Ok(q::list_announcements(c, &filter, page.size, page.offset())?)
    })
    .await?;
    let views = rows
        .into_iter()
        .map(|r| announcement_view(app, r))
        .collect();
    Ok((views, total))
}

pub async fn update_announcement(
    app: &App,
    id: i64,
    input: AnnouncementInput,
) -> ApiResult<AnnouncementView> {
    let now = crate::time::now();
    let row = db(app, move |c| {
        let cur = announcement_or_404(c, id)?;
        let f = input.apply(&cur.f)?;
        check_session_ref(c, f.session_id)?;
        Ok(q::update_announcement(c, id, &f, now)?)
    })
    .await?;
    app.bgp.changed();
    Ok(announcement_view(app, row))
}

pub async fn delete_announcement(app: &App, id: i64) -> ApiResult<()> {
    app.store
        .call(move |c| q::delete_announcement(c, id))
        .await?;
    app.bgp.changed();
    Ok(())
}
