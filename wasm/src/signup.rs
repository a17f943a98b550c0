//! The signup result on the page: the `FB.login` response, the `WA_EMBEDDED_SIGNUP` session
//! messages (from Meta's origins only), and [`SignupListener`], which waits for both.
//!
//! Meta's session message travels on as it came (`sessionMessage`): the proxy gets that very
//! object, and every field JS sees besides it is derived here, once, from the typed
//! `waba_graph::signup` model.

use crate::browser::Listener;
use crate::error::{WabaError, code};
use crate::js::{Obj, Out, string_array};
use crate::read;
use js_sys::Promise;
use waba_graph::signup::{
    Abandoned, Credential, LoginOutcome, SESSION_MESSAGE_TYPE, SessionEvent, SessionMessage,
    SignupResult, SignupTracker, is_trusted_origin,
};
use waba_graph::{ObjectId, Secret};
use wasm_bindgen::prelude::*;

/// Milliseconds to wait for the session message after the login callback, by default.
pub const DEFAULT_GRACE_MS: i32 = 1500;
/// Largest session message accepted, in characters.
pub const MAX_MESSAGE_LEN: usize = 8 * 1024;

fn invalid(message: impl Into<String>) -> WabaError {
    WabaError::new(code::INVALID_SIGNUP_RESULT, message)
}

/// A session message as the page received it: typed, and the object itself (after
/// `JSON.parse` when Meta sent text), which is what the proxy gets.
#[derive(Debug, Clone)]
pub struct Received {
    /// The typed message.
    pub message: SessionMessage,
    /// The message object exactly as received.
    pub raw: JsValue,
}

/// Types a message object: `Ok(None)` when it is not a `WA_EMBEDDED_SIGNUP` message.
fn typed_message(o: &Obj) -> Result<Option<SessionMessage>, WabaError> {
    if o.str("type").as_deref() != Some(SESSION_MESSAGE_TYPE) {
        return Ok(None);
    }
    SessionMessage::from_raw(read::session_message(o)?).map_err(|e| invalid(e.message()))
}

/// Writes what a session message says: `event`, the ids a finish reports, the step or the
/// reported error of an early exit, and `sessionMessage`, the message as received.
pub(crate) fn session_fields(out: Out, message: &SessionMessage, raw: &JsValue) -> Out {
    let event = &message.event;
    let mut out = out
        .set("event", event.name())
        .set("sessionMessage", raw.clone());
    if let Some(f) = event.finished() {
        let ids: Vec<String> = f.waba_ids.iter().map(|id| id.as_str().to_owned()).collect();
        out = out
            .set("wabaId", f.waba_id.as_str())
            .set("wabaIds", string_array(&ids))
            .opt(
                "phoneNumberId",
                f.phone_number_id.as_ref().map(ObjectId::as_str),
            )
            .opt("businessId", f.business_id.as_ref().map(ObjectId::as_str));
    }
    match event.abandoned() {
        Some(Abandoned::AtStep { current_step }) => out.set("currentStep", current_step.as_str()),
        Some(Abandoned::Reported {
            error_message,
            error_code,
            session_id,
        }) => out
            .opt("errorMessage", error_message.as_deref())
            .opt("errorCode", error_code.as_deref())
            .opt("sessionId", session_id.as_deref()),
        _ => out,
    }
}

/// The `SignupResult` JS object of a signup; `raw` is the session message as received.
pub fn signup_js(r: &SignupResult, raw: Option<&JsValue>) -> JsValue {
    let (credential, login_status) = match &r.login {
        LoginOutcome::Token { access_token, .. } => {
            (Some(credential_js("token", access_token)), None)
        }
        LoginOutcome::Code { code } => (Some(credential_js("code", code)), None),
        LoginOutcome::Cancelled { status } => (None, status.as_deref()),
    };
    let outcome = if r.abandoned().is_some() {
        "abandoned"
    } else if credential.is_some() {
        "finished"
    } else {
        "cancelled"
    };
    let mut out = Out::new()
        .set("outcome", outcome)
        .opt("credential", credential)
        .opt("loginStatus", login_status);
    if let (Some(message), Some(raw)) = (&r.session, raw) {
        out = session_fields(out, message, raw);
    }
    out.set("unknownEvents", string_array(&r.unknown_events))
        .done()
}

fn credential_js(kind: &str, value: &Secret) -> JsValue {
    Out::new()
        .set("kind", kind)
        .set("value", value.expose())
        .done()
}

/// A `SignupResult` object as `onboard` and `showSignup` read it: the login's credential, the
/// outcome, and the typed session message read from `sessionMessage`.
#[derive(Debug, Clone)]
pub struct SignupInput {
    /// `finished`, `abandoned` or `cancelled`.
    pub outcome: String,
    /// The credential, when the login connected.
    pub credential: Option<Credential>,
    /// The session message, when one arrived.
    pub session: Option<Received>,
    /// The page Meta's full-page dialog returned to with the code (`redirectUri`).
    pub redirect_uri: Option<String>,
}

impl SignupInput {
    /// Reads a `SignupResult` object.
    pub fn from_js(v: JsValue) -> Result<Self, WabaError> {
        let o = Obj::new(v).ok_or_else(|| invalid("not a SignupResult"))?;
        let credential = match o.obj("credential") {
            Some(c) => match (c.str("kind").as_deref(), c.str("value")) {
                (Some("token"), Some(v)) if !v.is_empty() => {
                    Some(Credential::Token(Secret::new(v)))
                }
                (Some("code"), Some(v)) if !v.is_empty() => Some(Credential::Code(Secret::new(v))),
                _ => {
                    return Err(invalid(
                        "credential must be {kind: \"token\" | \"code\", value}",
                    ));
                }
            },
            None => None,
        };
        let outcome = o
            .str("outcome")
            .filter(|s| matches!(s.as_str(), "finished" | "abandoned" | "cancelled"))
            .ok_or_else(|| invalid("outcome must be finished, abandoned or cancelled"))?;
        let session = match o.get("sessionMessage") {
            raw if raw.is_undefined() || raw.is_null() => None,
            raw => {
                let message = Obj::new(raw.clone())
                    .map(|m| typed_message(&m))
                    .transpose()?
                    .flatten()
                    .ok_or_else(|| {
                        invalid("sessionMessage must be Meta's WA_EMBEDDED_SIGNUP message")
                    })?;
                Some(Received { message, raw })
            }
        };
        Ok(SignupInput {
            outcome,
            credential,
            session,
            redirect_uri: o.str("redirectUri"),
        })
    }

    /// The session event, when a session message arrived.
    pub fn event(&self) -> Option<&SessionEvent> {
        self.session.as_ref().map(|s| &s.message.event)
    }
}

/// Reads an `FB.login` callback response. Anything not connected is a cancellation;
/// malformed input is an `invalid_signup_result` error.
pub fn login_outcome(response: JsValue) -> Result<LoginOutcome, WabaError> {
    LoginOutcome::from_raw(read::login_response(response)?).map_err(|e| invalid(e.message()))
}

/// Reads a `message` event's `origin` and `data`: `Ok(None)` when it is not an Embedded
/// Signup message from a trusted origin.
pub fn session_message(
    origin: &str,
    data: JsValue,
    extra_origins: &[String],
) -> Result<Option<Received>, WabaError> {
    let extra: Vec<&str> = extra_origins.iter().map(String::as_str).collect();
    if !is_trusted_origin(origin, &extra) {
        return Ok(None);
    }
    let raw = match data.as_string() {
        // Meta's popup sends JSON text; some SDK versions send the object.
        Some(text) if text.len() > MAX_MESSAGE_LEN => {
            return Err(invalid("session message too large"));
        }
        Some(text) => match js_sys::JSON::parse(&text) {
            Ok(v) => v,
            Err(_) => return Ok(None),
        },
        None => data,
    };
    let Some(o) = Obj::new(raw.clone()) else {
        return Ok(None);
    };
    Ok(typed_message(&o)?.map(|message| Received { message, raw }))
}

/// What a `SignupListener` knows: the tracker of the model, the session message it took as
/// received, and the origins trusted besides Meta's. Its methods are what `js/browser.js`'s
/// listener calls; not part of the package's API.
#[wasm_bindgen(skip_typescript)]
pub struct Tracker {
    tracker: SignupTracker,
    /// The session message the tracker took, as received.
    raw_session: Option<JsValue>,
    extra_origins: Vec<String>,
}

impl Tracker {
    fn result(&self, result: Option<SignupResult>) -> JsValue {
        match result {
            Some(r) => signup_js(&r, self.raw_session.as_ref()),
            None => JsValue::UNDEFINED,
        }
    }
}

#[wasm_bindgen]
impl Tracker {
    /// A `message` event's `origin` and `data`: the `SignupResult` when it completes the
    /// signup, else `undefined`. Untrusted or unrelated messages are ignored; malformed Meta
    /// messages too, as the login response still decides the outcome.
    pub fn message(&mut self, origin: &str, data: JsValue) -> JsValue {
        let Ok(Some(received)) = session_message(origin, data, &self.extra_origins) else {
            return JsValue::UNDEFINED;
        };
        let result = self.tracker.on_session(received.message);
        if self.raw_session.is_none() && self.tracker.session().is_some() {
            self.raw_session = Some(received.raw);
        }
        self.result(result)
    }

    /// The `FB.login` callback's response: the `SignupResult` when it completes the signup,
    /// else `undefined`.
    pub fn login(&mut self, response: JsValue) -> Result<JsValue, JsValue> {
        let outcome = login_outcome(response)?;
        let result = self.tracker.on_login(outcome);
        Ok(self.result(result))
    }

    /// Whether only the session message is missing (wait a little, then `stopWaiting`).
    pub fn waiting(&self) -> bool {
        self.tracker.waiting_for_session()
    }

    /// Gives up on the session message: the `SignupResult` with what arrived, or `undefined`.
    #[wasm_bindgen(js_name = stopWaiting)]
    pub fn stop_waiting(&mut self) -> JsValue {
        let result = self.tracker.stop_waiting();
        self.result(result)
    }
}

/// Listens for the signup's session messages on `window` and takes the `FB.login` response;
/// `result()` resolves once both are in (in either order), or after a short grace period
/// when the login came without a session message.
#[wasm_bindgen]
pub struct SignupListener {
    listener: Listener,
}

#[wasm_bindgen]
impl SignupListener {
    /// Starts listening. `options`: `{extraOrigins?: string[], graceMs?: number}`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        options: Option<crate::typescript::ListenerOptionsArg>,
    ) -> Result<SignupListener, JsValue> {
        let o = options.and_then(|o| Obj::new(o.into()));
        let extra_origins = o
            .as_ref()
            .map(|o| o.strings("extraOrigins"))
            .unwrap_or_default();
        let grace_ms = o
            .as_ref()
            .and_then(|o| o.int("graceMs"))
            .map(|g| g.clamp(0, 60_000) as i32)
            .unwrap_or(DEFAULT_GRACE_MS);
        let tracker = Tracker {
            tracker: SignupTracker::new(),
            raw_session: None,
            extra_origins,
        };
        Ok(SignupListener {
            listener: Listener::new(tracker, grace_ms),
        })
    }

    /// Feeds the `FB.login` callback's response.
    pub fn login(&self, response: JsValue) -> Result<(), JsValue> {
        self.listener.login(&response)
    }

    /// Resolves with the `SignupResult` once the signup is over.
    #[wasm_bindgen(unchecked_return_type = "Promise<SignupResult>")]
    pub fn result(&self) -> Promise {
        self.listener.wait()
    }

    /// Stops listening for messages.
    pub fn dispose(&self) -> Result<(), JsValue> {
        self.listener.dispose();
        Ok(())
    }
}
