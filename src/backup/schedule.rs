//! When scheduled backups are due; which backups retention removes ([`retention`]). Pure: no
//! I/O and no clock reads — every function takes `now` (Unix seconds) as a parameter.
//!
//! **All times of day are UTC.** Routers often run without a time zone set (OpenWrt's
//! default is UTC anyway), and UTC has no daylight-saving jumps, so a slot can neither be
//! skipped nor happen twice. An owner in UTC+2 who wants 03:30 local writes `"01:30"`.
//!
//! ## Schedules
//! One shape for the API body and the TOML configuration, written by hand:
//!
//! ```text
//! {"name": "nightly", "frequency": "daily",  "at": "03:30", "backup_type": "full", "enabled": true}
//! {"name": "weekly",  "frequency": "weekly", "weekday": "sun", "at": "04:00"}
//! {"name": "db",      "frequency": "hourly", "at": ":15", "backup_type": "database"}
//! ```
//! ```toml
//! [[backup.schedules]]
//! name = "nightly"
//! frequency = "daily"
//! at = "03:30"
//! ```
//!
//! | field         | value                                                            | default  |
//! |---------------|------------------------------------------------------------------|----------|
//! | `name`        | 1–64 characters, no control characters; unique (ignoring case)   | required |
//! | `frequency`   | `hourly`, `daily` or `weekly`                                    | required |
//! | `at`          | daily/weekly: `HH:MM` (`3:30` too); hourly: `:MM` or `MM`, minutes past every hour | `00:00` / `:00` |
//! | `weekday`     | weekly only: `mon` … `sun` or the full English name              | required for weekly |
//! | `backup_type` | `full`, `database`, `config` or `files`                          | `full`   |
//! | `enabled`     | `true` / `false`                                                 | `true`   |
//!
//! Values (`frequency`, `weekday`, `backup_type`) are matched ignoring case; unknown fields
//! are refused, and every error names its field ([`Invalid`]; [`validate_all`] prefixes
//! `schedules[i].` for the configuration's list).
//!
//! **When a schedule runs** ([`due`]). Each schedule has *slots*: the instants its frequency
//! names (every day at 03:30 UTC, …). It is due when its latest slot at or before `now` is
//! later than its last run. Hence:
//! - a schedule never runs twice for one slot (the run records `last_run` ≥ that slot);
//! - slots missed while the router was off are run **once** at start-up, not once each
//!   ([`missed_slots`] says how many were skipped, for the log);
//! - a schedule that never ran is due at once: a new schedule gives a backup now rather than
//!   after up to a week without one (a caller that wants the first slot instead passes
//!   the schedule's creation time as `last_run`);
//! - a `last_run` more than [`CLOCK_SLACK`] in the future means the clock was set back (a
//!   router without RTC that ran before NTP corrected it): the schedule runs once, which
//!   records a sane `last_run`, instead of waiting until the clock reaches the bogus one.
//!   A smaller step back only delays the schedule to its first slot after `last_run`.
//!
//! The caller records as `last_run` the `now` at which it started a due run (the start
//! time, not the slot: a slot run late still counts for that slot), and sleeps until
//! [`next_due`].
//!
//! Which backups retention removes: [`retention`].

use super::catalog::Kind;
use crate::error::Invalid;
use serde::{Serialize, Serializer};

pub mod retention;

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;

/// How far in the future a recorded `last_run` may be before it counts as a clock set back.
pub const CLOCK_SLACK: i64 = HOUR;
/// Schedules at most (each is a timer and a row of `GET /backup/stats`).
pub const MAX_SCHEDULES: usize = 32;
/// Longest schedule name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

// ---- weekdays ----

/// A day of the week; weeks start on Monday (ISO 8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Self::Mon,
        Self::Tue,
        Self::Wed,
        Self::Thu,
        Self::Fri,
        Self::Sat,
        Self::Sun,
    ];
    const NAMES: [&'static str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];

    /// `"mon"`.
    pub fn as_str(self) -> &'static str {
        &Self::NAMES[self.index()][..3]
    }

    /// `"sun"`, `"Sunday"` (case ignored, trimmed).
    pub fn parse(s: &str) -> Option<Weekday> {
        let s = s.trim().to_ascii_lowercase();
        let i = Self::NAMES.iter().position(|n| *n == s || n[..3] == s)?;
        Some(Self::ALL[i])
    }

    /// Monday = 0 … Sunday = 6.
    fn index(self) -> usize {
        self as usize
    }

    /// The weekday of a Unix time (1970-01-01 was a Thursday).
    pub fn of(t: i64) -> Weekday {
        Self::ALL[(t.div_euclid(DAY) + 3).rem_euclid(7) as usize]
    }
}

// ---- frequencies: slots ----

/// When a schedule's slots are, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    Hourly {
        minute: u8,
    },
    Daily {
        hour: u8,
        minute: u8,
    },
    Weekly {
        weekday: Weekday,
        hour: u8,
        minute: u8,
    },
}

impl Frequency {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Hourly { .. } => "hourly",
            Self::Daily { .. } => "daily",
            Self::Weekly { .. } => "weekly",
        }
    }

    /// Slots repeat with this period: UTC has no DST and no leap seconds in Unix time, so
    /// months, years and leap days need no special case.
    fn period(&self) -> i64 {
        match self {
            Self::Hourly { .. } => HOUR,
            Self::Daily { .. } => DAY,
            Self::Weekly { .. } => WEEK,
        }
    }

    /// The first slot at or after the Unix epoch, in seconds (a slot is `phase + k·period`).
    fn phase(&self) -> i64 {
        let hm = |h: u8, m: u8| i64::from(h) * HOUR + i64::from(m) * 60;
        match *self {
            Self::Hourly { minute } => hm(0, minute),
            Self::Daily { hour, minute } => hm(hour, minute),
            // Day 0 was a Thursday (index 3): weekday w falls on days ≡ w − 3 (mod 7).
            Self::Weekly {
                weekday,
                hour,
                minute,
            } => (weekday.index() as i64 + 4).rem_euclid(7) * DAY + hm(hour, minute),
        }
    }

    /// The latest slot at or before `t`.
    pub fn slot_at_or_before(&self, t: i64) -> i64 {
        t - (t - self.phase()).rem_euclid(self.period())
    }

    /// The first slot strictly after `t`.
    pub fn slot_after(&self, t: i64) -> i64 {
        self.slot_at_or_before(t) + self.period()
    }

    /// `at` as written in a schedule: `"03:30"`, or `":15"` for hourly.
    pub fn at(&self) -> String {
        match *self {
            Self::Hourly { minute } => format!(":{minute:02}"),
            Self::Daily { hour, minute } | Self::Weekly { hour, minute, .. } => {
                format!("{hour:02}:{minute:02}")
            }
        }
    }

    pub fn weekday(&self) -> Option<Weekday> {
        match *self {
            Self::Weekly { weekday, .. } => Some(weekday),
            _ => None,
        }
    }
}

// ---- schedules ----

/// A validated schedule. Serializes to the shape [`ScheduleInput`] reads (round trip).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub name: String,
    pub frequency: Frequency,
    pub backup_type: Kind,
    pub enabled: bool,
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            name: &'a str,
            frequency: &'static str,
            at: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            weekday: Option<&'static str>,
            backup_type: &'static str,
            enabled: bool,
        }
        View {
            name: &self.name,
            frequency: self.frequency.name(),
            at: self.frequency.at(),
            weekday: self.frequency.weekday().map(Weekday::as_str),
            backup_type: self.backup_type.as_str(),
            enabled: self.enabled,
        }
        .serialize(s)
    }
}

pub use crate::input::ScheduleInput;

impl ScheduleInput {
    /// A new schedule: `name` and `frequency` required, the rest defaulted.
    pub fn create(self) -> Result<Schedule, Invalid> {
        let need = |f: &str| Invalid::new(f, format!("{f} is required"));
        let name = validate_name(self.name.as_deref().ok_or_else(|| need("name"))?)?;
        let frequency = self.frequency.as_deref().ok_or_else(|| need("frequency"))?;
        Ok(Schedule {
            name,
            frequency: frequency_of(frequency, self.at.as_deref(), self.weekday.as_deref())?,
            backup_type: match &self.backup_type {
                Some(t) => backup_type(t)?,
                None => Kind::Full,
            },
            enabled: self.enabled.unwrap_or(true),
        })
    }

    /// `current` with the fields given here (PATCH; a PUT sends them all). `at` and `weekday`
    /// carry over while the frequency stays (a weekday also from weekly to weekly); when
    /// `frequency` changes to another one, they are read afresh — given or defaulted — since
    /// `"03:30"` means nothing to an hourly schedule.
    pub fn update(self, current: &Schedule) -> Result<Schedule, Invalid> {
        let name = match &self.name {
            Some(n) => validate_name(n)?,
            None => current.name.clone(),
        };
        let old = current.frequency;
        let frequency = match self.frequency.as_deref() {
            Some(f) if !f.trim().eq_ignore_ascii_case(old.name()) => {
                frequency_of(f, self.at.as_deref(), self.weekday.as_deref())?
            }
            _ => {
                let at = self.at.unwrap_or_else(|| old.at());
                let weekday = self
                    .weekday
                    .or_else(|| old.weekday().map(|w| w.as_str().to_string()));
                frequency_of(old.name(), Some(&at), weekday.as_deref())?
            }
        };
        Ok(Schedule {
            name,
            frequency,
            backup_type: match &self.backup_type {
                Some(t) => backup_type(t)?,
                None => current.backup_type,
            },
            enabled: self.enabled.unwrap_or(current.enabled),
        })
    }
}

/// The schedules of the configuration's `[[backup.schedules]]`, validated; an error names
/// the key (`backup.schedules[1].at: …`).
pub fn from_config(c: &crate::config::BackupConfig) -> Result<Vec<Schedule>, String> {
    validate_all(c.schedules.clone()).map_err(|e| format!("backup.{}: {}", e.field, e.message))
}

/// The schedules of the configuration file: each created, names unique (ignoring case), at
/// most [`MAX_SCHEDULES`]. Errors name the field as `schedules[i].field`.
pub fn validate_all(inputs: Vec<ScheduleInput>) -> Result<Vec<Schedule>, Invalid> {
    if inputs.len() > MAX_SCHEDULES {
        return Err(Invalid::new(
            "schedules",
            format!("at most {MAX_SCHEDULES} schedules"),
        ));
    }
    let mut out: Vec<Schedule> = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        let at = |e: Invalid| Invalid::new(format!("schedules[{i}].{}", e.field), e.message);
        let s = input.create().map_err(at)?;
        if let Err(e) = unique_name(&out, &s.name, None) {
            return Err(at(e));
        }
        out.push(s);
    }
    Ok(out)
}

/// Refuses `name` when another schedule of `existing` (other than the one named `except`,
/// the schedule being renamed) has it, ignoring case.
pub fn unique_name(existing: &[Schedule], name: &str, except: Option<&str>) -> Result<(), Invalid> {
    let same = |a: &str, b: &str| a.to_lowercase() == b.to_lowercase();
    let clash = existing
        .iter()
        .any(|s| same(&s.name, name) && !except.is_some_and(|e| same(e, &s.name)));
    if clash {
        return Err(Invalid::new(
            "name",
            format!("a schedule named {name:?} exists already"),
        ));
    }
    Ok(())
}

fn validate_name(s: &str) -> Result<String, Invalid> {
    let n = s.trim();
    if n.is_empty() || n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control) {
        return Err(Invalid::new(
            "name",
            format!("name must be 1 to {MAX_NAME_CHARS} characters without control characters"),
        ));
    }
    Ok(n.to_string())
}

fn backup_type(s: &str) -> Result<Kind, Invalid> {
    Kind::parse(s).ok_or_else(|| {
        Invalid::new(
            "backup_type",
            format!("backup_type {s:?} is not one of full, database, config, files"),
        )
    })
}

fn frequency_of(name: &str, at: Option<&str>, weekday: Option<&str>) -> Result<Frequency, Invalid> {
    let name = name.trim().to_ascii_lowercase();
    if name != "weekly" && weekday.is_some() {
        return Err(Invalid::new(
            "weekday",
            "weekday is only for weekly schedules",
        ));
    }
    match name.as_str() {
        "hourly" => Ok(Frequency::Hourly {
            minute: at.map_or(Ok(0), minute_past)?,
        }),
        "daily" => {
            let (hour, minute) = at.map_or(Ok((0, 0)), time_of_day)?;
            Ok(Frequency::Daily { hour, minute })
        }
        "weekly" => {
            let w = weekday.ok_or_else(|| {
                Invalid::new("weekday", "weekday is required for a weekly schedule")
            })?;
            let weekday = Weekday::parse(w).ok_or_else(|| {
                Invalid::new(
                    "weekday",
                    format!("weekday {w:?} is not one of mon, tue, wed, thu, fri, sat, sun"),
                )
            })?;
            let (hour, minute) = at.map_or(Ok((0, 0)), time_of_day)?;
            Ok(Frequency::Weekly {
                weekday,
                hour,
                minute,
            })
        }
        _ => Err(Invalid::new(
            "frequency",
            format!("frequency {name:?} is not one of hourly, daily, weekly"),
        )),
    }
}

/// `"03:30"` or `"3:30"` → (3, 30), UTC.
fn time_of_day(s: &str) -> Result<(u8, u8), Invalid> {
    let bad = || {
        Invalid::new(
            "at",
            format!("at {s:?} is not a time of day HH:MM (UTC), e.g. \"03:30\""),
        )
    };
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let hour = digits(h, 1..=2).filter(|h| *h < 24).ok_or_else(bad)?;
    let minute = digits(m, 2..=2).filter(|m| *m < 60).ok_or_else(bad)?;
    Ok((hour, minute))
}

/// `":15"` or `"15"` → 15: minutes past every hour.
fn minute_past(s: &str) -> Result<u8, Invalid> {
    let t = s.trim();
    digits(t.strip_prefix(':').unwrap_or(t), 1..=2)
        .filter(|m| *m < 60)
        .ok_or_else(|| {
            Invalid::new(
                "at",
                format!(
                    "at {s:?}: an hourly schedule runs at a minute past every hour, e.g. \":15\""
                ),
            )
        })
}

/// ASCII digits only (no sign, no spaces), as many as `len` allows.
fn digits(s: &str, len: std::ops::RangeInclusive<usize>) -> Option<u8> {
    if !len.contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

// ---- when a schedule runs ----

/// The first slot strictly after `after` (whether or not the schedule is enabled).
pub fn next_run(schedule: &Schedule, after: i64) -> i64 {
    schedule.frequency.slot_after(after)
}

/// Whether `schedule` should run at `now`, given when it last ran (rules in the module doc).
pub fn due(schedule: &Schedule, last_run: Option<i64>, now: i64) -> bool {
    if !schedule.enabled {
        return false;
    }
    match last_run {
        None => true,
        Some(last) if last > now + CLOCK_SLACK => true,
        Some(last) => last < schedule.frequency.slot_at_or_before(now),
    }
}

/// When `schedule` is next due: `now` if it is due, `None` if it is disabled, else the first
/// slot after its last run. `due` is false from `now` until that instant, and true at it.
pub fn next_due(schedule: &Schedule, last_run: Option<i64>, now: i64) -> Option<i64> {
    if !schedule.enabled {
        return None;
    }
    match last_run {
        Some(last) if !due(schedule, last_run, now) => Some(next_run(schedule, last)),
        _ => Some(now),
    }
}

/// Slots that passed without a run between `last_run` and `now`, beyond the one a due run
/// makes up for (0 when not due): what a start-up after a power-off skipped, for the log.
pub fn missed_slots(schedule: &Schedule, last_run: Option<i64>, now: i64) -> u64 {
    let f = &schedule.frequency;
    match last_run {
        Some(last) if due(schedule, last_run, now) && last <= now => {
            let slots = (f.slot_at_or_before(now) - f.slot_at_or_before(last)) / f.period();
            u64::try_from(slots - 1).unwrap_or(0)
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{parse as t, rfc3339};
    use retention::Retention;

    fn at(s: &str) -> i64 {
        t(s).unwrap()
    }

    fn schedule(json: &str) -> Schedule {
        serde_json::from_str::<ScheduleInput>(json)
            .unwrap()
            .create()
            .unwrap()
    }

    fn refused(json: &str) -> Invalid {
        serde_json::from_str::<ScheduleInput>(json)
            .unwrap()
            .create()
            .unwrap_err()
    }

    fn daily(hour: u8, minute: u8) -> Schedule {
        with(Frequency::Daily { hour, minute })
    }

    fn with(frequency: Frequency) -> Schedule {
        Schedule {
            name: "s".into(),
            frequency,
            backup_type: Kind::Full,
            enabled: true,
        }
    }

    /// A small deterministic generator (no external crates): xorshift64*.
    pub(super) struct Rng(pub(super) u64);
    impl Rng {
        pub(super) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        pub(super) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn all_frequencies() -> Vec<Frequency> {
        let mut out = vec![];
        for minute in [0, 1, 30, 59] {
            out.push(Frequency::Hourly { minute });
            for hour in [0, 3, 23] {
                out.push(Frequency::Daily { hour, minute });
                for weekday in Weekday::ALL {
                    out.push(Frequency::Weekly {
                        weekday,
                        hour,
                        minute,
                    });
                }
            }
        }
        out
    }

    // ---- slots ----

    #[test]
    fn weekdays_of_known_dates() {
        assert_eq!(Weekday::of(0), Weekday::Thu);
        assert_eq!(Weekday::of(-1), Weekday::Wed);
        assert_eq!(Weekday::of(at("2024-01-01T23:59:59Z")), Weekday::Mon);
        assert_eq!(Weekday::of(at("2024-02-29")), Weekday::Thu);
        assert_eq!(Weekday::of(at("2000-02-29")), Weekday::Tue);
        assert_eq!(Weekday::of(at("2026-12-06")), Weekday::Sun);
        assert_eq!(Weekday::of(at("2100-03-01")), Weekday::Mon);
    }

    #[test]
    fn next_run_is_strictly_after_across_boundaries() {
        let hourly = with(Frequency::Hourly { minute: 15 });
        let nightly = daily(3, 30);
        let sunday = with(Frequency::Weekly {
            weekday: Weekday::Sun,
            hour: 4,
            minute: 0,
        });
        let leap_thu = with(Frequency::Weekly {
            weekday: Weekday::Thu,
            hour: 0,
            minute: 0,
        });
        for (s, after, want) in [
            // hour boundary, and exactly on a slot
            (&hourly, "2024-01-01T10:14:59Z", "2024-01-01T10:15:00Z"),
            (&hourly, "2024-01-01T10:15:00Z", "2024-01-01T11:15:00Z"),
            (&hourly, "2024-01-01T23:20:00Z", "2024-01-02T00:15:00Z"),
            // day boundary
            (&nightly, "2024-01-01T03:29:59Z", "2024-01-01T03:30:00Z"),
            (&nightly, "2024-01-01T03:30:00Z", "2024-01-02T03:30:00Z"),
            // month and year ends
            (&nightly, "2024-01-31T12:00:00Z", "2024-02-01T03:30:00Z"),
            (&nightly, "2024-04-30T04:00:00Z", "2024-05-01T03:30:00Z"),
            (&nightly, "2023-12-31T23:00:00Z", "2024-01-01T03:30:00Z"),
            (&hourly, "2023-12-31T23:59:59Z", "2024-01-01T00:15:00Z"),
            // leap day, and years without one (2100 is not a leap year)
            (&nightly, "2024-02-28T04:00:00Z", "2024-02-29T03:30:00Z"),
            (&nightly, "2024-02-29T03:30:00Z", "2024-03-01T03:30:00Z"),
            (&nightly, "2023-02-28T04:00:00Z", "2023-03-01T03:30:00Z"),
            (&nightly, "2100-02-28T04:00:00Z", "2100-03-01T03:30:00Z"),
            (&nightly, "2000-02-28T04:00:00Z", "2000-02-29T03:30:00Z"),
            (&leap_thu, "2024-02-26T00:00:00Z", "2024-02-29T00:00:00Z"),
            // week boundary (2024-01-01 was a Monday), and a week across the year end
            (&sunday, "2024-01-01T00:00:00Z", "2024-01-07T04:00:00Z"),
            (&sunday, "2024-01-07T03:59:59Z", "2024-01-07T04:00:00Z"),
            (&sunday, "2024-01-07T04:00:00Z", "2024-01-14T04:00:00Z"),
            (&sunday, "2024-12-30T00:00:00Z", "2025-01-05T04:00:00Z"),
            // before the epoch
            (&nightly, "1969-12-31T12:00:00Z", "1970-01-01T03:30:00Z"),
        ] {
            assert_eq!(rfc3339(next_run(s, at(after))), want, "{after}");
        }
    }

    #[test]
    fn next_run_lands_on_the_named_time_for_any_after() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for f in all_frequencies() {
            let s = with(f);
            for _ in 0..300 {
                // 1901 to 2100
                let after = rng.below(6_311_433_600) as i64 - 2_177_452_800;
                let n = next_run(&s, after);
                assert!(n > after && n - after <= f.period(), "{f:?} {after}");
                let prev = f.slot_at_or_before(after);
                assert!(prev <= after && n - prev == f.period());
                let text = rfc3339(n);
                match f {
                    Frequency::Hourly { minute } => {
                        assert_eq!(&text[13..], format!(":{minute:02}:00Z"))
                    }
                    Frequency::Daily { .. } => assert_eq!(&text[11..16], f.at()),
                    Frequency::Weekly { weekday, .. } => {
                        assert_eq!(&text[11..16], f.at());
                        assert_eq!(Weekday::of(n), weekday);
                    }
                }
            }
        }
    }

    // ---- due ----

    #[test]
    fn due_once_per_slot() {
        let s = daily(3, 30);
        let slot = at("2024-03-10T03:30:00Z");
        assert!(due(&s, None, slot - 100), "never ran: runs at once");
        assert!(!due(&s, Some(slot), slot));
        assert!(!due(&s, Some(slot), slot + DAY - 1));
        assert!(due(&s, Some(slot), slot + DAY));
        // A run that started late, or lasted long, still covers its slot.
        assert!(!due(&s, Some(slot + 7200), slot + DAY - 1));
        assert!(due(&s, Some(slot - 1), slot));
        let off = Schedule {
            enabled: false,
            ..s.clone()
        };
        assert!(!due(&off, None, slot));
        assert!(!due(&off, Some(slot - WEEK), slot));
        assert_eq!(next_due(&off, None, slot), None);
    }

    #[test]
    fn a_long_power_off_runs_once_at_start_up() {
        let s = daily(3, 30);
        let last = at("2024-01-01T03:30:00Z");
        let boot = at("2024-01-20T12:00:00Z");
        assert!(due(&s, Some(last), boot));
        assert_eq!(missed_slots(&s, Some(last), boot), 18);
        // The run records `boot`; nothing more until the next slot.
        for t in (boot..at("2024-01-21T03:30:00Z")).step_by(61) {
            assert!(!due(&s, Some(boot), t), "{}", rfc3339(t));
        }
        assert_eq!(
            next_due(&s, Some(boot), boot),
            Some(at("2024-01-21T03:30:00Z"))
        );
        assert!(due(&s, Some(boot), at("2024-01-21T03:30:00Z")));
        assert_eq!(missed_slots(&s, Some(boot), at("2024-01-21T03:30:00Z")), 0);
        let hourly = with(Frequency::Hourly { minute: 0 });
        assert_eq!(missed_slots(&hourly, Some(last), last + 3 * HOUR + 5), 2);
        assert_eq!(missed_slots(&hourly, Some(last), last + 5), 0);
    }

    #[test]
    fn a_clock_set_back_delays_a_little_or_reruns_once() {
        let s = daily(3, 30);
        let slot = at("2024-03-10T03:30:00Z");
        // NTP steps back a few seconds right after a run: not again for the same slot.
        assert!(!due(&s, Some(slot + 5), slot - 3));
        assert!(!due(&s, Some(slot + 5), slot + 4));
        assert_eq!(next_due(&s, Some(slot + 5), slot - 3), Some(slot + DAY));
        // A run recorded years ahead (RTC-less boot, then NTP): run once, then normally.
        let bogus = at("2038-01-01T00:00:00Z");
        assert!(due(&s, Some(bogus), slot + 60));
        assert_eq!(next_due(&s, Some(bogus), slot + 60), Some(slot + 60));
        assert!(!due(&s, Some(slot + 60), slot + 120));
        assert_eq!(missed_slots(&s, Some(bogus), slot + 60), 0);
    }

    /// A service polling at random instants, some far apart (power-offs): a run happens
    /// exactly when a slot passed since the previous run, so never twice per slot.
    #[test]
    fn polling_at_random_times_runs_once_per_slot_at_most_and_catches_up() {
        let mut rng = Rng(42);
        for f in all_frequencies() {
            let s = with(f);
            let mut now = at("2023-12-25T00:00:00Z") + rng.below(WEEK as u64) as i64;
            let mut last: Option<i64> = None;
            let mut slots_run = std::collections::HashSet::new();
            for _ in 0..400 {
                let step = match rng.below(10) {
                    0 => rng.below(40 * DAY as u64),
                    1..=3 => rng.below(HOUR as u64),
                    _ => rng.below(120),
                };
                now += step as i64;
                let slot_passed = last.is_none_or(|l| f.slot_after(l) <= now);
                assert_eq!(due(&s, last, now), slot_passed, "{f:?} {}", rfc3339(now));
                let nd = next_due(&s, last, now).unwrap();
                assert!(nd >= now && (nd == now) == slot_passed);
                if nd > now {
                    assert!(!due(&s, last, nd - 1) && due(&s, last, nd));
                    let mid = now + rng.below((nd - now) as u64) as i64;
                    assert!(!due(&s, last, mid));
                }
                if slot_passed {
                    assert!(
                        slots_run.insert(f.slot_at_or_before(now)),
                        "twice for a slot"
                    );
                    last = Some(now);
                }
            }
        }
    }

    // ---- schedule input ----

    #[test]
    fn parses_hand_written_schedules() {
        let s = schedule(
            r#"{"name":"nightly","frequency":"daily","at":"03:30","backup_type":"full","enabled":true}"#,
        );
        assert_eq!(s.name, "nightly");
        assert_eq!(
            s.frequency,
            Frequency::Daily {
                hour: 3,
                minute: 30
            }
        );
        assert_eq!((s.backup_type, s.enabled), (Kind::Full, true));
        for w in ["sun", "Sunday", " SUN "] {
            let s = schedule(&format!(
                r#"{{"name":"w","frequency":"Weekly","weekday":"{w}","at":"4:05","backup_type":"Database"}}"#
            ));
            let want = Frequency::Weekly {
                weekday: Weekday::Sun,
                hour: 4,
                minute: 5,
            };
            assert_eq!((s.frequency, s.backup_type), (want, Kind::Database));
        }
        for (a, minute) in [(":15", 15), ("15", 15), ("5", 5), (":00", 0)] {
            let s = schedule(&format!(
                r#"{{"name":"h","frequency":"hourly","at":"{a}"}}"#
            ));
            assert_eq!(s.frequency, Frequency::Hourly { minute });
        }
        // Defaults: midnight UTC (on the hour), a full backup, enabled.
        let s = schedule(r#"{"name":"d","frequency":"daily"}"#);
        assert_eq!(s.frequency, Frequency::Daily { hour: 0, minute: 0 });
        assert_eq!((s.backup_type, s.enabled), (Kind::Full, true));
        let s = schedule(r#"{"name":"h","frequency":"hourly","enabled":false}"#);
        assert_eq!(
            (s.frequency, s.enabled),
            (Frequency::Hourly { minute: 0 }, false)
        );
    }

    #[test]
    fn refuses_bad_schedules_naming_the_field() {
        for (json, field) in [
            (r#"{"frequency":"daily"}"#, "name"),
            (r#"{"name":"  ","frequency":"daily"}"#, "name"),
            (r#"{"name":"a\u0007","frequency":"daily"}"#, "name"),
            (r#"{"name":"x"}"#, "frequency"),
            (r#"{"name":"x","frequency":"monthly"}"#, "frequency"),
            (r#"{"name":"x","frequency":"daily","at":"24:00"}"#, "at"),
            (r#"{"name":"x","frequency":"daily","at":"03:60"}"#, "at"),
            (r#"{"name":"x","frequency":"daily","at":"3:5"}"#, "at"),
            (r#"{"name":"x","frequency":"daily","at":"03:30:00"}"#, "at"),
            (r#"{"name":"x","frequency":"daily","at":"+3:30"}"#, "at"),
            (r#"{"name":"x","frequency":"daily","at":"0330"}"#, "at"),
            (r#"{"name":"x","frequency":"daily","at":"٣:30"}"#, "at"),
            (r#"{"name":"x","frequency":"hourly","at":"03:30"}"#, "at"),
            (r#"{"name":"x","frequency":"hourly","at":"60"}"#, "at"),
            (r#"{"name":"x","frequency":"hourly","at":""}"#, "at"),
            (
                r#"{"name":"x","frequency":"weekly","at":"03:30"}"#,
                "weekday",
            ),
            (
                r#"{"name":"x","frequency":"weekly","weekday":"su"}"#,
                "weekday",
            ),
            (
                r#"{"name":"x","frequency":"daily","weekday":"sun"}"#,
                "weekday",
            ),
            (
                r#"{"name":"x","frequency":"daily","backup_type":"logs"}"#,
                "backup_type",
            ),
        ] {
            assert_eq!(refused(json).field, field, "{json}");
        }
        let long = format!(r#"{{"name":"{}","frequency":"daily"}}"#, "n".repeat(65));
        assert_eq!(refused(&long).field, "name");
        let e = serde_json::from_str::<ScheduleInput>(r#"{"name":"x","time":"03:30"}"#);
        assert!(e.unwrap_err().to_string().contains("unknown field `time`"));
    }

    #[test]
    fn serializes_to_what_it_reads() {
        for json in [
            r#"{"name":"nightly","frequency":"daily","at":"03:30","backup_type":"full","enabled":true}"#,
            r#"{"name":"w","frequency":"weekly","at":"00:00","weekday":"sun","backup_type":"config","enabled":false}"#,
            r#"{"name":"h","frequency":"hourly","at":":07","backup_type":"files","enabled":true}"#,
        ] {
            let s = schedule(json);
            assert_eq!(serde_json::to_string(&s).unwrap(), json);
            assert_eq!(schedule(&serde_json::to_string(&s).unwrap()), s);
        }
    }

    #[test]
    fn changes_keep_what_still_makes_sense() {
        let cur = schedule(r#"{"name":"w","frequency":"weekly","weekday":"sun","at":"04:00"}"#);
        let change = |json: &str| {
            serde_json::from_str::<ScheduleInput>(json)
                .unwrap()
                .update(&cur)
        };
        let s = change(r#"{"at":"05:15"}"#).unwrap();
        let sun = |hour, minute| Frequency::Weekly {
            weekday: Weekday::Sun,
            hour,
            minute,
        };
        assert_eq!(s.frequency, sun(5, 15));
        assert_eq!(
            change(r#"{"frequency":"weekly"}"#).unwrap().frequency,
            sun(4, 0)
        );
        let s = change(r#"{"frequency":"hourly","enabled":false}"#).unwrap();
        assert_eq!(
            (s.frequency, s.enabled),
            (Frequency::Hourly { minute: 0 }, false)
        );
        let s = change(r#"{"frequency":"daily","at":"01:00","name":" n2 "}"#).unwrap();
        assert_eq!(s.frequency, Frequency::Daily { hour: 1, minute: 0 });
        assert_eq!(s.name, "n2");
        assert_eq!(change(r#"{"at":":15"}"#).unwrap_err().field, "at");
        assert_eq!(change(r#"{"name":""}"#).unwrap_err().field, "name");
        assert_eq!(
            change(r#"{"backup_type":"x"}"#).unwrap_err().field,
            "backup_type"
        );
        let s = change("{}").unwrap();
        assert_eq!(s, cur);
    }

    #[test]
    fn config_schedules_from_toml() {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Backup {
            retention: Retention,
            schedules: Vec<ScheduleInput>,
        }
        let text = r#"
            retention = { keep_last = 10, max_age_days = 30 }
            [[schedules]]
            name = "nightly"
            frequency = "daily"
            at = "03:30"
            [[schedules]]
            name = "sunday"
            frequency = "weekly"
            weekday = "sun"
            backup_type = "database"
        "#;
        let b: Backup = basic_toml::from_str(text).unwrap();
        assert_eq!(b.retention.keep_last, Some(10));
        let all = validate_all(b.schedules).unwrap();
        assert_eq!(all[1].frequency.weekday(), Some(Weekday::Sun));
        let b: Backup = basic_toml::from_str("retention = 7\nschedules = []").unwrap();
        assert_eq!(b.retention.max_age_days, Some(7));
        let e = basic_toml::from_str::<Backup>(
            "retention = 7\n[[schedules]]\nname = \"x\"\nfrequncy = \"daily\"",
        );
        assert!(e.err().unwrap().to_string().contains("frequncy"));
        let e = basic_toml::from_str::<Backup>("retention = { keep = 3 }\nschedules = []");
        assert!(e.err().unwrap().to_string().contains("keep"));
    }

    #[test]
    fn config_schedule_names_are_unique_ignoring_case() {
        let input = |name: &str| ScheduleInput {
            name: Some(name.into()),
            frequency: Some("daily".into()),
            ..Default::default()
        };
        let e = validate_all(vec![input("Nightly"), input("nightly")]).unwrap_err();
        assert_eq!(e.field, "schedules[1].name");
        let e = validate_all(vec![input("a"), ScheduleInput::default()]).unwrap_err();
        assert_eq!(e.field, "schedules[1].name");
        let many = (0..=MAX_SCHEDULES).map(|i| input(&i.to_string())).collect();
        assert_eq!(validate_all(many).unwrap_err().field, "schedules");
        let existing = validate_all(vec![input("a"), input("b")]).unwrap();
        assert!(
            unique_name(&existing, "A", Some("a")).is_ok(),
            "renaming itself"
        );
        assert!(unique_name(&existing, "B", Some("a")).is_err());
        assert!(unique_name(&existing, "c", None).is_ok());
    }

    #[test]
    fn the_configuration_s_schedules_are_checked_naming_their_key() {
        let c = crate::config::Config::parse(
            "[[backup.schedules]]\nname = \"n\"\nfrequency = \"daily\"\nat = \"03:30\"",
        )
        .expect("parses");
        assert_eq!(from_config(&c.backup).expect("valid").len(), 1);
        let bad = crate::config::Config::parse(
            "[[backup.schedules]]\nname = \"n\"\nfrequency = \"monthly\"",
        )
        .expect("parses");
        let e = from_config(&bad.backup).unwrap_err();
        assert!(e.starts_with("backup.schedules[0].frequency"), "{e}");
    }
}
