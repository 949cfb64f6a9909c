//! Received bytes → messages → FSM events. The OPEN is judged by [`crate::bgp::open`],
//! an UPDATE by [`crate::bgp::inbound`]; this file only carries out what they say.

use super::Session;
use crate::bgp::fsm::{Event, State};
use crate::bgp::inbound;
use crate::bgp::open::{check_open, Rejected};
use crate::bgp::packet::{self as pkt, Message, Open, Update};
use crate::bgp::speaker::lock;

impl Session {
    pub(super) async fn received(&mut self, r: std::io::Result<usize>) {
        let why = match r {
            Ok(0) => "connection closed by the peer".to_string(),
            Err(e) => format!("read: {e}"),
            Ok(_) => return self.drain().await,
        };
        self.set_error(why);
        self.conn = None;
        self.event(Event::TcpFailed).await;
    }

    /// Handles every whole message in the buffer.
    async fn drain(&mut self) {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            let decoded = match pkt::frame(&conn.buf) {
                Ok(None) => return,
                Ok(Some(len)) => {
                    let m = pkt::decode(&conn.buf[..len], &conn.ctx);
                    conn.buf.drain(..len);
                    m
                }
                Err(n) => Err(n),
            };
            match decoded {
                Ok(m) => self.message(m).await,
                Err(notification) => {
                    self.event(Event::MessageError { notification }).await;
                    return;
                }
            }
        }
    }

    async fn message(&mut self, m: Message) {
        match m {
            Message::Open(o) => {
                let e = self.open_received(o);
                self.event(e).await;
            }
            Message::Keepalive => self.event(Event::KeepaliveReceived).await,
            Message::Update(u) => {
                self.event(Event::UpdateReceived).await;
                if self.fsm.state() == State::Established {
                    if let Some(e) = self.update_received(u) {
                        self.event(e).await;
                    }
                }
            }
            Message::Notification(notification) => {
                log::info!(
                    "bgp: session {}: received {}",
                    self.cfg.f.name,
                    notification.describe()
                );
                self.event(Event::NotificationReceived { notification })
                    .await;
            }
            Message::RouteRefresh(_) => self.event(Event::RouteRefreshReceived).await,
        }
    }

    /// The peer's OPEN as [`check_open`] judges it; accepted, it settles the connection's
    /// codec context. The FSM checks the hold time.
    fn open_received(&mut self, o: Open) -> Event {
        let our_id = self.our_id();
        if let Err(why) = check_open(&o, self.cfg.f.remote_as, our_id) {
            // The FSM records the NOTIFICATION as the error; a wrong AS deserves the detail.
            if matches!(why, Rejected::BadPeerAs { .. }) {
                self.set_error(why.to_string());
            }
            return Event::OpenRejected {
                notification: why.notification(),
            };
        }
        let hold_time = o.hold_time;
        let Some(conn) = self.conn.as_mut() else {
            return Event::TcpFailed;
        };
        conn.ctx.four_octet_as = o.four_octet_as().is_some();
        conn.peer = Some(o);
        Event::OpenReceived { hold_time }
    }

    /// Applies an UPDATE to the Adj-RIB-In as [`inbound::inbound`] says; an event when
    /// the prefix limit is exceeded.
    fn update_received(&mut self, u: Update) -> Option<Event> {
        let local_ip = self.conn.as_ref().map(|c| c.local_ip());
        let plan = inbound::inbound(&u, self.cfg.local_as, self.cfg.f.remote_as, local_ip);
        for why in &plan.ignored {
            let name = &self.cfg.f.name;
            log::info!("bgp: session {name}: {why} (treat-as-withdraw)");
        }
        let applied = inbound::apply(plan, &mut lock(&self.shared.rib), self.cfg.f.max_prefixes);
        applied.err().map(|cease| self.prefix_limit_reached(cease))
    }

    /// Ends the session with `cease` (Maximum Number of Prefixes Reached); it stays down
    /// until it is started again or its limit changes.
    pub(super) fn prefix_limit_reached(&mut self, cease: pkt::Notification) -> Event {
        let max = self.cfg.f.max_prefixes;
        self.set_error(format!(
            "the peer sent more than max_prefixes ({max}) routes; session stopped \
             (start or restart it after raising the limit)"
        ));
        self.stopped = true;
        Event::LocalError {
            notification: cease,
            auto_restart: false,
        }
    }
}
