//! Queries on `alert_rules`: the rules the alert evaluator (`monitor::alerts`) checks on
//! every collector tick.

use super::table::{self, columns, set};
use super::{StoreError, StoreResult};
use crate::monitor::alerts::{Condition, Level, Rule};
use rusqlite::{Connection, OptionalExtension};

columns! { rule_col: id, name, metric_name, condition, threshold, level, enabled, cooldown_minutes,
description }
use rule_col::LIST as COLUMNS;

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Rule> {
    use rule_col as c;
    let condition: String = r.get(c::condition)?;
    let level: String = r.get(c::level)?;
    Ok(Rule {
        id: r.get(c::id)?,
        name: r.get(c::name)?,
        metric_name: r.get(c::metric_name)?,
        // The table's CHECKs only admit what these parse.
        condition: Condition::parse(&condition).unwrap_or(Condition::Gt),
        threshold: r.get(c::threshold)?,
        level: Level::parse(&level).unwrap_or(Level::Warning),
        enabled: r.get(c::enabled)?,
        cooldown_minutes: r.get(c::cooldown_minutes)?,
        description: r.get(c::description)?,
    })
}

/// Every rule, by id.
pub fn list(conn: &Connection) -> StoreResult<Vec<Rule>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM alert_rules ORDER BY id"))?;
    let rows = stmt.query_map([], row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn get(conn: &Connection, id: &str) -> StoreResult<Option<Rule>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM alert_rules WHERE id = ?1"),
            [id],
            row,
        )
        .optional()?)
}

/// Creates the rule, or replaces the one with its id (`created_at` kept).
pub fn upsert(conn: &Connection, r: &Rule, now: i64) -> StoreResult<()> {
    let sets = [
        set("id", &r.id),
        set("name", &r.name),
        set("metric_name", &r.metric_name),
        set("condition", r.condition.as_str()),
        set("threshold", r.threshold),
        set("level", r.level.as_str()),
        set("enabled", r.enabled),
        set("cooldown_minutes", r.cooldown_minutes),
        set("description", &r.description),
        set("created_at", now),
        set("updated_at", now),
    ];
    table::upsert(conn, "alert_rules", "id", &sets, &["created_at"])?;
    Ok(())
}

pub fn delete(conn: &Connection, id: &str) -> StoreResult<()> {
    match conn.execute("DELETE FROM alert_rules WHERE id = ?1", [id])? {
        0 => Err(StoreError::NotFound("alert rule")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_exist_and_rules_round_trip() {
        let c = crate::store::test_db();
        let ids: Vec<String> = list(&c).expect("list").into_iter().map(|r| r.id).collect();
        assert_eq!(
            ids,
            [
                "bgp_session_down",
                "cpu_high",
                "disk_high",
                "memory_high",
                "wireguard_server_error"
            ]
        );
        let mut r = get(&c, "cpu_high").expect("get").expect("rule");
        assert_eq!(
            (r.condition, r.threshold, r.level),
            (Condition::Gt, 90.0, Level::Warning)
        );
        r.threshold = 75.5;
        r.condition = Condition::Ge;
        r.enabled = false;
        upsert(&c, &r, 1).expect("update");
        assert_eq!(get(&c, "cpu_high").expect("get"), Some(r));
        delete(&c, "cpu_high").expect("delete");
        assert!(matches!(
            delete(&c, "cpu_high"),
            Err(StoreError::NotFound(_))
        ));
    }
}
