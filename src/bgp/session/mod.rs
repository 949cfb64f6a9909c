//! One peer's task: the I/O around the pure cores — FSM (`super::fsm`), codec
//! (`super::packet`), OPEN checks (`super::open`), UPDATE policy (`super::inbound`),
//! Adj-RIB-Out (`super::adj_rib_out`). It turns bytes, timers and commands into FSM events
//! and carries out the actions the FSM returns; it makes no protocol decision itself.
//!
//! ```text
//!  desired config (watch) ──► control::desired_changed ──┐ soft apply, or ManualStop + ManualStart
//!  Command (mpsc, 16) ──────► control::on_command ───────┤ ManualStart/ManualStop; Incoming:
//!                                                        │   TcpConnected / CollisionDump / refuse
//!  TCP bytes ──conn::read──► receive::drain ─────────────┤ OpenReceived/OpenRejected, Keepalive-,
//!                (frame + decode, open, inbound)         │   Update-, NotificationReceived,
//!                                                        │   MessageError, LocalError (max-prefix)
//!  outgoing connect ──conn::connect_done──► connected ───┤ TcpConnected / TcpFailed
//!  FSM timers ──sleep_until(next_deadline)──► Fsm::poll ─┤
//!                                                        ▼
//!                          Fsm ──Actions──► act: Connect, SendOpen, SendKeepalive,
//!                               SendNotification, Drop, SessionUp (routes::full_sync),
//!                               SessionDown (clear RIBs), ResendAnnouncements
//!  exports (watch, Established only) ──► routes::sync_routes (Adj-RIB-Out diff → UPDATEs)
//!  after every turn: publish ──► Shared (live state, RIBs) ◄── API
//! ```
//!
//! The task owns the FSM, at most one TCP connection (plus one pending outgoing connect),
//! the read buffer, the Adj-RIB-Out and the timers; it ends on `Shutdown`/`Remove` or when
//! the speaker drops its handle, after sending the Cease. A write that does not finish
//! within [`conn::WRITE_TIMEOUT`] drops the connection, so a peer that stops reading
//! cannot wedge the task. Collisions (RFC 4271 §6.8) are resolved in
//! [`control`](self::control) when a second connection arrives.

mod conn;
mod control;
mod receive;
mod routes;

use super::adj_rib_out::AdjRibOut;
use super::exports::ExportSet;
use super::fsm::{Action, ErrorSide, Event, Fsm, State};
use super::packet::Message;
use super::speaker::{lock, Command, SessionConfig, Shared, StateChange};
use conn::{Conn, Connecting};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};

struct Session {
    cfg: SessionConfig,
    fsm: Fsm,
    shared: Arc<Shared>,
    conn: Option<Conn>,
    connecting: Option<Connecting>,
    exports: watch::Receiver<Arc<ExportSet>>,
    /// Routes announced to the peer, with the attributes they were sent with.
    rib_out: AdjRibOut,
    /// Stopped by the operator (or disabled): no automatic restart, no incoming sessions.
    stopped: bool,
}

pub async fn run(
    mut desired: watch::Receiver<SessionConfig>,
    shared: Arc<Shared>,
    mut commands: mpsc::Receiver<Command>,
    exports: watch::Receiver<Arc<ExportSet>>,
) {
    let mut s = Session::new(desired.borrow_and_update().clone(), shared, exports);
    if !s.stopped {
        s.event(Event::ManualStart).await;
    }
    s.publish();
    loop {
        let deadline = s.fsm.next_deadline();
        let established = s.fsm.state() == State::Established;
        tokio::select! {
            cmd = commands.recv() => {
                if !s.on_command(cmd).await {
                    return;
                }
            }
            r = desired.changed() => {
                if !s.desired_changed(r.is_ok(), &mut desired, &mut commands).await {
                    return;
                }
            }
            r = conn::read(&mut s.conn) => s.received(r).await,
            r = conn::connect_done(&mut s.connecting) => {
                s.connecting = None;
                s.connected(r).await;
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                let actions = s.fsm.poll(Instant::now());
                s.act(actions).await;
            }
            r = s.exports.changed(), if established => {
                if r.is_ok() {
                    s.sync_routes(false).await;
                }
            }
        }
        s.publish();
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(d.into()).await;
    }
}

impl Session {
    fn new(
        cfg: SessionConfig,
        shared: Arc<Shared>,
        exports: watch::Receiver<Arc<ExportSet>>,
    ) -> Session {
        Session {
            fsm: Fsm::new(control::fsm_config(&cfg)),
            stopped: !cfg.f.enabled,
            cfg,
            shared,
            conn: None,
            connecting: None,
            exports,
            rib_out: AdjRibOut::default(),
        }
    }

    /// Copies the FSM's view into the shared live state. A new error goes in before the
    /// state change is announced, so a drop is recorded with the NOTIFICATION that caused it.
    fn publish(&mut self) {
        let state = self.fsm.state();
        let received = lock(&self.shared.rib).len() as u64;
        let mut live = lock(&self.shared.live);
        if let Some((side, n)) = self.fsm.take_new_error() {
            let dir = match side {
                ErrorSide::Sent => "sent",
                ErrorSide::Received => "received",
            };
            live.last_error = Some(format!("{dir}: {}", n.describe()));
        }
        if live.state != state || live.last_change.is_none() {
            if live.state != state {
                let _ = self.shared.changes.send(StateChange {
                    session_id: self.cfg.id,
                    name: self.cfg.f.name.clone(),
                    from: live.state,
                    to: state,
                    last_error: live.last_error.clone(),
                });
            }
            live.last_change = Some(crate::time::now());
            live.state = state;
        }
        live.established_at = if state == State::Established {
            Some(live.established_at.unwrap_or_else(crate::time::now))
        } else {
            None
        };
        live.hold_time = self
            .fsm
            .negotiated_hold_time()
            .filter(|_| matches!(state, State::OpenConfirm | State::Established));
        live.remote_id = self
            .conn
            .as_ref()
            .and_then(|c| c.peer.as_ref())
            .map(|o| o.bgp_id);
        live.prefixes_received = received;
        live.prefixes_sent = self.rib_out.len() as u64;
    }

    fn set_error(&self, e: String) {
        log::info!("bgp: session {}: {e}", self.cfg.f.name);
        lock(&self.shared.live).last_error = Some(e);
    }

    async fn event(&mut self, e: Event) {
        let actions = self.fsm.handle(Instant::now(), e);
        self.act(actions).await;
    }

    /// Carries out FSM actions; failures that are themselves events (a write error is a
    /// TCP failure) go back into the FSM in order.
    async fn act(&mut self, actions: Vec<Action>) {
        let mut queue = VecDeque::from(actions);
        while let Some(a) = queue.pop_front() {
            if let Some(e) = self.action(a).await {
                queue.extend(self.fsm.handle(Instant::now(), e));
            }
        }
    }

    async fn action(&mut self, a: Action) -> Option<Event> {
        match a {
            Action::Connect => {
                self.connecting = Some(self.connect());
                None
            }
            Action::SendOpen { hold_time } => {
                let open = super::open::our_open(self.cfg.local_as, hold_time, self.our_id());
                self.send(&Message::Open(open)).await
            }
            Action::SendKeepalive => self.send(&Message::Keepalive).await,
            Action::SendNotification(n) => {
                log::info!("bgp: session {}: sending {}", self.cfg.f.name, n.describe());
                // Best effort: the connection is dropped right after.
                let _ = self.send(&Message::Notification(n)).await;
                None
            }
            Action::Drop => {
                if let Some(conn) = self.conn.take() {
                    tokio::spawn(conn::close_gracefully(conn.stream));
                }
                self.connecting = None;
                None
            }
            Action::SessionUp { .. } => {
                log::info!("bgp: session {} established", self.cfg.f.name);
                self.publish();
                self.full_sync(true).await
            }
            Action::SessionDown { reason } => {
                log::info!("bgp: session {} down: {reason}", self.cfg.f.name);
                lock(&self.shared.rib).clear();
                lock(&self.shared.sent).clear();
                self.rib_out.clear();
                None
            }
            Action::ResendAnnouncements => self.full_sync(false).await,
        }
    }

    /// Our BGP identifier ([`super::open::our_id`]) on the current connection.
    fn our_id(&self) -> std::net::Ipv4Addr {
        let local = self.conn.as_ref().map(Conn::local_ip);
        super::open::our_id(self.cfg.router_id, local.or(self.cfg.f.local_address))
    }
}
