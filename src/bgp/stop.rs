//! Why we end a session ourselves ([`Stop`]) and the Cease the peer reads then ([`cease`]).
//! Pure; the session task sends it.

use super::packet::{self as pkt, Notification, CEASE_PEER_DECONFIGURED};

/// Why we end a session ourselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The service is stopping.
    ServiceStopping,
    /// The session was deleted.
    Deleted,
    /// The session was disabled (`enabled: false`).
    Disabled,
    /// `POST …/stop`, with the operator's text.
    Operator(String),
    /// `POST …/restart`, with the operator's text.
    Restart(String),
    /// A change that needs a new session (peer, AS, timers, password, addresses).
    Reconfigured,
}

/// The Cease the peer reads (RFC 4486 subcodes, RFC 9003 text): a deleted peer gets
/// Peer De-configured, a stop Administrative Shutdown saying who stopped it, a restart or
/// a reconfiguration Administrative Reset.
pub fn cease(why: &Stop) -> Notification {
    match why {
        Stop::ServiceStopping => Notification::cease_shutdown("ipv6wgm is stopping"),
        Stop::Deleted => Notification::new(pkt::CEASE, CEASE_PEER_DECONFIGURED),
        Stop::Disabled => Notification::cease_shutdown("session disabled by the operator"),
        Stop::Operator(text) => Notification::cease_shutdown(text),
        Stop::Restart(text) => Notification::cease_reset(text),
        Stop::Reconfigured => Notification::cease_reset("configuration changed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cease_says_why_we_stop() {
        let text = |n: &Notification| n.shutdown_message();
        let deleted = cease(&Stop::Deleted);
        assert_eq!(
            (deleted.code, deleted.subcode),
            (6, 3),
            "RFC 4486 Peer De-configured"
        );
        assert!(deleted.data.is_empty());
        let disabled = cease(&Stop::Disabled);
        assert_eq!((disabled.code, disabled.subcode), (6, 2));
        assert_eq!(
            text(&disabled).as_deref(),
            Some("session disabled by the operator")
        );
        let stopping = cease(&Stop::ServiceStopping);
        assert_eq!((stopping.code, stopping.subcode), (6, 2));
        assert_eq!(text(&stopping).as_deref(), Some("ipv6wgm is stopping"));
        let stop = cease(&Stop::Operator("maintenance".into()));
        assert_eq!(
            (stop.subcode, text(&stop).as_deref()),
            (2, Some("maintenance"))
        );
        let restart = cease(&Stop::Restart("restarted".into()));
        assert_eq!(
            (restart.subcode, text(&restart).as_deref()),
            (4, Some("restarted"))
        );
        assert_eq!(cease(&Stop::Reconfigured).subcode, 4);
    }
}
