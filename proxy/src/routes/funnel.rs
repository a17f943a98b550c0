//! `GET /admin/funnel` and `GET /admin/funnel.csv`: the onboarding funnel of a range of days
//! (aggregated by the store, [`crate::store::funnel`]) and the records behind it as CSV.
//! Neither ever holds a token, a session, a PIN or a secret: the store's funnel types have
//! no field for one.

use super::extract::{Admin, Params};
use super::openapi::AdminRefusals;
use crate::AppState;
use crate::error::AppError;
use crate::store::funnel::{READY_BOUNDS, format_day, format_time, parse_day};
use crate::store::{Funnel, FunnelRange, FunnelRecord, Store};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// Most days in one range.
pub const MAX_DAYS: i64 = 366;
/// Days in the default range (ending today).
pub const DEFAULT_DAYS: i64 = 30;
/// Largest offset from UTC, in minutes (UTC+14:00 and UTC-12:00 are the extremes in use).
pub const MAX_OFFSET_MINUTES: i32 = 14 * 60;
/// Records read from the database per page of the CSV export (the answer streams page by
/// page, so memory stays bounded whatever the range holds).
pub const CSV_PAGE: u32 = 500;

/// Query of the funnel routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FunnelParams {
    /// First day counted, `YYYY-MM-DD` on the partner's calendar (default: 29 days before
    /// `to`).
    #[param(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub from: Option<String>,
    /// Last day counted, included (default: today at `utc_offset`). At most 366 days from
    /// `from`.
    #[param(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub to: Option<String>,
    /// The partner's offset from UTC in minutes east (`60` for UTC+01:00, `-300` for
    /// UTC-05:00), which decides where days begin (default 0).
    #[param(minimum = -840, maximum = 840)]
    pub utc_offset: Option<i32>,
}

/// A checked range: the days (since 1970-01-01) and the store's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days {
    /// First day.
    pub from: i64,
    /// Last day, included.
    pub to: i64,
    /// Minutes east of UTC.
    pub utc_offset: i32,
}

impl Days {
    /// The range of `q` at `now` (unix seconds), or 400 saying what is wrong.
    pub fn of(q: &FunnelParams, now: i64) -> Result<Self, AppError> {
        let utc_offset = q.utc_offset.unwrap_or(0);
        if !(-MAX_OFFSET_MINUTES..=MAX_OFFSET_MINUTES).contains(&utc_offset) {
            return Err(AppError::BadRequest(
                "utc_offset is minutes east of UTC, between -840 and 840",
            ));
        }
        let day = |text: &Option<String>, what| match text {
            None => Ok(None),
            Some(t) => parse_day(t).map(Some).ok_or(AppError::BadRequest(what)),
        };
        let to = day(&q.to, "to must be a date written YYYY-MM-DD")?
            .unwrap_or_else(|| (now + i64::from(utc_offset) * 60).div_euclid(86_400));
        let from = day(&q.from, "from must be a date written YYYY-MM-DD")?
            .unwrap_or(to - (DEFAULT_DAYS - 1));
        if from > to {
            return Err(AppError::BadRequest("from must not be after to"));
        }
        if to - from + 1 > MAX_DAYS {
            return Err(AppError::BadRequest("a range holds at most 366 days"));
        }
        Ok(Self {
            from,
            to,
            utc_offset,
        })
    }

    /// The store's range: from the first second of `from` to the end of `to`, local time.
    pub fn range(&self) -> FunnelRange {
        let offset_secs = i64::from(self.utc_offset) * 60;
        FunnelRange {
            start: self.from * 86_400 - offset_secs,
            end: (self.to + 1) * 86_400 - offset_secs,
            offset_secs,
        }
    }
}

/// How many records (or WABAs) share a value.
#[derive(Debug, Serialize, ToSchema)]
pub struct TallyView {
    /// The value; null when none was reported.
    pub key: Option<String>,
    /// How many.
    pub count: i64,
}

/// One day of the range.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayView {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Records created that day.
    pub attempts: i64,
    /// Of which finished.
    pub finished: i64,
}

/// A bucket of waits.
#[derive(Debug, Serialize, ToSchema)]
pub struct BucketView {
    /// Shortest wait it holds (seconds).
    pub min_secs: i64,
    /// First wait it no longer holds (seconds); null for the last bucket.
    pub max_secs: Option<i64>,
    /// Records in it.
    pub count: i64,
}

/// From finish to ready to message: the first `register` step of a finished record done.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyView {
    /// Finished records.
    pub finished: i64,
    /// Of which ready to message.
    pub ready: i64,
    /// Finished and not (yet) ready: waiting, or nothing for the pipeline to register.
    pub not_ready: i64,
    /// Shortest wait (seconds).
    pub min_secs: Option<i64>,
    /// Longest wait (seconds).
    pub max_secs: Option<i64>,
    /// Mean wait (seconds, rounded down).
    pub mean_secs: Option<i64>,
    /// The waits by bucket (under 1 min, 5 min, 15 min, 1 h, 6 h, 1 day, 3 days, more).
    pub buckets: Vec<BucketView>,
}

/// Answer of `GET /admin/funnel`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FunnelView {
    /// First day counted.
    pub from: String,
    /// Last day counted.
    pub to: String,
    /// Minutes east of UTC the days are counted at.
    pub utc_offset: i32,
    /// Records created in the range.
    pub attempts: i64,
    /// Of which finished.
    pub finished: i64,
    /// Every day of the range, oldest first (days without a record count zero).
    pub days: Vec<DayView>,
    /// Records by outcome: `finished`, `cancelled`, `error`, `code_rejected`, `unknown`.
    pub outcomes: Vec<TallyView>,
    /// Records by flow: `token`, `code`, `discovered`.
    pub flows: Vec<TallyView>,
    /// Records that did not finish, by the step Meta named (`current_step`; null: none).
    pub stopped_at: Vec<TallyView>,
    /// Records that ended in an error, by Meta's error code (null: none given).
    pub errors: Vec<TallyView>,
    /// From finish to ready to message.
    pub time_to_ready: ReadyView,
    /// WABAs granted in the range, by Meta's latest review decision (`APPROVED`,
    /// `REJECTED`, ...); WABAs without a decision are not counted.
    pub reviews: Vec<TallyView>,
}

fn tallies(list: Vec<crate::store::funnel::Tally>) -> Vec<TallyView> {
    list.into_iter()
        .map(|t| TallyView {
            key: t.key,
            count: t.count,
        })
        .collect()
}

impl FunnelView {
    /// The view of `funnel` over `days`.
    pub fn new(days: Days, funnel: Funnel) -> Self {
        let count_of = |day| funnel.days.iter().find(|d| d.day == day);
        let ready = &funnel.ready;
        let buckets = ready
            .buckets
            .iter()
            .enumerate()
            .map(|(i, &count)| BucketView {
                min_secs: i.checked_sub(1).map_or(0, |p| READY_BOUNDS[p]),
                max_secs: READY_BOUNDS.get(i).copied(),
                count,
            })
            .collect();
        Self {
            from: format_day(days.from),
            to: format_day(days.to),
            utc_offset: days.utc_offset,
            attempts: funnel.attempts,
            finished: ready.finished,
            days: (days.from..=days.to)
                .map(|day| DayView {
                    date: format_day(day),
                    attempts: count_of(day).map_or(0, |d| d.attempts),
                    finished: count_of(day).map_or(0, |d| d.finished),
                })
                .collect(),
            time_to_ready: ReadyView {
                finished: ready.finished,
                ready: ready.ready,
                not_ready: ready.finished - ready.ready,
                min_secs: ready.min_secs,
                max_secs: ready.max_secs,
                mean_secs: (ready.ready > 0).then(|| ready.total_secs / ready.ready),
                buckets,
            },
            outcomes: tallies(funnel.outcomes),
            flows: tallies(funnel.flows),
            stopped_at: tallies(funnel.stopped_at),
            errors: tallies(funnel.errors),
            reviews: tallies(funnel.reviews),
        }
    }
}

/// `GET /admin/funnel?from=&to=&utc_offset=`: the onboarding funnel of a range of days.
#[utoipa::path(
    get, path = "/admin/funnel", tag = "admin",
    params(FunnelParams),
    responses(
        (status = 200, description = "Attempts per day, outcomes, where businesses stopped, errors by code, time to ready to message and review decisions", body = FunnelView),
        AdminRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn funnel(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<FunnelParams>,
) -> Result<Json<FunnelView>, AppError> {
    let days = Days::of(&q, crate::clock::now())?;
    let funnel = state.store.funnel(days.range()).await?;
    Ok(Json(FunnelView::new(days, funnel)))
}

/// The CSV export's columns.
pub const CSV_COLUMNS: [&str; 13] = [
    "id",
    "created_at",
    "flow",
    "outcome",
    "event",
    "current_step",
    "error_id",
    "error_message",
    "granted",
    "ready_at",
    "seconds_to_ready",
    "revoked_at",
    "offboarded_at",
];

/// Appends `value` as a CSV cell (RFC 4180 quoting). Text a spreadsheet would read as a
/// formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`.
pub fn push_cell(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = formula || value.contains([',', '"', '\n', '\r']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    out.push_str(&value.replace('"', "\"\""));
    if quoted {
        out.push('"');
    }
}

/// One record as a CSV line (with its `\r\n`), times at `offset_secs`.
pub fn csv_line(r: &FunnelRecord, offset_secs: i64) -> String {
    let time = |t: Option<i64>| t.map(|t| format_time(t, offset_secs)).unwrap_or_default();
    let cells = [
        r.id.to_string(),
        format_time(r.created_at, offset_secs),
        r.flow.clone(),
        r.outcome.clone(),
        r.event.clone().unwrap_or_default(),
        r.current_step.clone().unwrap_or_default(),
        r.error_id.clone().unwrap_or_default(),
        r.error_message.clone().unwrap_or_default(),
        r.granted.join(" "),
        time(r.ready_at),
        r.ready_at
            .map(|t| (t - r.created_at).max(0).to_string())
            .unwrap_or_default(),
        time(r.revoked_at),
        time(r.offboarded_at),
    ];
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        push_cell(&mut line, cell);
    }
    line.push_str("\r\n");
    line
}

/// Where the export's stream is.
struct Export {
    store: Arc<dyn Store>,
    range: FunnelRange,
    after: i64,
    done: bool,
}

impl Export {
    /// The next page of lines; `None` at the end.
    async fn next(mut self) -> Option<(Result<Bytes, crate::store::StoreError>, Self)> {
        if self.done {
            return None;
        }
        let page = match self
            .store
            .funnel_records(self.range, self.after, CSV_PAGE)
            .await
        {
            Ok(page) => page,
            Err(e) => {
                // The body is cut short (no final chunk): the download fails visibly rather
                // than ending as a file that looks complete.
                tracing::error!(error = %e, "the funnel export could not read the records");
                self.done = true;
                return Some((Err(e), self));
            }
        };
        self.done = page.len() < CSV_PAGE as usize;
        self.after = page.last().map_or(self.after, |r| r.id);
        let text: String = page
            .iter()
            .map(|r| csv_line(r, self.range.offset_secs))
            .collect();
        Some((Ok(Bytes::from(text)), self))
    }
}

/// `GET /admin/funnel.csv?from=&to=&utc_offset=`: the records behind the funnel, one line
/// each, oldest first, streamed page by page.
#[utoipa::path(
    get, path = "/admin/funnel.csv", tag = "admin",
    params(FunnelParams),
    responses(
        (status = 200, description = "The records of the range as CSV (RFC 4180, a header line, times in ISO 8601 at utc_offset; cells a spreadsheet would read as a formula start with ')", content_type = "text/csv", body = String),
        AdminRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn funnel_csv(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<FunnelParams>,
) -> Result<Response, AppError> {
    let days = Days::of(&q, crate::clock::now())?;
    let header_line = format!("{}\r\n", CSV_COLUMNS.join(","));
    let pages = futures_util::stream::unfold(
        Export {
            store: state.store.clone(),
            range: days.range(),
            after: 0,
            done: false,
        },
        Export::next,
    );
    let body = futures_util::StreamExt::chain(
        futures_util::stream::iter([Ok(Bytes::from(header_line))]),
        pages,
    );
    let name = format!(
        "attachment; filename=\"waba-funnel-{}-{}.csv\"",
        format_day(days.from),
        format_day(days.to)
    );
    let mut res = Body::from_stream(body).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(from: Option<&str>, to: Option<&str>, utc_offset: Option<i32>) -> FunnelParams {
        FunnelParams {
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
            utc_offset,
        }
    }

    #[test]
    fn cells_are_quoted_and_formulas_neutralised() {
        let mut out = String::new();
        for v in [
            "plain",
            "a,b",
            "say \"hi\"",
            "=1+1",
            "-2",
            "@x",
            "\tx",
            "line\nbreak",
        ] {
            push_cell(&mut out, v);
            out.push('|');
        }
        assert_eq!(
            out,
            "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"'=1+1\"|\"'-2\"|\"'@x\"|\"'\tx\"|\"line\nbreak\"|"
        );
    }

    #[test]
    fn ranges_default_to_thirty_days_and_refuse_bad_input() {
        // 2026-12-04T23:30:00Z: already the 5th at UTC+01:00.
        let now = crate::store::funnel::days_from_civil(2026, 12, 4) * 86_400 + 23 * 3600 + 1800;
        let d = Days::of(&params(None, None, None), now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (format_day(d.from), format_day(d.to)),
            ("2026-11-05".into(), "2026-12-04".into())
        );
        let d = Days::of(&params(None, None, Some(60)), now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(format_day(d.to), "2026-12-05");
        let r = Days::of(
            &params(Some("2026-12-01"), Some("2026-12-01"), Some(-60)),
            now,
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .range();
        assert_eq!(r.end - r.start, 86_400);
        assert_eq!(
            r.start,
            crate::store::funnel::days_from_civil(2026, 12, 1) * 86_400 + 3600
        );
        for bad in [
            params(Some("2026-12-05"), Some("2026-12-04"), None),
            params(Some("2025-01-01"), Some("2026-12-04"), None),
            params(Some("2026-02-30"), None, None),
            params(None, Some("yesterday"), None),
            params(None, None, Some(841)),
            params(None, None, Some(-841)),
        ] {
            assert!(Days::of(&bad, now).is_err(), "{bad:?}");
        }
        assert!(Days::of(&params(Some("2025-12-04"), Some("2026-12-04"), None), now).is_ok());
    }
}
