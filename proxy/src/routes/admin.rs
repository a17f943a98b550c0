//! `/admin/...`: onboarding records, follow-ups and the tracker, for the partner's staff only.
//!
//! Every handler takes the [`Admin`] extractor first (401 without a credential, 403 for any
//! other credential), decided without a Graph call.

use super::extract::{Admin, Params};
use super::views::{ChangeSummary, Events, PassView, RecordWithToken, Records};
use crate::AppState;
use crate::error::AppError;
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Records with a smaller id (the next page of a newest-first list).
    pub before: Option<i64>,
    /// Events with a larger sequence number.
    pub after: Option<i64>,
    /// How many (default 50, at most [`MAX_LIMIT`]).
    pub limit: Option<u32>,
}

impl ListParams {
    fn limit(&self) -> Result<u32, AppError> {
        match self.limit {
            None => Ok(50),
            Some(n @ 1..=MAX_LIMIT) => Ok(n),
            Some(_) => Err(AppError::BadRequest("limit must be between 1 and 500")),
        }
    }
}

/// `GET /admin/onboardings?before=&limit=`.
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
pub async fn onboarding(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<RecordWithToken>, AppError> {
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::BadRequest("the record id is a number"))?;
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
    Ok(Json(RecordWithToken {
        record: (&found).into(),
        business_token_expires_at: token.as_ref().and_then(|t| t.1),
        business_token: token.map(|t| t.0.expose().to_owned()),
        changes: changes.iter().map(ChangeSummary::from).collect(),
    }))
}

/// `GET /admin/follow-ups?limit=`: the records that leave something to do.
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
