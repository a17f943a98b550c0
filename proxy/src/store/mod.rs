//! Durable state: onboarding records, code-flow sessions, used codes, the newly-shared
//! tracker's set and events, the status changes Meta announced by webhook, and the partner's
//! post-signup steps (with the two-step verification PINs, register attempts and the audit
//! trail of every write made to Graph).
//!
//! [`Store`] is what the proxy needs, as async calls. Its logic is SQL written once
//! ([`sql`]), run by one of two backends: [`SqliteStore`] keeps it in an embedded SQLite file
//! (WAL, `synchronous=FULL`), the default for one sidecar; [`PostgresStore`] keeps it in a
//! PostgreSQL database that several replicas share, and carries [`Signal`]s between them with
//! `LISTEN`/`NOTIFY`. Both run versioned migrations at start-up. [`open`] picks one by the
//! `--database` value.

#[macro_use]
pub mod sql;
pub mod funnel;
pub mod outbox;
mod postgres;
mod sqlite;

pub use funnel::{Funnel, FunnelRange, FunnelRecord};
pub use postgres::{Postgres, PostgresOptions, PostgresStore, postgres_config};
pub use sqlite::{Sqlite, SqliteStore, schema_version};

use futures_util::future::BoxFuture;
use std::collections::BTreeSet;
use waba_graph::signup::SignupOutcome;

pub use waba_graph::pipeline::{StepKind, StepState, TokenKind};

/// A storage failure. Details go to the log, never to a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused or failed.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// PostgreSQL refused or failed.
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be had (the server is down, or the pool is spent).
    #[error("database connection: {0}")]
    Connection(String),
    /// The `--database` value is neither a file path nor a usable `postgres://` URL.
    #[error("{0}")]
    Config(String),
    /// The database file is from a newer version of the proxy.
    #[error("the database is at schema version {found}, newer than this proxy's {supported}")]
    TooNew {
        /// The file's version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// A stored value this version cannot read.
    #[error("the database holds an unreadable {0}")]
    Corrupt(&'static str),
    /// The worker running the query stopped (a panic, or shutdown).
    #[error("the database worker stopped")]
    Worker,
    /// The system's random source failed (an outbound event's id could not be made).
    #[error("no randomness available")]
    Random,
}

use waba_graph::named as stored_names;

stored_names! {
    /// Which flow the signup page ran.
    Flow {
        /// The login returned a business token; the page inspects it through the proxy.
        Token = "token",
        /// The login returned a code; the proxy exchanged it.
        Code = "code",
        /// No browser session: Meta's `PARTNER_ADDED` webhook or the tracker found a newly
        /// shared WABA (Hosted Embedded Signup, or a share made elsewhere).
        Discovered = "discovered",
    }
}

stored_names! {
    /// How a signup ended, as the page or the code exchange reported it.
    Outcome {
        /// WABA (and phone) shared.
        Finished = "finished",
        /// The business left the flow.
        Cancelled = "cancelled",
        /// The business reported an error.
        Error = "error",
        /// The code could not be exchanged (expired or used).
        CodeRejected = "code_rejected",
        /// An event this version does not know.
        Unknown = "unknown",
    }
}

impl From<SignupOutcome> for Outcome {
    fn from(o: SignupOutcome) -> Self {
        match o {
            SignupOutcome::Finished => Self::Finished,
            SignupOutcome::Cancelled => Self::Cancelled,
            SignupOutcome::Error => Self::Error,
            SignupOutcome::Unknown => Self::Unknown,
        }
    }
}

stored_names! {
    /// Why an onboarding needs a follow-up.
    FollowUpReason {
        /// The business left Embedded Signup at a step.
        LeftAtStep = "left_at_step",
        /// The business reported an error.
        ReportedError = "reported_error",
        /// A phone number's certificate is not ready (not verified).
        CertificateNotReady = "certificate_not_ready",
        /// A verified phone number waits for the partner to register it.
        RegisterPhone = "register_phone",
        /// The WABA has no phone number.
        NoPhoneNumber = "no_phone_number",
        /// The partner's System User may not read the WABA (Graph code 200).
        AssignSystemUser = "assign_system_user",
        /// Meta refused the signup code.
        CodeRejected = "code_rejected",
    }
}

stored_names! {
    /// What a status change from Meta is about.
    ChangeKind {
        /// `account_update` `PARTNER_ADDED`: a WABA was shared with the partner.
        PartnerAdded = "partner_added",
        /// `account_update` `PARTNER_REMOVED`: a WABA is no longer shared.
        PartnerRemoved = "partner_removed",
        /// `account_review_update`: Meta's review decision.
        Review = "review",
        /// `account_update` `PARTNER_APP_INSTALLED`: the business granted the app permissions.
        PartnerAppInstalled = "partner_app_installed",
        /// `account_update` `PARTNER_APP_UNINSTALLED`: the business removed the app.
        PartnerAppUninstalled = "partner_app_uninstalled",
        /// `account_update` `ACCOUNT_VIOLATION`: a policy violation (`violation_info`).
        AccountViolation = "account_violation",
        /// `account_update` `DISABLED_UPDATE`: a ban, scheduled ban or reinstatement
        /// (`ban_info.waba_ban_state`).
        DisabledUpdate = "disabled_update",
        /// `account_update` `ACCOUNT_RESTRICTION`: limits on what the WABA may do
        /// (`restriction_info`).
        AccountRestriction = "account_restriction",
        /// `account_update` `ACCOUNT_DELETED`.
        AccountDeleted = "account_deleted",
        /// `account_update` `ACCOUNT_OFFBOARDED`: a coexistence number left Cloud API.
        AccountOffboarded = "account_offboarded",
        /// `account_update` `ACCOUNT_RECONNECTED`: it came back.
        AccountReconnected = "account_reconnected",
        /// `account_update` `PARTNER_CLIENT_CERTIFICATION_STATUS_UPDATE` or `..._NEEDED`:
        /// partner-led business verification.
        Certification = "certification",
        /// Any other `account_update` event, named in the value.
        AccountUpdate = "account_update",
        /// `phone_number_quality_update`.
        PhoneQuality = "phone_quality",
        /// `phone_number_name_update`.
        PhoneName = "phone_name",
        /// A step of the partner's post-signup pipeline changed state (field `pipeline`).
        PipelineStep = "pipeline_step",
        /// A field this version does not interpret: kept raw.
        Unknown = "unknown",
    }
}

stored_names! {
    /// Whether a WABA appeared or disappeared from the client list.
    ShareKind {
        /// Newly shared with the partner.
        Shared = "shared",
        /// No longer shared.
        Unshared = "unshared",
    }
}

/// Something an onboarding leaves to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// The WABA concerned, when one was shared.
    pub waba_id: Option<String>,
    /// Why.
    pub reason: FollowUpReason,
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

/// What the proxy records about one signup attempt.
#[derive(Debug, Clone)]
pub struct OnboardingRecord {
    /// Which flow the page ran.
    pub flow: Flow,
    /// Seconds since the epoch.
    pub created_at: i64,
    /// How it ended.
    pub outcome: Outcome,
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
    /// Meta's error code (`error_code`, or `error_id` in older messages).
    pub error_id: Option<String>,
    /// Meta's session id.
    pub session_id: Option<String>,
    /// The business token (code flow only), sealed.
    pub token: Option<SealedToken>,
    /// What is left to do.
    pub follow_ups: Vec<FollowUp>,
    /// When Meta said one of its WABAs is no longer shared with the partner's app
    /// (`PARTNER_REMOVED`, `PARTNER_APP_UNINSTALLED`); its business token is then forgotten.
    pub revoked_at: Option<i64>,
    /// When the partner offboarded it: only the offboarding steps run.
    pub offboarded_at: Option<i64>,
    /// The partner's steps to run for it, stored with the record.
    pub steps: Vec<NewStep>,
}

impl OnboardingRecord {
    /// An empty record of `flow` created at `created_at`.
    pub fn new(flow: Flow, created_at: i64) -> Self {
        Self {
            flow,
            created_at,
            outcome: Outcome::Unknown,
            event: None,
            granted: Vec::new(),
            reported_waba_id: None,
            phone_number_id: None,
            business_id: None,
            current_step: None,
            error_message: None,
            error_id: None,
            session_id: None,
            token: None,
            follow_ups: Vec::new(),
            revoked_at: None,
            offboarded_at: None,
            steps: Vec::new(),
        }
    }
}

/// A step to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStep {
    /// What it does.
    pub kind: StepKind,
    /// The WABA.
    pub waba_id: String,
    /// The number, for per-phone steps.
    pub phone_id: Option<String>,
    /// The number as people read it (`+1 631-555-0101`), when known.
    pub phone_label: Option<String>,
    /// `Pending`, or `Skipped` with the reason in `message`.
    pub state: StepState,
    /// The token its calls use.
    pub token: TokenKind,
    /// Why it is skipped.
    pub message: Option<String>,
    /// When it may first run (unix seconds).
    pub not_before: i64,
}

/// A stored step of the partner's pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Its id.
    pub id: i64,
    /// The onboarding it belongs to.
    pub onboarding_id: i64,
    /// The WABA.
    pub waba_id: String,
    /// The number, for per-phone steps.
    pub phone_id: Option<String>,
    /// The number as people read it, when known.
    pub phone_label: Option<String>,
    /// What it does.
    pub kind: StepKind,
    /// Where it stands.
    pub state: StepState,
    /// The token its calls use.
    pub token: TokenKind,
    /// Who must act (`business`, `partner`, `meta`, `nobody`) when it is not done.
    pub actor: Option<String>,
    /// What happened, in plain words (a skip's reason, a failure's meaning).
    pub message: Option<String>,
    /// Meta's error code of the last failure.
    pub error_code: Option<i64>,
    /// Meta's error message of the last failure (scrubbed).
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt may start (unix seconds).
    pub next_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// Increases with every change: a runner settles only the version it claimed.
    pub version: i64,
    /// Whether the admin asked for this attempt (a retry): it may use Meta's whole
    /// allowance of register attempts, not only the automatic share.
    pub by_admin: bool,
    /// Transient failures in a row (throttling, timeouts, 5xx); a settle that is not one
    /// resets it, and so does the admin's retry.
    pub failures: u32,
}

impl Step {
    /// Who must act and the progress line ("Registering +1 631-555-0101", "Webhooks
    /// connected") of the step as it stands.
    pub fn progress(&self) -> (String, String) {
        let phone = self
            .phone_label
            .as_deref()
            .or(self.phone_id.as_deref())
            .unwrap_or_default();
        let (actor, text) = waba_graph::pipeline::progress(self.kind, self.state, phone);
        let actor = match (&self.actor, self.state) {
            (Some(a), StepState::Failed | StepState::Pending) => a.clone(),
            _ => actor.as_str().to_owned(),
        };
        (actor, text)
    }

    /// The step as the status stream and the admin API show it (never a token or a PIN).
    pub fn view(&self) -> StepView {
        let (actor, text) = self.progress();
        StepView {
            id: self.id,
            onboarding_id: self.onboarding_id,
            waba_id: self.waba_id.clone(),
            phone_id: self.phone_id.clone(),
            phone: self.phone_label.clone(),
            kind: self.kind.as_str(),
            state: self.state.as_str(),
            token: self.token.as_str(),
            actor,
            text,
            message: self.message.clone(),
            error_code: self.error_code,
            error: self.error.clone(),
            attempts: self.attempts,
            // Null when settled, or when only a person's retry runs it again.
            next_attempt_at: (!self.state.settled() && self.next_at != i64::MAX)
                .then_some(self.next_at),
            updated_at: self.updated_at,
        }
    }

    /// [`Step::view`] as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.view()).unwrap_or(serde_json::Value::Null)
    }
}

/// A step as the status stream and the admin API show it (never a token or a PIN).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StepView {
    /// Its id.
    pub id: i64,
    /// The onboarding it belongs to.
    pub onboarding_id: i64,
    /// The WABA.
    pub waba_id: String,
    /// The number, for per-phone steps.
    pub phone_id: Option<String>,
    /// The number as people read it, when known.
    pub phone: Option<String>,
    /// What it does: `subscribe`, `assign_system_user`, `share_credit_line`, `find_phones`,
    /// `register`, `sync_contacts`, `sync_history`, `unsubscribe`, `deregister`.
    pub kind: &'static str,
    /// `pending`, `running`, `done`, `skipped` or `failed`.
    pub state: &'static str,
    /// The token its calls use: `business` or `system_user` (the kind, never the token).
    pub token: &'static str,
    /// Who must act: `business`, `partner`, `meta` or `nobody`.
    pub actor: String,
    /// The progress line ("Registering +1 631-555-0101", "Webhooks connected").
    pub text: String,
    /// What happened, in plain words (a skip's reason, a failure's meaning).
    pub message: Option<String>,
    /// Meta's error code of the last failure.
    pub error_code: Option<i64>,
    /// Meta's error message of the last failure (scrubbed).
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt may start (unix seconds); null when settled, or when only a
    /// person's retry runs it again.
    pub next_attempt_at: Option<i64>,
    /// When it last changed (unix seconds).
    pub updated_at: i64,
}

/// How a claimed step ended (or where it waits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// The new state.
    pub state: StepState,
    /// Who must act.
    pub actor: Option<String>,
    /// What happened.
    pub message: Option<String>,
    /// Meta's error code.
    pub error_code: Option<i64>,
    /// Meta's error message.
    pub error: Option<String>,
    /// When to try again (for `Pending` and `Failed` with a retry).
    pub next_at: i64,
    /// The token the step's calls used (the business token may be gone: expired, revoked).
    pub token: TokenKind,
    /// Whether it ends a transient failure (counted in a row).
    pub transient: bool,
}

/// One write the proxy made to Graph, for the audit trail (never a token or a PIN): the
/// admin API shows it as it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct GraphWrite {
    /// Increasing (0 before it is stored).
    pub id: i64,
    /// When (unix seconds).
    pub at: i64,
    /// The step it was made for.
    pub step_id: i64,
    /// The onboarding of the step.
    pub onboarding_id: i64,
    /// `POST` or `DELETE`.
    pub method: String,
    /// The Graph path, without the version (`{waba-id}/subscribed_apps`).
    pub path: String,
    /// The token kind used: `business` or `system_user` (the kind, never the token).
    #[schema(value_type = String)]
    pub token: TokenKind,
    /// Graph's HTTP status (0 when Graph did not answer).
    pub status: u16,
    /// Graph's answer, scrubbed (or why there was none).
    pub answer: String,
}

/// A two-step verification PIN, sealed like a business token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPin {
    /// The phone number id.
    pub phone_id: String,
    /// The sealed PIN (`expires_at` unused).
    pub sealed: SealedToken,
    /// Whether the partner set it (else the proxy generated it).
    pub set_by_partner: bool,
}

/// What asking for an offboarding did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offboard {
    /// No such record.
    NotFound,
    /// Meta already ended the partnership: nothing can run for it.
    Revoked,
    /// Its steps stopped and the offboarding steps were added (their changes).
    Started(Vec<StoredChange>),
}

/// What asking for a retry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// No such step.
    NotFound,
    /// The step is not failed (it is in this state).
    NotRetryable(StepState),
    /// Its onboarding was revoked by Meta or offboarded: nothing may run for it.
    Revoked,
    /// Pending again, at once.
    Retried(StoredChange),
}

/// A stored onboarding and the pipeline changes its steps announce.
#[derive(Debug, Clone)]
pub struct Inserted {
    /// The record's id.
    pub id: i64,
    /// One change per step created, for open streams.
    pub changes: Vec<StoredChange>,
}

/// A stored onboarding record.
#[derive(Debug, Clone)]
pub struct Onboarding {
    /// Its id (increasing).
    pub id: i64,
    /// The record.
    pub record: OnboardingRecord,
    /// Its pipeline steps, in order.
    pub steps: Vec<Step>,
}

impl Onboarding {
    /// Whether someone must act: a follow-up, or a failed step (the same rule as
    /// [`Store::follow_ups`]).
    pub fn needs_follow_up(&self) -> bool {
        !self.record.follow_ups.is_empty()
            || self.steps.iter().any(|s| s.state == StepState::Failed)
    }
}

/// A code-flow session credential's hash and lifetime, stored with its onboarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewSession {
    /// SHA-256 of the credential.
    pub hash: [u8; 32],
    /// When it stops working (unix seconds).
    pub expires_at: i64,
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

/// What one tracker pass changed in the set of shared WABAs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareDiff {
    /// Newly shared WABAs.
    pub shared: Vec<String>,
    /// WABAs no longer shared.
    pub unshared: Vec<String>,
    /// Whether this pass only recorded the first set (no events).
    pub baseline: bool,
    /// The changes of the steps planned for the newly shared WABAs.
    pub planned: Vec<StoredChange>,
}

/// The steps a WABA found shared without a signup gets (`waba_id` left empty: filled per
/// WABA), stored with its `discovered` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// The steps, in order.
    pub steps: Vec<NewStep>,
}

impl Discovery {
    /// The record of `waba`, found at `now`.
    pub fn record(&self, waba: &str, now: i64) -> OnboardingRecord {
        let mut record = OnboardingRecord::new(Flow::Discovered, now);
        record.outcome = Outcome::Finished;
        record.granted = vec![waba.to_owned()];
        record.steps = self
            .steps
            .iter()
            .cloned()
            .map(|s| NewStep {
                waba_id: waba.to_owned(),
                not_before: now + s.not_before,
                ..s
            })
            .collect();
        record
    }
}

/// A status change Meta announced by webhook, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// SHA-256 of what identifies the change: a redelivery has the same.
    pub dedupe: [u8; 32],
    /// The webhook field (`account_update`, `account_review_update`, ...).
    pub field: String,
    /// What it is about.
    pub kind: ChangeKind,
    /// The WABA concerned, when the change names one.
    pub waba_id: Option<String>,
    /// The decision, event or rating the change carries.
    pub value: Option<String>,
    /// The change as Meta sent it (JSON).
    pub raw: String,
}

/// A stored status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChange {
    /// Increasing: the stream's event id.
    pub seq: i64,
    /// When the proxy received it (unix seconds).
    pub received_at: i64,
    /// The change.
    pub change: StatusChange,
}

/// What one process tells the others that share its database (PostgreSQL `NOTIFY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Status changes were stored, about this WABA when one is named: open streams read
    /// them from the database and cached answers about the WABA are dropped.
    Changes {
        /// The WABA concerned.
        waba_id: Option<String>,
    },
    /// Meta asked to stop a kind of call (`route` as named in metrics, `*` for the whole app)
    /// on `object` for `wait_ms` milliseconds from now (a wait, not a time: replicas' clocks
    /// may differ; `NOTIFY` takes milliseconds).
    Throttled {
        /// The Graph route's name, or `*`.
        route: String,
        /// The object (a WABA id, a business id), empty for the app.
        object: String,
        /// How long calls pause.
        wait_ms: i64,
    },
    /// The process's own connection to the signals was lost and is back: what was said
    /// meanwhile is unknown (read everything again, drop every cached answer).
    Resumed,
}

impl Signal {
    /// The text carried by `NOTIFY` (at most 8000 bytes: ids and route names are short).
    pub fn encode(&self) -> String {
        match self {
            Self::Changes { waba_id } => format!("c {}", waba_id.as_deref().unwrap_or_default()),
            Self::Throttled {
                route,
                object,
                wait_ms,
            } => format!("t {wait_ms} {route} {object}"),
            Self::Resumed => "r".into(),
        }
    }

    /// Reads [`Signal::encode`]'s text; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let (tag, rest) = text.split_once(' ').unwrap_or((text, ""));
        match tag {
            "c" => Some(Self::Changes {
                waba_id: (!rest.is_empty()).then(|| rest.to_owned()),
            }),
            "t" => {
                let mut parts = rest.splitn(3, ' ');
                let wait_ms = parts.next()?.parse().ok()?;
                let route = parts.next()?.to_owned();
                let object = parts.next().unwrap_or_default().to_owned();
                Some(Self::Throttled {
                    route,
                    object,
                    wait_ms,
                })
            }
            "r" => Some(Self::Resumed),
            _ => None,
        }
    }
}

/// The result of a store call.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// What the proxy keeps. Every call is async and safe to make from request handlers.
pub trait Store: Send + Sync {
    /// Stores webhook changes in one transaction, skipping those already stored (redelivery),
    /// and applies shares and removals to the tracker's set; with `discovery`, a WABA shared
    /// (`PARTNER_ADDED`) that no record holds gets a `discovered` record and its steps in
    /// the same transaction. Returns the newly stored changes (the steps' among them).
    fn record_changes(
        &self,
        changes: Vec<StatusChange>,
        now: i64,
        discovery: Option<Discovery>,
    ) -> StoreFuture<'_, Vec<StoredChange>>;
    /// The sequence number of the newest status change (0 when there is none).
    fn newest_change(&self) -> StoreFuture<'_, i64>;
    /// Status changes after `after`, oldest first, at most `limit`.
    fn changes(&self, after: i64, limit: u32) -> StoreFuture<'_, Vec<StoredChange>>;
    /// The latest `limit` changes Meta announced about these WABAs (not the pipeline's own),
    /// oldest first.
    fn changes_of(&self, wabas: Vec<String>, limit: u32) -> StoreFuture<'_, Vec<StoredChange>>;
    /// Records that `code_hash` was presented; `false` when it had been before.
    fn claim_code(&self, code_hash: [u8; 32], now: i64) -> StoreFuture<'_, bool>;
    /// Gives a claimed code back: Graph refused to look at it (throttled), so it still works.
    fn release_code(&self, code_hash: [u8; 32]) -> StoreFuture<'_, ()>;
    /// Stores an onboarding, its steps and, when given, its session credential, in one
    /// transaction. Pending steps of `discovered` records for the same WABAs are handed over
    /// (skipped), so one pipeline runs per share.
    fn insert_onboarding(
        &self,
        record: OnboardingRecord,
        session: Option<NewSession>,
    ) -> StoreFuture<'_, Inserted>;
    /// Claims the step due first (pending or failed and due, or running with an expired
    /// lease: its runner died) for `lease_secs`: running, one more attempt, a new version.
    /// The returned step keeps the state it had before the claim (what people last saw).
    /// Never a step of a revoked onboarding, nor one whose number another runner holds, nor
    /// one behind an unfinished earlier step of the same onboarding and WABA (steps run in
    /// their planned order: the System User is assigned before the credit line is shared).
    fn claim_step(&self, now: i64, lease_secs: i64) -> StoreFuture<'_, Option<Step>>;
    /// Records a register or deregister attempt on `phone_id` unless `limit` attempts were
    /// made in the window ending at `now`; whether it was recorded.
    fn take_register_attempt(
        &self,
        phone_id: String,
        now: i64,
        window_secs: i64,
        limit: u32,
    ) -> StoreFuture<'_, bool>;
    /// Confirms that the runner of the claimed `step` still holds it (its version, running,
    /// its lease not over) and extends the lease by `lease_secs`: called before each Graph
    /// write, so no other runner can claim the step while the write is in flight.
    fn fence(&self, step: Step, now: i64, lease_secs: i64) -> StoreFuture<'_, bool>;
    /// Settles the claimed `step` (its `version`) with `outcome`, with the Graph write made
    /// for it and the steps it found (a `find_phones` step's numbers), in one transaction.
    /// The changes to announce: none when the step changed since (stopped, retried; then
    /// nothing it found is added) or when what people see did not change.
    fn settle_step(
        &self,
        step: Step,
        outcome: StepOutcome,
        write: Option<GraphWrite>,
        found: Vec<NewStep>,
        now: i64,
    ) -> StoreFuture<'_, Vec<StoredChange>>;
    /// The steps of an onboarding, in order.
    fn steps_of(&self, onboarding_id: i64) -> StoreFuture<'_, Vec<Step>>;
    /// Makes a failed step pending at once, as the admin's attempt.
    fn retry_step(&self, step_id: i64, now: i64) -> StoreFuture<'_, Retry>;
    /// Offboards an onboarding: it is marked offboarded, its unsettled steps stop, and an
    /// `unsubscribe` step per WABA and a `deregister` step per number the pipeline registered
    /// (or may have) are added.
    fn offboard(&self, onboarding_id: i64, now: i64) -> StoreFuture<'_, Offboard>;
    /// Adds a Graph write to the audit trail (a step that makes two calls).
    fn record_write(&self, write: GraphWrite) -> StoreFuture<'_, ()>;
    /// Graph writes after `after`, oldest first.
    fn writes(&self, after: i64, limit: u32) -> StoreFuture<'_, Vec<GraphWrite>>;
    /// Stores a generated PIN unless the number has one (set meanwhile by the admin); the
    /// PIN the number has now.
    fn keep_pin(&self, pin: SealedPin) -> StoreFuture<'_, SealedPin>;
    /// Stores the PIN of a number (replacing one).
    fn put_pin(&self, pin: SealedPin) -> StoreFuture<'_, ()>;
    /// The PIN of a number.
    fn pin(&self, phone_id: String) -> StoreFuture<'_, Option<SealedPin>>;
    /// The PINs of an onboarding's numbers.
    fn pins_of(&self, onboarding_id: i64) -> StoreFuture<'_, Vec<SealedPin>>;
    /// The session whose credential hashes to `hash`, if it exists and has not expired.
    fn session(&self, hash: [u8; 32], now: i64) -> StoreFuture<'_, Option<SessionGrant>>;
    /// Records with id below `before` (all when `None`), newest first.
    fn onboardings(&self, before: Option<i64>, limit: u32) -> StoreFuture<'_, Vec<Onboarding>>;
    /// One record.
    fn onboarding(&self, id: i64) -> StoreFuture<'_, Option<Onboarding>>;
    /// Every record that leaves something to do, newest first, at most `limit`.
    fn follow_ups(&self, limit: u32) -> StoreFuture<'_, Vec<Onboarding>>;
    /// The onboarding funnel of the records created in `range`, aggregated in the database
    /// (what each number means: [`funnel`]).
    fn funnel(&self, range: FunnelRange) -> StoreFuture<'_, Funnel>;
    /// The records created in `range` with an id above `after`, oldest first, at most
    /// `limit`, as the funnel's CSV export shows them.
    fn funnel_records(
        &self,
        range: FunnelRange,
        after: i64,
        limit: u32,
    ) -> StoreFuture<'_, Vec<FunnelRecord>>;
    /// Replaces the tracker's set with `current` and records the difference as events, in one
    /// transaction, with a `discovered` record for each newly shared WABA no record holds
    /// when `discovery` is given. The first call records the baseline without events.
    /// Only while `holder` holds the tracker's lease ([`Store::claim_tracker_pass`]), which
    /// the pass then gives back; `None` when it lost the lease (nothing is stored).
    fn apply_share_set(
        &self,
        current: BTreeSet<String>,
        now: i64,
        discovery: Option<Discovery>,
        holder: String,
    ) -> StoreFuture<'_, Option<ShareDiff>>;
    /// Takes the tracker's lease for `lease_secs` when no pass was stored in the last
    /// `every_secs` and no other holder's lease runs: one background pass per interval across
    /// every process on the database; a holder that dies loses it when the lease ends.
    fn claim_tracker_pass(
        &self,
        holder: String,
        now: i64,
        every_secs: i64,
        lease_secs: i64,
    ) -> StoreFuture<'_, bool>;
    /// Tracker events after `after`, oldest first, at most `limit`.
    fn share_events(&self, after: i64, limit: u32) -> StoreFuture<'_, Vec<ShareEvent>>;
    /// Forgets used codes older than `before` (they expire after 30 s anyway).
    fn prune_codes(&self, before: i64) -> StoreFuture<'_, ()>;
    /// A key every process on the database shares: the one kept under `name`, or `fresh`
    /// (then kept) when there is none yet.
    fn shared_key(&self, name: String, fresh: [u8; 32]) -> StoreFuture<'_, [u8; 32]>;
    /// Tells every process on the database (this one too) about `signal`; nothing when the
    /// database is this process's alone.
    fn signal(&self, signal: Signal) -> StoreFuture<'_, ()>;
    /// The signals of every process on the database, when it carries them.
    fn signals(&self) -> Option<tokio::sync::broadcast::Receiver<Signal>>;
    /// Whether the database answers (and, for PostgreSQL, whether this process hears the
    /// others' signals).
    fn ping(&self) -> StoreFuture<'_, ()>;
    /// The partner's webhook endpoints, oldest first, with their delivery counts.
    fn outbound_endpoints(&self) -> StoreFuture<'_, Vec<outbox::Endpoint>>;
    /// One endpoint.
    fn outbound_endpoint(&self, id: i64) -> StoreFuture<'_, Option<outbox::Endpoint>>;
    /// Stores a new endpoint: it gets the events that happen from now on. `None` when
    /// [`outbox::MAX_ENDPOINTS`] exist.
    fn create_outbound_endpoint(
        &self,
        endpoint: outbox::NewEndpoint,
        now: i64,
    ) -> StoreFuture<'_, Option<outbox::Endpoint>>;
    /// Changes an endpoint; resuming one closes its circuit and sends what waits at once.
    fn update_outbound_endpoint(
        &self,
        id: i64,
        patch: outbox::EndpointPatch,
        now: i64,
    ) -> StoreFuture<'_, Option<outbox::Endpoint>>;
    /// Deletes an endpoint with its deliveries; whether there was one.
    fn delete_outbound_endpoint(&self, id: i64) -> StoreFuture<'_, bool>;
    /// An endpoint's deliveries with id below `before`, newest first, with their attempts.
    fn outbound_deliveries(
        &self,
        endpoint_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> StoreFuture<'_, Vec<outbox::Delivery>>;
    /// Queues a settled delivery's event again for its endpoint (same event id), after what
    /// waits; the new delivery.
    fn resend_delivery(&self, id: i64, now: i64) -> StoreFuture<'_, outbox::DeliveryAction>;
    /// Gives up a pending delivery, so its endpoint's next one goes.
    fn give_up_delivery(&self, id: i64) -> StoreFuture<'_, outbox::DeliveryAction>;
    /// Gives back a claimed delivery no attempt was made for, due again at `retry_at`.
    fn release_delivery(&self, claimed: outbox::Claimed, retry_at: i64) -> StoreFuture<'_, ()>;
    /// Forgets up to `batch` settled deliveries queued before `before` with their attempts,
    /// and events no delivery needs; how many deliveries.
    fn prune_outbox(&self, before: i64, batch: u32) -> StoreFuture<'_, u64>;
    /// When the next attempt is due, if one waits (a read, before claiming).
    fn next_delivery_due(&self, now: i64) -> StoreFuture<'_, Option<i64>>;
    /// Claims due deliveries for one attempt each (see [`outbox`]): one per endpoint, in
    /// order, never one another process holds.
    fn claim_deliveries(
        &self,
        now: i64,
        lease_secs: i64,
        limit: u32,
    ) -> StoreFuture<'_, Vec<outbox::Claimed>>;
    /// Records a claimed delivery's attempt and schedules what follows.
    fn settle_delivery(
        &self,
        claimed: outbox::Claimed,
        result: outbox::AttemptResult,
        now: i64,
        policy: outbox::RetryPolicy,
        jitter: f64,
    ) -> StoreFuture<'_, ()>;
    /// `sqlite` or `postgresql`.
    fn kind(&self) -> &'static str;
}

/// Whether `--database` names a PostgreSQL server.
pub fn is_postgres_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

/// Opens the store named by `--database`: a `postgres://` (or `postgresql://`) URL is a
/// PostgreSQL database shared by replicas, anything else a SQLite file (created if missing).
pub async fn open(
    database: &str,
    options: &PostgresOptions,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if is_postgres_url(database) {
        Ok(std::sync::Arc::new(
            PostgresStore::connect(database, options).await?,
        ))
    } else {
        Ok(std::sync::Arc::new(SqliteStore::open(
            std::path::Path::new(database),
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_read_back_and_refuse_strangers() {
        for o in [
            Outcome::Finished,
            Outcome::Cancelled,
            Outcome::Error,
            Outcome::CodeRejected,
            Outcome::Unknown,
        ] {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(
            ChangeKind::parse("partner_added"),
            Some(ChangeKind::PartnerAdded)
        );
        assert_eq!(
            FollowUpReason::parse("no_phone_number"),
            Some(FollowUpReason::NoPhoneNumber)
        );
        assert_eq!(Flow::parse("code"), Some(Flow::Code));
        assert_eq!(Flow::parse("CODE"), None);
        assert_eq!(ShareKind::parse("gone"), None);
    }
}
