//! The partner's own steps after Embedded Signup, as a plan of durable steps: what each one
//! is, which token Meta documents for it, which steps an onboarding gets, what Meta's
//! errors mean for each step (retry, or who must act), and how the progress reads.
//!
//! Meta's pages followed (each call is also cited where the proxy makes it):
//! - Onboarding customers as a Tech Provider: exchange the code, subscribe the app to the
//!   customer's WABA webhooks, register the customer's number, with the business token the
//!   code exchange returned
//!   (<https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/onboarding-customers-as-a-tech-provider>);
//!   as a Solution Partner: subscribe, share the credit line (the partner's System User must
//!   be assigned to the WABA first), register
//!   (<https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/onboarding-customers-as-a-solution-partner/>).
//! - `POST /{waba-id}/subscribed_apps`, `GET`, `DELETE`; a POST without the override fields
//!   removes an override, so every subscription sends them
//!   (<https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/manage-webhooks>,
//!   <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/override/>).
//! - `POST /{phone-number-id}/register` with `messaging_product` and a six-digit `pin`; a
//!   number with two-step verification needs its existing PIN (133005); 10 register and 10
//!   deregister requests per number in a rolling 72 hours (133016)
//!   (<https://developers.facebook.com/documentation/business-messaging/whatsapp/business-phone-numbers/registration/>,
//!   <https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes>).
//! - `POST /{waba-id}/assigned_users` with an admin System User token
//!   (<https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/manage-system-users/>).
//! - `POST /{extended-credit-line-id}/whatsapp_credit_sharing_and_attach` with `waba_currency`
//!   and `waba_id`, by the Solution Partner's System User
//!   (<https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/share-and-revoke-credit-lines/>).
//! - Coexistence (`FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING`): the number is not registered;
//!   `POST /{phone-number-id}/smb_app_data` with `sync_type` `smb_app_state_sync`, then
//!   `history`, once each, within 24 hours of onboarding
//!   (<https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/onboarding-business-app-users>).

use crate::messages::text;
use crate::status::Actor;
use crate::waba::PhoneNumber;

/// Meta's window for registration attempts: 10 register and 10 deregister requests per
/// number in a rolling 72 hours.
pub const REGISTER_WINDOW_SECS: i64 = 72 * 3600;
/// Meta's limit of register and deregister attempts per number in [`REGISTER_WINDOW_SECS`].
pub const META_REGISTER_LIMIT: u32 = 10;
/// How long after a coexistence onboarding Meta accepts the contacts and history sync.
pub const SYNC_WINDOW_SECS: i64 = 24 * 3600;

/// An enum of names kept as text (in a database, in JSON), read back strictly: `as_str` and
/// `parse`. Exported for the proxy's own stored names.
#[macro_export]
macro_rules! named {
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

            /// The value a name stands for.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

named! {
    /// One of the partner's steps.
    StepKind {
        /// `POST /{waba-id}/subscribed_apps`: the app receives the WABA's webhooks.
        Subscribe = "subscribe",
        /// `POST /{waba-id}/assigned_users`: the partner's System User may manage the WABA.
        AssignSystemUser = "assign_system_user",
        /// `POST /{credit-line-id}/whatsapp_credit_sharing_and_attach`: the Solution Partner
        /// pays for the WABA's messages.
        ShareCreditLine = "share_credit_line",
        /// `GET /{waba-id}/phone_numbers`: the numbers of a WABA found without a browser
        /// session (a webhook or the tracker), to plan their steps.
        FindPhones = "find_phones",
        /// `POST /{phone-number-id}/register` with a two-step verification PIN.
        Register = "register",
        /// `POST /{phone-number-id}/smb_app_data` `smb_app_state_sync`: a coexistence number's
        /// contacts.
        SyncContacts = "sync_contacts",
        /// `POST /{phone-number-id}/smb_app_data` `history`: a coexistence number's chats.
        SyncHistory = "sync_history",
        /// `DELETE /{waba-id}/subscribed_apps` (offboarding).
        Unsubscribe = "unsubscribe",
        /// `POST /{phone-number-id}/deregister` (offboarding).
        Deregister = "deregister",
    }
}

named! {
    /// Where a step stands.
    StepState {
        /// Waiting for its next attempt.
        Pending = "pending",
        /// A runner holds it.
        Running = "running",
        /// Meta accepted it (or it was found already done).
        Done = "done",
        /// Not needed or stopped, with the reason.
        Skipped = "skipped",
        /// Meta refused it; someone must act, or the next attempt waits.
        Failed = "failed",
    }
}

named! {
    /// The token a call is made with.
    TokenKind {
        /// The business integration token the code exchange returned.
        Business = "business",
        /// The partner's System User token.
        SystemUser = "system_user",
    }
}

impl StepKind {
    /// The token Meta documents for the step, given whether the onboarding kept a business
    /// token: the business token for the steps on the customer's assets (subscribe,
    /// register, sync), the System User for the partner's own (assignment, credit line).
    pub fn token(self, business_token_kept: bool) -> TokenKind {
        match self {
            Self::AssignSystemUser | Self::ShareCreditLine | Self::FindPhones => {
                TokenKind::SystemUser
            }
            _ if business_token_kept => TokenKind::Business,
            _ => TokenKind::SystemUser,
        }
    }
}

impl StepState {
    /// Whether the step will not run again by itself.
    pub fn settled(self) -> bool {
        matches!(self, Self::Done | Self::Skipped)
    }
}

/// Which steps the partner wants run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanConfig {
    /// Subscribe the app to each WABA's webhooks.
    pub subscribe: bool,
    /// Assign the System User to each WABA (only when its id is configured).
    pub assign_system_user: bool,
    /// Share the credit line (only when its id is configured).
    pub share_credit_line: bool,
    /// Register each verified number.
    pub register: bool,
    /// Request the coexistence sync.
    pub sync: bool,
}

/// A step to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    /// What it does.
    pub kind: StepKind,
    /// The WABA.
    pub waba_id: String,
    /// The number, for per-phone steps.
    pub phone_id: Option<String>,
    /// `Pending`, or `Skipped` with the reason.
    pub state: StepState,
    /// Why it is skipped.
    pub reason: Option<String>,
}

impl PlannedStep {
    fn pending(kind: StepKind, waba_id: &str, phone_id: Option<&str>) -> Self {
        Self {
            kind,
            waba_id: waba_id.to_owned(),
            phone_id: phone_id.map(str::to_owned),
            state: StepState::Pending,
            reason: None,
        }
    }

    fn skipped(kind: StepKind, waba_id: &str, phone_id: Option<&str>, reason: &str) -> Self {
        Self {
            state: StepState::Skipped,
            reason: Some(reason.to_owned()),
            ..Self::pending(kind, waba_id, phone_id)
        }
    }
}

/// The steps of one shared WABA. `phones` are its numbers when they were read (the code
/// exchange reads them); `None` plans a [`StepKind::FindPhones`] step that plans them later.
/// `coexistence` is a WhatsApp Business app onboarding: its numbers are synchronised, not
/// registered.
pub fn plan_waba(
    config: &PlanConfig,
    waba_id: &str,
    phones: Option<&[PhoneNumber]>,
    coexistence: bool,
) -> Vec<PlannedStep> {
    let mut out = Vec::new();
    if config.assign_system_user {
        out.push(PlannedStep::pending(
            StepKind::AssignSystemUser,
            waba_id,
            None,
        ));
    }
    if config.subscribe {
        out.push(PlannedStep::pending(StepKind::Subscribe, waba_id, None));
    }
    if config.share_credit_line {
        out.push(PlannedStep::pending(
            StepKind::ShareCreditLine,
            waba_id,
            None,
        ));
    }
    match phones {
        // Numbers read later (a WABA whose read failed, one found without a signup) are
        // registered, or synced for a WhatsApp Business app signup.
        None if config.register || coexistence && config.sync => {
            out.push(PlannedStep::pending(StepKind::FindPhones, waba_id, None));
        }
        None => {}
        Some(phones) => {
            for p in phones {
                out.extend(plan_phone(config, waba_id, p, coexistence));
            }
        }
    }
    out
}

/// The steps of one number of `waba_id`.
pub fn plan_phone(
    config: &PlanConfig,
    waba_id: &str,
    phone: &PhoneNumber,
    coexistence: bool,
) -> Vec<PlannedStep> {
    let id = phone.id.as_str();
    if coexistence {
        if !config.sync {
            return Vec::new();
        }
        return vec![
            PlannedStep::pending(StepKind::SyncContacts, waba_id, Some(id)),
            PlannedStep::pending(StepKind::SyncHistory, waba_id, Some(id)),
        ];
    }
    if !config.register {
        return Vec::new();
    }
    // Only a number Meta shows `PENDING` (added and verified, or waiting for its code) is
    // registered; a number in any other state is the business's or Meta's to change.
    let step = match phone.status.as_deref() {
        Some("PENDING") | None => PlannedStep::pending(StepKind::Register, waba_id, Some(id)),
        Some("CONNECTED") => PlannedStep::skipped(
            StepKind::Register,
            waba_id,
            Some(id),
            "the number is already registered (CONNECTED)",
        ),
        Some(_) => PlannedStep::skipped(
            StepKind::Register,
            waba_id,
            Some(id),
            "the number is not waiting for registration (only PENDING numbers are registered)",
        ),
    };
    vec![step]
}

/// What to do after Meta refused a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Who must act before it can succeed.
    pub actor: Actor,
    /// Try again by itself after this many seconds; `None` waits for someone (the admin's
    /// retry).
    pub retry_after: Option<i64>,
    /// What happened and what to do, in plain words.
    pub message: String,
}

/// What Meta's error `code` (with `subcode`) means for a `kind` step. Throttling and
/// transient failures are the caller's to judge (they retry with backoff); this reads the
/// refusals.
pub fn judge(kind: StepKind, code: i64, subcode: Option<i64>) -> Verdict {
    let manual = |actor: Actor, message: &str| Verdict {
        actor,
        retry_after: None,
        message: message.to_owned(),
    };
    match (kind, code) {
        (StepKind::Register | StepKind::Deregister, 133016) => Verdict {
            actor: Actor::Meta,
            retry_after: Some(REGISTER_WINDOW_SECS),
            message: "Meta's limit of 10 register or deregister attempts per number in 72 \
                      hours is reached; the next attempt waits until it has passed."
                .into(),
        },
        (StepKind::Register, 133005) => manual(
            Actor::Business,
            "The number already has a different two-step verification PIN. The business tells \
             the partner its PIN (the partner sets it and retries) or turns two-step \
             verification off in WhatsApp Manager.",
        ),
        (StepKind::Register, 133006) => Verdict {
            actor: Actor::Business,
            retry_after: Some(15 * 60),
            message: "The number is not verified: the business must enter the code Meta sends \
                      to it (in Embedded Signup or WhatsApp Manager) before it can be \
                      registered."
                .into(),
        },
        (StepKind::Register, 133009 | 133008) => Verdict {
            actor: Actor::Meta,
            retry_after: Some(if code == 133008 { 3600 } else { 60 }),
            message: "Meta received PIN attempts too fast or too often; the next attempt waits."
                .into(),
        },
        (StepKind::Register, 133015) => Verdict {
            actor: Actor::Meta,
            retry_after: Some(5 * 60),
            message: "The number was recently deleted and Meta has not finished; the next \
                      attempt waits five minutes."
                .into(),
        },
        (StepKind::Register | StepKind::Deregister, 131031) => manual(
            Actor::Business,
            "Meta locked the business account: the business must resolve it in WhatsApp \
             Manager.",
        ),
        (StepKind::Subscribe, 2200 | 2201) => manual(
            Actor::Partner,
            "Meta could not verify the override callback URL: it must answer Meta's GET with \
             the hub.challenge when the verify token matches (check --override-callback-uri and \
             --override-verify-token).",
        ),
        (StepKind::SyncContacts | StepKind::SyncHistory, _) if code != 200 && code != 190 => {
            manual(
                Actor::Partner,
                "Meta refused the contacts and history sync (it is accepted once, within 24 \
                 hours of the WhatsApp Business app onboarding).",
            )
        }
        (_, 190) => manual(
            Actor::Partner,
            "Meta refused the token the step uses (expired or revoked): the business must \
             sign up again, or the partner checks its System User token.",
        ),
        (StepKind::AssignSystemUser, 200 | 10) => manual(
            Actor::Partner,
            "The System User token may not assign users to this WABA: it needs admin \
             permission on the partner's business.",
        ),
        (StepKind::ShareCreditLine, 200 | 10) => manual(
            Actor::Partner,
            "The System User may not share this credit line: it needs the \
             Manage Payment Methods permission on the Solution Partner's business.",
        ),
        (_, 200 | 10) => manual(
            Actor::Partner,
            "The token lacks permission on this WABA: assign the partner's System User to it \
             and check the app has Advanced access to whatsapp_business_management.",
        ),
        (_, 100) if subcode == Some(33) => manual(
            Actor::Partner,
            "Meta does not know the object or the token cannot see it.",
        ),
        _ => manual(
            Actor::Partner,
            "Meta refused the step; its error is recorded with the step.",
        ),
    }
}

/// What a step's state means for the people watching, and who acts: the panel's and
/// console's line for it. `phone` names the number (its display number when known).
pub fn progress(kind: StepKind, state: StepState, phone: &str) -> (Actor, String) {
    use StepState as S;
    let kind_name = kind.as_str();
    let text = match state {
        S::Pending | S::Running => text(
            &["progress.", kind_name, ".doing"].concat(),
            &[("phone", phone)],
        ),
        S::Done => text(
            &["progress.", kind_name, ".done"].concat(),
            &[("phone", phone)],
        ),
        S::Skipped => text("progress.skipped", &[("step", &label(kind))]),
        S::Failed => text("progress.failed", &[("step", &label(kind))]),
    };
    let actor = match state {
        S::Pending | S::Running => Actor::Partner,
        S::Done | S::Skipped => Actor::Nobody,
        S::Failed => Actor::Unknown,
    };
    (actor, text)
}

/// The step's name in plain words.
pub fn label(kind: StepKind) -> String {
    text(&["step_name.", kind.as_str()].concat(), &[])
}

/// The wait before retry `attempt` (1-based) after a transient failure: 5 s doubling, at most
/// an hour.
pub fn backoff_secs(attempt: u32) -> i64 {
    let shift = attempt.saturating_sub(1).min(10);
    (5_i64 << shift).min(3600)
}

/// Whether a six-character text is a two-step verification PIN (six ASCII digits).
pub fn is_pin(pin: &str) -> bool {
    pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ObjectId;

    fn phone(id: &str, status: &str) -> PhoneNumber {
        PhoneNumber {
            id: ObjectId::parse(id).unwrap_or_else(|_| unreachable!()),
            display_phone_number: None,
            verified_name: None,
            status: Some(status.to_owned()),
            quality_rating: None,
            code_verification_status: Some("VERIFIED".into()),
            name_status: None,
            platform_type: None,
        }
    }

    const ALL: PlanConfig = PlanConfig {
        subscribe: true,
        assign_system_user: true,
        share_credit_line: true,
        register: true,
        sync: true,
    };

    #[test]
    fn names_read_back() {
        for k in [
            StepKind::Subscribe,
            StepKind::AssignSystemUser,
            StepKind::ShareCreditLine,
            StepKind::FindPhones,
            StepKind::Register,
            StepKind::SyncContacts,
            StepKind::SyncHistory,
            StepKind::Unsubscribe,
            StepKind::Deregister,
        ] {
            assert_eq!(StepKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(StepState::parse("failed"), Some(StepState::Failed));
        assert_eq!(StepState::parse("FAILED"), None);
        assert_eq!(TokenKind::parse("system_user"), Some(TokenKind::SystemUser));
    }

    #[test]
    fn a_signup_plans_waba_steps_then_each_number() {
        let phones = [
            phone("1", "PENDING"),
            phone("2", "CONNECTED"),
            phone("3", "FLAGGED"),
        ];
        let steps = plan_waba(&ALL, "9", Some(&phones), false);
        let kinds: Vec<_> = steps.iter().map(|s| (s.kind, s.state)).collect();
        assert_eq!(
            kinds,
            [
                (StepKind::AssignSystemUser, StepState::Pending),
                (StepKind::Subscribe, StepState::Pending),
                (StepKind::ShareCreditLine, StepState::Pending),
                (StepKind::Register, StepState::Pending),
                (StepKind::Register, StepState::Skipped),
                (StepKind::Register, StepState::Skipped),
            ]
        );
        assert_eq!(steps[4].phone_id.as_deref(), Some("2"));
    }

    #[test]
    fn coexistence_numbers_sync_and_are_not_registered() {
        let phones = [phone("1", "CONNECTED")];
        let steps = plan_waba(&ALL, "9", Some(&phones), true);
        assert!(steps.iter().all(|s| s.kind != StepKind::Register));
        assert!(steps.iter().any(|s| s.kind == StepKind::SyncContacts));
        assert!(steps.iter().any(|s| s.kind == StepKind::SyncHistory));
    }

    #[test]
    fn unread_numbers_are_looked_up_later_and_switched_off_steps_are_absent() {
        let only = PlanConfig {
            subscribe: true,
            assign_system_user: false,
            share_credit_line: false,
            register: true,
            sync: false,
        };
        let steps = plan_waba(&only, "9", None, false);
        let kinds: Vec<_> = steps.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, [StepKind::Subscribe, StepKind::FindPhones]);
        let none = PlanConfig {
            register: false,
            sync: true,
            ..only
        };
        assert_eq!(plan_waba(&none, "9", None, false).len(), 1);
    }

    #[test]
    fn tokens_follow_meta_s_guide() {
        assert_eq!(StepKind::Subscribe.token(true), TokenKind::Business);
        assert_eq!(StepKind::Register.token(true), TokenKind::Business);
        assert_eq!(StepKind::Register.token(false), TokenKind::SystemUser);
        assert_eq!(StepKind::ShareCreditLine.token(true), TokenKind::SystemUser);
        assert_eq!(
            StepKind::AssignSystemUser.token(true),
            TokenKind::SystemUser
        );
    }

    #[test]
    fn meta_s_register_errors_say_who_acts() {
        let limit = judge(StepKind::Register, 133016, None);
        assert_eq!(limit.retry_after, Some(REGISTER_WINDOW_SECS));
        let pin = judge(StepKind::Register, 133005, None);
        assert_eq!((pin.actor, pin.retry_after), (Actor::Business, None));
        let unverified = judge(StepKind::Register, 133006, None);
        assert_eq!(unverified.actor, Actor::Business);
        assert!(unverified.retry_after.is_some());
        assert_eq!(judge(StepKind::Subscribe, 200, None).actor, Actor::Partner);
        assert_eq!(judge(StepKind::Subscribe, 190, None).retry_after, None);
    }

    #[test]
    fn progress_reads_as_the_panel_says_it() {
        assert_eq!(
            progress(StepKind::Subscribe, StepState::Running, "").1,
            "Connecting webhooks"
        );
        assert_eq!(
            progress(StepKind::Register, StepState::Pending, "+1 555-0100").1,
            "Registering +1 555-0100"
        );
        let (actor, done) = progress(StepKind::Register, StepState::Done, "+1 555-0100");
        assert_eq!(done, "+1 555-0100: ready to message");
        assert_eq!(actor, Actor::Nobody);
    }

    #[test]
    fn backoff_grows_and_stops_at_an_hour() {
        assert_eq!(backoff_secs(1), 5);
        assert_eq!(backoff_secs(2), 10);
        assert_eq!(backoff_secs(40), 3600);
        assert!(is_pin("012345"));
        assert!(!is_pin("12345"));
        assert!(!is_pin("12345a"));
    }
}
