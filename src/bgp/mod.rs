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
//! - [`reconcile`]: the [`Reconciler`], the speaker's applier on the change bus: a
//!   session's task follows its row, and a change to what we originate marks the export
//!   set dirty for [`exports::run`] to rebuild.
//! - [`error`]: [`Error`], what the operations fail with (`api::error` maps it).
//!
//! This file is [`Service`], the domain the API calls: configuration in the database;
//! each write commits, then publishes its [`Change`] and the reconciler brings the
//! running speaker to match.
//!
//! ```text
//!  handler ─► bgp::Service ─► Store::write ─► commit ─► Bus::publish(Change::BgpSession / Announcement)
//!                                                          └─► Reconciler ─► Speaker::configure / remove
//!  ipam::Service ─► … ─► Bus::publish(Change::Pool / Allocation) ─► Reconciler ─► Speaker::changed
//!                                       exports::run (task) ◄── dirty ┘  (debounced; + new VRP tables)
//!                                              └─► Speaker::publish(ExportSet) ─► every session's Adj-RIB-Out
//! ```

mod adj_rib_out;
pub mod error;
pub mod exports;
pub mod fsm;
mod inbound;
pub mod model;
mod net;
mod open;
pub mod originations;
pub mod packet;
pub mod reconcile;
pub mod rib;
mod session;
pub mod speaker;
mod stop;
pub mod view;

pub use error::{Error, Result};
pub use model::{AnnouncementInput, SessionInput};
pub use reconcile::Reconciler;
pub use speaker::{Command, Speaker};
pub use view::{AnnouncementView, SessionMonitor, SessionView};

use crate::changes::{Bus, Change, Op};
use crate::config::BgpConfig;
use crate::input::Page;
use crate::rpki::Rpki;
use crate::store::bgp::{self as q, AnnouncementFilter, AnnouncementRow, SessionRow};
use crate::store::Store;
use serde::Serialize;
use speaker::{SessionConfig, SessionLive, StateChange};
use std::sync::Arc;
use std::time::Duration;
use view::{AnnouncementState, LiveView, SessionRpki};

/// Seconds between connection attempts to a peer that does not answer.
pub const CONNECT_RETRY: Duration = Duration::from_secs(30);

/// BGP sessions and announcements: their rows, the running speaker's view of them, and
/// what follows a change.
#[derive(Clone)]
pub struct Service {
    store: Store,
    speaker: Arc<Speaker>,
    /// The live VRP table announcements are checked against.
    rpki: Arc<Rpki>,
    config: BgpConfig,
    bus: Bus,
}

fn session_or_404(c: &rusqlite::Connection, id: i64) -> Result<SessionRow> {
    q::get_session(c, id)?.ok_or(Error::NotFound("session"))
}

fn require_local_as(local_asn: u32, f: &crate::store::bgp::SessionFields) -> Result<()> {
    if f.local_as.is_none() && local_asn == 0 {
        return Err(Error::invalid(
            "local_as",
            "local_as is required (the config has no [bgp] local_asn)",
        ));
    }
    Ok(())
}

/// What the speaker runs `row` with: its own AS, else the config's; `None` without either.
pub fn config_of(bgp: &BgpConfig, row: &SessionRow) -> Option<SessionConfig> {
    Some(SessionConfig {
        id: row.id,
        f: row.f.clone(),
        local_as: row.f.local_as.or(Some(bgp.local_asn).filter(|&a| a != 0))?,
        router_id: bgp.router_id,
        connect_retry: Duration::from_secs(bgp.connect_retry_secs.max(1)),
    })
}

impl Service {
    pub fn new(
        store: Store,
        speaker: Arc<Speaker>,
        rpki: Arc<Rpki>,
        config: BgpConfig,
        bus: Bus,
    ) -> Self {
        Service {
            store,
            speaker,
            rpki,
            config,
            bus,
        }
    }

    fn view(&self, row: SessionRow) -> SessionView {
        let live = self.speaker.live(row.id);
        SessionView::new(
            row,
            self.config.local_asn,
            live.as_ref(),
            crate::time::now(),
        )
    }

    // ---- the running speaker, for monitoring and start/stop ----

    /// Every configured session with its live state, by id.
    pub fn overview(&self) -> Vec<SessionLive> {
        self.speaker.overview()
    }

    /// State changes of every session from now on (event log, WebSocket).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<StateChange> {
        self.speaker.subscribe()
    }

    /// The task that rebuilds the export set ([`exports::run`]); `app::run` owns it.
    pub fn exports_task(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        exports::run(self.store.clone(), self.speaker.clone(), self.rpki.clone())
    }

    /// The running speaker, for the metrics collector (`monitor::sources::BgpStats`).
    pub fn speaker(&self) -> Arc<Speaker> {
        self.speaker.clone()
    }

    /// Stops every session with a Cease (service shutdown).
    pub async fn shutdown(&self) {
        self.speaker.shutdown().await;
    }

    // ---- sessions ----

    pub async fn create_session(&self, input: SessionInput) -> Result<SessionView> {
        let f = input.create()?;
        require_local_as(self.config.local_asn, &f)?;
        let now = crate::time::now();
        let row = self
            .store
            .run(move |c| Ok::<_, Error>(q::insert_session(c, &f, now)?))
            .await?;
        self.bus
            .publish(Change::BgpSession {
                id: row.id,
                op: Op::Added,
            })
            .await;
        Ok(self.view(row))
    }

    pub async fn get_session(&self, id: i64) -> Result<SessionView> {
        let row = self.store.run(move |c| session_or_404(c, id)).await?;
        Ok(self.view(row))
    }

    pub async fn list_sessions(&self, page: Page) -> Result<(Vec<SessionView>, u64)> {
        let (rows, total) = self
            .store
            .run(move |c| Ok::<_, Error>(q::list_sessions(c, page.size, page.offset())?))
            .await?;
        Ok((rows.into_iter().map(|r| self.view(r)).collect(), total))
    }

    pub async fn update_session(&self, id: i64, input: SessionInput) -> Result<SessionView> {
        let now = crate::time::now();
        let local_asn = self.config.local_asn;
        let row = self
            .store
            .write(move |tx| {
                let cur = session_or_404(tx, id)?;
                let f = input.apply(&cur.f)?;
                require_local_as(local_asn, &f)?;
                Ok::<_, Error>(q::update_session(tx, id, &f, now)?)
            })
            .await?;
        self.bus
            .publish(Change::BgpSession {
                id,
                op: Op::Changed,
            })
            .await;
        Ok(self.view(row))
    }

    /// Deletes a session (Cease / Peer De-configured to the peer) and the announcements
    /// restricted to it; returns how many of those there were.
    pub async fn delete_session(&self, id: i64) -> Result<u64> {
        let n = self
            .store
            .write(move |tx| Ok::<_, Error>(q::delete_session(tx, id)?))
            .await?;
        // The reconciler ends the task and, the session's announcements being gone with
        // it, rebuilds the exports.
        self.bus
            .publish(Change::BgpSession {
                id,
                op: Op::Removed,
            })
            .await;
        Ok(n)
    }

    /// Start and stop also persist `enabled`, so a restart of the service keeps them.
    pub async fn session_action(&self, id: i64, action: SessionAction) -> Result<SessionView> {
        let now = crate::time::now();
        let (row, changed) = self
            .store
            .write(move |tx| {
                let mut row = session_or_404(tx, id)?;
                let enabled = match action {
                    SessionAction::Start | SessionAction::Restart => true,
                    SessionAction::Stop => false,
                    SessionAction::Reload => row.f.enabled,
                };
                let changed = enabled != row.f.enabled;
                if changed {
                    row.f.enabled = enabled;
                    row = q::update_session(tx, id, &row.f, now)?;
                }
                Ok::<_, Error>((row, changed))
            })
            .await?;
        let done = self.drive(&row, action);
        // After the command: the reconciler then finds the task as configured already.
        if changed {
            self.bus
                .publish(Change::BgpSession {
                    id,
                    op: Op::Changed,
                })
                .await;
        }
        done?;
        Ok(self.view(row))
    }

    /// An operator's action on the running session, whose failure the caller must see.
    fn drive(&self, row: &SessionRow, action: SessionAction) -> Result<()> {
        let Some(cfg) = config_of(&self.config, row) else {
            return Err(Error::invalid(
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
        // then already in effect); a session without a task gets one that starts as
        // `enabled` says.
        if self.speaker.live(row.id).is_some() && !self.speaker.command(row.id, cmd) {
            return Err(Error::Unavailable(
                "the session is busy; try again in a moment".into(),
            ));
        }
        self.speaker.configure(cfg);
        Ok(())
    }

    /// The action on each session, in order: its view or why it failed.
    pub async fn batch(
        &self,
        ids: Vec<i64>,
        action: SessionAction,
    ) -> Vec<(i64, Result<SessionView>)> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push((id, self.session_action(id, action).await));
        }
        out
    }

    pub async fn monitor(&self) -> Result<Vec<SessionMonitor>> {
        let rows = self
            .store
            .run(|c| Ok::<_, Error>(q::all_sessions(c)?))
            .await?;
        let now = crate::time::now();
        Ok(rows
            .into_iter()
            .map(|r| {
                let live = self.speaker.live(r.id);
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

    /// One page of the routes a session received.
    pub async fn received_routes(&self, id: i64, page: Page) -> Result<(Vec<ReceivedRoute>, u64)> {
        self.store.run(move |c| session_or_404(c, id)).await?;
        let Some(shared) = self.speaker.shared(id) else {
            return Ok((Vec::new(), 0));
        };
        let (routes, total) = {
            let rib = crate::sync::lock(&shared.rib);
            let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
            (rib.page(offset, page.size as usize), rib.len() as u64)
        };
        let table = self.rpki.loaded().then(|| self.rpki.table());
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

    // ---- announcements ----

    /// The announcement with its RPKI verdict for `[bgp] local_asn` and, per session it
    /// goes to, for the origin that session sends (what the session decides with).
    fn announcement_view(&self, row: AnnouncementRow) -> AnnouncementView {
        let local_asn = self.config.local_asn;
        let table = self.rpki.loaded().then(|| self.rpki.table());
        let vrps = table.as_deref();
        let path = model::parse_path(&row.f.as_path).unwrap_or_default();
        let prefix = row.f.prefix;
        let (rpki, rpki_reason) = exports::verdict_on(prefix, &path, local_asn, vrps);
        let sessions = self
            .speaker
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
        AnnouncementView::new(row, local_asn, st)
    }

    async fn announced(&self, id: i64, op: Op) {
        self.bus.publish(Change::Announcement { id, op }).await;
    }

    pub async fn create_announcement(&self, input: AnnouncementInput) -> Result<AnnouncementView> {
        let f = input.create()?;
        let now = crate::time::now();
        let row = self
            .store
            .write(move |tx| {
                check_session_ref(tx, f.session_id)?;
                Ok::<_, Error>(q::insert_announcement(tx, &f, now)?)
            })
            .await?;
        self.announced(row.id, Op::Added).await;
        Ok(self.announcement_view(row))
    }

    pub async fn get_announcement(&self, id: i64) -> Result<AnnouncementView> {
        let row = self.store.run(move |c| announcement_or_404(c, id)).await?;
        Ok(self.announcement_view(row))
    }

    pub async fn list_announcements(
        &self,
        filter: AnnouncementFilter,
        page: Page,
    ) -> Result<(Vec<AnnouncementView>, u64)> {
        let (rows, total) = self
            .store
            .run(move |c| {
                Ok::<_, Error>(q::list_announcements(c, &filter, page.size, page.offset())?)
            })
            .await?;
        let views = rows
            .into_iter()
            .map(|r| self.announcement_view(r))
            .collect();
        Ok((views, total))
    }

    pub async fn update_announcement(
        &self,
        id: i64,
        input: AnnouncementInput,
    ) -> Result<AnnouncementView> {
        let now = crate::time::now();
        let row = self
            .store
            .write(move |tx| {
                let cur = announcement_or_404(tx, id)?;
                let f = input.apply(&cur.f)?;
                check_session_ref(tx, f.session_id)?;
                Ok::<_, Error>(q::update_announcement(tx, id, &f, now)?)
            })
            .await?;
        self.announced(id, Op::Changed).await;
        Ok(self.announcement_view(row))
    }

    pub async fn delete_announcement(&self, id: i64) -> Result<()> {
        self.store
            .run(move |c| Ok::<_, Error>(q::delete_announcement(c, id)?))
            .await?;
        self.announced(id, Op::Removed).await;
        Ok(())
    }
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

fn render_received_communities(std: &[u32], large: &[[u32; 3]]) -> String {
    let cs: Vec<model::Community> = std
        .iter()
        .map(|&v| model::Community::Standard(v))
        .chain(large.iter().map(|&v| model::Community::Large(v)))
        .collect();
    model::render_communities(&cs)
}

fn announcement_or_404(c: &rusqlite::Connection, id: i64) -> Result<AnnouncementRow> {
    q::get_announcement(c, id)?.ok_or(Error::NotFound("announcement"))
}

fn check_session_ref(c: &rusqlite::Connection, session_id: Option<i64>) -> Result<()> {
    if let Some(id) = session_id {
        if q::get_session(c, id)?.is_none() {
            return Err(Error::invalid(
                "session_id",
                format!("there is no BGP session with id {id}"),
            ));
        }
    }
    Ok(())
}
