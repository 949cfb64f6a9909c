//! The operator's side: commands (start, stop, restart, refresh, a connection the peer
//! opened) and configuration changes, each turned into FSM events.
//!
//! Collisions (RFC 4271 §6.8) are resolved when a second connection arrives: in
//! Idle/Connect/Active the incoming one is taken; in OpenSent/OpenConfirm the one the
//! higher BGP identifier initiated survives (while the peer's identifier is still unknown
//! the incoming connection replaces our own); an Established session refuses newcomers
//! with Cease / Connection Collision Resolution.

use super::conn::{self, Conn};
use super::Session;
use crate::bgp::fsm::{self, Event, Fsm, State};
use crate::bgp::inbound;
use crate::bgp::speaker::{lock, Command, SessionConfig};
use crate::bgp::stop::{cease, Stop};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// Cease subcodes for connections we do not take (RFC 4486).
const CONNECTION_REJECTED: u8 = 5;
const COLLISION_RESOLUTION: u8 = 7;

pub(super) fn fsm_config(cfg: &SessionConfig) -> fsm::Config {
    fsm::Config {
        passive: cfg.f.passive,
        hold_time: cfg.f.hold_time,
        connect_retry: cfg.connect_retry,
        idle_hold: Duration::from_secs(5),
        idle_hold_max: Duration::from_secs(120),
    }
}

/// Fields whose change needs a new session (the rest apply softly).
fn needs_reset(a: &SessionConfig, b: &SessionConfig) -> bool {
    let (x, y) = (&a.f, &b.f);
    (
        x.neighbor,
        x.remote_as,
        x.hold_time,
        &x.password,
        x.local_address,
        x.local_port,
        x.remote_port,
        x.passive,
    ) != (
        y.neighbor,
        y.remote_as,
        y.hold_time,
        &y.password,
        y.local_address,
        y.local_port,
        y.remote_port,
        y.passive,
    ) || (a.local_as, a.router_id, a.connect_retry) != (b.local_as, b.router_id, b.connect_retry)
}

impl Session {
    /// One command from the queue; false when the task ends (service stop, session deleted,
    /// or the queue gone with the speaker's handle).
    pub(super) async fn on_command(&mut self, cmd: Option<Command>) -> bool {
        match cmd {
            Some(Command::Shutdown) => self.manual_stop(&Stop::ServiceStopping).await,
            None | Some(Command::Remove) => self.manual_stop(&Stop::Deleted).await,
            Some(cmd) => {
                self.command(cmd).await;
                return true;
            }
        }
        self.publish();
        false
    }

    /// The desired configuration changed (`changed`), or its sender is gone: the session
    /// was deleted (as a closed command queue). False when the task ends.
    pub(super) async fn desired_changed(
        &mut self,
        changed: bool,
        desired: &mut watch::Receiver<SessionConfig>,
        commands: &mut mpsc::Receiver<Command>,
    ) -> bool {
        // An action sends its command, then the configuration it implies (`stop`: the
        // Cease with the operator's text, then `enabled = false`): commands queued before
        // this change go first, as they were sent.
        while let Ok(cmd) = commands.try_recv() {
            if !self.on_command(Some(cmd)).await {
                return false;
            }
        }
        if !changed {
            self.on_command(None).await;
            return false;
        }
        // Applied softly where possible, else a reset.
        let cfg = desired.borrow_and_update().clone();
        self.configure(cfg).await;
        true
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Start => {
                self.stopped = false;
                if self.fsm.state() == State::Idle {
                    self.event(Event::ManualStart).await;
                }
            }
            Command::Stop(msg) => {
                self.stopped = true;
                self.manual_stop(&Stop::Operator(msg)).await;
            }
            Command::Restart(msg) => {
                self.manual_stop(&Stop::Restart(msg)).await;
                self.stopped = false;
                self.event(Event::ManualStart).await;
            }
            Command::Refresh => self.refresh().await,
            Command::Incoming(stream) => self.incoming(stream).await,
            // Handled by `on_command`.
            Command::Shutdown | Command::Remove => {}
        }
    }

    async fn manual_stop(&mut self, why: &Stop) {
        let notification = cease(why);
        self.event(Event::ManualStop { notification }).await;
        self.conn = None;
        self.connecting = None;
    }

    pub(super) async fn configure(&mut self, cfg: SessionConfig) {
        let reset = needs_reset(&self.cfg, &cfg);
        let enabled = cfg.f.enabled;
        self.cfg = cfg;
        if !enabled {
            if !self.stopped {
                self.stopped = true;
                self.manual_stop(&Stop::Disabled).await;
            }
            return;
        }
        if reset || self.stopped {
            if self.fsm.state() != State::Idle {
                self.manual_stop(&Stop::Reconfigured).await;
            }
            self.fsm = Fsm::new(fsm_config(&self.cfg));
            self.stopped = false;
            self.event(Event::ManualStart).await;
        } else if self.fsm.state() == State::Established {
            // A lower prefix limit applies at once to what the peer already sent.
            let received = lock(&self.shared.rib).len();
            let max = self.cfg.f.max_prefixes;
            if inbound::over_limit(received, max) {
                let e = self.prefix_limit_reached(inbound::max_prefix_cease(None, max));
                self.event(e).await;
                return;
            }
            // Next hop or AS changes: send our routes again where they differ.
            self.sync_routes(false).await;
        }
    }

    /// A connection the peer opened (see the collision rules in the module doc).
    async fn incoming(&mut self, stream: TcpStream) {
        let Some(new) = Conn::new(stream, false) else {
            return;
        };
        if self.stopped {
            conn::refuse(new, CONNECTION_REJECTED).await;
            return;
        }
        match self.fsm.state() {
            State::Idle | State::Connect | State::Active => {
                if self.fsm.state() == State::Idle {
                    self.event(Event::ManualStart).await;
                }
                self.take(new).await;
            }
            State::OpenSent | State::OpenConfirm if self.incoming_wins() => {
                // The FSM sends the Cease on the old connection and drops it (Event 23).
                self.event(Event::CollisionDump).await;
                self.take(new).await;
            }
            State::OpenSent | State::OpenConfirm | State::Established => {
                conn::refuse(new, COLLISION_RESOLUTION).await;
            }
        }
    }

    /// In a collision, whether the peer's new connection replaces ours: unless ours is the
    /// one we initiated and our identifier is the higher (RFC 4271 §6.8); while the peer's
    /// identifier is unknown, the newcomer wins.
    fn incoming_wins(&self) -> bool {
        let ours = self.our_id();
        self.conn.as_ref().is_none_or(|c| {
            c.outgoing
                && c.peer
                    .as_ref()
                    .is_none_or(|o| !fsm::keep_locally_initiated(ours, o.bgp_id))
        })
    }

    /// Makes `new` the session's connection (an outgoing attempt is abandoned).
    async fn take(&mut self, new: Conn) {
        self.connecting = None;
        self.conn = Some(new);
        self.event(Event::TcpConnected).await;
    }
}
