//! BGP-4 finite state machine (RFC 4271 §8), one per configured peer.
//!
//! The FSM is pure: it does no I/O and never reads the clock. The I/O layer turns sockets,
//! decoded messages and timers into [`Event`]s, calls [`Fsm::handle`] / [`Fsm::poll`] with
//! the current [`Instant`], and executes the returned [`Action`]s in order. It arranges to
//! call [`Fsm::poll`] at [`Fsm::next_deadline`] (recomputed after every call, since any call
//! may move it) and calls [`Fsm::message_sent`] whenever it writes a KEEPALIVE or UPDATE.
//!
//! Simplifications of RFC 4271 §8.2.2: DelayOpen, DampPeerOscillations,
//! SendNOTIFICATIONwithoutOPEN and collision detection in Established are not implemented
//! (a connection arriving while Established is refused by the caller).
//!
//! # States
//! - `Idle`: no connection; the caller refuses incoming connections. Left on `ManualStart`, or
//!   by the automatic restart that follows an error once the idle hold timer expires.
//! - `Connect`: our outgoing TCP connection is in progress. The caller also accepts incoming
//!   connections in every state but `Idle`; whichever connection comes first is reported
//!   with `TcpConnected` (the caller abandons the other one).
//! - `Active`: waiting for the peer to connect. Unless passive, the ConnectRetryTimer is
//!   running and sends us back to `Connect` when it expires.
//! - `OpenSent`: TCP up, our OPEN sent, waiting for the peer's OPEN.
//! - `OpenConfirm`: OPENs exchanged, our KEEPALIVE sent, waiting for the peer's KEEPALIVE.
//! - `Established`: UPDATEs flow.
//!
//! # Timers (each runs only in the states listed)
//! - ConnectRetryTimer (`Config::connect_retry`), `Connect`/`Active`, never when passive:
//!   expiry (Event 9) starts a new connection attempt.
//! - HoldTimer, `OpenSent` (4 minutes) and `OpenConfirm`/`Established` (the negotiated hold
//!   time, restarted by every KEEPALIVE, UPDATE or ROUTE-REFRESH received in Established):
//!   expiry (Event 10) sends NOTIFICATION Hold Timer Expired and ends the session.
//! - KeepaliveTimer, `OpenConfirm`/`Established` (negotiated hold time / 3, at least 1 s):
//!   expiry (Event 11) asks for a KEEPALIVE; `message_sent` pushes it back, since a KEEPALIVE
//!   is only needed when nothing else was sent (RFC 4271 §4.4).
//!   A negotiated hold time of 0 runs neither HoldTimer nor KeepaliveTimer (RFC 4271 §4.2).
//! - Idle hold timer, `Idle` only: after an error the FSM restarts by itself (Event 3,
//!   AutomaticStart) after `Config::idle_hold`, doubled for each consecutive failure up to
//!   `Config::idle_hold_max`. The delay returns to `idle_hold` when a session had stayed
//!   Established for longer than max(negotiated hold time, 60 s), and on `ManualStop`.
//!
//! # Actions: what the caller must do
//! - `Connect`: start a TCP connection to the peer; report `TcpConnected` or `TcpFailed`.
//! - `SendOpen { hold_time }`: send our OPEN proposing this hold time.
//! - `SendKeepalive`: send a KEEPALIVE.
//! - `SendNotification(n)`: send it, then close; it is always followed by `Drop`.
//! - `Drop`: close the connection or abort the connection attempt. It is emitted whenever
//!   the FSM leaves a state that has one, even if the caller already saw it fail, so treat
//!   it as idempotent. In `Idle` it answers a `TcpConnected` that should not have happened.
//! - `SessionUp { hold_time, keepalive }`: entered Established; send our routes and
//!   End-of-RIB.
//! - `SessionDown { reason }`: left Established; clear the peer's Adj-RIB-In, its prefix
//!   count is 0. `SessionUp` and `SessionDown` strictly alternate, starting with `SessionUp`.
//! - `ResendAnnouncements`: ROUTE-REFRESH received; send our Adj-RIB-Out again.
//!
//! # Connection collision (RFC 4271 §6.8)
//! The FSM owns one connection. In `Connect`/`Active`, an incoming connection is simply
//! reported with `TcpConnected`. A second connection arriving in `OpenSent`/`OpenConfirm` is
//! handled by the caller outside the FSM: it does not send our OPEN on it but reads the
//! peer's OPEN from it. Once the peer's BGP Identifier is known (from an OPEN on either
//! connection), [`keep_locally_initiated`] says which survives: the connection initiated by
//! the speaker with the higher BGP Identifier. If the FSM's connection survives, the caller
//! sends Cease / Connection Collision Resolution (6/7) on the new one and closes it. If the
//! new one survives, the caller gives the FSM [`Event::CollisionDump`] (the FSM sends the
//! Cease on its connection, drops it and goes back to `Active` without any backoff), then
//! reports the new connection with `TcpConnected` (the FSM asks for our OPEN on it) and
//! feeds the OPEN it already read. In `Established` a new connection is refused.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::bgp::packet::{Notification, CEASE, FSM_ERROR, HOLD_TIMER_EXPIRED, OPEN_MESSAGE_ERROR};

#[cfg(test)]
mod tests;

/// HoldTimer value while waiting for the peer's OPEN (RFC 4271 §8.2.2 suggests 4 minutes).
const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);
/// A session must stay Established longer than this (or its hold time, if longer) before
/// the automatic restart backoff is reset.
const MIN_STABLE_TIME: Duration = Duration::from_secs(60);
/// Shortest ConnectRetryTime accepted: a zero one would make `poll` spin.
const MIN_CONNECT_RETRY: Duration = Duration::from_secs(1);
/// OPEN Message Error subcode (RFC 4271 §6.2).
const UNACCEPTABLE_HOLD_TIME: u8 = 6;
/// Cease subcode (RFC 4486).
const CONNECTION_COLLISION_RESOLUTION: u8 = 7;

/// The six states of RFC 4271 §8.2.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl State {
    /// The status string of the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Connect => "connect",
            State::Active => "active",
            State::OpenSent => "opensent",
            State::OpenConfirm => "openconfirm",
            State::Established => "established",
        }
    }

    /// States in which a BGP connection (TCP up, our OPEN sent) exists.
    fn connected(self) -> bool {
        matches!(
            self,
            State::OpenSent | State::OpenConfirm | State::Established
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who sent the NOTIFICATION recorded by [`Fsm::last_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSide {
    Sent,
    Received,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Never connect out; wait for the peer in `Active`.
    pub passive: bool,
    /// The hold time proposed in our OPEN: 0 or 3..=65535 (1 and 2 are raised to 3, which
    /// the peer would otherwise reject).
    pub hold_time: u16,
    /// ConnectRetryTime (at least 1 s).
    pub connect_retry: Duration,
    /// First delay before the automatic restart after an error.
    pub idle_hold: Duration,
    /// Upper bound of the doubled delay (raised to `idle_hold` if smaller).
    pub idle_hold_max: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            passive: false,
            hold_time: 90,
            connect_retry: Duration::from_secs(30),
            idle_hold: Duration::from_secs(5),
            idle_hold_max: Duration::from_secs(120),
        }
    }
}

/// Inputs of the FSM, named after the RFC 4271 §8.1 events they stand for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Event 1 (Event 5 when passive).
    ManualStart,
    /// Event 2; the Cease to send (admin shutdown, or admin reset with a message).
    ManualStop { notification: Notification },
    /// Events 16/17: our connection succeeded, or an incoming one was accepted.
    TcpConnected,
    /// Event 18: the connection attempt failed, or the connection closed or was reset.
    TcpFailed,
    /// Event 19: an OPEN whose AS, BGP Identifier and capabilities the caller accepted; the
    /// FSM checks the hold time.
    OpenReceived { hold_time: u16 },
    /// Event 22: the caller rejected the OPEN (Bad Peer AS, Bad BGP Identifier, ...).
    OpenRejected { notification: Notification },
    /// Events 21/22/28: a message that could not be decoded and resets the session.
    MessageError { notification: Notification },
    /// Events 24/25.
    NotificationReceived { notification: Notification },
    /// Event 26.
    KeepaliveReceived,
    /// Event 27, including RFC 7606 treat-as-withdraw UPDATEs (not an error).
    UpdateReceived,
    /// ROUTE-REFRESH (RFC 2918).
    RouteRefreshReceived,
    /// An error found by the caller (max-prefix exceeded: Cease subcode 1). With
    /// `auto_restart: false` the FSM stays Idle until the next `ManualStart`.
    LocalError {
        notification: Notification,
        auto_restart: bool,
    },
    /// Event 23 (OpenCollisionDump): the caller resolved a collision against the FSM's
    /// connection (see the module doc). Ignored outside `OpenSent`/`OpenConfirm`.
    CollisionDump,
}

/// Outputs of the FSM; see the module doc for what the caller does with each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Connect,
    SendOpen { hold_time: u16 },
    SendKeepalive,
    SendNotification(Notification),
    Drop,
    SessionUp { hold_time: u16, keepalive: u16 },
    SessionDown { reason: String },
    ResendAnnouncements,
}

/// How a session ends on the error path.
enum Cause {
    /// We send this NOTIFICATION, if a connection exists to carry it.
    Sent(Notification),
    Received(Notification),
    /// The TCP connection closed under us.
    Closed,
}

#[derive(Debug)]
pub struct Fsm {
    config: Config,
    state: State,
    /// ConnectRetryTimer deadline (`Connect`/`Active`, never when passive).
    connect_retry: Option<Instant>,
    /// HoldTimer deadline (`OpenSent`/`OpenConfirm`/`Established`).
    hold: Option<Instant>,
    /// KeepaliveTimer deadline (`OpenConfirm`/`Established`, hold time not 0).
    keepalive: Option<Instant>,
    /// Automatic restart deadline (`Idle`).
    restart: Option<Instant>,
    /// Delay of the next automatic restart.
    idle_hold: Duration,
    negotiated: Option<u16>,
    last_error: Option<(ErrorSide, Notification)>,
    /// `last_error` was recorded after the last [`Fsm::take_new_error`].
    error_unread: bool,
    established_since: Option<Instant>,
    last_change: Option<Instant>,
}

impl Fsm {
    /// Starts Idle, with no timer running, until `ManualStart`.
    pub fn new(mut config: Config) -> Fsm {
        if config.hold_time == 1 || config.hold_time == 2 {
            config.hold_time = 3;
        }
        config.connect_retry = config.connect_retry.max(MIN_CONNECT_RETRY);
        config.idle_hold_max = config.idle_hold_max.max(config.idle_hold);
        Fsm {
            idle_hold: config.idle_hold,
            config,
            state: State::Idle,
            connect_retry: None,
            hold: None,
            keepalive: None,
            restart: None,
            negotiated: None,
            last_error: None,
            error_unread: false,
            established_since: None,
            last_change: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The hold time agreed with the peer, in `OpenConfirm` and `Established`.
    pub fn negotiated_hold_time(&self) -> Option<u16> {
        self.negotiated
    }

    /// The last NOTIFICATION sent or received, kept across restarts.
    pub fn last_error(&self) -> Option<&(ErrorSide, Notification)> {
        self.last_error.as_ref()
    }

    /// The NOTIFICATION recorded since the previous call, once: every error is reported
    /// exactly once, even when a peer repeats the same one.
    pub fn take_new_error(&mut self) -> Option<&(ErrorSide, Notification)> {
        std::mem::take(&mut self.error_unread)
            .then_some(self.last_error.as_ref())
            .flatten()
    }

    fn record_error(&mut self, side: ErrorSide, n: Notification) {
        self.last_error = Some((side, n));
        self.error_unread = true;
    }

    pub fn established_since(&self) -> Option<Instant> {
        self.established_since
    }

    /// When the state last changed; None before the first change.
    pub fn last_change(&self) -> Option<Instant> {
        self.last_change
    }

    /// When an Idle FSM will restart by itself, if it will.
    pub fn auto_restart_at(&self) -> Option<Instant> {
        self.restart
    }

    /// The earliest instant at which `poll` has something to do, or None.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.connect_retry, self.hold, self.keepalive, self.restart]
            .into_iter()
            .flatten()
            .min()
    }

    /// The caller sent a KEEPALIVE or UPDATE: the next KEEPALIVE is due one keepalive
    /// interval from now (RFC 4271 §4.4).
    pub fn message_sent(&mut self, now: Instant) {
        if self.keepalive.is_some() {
            self.keepalive = now.checked_add(self.keepalive_interval());
        }
    }

    /// Fires every timer due at `now` (deadline <= now). Afterwards `next_deadline` is
    /// later than `now`. A late call fires each timer once and restarts it from `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        // Every timer fired restarts later than `now` or stops, so this ends after a few
        // rounds (hold expiry → restart with a zero idle hold → connect); the bound is only
        // a guard.
        for _ in 0..8 {
            if !self.fire_one(now, &mut out) {
                break;
            }
        }
        out
    }

    fn fire_one(&mut self, now: Instant, out: &mut Vec<Action>) -> bool {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if due(self.hold) {
            // Event 10: HoldTimer_Expires. Checked before the keepalive timer: if both are
            // due, the session is over and a KEEPALIVE would be pointless.
            let n = Notification::new(HOLD_TIMER_EXPIRED, 0);
            self.go_idle(now, Cause::Sent(n), true, out);
        } else if due(self.keepalive) {
            // Event 11: KeepaliveTimer_Expires.
            out.push(Action::SendKeepalive);
            self.keepalive = now.checked_add(self.keepalive_interval());
        } else if due(self.connect_retry) {
            // Event 9: ConnectRetryTimer_Expires.
            self.connect_retry = None;
            match self.state {
                State::Connect => {
                    // The attempt is taking too long: abandon it and try again.
                    out.push(Action::Drop);
                    self.connect(now, out);
                }
                State::Active if !self.config.passive => {
                    self.connect(now, out);
                    self.set_state(now, State::Connect);
                }
                // Passive peers only wait; the timer never runs for them.
                _ => {}
            }
        } else if due(self.restart) {
            // Event 3: AutomaticStart, after the idle hold time.
            self.start(now, out);
        } else {
            return false;
        }
        true
    }

    /// The transition function: one event, the actions it calls for.
    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        use State::*;
        let mut out = Vec::new();
        match (self.state, event) {
            // Event 2: ManualStop, in every state. An operator stop ends any flapping
            // history, so the backoff starts over.
            (_, Event::ManualStop { notification }) => {
                self.go_idle(now, Cause::Sent(notification), false, &mut out);
                self.idle_hold = self.config.idle_hold;
            }
            // Event 1/5: ManualStart. In Idle it also cuts short a pending automatic
            // restart: the operator asked for it.
            (Idle, Event::ManualStart) => self.start(now, &mut out),
            // RFC 4271 §8.2.2: ignored in every other state.
            (_, Event::ManualStart) => {}

            // Idle refuses connections; one reported anyway is closed.
            (Idle, Event::TcpConnected) => out.push(Action::Drop),
            // Idle has no connection, so any other event is stale.
            (Idle, _) => {}

            // Events 16/17: Tcp_CR_Acked / TcpConnectionConfirmed.
            (Connect | Active, Event::TcpConnected) => {
                self.connect_retry = None;
                self.hold = now.checked_add(OPEN_HOLD_TIME);
                out.push(Action::SendOpen {
                    hold_time: self.config.hold_time,
                });
                self.set_state(now, OpenSent);
            }
            // Event 18: TcpConnectionFails. Wait for the peer and retry when the timer
            // (started with the attempt) expires, as most implementations do (the RFC,
            // without DelayOpen, goes to Idle).
            (Connect, Event::TcpFailed) => {
                out.push(Action::Drop);
                if self.connect_retry.is_none() {
                    self.connect_retry = now.checked_add(self.config.connect_retry);
                }
                self.set_state(now, Active);
            }
            (
                Connect | Active,
                Event::LocalError {
                    notification,
                    auto_restart,
                },
            ) => self.go_idle(now, Cause::Sent(notification), auto_restart, &mut out),
            // No BGP connection exists in Connect/Active, so a message event (or a failure
            // in Active) can only come from a connection already dropped: ignore it rather
            // than reset (the RFC goes to Idle).
            (Connect | Active, _) => {}

            // A second connection is the caller's business (collision, see module doc).
            (OpenSent | OpenConfirm | Established, Event::TcpConnected) => {}

            // Event 19: BGPOpen.
            (OpenSent, Event::OpenReceived { hold_time }) => {
                self.open_received(now, hold_time, &mut out)
            }
            // Event 18 in OpenSent: the peer often closes when it dislikes our OPEN without
            // saying why; wait for it or retry later, like RFC 4271 says.
            (OpenSent, Event::TcpFailed) => self.back_to_active(now, None, &mut out),
            // Event 23: OpenCollisionDump.
            (OpenSent | OpenConfirm, Event::CollisionDump) => {
                let n = Notification::new(CEASE, CONNECTION_COLLISION_RESOLUTION);
                self.back_to_active(now, Some(n), &mut out)
            }
            // Not implemented in Established: the caller refuses new connections there.
            (Established, Event::CollisionDump) => {}

            // Event 18 once OPENs are exchanged: the session is lost.
            (OpenConfirm | Established, Event::TcpFailed) => {
                self.go_idle(now, Cause::Closed, true, &mut out)
            }
            // Events 21/22/28.
            (OpenSent, Event::OpenRejected { notification })
            | (OpenSent | OpenConfirm | Established, Event::MessageError { notification }) => {
                self.go_idle(now, Cause::Sent(notification), true, &mut out)
            }
            (
                OpenSent | OpenConfirm | Established,
                Event::LocalError {
                    notification,
                    auto_restart,
                },
            ) => self.go_idle(now, Cause::Sent(notification), auto_restart, &mut out),
            // Events 24/25: NotifMsgVerErr / NotifMsg. Restart even on Cease/Administrative
            // Shutdown: the peer may come back, and the backoff keeps retries rare.
            (
                OpenSent | OpenConfirm | Established,
                Event::NotificationReceived { notification },
            ) => self.go_idle(now, Cause::Received(notification), true, &mut out),

            // Event 26 in OpenConfirm.
            (OpenConfirm, Event::KeepaliveReceived) => {
                let hold_time = self.negotiated.unwrap_or(0);
                self.established_since = Some(now);
                self.restart_hold(now);
                out.push(Action::SessionUp {
                    hold_time,
                    keepalive: keepalive_secs(hold_time),
                });
                self.set_state(now, Established);
            }
            // Events 26/27 in Established.
            (Established, Event::KeepaliveReceived | Event::UpdateReceived) => {
                self.restart_hold(now)
            }
            (Established, Event::RouteRefreshReceived) => {
                self.restart_hold(now);
                out.push(Action::ResendAnnouncements);
            }

            // A message the state does not expect: FSM Error (RFC 4271 §6.6, subcodes from
            // RFC 6608). An OPEN in OpenConfirm/Established is unexpected whether or not
            // the caller validated it.
            (
                OpenSent,
                Event::KeepaliveReceived | Event::UpdateReceived | Event::RouteRefreshReceived,
            )
            | (
                OpenConfirm,
                Event::OpenReceived { .. }
                | Event::OpenRejected { .. }
                | Event::UpdateReceived
                | Event::RouteRefreshReceived,
            )
            | (Established, Event::OpenReceived { .. } | Event::OpenRejected { .. }) => {
                let subcode = match self.state {
                    OpenSent => 1,
                    OpenConfirm => 2,
                    _ => 3,
                };
                let n = Notification::new(FSM_ERROR, subcode);
                self.go_idle(now, Cause::Sent(n), true, &mut out)
            }
        }
        out
    }

    /// Event 1/3/5: ManualStart or AutomaticStart from Idle.
    fn start(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.restart = None;
        if self.config.passive {
            self.set_state(now, State::Active);
        } else {
            self.connect(now, out);
            self.set_state(now, State::Connect);
        }
    }

    /// Starts a connection attempt and the ConnectRetryTimer.
    fn connect(&mut self, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::Connect);
        self.connect_retry = now.checked_add(self.config.connect_retry);
    }

    fn open_received(&mut self, now: Instant, hold_time: u16, out: &mut Vec<Action>) {
        // RFC 4271 §6.2: a hold time of 1 or 2 seconds must be rejected.
        if hold_time == 1 || hold_time == 2 {
            let n = Notification::new(OPEN_MESSAGE_ERROR, UNACCEPTABLE_HOLD_TIME);
            self.go_idle(now, Cause::Sent(n), true, out);
            return;
        }
        let negotiated = self.config.hold_time.min(hold_time);
        self.negotiated = Some(negotiated);
        out.push(Action::SendKeepalive);
        if negotiated == 0 {
            // RFC 4271 §4.2: no KEEPALIVEs, no hold timer.
            self.hold = None;
            self.keepalive = None;
        } else {
            self.hold = now.checked_add(secs(negotiated));
            self.keepalive = now.checked_add(self.keepalive_interval());
        }
        self.set_state(now, State::OpenConfirm);
    }

    /// Leaves OpenSent/OpenConfirm for Active without counting a failure: the connection is
    /// gone but the peer is not at fault (or is expected to connect again).
    fn back_to_active(&mut self, now: Instant, send: Option<Notification>, out: &mut Vec<Action>) {
        if let Some(n) = send {
            out.push(Action::SendNotification(n.clone()));
            self.record_error(ErrorSide::Sent, n);
        }
        out.push(Action::Drop);
        self.hold = None;
        self.keepalive = None;
        self.negotiated = None;
        self.connect_retry = if self.config.passive {
            None
        } else {
            now.checked_add(self.config.connect_retry)
        };
        self.set_state(now, State::Active);
    }

    /// The error path (and ManualStop): closes whatever exists, reports the end of an
    /// Established session, goes Idle and schedules the automatic restart if asked.
    fn go_idle(&mut self, now: Instant, cause: Cause, auto_restart: bool, out: &mut Vec<Action>) {
        let reason = match &cause {
            Cause::Sent(n) => format!("sent NOTIFICATION: {}", describe(n)),
            Cause::Received(n) => format!("received NOTIFICATION: {}", describe(n)),
            Cause::Closed => "connection closed".to_string(),
        };
        match cause {
            // A NOTIFICATION needs a BGP connection to be sent on.
            Cause::Sent(n) if self.state.connected() => {
                out.push(Action::SendNotification(n.clone()));
                self.record_error(ErrorSide::Sent, n);
            }
            Cause::Received(n) => self.record_error(ErrorSide::Received, n),
            _ => {}
        }
        if self.state.connected() || self.state == State::Connect {
            out.push(Action::Drop);
        }
        if self.state == State::Established {
            out.push(Action::SessionDown { reason });
            if let Some(since) = self.established_since {
                let hold = secs(self.negotiated.unwrap_or(0));
                if now.saturating_duration_since(since) > hold.max(MIN_STABLE_TIME) {
                    self.idle_hold = self.config.idle_hold;
                }
            }
        }
        self.connect_retry = None;
        self.hold = None;
        self.keepalive = None;
        self.negotiated = None;
        self.established_since = None;
        self.restart = if auto_restart {
            let at = now.checked_add(self.idle_hold);
            self.idle_hold = self
                .idle_hold
                .saturating_mul(2)
                .min(self.config.idle_hold_max);
            at
        } else {
            None
        };
        self.set_state(now, State::Idle);
    }

    fn restart_hold(&mut self, now: Instant) {
        match self.negotiated {
            Some(h) if h > 0 => self.hold = now.checked_add(secs(h)),
            _ => self.hold = None,
        }
    }

    fn keepalive_interval(&self) -> Duration {
        secs(keepalive_secs(self.negotiated.unwrap_or(0)).max(1))
    }

    fn set_state(&mut self, now: Instant, state: State) {
        if state != self.state {
            self.state = state;
            self.last_change = Some(now);
        }
    }
}

/// RFC 4271 §6.8 connection collision: given our and the peer's BGP Identifier, whether the
/// connection initiated by the local side is kept (local id > remote id, compared as u32);
/// otherwise the one the peer initiated is kept. Equal identifiers give false: RFC 6286
/// then compares AS numbers, and between iBGP peers the OPEN should have been rejected
/// (Bad BGP Identifier).
pub fn keep_locally_initiated(local_id: Ipv4Addr, remote_id: Ipv4Addr) -> bool {
    u32::from(local_id) > u32::from(remote_id)
}

fn secs(s: u16) -> Duration {
    Duration::from_secs(u64::from(s))
}

/// KEEPALIVE interval for a negotiated hold time: a third of it, at least 1 s, 0 for none.
fn keepalive_secs(hold_time: u16) -> u16 {
    if hold_time == 0 {
        0
    } else {
        (hold_time / 3).max(1)
    }
}

/// "cease: administrative shutdown (6/2): going down for maintenance", for the API.
fn describe(n: &Notification) -> String {
    let code = match n.code {
        1 => "message header error",
        2 => "OPEN message error",
        3 => "UPDATE message error",
        4 => "hold timer expired",
        5 => "finite state machine error",
        6 => "cease",
        7 => "ROUTE-REFRESH message error",
        _ => "unknown error",
    };
    let cease = match (n.code, n.subcode) {
        (CEASE, 1) => ": maximum number of prefixes reached",
        (CEASE, 2) => ": administrative shutdown",
        (CEASE, 3) => ": peer de-configured",
        (CEASE, 4) => ": administrative reset",
        (CEASE, 5) => ": connection rejected",
        (CEASE, 6) => ": other configuration change",
        (CEASE, 7) => ": connection collision resolution",
        (CEASE, 8) => ": out of resources",
        (CEASE, 9) => ": hard reset",
        _ => "",
    };
    let mut s = format!("{code}{cease} ({}/{})", n.code, n.subcode);
    if let Some(msg) = shutdown_communication(n) {
        s.push_str(": ");
        s.push_str(&msg);
    }
    s
}

/// RFC 9003 shutdown communication of an administrative shutdown or reset: a length byte
/// then that many bytes of UTF-8. Control characters are dropped (the text goes to logs and
/// the API); anything malformed is ignored.
fn shutdown_communication(n: &Notification) -> Option<String> {
    if n.code != CEASE || !(n.subcode == 2 || n.subcode == 4) {
        return None;
    }
    let (&len, rest) = n.data.split_first()?;
    let text = std::str::from_utf8(rest.get(..usize::from(len))?).ok()?;
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    (!text.is_empty()).then_some(text)
}
