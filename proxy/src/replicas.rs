//! What replicas sharing one PostgreSQL database tell each other, through the store's
//! signals (`LISTEN`/`NOTIFY`): a change stored by any replica reaches the open streams of
//! every replica (its reader takes it from the database, in sequence order) and drops the cached
//! answers about its WABA there; a throttle gate closed by Meta's answer on one replica
//! closes on all. After a lost connection to the signals every stream re-reads the database
//! and every cached answer is dropped, since what was said meanwhile is unknown.
//! With SQLite (one process) there is nothing to tell.

use crate::live::StatusHub;
use crate::store::{Signal, Store};
use crate::upstream::{GraphRoute, Upstream};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Starts both directions, when the store carries signals.
pub fn spawn(store: Arc<dyn Store>, upstream: Upstream, hub: Arc<StatusHub>) {
    let Some(mut signals) = store.signals() else {
        return;
    };
    let gate = upstream.gate.clone();
    let (closings, mut closed) = tokio::sync::mpsc::unbounded_channel();
    gate.announce_to(closings);
    let teller = store.clone();
    tokio::spawn(async move {
        while let Some((route, object, wait)) = closed.recv().await {
            let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
            let signal = Signal::Throttled {
                route: route.map_or("*", GraphRoute::name).to_owned(),
                object,
                wait_ms,
            };
            if let Err(e) = teller.signal(signal).await {
                tracing::warn!(error = %e, "could not tell the other replicas to pause calls");
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let signal = match signals.recv().await {
                Ok(signal) => signal,
                // Too many at once: some were missed, so act as after a reconnection.
                Err(RecvError::Lagged(_)) => Signal::Resumed,
                Err(RecvError::Closed) => return,
            };
            // The hub's reader coalesces wakes: a burst of notices reads the database once
            // or twice, not once per notice.
            if hear(signal, &upstream) {
                hub.wake();
            }
        }
    });
}

/// Applies `signal` to this replica's caches and gate; whether open streams must read the
/// database.
fn hear(signal: Signal, upstream: &Upstream) -> bool {
    match signal {
        Signal::Changes { waba_id } => {
            if let Some(waba) = waba_id {
                upstream.forget(&waba);
            }
            true
        }
        Signal::Throttled {
            route,
            object,
            wait_ms,
        } => {
            let route = match route.as_str() {
                "*" => None,
                name => match GraphRoute::parse(name) {
                    Some(r) => Some(r),
                    // A route a newer replica knows: nothing here makes that call.
                    None => return false,
                },
            };
            if wait_ms > 0 {
                let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0));
                upstream.gate.close_for(route, &object, wait);
            }
            false
        }
        Signal::Resumed => {
            upstream.forget_all();
            true
        }
    }
}
