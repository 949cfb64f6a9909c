//! The backup schedules of this router: those of the configuration file (`[[backup.schedules]]`,
//! read-only here) and those made through the API, with when each last ran.
//!
//! API-made schedules and every schedule's `last_run` live in `schedules.json` in the backup
//! directory, next to the `backup-<id>.json` entries, written atomically (a temporary file
//! renamed over it) like the catalogue: not in the database, so a restore does not rewind
//! them (a rewound `last_run` would make every schedule run again at once).
//!
//! ```text
//! {"schedules": [{"name": "db", "frequency": "hourly", "at": ":15", ...}],
//!  "last_run": {"nightly": 1764730200, "db": 1764771300}}
//! ```
//!
//! Names are unique ignoring case across both sources (at most
//! [`schedule::MAX_SCHEDULES`]) and looked up ignoring case. An API-made schedule whose name
//! the configuration file took since is ignored, with a warning. Every change wakes the
//! runner ([`Schedules::changed`]); the rules of when a schedule runs are in [`schedule`].

use super::schedule::{self, Schedule, ScheduleInput};
use super::{Error, Result, Service};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file in the backup directory.
pub const FILE: &str = "schedules.json";

/// Where a schedule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `[[backup.schedules]]`: changed by editing the file, not through the API.
    Config,
    Api,
}

/// A schedule as the API shows it ([`ScheduleView::to_json`]).
#[derive(Debug, Clone)]
pub struct ScheduleView {
    pub name: String,
    /// `hourly`, `daily` or `weekly`.
    pub frequency: &'static str,
    /// `"03:30"` (UTC), `":15"` for hourly.
    pub at: String,
    /// Weekly only: `mon` … `sun`.
    pub weekday: Option<&'static str>,
    pub backup_type: &'static str,
    pub enabled: bool,
    pub source: Source,
    pub last_run: Option<i64>,
    /// When it runs next (now, if it is due); `null` when disabled.
    pub next_run: Option<i64>,
}

impl ScheduleView {
    fn new(s: &Schedule, source: Source, last_run: Option<i64>, now: i64) -> ScheduleView {
        ScheduleView {
            name: s.name.clone(),
            frequency: s.frequency.name(),
            at: s.frequency.at(),
            weekday: s.frequency.weekday().map(schedule::Weekday::as_str),
            backup_type: s.backup_type.as_str(),
            enabled: s.enabled,
            source,
            last_run,
            next_run: schedule::next_due(s, last_run, now),
        }
    }

    /// The API's JSON of it (times as RFC 3339 or `null`). A `serde_json::Value` rather than
    /// a derived `Serialize`: the responses' serialisation of a `Value` is already in the
    /// binary, a derive would add one per response shape.
    pub fn to_json(&self) -> serde_json::Value {
        let t = |v: Option<i64>| v.map(crate::time::rfc3339);
        serde_json::json!({
            "name": self.name,
            "frequency": self.frequency,
            "at": self.at,
            "weekday": self.weekday,
            "backup_type": self.backup_type,
            "enabled": self.enabled,
            "source": match self.source {
                Source::Config => "config",
                Source::Api => "api",
            },
            "last_run": t(self.last_run),
            "next_run": t(self.next_run),
        })
    }

    /// The row of `GET /backup/stats` (`schedules` by name): the seed's `type` is the frequency.
    pub fn stats_row(&self) -> serde_json::Value {
        let t = |v: Option<i64>| v.map(crate::time::rfc3339);
        serde_json::json!({
            "type": self.frequency,
            "backup_type": self.backup_type,
            "enabled": self.enabled,
            "last_run": t(self.last_run),
            "next_run": t(self.next_run),
        })
    }
}

/// `schedules.json` as read. Read and written through `serde_json::Value` by hand (no
/// derives: the binary already holds the parsing and printing of a `Value`; a derived
/// `Deserialize`/`Serialize` pair for this file and `ScheduleInput` from it added their own).
#[derive(Default)]
struct OnDisk {
    schedules: Vec<ScheduleInput>,
    last_run: BTreeMap<String, i64>,
}

impl OnDisk {
    /// `{"schedules": [...], "last_run": {"name": secs}}`, both optional, nothing else.
    fn parse(bytes: &[u8]) -> std::result::Result<OnDisk, String> {
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let mut disk = OnDisk::default();
        for (k, v) in v.as_object().ok_or("not an object")? {
            match k.as_str() {
                "schedules" => {
                    for s in v.as_array().ok_or("schedules: not an array")? {
                        disk.schedules.push(input_of(s)?);
                    }
                }
                "last_run" => {
                    for (n, t) in v.as_object().ok_or("last_run: not an object")? {
                        let t = t
                            .as_i64()
                            .ok_or_else(|| format!("last_run.{n}: not a time"))?;
                        disk.last_run.insert(n.clone(), t);
                    }
                }
                other => return Err(format!("unknown field {other}")),
            }
        }
        Ok(disk)
    }
}

/// A schedule of `schedules.json` (as [`schedule_json`] writes it).
fn input_of(v: &serde_json::Value) -> std::result::Result<ScheduleInput, String> {
    let mut i = ScheduleInput::default();
    for (k, v) in v.as_object().ok_or("a schedule: not an object")? {
        let text = || {
            v.as_str()
                .map(str::to_string)
                .ok_or(format!("{k}: not a string"))
        };
        match k.as_str() {
            "name" => i.name = Some(text()?),
            "frequency" => i.frequency = Some(text()?),
            "at" => i.at = Some(text()?),
            "weekday" => i.weekday = Some(text()?),
            "backup_type" => i.backup_type = Some(text()?),
            "enabled" => i.enabled = Some(v.as_bool().ok_or("enabled: not a boolean")?),
            other => return Err(format!("unknown field {other}")),
        }
    }
    Ok(i)
}

/// A schedule as `schedules.json` keeps it (the fields of `ScheduleInput`; `weekday` only
/// for a weekly one).
fn schedule_json(s: &Schedule) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": s.name,
        "frequency": s.frequency.name(),
        "at": s.frequency.at(),
        "backup_type": s.backup_type.as_str(),
        "enabled": s.enabled,
    });
    if let Some(w) = s.frequency.weekday() {
        v["weekday"] = w.as_str().into();
    }
    v
}

#[derive(Default)]
struct State {
    /// The configuration file's.
    config: Vec<Schedule>,
    /// Made through the API.
    api: Vec<Schedule>,
    /// By schedule name as written in the schedule.
    last_run: BTreeMap<String, i64>,
}

/// The schedules, their last runs and the signal that they changed.
pub struct Schedules {
    path: PathBuf,
    state: Mutex<State>,
    changed: tokio::sync::Notify,
}

fn same(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

impl Schedules {
    /// The schedules stored in `dir`; an unreadable file is logged and treated as empty (the
    /// service must start; the next change rewrites it).
    pub fn open(dir: &Path) -> Schedules {
        let path = dir.join(FILE);
        let disk = match std::fs::read(&path) {
            Ok(bytes) => OnDisk::parse(&bytes).unwrap_or_else(|e| {
                log::warn!("{}: unreadable, ignored: {e}", path.display());
                OnDisk::default()
            }),
            Err(_) => OnDisk::default(),
        };
        let mut api: Vec<Schedule> = Vec::new();
        for input in disk.schedules {
            match input.create() {
                Ok(s) if schedule::unique_name(&api, &s.name, None).is_ok() => api.push(s),
                Ok(s) => log::warn!("{}: schedule {:?} twice, ignored", path.display(), s.name),
                Err(e) => log::warn!("{}: a schedule ignored: {e}", path.display()),
            }
        }
        Schedules {
            path,
            state: Mutex::new(State {
                config: Vec::new(),
                api,
                last_run: disk.last_run,
            }),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Sets the configuration file's schedules (validated by `Config`); API-made ones with
    /// the same name are ignored from now on.
    pub fn set_config(&self, config: Vec<Schedule>) {
        let mut st = self.lock();
        st.api.retain(|s| {
            let clash = config.iter().any(|c| same(&c.name, &s.name));
            if clash {
                log::warn!(
                    "backup schedule {:?} made through the API is ignored: the configuration \
                     file has one of that name",
                    s.name
                );
            }
            !clash
        });
        st.config = config;
    }

    /// Notified on every change of a schedule (not of a `last_run`).
    pub fn changed(&self) -> &tokio::sync::Notify {
        &self.changed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    /// Every schedule with its source and last run: the configuration's first.
    pub fn all(&self) -> Vec<(Schedule, Source, Option<i64>)> {
        let st = self.lock();
        let with = |s: &Schedule, src| (s.clone(), src, st.last_run.get(&s.name).copied());
        let config = st.config.iter().map(|s| with(s, Source::Config));
        let api = st.api.iter().map(|s| with(s, Source::Api));
        config.chain(api).collect()
    }

    /// The views of every schedule at `now`.
    pub fn views(&self, now: i64) -> Vec<ScheduleView> {
        self.all()
            .iter()
            .map(|(s, src, last)| ScheduleView::new(s, *src, *last, now))
            .collect()
    }

    /// `GET /backup/stats`' `schedules`: a row per schedule, by name.
    pub fn stats(&self, now: i64) -> serde_json::Map<String, serde_json::Value> {
        self.views(now)
            .into_iter()
            .map(|v| (v.name.clone(), v.stats_row()))
            .collect()
    }

    /// One schedule's view, by name (ignoring case).
    pub fn view(&self, name: &str, now: i64) -> Result<ScheduleView> {
        self.views(now)
            .into_iter()
            .find(|v| same(&v.name, name))
            .ok_or(Error::NotFound("schedule"))
    }

    /// Adds a schedule made through the API; its name must be new (ignoring case).
    pub fn create(&self, input: ScheduleInput, now: i64) -> Result<ScheduleView> {
        let s = input.create().map_err(Error::Invalid)?;
        let mut st = self.lock();
        if st.config.len() + st.api.len() >= schedule::MAX_SCHEDULES {
            return Err(Error::Refused(format!(
                "at most {} backup schedules",
                schedule::MAX_SCHEDULES
            )));
        }
        let existing: Vec<Schedule> = st.config.iter().chain(&st.api).cloned().collect();
        schedule::unique_name(&existing, &s.name, None).map_err(Error::Invalid)?;
        st.api.push(s.clone());
        st.last_run.retain(|n, _| !same(n, &s.name));
        self.save(&st)?;
        drop(st);
        self.changed.notify_one();
        Ok(ScheduleView::new(&s, Source::Api, None, now))
    }

    /// Changes an API-made schedule (the fields given; a rename keeps its `last_run`).
    pub fn update(&self, name: &str, input: ScheduleInput, now: i64) -> Result<ScheduleView> {
        let mut st = self.lock();
        let i = self.api_index(&st, name)?;
        let current = st.api[i].clone();
        let new = input.update(&current).map_err(Error::Invalid)?;
        let existing: Vec<Schedule> = st.config.iter().chain(&st.api).cloned().collect();
        schedule::unique_name(&existing, &new.name, Some(&current.name)).map_err(Error::Invalid)?;
        let last = st.last_run.remove(&current.name);
        if let Some(t) = last {
            st.last_run.insert(new.name.clone(), t);
        }
        st.api[i] = new.clone();
        self.save(&st)?;
        drop(st);
        self.changed.notify_one();
        Ok(ScheduleView::new(&new, Source::Api, last, now))
    }

    /// Deletes an API-made schedule.
    pub fn delete(&self, name: &str) -> Result<()> {
        let mut st = self.lock();
        let i = self.api_index(&st, name)?;
        let gone = st.api.remove(i);
        st.last_run.remove(&gone.name);
        self.save(&st)?;
        drop(st);
        self.changed.notify_one();
        Ok(())
    }

    /// Records that schedule `name` started a run at `at`.
    pub fn record_run(&self, name: &str, at: i64) -> Result<()> {
        let mut st = self.lock();
        st.last_run.insert(name.to_string(), at);
        self.save(&st)
    }

    /// The position of the API-made schedule `name`; a configuration one is refused.
    fn api_index(&self, st: &State, name: &str) -> Result<usize> {
        if let Some(c) = st.config.iter().find(|c| same(&c.name, name)) {
            return Err(Error::Refused(format!(
                "schedule {:?} is defined in the configuration file ([[backup.schedules]]): \
                 change or remove it there, then restart the service",
                c.name
            )));
        }
        st.api
            .iter()
            .position(|s| same(&s.name, name))
            .ok_or(Error::NotFound("schedule"))
    }

    /// Writes the API-made schedules and the last runs of the schedules that exist.
    fn save(&self, st: &State) -> Result<()> {
        let known = |n: &String| st.config.iter().chain(&st.api).any(|s| &s.name == n);
        let last_run: serde_json::Map<String, serde_json::Value> = st
            .last_run
            .iter()
            .filter(|(n, _)| known(n))
            .map(|(n, t)| (n.clone(), (*t).into()))
            .collect();
        let schedules: Vec<serde_json::Value> = st.api.iter().map(schedule_json).collect();
        let json = serde_json::json!({"schedules": schedules, "last_run": last_run})
            .to_string()
            .into_bytes();
        crate::fsutil::write_private(&self.path, &json).map_err(|e| {
            log::error!("backup schedules: {e}");
            Error::Internal
        })
    }
}

/// The schedules through the backup service (the API's handlers call these).
impl Service {
    pub fn schedules(&self) -> &Schedules {
        &self.schedules
    }

    pub fn schedule_views(&self) -> Vec<ScheduleView> {
        self.schedules.views(crate::time::now())
    }

    pub fn schedule_view(&self, name: &str) -> Result<ScheduleView> {
        self.schedules.view(name, crate::time::now())
    }

    pub async fn create_schedule(&self, input: ScheduleInput) -> Result<ScheduleView> {
        self.check_kind(&input)?;
        let s = self.schedules.clone();
        blocking_result(Box::new(move || {
            s.create(input, crate::time::now()).map(Some)
        }))
        .await?
        .ok_or(Error::Internal)
    }

    pub async fn update_schedule(
        &self,
        name: String,
        input: ScheduleInput,
    ) -> Result<ScheduleView> {
        self.check_kind(&input)?;
        let s = self.schedules.clone();
        blocking_result(Box::new(move || {
            s.update(&name, input, crate::time::now()).map(Some)
        }))
        .await?
        .ok_or(Error::Internal)
    }

    /// A `config` schedule of a service started without a configuration file would fail at
    /// every slot: refused now, as `Service::create` refuses such a backup.
    fn check_kind(&self, input: &ScheduleInput) -> Result<()> {
        let kind = input.backup_type.as_deref().and_then(super::Kind::parse);
        if kind == Some(super::Kind::Config) && self.sources.config_file.is_none() {
            return Err(Error::invalid(
                "backup_type",
                "this service was started without a configuration file (--config): a config \
                 backup would hold nothing",
            ));
        }
        Ok(())
    }

    pub async fn delete_schedule(&self, name: String) -> Result<()> {
        let s = self.schedules.clone();
        blocking_result(Box::new(move || s.delete(&name).map(|()| None)))
            .await
            .map(drop)
    }
}

/// Work on `schedules.json`, boxed: every change and `last_run` record is the same blocking
/// task type (one instantiation of the task machinery in the binary, not one per caller).
pub(super) type FileWork = Box<dyn FnOnce() -> Result<Option<ScheduleView>> + Send>;

/// Runs file work that answers a domain result off the async workers.
pub(super) async fn blocking_result(f: FileWork) -> Result<Option<ScheduleView>> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::Stopping)?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> ScheduleInput {
        serde_json::from_str(json).unwrap()
    }

    fn config(name: &str) -> Schedule {
        input(&format!(
            r#"{{"name":"{name}","frequency":"daily","at":"03:30"}}"#
        ))
        .create()
        .unwrap()
    }

    #[test]
    fn api_schedules_and_last_runs_survive_a_reopen_config_ones_are_read_only() {
        let d = tempfile::tempdir().unwrap();
        let s = Schedules::open(d.path());
        s.set_config(vec![config("nightly")]);
        let v = s
            .create(input(r#"{"name":"db","frequency":"hourly","at":":15"}"#), 0)
            .unwrap();
        assert_eq!(
            (v.source, v.next_run),
            (Source::Api, Some(0)),
            "due at once"
        );
        s.record_run("nightly", 100).unwrap();
        s.record_run("db", 200).unwrap();
        let e = s
            .create(input(r#"{"name":"NIGHTLY","frequency":"daily"}"#), 0)
            .unwrap_err();
        assert!(
            matches!(e, Error::Invalid(ref i) if i.field == "name"),
            "{e}"
        );
        let e = s.delete("Nightly").unwrap_err();
        assert!(e.to_string().contains("configuration file"), "{e}");
        let e = s.update("nightly", input("{}"), 0).unwrap_err();
        assert!(matches!(e, Error::Refused(_)), "{e}");
        assert!(matches!(s.delete("nope"), Err(Error::NotFound(_))));
        // A rename keeps the last run.
        let v = s.update("DB", input(r#"{"name":"db2"}"#), 300).unwrap();
        assert_eq!((v.name.as_str(), v.last_run), ("db2", Some(200)));
        assert_eq!(
            v.next_run,
            Some(15 * 60),
            "the first :15 after the last run"
        );

        let again = Schedules::open(d.path());
        again.set_config(vec![config("nightly")]);
        let all = again.all();
        let names: Vec<_> = all
            .iter()
            .map(|(s, src, l)| (s.name.as_str(), *src, *l))
            .collect();
        assert_eq!(
            names,
            [
                ("nightly", Source::Config, Some(100)),
                ("db2", Source::Api, Some(200))
            ]
        );
        again.delete("db2").unwrap();
        // The configuration took a name an API schedule had: the API one is ignored.
        let s = Schedules::open(d.path());
        s.create(input(r#"{"name":"x","frequency":"daily"}"#), 0)
            .unwrap();
        let later = Schedules::open(d.path());
        later.set_config(vec![config("X")]);
        assert_eq!(later.all().len(), 1);
        assert_eq!(later.all()[0].1, Source::Config);
    }

    #[test]
    fn an_unreadable_file_is_empty_and_counts_are_capped() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(FILE), b"{not json").unwrap();
        let s = Schedules::open(d.path());
        assert!(s.all().is_empty());
        for i in 0..schedule::MAX_SCHEDULES {
            s.create(
                input(&format!(r#"{{"name":"s{i}","frequency":"daily"}}"#)),
                0,
            )
            .unwrap();
        }
        let e = s
            .create(input(r#"{"name":"one more","frequency":"daily"}"#), 0)
            .unwrap_err();
        assert!(matches!(e, Error::Refused(_)));
    }
}
