//! `backup_retention`, the value: how long completed backups are kept. The setting is
//! shared by the configuration file (`[backup] retention`), `/system/config` and the backup
//! service, so its type lives here, below all three; what it removes is decided by
//! `backup::schedule::retention`.
//!
//! - a bare number is **days** (the seed's `30`): `30` ≡ `{"max_age_days": 30}`;
//! - `{"keep_last": 10}` keeps the 10 newest;
//! - `{"keep_last": 10, "max_age_days": 30}` keeps a backup when **either** rule keeps it.
//!
//! In TOML the same: `retention = 30`, `retention = { keep_last = 10 }`. Unknown keys,
//! `{}`, 0, negative or fractional numbers and strings are refused, naming the field
//! (`backup_retention.keep_last`); bounds are [`KEEP_LAST`] and [`MAX_AGE_DAYS`].

use crate::error::Invalid;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// Bounds of `keep_last` and of `max_age_days` (ten years).
pub const KEEP_LAST: std::ops::RangeInclusive<u32> = 1..=10_000;
pub const MAX_AGE_DAYS: std::ops::RangeInclusive<u32> = 1..=3650;

/// `backup_retention`: how long completed backups are kept (see the module doc). Both
/// fields `None` keeps every backup (only the size cap then removes any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub keep_last: Option<u32>,
    pub max_age_days: Option<u32>,
}

impl Default for Retention {
    /// 30 days, the seed's example.
    fn default() -> Self {
        Retention {
            keep_last: None,
            max_age_days: Some(30),
        }
    }
}

impl Retention {
    /// `backup_retention` from a JSON value (the `/system/config` body keeps it as one):
    /// errors name `backup_retention` or its inner field.
    pub fn from_json(v: &serde_json::Value) -> Result<Retention, Invalid> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            let field = match path.as_str() {
                "." => "backup_retention".to_string(),
                p => format!("backup_retention.{p}"),
            };
            Invalid::new(field, e.into_inner().to_string())
        })
    }
}

/// A bare number is days; otherwise `keep_last` and/or `max_age_days`.
impl Serialize for Retention {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if let (None, Some(d)) = (self.keep_last, self.max_age_days) {
            return s.serialize_u32(d);
        }
        let mut m = s.serialize_map(None)?;
        if let Some(k) = self.keep_last {
            m.serialize_entry("keep_last", &k)?;
        }
        if let Some(d) = self.max_age_days {
            m.serialize_entry("max_age_days", &d)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Retention {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RetentionVisitor)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum RetentionField {
    KeepLast,
    MaxAgeDays,
}

struct RetentionVisitor;

impl<'de> Visitor<'de> for RetentionVisitor {
    type Value = Retention;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "a number of days ({}..={}) or an object with keep_last and/or max_age_days",
            MAX_AGE_DAYS.start(),
            MAX_AGE_DAYS.end()
        )
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Retention, E> {
        Ok(Retention {
            keep_last: None,
            max_age_days: Some(in_range(v, &MAX_AGE_DAYS, "days")?),
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Retention, E> {
        let v = u64::try_from(v).map_err(|_| E::custom("backup_retention must not be negative"))?;
        self.visit_u64(v)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Retention, A::Error> {
        let mut r = Retention {
            keep_last: None,
            max_age_days: None,
        };
        // Keys as an identifier type, so an unknown one fails while it is read and its
        // name ends the error's path (as with `deny_unknown_fields`).
        while let Some(key) = map.next_key::<RetentionField>()? {
            let (slot, name) = match key {
                RetentionField::KeepLast => (&mut r.keep_last, "keep_last"),
                RetentionField::MaxAgeDays => (&mut r.max_age_days, "max_age_days"),
            };
            if slot.is_some() {
                return Err(de::Error::duplicate_field(name));
            }
            *slot = Some(match key {
                RetentionField::KeepLast => map.next_value::<KeepLast>()?.0,
                RetentionField::MaxAgeDays => map.next_value::<Days>()?.0,
            });
        }
        if r.keep_last.is_none() && r.max_age_days.is_none() {
            return Err(de::Error::custom(
                "give keep_last, max_age_days or both (a bare number is days)",
            ));
        }
        Ok(r)
    }
}

/// `keep_last`, checked while it is read so errors carry its name in their path.
struct KeepLast(u32);
/// `max_age_days`, likewise.
struct Days(u32);

impl<'de> Deserialize<'de> for KeepLast {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(KeepLast(in_range(
            u64::deserialize(d)?,
            &KEEP_LAST,
            "backups",
        )?))
    }
}

impl<'de> Deserialize<'de> for Days {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Days(in_range(u64::deserialize(d)?, &MAX_AGE_DAYS, "days")?))
    }
}

fn in_range<E: de::Error>(
    v: u64,
    range: &std::ops::RangeInclusive<u32>,
    unit: &str,
) -> Result<u32, E> {
    u32::try_from(v)
        .ok()
        .filter(|v| range.contains(v))
        .ok_or_else(|| {
            E::custom(format!(
                "{v} is out of range: {}..={} {unit}",
                range.start(),
                range.end()
            ))
        })
}
