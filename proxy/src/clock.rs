//! Wall-clock time as stored in records.

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `secs` since the Unix epoch as RFC 3339 in UTC (`2026-12-05T01:02:03Z`), the form of
/// an outbound event's `timestamp`.
pub fn rfc3339(secs: i64) -> String {
    format!("{}Z", date_time(secs))
}

/// `secs` since the Unix epoch as a date and time without a zone (`2026-12-05T01:02:03`):
/// the caller adds the zone the seconds were counted in.
pub fn date_time(secs: i64) -> String {
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = waba_graph::time::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_names_the_utc_date_and_time() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_796_432_523), "2026-12-05T01:02:03Z");
        assert_eq!(super::rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
