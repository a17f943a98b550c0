//! `/admin/...`: onboarding records, follow-ups and the tracker, for the partner's staff only.
//!
//! Every route asks for the admin token first (401 without a credential, 403 for any other
//! credential), decided without a Graph call.

use crate::AppState;
use crate::auth::{Principal, bearer};
use crate::error::AppError;
use crate::signup_routes::{FollowUpView, blocking};
use crate::store::{Onboarding, ShareEvent};
use crate::tracker::TrackerError;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Most records or events in one answer.
pub const MAX_LIMIT: u32 = 500;

async fn require_admin(st: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    let token = bearer(headers)?.ok_or(AppError::MissingCredential)?;
    match st.auth.resolve_local(token).await? {
        Some(Principal::Admin) => Ok(()),
        Some(_) => Err(AppError::Forbidden(
            "only the partner's admin may read this",
        )),
        None => Err(AppError::Forbidden(
            "only the partner's admin may read this",
        )),
    }
}

/// A JSON answer (or the error) that no cache keeps.
pub(crate) fn json_no_store<T: Serialize>(result: Result<T, AppError>) -> Response {
    let mut res = match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    };
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// An onboarding record as the admin sees it.
#[derive(Debug, Serialize)]
pub struct OnboardingView {
    /// The record's id.
    pub id: i64,
    /// When it was recorded (unix seconds).
    pub created_at: i64,
    /// `code` or `token`.
    pub flow: String,
    /// `finished`, `cancelled`, `error`, `code_rejected`, `unknown`.
    pub outcome: String,
    /// The session event's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// WABAs granted, newest first.
    pub wabas: Vec<String>,
    /// The WABA the event named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_waba_id: Option<String>,
    /// The phone number the event named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
    /// The business that shared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_id: Option<String>,
    /// The step the business left at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_step: Option<String>,
    /// The error it reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Meta's error id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
    /// Meta's session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Whether the proxy holds the business token (code flow).
    pub has_business_token: bool,
    /// What is left to do.
    pub follow_ups: Vec<FollowUpView>,
}

impl From<&Onboarding> for OnboardingView {
    fn from(o: &Onboarding) -> Self {
        let r = &o.record;
        Self {
            id: o.id,
            created_at: r.created_at,
            flow: r.flow.clone(),
            outcome: r.outcome.map(|x| x.as_str()).unwrap_or("unknown").into(),
            event: r.event.clone(),
            wabas: r.granted.clone(),
            reported_waba_id: r.reported_waba_id.clone(),
            phone_number_id: r.phone_number_id.clone(),
            business_id: r.business_id.clone(),
            current_step: r.current_step.clone(),
            error_message: r.error_message.clone(),
            error_id: r.error_id.clone(),
            session_id: r.session_id.clone(),
            has_business_token: r.token.is_some(),
            follow_ups: r.follow_ups.iter().map(Into::into).collect(),
        }
    }
}

/// Query of the list routes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Records with a smaller id (the next page of a newest-first list).
    pub before: Option<i64>,
    /// Events with a larger sequence number.
    pub after: Option<i64>,
    /// How many (default 50, at most [`MAX_LIMIT`]).
    pub limit: Option<u32>,
}

impl ListQuery {
    fn limit(&self) -> Result<u32, AppError> {
        match self.limit {
            None => Ok(50),
            Some(n @ 1..=MAX_LIMIT) => Ok(n),
            Some(_) => Err(AppError::BadRequest("limit must be between 1 and 500")),
        }
    }
}

/// A page of records.
#[derive(Debug, Serialize)]
pub struct Records {
    /// Newest first.
    pub data: Vec<OnboardingView>,
    /// The `before` of the next page, when there may be one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, AppError> {
    q.map(|Query(q)| q).map_err(|_| {
        AppError::BadRequest("unknown or malformed parameter: use before, after and limit")
    })
}

/// `GET /admin/onboardings?before=&limit=`.
pub async fn onboardings(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    json_no_store(
        async {
            require_admin(&st, &headers).await?;
            let q = query(q)?;
            let limit = q.limit()?;
            let store = st.store.clone();
            let before = q.before;
            let list = blocking(move || store.onboardings(before, limit)).await?;
            Ok(Records {
                next_before: (list.len() == limit as usize)
                    .then(|| list.last().map(|o| o.id))
                    .flatten(),
                data: list.iter().map(Into::into).collect(),
            })
        }
        .await,
    )
}

/// One record with the business token, decrypted.
#[derive(Debug, Serialize)]
pub struct RecordWithToken {
    /// The record.
    #[serde(flatten)]
    pub record: OnboardingView,
    /// The business token, for the partner's backend to act for the business.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_token: Option<String>,
    /// When the token expires (unix seconds; absent when it does not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_token_expires_at: Option<i64>,
    /// What Meta announced since about the record's WABAs (webhooks), oldest first.
    pub changes: Vec<ChangeSummary>,
}

/// A status change of one of a record's WABAs.
#[derive(Debug, Serialize)]
pub struct ChangeSummary {
    /// The stream's id of the change.
    pub seq: i64,
    /// The WABA.
    pub waba_id: String,
    /// `review`, `partner_removed`, ...
    pub kind: String,
    /// The decision or event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// When it arrived (unix seconds).
    pub received_at: i64,
}

/// `GET /admin/onboardings/{id}`: one record, with its business token decrypted.
pub async fn onboarding(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    json_no_store(
        async {
            require_admin(&st, &headers).await?;
            let id: i64 = id
                .parse()
                .map_err(|_| AppError::BadRequest("the record id is a number"))?;
            let store = st.store.clone();
            let found = blocking(move || store.onboarding(id))
                .await?
                .ok_or(AppError::NoSuchRecord("onboarding record"))?;
            let (business_token, expires) = match (&found.record.token, &st.code_flow) {
                (Some(sealed), Some(flow)) => {
                    let token = flow.key.open(sealed).map_err(|e| {
                        tracing::error!(error = %e, record = id, "a stored business token does not open");
                        AppError::Internal
                    })?;
                    (
                        Some(token.expose().to_owned()),
                        (sealed.expires_at > 0).then_some(sealed.expires_at),
                    )
                }
                _ => (None, None),
            };
            let store = st.store.clone();
            let wabas = found.record.granted.clone();
            let changes = blocking(move || store.status_events_of(&wabas, 100))
                .await?
                .into_iter()
                .map(|e| ChangeSummary {
                    seq: e.seq,
                    waba_id: e.event.waba_id.unwrap_or_default(),
                    kind: e.event.kind,
                    value: e.event.value,
                    received_at: e.received_at,
                })
                .collect();
            Ok(RecordWithToken {
                record: (&found).into(),
                business_token,
                business_token_expires_at: expires,
                changes,
            })
        }
        .await,
    )
}

/// `GET /admin/follow-ups?limit=`: the records that leave something to do.
pub async fn follow_ups(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    json_no_store(
        async {
            require_admin(&st, &headers).await?;
            let limit = query(q)?.limit()?;
            let store = st.store.clone();
            let list = blocking(move || store.follow_ups(limit)).await?;
            Ok(Records {
                next_before: None,
                data: list.iter().map(Into::into).collect(),
            })
        }
        .await,
    )
}

/// A tracker event as clients see it.
#[derive(Debug, Serialize)]
pub struct ShareEventView {
    /// The cursor.
    pub seq: i64,
    /// The WABA.
    pub waba_id: String,
    /// `shared` or `unshared`.
    pub kind: &'static str,
    /// When the tracker noticed (unix seconds).
    pub detected_at: i64,
}

impl From<&ShareEvent> for ShareEventView {
    fn from(e: &ShareEvent) -> Self {
        Self {
            seq: e.seq,
            waba_id: e.waba_id.clone(),
            kind: e.kind.as_str(),
            detected_at: e.detected_at,
        }
    }
}

/// A page of tracker events.
#[derive(Debug, Serialize)]
pub struct Events {
    /// Oldest first.
    pub data: Vec<ShareEventView>,
    /// The `after` to ask next.
    pub next_after: i64,
}

/// `GET /admin/tracker/events?after=&limit=`.
pub async fn share_events(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    json_no_store(
        async {
            require_admin(&st, &headers).await?;
            let q = query(q)?;
            let limit = q.limit()?;
            let after = q.after.unwrap_or(0);
            let store = st.store.clone();
            let list = blocking(move || store.share_events(after, limit)).await?;
            Ok(Events {
                next_after: list.last().map(|e| e.seq).unwrap_or(after),
                data: list.iter().map(Into::into).collect(),
            })
        }
        .await,
    )
}

/// What a tracker pass did.
#[derive(Debug, Serialize)]
pub struct PassView {
    /// Newly shared WABAs.
    pub shared: Vec<String>,
    /// WABAs no longer shared.
    pub unshared: Vec<String>,
    /// Whether this was the first pass (the set recorded, no events).
    pub baseline: bool,
}

/// `POST /admin/tracker/pass`: runs a tracker pass now (409 when one is running).
pub async fn tracker_pass(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    json_no_store(
        async {
            require_admin(&st, &headers).await?;
            let tracker = &st.tracker;
            let diff = tracker.pass().await.map_err(|e| match e {
                TrackerError::Busy => AppError::Conflict("a tracker pass is already running"),
                TrackerError::Graph(e) => e,
                TrackerError::Store(e) => {
                    tracing::error!(error = %e, "database failure in a tracker pass");
                    AppError::Internal
                }
            })?;
            Ok(PassView {
                shared: diff.shared,
                unshared: diff.unshared,
                baseline: diff.baseline,
            })
        }
        .await,
    )
}
