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

/// Serde helper: reads what [`ser`] writes (and whatever else [`parse`] takes).
pub fn de<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    parse(&s).ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a time")))
}

/// Serde helper: reads what [`ser_opt`] writes.
pub fn de_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match <Option<String> as serde::Deserialize>::deserialize(d)? {
        None => Ok(None),
        Some(s) => parse(&s)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a time"))),
    }
}

/// Parses what clients send for a point in time: RFC 3339 (`2024-01-01T00:00:00Z`, an
/// offset such as `+02:00`, fractional seconds, `t`/`z` or a space for `T`), a bare date
/// (`2024-01-01`, midnight UTC) or Unix seconds. `None` when it is none of these.
pub fn parse(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let days = days_from_civil(y, m as u32, d as u32);
    if b.len() == 10 {
        return Some(days * 86_400);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let o = rest.get(1..)?;
            if o.len() != 5 || o.as_bytes()[2] != b':' {
                return None;
            }
            let (oh, om): (i64, i64) = (o[0..2].parse().ok()?, o[3..5].parse().ok()?);
            if oh > 23
                || om > 59
                || !o[0..2]
                    .bytes()
                    .chain(o[3..5].bytes())
                    .all(|c| c.is_ascii_digit())
            {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    fn parses_what_clients_send() {
        for (text, want) in [
            ("2024-01-01T00:00:00Z", Some(1_704_067_200)),
            ("2024-01-01t00:00:00z", Some(1_704_067_200)),
            ("2024-01-01 00:00:00Z", Some(1_704_067_200)),
            ("2024-01-01T02:00:00+02:00", Some(1_704_067_200)),
            ("2023-12-31T23:00:00-01:00", Some(1_704_067_200)),
            ("2024-01-01T00:00:00.123456Z", Some(1_704_067_200)),
            ("2024-01-01", Some(1_704_067_200)),
            ("2000-02-29T00:00:00Z", Some(951_782_400)),
            ("1704067200", Some(1_704_067_200)),
            ("2023-02-29", None),
            ("2024-13-01", None),
            ("2024-01-01T24:00:00Z", None),
            ("2024-01-01T00:00:00", None),
            ("2024-01-01T00:00:00+2:00", None),
            ("2024-01-01T00:00:00.Z", None),
            ("yesterday", None),
            ("", None),
            ("２０２４-01-01", None),
        ] {
            assert_eq!(parse(text), want, "{text}");
        }
        for secs in [0, 951_782_400, 1_709_251_199, 4_102_444_800] {
            assert_eq!(parse(&rfc3339(secs)), Some(secs));
        }
    }

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
