//! Alert rules evaluated against current metric values, one [`Evaluator::tick`] per
//! collector tick. Pure: no I/O, no clock; `now` (Unix seconds) is passed in, so tests drive
//! it with plain integers.
//!
//! # Conditions
//!
//! A [`Rule`] compares one metric with a threshold using a [`Condition`] (`>`, `>=`, `<`,
//! `<=`, `==`, `!=`). `==` and `!=` compare with a tolerance of
//! `1e-9 * max(1, |threshold|)` (an infinite threshold only equals itself). A NaN value, or a
//! NaN threshold, never holds (not even for `!=`).
//!
//! # One tick
//!
//! Rules are taken in the order given; only the first rule of a given `id` counts (later
//! duplicates are ignored). For each rule:
//!
//! - **Stale alert.** If the rule has an active alert and the rule is now disabled, or its
//!   `metric_name`, `condition` or `threshold` differ from the alert's, the alert is resolved
//!   ([`Event::Resolved`]) whatever the metric says. A changed rule is then evaluated afresh
//!   below on the same tick; its cooldown still counts from its last raise, so a changed
//!   threshold that still holds raises again only once out of cooldown.
//! - **Disabled** rules are not evaluated further.
//! - **No value.** If the metric has no current value (the callback returns `None`, or NaN:
//!   a NaN reading is not a measurement), the rule's state does not change: no raise, no
//!   resolve, no update.
//! - **Holds, no active alert** → raise ([`Event::Raised`], a new [`Alert`] with status
//!   active) if the rule never raised, or `now - last_raised >= cooldown_minutes * 60`.
//!   Held but still in cooldown → nothing: the cooldown stops a flapping metric from raising
//!   again and again. If the clock stepped back before the last raise (`now < last_raised`)
//!   the cooldown counts as over, so a clock correction cannot mute a rule for years.
//! - **Holds, alert active** → the alert's `current_value` and `updated_at` are updated
//!   silently (no event).
//! - **No longer holds, alert active** → resolve: status resolved, `current_value` the value
//!   that no longer holds, `updated_at = resolved_at = now`, [`Event::Resolved`]. The alert
//!   leaves the active set.
//!
//! A rule that is no longer in `rules` (deleted) has its active alert resolved on the tick
//! that notices (keeping its last `current_value`), and everything remembered about it,
//! including its last raise, is forgotten. Memory is thus bounded by the number of rules:
//! one entry per rule that has raised at least once.
//!
//! Events of one tick come in this order: resolutions of deleted rules (by rule id), then
//! the rules in the order given.
//!
//! An alert is a snapshot of its rule when raised: later edits of a rule's name, level,
//! description or cooldown do not touch an active alert (only the three fields above do).
//!
//! # Alert ids
//!
//! `<rule_id>_<YYYYMMDD>_<HHMMSS>`, the raise time in UTC, e.g. rule `cpu_high` raised at
//! `1704067200` → `cpu_high_20240101_000000`. Should one rule raise twice within the same
//! second (cooldown 0 and a changed rule, or sub-second ticks), the second and later ids get
//! `_2`, `_3`, … appended so that ids stay unique.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Relative tolerance of [`Condition::Eq`] and [`Condition::Ne`].
const EQ_TOLERANCE: f64 = 1e-9;

/// How a metric value is compared with a rule's threshold. Wire form: `">"`, `">="`, `"<"`,
/// `"<="`, `"=="`, `"!="`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

impl Condition {
    /// Every condition, in wire-form order.
    pub const ALL: [Condition; 6] = [
        Condition::Gt,
        Condition::Ge,
        Condition::Lt,
        Condition::Le,
        Condition::Eq,
        Condition::Ne,
    ];

    /// The wire form (`">="`) → the condition; anything else → `None`.
    pub fn parse(s: &str) -> Option<Condition> {
        Condition::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Gt => ">",
            Condition::Ge => ">=",
            Condition::Lt => "<",
            Condition::Le => "<=",
            Condition::Eq => "==",
            Condition::Ne => "!=",
        }
    }

    /// Whether `value <condition> threshold`. `Eq`/`Ne` use a tolerance of
    /// `1e-9 * max(1, |threshold|)`. A NaN value or threshold never holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        if value.is_nan() || threshold.is_nan() {
            return false;
        }
        match self {
            Condition::Gt => value > threshold,
            Condition::Ge => value >= threshold,
            Condition::Lt => value < threshold,
            Condition::Le => value <= threshold,
            Condition::Eq => approx_eq(value, threshold),
            Condition::Ne => !approx_eq(value, threshold),
        }
    }
}

/// Neither argument is NaN. An infinite threshold only equals itself (its tolerance would be
/// infinite).
fn approx_eq(value: f64, threshold: f64) -> bool {
    value == threshold
        || (threshold.is_finite()
            && (value - threshold).abs() <= EQ_TOLERANCE * threshold.abs().max(1.0))
}

/// Severity, least to most severe. Wire form: `"info"`, `"warning"`, `"error"`,
/// `"critical"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    /// Every level, least severe first.
    pub const ALL: [Level; 4] = [Level::Info, Level::Warning, Level::Error, Level::Critical];

    /// Case-insensitive: `"WARNING"` → `Warning`; anything else → `None`.
    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }
}

/// One alert rule: raise when `metric_name <condition> threshold`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// E.g. `"cpu_high"`; unique among rules (only the first rule of an id is evaluated).
    pub id: String,
    pub name: String,
    /// E.g. `"system.cpu.usage"`.
    pub metric_name: String,
    pub condition: Condition,
    pub threshold: f64,
    pub level: Level,
    pub enabled: bool,
    /// Minimum time between two raises of this rule.
    pub cooldown_minutes: u32,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Active,
    Resolved,
}

/// One raise of a rule, from raise to resolution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// `<rule_id>_<YYYYMMDD>_<HHMMSS>` (UTC raise time; see the module doc).
    pub id: String,
    pub rule_id: String,
    pub name: String,
    pub description: Option<String>,
    pub level: Level,
    pub status: AlertStatus,
    pub metric_name: String,
    pub condition: Condition,
    pub threshold_value: f64,
    /// Updated on every tick while active; at resolution, the value that no longer held.
    pub current_value: f64,
    /// Unix seconds, the raise time (RFC 3339 on the wire, like every timestamp).
    #[serde(serialize_with = "crate::time::ser")]
    pub created_at: i64,
    /// Unix seconds, the last tick that updated or resolved it.
    #[serde(serialize_with = "crate::time::ser")]
    pub updated_at: i64,
    #[serde(serialize_with = "crate::time::ser_opt")]
    pub resolved_at: Option<i64>,
}

/// What a tick changed, for the caller to store and notify.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Raised(Alert),
    Resolved(Alert),
}

/// What is remembered about one rule that has raised at least once.
#[derive(Debug)]
struct RuleState {
    active: Option<Alert>,
    last_raised: i64,
    /// Raises within the second `last_raised` (for unique alert ids).
    raised_in_second: u32,
}

/// State across ticks: the active alert per rule, and when each rule last raised (for
/// cooldown). One entry per existing rule that has raised.
#[derive(Debug, Default)]
pub struct Evaluator {
    rules: BTreeMap<String, RuleState>,
}

impl Evaluator {
    pub fn new() -> Evaluator {
        Evaluator::default()
    }

    /// One evaluation at `now` (unix seconds) of `rules` against current metric values.
    /// `value(metric_name)` returns None when the metric has no current value.
    pub fn tick(
        &mut self,
        now: i64,
        rules: &[Rule],
        value: &dyn Fn(&str) -> Option<f64>,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        let mut pending: BTreeSet<&str> = rules.iter().map(|r| r.id.as_str()).collect();

        // Deleted rules: resolve their alerts and forget them.
        self.rules.retain(|id, state| {
            if pending.contains(id.as_str()) {
                return true;
            }
            if let Some(alert) = state.active.take() {
                events.push(Event::Resolved(resolve(alert, now, None)));
            }
            false
        });

        for rule in rules {
            // `remove` is true only for the first rule of an id.
            if pending.remove(rule.id.as_str()) {
                self.evaluate(now, rule, value, &mut events);
            }
        }
        events
    }

    fn evaluate(
        &mut self,
        now: i64,
        rule: &Rule,
        value: &dyn Fn(&str) -> Option<f64>,
        events: &mut Vec<Event>,
    ) {
        let mut state = self.rules.get_mut(rule.id.as_str());

        if let Some(st) = state.as_deref_mut() {
            let stale = st
                .active
                .as_ref()
                .is_some_and(|a| !rule.enabled || !same_definition(rule, a));
            if stale {
                if let Some(alert) = st.active.take() {
                    events.push(Event::Resolved(resolve(alert, now, None)));
                }
            }
        }
        if !rule.enabled {
            return;
        }
        let v = match value(&rule.metric_name) {
            Some(v) if !v.is_nan() => v,
            _ => return,
        };
        let holds = rule.condition.holds(v, rule.threshold);

        match state {
            Some(st) => {
                if let Some(alert) = st.active.as_mut() {
                    if holds {
                        alert.current_value = v;
                        alert.updated_at = now;
                    } else if let Some(alert) = st.active.take() {
                        events.push(Event::Resolved(resolve(alert, now, Some(v))));
                    }
                    return;
                }
                if !holds || in_cooldown(now, st.last_raised, rule.cooldown_minutes) {
                    return;
                }
                let nth = if st.last_raised == now {
                    st.raised_in_second.saturating_add(1)
                } else {
                    1
                };
                let alert = raise(rule, v, now, nth);
                st.active = Some(alert.clone());
                st.last_raised = now;
                st.raised_in_second = nth;
                events.push(Event::Raised(alert));
            }
            None if holds => {
                let alert = raise(rule, v, now, 1);
                self.rules.insert(
                    rule.id.clone(),
                    RuleState {
                        active: Some(alert.clone()),
                        last_raised: now,
                        raised_in_second: 1,
                    },
                );
                events.push(Event::Raised(alert));
            }
            None => {}
        }
    }

    /// Active alerts, most severe first, then newest first (then by id, for a stable order).
    pub fn active(&self) -> Vec<Alert> {
        let mut alerts: Vec<Alert> = self
            .rules
            .values()
            .filter_map(|s| s.active.clone())
            .collect();
        alerts.sort_by(|a, b| {
            b.level
                .cmp(&a.level)
                .then(b.created_at.cmp(&a.created_at))
                .then_with(|| a.id.cmp(&b.id))
        });
        alerts
    }

    /// Number of active alerts per level: (info, warning, error, critical).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for alert in self.rules.values().filter_map(|s| s.active.as_ref()) {
            match alert.level {
                Level::Info => c.0 += 1,
                Level::Warning => c.1 += 1,
                Level::Error => c.2 += 1,
                Level::Critical => c.3 += 1,
            }
        }
        c
    }
}

/// Whether the alert was raised by the rule as it is now (the fields that decide it).
fn same_definition(rule: &Rule, alert: &Alert) -> bool {
    let same_threshold = rule.threshold == alert.threshold_value
        || (rule.threshold.is_nan() && alert.threshold_value.is_nan());
    rule.metric_name == alert.metric_name && rule.condition == alert.condition && same_threshold
}

/// Within `cooldown_minutes` after `last_raised`. A clock that stepped back before the last
/// raise ends the cooldown.
fn in_cooldown(now: i64, last_raised: i64, cooldown_minutes: u32) -> bool {
    let elapsed = now.saturating_sub(last_raised);
    (0..i64::from(cooldown_minutes) * 60).contains(&elapsed)
}

/// The `nth` raise of the rule within the second `now` (1 for the first).
fn raise(rule: &Rule, value: f64, now: i64, nth: u32) -> Alert {
    let mut id = alert_id(&rule.id, now);
    if nth > 1 {
        id.push('_');
        id.push_str(&nth.to_string());
    }
    Alert {
        id,
        rule_id: rule.id.clone(),
        name: rule.name.clone(),
        description: rule.description.clone(),
        level: rule.level,
        status: AlertStatus::Active,
        metric_name: rule.metric_name.clone(),
        condition: rule.condition,
        threshold_value: rule.threshold,
        current_value: value,
        created_at: now,
        updated_at: now,
        resolved_at: None,
    }
}

/// `value` is the reading that no longer holds, or `None` to keep the last one.
fn resolve(mut alert: Alert, now: i64, value: Option<f64>) -> Alert {
    if let Some(v) = value {
        alert.current_value = v;
    }
    alert.status = AlertStatus::Resolved;
    alert.updated_at = now;
    alert.resolved_at = Some(now);
    alert
}

/// `("cpu_high", 1704067200)` → `"cpu_high_20240101_000000"` (UTC; times outside years
/// 0000–9999 are clamped to them).
fn alert_id(rule_id: &str, secs: i64) -> String {
    let t = crate::time::rfc3339(secs.clamp(-62_167_219_200, 253_402_300_799));
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    let (date, time) = digits.split_at(digits.len().min(8));
    format!("{rule_id}_{date}_{time}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_704_067_200; // 2024-01-01T00:00:00Z

    fn rule(id: &str, metric: &str, condition: Condition, threshold: f64) -> Rule {
        Rule {
            id: id.to_string(),
            name: format!("{id} name"),
            metric_name: metric.to_string(),
            condition,
            threshold,
            level: Level::Warning,
            enabled: true,
            cooldown_minutes: 0,
            description: Some(format!("{id} description")),
        }
    }

    fn cpu(threshold: f64) -> Rule {
        rule("cpu_high", "system.cpu.usage", Condition::Gt, threshold)
    }

    fn raised(events: &[Event]) -> Vec<&Alert> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Raised(a) => Some(a),
                Event::Resolved(_) => None,
            })
            .collect()
    }

    fn resolved(events: &[Event]) -> Vec<&Alert> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Resolved(a) => Some(a),
                Event::Raised(_) => None,
            })
            .collect()
    }

    #[test]
    fn fires_when_threshold_crossed() {
        let mut ev = Evaluator::new();
        let rules = [cpu(80.0)];
        assert!(ev.tick(T0, &rules, &|_| Some(50.0)).is_empty());
        assert!(ev.tick(T0 + 10, &rules, &|_| Some(80.0)).is_empty());
        let events = ev.tick(T0 + 20, &rules, &|m| {
            assert_eq!(m, "system.cpu.usage");
            Some(95.5)
        });
        assert_eq!(events.len(), 1);
        let a = raised(&events)[0];
        assert_eq!(
            *a,
            Alert {
                id: "cpu_high_20240101_000020".into(),
                rule_id: "cpu_high".into(),
                name: "cpu_high name".into(),
                description: Some("cpu_high description".into()),
                level: Level::Warning,
                status: AlertStatus::Active,
                metric_name: "system.cpu.usage".into(),
                condition: Condition::Gt,
                threshold_value: 80.0,
                current_value: 95.5,
                created_at: T0 + 20,
                updated_at: T0 + 20,
                resolved_at: None,
            }
        );
        assert_eq!(ev.active(), vec![a.clone()]);
    }

    #[test]
    fn every_operator() {
        use Condition::*;
        let cases = [
            (Gt, [false, false, true]),
            (Ge, [false, true, true]),
            (Lt, [true, false, false]),
            (Le, [true, true, false]),
            (Eq, [false, true, false]),
            (Ne, [true, false, true]),
        ];
        for (c, expect) in cases {
            for (value, want) in [9.0, 10.0, 11.0].into_iter().zip(expect) {
                assert_eq!(c.holds(value, 10.0), want, "{value} {} 10", c.as_str());
            }
        }
        // Through the evaluator too: each operator raises exactly when it holds.
        for (c, expect) in cases {
            for (value, want) in [9.0, 10.0, 11.0].into_iter().zip(expect) {
                let mut ev = Evaluator::new();
                let events = ev.tick(T0, &[rule("r", "m", c, 10.0)], &|_| Some(value));
                assert_eq!(raised(&events).len(), usize::from(want), "{c:?} {value}");
            }
        }
    }

    #[test]
    fn eq_tolerance() {
        use Condition::{Eq, Ne};
        // Absolute 1e-9 below |threshold| 1.
        assert!(Eq.holds(0.1 + 0.2, 0.3));
        assert!(Eq.holds(5e-10, 0.0));
        assert!(!Eq.holds(2e-9, 0.0));
        assert!(Ne.holds(2e-9, 0.0));
        assert!(!Ne.holds(0.1 + 0.2, 0.3));
        // Relative above it.
        assert!(Eq.holds(1e12 + 500.0, 1e12));
        assert!(!Eq.holds(1e12 + 2000.0, 1e12));
        assert!(Eq.holds(-1e12 - 500.0, -1e12));
        // Infinities only equal themselves.
        assert!(Eq.holds(f64::INFINITY, f64::INFINITY));
        assert!(!Eq.holds(1e300, f64::INFINITY));
        assert!(Ne.holds(1e300, f64::INFINITY));
        assert!(!Eq.holds(f64::INFINITY, 1e300));
        // Ordering operators are exact.
        assert!(Condition::Gt.holds(10.0 + 1e-12, 10.0));
    }

    #[test]
    fn nan_never_holds() {
        for c in Condition::ALL {
            assert!(!c.holds(f64::NAN, 10.0), "{c:?}");
            assert!(!c.holds(10.0, f64::NAN), "{c:?}");
        }
        // A NaN reading is treated as no value: it neither raises nor resolves.
        let mut ev = Evaluator::new();
        let rules = [rule("r", "m", Condition::Ne, 10.0)];
        assert!(ev.tick(T0, &rules, &|_| Some(f64::NAN)).is_empty());
        assert_eq!(raised(&ev.tick(T0 + 1, &rules, &|_| Some(3.0))).len(), 1);
        assert!(ev.tick(T0 + 2, &rules, &|_| Some(f64::NAN)).is_empty());
        let a = &ev.active()[0];
        assert_eq!((a.current_value, a.updated_at), (3.0, T0 + 1));
        // A rule with a NaN threshold never raises, and is not "changed" on every tick.
        let mut ev = Evaluator::new();
        let rules = [rule("r", "m", Condition::Ne, f64::NAN)];
        assert!(ev.tick(T0, &rules, &|_| Some(1.0)).is_empty());
        assert!(ev.active().is_empty());
    }

    #[test]
    fn no_value_changes_nothing() {
        let mut ev = Evaluator::new();
        let rules = [cpu(80.0)];
        assert!(ev.tick(T0, &rules, &|_| None).is_empty());
        assert!(ev.active().is_empty());
        ev.tick(T0 + 1, &rules, &|_| Some(90.0));
        // Missing while active: neither resolved nor updated.
        assert!(ev.tick(T0 + 2, &rules, &|_| None).is_empty());
        let a = &ev.active()[0];
        assert_eq!((a.current_value, a.updated_at), (90.0, T0 + 1));
        // Other metrics present does not matter.
        let only_mem = |m: &str| (m == "system.memory.usage").then_some(10.0);
        assert!(ev.tick(T0 + 3, &rules, &only_mem).is_empty());
        assert_eq!(ev.counts(), (0, 1, 0, 0));
    }

    #[test]
    fn stays_active_without_duplicate_events() {
        let mut ev = Evaluator::new();
        let rules = [cpu(80.0)];
        assert_eq!(ev.tick(T0, &rules, &|_| Some(90.0)).len(), 1);
        for (i, v) in [91.0, 99.0, 85.0].into_iter().enumerate() {
            let now = T0 + 10 * (i as i64 + 1);
            assert!(ev.tick(now, &rules, &|_| Some(v)).is_empty());
            let active = ev.active();
            assert_eq!(active.len(), 1);
            assert_eq!(active[0].current_value, v);
            assert_eq!(active[0].updated_at, now);
            assert_eq!(active[0].created_at, T0);
            assert_eq!(active[0].id, "cpu_high_20240101_000000");
        }
    }

    #[test]
    fn resolves_when_condition_stops() {
        let mut ev = Evaluator::new();
        let rules = [cpu(80.0)];
        ev.tick(T0, &rules, &|_| Some(90.0));
        ev.tick(T0 + 10, &rules, &|_| Some(95.0));
        let events = ev.tick(T0 + 20, &rules, &|_| Some(40.0));
        assert_eq!(events.len(), 1);
        let a = resolved(&events)[0];
        assert_eq!(a.status, AlertStatus::Resolved);
        assert_eq!(a.resolved_at, Some(T0 + 20));
        assert_eq!(a.updated_at, T0 + 20);
        assert_eq!(a.created_at, T0);
        assert_eq!(a.current_value, 40.0);
        assert_eq!(a.id, "cpu_high_20240101_000000");
        assert!(ev.active().is_empty());
        assert_eq!(ev.counts(), (0, 0, 0, 0));
        // Staying below: nothing more.
        assert!(ev.tick(T0 + 30, &rules, &|_| Some(40.0)).is_empty());
    }

    #[test]
    fn cooldown_blocks_then_allows() {
        let mut ev = Evaluator::new();
        let mut r = cpu(80.0);
        r.cooldown_minutes = 5;
        let rules = [r];
        assert_eq!(raised(&ev.tick(T0, &rules, &|_| Some(90.0))).len(), 1);
        assert_eq!(
            resolved(&ev.tick(T0 + 60, &rules, &|_| Some(10.0))).len(),
            1
        );
        // Flapping back above within 5 minutes of the raise: nothing.
        assert!(ev.tick(T0 + 120, &rules, &|_| Some(90.0)).is_empty());
        assert!(ev.tick(T0 + 299, &rules, &|_| Some(90.0)).is_empty());
        assert!(ev.active().is_empty());
        // Exactly 5 minutes after the last raise: raises again.
        let events = ev.tick(T0 + 300, &rules, &|_| Some(90.0));
        assert_eq!(raised(&events)[0].id, "cpu_high_20240101_000500");
        // Cooldown counts from the last raise, not from the resolution.
        ev.tick(T0 + 301, &rules, &|_| Some(10.0));
        assert!(ev.tick(T0 + 599, &rules, &|_| Some(90.0)).is_empty());
        assert_eq!(raised(&ev.tick(T0 + 600, &rules, &|_| Some(90.0))).len(), 1);
    }

    #[test]
    fn clock_stepping_back_ends_cooldown() {
        let mut ev = Evaluator::new();
        let mut r = cpu(80.0);
        r.cooldown_minutes = 60;
        let rules = [r];
        ev.tick(T0, &rules, &|_| Some(90.0));
        ev.tick(T0 + 1, &rules, &|_| Some(10.0));
        assert!(ev.tick(T0 + 2, &rules, &|_| Some(90.0)).is_empty());
        assert_eq!(
            raised(&ev.tick(T0 - 86_400, &rules, &|_| Some(90.0))).len(),
            1
        );
        // Extreme clocks do not overflow.
        let mut ev = Evaluator::new();
        ev.tick(i64::MAX, &rules, &|_| Some(90.0));
        ev.tick(i64::MAX, &rules, &|_| Some(10.0));
        assert_eq!(raised(&ev.tick(i64::MIN, &rules, &|_| Some(90.0))).len(), 1);
    }

    #[test]
    fn disabled_rule_resolves_its_alert() {
        let mut ev = Evaluator::new();
        let mut r = cpu(80.0);
        ev.tick(T0, std::slice::from_ref(&r), &|_| Some(90.0));
        r.enabled = false;
        // Resolved even though the metric still holds, or has no value.
        let events = ev.tick(T0 + 10, std::slice::from_ref(&r), &|_| None);
        assert_eq!(events.len(), 1);
        let a = resolved(&events)[0];
        assert_eq!(a.resolved_at, Some(T0 + 10));
        assert_eq!(a.current_value, 90.0);
        assert!(ev.active().is_empty());
        // Stays quiet while disabled.
        assert!(ev
            .tick(T0 + 20, std::slice::from_ref(&r), &|_| Some(99.0))
            .is_empty());
        // Re-enabled: raises again (cooldown 0).
        r.enabled = true;
        let events = ev.tick(T0 + 30, std::slice::from_ref(&r), &|_| Some(99.0));
        assert_eq!(raised(&events).len(), 1);
    }

    #[test]
    fn deleted_rule_resolves_and_is_forgotten() {
        let mut ev = Evaluator::new();
        let mut c = cpu(80.0);
        c.cooldown_minutes = 60;
        let mem = rule("mem_high", "system.memory.usage", Condition::Ge, 90.0);
        let both = [c.clone(), mem.clone()];
        let events = ev.tick(T0, &both, &|_| Some(95.0));
        assert_eq!(raised(&events).len(), 2);
        assert_eq!(ev.rules.len(), 2);

        let events = ev.tick(T0 + 10, std::slice::from_ref(&mem), &|_| Some(95.0));
        assert_eq!(events.len(), 1);
        let a = resolved(&events)[0];
        assert_eq!(a.rule_id, "cpu_high");
        assert_eq!(a.resolved_at, Some(T0 + 10));
        assert_eq!(ev.rules.len(), 1);
        assert_eq!(ev.active().len(), 1);

        // Re-created with the same id: its last raise was forgotten, so no cooldown.
        let events = ev.tick(T0 + 20, &both, &|_| Some(95.0));
        assert_eq!(raised(&events)[0].rule_id, "cpu_high");

        // Deleting everything leaves nothing behind.
        let events = ev.tick(T0 + 30, &[], &|_| Some(95.0));
        assert_eq!(resolved(&events).len(), 2);
        assert!(ev.rules.is_empty());
    }

    #[test]
    fn memory_bounded_by_rules() {
        let mut ev = Evaluator::new();
        for i in 0..1000 {
            let rules = [rule(&format!("r{i}"), "m", Condition::Gt, 0.0)];
            ev.tick(T0 + i, &rules, &|_| Some(1.0));
            assert!(ev.rules.len() <= 1);
        }
        // Rules that never raised take no memory.
        let rules: Vec<Rule> = (0..100)
            .map(|i| rule(&format!("q{i}"), "m", Condition::Lt, 0.0))
            .collect();
        ev.tick(T0 + 2000, &rules, &|_| Some(1.0));
        assert!(ev.rules.is_empty());
    }

    #[test]
    fn changed_rule_resolves_and_is_evaluated_afresh() {
        let mut ev = Evaluator::new();
        ev.tick(T0, &[cpu(80.0)], &|_| Some(90.0));

        // Changed threshold that still holds (cooldown 0): resolved and raised again.
        let events = ev.tick(T0 + 10, &[cpu(85.0)], &|_| Some(90.0));
        assert_eq!(events.len(), 2);
        assert!(matches!(&events[0], Event::Resolved(a) if a.threshold_value == 80.0));
        assert!(matches!(&events[1], Event::Raised(a) if a.threshold_value == 85.0));

        // Changed threshold that no longer holds: resolved only.
        let events = ev.tick(T0 + 20, &[cpu(95.0)], &|_| Some(90.0));
        assert_eq!(events.len(), 1);
        assert_eq!(resolved(&events)[0].threshold_value, 85.0);
        assert!(ev.active().is_empty());

        // Changed condition and metric name count too.
        ev.tick(T0 + 30, &[cpu(80.0)], &|_| Some(90.0));
        let mut r = cpu(80.0);
        r.condition = Condition::Ge;
        let events = ev.tick(T0 + 40, std::slice::from_ref(&r), &|_| Some(90.0));
        assert_eq!((resolved(&events).len(), raised(&events).len()), (1, 1));
        r.metric_name = "system.load".into();
        let events = ev.tick(T0 + 50, std::slice::from_ref(&r), &|_| None);
        assert_eq!((resolved(&events).len(), raised(&events).len()), (1, 0));

        // Name, level and description edits do not touch the active alert.
        let mut ev = Evaluator::new();
        ev.tick(T0, &[cpu(80.0)], &|_| Some(90.0));
        let mut r = cpu(80.0);
        r.name = "renamed".into();
        r.level = Level::Critical;
        r.description = None;
        assert!(ev.tick(T0 + 10, &[r], &|_| Some(90.0)).is_empty());
        assert_eq!(ev.active()[0].name, "cpu_high name");
    }

    #[test]
    fn changed_rule_still_in_cooldown_does_not_raise() {
        let mut ev = Evaluator::new();
        let mut r = cpu(80.0);
        r.cooldown_minutes = 10;
        ev.tick(T0, std::slice::from_ref(&r), &|_| Some(90.0));
        r.threshold = 85.0;
        let events = ev.tick(T0 + 60, std::slice::from_ref(&r), &|_| Some(90.0));
        assert_eq!((resolved(&events).len(), raised(&events).len()), (1, 0));
        assert!(ev
            .tick(T0 + 599, std::slice::from_ref(&r), &|_| Some(90.0))
            .is_empty());
        let events = ev.tick(T0 + 600, std::slice::from_ref(&r), &|_| Some(90.0));
        assert_eq!(raised(&events)[0].threshold_value, 85.0);
    }

    #[test]
    fn same_second_raises_get_unique_ids() {
        let mut ev = Evaluator::new();
        ev.tick(T0, &[cpu(80.0)], &|_| Some(90.0));
        let events = ev.tick(T0, &[cpu(85.0)], &|_| Some(90.0));
        let first = resolved(&events)[0].id.clone();
        let second = raised(&events)[0].id.clone();
        assert_eq!(first, "cpu_high_20240101_000000");
        assert_eq!(second, "cpu_high_20240101_000000_2");
        let events = ev.tick(T0, &[cpu(86.0)], &|_| Some(90.0));
        assert_eq!(raised(&events)[0].id, "cpu_high_20240101_000000_3");
        // The next second starts over.
        let events = ev.tick(T0 + 1, &[cpu(87.0)], &|_| Some(90.0));
        assert_eq!(raised(&events)[0].id, "cpu_high_20240101_000001");
    }

    #[test]
    fn duplicate_rule_ids_first_wins() {
        let mut ev = Evaluator::new();
        let rules = [cpu(80.0), cpu(95.0)];
        let events = ev.tick(T0, &rules, &|_| Some(90.0));
        assert_eq!(events.len(), 1);
        assert_eq!(raised(&events)[0].threshold_value, 80.0);
        // And the second does not make the first look changed on every tick.
        assert!(ev.tick(T0 + 10, &rules, &|_| Some(90.0)).is_empty());
    }

    #[test]
    fn active_ordering() {
        let mut ev = Evaluator::new();
        let mk = |id: &str, level| {
            let mut r = rule(id, id, Condition::Gt, 0.0);
            r.level = level;
            r
        };
        let mut rules = vec![
            mk("old_warn", Level::Warning),
            mk("old_crit", Level::Critical),
        ];
        ev.tick(T0, &rules, &|_| Some(1.0));
        rules.extend([
            mk("new_warn", Level::Warning),
            mk("info", Level::Info),
            mk("new_crit", Level::Critical),
            mk("error", Level::Error),
        ]);
        ev.tick(T0 + 60, &rules, &|_| Some(1.0));
        let order: Vec<String> = ev.active().into_iter().map(|a| a.rule_id).collect();
        assert_eq!(
            order,
            ["new_crit", "old_crit", "error", "new_warn", "old_warn", "info"]
        );
    }

    #[test]
    fn counts_per_level() {
        let mut ev = Evaluator::new();
        assert_eq!(ev.counts(), (0, 0, 0, 0));
        let levels = [
            Level::Info,
            Level::Warning,
            Level::Warning,
            Level::Error,
            Level::Critical,
            Level::Critical,
            Level::Critical,
        ];
        let rules: Vec<Rule> = levels
            .iter()
            .enumerate()
            .map(|(i, &level)| {
                let mut r = rule(&format!("r{i}"), &format!("m{i}"), Condition::Gt, 50.0);
                r.level = level;
                r
            })
            .collect();
        ev.tick(T0, &rules, &|_| Some(60.0));
        assert_eq!(ev.counts(), (1, 2, 1, 3));
        // m4 (a critical one) recovers.
        ev.tick(T0 + 1, &rules, &|m| {
            Some(if m == "m4" { 10.0 } else { 60.0 })
        });
        assert_eq!(ev.counts(), (1, 2, 1, 2));
    }

    #[test]
    fn alert_id_format() {
        assert_eq!(
            alert_id("cpu_high", 1_704_067_200),
            "cpu_high_20240101_000000"
        );
        assert_eq!(alert_id("x", 1_709_251_199), "x_20240229_235959");
        assert_eq!(alert_id("x", 951_782_400 + 3_723), "x_20000229_010203");
        assert_eq!(alert_id("x", 0), "x_19700101_000000");
        assert_eq!(alert_id("x", -1), "x_19691231_235959");
        assert_eq!(alert_id("x", 4_102_444_800), "x_21000101_000000");
        assert_eq!(alert_id("x", 253_402_300_799), "x_99991231_235959");
        // Extremes format without panicking.
        assert!(alert_id("x", i64::MAX).starts_with("x_"));
        assert!(alert_id("x", i64::MIN).starts_with("x_"));
    }

    #[test]
    fn condition_parse_and_serde() {
        for c in Condition::ALL {
            assert_eq!(Condition::parse(c.as_str()), Some(c));
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<Condition>(&json).unwrap(), c);
        }
        assert_eq!(serde_json::to_string(&Condition::Ge).unwrap(), r#"">=""#);
        assert_eq!(
            serde_json::from_str::<Condition>(r#""!=""#).unwrap(),
            Condition::Ne
        );
        for bad in ["", "=", "=>", " >", "gt", "Gt", "<>"] {
            assert_eq!(Condition::parse(bad), None, "{bad:?}");
        }
        assert!(serde_json::from_str::<Condition>(r#""gt""#).is_err());
    }

    #[test]
    fn level_parse_and_serde() {
        for l in Level::ALL {
            assert_eq!(Level::parse(l.as_str()), Some(l));
            assert_eq!(Level::parse(&l.as_str().to_uppercase()), Some(l));
            let json = serde_json::to_string(&l).unwrap();
            assert_eq!(json, format!("\"{}\"", l.as_str()));
            assert_eq!(serde_json::from_str::<Level>(&json).unwrap(), l);
        }
        assert_eq!(Level::parse("Warning"), Some(Level::Warning));
        assert_eq!(
            serde_json::to_string(&Level::Warning).unwrap(),
            r#""warning""#
        );
        for bad in ["", "warn", "fatal", " info"] {
            assert_eq!(Level::parse(bad), None, "{bad:?}");
        }
        assert!(serde_json::from_str::<Level>(r#""Warning""#).is_err());
        assert!(Level::Info < Level::Warning && Level::Error < Level::Critical);
    }

    #[test]
    fn alert_and_rule_json() {
        let mut ev = Evaluator::new();
        let events = ev.tick(T0, &[cpu(80.0)], &|_| Some(90.0));
        let v = serde_json::to_value(raised(&events)[0]).unwrap();
        assert_eq!(v["status"], "active");
        assert_eq!(v["level"], "warning");
        assert_eq!(v["condition"], ">");
        assert_eq!(v["threshold_value"], 80.0);
        assert_eq!(v["created_at"], crate::time::rfc3339(T0));
        assert!(v["resolved_at"].is_null());
        let r = serde_json::to_value(cpu(80.0)).unwrap();
        assert_eq!(r["condition"], ">");
        assert_eq!(r["cooldown_minutes"], 0);
    }
}
