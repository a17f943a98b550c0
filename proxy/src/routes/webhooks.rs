//! `/webhooks/meta`: Meta's subscription handshake and signed notifications.

use super::extract::unreadable_body;
use super::openapi::WebhookRefusals;
use crate::AppState;
use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use std::sync::Arc;

/// Query of `GET /webhooks/meta`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
#[utoipa::path(
    get, path = "/webhooks/meta", tag = "webhooks",
    params(Handshake),
    responses(
        (status = 200, description = "`hub.challenge`, echoed", content_type = "text/plain; charset=utf-8", body = String),
        WebhookRefusals,
    ),
)]
pub async fn handshake(
    State(state): State<Arc<AppState>>,
    q: Result<Query<Handshake>, axum::extract::rejection::QueryRejection>,
) -> Result<String, AppError> {
    let Ok(Query(q)) = q else {
        return Err(AppError::Forbidden("not a subscription handshake"));
    };
    state.inbox.handshake(
        q.mode.as_deref(),
        q.verify_token.as_deref(),
        q.challenge.as_deref(),
    )
}

/// `POST /webhooks/meta`: verified, stored and applied before the 200.
#[utoipa::path(
    post, path = "/webhooks/meta", tag = "webhooks",
    request_body(content = super::openapi::WebhookNotification, description = "Meta's notification, signed", content_type = "application/json"),
    responses(
        (status = 200, description = "Verified, stored and applied"),
        WebhookRefusals,
    ),
    security(("webhook_signature" = [])),
)]
pub async fn receive(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, AppError> {
    let body = body.map_err(|e| {
        unreadable_body(e.status(), &e)
            .unwrap_or(AppError::BadRequest("the body could not be read"))
    })?;
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    state.inbox.receive(signature, &body).await?;
    Ok(StatusCode::OK)
}
