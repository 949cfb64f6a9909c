//! The RTR source (RFC 8210): NLnet Labs' `rpki` client speaks the protocol (version
//! negotiation, Reset / Serial Query, Serial Notify, timing); this module is the rest —
//! the update target that turns announcements and withdrawals into a new [`VrpTable`],
//! reconnecting with the cache's retry interval, starting over with a Reset Query when the
//! cache no longer knows our session, and dropping the table once it is older than the
//! cache's expire interval (RFC 8210 §6).
//!
//! Updates arrive as `(Action, Payload)`; we keep only route origins, as our compact [`Vrp`]s
//! (a few dozen bytes per change), and build the next table from the current one when the
//! update completes, so the live table is never half-updated and memory is the table plus one
//! update.

use super::source::Rpki;
use super::vrp::{UpdateError, Vrp, VrpTable};
use ipnet::IpNet;
use rpki::rtr::client::{Client, PayloadError, PayloadTarget, PayloadUpdate};
use rpki::rtr::payload::{Action, Payload, Timing};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds on the cache's retry interval (it may announce anything up to 2 hours).
const MIN_RETRY: Duration = Duration::from_secs(2);
const MAX_RETRY: Duration = Duration::from_secs(600);

/// One update in progress.
#[derive(Default)]
pub struct Update {
    reset: bool,
    announce: Vec<Vrp>,
    withdraw: Vec<Vrp>,
}

fn to_vrp(p: &Payload) -> Option<Vrp> {
    let Payload::Origin(o) = p else { return None };
    let (addr, len) = o.prefix.prefix().addr_and_len();
    Some(Vrp {
        prefix: IpNet::new(addr, len).ok()?,
        max_length: o.prefix.resolved_max_len(),
        asn: o.asn.into_u32(),
    })
}

impl PayloadUpdate for Update {
    fn push_update(&mut self, action: Action, payload: Payload) -> Result<(), PayloadError> {
        // Router keys and ASPA are not ours to use.
        let Some(v) = to_vrp(&payload) else {
            return Ok(());
        };
        match action {
            Action::Announce => self.announce.push(v),
            Action::Withdraw if self.reset => return Err(PayloadError::Corrupt),
            Action::Withdraw => self.withdraw.push(v),
        }
        Ok(())
    }
}

/// Feeds completed updates into the live table.
pub struct Target {
    /// The table as this session knows it (the live one may have expired meanwhile).
    table: Arc<VrpTable>,
    timing: Option<Timing>,
    updated: Option<Instant>,
}

impl PayloadTarget for Target {
    type Update = Update;

    fn start(&mut self, reset: bool) -> Update {
        Update {
            reset,
            ..Update::default()
        }
    }

    fn apply(&mut self, u: Update, timing: Timing) -> Result<(), PayloadError> {
        let next = if u.reset {
            VrpTable::new(u.announce)
        } else {
            self.table
                .updated(&u.announce, &u.withdraw)
                .map_err(|e| match e {
                    UpdateError::UnknownWithdraw(_) => PayloadError::UnknownWithdraw,
                    UpdateError::DuplicateAnnounce(_) => PayloadError::DuplicateAnnounce,
                })?
        };
        self.table = Arc::new(next);
        self.timing = Some(timing);
        self.updated = Some(Instant::now());
        Ok(())
    }
}

fn retry_after(t: Option<Timing>) -> Duration {
    let secs = t.map_or(30, |t| u64::from(t.retry));
    Duration::from_secs(secs).clamp(MIN_RETRY, MAX_RETRY)
}

/// Runs the RTR source against `server` (`host:port`) until the task is dropped.
pub async fn run(rpki: Arc<Rpki>, server: String) {
    rpki.set_source("rtr", server.clone());
    let mut state = None;
    let mut target = Target {
        table: Arc::new(VrpTable::default()),
        timing: None,
        updated: None,
    };
    loop {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&server)).await {
            Err(_) => rpki.set_error(format!("RTR {server}: connect timed out")),
            Ok(Err(e)) => rpki.set_error(format!("RTR {server}: {e}")),
            Ok(Ok(sock)) => {
                log::info!("RTR: connected to {server}");
                let mut client = Client::new(sock, target, state);
                let (error, clean) = loop {
                    match client.step().await {
                        Ok(()) => {
                            let serial = client.state().map(|s| u64::from(s.serial().0));
                            rpki.publish(Arc::clone(&client.target().table), serial);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                            break (
                                format!("RTR {server}: the cache closed the connection"),
                                true,
                            );
                        }
                        Err(e) => break (format!("RTR {server}: {e}"), false),
                    }
                };
                // After an error (an Error Report, e.g. a cache that restarted and no longer
                // knows our session, or a refused update) start over with a Reset Query.
                state = if clean { client.state() } else { None };
                target = client.into_target();
                rpki.set_error(error);
            }
        }
        // RFC 8210 §6: data older than the cache's expire interval must not be used.
        if let (Some(t), Some(at)) = (target.timing, target.updated) {
            if at.elapsed() > Duration::from_secs(u64::from(t.expire)) {
                rpki.expire();
                target.table = Arc::new(VrpTable::default());
                target.updated = None;
                state = None;
            }
        }
        tokio::time::sleep(retry_after(target.timing)).await;
    }
}
