//! Our routes to the peer: what [`crate::bgp::adj_rib_out`] computes, written to the
//! socket; and the ROUTE-REFRESH we send on `reload`.

use super::conn::Conn;
use super::Session;
use crate::bgp::adj_rib_out::{self, Peer};
use crate::bgp::fsm::{Event, State};
use crate::bgp::packet::{self as pkt, Message, AFI_IPV4, AFI_IPV6, SAFI_UNICAST};
use crate::bgp::speaker::lock;

impl Session {
    /// Sends everything we announce again (session up, route refresh, next hop changes);
    /// End-of-RIB after the initial announcement.
    pub(super) async fn full_sync(&mut self, initial: bool) -> Option<Event> {
        self.rib_out.clear();
        if let Some(e) = self.send_changes().await {
            return Some(e);
        }
        if !initial {
            return None;
        }
        let conn = self.conn.as_ref()?;
        let msgs = adj_rib_out::end_of_rib(conn.families(), &conn.ctx);
        self.write(&msgs).await
    }

    pub(super) async fn sync_routes(&mut self, full: bool) {
        let e = if full {
            self.full_sync(false).await
        } else {
            self.send_changes().await
        };
        if let Some(e) = e {
            self.event(e).await;
        }
    }

    /// Sends the difference between what the peer has from us and what the export set
    /// says it should have.
    async fn send_changes(&mut self) -> Option<Event> {
        let exports = self.exports.borrow_and_update().clone();
        let conn = self.conn.as_ref()?;
        let peer = self.peer(conn);
        let want = adj_rib_out::wanted(&exports, &peer);
        if want.no_v6_hop {
            self.set_error(
                "IPv6 routes not sent: the session runs over IPv4 and has no next_hop_ipv6".into(),
            );
        }
        let msgs = self.rib_out.updates(&want.routes, &peer, &conn.ctx);
        if msgs.is_empty() {
            return None;
        }
        if let Some(e) = self.write(&msgs).await {
            return Some(e);
        }
        self.rib_out.sent(want.routes);
        *lock(&self.shared.sent) = self.rib_out.prefixes().collect();
        None
    }

    /// What the Adj-RIB-Out needs to know about this session on `conn`.
    fn peer(&self, conn: &Conn) -> Peer {
        Peer {
            session_id: self.cfg.id,
            local_as: self.cfg.local_as,
            remote_as: self.cfg.f.remote_as,
            families: conn.families(),
            local_ip: conn.local_ip(),
            next_hop_ipv6: self.cfg.f.next_hop_ipv6,
        }
    }

    /// `reload`: ask the peer for its routes again (if it can refresh) and send ours again.
    pub(super) async fn refresh(&mut self) {
        if self.fsm.state() != State::Established {
            return;
        }
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        let f = conn.families();
        let mut msgs = Vec::new();
        if conn.peer.as_ref().is_some_and(pkt::Open::route_refresh) {
            for (on, afi) in [(f.ipv4, AFI_IPV4), (f.ipv6, AFI_IPV6)] {
                if on {
                    let mut b = Vec::new();
                    let rr = pkt::RouteRefresh {
                        afi,
                        safi: SAFI_UNICAST,
                        subtype: 0,
                    };
                    Message::RouteRefresh(rr).encode(&conn.ctx, &mut b);
                    msgs.push(b);
                }
            }
        }
        if let Some(e) = self.write(&msgs).await {
            self.event(e).await;
            return;
        }
        self.sync_routes(true).await;
    }
}
