//! The signup result on the page: the `FB.login` response, the `WA_EMBEDDED_SIGNUP` session
//! messages (from Meta's origins only), and [`SignupListener`], which waits for both.

use crate::error::{WabaError, code};
use crate::js::{Obj, Out, string_array};
use crate::read;
use js_sys::{Function, Promise};
use std::cell::RefCell;
use std::rc::Rc;
use waba_graph::signup::{
    Abandoned, LoginOutcome, SessionEvent, SessionMessage, SignupResult, SignupTracker,
    is_trusted_origin,
};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// Milliseconds to wait for the session message after the login callback, by default.
pub const DEFAULT_GRACE_MS: i32 = 1500;
/// Largest session message accepted, in characters.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

/// The signup result as JS sees it (`SignupResult` in TypeScript).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsSignupResult {
    /// `finished`, `abandoned` or `cancelled`.
    pub outcome: String,
    /// `(kind, value)`: `token` or `code`, when the login connected.
    pub credential: Option<(String, String)>,
    /// The session event (`FINISH`, `FINISH_ONLY_WABA`, `CANCEL`, ...).
    pub event: Option<String>,
    /// The session message's WABA.
    pub waba_id: Option<String>,
    /// The session message's phone number.
    pub phone_number_id: Option<String>,
    /// The session message's business.
    pub business_id: Option<String>,
    /// The step the business left at.
    pub current_step: Option<String>,
    /// The error the business reported.
    pub error_message: Option<String>,
    /// Meta's id of that error.
    pub error_id: Option<String>,
    /// Meta's id of the signup session.
    pub session_id: Option<String>,
    /// The login status when the login did not connect.
    pub login_status: Option<String>,
    /// Session events this version does not know.
    pub unknown_events: Vec<String>,
}

impl From<&SignupResult> for JsSignupResult {
    fn from(r: &SignupResult) -> Self {
        let mut out = JsSignupResult {
            unknown_events: r.unknown_events.clone(),
            ..Default::default()
        };
        match &r.login {
            LoginOutcome::Token { access_token, .. } => {
                out.credential = Some(("token".into(), access_token.expose().to_owned()))
            }
            LoginOutcome::Code { code } => {
                out.credential = Some(("code".into(), code.expose().to_owned()))
            }
            LoginOutcome::Cancelled { status } => out.login_status = status.clone(),
        }
        if let Some(session) = &r.session {
            out.event = Some(event_name(&session.event).to_owned());
        }
        if let Some(f) = r.finished() {
            out.waba_id = Some(f.waba_id.to_string());
            out.phone_number_id = f.phone_number_id.as_ref().map(ToString::to_string);
            out.business_id = f.business_id.as_ref().map(ToString::to_string);
        }
        match r.abandoned() {
            Some(Abandoned::AtStep { current_step }) => {
                out.current_step = Some(current_step.clone())
            }
            Some(Abandoned::Reported {
                error_message,
                error_id,
                session_id,
            }) => {
                out.error_message = error_message.clone();
                out.error_id = error_id.clone();
                out.session_id = session_id.clone();
            }
            _ => {}
        }
        out.outcome = if r.abandoned().is_some() {
            "abandoned"
        } else if out.credential.is_some() {
            "finished"
        } else {
            "cancelled"
        }
        .into();
        out
    }
}

impl JsSignupResult {
    /// Why the business left early, rebuilt from the fields.
    pub fn abandoned(&self) -> Option<Abandoned> {
        if !matches!(self.event.as_deref(), Some("CANCEL" | "ERROR")) {
            return None;
        }
        if self.error_message.is_some() || self.error_id.is_some() {
            return Some(Abandoned::Reported {
                error_message: self.error_message.clone(),
                error_id: self.error_id.clone(),
                session_id: self.session_id.clone(),
            });
        }
        Some(match &self.current_step {
            Some(step) => Abandoned::AtStep {
                current_step: step.clone(),
            },
            None => Abandoned::Unspecified,
        })
    }

    /// The plain JS object.
    pub fn to_js(&self) -> JsValue {
        let credential = self.credential.as_ref().map(|(kind, value)| {
            Out::new()
                .set("kind", kind.as_str())
                .set("value", value.as_str())
                .done()
        });
        Out::new()
            .set("outcome", self.outcome.as_str())
            .opt("credential", credential)
            .opt("event", self.event.as_deref())
            .opt("wabaId", self.waba_id.as_deref())
            .opt("phoneNumberId", self.phone_number_id.as_deref())
            .opt("businessId", self.business_id.as_deref())
            .opt("currentStep", self.current_step.as_deref())
            .opt("errorMessage", self.error_message.as_deref())
            .opt("errorId", self.error_id.as_deref())
            .opt("sessionId", self.session_id.as_deref())
            .opt("loginStatus", self.login_status.as_deref())
            .set("unknownEvents", string_array(&self.unknown_events))
            .done()
    }

    /// Reads a `SignupResult` object.
    pub fn from_js(v: JsValue) -> Result<Self, WabaError> {
        let o = Obj::new(v)
            .ok_or_else(|| WabaError::new(code::INVALID_SIGNUP_RESULT, "not a SignupResult"))?;
        let credential = match o.obj("credential") {
            Some(c) => match (c.str("kind"), c.str("value")) {
                (Some(k), Some(v)) if (k == "token" || k == "code") && !v.is_empty() => {
                    Some((k, v))
                }
                _ => {
                    return Err(WabaError::new(
                        code::INVALID_SIGNUP_RESULT,
                        "credential must be {kind: \"token\" | \"code\", value}",
                    ));
                }
            },
            None => None,
        };
        let outcome = o
            .str("outcome")
            .filter(|s| matches!(s.as_str(), "finished" | "abandoned" | "cancelled"))
            .ok_or_else(|| {
                WabaError::new(
                    code::INVALID_SIGNUP_RESULT,
                    "outcome must be finished, abandoned or cancelled",
                )
            })?;
        Ok(JsSignupResult {
            outcome,
            credential,
            event: o.str("event"),
            waba_id: o.str("wabaId"),
            phone_number_id: o.str("phoneNumberId"),
            business_id: o.str("businessId"),
            current_step: o.str("currentStep"),
            error_message: o.str("errorMessage"),
            error_id: o.str("errorId"),
            session_id: o.str("sessionId"),
            login_status: o.str("loginStatus"),
            unknown_events: o.strings("unknownEvents"),
        })
    }
}

fn event_name(e: &SessionEvent) -> &str {
    match e {
        SessionEvent::Finish(_) => "FINISH",
        SessionEvent::FinishOnlyWaba(_) => "FINISH_ONLY_WABA",
        SessionEvent::FinishWhatsAppBusinessApp(_) => "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING",
        SessionEvent::Cancel(_) => "CANCEL",
        SessionEvent::Error(_) => "ERROR",
        SessionEvent::Unknown { event } => event,
    }
}

/// Reads an `FB.login` callback response. Anything not connected is a cancellation;
/// malformed input is an `invalid_signup_result` error.
pub fn login_outcome(response: JsValue) -> Result<LoginOutcome, WabaError> {
    LoginOutcome::from_raw(read::login_response(response)?)
        .map_err(|e| WabaError::new(code::INVALID_SIGNUP_RESULT, e.to_string()))
}

/// Reads a `message` event's `origin` and `data`: `Ok(None)` when it is not an Embedded
/// Signup message from a trusted origin.
pub fn session_message(
    origin: &str,
    data: JsValue,
    extra_origins: &[String],
) -> Result<Option<SessionMessage>, WabaError> {
    let extra: Vec<&str> = extra_origins.iter().map(String::as_str).collect();
    if !is_trusted_origin(origin, &extra) {
        return Ok(None);
    }
    let data = match data.as_string() {
        // Meta's popup sends JSON text; some SDK versions send the object.
        Some(text) if text.len() > MAX_MESSAGE_LEN => {
            return Err(WabaError::new(
                code::INVALID_SIGNUP_RESULT,
                "session message too large",
            ));
        }
        Some(text) => match js_sys::JSON::parse(&text) {
            Ok(v) => v,
            Err(_) => return Ok(None),
        },
        None => data,
    };
    let Some(o) = Obj::new(data) else {
        return Ok(None);
    };
    if o.str("type").as_deref() != Some(waba_graph::signup::SESSION_MESSAGE_TYPE) {
        return Ok(None);
    }
    SessionMessage::from_raw(read::session_message(&o)?)
        .map_err(|e| WabaError::new(code::INVALID_SIGNUP_RESULT, e.to_string()))
}

/// `parseLoginResponse(response)`: the `FB.login` response as a `SignupResult` without a
/// session event.
#[wasm_bindgen(js_name = parseLoginResponse, unchecked_return_type = "LoginResult")]
pub fn parse_login_response(response: JsValue) -> Result<JsValue, JsValue> {
    let result = SignupResult {
        login: login_outcome(response)?,
        session: None,
        unknown_events: Vec::new(),
    };
    Ok(JsSignupResult::from(&result).to_js())
}

/// `parseSessionMessage(origin, data, extraOrigins?)`: the Embedded Signup event in a
/// `message` event, or `null` when it is not one from a trusted origin.
#[wasm_bindgen(js_name = parseSessionMessage, unchecked_return_type = "SessionEvent | null")]
pub fn parse_session_message(
    origin: &str,
    data: JsValue,
    extra_origins: Option<Vec<String>>,
) -> Result<JsValue, JsValue> {
    let Some(message) = session_message(origin, data, &extra_origins.unwrap_or_default())? else {
        return Ok(JsValue::NULL);
    };
    let details = JsSignupResult::from(&SignupResult {
        login: LoginOutcome::Cancelled { status: None },
        session: Some(message.clone()),
        unknown_events: Vec::new(),
    });
    let out = details.to_js();
    let _ =
        js_sys::Reflect::delete_property(out.unchecked_ref::<js_sys::Object>(), &"outcome".into());
    let _ = js_sys::Reflect::set(&out, &"event".into(), &event_name(&message.event).into());
    if let Some(v) = &message.version {
        let _ = js_sys::Reflect::set(&out, &"version".into(), &v.as_str().into());
    }
    Ok(out)
}

struct ListenerState {
    tracker: SignupTracker,
    extra_origins: Vec<String>,
    grace_ms: i32,
    result: Option<JsValue>,
    resolve: Option<Function>,
    timer: Option<Closure<dyn FnMut()>>,
}

impl ListenerState {
    fn deliver(&mut self, result: SignupResult) {
        let value = JsSignupResult::from(&result).to_js();
        if let Some(resolve) = self.resolve.take() {
            let _ = resolve.call1(&JsValue::NULL, &value);
        }
        self.result = Some(value);
    }
}

/// Listens for the signup's session messages on `window` and takes the `FB.login` response;
/// `result()` resolves once both are in (in either order), or after a short grace period
/// when the login came without a session message.
#[wasm_bindgen]
pub struct SignupListener {
    state: Rc<RefCell<ListenerState>>,
    on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
}

#[wasm_bindgen]
impl SignupListener {
    /// Starts listening. `options`: `{extraOrigins?: string[], graceMs?: number}`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "SignupListenerOptions | undefined")]
        options: JsValue,
    ) -> Result<SignupListener, JsValue> {
        let o = Obj::new(options);
        let extra_origins = o
            .as_ref()
            .map(|o| o.strings("extraOrigins"))
            .unwrap_or_default();
        let grace_ms = o
            .as_ref()
            .and_then(|o| o.int("graceMs"))
            .map(|g| g.clamp(0, 60_000) as i32)
            .unwrap_or(DEFAULT_GRACE_MS);
        let state = Rc::new(RefCell::new(ListenerState {
            tracker: SignupTracker::new(),
            extra_origins,
            grace_ms,
            result: None,
            resolve: None,
            timer: None,
        }));
        let weak = Rc::downgrade(&state);
        let on_message =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                let Some(state) = weak.upgrade() else { return };
                let mut st = state.borrow_mut();
                // Untrusted or unrelated messages are ignored; malformed Meta messages too, as
                // the login response still decides the outcome.
                if let Ok(Some(message)) =
                    session_message(&ev.origin(), ev.data(), &st.extra_origins)
                    && let Some(result) = st.tracker.on_session(message)
                {
                    st.deliver(result);
                }
            });
        window()?
            .add_event_listener_with_callback("message", on_message.as_ref().unchecked_ref())?;
        Ok(SignupListener { state, on_message })
    }

    /// Feeds the `FB.login` callback's response.
    pub fn login(&self, response: JsValue) -> Result<(), JsValue> {
        let outcome = login_outcome(response)?;
        let mut st = self.state.borrow_mut();
        if let Some(result) = st.tracker.on_login(outcome) {
            st.deliver(result);
            return Ok(());
        }
        if st.tracker.waiting_for_session() {
            let weak = Rc::downgrade(&self.state);
            let timer = Closure::<dyn FnMut()>::new(move || {
                let Some(state) = weak.upgrade() else { return };
                let mut st = state.borrow_mut();
                if let Some(result) = st.tracker.stop_waiting() {
                    st.deliver(result);
                }
            });
            window()?.set_timeout_with_callback_and_timeout_and_arguments_0(
                timer.as_ref().unchecked_ref(),
                st.grace_ms,
            )?;
            st.timer = Some(timer);
        }
        Ok(())
    }

    /// Resolves with the `SignupResult` once the signup is over.
    #[wasm_bindgen(unchecked_return_type = "Promise<SignupResult>")]
    pub fn result(&self) -> Promise {
        let state = self.state.clone();
        Promise::new(&mut |resolve, _reject| {
            let mut st = state.borrow_mut();
            match &st.result {
                Some(value) => {
                    let _ = resolve.call1(&JsValue::NULL, value);
                }
                None => st.resolve = Some(resolve),
            }
        })
    }

    /// Stops listening for messages.
    pub fn dispose(&self) -> Result<(), JsValue> {
        window()?.remove_event_listener_with_callback(
            "message",
            self.on_message.as_ref().unchecked_ref(),
        )
    }
}

fn window() -> Result<web_sys::Window, JsValue> {
    web_sys::window().ok_or_else(|| WabaError::new(code::INVALID_ARGUMENT, "no window").into())
}
