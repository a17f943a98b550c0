//! `/events/...`: the live status stream (Server-Sent Events) and its tickets.

use super::extract::{Caller, Params};
use super::openapi::{CallerRefusals, StreamRefusals};
use super::views::{ChangeView, TicketAnswer};
use crate::AppState;
use crate::auth::Principal;
use crate::error::AppError;
use crate::live::{Scope, TICKET_TTL};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt as _};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// `POST /events/ticket`: a short-lived stream ticket for the caller's scope.
#[utoipa::path(
    post, path = "/events/ticket", tag = "events",
    responses(
        (status = 200, description = "A ticket for `GET /events/stream`", body = TicketAnswer),
        CallerRefusals,
    ),
    security(("admin" = []), ("signup_token" = []), ("session" = [])),
)]
pub async fn ticket(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<TicketAnswer>, AppError> {
    let scope = match &caller.principal {
        Principal::Admin => Scope::All,
        Principal::Signup(grant) => {
            Scope::Wabas(grant.wabas.iter().map(ToString::to_string).collect())
        }
    };
    let expires_at = crate::clock::now() + TICKET_TTL.as_secs() as i64;
    Ok(Json(TicketAnswer {
        ticket: state.hub.ticket(&scope, expires_at),
        expires_at,
    }))
}

/// Query of `GET /events/stream`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    ticket: String,
    after: Option<i64>,
}

/// `GET /events/stream?ticket=…[&after=N]`: the changes after `Last-Event-ID` (or `after`),
/// then new ones, each with its sequence number as the event id.
#[utoipa::path(
    get, path = "/events/stream", tag = "events",
    params(
        ("after" = Option<i64>, Query, description = "Send the changes after this sequence number (`Last-Event-ID` wins)."),
        ("Last-Event-ID" = Option<String>, Header, description = "The last event id the client saw (EventSource sends it when it reconnects)."),
    ),
    responses(
        (status = 200, description = "Server-Sent Events, never ending, each a `StatusEvent`; a comment every 15 s keeps the connection alive", content_type = "text/event-stream", body = super::openapi::StatusEvent),
        StreamRefusals,
    ),
    security(("stream_ticket" = [])),
)]
pub async fn stream(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Params(q): Params<StreamParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, AppError> {
    let scope = state.hub.check(&q.ticket, crate::clock::now())?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or(q.after)
        .unwrap_or(0)
        .max(0);
    let events = state.hub.follow(scope, resume).map(|c| {
        Ok(Event::default()
            .id(c.seq.to_string())
            .event("status")
            .data(serde_json::to_string(&ChangeView::from(&*c)).unwrap_or_default()))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
