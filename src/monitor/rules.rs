//! Alert rules as stored: their input, its validation (pure), and the [`Rules`] service
//! that lists, creates, changes and deletes them. The collector reads them every tick.

use super::alerts::{Condition, Level, Rule};
use super::collector::METRICS;
use super::Error;
use crate::error::Invalid;
use crate::store::Store;
use serde::Deserialize;

/// A rule as `POST`/`PUT`/`PATCH /monitoring/alerts/rules` send it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub metric_name: Option<String>,
    pub condition: Option<String>,
    pub threshold: Option<f64>,
    pub level: Option<String>,
    pub enabled: Option<bool>,
    pub cooldown_minutes: Option<u32>,
    #[serde(default, deserialize_with = "crate::input::nullable")]
    pub description: Option<Option<String>>,
}

impl RuleInput {
    /// `base` (a new rule's defaults, or the stored rule) with these fields, validated.
    fn apply(self, mut r: Rule, require_all: bool) -> Result<Rule, Invalid> {
        let need = |field: &str| Invalid::new(field, format!("{field} is required"));
        match self.name {
            Some(n) => {
                let n = n.trim().to_string();
                if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
                    return Err(Invalid::new(
                        "name",
                        "name must be 1 to 100 characters without control characters",
                    ));
                }
                r.name = n;
            }
            None if require_all => return Err(need("name")),
            None => {}
        }
        match self.metric_name {
            Some(m) => {
                let m = m.trim();
                if !METRICS.iter().any(|(n, _)| *n == m) {
                    return Err(Invalid::new(
                        "metric_name",
                        format!("unknown metric {m:?}; known: {}", known()),
                    ));
                }
                r.metric_name = m.to_string();
            }
            None if require_all => return Err(need("metric_name")),
            None => {}
        }
        match self.condition {
            Some(c) => {
                r.condition = Condition::parse(c.trim()).ok_or_else(|| {
                    Invalid::new("condition", "condition must be >, >=, <, <=, == or !=")
                })?;
            }
            None if require_all => return Err(need("condition")),
            None => {}
        }
        match self.threshold {
            Some(t) if t.is_finite() => r.threshold = t,
            Some(_) => return Err(Invalid::new("threshold", "threshold must be a number")),
            None if require_all => return Err(need("threshold")),
            None => {}
        }
        if let Some(l) = self.level {
            r.level = Level::parse(l.trim()).ok_or_else(|| {
                Invalid::new("level", "level must be info, warning, error or critical")
            })?;
        }
        if let Some(e) = self.enabled {
            r.enabled = e;
        }
        if let Some(c) = self.cooldown_minutes {
            if c > 10_080 {
                return Err(Invalid::new(
                    "cooldown_minutes",
                    "cooldown_minutes must be from 0 to 10080 (a week)",
                ));
            }
            r.cooldown_minutes = c;
        }
        if let Some(d) = self.description {
            if d.as_deref()
                .is_some_and(|d| d.chars().any(|c| c.is_control() && c != '\n' && c != '\t'))
            {
                return Err(Invalid::new(
                    "description",
                    "description must not contain control characters other than newline and tab",
                ));
            }
            r.description = d
                .map(|d| d.trim().chars().take(500).collect())
                .filter(|d: &String| !d.is_empty());
        }
        Ok(r)
    }
}

pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn new_rule(id: String) -> Rule {
    Rule {
        id,
        name: String::new(),
        metric_name: String::new(),
        condition: Condition::Gt,
        threshold: 0.0,
        level: Level::Warning,
        enabled: true,
        cooldown_minutes: 5,
        description: None,
    }
}

/// Every metric name, for error messages.
pub fn known() -> String {
    METRICS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The alert rules in the store.
pub struct Rules {
    store: Store,
}

impl Rules {
    pub fn new(store: Store) -> Rules {
        Rules { store }
    }

    pub async fn list(&self) -> Result<Vec<Rule>, Error> {
        Ok(self.store.call(|c| crate::store::alerts::list(c)).await?)
    }

    /// The rule `id`; an id that could not be a rule's is not found either.
    pub async fn get(&self, id: &str) -> Result<Rule, Error> {
        if !valid_id(id) {
            return Err(Error::NotFound("alert rule"));
        }
        let id = id.to_string();
        self.store
            .call(move |c| crate::store::alerts::get(c, &id))
            .await?
            .ok_or(Error::NotFound("alert rule"))
    }

    /// A new rule (its id given, or made up); every field but level, enabled, cooldown and
    /// description is required.
    pub async fn create(&self, mut input: RuleInput) -> Result<Rule, Error> {
        let id = match input.id.take() {
            Some(id) if valid_id(id.trim()) => id.trim().to_string(),
            Some(_) => {
                return Err(Invalid::new("id", "id must be 1 to 64 of a-z, 0-9, _ and -").into())
            }
            None => format!("rule_{}", crate::auth::random_hex::<4>()),
        };
        let rule = input.apply(new_rule(id.clone()), true)?;
        let check = id.clone();
        let exists = self
            .store
            .call(move |c| crate::store::alerts::get(c, &check))
            .await?
            .is_some();
        if exists {
            return Err(Error::Conflict {
                field: "id",
                message: format!("alert rule {id} already exists"),
            });
        }
        self.save(rule).await
    }

    /// Changes rule `id`: `full` (PUT) requires every field a new rule does.
    pub async fn update(&self, id: &str, input: RuleInput, full: bool) -> Result<Rule, Error> {
        if !valid_id(id) {
            return Err(Error::NotFound("alert rule"));
        }
        if input.id.as_deref().is_some_and(|i| i != id) {
            return Err(Invalid::new("id", "id cannot be changed").into());
        }
        let current = self.get(id).await?;
        let rule = input.apply(current, full)?;
        self.save(rule).await
    }

    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        if !valid_id(id) {
            return Err(Error::NotFound("alert rule"));
        }
        let id = id.to_string();
        Ok(self
            .store
            .call(move |c| crate::store::alerts::delete(c, &id))
            .await?)
    }

    async fn save(&self, rule: Rule) -> Result<Rule, Error> {
        let r = rule.clone();
        let now = crate::time::now();
        self.store
            .call(move |c| crate::store::alerts::upsert(c, &r, now))
            .await?;
        Ok(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_plain() {
        assert!(valid_id("cpu_high") && valid_id("a-1"));
        for bad in ["", "CPU", "a b", "../x", &"x".repeat(65)] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
