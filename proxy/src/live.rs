//! Live status: Meta's webhooks in, Server-Sent Events out.
//!
//! `GET /webhooks/meta` answers the subscription handshake; `POST /webhooks/meta` checks the
//! signature on the raw body, stores every change durably and idempotently, applies it (the
//! tracker's set, the proxy's cached WABA answers) and only then answers 200.
//!
//! Browsers' `EventSource` cannot send headers, so a stream is opened with a ticket:
//! `POST /events/ticket` (with the admin token or a signup credential) answers a signed ticket
//! that lives [`TICKET_TTL`] and names what the holder may see (everything, or its granted
//! WABAs). `GET /events/stream?ticket=…` replays the changes after `Last-Event-ID` (or
//! `?after=`) and then streams new ones as they arrive, each with its sequence number as the
//! event id, so a client that reconnects neither loses nor repeats a change.

use crate::AppState;
use crate::auth::{Principal, bearer};
use crate::error::AppError;
use crate::signup_routes::blocking;
use crate::store::StatusEvent;
use crate::webhook::{self, WebhookError};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures_util::Stream;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// How long a stream ticket may be used to connect.
pub const TICKET_TTL: Duration = Duration::from_secs(60);
/// Largest webhook body accepted.
pub const MAX_WEBHOOK_BODY: usize = 1024 * 1024;
/// Changes replayed per database read when a stream resumes.
const REPLAY_BATCH: u32 = 500;

/// The live side of the proxy: new changes for open streams, the ticket key, shutdown.
pub struct Live {
    changes: tokio::sync::broadcast::Sender<Arc<StatusEvent>>,
    mac: Hmac<Sha256>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Live {
    /// A hub with a fresh ticket key (tickets do not outlive the process; clients ask again).
    pub fn new() -> Result<Self, AppError> {
        let key = crate::sealing::random::<32>().map_err(|_| AppError::Internal)?;
        Ok(Self {
            changes: tokio::sync::broadcast::channel(4096).0,
            mac: <Hmac<Sha256> as KeyInit>::new_from_slice(&key).map_err(|_| AppError::Internal)?,
            shutdown: tokio::sync::watch::channel(false).0,
        })
    }

    /// Ends every open stream (graceful shutdown).
    pub fn close(&self) {
        let _ = self.shutdown.send(true);
    }

    fn mac(&self) -> Hmac<Sha256> {
        self.mac.clone()
    }

    /// A ticket for `scope` (`None`: everything) expiring at `exp` (unix seconds).
    fn ticket(&self, scope: Option<&[String]>, exp: i64) -> String {
        let payload = match scope {
            None => format!("{exp}|*"),
            Some(ids) => format!("{exp}|{}", ids.join(",")),
        };
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}",
            b64.encode(payload.as_bytes()),
            b64.encode(mac.finalize().into_bytes())
        )
    }

    /// What a ticket allows: `Ok(None)` everything, `Ok(Some(ids))` those WABAs.
    fn check(&self, ticket: &str, now: i64) -> Result<Option<HashSet<String>>, AppError> {
        let refused = AppError::InvalidCredential(
            "the stream ticket is invalid or expired: ask for a new one",
        );
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (payload, sig) = ticket.split_once('.').ok_or(refused.clone())?;
        let payload = b64.decode(payload).map_err(|_| refused.clone())?;
        let sig = b64.decode(sig).map_err(|_| refused.clone())?;
        let mut mac = self.mac();
        mac.update(&payload);
        let expected = mac.finalize().into_bytes();
        if !bool::from(expected.as_slice().ct_eq(&sig)) {
            return Err(refused);
        }
        let payload = String::from_utf8(payload).map_err(|_| refused.clone())?;
        let (exp, scope) = payload.split_once('|').ok_or(refused.clone())?;
        if exp.parse::<i64>().map_err(|_| refused.clone())? < now {
            return Err(refused);
        }
        Ok(match scope {
            "*" => None,
            ids => Some(
                ids.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
        })
    }
}

/// Query of `GET /webhooks/meta`.
#[derive(Debug, Deserialize)]
pub struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// `GET /webhooks/meta`: echoes `hub.challenge` when the mode is `subscribe` and the verify
/// token matches; 403 otherwise.
pub async fn handshake(
    State(st): State<Arc<AppState>>,
    q: Result<Query<Handshake>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(expected) = &st.config.webhook_verify_token else {
        return AppError::Forbidden("webhooks are not configured: set --webhook-verify-token")
            .into_response();
    };
    let Ok(Query(q)) = q else {
        return AppError::Forbidden("not a subscription handshake").into_response();
    };
    let token_ok = q
        .verify_token
        .as_deref()
        .is_some_and(|t| bool::from(t.as_bytes().ct_eq(expected.expose().as_bytes())));
    let challenge = q.challenge.filter(|c| {
        !c.is_empty()
            && c.len() <= 256
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    match (q.mode.as_deref(), token_ok, challenge) {
        (Some("subscribe"), true, Some(challenge)) => {
            tracing::info!("webhook subscription verified");
            (StatusCode::OK, challenge).into_response()
        }
        _ => AppError::Forbidden("the webhook handshake does not match").into_response(),
    }
}

/// `POST /webhooks/meta`: verify, store, apply, answer.
pub async fn receive(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = async {
        let secret = st.config.app_secret.as_ref().ok_or(AppError::Forbidden(
            "webhooks are not configured: set --app-secret",
        ))?;
        if body.len() > MAX_WEBHOOK_BODY {
            return Err(AppError::PayloadTooLarge);
        }
        let signature = headers
            .get("x-hub-signature-256")
            .and_then(|v| v.to_str().ok());
        webhook::verify_signature(secret.expose(), &body, signature).map_err(|e| {
            metrics::counter!("waba_webhooks_refused_total").increment(1);
            tracing::warn!(error = %e, "webhook refused");
            match e {
                WebhookError::MissingSignature => {
                    AppError::Forbidden("missing X-Hub-Signature-256")
                }
                _ => AppError::Forbidden("the X-Hub-Signature-256 signature does not match"),
            }
        })?;
        let events = webhook::parse(&body).map_err(|_| {
            AppError::BadRequest("the body is not a webhook notification (entry[].changes[])")
        })?;
        let store = st.store.clone();
        let now = crate::clock::now();
        let stored = blocking(move || store.record_status_events(&events, now)).await?;
        for e in &stored {
            if let Some(waba) = &e.event.waba_id {
                st.upstream.forget(waba);
            }
            let _ = st.live.changes.send(Arc::new(e.clone()));
        }
        metrics::counter!("waba_webhook_changes_total").increment(stored.len() as u64);
        Ok(())
    }
    .await;
    match answer {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Answer of `POST /events/ticket`.
#[derive(Debug, Serialize)]
pub struct TicketAnswer {
    /// Put it in the stream URL: `/events/stream?ticket=…`.
    pub ticket: String,
    /// Until when it may be used to connect (unix seconds).
    pub expires_at: i64,
}

/// `POST /events/ticket`: a short-lived stream ticket for the caller's scope.
pub async fn ticket(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let answer: Result<TicketAnswer, AppError> = async {
        let token = bearer(&headers)?.ok_or(AppError::MissingCredential)?;
        let scope = match st.auth.resolve(token).await? {
            Principal::Admin => None,
            Principal::Signup(grant) => Some(
                grant
                    .wabas
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            ),
        };
        let exp = crate::clock::now() + TICKET_TTL.as_secs() as i64;
        Ok(TicketAnswer {
            ticket: st.live.ticket(scope.as_deref(), exp),
            expires_at: exp,
        })
    }
    .await;
    crate::admin_routes::json_no_store(answer)
}

/// Query of `GET /events/stream`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    ticket: String,
    after: Option<i64>,
}

/// A change as the stream sends it.
#[derive(Debug, Serialize)]
pub struct ChangeView<'a> {
    /// The event id.
    pub seq: i64,
    /// `partner_added`, `partner_removed`, `review`, `account_update`, `phone_quality`,
    /// `phone_name`, `unknown`.
    pub kind: &'a str,
    /// The webhook field.
    pub field: &'a str,
    /// The WABA concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waba_id: Option<&'a str>,
    /// The decision, event or rating.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<&'a str>,
    /// When the proxy received it.
    pub received_at: i64,
    /// The change as Meta sent it, for kinds this version does not interpret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<serde_json::Value>,
}

fn sse_event(e: &StatusEvent) -> Event {
    let view = ChangeView {
        seq: e.seq,
        kind: &e.event.kind,
        field: &e.event.field,
        waba_id: e.event.waba_id.as_deref(),
        value: e.event.value.as_deref(),
        received_at: e.received_at,
        raw: (e.event.kind == "unknown")
            .then(|| serde_json::from_str(&e.event.raw).ok())
            .flatten(),
    };
    Event::default()
        .id(e.seq.to_string())
        .event("status")
        .data(serde_json::to_string(&view).unwrap_or_default())
}

fn visible(scope: &Option<HashSet<String>>, e: &StatusEvent) -> bool {
    match scope {
        None => true,
        Some(ids) => e.event.waba_id.as_ref().is_some_and(|w| ids.contains(w)),
    }
}

/// `GET /events/stream?ticket=…[&after=N]`: Server-Sent Events of status changes.
pub async fn stream(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return AppError::BadRequest("open the stream with ?ticket=… from POST /events/ticket")
            .into_response();
    };
    let scope = match st.live.check(&q.ticket, crate::clock::now()) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or(q.after)
        .unwrap_or(0)
        .max(0);
    let mut res = Sse::new(changes(st, scope, resume))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Sends the stored changes after `last` that `scope` may see; the new `last`, or `None`
/// when the client went away or the database failed.
async fn replay(
    st: &AppState,
    scope: &Option<HashSet<String>>,
    mut last: i64,
    tx: &tokio::sync::mpsc::Sender<Event>,
) -> Option<i64> {
    loop {
        let store = st.store.clone();
        let from = last;
        let batch = blocking(move || store.status_events(from, REPLAY_BATCH))
            .await
            .ok()?;
        let full = batch.len() == REPLAY_BATCH as usize;
        for e in batch {
            last = e.seq;
            if visible(scope, &e) && tx.send(sse_event(&e)).await.is_err() {
                return None;
            }
        }
        if !full {
            return Some(last);
        }
    }
}

/// Replays stored changes after `after`, then follows new ones; ends on shutdown.
fn changes(
    st: Arc<AppState>,
    scope: Option<HashSet<String>>,
    after: i64,
) -> impl Stream<Item = Result<Event, std::convert::Infallible>> {
    async_stream(move |tx| async move {
        // Subscribe before replaying, so nothing stored meanwhile is missed.
        let mut live = st.live.changes.subscribe();
        let mut shutdown = st.live.shutdown.subscribe();
        let Some(mut last) = replay(&st, &scope, after, &tx).await else {
            return;
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                got = live.recv() => match got {
                    Ok(e) => {
                        if e.seq <= last {
                            continue;
                        }
                        last = e.seq;
                        if visible(&scope, &e) && tx.send(sse_event(&e)).await.is_err() {
                            return;
                        }
                    }
                    // Too slow for the live feed: catch up from the database.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        match replay(&st, &scope, last, &tx).await {
                            Some(l) => last = l,
                            None => return,
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    })
}

/// A stream fed by a task through a small channel (so the producer can await).
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, std::convert::Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}
