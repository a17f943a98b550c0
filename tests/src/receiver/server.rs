//! The HTTP side of `webhook-receiver`: a partner's endpoint for the proxy's outbound
//! Standard Webhooks, verified with the reference crate `standardwebhooks`.
//!
//! Routes: `POST /` (and `POST` on any other path) takes a delivery; `GET /` shows the events
//! received as a page that refreshes itself; `GET /_events` lists them as JSON;
//! `POST /_control/mode` sets how deliveries are answered (see [`Mode`]).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// The largest delivery body taken; a larger one is answered 413.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Standard Webhooks' headers, as the receiver reads them.
const HEADER_ID: &str = "webhook-id";
const HEADER_TIMESTAMP: &str = "webhook-timestamp";
const HEADER_SIGNATURE: &str = "webhook-signature";

/// How deliveries are answered, set by `POST /_control/mode` with this object as JSON. A field
/// left out takes its default, so `{"status": 204}` is back to normal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mode {
    /// A success status (200-299, default 204) is what a verified delivery gets, while one that
    /// fails verification gets 401. Any other status (400-599) answers every delivery.
    #[serde(default = "Mode::normal_status")]
    pub status: u16,
    /// Milliseconds to wait before answering (the delivery is recorded at once).
    #[serde(default)]
    pub delay_ms: u64,
}

impl Default for Mode {
    fn default() -> Self {
        Self {
            status: Self::normal_status(),
            delay_ms: 0,
        }
    }
}

impl Mode {
    fn normal_status() -> u16 {
        StatusCode::NO_CONTENT.as_u16()
    }

    /// The mode answering every delivery with `status`, at once.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }

    /// The normal mode, answering only after `delay`.
    pub fn delayed(delay: Duration) -> Self {
        Self {
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            ..Self::default()
        }
    }

    /// The status a delivery gets, given whether its signature verified.
    fn answer(&self, verified: bool) -> StatusCode {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::NO_CONTENT);
        match (status.is_success(), verified) {
            (false, _) | (true, true) => status,
            (true, false) => StatusCode::UNAUTHORIZED,
        }
    }
}

/// One event as `GET /_events` lists it: the first delivery of its `webhook-id` (or the first
/// one that verified), and how many deliveries of that id came after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its `webhook-id` header (`None` when the delivery had none; those are never merged).
    pub id: Option<String>,
    /// The body's `type`.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// The body's `timestamp` (when the event happened, RFC 3339).
    pub timestamp: Option<String>,
    /// The body's `data` (`null` when the body was not a JSON object with one).
    pub data: Value,
    /// Deliveries of the same id after the first.
    pub duplicates: u32,
    /// Whether a delivery of it verified (signature, and timestamp within 5 minutes).
    pub verified: bool,
    /// The status the latest delivery of it got.
    pub status: u16,
    /// Why its latest delivery did not verify, if it did not.
    pub error: Option<String>,
    /// When its first delivery arrived, in milliseconds since the Unix epoch.
    pub received_at: u64,
}

/// One line of the log file: a delivery as it came, raw enough for another implementation to
/// verify it again.
#[derive(Debug, Serialize)]
struct LogLine<'a> {
    received_at: u64,
    id: Option<&'a str>,
    timestamp: Option<&'a str>,
    signature: Option<&'a str>,
    body: &'a str,
    verified: bool,
    status: u16,
    error: Option<&'a str>,
}

#[derive(Debug, Default)]
struct Events {
    list: Vec<Event>,
    by_id: HashMap<String, usize>,
}

/// What the receiver holds: the key, the log file, the mode and the events.
pub struct ReceiverState {
    webhook: standardwebhooks::Webhook,
    log: Option<Mutex<std::fs::File>>,
    mode: Mutex<Mode>,
    events: Mutex<Events>,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for ReceiverState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `standardwebhooks::Webhook` redacts its key too.
        f.debug_struct("ReceiverState")
            .field("log", &self.log.is_some())
            .finish_non_exhaustive()
    }
}

/// Why the receiver cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The secret is not `whsec_` (optional) followed by non-empty standard base64. The
    /// message never holds any part of the secret.
    #[error("the secret must be `whsec_` followed by the key in standard base64")]
    Secret,
    /// The log file cannot be opened for appending.
    #[error("cannot open the log file {path}")]
    Log {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl ReceiverState {
    /// A receiver verifying with `secret` (`whsec_<base64>`), appending to `log` if given.
    pub fn new(secret: &str, log: Option<&Path>) -> Result<Self, SetupError> {
        let webhook = standardwebhooks::Webhook::new(secret).map_err(|_| SetupError::Secret)?;
        let log = match log {
            None => None,
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| SetupError::Log {
                        path: path.display().to_string(),
                        source,
                    })?,
            )),
        };
        Ok(Self {
            webhook,
            log,
            mode: Mutex::new(Mode::default()),
            events: Mutex::new(Events::default()),
            shutdown: watch::Sender::new(false),
        })
    }

    /// Ends every delivery waiting out a delay (call it when the server shuts down).
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// The events so far, in the order they first arrived.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.events).list.clone()
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        *lock(&self.mode)
    }

    fn record(&self, delivery: &Delivery<'_>, received_at: u64) {
        let body: Value = serde_json::from_str(delivery.body).unwrap_or(Value::Null);
        let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        let fresh = Event {
            id: delivery.id.map(str::to_owned),
            event_type: field("type"),
            timestamp: field("timestamp"),
            data: body.get("data").cloned().unwrap_or(Value::Null),
            duplicates: 0,
            verified: delivery.verified,
            status: delivery.status.as_u16(),
            error: delivery.error.clone(),
            received_at,
        };
        let mut events = lock(&self.events);
        let Events { list, by_id } = &mut *events;
        let known = delivery.id.and_then(|id| by_id.get(id).copied());
        match known.and_then(|i| list.get_mut(i)) {
            Some(event) => {
                event.duplicates = event.duplicates.saturating_add(1);
                event.status = fresh.status;
                event.error = fresh.error.clone();
                // The first delivery that verifies is the one shown.
                if fresh.verified && !event.verified {
                    event.event_type = fresh.event_type;
                    event.timestamp = fresh.timestamp;
                    event.data = fresh.data;
                    event.verified = true;
                }
            }
            None => {
                if let Some(id) = delivery.id {
                    by_id.insert(id.to_owned(), list.len());
                }
                list.push(fresh);
            }
        }
    }

    /// Appends `line` and a newline to the log and syncs it to disk.
    fn append(&self, line: &str) -> std::io::Result<()> {
        let Some(file) = &self.log else {
            return Ok(());
        };
        let mut file = lock(file);
        file.write_all(format!("{line}\n").as_bytes())?;
        file.sync_data()
    }
}

/// A delivery as received and judged.
struct Delivery<'a> {
    id: Option<&'a str>,
    timestamp: Option<&'a str>,
    signature: Option<&'a str>,
    body: &'a str,
    verified: bool,
    error: Option<String>,
    status: StatusCode,
}

/// The receiver's router.
pub fn app(state: Arc<ReceiverState>) -> Router {
    let deliver_route = post(deliver).layer(DefaultBodyLimit::max(BODY_LIMIT));
    Router::new()
        .route("/", get(page).merge(deliver_route.clone()))
        .route("/_events", get(events))
        .route("/_control/mode", get(current_mode).post(set_mode))
        .route("/{*path}", deliver_route)
        .with_state(state)
}

async fn deliver(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let received_at = now_ms();
    let error = state.webhook.verify(&body, &headers).err();
    let verified = error.is_none();
    let mode = state.mode();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let text = String::from_utf8_lossy(&body);
    let delivery = Delivery {
        id: header(HEADER_ID),
        timestamp: header(HEADER_TIMESTAMP),
        signature: header(HEADER_SIGNATURE),
        body: &text,
        verified,
        error: error.map(|e| e.to_string()),
        status: mode.answer(verified),
    };
    state.record(&delivery, received_at);
    let line = serde_json::to_string(&LogLine {
        received_at,
        id: delivery.id,
        timestamp: delivery.timestamp,
        signature: delivery.signature,
        body: delivery.body,
        verified: delivery.verified,
        status: delivery.status.as_u16(),
        error: delivery.error.as_deref(),
    });
    let status = delivery.status;
    let written = match line {
        Ok(line) => {
            let state = state.clone();
            tokio::task::spawn_blocking(move || state.append(&line))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)))
        }
        Err(e) => Err(std::io::Error::other(e)),
    };
    if let Err(e) = written {
        eprintln!("webhook-receiver: cannot write the log: {e}");
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if mode.delay_ms > 0 {
        let mut shutdown = state.shutdown.subscribe();
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(mode.delay_ms)) => {}
            _ = shutdown.wait_for(|stopping| *stopping) => return StatusCode::SERVICE_UNAVAILABLE,
        }
    }
    status
}

async fn events(State(state): State<Arc<ReceiverState>>) -> axum::Json<Vec<Event>> {
    axum::Json(state.events())
}

async fn current_mode(State(state): State<Arc<ReceiverState>>) -> axum::Json<Mode> {
    axum::Json(state.mode())
}

async fn set_mode(
    State(state): State<Arc<ReceiverState>>,
    axum::Json(mode): axum::Json<Mode>,
) -> Response {
    let usable = (200..300).contains(&mode.status) || (400..600).contains(&mode.status);
    if !usable {
        return (
            StatusCode::BAD_REQUEST,
            "`status` must be a success (200-299) or an error (400-599)\n",
        )
            .into_response();
    }
    *lock(&state.mode) = mode;
    axum::Json(mode).into_response()
}

/// `&`, `<`, `>`, `"` and `'` escaped for HTML text and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `key=value` for every field of `data` named `id` or `*_id` (and those of objects directly
/// inside it), ids being what a partner looks for first.
fn ids(data: &Value) -> Vec<String> {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    let is_id = |k: &str| k == "id" || k.ends_with("_id");
    let mut found = Vec::new();
    let Some(fields) = data.as_object() else {
        return found;
    };
    for (key, value) in fields {
        match value {
            Value::Object(inner) => found.extend(
                inner
                    .iter()
                    .filter(|(k, _)| is_id(k))
                    .filter_map(|(k, v)| Some(format!("{key}.{k}={}", scalar(v)?))),
            ),
            v if is_id(key) => found.extend(scalar(v).map(|s| format!("{key}={s}"))),
            _ => {}
        }
    }
    found
}

/// `HH:MM:SS` (UTC) of a time in milliseconds since the Unix epoch.
fn clock(ms: u64) -> String {
    let secs = (ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

async fn page(State(state): State<Arc<ReceiverState>>) -> impl IntoResponse {
    let events = state.events();
    let mode = state.mode();
    let mut rows = String::new();
    for e in events.iter().rev() {
        let mark = if e.verified {
            "<td class=\"ok\" title=\"verified\">✓</td>"
        } else {
            "<td class=\"bad\" title=\"not verified\">✗</td>"
        };
        let again = if e.duplicates > 0 {
            format!(" <small>(+{} again)</small>", e.duplicates)
        } else {
            String::new()
        };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td><code>{}</code>{again}</td><td>{}</td>{mark}<td>{}</td></tr>",
            clock(e.received_at),
            escape(e.event_type.as_deref().unwrap_or("?")),
            escape(&ids(&e.data).join(" ")),
            e.status,
        );
    }
    let mode_text = match (mode.answer(true).is_success(), mode.delay_ms) {
        (true, 0) => "normal".to_owned(),
        (true, ms) => format!("normal, answering after {ms} ms"),
        (false, ms) => format!("answering {} after {ms} ms", mode.status),
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"2\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>webhook-receiver</title><style>\
         body{{font:15px system-ui,sans-serif;margin:1.5rem;color:#1c1e21}}\
         table{{border-collapse:collapse;width:100%}}\
         th,td{{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #ddd}}\
         .ok{{color:#137333;font-weight:bold}}.bad{{color:#b3261e;font-weight:bold}}\
         </style></head><body><h1>Webhooks received</h1>\
         <p>{count} event(s), newest first. Mode: {mode_text}.</p>\
         <table><thead><tr><th>Time (UTC)</th><th>Type</th><th>Ids</th><th>Verified</th>\
         <th>Answer</th></tr></thead><tbody>{rows}</tbody></table></body></html>\n",
        count = events.len(),
        mode_text = escape(&mode_text),
    );
    ([(header::CACHE_CONTROL, "no-store")], Html(html))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn modes_answer_as_documented() {
        assert_eq!(Mode::default().answer(true), StatusCode::NO_CONTENT);
        assert_eq!(Mode::default().answer(false), StatusCode::UNAUTHORIZED);
        assert_eq!(Mode::status(200).answer(true), StatusCode::OK);
        assert_eq!(Mode::status(200).answer(false), StatusCode::UNAUTHORIZED);
        assert_eq!(
            Mode::status(503).answer(true),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            Mode::status(503).answer(false),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let parsed: Mode = serde_json::from_value(json!({"delay_ms": 20000})).unwrap();
        assert_eq!(parsed, Mode::delayed(Duration::from_secs(20)));
    }

    #[test]
    fn ids_are_picked_from_data() {
        let data = json!({"waba_id": "1", "phone": {"phone_number_id": 2, "name": "x"}, "id": "e", "note": "n"});
        let mut found = ids(&data);
        found.sort();
        assert_eq!(found, ["id=e", "phone.phone_number_id=2", "waba_id=1"]);
        assert!(ids(&Value::Null).is_empty());
    }

    #[test]
    fn clock_and_escape() {
        assert_eq!(clock(86_400_000 + 3_723_000), "01:02:03");
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
