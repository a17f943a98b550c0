//! The newly-shared tracker: pages through the whole client WABA list, diffs it against the
//! stored set and records `shared` and `unshared` events.
//!
//! A whole-set diff, not a creation-time watermark: a WABA created years ago can be shared
//! today. One pass at a time (a second asks to wait); passes go through the same Graph client
//! as everything else, so the throttle gate and the retry budget apply.

use crate::error::AppError;
use crate::store::{ShareDiff, Store};
use crate::upstream::Upstream;
use crate::upstream::directory::list_ids;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use waba_graph::ObjectId;
use waba_graph::input::ListEdge;

/// Why a pass did not complete.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// Another pass is running.
    #[error("a tracker pass is already running")]
    Busy,
    /// Graph failed or refused (throttled, down).
    #[error("{0}")]
    Graph(#[from] AppError),
    /// The database failed.
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
}

/// The tracker of one partner business.
pub struct Tracker {
    store: Arc<dyn Store>,
    upstream: Upstream,
    business: ObjectId,
    running: tokio::sync::Mutex<()>,
    /// Plans the steps of newly shared WABAs, when the pipeline is on.
    pipeline: Option<Arc<crate::pipeline::Pipeline>>,
    /// This process, as the holder of the tracker's lease.
    holder: String,
    /// How long a pass holds the lease before another process may take it over.
    lease: Duration,
}

impl Tracker {
    /// A tracker of `business`'s client list, run by `holder` under leases of `lease`.
    pub fn new(
        store: Arc<dyn Store>,
        upstream: Upstream,
        business: ObjectId,
        pipeline: Option<Arc<crate::pipeline::Pipeline>>,
        holder: String,
        lease: Duration,
    ) -> Self {
        Self {
            store,
            upstream,
            business,
            running: tokio::sync::Mutex::new(()),
            pipeline,
            holder,
            lease,
        }
    }

    /// One pass asked for by the admin: the whole list, then the diff stored in one
    /// transaction. Busy while a pass runs here or in another process on the database.
    pub async fn pass(&self) -> Result<ShareDiff, TrackerError> {
        self.pass_every(0).await?.ok_or(TrackerError::Busy)
    }

    /// One pass, unless one started less than `every_secs` ago or another process holds the
    /// lease (`None`, also when the lease was taken over before the pass was stored).
    async fn pass_every(&self, every_secs: i64) -> Result<Option<ShareDiff>, TrackerError> {
        let _running = self.running.try_lock().map_err(|_| TrackerError::Busy)?;
        let lease = i64::try_from(self.lease.as_secs())
            .unwrap_or(i64::MAX)
            .max(1);
        if !self
            .store
            .claim_tracker_pass(self.holder.clone(), crate::clock::now(), every_secs, lease)
            .await?
        {
            return Ok(None);
        }
        let ids = list_ids(&self.upstream, &self.business, ListEdge::Client).await?;
        let set: BTreeSet<String> = ids.into_iter().map(|id| id.to_string()).collect();
        // Newly shared WABAs no record holds are planned in the same transaction.
        let discovery = self.pipeline.as_ref().map(|p| p.discovery());
        let Some(diff) = self
            .store
            .apply_share_set(set, crate::clock::now(), discovery, self.holder.clone())
            .await?
        else {
            tracing::warn!(
                "another process took the tracker's lease over before this pass was stored"
            );
            return Ok(None);
        };
        if let Some(pipeline) = &self.pipeline {
            pipeline.announce(&diff.planned);
        }
        metrics::counter!("waba_tracker_passes_total").increment(1);
        metrics::counter!("waba_tracker_events_total", "kind" => "shared")
            .increment(diff.shared.len() as u64);
        metrics::counter!("waba_tracker_events_total", "kind" => "unshared")
            .increment(diff.unshared.len() as u64);
        Ok(Some(diff))
    }
}

/// Runs a pass every `every` across every process on the database: each process looks four
/// times per interval, and the one that takes the tracker's lease runs the pass; if it dies,
/// another runs one once the lease is over. Failures are logged and retried at the next
/// interval.
pub fn spawn(tracker: Arc<Tracker>, every: Duration) {
    tokio::spawn(async move {
        let look = (every / 4).max(Duration::from_secs(1)).min(every);
        let mut tick = tokio::time::interval(look);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let every_secs = i64::try_from(every.as_secs()).unwrap_or(i64::MAX);
        loop {
            tick.tick().await;
            // Timed passes are background work: their calls give way when Meta says the
            // business's budget runs low.
            let pass = crate::upstream::usage::BACKGROUND.scope((), tracker.pass_every(every_secs));
            match pass.await {
                Ok(None) | Err(TrackerError::Busy) => {}
                Ok(Some(d)) if d.baseline => tracker_log_baseline(),
                Ok(Some(d)) => tracing::info!(
                    shared = d.shared.len(),
                    unshared = d.unshared.len(),
                    "tracker pass done"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "tracker pass failed; retrying at the next interval")
                }
            }
        }
    });
}

fn tracker_log_baseline() {
    tracing::info!(
        "tracker: first pass recorded the shared WABAs; changes are reported from now on"
    );
}
