//! What the proxy's own routes answer, as JSON. Records are shown through these views, never
//! directly: a view holds exactly what a client may see (never a sealed token).

use crate::onboarding::{Exchanged, Reported};
use crate::reads::GrantedAccounts;
use crate::store::{FollowUp, Onboarding, ShareDiff, ShareEvent, StoredChange};
use serde::Serialize;
use utoipa::ToSchema;

/// A follow-up as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FollowUpView {
    /// The WABA concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waba_id: Option<String>,
    /// Stable code.
    pub reason: &'static str,
    /// What happened.
    pub message: String,
    /// What to do.
    pub action: String,
}

impl From<&FollowUp> for FollowUpView {
    fn from(f: &FollowUp) -> Self {
        Self {
            waba_id: f.waba_id.clone(),
            reason: f.reason.as_str(),
            message: f.message.clone(),
            action: f.action.clone(),
        }
    }
}

/// Answer of `POST /signup/exchange`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExchangeAnswer {
    /// The session credential: send it as `Authorization: Bearer` to the WABA routes.
    pub session: String,
    /// When it stops working (unix seconds).
    pub expires_at: i64,
    /// The WABAs it may read, newest first.
    pub wabas: Vec<String>,
    /// The granted WABAs as `GET /graph/{id}?fields=` with the status fields answers them,
    /// read during the exchange (one whose read failed is left out).
    #[schema(value_type = Vec<crate::routes::openapi::GraphNode>)]
    pub accounts: Vec<Box<serde_json::value::RawValue>>,
    /// The onboarding record.
    pub onboarding_id: i64,
}

impl From<Exchanged> for ExchangeAnswer {
    fn from(e: Exchanged) -> Self {
        Self {
            expires_at: e.session.stored.expires_at,
            session: e.session.credential,
            wabas: e.wabas,
            accounts: e.accounts,
            onboarding_id: e.onboarding_id,
        }
    }
}

/// Answer of `GET /signup/accounts`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountsAnswer {
    /// The WABAs the credential may read, newest first.
    pub wabas: Vec<String>,
    /// The granted WABAs as `GET /graph/{id}?fields=` with the status fields answers them
    /// (one whose read failed is left out).
    #[schema(value_type = Vec<crate::routes::openapi::GraphNode>)]
    pub accounts: Vec<Box<serde_json::value::RawValue>>,
}

impl From<GrantedAccounts> for AccountsAnswer {
    fn from(g: GrantedAccounts) -> Self {
        Self {
            wabas: g.wabas,
            accounts: g.accounts,
        }
    }
}

/// Answer of `POST /signup/events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventAnswer {
    /// The onboarding record.
    pub onboarding_id: i64,
    /// What is left to do, if anything.
    pub follow_ups: Vec<FollowUpView>,
}

impl From<Reported> for EventAnswer {
    fn from(r: Reported) -> Self {
        Self {
            onboarding_id: r.onboarding_id,
            follow_ups: r.follow_ups.iter().map(Into::into).collect(),
        }
    }
}

/// A number's two-step verification PIN (admin only). `Debug` never shows it.
#[derive(Serialize, ToSchema)]
pub struct PinView {
    /// The phone number id.
    pub phone_id: String,
    /// The PIN.
    pub pin: String,
}

impl std::fmt::Debug for PinView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinView")
            .field("phone_id", &self.phone_id)
            .field("pin", &"[redacted]")
            .finish()
    }
}

/// Answer of `POST /admin/onboardings/{id}/offboard`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepsView {
    /// The onboarding's steps, the offboarding ones last.
    pub steps: Vec<crate::store::StepView>,
}

/// A page of Graph writes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Writes {
    /// Oldest first.
    pub data: Vec<crate::store::GraphWrite>,
    /// The `after` of the next page.
    pub next_after: i64,
}

/// An onboarding record as the admin sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OnboardingView {
    /// The record's id.
    pub id: i64,
    /// When it was recorded (unix seconds).
    pub created_at: i64,
    /// `code` or `token`.
    pub flow: &'static str,
    /// `finished`, `cancelled`, `error`, `code_rejected`, `unknown`.
    pub outcome: &'static str,
    /// The session event's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// WABAs granted, newest first.
    pub wabas: Vec<String>,
    /// The WABA the event named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_waba_id: Option<String>,
    /// The phone number the event named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
    /// The business that shared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_id: Option<String>,
    /// The step the business left at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_step: Option<String>,
    /// The error it reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Meta's error id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
    /// Meta's session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Whether the proxy holds the business token (code flow).
    pub has_business_token: bool,
    /// When Meta said the business stopped sharing a WABA or removed the partner's app: the
    /// onboarding is revoked and its business token forgotten.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    /// When the partner offboarded it (only its offboarding steps run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offboarded_at: Option<i64>,
    /// What is left to do.
    pub follow_ups: Vec<FollowUpView>,
    /// The partner's post-signup steps with their state, who acts and the next attempt.
    pub steps: Vec<crate::store::StepView>,
    /// Whether someone must act: a follow-up, or a failed step.
    pub needs_follow_up: bool,
}

impl From<&Onboarding> for OnboardingView {
    fn from(o: &Onboarding) -> Self {
        let r = &o.record;
        Self {
            id: o.id,
            created_at: r.created_at,
            flow: r.flow.as_str(),
            outcome: r.outcome.as_str(),
            event: r.event.clone(),
            wabas: r.granted.clone(),
            reported_waba_id: r.reported_waba_id.clone(),
            phone_number_id: r.phone_number_id.clone(),
            business_id: r.business_id.clone(),
            current_step: r.current_step.clone(),
            error_message: r.error_message.clone(),
            error_id: r.error_id.clone(),
            session_id: r.session_id.clone(),
            has_business_token: r.token.is_some(),
            revoked_at: r.revoked_at,
            offboarded_at: r.offboarded_at,
            follow_ups: r.follow_ups.iter().map(Into::into).collect(),
            steps: o.steps.iter().map(crate::store::Step::view).collect(),
            needs_follow_up: o.needs_follow_up(),
        }
    }
}

/// A page of records.
#[derive(Debug, Serialize, ToSchema)]
pub struct Records {
    /// Newest first.
    pub data: Vec<OnboardingView>,
    /// The `before` of the next page, when there may be one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// One record with the business token, decrypted.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordWithToken {
    /// The record.
    #[serde(flatten)]
    pub record: OnboardingView,
    /// The business token, for the partner's backend to act for the business.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_token: Option<String>,
    /// When the token expires (unix seconds; absent when it does not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_token_expires_at: Option<i64>,
    /// What Meta announced since about the record's WABAs (webhooks), oldest first.
    pub changes: Vec<ChangeSummary>,
    /// The two-step verification PINs of its numbers.
    pub pins: Vec<PinView>,
}

/// A status change of one of a record's WABAs.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeSummary {
    /// The stream's id of the change.
    pub seq: i64,
    /// The WABA.
    pub waba_id: String,
    /// `review`, `partner_removed`, ...
    pub kind: &'static str,
    /// The decision or event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// When it arrived (unix seconds).
    pub received_at: i64,
}

/// A tracker event as clients see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShareEventView {
    /// The cursor.
    pub seq: i64,
    /// The WABA.
    pub waba_id: String,
    /// `shared` or `unshared`.
    pub kind: &'static str,
    /// When the tracker noticed (unix seconds).
    pub detected_at: i64,
}

impl From<&ShareEvent> for ShareEventView {
    fn from(e: &ShareEvent) -> Self {
        Self {
            seq: e.seq,
            waba_id: e.waba_id.clone(),
            kind: e.kind.as_str(),
            detected_at: e.detected_at,
        }
    }
}

/// A page of tracker events.
#[derive(Debug, Serialize, ToSchema)]
pub struct Events {
    /// Oldest first.
    pub data: Vec<ShareEventView>,
    /// The `after` to ask next.
    pub next_after: i64,
}

/// What a tracker pass did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PassView {
    /// Newly shared WABAs.
    pub shared: Vec<String>,
    /// WABAs no longer shared.
    pub unshared: Vec<String>,
    /// Whether this was the first pass (the set recorded, no events).
    pub baseline: bool,
}

impl From<ShareDiff> for PassView {
    fn from(d: ShareDiff) -> Self {
        Self {
            shared: d.shared,
            unshared: d.unshared,
            baseline: d.baseline,
        }
    }
}

/// Answer of `POST /events/ticket`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketAnswer {
    /// Put it in the stream URL: `/events/stream?ticket=…`.
    pub ticket: String,
    /// Until when it may be used to connect (unix seconds).
    pub expires_at: i64,
}

/// A change as the stream sends it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeView<'a> {
    /// The event id.
    pub seq: i64,
    /// `partner_added`, `partner_removed`, `review`, `account_update`, `phone_quality`,
    /// `phone_name`, `unknown`.
    pub kind: &'static str,
    /// The webhook field.
    pub field: &'a str,
    /// The WABA concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waba_id: Option<&'a str>,
    /// The decision, event or rating.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<&'a str>,
    /// When the proxy received it.
    pub received_at: i64,
    /// The change as Meta sent it (`{"field", "value"}`), for `account_update` changes and
    /// fields this version does not interpret.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub raw: Option<serde_json::Value>,
    /// For `pipeline_step`: the step (`kind`, `state`, `phone_id`, `phone`, `actor`, `text`,
    /// `message`, `error_code`, `next_attempt_at`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::store::StepView>)]
    pub step: Option<serde_json::Value>,
}

impl<'a> From<&'a StoredChange> for ChangeView<'a> {
    fn from(c: &'a StoredChange) -> Self {
        Self {
            seq: c.seq,
            kind: c.change.kind.as_str(),
            field: &c.change.field,
            waba_id: c.change.waba_id.as_deref(),
            value: c.change.value.as_deref(),
            received_at: c.received_at,
            // Unknown fields, and every `account_update` (a ban's date, a restriction's
            // expiry, ...), travel as Meta sent them.
            raw: (c.change.kind == crate::store::ChangeKind::Unknown
                || c.change.field == "account_update")
                .then(|| serde_json::from_str(&c.change.raw).ok())
                .flatten(),
            step: (c.change.kind == crate::store::ChangeKind::PipelineStep)
                .then(|| serde_json::from_str(&c.change.raw).ok())
                .flatten(),
        }
    }
}

impl From<&StoredChange> for ChangeSummary {
    fn from(c: &StoredChange) -> Self {
        Self {
            seq: c.seq,
            waba_id: c.change.waba_id.clone().unwrap_or_default(),
            kind: c.change.kind.as_str(),
            value: c.change.value.clone(),
            received_at: c.received_at,
        }
    }
}

/// Answer of `GET /admin/graph-usage`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    /// At or above this percentage, background work about an object waits.
    pub hold_at_percent: u32,
    /// Objects Meta reported on within the hour, most used first.
    pub data: Vec<ObjectUsageView>,
}

/// One object's last usage reading.
#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectUsageView {
    /// The WABA or business id Meta keyed it by.
    pub object: String,
    /// The largest of its percentages.
    pub percent: u32,
    /// Seconds since Meta said it.
    pub seen_secs_ago: u64,
    /// Seconds background work about it still waits (0: none).
    pub background_waits_secs: u64,
    /// Meta's entries as sent (`type`, `call_count`, `total_cputime`, `total_time`,
    /// `estimated_time_to_regain_access`).
    pub entries: Vec<waba_graph::error::UsageEntry>,
}

impl UsageView {
    /// The view of `objects` as `board` holds them.
    pub fn new(
        board: &crate::upstream::usage::UsageBoard,
        objects: Vec<(String, std::sync::Arc<crate::upstream::usage::Reading>)>,
    ) -> Self {
        Self {
            hold_at_percent: crate::upstream::usage::HOLD_AT,
            data: objects
                .into_iter()
                .map(|(object, r)| ObjectUsageView {
                    background_waits_secs: board.hold_for(&object).unwrap_or(0),
                    percent: r.percent,
                    seen_secs_ago: r.at.elapsed().as_secs(),
                    entries: r.entries.clone(),
                    object,
                })
                .collect(),
        }
    }
}
