//! What we announce: the enabled configured announcements and the prefix pools'
//! originations (`crate::bgp::originations`). Received routes are never in here — we only
//! originate (RFC 8212 spirit).
//!
//! RPKI is decided per session, for the origin actually sent there: a session may speak as
//! its own `local_as`, and a route we originate (empty configured path) then has that AS as
//! its origin. [`ExportSet`] carries the VRP table with the routes; each session asks
//! [`withheld`] for its own AS, so a route invalid for one session's origin is left out on
//! that session only. [`wire_path`] and [`origin_on`] say what a session sends.
//!
//! [`plan`] is pure; [`build`] reads the database and the live VRP table; [`run`] is the
//! task that rebuilds the set whenever something that feeds it changes (the speaker's
//! dirty mark, set by the BGP applier after a committed change, or a new VRP table) and
//! hands it to the sessions. The rebuild stays off the request path: a write marks, this
//! task reads once for a burst of writes.

use super::model::{parse_communities, parse_path, Community};
use super::speaker::Speaker;
use crate::bgp::originations::Origination;
use crate::rpki::vrp::VrpTable;
use crate::rpki::Rpki;
use crate::store::bgp::{self as q, AnnouncementRow};
use crate::store::{Store, StoreResult};
use ipnet::IpNet;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// One route to originate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Export {
    pub prefix: IpNet,
    /// Only to this session; `None` = every session.
    pub session_id: Option<i64>,
    /// `None`: our address on the session.
    pub next_hop: Option<IpAddr>,
    /// The configured path: the ASes after ours, origin last (see [`wire_path`]).
    pub as_path: Vec<u32>,
    pub communities: Vec<Community>,
    /// Sent even where RPKI says its origin is invalid.
    pub force: bool,
}

/// What every session announces from: the routes and the VRP table they are checked
/// against (`None` without RPKI data).
#[derive(Debug, Default)]
pub struct ExportSet {
    pub routes: Vec<Export>,
    pub vrps: Option<Arc<VrpTable>>,
}

/// The AS_PATH a session speaking as `local_as` to `remote_as` sends for a configured
/// path: on eBGP our AS goes first (RFC 4271 §5.1.2) unless the path already starts with
/// it (an announcement whose `asn` is our own AS must not carry it twice); on iBGP the
/// path as configured.
pub fn wire_path(local_as: u32, remote_as: u32, path: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(path.len() + 1);
    if local_as != remote_as && path.first() != Some(&local_as) {
        out.push(local_as);
    }
    out.extend_from_slice(path);
    out
}

/// The origin AS a session speaking as `local_as` announces a configured path with: the
/// last AS of the path, or `local_as` when we originate (also on iBGP, where the path
/// sent is empty: RFC 6811 §2 takes the local AS then).
pub fn origin_on(path: &[u32], local_as: u32) -> u32 {
    path.last().copied().unwrap_or(local_as)
}

/// Whether a session speaking as `local_as` must leave `e` out: RPKI says its origin
/// there is invalid and it is not forced. No table (or no AS) means no verdict.
pub fn withheld(e: &Export, local_as: u32, vrps: Option<&VrpTable>) -> bool {
    !e.force && verdict_on(e.prefix, &e.as_path, local_as, vrps).0 == Some("invalid")
}

/// The RPKI verdict (`state`, `reason`) of `prefix` with a configured `path`, as a session
/// speaking as `local_as` announces it.
pub fn verdict_on(
    prefix: IpNet,
    path: &[u32],
    local_as: u32,
    vrps: Option<&VrpTable>,
) -> (Option<&'static str>, Option<&'static str>) {
    crate::rpki::verdict(vrps, prefix, origin_on(path, local_as))
}

/// The routes to send. A configured announcement wins over a pool origination of the same
/// prefix; pool originations are never forced. RPKI is left to each session ([`withheld`]).
pub fn plan(announcements: &[AnnouncementRow], originations: &[Origination]) -> Vec<Export> {
    let mut out = Vec::new();
    let mut configured = HashSet::new();
    for a in announcements.iter().filter(|a| a.f.enabled) {
        let f = &a.f;
        configured.insert(f.prefix);
        out.push(Export {
            prefix: f.prefix,
            session_id: f.session_id,
            next_hop: f.next_hop,
            // Stored canonical; a row that no longer parses announces without them.
            as_path: parse_path(&f.as_path).unwrap_or_default(),
            communities: parse_communities(&f.community).unwrap_or_default(),
            force: f.force,
        });
    }
    for o in originations {
        let prefix = IpNet::V6(o.prefix);
        if configured.contains(&prefix) {
            continue;
        }
        out.push(Export {
            prefix,
            session_id: None,
            next_hop: None,
            as_path: Vec::new(),
            communities: Vec::new(),
            force: false,
        });
    }
    out
}

/// The current export set, from the database and the live VRP table.
pub async fn build(store: &Store, rpki: &Rpki) -> StoreResult<ExportSet> {
    let announcements = store.call(|c| q::all_announcements(c)).await?;
    let originations = crate::bgp::originations::originations(store).await?;
    Ok(ExportSet {
        routes: plan(&announcements, &originations),
        vrps: rpki.loaded().then(|| rpki.table()),
    })
}

/// Rebuilds the export set whenever the speaker is marked dirty ([`Speaker::changed`]) or
/// the RPKI table changes (debounced: a burst of changes is one rebuild), and every minute
/// as a backstop; each new set goes to every session. Runs until the service stops.
pub async fn run(store: Store, speaker: Arc<Speaker>, rpki: Arc<Rpki>) {
    let dirty = speaker.dirty();
    let updated = rpki.updated();
    loop {
        tokio::select! {
            _ = dirty.notified() => {}
            _ = updated.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        match build(&store, &rpki).await {
            Ok(e) => speaker.publish(e),
            Err(e) => log::warn!("bgp: cannot build the export set: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::originations::Source;
    use crate::rpki::vrp::Vrp;
    use crate::store::bgp::AnnouncementFields;

    fn ann(id: i64, prefix: &str, as_path: &str, enabled: bool, force: bool) -> AnnouncementRow {
        AnnouncementRow {
            id,
            f: AnnouncementFields {
                session_id: None,
                prefix: prefix.parse().expect("prefix"),
                next_hop: None,
                as_path: as_path.into(),
                community: "65001:7".into(),
                description: None,
                enabled,
                force,
            },
            created_at: 0,
            updated_at: 0,
        }
    }

    fn orig(prefix: &str) -> Origination {
        Origination {
            prefix: prefix.parse().expect("prefix"),
            source: Source::Pool { pool_id: 1 },
        }
    }

    fn prefixes(e: &[Export]) -> Vec<String> {
        e.iter().map(|e| e.prefix.to_string()).collect()
    }

    fn table(vrps: &[(&str, u8, u32)]) -> VrpTable {
        VrpTable::new(vrps.iter().map(|&(p, max_length, asn)| Vrp {
            prefix: p.parse().expect("vrp"),
            max_length,
            asn,
        }))
    }

    #[test]
    fn enabled_announcements_and_originations_are_exported() {
        let anns = [
            ann(1, "192.0.2.0/24", "", true, false),
            ann(2, "198.51.100.0/24", "", false, false),
            ann(3, "2001:db8:1::/48", "65010", true, false),
        ];
        let origs = [orig("2001:db8:1::/48"), orig("2001:db8:2::/48")];
        let got = plan(&anns, &origs);
        assert_eq!(
            prefixes(&got),
            ["192.0.2.0/24", "2001:db8:1::/48", "2001:db8:2::/48"]
        );
        assert_eq!(
            got[1].as_path,
            [65010],
            "the announcement wins over the pool"
        );
        assert_eq!(got[0].communities, [Community::Standard(65001 << 16 | 7)]);
        assert!(!got[2].force, "pool originations are never forced");
    }

    #[test]
    fn our_as_is_prepended_once_on_ebgp_and_never_on_ibgp() {
        assert_eq!(wire_path(65001, 65002, &[]), [65001]);
        assert_eq!(wire_path(65001, 65002, &[64999]), [65001, 64999]);
        // `asn: 65001` stores the path "65001": sent once, not "65001 65001".
        assert_eq!(wire_path(65001, 65002, &[65001]), [65001]);
        assert_eq!(wire_path(65001, 65002, &[65001, 64999]), [65001, 64999]);
        // A session with its own local_as prepends that one.
        assert_eq!(wire_path(65100, 65002, &[]), [65100]);
        assert_eq!(wire_path(65100, 65002, &[65001]), [65100, 65001]);
        assert_eq!(wire_path(65001, 65001, &[]), Vec::<u32>::new());
        assert_eq!(wire_path(65001, 65001, &[64999]), [64999]);
    }

    #[test]
    fn the_origin_is_the_session_as_unless_the_path_names_one() {
        assert_eq!(origin_on(&[], 65001), 65001);
        assert_eq!(origin_on(&[], 65100), 65100);
        assert_eq!(origin_on(&[64999, 64998], 65100), 64998);
        for (local, remote, path) in [
            (65100, 65002, &[][..]),
            (65001, 65002, &[65001][..]),
            (65100, 65002, &[64999][..]),
        ] {
            let sent = wire_path(local, remote, path);
            assert_eq!(sent.last().copied(), Some(origin_on(path, local)));
        }
    }

    #[test]
    fn rpki_is_decided_per_session_for_the_origin_sent_there() {
        let t = table(&[
            ("2001:db8:100::/48", 48, 65100),
            ("2001:db8:200::/48", 48, 65001),
        ]);
        let anns = [
            ann(1, "2001:db8:100::/48", "", true, false),
            ann(2, "2001:db8:200::/48", "", true, false),
            ann(3, "2001:db8:200::/48", "", true, true),
            ann(4, "2001:db8:100::/48", "64999", true, false),
        ];
        let got = plan(&anns, &[]);
        assert_eq!(got.len(), 4, "RPKI is not decided globally");
        let (roa_for_session, roa_for_config, forced, explicit) =
            (&got[0], &got[1], &got[2], &got[3]);
        // A session speaking as 65100 sends the first and withholds the second.
        assert!(!withheld(roa_for_session, 65100, Some(&t)));
        assert!(withheld(roa_for_config, 65100, Some(&t)));
        assert_eq!(
            verdict_on(roa_for_config.prefix, &[], 65100, Some(&t)),
            (Some("invalid"), Some("invalid_asn"))
        );
        // A session speaking as [bgp] local_asn 65001: the other way round.
        assert!(withheld(roa_for_session, 65001, Some(&t)));
        assert!(!withheld(roa_for_config, 65001, Some(&t)));
        // Forced: sent everywhere; an explicit origin is the same on every session.
        assert!(!withheld(forced, 65100, Some(&t)));
        assert!(withheld(explicit, 65100, Some(&t)) && withheld(explicit, 65001, Some(&t)));
        // No RPKI data: nothing is withheld.
        assert!(!withheld(roa_for_config, 65100, None));
    }

    #[test]
    fn invalid_length_is_invalid_and_no_as_has_no_verdict() {
        let t = table(&[("192.0.2.0/24", 24, 65001)]);
        assert_eq!(
            crate::rpki::verdict(Some(&t), "192.0.2.0/25".parse().expect("p"), 65001),
            (Some("invalid"), Some("invalid_length"))
        );
        assert_eq!(
            crate::rpki::verdict(Some(&t), "192.0.2.0/24".parse().expect("p"), 0).0,
            None
        );
    }
}
