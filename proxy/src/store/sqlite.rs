//! The SQLite store: one connection behind a mutex (SQLite serialises writers), each call run
//! on tokio's blocking threads, versioned migrations at start-up.

use super::{
    ChangeKind, Discovery, Flow, FollowUp, FollowUpReason, GraphWrite, Inserted, NewSession,
    NewStep, Offboard, Onboarding, OnboardingRecord, Outcome, Retry, SealedPin, SealedToken,
    SessionGrant, ShareDiff, ShareEvent, ShareKind, StatusChange, Step, StepKind, StepOutcome,
    StepState, Store, StoreError, StoreFuture, StoredChange, TokenKind,
};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
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
    // 4: the partner's post-signup pipeline: steps, PINs, register attempts, Graph writes.
    "ALTER TABLE onboardings ADD COLUMN offboarded_at INTEGER;
    CREATE TABLE pipeline_steps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        onboarding_id INTEGER NOT NULL REFERENCES onboardings(id),
        waba_id TEXT NOT NULL,
        phone_id TEXT,
        phone_label TEXT,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        token TEXT NOT NULL,
        actor TEXT,
        message TEXT,
        error_code INTEGER,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at INTEGER NOT NULL,
        lease_until INTEGER,
        updated_at INTEGER NOT NULL,
        version INTEGER NOT NULL DEFAULT 0,
        by_admin INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX pipeline_steps_due ON pipeline_steps(state, next_at);
    CREATE INDEX pipeline_steps_by_onboarding ON pipeline_steps(onboarding_id, id);
    CREATE INDEX pipeline_steps_by_phone ON pipeline_steps(phone_id);
    CREATE TABLE phone_pins (
        phone_id TEXT PRIMARY KEY,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        set_by_partner INTEGER NOT NULL
    );
    CREATE TABLE register_attempts (
        phone_id TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX register_attempts_by_phone ON register_attempts(phone_id, at);
    CREATE TABLE graph_writes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        step_id INTEGER NOT NULL,
        onboarding_id INTEGER NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        token TEXT NOT NULL,
        status INTEGER NOT NULL,
        answer TEXT NOT NULL
    );",
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
     token_nonce, token_ciphertext, token_expires_at, revoked_at, offboarded_at";

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
        steps: Vec::new(),
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
            offboarded_at: row.get(17)?,
            steps: Vec::new(),
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
/// Their unsettled steps stop, each announced in `out`.
fn revoke(
    tx: &rusqlite::Transaction<'_>,
    waba: &str,
    why: &str,
    now: i64,
    out: &mut Vec<StoredChange>,
) -> Result<(), StoreError> {
    let ids: Vec<i64> = {
        let mut stmt = tx.prepare(
            "SELECT id FROM onboardings WHERE revoked_at IS NULL \
             AND (',' || granted || ',') LIKE ('%,' || ?1 || ',%')",
        )?;
        stmt.query_map([waba], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    for id in ids {
        tx.execute(
            "UPDATE onboardings SET revoked_at = ?2, token_nonce = NULL, token_ciphertext = NULL, \
             token_expires_at = NULL WHERE id = ?1",
            params![id, now],
        )?;
        let message = format!("Stopped: Meta said the business ended the partnership ({why}).");
        stop_steps(tx, "onboarding_id = ?1", params![id], &message, now, out)?;
    }
    Ok(())
}

/// Stops the unsettled steps matching `filter` (skipped with `message`), announcing each.
fn stop_steps(
    tx: &rusqlite::Transaction<'_>,
    filter: &str,
    params: impl rusqlite::Params,
    message: &str,
    now: i64,
    out: &mut Vec<StoredChange>,
) -> Result<(), StoreError> {
    let steps = steps_where(
        tx,
        &format!("({filter}) AND state IN ('pending', 'running', 'failed') ORDER BY id"),
        params,
    )?;
    for mut step in steps {
        step.state = StepState::Skipped;
        step.actor = None;
        step.message = Some(message.to_owned());
        step.updated_at = now;
        step.version += 1;
        tx.execute(
            "UPDATE pipeline_steps SET state = 'skipped', actor = NULL, message = ?2, \
             updated_at = ?3, version = ?4 WHERE id = ?1",
            params![step.id, message, now, step.version],
        )?;
        out.push(step_change(tx, &step, now)?);
    }
    Ok(())
}

const STEP_COLUMNS: &str = "id, onboarding_id, waba_id, phone_id, phone_label, kind, state, token, \
     actor, message, error_code, error, attempts, next_at, updated_at, version, by_admin, failures";

fn read_step(r: &rusqlite::Row<'_>) -> rusqlite::Result<Step> {
    Ok(Step {
        id: r.get(0)?,
        onboarding_id: r.get(1)?,
        waba_id: r.get(2)?,
        phone_id: r.get(3)?,
        phone_label: r.get(4)?,
        kind: stored(r, 5, StepKind::parse, "step kind")?,
        state: stored(r, 6, StepState::parse, "step state")?,
        token: stored(r, 7, TokenKind::parse, "token kind")?,
        actor: r.get(8)?,
        message: r.get(9)?,
        error_code: r.get(10)?,
        error: r.get(11)?,
        attempts: r.get(12)?,
        next_at: r.get(13)?,
        updated_at: r.get(14)?,
        version: r.get(15)?,
        by_admin: r.get(16)?,
        failures: r.get(17)?,
    })
}

/// The steps matching `filter` (a `WHERE` clause and its order).
fn steps_where(
    c: &Connection,
    filter: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Step>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {STEP_COLUMNS} FROM pipeline_steps WHERE {filter}"
    ))?;
    let list = stmt
        .query_map(params, read_step)?
        .collect::<Result<_, _>>()?;
    Ok(list)
}

/// Stores a status change unless one with its dedupe hash is stored; how many rows (0 or 1).
fn insert_change(c: &Connection, change: &StatusChange, now: i64) -> rusqlite::Result<usize> {
    c.execute(
        "INSERT OR IGNORE INTO status_events (dedupe, received_at, field, kind, waba_id, value, raw) \
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
    )
}

/// Records a step's new state as a status change (field `pipeline`), so open streams and
/// resuming ones see every transition once, in order.
fn step_change(
    tx: &rusqlite::Transaction<'_>,
    step: &Step,
    now: i64,
) -> Result<StoredChange, StoreError> {
    let dedupe: [u8; 32] =
        Sha256::digest(format!("pipeline:{}:{}", step.id, step.version).as_bytes()).into();
    let change = StatusChange {
        dedupe,
        field: "pipeline".into(),
        kind: ChangeKind::PipelineStep,
        waba_id: Some(step.waba_id.clone()),
        value: Some(format!("{}:{}", step.kind.as_str(), step.state.as_str())),
        raw: step.to_json().to_string(),
    };
    insert_change(tx, &change, now)?;
    Ok(StoredChange {
        seq: tx.last_insert_rowid(),
        received_at: now,
        change,
    })
}

/// Inserts `steps` for `onboarding_id`, announcing each.
fn insert_steps(
    tx: &rusqlite::Transaction<'_>,
    onboarding_id: i64,
    steps: &[NewStep],
    now: i64,
    out: &mut Vec<StoredChange>,
) -> Result<(), StoreError> {
    for s in steps {
        tx.execute(
            "INSERT INTO pipeline_steps (onboarding_id, waba_id, phone_id, phone_label, kind, \
             state, token, message, next_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                onboarding_id,
                s.waba_id,
                s.phone_id,
                s.phone_label,
                s.kind.as_str(),
                s.state.as_str(),
                s.token.as_str(),
                s.message,
                s.not_before.max(now),
                now
            ],
        )?;
        let id = tx.last_insert_rowid();
        let step = steps_where(tx, "id = ?1", [id])?
            .pop()
            .ok_or(StoreError::Corrupt("step"))?;
        out.push(step_change(tx, &step, now)?);
    }
    Ok(())
}

/// A `discovered` record for `waba` with its steps, unless a record that is not revoked
/// already holds the WABA (a signup's, or an earlier discovery's).
fn discover(
    tx: &rusqlite::Transaction<'_>,
    waba: &str,
    discovery: &Discovery,
    now: i64,
    out: &mut Vec<StoredChange>,
) -> Result<(), StoreError> {
    let held: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM onboardings WHERE revoked_at IS NULL \
         AND outcome != 'code_rejected' \
         AND (',' || granted || ',') LIKE ('%,' || ?1 || ',%') \
         AND (flow != 'token' OR id IN (SELECT onboarding_id FROM pipeline_steps)))",
        [waba],
        |r| r.get(0),
    )?;
    if !held {
        let id = insert_record(tx, &discovery.record(waba, now), None, out)?;
        tracing::info!(
            onboarding = id,
            waba,
            "a shared WABA found without a signup"
        );
    }
    Ok(())
}

/// Inserts a record and its follow-ups, steps and session; its id.
fn insert_record(
    tx: &rusqlite::Transaction<'_>,
    r: &OnboardingRecord,
    session: Option<NewSession>,
    out: &mut Vec<StoredChange>,
) -> Result<i64, StoreError> {
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
    insert_steps(tx, id, &r.steps, r.created_at, out)?;
    Ok(id)
}

fn insert_write(c: &Connection, w: &GraphWrite) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO graph_writes (at, step_id, onboarding_id, method, path, token, status, \
         answer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            w.at,
            w.step_id,
            w.onboarding_id,
            w.method,
            w.path,
            w.token.as_str(),
            w.status,
            w.answer
        ],
    )?;
    Ok(())
}

fn read_write(r: &rusqlite::Row<'_>) -> rusqlite::Result<GraphWrite> {
    Ok(GraphWrite {
        id: r.get(0)?,
        at: r.get(1)?,
        step_id: r.get(2)?,
        onboarding_id: r.get(3)?,
        method: r.get(4)?,
        path: r.get(5)?,
        token: stored(r, 6, TokenKind::parse, "token kind")?,
        status: r.get(7)?,
        answer: r.get(8)?,
    })
}

fn read_pin(r: &rusqlite::Row<'_>) -> rusqlite::Result<SealedPin> {
    Ok(SealedPin {
        phone_id: r.get(0)?,
        sealed: SealedToken {
            nonce: r.get(1)?,
            ciphertext: r.get(2)?,
            expires_at: 0,
        },
        set_by_partner: r.get(3)?,
    })
}

impl Store for SqliteStore {
    fn record_changes(
        &self,
        changes: Vec<StatusChange>,
        now: i64,
        discovery: Option<Discovery>,
    ) -> StoreFuture<'_, Vec<StoredChange>> {
        self.run(move |c| {
            let tx = c.transaction()?;
            let mut stored = Vec::new();
            let mut stopped = Vec::new();
            for change in changes {
                if insert_change(&tx, &change, now)? == 0 {
                    // A redelivery: the share is stored, but plan it if nothing holds it.
                    if let (ChangeKind::PartnerAdded, Some(waba), Some(d)) =
                        (change.kind, &change.waba_id, &discovery)
                    {
                        discover(&tx, waba, d, now, &mut stopped)?;
                        stored.append(&mut stopped);
                    }
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
                            if let Some(d) = &discovery {
                                discover(&tx, waba, d, now, &mut stopped)?;
                            }
                        }
                        ChangeKind::PartnerRemoved => {
                            let removed = tx
                                .execute("DELETE FROM shared_wabas WHERE waba_id = ?1", [waba])?;
                            if removed == 1 {
                                share_event(&tx, waba, ShareKind::Unshared, now)?;
                            }
                            revoke(&tx, waba, "PARTNER_REMOVED", now, &mut stopped)?;
                        }
                        ChangeKind::PartnerAppUninstalled => {
                            revoke(&tx, waba, "PARTNER_APP_UNINSTALLED", now, &mut stopped)?;
                        }
                        _ => {}
                    }
                }
                stored.push(StoredChange {
                    seq,
                    received_at: now,
                    change,
                });
                stored.append(&mut stopped);
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
                 AND kind != 'pipeline_step' ORDER BY seq DESC LIMIT ?2"
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
    ) -> StoreFuture<'_, Inserted> {
        self.run(move |c| {
            let tx = c.transaction()?;
            let mut changes = Vec::new();
            let id = insert_record(&tx, &r, session, &mut changes)?;
            if !r.steps.is_empty() {
                for waba in &r.granted {
                    stop_steps(
                        &tx,
                        "waba_id = ?1 AND state = 'pending' AND onboarding_id IN \
                         (SELECT id FROM onboardings WHERE flow = 'discovered')",
                        params![waba],
                        &format!("Handed over to onboarding {id}, the business's own signup."),
                        r.created_at,
                        &mut changes,
                    )?;
                }
            }
            tx.commit()?;
            Ok(Inserted { id, changes })
        })
    }

    fn claim_step(&self, now: i64, lease_secs: i64) -> StoreFuture<'_, Option<Step>> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let found = steps_where(
                &tx,
                "((state IN ('pending', 'failed') AND next_at <= ?1) \
                   OR (state = 'running' AND lease_until <= ?1)) \
                 AND onboarding_id IN (SELECT id FROM onboardings WHERE revoked_at IS NULL \
                      AND (offboarded_at IS NULL OR pipeline_steps.kind IN \
                      ('unsubscribe', 'deregister'))) \
                 AND (phone_id IS NULL OR NOT EXISTS (SELECT 1 FROM pipeline_steps o \
                      WHERE o.phone_id = pipeline_steps.phone_id AND o.id != pipeline_steps.id \
                      AND o.lease_until > ?1)) \
                 AND NOT EXISTS (SELECT 1 FROM pipeline_steps k \
                      WHERE k.waba_id = pipeline_steps.waba_id AND k.kind = pipeline_steps.kind \
                      AND k.id != pipeline_steps.id AND k.lease_until > ?1) \
                 AND NOT EXISTS (SELECT 1 FROM pipeline_steps e \
                      WHERE e.onboarding_id = pipeline_steps.onboarding_id \
                      AND e.waba_id = pipeline_steps.waba_id AND e.id < pipeline_steps.id \
                      AND (e.state IN ('pending', 'running') OR (e.state = 'failed' \
                      AND e.kind = 'assign_system_user' \
                      AND pipeline_steps.kind = 'share_credit_line'))) \
                 ORDER BY next_at, id LIMIT 1",
                [now],
            )?
            .pop();
            let Some(mut step) = found else {
                return Ok(None);
            };
            // The row is running now; the struct keeps the state people last saw, which
            // `settle_step` compares the outcome with.
            step.attempts += 1;
            step.version += 1;
            step.updated_at = now;
            tx.execute(
                "UPDATE pipeline_steps SET state = 'running', attempts = ?2, version = ?3, \
                 lease_until = ?4, updated_at = ?5 WHERE id = ?1",
                params![step.id, step.attempts, step.version, now + lease_secs, now],
            )?;
            tx.commit()?;
            Ok(Some(step))
        })
    }

    fn take_register_attempt(
        &self,
        phone_id: String,
        now: i64,
        window_secs: i64,
        limit: u32,
    ) -> StoreFuture<'_, bool> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let made: u32 = tx.query_row(
                "SELECT COUNT(*) FROM register_attempts WHERE phone_id = ?1 AND at > ?2",
                params![phone_id, now - window_secs],
                |r| r.get(0),
            )?;
            if made >= limit {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO register_attempts (phone_id, at) VALUES (?1, ?2)",
                params![phone_id, now],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn fence(&self, step: Step, now: i64, lease_secs: i64) -> StoreFuture<'_, bool> {
        self.run(move |c| {
            let n = c.execute(
                "UPDATE pipeline_steps SET lease_until = ?3 \
                 WHERE id = ?1 AND version = ?2 AND state = 'running' AND lease_until > ?4",
                params![step.id, step.version, now + lease_secs, now],
            )?;
            Ok(n == 1)
        })
    }

    fn settle_step(
        &self,
        step: Step,
        outcome: StepOutcome,
        write: Option<GraphWrite>,
        found: Vec<NewStep>,
        now: i64,
    ) -> StoreFuture<'_, Vec<StoredChange>> {
        self.run(move |c| {
            let tx = c.transaction()?;
            // The write is audited even when the step was stopped meanwhile.
            if let Some(w) = &write {
                insert_write(&tx, w)?;
            }
            let version = step.version + 1;
            let seen = (
                step.state,
                step.actor.clone(),
                step.message.clone(),
                step.error_code,
                step.token,
            );
            let n = tx.execute(
                "UPDATE pipeline_steps SET state = ?3, actor = ?4, message = ?5, \
                 error_code = ?6, error = ?7, next_at = ?8, lease_until = NULL, \
                 updated_at = ?9, version = ?10, token = ?11, by_admin = 0, \
                 failures = CASE WHEN ?12 THEN failures + 1 ELSE 0 END \
                 WHERE id = ?1 AND version = ?2 AND state = 'running'",
                params![
                    step.id,
                    step.version,
                    outcome.state.as_str(),
                    outcome.actor,
                    outcome.message,
                    outcome.error_code,
                    outcome.error,
                    outcome.next_at,
                    now,
                    version,
                    outcome.token.as_str(),
                    outcome.transient
                ],
            )?;
            let mut changes = Vec::new();
            if n == 1 {
                insert_steps(&tx, step.onboarding_id, &found, now, &mut changes)?;
                let settled = Step {
                    state: outcome.state,
                    actor: outcome.actor,
                    message: outcome.message,
                    error_code: outcome.error_code,
                    error: outcome.error,
                    next_at: outcome.next_at,
                    token: outcome.token,
                    updated_at: now,
                    version,
                    by_admin: false,
                    failures: if outcome.transient {
                        step.failures + 1
                    } else {
                        0
                    },
                    ..step
                };
                // A wait that ends where it began (a number still not verified) tells
                // nobody anything new: no change, so the stream does not grow with it.
                let now_seen = (
                    settled.state,
                    settled.actor.clone(),
                    settled.message.clone(),
                    settled.error_code,
                    settled.token,
                );
                if now_seen != seen {
                    changes.push(step_change(&tx, &settled, now)?);
                }
            }
            tx.commit()?;
            Ok(changes)
        })
    }

    fn steps_of(&self, onboarding_id: i64) -> StoreFuture<'_, Vec<Step>> {
        self.run(move |c| steps_where(c, "onboarding_id = ?1 ORDER BY id", [onboarding_id]))
    }

    fn retry_step(&self, step_id: i64, now: i64) -> StoreFuture<'_, Retry> {
        self.run(move |c| {
            let tx = c.transaction()?;
            let Some(mut step) = steps_where(&tx, "id = ?1", [step_id])?.pop() else {
                return Ok(Retry::NotFound);
            };
            let ended: bool = tx.query_row(
                "SELECT revoked_at IS NOT NULL OR (offboarded_at IS NOT NULL \
                 AND ?2 NOT IN ('unsubscribe', 'deregister')) FROM onboardings WHERE id = ?1",
                params![step.onboarding_id, step.kind.as_str()],
                |r| r.get(0),
            )?;
            if ended {
                return Ok(Retry::Revoked);
            }
            if step.state != StepState::Failed {
                return Ok(Retry::NotRetryable(step.state));
            }
            step.state = StepState::Pending;
            step.actor = None;
            step.next_at = now;
            step.updated_at = now;
            step.version += 1;
            step.by_admin = true;
            step.failures = 0;
            tx.execute(
                "UPDATE pipeline_steps SET state = 'pending', actor = NULL, next_at = ?2, \
                 updated_at = ?2, version = ?3, by_admin = 1, failures = 0 WHERE id = ?1",
                params![step.id, now, step.version],
            )?;
            let change = step_change(&tx, &step, now)?;
            tx.commit()?;
            Ok(Retry::Retried(change))
        })
    }

    fn offboard(&self, onboarding_id: i64, now: i64) -> StoreFuture<'_, Offboard> {
        self.run(move |c| {
            let tx = c.transaction()?;
            let Some(found) = onboardings_where(&tx, "id = ?1", [onboarding_id])?.pop() else {
                return Ok(Offboard::NotFound);
            };
            if found.record.revoked_at.is_some() {
                return Ok(Offboard::Revoked);
            }
            tx.execute(
                "UPDATE onboardings SET offboarded_at = ?2 WHERE id = ?1 AND offboarded_at IS NULL",
                params![onboarding_id, now],
            )?;
            let mut changes = Vec::new();
            stop_steps(
                &tx,
                "onboarding_id = ?1 AND kind NOT IN ('unsubscribe', 'deregister')",
                [onboarding_id],
                "Stopped: the partner offboarded the business.",
                now,
                &mut changes,
            )?;
            let token = if found.record.token.is_some() {
                TokenKind::Business
            } else {
                TokenKind::SystemUser
            };
            // Every number the pipeline registered or may have (a register that was running,
            // or failed after a call that went through): deregistering one that is not
            // registered is done at once (Meta's 133010). Numbers registered before the
            // partner came (skipped as CONNECTED by the plan) stay as they are.
            let registered = steps_where(
                &tx,
                "onboarding_id = ?1 AND kind = 'register' AND (state IN ('done', 'failed') \
                 OR (state = 'skipped' AND attempts > 0)) ORDER BY id",
                [onboarding_id],
            )?;
            let already: Vec<(StepKind, String, Option<String>)> = steps_where(
                &tx,
                "onboarding_id = ?1 AND kind IN ('unsubscribe', 'deregister') \
                    AND state != 'skipped'",
                [onboarding_id],
            )?
            .into_iter()
            .map(|s| (s.kind, s.waba_id, s.phone_id))
            .collect();
            let mut steps: Vec<NewStep> = found
                .record
                .granted
                .iter()
                .map(|waba| NewStep {
                    kind: StepKind::Unsubscribe,
                    waba_id: waba.clone(),
                    phone_id: None,
                    phone_label: None,
                    state: StepState::Pending,
                    token,
                    message: None,
                    not_before: now,
                })
                .collect();
            steps.extend(registered.into_iter().map(|r| NewStep {
                kind: StepKind::Deregister,
                waba_id: r.waba_id,
                phone_id: r.phone_id,
                phone_label: r.phone_label,
                state: StepState::Pending,
                token,
                message: None,
                not_before: now,
            }));
            steps.retain(|s| !already.contains(&(s.kind, s.waba_id.clone(), s.phone_id.clone())));
            insert_steps(&tx, onboarding_id, &steps, now, &mut changes)?;
            tx.commit()?;
            Ok(Offboard::Started(changes))
        })
    }

    fn record_write(&self, write: GraphWrite) -> StoreFuture<'_, ()> {
        self.run(move |c| insert_write(c, &write))
    }

    fn writes(&self, after: i64, limit: u32) -> StoreFuture<'_, Vec<GraphWrite>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, at, step_id, onboarding_id, method, path, token, status, answer \
                 FROM graph_writes WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let list = stmt
                .query_map(params![after, limit], read_write)?
                .collect::<Result<_, _>>()?;
            Ok(list)
        })
    }

    fn put_pin(&self, pin: SealedPin) -> StoreFuture<'_, ()> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO phone_pins (phone_id, nonce, ciphertext, set_by_partner) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT(phone_id) DO UPDATE SET \
                 nonce = excluded.nonce, ciphertext = excluded.ciphertext, \
                 set_by_partner = excluded.set_by_partner",
                params![
                    pin.phone_id,
                    pin.sealed.nonce,
                    pin.sealed.ciphertext,
                    pin.set_by_partner
                ],
            )?;
            Ok(())
        })
    }

    fn keep_pin(&self, pin: SealedPin) -> StoreFuture<'_, SealedPin> {
        self.run(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO phone_pins (phone_id, nonce, ciphertext, set_by_partner) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    pin.phone_id,
                    pin.sealed.nonce,
                    pin.sealed.ciphertext,
                    pin.set_by_partner
                ],
            )?;
            Ok(c.query_row(
                "SELECT phone_id, nonce, ciphertext, set_by_partner FROM phone_pins \
                 WHERE phone_id = ?1",
                [&pin.phone_id],
                read_pin,
            )?)
        })
    }

    fn pin(&self, phone_id: String) -> StoreFuture<'_, Option<SealedPin>> {
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT phone_id, nonce, ciphertext, set_by_partner FROM phone_pins \
                 WHERE phone_id = ?1",
                [phone_id],
                read_pin,
            )
            .optional()?)
        })
    }

    fn pins_of(&self, onboarding_id: i64) -> StoreFuture<'_, Vec<SealedPin>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT phone_id, nonce, ciphertext, set_by_partner FROM phone_pins \
                 WHERE phone_id IN (SELECT phone_id FROM pipeline_steps \
                 WHERE onboarding_id = ?1 AND phone_id IS NOT NULL) ORDER BY phone_id",
            )?;
            let list = stmt
                .query_map([onboarding_id], read_pin)?
                .collect::<Result<_, _>>()?;
            Ok(list)
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
                "(id IN (SELECT onboarding_id FROM follow_ups) OR id IN (SELECT onboarding_id \
                 FROM pipeline_steps WHERE state = 'failed')) ORDER BY id DESC LIMIT ?1",
                params![limit],
            )
        })
    }

    fn apply_share_set(
        &self,
        current: BTreeSet<String>,
        now: i64,
        discovery: Option<Discovery>,
    ) -> StoreFuture<'_, ShareDiff> {
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
            let mut planned = Vec::new();
            for id in &shared {
                tx.execute(
                    "INSERT INTO shared_wabas (waba_id, since) VALUES (?1, ?2)",
                    params![id, now],
                )?;
                if !baseline {
                    share_event(&tx, id, ShareKind::Shared, now)?;
                    if let Some(d) = &discovery {
                        discover(&tx, id, d, now, &mut planned)?;
                    }
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
                planned,
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
    for o in &mut list {
        o.steps = steps_where(c, "onboarding_id = ?1 ORDER BY id", [o.id])?;
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (SqliteStore, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "waba-store-test-{}-{}.db",
            std::process::id(),
            crate::sealing::random::<8>()
                .map(hex::encode)
                .unwrap_or_default()
        ));
        (SqliteStore::open(&path).unwrap(), path)
    }

    fn step(kind: StepKind, waba: &str, phone: Option<&str>) -> NewStep {
        NewStep {
            kind,
            waba_id: waba.into(),
            phone_id: phone.map(str::to_owned),
            phone_label: None,
            state: StepState::Pending,
            token: TokenKind::Business,
            message: None,
            not_before: 0,
        }
    }

    /// A code-flow record of WABA 9 with one register step (number 10), created at 100.
    async fn insert_register_step(s: &SqliteStore) {
        let mut record = OnboardingRecord::new(Flow::Code, 100);
        record.granted = vec!["9".into()];
        record.steps = vec![step(StepKind::Register, "9", Some("10"))];
        s.insert_onboarding(record, None).await.unwrap();
    }

    fn outcome(state: StepState, message: Option<&str>) -> StepOutcome {
        StepOutcome {
            state,
            actor: None,
            message: message.map(str::to_owned),
            error_code: None,
            error: None,
            next_at: 0,
            token: TokenKind::Business,
            transient: false,
        }
    }

    #[tokio::test]
    async fn a_step_is_held_by_one_runner_in_order_and_settled_once() {
        let (s, path) = store();
        let mut record = OnboardingRecord::new(Flow::Code, 100);
        record.granted = vec!["9".into()];
        record.steps = vec![
            step(StepKind::AssignSystemUser, "9", None),
            step(StepKind::ShareCreditLine, "9", None),
            step(StepKind::Register, "9", Some("10")),
        ];
        let inserted = s.insert_onboarding(record, None).await.unwrap();
        assert_eq!(inserted.changes.len(), 3, "one change per step created");

        // The first step only: the others wait behind it.
        let first = s.claim_step(100, 30).await.unwrap().unwrap();
        assert_eq!(first.kind, StepKind::AssignSystemUser);
        assert!(s.claim_step(100, 30).await.unwrap().is_none());
        // The holder's fence holds and extends the lease; a stale version's does not.
        assert!(s.fence(first.clone(), 120, 30).await.unwrap());
        let stale = Step {
            version: first.version - 1,
            ..first.clone()
        };
        assert!(!s.fence(stale.clone(), 121, 30).await.unwrap());
        // The lease (extended to 150) is not over at 140: nobody else takes the step.
        assert!(s.claim_step(140, 30).await.unwrap().is_none());
        // Its runner dies: after the lease another runner claims it, with a new version.
        let again = s.claim_step(151, 30).await.unwrap().unwrap();
        assert_eq!((again.id, again.attempts), (first.id, 2));
        assert!(
            !s.fence(first.clone(), 152, 30).await.unwrap(),
            "the old runner lost it"
        );
        // The old runner's settle is dropped; the new one's counts once.
        let dropped = s
            .settle_step(first, outcome(StepState::Done, None), None, Vec::new(), 153)
            .await
            .unwrap();
        assert!(dropped.is_empty());
        let kept = s
            .settle_step(
                again.clone(),
                outcome(StepState::Done, None),
                None,
                Vec::new(),
                154,
            )
            .await
            .unwrap();
        assert_eq!(kept.len(), 1);
        assert!(
            s.settle_step(again, outcome(StepState::Done, None), None, Vec::new(), 155)
                .await
                .unwrap()
                .is_empty(),
            "settled once"
        );
        // Next in order.
        let credit = s.claim_step(156, 30).await.unwrap().unwrap();
        assert_eq!(credit.kind, StepKind::ShareCreditLine);
        std::fs::remove_file(&path).ok();
    }

    #[tokio::test]
    async fn a_wait_that_changes_nothing_adds_nothing_to_the_stream() {
        let (s, path) = store();
        insert_register_step(&s).await;
        let waiting = |at| StepOutcome {
            next_at: at,
            ..outcome(StepState::Failed, Some("not verified"))
        };
        let claimed = s.claim_step(100, 30).await.unwrap().unwrap();
        let first = s
            .settle_step(claimed, waiting(200), None, Vec::new(), 101)
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        let claimed = s.claim_step(200, 30).await.unwrap().unwrap();
        let second = s
            .settle_step(claimed, waiting(300), None, Vec::new(), 201)
            .await
            .unwrap();
        assert!(second.is_empty(), "still waiting for the same reason");
        std::fs::remove_file(&path).ok();
    }

    #[tokio::test]
    async fn an_admin_retry_counts_for_one_attempt_and_transient_failures_count_in_a_row() {
        let (s, path) = store();
        insert_register_step(&s).await;
        let transient = |at| StepOutcome {
            transient: true,
            next_at: at,
            ..outcome(StepState::Pending, None)
        };
        let claimed = s.claim_step(100, 30).await.unwrap().unwrap();
        assert_eq!(claimed.failures, 0);
        s.settle_step(claimed, transient(101), None, Vec::new(), 100)
            .await
            .unwrap();
        let claimed = s.claim_step(101, 30).await.unwrap().unwrap();
        assert_eq!(claimed.failures, 1);
        let failed = StepOutcome {
            next_at: i64::MAX,
            ..outcome(StepState::Failed, Some("133005"))
        };
        s.settle_step(claimed, failed, None, Vec::new(), 101)
            .await
            .unwrap();
        let id = s.steps_of(1).await.unwrap()[0].id;
        assert!(matches!(
            s.retry_step(id, 102).await.unwrap(),
            Retry::Retried(_)
        ));
        let retried = s.claim_step(102, 30).await.unwrap().unwrap();
        assert!(retried.by_admin && retried.failures == 0);
        s.settle_step(retried, transient(103), None, Vec::new(), 102)
            .await
            .unwrap();
        let again = s.claim_step(103, 30).await.unwrap().unwrap();
        assert!(!again.by_admin, "the admin's allowance covered one attempt");
        assert_eq!(again.failures, 1);
        std::fs::remove_file(&path).ok();
    }

    #[tokio::test]
    async fn register_attempts_stop_at_the_limit_within_the_window() {
        let (s, path) = store();
        for _ in 0..3 {
            assert!(
                s.take_register_attempt("register:10".into(), 1000, 100, 3)
                    .await
                    .unwrap()
            );
        }
        assert!(
            !s.take_register_attempt("register:10".into(), 1001, 100, 3)
                .await
                .unwrap()
        );
        assert!(
            s.take_register_attempt("deregister:10".into(), 1001, 100, 3)
                .await
                .unwrap(),
            "deregister attempts are counted apart"
        );
        assert!(
            s.take_register_attempt("register:10".into(), 1101, 100, 3)
                .await
                .unwrap(),
            "the window moved on"
        );
        std::fs::remove_file(&path).ok();
    }
}
