//! JSON views of sessions, announcements and received routes: the stored configuration
//! merged with the live state of the speaker (never invented: a session the speaker does
//! not run is `idle` with zero counts).

use super::model::{origin_as, PASSWORD_MASK};
use super::speaker::Live;
use crate::store::bgp::{AnnouncementRow, SessionRow};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct SessionView {
    pub id: i64,
    pub name: String,
    pub neighbor: String,
    pub remote_as: u32,
    /// The AS we speak as (the session's own, else `[bgp] local_asn`).
    pub local_as: Option<u32>,
    pub hold_time: u16,
    /// `"***"` when a TCP-MD5 password is set; the password itself is never shown.
    pub password: Option<&'static str>,
    pub description: Option<String>,
    pub enabled: bool,
    pub local_address: Option<String>,
    pub local_port: u16,
    pub remote_port: u16,
    pub passive: bool,
    pub max_prefixes: u32,
    pub next_hop_ipv6: Option<String>,
    #[serde(flatten)]
    pub live: LiveView,
    #[serde(serialize_with = "crate::time::ser")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::ser")]
    pub updated_at: i64,
}

/// The live part of a session, also what `/monitoring/bgp/sessions` shows.
#[derive(Debug, Serialize)]
pub struct LiveView {
    /// idle / connect / active / opensent / openconfirm / established
    pub status: &'static str,
    /// Seconds in `established`, 0 otherwise.
    pub uptime: u64,
    #[serde(serialize_with = "crate::time::ser_opt")]
    pub last_status_change: Option<i64>,
    pub prefixes_received: u64,
    pub prefixes_sent: u64,
    /// The last NOTIFICATION sent or received, decoded, or why the session cannot run.
    pub last_error: Option<String>,
    /// The hold time both sides agreed on (established sessions).
    pub negotiated_hold_time: Option<u16>,
    /// The peer's BGP identifier once its OPEN was accepted.
    pub remote_id: Option<String>,
}

impl LiveView {
    pub fn new(live: Option<&Live>, now: i64) -> LiveView {
        let Some(l) = live else {
            return LiveView {
                status: "idle",
                uptime: 0,
                last_status_change: None,
                prefixes_received: 0,
                prefixes_sent: 0,
                last_error: None,
                negotiated_hold_time: None,
                remote_id: None,
            };
        };
        LiveView {
            status: l.state.as_str(),
            uptime: l
                .established_at
                .map_or(0, |t| u64::try_from(now - t).unwrap_or(0)),
            last_status_change: l.last_change,
            prefixes_received: l.prefixes_received,
            prefixes_sent: l.prefixes_sent,
            last_error: l.last_error.clone(),
            negotiated_hold_time: l.hold_time,
            remote_id: l.remote_id.map(|r| r.to_string()),
        }
    }
}

impl SessionView {
    pub fn new(row: SessionRow, local_asn: u32, live: Option<&Live>, now: i64) -> SessionView {
        let f = row.f;
        SessionView {
            id: row.id,
            name: f.name,
            neighbor: f.neighbor.to_string(),
            remote_as: f.remote_as,
            local_as: f.local_as.or(Some(local_asn).filter(|&a| a != 0)),
            hold_time: f.hold_time,
            password: f.password.map(|_| PASSWORD_MASK),
            description: f.description,
            enabled: f.enabled,
            local_address: f.local_address.map(|a| a.to_string()),
            local_port: f.local_port,
            remote_port: f.remote_port,
            passive: f.passive,
            max_prefixes: f.max_prefixes,
            next_hop_ipv6: f.next_hop_ipv6.map(|a| a.to_string()),
            live: LiveView::new(live, now),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// `GET /monitoring/bgp/sessions`: one entry per session.
#[derive(Debug, Serialize)]
pub struct SessionMonitor {
    pub session_id: i64,
    pub name: String,
    pub neighbor: String,
    pub remote_as: u32,
    pub enabled: bool,
    #[serde(flatten)]
    pub live: LiveView,
}

#[derive(Debug, Serialize)]
pub struct AnnouncementView {
    pub id: i64,
    pub session_id: Option<i64>,
    pub prefix: String,
    pub next_hop: Option<String>,
    pub as_path: String,
    /// The origin AS: the last of `as_path`, else ours.
    pub asn: Option<u32>,
    pub community: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub force: bool,
    /// active (sent to at least one established session) / pending (no established session
    /// takes it yet) / disabled / rpki_invalid (withheld on every session: RPKI says the
    /// origin sent there is invalid)
    pub status: &'static str,
    /// Established sessions it is sent to.
    pub sessions_sent: u32,
    /// valid / invalid / not_found for the origin `asn` (with `[bgp] local_asn`), or null
    /// without RPKI data or a local AS.
    pub rpki: Option<&'static str>,
    pub rpki_reason: Option<&'static str>,
    /// Per session it goes to: the origin sent there (a session with its own `local_as`
    /// originates as that AS), its verdict, and whether it is sent. A route is withheld
    /// only on the sessions where its origin is invalid.
    pub rpki_sessions: Vec<SessionRpki>,
    #[serde(serialize_with = "crate::time::ser")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::ser")]
    pub updated_at: i64,
}

/// An announcement on one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRpki {
    pub session_id: i64,
    pub origin_as: u32,
    pub rpki: Option<&'static str>,
    pub rpki_reason: Option<&'static str>,
    /// Announced on the session now.
    pub sent: bool,
}

/// What the speaker knows of one announcement.
#[derive(Debug, Clone, Default)]
pub struct AnnouncementState {
    pub rpki: Option<&'static str>,
    pub rpki_reason: Option<&'static str>,
    pub sessions: Vec<SessionRpki>,
}

impl AnnouncementView {
    pub fn new(row: AnnouncementRow, local_asn: u32, st: AnnouncementState) -> AnnouncementView {
        let f = row.f;
        let invalid = |v: Option<&str>| v == Some("invalid") && !f.force;
        // Withheld everywhere it would go; without sessions, by the config's origin.
        let withheld = match st.sessions.is_empty() {
            true => invalid(st.rpki),
            false => st.sessions.iter().all(|s| invalid(s.rpki)),
        };
        let sessions_sent = st.sessions.iter().filter(|s| s.sent).count() as u32;
        let status = match () {
            _ if !f.enabled => "disabled",
            _ if withheld => "rpki_invalid",
            _ if sessions_sent > 0 => "active",
            _ => "pending",
        };
        let asn = Some(origin_as(&f.as_path, local_asn)).filter(|&a| a != 0);
        AnnouncementView {
            id: row.id,
            session_id: f.session_id,
            prefix: f.prefix.to_string(),
            next_hop: f.next_hop.map(|a| a.to_string()),
            as_path: f.as_path,
            asn,
            community: f.community,
            description: f.description,
            enabled: f.enabled,
            force: f.force,
            status,
            sessions_sent,
            rpki: st.rpki,
            rpki_reason: st.rpki_reason,
            rpki_sessions: st.sessions,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}
