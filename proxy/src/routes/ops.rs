//! Operations endpoints: `/healthz` (the process is up), `/readyz` (the configuration works:
//! Graph answers and accepts the System User token; cached), `/metrics` (Prometheus).

use crate::AppState;
use crate::upstream::GraphRoute;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use waba_graph::DebugToken;

/// How long a successful readiness check is reused.
pub const READY_TTL: Duration = Duration::from_secs(30);
/// How long a failed readiness check is reused.
pub const UNREADY_TTL: Duration = Duration::from_secs(5);

/// The cached outcome of the last readiness check.
#[derive(Default)]
pub struct Readiness(Mutex<Option<(Instant, Result<(), String>)>>);

/// `GET /healthz`.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when Graph accepts the System User token, 503 with the reason if not.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let mut cached = state.readiness.0.lock().await;
    let stale = match &*cached {
        // A 190 seen on a real call overrides a good answer: check again now.
        Some((_, Ok(()))) if state.upstream.health.is_rejected() => true,
        Some((at, Ok(()))) => at.elapsed() >= READY_TTL,
        Some((at, Err(_))) => at.elapsed() >= UNREADY_TTL,
        None => true,
    };
    if stale {
        *cached = Some((Instant::now(), check(&state).await));
    }
    match cached.as_ref().map(|(_, r)| r) {
        Some(Ok(())) => (StatusCode::OK, Json(json!({"status": "ready"}))).into_response(),
        Some(Err(reason)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unready", "reason": reason})),
        )
            .into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn check(state: &AppState) -> Result<(), String> {
    let token = state.config.upstream.system_user_token.expose().to_owned();
    let body = state
        .upstream
        .get(
            GraphRoute::DebugToken,
            "debug_token",
            &[("input_token", token)],
            &[],
        )
        .await
        .map_err(|e| format!("Graph check failed: {e}"))?;
    let info: DebugToken = serde_json::from_slice(&body)
        .map_err(|_| "Graph's debug_token answer is unreadable".to_owned())?;
    if info.data.is_valid {
        state.upstream.health.accepted();
        Ok(())
    } else {
        state.upstream.health.rejected();
        Err("Meta says the System User token is invalid or expired".into())
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut res = state.metrics.render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    res
}
