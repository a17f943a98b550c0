//! `/admin/webhook-endpoints/...` and `/admin/webhook-deliveries/...`: the partner's own
//! webhook endpoints, their deliveries and attempts, for the partner's staff only.
//!
//! An endpoint's secret is in the answer that creates it or replaces it, and nowhere else.

use super::admin::ListParams;
use super::extract::{Admin, JsonBody, Params};
use super::openapi::{AdminRecordRefusals, AdminRefusals};
use crate::AppState;
use crate::error::AppError;
use crate::outbound::{EndpointError, WithSecret};
use crate::store::outbox::{Delivery, DeliveryState, EVENT_TYPES, Endpoint, EndpointPatch};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// An endpoint as the admin API shows it (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    /// Its id.
    pub id: i64,
    /// Where deliveries go.
    pub url: String,
    /// The admin's words about it.
    pub description: String,
    /// The event types it gets (`*`: every one).
    pub events: Vec<String>,
    /// Whether it gets deliveries now.
    pub enabled: bool,
    /// Why not, when paused: `admin`, `gone` (it answered 410) or `circuit` (it failed for
    /// the whole pause period).
    pub paused_reason: Option<&'static str>,
    /// `closed` (deliveries flow), `open` (nothing is sent before `open_until`) or
    /// `half_open` (the next attempt, when its retry is due, decides).
    pub circuit: &'static str,
    /// When the open circuit lets the next probe through (unix seconds).
    pub open_until: Option<i64>,
    /// Failed attempts in a row.
    pub failures: u32,
    /// Until when the secret replaced last also signs deliveries (a second `v1,`
    /// signature), if it does.
    pub previous_secret_until: Option<i64>,
    /// Since when every attempt failed.
    pub failing_since: Option<i64>,
    /// Deliveries waiting.
    pub pending: i64,
    /// Deliveries made.
    pub delivered: i64,
    /// Deliveries given up.
    pub failed: i64,
    /// When it was last tried.
    pub last_attempt_at: Option<i64>,
    /// When it was created.
    pub created_at: i64,
    /// When the admin last changed it.
    pub updated_at: i64,
}

impl From<&Endpoint> for EndpointView {
    fn from(e: &Endpoint) -> Self {
        let now = crate::clock::now();
        Self {
            id: e.id,
            url: e.url.clone(),
            description: e.description.clone(),
            events: e.events.clone(),
            enabled: e.enabled,
            paused_reason: e.paused_reason.map(|r| r.as_str()),
            circuit: match e.open_until {
                Some(until) if until > now => "open",
                Some(_) => "half_open",
                None => "closed",
            },
            open_until: e.open_until,
            failures: e.failures,
            previous_secret_until: e.previous_until.filter(|u| *u > now),
            failing_since: e.failing_since,
            pending: e.pending,
            delivered: e.delivered,
            failed: e.failed,
            last_attempt_at: e.last_attempt_at,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// An endpoint with its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointWithSecret {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// The Standard Webhooks signing secret (`whsec_` and base64): keep it, it is not shown
    /// again.
    pub secret: String,
}

impl From<WithSecret> for EndpointWithSecret {
    fn from(w: WithSecret) -> Self {
        Self {
            endpoint: (&w.endpoint).into(),
            secret: w.secret.expose().to_owned(),
        }
    }
}

/// Every endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct Endpoints {
    /// Oldest first.
    pub data: Vec<EndpointView>,
}

/// An event type an endpoint may ask for.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventType {
    /// Its name (`onboarding.finished`, ...).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What it announces.
    pub description: &'static str,
}

/// The event types.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypes {
    /// In the order the documentation lists them.
    pub data: Vec<EventType>,
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// When it started (unix seconds).
    pub at: i64,
    /// The endpoint's HTTP status, when it answered.
    pub status: Option<u16>,
    /// How long it took, in milliseconds.
    pub latency_ms: u32,
    /// What went wrong.
    pub error: Option<String>,
}

/// A delivery of one event to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Its id.
    pub id: i64,
    /// The endpoint.
    pub endpoint_id: i64,
    /// The event's id, sent as `webhook-id` (the same on every attempt and resend).
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// When the event happened (unix seconds).
    pub occurred_at: i64,
    /// `pending`, `delivered` or `failed` (given up after the retry window).
    pub state: &'static str,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt may start (pending only; an open circuit may hold it longer).
    pub next_attempt_at: Option<i64>,
    /// When it was delivered.
    pub delivered_at: Option<i64>,
    /// When it was queued.
    pub created_at: i64,
    /// The body sent: `{"type", "timestamp", "data"}`.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Its attempts, oldest first.
    pub tries: Vec<AttemptView>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            endpoint_id: d.endpoint_id,
            event_id: d.event_id,
            event_type: d.event_type,
            occurred_at: d.occurred_at,
            state: d.state.as_str(),
            attempts: d.attempts,
            next_attempt_at: (d.state == DeliveryState::Pending).then_some(d.next_at),
            delivered_at: d.delivered_at,
            created_at: d.created_at,
            payload: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
            tries: d
                .tries
                .into_iter()
                .map(|t| AttemptView {
                    at: t.at,
                    status: t.status,
                    latency_ms: t.latency_ms,
                    error: t.error,
                })
                .collect(),
        }
    }
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deliveries {
    /// Newest first.
    pub data: Vec<DeliveryView>,
    /// The `before` of the next page, when there may be one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// The delivery an action queued or changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resent {
    /// Its id.
    pub delivery_id: i64,
}

/// `POST /admin/webhook-endpoints`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpointBody {
    /// Where deliveries go: `https://` (or `http://`; private networks only when the
    /// operator allows them).
    #[schema(max_length = 2048)]
    pub url: String,
    /// The event types wanted, or `["*"]` for every one.
    #[schema(min_items = 1, max_items = 64)]
    pub events: Vec<String>,
    /// Words about it (at most 500 characters).
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    /// Whether it gets deliveries from now on (default `true`).
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// `PATCH /admin/webhook-endpoints/{id}`: what to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatchBody {
    /// A new URL.
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    /// New event types.
    #[schema(min_items = 1, max_items = 64)]
    pub events: Option<Vec<String>>,
    /// New words.
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// `false` pauses it (deliveries wait), `true` resumes it (the circuit closes and what
    /// waits goes at once, in order).
    pub enabled: Option<bool>,
}

/// `POST /admin/webhook-endpoints/{id}/secret?keep_previous_secs=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RotateParams {
    /// How long the replaced secret still signs too, so the receiver can change over
    /// without refusing a delivery (0, the default: it stops at once, as after a leak; at
    /// most 7 days).
    #[param(minimum = 0, maximum = 604800)]
    pub keep_previous_secs: Option<u64>,
}

/// The most a replaced secret may go on signing.
const MAX_KEEP_PREVIOUS_SECS: u64 = 7 * 86_400;

/// The id in an endpoint's or a delivery's path.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct IdPath {
    /// The id.
    pub id: i64,
}

fn refused(what: &'static str) -> impl Fn(EndpointError) -> AppError {
    move |e| match e {
        EndpointError::NoKey => AppError::OutboundOff,
        EndpointError::Url(u) => AppError::BadEndpoint(u),
        EndpointError::Events => AppError::BadRequest(
            "events must list one or more event types (GET /admin/webhook-event-types) or \"*\"",
        ),
        EndpointError::Description => {
            AppError::BadRequest("description: at most 500 characters, no control characters")
        }
        EndpointError::NotFound => AppError::NoSuchRecord(what),
        EndpointError::Full => {
            AppError::Conflict("this proxy keeps at most 50 webhook endpoints: delete one first")
        }
        EndpointError::State(DeliveryState::Pending) => AppError::Conflict(
            "the delivery is still being tried: give it up first to queue it again",
        ),
        EndpointError::State(_) => {
            AppError::Conflict("the delivery is settled: only a pending one can be given up")
        }
        EndpointError::Secret => AppError::Internal,
        EndpointError::Store(e) => e.into(),
    }
}

fn id_of(text: &str) -> Result<i64, AppError> {
    text.parse()
        .map_err(|_| AppError::BadRequest("the id is a number"))
}

/// `GET /admin/webhook-event-types`.
#[utoipa::path(
    get, path = "/admin/webhook-event-types", tag = "outbound",
    responses(
        (status = 200, description = "The event types an endpoint may ask for", body = EventTypes),
        AdminRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn event_types(_: Admin) -> Json<EventTypes> {
    Json(EventTypes {
        data: EVENT_TYPES
            .iter()
            .map(|(kind, description)| EventType { kind, description })
            .collect(),
    })
}

/// `GET /admin/webhook-endpoints`.
#[utoipa::path(
    get, path = "/admin/webhook-endpoints", tag = "outbound",
    responses(
        (status = 200, description = "Every endpoint, oldest first", body = Endpoints),
        AdminRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    _: Admin,
) -> Result<Json<Endpoints>, AppError> {
    let list = state
        .outbound
        .list()
        .await
        .map_err(refused("webhook endpoint"))?;
    Ok(Json(Endpoints {
        data: list.iter().map(Into::into).collect(),
    }))
}

/// `POST /admin/webhook-endpoints`: a new endpoint and its secret, shown this once.
#[utoipa::path(
    post, path = "/admin/webhook-endpoints", tag = "outbound",
    request_body = NewEndpointBody,
    responses(
        (status = 201, description = "The endpoint with its signing secret (shown once)", body = EndpointWithSecret),
        (status = 501, description = "No token key: the code flow is not configured", body = waba_graph::ErrorEnvelope),
        AdminRecordRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    _: Admin,
    JsonBody(body): JsonBody<NewEndpointBody>,
) -> Result<(StatusCode, Json<EndpointWithSecret>), AppError> {
    let created = state
        .outbound
        .create(body.url, body.description, body.events, body.enabled)
        .await
        .map_err(refused("webhook endpoint"))?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// `GET /admin/webhook-endpoints/{id}`.
#[utoipa::path(
    get, path = "/admin/webhook-endpoints/{id}", tag = "outbound",
    params(IdPath),
    responses(
        (status = 200, description = "The endpoint", body = EndpointView),
        AdminRecordRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<EndpointView>, AppError> {
    let found = state
        .outbound
        .get(id_of(&id)?)
        .await
        .map_err(refused("webhook endpoint"))?;
    Ok(Json((&found).into()))
}

/// `PATCH /admin/webhook-endpoints/{id}`: changes it, pauses or resumes it.
#[utoipa::path(
    patch, path = "/admin/webhook-endpoints/{id}", tag = "outbound",
    params(IdPath),
    request_body = EndpointPatchBody,
    responses(
        (status = 200, description = "The endpoint as changed", body = EndpointView),
        AdminRecordRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn update(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<EndpointPatchBody>,
) -> Result<Json<EndpointView>, AppError> {
    let patch = EndpointPatch {
        url: body.url,
        description: body.description,
        events: body.events,
        enabled: body.enabled,
        secret: None,
        keep_previous_until: None,
    };
    let changed = state
        .outbound
        .update(id_of(&id)?, patch)
        .await
        .map_err(refused("webhook endpoint"))?;
    Ok(Json((&changed).into()))
}

/// `DELETE /admin/webhook-endpoints/{id}`: the endpoint and its deliveries.
#[utoipa::path(
    delete, path = "/admin/webhook-endpoints/{id}", tag = "outbound",
    params(IdPath),
    responses(
        (status = 204, description = "Deleted"),
        AdminRecordRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    state
        .outbound
        .delete(id_of(&id)?)
        .await
        .map_err(refused("webhook endpoint"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/webhook-endpoints/{id}/secret`: a new signing secret, shown this once; the
/// old one stops signing at once, or signs too for `keep_previous_secs`.
#[utoipa::path(
    post, path = "/admin/webhook-endpoints/{id}/secret", tag = "outbound",
    params(IdPath, RotateParams),
    responses(
        (status = 200, description = "The endpoint with its new signing secret (shown once)", body = EndpointWithSecret),
        (status = 501, description = "No token key: the code flow is not configured", body = waba_graph::ErrorEnvelope),
        AdminRecordRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn rotate_secret(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
    Params(q): Params<RotateParams>,
) -> Result<Json<EndpointWithSecret>, AppError> {
    let keep = q.keep_previous_secs.unwrap_or(0);
    if keep > MAX_KEEP_PREVIOUS_SECS {
        return Err(AppError::BadRequest(
            "keep_previous_secs is at most 604800 (7 days)",
        ));
    }
    let rotated = state
        .outbound
        .rotate_secret(id_of(&id)?, std::time::Duration::from_secs(keep))
        .await
        .map_err(refused("webhook endpoint"))?;
    Ok(Json(rotated.into()))
}

/// `GET /admin/webhook-endpoints/{id}/deliveries?before=&limit=`: its deliveries, newest
/// first, with their attempts.
#[utoipa::path(
    get, path = "/admin/webhook-endpoints/{id}/deliveries", tag = "outbound",
    params(IdPath, ListParams),
    responses(
        (status = 200, description = "A page of deliveries, newest first", body = Deliveries),
        AdminRecordRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn deliveries(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
    Params(q): Params<ListParams>,
) -> Result<Json<Deliveries>, AppError> {
    let limit = q.limit()?;
    let list = state
        .outbound
        .deliveries(id_of(&id)?, q.before, limit)
        .await
        .map_err(refused("webhook endpoint"))?;
    Ok(Json(Deliveries {
        next_before: (list.len() == limit as usize)
            .then(|| list.last().map(|d| d.id))
            .flatten(),
        data: list.into_iter().map(Into::into).collect(),
    }))
}

/// `POST /admin/webhook-deliveries/{id}/give-up`: a pending delivery its endpoint keeps
/// refusing is given up, so the endpoint's next one goes (409 when it is not pending).
#[utoipa::path(
    post, path = "/admin/webhook-deliveries/{id}/give-up", tag = "outbound",
    params(IdPath),
    responses(
        (status = 200, description = "Given up", body = Resent),
        AdminRecordRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn give_up(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Resent>, AppError> {
    let delivery_id = state
        .outbound
        .give_up(id_of(&id)?)
        .await
        .map_err(refused("webhook delivery"))?;
    Ok(Json(Resent { delivery_id }))
}

/// `POST /admin/webhook-deliveries/{id}/resend`: a delivered or given-up delivery's event is
/// queued again for its endpoint (the same `webhook-id`), after what already waits (409
/// while it is pending).
#[utoipa::path(
    post, path = "/admin/webhook-deliveries/{id}/resend", tag = "outbound",
    params(IdPath),
    responses(
        (status = 202, description = "Queued", body = Resent),
        AdminRecordRefusals,
    ),
    security(("admin" = [])),
)]
pub async fn resend(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Resent>), AppError> {
    let delivery_id = state
        .outbound
        .resend(id_of(&id)?)
        .await
        .map_err(refused("webhook delivery"))?;
    Ok((StatusCode::ACCEPTED, Json(Resent { delivery_id })))
}
