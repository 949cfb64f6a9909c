//! Queries on `bgp_sessions` and `bgp_announcements`. Addresses and prefixes are stored as
//! canonical text and come back parsed; AS paths and communities stay canonical text (the
//! domain, `crate::bgp::model`, parses and validates them).

use super::table::{self, columns, parsed, parsed_opt, set, text, Set};
use super::{StoreError, StoreResult};
use ipnet::IpNet;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::net::{IpAddr, Ipv6Addr};

/// What a session is configured to be (everything but its id and timestamps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFields {
    pub name: String,
    pub neighbor: IpAddr,
    pub remote_as: u32,
    /// `None`: the `[bgp] local_asn` of the config.
    pub local_as: Option<u32>,
    pub hold_time: u16,
    /// TCP-MD5 key; never shown by the API.
    pub password: Option<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub local_address: Option<IpAddr>,
    /// Where we accept the peer's connections.
    pub local_port: u16,
    /// Where we connect to the peer.
    pub remote_port: u16,
    /// Never connect out; wait for the peer.
    pub passive: bool,
    /// Routes accepted from the peer before the session is closed (0 = no limit).
    pub max_prefixes: u32,
    /// Next hop of our IPv6 announcements when the session runs over IPv4.
    pub next_hop_ipv6: Option<Ipv6Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: i64,
    pub f: SessionFields,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncementFields {
    /// Only to this session; `None` = every session.
    pub session_id: Option<i64>,
    pub prefix: IpNet,
    /// `None`: our address on the session (or the session's `next_hop_ipv6`).
    pub next_hop: Option<IpAddr>,
    /// ASNs after ours, canonical: space-separated, "" when we originate.
    pub as_path: String,
    /// Standard and large communities, canonical: space-separated.
    pub community: String,
    pub description: Option<String>,
    pub enabled: bool,
    /// Announce even when RPKI says the origin is invalid.
    pub force: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncementRow {
    pub id: i64,
    pub f: AnnouncementFields,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Default, Clone)]
pub struct AnnouncementFilter {
    pub session_id: Option<i64>,
    pub enabled: Option<bool>,
}

// ---- row mapping ----

columns! { session_col: id, name, neighbor, remote_as, local_as, hold_time, password, description,
enabled, local_address, local_port, remote_port, passive, max_prefixes, next_hop_ipv6,
created_at, updated_at }
use session_col::LIST as SESSION_COLUMNS;

fn session_from_row(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
    use session_col as c;
    Ok(SessionRow {
        id: r.get(c::id)?,
        f: SessionFields {
            name: r.get(c::name)?,
            neighbor: parsed(r, c::neighbor)?,
            remote_as: r.get(c::remote_as)?,
            local_as: r.get(c::local_as)?,
            hold_time: r.get(c::hold_time)?,
            password: r.get(c::password)?,
            description: r.get(c::description)?,
            enabled: r.get(c::enabled)?,
            local_address: parsed_opt(r, c::local_address)?,
            local_port: r.get(c::local_port)?,
            remote_port: r.get(c::remote_port)?,
            passive: r.get(c::passive)?,
            max_prefixes: r.get(c::max_prefixes)?,
            next_hop_ipv6: parsed_opt(r, c::next_hop_ipv6)?,
        },
        created_at: r.get(c::created_at)?,
        updated_at: r.get(c::updated_at)?,
    })
}

/// The columns a create or an update of a session writes, with their values.
fn session_written(f: &SessionFields) -> Vec<Set<'_>> {
    vec![
        set("name", &f.name),
        set("neighbor", f.neighbor.to_string()),
        set("remote_as", f.remote_as),
        set("local_as", f.local_as),
        set("hold_time", f.hold_time),
        set("password", &f.password),
        set("description", &f.description),
        set("enabled", f.enabled),
        set("local_address", text(&f.local_address)),
        set("local_port", f.local_port),
        set("remote_port", f.remote_port),
        set("passive", f.passive),
        set("max_prefixes", f.max_prefixes),
        set("next_hop_ipv6", text(&f.next_hop_ipv6)),
    ]
}

columns! { announcement_col: id, session_id, prefix, next_hop, as_path, community, description,
enabled, force_announce, created_at, updated_at }
use announcement_col::LIST as ANNOUNCEMENT_COLUMNS;

fn announcement_from_row(r: &Row<'_>) -> rusqlite::Result<AnnouncementRow> {
    use announcement_col as c;
    Ok(AnnouncementRow {
        id: r.get(c::id)?,
        f: AnnouncementFields {
            session_id: r.get(c::session_id)?,
            prefix: parsed(r, c::prefix)?,
            next_hop: parsed_opt(r, c::next_hop)?,
            as_path: r.get(c::as_path)?,
            community: r.get(c::community)?,
            description: r.get(c::description)?,
            enabled: r.get(c::enabled)?,
            force: r.get(c::force_announce)?,
        },
        created_at: r.get(c::created_at)?,
        updated_at: r.get(c::updated_at)?,
    })
}

/// The columns a create or an update of an announcement writes, with their values.
fn announcement_written(f: &AnnouncementFields) -> Vec<Set<'_>> {
    vec![
        set("session_id", f.session_id),
        set("prefix", f.prefix.to_string()),
        set("next_hop", text(&f.next_hop)),
        set("as_path", &f.as_path),
        set("community", &f.community),
        set("description", &f.description),
        set("enabled", f.enabled),
        set("force_announce", f.force),
    ]
}

/// A UNIQUE violation as a conflict; the domain checks these first with friendlier
/// messages, so this is the backstop.
fn unique_violation(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, Some(msg))
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            let field = if msg.contains("name") {
                "name"
            } else if msg.contains("neighbor") {
                "neighbor"
            } else {
                "prefix"
            };
            StoreError::Conflict {
                field: field.to_string(),
                message: format!("{field} is already in use"),
            }
        }
        e => StoreError::Sqlite(e),
    }
}

// ---- sessions ----

pub fn insert_session(conn: &Connection, f: &SessionFields, now: i64) -> StoreResult<SessionRow> {
    let mut sets = session_written(f);
    sets.extend([set("created_at", now), set("updated_at", now)]);
    table::insert(conn, "bgp_sessions", &sets).map_err(unique_violation)?;
    get_session(conn, conn.last_insert_rowid())?.ok_or(StoreError::NotFound("session"))
}

pub fn get_session(conn: &Connection, id: i64) -> StoreResult<Option<SessionRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM bgp_sessions WHERE id = ?1"
        ))?
        .query_row([id], session_from_row)
        .optional()?)
}

/// Every session, by id (a router has a handful).
pub fn all_sessions(conn: &Connection) -> StoreResult<Vec<SessionRow>> {
    super::table::rows(
        conn,
        &format!("SELECT {SESSION_COLUMNS} FROM bgp_sessions ORDER BY id"),
        [],
        session_from_row,
    )
}

/// One page of sessions and the total.
pub fn list_sessions(
    conn: &Connection,
    limit: u32,
    offset: u64,
) -> StoreResult<(Vec<SessionRow>, u64)> {
    let total: u64 = conn.query_row("SELECT count(*) FROM bgp_sessions", [], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM bgp_sessions ORDER BY id LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = stmt
        .query_map(params![limit, offset as i64], session_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total))
}

pub fn update_session(
    conn: &Connection,
    id: i64,
    f: &SessionFields,
    now: i64,
) -> StoreResult<SessionRow> {
    let mut sets = session_written(f);
    sets.push(set("updated_at", now));
    let n = table::update(conn, "bgp_sessions", id, &sets).map_err(unique_violation)?;
    if n == 0 {
        return Err(StoreError::NotFound("session"));
    }
    get_session(conn, id)?.ok_or(StoreError::NotFound("session"))
}

/// Deletes the session and the announcements restricted to it; returns how many of those.
pub fn delete_session(conn: &Connection, id: i64) -> StoreResult<u64> {
    let n = conn.execute("DELETE FROM bgp_announcements WHERE session_id = ?1", [id])?;
    if conn.execute("DELETE FROM bgp_sessions WHERE id = ?1", [id])? == 0 {
        return Err(StoreError::NotFound("session"));
    }
    Ok(n as u64)
}

// ---- announcements ----

pub fn insert_announcement(
    conn: &Connection,
    f: &AnnouncementFields,
    now: i64,
) -> StoreResult<AnnouncementRow> {
    let mut sets = announcement_written(f);
    sets.extend([set("created_at", now), set("updated_at", now)]);
    table::insert(conn, "bgp_announcements", &sets).map_err(unique_violation)?;
    get_announcement(conn, conn.last_insert_rowid())?.ok_or(StoreError::NotFound("announcement"))
}

pub fn get_announcement(conn: &Connection, id: i64) -> StoreResult<Option<AnnouncementRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ANNOUNCEMENT_COLUMNS} FROM bgp_announcements WHERE id = ?1"
        ))?
        .query_row([id], announcement_from_row)
        .optional()?)
}

/// Every announcement, by id: what the speaker exports.
pub fn all_announcements(conn: &Connection) -> StoreResult<Vec<AnnouncementRow>> {
    super::table::rows(
        conn,
        &format!("SELECT {ANNOUNCEMENT_COLUMNS} FROM bgp_announcements ORDER BY id"),
        [],
        announcement_from_row,
    )
}

/// One page of announcements matching `filter`, and the total.
pub fn list_announcements(
    conn: &Connection,
    filter: &AnnouncementFilter,
    limit: u32,
    offset: u64,
) -> StoreResult<(Vec<AnnouncementRow>, u64)> {
    let cond = "(?1 IS NULL OR session_id = ?1) AND (?2 IS NULL OR enabled = ?2)";
    let total: u64 = conn.query_row(
        &format!("SELECT count(*) FROM bgp_announcements WHERE {cond}"),
        params![filter.session_id, filter.enabled],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ANNOUNCEMENT_COLUMNS} FROM bgp_announcements WHERE {cond} \
         ORDER BY id LIMIT ?3 OFFSET ?4"
    ))?;
    let rows = stmt
        .query_map(
            params![filter.session_id, filter.enabled, limit, offset as i64],
            announcement_from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total))
}

pub fn update_announcement(
    conn: &Connection,
    id: i64,
    f: &AnnouncementFields,
    now: i64,
) -> StoreResult<AnnouncementRow> {
    let mut sets = announcement_written(f);
    sets.push(set("updated_at", now));
    let n = table::update(conn, "bgp_announcements", id, &sets).map_err(unique_violation)?;
    if n == 0 {
        return Err(StoreError::NotFound("announcement"));
    }
    get_announcement(conn, id)?.ok_or(StoreError::NotFound("announcement"))
}

pub fn delete_announcement(conn: &Connection, id: i64) -> StoreResult<()> {
    if conn.execute("DELETE FROM bgp_announcements WHERE id = ?1", [id])? == 0 {
        return Err(StoreError::NotFound("announcement"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(name: &str, neighbor: &str) -> SessionFields {
        SessionFields {
            name: name.into(),
            neighbor: neighbor.parse().unwrap(),
            remote_as: 65002,
            local_as: Some(4_200_000_000),
            hold_time: 90,
            password: Some("s3cret".into()),
            description: None,
            enabled: true,
            local_address: Some("127.0.0.1".parse().unwrap()),
            local_port: 1179,
            remote_port: 179,
            passive: false,
            max_prefixes: 1000,
            next_hop_ipv6: Some("2001:db8::1".parse().unwrap()),
        }
    }

    fn announcement(session_id: Option<i64>, prefix: &str) -> AnnouncementFields {
        AnnouncementFields {
            session_id,
            prefix: prefix.parse().unwrap(),
            next_hop: None,
            as_path: "65010".into(),
            community: "65000:1 65000:1:2".into(),
            description: Some("x".into()),
            enabled: true,
            force: false,
        }
    }

    #[test]
    fn sessions_round_trip_and_conflict_on_name_and_neighbor() {
        let db = crate::store::test_db();
        let a = insert_session(&db, &session("up1", "192.0.2.1"), 10).unwrap();
        assert_eq!(a.f, session("up1", "192.0.2.1"));
        let e = insert_session(&db, &session("UP1", "192.0.2.2"), 10).unwrap_err();
        assert!(matches!(e, StoreError::Conflict { ref field, .. } if field == "name"));
        let e = insert_session(&db, &session("up2", "192.0.2.1"), 10).unwrap_err();
        assert!(matches!(e, StoreError::Conflict { ref field, .. } if field == "neighbor"));
        let mut f = session("up1", "2001:db8::2");
        f.local_as = None;
        let b = update_session(&db, a.id, &f, 20).unwrap();
        assert_eq!((b.f, b.updated_at), (f, 20));
        assert_eq!(list_sessions(&db, 10, 0).unwrap().1, 1);
    }

    #[test]
    fn deleting_a_session_deletes_its_own_announcements_only() {
        let db = crate::store::test_db();
        let s = insert_session(&db, &session("up1", "192.0.2.1"), 10).unwrap();
        insert_announcement(&db, &announcement(Some(s.id), "2001:db8::/48"), 1).unwrap();
        let all = insert_announcement(&db, &announcement(None, "2001:db8::/48"), 1).unwrap();
        let e = insert_announcement(&db, &announcement(None, "2001:db8::/48"), 1).unwrap_err();
        assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
        assert_eq!(delete_session(&db, s.id).unwrap(), 1);
        assert_eq!(all_announcements(&db).unwrap(), vec![all]);
        let filter = AnnouncementFilter {
            session_id: None,
            enabled: Some(true),
        };
        assert_eq!(list_announcements(&db, &filter, 10, 0).unwrap().1, 1);
    }
}
