//! `onboard(client, result)`: from a signup result to the status of every granted account in
//! one proxy call (the code exchange, or `GET /signup/accounts` with a business token), which
//! names the granted WABAs and reads them (phones by field expansion); a WABA that call could
//! not read is read on its own, a few in parallel, so its own error shows.

use crate::browser::run_onboard;
use crate::client::{ProxyConn, STATUS_FIELDS, WabaClient};
use crate::error::{WabaError, code};
use crate::js::{Obj, Out, string_array};
use crate::read;
use crate::signup::SignupInput;
use js_sys::{Array, Promise};
use waba_graph::messages::text;
use waba_graph::signup::{Credential, SessionEvent};
use waba_graph::status::{AccountStatus, Alert, PhoneStatus, Progress};
use wasm_bindgen::prelude::*;

/// WABAs fetched at once.
pub const PARALLEL_FETCHES: usize = 4;

/// An `AccountStatus` for JS: the WABA and phone objects exactly as the proxy sent them, and
/// what was computed from them.
pub(crate) fn account_js(raw: JsValue, status: AccountStatus) -> JsValue {
    let get = |v: &JsValue, k: &str| {
        js_sys::Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
    };
    let raw_phones = Array::from(&get(&get(&raw, "phone_numbers"), "data"));
    let phones: Array = status
        .phones
        .iter()
        .enumerate()
        .map(|(i, p)| phone_js(raw_phones.get(i as u32), p))
        .collect();
    let incomplete = status.incomplete.map(|i| {
        Out::new()
            .set("reason", i.reason.as_str())
            .set("actor", i.actor.as_str())
            .opt("step", i.step.as_deref())
            .set("message", i.message.as_str())
            .done()
    });
    Out::new()
        .set("waba", raw)
        .set("review", status.review.as_str())
        .set("reviewKnown", status.review_known)
        .set("newest", status.newest)
        .set("phones", phones)
        .opt("incomplete", incomplete)
        .set("healthProblems", string_array(&status.health_problems))
        .set("alerts", alerts_js(&status.alerts))
        .opt("verification", status.verification.as_ref().map(alert_js))
        .set("progress", progress_js(&status.progress))
        .done()
}

fn phone_js(raw: JsValue, p: &PhoneStatus) -> JsValue {
    Out::new()
        .set("phone", raw)
        .set("ready", p.ready)
        .set("actor", p.actor.as_str())
        .set("action", p.action.as_str())
        .opt("problem", p.problem.as_deref())
        .done()
}

fn progress_js(lines: &[Progress]) -> Array {
    lines
        .iter()
        .map(|p| {
            Out::new()
                .set("step", p.step.as_str())
                .opt("phoneId", p.phone_id.as_deref())
                .set("state", p.state.as_str())
                .set("actor", p.actor.as_str())
                .set("text", p.text.as_str())
                .opt("message", p.message.as_deref())
                .done()
        })
        .collect()
}

fn alert_js(a: &Alert) -> JsValue {
    Out::new()
        .set("kind", a.kind.as_str())
        .set("actor", a.actor.as_str())
        .set("message", a.message.as_str())
        .done()
}

fn alerts_js(alerts: &[Alert]) -> Array {
    alerts.iter().map(alert_js).collect()
}

/// `applyChange(accounts, change)`: applies a change of the live status stream
/// (`followStatus`'s `onChange`) to the accounts it is about, in place: a review decision
/// updates the review, bans, restrictions, violations, deletion, offboarding and removal
/// add an alert (a reinstatement or reconnection clears it), a `pipeline_step` updates the
/// partner's progress (a registered number becomes ready). `true` when an account changed,
/// so the panel should render again.
#[wasm_bindgen(js_name = applyChange)]
pub fn apply_change(
    #[wasm_bindgen(unchecked_param_type = "AccountStatus[]")] accounts: JsValue,
    #[wasm_bindgen(
        unchecked_param_type = "{ kind: string; waba_id?: string; value?: string; step?: PipelineStep }"
    )]
    change: JsValue,
) -> Result<bool, JsValue> {
    crate::i18n::install();
    let change = Obj::new(change).ok_or_else(|| {
        JsValue::from(WabaError::new(
            code::INVALID_ARGUMENT,
            "a status change is not an object",
        ))
    })?;
    let (Some(kind), Some(waba_id)) = (change.str("kind"), change.str("waba_id")) else {
        return Ok(false);
    };
    let value = change.str("value");
    let step = change.obj("step").map(|s| read::progress(&s));
    let mut changed = false;
    for account in read::array(accounts, "accounts")? {
        let Some(target) = Obj::new(account.clone()) else {
            continue;
        };
        let about = target.obj("waba").and_then(|w| w.text("id"));
        if about.as_deref() != Some(waba_id.as_str()) {
            continue;
        }
        let mut status = read::account_status(account)?;
        let set = |k: &str, v: JsValue| {
            let _ = js_sys::Reflect::set(target.value(), &JsValue::from_str(k), &v);
        };
        if let (Some(p), "pipeline_step") = (&step, kind.as_str()) {
            if !status.apply_progress(p.clone()) {
                continue;
            }
            changed = true;
            set("progress", progress_js(&status.progress).into());
            // The number objects stay Meta's, with the status a registration gave them.
            let phones: Array = status
                .phones
                .iter()
                .zip(target.list("phones"))
                .map(|(p, old)| {
                    let raw = Obj::new(old).map_or(JsValue::UNDEFINED, |o| o.get("phone"));
                    if let Some(s) = &p.phone.status {
                        let _ = js_sys::Reflect::set(&raw, &"status".into(), &s.into());
                    }
                    phone_js(raw, p)
                })
                .collect();
            set("phones", phones.into());
            continue;
        }
        if !status.apply_change(&kind, value.as_deref()) {
            continue;
        }
        changed = true;
        set("review", status.review.as_str().into());
        set("reviewKnown", status.review_known.into());
        set("alerts", alerts_js(&status.alerts).into());
        if let Some(waba) = target.obj("waba") {
            let _ = js_sys::Reflect::set(
                waba.value(),
                &JsValue::from_str("account_review_status"),
                &status.review.as_str().into(),
            );
        }
    }
    Ok(changed)
}

fn warning(code: &str, message: &str) -> JsValue {
    Out::new().set("code", code).set("message", message).done()
}

/// `onboard(client, signupResult)`: resolves with `{accounts, warnings}`.
#[wasm_bindgen(unchecked_return_type = "Promise<OnboardResult>")]
pub fn onboard(
    client: &WabaClient,
    #[wasm_bindgen(unchecked_param_type = "SignupResult")] result: JsValue,
) -> Promise {
    crate::i18n::install();
    let result = match SignupInput::from_js(result) {
        Ok(r) => r,
        Err(e) => return Promise::reject(&e.into()),
    };
    let Some(credential) = &result.credential else {
        return Promise::reject(
            &WabaError::new(
                code::SIGNUP_CANCELLED,
                "the business did not log in, so nothing was shared",
            )
            .into(),
        );
    };
    let (Credential::Token(s) | Credential::Code(s)) = credential;
    let conn = client.with_credential(s.expose().to_owned());
    run_onboard(
        Onboarding {
            conn,
            result,
            granted: Vec::new(),
            read: Vec::new(),
            session: None,
            warnings: Array::new(),
            accounts: Array::new(),
        },
        PARALLEL_FETCHES,
    )
}

/// One `onboard` call's state. `js/browser.js` drives it (the requests and their order); the
/// steps that read answers and decide are here. Not part of the package's API.
#[wasm_bindgen(skip_typescript)]
pub struct Onboarding {
    conn: ProxyConn,
    result: SignupInput,
    granted: Vec<String>,
    /// The first call's own reads of the granted WABAs (by id): no second round trip.
    read: Vec<JsValue>,
    session: Option<String>,
    warnings: Array,
    accounts: Array,
}

#[wasm_bindgen]
impl Onboarding {
    /// Starts the first request: the code exchange (code flow) or `GET /signup/accounts`
    /// (token flow); either answers the granted WABAs and reads them.
    pub fn begin(&self) -> Promise {
        match &self.result.credential {
            Some(Credential::Code(code)) => {
                // The proxy exchanges the code and keeps the business token; the page gets a
                // session credential for exactly the granted WABAs. It records the signup
                // from Meta's session message, sent as it came.
                let body = Out::new()
                    .set("code", code.expose())
                    .opt("event", self.result.session.as_ref().map(|s| s.raw.clone()))
                    .opt("redirect_uri", self.result.redirect_uri.as_deref())
                    .done();
                let url = [self.conn.base.as_str(), "/signup/exchange"].concat();
                self.conn.start(&url, Some(body))
            }
            // The proxy asks `debug_token` what the business token grants and reads those
            // WABAs; an invalid or expired token is refused (401).
            Some(Credential::Token(_)) => {
                let url = [self.conn.base.as_str(), "/signup/accounts"].concat();
                self.conn.start(&url, None)
            }
            None => Promise::resolve(&JsValue::UNDEFINED),
        }
    }

    /// Reads the first answer: the granted WABAs, the proxy's reads of them (and, in the code
    /// flow, the session credential the next reads use), with a warning for each WABA the
    /// session message names that is not granted. Returns how many WABAs to read.
    pub fn granted(&mut self, answer: JsValue) -> Result<usize, JsValue> {
        let answer = Obj::new(self.conn.answer(answer)?);
        if let Some(Credential::Code(_)) = &self.result.credential {
            let session = answer
                .as_ref()
                .and_then(|a| a.str("session"))
                .ok_or_else(|| {
                    WabaError::new(code::BAD_RESPONSE, "the exchange gave no session")
                })?;
            self.conn = self.conn.with(session.clone());
            self.session = Some(session);
        }
        self.read = answer
            .as_ref()
            .map(|a| a.list("accounts"))
            .unwrap_or_default();
        self.granted = answer.map(|a| a.strings("wabas")).unwrap_or_default();
        if self.granted.is_empty() {
            self.warnings
                .push(&warning("no_wabas", &text("warning.no_wabas", &[])));
        }
        let reported = self.result.event().and_then(SessionEvent::finished);
        for id in reported.iter().flat_map(|f| f.waba_ids.iter()) {
            if !self.granted.iter().any(|g| g.as_str() == id.as_str()) {
                self.warnings.push(&warning(
                    "waba_mismatch",
                    &text("warning.waba_mismatch", &[("waba", id.as_str())]),
                ));
            }
        }
        Ok(self.granted.len())
    }

    /// Starts the read of the `i`th granted WABA with its phones (one call each), or answers
    /// it at once when the code exchange already read it.
    pub fn start(&self, i: usize) -> Result<Promise, JsValue> {
        let id = self.granted.get(i).map_or("", String::as_str);
        let known = self
            .read
            .iter()
            .find(|w| Obj::new((*w).clone()).and_then(|o| o.str("id")).as_deref() == Some(id));
        if let Some(waba) = known {
            // Shaped like a request's answer, as `account` reads it.
            let answer = Out::new()
                .set("status", 200)
                .set("body", waba.clone())
                .done();
            return Ok(Promise::resolve(&answer));
        }
        Ok(self.conn.start_waba(id, STATUS_FIELDS)?)
    }

    /// Reads the `i`th WABA's answer into its `AccountStatus` (the first granted is the
    /// newest).
    pub fn account(&mut self, i: usize, answer: JsValue) -> Result<(), JsValue> {
        let raw = self.conn.answer(answer)?;
        let waba = read::waba(raw.clone(), code::BAD_RESPONSE)?;
        let event = self.result.event();
        let status = AccountStatus::new(
            waba,
            i == 0,
            event.and_then(SessionEvent::abandoned),
            event.is_none_or(SessionEvent::expects_phone),
        );
        self.accounts.push(&account_js(raw, status));
        Ok(())
    }

    /// `{accounts, warnings, session?}`.
    pub fn done(&self) -> JsValue {
        Out::new()
            .set("accounts", self.accounts.clone())
            .set("warnings", self.warnings.clone())
            .opt("session", self.session.as_deref())
            .done()
    }
}
