//! Inputs every domain shares, with no HTTP in them: pagination of lists and the
//! "absent vs `null`" convention of PATCH-style bodies. The API layer fills them from query
//! strings and JSON (`api::query`, `api::request`); domains only read them.

use serde::{Deserialize, Serialize};

pub mod retention;

/// `page` (≥ 1, default 1) and `size` (1–100, default 20) of a list request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: u32,
    pub size: u32,
}

pub const DEFAULT_SIZE: u32 = 20;
pub const MAX_SIZE: u32 = 100;

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PageMeta {
    pub page: u32,
    pub size: u32,
    pub total: u64,
    pub pages: u64,
}

impl Page {
    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.size)
    }

    pub fn meta(&self, total: u64) -> PageMeta {
        PageMeta {
            page: self.page,
            size: self.size,
            total,
            pages: total.div_ceil(u64::from(self.size)),
        }
    }
}

/// For `Option<Option<T>>` fields of PATCH bodies: absent = `None`, `null` = `Some(None)`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Option::<T>::deserialize(d).map(Some)
}

/// `bytes` (one JSON document) → `T`, through a [`serde_json::Value`]: every typed read of
/// small JSON (tokens, backup catalogue entries, journals, SLURM files, request bodies) then
/// shares one JSON parser, instead of one inlined into each type's deserializer (~1–3 KB
/// each on mipsel). Not for large files (a VRP export is streamed: `rpki::file`). Errors
/// say what is wrong but not where (no line/column).
pub fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    serde_json::from_slice::<serde_json::Value>(bytes).and_then(serde_json::from_value)
}

/// A backup schedule as the API body or a `[[backup.schedules]]` table of the configuration
/// gives it (`backup::schedule` reads it into a schedule). Every field is optional here so
/// one type serves create and change.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    pub name: Option<String>,
    pub frequency: Option<String>,
    pub at: Option<String>,
    pub weekday: Option<String>,
    pub backup_type: Option<String>,
    pub enabled: Option<bool>,
}
