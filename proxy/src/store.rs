//! Durable state: onboarding records, code-flow sessions, used codes and the newly-shared
//! tracker's set and events.
//!
//! [`Store`] is what the proxy needs; [`SqliteStore`] keeps it in an embedded SQLite file
//! (WAL, `synchronous=FULL`, versioned migrations at start-up). Another implementation (a
//! server database shared by several replicas) would implement the same trait.

use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

/// A storage failure. Details go to the log, never to a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The database file is from a newer version of the proxy.
    #[error("the database is at schema version {found}, newer than this proxy's {supported}")]
    TooNew {
        /// The file's version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// A lock was poisoned by a panic.
    #[error("the database lock was poisoned")]
    Poisoned,
}

/// How a signup ended, as the page or the code exchange reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// WABA (and phone) shared.
    Finished,
    /// The business left the flow.
    Cancelled,
    /// The business reported an error.
    Error,
    /// The code could not be exchanged (expired or used).
    CodeRejected,
    /// An event this version does not know.
    Unknown,
}

impl Outcome {
    /// The stored and reported name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finished => "finished",
            Self::Cancelled => "cancelled",
            Self::Error => "error",
            Self::CodeRejected => "code_rejected",
            Self::Unknown => "unknown",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "finished" => Self::Finished,
            "cancelled" => Self::Cancelled,
            "error" => Self::Error,
            "code_rejected" => Self::CodeRejected,
            _ => Self::Unknown,
        }
    }
}

/// Something an onboarding leaves to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// The WABA concerned, when one was shared.
    pub waba_id: Option<String>,
    /// Stable code: `left_at_step`, `reported_error`, `certificate_not_ready`,
    /// `no_phone_number`, `code_rejected`.
    pub reason: String,
    /// What happened, in plain words.
    pub message: String,
    /// What the partner should do.
    pub action: String,
}

/// The business token of a code-flow onboarding, encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedToken {
    /// AES-256-GCM nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext with its tag.
    pub ciphertext: Vec<u8>,
    /// When the token expires (unix seconds; 0 when it does not).
    pub expires_at: i64,
}

/// A new onboarding record.
#[derive(Debug, Clone, Default)]
pub struct NewOnboarding {
    /// `code` or `token`.
    pub flow: String,
    /// Seconds since the epoch.
    pub created_at: i64,
    /// How it ended.
    pub outcome: Option<Outcome>,
    /// The session event's name (`FINISH`, `CANCEL`, ...), when one was reported.
    pub event: Option<String>,
    /// WABAs granted to the partner, newest first.
    pub granted: Vec<String>,
    /// The WABA the session event named.
    pub reported_waba_id: Option<String>,
    /// The phone number the session event named.
    pub phone_number_id: Option<String>,
    /// The business that shared.
    pub business_id: Option<String>,
    /// The step the business left at.
    pub current_step: Option<String>,
    /// The error the business reported.
    pub error_message: Option<String>,
    /// Meta's error id.
    pub error_id: Option<String>,
    /// Meta's session id.
    pub session_id: Option<String>,
    /// The business token (code flow only), sealed.
    pub token: Option<SealedToken>,
    /// What is left to do.
    pub follow_ups: Vec<FollowUp>,
}

/// A stored onboarding record.
#[derive(Debug, Clone)]
pub struct Onboarding {
    /// Its id (increasing).
    pub id: i64,
    /// The record.
    pub record: NewOnboarding,
}

/// A code-flow session credential, looked up by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGrant {
    /// The onboarding it belongs to.
    pub onboarding_id: i64,
    /// The WABAs it may read, newest first.
    pub wabas: Vec<String>,
    /// When it stops working (unix seconds).
    pub expires_at: i64,
}

/// Whether a WABA appeared or disappeared from the client list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareKind {
    /// Newly shared with the partner.
    Shared,
    /// No longer shared.
    Unshared,
}

impl ShareKind {
    /// The stored and reported name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Unshared => "unshared",
        }
    }
}

/// One tracker event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareEvent {
    /// Increasing; the cursor of the events route.
    pub seq: i64,
    /// The WABA.
    pub waba_id: String,
    /// Shared or unshared.
    pub kind: ShareKind,
    /// When the tracker noticed (unix seconds).
    pub detected_at: i64,
}

/// What one tracker pass changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Newly shared WABAs.
    pub shared: Vec<String>,
    /// WABAs no longer shared.
    pub unshared: Vec<String>,
    /// Whether this pass only recorded the first set (no events).
    pub baseline: bool,
}

/// A status change Meta announced by webhook, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStatusEvent {
    /// SHA-256 of what identifies the change: a redelivery has the same.
    pub dedupe: [u8; 32],
    /// The webhook field (`account_update`, `account_review_update`, ...).
    pub field: String,
    /// `partner_added`, `partner_removed`, `review`, `account_update`, `phone_quality`,
    /// `phone_name` or `unknown`.
    pub kind: String,
    /// The WABA concerned, when the change names one.
    pub waba_id: Option<String>,
    /// The decision, event or rating the change carries.
    pub value: Option<String>,
    /// The change as Meta sent it (JSON).
    pub raw: String,
}

/// A stored status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEvent {
    /// Increasing: the stream's event id.
    pub seq: i64,
    /// When the proxy received it (unix seconds).
    pub received_at: i64,
    /// The change.
    pub event: NewStatusEvent,
}

/// What the proxy keeps.
pub trait Store: Send + Sync {
    /// Stores webhook changes in one transaction, skipping those already stored (redelivery),
    /// and applies shares and removals to the tracker's set. Returns the newly stored ones.
    fn record_status_events(
        &self,
        events: &[NewStatusEvent],
        now: i64,
    ) -> Result<Vec<StatusEvent>, StoreError>;
    /// Status changes after `after`, oldest first, at most `limit`.
    fn status_events(&self, after: i64, limit: u32) -> Result<Vec<StatusEvent>, StoreError>;
    /// The latest `limit` status changes of these WABAs, oldest first.
    fn status_events_of(
        &self,
        wabas: &[String],
        limit: u32,
    ) -> Result<Vec<StatusEvent>, StoreError>;
    /// Records that `code_hash` was presented; `false` when it had been before.
    fn claim_code(&self, code_hash: &[u8; 32], now: i64) -> Result<bool, StoreError>;
    /// Stores an onboarding and, when given, its session credential's hash, in one
    /// transaction. Returns the record's id.
    fn insert_onboarding(
        &self,
        record: &NewOnboarding,
        session: Option<(&[u8; 32], i64)>,
    ) -> Result<i64, StoreError>;
    /// The session whose credential hashes to `hash`, if it exists and has not expired.
    fn session(&self, hash: &[u8; 32], now: i64) -> Result<Option<SessionGrant>, StoreError>;
    /// Records with id below `before` (all when `None`), newest first.
    fn onboardings(&self, before: Option<i64>, limit: u32) -> Result<Vec<Onboarding>, StoreError>;
    /// One record.
    fn onboarding(&self, id: i64) -> Result<Option<Onboarding>, StoreError>;
    /// Every record that leaves something to do, newest first, at most `limit`.
    fn follow_ups(&self, limit: u32) -> Result<Vec<Onboarding>, StoreError>;
    /// Replaces the tracker's set with `current` and records the difference as events, in one
    /// transaction. The first call records the baseline without events.
    fn apply_share_set(&self, current: &BTreeSet<String>, now: i64) -> Result<Diff, StoreError>;
    /// Tracker events after `after`, oldest first, at most `limit`.
    fn share_events(&self, after: i64, limit: u32) -> Result<Vec<ShareEvent>, StoreError>;
    /// Forgets used codes older than `before` (they expire after 30 s anyway).
    fn prune_codes(&self, before: i64) -> Result<(), StoreError>;
}

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
];

/// The SQLite implementation: one connection behind a mutex (SQLite serialises writers).
pub struct SqliteStore {
    conn: Mutex<Connection>,
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
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        f(&mut conn)
    }
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
     token_nonce, token_ciphertext, token_expires_at";

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
        record: NewOnboarding {
            created_at: row.get(1)?,
            flow: row.get(2)?,
            outcome: Some(Outcome::parse(&row.get::<_, String>(3)?)),
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
                    reason: r.get(1)?,
                    message: r.get(2)?,
                    action: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

fn read_status_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<StatusEvent> {
    let dedupe: Vec<u8> = r.get(1)?;
    Ok(StatusEvent {
        seq: r.get(0)?,
        received_at: r.get(2)?,
        event: NewStatusEvent {
            dedupe: dedupe.try_into().unwrap_or([0; 32]),
            field: r.get(3)?,
            kind: r.get(4)?,
            waba_id: r.get(5)?,
            value: r.get(6)?,
            raw: r.get(7)?,
        },
    })
}

impl Store for SqliteStore {
    fn record_status_events(
        &self,
        events: &[NewStatusEvent],
        now: i64,
    ) -> Result<Vec<StatusEvent>, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let mut stored = Vec::new();
            for e in events {
                let n = tx.execute(
                    "INSERT OR IGNORE INTO status_events \
                     (dedupe, received_at, field, kind, waba_id, value, raw) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![&e.dedupe[..], now, e.field, e.kind, e.waba_id, e.value, e.raw],
                )?;
                if n == 0 {
                    continue;
                }
                stored.push(StatusEvent {
                    seq: tx.last_insert_rowid(),
                    received_at: now,
                    event: e.clone(),
                });
                let Some(waba) = &e.waba_id else { continue };
                match e.kind.as_str() {
                    "partner_added" => {
                        let added = tx.execute(
                            "INSERT OR IGNORE INTO shared_wabas (waba_id, since) VALUES (?1, ?2)",
                            params![waba, now],
                        )?;
                        if added == 1 {
                            tx.execute(
                                "INSERT INTO share_events (waba_id, kind, detected_at) VALUES (?1, 'shared', ?2)",
                                params![waba, now],
                            )?;
                        }
                    }
                    "partner_removed" => {
                        let removed =
                            tx.execute("DELETE FROM shared_wabas WHERE waba_id = ?1", [waba])?;
                        if removed == 1 {
                            tx.execute(
                                "INSERT INTO share_events (waba_id, kind, detected_at) VALUES (?1, 'unshared', ?2)",
                                params![waba, now],
                            )?;
                        }
                    }
                    _ => {}
                }
            }
            tx.commit()?;
            Ok(stored)
        })
    }

    fn status_events_of(
        &self,
        wabas: &[String],
        limit: u32,
    ) -> Result<Vec<StatusEvent>, StoreError> {
        self.with(|c| {
            let mut out = Vec::new();
            let mut stmt = c.prepare_cached(
                "SELECT seq, dedupe, received_at, field, kind, waba_id, value, raw \
                 FROM status_events WHERE waba_id = ?1 ORDER BY seq DESC LIMIT ?2",
            )?;
            for w in wabas {
                let rows = stmt.query_map(params![w, limit], read_status_event)?;
                for r in rows {
                    out.push(r?);
                }
            }
            out.sort_by_key(|e| e.seq);
            let skip = out.len().saturating_sub(limit as usize);
            Ok(out.split_off(skip))
        })
    }

    fn status_events(&self, after: i64, limit: u32) -> Result<Vec<StatusEvent>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, dedupe, received_at, field, kind, waba_id, value, raw \
                 FROM status_events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let list = stmt
                .query_map(params![after, limit], read_status_event)?
                .collect::<Result<_, _>>()?;
            Ok(list)
        })
    }

    fn claim_code(&self, code_hash: &[u8; 32], now: i64) -> Result<bool, StoreError> {
        self.with(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO used_codes (code_hash, used_at) VALUES (?1, ?2)",
                params![&code_hash[..], now],
            )?;
            Ok(n == 1)
        })
    }

    fn insert_onboarding(
        &self,
        r: &NewOnboarding,
        session: Option<(&[u8; 32], i64)>,
    ) -> Result<i64, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO onboardings (created_at, flow, outcome, event, granted, \
                 reported_waba_id, phone_number_id, business_id, current_step, error_message, \
                 error_id, session_id, token_nonce, token_ciphertext, token_expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    r.created_at,
                    r.flow,
                    r.outcome.unwrap_or(Outcome::Unknown).as_str(),
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
                    params![id, f.waba_id, f.reason, f.message, f.action],
                )?;
            }
            if let Some((hash, expires_at)) = session {
                tx.execute(
                    "INSERT INTO sessions (credential_hash, onboarding_id, expires_at) \
                     VALUES (?1, ?2, ?3)",
                    params![&hash[..], id, expires_at],
                )?;
            }
            tx.commit()?;
            Ok(id)
        })
    }

    fn session(&self, hash: &[u8; 32], now: i64) -> Result<Option<SessionGrant>, StoreError> {
        self.with(|c| {
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

    fn onboardings(&self, before: Option<i64>, limit: u32) -> Result<Vec<Onboarding>, StoreError> {
        self.with(|c| {
            let mut list = {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {ONBOARDING_COLUMNS} FROM onboardings WHERE id < ?1 \
                     ORDER BY id DESC LIMIT ?2"
                ))?;
                stmt.query_map(params![before.unwrap_or(i64::MAX), limit], read_onboarding)?
                    .collect::<Result<Vec<_>, _>>()?
            };
            attach_follow_ups(c, &mut list)?;
            Ok(list)
        })
    }

    fn onboarding(&self, id: i64) -> Result<Option<Onboarding>, StoreError> {
        self.with(|c| {
            let found = c
                .query_row(
                    &format!("SELECT {ONBOARDING_COLUMNS} FROM onboardings WHERE id = ?1"),
                    [id],
                    read_onboarding,
                )
                .optional()?;
            let mut list: Vec<Onboarding> = found.into_iter().collect();
            attach_follow_ups(c, &mut list)?;
            Ok(list.pop())
        })
    }

    fn follow_ups(&self, limit: u32) -> Result<Vec<Onboarding>, StoreError> {
        self.with(|c| {
            let mut list = {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {ONBOARDING_COLUMNS} FROM onboardings WHERE id IN \
                     (SELECT onboarding_id FROM follow_ups) ORDER BY id DESC LIMIT ?1"
                ))?;
                stmt.query_map([limit], read_onboarding)?
                    .collect::<Result<Vec<_>, _>>()?
            };
            attach_follow_ups(c, &mut list)?;
            Ok(list)
        })
    }

    fn apply_share_set(&self, current: &BTreeSet<String>, now: i64) -> Result<Diff, StoreError> {
        self.with(|c| {
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
            let unshared: Vec<String> = stored.difference(current).cloned().collect();
            for id in &shared {
                tx.execute(
                    "INSERT INTO shared_wabas (waba_id, since) VALUES (?1, ?2)",
                    params![id, now],
                )?;
                if !baseline {
                    tx.execute(
                        "INSERT INTO share_events (waba_id, kind, detected_at) VALUES (?1, 'shared', ?2)",
                        params![id, now],
                    )?;
                }
            }
            for id in &unshared {
                tx.execute("DELETE FROM shared_wabas WHERE waba_id = ?1", [id])?;
                tx.execute(
                    "INSERT INTO share_events (waba_id, kind, detected_at) VALUES (?1, 'unshared', ?2)",
                    params![id, now],
                )?;
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
            Ok(Diff {
                shared: if baseline { Vec::new() } else { shared },
                unshared,
                baseline,
            })
        })
    }

    fn share_events(&self, after: i64, limit: u32) -> Result<Vec<ShareEvent>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, waba_id, kind, detected_at FROM share_events WHERE seq > ?1 \
                 ORDER BY seq LIMIT ?2",
            )?;
            let list = stmt
                .query_map(params![after, limit], |r| {
                    Ok(ShareEvent {
                        seq: r.get(0)?,
                        waba_id: r.get(1)?,
                        kind: if r.get::<_, String>(2)? == "shared" {
                            ShareKind::Shared
                        } else {
                            ShareKind::Unshared
                        },
                        detected_at: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(list)
        })
    }

    fn prune_codes(&self, before: i64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM used_codes WHERE used_at < ?1", [before])?;
            Ok(())
        })
    }
}
