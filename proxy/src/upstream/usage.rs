//! Meta's Business Use Case usage, as Graph reports it in `X-Business-Use-Case-Usage` on the
//! answers of rate-limited endpoints (for WhatsApp: `GET /{waba}`, its `phone_numbers`,
//! `subscribed_apps`, `assigned_users`, ...): per object, the share of its hourly budget
//! used, in percent (`call_count`, `total_cputime`, `total_time`; 100 means throttled), and
//! `estimated_time_to_regain_access` in minutes. Meta's limit for the WhatsApp Business
//! Management API is 200 calls per hour per app per WABA, 5000 for a WABA with a registered
//! number (<https://developers.facebook.com/docs/graph-api/overview/rate-limiting>, "Business
//! Use Case Rate Limits", "WhatsApp Business Management API"). Meta gives no threshold to act
//! on before 100; the proxy's own: background work (the tracker's passes, the pipeline's
//! steps) about an object whose last reading is at or above [`HOLD_AT`] percent waits
//! [`HOLD`] from that reading, so a signup page's reads keep the budget that is left. One
//! call per [`HOLD`] then refreshes the reading.
//!
//! Readings are shown in `/metrics` (made from the board when it is read, so a reading past
//! Meta's hour disappears) and at `GET /admin/graph-usage`.

use axum::http::HeaderMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use waba_graph::error::{BusinessUseCaseUsage, UsageEntry};

/// Usage at which background calls about an object wait.
pub const HOLD_AT: u32 = 90;
/// How long after a reading at or above [`HOLD_AT`] background calls wait.
pub const HOLD: Duration = Duration::from_secs(60);
/// Objects whose last reading is kept; a new object beyond it is not, until old readings
/// (older than Meta's hour) leave.
const MAX_OBJECTS: usize = 100_000;
/// A reading older than Meta's one-hour window says nothing.
const KEPT: Duration = Duration::from_secs(3600);

tokio::task_local! {
    /// Set around work no person waits for (the tracker's timed passes, the pipeline's
    /// runner): its Graph calls give way to people's when an object's budget runs low.
    pub static BACKGROUND: ();
}

/// Whether the current task is background work.
pub fn in_background() -> bool {
    BACKGROUND.try_with(|()| ()).is_ok()
}

/// One object's last reading.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The largest of its entries' three percentages.
    pub percent: u32,
    /// Its entries as Meta sent them (one per use case type).
    pub entries: Vec<UsageEntry>,
    /// When it was read.
    pub at: Instant,
}

/// Most objects `/metrics` and the admin's list show (the most used first).
pub const MAX_SHOWN: usize = 10_000;
/// How often a full board looks for readings past the hour.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The last usage reading of every object Meta reported on within the hour.
#[derive(Debug, Default)]
pub struct UsageBoard {
    readings: Mutex<Readings>,
}

#[derive(Debug, Default)]
struct Readings {
    by_object: HashMap<String, Arc<Reading>>,
    last_sweep: Option<Instant>,
}

impl UsageBoard {
    /// Keeps what `headers` (a Graph answer's) say, and shows it in `/metrics` as
    /// `waba_graph_usage_percent{object}`.
    pub fn record(&self, headers: &HeaderMap) {
        let Some(usage) = headers
            .get("x-business-use-case-usage")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| serde_json::from_str::<BusinessUseCaseUsage>(v).ok())
        else {
            return;
        };
        let at = Instant::now();
        for (object, entries) in usage {
            // Ids only: a header is Meta's text, and labels must stay few and plain.
            if object.is_empty() || object.len() > 32 || !object.bytes().all(|b| b.is_ascii_digit())
            {
                continue;
            }
            let percent = entries
                .iter()
                .map(|e| e.call_count.max(e.total_cputime).max(e.total_time))
                .max()
                .unwrap_or(0);
            let mut readings = self.lock();
            if readings.by_object.len() >= MAX_OBJECTS && !readings.by_object.contains_key(&object)
            {
                // At most one sweep a minute, not one per answer once the board is full.
                if readings
                    .last_sweep
                    .is_none_or(|t| t.elapsed() >= SWEEP_EVERY)
                {
                    readings.last_sweep = Some(at);
                    readings.by_object.retain(|_, r| r.at.elapsed() < KEPT);
                }
                if readings.by_object.len() >= MAX_OBJECTS {
                    continue;
                }
            }
            readings.by_object.insert(
                object,
                Arc::new(Reading {
                    percent,
                    entries,
                    at,
                }),
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Readings> {
        self.readings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `object`'s last reading, if Meta reported one within the hour.
    pub fn reading(&self, object: &str) -> Option<Arc<Reading>> {
        self.lock()
            .by_object
            .get(object)
            .filter(|r| r.at.elapsed() < KEPT)
            .cloned()
    }

    /// The readings of the hour, most used first, at most [`MAX_SHOWN`].
    pub fn all(&self) -> Vec<(String, Arc<Reading>)> {
        let mut all: Vec<(String, Arc<Reading>)> = self
            .lock()
            .by_object
            .iter()
            .filter(|(_, r)| r.at.elapsed() < KEPT)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| b.1.percent.cmp(&a.1.percent).then_with(|| a.0.cmp(&b.0)));
        all.truncate(MAX_SHOWN);
        all
    }

    /// The readings as Prometheus text, made when `/metrics` is read so that a reading past
    /// the hour is gone rather than stale: `waba_graph_usage_percent{object}` for the
    /// [`MAX_SHOWN`] most used objects.
    pub fn prometheus_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::from(
            "# HELP waba_graph_usage_percent The share of an object's hourly Graph budget used, as Meta last said within the hour (X-Business-Use-Case-Usage).\n# TYPE waba_graph_usage_percent gauge\n",
        );
        for (object, r) in self.all() {
            let _ = writeln!(
                out,
                "waba_graph_usage_percent{{object=\"{object}\"}} {}",
                r.percent
            );
        }
        out
    }

    /// Seconds background calls about `object` still wait, if they do.
    pub fn hold_for(&self, object: &str) -> Option<u64> {
        let reading = self.reading(object)?;
        if reading.percent < HOLD_AT {
            return None;
        }
        let left = HOLD.saturating_sub(reading.at.elapsed());
        (!left.is_zero()).then(|| left.as_secs().max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "x-business-use-case-usage",
            HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
        );
        h
    }

    #[test]
    fn readings_follow_the_header_and_hold_background_calls_near_the_limit() {
        let board = UsageBoard::default();
        // Meta's example shape for WhatsApp (two use case types on one WABA).
        board.record(&headers(
            r#"{"102290129340398":[{"type":"whatsapp_business_management","call_count":12,"total_cputime":3,"total_time":5,"estimated_time_to_regain_access":0},{"type":"whatsapp","call_count":40,"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":0}]}"#,
        ));
        let r = board.reading("102290129340398").expect("a reading");
        assert_eq!((r.percent, r.entries.len()), (40, 2));
        assert_eq!(board.hold_for("102290129340398"), None);
        board.record(&headers(
            r#"{"102290129340398":[{"type":"whatsapp_business_management","call_count":91,"total_cputime":3,"total_time":5,"estimated_time_to_regain_access":0}]}"#,
        ));
        let held = board.hold_for("102290129340398").expect("held");
        assert!((1..=60).contains(&held), "{held}");
        assert_eq!(board.hold_for("805021500648488"), None, "per object");
        // Garbage and odd keys change nothing.
        board.record(&headers("not json"));
        board.record(&headers(r#"{"a\"b":[{"call_count":100}]}"#));
        assert_eq!(board.all().len(), 1);
        let text = board.prometheus_text();
        assert!(
            text.contains("waba_graph_usage_percent{object=\"102290129340398\"} 91"),
            "{text}"
        );
    }
}
