//! Operations endpoints: `/healthz` (the process is up), `/readyz` (the database answers and
//! the configuration works: Graph answers and accepts the System User token and the app's id
//! and secret; cached), `/metrics` (Prometheus).

use super::openapi::OpsRefusals;
use crate::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

/// `GET /healthz`.
#[utoipa::path(
    get, path = "/healthz", tag = "ops",
    responses(
        (status = 200, description = "The process is up: `{\"status\": \"ok\"}`", body = Object),
        OpsRefusals,
    ),
)]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when the database answers and Graph accepts the proxy's credentials,
/// 503 with the reason if not.
#[utoipa::path(
    get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "Ready: `{\"status\": \"ready\", \"database\"}`", body = Object),
        (status = 503, description = "Not ready: `{\"status\": \"unready\", \"reason\", \"database\"}`", body = Object),
        OpsRefusals,
    ),
)]
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let database = state.store.kind();
    match state.ready().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": database})),
        )
            .into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unready", "reason": reason, "database": database})),
        )
            .into_response(),
    }
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    get, path = "/metrics", tag = "ops",
    responses(
        (status = 200, description = "Prometheus metrics", content_type = "text/plain; version=0.0.4", body = String),
        OpsRefusals,
    ),
)]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut res = state.metrics_text().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    res
}
