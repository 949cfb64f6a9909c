//! Turns engine notifications into log events: BGP session state changes (from the
//! speaker's broadcast). WireGuard starts and stops are logged where they happen
//! (`wireguard::live`), alerts by the collector. Writes through the API are in the audit
//! log already, so this task does not follow the change bus.

use crate::bgp::fsm::State;
use crate::bgp::speaker::StateChange;
use crate::logs::Logs;
use crate::store::logs::LogEntry;
use tokio::sync::broadcast::{self, error::RecvError};

/// Logs `changes` (the speaker's feed) until it closes; lagging is logged, not fatal.
pub async fn run(logs: std::sync::Arc<Logs>, mut changes: broadcast::Receiver<StateChange>) {
    loop {
        match changes.recv().await {
            Ok(c) => {
                let (level, message) = match (c.from, c.to) {
                    (_, State::Established) => {
                        ("INFO", format!("BGP session {} established", c.name))
                    }
                    (State::Established, to) => (
                        "WARNING",
                        format!(
                            "BGP session {} down ({}){}",
                            c.name,
                            to.as_str(),
                            c.last_error
                                .as_deref()
                                .map(|e| format!(": {e}"))
                                .unwrap_or_default()
                        ),
                    ),
                    (from, to) => (
                        "DEBUG",
                        format!(
                            "BGP session {}: {} → {}",
                            c.name,
                            from.as_str(),
                            to.as_str()
                        ),
                    ),
                };
                // Connect/active churn toward an absent peer would flood the store; only
                // changes into or out of Established are kept.
                if level == "DEBUG" {
                    log::debug!("{message}");
                    continue;
                }
                logs.event(
                    LogEntry::event(level, "bgp", "bgp.state", message)
                        .with_target(format!("bgp/sessions/{}", c.session_id))
                        .with_details(serde_json::json!({
                            "session_id": c.session_id,
                            "from": c.from.as_str(),
                            "to": c.to.as_str(),
                            "last_error": c.last_error,
                        })),
                );
            }
            Err(RecvError::Lagged(n)) => log::warn!("monitor: {n} BGP state changes not logged"),
            Err(RecvError::Closed) => return,
        }
    }
}
