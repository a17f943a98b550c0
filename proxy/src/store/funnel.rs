//! The onboarding funnel: what the records the proxy keeps say about a range of days,
//! aggregated in the database (SQLite and PostgreSQL run the same SQL), and the records
//! behind it, page by page, for the CSV export.
//!
//! Definitions, one place for all of them:
//! - an *attempt* is a record created in the range (every flow, `discovered` included);
//! - a day is `(created_at + utc offset) / 86400`: the day of the partner's calendar;
//! - *stopped at* counts the records that did not finish, by the `current_step` Meta's
//!   session message named (`None` when it named none: an error, a refused code);
//! - *errors* count the records whose outcome is `error`, by Meta's error code;
//! - a finished record is *ready to message* when its first `register` step is `done`
//!   (numbers already registered at signup, and coexistence numbers, are never registered
//!   by the pipeline and so never counted here); the wait is that step's `updated_at` minus
//!   the record's `created_at`;
//! - *reviews* count the WABAs granted by records in the range by Meta's latest review
//!   decision about each (`account_review_update`), WABAs without one left out.

use super::StoreError;
use super::sql::{Conn, Row, Val};
pub use waba_graph::time::{civil_from_days, days_from_civil};

/// The records a funnel counts: created in `[start, end)` (unix seconds), days counted at
/// `offset_secs` east of UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunnelRange {
    /// First second counted.
    pub start: i64,
    /// First second no longer counted.
    pub end: i64,
    /// The partner's offset from UTC (seconds east), which decides where days begin.
    pub offset_secs: i64,
}

/// How many records (or WABAs) share a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// The value (`None`: not reported).
    pub key: Option<String>,
    /// How many.
    pub count: i64,
}

/// The attempts of one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayCount {
    /// Days since 1970-01-01 on the partner's calendar.
    pub day: i64,
    /// Records created that day.
    pub attempts: i64,
    /// Of which finished.
    pub finished: i64,
}

/// Upper bounds (seconds, exclusive) of the time-to-ready buckets; the last bucket holds
/// everything from the last bound on.
pub const READY_BOUNDS: [i64; 7] = [60, 300, 900, 3_600, 21_600, 86_400, 259_200];

/// How long finished records waited to be ready to message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadyTimes {
    /// Finished records in the range.
    pub finished: i64,
    /// Of which ready to message.
    pub ready: i64,
    /// Shortest wait (seconds).
    pub min_secs: Option<i64>,
    /// Longest wait (seconds).
    pub max_secs: Option<i64>,
    /// Sum of the waits (seconds), for the mean.
    pub total_secs: i64,
    /// Ready records per bucket of [`READY_BOUNDS`] (one more than the bounds).
    pub buckets: Vec<i64>,
}

/// What the records of a range say.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Funnel {
    /// Records created in the range.
    pub attempts: i64,
    /// By outcome (`finished`, `cancelled`, `error`, `code_rejected`, `unknown`).
    pub outcomes: Vec<Tally>,
    /// By flow (`token`, `code`, `discovered`).
    pub flows: Vec<Tally>,
    /// Days with at least one record, oldest first.
    pub days: Vec<DayCount>,
    /// Records that did not finish, by the step the business left at.
    pub stopped_at: Vec<Tally>,
    /// Records that ended in an error, by Meta's error code.
    pub errors: Vec<Tally>,
    /// Waits from finish to ready to message.
    pub ready: ReadyTimes,
    /// WABAs by Meta's latest review decision.
    pub reviews: Vec<Tally>,
}

/// One record as the CSV export shows it (never a token, a PIN or a session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunnelRecord {
    /// Its id.
    pub id: i64,
    /// When it was created (unix seconds).
    pub created_at: i64,
    /// `token`, `code` or `discovered`.
    pub flow: String,
    /// How it ended.
    pub outcome: String,
    /// The session event's name.
    pub event: Option<String>,
    /// The step the business left at.
    pub current_step: Option<String>,
    /// Meta's error code.
    pub error_id: Option<String>,
    /// The error the business saw.
    pub error_message: Option<String>,
    /// The WABAs granted, newest first.
    pub granted: Vec<String>,
    /// When its first register step was done (unix seconds).
    pub ready_at: Option<i64>,
    /// When Meta said the business ended the partnership.
    pub revoked_at: Option<i64>,
    /// When the partner offboarded it.
    pub offboarded_at: Option<i64>,
}

/// The records of the range, as a `FROM ... WHERE` clause over `onboardings o` with the
/// range's start and end as `?1` and `?2`.
const IN_RANGE: &str = "FROM onboardings o WHERE o.created_at >= ?1 AND o.created_at < ?2";

/// When record `o` was first ready to message, as a scalar subquery.
const READY_AT: &str = "(SELECT MIN(p.updated_at) FROM pipeline_steps p \
     WHERE p.onboarding_id = o.id AND p.kind = 'register' AND p.state = 'done')";

/// Reads `(key, count)` rows, most first (then by key, `None` last).
fn tallies(rows: Vec<Row>) -> Result<Vec<Tally>, StoreError> {
    let mut out = rows
        .iter()
        .map(|r| {
            Ok(Tally {
                key: r.get(0)?,
                count: r.get(1)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.key.is_none().cmp(&b.key.is_none()))
            .then_with(|| a.key.cmp(&b.key))
    });
    Ok(out)
}

/// The funnel of `range`.
pub fn funnel(c: &mut dyn Conn, range: FunnelRange) -> Result<Funnel, StoreError> {
    let bounds = [Val::Int(range.start), Val::Int(range.end)];
    let by = |c: &mut dyn Conn, column: &str, filter: &str| {
        tallies(c.query(
            &format!("SELECT o.{column}, COUNT(*) {IN_RANGE}{filter} GROUP BY o.{column}"),
            &bounds,
        )?)
    };
    let outcomes = by(c, "outcome", "")?;
    let flows = by(c, "flow", "")?;
    let stopped_at = by(c, "current_step", " AND o.outcome <> 'finished'")?;
    let errors = by(c, "error_id", " AND o.outcome = 'error'")?;
    let days = c
        .query(
            &format!(
                "SELECT (o.created_at + CAST(?3 AS BIGINT)) / 86400 AS d, COUNT(*), \
                 SUM(CASE WHEN o.outcome = 'finished' THEN 1 ELSE 0 END) \
                 {IN_RANGE} GROUP BY d ORDER BY d"
            ),
            &[
                Val::Int(range.start),
                Val::Int(range.end),
                Val::Int(range.offset_secs),
            ],
        )?
        .iter()
        .map(|r| {
            Ok(DayCount {
                day: r.get(0)?,
                attempts: r.get(1)?,
                finished: r.get(2)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let ready = ready_times(c, &bounds)?;
    let reviews = tallies(c.query(
        "SELECT e.value, COUNT(DISTINCT e.waba_id) FROM status_events e \
         WHERE e.kind = 'review' AND e.waba_id IS NOT NULL \
         AND e.seq = (SELECT MAX(l.seq) FROM status_events l \
             WHERE l.kind = 'review' AND l.waba_id = e.waba_id) \
         AND EXISTS (SELECT 1 FROM onboardings o WHERE o.created_at >= ?1 AND o.created_at < ?2 \
             AND (',' || o.granted || ',') LIKE ('%,' || e.waba_id || ',%')) \
         GROUP BY e.value",
        &bounds,
    )?)?;
    Ok(Funnel {
        attempts: outcomes.iter().map(|t| t.count).sum(),
        outcomes,
        flows,
        days,
        stopped_at,
        errors,
        ready,
        reviews,
    })
}

/// The waits of the finished records of the range.
fn ready_times(c: &mut dyn Conn, bounds: &[Val]) -> Result<ReadyTimes, StoreError> {
    // Each finished record's wait (NULL when not ready), never below zero.
    let waits = format!(
        "(SELECT CASE WHEN {READY_AT} < o.created_at THEN 0 \
         ELSE {READY_AT} - o.created_at END AS s {IN_RANGE} AND o.outcome = 'finished') w"
    );
    let stats = c.query_one(
        &format!(
            "SELECT COUNT(*), COUNT(w.s), MIN(w.s), MAX(w.s), \
             CAST(COALESCE(SUM(w.s), 0) AS BIGINT) FROM {waits}"
        ),
        bounds,
    )?;
    let bucket = READY_BOUNDS
        .iter()
        .enumerate()
        .map(|(i, b)| format!("WHEN w.s < {b} THEN {i} "))
        .collect::<String>();
    let mut buckets = vec![0; READY_BOUNDS.len() + 1];
    for r in c.query(
        &format!(
            "SELECT CASE {bucket}ELSE {} END AS b, COUNT(*) FROM {waits} \
             WHERE w.s IS NOT NULL GROUP BY b",
            READY_BOUNDS.len()
        ),
        bounds,
    )? {
        let i: i64 = r.get(0)?;
        let slot = usize::try_from(i)
            .ok()
            .and_then(|i| buckets.get_mut(i))
            .ok_or(StoreError::Corrupt("bucket"))?;
        *slot = r.get(1)?;
    }
    Ok(ReadyTimes {
        finished: stats.get(0)?,
        ready: stats.get(1)?,
        min_secs: stats.get(2)?,
        max_secs: stats.get(3)?,
        total_secs: stats.get(4)?,
        buckets,
    })
}

/// The records of `range` with an id above `after`, oldest first, at most `limit`.
pub fn funnel_records(
    c: &mut dyn Conn,
    range: FunnelRange,
    after: i64,
    limit: u32,
) -> Result<Vec<FunnelRecord>, StoreError> {
    c.query(
        &format!(
            "SELECT o.id, o.created_at, o.flow, o.outcome, o.event, o.current_step, o.error_id, \
             o.error_message, o.granted, {READY_AT}, o.revoked_at, o.offboarded_at \
             {IN_RANGE} AND o.id > ?3 ORDER BY o.id LIMIT ?4"
        ),
        &[
            Val::Int(range.start),
            Val::Int(range.end),
            Val::Int(after),
            Val::Int(i64::from(limit)),
        ],
    )?
    .iter()
    .map(|r| {
        Ok(FunnelRecord {
            id: r.get(0)?,
            created_at: r.get(1)?,
            flow: r.get(2)?,
            outcome: r.get(3)?,
            event: r.get(4)?,
            current_step: r.get(5)?,
            error_id: r.get(6)?,
            error_message: r.get(7)?,
            granted: r
                .get::<String>(8)?
                .split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect(),
            ready_at: r.get(9)?,
            revoked_at: r.get(10)?,
            offboarded_at: r.get(11)?,
        })
    })
    .collect()
}

/// A day as `YYYY-MM-DD`.
pub fn format_day(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD` (a real date) as days since 1970-01-01.
pub fn parse_day(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse::<i64>().ok())
            .flatten()
    };
    let date = (
        digits(text.get(0..4)?)?,
        digits(text.get(5..7)?)?,
        digits(text.get(8..10)?)?,
    );
    let days = days_from_civil(date.0, date.1, date.2);
    // A date that does not exist (2026-02-30) does not read back the same.
    (civil_from_days(days) == date && (1..=12).contains(&date.1)).then_some(days)
}

/// A unix time at an offset, as ISO 8601 (`2026-12-04T09:30:00+01:00`).
pub fn format_time(secs: i64, offset_secs: i64) -> String {
    let sign = if offset_secs < 0 { '-' } else { '+' };
    let off = offset_secs.abs() / 60;
    format!(
        "{}{sign}{:02}:{:02}",
        crate::clock::date_time(secs + offset_secs),
        off / 60,
        off % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_read_and_print_back() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(parse_day("2000-03-01"), Some(11_017));
        assert_eq!(format_day(11_017), "2000-03-01");
        assert_eq!(
            parse_day("2024-02-29").map(format_day).as_deref(),
            Some("2024-02-29")
        );
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-1-01",
            "20260101",
            "2026-01-0x",
            "+026-01-01",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
        for d in [-1, 0, 59, 60, 20_000, 20_426] {
            assert_eq!(parse_day(&format_day(d)), Some(d));
        }
    }

    #[test]
    fn times_show_their_offset() {
        assert_eq!(format_time(0, 0), "1970-01-01T00:00:00+00:00");
        assert_eq!(format_time(86_399, 3_600), "1970-01-02T00:59:59+01:00");
        assert_eq!(format_time(3_600, -19_800), "1969-12-31T19:30:00-05:30");
    }
}
