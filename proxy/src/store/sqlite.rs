//! The SQLite backend: one connection behind a mutex (SQLite serialises writers), each call
//! run on tokio's blocking threads, versioned migrations at start-up.

use super::sql::{Backend, Conn, Mode, Row, SqlStore, Val};
use super::{StoreError, StoreFuture};
use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
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
    // 5: keys every process on the database shares (the stream tickets' key).
    "CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );",
    // 6: the partner's own webhooks: endpoints, the outbox of events, deliveries, attempts.
    "CREATE TABLE outbound_endpoints (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        url TEXT NOT NULL,
        description TEXT NOT NULL,
        events TEXT NOT NULL,
        secret_nonce BLOB NOT NULL,
        secret_ciphertext BLOB NOT NULL,
        enabled INTEGER NOT NULL,
        paused_reason TEXT,
        failures INTEGER NOT NULL DEFAULT 0,
        failing_since INTEGER,
        open_until INTEGER,
        last_attempt_at INTEGER,
        previous_secret_nonce BLOB,
        previous_secret_ciphertext BLOB,
        previous_until INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE outbound_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        occurred_at INTEGER NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE TABLE outbound_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_seq INTEGER NOT NULL REFERENCES outbound_events(seq),
        endpoint_id INTEGER NOT NULL REFERENCES outbound_endpoints(id),
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        first_attempt_at INTEGER,
        next_at INTEGER NOT NULL,
        lease_until INTEGER,
        delivered_at INTEGER,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX outbound_deliveries_queue ON outbound_deliveries(endpoint_id, state, id);
    CREATE INDEX outbound_deliveries_settled ON outbound_deliveries(state, created_at);
    CREATE TABLE outbound_attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        delivery_id INTEGER NOT NULL REFERENCES outbound_deliveries(id),
        at INTEGER NOT NULL,
        status INTEGER,
        latency_ms INTEGER NOT NULL,
        error TEXT
    );
    CREATE INDEX outbound_attempts_by_delivery ON outbound_attempts(delivery_id, id);",
    // 7: the funnel and its export read records by when they were made.
    "CREATE INDEX onboardings_by_creation ON onboardings(created_at);",
];

/// The SQLite store.
pub type SqliteStore = SqlStore<Sqlite>;

/// An embedded SQLite file.
pub struct Sqlite {
    conn: Arc<Mutex<Connection>>,
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
        Ok(SqlStore::with_backend(Sqlite {
            conn: Arc::new(Mutex::new(conn)),
        }))
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

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Val::Null => ToSqlOutput::Owned(Value::Null),
            Val::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            Val::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
            Val::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Val::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

fn read_val(v: ValueRef<'_>) -> Val {
    match v {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(i) => Val::Int(i),
        // The schema has no REAL column: a float is read as the integer it holds.
        ValueRef::Real(f) => Val::Int(f as i64),
        ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Val::Blob(b.to_vec()),
    }
}

impl Conn for rusqlite::Transaction<'_> {
    fn execute(&mut self, sql: &str, args: &[Val]) -> Result<u64, StoreError> {
        let mut stmt = self.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(args))? as u64)
    }

    fn query(&mut self, sql: &str, args: &[Val]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.prepare_cached(sql)?;
        let width = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(Row((0..width)
                .map(|i| r.get_ref(i).map(read_val))
                .collect::<Result<_, _>>()?));
        }
        Ok(out)
    }
}

impl Backend for Sqlite {
    fn run<T: Send + 'static>(
        &self,
        mode: Mode,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'_, T> {
        let conn = self.conn.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                // A panic under the lock leaves the connection usable: SQLite rolls back the
                // open transaction when it is dropped.
                let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                // A writer takes the write lock at once: another process on the same file
                // waits for it (busy timeout) instead of failing to upgrade a read.
                let behavior = match mode {
                    Mode::Read => rusqlite::TransactionBehavior::Deferred,
                    Mode::Write => rusqlite::TransactionBehavior::Immediate,
                };
                let mut tx = conn.transaction_with_behavior(behavior)?;
                let out = f(&mut tx)?;
                tx.commit()?;
                Ok(out)
            })
            .await
            .map_err(|_| StoreError::Worker)?
        })
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}
