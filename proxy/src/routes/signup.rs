//! `/signup/...`: the code exchange, the granted accounts and the signup page's reports.

use super::extract::{Caller, ClientIp, JsonBody, MaybeBearer};
use super::openapi::{CallerRefusals, ExchangeRefusals, ReportRefusals};
use super::views::{AccountsAnswer, EventAnswer, ExchangeAnswer};
use crate::AppState;
use crate::error::AppError;
use crate::onboarding::{ExchangeRequest, ReportRequest};
use axum::Json;
use axum::extract::State;
use std::sync::Arc;

/// `POST /signup/exchange` `{"code", "event"?}`: the session credential for the granted WABAs.
#[utoipa::path(
    post, path = "/signup/exchange", tag = "signup",
    request_body = ExchangeRequest,
    responses(
        (status = 200, description = "The session credential, the granted WABAs and their statuses", body = ExchangeAnswer),
        ExchangeRefusals,
    ),
    security(()),
)]
pub async fn exchange(
    State(state): State<Arc<AppState>>,
    ClientIp(client): ClientIp,
    JsonBody(request): JsonBody<ExchangeRequest>,
) -> Result<Json<ExchangeAnswer>, AppError> {
    let exchanged = state.signups.exchange(client, request).await?;
    Ok(Json(exchanged.into()))
}

/// `POST /signup/events` `{"event", "flow"?}`: records an attempt the page reports, with the
/// signup credential when the page has one.
#[utoipa::path(
    post, path = "/signup/events", tag = "signup",
    request_body = ReportRequest,
    responses(
        (status = 200, description = "The record and what is left to do", body = EventAnswer),
        ReportRefusals,
    ),
    security((), ("signup_token" = []), ("session" = [])),
)]
pub async fn report(
    State(state): State<Arc<AppState>>,
    ClientIp(client): ClientIp,
    MaybeBearer(credential): MaybeBearer,
    JsonBody(request): JsonBody<ReportRequest>,
) -> Result<Json<EventAnswer>, AppError> {
    let reported = state
        .signups
        .report(client, request, credential.as_deref())
        .await?;
    Ok(Json(reported.into()))
}

/// `GET /signup/accounts`: the WABAs the caller's signup credential (a business token or a
/// code-flow session) was granted, each read with the status fields: the signup page's
/// statuses in one round trip.
#[utoipa::path(
    get, path = "/signup/accounts", tag = "signup",
    responses(
        (status = 200, description = "The granted WABAs with their statuses", body = AccountsAnswer),
        CallerRefusals,
    ),
    security(("signup_token" = []), ("session" = []), ("admin" = [])),
)]
pub async fn accounts(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<AccountsAnswer>, AppError> {
    let granted = state
        .reads
        .granted(&caller.principal, &caller.credential)
        .await?;
    Ok(Json(granted.into()))
}
