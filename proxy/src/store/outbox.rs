//! The outbox of the partner's own webhooks: endpoints, the events they want, and every
//! delivery and attempt.
//!
//! Events are written by the same transaction as the change that causes them (an onboarding
//! recorded, a step settled, a change Meta announced, a share the tracker saw), so a crash
//! can neither lose one nor announce one that did not happen. An event is stored only when
//! an endpoint wants its type, with one delivery per such endpoint. The sender
//! (`crate::outbound`) claims deliveries with a lease, one at a time per endpoint and in
//! order, so replicas on one database never send the same delivery at once.

use super::sql::{Conn, Row, read_all};
use super::{
    ChangeKind, OnboardingRecord, Outcome, SealedToken, ShareKind, StatusChange, Step, StepState,
    StoreError,
};
use serde_json::{Value, json};

/// The event types an endpoint may ask for, with what each means.
pub const EVENT_TYPES: &[(&str, &str)] = &[
    (
        "onboarding.finished",
        "A business finished Embedded Signup and shared its WABA (token or code flow).",
    ),
    (
        "onboarding.abandoned",
        "A business left Embedded Signup; `current_step` says where.",
    ),
    (
        "onboarding.failed",
        "A signup ended with an error the business reported, or Meta refused its code.",
    ),
    (
        "onboarding.offboarded",
        "The partner offboarded an onboarding.",
    ),
    (
        "waba.shared",
        "A WABA was newly shared with the partner (webhook or tracker).",
    ),
    (
        "waba.unshared",
        "A WABA is no longer shared with the partner.",
    ),
    (
        "waba.review_decided",
        "Meta's review decided on a WABA (`account_review_update`).",
    ),
    (
        "waba.restricted",
        "Meta restricted, flagged or disabled a WABA (`ACCOUNT_RESTRICTION`, \
         `ACCOUNT_VIOLATION`, `DISABLED_UPDATE`).",
    ),
    (
        "waba.reinstated",
        "Meta reinstated a disabled WABA (`DISABLED_UPDATE` `REINSTATE`).",
    ),
    (
        "phone.ready",
        "A phone number is registered on Cloud API: ready to message.",
    ),
    (
        "phone.needs_action",
        "A phone number waits for the business or the partner to act.",
    ),
    (
        "phone.quality_changed",
        "Meta changed a number's quality rating or messaging limit.",
    ),
    (
        "pipeline.step_changed",
        "A post-signup step changed state (pending, running, done, skipped, failed).",
    ),
    ("pipeline.step_failed", "A post-signup step failed."),
];

/// Whether `kind` is one of [`EVENT_TYPES`].
pub fn known_type(kind: &str) -> bool {
    EVENT_TYPES.iter().any(|(k, _)| *k == kind)
}

super::stored_names! {
    /// Where a delivery stands.
    DeliveryState {
        /// Waiting for its turn or its next attempt.
        Pending = "pending",
        /// The endpoint answered 2xx.
        Delivered = "delivered",
        /// Every attempt of the retry window failed: given up (a resend starts again).
        Failed = "failed",
    }
}

super::stored_names! {
    /// Why an endpoint receives nothing for now.
    PausedReason {
        /// The admin paused it.
        Admin = "admin",
        /// It answered `410 Gone`: it wants no more deliveries.
        Gone = "gone",
        /// It failed every attempt for the whole retry window: the circuit paused it.
        Circuit = "circuit",
    }
}

/// An endpoint to create.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Where deliveries go (checked by the caller).
    pub url: String,
    /// The admin's words about it.
    pub description: String,
    /// The event types it wants (`*` for every one).
    pub events: Vec<String>,
    /// Its signing secret, sealed.
    pub secret: SealedToken,
    /// Whether it receives deliveries now.
    pub enabled: bool,
}

/// Changes to an endpoint; `None` keeps a value.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    /// A new URL.
    pub url: Option<String>,
    /// New words.
    pub description: Option<String>,
    /// New event types.
    pub events: Option<Vec<String>>,
    /// Paused (`false`) or resumed (`true`): resuming closes the circuit.
    pub enabled: Option<bool>,
    /// A new signing secret, sealed.
    pub secret: Option<SealedToken>,
    /// With a new secret: until when the one it replaces signs too (unix seconds), so
    /// receivers can change over without losing a delivery.
    pub keep_previous_until: Option<i64>,
}

/// A stored endpoint with its delivery counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Its id.
    pub id: i64,
    /// Where deliveries go.
    pub url: String,
    /// The admin's words about it.
    pub description: String,
    /// The event types it wants.
    pub events: Vec<String>,
    /// The signing secret, sealed.
    pub secret: SealedToken,
    /// Until when the secret it replaced still signs too.
    pub previous_until: Option<i64>,
    /// Whether it receives deliveries.
    pub enabled: bool,
    /// Why not, when paused.
    pub paused_reason: Option<PausedReason>,
    /// Failed attempts in a row.
    pub failures: u32,
    /// Since when every attempt failed.
    pub failing_since: Option<i64>,
    /// Until when the circuit is open (no attempt before).
    pub open_until: Option<i64>,
    /// When it was created.
    pub created_at: i64,
    /// When the admin last changed it.
    pub updated_at: i64,
    /// Deliveries waiting.
    pub pending: i64,
    /// Deliveries made.
    pub delivered: i64,
    /// Deliveries given up.
    pub failed: i64,
    /// When it was last tried.
    pub last_attempt_at: Option<i64>,
}

/// One try of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// When it started (unix seconds).
    pub at: i64,
    /// The endpoint's HTTP status, when it answered.
    pub status: Option<u16>,
    /// How long it took.
    pub latency_ms: u32,
    /// What went wrong, in plain words.
    pub error: Option<String>,
}

/// A delivery of one event to one endpoint, with its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its id.
    pub id: i64,
    /// The endpoint.
    pub endpoint_id: i64,
    /// The event's id (`webhook-id`): the same on every attempt and resend.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// When the event happened.
    pub occurred_at: i64,
    /// The body sent.
    pub payload: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt may start (pending only).
    pub next_at: i64,
    /// When it was made (delivered only).
    pub delivered_at: Option<i64>,
    /// When it was queued.
    pub created_at: i64,
    /// Its attempts, oldest first.
    pub tries: Vec<Attempt>,
}

/// A delivery the sender holds for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The delivery.
    pub delivery_id: i64,
    /// Which attempt this is (1 for the first): the settle is fenced by it.
    pub attempt: u32,
    /// The endpoint.
    pub endpoint_id: i64,
    /// Where to send.
    pub url: String,
    /// The endpoint's secret, sealed.
    pub secret: SealedToken,
    /// The secret it replaced, while that still signs too.
    pub previous: Option<SealedToken>,
    /// `webhook-id`.
    pub event_id: String,
    /// The body.
    pub payload: String,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    /// The HTTP status, when the endpoint answered.
    pub status: Option<u16>,
    /// How long it took.
    pub latency_ms: u32,
    /// What went wrong, when it did.
    pub error: Option<String>,
    /// The endpoint's `Retry-After`, in seconds.
    pub retry_after: Option<i64>,
}

impl AttemptResult {
    /// Whether the endpoint took the delivery (2xx).
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// How deliveries are retried and when an endpoint's circuit opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Seconds before each retry, in order; the last repeats.
    pub schedule: Vec<i64>,
    /// A delivery is given up when it still fails this long after its first attempt.
    pub window: i64,
    /// Failed attempts in a row that open an endpoint's circuit.
    pub circuit_failures: u32,
    /// How long the circuit first stays open (doubling with each failed probe).
    pub cooldown: i64,
    /// The longest it stays open.
    pub max_cooldown: i64,
    /// An endpoint failing for this long is paused until the admin resumes it.
    pub pause_after: i64,
}

impl RetryPolicy {
    /// The delay before the retry after attempt `attempt` (1 for the first), spread by
    /// `jitter` (a fraction from -1 to 1 of a fifth of it).
    pub fn delay(&self, attempt: u32, jitter: f64) -> i64 {
        let idx = (attempt.max(1) as usize - 1).min(self.schedule.len().saturating_sub(1));
        let base = self.schedule.get(idx).copied().unwrap_or(60) as f64;
        (base + base * 0.2 * jitter.clamp(-1.0, 1.0))
            .round()
            .max(1.0) as i64
    }

    /// How long the circuit stays open after `failures` failed attempts in a row.
    pub fn cooldown_after(&self, failures: u32) -> i64 {
        let doublings = failures.saturating_sub(self.circuit_failures).min(20);
        self.cooldown
            .saturating_mul(1i64 << doublings)
            .min(self.max_cooldown)
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

const ENDPOINT_COLUMNS: &str = "p.id, p.url, p.description, p.events, p.secret_nonce, \
     p.secret_ciphertext, p.enabled, p.paused_reason, p.failures, p.failing_since, \
     p.open_until, p.created_at, p.updated_at, \
     (SELECT COUNT(*) FROM outbound_deliveries d WHERE d.endpoint_id = p.id AND d.state = 'pending'), \
     (SELECT COUNT(*) FROM outbound_deliveries d WHERE d.endpoint_id = p.id AND d.state = 'delivered'), \
     (SELECT COUNT(*) FROM outbound_deliveries d WHERE d.endpoint_id = p.id AND d.state = 'failed'), \
     p.last_attempt_at, p.previous_until";

/// The most endpoints one proxy keeps: every event reads them, in the transaction of the
/// change that causes it.
pub const MAX_ENDPOINTS: i64 = 50;

fn read_endpoint(r: &Row) -> Result<Endpoint, StoreError> {
    Ok(Endpoint {
        id: r.get(0)?,
        url: r.get(1)?,
        description: r.get(2)?,
        events: split_list(&r.get::<String>(3)?),
        secret: SealedToken {
            nonce: r.get(4)?,
            ciphertext: r.get(5)?,
            expires_at: 0,
        },
        enabled: r.get(6)?,
        paused_reason: r
            .get::<Option<String>>(7)?
            .map(|s| PausedReason::parse(&s).ok_or(StoreError::Corrupt("paused reason")))
            .transpose()?,
        failures: r.get(8)?,
        failing_since: r.get(9)?,
        open_until: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        pending: r.get(13)?,
        delivered: r.get(14)?,
        failed: r.get(15)?,
        last_attempt_at: r.get(16)?,
        previous_until: r.get(17)?,
    })
}

/// Every endpoint, oldest first.
pub(super) fn endpoints(c: &mut dyn Conn) -> Result<Vec<Endpoint>, StoreError> {
    read_all(
        c.query(
            &format!("SELECT {ENDPOINT_COLUMNS} FROM outbound_endpoints p ORDER BY p.id"),
            &[],
        )?,
        read_endpoint,
    )
}

/// One endpoint.
pub(super) fn endpoint(c: &mut dyn Conn, id: i64) -> Result<Option<Endpoint>, StoreError> {
    c.query_opt(
        &format!("SELECT {ENDPOINT_COLUMNS} FROM outbound_endpoints p WHERE p.id = ?1"),
        &args![id],
    )?
    .as_ref()
    .map(read_endpoint)
    .transpose()
}

/// Stores a new endpoint; it is returned as stored, `None` when [`MAX_ENDPOINTS`] exist.
pub(super) fn create_endpoint(
    c: &mut dyn Conn,
    e: &NewEndpoint,
    now: i64,
) -> Result<Option<Endpoint>, StoreError> {
    let kept: i64 = c
        .query_one("SELECT COUNT(*) FROM outbound_endpoints", &[])?
        .get(0)?;
    if kept >= MAX_ENDPOINTS {
        return Ok(None);
    }
    let id: i64 = c
        .query_one(
            "INSERT INTO outbound_endpoints (url, description, events, secret_nonce, \
             secret_ciphertext, enabled, paused_reason, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) RETURNING id",
            &args![
                &e.url,
                &e.description,
                e.events.join(","),
                e.secret.nonce.clone(),
                e.secret.ciphertext.clone(),
                e.enabled,
                (!e.enabled).then_some(PausedReason::Admin.as_str()),
                now
            ],
        )?
        .get(0)?;
    endpoint(c, id)?
        .ok_or(StoreError::Corrupt("endpoint"))
        .map(Some)
}

/// Applies `patch` to endpoint `id`; `None` when there is none.
pub(super) fn update_endpoint(
    c: &mut dyn Conn,
    id: i64,
    patch: &EndpointPatch,
    now: i64,
) -> Result<Option<Endpoint>, StoreError> {
    let Some(found) = endpoint(c, id)? else {
        return Ok(None);
    };
    let url = patch.url.as_ref().unwrap_or(&found.url);
    let description = patch.description.as_ref().unwrap_or(&found.description);
    let events = patch.events.as_ref().unwrap_or(&found.events).join(",");
    let secret = patch.secret.as_ref().unwrap_or(&found.secret);
    if patch.secret.is_some() {
        // The secret it replaces signs on until `keep_previous_until`, or not at all.
        let until = patch.keep_previous_until.filter(|u| *u > now);
        let keep = until.map(|_| &found.secret);
        c.execute(
            "UPDATE outbound_endpoints SET previous_secret_nonce = ?2, \
             previous_secret_ciphertext = ?3, previous_until = ?4 WHERE id = ?1",
            &args![
                id,
                keep.map(|k| k.nonce.clone()),
                keep.map(|k| k.ciphertext.clone()),
                until
            ],
        )?;
    }
    c.execute(
        "UPDATE outbound_endpoints SET url = ?2, description = ?3, events = ?4, \
         secret_nonce = ?5, secret_ciphertext = ?6, updated_at = ?7 WHERE id = ?1",
        &args![
            id,
            url,
            description,
            events,
            secret.nonce.clone(),
            secret.ciphertext.clone(),
            now
        ],
    )?;
    match patch.enabled {
        Some(true) => {
            // Resumed: the circuit closes and the waiting deliveries go at once, in order,
            // each with a whole retry window again.
            c.execute(
                "UPDATE outbound_endpoints SET enabled = ?2, paused_reason = NULL, failures = 0, \
                 failing_since = NULL, open_until = NULL WHERE id = ?1",
                &args![id, true],
            )?;
            c.execute(
                "UPDATE outbound_deliveries SET next_at = ?2, first_attempt_at = NULL \
                 WHERE endpoint_id = ?1 AND state = 'pending'",
                &args![id, now],
            )?;
        }
        Some(false) if found.enabled => {
            pause(c, id, PausedReason::Admin)?;
        }
        _ => {}
    }
    endpoint(c, id)
}

/// Pauses an endpoint that is not paused already (an admin's pause keeps its reason).
fn pause(c: &mut dyn Conn, id: i64, why: PausedReason) -> Result<(), StoreError> {
    c.execute(
        "UPDATE outbound_endpoints SET enabled = ?2, paused_reason = ?3 WHERE id = ?1 AND enabled",
        &args![id, false, why.as_str()],
    )
    .map(drop)
}

/// Deletes endpoint `id` with its deliveries and their attempts; whether there was one.
pub(super) fn delete_endpoint(c: &mut dyn Conn, id: i64) -> Result<bool, StoreError> {
    c.execute(
        "DELETE FROM outbound_attempts WHERE delivery_id IN \
         (SELECT id FROM outbound_deliveries WHERE endpoint_id = ?1)",
        &args![id],
    )?;
    c.execute(
        "DELETE FROM outbound_deliveries WHERE endpoint_id = ?1",
        &args![id],
    )?;
    Ok(c.execute("DELETE FROM outbound_endpoints WHERE id = ?1", &args![id])? == 1)
}

const DELIVERY_COLUMNS: &str = "d.id, d.endpoint_id, e.id, e.type, e.occurred_at, e.payload, \
     d.state, d.attempts, d.next_at, d.delivered_at, d.created_at";

fn read_delivery(r: &Row) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: r.get(0)?,
        endpoint_id: r.get(1)?,
        event_id: r.get(2)?,
        event_type: r.get(3)?,
        occurred_at: r.get(4)?,
        payload: r.get(5)?,
        state: r.name(6, DeliveryState::parse, "delivery state")?,
        attempts: r.get(7)?,
        next_at: r.get(8)?,
        delivered_at: r.get(9)?,
        created_at: r.get(10)?,
        tries: Vec::new(),
    })
}

/// Deliveries of endpoint `endpoint_id` with id below `before` (all when `None`), newest
/// first, with their attempts.
pub(super) fn deliveries(
    c: &mut dyn Conn,
    endpoint_id: i64,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Delivery>, StoreError> {
    let mut list = read_all(
        c.query(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM outbound_deliveries d \
                 JOIN outbound_events e ON e.seq = d.event_seq \
                 WHERE d.endpoint_id = ?1 AND d.id < ?2 ORDER BY d.id DESC LIMIT ?3"
            ),
            &args![endpoint_id, before.unwrap_or(i64::MAX), limit],
        )?,
        read_delivery,
    )?;
    for d in &mut list {
        d.tries = read_all(
            c.query(
                "SELECT at, status, latency_ms, error FROM outbound_attempts \
                 WHERE delivery_id = ?1 ORDER BY id",
                &args![d.id],
            )?,
            read_attempt,
        )?;
    }
    Ok(list)
}

fn read_attempt(r: &Row) -> Result<Attempt, StoreError> {
    Ok(Attempt {
        at: r.get(0)?,
        status: r.get(1)?,
        latency_ms: r.get(2)?,
        error: r.get(3)?,
    })
}

/// What an admin's action on one delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryAction {
    /// Done; the delivery it made or changed.
    Done(i64),
    /// No such delivery.
    NotFound,
    /// The delivery is not in a state this action applies to.
    Refused(DeliveryState),
}

/// The state of delivery `id`.
fn delivery_state(c: &mut dyn Conn, id: i64) -> Result<Option<DeliveryState>, StoreError> {
    c.query_opt(
        "SELECT state FROM outbound_deliveries WHERE id = ?1",
        &args![id],
    )?
    .map(|r| r.name(0, DeliveryState::parse, "delivery state"))
    .transpose()
}

/// Queues a settled delivery's event again for its endpoint, after everything queued.
pub(super) fn resend(c: &mut dyn Conn, id: i64, now: i64) -> Result<DeliveryAction, StoreError> {
    match delivery_state(c, id)? {
        None => return Ok(DeliveryAction::NotFound),
        Some(DeliveryState::Pending) => {
            return Ok(DeliveryAction::Refused(DeliveryState::Pending));
        }
        Some(_) => {}
    }
    let new: i64 = c
        .query_one(
            "INSERT INTO outbound_deliveries (event_seq, endpoint_id, state, next_at, created_at) \
             SELECT event_seq, endpoint_id, 'pending', CAST(?2 AS BIGINT), CAST(?2 AS BIGINT) \
             FROM outbound_deliveries WHERE id = ?1 RETURNING id",
            &args![id, now],
        )?
        .get(0)?;
    Ok(DeliveryAction::Done(new))
}

/// Gives up a pending delivery (one its endpoint keeps refusing, say), so the next goes; an
/// attempt in flight is recorded but changes nothing more.
pub(super) fn give_up(c: &mut dyn Conn, id: i64) -> Result<DeliveryAction, StoreError> {
    match delivery_state(c, id)? {
        None => Ok(DeliveryAction::NotFound),
        Some(DeliveryState::Pending) => {
            c.execute(
                "UPDATE outbound_deliveries SET state = 'failed', lease_until = NULL WHERE id = ?1",
                &args![id],
            )?;
            Ok(DeliveryAction::Done(id))
        }
        Some(other) => Ok(DeliveryAction::Refused(other)),
    }
}

/// Forgets up to `batch` settled deliveries (delivered or given up) queued before `before`,
/// their attempts, and the events no delivery refers to any more; how many deliveries (the
/// caller repeats while a whole batch went, each batch its own short transaction).
pub(super) fn prune(c: &mut dyn Conn, before: i64, batch: u32) -> Result<u64, StoreError> {
    const OLD: &str = "SELECT id FROM outbound_deliveries WHERE state IN ('delivered', 'failed') \
         AND created_at < ?1 ORDER BY created_at LIMIT ?2";
    c.execute(
        &format!("DELETE FROM outbound_attempts WHERE delivery_id IN ({OLD})"),
        &args![before, batch],
    )?;
    let gone = c.execute(
        &format!("DELETE FROM outbound_deliveries WHERE id IN ({OLD})"),
        &args![before, batch],
    )?;
    c.execute(
        "DELETE FROM outbound_events WHERE seq IN (SELECT seq FROM outbound_events \
         WHERE occurred_at < ?1 AND NOT EXISTS \
         (SELECT 1 FROM outbound_deliveries d WHERE d.event_seq = outbound_events.seq) \
         LIMIT ?2)",
        &args![before, batch],
    )?;
    Ok(gone)
}

/// Each endpoint `p` with its oldest pending delivery `d` (its head), found from the
/// endpoints so that a long queue behind a head costs nothing.
const HEADS: &str = "FROM outbound_endpoints p \
     JOIN outbound_deliveries d ON d.id = (SELECT MIN(h.id) FROM outbound_deliveries h \
          WHERE h.endpoint_id = p.id AND h.state = 'pending')";
/// The heads a sender may take at `?1`: enabled endpoints', not held by another sender.
const FREE_HEADS: &str = "p.enabled AND (d.lease_until IS NULL OR d.lease_until <= ?1)";

/// The time the next attempt is due (an endpoint's head delivery not held by a sender at
/// `now`, no earlier than its retry and its endpoint's open circuit allow), if one waits:
/// a read the sender makes before it takes the write lock to claim.
pub(super) fn next_due(c: &mut dyn Conn, now: i64) -> Result<Option<i64>, StoreError> {
    c.query_one(
        &format!(
            "SELECT MIN(CASE WHEN p.open_until IS NOT NULL AND p.open_until > d.next_at \
             THEN p.open_until ELSE d.next_at END) {HEADS} WHERE {FREE_HEADS}"
        ),
        &args![now],
    )?
    .get(0)
}

/// Claims up to `limit` due deliveries for one attempt each, holding them for `lease_secs`:
/// per endpoint only the oldest pending one, and only when no attempt on that endpoint is
/// in flight, so an endpoint gets its events one at a time and in order. A delivery goes
/// when its retry is due; an open circuit only holds it longer (the head after a give-up
/// waits for it too), never sends sooner than the schedule.
pub(super) fn claim(
    c: &mut dyn Conn,
    now: i64,
    lease_secs: i64,
    limit: u32,
) -> Result<Vec<Claimed>, StoreError> {
    let rows = c.query(
        &format!(
            "SELECT d.id, d.attempts, p.id, p.url, p.secret_nonce, p.secret_ciphertext, e.id, \
             e.payload, CASE WHEN p.previous_until > ?1 THEN p.previous_secret_nonce END, \
             CASE WHEN p.previous_until > ?1 THEN p.previous_secret_ciphertext END {HEADS} JOIN outbound_events e ON e.seq = d.event_seq \
             WHERE {FREE_HEADS} AND d.next_at <= ?1 \
             AND (p.open_until IS NULL OR p.open_until <= ?1) \
             ORDER BY d.next_at, d.id LIMIT ?2"
        ),
        &args![now, limit],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let claimed = Claimed {
            delivery_id: r.get(0)?,
            attempt: r.get::<u32>(1)? + 1,
            endpoint_id: r.get(2)?,
            url: r.get(3)?,
            secret: SealedToken {
                nonce: r.get(4)?,
                ciphertext: r.get(5)?,
                expires_at: 0,
            },
            event_id: r.get(6)?,
            payload: r.get(7)?,
            previous: match (r.get::<Option<Vec<u8>>>(8)?, r.get::<Option<Vec<u8>>>(9)?) {
                (Some(nonce), Some(ciphertext)) => Some(SealedToken {
                    nonce,
                    ciphertext,
                    expires_at: 0,
                }),
                _ => None,
            },
        };
        c.execute(
            "UPDATE outbound_deliveries SET attempts = ?2, lease_until = ?3, \
             first_attempt_at = COALESCE(first_attempt_at, ?4) WHERE id = ?1",
            &args![claimed.delivery_id, claimed.attempt, now + lease_secs, now],
        )?;
        out.push(claimed);
    }
    Ok(out)
}

/// Records the attempt `claimed` made and moves the delivery and its endpoint on: delivered
/// (the circuit closes), or retried after the policy's delay (`jitter` from -1 to 1, the
/// endpoint's `Retry-After` when longer), given up once the retry window has passed. The
/// endpoint's circuit opens after the policy's failures in a row; a `410 Gone` or failing
/// for the whole pause period pauses it. An attempt whose lease was lost (another process
/// claimed the delivery again) is recorded and changes nothing else.
pub(super) fn settle(
    c: &mut dyn Conn,
    claimed: &Claimed,
    result: &AttemptResult,
    now: i64,
    policy: &RetryPolicy,
    jitter: f64,
) -> Result<(), StoreError> {
    // Deleted with its endpoint meanwhile: nothing to record.
    if delivery_state(c, claimed.delivery_id)?.is_none() {
        return Ok(());
    }
    let started = now - i64::from(result.latency_ms / 1000);
    c.execute(
        "UPDATE outbound_endpoints SET last_attempt_at = ?2 WHERE id = ?1",
        &args![claimed.endpoint_id, started],
    )?;
    c.execute(
        "INSERT INTO outbound_attempts (delivery_id, at, status, latency_ms, error) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        &args![
            claimed.delivery_id,
            started,
            result.status,
            result.latency_ms,
            &result.error
        ],
    )?;
    let held = c.query_opt(
        "SELECT first_attempt_at FROM outbound_deliveries \
         WHERE id = ?1 AND attempts = ?2 AND state = 'pending' AND lease_until IS NOT NULL",
        &args![claimed.delivery_id, claimed.attempt],
    )?;
    let Some(held) = held else {
        return Ok(());
    };
    let first: i64 = held.get::<Option<i64>>(0)?.unwrap_or(now);
    if result.delivered() {
        c.execute(
            "UPDATE outbound_deliveries SET state = 'delivered', delivered_at = ?2, \
             lease_until = NULL WHERE id = ?1",
            &args![claimed.delivery_id, now],
        )?;
        c.execute(
            "UPDATE outbound_endpoints SET failures = 0, failing_since = NULL, open_until = NULL \
             WHERE id = ?1",
            &args![claimed.endpoint_id],
        )?;
        return Ok(());
    }
    if now - first >= policy.window {
        c.execute(
            "UPDATE outbound_deliveries SET state = 'failed', lease_until = NULL WHERE id = ?1",
            &args![claimed.delivery_id],
        )?;
    } else {
        let wait = policy
            .delay(claimed.attempt, jitter)
            .max(result.retry_after.unwrap_or(0));
        c.execute(
            "UPDATE outbound_deliveries SET next_at = ?2, lease_until = NULL WHERE id = ?1",
            &args![claimed.delivery_id, now + wait],
        )?;
    }
    let row = c.query_one(
        "UPDATE outbound_endpoints SET failures = failures + 1, \
         failing_since = COALESCE(failing_since, ?2) WHERE id = ?1 \
         RETURNING failures, failing_since",
        &args![claimed.endpoint_id, now],
    )?;
    let failures: u32 = row.get(0)?;
    let since: i64 = row.get(1)?;
    if result.status == Some(410) {
        pause(c, claimed.endpoint_id, PausedReason::Gone)?;
    } else if now - since >= policy.pause_after {
        pause(c, claimed.endpoint_id, PausedReason::Circuit)?;
    }
    let open_until = (failures >= policy.circuit_failures).then(|| {
        now + policy
            .cooldown_after(failures)
            .max(result.retry_after.unwrap_or(0))
    });
    c.execute(
        "UPDATE outbound_endpoints SET open_until = ?2 WHERE id = ?1",
        &args![claimed.endpoint_id, open_until],
    )?;
    Ok(())
}

/// Gives back a claimed delivery no attempt was made for (the sender could not make one:
/// its key cannot open the secret, or it held the claim too long to send in time): the
/// attempt is not counted, the endpoint not blamed, and it is due again at `retry_at`.
pub(super) fn release(
    c: &mut dyn Conn,
    claimed: &Claimed,
    retry_at: i64,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE outbound_deliveries SET lease_until = NULL, attempts = attempts - 1, \
         next_at = ?3, first_attempt_at = CASE WHEN attempts = 1 THEN NULL \
         ELSE first_attempt_at END \
         WHERE id = ?1 AND attempts = ?2 AND state = 'pending'",
        &args![claimed.delivery_id, claimed.attempt, retry_at],
    )
    .map(drop)
}

/// Stores an event of `kind` that happened at `at` with `data`, and a delivery for every
/// endpoint that wants it: enabled ones, and those the admin paused (they get it when
/// resumed); not those paused because they answered 410 or failed for the whole pause
/// period. Nothing is stored when no endpoint wants it.
fn enqueue(c: &mut dyn Conn, kind: &str, at: i64, data: Value) -> Result<(), StoreError> {
    let wanted: Vec<i64> = c
        .query(
            "SELECT id, events FROM outbound_endpoints \
             WHERE enabled OR paused_reason = 'admin' ORDER BY id",
            &[],
        )?
        .iter()
        .filter_map(|r| {
            let events: String = r.get(1).ok()?;
            events
                .split(',')
                .any(|e| e == "*" || e == kind)
                .then(|| r.get(0).ok())
                .flatten()
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|_| StoreError::Random)?;
    use base64::Engine as _;
    let id = format!(
        "msg_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let payload = json!({
        "type": kind,
        "timestamp": crate::clock::rfc3339(at),
        "data": data,
    })
    .to_string();
    let seq: i64 = c
        .query_one(
            "INSERT INTO outbound_events (id, type, occurred_at, payload) \
             VALUES (?1, ?2, ?3, ?4) RETURNING seq",
            &args![&id, kind, at, &payload],
        )?
        .get(0)?;
    for endpoint in wanted {
        c.execute(
            "INSERT INTO outbound_deliveries (event_seq, endpoint_id, state, next_at, created_at) \
             VALUES (?1, ?2, 'pending', ?3, ?3)",
            &args![seq, endpoint, at],
        )?;
    }
    Ok(())
}

/// The events of a recorded onboarding: how the signup ended. A record found without a
/// signup (`discovered`) is announced as `waba.shared` instead.
pub(super) fn onboarding_recorded(
    c: &mut dyn Conn,
    id: i64,
    r: &OnboardingRecord,
) -> Result<(), StoreError> {
    let kind = match (r.flow, r.outcome) {
        (super::Flow::Discovered, _) | (_, Outcome::Unknown) => return Ok(()),
        (_, Outcome::Finished) => "onboarding.finished",
        (_, Outcome::Cancelled) => "onboarding.abandoned",
        (_, Outcome::Error | Outcome::CodeRejected) => "onboarding.failed",
    };
    let data = json!({
        "onboarding_id": id,
        "flow": r.flow.as_str(),
        "outcome": r.outcome.as_str(),
        "event": r.event,
        "waba_ids": r.granted,
        "reported_waba_id": r.reported_waba_id,
        "phone_number_id": r.phone_number_id,
        "business_id": r.business_id,
        "current_step": r.current_step,
        "error_code": r.error_id,
        "error_message": r.error_message,
        "session_id": r.session_id,
    });
    enqueue(c, kind, r.created_at, data)
}

/// The event of an offboarded onboarding.
pub(super) fn offboarded(
    c: &mut dyn Conn,
    id: i64,
    wabas: &[String],
    now: i64,
) -> Result<(), StoreError> {
    enqueue(
        c,
        "onboarding.offboarded",
        now,
        json!({ "onboarding_id": id, "waba_ids": wabas }),
    )
}

/// The event of a share the tracker's set gained or lost.
pub(super) fn share_changed(
    c: &mut dyn Conn,
    waba: &str,
    kind: ShareKind,
    now: i64,
) -> Result<(), StoreError> {
    let kind = match kind {
        ShareKind::Shared => "waba.shared",
        ShareKind::Unshared => "waba.unshared",
    };
    enqueue(c, kind, now, json!({ "waba_id": waba }))
}

/// The events of a change Meta announced (shares are announced by [`share_changed`]).
pub(super) fn meta_change(
    c: &mut dyn Conn,
    change: &StatusChange,
    now: i64,
) -> Result<(), StoreError> {
    // `raw` is `{"field", "value"}` as Meta sent the change.
    let value = serde_json::from_str::<Value>(&change.raw)
        .ok()
        .and_then(|mut v| v.get_mut("value").map(Value::take))
        .unwrap_or(Value::Null);
    let kind = match (change.kind, change.value.as_deref()) {
        (ChangeKind::Review, _) => "waba.review_decided",
        (ChangeKind::DisabledUpdate, Some("REINSTATE")) => "waba.reinstated",
        (
            ChangeKind::AccountRestriction
            | ChangeKind::AccountViolation
            | ChangeKind::DisabledUpdate,
            _,
        ) => "waba.restricted",
        (ChangeKind::PhoneQuality, _) => "phone.quality_changed",
        _ => return Ok(()),
    };
    let data = if change.kind == ChangeKind::Review {
        json!({ "waba_id": change.waba_id, "decision": change.value, "meta": value })
    } else {
        json!({
            "waba_id": change.waba_id,
            "event": value.get("event"),
            "detail": change.value,
            "meta": value,
        })
    };
    enqueue(c, kind, now, data)
}

/// The events of a step's new state: every change, a failure, a number ready to message or
/// waiting for someone.
pub(super) fn step_changed(c: &mut dyn Conn, step: &Step, now: i64) -> Result<(), StoreError> {
    let view = step.to_json();
    enqueue(c, "pipeline.step_changed", now, json!({ "step": view }))?;
    if step.state == StepState::Failed {
        enqueue(c, "pipeline.step_failed", now, json!({ "step": view }))?;
    }
    let Some(phone) = &step.phone_id else {
        return Ok(());
    };
    let number = json!({
        "onboarding_id": step.onboarding_id,
        "waba_id": step.waba_id,
        "phone_number_id": phone,
        "display_phone_number": step.phone_label,
    });
    if step.kind == super::StepKind::Register && step.state == StepState::Done {
        return enqueue(c, "phone.ready", now, number);
    }
    let waiting = matches!(step.state, StepState::Pending | StepState::Failed)
        && matches!(step.actor.as_deref(), Some("business" | "partner"));
    if waiting {
        let mut data = number;
        let (actor, text) = step.progress();
        data["step"] = json!(step.kind.as_str());
        data["actor"] = json!(actor);
        data["text"] = json!(text);
        data["message"] = json!(step.message);
        data["error_code"] = json!(step.error_code);
        enqueue(c, "phone.needs_action", now, data)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            schedule: vec![5, 300, 1800],
            window: 3600,
            circuit_failures: 3,
            cooldown: 60,
            max_cooldown: 600,
            pause_after: 7200,
        }
    }

    #[test]
    fn delays_follow_the_schedule_within_a_fifth_and_repeat_the_last() {
        let p = policy();
        assert_eq!(p.delay(1, 0.0), 5);
        assert_eq!(p.delay(2, 0.0), 300);
        assert_eq!(p.delay(3, 0.0), 1800);
        assert_eq!(p.delay(9, 0.0), 1800);
        assert_eq!(p.delay(2, 1.0), 360);
        assert_eq!(p.delay(2, -1.0), 240);
        assert_eq!(p.delay(2, 7.0), 360, "jitter is clamped");
    }

    #[test]
    fn the_circuit_cooldown_doubles_up_to_its_cap() {
        let p = policy();
        assert_eq!(p.cooldown_after(3), 60);
        assert_eq!(p.cooldown_after(4), 120);
        assert_eq!(p.cooldown_after(6), 480);
        assert_eq!(p.cooldown_after(7), 600);
        assert_eq!(p.cooldown_after(u32::MAX), 600);
    }

    #[test]
    fn event_types_are_hierarchical_names() {
        for (kind, _) in EVENT_TYPES {
            assert!(
                kind.split('.').count() == 2
                    && kind
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'),
                "{kind}"
            );
            assert!(known_type(kind));
        }
        assert!(!known_type("onboarding"));
    }
}
