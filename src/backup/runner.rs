//! The schedule runner: one task (started by `app::run`, stopped with `stopping`) that
//! sleeps until the next schedule is due and starts its backup through the same
//! [`Service::create`] as the API (origin `schedule:<name>`, named `"<schedule> <UTC time>"`).
//!
//! ```text
//!  loop: now = clock() ─► plan(schedules, now) ─► each due: Service::create
//!          started / failed ─► record last_run = now (schedules.json)
//!          busy (a backup or restore runs) ─► wait until the job is idle, plan again
//!        sleep until plan.wake_at (at most MAX_SLEEP), or a schedule changed
//! ```
//!
//! The decisions are the pure [`plan`] and [`last_run_after`] (time as a parameter); the
//! loop only reads the clock once per wake-up and does what they say. A schedule that never
//! ran or whose slot passed while the router was off is due at once (runs once, at
//! start-up); a busy slot is retried when the job is idle, not dropped; a disabled schedule
//! never runs.

use super::schedule::{self, Schedule};
use super::{Error, NewBackup, Service};
use std::time::Duration;

/// The longest sleep: wall-clock steps (NTP correcting a router without RTC) are noticed
/// within this, since the sleep itself runs on the monotonic clock.
pub const MAX_SLEEP: i64 = 600;

/// What the runner does at one wake-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Schedules due now, in order.
    pub run: Vec<String>,
    /// When the next one that is not due now will be (`None`: none is enabled).
    pub wake_at: Option<i64>,
}

/// The schedules due at `now` (each with its last run), and when to wake up next.
pub fn plan(schedules: &[(Schedule, Option<i64>)], now: i64) -> Plan {
    let run = schedules
        .iter()
        .filter(|(s, last)| schedule::due(s, *last, now))
        .map(|(s, _)| s.name.clone())
        .collect();
    let wake_at = schedules
        .iter()
        .filter(|(s, last)| !schedule::due(s, *last, now))
        .filter_map(|(s, last)| schedule::next_due(s, *last, now))
        .min();
    Plan { run, wake_at }
}

/// How starting a due schedule's backup went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Started,
    /// Another backup or restore runs: try again when it is done.
    Busy,
    /// Refused for good (e.g. a `config` backup without a configuration file): logged; the
    /// slot counts as run so it is not retried in a loop.
    Failed,
}

/// The `last_run` to record after an attempt at `now`; `None` = keep it due (retry).
pub fn last_run_after(outcome: Outcome, now: i64) -> Option<i64> {
    match outcome {
        Outcome::Busy => None,
        Outcome::Started | Outcome::Failed => Some(now),
    }
}

/// How long to sleep at `now` to wake at `wake_at`.
pub fn sleep_for(wake_at: Option<i64>, now: i64) -> Duration {
    let secs = wake_at.map_or(MAX_SLEEP, |t| (t - now).clamp(0, MAX_SLEEP));
    Duration::from_secs(secs as u64)
}

impl Service {
    /// The runner (see the module doc); `clock` gives Unix seconds. Runs until dropped.
    pub async fn run_schedules(self, clock: fn() -> i64) {
        loop {
            let now = clock();
            let all: Vec<(Schedule, Option<i64>)> = self
                .schedules
                .all()
                .into_iter()
                .map(|(s, _, last)| (s, last))
                .collect();
            let plan = plan(&all, now);
            let mut busy = false;
            for (s, last) in all.iter().filter(|(s, _)| plan.run.contains(&s.name)) {
                let outcome = self.start_scheduled(s, *last, now).await;
                match last_run_after(outcome, now) {
                    Some(t) => self.record_run(&s.name, t).await,
                    None => busy = true,
                }
            }
            if busy {
                // The job lock is free once the running backup or restore is done.
                tokio::select! {
                    _ = self.wait_idle() => {}
                    _ = self.schedules.changed().notified() => {}
                }
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(sleep_for(plan.wake_at, now)) => {}
                _ = self.schedules.changed().notified() => {}
            }
        }
    }

    async fn start_scheduled(&self, s: &Schedule, last: Option<i64>, now: i64) -> Outcome {
        let missed = schedule::missed_slots(s, last, now);
        if missed > 0 {
            log::info!(
                "backup schedule {:?}: {missed} slots passed while the service was off; \
                 running it once now",
                s.name
            );
        }
        let name = format!("{} {}", s.name, crate::time::rfc3339(now));
        let b = NewBackup::new(&name, s.backup_type, None).map(|b| NewBackup {
            origin: format!("schedule:{}", s.name),
            ..b
        });
        match self.create_or_busy(b).await {
            Ok(id) => {
                log::info!("backup schedule {:?} started backup {id}", s.name);
                Outcome::Started
            }
            Err(Error::Busy) => {
                log::info!(
                    "backup schedule {:?} is due while another backup or restore runs: \
                     it runs when that is done",
                    s.name
                );
                Outcome::Busy
            }
            Err(e) => {
                log::error!("backup schedule {:?} could not start: {e}", s.name);
                Outcome::Failed
            }
        }
    }

    async fn create_or_busy(&self, b: super::Result<NewBackup>) -> super::Result<i64> {
        Ok(self.create(b?).await?.id)
    }

    async fn record_run(&self, name: &str, at: i64) {
        let (s, name) = (self.schedules.clone(), name.to_string());
        // A write that fails is logged; the run stays recorded in memory.
        let _ = super::schedules::blocking_result(Box::new(move || {
            s.record_run(&name, at).map(|()| None)
        }))
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::schedule::ScheduleInput;
    use crate::time::parse;

    fn at(s: &str) -> i64 {
        parse(s).unwrap()
    }

    fn sched(json: &str) -> Schedule {
        serde_json::from_str::<ScheduleInput>(json)
            .unwrap()
            .create()
            .unwrap()
    }

    /// The runner's loop with a fake clock and a fake job: `busy_until` says until when a
    /// backup or restore holds the job. Returns the (schedule, time) of every backup started.
    fn simulate(
        schedules: &mut [(Schedule, Option<i64>)],
        start: i64,
        end: i64,
        busy_until: &[(i64, i64)],
    ) -> Vec<(String, i64)> {
        let mut started = Vec::new();
        let mut now = start;
        let mut wake_ups = 0;
        while now < end {
            wake_ups += 1;
            assert!(wake_ups < 10_000, "the runner spins");
            let p = plan(schedules, now);
            let busy = |t: i64| busy_until.iter().find(|(a, b)| (*a..*b).contains(&t));
            let mut retry_at = None;
            for name in &p.run {
                let outcome = match busy(now) {
                    Some((_, until)) => {
                        retry_at = Some(*until);
                        Outcome::Busy
                    }
                    None => Outcome::Started,
                };
                if outcome == Outcome::Started {
                    started.push((name.clone(), now));
                }
                if let Some(t) = last_run_after(outcome, now) {
                    let s = schedules.iter_mut().find(|(s, _)| &s.name == name).unwrap();
                    s.1 = Some(t);
                }
            }
            // Busy: wake when the job is idle; otherwise sleep as the runner does.
            now = match retry_at {
                Some(t) => t,
                None => now + sleep_for(p.wake_at, now).as_secs().max(1) as i64,
            };
        }
        started
    }

    #[test]
    fn a_missed_slot_runs_once_at_start_up_then_on_its_slots() {
        let nightly = sched(r#"{"name":"nightly","frequency":"daily","at":"03:30"}"#);
        let last = at("2024-01-01T03:30:00Z");
        let boot = at("2024-01-10T12:00:00Z");
        let mut all = [(nightly, Some(last))];
        let runs = simulate(&mut all, boot, at("2024-01-12T12:00:00Z"), &[]);
        assert_eq!(
            runs,
            [
                ("nightly".to_string(), boot),
                ("nightly".to_string(), at("2024-01-11T03:30:00Z")),
                ("nightly".to_string(), at("2024-01-12T03:30:00Z")),
            ]
        );
    }

    #[test]
    fn a_busy_slot_is_retried_when_the_job_is_idle_not_dropped() {
        let hourly = sched(r#"{"name":"h","frequency":"hourly","at":":00"}"#);
        let t0 = at("2024-01-01T00:00:00Z");
        let mut all = [(hourly, Some(t0))];
        // A restore runs from 00:59 to 01:20: the 01:00 slot runs at 01:20, once.
        let busy = [(t0 + 59 * 60, t0 + 80 * 60)];
        let runs = simulate(&mut all, t0 + 1, t0 + 2 * 3600 + 1, &busy);
        assert_eq!(
            runs,
            [
                ("h".to_string(), t0 + 80 * 60),
                ("h".to_string(), t0 + 2 * 3600)
            ]
        );
    }

    #[test]
    fn two_due_at_once_both_run_one_after_the_other() {
        let a = sched(r#"{"name":"a","frequency":"daily"}"#);
        let b = sched(r#"{"name":"b","frequency":"daily"}"#);
        let t0 = at("2024-01-01T12:00:00Z");
        let p = plan(&[(a.clone(), None), (b.clone(), None)], t0);
        assert_eq!(p.run, ["a", "b"]);
        // `a` started and holds the job for 5 minutes: `b` waits, then runs.
        let mut all = [(a, Some(t0)), (b, None)];
        let runs = simulate(&mut all, t0, t0 + 3600, &[(t0, t0 + 300)]);
        assert_eq!(runs, [("b".to_string(), t0 + 300)]);
    }

    #[test]
    fn a_disabled_schedule_never_runs_and_nothing_enabled_sleeps_the_maximum() {
        let off = sched(r#"{"name":"off","frequency":"hourly","enabled":false}"#);
        let t0 = at("2024-01-01T00:00:00Z");
        let mut all = [(off.clone(), None)];
        assert!(simulate(&mut all, t0, t0 + 3 * 86_400, &[]).is_empty());
        let p = plan(&[(off, None)], t0);
        assert_eq!(
            p,
            Plan {
                run: vec![],
                wake_at: None
            }
        );
        assert_eq!(
            sleep_for(p.wake_at, t0),
            Duration::from_secs(MAX_SLEEP as u64)
        );
        assert_eq!(sleep_for(Some(t0 + 5), t0), Duration::from_secs(5));
        assert_eq!(sleep_for(Some(t0 - 5), t0), Duration::ZERO);
    }

    #[test]
    fn a_failed_start_counts_as_run_so_it_does_not_loop() {
        assert_eq!(last_run_after(Outcome::Failed, 7), Some(7));
        assert_eq!(last_run_after(Outcome::Started, 7), Some(7));
        assert_eq!(last_run_after(Outcome::Busy, 7), None);
        let daily = sched(r#"{"name":"d","frequency":"daily","at":"03:30"}"#);
        let t = at("2024-01-01T12:00:00Z");
        let p = plan(&[(daily, Some(t))], t + 60);
        assert_eq!(p.run, Vec::<String>::new());
        assert_eq!(p.wake_at, Some(at("2024-01-02T03:30:00Z")));
    }
}
