//! Live status: the hub that tells open streams about changes Meta announced.
//!
//! Browsers' `EventSource` cannot send headers, so a stream is opened with a ticket that
//! lives [`TICKET_TTL`] and names what the holder may see (everything, or its granted WABAs),
//! signed with a key of this process. [`StatusHub::follow`] replays the stored changes after a
//! sequence number and then follows new ones, so a client that reconnects neither loses nor
//! repeats a change.

use crate::error::AppError;
use crate::store::{Store, StoredChange};
use base64::Engine as _;
use futures_util::Stream;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::broadcast::error::RecvError;
use waba_graph::Secret;

/// How long a stream ticket may be used to connect.
pub const TICKET_TTL: Duration = Duration::from_secs(60);
/// Changes replayed per database read when a stream resumes.
const REPLAY_BATCH: u32 = 500;

/// What a stream may see: every change, or those of its WABAs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The admin: everything.
    All,
    /// A signup credential: these WABAs.
    Wabas(HashSet<String>),
}

impl Scope {
    fn allows(&self, c: &StoredChange) -> bool {
        match self {
            Scope::All => true,
            Scope::Wabas(ids) => c.change.waba_id.as_ref().is_some_and(|w| ids.contains(w)),
        }
    }
}

/// New changes for open streams, the ticket key, shutdown.
///
/// One reader per process takes the new changes from the database, in sequence order, when it
/// is woken (a change stored here, or another replica's notice) and broadcasts them: streams
/// never query the database for what is new, only to catch up (when they open, resume or lag).
pub struct StatusHub {
    store: Arc<dyn Store>,
    changes: tokio::sync::broadcast::Sender<Arc<StoredChange>>,
    wake: Arc<tokio::sync::Notify>,
    mac: Hmac<Sha256>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl StatusHub {
    /// A hub over `store` whose tickets are signed with a key derived from `shared` (random,
    /// kept in the database, so a ticket one replica issued opens a stream on any) and
    /// `secret` (the System User token every replica is given: a copy of the database alone
    /// cannot sign tickets).
    /// Its reader starts after `newest`, the newest change stored when it is made.
    pub fn new(
        store: Arc<dyn Store>,
        shared: [u8; 32],
        secret: &Secret,
        newest: i64,
    ) -> Result<Self, AppError> {
        let mut derive = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes())
            .map_err(|_| AppError::Internal)?;
        derive.update(b"waba-onboard stream tickets\0");
        derive.update(&shared);
        let key = derive.finalize().into_bytes();
        let changes = tokio::sync::broadcast::channel(4096).0;
        let wake = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(read_new(
            store.clone(),
            changes.clone(),
            wake.clone(),
            newest,
        ));
        Ok(Self {
            store,
            changes,
            wake,
            mac: <Hmac<Sha256> as KeyInit>::new_from_slice(&key).map_err(|_| AppError::Internal)?,
            shutdown: tokio::sync::watch::channel(false).0,
        })
    }

    /// Ends every open stream (graceful shutdown).
    pub fn close(&self) {
        // `send_replace` stores the value even when no stream is open to receive it.
        self.shutdown.send_replace(true);
    }

    /// Tells open streams that changes were stored (here, or by another process on the
    /// database): the reader takes them from the database, in order.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A ticket for `scope` expiring at `exp` (unix seconds).
    pub fn ticket(&self, scope: &Scope, exp: i64) -> String {
        let payload = match scope {
            Scope::All => format!("{exp}|*"),
            Scope::Wabas(ids) => {
                let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                ids.sort_unstable();
                format!("{exp}|{}", ids.join(","))
            }
        };
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}",
            b64.encode(payload.as_bytes()),
            b64.encode(mac.finalize().into_bytes())
        )
    }

    /// What a ticket allows, if it was signed with the shared key and is unexpired at `now`.
    pub fn check(&self, ticket: &str, now: i64) -> Result<Scope, AppError> {
        let refused = || {
            AppError::InvalidCredential(
                "the stream ticket is invalid or expired: ask for a new one",
            )
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (payload, sig) = ticket.split_once('.').ok_or_else(refused)?;
        let payload = b64.decode(payload).map_err(|_| refused())?;
        let sig = b64.decode(sig).map_err(|_| refused())?;
        let mut mac = self.mac.clone();
        mac.update(&payload);
        let expected = mac.finalize().into_bytes();
        if !bool::from(expected.as_slice().ct_eq(&sig)) {
            return Err(refused());
        }
        let payload = String::from_utf8(payload).map_err(|_| refused())?;
        let (exp, scope) = payload.split_once('|').ok_or_else(refused)?;
        if exp.parse::<i64>().map_err(|_| refused())? < now {
            return Err(refused());
        }
        Ok(match scope {
            "*" => Scope::All,
            ids => Scope::Wabas(
                ids.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
        })
    }

    /// The changes after `after` that `scope` may see, then new ones as the reader finds
    /// them: every stored change exactly once, in sequence order. Ends on shutdown, or when
    /// the database fails.
    pub fn follow(
        self: &Arc<Self>,
        scope: Scope,
        after: i64,
    ) -> impl Stream<Item = Arc<StoredChange>> + use<> {
        let hub = self.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            // Subscribe before replaying, so nothing stored meanwhile is missed.
            let mut live = hub.changes.subscribe();
            let mut shutdown = hub.shutdown.subscribe();
            let Some(mut last) = hub.replay(&scope, after, &tx).await else {
                return;
            };
            loop {
                tokio::select! {
                    // `wait_for`, not `changed`: a stream opened after the close must end too.
                    () = async {
                        // The `Ref` it answers with is not `Send`: drop it here.
                        let _ = shutdown.wait_for(|closed| *closed).await;
                    } => return,
                    got = live.recv() => match got {
                        // Read before this stream's replay.
                        Ok(c) if c.seq <= last => {}
                        // The reader sends every change in sequence order (numbers may skip:
                        // PostgreSQL spends one on a redelivery it does not store).
                        Ok(c) => {
                            last = c.seq;
                            if scope.allows(&c) && tx.send(c).await.is_err() {
                                return;
                            }
                        }
                        // Too slow for the feed: catch up from the database.
                        Err(RecvError::Lagged(_)) => {
                            match hub.replay(&scope, last, &tx).await {
                                Some(l) => last = l,
                                None => return,
                            }
                        }
                        Err(RecvError::Closed) => return,
                    },
                }
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
    }

    /// Sends the stored changes after `last` that `scope` may see; the new `last`, or `None`
    /// when the client went away or the database failed.
    async fn replay(
        &self,
        scope: &Scope,
        mut last: i64,
        tx: &tokio::sync::mpsc::Sender<Arc<StoredChange>>,
    ) -> Option<i64> {
        loop {
            let batch = match self.store.changes(last, REPLAY_BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "database failure while replaying changes");
                    return None;
                }
            };
            let full = batch.len() == REPLAY_BATCH as usize;
            for c in batch {
                last = c.seq;
                if scope.allows(&c) && tx.send(Arc::new(c)).await.is_err() {
                    return None;
                }
            }
            if !full {
                return Some(last);
            }
        }
    }
}

/// The reader: on each wake, every change after the last one it sent, in sequence order.
/// Writers commit one at a time (SQLite's lock, PostgreSQL's advisory lock), so nothing can
/// be committed later with a smaller number. A failed read is retried at the next wake.
async fn read_new(
    store: Arc<dyn Store>,
    changes: tokio::sync::broadcast::Sender<Arc<StoredChange>>,
    wake: Arc<tokio::sync::Notify>,
    mut newest: i64,
) {
    loop {
        wake.notified().await;
        loop {
            let batch = match store.changes(newest, REPLAY_BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "database failure while reading new changes");
                    break;
                }
            };
            let full = batch.len() == REPLAY_BATCH as usize;
            for c in batch {
                newest = c.seq;
                let _ = changes.send(Arc::new(c));
            }
            if !full {
                break;
            }
        }
    }
}
