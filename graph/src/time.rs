//! Graph timestamps.
//!
//! Graph writes times either as unix seconds (filters, token expiries) or as ISO 8601 text with
//! a numeric offset (`2020-11-09T23:00:13+0000`) on nodes. [`UnixTime`] accepts both and keeps
//! seconds since the epoch.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// Seconds since the unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct UnixTime(pub i64);

impl UnixTime {
    /// Parses unix seconds written as decimal text, or an ISO 8601 date-time
    /// (`YYYY-MM-DDTHH:MM:SS` followed by `Z`, `+HHMM`, `+HH:MM` or nothing for UTC).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse().ok().map(UnixTime);
        }
        parse_iso8601(s).map(UnixTime)
    }
}

fn parse_iso8601(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let h: i64 = digits[..2].parse().ok()?;
            let m: i64 = digits[2..].parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + min * 60 + sec - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of a day counted from 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl<'de> Deserialize<'de> for UnixTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = UnixTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("unix seconds or an ISO 8601 date-time")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<UnixTime, E> {
                Ok(UnixTime(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<UnixTime, E> {
                i64::try_from(v)
                    .map(UnixTime)
                    .map_err(|_| E::custom("time out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<UnixTime, E> {
                if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
                    Ok(UnixTime(v as i64))
                } else {
                    Err(E::custom("time must be whole seconds"))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UnixTime, E> {
                UnixTime::parse(v).ok_or_else(|| E::custom("unrecognised time format"))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_graph_time_forms() {
        assert_eq!(UnixTime::parse("1604962813"), Some(UnixTime(1_604_962_813)));
        assert_eq!(
            UnixTime::parse("2020-11-09T23:00:13+0000"),
            Some(UnixTime(1_604_962_813))
        );
        assert_eq!(
            UnixTime::parse("2020-11-10T01:00:13+02:00"),
            Some(UnixTime(1_604_962_813))
        );
        assert_eq!(
            UnixTime::parse("2020-11-09T23:00:13.250Z"),
            Some(UnixTime(1_604_962_813))
        );
        assert_eq!(UnixTime::parse("1970-01-01T00:00:00Z"), Some(UnixTime(0)));
        let t: UnixTime = serde_json::from_str("\"2024-02-29T12:00:00+0000\"").unwrap();
        assert_eq!(t, UnixTime(1_709_208_000));
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "yesterday",
            "2020-13-01T00:00:00Z",
            "2020-11-09T23:00:13+00",
            "2020-11-09",
        ] {
            assert_eq!(UnixTime::parse(bad), None, "{bad:?}");
        }
        assert!(serde_json::from_str::<UnixTime>("1.5").is_err());
        assert!(serde_json::from_str::<UnixTime>("[]").is_err());
    }
}
