//! Durable state: onboarding records, code-flow sessions, used codes, the newly-shared
//! tracker's set and events, and the status changes Meta announced by webhook.
//!
//! [`Store`] is what the proxy needs, as async calls; [`SqliteStore`] keeps it in an embedded
//! SQLite file (WAL, `synchronous=FULL`, versioned migrations at start-up) and runs its
//! queries off the async threads. A server database shared by several replicas implements the
//! same trait.

mod sqlite;

pub use sqlite::{SqliteStore, schema_version};

use futures_util::future::BoxFuture;
use std::collections::BTreeSet;
use waba_graph::signup::SignupOutcome;

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
    /// A stored value this version cannot read.
    #[error("the database holds an unreadable {0}")]
    Corrupt(&'static str),
    /// The worker running the query stopped (a panic, or shutdown).
    #[error("the database worker stopped")]
    Worker,
}

/// A name stored as text, read back strictly.
macro_rules! stored_names {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The stored and reported name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// The value a stored name stands for.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

stored_names! {
    /// Which flow the signup page ran.
    Flow {
        /// The login returned a business token; the page inspects it through the proxy.
        Token = "token",
        /// The login returned a code; the proxy exchanged it.
        Code = "code",
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
        }
    }
}

/// A stored onboarding record.
#[derive(Debug, Clone)]
pub struct Onboarding {
    /// Its id (increasing).
    pub id: i64,
    /// The record.
    pub record: OnboardingRecord,
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

/// The result of a store call.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// What the proxy keeps. Every call is async and safe to make from request handlers.
pub trait Store: Send + Sync {
    /// Stores webhook changes in one transaction, skipping those already stored (redelivery),
    /// and applies shares and removals to the tracker's set. Returns the newly stored ones.
    fn record_changes(
        &self,
        changes: Vec<StatusChange>,
        now: i64,
    ) -> StoreFuture<'_, Vec<StoredChange>>;
    /// Status changes after `after`, oldest first, at most `limit`.
    fn changes(&self, after: i64, limit: u32) -> StoreFuture<'_, Vec<StoredChange>>;
    /// The latest `limit` status changes of these WABAs, oldest first.
    fn changes_of(&self, wabas: Vec<String>, limit: u32) -> StoreFuture<'_, Vec<StoredChange>>;
    /// Records that `code_hash` was presented; `false` when it had been before.
    fn claim_code(&self, code_hash: [u8; 32], now: i64) -> StoreFuture<'_, bool>;
    /// Gives a claimed code back: Graph refused to look at it (throttled), so it still works.
    fn release_code(&self, code_hash: [u8; 32]) -> StoreFuture<'_, ()>;
    /// Stores an onboarding and, when given, its session credential, in one transaction.
    /// Returns the record's id.
    fn insert_onboarding(
        &self,
        record: OnboardingRecord,
        session: Option<NewSession>,
    ) -> StoreFuture<'_, i64>;
    /// The session whose credential hashes to `hash`, if it exists and has not expired.
    fn session(&self, hash: [u8; 32], now: i64) -> StoreFuture<'_, Option<SessionGrant>>;
    /// Records with id below `before` (all when `None`), newest first.
    fn onboardings(&self, before: Option<i64>, limit: u32) -> StoreFuture<'_, Vec<Onboarding>>;
    /// One record.
    fn onboarding(&self, id: i64) -> StoreFuture<'_, Option<Onboarding>>;
    /// Every record that leaves something to do, newest first, at most `limit`.
    fn follow_ups(&self, limit: u32) -> StoreFuture<'_, Vec<Onboarding>>;
    /// Replaces the tracker's set with `current` and records the difference as events, in one
    /// transaction. The first call records the baseline without events.
    fn apply_share_set(&self, current: BTreeSet<String>, now: i64) -> StoreFuture<'_, ShareDiff>;
    /// Tracker events after `after`, oldest first, at most `limit`.
    fn share_events(&self, after: i64, limit: u32) -> StoreFuture<'_, Vec<ShareEvent>>;
    /// Forgets used codes older than `before` (they expire after 30 s anyway).
    fn prune_codes(&self, before: i64) -> StoreFuture<'_, ()>;
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
