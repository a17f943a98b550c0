//! The `waba-graph` types read from JS objects (see [`crate::js`] for why not serde).

use crate::error::{WabaError, code};
use crate::js::{Obj, list};
use waba_graph::signup::{RawAuthResponse, RawLoginResponse, RawSessionData, RawSessionMessage};
use waba_graph::status::{AccountStatus, Actor, Alert, Incomplete, PhoneStatus, Progress};
#[cfg(feature = "console")]
use waba_graph::token::{GranularScope, TokenError};
use waba_graph::waba::{HealthEntity, HealthError};
#[cfg(feature = "console")]
use waba_graph::{DebugToken, TokenInfo};
use waba_graph::{GraphError, HealthStatus, ObjectId, Page, PhoneNumber, ReviewStatus, Waba};
use wasm_bindgen::JsValue;

fn bad(code: &'static str, what: &str) -> WabaError {
    WabaError::new(code, what)
}

fn object(v: JsValue, c: &'static str, what: &str) -> Result<Obj, WabaError> {
    Obj::new(v).ok_or_else(|| bad(c, what))
}

fn required_id(o: &Obj, key: &str, c: &'static str, what: &str) -> Result<ObjectId, WabaError> {
    o.id(key)
        .map_err(|e| WabaError::new(c, [what, ": ", key, ": ", e.message()].concat()))?
        .ok_or_else(|| WabaError::new(c, [what, ": ", key, " is missing"].concat()))
}

/// An `FB.login` callback response.
pub fn login_response(v: JsValue) -> Result<RawLoginResponse, WabaError> {
    let o = object(
        v,
        code::INVALID_SIGNUP_RESULT,
        "the login response is not an object",
    )?;
    let auth = match o.get("authResponse") {
        a if a.is_null() || a.is_undefined() => None,
        a => {
            let a = object(
                a,
                code::INVALID_SIGNUP_RESULT,
                "authResponse is not an object",
            )?;
            Some(RawAuthResponse {
                access_token: a.str("accessToken"),
                code: a.str("code"),
                user_id: a.raw_id("userID").ok().flatten(),
                expires_in: a.int("expiresIn"),
            })
        }
    };
    Ok(RawLoginResponse {
        status: o.str("status"),
        auth_response: auth,
    })
}

/// A session message's decoded `data` object.
pub fn session_message(o: &Obj) -> Result<RawSessionMessage, WabaError> {
    let id = |d: &Obj, k: &str| {
        d.raw_id(k).map_err(|e| {
            WabaError::new(code::INVALID_SIGNUP_RESULT, [k, ": ", e.message()].concat())
        })
    };
    let data = match o.obj("data") {
        Some(d) => Some(RawSessionData {
            phone_number_id: id(&d, "phone_number_id")?,
            waba_id: id(&d, "waba_id")?,
            waba_ids: d.raw_ids("waba_ids").map_err(|e| {
                WabaError::new(
                    code::INVALID_SIGNUP_RESULT,
                    ["waba_ids: ", e.message()].concat(),
                )
            })?,
            business_id: id(&d, "business_id")?,
            current_step: d.str("current_step"),
            error_message: d.str("error_message"),
            error_code: id(&d, "error_code")?,
            error_id: id(&d, "error_id")?,
            session_id: id(&d, "session_id")?,
        }),
        None => None,
    };
    Ok(RawSessionMessage {
        message_type: o.str("type"),
        event: o.str("event"),
        data,
        version: o.raw_id("version").ok().flatten(),
    })
}

/// Graph's error envelope, when `v` is one.
pub fn error_envelope(v: JsValue) -> Option<GraphError> {
    let e = Obj::new(v)?.obj("error")?;
    Some(GraphError {
        message: e.str("message").unwrap_or_default(),
        error_type: e.str("type").unwrap_or_default(),
        code: e.int("code").unwrap_or(0),
        error_subcode: e.int("error_subcode"),
        error_user_title: e.str("error_user_title"),
        error_user_msg: e.str("error_user_msg"),
        fbtrace_id: e.str("fbtrace_id"),
        is_transient: e.bool("is_transient"),
    })
}

/// A `debug_token` answer (the console's: the signup page asks the proxy for its grant).
#[cfg(feature = "console")]
pub fn debug_token(v: JsValue) -> Result<DebugToken, WabaError> {
    let c = code::BAD_RESPONSE;
    let d = object(v, c, "debug_token answer is not an object")?
        .obj("data")
        .ok_or_else(|| bad(c, "debug_token answer without data"))?;
    let mut granular = Vec::new();
    for g in d.list("granular_scopes") {
        let g = object(g, c, "granular scope is not an object")?;
        let mut target_ids = Vec::new();
        for t in g.list("target_ids") {
            target_ids.push(
                crate::js::raw_id(&t)
                    .map_err(|e| WabaError::new(c, ["target_ids: ", e.message()].concat()))?
                    .ok_or_else(|| bad(c, "target_ids holds null"))?,
            );
        }
        granular.push(GranularScope {
            scope: g.str("scope").unwrap_or_default(),
            target_ids,
        });
    }
    Ok(DebugToken {
        data: TokenInfo {
            is_valid: d.bool("is_valid").unwrap_or(false),
            granular_scopes: granular,
            app_id: d.raw_id("app_id").ok().flatten(),
            application: d.str("application"),
            token_type: d.str("type"),
            expires_at: d.int("expires_at").unwrap_or(0),
            data_access_expires_at: d.int("data_access_expires_at").unwrap_or(0),
            issued_at: d.int("issued_at"),
            scopes: d.strings("scopes"),
            user_id: d.raw_id("user_id").ok().flatten(),
            error: d.obj("error").map(|e| TokenError {
                code: e.int("code").unwrap_or(0),
                message: e.str("message").unwrap_or_default(),
                subcode: e.int("subcode"),
            }),
        },
    })
}

/// A phone number node.
pub fn phone(v: JsValue, c: &'static str) -> Result<PhoneNumber, WabaError> {
    let p = object(v, c, "phone number is not an object")?;
    Ok(PhoneNumber {
        id: required_id(&p, "id", c, "phone number")?,
        display_phone_number: p.str("display_phone_number"),
        verified_name: p.str("verified_name"),
        status: p.str("status"),
        quality_rating: p.str("quality_rating"),
        code_verification_status: p.str("code_verification_status"),
        name_status: p.str("name_status"),
        platform_type: p.str("platform_type"),
    })
}

fn health(h: &Obj) -> HealthStatus {
    let mut entities = Vec::new();
    for e in objects(h, "entities") {
        let mut errors = Vec::new();
        for x in objects(&e, "errors") {
            errors.push(HealthError {
                error_code: x.int("error_code"),
                error_description: x.str("error_description"),
                possible_solution: x.str("possible_solution"),
            });
        }
        entities.push(HealthEntity {
            entity_type: e.str("entity_type"),
            id: e.text("id"),
            can_send_message: e.str("can_send_message"),
            additional_info: e.strings("additional_info"),
            errors,
        });
    }
    HealthStatus {
        can_send_message: h.str("can_send_message"),
        entities,
    }
}

/// A WABA node.
pub fn waba(v: JsValue, c: &'static str) -> Result<Waba, WabaError> {
    let w = object(v, c, "WABA is not an object")?;
    let phone_numbers = match w.obj("phone_numbers") {
        Some(page) => {
            let mut data = Vec::new();
            for p in page.list("data") {
                data.push(phone(p, c)?);
            }
            Some(Page { data, paging: None })
        }
        None => None,
    };
    Ok(Waba {
        id: required_id(&w, "id", c, "WABA")?,
        name: w.str("name"),
        currency: w.str("currency"),
        timezone_id: w.text("timezone_id"),
        message_template_namespace: w.str("message_template_namespace"),
        account_review_status: w
            .str("account_review_status")
            .map(|s| ReviewStatus::parse(&s)),
        business_verification_status: w.str("business_verification_status"),
        ownership_type: crate::CONSOLE.then(|| w.str("ownership_type")).flatten(),
        health_status: w.obj("health_status").map(|h| health(&h)),
        creation_time: crate::CONSOLE.then(|| w.time("creation_time")).flatten(),
        phone_numbers,
    })
}

/// An `AccountStatus` as `onboard` wrote it (or as a caller built it).
pub fn account_status(v: JsValue) -> Result<AccountStatus, WabaError> {
    let c = code::INVALID_ARGUMENT;
    let a = object(v, c, "an account status is not an object")?;
    let waba = waba(a.get("waba"), c)?;
    let review = a.str("review").unwrap_or_else(|| {
        waba.account_review_status
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "UNKNOWN".into())
    });
    let mut phones = Vec::new();
    for p in a.list("phones") {
        let p = object(p, c, "a phone status is not an object")?;
        phones.push(PhoneStatus {
            phone: phone(p.get("phone"), c)?,
            ready: p.bool("ready").unwrap_or(false),
            actor: Actor::parse(&p.str("actor").unwrap_or_default()),
            action: p.str("action").unwrap_or_else(|| "unknown".into()),
            problem: p.str("problem"),
        });
    }
    Ok(AccountStatus {
        review_known: a.bool("reviewKnown").unwrap_or(!matches!(
            ReviewStatus::parse(&review),
            ReviewStatus::Unknown(_)
        )),
        review,
        newest: a.bool("newest").unwrap_or(false),
        phones,
        incomplete: a.obj("incomplete").map(|i| Incomplete {
            reason: i.str("reason").unwrap_or_default(),
            actor: Actor::parse(&i.str("actor").unwrap_or_default()),
            step: i.str("step"),
            message: i.str("message").unwrap_or_default(),
        }),
        health_problems: a.strings("healthProblems"),
        alerts: objects(&a, "alerts").iter().map(alert).collect(),
        verification: a.obj("verification").map(|x| alert(&x)),
        progress: objects(&a, "progress").iter().map(progress).collect(),
        waba,
    })
}

/// The objects of an array field (other items skipped).
fn objects(o: &Obj, key: &str) -> Vec<Obj> {
    let mut out = Vec::new();
    for item in o.list(key) {
        out.extend(Obj::new(item));
    }
    out
}

/// A step's progress, from an account's `progress` or a `pipeline_step` change's `step`
/// (where the step is named `kind`).
pub fn progress(x: &Obj) -> Progress {
    Progress {
        step: x.str("step").or_else(|| x.str("kind")).unwrap_or_default(),
        phone_id: x.str("phoneId").or_else(|| x.str("phone_id")),
        state: x.str("state").unwrap_or_default(),
        actor: Actor::parse(&x.str("actor").unwrap_or_default()),
        text: x.str("text").unwrap_or_default(),
        message: x.str("message"),
    }
}

fn alert(x: &Obj) -> Alert {
    Alert {
        kind: x.str("kind").unwrap_or_default(),
        actor: Actor::parse(&x.str("actor").unwrap_or_default()),
        message: x.str("message").unwrap_or_default(),
    }
}

/// A list of values, or an `invalid_argument` error.
pub fn array(v: JsValue, what: &str) -> Result<Vec<JsValue>, WabaError> {
    if js_sys::Array::is_array(&v) {
        Ok(list(&v))
    } else {
        Err(WabaError::new(
            code::INVALID_ARGUMENT,
            [what, " must be an array"].concat(),
        ))
    }
}
