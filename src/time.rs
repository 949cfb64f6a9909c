//! Wall-clock time as Unix seconds, rendered as RFC 3339 UTC (`2024-01-01T00:00:00Z`).
//! The database stores integers; only the API edge formats them. No calendar crate: the
//! civil-date conversion below is Howard Hinnant's `civil_from_days`/`days_from_civil`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before 1970, which a router without RTC
/// and NTP can briefly be).
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `1704067200` → `"2024-01-01T00:00:00Z"`.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Serde helper: `#[serde(serialize_with = "time::ser")]` on an `i64` field.
pub fn ser<S: serde::Serializer>(secs: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*secs))
}

/// Serde helper for `Option<i64>` fields: `null` when absent.
pub fn ser_opt<S: serde::Serializer>(secs: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match secs {
        Some(v) => s.serialize_str(&rfc3339(*v)),
        None => s.serialize_none(),
    }
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_704_067_200), "2024-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn every_day_of_four_centuries_is_consecutive() {
        // Walk 1900..2300 and check that dates step by exactly one day.
        let mut prev = civil_from_days(-25_567);
        for day in -25_566..120_000 {
            let cur = civil_from_days(day);
            let next_month = cur.2 == 1 && (cur.1 == prev.1 % 12 + 1);
            assert!(
                (cur.0 == prev.0 && cur.1 == prev.1 && cur.2 == prev.2 + 1)
                    || (next_month && (cur.0 == prev.0 || (cur.1 == 1 && cur.0 == prev.0 + 1))),
                "{prev:?} -> {cur:?}"
            );
            prev = cur;
        }
    }
}
