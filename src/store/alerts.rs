//! Queries on `alert_rules`: the rules the alert evaluator (`monitor::alerts`) checks on
//! every collector tick.

use super::{StoreError, StoreResult};
use crate::monitor::alerts::{Condition, Level, Rule};
use rusqlite::{params, Connection, OptionalExtension};

const COLUMNS: &str =
    "id, name, metric_name, condition, threshold, level, enabled, cooldown_minutes, description";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Rule> {
    let condition: String = r.get(3)?;
    let level: String = r.get(5)?;
    Ok(Rule {
        id: r.get(0)?,
        name: r.get(1)?,
        metric_name: r.get(2)?,
        // The table's CHECKs only admit what these parse.
        condition: Condition::parse(&condition).unwrap_or(Condition::Gt),
        threshold: r.get(4)?,
        level: Level::parse(&level).unwrap_or(Level::Warning),
        enabled: r.get(6)?,
        cooldown_minutes: r.get(7)?,
        description: r.get(8)?,
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
    conn.execute(
        "INSERT INTO alert_rules (id, name, metric_name, condition, threshold, level, enabled, \
         cooldown_minutes, description, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
         metric_name = excluded.metric_name, condition = excluded.condition, \
         threshold = excluded.threshold, level = excluded.level, enabled = excluded.enabled, \
         cooldown_minutes = excluded.cooldown_minutes, description = excluded.description, \
         updated_at = excluded.updated_at",
        params![
            r.id,
            r.name,
            r.metric_name,
            r.condition.as_str(),
            r.threshold,
            r.level.as_str(),
            r.enabled,
            r.cooldown_minutes,
            r.description,
            now
        ],
    )?;
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
