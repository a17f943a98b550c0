//! The store's logic in SQL that SQLite and PostgreSQL both run: every [`Store`] call is one
//! function over a [`Conn`], run by a [`Backend`] in one transaction.
//!
//! Statements are written once, with `?1`-style parameters (PostgreSQL's adapter reads them
//! as `$1`), `ON CONFLICT` and `RETURNING` (both databases have them). What differs stays in
//! the backends: connections, migrations, how writers are serialised and how other
//! processes hear of changes.

use super::outbox::{
    self, AttemptResult, Claimed, Delivery, DeliveryAction, Endpoint, EndpointPatch, NewEndpoint,
    RetryPolicy,
};
use super::{
    ChangeKind, Discovery, Flow, FollowUp, FollowUpReason, GraphWrite, Inserted, NewSession,
    NewStep, Offboard, Onboarding, OnboardingRecord, Outcome, Retry, SealedPin, SealedToken,
    SessionGrant, ShareDiff, ShareEvent, ShareKind, Signal, StatusChange, Step, StepKind,
    StepOutcome, StepState, Store, StoreError, StoreFuture, StoredChange, TokenKind,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// A value bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// SQL `NULL`.
    Null,
    /// An integer (PostgreSQL's `BIGINT`).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
    /// A truth value (SQLite keeps it as 0 or 1).
    Bool(bool),
}

macro_rules! from_val {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl From<$t> for Val {
            fn from($v: $t) -> Self {
                $e
            }
        })*
    };
}

from_val! {
    i64 => |v| Val::Int(v),
    u32 => |v| Val::Int(i64::from(v)),
    u16 => |v| Val::Int(i64::from(v)),
    bool => |v| Val::Bool(v),
    String => |v| Val::Text(v),
    &str => |v| Val::Text(v.to_owned()),
    &String => |v| Val::Text(v.clone()),
    Vec<u8> => |v| Val::Blob(v),
    &[u8] => |v| Val::Blob(v.to_vec()),
}

impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Null, Into::into)
    }
}

impl<T: Clone + Into<Val>> From<&Option<T>> for Val {
    fn from(v: &Option<T>) -> Self {
        v.clone().map_or(Val::Null, Into::into)
    }
}

/// A statement's arguments: `args![a, b]`.
macro_rules! args {
    ($($v:expr),* $(,)?) => {
        [$($crate::store::sql::Val::from($v)),*]
    };
}

/// What a column holds, read into a Rust type.
pub trait FromVal: Sized {
    /// The value, or `None` when it is of another type.
    fn from_val(v: &Val) -> Option<Self>;
}

impl FromVal for i64 {
    fn from_val(v: &Val) -> Option<Self> {
        match v {
            Val::Int(i) => Some(*i),
            Val::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }
}

impl FromVal for u32 {
    fn from_val(v: &Val) -> Option<Self> {
        i64::from_val(v).and_then(|i| u32::try_from(i).ok())
    }
}

impl FromVal for u16 {
    fn from_val(v: &Val) -> Option<Self> {
        i64::from_val(v).and_then(|i| u16::try_from(i).ok())
    }
}

impl FromVal for bool {
    fn from_val(v: &Val) -> Option<Self> {
        match v {
            Val::Bool(b) => Some(*b),
            Val::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
}

impl FromVal for String {
    fn from_val(v: &Val) -> Option<Self> {
        match v {
            Val::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromVal for Vec<u8> {
    fn from_val(v: &Val) -> Option<Self> {
        match v {
            Val::Blob(b) => Some(b.clone()),
            _ => None,
        }
    }
}

impl<T: FromVal> FromVal for Option<T> {
    fn from_val(v: &Val) -> Option<Self> {
        match v {
            Val::Null => Some(None),
            v => T::from_val(v).map(Some),
        }
    }
}

/// One row of a result.
#[derive(Debug, Clone, Default)]
pub struct Row(pub Vec<Val>);

impl Row {
    /// Column `idx` as `T`.
    pub fn get<T: FromVal>(&self, idx: usize) -> Result<T, StoreError> {
        self.0
            .get(idx)
            .and_then(T::from_val)
            .ok_or(StoreError::Corrupt("column"))
    }

    /// Column `idx`, a stored name read with `parse`; an unknown one is corrupt.
    pub(super) fn name<T>(
        &self,
        idx: usize,
        parse: fn(&str) -> Option<T>,
        what: &'static str,
    ) -> Result<T, StoreError> {
        parse(&self.get::<String>(idx)?).ok_or(StoreError::Corrupt(what))
    }
}

/// A connection inside a transaction.
pub trait Conn {
    /// Runs a statement; how many rows it changed.
    fn execute(&mut self, sql: &str, args: &[Val]) -> Result<u64, StoreError>;
    /// Runs a query; its rows.
    fn query(&mut self, sql: &str, args: &[Val]) -> Result<Vec<Row>, StoreError>;

    /// The first row, if any.
    fn query_opt(&mut self, sql: &str, args: &[Val]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, args)?.into_iter().next())
    }

    /// The first row; none is corrupt (the query always has one).
    fn query_one(&mut self, sql: &str, args: &[Val]) -> Result<Row, StoreError> {
        self.query_opt(sql, args)?.ok_or(StoreError::Corrupt("row"))
    }
}

/// Whether a transaction writes: writers are serialised, so sequence numbers are committed
/// in order (a stream that read up to 12 never misses an 11 committed later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only reads.
    Read,
    /// Writes.
    Write,
}

/// A database the store's SQL runs on.
pub trait Backend: Send + Sync + 'static {
    /// Runs `f` in one transaction off the async threads: committed when it returns `Ok`,
    /// rolled back otherwise.
    fn run<T: Send + 'static>(
        &self,
        mode: Mode,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'_, T>;

    /// Tells the other processes on this database about `signal` (nothing when there can be
    /// none).
    fn signal(&self, _signal: Signal) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Signals from other processes (and this one), when the database carries them.
    fn signals(&self) -> Option<tokio::sync::broadcast::Receiver<Signal>> {
        None
    }

    /// Whether the database answers now.
    fn ping(&self) -> StoreFuture<'_, ()> {
        self.run(Mode::Read, |c| c.query_one("SELECT 1", &[]).map(drop))
    }

    /// Which database this is, for logs and `/readyz`.
    fn kind(&self) -> &'static str;
}

/// The store over a [`Backend`].
pub struct SqlStore<B> {
    backend: B,
}

impl<B> SqlStore<B> {
    /// The store kept by `backend` (migrated).
    pub fn with_backend(backend: B) -> Self {
        Self { backend }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }
}

impl<B> std::fmt::Debug for SqlStore<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").finish_non_exhaustive()
    }
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

fn read_onboarding(row: &Row) -> Result<Onboarding, StoreError> {
    let token = match (row.get(13)?, row.get(14)?) {
        (Some(nonce), Some(ciphertext)) => Some(SealedToken {
            nonce,
            ciphertext,
            expires_at: row.get::<Option<i64>>(15)?.unwrap_or(0),
        }),
        _ => None,
    };
    Ok(Onboarding {
        steps: Vec::new(),
        id: row.get(0)?,
        record: OnboardingRecord {
            created_at: row.get(1)?,
            flow: row.name(2, Flow::parse, "flow")?,
            // An outcome or change kind a later version wrote reads as unknown, not an error.
            outcome: Outcome::parse(&row.get::<String>(3)?).unwrap_or(Outcome::Unknown),
            event: row.get(4)?,
            granted: split_ids(&row.get::<String>(5)?),
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

fn attach_follow_ups(c: &mut dyn Conn, list: &mut [Onboarding]) -> Result<(), StoreError> {
    for o in list {
        o.record.follow_ups = c
            .query(
                "SELECT waba_id, reason, message, action FROM follow_ups WHERE onboarding_id = ?1 \
                 ORDER BY rowid",
                &args![o.id],
            )?
            .iter()
            .map(|r| {
                Ok(FollowUp {
                    waba_id: r.get(0)?,
                    reason: r.name(1, FollowUpReason::parse, "follow-up reason")?,
                    message: r.get(2)?,
                    action: r.get(3)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
    }
    Ok(())
}

const CHANGE_COLUMNS: &str = "seq, dedupe, received_at, field, kind, waba_id, value, raw";

fn read_change(r: &Row) -> Result<StoredChange, StoreError> {
    let dedupe: Vec<u8> = r.get(1)?;
    Ok(StoredChange {
        seq: r.get(0)?,
        received_at: r.get(2)?,
        change: StatusChange {
            dedupe: dedupe.try_into().unwrap_or([0; 32]),
            field: r.get(3)?,
            kind: ChangeKind::parse(&r.get::<String>(4)?).unwrap_or(ChangeKind::Unknown),
            waba_id: r.get(5)?,
            value: r.get(6)?,
            raw: r.get(7)?,
        },
    })
}

/// Reads every row with `read`.
pub(super) fn read_all<T>(
    rows: Vec<Row>,
    read: fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(read).collect()
}

/// Marks the onboardings that were granted `waba` as revoked at `now` and forgets their
/// business tokens, which Meta no longer honours: the business removed the partner's app or
/// stopped sharing the WABA.
/// Their unsettled steps stop, each announced in `out`.
fn revoke(
    c: &mut dyn Conn,
    waba: &str,
    why: &str,
    now: i64,
    out: &mut Vec<StoredChange>,
) -> Result<(), StoreError> {
    let ids = c.query(
        "SELECT id FROM onboardings WHERE revoked_at IS NULL \
         AND (',' || granted || ',') LIKE ('%,' || CAST(?1 AS TEXT) || ',%') ORDER BY id",
        &args![waba],
    )?;
    for row in ids {
        let id: i64 = row.get(0)?;
        c.execute(
            "UPDATE onboardings SET revoked_at = ?2, token_nonce = NULL, token_ciphertext = NULL, \
             token_expires_at = NULL WHERE id = ?1",
            &args![id, now],
        )?;
        let message = format!("Stopped: Meta said the business ended the partnership ({why}).");
        stop_steps(c, "onboarding_id = ?1", &args![id], &message, now, out)?;
    }
    Ok(())
}

/// Stops the unsettled steps matching `filter` (skipped with `message`), announcing each.
fn stop_steps(
    c: &mut dyn Conn,
    filter: &str,
    args: &[Val],
    message: &str,
    now: i64,
    out: &mut Vec<StoredChange>,
) -> Result<(), StoreError> {
    let steps = steps_where(
        c,
        &format!("({filter}) AND state IN ('pending', 'running', 'failed') ORDER BY id"),
        args,
    )?;
    for mut step in steps {
        step.state = StepState::Skipped;
        step.actor = None;
        step.message = Some(message.to_owned());
        step.updated_at = now;
        step.version += 1;
        c.execute(
            "UPDATE pipeline_steps SET state = 'skipped', actor = NULL, message = ?2, \
             updated_at = ?3, version = ?4 WHERE id = ?1",
            &args![step.id, message, now, step.version],
        )?;
        out.push(step_change(c, &step, now)?);
    }
    Ok(())
}

const STEP_COLUMNS: &str = "id, onboarding_id, waba_id, phone_id, phone_label, kind, state, token, \
     actor, message, error_code, error, attempts, next_at, updated_at, version, by_admin, failures";

fn read_step(r: &Row) -> Result<Step, StoreError> {
    Ok(Step {
        id: r.get(0)?,
        onboarding_id: r.get(1)?,
        waba_id: r.get(2)?,
        phone_id: r.get(3)?,
        phone_label: r.get(4)?,
        kind: r.name(5, StepKind::parse, "step kind")?,
        state: r.name(6, StepState::parse, "step state")?,
        token: r.name(7, TokenKind::parse, "token kind")?,
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
fn steps_where(c: &mut dyn Conn, filter: &str, args: &[Val]) -> Result<Vec<Step>, StoreError> {
    read_all(
        c.query(
            &format!("SELECT {STEP_COLUMNS} FROM pipeline_steps WHERE {filter}"),
            args,
        )?,
        read_step,
    )
}

/// Stores a status change unless one with its dedupe hash is stored; its sequence number
/// when it was stored.
fn insert_change(
    c: &mut dyn Conn,
    change: &StatusChange,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    c.query_opt(
        "INSERT INTO status_events (dedupe, received_at, field, kind, waba_id, value, raw) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (dedupe) DO NOTHING RETURNING seq",
        &args![
            &change.dedupe[..],
            now,
            &change.field,
            change.kind.as_str(),
            &change.waba_id,
            &change.value,
            &change.raw
        ],
    )?
    .map(|r| r.get(0))
    .transpose()
}

/// Records a step's new state as a status change (field `pipeline`), so open streams and
/// resuming ones see every transition once, in order.
fn step_change(c: &mut dyn Conn, step: &Step, now: i64) -> Result<StoredChange, StoreError> {
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
    let seq = insert_change(c, &change, now)?.ok_or(StoreError::Corrupt("step change"))?;
    super::outbox::step_changed(c, step, now)?;
    Ok(StoredChange {
        seq,
        received_at: now,
        change,
    })
}

/// Inserts `steps` for `onboarding_id`, announcing each.
fn insert_steps(
    c: &mut dyn Conn,
    onboarding_id: i64,
    steps: &[NewStep],
    now: i64,
    out: &mut Vec<StoredChange>,
) -> Result<(), StoreError> {
    for s in steps {
        let step = read_step(&c.query_one(
            &format!(
                "INSERT INTO pipeline_steps (onboarding_id, waba_id, phone_id, phone_label, \
                 kind, state, token, message, next_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING {STEP_COLUMNS}"
            ),
            &args![
                onboarding_id,
                &s.waba_id,
                &s.phone_id,
                &s.phone_label,
                s.kind.as_str(),
                s.state.as_str(),
                s.token.as_str(),
                &s.message,
                s.not_before.max(now),
                now
            ],
        )?)?;
        out.push(step_change(c, &step, now)?);
    }
    Ok(())
}

/// A `discovered` record for `waba` with its steps, unless a record that is not revoked
/// already holds the WABA (a signup's, or an earlier discovery's).
fn discover(
    c: &mut dyn Conn,
    waba: &str,
    discovery: &Discovery,
    now: i64,
    out: &mut Vec<StoredChange>,
) -> Result<(), StoreError> {
    let held: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM onboardings WHERE revoked_at IS NULL \
             AND outcome != 'code_rejected' \
             AND (',' || granted || ',') LIKE ('%,' || CAST(?1 AS TEXT) || ',%') \
             AND (flow != 'token' OR id IN (SELECT onboarding_id FROM pipeline_steps)))",
            &args![waba],
        )?
        .get(0)?;
    if !held {
        let id = insert_record(c, &discovery.record(waba, now), None, out)?;
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
    c: &mut dyn Conn,
    r: &OnboardingRecord,
    session: Option<NewSession>,
    out: &mut Vec<StoredChange>,
) -> Result<i64, StoreError> {
    let id: i64 = c
        .query_one(
            "INSERT INTO onboardings (created_at, flow, outcome, event, granted, \
             reported_waba_id, phone_number_id, business_id, current_step, error_message, \
             error_id, session_id, token_nonce, token_ciphertext, token_expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
             RETURNING id",
            &args![
                r.created_at,
                r.flow.as_str(),
                r.outcome.as_str(),
                &r.event,
                join_ids(&r.granted),
                &r.reported_waba_id,
                &r.phone_number_id,
                &r.business_id,
                &r.current_step,
                &r.error_message,
                &r.error_id,
                &r.session_id,
                r.token.as_ref().map(|t| t.nonce.clone()),
                r.token.as_ref().map(|t| t.ciphertext.clone()),
                r.token.as_ref().map(|t| t.expires_at),
            ],
        )?
        .get(0)?;
    for f in &r.follow_ups {
        c.execute(
            "INSERT INTO follow_ups (onboarding_id, waba_id, reason, message, action) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            &args![id, &f.waba_id, f.reason.as_str(), &f.message, &f.action],
        )?;
    }
    if let Some(s) = session {
        c.execute(
            "INSERT INTO sessions (credential_hash, onboarding_id, expires_at) \
             VALUES (?1, ?2, ?3)",
            &args![&s.hash[..], id, s.expires_at],
        )?;
    }
    super::outbox::onboarding_recorded(c, id, r)?;
    insert_steps(c, id, &r.steps, r.created_at, out)?;
    Ok(id)
}

fn insert_write(c: &mut dyn Conn, w: &GraphWrite) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO graph_writes (at, step_id, onboarding_id, method, path, token, status, \
         answer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &args![
            w.at,
            w.step_id,
            w.onboarding_id,
            &w.method,
            &w.path,
            w.token.as_str(),
            w.status,
            &w.answer
        ],
    )?;
    Ok(())
}

fn read_write(r: &Row) -> Result<GraphWrite, StoreError> {
    Ok(GraphWrite {
        id: r.get(0)?,
        at: r.get(1)?,
        step_id: r.get(2)?,
        onboarding_id: r.get(3)?,
        method: r.get(4)?,
        path: r.get(5)?,
        token: r.name(6, TokenKind::parse, "token kind")?,
        status: r.get(7)?,
        answer: r.get(8)?,
    })
}

const PIN_COLUMNS: &str = "phone_id, nonce, ciphertext, set_by_partner";

fn read_pin(r: &Row) -> Result<SealedPin, StoreError> {
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

fn pin_of(c: &mut dyn Conn, phone_id: &str) -> Result<Option<SealedPin>, StoreError> {
    c.query_opt(
        &format!("SELECT {PIN_COLUMNS} FROM phone_pins WHERE phone_id = ?1"),
        &args![phone_id],
    )?
    .as_ref()
    .map(read_pin)
    .transpose()
}

/// Records a tracker event.
fn share_event(c: &mut dyn Conn, waba: &str, kind: ShareKind, now: i64) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO share_events (waba_id, kind, detected_at) VALUES (?1, ?2, ?3)",
        &args![waba, kind.as_str(), now],
    )?;
    super::outbox::share_changed(c, waba, kind, now)
}

/// The records matching `filter` (a `WHERE` clause and its order), with their follow-ups.
fn onboardings_where(
    c: &mut dyn Conn,
    filter: &str,
    args: &[Val],
) -> Result<Vec<Onboarding>, StoreError> {
    let mut list = read_all(
        c.query(
            &format!("SELECT {ONBOARDING_COLUMNS} FROM onboardings WHERE {filter}"),
            args,
        )?,
        read_onboarding,
    )?;
    attach_follow_ups(c, &mut list)?;
    for o in &mut list {
        o.steps = steps_where(c, "onboarding_id = ?1 ORDER BY id", &args![o.id])?;
    }
    Ok(list)
}

/// A tracker setting (`baseline`, `last_pass`, `lease`).
fn tracker_value(c: &mut dyn Conn, key: &str) -> Result<Option<String>, StoreError> {
    c.query_opt(
        "SELECT value FROM tracker_state WHERE key = ?1",
        &args![key],
    )?
    .map(|r| r.get(0))
    .transpose()
}

fn set_tracker_value(c: &mut dyn Conn, key: &str, value: &str) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO tracker_state (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &args![key, value],
    )?;
    Ok(())
}

/// The holder of the tracker's lease and when it ends, if one is held.
fn tracker_lease(c: &mut dyn Conn) -> Result<Option<(String, i64)>, StoreError> {
    Ok(tracker_value(c, "lease")?.and_then(|v| {
        let (until, holder) = v.split_once(' ')?;
        Some((holder.to_owned(), until.parse().ok()?))
    }))
}

fn record_changes(
    c: &mut dyn Conn,
    changes: Vec<StatusChange>,
    now: i64,
    discovery: Option<Discovery>,
) -> Result<Vec<StoredChange>, StoreError> {
    let mut stored = Vec::new();
    let mut stopped = Vec::new();
    for change in changes {
        let Some(seq) = insert_change(c, &change, now)?
            .map(|seq| super::outbox::meta_change(c, &change, now).map(|()| seq))
            .transpose()?
        else {
            // A redelivery: the share is stored, but plan it if nothing holds it.
            if let (ChangeKind::PartnerAdded, Some(waba), Some(d)) =
                (change.kind, &change.waba_id, &discovery)
            {
                discover(c, waba, d, now, &mut stopped)?;
                stored.append(&mut stopped);
            }
            continue;
        };
        if let Some(waba) = &change.waba_id {
            match change.kind {
                ChangeKind::PartnerAdded => {
                    let added = c.execute(
                        "INSERT INTO shared_wabas (waba_id, since) VALUES (?1, ?2) \
                         ON CONFLICT (waba_id) DO NOTHING",
                        &args![waba, now],
                    )?;
                    if added == 1 {
                        share_event(c, waba, ShareKind::Shared, now)?;
                    }
                    if let Some(d) = &discovery {
                        discover(c, waba, d, now, &mut stopped)?;
                    }
                }
                ChangeKind::PartnerRemoved => {
                    let removed =
                        c.execute("DELETE FROM shared_wabas WHERE waba_id = ?1", &args![waba])?;
                    if removed == 1 {
                        share_event(c, waba, ShareKind::Unshared, now)?;
                    }
                    revoke(c, waba, "PARTNER_REMOVED", now, &mut stopped)?;
                }
                ChangeKind::PartnerAppUninstalled => {
                    revoke(c, waba, "PARTNER_APP_UNINSTALLED", now, &mut stopped)?;
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
    Ok(stored)
}

fn changes_of(
    c: &mut dyn Conn,
    wabas: &[String],
    limit: u32,
) -> Result<Vec<StoredChange>, StoreError> {
    let mut out = Vec::new();
    for w in wabas {
        out.extend(read_all(
            c.query(
                &format!(
                    "SELECT {CHANGE_COLUMNS} FROM status_events WHERE waba_id = ?1 \
                     AND kind != 'pipeline_step' ORDER BY seq DESC LIMIT ?2"
                ),
                &args![w, limit],
            )?,
            read_change,
        )?);
    }
    out.sort_by_key(|e| e.seq);
    let skip = out.len().saturating_sub(limit as usize);
    Ok(out.split_off(skip))
}

fn insert_onboarding(
    c: &mut dyn Conn,
    r: &OnboardingRecord,
    session: Option<NewSession>,
) -> Result<Inserted, StoreError> {
    let mut changes = Vec::new();
    let id = insert_record(c, r, session, &mut changes)?;
    if !r.steps.is_empty() {
        for waba in &r.granted {
            stop_steps(
                c,
                "waba_id = ?1 AND state = 'pending' AND onboarding_id IN \
                 (SELECT id FROM onboardings WHERE flow = 'discovered')",
                &args![waba],
                &format!("Handed over to onboarding {id}, the business's own signup."),
                r.created_at,
                &mut changes,
            )?;
        }
    }
    Ok(Inserted { id, changes })
}

fn claim_step(c: &mut dyn Conn, now: i64, lease_secs: i64) -> Result<Option<Step>, StoreError> {
    let found = steps_where(
        c,
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
        &args![now],
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
    c.execute(
        "UPDATE pipeline_steps SET state = 'running', attempts = ?2, version = ?3, \
         lease_until = ?4, updated_at = ?5 WHERE id = ?1",
        &args![step.id, step.attempts, step.version, now + lease_secs, now],
    )?;
    Ok(Some(step))
}

fn take_register_attempt(
    c: &mut dyn Conn,
    phone_id: &str,
    now: i64,
    window_secs: i64,
    limit: u32,
) -> Result<bool, StoreError> {
    let made: u32 = c
        .query_one(
            "SELECT COUNT(*) FROM register_attempts WHERE phone_id = ?1 AND at > ?2",
            &args![phone_id, now - window_secs],
        )?
        .get(0)?;
    if made >= limit {
        return Ok(false);
    }
    c.execute(
        "INSERT INTO register_attempts (phone_id, at) VALUES (?1, ?2)",
        &args![phone_id, now],
    )?;
    Ok(true)
}

fn settle_step(
    c: &mut dyn Conn,
    step: Step,
    outcome: StepOutcome,
    write: Option<GraphWrite>,
    found: &[NewStep],
    now: i64,
) -> Result<Vec<StoredChange>, StoreError> {
    // The write is audited even when the step was stopped meanwhile.
    if let Some(w) = &write {
        insert_write(c, w)?;
    }
    let version = step.version + 1;
    let seen = (
        step.state,
        step.actor.clone(),
        step.message.clone(),
        step.error_code,
        step.token,
    );
    let n = c.execute(
        "UPDATE pipeline_steps SET state = ?3, actor = ?4, message = ?5, \
         error_code = ?6, error = ?7, next_at = ?8, lease_until = NULL, \
         updated_at = ?9, version = ?10, token = ?11, by_admin = 0, \
         failures = CASE WHEN ?12 THEN failures + 1 ELSE 0 END \
         WHERE id = ?1 AND version = ?2 AND state = 'running'",
        &args![
            step.id,
            step.version,
            outcome.state.as_str(),
            &outcome.actor,
            &outcome.message,
            outcome.error_code,
            &outcome.error,
            outcome.next_at,
            now,
            version,
            outcome.token.as_str(),
            outcome.transient
        ],
    )?;
    let mut changes = Vec::new();
    if n == 1 {
        insert_steps(c, step.onboarding_id, found, now, &mut changes)?;
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
            changes.push(step_change(c, &settled, now)?);
        }
    }
    Ok(changes)
}

fn retry_step(c: &mut dyn Conn, step_id: i64, now: i64) -> Result<Retry, StoreError> {
    let Some(mut step) = steps_where(c, "id = ?1", &args![step_id])?.pop() else {
        return Ok(Retry::NotFound);
    };
    let ended: bool = c
        .query_one(
            "SELECT revoked_at IS NOT NULL OR (offboarded_at IS NOT NULL \
             AND CAST(?2 AS TEXT) NOT IN ('unsubscribe', 'deregister')) \
             FROM onboardings WHERE id = ?1",
            &args![step.onboarding_id, step.kind.as_str()],
        )?
        .get(0)?;
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
    c.execute(
        "UPDATE pipeline_steps SET state = 'pending', actor = NULL, next_at = ?2, \
         updated_at = ?2, version = ?3, by_admin = 1, failures = 0 WHERE id = ?1",
        &args![step.id, now, step.version],
    )?;
    Ok(Retry::Retried(step_change(c, &step, now)?))
}

fn offboard(c: &mut dyn Conn, onboarding_id: i64, now: i64) -> Result<Offboard, StoreError> {
    let Some(found) = onboardings_where(c, "id = ?1", &args![onboarding_id])?.pop() else {
        return Ok(Offboard::NotFound);
    };
    if found.record.revoked_at.is_some() {
        return Ok(Offboard::Revoked);
    }
    let first = c.execute(
        "UPDATE onboardings SET offboarded_at = ?2 WHERE id = ?1 AND offboarded_at IS NULL",
        &args![onboarding_id, now],
    )? == 1;
    if first {
        super::outbox::offboarded(c, onboarding_id, &found.record.granted, now)?;
    }
    let mut changes = Vec::new();
    stop_steps(
        c,
        "onboarding_id = ?1 AND kind NOT IN ('unsubscribe', 'deregister')",
        &args![onboarding_id],
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
        c,
        "onboarding_id = ?1 AND kind = 'register' AND (state IN ('done', 'failed') \
         OR (state = 'skipped' AND attempts > 0)) ORDER BY id",
        &args![onboarding_id],
    )?;
    let already: Vec<(StepKind, String, Option<String>)> = steps_where(
        c,
        "onboarding_id = ?1 AND kind IN ('unsubscribe', 'deregister') \
            AND state != 'skipped'",
        &args![onboarding_id],
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
    insert_steps(c, onboarding_id, &steps, now, &mut changes)?;
    Ok(Offboard::Started(changes))
}

fn put_pin(c: &mut dyn Conn, pin: &SealedPin, replace: bool) -> Result<(), StoreError> {
    let on_conflict = if replace {
        "DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext, \
         set_by_partner = excluded.set_by_partner"
    } else {
        "DO NOTHING"
    };
    c.execute(
        &format!(
            "INSERT INTO phone_pins ({PIN_COLUMNS}) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (phone_id) {on_conflict}"
        ),
        &args![
            &pin.phone_id,
            pin.sealed.nonce.as_slice(),
            pin.sealed.ciphertext.as_slice(),
            pin.set_by_partner
        ],
    )?;
    Ok(())
}

fn apply_share_set(
    c: &mut dyn Conn,
    current: &BTreeSet<String>,
    now: i64,
    discovery: Option<&Discovery>,
    holder: &str,
) -> Result<Option<ShareDiff>, StoreError> {
    // Still the holder, even past the lease's end if nobody took it over (a long pass): a
    // process that took it over wrote its own name.
    match tracker_lease(c)? {
        Some((h, _)) if h == holder => {}
        // Another process took the pass over: this one's list may be older.
        _ => return Ok(None),
    }
    let baseline = tracker_value(c, "baseline")?.is_none();
    let stored: BTreeSet<String> = c
        .query("SELECT waba_id FROM shared_wabas", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect::<Result<_, _>>()?;
    let shared: Vec<String> = current.difference(&stored).cloned().collect();
    let unshared: Vec<String> = stored.difference(current).cloned().collect();
    let mut planned = Vec::new();
    for id in &shared {
        c.execute(
            "INSERT INTO shared_wabas (waba_id, since) VALUES (?1, ?2)",
            &args![id, now],
        )?;
        if !baseline {
            share_event(c, id, ShareKind::Shared, now)?;
            if let Some(d) = discovery {
                discover(c, id, d, now, &mut planned)?;
            }
        }
    }
    for id in &unshared {
        c.execute("DELETE FROM shared_wabas WHERE waba_id = ?1", &args![id])?;
        share_event(c, id, ShareKind::Unshared, now)?;
    }
    c.execute(
        "INSERT INTO tracker_state (key, value) VALUES ('baseline', ?1) \
         ON CONFLICT (key) DO NOTHING",
        &args![now.to_string()],
    )?;
    set_tracker_value(c, "last_pass", &now.to_string())?;
    c.execute("DELETE FROM tracker_state WHERE key = 'lease'", &[])?;
    Ok(Some(ShareDiff {
        shared: if baseline { Vec::new() } else { shared },
        unshared,
        baseline,
        planned,
    }))
}

fn claim_tracker_pass(
    c: &mut dyn Conn,
    holder: &str,
    now: i64,
    every_secs: i64,
    lease_secs: i64,
) -> Result<bool, StoreError> {
    if let Some((h, until)) = tracker_lease(c)?
        && until > now
        && h != holder
    {
        return Ok(false);
    }
    // Passes are spaced by when they started, so the interval does not drift by their length.
    let last: Option<i64> = tracker_value(c, "last_claim")?.and_then(|v| v.parse().ok());
    if last.is_some_and(|l| l > now - every_secs) {
        return Ok(false);
    }
    set_tracker_value(c, "lease", &format!("{} {holder}", now + lease_secs))?;
    set_tracker_value(c, "last_claim", &now.to_string())?;
    Ok(true)
}

impl<B: Backend> Store for SqlStore<B> {
    fn record_changes(
        &self,
        changes: Vec<StatusChange>,
        now: i64,
        discovery: Option<Discovery>,
    ) -> StoreFuture<'_, Vec<StoredChange>> {
        self.backend.run(Mode::Write, move |c| {
            record_changes(c, changes, now, discovery)
        })
    }

    fn changes_of(&self, wabas: Vec<String>, limit: u32) -> StoreFuture<'_, Vec<StoredChange>> {
        self.backend
            .run(Mode::Read, move |c| changes_of(c, &wabas, limit))
    }

    fn changes(&self, after: i64, limit: u32) -> StoreFuture<'_, Vec<StoredChange>> {
        self.backend.run(Mode::Read, move |c| {
            read_all(
                c.query(
                    &format!(
                        "SELECT {CHANGE_COLUMNS} FROM status_events WHERE seq > ?1 \
                         ORDER BY seq LIMIT ?2"
                    ),
                    &args![after, limit],
                )?,
                read_change,
            )
        })
    }

    fn newest_change(&self) -> StoreFuture<'_, i64> {
        self.backend.run(Mode::Read, |c| {
            c.query_one("SELECT COALESCE(MAX(seq), 0) FROM status_events", &[])?
                .get(0)
        })
    }

    fn claim_code(&self, code_hash: [u8; 32], now: i64) -> StoreFuture<'_, bool> {
        self.backend.run(Mode::Write, move |c| {
            let n = c.execute(
                "INSERT INTO used_codes (code_hash, used_at) VALUES (?1, ?2) \
                 ON CONFLICT (code_hash) DO NOTHING",
                &args![&code_hash[..], now],
            )?;
            Ok(n == 1)
        })
    }

    fn release_code(&self, code_hash: [u8; 32]) -> StoreFuture<'_, ()> {
        self.backend.run(Mode::Write, move |c| {
            c.execute(
                "DELETE FROM used_codes WHERE code_hash = ?1",
                &args![&code_hash[..]],
            )
            .map(drop)
        })
    }

    fn insert_onboarding(
        &self,
        r: OnboardingRecord,
        session: Option<NewSession>,
    ) -> StoreFuture<'_, Inserted> {
        self.backend
            .run(Mode::Write, move |c| insert_onboarding(c, &r, session))
    }

    fn claim_step(&self, now: i64, lease_secs: i64) -> StoreFuture<'_, Option<Step>> {
        self.backend
            .run(Mode::Write, move |c| claim_step(c, now, lease_secs))
    }

    fn take_register_attempt(
        &self,
        phone_id: String,
        now: i64,
        window_secs: i64,
        limit: u32,
    ) -> StoreFuture<'_, bool> {
        self.backend.run(Mode::Write, move |c| {
            take_register_attempt(c, &phone_id, now, window_secs, limit)
        })
    }

    fn fence(&self, step: Step, now: i64, lease_secs: i64) -> StoreFuture<'_, bool> {
        self.backend.run(Mode::Write, move |c| {
            let n = c.execute(
                "UPDATE pipeline_steps SET lease_until = ?3 \
                 WHERE id = ?1 AND version = ?2 AND state = 'running' AND lease_until > ?4",
                &args![step.id, step.version, now + lease_secs, now],
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
        self.backend.run(Mode::Write, move |c| {
            settle_step(c, step, outcome, write, &found, now)
        })
    }

    fn steps_of(&self, onboarding_id: i64) -> StoreFuture<'_, Vec<Step>> {
        self.backend.run(Mode::Read, move |c| {
            steps_where(c, "onboarding_id = ?1 ORDER BY id", &args![onboarding_id])
        })
    }

    fn retry_step(&self, step_id: i64, now: i64) -> StoreFuture<'_, Retry> {
        self.backend
            .run(Mode::Write, move |c| retry_step(c, step_id, now))
    }

    fn offboard(&self, onboarding_id: i64, now: i64) -> StoreFuture<'_, Offboard> {
        self.backend
            .run(Mode::Write, move |c| offboard(c, onboarding_id, now))
    }

    fn record_write(&self, write: GraphWrite) -> StoreFuture<'_, ()> {
        self.backend
            .run(Mode::Write, move |c| insert_write(c, &write))
    }

    fn writes(&self, after: i64, limit: u32) -> StoreFuture<'_, Vec<GraphWrite>> {
        self.backend.run(Mode::Read, move |c| {
            read_all(
                c.query(
                    "SELECT id, at, step_id, onboarding_id, method, path, token, status, answer \
                     FROM graph_writes WHERE id > ?1 ORDER BY id LIMIT ?2",
                    &args![after, limit],
                )?,
                read_write,
            )
        })
    }

    fn put_pin(&self, pin: SealedPin) -> StoreFuture<'_, ()> {
        self.backend
            .run(Mode::Write, move |c| put_pin(c, &pin, true))
    }

    fn keep_pin(&self, pin: SealedPin) -> StoreFuture<'_, SealedPin> {
        self.backend.run(Mode::Write, move |c| {
            put_pin(c, &pin, false)?;
            pin_of(c, &pin.phone_id)?.ok_or(StoreError::Corrupt("pin"))
        })
    }

    fn pin(&self, phone_id: String) -> StoreFuture<'_, Option<SealedPin>> {
        self.backend.run(Mode::Read, move |c| pin_of(c, &phone_id))
    }

    fn pins_of(&self, onboarding_id: i64) -> StoreFuture<'_, Vec<SealedPin>> {
        self.backend.run(Mode::Read, move |c| {
            read_all(
                c.query(
                    &format!(
                        "SELECT {PIN_COLUMNS} FROM phone_pins \
                         WHERE phone_id IN (SELECT phone_id FROM pipeline_steps \
                         WHERE onboarding_id = ?1 AND phone_id IS NOT NULL) ORDER BY phone_id"
                    ),
                    &args![onboarding_id],
                )?,
                read_pin,
            )
        })
    }

    fn session(&self, hash: [u8; 32], now: i64) -> StoreFuture<'_, Option<SessionGrant>> {
        self.backend.run(Mode::Read, move |c| {
            c.query_opt(
                "SELECT s.onboarding_id, o.granted, s.expires_at FROM sessions s \
                 JOIN onboardings o ON o.id = s.onboarding_id \
                 WHERE s.credential_hash = ?1 AND s.expires_at > ?2",
                &args![&hash[..], now],
            )?
            .map(|r| {
                Ok(SessionGrant {
                    onboarding_id: r.get(0)?,
                    wabas: split_ids(&r.get::<String>(1)?),
                    expires_at: r.get(2)?,
                })
            })
            .transpose()
        })
    }

    fn onboardings(&self, before: Option<i64>, limit: u32) -> StoreFuture<'_, Vec<Onboarding>> {
        self.backend.run(Mode::Read, move |c| {
            onboardings_where(
                c,
                "id < ?1 ORDER BY id DESC LIMIT ?2",
                &args![before.unwrap_or(i64::MAX), limit],
            )
        })
    }

    fn onboarding(&self, id: i64) -> StoreFuture<'_, Option<Onboarding>> {
        self.backend.run(Mode::Read, move |c| {
            Ok(onboardings_where(c, "id = ?1", &args![id])?.pop())
        })
    }

    fn follow_ups(&self, limit: u32) -> StoreFuture<'_, Vec<Onboarding>> {
        self.backend.run(Mode::Read, move |c| {
            onboardings_where(
                c,
                "(id IN (SELECT onboarding_id FROM follow_ups) OR id IN (SELECT onboarding_id \
                 FROM pipeline_steps WHERE state = 'failed')) ORDER BY id DESC LIMIT ?1",
                &args![limit],
            )
        })
    }

    fn funnel(&self, range: super::FunnelRange) -> StoreFuture<'_, super::Funnel> {
        self.backend
            .run(Mode::Read, move |c| super::funnel::funnel(c, range))
    }

    fn funnel_records(
        &self,
        range: super::FunnelRange,
        after: i64,
        limit: u32,
    ) -> StoreFuture<'_, Vec<super::FunnelRecord>> {
        self.backend.run(Mode::Read, move |c| {
            super::funnel::funnel_records(c, range, after, limit)
        })
    }

    fn apply_share_set(
        &self,
        current: BTreeSet<String>,
        now: i64,
        discovery: Option<Discovery>,
        holder: String,
    ) -> StoreFuture<'_, Option<ShareDiff>> {
        self.backend.run(Mode::Write, move |c| {
            apply_share_set(c, &current, now, discovery.as_ref(), &holder)
        })
    }

    fn claim_tracker_pass(
        &self,
        holder: String,
        now: i64,
        every_secs: i64,
        lease_secs: i64,
    ) -> StoreFuture<'_, bool> {
        self.backend.run(Mode::Write, move |c| {
            claim_tracker_pass(c, &holder, now, every_secs, lease_secs)
        })
    }

    fn share_events(&self, after: i64, limit: u32) -> StoreFuture<'_, Vec<ShareEvent>> {
        self.backend.run(Mode::Read, move |c| {
            c.query(
                "SELECT seq, waba_id, kind, detected_at FROM share_events WHERE seq > ?1 \
                 ORDER BY seq LIMIT ?2",
                &args![after, limit],
            )?
            .iter()
            .map(|r| {
                Ok(ShareEvent {
                    seq: r.get(0)?,
                    waba_id: r.get(1)?,
                    kind: r.name(2, ShareKind::parse, "share kind")?,
                    detected_at: r.get(3)?,
                })
            })
            .collect()
        })
    }

    fn prune_codes(&self, before: i64) -> StoreFuture<'_, ()> {
        self.backend.run(Mode::Write, move |c| {
            c.execute("DELETE FROM used_codes WHERE used_at < ?1", &args![before])
                .map(drop)
        })
    }

    fn shared_key(&self, name: String, fresh: [u8; 32]) -> StoreFuture<'_, [u8; 32]> {
        self.backend.run(Mode::Write, move |c| {
            c.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                &args![&name, &fresh[..]],
            )?;
            let kept: Vec<u8> = c
                .query_one("SELECT value FROM settings WHERE key = ?1", &args![&name])?
                .get(0)?;
            kept.try_into().map_err(|_| StoreError::Corrupt("key"))
        })
    }

    fn signal(&self, signal: Signal) -> StoreFuture<'_, ()> {
        self.backend.signal(signal)
    }

    fn signals(&self) -> Option<tokio::sync::broadcast::Receiver<Signal>> {
        self.backend.signals()
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        self.backend.ping()
    }

    fn outbound_endpoints(&self) -> StoreFuture<'_, Vec<Endpoint>> {
        self.backend.run(Mode::Read, outbox::endpoints)
    }

    fn outbound_endpoint(&self, id: i64) -> StoreFuture<'_, Option<Endpoint>> {
        self.backend
            .run(Mode::Read, move |c| outbox::endpoint(c, id))
    }

    fn create_outbound_endpoint(
        &self,
        e: NewEndpoint,
        now: i64,
    ) -> StoreFuture<'_, Option<Endpoint>> {
        self.backend
            .run(Mode::Write, move |c| outbox::create_endpoint(c, &e, now))
    }

    fn update_outbound_endpoint(
        &self,
        id: i64,
        patch: EndpointPatch,
        now: i64,
    ) -> StoreFuture<'_, Option<Endpoint>> {
        self.backend.run(Mode::Write, move |c| {
            outbox::update_endpoint(c, id, &patch, now)
        })
    }

    fn delete_outbound_endpoint(&self, id: i64) -> StoreFuture<'_, bool> {
        self.backend
            .run(Mode::Write, move |c| outbox::delete_endpoint(c, id))
    }

    fn outbound_deliveries(
        &self,
        endpoint_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> StoreFuture<'_, Vec<Delivery>> {
        self.backend.run(Mode::Read, move |c| {
            outbox::deliveries(c, endpoint_id, before, limit)
        })
    }

    fn resend_delivery(&self, id: i64, now: i64) -> StoreFuture<'_, DeliveryAction> {
        self.backend
            .run(Mode::Write, move |c| outbox::resend(c, id, now))
    }

    fn give_up_delivery(&self, id: i64) -> StoreFuture<'_, DeliveryAction> {
        self.backend
            .run(Mode::Write, move |c| outbox::give_up(c, id))
    }

    fn release_delivery(&self, claimed: Claimed, retry_at: i64) -> StoreFuture<'_, ()> {
        self.backend
            .run(Mode::Write, move |c| outbox::release(c, &claimed, retry_at))
    }

    fn prune_outbox(&self, before: i64, batch: u32) -> StoreFuture<'_, u64> {
        self.backend
            .run(Mode::Write, move |c| outbox::prune(c, before, batch))
    }

    fn next_delivery_due(&self, now: i64) -> StoreFuture<'_, Option<i64>> {
        self.backend
            .run(Mode::Read, move |c| outbox::next_due(c, now))
    }

    fn claim_deliveries(
        &self,
        now: i64,
        lease_secs: i64,
        limit: u32,
    ) -> StoreFuture<'_, Vec<Claimed>> {
        self.backend.run(Mode::Write, move |c| {
            outbox::claim(c, now, lease_secs, limit)
        })
    }

    fn settle_delivery(
        &self,
        claimed: Claimed,
        result: AttemptResult,
        now: i64,
        policy: RetryPolicy,
        jitter: f64,
    ) -> StoreFuture<'_, ()> {
        self.backend.run(Mode::Write, move |c| {
            outbox::settle(c, &claimed, &result, now, &policy, jitter)
        })
    }

    fn kind(&self) -> &'static str {
        self.backend.kind()
    }
}

#[cfg(test)]
mod tests {
    //! Every test runs on both backends: a SQLite file, and a fresh database on the
    //! PostgreSQL server `cargo xtask test` starts.
    use super::super::SqliteStore;
    use super::*;
    use std::sync::Arc;

    /// A new SQLite store (its file is removed when the test process's temp dir is).
    fn sqlite() -> Arc<dyn Store> {
        let path = std::env::temp_dir().join(format!(
            "waba-store-test-{}-{}.db",
            std::process::id(),
            crate::sealing::random::<8>()
                .map(hex::encode)
                .unwrap_or_default()
        ));
        Arc::new(SqliteStore::open(&path).unwrap())
    }

    /// Runs `$body(store)` on SQLite and on PostgreSQL, as two tests.
    macro_rules! on_both {
        ($($name:ident => $body:ident;)*) => {$(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$body(super::sqlite()).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(mut s) = super::super::tests_support::replicas(1).await {
                        super::$body(s.remove(0)).await;
                    }
                }
            }
        )*};
    }

    on_both! {
        a_step_is_held_by_one_runner_in_order_and_settled_once => held_in_order;
        a_wait_that_changes_nothing_adds_nothing_to_the_stream => silent_wait;
        an_admin_retry_counts_for_one_attempt_and_transient_failures_count_in_a_row => admin_retry;
        register_attempts_stop_at_the_limit_within_the_window => attempt_window;
        records_sessions_codes_and_changes_read_back => records_read_back;
        the_tracker_diffs_the_set_and_its_lease_is_held_by_one => tracker_lease;
        a_removed_partner_revokes_and_offboarding_adds_its_steps => revoke_and_offboard;
        pins_are_kept_or_replaced => pins;
        the_outbox_delivers_each_endpoint_in_order_one_at_a_time => outbox_in_order;
        a_failing_endpoint_retries_opens_its_circuit_and_gives_up_after_the_window => outbox_failures;
        an_open_circuit_only_delays_and_a_given_back_claim_is_not_counted => outbox_circuit_delays;
    }

    fn sealed() -> SealedToken {
        SealedToken {
            nonce: vec![7; 12],
            ciphertext: vec![9; 48],
            expires_at: 0,
        }
    }

    async fn hook(s: &dyn Store, events: &[&str], enabled: bool) -> i64 {
        s.create_outbound_endpoint(
            NewEndpoint {
                url: "https://hooks.example.com/".into(),
                description: String::new(),
                events: events.iter().map(|e| (*e).to_owned()).collect(),
                secret: sealed(),
                enabled,
            },
            50,
        )
        .await
        .unwrap()
        .unwrap()
        .id
    }

    /// A token-flow record that ended with `outcome` at `at`.
    async fn ended(s: &dyn Store, outcome: Outcome, at: i64) -> i64 {
        let mut r = OnboardingRecord::new(Flow::Token, at);
        r.outcome = outcome;
        r.current_step = Some("PHONE_NUMBER_VERIFICATION".into());
        s.insert_onboarding(r, None).await.unwrap().id
    }

    fn answered(status: u16) -> AttemptResult {
        AttemptResult {
            status: Some(status),
            latency_ms: 12,
            error: (status >= 300).then(|| format!("answered {status}")),
            retry_after: None,
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            schedule: vec![10, 20],
            window: 100,
            circuit_failures: 3,
            cooldown: 30,
            max_cooldown: 60,
            pause_after: 1000,
        }
    }

    async fn outbox_in_order(s: Arc<dyn Store>) {
        let abandoned = hook(&*s, &["onboarding.abandoned"], true).await;
        let finished = hook(&*s, &["onboarding.finished"], true).await;
        let paused = hook(&*s, &["*"], false).await;
        ended(&*s, Outcome::Cancelled, 100).await;
        ended(&*s, Outcome::Cancelled, 101).await;
        ended(&*s, Outcome::Finished, 102).await;
        // An event no endpoint wants is not stored.
        ended(&*s, Outcome::Unknown, 103).await;
        let first = s.claim_deliveries(110, 30, 10).await.unwrap();
        let mut to: Vec<i64> = first.iter().map(|c| c.endpoint_id).collect();
        to.sort_unstable();
        assert_eq!(to, [abandoned, finished], "the paused endpoint waits");
        assert!(first.iter().all(|c| c.attempt == 1));
        assert!(
            s.claim_deliveries(111, 30, 10).await.unwrap().is_empty(),
            "one attempt per endpoint at a time, the later one behind it"
        );
        let head = first.iter().find(|c| c.endpoint_id == abandoned).unwrap();
        s.settle_delivery(head.clone(), answered(204), 112, policy(), 0.0)
            .await
            .unwrap();
        let next = s.claim_deliveries(112, 30, 10).await.unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].endpoint_id, abandoned);
        assert_ne!(
            next[0].event_id, head.event_id,
            "the second event, after the first"
        );
        let listed = s.outbound_deliveries(abandoned, None, 10).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].state, outbox::DeliveryState::Delivered);
        assert_eq!(listed[1].tries[0].status, Some(204));
        assert!(
            listed[1]
                .payload
                .contains("\"current_step\":\"PHONE_NUMBER_VERIFICATION\"")
        );
        // A lease that ran out (its sender died) is taken over, as the next attempt.
        let again = s.claim_deliveries(200, 30, 10).await.unwrap();
        let taken = again.iter().find(|c| c.endpoint_id == abandoned).unwrap();
        assert_eq!((taken.delivery_id, taken.attempt), (next[0].delivery_id, 2));
        // The dead sender's late settle changes nothing; the live one's does.
        s.settle_delivery(next[0].clone(), answered(204), 201, policy(), 0.0)
            .await
            .unwrap();
        assert_eq!(
            s.outbound_endpoint(abandoned)
                .await
                .unwrap()
                .unwrap()
                .pending,
            1
        );
        s.settle_delivery(taken.clone(), answered(204), 202, policy(), 0.0)
            .await
            .unwrap();
        assert_eq!(
            s.outbound_endpoint(abandoned)
                .await
                .unwrap()
                .unwrap()
                .delivered,
            2
        );
        // Resumed, the paused endpoint gets its three in order.
        let resumed = s
            .update_outbound_endpoint(
                paused,
                EndpointPatch {
                    enabled: Some(true),
                    ..EndpointPatch::default()
                },
                300,
            )
            .await
            .unwrap()
            .unwrap();
        assert!(resumed.enabled && resumed.pending == 3);
        let mut kinds = Vec::new();
        for now in 301..305 {
            for c in s.claim_deliveries(now, 30, 10).await.unwrap() {
                if c.endpoint_id == paused {
                    kinds.push(
                        serde_json::from_str::<serde_json::Value>(&c.payload).unwrap()["type"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                    );
                }
                s.settle_delivery(c, answered(200), now, policy(), 0.0)
                    .await
                    .unwrap();
            }
        }
        assert_eq!(
            kinds,
            [
                "onboarding.abandoned",
                "onboarding.abandoned",
                "onboarding.finished"
            ]
        );
        // Settled deliveries go with the retention; the events with them.
        assert_eq!(
            s.prune_outbox(1000, 4).await.unwrap(),
            4,
            "a batch at a time"
        );
        assert_eq!(s.prune_outbox(1000, 4).await.unwrap(), 2);
        assert!(
            s.outbound_deliveries(paused, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(s.delete_outbound_endpoint(paused).await.unwrap());
        assert!(!s.delete_outbound_endpoint(paused).await.unwrap());
    }

    async fn outbox_failures(s: Arc<dyn Store>) {
        let id = hook(&*s, &["onboarding.failed"], true).await;
        ended(&*s, Outcome::Error, 100).await;
        ended(&*s, Outcome::CodeRejected, 100).await;
        let mut now = 100;
        // Three failures: retried after 10 s, then 20 s, then the circuit opens for 30 s.
        for (attempt, wait) in [(1, 10), (2, 20), (3, 30)] {
            let c = s.claim_deliveries(now, 30, 10).await.unwrap();
            assert_eq!(c.len(), 1, "attempt {attempt} at {now}");
            assert_eq!(c[0].attempt, attempt);
            s.settle_delivery(c[0].clone(), answered(503), now, policy(), 0.0)
                .await
                .unwrap();
            assert!(
                s.claim_deliveries(now + wait - 1, 30, 10)
                    .await
                    .unwrap()
                    .is_empty(),
                "not before {wait} s"
            );
            now += wait;
        }
        let e = s.outbound_endpoint(id).await.unwrap().unwrap();
        assert_eq!(
            (e.failures, e.open_until, e.failing_since),
            (3, Some(160), Some(100))
        );
        // The probe fails: the circuit stays open twice as long; past the window, the
        // delivery is given up and the next one is the head.
        let probe = s.claim_deliveries(160, 30, 10).await.unwrap();
        s.settle_delivery(probe[0].clone(), answered(500), 160, policy(), 0.0)
            .await
            .unwrap();
        assert_eq!(
            s.outbound_endpoint(id).await.unwrap().unwrap().open_until,
            Some(220)
        );
        let last = s.claim_deliveries(220, 30, 10).await.unwrap();
        assert_eq!(last[0].delivery_id, probe[0].delivery_id);
        s.settle_delivery(last[0].clone(), answered(410), 220, policy(), 0.0)
            .await
            .unwrap();
        let listed = s.outbound_deliveries(id, None, 10).await.unwrap();
        assert_eq!(listed[1].state, outbox::DeliveryState::Failed);
        assert_eq!(listed[1].tries.len(), 5);
        assert_eq!(listed[0].state, outbox::DeliveryState::Pending);
        let e = s.outbound_endpoint(id).await.unwrap().unwrap();
        assert!(!e.enabled, "410 Gone pauses it");
        assert_eq!(e.paused_reason, Some(outbox::PausedReason::Gone));
        assert!(s.claim_deliveries(10_000, 30, 10).await.unwrap().is_empty());
        // A resend queues the given-up event again, behind the waiting one; a pending one
        // cannot be resent, only given up (and then resent).
        let outbox::DeliveryAction::Done(resent) =
            s.resend_delivery(listed[1].id, 300).await.unwrap()
        else {
            panic!("not resent");
        };
        assert!(resent > listed[0].id);
        assert_eq!(
            s.resend_delivery(listed[0].id, 300).await.unwrap(),
            outbox::DeliveryAction::Refused(outbox::DeliveryState::Pending)
        );
        assert_eq!(
            s.give_up_delivery(listed[0].id).await.unwrap(),
            outbox::DeliveryAction::Done(listed[0].id)
        );
        assert_eq!(
            s.give_up_delivery(listed[0].id).await.unwrap(),
            outbox::DeliveryAction::Refused(outbox::DeliveryState::Failed)
        );
        assert_eq!(
            s.resend_delivery(99_999, 300).await.unwrap(),
            outbox::DeliveryAction::NotFound
        );
    }

    async fn outbox_circuit_delays(s: Arc<dyn Store>) {
        let id = hook(&*s, &["onboarding.failed"], true).await;
        ended(&*s, Outcome::Error, 100).await;
        let slow = RetryPolicy {
            schedule: vec![100],
            window: 10_000,
            circuit_failures: 1,
            cooldown: 10,
            max_cooldown: 10,
            pause_after: 100_000,
        };
        let c = s.claim_deliveries(100, 30, 10).await.unwrap();
        s.settle_delivery(c[0].clone(), answered(503), 100, slow, 0.0)
            .await
            .unwrap();
        assert_eq!(
            s.outbound_endpoint(id).await.unwrap().unwrap().open_until,
            Some(110)
        );
        assert!(
            s.claim_deliveries(111, 30, 10).await.unwrap().is_empty(),
            "the circuit's end does not bring the retry forward"
        );
        assert_eq!(s.next_delivery_due(111).await.unwrap(), Some(200));
        // A claim given back (no attempt made here) does not count and blames nobody.
        let again = s.claim_deliveries(200, 30, 10).await.unwrap();
        assert_eq!(again[0].attempt, 2);
        s.release_delivery(again[0].clone(), 260).await.unwrap();
        assert_eq!(s.next_delivery_due(200).await.unwrap(), Some(260));
        let back = s.claim_deliveries(260, 30, 10).await.unwrap();
        assert_eq!(back[0].attempt, 2, "the given-back claim was not counted");
        assert_eq!(s.outbound_endpoint(id).await.unwrap().unwrap().failures, 1);
        // An endpoint's Retry-After, when longer than the schedule's wait, is honoured.
        let busy = AttemptResult {
            retry_after: Some(500),
            ..answered(429)
        };
        let patient = RetryPolicy {
            window: 10_000,
            ..policy()
        };
        s.settle_delivery(back[0].clone(), busy, 260, patient, 0.0)
            .await
            .unwrap();
        assert_eq!(s.next_delivery_due(261).await.unwrap(), Some(760));
        let back = s.claim_deliveries(760, 30, 10).await.unwrap();
        // Deleted while an attempt was in flight: its settle records nothing and fails not.
        assert!(s.delete_outbound_endpoint(id).await.unwrap());
        s.settle_delivery(back[0].clone(), answered(204), 261, policy(), 0.0)
            .await
            .unwrap();
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
    async fn insert_register_step(s: &dyn Store) -> i64 {
        let mut record = OnboardingRecord::new(Flow::Code, 100);
        record.granted = vec!["9".into()];
        record.steps = vec![step(StepKind::Register, "9", Some("10"))];
        s.insert_onboarding(record, None).await.unwrap().id
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

    fn change(n: u32, kind: ChangeKind, waba: &str) -> StatusChange {
        StatusChange {
            dedupe: Sha256::digest(format!("change {n} {waba}").as_bytes()).into(),
            field: "account_update".into(),
            kind,
            waba_id: Some(waba.into()),
            value: Some(format!("value {n}")),
            raw: format!("{{\"n\":{n}}}"),
        }
    }

    async fn held_in_order(s: Arc<dyn Store>) {
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
    }

    async fn silent_wait(s: Arc<dyn Store>) {
        insert_register_step(&*s).await;
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
    }

    async fn admin_retry(s: Arc<dyn Store>) {
        let onboarding = insert_register_step(&*s).await;
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
        let write = GraphWrite {
            id: 0,
            at: 101,
            step_id: claimed.id,
            onboarding_id: onboarding,
            method: "POST".into(),
            path: "10/register".into(),
            token: TokenKind::Business,
            status: 400,
            answer: "{\"error\":{\"code\":133005}}".into(),
        };
        s.settle_step(claimed, failed, Some(write.clone()), Vec::new(), 101)
            .await
            .unwrap();
        let audited = s.writes(0, 10).await.unwrap();
        assert_eq!(audited.len(), 1);
        assert_eq!(
            GraphWrite {
                id: audited[0].id,
                ..write
            },
            audited[0]
        );
        let id = s.steps_of(onboarding).await.unwrap()[0].id;
        assert!(matches!(
            s.retry_step(id, 102).await.unwrap(),
            Retry::Retried(_)
        ));
        assert!(matches!(
            s.retry_step(id, 102).await.unwrap(),
            Retry::NotRetryable(StepState::Pending)
        ));
        assert!(matches!(
            s.retry_step(id + 1000, 102).await.unwrap(),
            Retry::NotFound
        ));
        let retried = s.claim_step(102, 30).await.unwrap().unwrap();
        assert!(retried.by_admin && retried.failures == 0);
        s.settle_step(retried, transient(103), None, Vec::new(), 102)
            .await
            .unwrap();
        let again = s.claim_step(103, 30).await.unwrap().unwrap();
        assert!(!again.by_admin, "the admin's allowance covered one attempt");
        assert_eq!(again.failures, 1);
        let listed = s.follow_ups(10).await.unwrap();
        assert!(listed.is_empty(), "a running step is no follow-up");
    }

    async fn attempt_window(s: Arc<dyn Store>) {
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
    }

    async fn records_read_back(s: Arc<dyn Store>) {
        let mut record = OnboardingRecord::new(Flow::Code, 500);
        record.outcome = Outcome::Finished;
        record.event = Some("FINISH".into());
        record.granted = vec!["18446744073709551615".into(), "2".into()];
        record.business_id = Some("77".into());
        record.token = Some(SealedToken {
            nonce: vec![1, 2, 3],
            ciphertext: vec![0, 255, 7],
            expires_at: 9_000,
        });
        record.follow_ups = vec![
            FollowUp {
                waba_id: Some("2".into()),
                reason: FollowUpReason::NoPhoneNumber,
                message: "no number".into(),
                action: "add one".into(),
            },
            FollowUp {
                waba_id: None,
                reason: FollowUpReason::LeftAtStep,
                message: "left".into(),
                action: "write".into(),
            },
        ];
        let hash = [7u8; 32];
        let id = s
            .insert_onboarding(
                record.clone(),
                Some(NewSession {
                    hash,
                    expires_at: 1_000,
                }),
            )
            .await
            .unwrap()
            .id;
        let back = s.onboarding(id).await.unwrap().unwrap();
        assert_eq!(back.record.granted, record.granted, "ids stay strings");
        assert_eq!(back.record.token, record.token);
        assert_eq!(back.record.follow_ups, record.follow_ups, "in order");
        assert_eq!(back.record.event.as_deref(), Some("FINISH"));
        assert_eq!(s.follow_ups(10).await.unwrap().len(), 1);
        assert_eq!(s.onboardings(None, 10).await.unwrap()[0].id, id);
        assert!(s.onboardings(Some(id), 10).await.unwrap().is_empty());
        let grant = s.session(hash, 999).await.unwrap().unwrap();
        assert_eq!((grant.onboarding_id, grant.wabas), (id, record.granted));
        assert!(s.session(hash, 1_000).await.unwrap().is_none(), "expired");
        assert!(s.session([8; 32], 0).await.unwrap().is_none());

        assert!(s.claim_code([1; 32], 10).await.unwrap());
        assert!(!s.claim_code([1; 32], 11).await.unwrap(), "used once");
        s.release_code([1; 32]).await.unwrap();
        assert!(s.claim_code([1; 32], 12).await.unwrap(), "given back");
        s.prune_codes(13).await.unwrap();
        assert!(s.claim_code([1; 32], 14).await.unwrap(), "pruned");

        let stored = s
            .record_changes(
                vec![
                    change(1, ChangeKind::Review, "2"),
                    change(2, ChangeKind::DisabledUpdate, "2"),
                ],
                600,
                None,
            )
            .await
            .unwrap();
        assert_eq!(stored.len(), 2);
        let again = s
            .record_changes(vec![change(1, ChangeKind::Review, "2")], 601, None)
            .await
            .unwrap();
        assert!(again.is_empty(), "a redelivery is stored once");
        let all = s.changes(0, 100).await.unwrap();
        assert_eq!(all, stored);
        assert_eq!(s.newest_change().await.unwrap(), stored[1].seq);
        assert_eq!(s.changes(stored[0].seq, 100).await.unwrap(), stored[1..]);
        assert_eq!(
            s.changes_of(vec!["2".into()], 1).await.unwrap(),
            stored[1..]
        );
        assert!(s.changes_of(vec!["3".into()], 5).await.unwrap().is_empty());
    }

    async fn tracker_lease(s: Arc<dyn Store>) {
        let set = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
        assert!(s.claim_tracker_pass("a".into(), 100, 60, 30).await.unwrap());
        let first = s
            .apply_share_set(set(&["1", "2"]), 100, None, "a".into())
            .await
            .unwrap()
            .unwrap();
        assert!(first.baseline && first.shared.is_empty());
        assert!(
            !s.claim_tracker_pass("a".into(), 150, 60, 30).await.unwrap(),
            "one pass per interval"
        );
        assert!(s.claim_tracker_pass("a".into(), 200, 60, 30).await.unwrap());
        assert!(
            !s.claim_tracker_pass("b".into(), 210, 60, 30).await.unwrap(),
            "a holds it"
        );
        let diff = s
            .apply_share_set(set(&["2", "3"]), 215, None, "a".into())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (diff.shared, diff.unshared),
            (vec!["3".into()], vec!["1".into()])
        );
        assert!(
            !s.claim_tracker_pass("b".into(), 220, 60, 30).await.unwrap(),
            "one pass per interval"
        );
        assert!(s.claim_tracker_pass("b".into(), 260, 60, 30).await.unwrap());
        // b dies mid-pass: after its lease a takes over, and b's late answer is dropped.
        assert!(!s.claim_tracker_pass("a".into(), 289, 0, 30).await.unwrap());
        assert!(s.claim_tracker_pass("a".into(), 291, 0, 30).await.unwrap());
        assert!(
            s.apply_share_set(set(&["9"]), 292, None, "b".into())
                .await
                .unwrap()
                .is_none(),
            "a lost lease stores nothing"
        );
        // A pass longer than its lease still counts when nobody took the lease over.
        assert!(
            s.apply_share_set(set(&["2", "3"]), 400, None, "a".into())
                .await
                .unwrap()
                .is_some()
        );
        let events = s.share_events(0, 10).await.unwrap();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].kind, ShareKind::Shared);
    }

    async fn revoke_and_offboard(s: Arc<dyn Store>) {
        let onboarding = insert_register_step(&*s).await;
        let claimed = s.claim_step(100, 30).await.unwrap().unwrap();
        s.settle_step(
            claimed,
            outcome(StepState::Done, None),
            None,
            Vec::new(),
            101,
        )
        .await
        .unwrap();
        let Offboard::Started(changes) = s.offboard(onboarding, 102).await.unwrap() else {
            panic!("offboarded")
        };
        let kinds: Vec<_> = s
            .steps_of(onboarding)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                StepKind::Register,
                StepKind::Unsubscribe,
                StepKind::Deregister
            ]
        );
        assert_eq!(changes.len(), 2);
        assert!(matches!(
            s.offboard(onboarding + 100, 103).await.unwrap(),
            Offboard::NotFound
        ));
        let stored = s
            .record_changes(vec![change(3, ChangeKind::PartnerRemoved, "9")], 104, None)
            .await
            .unwrap();
        assert_eq!(stored.len(), 3, "the removal and its two stopped steps");
        let record = s.onboarding(onboarding).await.unwrap().unwrap();
        assert_eq!(record.record.revoked_at, Some(104));
        assert!(s.claim_step(200, 30).await.unwrap().is_none());
        assert!(matches!(
            s.offboard(onboarding, 105).await.unwrap(),
            Offboard::Revoked
        ));
    }

    async fn pins(s: Arc<dyn Store>) {
        let pin = |n: u8, partner| SealedPin {
            phone_id: "10".into(),
            sealed: SealedToken {
                nonce: vec![n],
                ciphertext: vec![n, n],
                expires_at: 0,
            },
            set_by_partner: partner,
        };
        assert_eq!(s.keep_pin(pin(1, false)).await.unwrap(), pin(1, false));
        assert_eq!(
            s.keep_pin(pin(2, false)).await.unwrap(),
            pin(1, false),
            "kept"
        );
        s.put_pin(pin(3, true)).await.unwrap();
        assert_eq!(s.pin("10".into()).await.unwrap(), Some(pin(3, true)));
        let onboarding = insert_register_step(&*s).await;
        assert_eq!(s.pins_of(onboarding).await.unwrap(), vec![pin(3, true)]);
        assert!(s.pin("11".into()).await.unwrap().is_none());
    }
}

#[cfg(test)]
mod replica_tests {
    //! Several stores on one PostgreSQL database, as several replicas hold them.
    use super::super::Signal;
    use super::tests_support::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deliveries_raced_on_replicas_are_claimed_once() {
        use super::super::outbox::NewEndpoint;
        let Some(stores) = replicas(3).await else {
            return;
        };
        for _ in 0..8 {
            stores[0]
                .create_outbound_endpoint(
                    NewEndpoint {
                        url: "https://hooks.example.com/".into(),
                        description: String::new(),
                        events: vec!["*".into()],
                        secret: super::super::SealedToken {
                            nonce: vec![1; 12],
                            ciphertext: vec![2; 40],
                            expires_at: 0,
                        },
                        enabled: true,
                    },
                    1,
                )
                .await
                .unwrap()
                .unwrap();
        }
        let mut record = super::super::OnboardingRecord::new(super::super::Flow::Code, 5);
        record.outcome = super::super::Outcome::Finished;
        stores[1].insert_onboarding(record, None).await.unwrap();
        let claims = stores.iter().map(|s| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..5 {
                    got.extend(
                        s.claim_deliveries(10, 30, 3)
                            .await
                            .unwrap()
                            .into_iter()
                            .map(|c| c.delivery_id),
                    );
                }
                got
            })
        });
        let mut all = Vec::new();
        for c in claims {
            all.extend(c.await.unwrap());
        }
        all.sort_unstable();
        let claimed = all.len();
        all.dedup();
        assert_eq!((claimed, all.len()), (8, 8), "each delivery claimed once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_code_raced_on_replicas_is_claimed_once() {
        let Some(stores) = replicas(3).await else {
            return;
        };
        for round in 0u8..20 {
            let claims = stores.iter().map(|s| {
                let s = s.clone();
                tokio::spawn(async move { s.claim_code([round; 32], 1).await.unwrap() })
            });
            let mut won = 0;
            for c in claims {
                won += usize::from(c.await.unwrap());
            }
            assert_eq!(won, 1, "round {round}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_following_the_sequence_misses_nothing_written_concurrently() {
        let Some(stores) = replicas(3).await else {
            return;
        };
        const EACH: u32 = 60;
        let writers: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(w, s)| {
                let s = s.clone();
                tokio::spawn(async move {
                    for n in 0..EACH {
                        let c = change(n, &format!("{w}"));
                        assert_eq!(s.record_changes(vec![c], 1, None).await.unwrap().len(), 1);
                    }
                })
            })
            .collect();
        // Follows as a stream does: everything after the last sequence number seen.
        let reader = stores[0].clone();
        let mut seen = Vec::new();
        let mut last = 0;
        let total = EACH as usize * stores.len();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while seen.len() < total && std::time::Instant::now() < deadline {
            for c in reader.changes(last, 7).await.unwrap() {
                last = c.seq;
                seen.push(c.change.dedupe);
            }
        }
        for w in writers {
            w.await.unwrap();
        }
        seen.extend(
            reader
                .changes(last, 1000)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.change.dedupe),
        );
        let unique: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(seen.len(), total, "every change once");
        assert_eq!(unique.len(), total);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_step_raced_on_replicas_runs_on_one() {
        let Some(stores) = replicas(3).await else {
            return;
        };
        insert_steps(&*stores[0], 10).await;
        let mut claimed = Vec::new();
        for _ in 0..4 {
            let claims = stores.iter().map(|s| {
                let s = s.clone();
                tokio::spawn(async move { s.claim_step(100, 30).await.unwrap() })
            });
            for c in claims {
                claimed.extend(c.await.unwrap().map(|s| s.id));
            }
        }
        let unique: std::collections::HashSet<_> = claimed.iter().collect();
        assert_eq!(claimed.len(), 10, "every step claimed: {claimed:?}");
        assert_eq!(unique.len(), 10, "none twice: {claimed:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_replica_hears_stored_changes_and_closed_gates() {
        let Some(stores) = replicas(2).await else {
            return;
        };
        let mut heard = stores[1].signals().expect("PostgreSQL carries signals");
        stores[0]
            .record_changes(vec![change(1, "4242")], 1, None)
            .await
            .unwrap();
        let next = |heard: &mut tokio::sync::broadcast::Receiver<Signal>| {
            let got = heard.try_recv();
            got.ok()
        };
        let wait = || tokio::time::sleep(std::time::Duration::from_millis(20));
        let mut got = None;
        for _ in 0..250 {
            got = next(&mut heard);
            if got.is_some() {
                break;
            }
            wait().await;
        }
        assert_eq!(
            got,
            Some(Signal::Changes {
                waba_id: Some("4242".into())
            })
        );
        let closed = Signal::Throttled {
            route: "waba".into(),
            object: "4242".into(),
            wait_ms: 123,
        };
        stores[0].signal(closed.clone()).await.unwrap();
        let mut got = None;
        for _ in 0..250 {
            got = next(&mut heard);
            if got.is_some() {
                break;
            }
            wait().await;
        }
        assert_eq!(got, Some(closed));
        assert!(stores[1].ping().await.is_ok());
    }
}

#[cfg(test)]
mod tests_support {
    //! What the store tests share.
    use super::super::{
        Flow, NewStep, OnboardingRecord, PostgresOptions, PostgresStore, StatusChange, StepKind,
        StepState, Store, TokenKind,
    };
    use super::ChangeKind;
    use sha2::{Digest, Sha256};
    use std::sync::Arc;

    /// `n` stores on one new PostgreSQL database, as `n` replicas would hold them (over TLS:
    /// the test server has it, and the default `sslmode=prefer` uses it, checking the
    /// certificate against the server's CA).
    pub async fn replicas(n: usize) -> Option<Vec<Arc<dyn Store>>> {
        let url = waba_testkit::postgres::fresh_database().await?;
        let options = PostgresOptions {
            ca_file: waba_testkit::postgres::ca_file(),
            ..PostgresOptions::default()
        };
        let mut out: Vec<Arc<dyn Store>> = Vec::new();
        for _ in 0..n {
            out.push(Arc::new(
                PostgresStore::connect(&url, &options).await.unwrap(),
            ));
        }
        Some(out)
    }

    /// A status change numbered `n` about `waba`.
    pub fn change(n: u32, waba: &str) -> StatusChange {
        StatusChange {
            dedupe: Sha256::digest(format!("change {n} {waba}").as_bytes()).into(),
            field: "account_update".into(),
            kind: ChangeKind::Review,
            waba_id: Some(waba.into()),
            value: Some(format!("value {n}")),
            raw: format!("{{\"n\":{n}}}"),
        }
    }

    /// `n` onboardings of one subscribe step each, for WABAs 1 to `n`.
    pub async fn insert_steps(s: &dyn Store, n: u32) {
        for i in 1..=n {
            let mut record = OnboardingRecord::new(Flow::Code, 100);
            record.granted = vec![i.to_string()];
            record.steps = vec![NewStep {
                kind: StepKind::Subscribe,
                waba_id: i.to_string(),
                phone_id: None,
                phone_label: None,
                state: StepState::Pending,
                token: TokenKind::Business,
                message: None,
                not_before: 0,
            }];
            s.insert_onboarding(record, None).await.unwrap();
        }
    }
}
