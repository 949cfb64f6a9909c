//! The live VRP table and where it came from. Readers take an `Arc` snapshot (validation
//! never waits for a reload); a loader swaps in a whole new table. The file source re-reads
//! its JSON export (and SLURM file) when either file's modification time changes, checked
//! every [`FILE_POLL`]; a broken file keeps the previous table and shows the error.

use super::file::{parse_slurm, read_export};
use super::vrp::{Builder, Vrp, VrpTable};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// How often the file source looks at the files' modification times.
pub const FILE_POLL: Duration = Duration::from_secs(2);

/// What `/status/health/detailed` shows about RPKI.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SourceInfo {
    /// `"file"`, `"rtr"` or `"none"`.
    pub source: &'static str,
    /// The file path or the RTR server.
    pub location: Option<String>,
    pub vrp_count: usize,
    /// RTR serial; for files, the number of successful loads.
    pub serial: Option<u64>,
    #[serde(serialize_with = "crate::time::ser_opt")]
    pub last_update: Option<i64>,
    pub last_error: Option<String>,
    /// Bytes of the VRP entries.
    pub memory_bytes: usize,
}

pub struct Rpki {
    table: RwLock<Arc<VrpTable>>,
    info: RwLock<SourceInfo>,
    /// Signalled when the table changes (the BGP speaker re-checks what it announces).
    updated: Arc<tokio::sync::Notify>,
}

impl Default for Rpki {
    fn default() -> Self {
        Rpki {
            table: RwLock::new(Arc::new(VrpTable::default())),
            info: RwLock::new(SourceInfo {
                source: "none",
                ..SourceInfo::default()
            }),
            updated: Arc::default(),
        }
    }
}

impl Rpki {
    /// The current table (cheap: an `Arc` clone).
    pub fn table(&self) -> Arc<VrpTable> {
        Arc::clone(&self.table.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn info(&self) -> SourceInfo {
        self.info.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Signalled (one stored permit) whenever the table is replaced or expires.
    pub fn updated(&self) -> Arc<tokio::sync::Notify> {
        self.updated.clone()
    }

    /// Whether any source is configured and has delivered a table.
    pub fn loaded(&self) -> bool {
        self.info().last_update.is_some()
    }

    fn set_table(&self, table: VrpTable, serial: Option<u64>) {
        self.publish(Arc::new(table), serial);
    }

    /// Makes `table` the live one.
    pub(crate) fn publish(&self, table: Arc<VrpTable>, serial: Option<u64>) {
        let mut info = self.info.write().unwrap_or_else(|e| e.into_inner());
        info.vrp_count = table.len();
        info.memory_bytes = table.memory();
        info.serial = serial;
        info.last_update = Some(crate::time::now());
        info.last_error = None;
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = table;
        drop(info);
        self.updated.notify_one();
    }

    /// The data is too old to use (RTR expire interval): validation answers 503 again.
    pub(crate) fn expire(&self) {
        log::warn!("RPKI: data expired");
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(VrpTable::default());
        let mut info = self.info.write().unwrap_or_else(|e| e.into_inner());
        info.vrp_count = 0;
        info.memory_bytes = 0;
        info.last_update = None;
        info.last_error =
            Some("data expired: no update from the cache within its expire interval".into());
        drop(info);
        self.updated.notify_one();
    }

    pub(crate) fn set_error(&self, e: String) {
        log::warn!("RPKI: {e}");
        self.info
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .last_error = Some(e);
    }

    pub(crate) fn set_source(&self, source: &'static str, location: String) {
        let mut info = self.info.write().unwrap_or_else(|e| e.into_inner());
        info.source = source;
        info.location = Some(location);
    }

    /// Loads the export (and SLURM exceptions) once; on error the previous table stays.
    /// The file is streamed straight into the table: peak memory is the table being built
    /// next to the live one, not the file.
    pub fn load_files(&self, vrps: &Path, slurm: Option<&Path>) -> Result<usize, String> {
        let slurm = match slurm {
            Some(s) => {
                let text =
                    std::fs::read(s).map_err(|e| format!("cannot read {}: {e}", s.display()))?;
                Some(parse_slurm(&text)?)
            }
            None => None,
        };
        let file = std::fs::File::open(vrps)
            .map_err(|e| format!("cannot read {}: {e}", vrps.display()))?;
        let mut builder = Builder::default();
        let mut sink = |v: Vrp| {
            if slurm.as_ref().is_none_or(|s| s.keeps(&v)) {
                builder.push(v);
            }
        };
        read_export(file, &mut sink)?;
        for v in slurm.iter().flat_map(|s| s.assertions.iter()) {
            builder.push(*v);
        }
        let table = builder.finish();
        let n = table.len();
        let serial = self.info().serial.map_or(1, |s| s + 1);
        self.set_table(table, Some(serial));
        Ok(n)
    }
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The file source: loads at once, then again whenever a file changes. Runs until the task
/// is dropped.
pub async fn watch_files(rpki: Arc<Rpki>, vrps: PathBuf, slurm: Option<PathBuf>) {
    rpki.set_source("file", vrps.display().to_string());
    let mut seen: Option<(Option<SystemTime>, Option<SystemTime>)> = None;
    loop {
        let now = (mtime(&vrps), slurm.as_deref().and_then(mtime));
        if seen != Some(now) {
            seen = Some(now);
            let (r, v, s) = (Arc::clone(&rpki), vrps.clone(), slurm.clone());
            // Parsing 500k VRPs takes a moment of CPU: off the async workers.
            let result = tokio::task::spawn_blocking(move || r.load_files(&v, s.as_deref()))
                .await
                .unwrap_or_else(|e| Err(format!("loader failed: {e}")));
            match result {
                Ok(n) => log::info!("RPKI: {n} VRPs loaded from {}", vrps.display()),
                Err(e) => rpki.set_error(e),
            }
        }
        tokio::time::sleep(FILE_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_file_keeps_the_previous_table() {
        let dir = tempfile::tempdir().expect("dir");
        let f = dir.path().join("vrps.json");
        std::fs::write(
            &f,
            br#"{"roas":[{"prefix":"192.0.2.0/24","maxLength":24,"asn":"AS65001"}]}"#,
        )
        .expect("write");
        let r = Rpki::default();
        assert!(!r.loaded());
        assert_eq!(r.load_files(&f, None), Ok(1));
        assert_eq!((r.info().vrp_count, r.info().serial), (1, Some(1)));
        std::fs::write(&f, b"{\"roas\":[").expect("write");
        assert!(r.load_files(&f, None).is_err());
        assert_eq!(r.table().len(), 1, "previous table kept");
        let slurm = dir.path().join("slurm.json");
        std::fs::write(
            &f,
            br#"{"roas":[{"prefix":"192.0.2.0/24","maxLength":24,"asn":65001},
                         {"prefix":"198.51.100.0/24","maxLength":24,"asn":65002}]}"#,
        )
        .expect("write");
        std::fs::write(
            &slurm,
            br#"{"slurmVersion":1,"validationOutputFilters":{"prefixFilters":[{"asn":65002}],"bgpsecFilters":[]},
                 "locallyAddedAssertions":{"prefixAssertions":[],"bgpsecAssertions":[]}}"#,
        )
        .expect("write");
        assert_eq!(
            r.load_files(&f, Some(&slurm)),
            Ok(1),
            "SLURM filter applied"
        );
        assert_eq!(r.info().serial, Some(2));
    }
}
