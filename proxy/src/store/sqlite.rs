//! The SQLite store: one connection behind a mutex (SQLite serialises writers), each call run
//! on tokio's blocking threads, versioned migrations at start-up.

use super::{
    ChangeKind, Flow, FollowUp, FollowUpReason, NewSession, Onboarding, OnboardingRecord, Outcome,
    SealedToken, SessionGrant, ShareDiff, ShareEvent, ShareKind, StatusChange, Store, StoreError,
    StoreFuture, StoredChange,
};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The migrations, in order; `PRAGMA user_version` says how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: onboarding records, sessions, used codes, the tracker.
    "CREATE TABLE onboardings (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at INTEGER NOT NULL,
        flow TEXT NOT NULL,
        outcome TEXT NOT NULL,
        event TEXT,
        granted TEXT NOT NULL,
        reported_waba_id TEXT,
        phone_number_id TEXT,
        business_id TEXT,
        current_step TEXT,
        error_message TEXT,
        error_id TEXT,
        session_id TEXT,
        token_nonce BLOB,
        token_ciphertext BLOB,
        token_expires_at INTEGER
    );
    CREATE TABLE follow_ups (
        onboarding_id INTEGER NOT NULL REFERENCES onboardings(id),
        waba_id TEXT,
        reason TEXT NOT NULL,
        message TEXT NOT NULL,
        action TEXT NOT NULL
    );
    CREATE INDEX follow_ups_by_onboarding ON follow_ups(onboarding_id);
    CREATE TABLE sessions (
        credential_hash BLOB PRIMARY KEY,
        onboarding_id INTEGER NOT NULL REFERENCES onboardings(id),
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE used_codes (
        code_hash BLOB PRIMARY KEY,
        used_at INTEGER NOT NULL
    );
    CREATE TABLE shared_wabas (
        waba_id TEXT PRIMARY KEY,
        since INTEGER NOT NULL
    );
    CREATE TABLE share_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        waba_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        detected_at INTEGER NOT NULL
    );
    CREATE TABLE tracker_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );",
    // 2: status changes from Meta's webhooks, one row per change, redeliveries folded.
    "CREATE TABLE status_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        dedupe BLOB NOT NULL UNIQUE,
        received_at INTEGER NOT NULL,
        field TEXT NOT NULL,
        kind TEXT NOT NULL,
        waba_id TEXT,
        value TEXT,
        raw TEXT NOT NULL
    );
    CREATE INDEX status_events_by_waba ON status_events(waba_id, seq);",
    // 3: when Meta said a record's WABA is no longer shared with the partner's app.
    "ALTER TABLE onboardings ADD COLUMN revoked_at INTEGER;",
];

/// The SQLite implementation.
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating) the database at `path`, in WAL mode, and runs pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection on a blocking thread.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'_, T> {
        let conn = self.conn.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                // A panic under the lock leaves the connection usable: SQLite rolls back the
                // open transaction when it is dropped.
                let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                f(&mut conn)
            })
            .await
            .map_err(|_| StoreError::Worker)?
        })
    }
}

/// Reads a stored name with `parse`; an unknown one is a conversion error.
fn stored<T>(
    row: &rusqlite::Row<'_>,
    idx: usize,
    parse: fn(&str) -> Option<T>,
    what: &'static str,
) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            Type::Text,
            Box::new(StoreError::Corrupt(what)),
        )
    })
}

/// The schema version this build creates.
pub fn schema_version() -> i64 {
    MIGRATIONS.len() as i64
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > schema_version() {
        return Err(StoreError::TooNew {
            found,
            supported: schema_version(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn join_ids(ids: &[String]) -> String {
    ids.join(",")
}

fn split_ids(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

const ONBOARDING_COLUMNS: &str = "id, created_at, flow, outcome, event, granted, reported_waba_id, \
     phone_number_id, business_id, current_step, error_message, error_id, session_id, \
     token_nonce, token_ciphertext, token_expires_at, revoked_at";

fn read_onboarding(row: &rusqlite::Row<'_>) -> rusqlite::Result<Onboarding> {
    let nonce: Option<Vec<u8>> = row.get(13)?;
    let ciphertext: Option<Vec<u8>> = row.get(14)?;
    let token = match (nonce, ciphertext) {
        (Some(nonce), Some(ciphertext)) => Some(SealedToken {
            nonce,
            ciphertext,
            expires_at: row.get::<_, Option<i64>>(15)?.unwrap_or(0),
        }),
        _ => None,
    };
    Ok(Onboarding {
        id: row.get(0)?,
        record: OnboardingRecord {
            created_at: row.get(1)?,
            flow: stored(row, 2, Flow::parse, "flow")?,
            // An outcome or change kind a later version wrote reads as unknown, not an error.
            outcome: Outcome::parse(&row.get::<_, String>(3)?).unwrap_or(Outcome::Unknown),
            event: row.get(4)?,
            granted: split_ids(&row.get::<_, String>(5)?),
            reported_waba_id: row.get(6)?,
            phone_number_id: row.get(7)?,
            business_id: row.get(8)?,
            current_step: row.get(9)?,
            error_message: row.get(10)?,
            error_id: row.get(11)?,
            session_id: row.get(12)?,
            token,
            follow_ups: Vec::new(),
            revoked_at: row.get(16)?,
        },
    })
}

fn attach_follow_ups(conn: &Connection, list: &mut [Onboarding]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT waba_id, reason, message, action FROM follow_ups WHERE onboarding_id = ?1 \
         ORDER BY rowid",
    )?;
    for o in list {
        o.record.follow_ups = stmt
            .query_map([o.id], |r| {
                Ok(FollowUp {
                    waba_id: r.get(0)?,
                    reason: stored(r, 1, FollowUpReason::parse, "follow-up reason")?,
                    message: r.get(2)?,
                    action: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

const CHANGE_COLUMNS: &str = "seq, dedupe, received_at, field, kind, waba_id, value, raw";

fn read_change(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredChange> {
    let dedupe: Vec<u8> = r.get(1)?;
    Ok(StoredChange {
        seq: r.get(0)?,
        received_at: r.get(2)?,
        change: StatusChange {
            dedupe: dedupe.try_into().unwrap_or([0; 32]),
            field: r.get(3)?,
            kind: ChangeKind::parse(&r.get::<_, String>(4)?).unwrap_or(ChangeKind::Unknown),
            waba_id: r.get(5)?,
            value: r.get(6)?,
            raw: r.get(7)?,
        },
    })
}

/// Marks the onboardings that were granted `waba` as revoked at `now` and forgets their
/// business tokens, which Meta no longer honours: the business removed the partner's app or
/// stopped sharing the WABA.
fn revoke(tx: &rusqlite::Transaction<'_>, waba: &str, now: i64) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE onboardings SET revoked_at = ?2, token_nonce = NULL, token_ciphertext = NULL, \
         token_expires_at = NULL \
         WHERE revoked_at IS NULL AND (',' || granted || ',') LIKE ('%,' || ?1 || ',%')",
        params![waba, now],
    )
}

impl Store for SqliteStore {
    fn record_changes(
        &self,
        changes: Vec<StatusChange>,
        now: i64,
    ) -> StoreFuture<'_, Vec<StoredChange>> {
        self.run(move |c| {
            let tx = c.transaction()?;
            let mut stored = Vec::new();
            for change in changes {
                let n = tx.execute(
                    "INSERT OR IGNORE INTO status_events \
                     (dedupe, received_at, field, kind, waba_id, value, raw) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        &change.dedupe[..],
                        now,
                        change.field,
                        change.kind.as_str(),
                        change.waba_id,
                        change.value,
                        change.raw
                    ],
                )?;
                if n == 0 {
                    continue;
                }
                let seq = tx.last_insert_rowid();
                if let Some(waba) = &change.waba_id {
                    match change.kind {
                        ChangeKind::PartnerAdded => {
                            let added = tx.execute(
                                "INSERT OR IGNORE INTO shared_wabas (waba_id, since) VALUES (?1, ?2)",
                                params![waba, now],
                            )?;
                            if added == 1 {
                                share_event(&tx, waba, ShareKind::Shared, now)?;
                            }
                        }
                        ChangeKind::PartnerRemoved => {
                            let removed = tx
                                .execute("DELETE FROM shared_wabas WHERE waba_id = ?1", [waba])?;
                            if removed == 1 {
                                share_event(&tx, waba, ShareKind::Unshared, now)?;
                            }
                            revoke(&tx, waba, now)?;
                        }
                        ChangeKind::PartnerAppUninstalled => {
                            revoke(&tx, waba, now)?;
                        }
                        _ => {}
                    }
                }
                stored.push(StoredChange {
                    seq,
                    received_at: now,
                    change,
                });
            }
            tx.commit()?;
            Ok(stored)
        })
    }

    fn changes_of(&self, wabas: Vec<String>, limit: u32) -> StoreFuture<'_, Vec<StoredChange>> {
        self.run(move |c| {
            let mut out = Vec::new();
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {CHANGE_COLUMNS} FROM status_events WHERE waba_id = ?1 \
                 ORDER BY seq DESC LIMIT ?2"
            ))?;
            for w in &wabas {
                for r in stmt.query_map(params![w, limit], read_change)? {
                    out.push(r?);
                }
            }
            out.sort_by_key(|e| e.seq);
            let skip = out.len().saturating_sub(limit as usize);
            Ok(out.split_off(skip))
        })
    }

    fn changes(&self, after: i64, limit: u32) -> StoreFuture<'_, Vec<StoredChange>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {CHANGE_COLUMNS} FROM status_events WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let list = stmt
                .query_map(params![after, limit], read_change)?
                .collect::<Result<_, _>>()?;
            Ok(list)
        })
    }

    fn claim_code(&self, code_hash: [u8; 32], now: i64) -> StoreFuture<'_, bool> {
        self.run(move |c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO used_codes (code_hash, used_at) VALUES (?1, ?2)",
                params![&code_hash[..], now],
            )?;
            Ok(n == 1)
        })
    }

    fn release_code(&self, code_hash: [u8; 32]) -> StoreFuture<'_, ()> {
        self.run(move |c| {
            c.execute(
                "DELETE FROM used_codes WHERE code_hash = ?1",
                params![&code_hash[..]],
            )?;
            Ok(())
        })
    }

    fn insert_onboarding(
        &self,
        r: OnboardingRecord,
        session: Option<NewSession>,
    ) -> StoreFuture<'_, i64> {
        self.run(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO onboardings (created_at, flow, outcome, event, granted, \
                 reported_waba_id, phone_number_id, business_id, current_step, error_message, \
                 error_id, session_id, token_nonce, token_ciphertext, token_expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    r.created_at,
                    r.flow.as_str(),
                    r.outcome.as_str(),
                    r.event,
                    join_ids(&r.granted),
                    r.reported_waba_id,
                    r.phone_number_id,
                    r.business_id,
                    r.current_step,
                    r.error_message,
                    r.error_id,
                    r.session_id,
                    r.token.as_ref().map(|t| t.nonce.clone()),
                    r.token.as_ref().map(|t| t.ciphertext.clone()),
                    r.token.as_ref().map(|t| t.expires_at),
                ],
            )?;
            let id = tx.last_insert_rowid();
            for f in &r.follow_ups {
                tx.execute(
                    "INSERT INTO follow_ups (onboarding_id, waba_id, reason, message, action) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, f.waba_id, f.reason.as_str(), f.message, f.action],
                )?;
            }
            if let Some(s) = session {
                tx.execute(
                    "INSERT INTO sessions (credential_hash, onboarding_id, expires_at) \
                     VALUES (?1, ?2, ?3)",
                    params![&s.hash[..], id, s.expires_at],
                )?;
            }
            tx.commit()?;
            Ok(id)
        })
    }

    fn session(&self, hash: [u8; 32], now: i64) -> StoreFuture<'_, Option<SessionGrant>> {
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT s.onboarding_id, o.granted, s.expires_at FROM sessions s \
                 JOIN onboardings o ON o.id = s.onboarding_id \
                 WHERE s.credential_hash = ?1 AND s.expires_at > ?2",
                params![&hash[..], now],
                |r| {
                    Ok(SessionGrant {
                        onboarding_id: r.get(0)?,
                        wabas: split_ids(&r.get::<_, String>(1)?),
                        expires_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
        })
    }

    fn onboardings(&self, before: Option<i64>, limit: u32) -> StoreFuture<'_, Vec<Onboarding>> {
        self.run(move |c| {
            onboardings_where(
                c,
                "id < ?1 ORDER BY id DESC LIMIT ?2",
                params![before.unwrap_or(i64::MAX), limit],
            )
        })
    }

    fn onboarding(&self, id: i64) -> StoreFuture<'_, Option<Onboarding>> {
        self.run(move |c| Ok(onboardings_where(c, "id = ?1", params![id])?.pop()))
    }

    fn follow_ups(&self, limit: u32) -> StoreFuture<'_, Vec<Onboarding>> {
        self.run(move |c| {
            onboardings_where(
                c,
                "id IN (SELECT onboarding_id FROM follow_ups) ORDER BY id DESC LIMIT ?1",
                params![limit],
            )
        })
    }

    fn apply_share_set(&self, current: BTreeSet<String>, now: i64) -> StoreFuture<'_, ShareDiff> {
        self.run(move |c| {
            let tx = c.transaction()?;
            let baseline = tx
                .query_row(
                    "SELECT value FROM tracker_state WHERE key = 'baseline'",
                    [],
                    |r| r.get::<_, String>(0),
                )
                .optional()?
                .is_none();
            let stored: BTreeSet<String> = {
                let mut stmt = tx.prepare("SELECT waba_id FROM shared_wabas")?;
                stmt.query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            let shared: Vec<String> = current.difference(&stored).cloned().collect();
            let unshared: Vec<String> = stored.difference(&current).cloned().collect();
            for id in &shared {
                tx.execute(
                    "INSERT INTO shared_wabas (waba_id, since) VALUES (?1, ?2)",
                    params![id, now],
                )?;
                if !baseline {
                    share_event(&tx, id, ShareKind::Shared, now)?;
                }
            }
            for id in &unshared {
                tx.execute("DELETE FROM shared_wabas WHERE waba_id = ?1", [id])?;
                share_event(&tx, id, ShareKind::Unshared, now)?;
            }
            tx.execute(
                "INSERT INTO tracker_state (key, value) VALUES ('baseline', ?1) \
                 ON CONFLICT(key) DO NOTHING",
                [now.to_string()],
            )?;
            tx.execute(
                "INSERT INTO tracker_state (key, value) VALUES ('last_pass', ?1) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [now.to_string()],
            )?;
            tx.commit()?;
            Ok(ShareDiff {
                shared: if baseline { Vec::new() } else { shared },
                unshared,
                baseline,
            })
        })
    }

    fn share_events(&self, after: i64, limit: u32) -> StoreFuture<'_, Vec<ShareEvent>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, waba_id, kind, detected_at FROM share_events WHERE seq > ?1 \
                 ORDER BY seq LIMIT ?2",
            )?;
            let list = stmt
                .query_map(params![after, limit], |r| {
                    Ok(ShareEvent {
                        seq: r.get(0)?,
                        waba_id: r.get(1)?,
                        kind: stored(r, 2, ShareKind::parse, "share kind")?,
                        detected_at: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(list)
        })
    }

    fn prune_codes(&self, before: i64) -> StoreFuture<'_, ()> {
        self.run(move |c| {
            c.execute("DELETE FROM used_codes WHERE used_at < ?1", [before])?;
            Ok(())
        })
    }
}

/// Records a tracker event.
fn share_event(
    tx: &rusqlite::Transaction<'_>,
    waba: &str,
    kind: ShareKind,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO share_events (waba_id, kind, detected_at) VALUES (?1, ?2, ?3)",
        params![waba, kind.as_str(), now],
    )?;
    Ok(())
}

/// The records matching `filter` (a `WHERE` clause and its order), with their follow-ups.
fn onboardings_where(
    c: &Connection,
    filter: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Onboarding>, StoreError> {
    let mut list = {
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {ONBOARDING_COLUMNS} FROM onboardings WHERE {filter}"
        ))?;
        stmt.query_map(params, read_onboarding)?
            .collect::<Result<Vec<_>, _>>()?
    };
    attach_follow_ups(c, &mut list)?;
    Ok(list)
}
