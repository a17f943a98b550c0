//! `/admin/...`: onboarding records, follow-ups and the tracker, for the partner's staff only.
//!
//! Every handler takes the [`Admin`] extractor first (401 without a credential, 403 for any
//! other credential), decided without a Graph call.

use super::extract::JsonBody;
use super::extract::{Admin, Params};
use super::openapi::{AdminRecordRefusals, AdminRefusals, TrackerRefusals};
use super::views::{
    ChangeSummary, Events, PassView, PinView, RecordWithToken, Records, StepsView, UsageView,
    Writes,
};
use crate::AppState;
use crate::error::AppError;
use crate::pipeline::{Pipeline, RetryError};
use crate::tracker::TrackerError;
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use std::sync::Arc;

/// Most records or events in one answer.
pub const MAX_LIMIT: u32 = 500;
/// Changes shown with one record.
const CHANGES_PER_RECORD: u32 = 100;

/// Query of the list routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Records with a smaller id (the next page of a newest-first list).
    pub before: Option<i64>,
    /// Events with a larger sequence number.
    pub after: Option<i64>,
    /// How many (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

impl ListParams {
    pub(super) fn limit(&self) -> Result<u32, AppError> {
        match self.limit {
            None => Ok(50),
            Some(n @ 1..=MAX_LIMIT) => Ok(n),
            Some(_) => Err(AppError::BadRequest("limit must be between 1 and 500")),
        }
    }
}

/// `GET /admin/onboardings?before=&limit=`.
#[utoipa::path(
    get, path = "/admin/onboardings", tag = "admin",
    params(ListParams),
    responses(
        (status = 200, description = "A page of onboarding records, newest first", body = Records),
        AdminRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn onboardings(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<ListParams>,
) -> Result<Json<Records>, AppError> {
    let limit = q.limit()?;
    let list = state.store.onboardings(q.before, limit).await?;
    Ok(Json(Records {
        next_before: (list.len() == limit as usize)
            .then(|| list.last().map(|o| o.id))
            .flatten(),
        data: list.iter().map(Into::into).collect(),
    }))
}

/// `GET /admin/onboardings/{id}`: one record, with its business token decrypted and what
/// Meta announced since about its WABAs.
#[utoipa::path(
    get, path = "/admin/onboardings/{id}", tag = "admin",
    params(RecordPath),
    responses(
        (status = 200, description = "The record, its business token, PINs and changes", body = RecordWithToken),
        AdminRecordRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn onboarding(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<RecordWithToken>, AppError> {
    let id = record_id(&id)?;
    let found = state
        .store
        .onboarding(id)
        .await?
        .ok_or(AppError::NoSuchRecord("onboarding record"))?;
    let token = state.signups.business_token(&found)?;
    let changes = state
        .store
        .changes_of(found.record.granted.clone(), CHANGES_PER_RECORD)
        .await?;
    let pins = match &state.pipeline {
        Some(p) => p.pins_of(id).await?,
        None => Vec::new(),
    };
    Ok(Json(RecordWithToken {
        pins: pins
            .into_iter()
            .map(|(phone_id, pin)| PinView {
                phone_id,
                pin: pin.expose().to_owned(),
            })
            .collect(),
        record: (&found).into(),
        business_token_expires_at: token.as_ref().and_then(|t| t.1),
        business_token: token.map(|t| t.0.expose().to_owned()),
        changes: changes.iter().map(ChangeSummary::from).collect(),
    }))
}

/// `GET /admin/follow-ups?limit=`: the records that leave something to do.
#[utoipa::path(
    get, path = "/admin/follow-ups", tag = "admin",
    params(ListParams),
    responses(
        (status = 200, description = "The records that leave something to do", body = Records),
        AdminRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn follow_ups(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<ListParams>,
) -> Result<Json<Records>, AppError> {
    let list = state.store.follow_ups(q.limit()?).await?;
    Ok(Json(Records {
        next_before: None,
        data: list.iter().map(Into::into).collect(),
    }))
}

/// `GET /admin/tracker/events?after=&limit=`.
#[utoipa::path(
    get, path = "/admin/tracker/events", tag = "admin",
    params(ListParams),
    responses(
        (status = 200, description = "WABAs the tracker saw shared or unshared, oldest first", body = Events),
        AdminRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn share_events(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<ListParams>,
) -> Result<Json<Events>, AppError> {
    let after = q.after.unwrap_or(0);
    let list = state.store.share_events(after, q.limit()?).await?;
    Ok(Json(Events {
        next_after: list.last().map(|e| e.seq).unwrap_or(after),
        data: list.iter().map(Into::into).collect(),
    }))
}

/// `POST /admin/tracker/pass`: runs a tracker pass now (409 when one is running).
#[utoipa::path(
    post, path = "/admin/tracker/pass", tag = "admin",
    responses(
        (status = 200, description = "What the pass found", body = PassView),
        TrackerRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn tracker_pass(
    State(state): State<Arc<AppState>>,
    _: Admin,
) -> Result<Json<PassView>, AppError> {
    let diff = state.tracker.pass().await.map_err(|e| match e {
        TrackerError::Busy => AppError::Conflict("a tracker pass is already running"),
        TrackerError::Graph(e) => e,
        TrackerError::Store(e) => e.into(),
    })?;
    Ok(Json(diff.into()))
}

fn record_id(id: &str) -> Result<i64, AppError> {
    id.parse()
        .map_err(|_| AppError::BadRequest("the record id is a number"))
}

fn pipeline(state: &AppState) -> Result<&Pipeline, AppError> {
    state.pipeline.as_deref().ok_or(AppError::Conflict(
        "the post-signup pipeline is off on this proxy (--pipeline false)",
    ))
}

/// `POST /admin/steps/{id}/retry`: a failed or stopped step runs again at once (409 when it
/// is pending, running or done, or its onboarding was revoked by Meta).
#[utoipa::path(
    post, path = "/admin/steps/{id}/retry", tag = "admin",
    params(
        ("id" = i64, Path, description = "The step's id."),
    ),
    responses(
        (status = 200, description = "The step, pending again", body = crate::store::StepView),
        AdminRecordRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn retry_step(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<crate::store::StepView>, AppError> {
    let step = pipeline(&state)?
        .retry(record_id(&id)?)
        .await
        .map_err(|e| match e {
            RetryError::NotFound => AppError::NoSuchRecord("pipeline step"),
            RetryError::NotRetryable(_) => {
                AppError::Conflict("only a failed or stopped step can be retried")
            }
            RetryError::Revoked => AppError::Conflict(
                "the business ended the partnership or was offboarded: nothing runs for this onboarding",
            ),
            RetryError::Store(e) => e,
        })?;
    Ok(Json(step.view()))
}

/// `POST /admin/onboardings/{id}/offboard`: stops the onboarding's steps, then unsubscribes
/// the app from its WABAs and deregisters its registered numbers, as durable steps.
#[utoipa::path(
    post, path = "/admin/onboardings/{id}/offboard", tag = "admin",
    params(RecordPath),
    responses(
        (status = 202, description = "The onboarding's steps, the offboarding ones last", body = StepsView),
        AdminRecordRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn offboard(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<(axum::http::StatusCode, Json<StepsView>), AppError> {
    let steps = pipeline(&state)?
        .offboard(record_id(&id)?)
        .await?
        .ok_or(AppError::NoSuchRecord("onboarding record"))?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(StepsView {
            steps: steps.iter().map(crate::store::Step::view).collect(),
        }),
    ))
}

/// Body of `PUT /admin/phones/{id}/pin`. `Debug` never shows the PIN.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    /// Six digits: the number's existing two-step verification PIN.
    #[schema(pattern = "^[0-9]{6}$")]
    pub pin: String,
}

impl std::fmt::Debug for PinRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinRequest")
            .field("pin", &"[redacted]")
            .finish()
    }
}

/// `PUT /admin/phones/{id}/pin` `{"pin"}`: the PIN the pipeline registers the number with
/// (a number with two-step verification needs its existing PIN). 204.
#[utoipa::path(
    put, path = "/admin/phones/{id}/pin", tag = "admin",
    params(
        ("id" = String, Path, description = "The phone number's id (decimal digits).", pattern = "^[0-9]{1,24}$"),
    ),
    request_body = PinRequest,
    responses(
        (status = 204, description = "The PIN is kept (sealed) for the number's registration"),
        AdminRecordRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn set_pin(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<PinRequest>,
) -> Result<axum::http::StatusCode, AppError> {
    let phone = waba_graph::ObjectId::parse(&id)
        .map_err(|_| AppError::BadRequest("the phone number id is a number"))?;
    pipeline(&state)?
        .set_pin(phone.as_str(), &request.pin)
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `GET /admin/writes?after=&limit=`: the audit trail of every write made to Graph.
#[utoipa::path(
    get, path = "/admin/writes", tag = "admin",
    params(ListParams),
    responses(
        (status = 200, description = "Writes made to Graph, oldest first", body = Writes),
        AdminRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn writes(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<ListParams>,
) -> Result<Json<Writes>, AppError> {
    let after = q.after.unwrap_or(0);
    let list = state.store.writes(after, q.limit()?).await?;
    Ok(Json(Writes {
        next_after: list.last().map(|w| w.id).unwrap_or(after),
        data: list,
    }))
}

/// The record a route is about.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RecordPath {
    /// The onboarding record's id.
    pub id: i64,
}

/// Query of `GET /admin/graph-usage`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    /// One object (a WABA or business id) only.
    #[param(pattern = "^[0-9]{1,24}$")]
    pub object: Option<String>,
}

/// `GET /admin/graph-usage[?object=]`: what Meta last said of each object's hourly budget
/// (`X-Business-Use-Case-Usage`), most used first, and how long background work about it
/// waits.
#[utoipa::path(
    get, path = "/admin/graph-usage", tag = "admin",
    params(UsageParams),
    responses(
        (status = 200, description = "Meta's last usage reading per object, most used first", body = UsageView),
        AdminRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn graph_usage(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<UsageParams>,
) -> Result<Json<UsageView>, AppError> {
    let usage = &state.reads.upstream.usage;
    let objects = match &q.object {
        Some(id) => {
            let id = waba_graph::ObjectId::parse(id)?;
            usage
                .reading(id.as_str())
                .map(|r| vec![(id.to_string(), r)])
                .unwrap_or_default()
        }
        None => usage.all(),
    };
    Ok(Json(UsageView::new(usage, objects)))
}
