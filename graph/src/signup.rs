//! Embedded Signup results: the `WA_EMBEDDED_SIGNUP` session messages Meta's popup posts to the
//! page, and the `FB.login` callback response.
//!
//! The `Raw*` types mirror what arrives in the browser; [`SessionMessage::from_raw`] and
//! [`LoginOutcome::from_raw`] turn them into the typed results the product works with.

use crate::id::{IdError, ObjectId, RawId};
use crate::secret::Secret;
use serde::Deserialize;

/// The `type` of Embedded Signup session messages.
pub const SESSION_MESSAGE_TYPE: &str = "WA_EMBEDDED_SIGNUP";
/// Longest token or code accepted from a login response.
pub const MAX_CREDENTIAL_LEN: usize = crate::input::MAX_TOKEN_LEN;

/// Why a signup message or login response could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignupError {
    /// A finish event with neither `waba_id` nor `waba_ids`.
    MissingWabaId {
        /// The event name.
        event: String,
    },
    /// An id in the message is malformed.
    BadId {
        /// The field holding the id.
        field: &'static str,
        /// What is wrong with it.
        source: IdError,
    },
    /// The message has no `event`.
    MissingEvent,
    /// A login response that says `connected` without a usable token or code.
    BadCredential,
    /// More WABAs than a multi-WABA finish plausibly shares.
    TooManyWabas,
    /// A text field longer than anything Meta sends, refused rather than stored.
    TooLong {
        /// The field.
        field: &'static str,
        /// Its limit.
        max: usize,
    },
}

impl SignupError {
    /// What is wrong, in words (what `Display` writes; the browser module reads it without
    /// the formatting machinery).
    pub fn message(&self) -> String {
        match self {
            Self::MissingWabaId { event } => [event, " event without waba_id or waba_ids"].concat(),
            Self::BadId { field, source } => ["invalid ", field, ": ", source.message()].concat(),
            Self::MissingEvent => "session message without event".to_owned(),
            Self::BadCredential => {
                "login response is connected but carries no valid accessToken or code".to_owned()
            }
            Self::TooManyWabas => [
                "waba_ids holds more than ",
                &crate::decimal(MAX_WABA_IDS as u64),
                " ids",
            ]
            .concat(),
            Self::TooLong { field, max } => [
                field,
                " is longer than ",
                &crate::decimal(*max as u64),
                " bytes",
            ]
            .concat(),
        }
    }
}

impl std::fmt::Display for SignupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for SignupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::BadId { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The longest event, step or version name accepted in a session message (Meta's are short
/// upper-case words). Each limit is generous next to what Meta sends, so that a posted message
/// can never make the proxy store much.
pub const MAX_NAME_LEN: usize = 64;
/// The longest id accepted (`error_id`, `session_id`).
pub const MAX_ID_LEN: usize = 128;
/// The longest `error_message` accepted (Meta's is a sentence).
pub const MAX_ERROR_MESSAGE_LEN: usize = 1024;
/// Most WABAs accepted in a multi-WABA finish (`waba_ids`).
pub const MAX_WABA_IDS: usize = 100;

fn bounded(field: &'static str, max: usize, text: Option<&str>) -> Result<(), SignupError> {
    match text {
        Some(t) if t.len() > max => Err(SignupError::TooLong { field, max }),
        _ => Ok(()),
    }
}

/// A `WA_EMBEDDED_SIGNUP` message as posted: `data` already decoded if it came as a string.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, serde::Serialize))]
#[serde(default)]
pub struct RawSessionMessage {
    /// Must be `WA_EMBEDDED_SIGNUP`.
    #[serde(rename = "type")]
    pub message_type: Option<String>,
    /// `FINISH`, `CANCEL`, ...
    pub event: Option<String>,
    /// Event details.
    pub data: Option<RawSessionData>,
    /// Message format version (Meta sends a number or a string).
    pub version: Option<RawId>,
}

/// The `data` object of a session message.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, serde::Serialize))]
#[serde(default)]
pub struct RawSessionData {
    /// The phone number registered during the flow.
    pub phone_number_id: Option<RawId>,
    /// The shared WABA.
    pub waba_id: Option<RawId>,
    /// Every shared WABA, in multi-WABA flows (instead of, or besides, `waba_id`).
    pub waba_ids: Option<Vec<RawId>>,
    /// The business that shared it.
    pub business_id: Option<RawId>,
    /// The step the user left at, on `CANCEL`.
    pub current_step: Option<String>,
    /// The error the user reported, on `CANCEL`/`ERROR`.
    pub error_message: Option<String>,
    /// Meta's code for the error (today's name of `error_id`).
    pub error_code: Option<RawId>,
    /// Meta's id for the error (the older name of `error_code`).
    pub error_id: Option<RawId>,
    /// Meta's id for the signup session.
    pub session_id: Option<RawId>,
}

/// A typed session message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMessage {
    /// The message format version, as text.
    pub version: Option<String>,
    /// What happened.
    pub event: SessionEvent,
}

/// What the session message says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// `FINISH`: WABA and phone number shared.
    Finish(Finished),
    /// `FINISH_ONLY_WABA`: a WABA shared without a phone number.
    FinishOnlyWaba(Finished),
    /// `FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING`: a WhatsApp Business app number onboarded
    /// (coexistence); the event names only the WABA.
    FinishWhatsAppBusinessApp(Finished),
    /// `FINISH_OBO_MIGRATION`: an on-behalf-of WABA migrated to the business's ownership.
    FinishOboMigration(Finished),
    /// `FINISH_GRANT_ONLY_API_ACCESS`: the business granted the partner's app access to an
    /// existing WABA (App-Only Install).
    FinishGrantOnlyApiAccess(Finished),
    /// `CANCEL`: the user left the flow.
    Cancel(Abandoned),
    /// `ERROR`: the business met an error in the flow.
    Error(Abandoned),
    /// An event this version does not know, kept rather than dropped.
    Unknown {
        /// The event name as sent.
        event: String,
    },
}

/// The ids a finished flow reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The shared WABA (the first of `waba_ids`).
    pub waba_id: ObjectId,
    /// Every shared WABA: `waba_id` first, then the others a multi-WABA flow names in
    /// `waba_ids`, each once.
    pub waba_ids: Vec<ObjectId>,
    /// The phone number, absent for `FINISH_ONLY_WABA` and app onboarding.
    pub phone_number_id: Option<ObjectId>,
    /// The business that shared it.
    pub business_id: Option<ObjectId>,
}

/// Why the flow ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abandoned {
    /// The user closed the flow at this step (e.g. `PHONE_NUMBER_VERIFICATION`).
    AtStep {
        /// The step's name.
        current_step: String,
    },
    /// The user reported an error.
    Reported {
        /// The error shown to the user.
        error_message: Option<String>,
        /// Meta's error code (`error_code`, or `error_id` as older messages call it).
        error_code: Option<String>,
        /// Meta's session id, for support.
        session_id: Option<String>,
    },
    /// No detail was given.
    Unspecified,
}

/// How a signup ended, by its session event: the one rule the page, the proxy's records and
/// its follow-ups share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupOutcome {
    /// A WABA (and, unless the event says otherwise, a phone number) was shared.
    Finished,
    /// The business left the flow (at a step, or without saying where).
    Cancelled,
    /// The business reported an error (`CANCEL` with `error_message`/`error_code`, or `ERROR`).
    Error,
    /// An event this version does not know.
    Unknown,
}

impl SignupOutcome {
    /// The stored and reported name: `finished`, `cancelled`, `error`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finished => "finished",
            Self::Cancelled => "cancelled",
            Self::Error => "error",
            Self::Unknown => "unknown",
        }
    }
}

impl SessionEvent {
    /// Meta's name of the event (`FINISH`, `CANCEL`, ...; an unknown one as sent).
    pub fn name(&self) -> &str {
        match self {
            Self::Finish(_) => "FINISH",
            Self::FinishOnlyWaba(_) => "FINISH_ONLY_WABA",
            Self::FinishWhatsAppBusinessApp(_) => "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING",
            Self::FinishOboMigration(_) => "FINISH_OBO_MIGRATION",
            Self::FinishGrantOnlyApiAccess(_) => "FINISH_GRANT_ONLY_API_ACCESS",
            Self::Cancel(_) => "CANCEL",
            Self::Error(_) => "ERROR",
            Self::Unknown { event } => event,
        }
    }

    /// The finish details, when the flow finished.
    pub fn finished(&self) -> Option<&Finished> {
        match self {
            Self::Finish(f)
            | Self::FinishOnlyWaba(f)
            | Self::FinishWhatsAppBusinessApp(f)
            | Self::FinishOboMigration(f)
            | Self::FinishGrantOnlyApiAccess(f) => Some(f),
            _ => None,
        }
    }

    /// Why the business left early, when it did.
    pub fn abandoned(&self) -> Option<&Abandoned> {
        match self {
            Self::Cancel(a) | Self::Error(a) => Some(a),
            _ => None,
        }
    }

    /// Whether the shared WABA should hold a phone number. Only `FINISH_ONLY_WABA` shares a
    /// WABA without one; a WhatsApp Business app onboarding (coexistence) brings the app's
    /// own number onto the WABA even though its event names only the WABA
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/onboarding-business-app-users>).
    pub fn expects_phone(&self) -> bool {
        !matches!(self, Self::FinishOnlyWaba(_))
    }

    /// Whether the business onboarded its WhatsApp Business app number (coexistence): the
    /// number is synchronised, not registered.
    pub fn is_coexistence(&self) -> bool {
        matches!(self, Self::FinishWhatsAppBusinessApp(_))
    }

    /// How the signup ended.
    pub fn outcome(&self) -> SignupOutcome {
        match self {
            Self::Finish(_)
            | Self::FinishOnlyWaba(_)
            | Self::FinishWhatsAppBusinessApp(_)
            | Self::FinishOboMigration(_)
            | Self::FinishGrantOnlyApiAccess(_) => SignupOutcome::Finished,
            Self::Error(_) | Self::Cancel(Abandoned::Reported { .. }) => SignupOutcome::Error,
            Self::Cancel(_) => SignupOutcome::Cancelled,
            Self::Unknown { .. } => SignupOutcome::Unknown,
        }
    }
}

impl SessionMessage {
    /// Types a raw message. `Ok(None)` when the message is not an Embedded Signup message.
    pub fn from_raw(raw: RawSessionMessage) -> Result<Option<Self>, SignupError> {
        if raw.message_type.as_deref() != Some(SESSION_MESSAGE_TYPE) {
            return Ok(None);
        }
        let name = raw.event.ok_or(SignupError::MissingEvent)?;
        let data = raw.data.unwrap_or_default();
        bounded("event", MAX_NAME_LEN, Some(&name))?;
        bounded(
            "version",
            MAX_NAME_LEN,
            raw.version.as_ref().map(|v| v.0.as_str()),
        )?;
        bounded("current_step", MAX_NAME_LEN, data.current_step.as_deref())?;
        bounded(
            "error_message",
            MAX_ERROR_MESSAGE_LEN,
            data.error_message.as_deref(),
        )?;
        bounded(
            "error_id",
            MAX_ID_LEN,
            data.error_id.as_ref().map(|v| v.0.as_str()),
        )?;
        bounded(
            "error_code",
            MAX_ID_LEN,
            data.error_code.as_ref().map(|v| v.0.as_str()),
        )?;
        bounded(
            "session_id",
            MAX_ID_LEN,
            data.session_id.as_ref().map(|v| v.0.as_str()),
        )?;
        let event = match name.as_str() {
            "FINISH" => SessionEvent::Finish(finished(&name, &data)?),
            "FINISH_ONLY_WABA" => SessionEvent::FinishOnlyWaba(finished(&name, &data)?),
            "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING" => {
                SessionEvent::FinishWhatsAppBusinessApp(finished(&name, &data)?)
            }
            "FINISH_OBO_MIGRATION" => SessionEvent::FinishOboMigration(finished(&name, &data)?),
            "FINISH_GRANT_ONLY_API_ACCESS" => {
                SessionEvent::FinishGrantOnlyApiAccess(finished(&name, &data)?)
            }
            "CANCEL" => SessionEvent::Cancel(abandoned(data)),
            "ERROR" => SessionEvent::Error(abandoned(data)),
            _ => SessionEvent::Unknown { event: name },
        };
        Ok(Some(SessionMessage {
            version: raw.version.map(|v| v.0),
            event,
        }))
    }
}

fn opt_id(field: &'static str, raw: &Option<RawId>) -> Result<Option<ObjectId>, SignupError> {
    raw.as_ref()
        .map(|r| ObjectId::parse(&r.0).map_err(|source| SignupError::BadId { field, source }))
        .transpose()
}

fn finished(event: &str, data: &RawSessionData) -> Result<Finished, SignupError> {
    let listed = data.waba_ids.as_deref().unwrap_or_default();
    if listed.len() > MAX_WABA_IDS {
        return Err(SignupError::TooManyWabas);
    }
    let mut waba_ids: Vec<ObjectId> = Vec::with_capacity(listed.len() + 1);
    let all = data
        .waba_id
        .iter()
        .map(|r| ("waba_id", r))
        .chain(listed.iter().map(|r| ("waba_ids", r)));
    for (field, raw) in all {
        let id = ObjectId::parse(&raw.0).map_err(|source| SignupError::BadId { field, source })?;
        if !waba_ids.contains(&id) {
            waba_ids.push(id);
        }
    }
    let waba_id = waba_ids
        .first()
        .cloned()
        .ok_or_else(|| SignupError::MissingWabaId {
            event: event.to_owned(),
        })?;
    Ok(Finished {
        waba_id,
        waba_ids,
        phone_number_id: opt_id("phone_number_id", &data.phone_number_id)?,
        business_id: opt_id("business_id", &data.business_id)?,
    })
}

/// A flow left early: a reported error (`error_message` or an error code; Meta sends it as
/// `CANCEL`), or the step the business left at.
fn abandoned(data: RawSessionData) -> Abandoned {
    let error_code = data.error_code.or(data.error_id).map(|r| r.0);
    if data.error_message.is_some() || error_code.is_some() {
        return Abandoned::Reported {
            error_message: data.error_message,
            error_code,
            session_id: data.session_id.map(|r| r.0),
        };
    }
    match data.current_step {
        Some(current_step) => Abandoned::AtStep { current_step },
        None => Abandoned::Unspecified,
    }
}

/// Whether a `message` event's origin is Meta's: `https:`, host `facebook.com` or a
/// subdomain of it, no port, no user info; or exactly one of the `extra` origins the embedder
/// allowed explicitly (tests, demos).
pub fn is_trusted_origin(origin: &str, extra: &[&str]) -> bool {
    if extra.contains(&origin) {
        return true;
    }
    let Some(host) = origin.strip_prefix("https://") else {
        return false;
    };
    let host_ok = |h: &str| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'))
    };
    host_ok(host)
        && (host == "facebook.com"
            || host
                .strip_suffix(".facebook.com")
                .is_some_and(|sub| !sub.is_empty() && !sub.starts_with('.') && !sub.ends_with('.')))
}

/// The `FB.login` callback response as the SDK hands it over.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawLoginResponse {
    /// `connected`, `not_authorized`, `unknown`.
    pub status: Option<String>,
    /// Present when the user logged in.
    #[serde(rename = "authResponse")]
    pub auth_response: Option<RawAuthResponse>,
}

/// `authResponse` of a login response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawAuthResponse {
    /// The business token (older flow).
    #[serde(rename = "accessToken")]
    pub access_token: Option<String>,
    /// The exchangeable code (current flow, `response_type: "code"`).
    pub code: Option<String>,
    /// The user's app-scoped id.
    #[serde(rename = "userID")]
    pub user_id: Option<RawId>,
    /// Seconds the token lives.
    #[serde(rename = "expiresIn")]
    pub expires_in: Option<i64>,
}

/// What the `FB.login` callback says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Logged in with a business token (to inspect with `debug_token`).
    Token {
        /// The business token.
        access_token: Secret,
        /// The user's app-scoped id.
        user_id: Option<String>,
        /// Seconds the token lives.
        expires_in: Option<i64>,
    },
    /// Logged in with a code to exchange server-side within 30 seconds.
    Code {
        /// The code.
        code: Secret,
    },
    /// The user did not log in (closed the dialog, refused, or status not `connected`).
    Cancelled {
        /// The status the SDK reported.
        status: Option<String>,
    },
}

impl LoginOutcome {
    /// Types a raw login response.
    pub fn from_raw(raw: RawLoginResponse) -> Result<Self, SignupError> {
        let auth = match (raw.status.as_deref(), raw.auth_response) {
            (Some("connected"), Some(auth)) => auth,
            (status, _) => {
                return Ok(Self::Cancelled {
                    status: status.map(str::to_owned),
                });
            }
        };
        let usable = crate::input::is_credential_text;
        match (auth.access_token, auth.code) {
            (_, Some(code)) if usable(&code) => Ok(Self::Code {
                code: Secret::new(code),
            }),
            (Some(token), None) if usable(&token) => Ok(Self::Token {
                access_token: Secret::new(token),
                user_id: auth.user_id.map(|r| r.0),
                expires_in: auth.expires_in,
            }),
            _ => Err(SignupError::BadCredential),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(json: &str) -> Result<Option<SessionMessage>, SignupError> {
        SessionMessage::from_raw(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn one_rule_for_name_outcome_and_phone() {
        let cases = [
            (
                r#"{"type":"WA_EMBEDDED_SIGNUP","event":"FINISH","data":{"waba_id":"1","phone_number_id":"2"}}"#,
                "FINISH",
                SignupOutcome::Finished,
                true,
            ),
            (
                r#"{"type":"WA_EMBEDDED_SIGNUP","event":"FINISH_ONLY_WABA","data":{"waba_id":"1"}}"#,
                "FINISH_ONLY_WABA",
                SignupOutcome::Finished,
                false,
            ),
            (
                r#"{"type":"WA_EMBEDDED_SIGNUP","event":"FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING","data":{"waba_id":"1"}}"#,
                "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING",
                SignupOutcome::Finished,
                true,
            ),
            (
                r#"{"type":"WA_EMBEDDED_SIGNUP","event":"CANCEL","data":{"current_step":"PHONE_NUMBER_SETUP"}}"#,
                "CANCEL",
                SignupOutcome::Cancelled,
                true,
            ),
            (
                r#"{"type":"WA_EMBEDDED_SIGNUP","event":"CANCEL","data":{"error_message":"x","error_id":"5"}}"#,
                "CANCEL",
                SignupOutcome::Error,
                true,
            ),
            (
                r#"{"type":"WA_EMBEDDED_SIGNUP","event":"ERROR","data":{}}"#,
                "ERROR",
                SignupOutcome::Error,
                true,
            ),
            (
                r#"{"type":"WA_EMBEDDED_SIGNUP","event":"SOMETHING_NEW"}"#,
                "SOMETHING_NEW",
                SignupOutcome::Unknown,
                true,
            ),
        ];
        for (json, name, outcome, phone) in cases {
            let m = msg(json).unwrap().unwrap();
            assert_eq!(m.event.name(), name, "{json}");
            assert_eq!(m.event.outcome(), outcome, "{json}");
            assert_eq!(m.event.expects_phone(), phone, "{json}");
            assert_eq!(
                m.event.finished().is_some(),
                outcome == SignupOutcome::Finished
            );
        }
    }

    #[test]
    fn finish_events() {
        let m = msg(r#"{"data":{"phone_number_id":"106540352242922","waba_id":9007199254740993,"business_id":"2729063490586005"},"type":"WA_EMBEDDED_SIGNUP","event":"FINISH","version":3}"#)
            .unwrap()
            .unwrap();
        assert_eq!(m.version.as_deref(), Some("3"));
        let SessionEvent::Finish(f) = m.event else {
            panic!("{m:?}")
        };
        assert_eq!(f.waba_id.as_str(), "9007199254740993");
        assert_eq!(f.phone_number_id.unwrap().as_str(), "106540352242922");
        let m = msg(r#"{"data":{"waba_id":"1","business_id":"2"},"type":"WA_EMBEDDED_SIGNUP","event":"FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING","version":"3"}"#)
            .unwrap()
            .unwrap();
        assert!(matches!(
            m.event,
            SessionEvent::FinishWhatsAppBusinessApp(Finished {
                phone_number_id: None,
                ..
            })
        ));
        assert!(matches!(
            msg(r#"{"type":"WA_EMBEDDED_SIGNUP","event":"FINISH_ONLY_WABA","data":{}}"#),
            Err(SignupError::MissingWabaId { .. })
        ));
        assert!(matches!(
            msg(r#"{"type":"WA_EMBEDDED_SIGNUP","event":"FINISH","data":{"waba_id":"../x"}}"#),
            Err(SignupError::BadId {
                field: "waba_id",
                ..
            })
        ));
    }

    /// The session messages of Meta's Embedded Signup pages, as published: the v4
    /// implementation page (success with `waba_ids`, user-reported errors with `error_code`),
    /// the coexistence page, the bypass page and the App-Only Install page
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/implementation>,
    /// <https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/onboarding-business-app-users>,
    /// <https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/bypass-phone-addition>,
    /// <https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/app-only-install>).
    #[test]
    fn every_finish_event_meta_documents() {
        let multi = msg(r#"{"data":{"phone_number_id":"106540352242922","waba_ids":["102289599326934","101569239400667"],"business_id":"2729063490586005"},"type":"WA_EMBEDDED_SIGNUP","event":"FINISH"}"#).unwrap().unwrap();
        let f = multi.event.finished().unwrap();
        assert_eq!(f.waba_id.as_str(), "102289599326934");
        let ids: Vec<&str> = f.waba_ids.iter().map(ObjectId::as_str).collect();
        assert_eq!(ids, ["102289599326934", "101569239400667"]);
        // `waba_id` and `waba_ids` together: the one first, each once.
        let both = msg(r#"{"data":{"waba_id":"2","waba_ids":["1","2"]},"type":"WA_EMBEDDED_SIGNUP","event":"FINISH"}"#).unwrap().unwrap();
        let ids: Vec<&str> = both
            .event
            .finished()
            .unwrap()
            .waba_ids
            .iter()
            .map(ObjectId::as_str)
            .collect();
        assert_eq!(ids, ["2", "1"]);
        let cases = [
            (
                r#"{"data":{"waba_id":"102289599326934"},"type":"WA_EMBEDDED_SIGNUP","event":"FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING","version":3}"#,
                "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING",
                true,
            ),
            (
                r#"{"data":{"phone_number_id":"106540352242922","waba_id":"102289599326934"},"type":"WA_EMBEDDED_SIGNUP","event":"FINISH_ONLY_WABA","version":3}"#,
                "FINISH_ONLY_WABA",
                false,
            ),
            (
                r#"{"data":{"phone_number_id":"106540352242922","waba_id":"102289599326934","business_id":"2729063490586005"},"type":"WA_EMBEDDED_SIGNUP","event":"FINISH_GRANT_ONLY_API_ACCESS"}"#,
                "FINISH_GRANT_ONLY_API_ACCESS",
                true,
            ),
            (
                r#"{"data":{"waba_id":"102289599326934","business_id":"2729063490586005"},"type":"WA_EMBEDDED_SIGNUP","event":"FINISH_OBO_MIGRATION"}"#,
                "FINISH_OBO_MIGRATION",
                true,
            ),
        ];
        for (json, name, phone) in cases {
            let m = msg(json).unwrap().unwrap();
            assert_eq!(m.event.name(), name);
            assert_eq!(m.event.outcome(), SignupOutcome::Finished, "{name}");
            assert_eq!(m.event.expects_phone(), phone, "{name}");
            assert_eq!(
                m.event.finished().unwrap().waba_id.as_str(),
                "102289599326934"
            );
        }
        let reported = msg(r#"{"data":{"error_message":"Your verification code is incorrect.","error_code":"524126","session_id":"f34b51dab5e0498","timestamp":"1746041036"},"type":"WA_EMBEDDED_SIGNUP","event":"CANCEL"}"#).unwrap().unwrap();
        assert_eq!(reported.event.outcome(), SignupOutcome::Error);
        let Some(Abandoned::Reported {
            error_code,
            session_id,
            ..
        }) = reported.event.abandoned()
        else {
            panic!("{reported:?}")
        };
        assert_eq!(error_code.as_deref(), Some("524126"));
        assert_eq!(session_id.as_deref(), Some("f34b51dab5e0498"));
        // An error code alone is a reported error too.
        let code_only =
            msg(r#"{"data":{"error_code":524126},"type":"WA_EMBEDDED_SIGNUP","event":"CANCEL"}"#)
                .unwrap()
                .unwrap();
        assert_eq!(code_only.event.outcome(), SignupOutcome::Error);
        // Neither `waba_id` nor `waba_ids`: refused; too many ids: refused.
        assert!(matches!(
            msg(r#"{"data":{"waba_ids":[]},"type":"WA_EMBEDDED_SIGNUP","event":"FINISH"}"#),
            Err(SignupError::MissingWabaId { .. })
        ));
        let many: Vec<String> = (1..=101).map(|i| format!("\"{i}\"")).collect();
        let json = format!(
            r#"{{"data":{{"waba_ids":[{}]}},"type":"WA_EMBEDDED_SIGNUP","event":"FINISH"}}"#,
            many.join(",")
        );
        assert_eq!(msg(&json), Err(SignupError::TooManyWabas));
    }

    #[test]
    fn cancel_and_error_events() {
        let m = msg(r#"{"data":{"current_step":"PHONE_NUMBER_VERIFICATION"},"type":"WA_EMBEDDED_SIGNUP","event":"CANCEL","version":3}"#).unwrap().unwrap();
        assert_eq!(
            m.event,
            SessionEvent::Cancel(Abandoned::AtStep {
                current_step: "PHONE_NUMBER_VERIFICATION".into()
            })
        );
        let m = msg(r#"{"data":{"error_message":"Your verification code is incorrect.","error_id":524126,"session_id":"f34b6950d0f4c8","timestamp":1698675133},"type":"WA_EMBEDDED_SIGNUP","event":"CANCEL","version":3}"#).unwrap().unwrap();
        let SessionEvent::Cancel(Abandoned::Reported {
            error_code,
            session_id,
            ..
        }) = m.event
        else {
            panic!()
        };
        assert_eq!(
            (error_code.as_deref(), session_id.as_deref()),
            (Some("524126"), Some("f34b6950d0f4c8"))
        );
        let m =
            msg(r#"{"type":"WA_EMBEDDED_SIGNUP","event":"ERROR","data":{"error_message":"x"}}"#)
                .unwrap()
                .unwrap();
        assert!(matches!(
            m.event,
            SessionEvent::Error(Abandoned::Reported { .. })
        ));
        let m = msg(r#"{"type":"WA_EMBEDDED_SIGNUP","event":"CANCEL"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(m.event, SessionEvent::Cancel(Abandoned::Unspecified));
        let m = msg(r#"{"type":"WA_EMBEDDED_SIGNUP","event":"PARTIAL_FINISH"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            m.event,
            SessionEvent::Unknown {
                event: "PARTIAL_FINISH".into()
            }
        );
    }

    #[test]
    fn unrelated_messages_are_not_errors() {
        assert_eq!(msg(r#"{"type":"webpackOk"}"#), Ok(None));
        assert_eq!(msg(r#"{}"#), Ok(None));
        assert_eq!(
            msg(r#"{"type":"WA_EMBEDDED_SIGNUP"}"#),
            Err(SignupError::MissingEvent)
        );
    }

    #[test]
    fn only_meta_origins_are_trusted() {
        for ok in [
            "https://www.facebook.com",
            "https://facebook.com",
            "https://business.facebook.com",
        ] {
            assert!(is_trusted_origin(ok, &[]), "{ok}");
        }
        for bad in [
            "https://evilfacebook.com",
            "http://www.facebook.com",
            "https://facebook.com.evil.example",
            "https://www.facebook.com:8443",
            "https://user@facebook.com",
            "https://.facebook.com",
            "https://a..facebook.com",
            "https://www.facebook.com/",
            "https://WWW.FACEBOOK.COM",
            "null",
            "",
        ] {
            assert!(!is_trusted_origin(bad, &[]), "{bad}");
        }
        assert!(is_trusted_origin(
            "http://127.0.0.1:9000",
            &["http://127.0.0.1:9000"]
        ));
        assert!(!is_trusted_origin(
            "http://127.0.0.1:9001",
            &["http://127.0.0.1:9000"]
        ));
    }

    fn login(json: &str) -> Result<LoginOutcome, SignupError> {
        LoginOutcome::from_raw(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn login_responses() {
        let t = login(r#"{"status":"connected","authResponse":{"accessToken":"EAAFl123","userID":"10222270944537964","expiresIn":5183999}}"#).unwrap();
        let LoginOutcome::Token {
            access_token,
            user_id,
            ..
        } = &t
        else {
            panic!()
        };
        assert_eq!(access_token.expose(), "EAAFl123");
        assert_eq!(user_id.as_deref(), Some("10222270944537964"));
        assert!(!format!("{t:?}").contains("EAAFl123"));
        let c = login(r#"{"status":"connected","authResponse":{"code":"AQBx","userID":null}}"#)
            .unwrap();
        assert!(matches!(c, LoginOutcome::Code { .. }));
        assert_eq!(
            login(r#"{"status":"unknown","authResponse":null}"#).unwrap(),
            LoginOutcome::Cancelled {
                status: Some("unknown".into())
            }
        );
        assert_eq!(
            login(r#"{}"#).unwrap(),
            LoginOutcome::Cancelled { status: None }
        );
        assert_eq!(
            login(r#"{"status":"connected"}"#).unwrap(),
            LoginOutcome::Cancelled {
                status: Some("connected".into())
            }
        );
        for bad in [
            r#"{"status":"connected","authResponse":{}}"#,
            r#"{"status":"connected","authResponse":{"accessToken":""}}"#,
            r#"{"status":"connected","authResponse":{"accessToken":"a b"}}"#,
        ] {
            assert_eq!(login(bad), Err(SignupError::BadCredential), "{bad}");
        }
    }
}

/// The credential of a connected login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A business token (older flow): inspect it with `debug_token`.
    Token(Secret),
    /// A code (current flow): exchange it server-side within 30 seconds.
    Code(Secret),
}

/// One signup, once both halves are in (or the wait for the session message gave up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignupResult {
    /// What `FB.login` returned.
    pub login: LoginOutcome,
    /// The finishing or cancelling session message, if one arrived.
    pub session: Option<SessionMessage>,
    /// Events this version does not know, in arrival order.
    pub unknown_events: Vec<String>,
}

impl SignupResult {
    /// The credential, when the login connected.
    pub fn credential(&self) -> Option<Credential> {
        match &self.login {
            LoginOutcome::Token { access_token, .. } => {
                Some(Credential::Token(access_token.clone()))
            }
            LoginOutcome::Code { code } => Some(Credential::Code(code.clone())),
            LoginOutcome::Cancelled { .. } => None,
        }
    }

    /// The session's finish details, when it finished.
    pub fn finished(&self) -> Option<&Finished> {
        self.session.as_ref()?.event.finished()
    }

    /// Why the business left early, when it did.
    pub fn abandoned(&self) -> Option<&Abandoned> {
        self.session.as_ref()?.event.abandoned()
    }
}

/// Waits for both the `FB.login` response and a finishing or cancelling session message,
/// in either order, and yields one [`SignupResult`]. Later input is ignored.
#[derive(Debug, Default)]
pub struct SignupTracker {
    login: Option<LoginOutcome>,
    session: Option<SessionMessage>,
    unknown_events: Vec<String>,
    done: bool,
}

impl SignupTracker {
    /// A tracker waiting for both halves.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the login response.
    pub fn on_login(&mut self, login: LoginOutcome) -> Option<SignupResult> {
        if self.done || self.login.is_some() {
            return None;
        }
        self.login = Some(login);
        self.try_complete()
    }

    /// Feeds a session message. Unknown events are recorded and do not end the wait.
    pub fn on_session(&mut self, message: SessionMessage) -> Option<SignupResult> {
        if self.done {
            return None;
        }
        match &message.event {
            SessionEvent::Unknown { event } => {
                self.unknown_events.push(event.clone());
                None
            }
            _ if self.session.is_some() => None,
            _ => {
                self.session = Some(message);
                self.try_complete()
            }
        }
    }

    /// The finishing or cancelling session message taken so far (the first one; later ones
    /// and unknown events are not kept here).
    pub fn session(&self) -> Option<&SessionMessage> {
        self.session.as_ref()
    }

    /// Whether the login is in and only the session message is missing: the caller may wait
    /// a little, then call [`SignupTracker::stop_waiting`].
    pub fn waiting_for_session(&self) -> bool {
        !self.done && self.login.is_some() && self.session.is_none()
    }

    /// Gives up on the session message (some flows never send one): yields the result with
    /// what arrived, if the login is in.
    pub fn stop_waiting(&mut self) -> Option<SignupResult> {
        if self.done {
            return None;
        }
        let login = self.login.clone()?;
        self.done = true;
        Some(SignupResult {
            login,
            session: self.session.clone(),
            unknown_events: self.unknown_events.clone(),
        })
    }

    fn try_complete(&mut self) -> Option<SignupResult> {
        if self.login.is_some() && self.session.is_some() {
            self.stop_waiting()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tracker_tests {
    use super::*;

    fn finish() -> SessionMessage {
        SessionMessage {
            version: Some("3".into()),
            event: SessionEvent::Finish(Finished {
                waba_id: ObjectId::parse("1").unwrap(),
                waba_ids: vec![ObjectId::parse("1").unwrap()],
                phone_number_id: None,
                business_id: None,
            }),
        }
    }

    fn token() -> LoginOutcome {
        LoginOutcome::Token {
            access_token: Secret::new("EAAx"),
            user_id: None,
            expires_in: None,
        }
    }

    #[test]
    fn either_order_gives_one_result() {
        let mut t = SignupTracker::new();
        assert_eq!(t.session(), None);
        assert_eq!(t.on_session(finish()), None);
        assert_eq!(t.session(), Some(&finish()), "the first finish is kept");
        let r = t.on_login(token()).unwrap();
        assert_eq!(r.finished().unwrap().waba_id.as_str(), "1");
        assert!(matches!(r.credential(), Some(Credential::Token(_))));
        assert_eq!(t.on_login(token()), None, "only one result");

        let mut t = SignupTracker::new();
        assert_eq!(t.on_login(token()), None);
        assert!(t.waiting_for_session());
        let unknown = SessionMessage {
            version: None,
            event: SessionEvent::Unknown {
                event: "NEW_THING".into(),
            },
        };
        assert_eq!(t.on_session(unknown), None);
        assert_eq!(
            t.session(),
            None,
            "unknown events are not the session message"
        );
        let r = t.on_session(finish()).unwrap();
        assert_eq!(r.unknown_events, ["NEW_THING"]);
        assert_eq!(t.stop_waiting(), None);
    }

    #[test]
    fn cancel_and_missing_session() {
        let mut t = SignupTracker::new();
        let cancel = SessionMessage {
            version: None,
            event: SessionEvent::Cancel(Abandoned::AtStep {
                current_step: "PHONE_NUMBER_VERIFICATION".into(),
            }),
        };
        t.on_session(cancel);
        let r = t
            .on_login(LoginOutcome::Cancelled {
                status: Some("unknown".into()),
            })
            .unwrap();
        assert!(r.credential().is_none());
        assert!(matches!(r.abandoned(), Some(Abandoned::AtStep { .. })));

        let mut t = SignupTracker::new();
        assert_eq!(t.stop_waiting(), None, "nothing to give yet");
        t.on_login(token());
        let r = t.stop_waiting().unwrap();
        assert!(r.session.is_none() && r.credential().is_some());
    }
}
