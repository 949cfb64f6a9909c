//! What we announce: the enabled configured announcements and the prefix pools'
//! originations (`crate::ipv6::export`), minus what RPKI says is invalid for our origin
//! (unless forced). Received routes are never in here — we only originate (RFC 8212 spirit).
//!
//! [`plan`] is pure; [`build`] reads the database and the live VRP table and is run by the
//! speaker whenever something that feeds it changes.

use super::model::{origin_as, parse_communities, parse_path, Community};
use crate::app::App;
use crate::error::ApiResult;
use crate::ipv6::export::Origination;
use crate::rpki::vrp::VrpTable;
use crate::store::bgp::{self as q, AnnouncementRow};
use ipnet::IpNet;
use std::collections::HashSet;
use std::net::IpAddr;

/// One route to originate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Export {
    pub prefix: IpNet,
    /// Only to this session; `None` = every session.
    pub session_id: Option<i64>,
    /// `None`: our address on the session.
    pub next_hop: Option<IpAddr>,
    /// ASNs after ours.
    pub as_path: Vec<u32>,
    pub communities: Vec<Community>,
}

/// The routes to send. A configured announcement wins over a pool origination of the same
/// prefix; RPKI-invalid ones are left out unless forced (announcements) — pool
/// originations have no force.
pub fn plan(
    announcements: &[AnnouncementRow],
    originations: &[Origination],
    table: Option<&VrpTable>,
    local_asn: u32,
) -> Vec<Export> {
    let mut out = Vec::new();
    let mut configured = HashSet::new();
    for a in announcements.iter().filter(|a| a.f.enabled) {
        let f = &a.f;
        configured.insert(f.prefix);
        let (state, _) = crate::rpki::verdict(table, f.prefix, origin_as(&f.as_path, local_asn));
        if state == Some("invalid") && !f.force {
            continue;
        }
        out.push(Export {
            prefix: f.prefix,
            session_id: f.session_id,
            next_hop: f.next_hop,
            // Stored canonical; a row that no longer parses announces without them.
            as_path: parse_path(&f.as_path).unwrap_or_default(),
            communities: parse_communities(&f.community).unwrap_or_default(),
        });
    }
    for o in originations {
        let prefix = IpNet::V6(o.prefix);
        if configured.contains(&prefix) || o.rpki_invalid() {
            continue;
        }
        out.push(Export {
            prefix,
            session_id: None,
            next_hop: None,
            as_path: Vec::new(),
            communities: Vec::new(),
        });
    }
    out
}

/// The current export set, from the database and the live VRP table.
pub async fn build(app: &App) -> ApiResult<Vec<Export>> {
    let announcements = app.store.call(|c| q::all_announcements(c)).await?;
    let originations = crate::ipv6::export::originations(app).await?;
    let table = app.rpki.loaded().then(|| app.rpki.table());
    Ok(plan(
        &announcements,
        &originations,
        table.as_deref(),
        app.config.bgp.local_asn,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipv6::export::Source;
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

    fn orig(prefix: &str, rpki: Option<&'static str>) -> Origination {
        Origination {
            prefix: prefix.parse().expect("prefix"),
            source: Source::Pool { pool_id: 1 },
            rpki,
            rpki_reason: None,
        }
    }

    fn prefixes(e: &[Export]) -> Vec<String> {
        e.iter().map(|e| e.prefix.to_string()).collect()
    }

    #[test]
    fn enabled_announcements_and_valid_originations_are_exported() {
        let anns = [
            ann(1, "192.0.2.0/24", "", true, false),
            ann(2, "198.51.100.0/24", "", false, false),
            ann(3, "2001:db8:1::/48", "65010", true, false),
        ];
        let origs = [
            orig("2001:db8:1::/48", None),
            orig("2001:db8:2::/48", Some("valid")),
            orig("2001:db8:3::/48", Some("invalid")),
        ];
        let got = plan(&anns, &origs, None, 65001);
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
    }

    #[test]
    fn rpki_invalid_announcements_are_withheld_unless_forced() {
        let table = VrpTable::new([Vrp {
            prefix: "192.0.2.0/24".parse().expect("vrp"),
            max_length: 24,
            asn: 65001,
        }]);
        let anns = [
            ann(1, "192.0.2.0/24", "", true, false),
            ann(2, "192.0.2.0/25", "", true, false),
            ann(3, "192.0.2.128/25", "", true, true),
            ann(4, "192.0.2.0/24", "65099", true, false),
        ];
        let got = plan(&anns[..3], &[], Some(&table), 65001);
        assert_eq!(prefixes(&got), ["192.0.2.0/24", "192.0.2.128/25"]);
        let got = plan(&anns[3..], &[], Some(&table), 65001);
        assert!(got.is_empty(), "origin 65099 is invalid_asn");
        assert_eq!(
            crate::rpki::verdict(Some(&table), "192.0.2.0/25".parse().expect("p"), 65001),
            (Some("invalid"), Some("invalid_length"))
        );
        assert_eq!(
            crate::rpki::verdict(Some(&table), "192.0.2.0/24".parse().expect("p"), 0).0,
            None
        );
    }
}
