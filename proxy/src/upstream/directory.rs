//! The partner's WABAs (client and owned): what the admin token may read.
//!
//! Loaded by paging both list edges with `fields=id` (following cursors, never Graph's
//! links), kept for a while, and reloaded on a miss at most every few seconds, so an unknown
//! id cannot make the proxy list everything on every request.

use super::{GraphRoute, Upstream};
use crate::error::AppError;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use waba_graph::input::{Cursor, ListEdge};
use waba_graph::{ObjectId, Page};

/// How long a loaded directory is trusted.
pub const DIRECTORY_TTL: Duration = Duration::from_secs(300);
/// Least time between two reloads caused by misses.
pub const MISS_RELOAD_INTERVAL: Duration = Duration::from_secs(10);
/// Most pages read per edge (100 WABAs each).
pub const MAX_PAGES: usize = 2_000;

#[derive(Debug, serde::Deserialize)]
struct IdOnly {
    id: ObjectId,
}

#[derive(Default)]
struct Loaded {
    ids: HashSet<ObjectId>,
    at: Option<Instant>,
}

/// The set of WABA ids the partner's business owns or was shared.
pub struct Directory {
    upstream: Upstream,
    business: ObjectId,
    loaded: Mutex<Loaded>,
}

impl Directory {
    /// An empty directory for `business`; loads on first use.
    pub fn new(upstream: Upstream, business: ObjectId) -> Self {
        Self {
            upstream,
            business,
            loaded: Mutex::new(Loaded::default()),
        }
    }

    /// Whether `waba` is the partner's, reloading when stale or on a (rate-limited) miss.
    pub async fn contains(&self, waba: &ObjectId) -> Result<bool, AppError> {
        let mut loaded = self.loaded.lock().await;
        let age = loaded.at.map(|t| t.elapsed());
        let fresh = age.is_some_and(|a| a < DIRECTORY_TTL);
        if fresh && loaded.ids.contains(waba) {
            return Ok(true);
        }
        let may_reload = age.is_none_or(|a| !fresh || a >= MISS_RELOAD_INTERVAL);
        if may_reload {
            let mut ids = HashSet::new();
            for edge in [ListEdge::Client, ListEdge::Owned] {
                self.load_edge(edge, &mut ids).await?;
            }
            *loaded = Loaded {
                ids,
                at: Some(Instant::now()),
            };
        }
        Ok(loaded.ids.contains(waba))
    }

    async fn load_edge(&self, edge: ListEdge, ids: &mut HashSet<ObjectId>) -> Result<(), AppError> {
        ids.extend(list_ids(&self.upstream, &self.business, edge).await?);
        Ok(())
    }
}

/// Every WABA id on `business`'s `edge`, paging with `fields=id&limit=100` and following
/// cursors (never Graph's links), at most [`MAX_PAGES`] pages.
pub async fn list_ids(
    upstream: &Upstream,
    business: &ObjectId,
    edge: ListEdge,
) -> Result<Vec<ObjectId>, AppError> {
    let route = match edge {
        ListEdge::Client => GraphRoute::ClientWabas,
        ListEdge::Owned => GraphRoute::OwnedWabas,
    };
    let path = format!("{business}/{}", edge.as_str());
    let mut ids = Vec::new();
    let mut after: Option<Cursor> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![("fields", "id".to_owned()), ("limit", "100".to_owned())];
        if let Some(c) = &after {
            query.push(("after", c.as_str().to_owned()));
        }
        let body = upstream.get(route, &path, &query, &[]).await?;
        let page: Page<IdOnly> = serde_json::from_slice(&body)
            .map_err(|_| AppError::UpstreamGarbage("WABA list is not what Graph sends"))?;
        let next = page.after_cursor().and_then(|c| Cursor::parse(&c).ok());
        ids.extend(page.data.into_iter().map(|w| w.id));
        match next {
            Some(c) if after.as_ref() != Some(&c) => after = Some(c),
            _ => return Ok(ids),
        }
    }
    Ok(ids)
}
