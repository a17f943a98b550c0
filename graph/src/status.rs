//! What the partner should see about each shared account: review status, phone readiness,
//! and, when the business left early or a phone is not ready, what must happen next.

use crate::messages::text;
use crate::pipeline::{StepKind, StepState};
use crate::signup::Abandoned;
use crate::waba::{PhoneNumber, ReviewStatus, Waba};
use serde::{Deserialize, Serialize};

/// The fields the status panel reads, with phones by field expansion (one call per WABA).
pub const STATUS_FIELDS: &str = "id,name,currency,timezone_id,message_template_namespace,\
account_review_status,business_verification_status,ownership_type,health_status,creation_time,\
phone_numbers{id,display_phone_number,verified_name,status,quality_rating,code_verification_status,name_status,platform_type}";

/// One account as the panel shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountStatus {
    /// The WABA as Graph returned it.
    pub waba: Waba,
    /// `account_review_status` as text (`PENDING`, `APPROVED`, `REJECTED`, `DEFERRED`, or
    /// any other value exactly as Graph sent it); `UNKNOWN` when absent.
    pub review: String,
    /// Whether `review` is one of the values this version knows.
    pub review_known: bool,
    /// Whether this is the most recently shared WABA of the signup.
    pub newest: bool,
    /// Each phone number and whether it can message.
    pub phones: Vec<PhoneStatus>,
    /// Why the onboarding is not complete, and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    pub incomplete: Option<Incomplete>,
    /// Health problems Meta reports, with its suggested fixes.
    pub health_problems: Vec<String>,
    /// What Meta announced about the account since it was read (bans, restrictions,
    /// violations, removal), newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<Alert>,
    /// The owning business's verification, when it is not `verified`: who acts and what to
    /// do (kind: the `business_verification_status` as Graph sent it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Alert>,
    /// The partner's post-signup steps as the proxy's stream reports them, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<Progress>,
}

/// Where one of the partner's post-signup steps stands (from the proxy's `pipeline_step`
/// changes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// The step: `subscribe`, `assign_system_user`, `share_credit_line`, `find_phones`,
    /// `register`, `sync_contacts`, `sync_history`, `unsubscribe`, `deregister`.
    pub step: String,
    /// The number, for per-number steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_id: Option<String>,
    /// `pending`, `running`, `done`, `skipped`, `failed`.
    pub state: String,
    /// Who acts.
    pub actor: Actor,
    /// The line to show ("Connecting webhooks", "Registering +1 631-555-0101").
    pub text: String,
    /// What happened, when the step failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What a `business_verification_status` other than `verified` asks, and of whom
/// (<https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account>);
/// `None` when verified or absent; a value this version does not know is named as sent.
pub fn verification_note(status: &str) -> Option<Alert> {
    let (actor, id) = match status {
        "verified" => return None,
        "not_verified" => (Actor::Business, "verification.not_verified"),
        "pending" | "pending_submission" => (Actor::Meta, "verification.pending"),
        "pending_need_more_info" => (Actor::Business, "verification.more_info"),
        "rejected" | "failed" | "expired" | "revoked" => (Actor::Business, "verification.refused"),
        "ineligible" => (Actor::Nobody, "verification.ineligible"),
        _ => (Actor::Unknown, "verification.unknown"),
    };
    Some(Alert {
        kind: status.to_owned(),
        actor,
        message: text(id, &[("status", status)]),
    })
}

/// Something to know about an account (what Meta announced by webhook, or a verification
/// to finish), and who acts on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// The change's kind (`disabled_update`, `account_restriction`, `account_violation`,
    /// `account_deleted`, `account_offboarded`, `partner_removed`, `partner_app_uninstalled`).
    pub kind: String,
    /// Who acts.
    pub actor: Actor,
    /// What happened and what to do, in plain words.
    pub message: String,
}

/// What a live change does to an account's alerts.
enum Effect {
    /// Shows this alert (in place of one of its kind).
    Raise(Alert),
    /// Lifts the alert of this kind (a reinstatement lifts a ban, a reconnection an
    /// offboarding).
    Clear(&'static str),
    /// Nothing: the change has no bearing on the panel.
    Nothing,
}

/// The effect of a live change about an account on its alerts.
fn alert_of(kind: &str, value: Option<&str>) -> Effect {
    let (actor, id) = match (kind, value) {
        ("disabled_update", Some("REINSTATE")) => return Effect::Clear("disabled_update"),
        ("account_reconnected", _) => return Effect::Clear("account_offboarded"),
        ("disabled_update", Some("SCHEDULE_FOR_DISABLE")) => {
            (Actor::Business, "alert.scheduled_disable")
        }
        ("disabled_update", _) => (Actor::Business, "alert.disabled"),
        ("account_restriction", _) => (Actor::Meta, "alert.restricted"),
        ("account_violation", _) => (Actor::Business, "alert.violation"),
        ("account_deleted", _) => (Actor::Nobody, "alert.deleted"),
        ("account_offboarded", _) => (Actor::Business, "alert.offboarded"),
        ("partner_removed" | "partner_app_uninstalled", _) => {
            (Actor::Business, "alert.partner_removed")
        }
        _ => return Effect::Nothing,
    };
    let what = text(id, &[]);
    Effect::Raise(Alert {
        kind: kind.to_owned(),
        actor,
        message: match value {
            Some(detail) => text("alert.with_detail", &[("text", &what), ("detail", detail)]),
            None => text("alert.plain", &[("text", &what)]),
        },
    })
}

/// Who has to act next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    /// The business that signed up (verify its number, fix its display name, ...).
    Business,
    /// The partner (register the number, subscribe to the WABA's webhooks, ...).
    Partner,
    /// Meta (a review is pending).
    Meta,
    /// Nobody: ready.
    Nobody,
    /// A state this version does not know: shown as Meta sent it, never guessed.
    Unknown,
}

impl Actor {
    /// The name used in JSON and JS: `business`, `partner`, `meta`, `nobody`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Business => "business",
            Self::Partner => "partner",
            Self::Meta => "meta",
            Self::Nobody => "nobody",
            Self::Unknown => "unknown",
        }
    }

    /// Reads a name written by [`Actor::as_str`]; anything else is `Unknown`.
    pub fn parse(s: &str) -> Self {
        match s {
            "business" => Self::Business,
            "partner" => Self::Partner,
            "meta" => Self::Meta,
            "nobody" => Self::Nobody,
            _ => Self::Unknown,
        }
    }
}

/// One phone number's readiness, and who has to act for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneStatus {
    /// The number as Graph returned it.
    pub phone: PhoneNumber,
    /// Connected: it can send messages.
    pub ready: bool,
    /// Who acts next.
    pub actor: Actor,
    /// What they do, as a stable code: `none`, `verify_number`, `register`,
    /// `fix_display_name`, `name_review`, `improve_quality`, `appeal`, `wait`, or `unknown`.
    pub action: String,
    /// What is in the way and who does what, in plain words; absent when ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Why an onboarding is not complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incomplete {
    /// Stable code: `left_at_step`, `reported_error`, `certificate_not_ready`,
    /// `register_phone`, `no_phone_number`.
    pub reason: String,
    /// Who has to act.
    pub actor: Actor,
    /// The step the business left at, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// What happened and what the business must do, in plain words.
    pub message: String,
}

impl Incomplete {
    /// What a flow left early says is incomplete: the step and its guidance, or the reported
    /// error; `None` when the session message gave no detail.
    pub fn from_abandoned(abandoned: &Abandoned) -> Option<Self> {
        match abandoned {
            Abandoned::AtStep { current_step } => Some(Incomplete {
                reason: "left_at_step".into(),
                actor: Actor::Business,
                step: Some(current_step.clone()),
                message: step_guidance(current_step),
            }),
            Abandoned::Reported {
                error_message,
                error_code,
                ..
            } => Some(Incomplete {
                reason: "reported_error".into(),
                actor: Actor::Business,
                step: None,
                message: reported_error(error_message.as_deref(), error_code.as_deref()),
            }),
            Abandoned::Unspecified => None,
        }
    }
}

/// The steps Meta documents a business may leave Embedded Signup at (`CANCEL`'s
/// `current_step`), in the flow's order.
pub const ABANDONED_STEPS: [&str; 6] = [
    "BUSINESS_ACCOUNT_SELECTION",
    "WABA_PHONE_PROFILE_PICKER",
    "WHATSAPP_BUSINESS_PROFILE_SETUP",
    "PHONE_NUMBER_SETUP",
    "PHONE_NUMBER_VERIFICATION",
    "PERMISSIONS",
];

/// Plain-words guidance for the step a business left Embedded Signup at, for the six steps
/// Meta documents
/// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/errors#abandoned-flow-screens>);
/// any other step is named as sent.
pub fn step_guidance(step: &str) -> String {
    let what = if ABANDONED_STEPS.contains(&step) {
        text(&["step.", step].concat(), &[])
    } else {
        text("step.unknown", &[])
    };
    text("step.left_at", &[("step", step), ("what", &what)])
}

/// What a business reported from Embedded Signup, for the partner: its message and code
/// when it gave them.
pub fn reported_error(message: Option<&str>, code: Option<&str>) -> String {
    match (message, code) {
        (Some(m), Some(c)) => text(
            "incomplete.reported_message_code",
            &[("message", m), ("code", c)],
        ),
        (Some(m), None) => text("incomplete.reported_message", &[("message", m)]),
        (None, Some(c)) => text("incomplete.reported_code", &[("code", c)]),
        (None, None) => text("incomplete.reported", &[]),
    }
}

/// Whether the number's ownership is not (or no longer) verified: the business has to enter
/// Meta's code. `code_verification_status` is `NOT_VERIFIED`, `VERIFIED` (for 14 days) or
/// `EXPIRED`
/// (<https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account-to-number-current-status/>).
fn verification_missing(p: &PhoneNumber) -> bool {
    matches!(
        p.code_verification_status.as_deref(),
        Some("NOT_VERIFIED" | "EXPIRED" | "UNVERIFIED")
    ) || p.status.as_deref() == Some("UNVERIFIED")
}

/// A phone number's state read from `status`, `code_verification_status` and `name_status`
/// together: whether it can message, who acts, the action and what to say. A verified number
/// stays `PENDING` until the partner registers it for Cloud API
/// (`POST /{phone-number-id}/register`; "adding and verifying a number do not register it",
/// <https://developers.facebook.com/documentation/business-messaging/whatsapp/business-phone-numbers/phone-numbers>).
fn phone_state(p: &PhoneNumber) -> (bool, Actor, &'static str, Option<String>) {
    let status = p.status.as_deref();
    let (ready, actor, action, what): (bool, Actor, &'static str, &'static str) = if status
        != Some("CONNECTED")
        && verification_missing(p)
    {
        (
            false,
            Actor::Business,
            "verify_number",
            if p.code_verification_status.as_deref() == Some("EXPIRED") {
                "phone.verification_expired"
            } else {
                "phone.not_verified"
            },
        )
    } else {
        match (status, p.name_status.as_deref()) {
            (Some("CONNECTED"), Some("DECLINED")) => (
                false,
                Actor::Business,
                "fix_display_name",
                "phone.name_declined",
            ),
            (Some("CONNECTED"), Some("EXPIRED")) => (
                false,
                Actor::Business,
                "fix_display_name",
                "phone.name_expired",
            ),
            (Some("CONNECTED"), Some("PENDING_REVIEW")) => {
                (true, Actor::Meta, "name_review", "phone.name_review")
            }
            (Some("CONNECTED"), _) => return (true, Actor::Nobody, "none", None),
            (Some("PENDING"), _) => (false, Actor::Partner, "register", "phone.register"),
            (Some("FLAGGED"), _) => (false, Actor::Business, "improve_quality", "phone.flagged"),
            (Some("RESTRICTED" | "RATE_LIMITED"), _) => {
                (false, Actor::Meta, "wait", "phone.limited")
            }
            (Some("BANNED"), _) => (false, Actor::Business, "appeal", "phone.banned"),
            (Some(_), _) => (false, Actor::Unknown, "unknown", "phone.unknown"),
            (None, _) => return (false, Actor::Unknown, "unknown", None),
        }
    };
    let number = match p.display_phone_number.as_deref() {
        Some(n) => n.to_owned(),
        None => text("phone.the_number", &[]),
    };
    let problem = text(
        "phone.problem",
        &[
            ("number", &number),
            ("status", status.unwrap_or("UNKNOWN")),
            ("what", &text(what, &[])),
        ],
    );
    (ready, actor, action, Some(problem))
}

impl AccountStatus {
    /// Applies a live change about this account (`kind` and `value` as the proxy's status
    /// stream sends them): a review decision updates the review; bans, restrictions,
    /// violations, deletion, offboarding and removal raise an alert (a reinstatement or a
    /// reconnection clears its alert). Whether anything changed.
    pub fn apply_change(&mut self, kind: &str, value: Option<&str>) -> bool {
        if kind == "review" {
            let Some(decision) = value else {
                return false;
            };
            if self.review == decision {
                return false;
            }
            let status = ReviewStatus::parse(decision);
            self.review_known = !matches!(status, ReviewStatus::Unknown(_));
            self.review = decision.to_owned();
            self.waba.account_review_status = Some(status);
            return true;
        }
        match alert_of(kind, value) {
            Effect::Raise(alert) => {
                if self.alerts.contains(&alert) {
                    return false;
                }
                self.alerts.retain(|a| a.kind != alert.kind);
                self.alerts.push(alert);
                true
            }
            Effect::Clear(lifted) => {
                let before = self.alerts.len();
                self.alerts.retain(|a| a.kind != lifted);
                self.alerts.len() != before
            }
            Effect::Nothing => false,
        }
    }

    /// Applies a step's progress (replacing the same step's earlier line). A registered
    /// number becomes ready: Meta shows it `CONNECTED` once `register` succeeded. The line
    /// of a step and state this version knows is written again in the chosen language (the
    /// number by the display number the account shows). Whether anything changed.
    pub fn apply_progress(&mut self, mut p: Progress) -> bool {
        // The number by its display number, as the account shows it; a number the account
        // does not show keeps the line the proxy wrote (which names it).
        let number = match p.phone_id.as_deref() {
            None => Some(""),
            Some(id) => self
                .phones
                .iter()
                .find(|x| x.phone.id.as_str() == id)
                .and_then(|x| x.phone.display_phone_number.as_deref()),
        };
        if let (Some(kind), Some(state), Some(number)) =
            (StepKind::parse(&p.step), StepState::parse(&p.state), number)
        {
            p.text = crate::pipeline::progress(kind, state, number).1;
        }
        if p.step == "register"
            && p.state == "done"
            && let Some(phone) = self
                .phones
                .iter_mut()
                .find(|x| Some(x.phone.id.as_str()) == p.phone_id.as_deref())
        {
            phone.phone.status = Some("CONNECTED".to_owned());
            let (ready, actor, action, problem) = phone_state(&phone.phone);
            phone.ready = ready;
            phone.actor = actor;
            phone.action = action.to_owned();
            phone.problem = problem;
        }
        let same = |x: &Progress| x.step == p.step && x.phone_id == p.phone_id;
        match self.progress.iter_mut().find(|x| same(x)) {
            Some(line) if *line == p => false,
            // A stop of the same step elsewhere (another onboarding of the WABA handing its
            // steps over) does not hide the line being followed.
            Some(line) if p.state == "skipped" && line.state != "skipped" => false,
            Some(line) => {
                *line = p;
                true
            }
            None => {
                self.progress.push(p);
                true
            }
        }
    }

    /// The status of `waba`. `newest` marks the signup's most recent grant; `abandoned` says
    /// why the flow ended early (applied to the newest account); `expect_phone` is false for
    /// `FINISH_ONLY_WABA` signups.
    pub fn new(
        waba: Waba,
        newest: bool,
        abandoned: Option<&Abandoned>,
        expect_phone: bool,
    ) -> Self {
        let (review, review_known) = match &waba.account_review_status {
            Some(ReviewStatus::Unknown(raw)) => (raw.clone(), false),
            Some(s) => (s.as_str().to_owned(), true),
            None => ("UNKNOWN".to_owned(), false),
        };
        let phones: Vec<PhoneStatus> = waba
            .phone_numbers
            .as_ref()
            .map(|p| p.data.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|phone| {
                let (ready, actor, action, problem) = phone_state(&phone);
                PhoneStatus {
                    ready,
                    actor,
                    action: action.to_owned(),
                    problem,
                    phone,
                }
            })
            .collect();
        let incomplete = abandoned
            .filter(|_| newest)
            .and_then(Incomplete::from_abandoned)
            .or_else(|| {
                phones
                    .iter()
                    .filter(|p| p.action == "verify_number")
                    .find_map(|p| p.problem.as_ref())
                    .map(|problem| Incomplete {
                        reason: "certificate_not_ready".into(),
                        actor: Actor::Business,
                        step: None,
                        message: text("incomplete.certificate", &[("problem", problem)]),
                    })
            })
            .or_else(|| {
                phones
                    .iter()
                    .filter(|p| p.action == "register")
                    .find_map(|p| p.problem.as_ref())
                    .map(|problem| Incomplete {
                        reason: "register_phone".into(),
                        actor: Actor::Partner,
                        step: None,
                        message: text("incomplete.register", &[("problem", problem)]),
                    })
            })
            .or_else(|| {
                (expect_phone && phones.is_empty() && waba.phone_numbers.is_some()).then(|| {
                    Incomplete {
                        reason: "no_phone_number".into(),
                        actor: Actor::Business,
                        step: None,
                        message: text("incomplete.no_phone", &[]),
                    }
                })
            });
        // BLOCKED entities carry `errors`, LIMITED ones `additional_info` (or errors):
        // <https://developers.facebook.com/documentation/business-messaging/whatsapp/support/health-status>.
        // Plain loops: the browser module pays for every iterator adapter.
        let mut health_problems = Vec::new();
        for entity in waba.health_status.iter().flat_map(|h| &h.entities) {
            for error in &entity.errors {
                if let Some(what) = error.error_description.as_deref() {
                    health_problems.push(match &error.possible_solution {
                        Some(fix) => [what, " ", fix].concat(),
                        None => what.to_owned(),
                    });
                }
            }
            health_problems.extend(entity.additional_info.iter().cloned());
        }
        let verification = waba
            .business_verification_status
            .as_deref()
            .and_then(verification_note);
        AccountStatus {
            waba,
            review,
            review_known,
            newest,
            phones,
            incomplete,
            health_problems,
            alerts: Vec::new(),
            verification,
            progress: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text written from an id that has no English template would show the id itself.
    fn assert_written(text: &str) {
        for id in crate::messages::english_templates().keys() {
            let prefix = [id.split('.').next().unwrap_or_default(), "."].concat();
            for (at, _) in text.match_indices(&prefix) {
                let next = text[at + prefix.len()..].chars().next();
                assert!(
                    !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{text:?} holds a message id"
                );
            }
        }
    }

    #[test]
    fn a_step_line_names_the_number_the_account_shows_or_keeps_the_proxy_s() {
        let w = waba(
            r#"{"id":"1","phone_numbers":{"data":[{"id":"2","display_phone_number":"+1 555-0100","status":"PENDING","code_verification_status":"VERIFIED"}]}}"#,
        );
        let mut s = AccountStatus::new(w, true, None, true);
        let step = |phone: &str, text: &str| Progress {
            step: "register".into(),
            phone_id: Some(phone.into()),
            state: "running".into(),
            actor: Actor::Partner,
            text: text.into(),
            message: None,
        };
        assert!(s.apply_progress(step("2", "Registering 2")));
        assert_eq!(s.progress[0].text, "Registering +1 555-0100");
        assert!(s.apply_progress(step("9", "Registering +44 20 5550 0110")));
        assert_eq!(s.progress[1].text, "Registering +44 20 5550 0110");
    }

    #[test]
    fn every_text_the_model_writes_has_a_template() {
        use crate::pipeline::{StepKind, StepState, progress};
        for kind in [
            "subscribe",
            "assign_system_user",
            "share_credit_line",
            "find_phones",
            "register",
            "sync_contacts",
            "sync_history",
            "unsubscribe",
            "deregister",
        ] {
            for state in ["pending", "running", "done", "skipped", "failed"] {
                let (kind, state) = (
                    StepKind::parse(kind).unwrap(),
                    StepState::parse(state).unwrap(),
                );
                assert_written(&progress(kind, state, "+1 555").1);
            }
        }
        for step in ABANDONED_STEPS.iter().chain(&["SOMETHING_NEW"]) {
            assert_written(&step_guidance(step));
        }
        for (m, c) in [
            (Some("m"), Some("1")),
            (Some("m"), None),
            (None, Some("1")),
            (None, None),
        ] {
            assert_written(&reported_error(m, c));
        }
        for v in [
            "not_verified",
            "pending",
            "pending_need_more_info",
            "rejected",
            "ineligible",
            "brand_new",
        ] {
            assert_written(&verification_note(v).unwrap().message);
        }
        for (kind, value) in [
            ("disabled_update", Some("SCHEDULE_FOR_DISABLE")),
            ("disabled_update", None),
            ("account_restriction", None),
            ("account_violation", Some("SPAM")),
            ("account_deleted", None),
            ("account_offboarded", None),
            ("partner_removed", None),
        ] {
            let Effect::Raise(alert) = alert_of(kind, value) else {
                panic!("{kind} raises an alert")
            };
            assert_written(&alert.message);
        }
        for (status, code, name) in [
            ("UNVERIFIED", "NOT_VERIFIED", None),
            ("PENDING", "EXPIRED", None),
            ("CONNECTED", "VERIFIED", Some("DECLINED")),
            ("CONNECTED", "VERIFIED", Some("EXPIRED")),
            ("CONNECTED", "VERIFIED", Some("PENDING_REVIEW")),
            ("PENDING", "VERIFIED", None),
            ("FLAGGED", "VERIFIED", None),
            ("RESTRICTED", "VERIFIED", None),
            ("BANNED", "VERIFIED", None),
            ("NEW_STATE", "VERIFIED", None),
        ] {
            let phone = PhoneNumber {
                status: Some(status.into()),
                code_verification_status: Some(code.into()),
                name_status: name.map(Into::into),
                ..waba(r#"{"id":"1","phone_numbers":{"data":[{"id":"2"}]}}"#)
                    .phone_numbers
                    .unwrap()
                    .data
                    .remove(0)
            };
            assert_written(&phone_state(&phone).3.unwrap());
        }
    }

    fn waba(json: &str) -> Waba {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn ready_account() {
        let w = waba(
            r#"{"id":"1","account_review_status":"APPROVED","phone_numbers":{"data":[{"id":"2","status":"CONNECTED","code_verification_status":"VERIFIED"}]}}"#,
        );
        let s = AccountStatus::new(w, true, None, true);
        assert_eq!((s.review.as_str(), s.review_known), ("APPROVED", true));
        assert!(s.phones[0].ready && s.incomplete.is_none());
    }

    #[test]
    fn a_flagged_phone_is_a_problem_but_not_an_incomplete_signup() {
        let w = waba(
            r#"{"id":"1","account_review_status":"APPROVED","phone_numbers":{"data":[{"id":"2","display_phone_number":"+1 555","status":"FLAGGED","code_verification_status":"VERIFIED"}]}}"#,
        );
        let s = AccountStatus::new(w, true, None, true);
        assert!(s.incomplete.is_none());
        let p = &s.phones[0];
        assert!(
            p.problem
                .as_deref()
                .is_some_and(|t| t.starts_with("+1 555 is FLAGGED"))
        );
        assert_eq!(
            (p.ready, p.actor, p.action.as_str()),
            (false, Actor::Business, "improve_quality")
        );
    }

    fn phone(json: &str) -> PhoneStatus {
        let w = waba(&format!(
            r#"{{"id":"1","phone_numbers":{{"data":[{json}]}}}}"#
        ));
        AccountStatus::new(w, false, None, true).phones.remove(0)
    }

    /// Every phone state says who acts: `status`, `code_verification_status` and
    /// `name_status` read together; values this version does not know stay raw.
    #[test]
    fn every_phone_state_names_who_acts() {
        let cases = [
            (
                r#"{"id":"2","status":"CONNECTED","code_verification_status":"VERIFIED","name_status":"APPROVED"}"#,
                true,
                Actor::Nobody,
                "none",
            ),
            (
                r#"{"id":"2","status":"CONNECTED","name_status":"AVAILABLE_WITHOUT_REVIEW"}"#,
                true,
                Actor::Nobody,
                "none",
            ),
            (
                r#"{"id":"2","status":"CONNECTED","name_status":"PENDING_REVIEW"}"#,
                true,
                Actor::Meta,
                "name_review",
            ),
            (
                r#"{"id":"2","status":"CONNECTED","name_status":"DECLINED"}"#,
                false,
                Actor::Business,
                "fix_display_name",
            ),
            (
                r#"{"id":"2","status":"PENDING","code_verification_status":"VERIFIED","name_status":"APPROVED"}"#,
                false,
                Actor::Partner,
                "register",
            ),
            (
                r#"{"id":"2","status":"PENDING","code_verification_status":"NOT_VERIFIED"}"#,
                false,
                Actor::Business,
                "verify_number",
            ),
            (
                r#"{"id":"2","status":"PENDING","code_verification_status":"EXPIRED"}"#,
                false,
                Actor::Business,
                "verify_number",
            ),
            (
                r#"{"id":"2","status":"BANNED"}"#,
                false,
                Actor::Business,
                "appeal",
            ),
            (
                r#"{"id":"2","status":"RATE_LIMITED"}"#,
                false,
                Actor::Meta,
                "wait",
            ),
            (
                r#"{"id":"2","status":"SOMETHING_NEW","code_verification_status":"VERIFIED"}"#,
                false,
                Actor::Unknown,
                "unknown",
            ),
        ];
        for (json, ready, actor, action) in cases {
            let p = phone(json);
            assert_eq!(
                (p.ready, p.actor, p.action.as_str()),
                (ready, actor, action),
                "{json}"
            );
            assert_eq!(p.problem.is_none(), actor == Actor::Nobody, "{json}");
        }
        assert!(
            phone(r#"{"id":"2","status":"SOMETHING_NEW"}"#)
                .problem
                .unwrap()
                .contains("SOMETHING_NEW")
        );
        let register = phone(
            r#"{"id":"2","display_phone_number":"+1 555-0100","status":"PENDING","code_verification_status":"VERIFIED"}"#,
        );
        let text = register.problem.unwrap();
        assert!(
            text.contains("partner") && text.contains("register"),
            "{text}"
        );
        assert!(!text.contains("Embedded Signup"), "{text}");
    }

    /// A verified number waiting for registration is the partner's step, not an unfinished
    /// signup of the business.
    #[test]
    fn a_pending_verified_phone_is_the_partner_s_to_register() {
        let w = waba(
            r#"{"id":"1","account_review_status":"APPROVED","phone_numbers":{"data":[{"id":"2","display_phone_number":"+1 555-0100","status":"PENDING","code_verification_status":"VERIFIED"}]}}"#,
        );
        let inc = AccountStatus::new(w, true, None, true).incomplete.unwrap();
        assert_eq!(
            (inc.reason.as_str(), inc.actor),
            ("register_phone", Actor::Partner)
        );
    }

    /// Live changes: a review decision updates the review; a ban raises an alert the
    /// business acts on, a reinstatement clears it; a removal says the onboarding is revoked.
    #[test]
    fn live_changes_update_the_account() {
        let w = waba(r#"{"id":"1","account_review_status":"PENDING"}"#);
        let mut s = AccountStatus::new(w, true, None, false);
        assert!(s.apply_change("review", Some("APPROVED")));
        assert_eq!((s.review.as_str(), s.review_known), ("APPROVED", true));
        assert!(!s.apply_change("review", Some("APPROVED")), "nothing new");
        assert!(s.apply_change("disabled_update", Some("DISABLE")));
        assert_eq!(
            (s.alerts[0].kind.as_str(), s.alerts[0].actor),
            ("disabled_update", Actor::Business)
        );
        assert!(s.alerts[0].message.contains("disabled"));
        assert!(
            !s.apply_change("disabled_update", Some("DISABLE")),
            "the same alert once"
        );
        assert!(s.apply_change(
            "account_restriction",
            Some("RESTRICTED_BIZ_INITIATED_MESSAGING")
        ));
        assert!(s.apply_change("disabled_update", Some("REINSTATE")));
        let kinds: Vec<&str> = s.alerts.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, ["account_restriction"]);
        assert!(s.apply_change("partner_removed", Some("PARTNER_REMOVED")));
        assert!(s.alerts.last().unwrap().message.contains("revoked"));
        assert!(
            !s.apply_change("phone_quality", Some("FLAGGED")),
            "no bearing on the panel"
        );
    }

    /// Business verification says who acts; `verified` says nothing; unknown values raw.
    #[test]
    fn business_verification_names_who_acts() {
        let note = |status: &str| {
            let w = waba(&format!(
                r#"{{"id":"1","business_verification_status":"{status}"}}"#
            ));
            AccountStatus::new(w, true, None, false).verification
        };
        assert_eq!(note("verified"), None);
        assert_eq!(note("not_verified").unwrap().actor, Actor::Business);
        assert_eq!(note("pending").unwrap().actor, Actor::Meta);
        assert_eq!(
            note("pending_need_more_info").unwrap().actor,
            Actor::Business
        );
        let odd = note("under_audit").unwrap();
        assert_eq!(
            (odd.actor, odd.kind.as_str()),
            (Actor::Unknown, "under_audit")
        );
        assert!(odd.message.contains("under_audit"));
    }

    /// Meta's limited example: a LIMITED entity says why in `additional_info`
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/support/health-status>).
    #[test]
    fn limited_entities_say_why() {
        let w = waba(
            r#"{"id":"1","health_status":{"can_send_message":"LIMITED","entities":[{"entity_type":"PHONE_NUMBER","id":"106540352242922","can_send_message":"LIMITED","can_receive_call_sip":"AVAILABLE","additional_info":["Your display name has not been approved yet. Your message limit will increase after the display name is approved."]},{"entity_type":"WABA","id":"1","can_send_message":"AVAILABLE"}]}}"#,
        );
        let s = AccountStatus::new(w, true, None, false);
        assert_eq!(
            s.health_problems,
            [
                "Your display name has not been approved yet. Your message limit will increase after the display name is approved."
            ]
        );
    }

    #[test]
    fn phone_not_verified_means_certificate_not_ready() {
        let w = waba(
            r#"{"id":"1","account_review_status":"PENDING","phone_numbers":{"data":[{"id":"2","display_phone_number":"+55 11 5555-0104","status":"PENDING","code_verification_status":"NOT_VERIFIED"}]},
            "health_status":{"can_send_message":"LIMITED","entities":[{"errors":[{"error_description":"Not verified.","possible_solution":"Verify it."}]}]}}"#,
        );
        let s = AccountStatus::new(w, true, None, true);
        let inc = s.incomplete.unwrap();
        assert_eq!(inc.reason, "certificate_not_ready");
        assert!(inc.message.contains("+55 11 5555-0104") && inc.message.contains("certificate"));
        assert!(!s.phones[0].ready);
        assert_eq!(s.health_problems, ["Not verified. Verify it."]);
    }

    #[test]
    fn abandoned_step_and_unknown_status() {
        let w = waba(
            r#"{"id":"1","account_review_status":"UNDER_APPEAL","phone_numbers":{"data":[]}}"#,
        );
        let step = Abandoned::AtStep {
            current_step: "PHONE_NUMBER_VERIFICATION".into(),
        };
        let s = AccountStatus::new(w.clone(), true, Some(&step), true);
        assert_eq!((s.review.as_str(), s.review_known), ("UNDER_APPEAL", false));
        let inc = s.incomplete.unwrap();
        assert_eq!(
            (inc.reason.as_str(), inc.step.as_deref()),
            ("left_at_step", Some("PHONE_NUMBER_VERIFICATION"))
        );
        assert!(inc.message.contains("verification code"));
        // Only the newest account carries the signup's abandonment; an empty phone list
        // then says a number is missing.
        let s = AccountStatus::new(w.clone(), false, Some(&step), true);
        assert_eq!(s.incomplete.unwrap().reason, "no_phone_number");
        assert!(
            AccountStatus::new(w, false, None, false)
                .incomplete
                .is_none()
        );
        let reported = Abandoned::Reported {
            error_message: Some("Code incorrect".into()),
            error_code: Some("524126".into()),
            session_id: None,
        };
        let w = waba(r#"{"id":"1"}"#);
        let s = AccountStatus::new(w, true, Some(&reported), true);
        assert_eq!(s.review, "UNKNOWN");
        assert!(s.incomplete.unwrap().message.contains("524126"));
    }
}
