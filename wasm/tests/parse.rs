//! In headless Chromium: the signup parsers and the listener that waits for both halves.
// clippy does not see `#[wasm_bindgen_test]` functions as tests; unwrapping is how they fail.
#![allow(clippy::unwrap_used)]
// Browser-only: natively the file compiles to an empty test crate.
#![cfg(target_arch = "wasm32")]

use js_sys::Reflect;
use waba_onboard::console::{parse_login_response, parse_session_message};
use waba_onboard::signup::SignupListener;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const META: &str = "https://www.facebook.com";

fn js(json: &str) -> JsValue {
    js_sys::JSON::parse(json).expect("test JSON")
}

fn field(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &k.into()).unwrap()
}

fn text(v: &JsValue, k: &str) -> Option<String> {
    field(v, k).as_string()
}

fn stringify(v: &JsValue) -> String {
    js_sys::JSON::stringify(v).unwrap().as_string().unwrap()
}

fn code(err: JsValue) -> String {
    text(&err, "code").unwrap_or_default()
}

fn parse(origin: &str, data: JsValue) -> Result<JsValue, JsValue> {
    parse_session_message(origin, data, None)
}

const FINISH: &str = r#"{"data":{"phone_number_id":"106540352242922","waba_id":"9007199254740993","business_id":"2729063490586005"},"type":"WA_EMBEDDED_SIGNUP","event":"FINISH","version":3}"#;

#[wasm_bindgen_test]
fn every_event_kind_as_string_and_object() {
    let cases = [
        (FINISH, "FINISH"),
        (
            r#"{"data":{"waba_id":"1","business_id":"2"},"type":"WA_EMBEDDED_SIGNUP","event":"FINISH_ONLY_WABA","version":3}"#,
            "FINISH_ONLY_WABA",
        ),
        (
            r#"{"data":{"waba_id":"1","business_id":"2"},"type":"WA_EMBEDDED_SIGNUP","event":"FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING","version":3}"#,
            "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING",
        ),
        (
            r#"{"data":{"current_step":"PHONE_NUMBER_VERIFICATION"},"type":"WA_EMBEDDED_SIGNUP","event":"CANCEL","version":3}"#,
            "CANCEL",
        ),
        (
            r#"{"data":{"error_message":"Your verification code is incorrect.","error_id":524126,"session_id":"f34b6950d0f4c8"},"type":"WA_EMBEDDED_SIGNUP","event":"CANCEL","version":3}"#,
            "CANCEL",
        ),
        (
            r#"{"data":{"error_message":"boom"},"type":"WA_EMBEDDED_SIGNUP","event":"ERROR"}"#,
            "ERROR",
        ),
        (
            r#"{"type":"WA_EMBEDDED_SIGNUP","event":"SOMETHING_NEW","version":4}"#,
            "SOMETHING_NEW",
        ),
    ];
    for (json, event) in cases {
        for data in [JsValue::from_str(json), js(json)] {
            let got = parse(META, data).unwrap();
            assert_eq!(text(&got, "event").as_deref(), Some(event), "{json}");
            assert_eq!(stringify(&field(&got, "sessionMessage")), json);
        }
    }
    let finish = parse(META, FINISH.into()).unwrap();
    // The WABA id above 2^53 arrives as the exact string.
    assert_eq!(text(&finish, "wabaId").as_deref(), Some("9007199254740993"));
    assert_eq!(text(&finish, "version").as_deref(), Some("3"));
    let cancel = parse(META, cases[3].0.into()).unwrap();
    assert_eq!(
        text(&cancel, "currentStep").as_deref(),
        Some("PHONE_NUMBER_VERIFICATION")
    );
    let reported = parse(META, cases[4].0.into()).unwrap();
    // The older `error_id` reads as the error code.
    assert_eq!(text(&reported, "errorCode").as_deref(), Some("524126"));
    assert_eq!(
        text(&reported, "sessionId").as_deref(),
        Some("f34b6950d0f4c8")
    );
}

#[wasm_bindgen_test]
fn the_session_message_travels_as_received() {
    // Meta's message with fields this version does not read (a timestamp, the WABA list of a
    // multi-WABA flow): `sessionMessage` keeps them all, while the fields beside it are read.
    let json = r#"{"data":{"waba_id":"102289599326934","waba_ids":["102289599326934","101569239400667"],"business_id":2729063490586005,"timestamp":1698675133},"type":"WA_EMBEDDED_SIGNUP","event":"FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING","version":"4"}"#;
    // As JSON text: the parsed object, field for field and in order.
    let got = parse(META, json.into()).unwrap();
    let message = field(&got, "sessionMessage");
    assert!(message.is_object());
    assert_eq!(stringify(&message), json);
    assert_eq!(
        text(&got, "event").as_deref(),
        Some("FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING")
    );
    assert_eq!(
        text(&got, "businessId").as_deref(),
        Some("2729063490586005")
    );
    assert!(field(&got, "phoneNumberId").is_undefined());
    // As an object: that very object.
    let data = js(json);
    let got = parse(META, data.clone()).unwrap();
    assert!(js_sys::Object::is(&field(&got, "sessionMessage"), &data));
    // A login alone has none.
    let login = parse_login_response(token_login()).unwrap();
    assert!(field(&login, "sessionMessage").is_undefined());
}

#[wasm_bindgen_test]
fn only_meta_origins_count() {
    for origin in [
        "https://evilfacebook.com",
        "http://www.facebook.com",
        "https://facebook.com.evil.example",
        "https://www.facebook.com:444",
        "null",
    ] {
        assert!(parse(origin, FINISH.into()).unwrap().is_null(), "{origin}");
    }
    assert!(
        !parse("https://business.facebook.com", FINISH.into())
            .unwrap()
            .is_null()
    );
    let extra = Some(vec!["http://127.0.0.1:9".to_owned()]);
    assert!(
        !parse_session_message("http://127.0.0.1:9", FINISH.into(), extra)
            .unwrap()
            .is_null()
    );
}

#[wasm_bindgen_test]
fn bad_messages_are_errors_and_unrelated_ones_are_ignored() {
    for json in [
        r#"{"type":"WA_EMBEDDED_SIGNUP","event":"FINISH","data":{}}"#,
        r#"{"type":"WA_EMBEDDED_SIGNUP","event":"FINISH","data":{"waba_id":{"x":1}}}"#,
        r#"{"type":"WA_EMBEDDED_SIGNUP","event":"FINISH","data":{"waba_id":"12; drop"}}"#,
        r#"{"type":"WA_EMBEDDED_SIGNUP","event":"FINISH","data":{"waba_id":9007199254740993}}"#,
        r#"{"type":"WA_EMBEDDED_SIGNUP"}"#,
    ] {
        let err = parse(META, json.into()).unwrap_err();
        assert_eq!(code(err), "invalid_signup_result", "{json}");
    }
    let huge = format!(
        r#"{{"type":"WA_EMBEDDED_SIGNUP","event":"FINISH","pad":"{}"}}"#,
        "x".repeat(100_000)
    );
    assert_eq!(
        code(parse(META, huge.into()).unwrap_err()),
        "invalid_signup_result"
    );
    for unrelated in [
        JsValue::from_str("not json"),
        js(r#"{"type":"webpackOk"}"#),
        JsValue::from(5),
        JsValue::NULL,
    ] {
        assert!(parse(META, unrelated).unwrap().is_null());
    }
}

#[wasm_bindgen_test]
fn login_responses() {
    let t = parse_login_response(js(r#"{"status":"connected","authResponse":{"accessToken":"EAAFl","userID":"1","expiresIn":5183999}}"#)).unwrap();
    assert_eq!(text(&t, "outcome").as_deref(), Some("finished"));
    let cred = field(&t, "credential");
    assert_eq!(
        (
            text(&cred, "kind").as_deref(),
            text(&cred, "value").as_deref()
        ),
        (Some("token"), Some("EAAFl"))
    );
    let c = parse_login_response(js(
        r#"{"status":"connected","authResponse":{"code":"AQBx"}}"#,
    ))
    .unwrap();
    assert_eq!(
        text(&field(&c, "credential"), "kind").as_deref(),
        Some("code")
    );
    for cancelled in [
        r#"{"status":"unknown","authResponse":null}"#,
        r#"{"status":"not_authorized"}"#,
        "{}",
    ] {
        let r = parse_login_response(js(cancelled)).unwrap();
        assert_eq!(
            text(&r, "outcome").as_deref(),
            Some("cancelled"),
            "{cancelled}"
        );
        assert!(field(&r, "credential").is_undefined());
    }
    for bad in [
        JsValue::from_str("connected"),
        JsValue::NULL,
        js(r#"{"status":"connected","authResponse":"x"}"#),
        js(r#"{"status":"connected","authResponse":{}}"#),
    ] {
        assert_eq!(
            code(parse_login_response(bad).unwrap_err()),
            "invalid_signup_result"
        );
    }
}

fn post_message(origin: &str, data: &str) {
    let init = web_sys::MessageEventInit::new();
    init.set_origin(origin);
    init.set_data(&JsValue::from_str(data));
    let ev = web_sys::MessageEvent::new_with_event_init_dict("message", &init).unwrap();
    web_sys::window().unwrap().dispatch_event(&ev).unwrap();
}

fn token_login() -> JsValue {
    js(r#"{"status":"connected","authResponse":{"accessToken":"EAAtoken"}}"#)
}

async fn result(listener: &SignupListener) -> JsValue {
    JsFuture::from(listener.result()).await.unwrap()
}

#[wasm_bindgen_test]
async fn message_then_login() {
    let l = SignupListener::new(None).unwrap();
    post_message(
        "https://evilfacebook.com",
        r#"{"type":"WA_EMBEDDED_SIGNUP","event":"FINISH","data":{"waba_id":"666"}}"#,
    );
    post_message(META, r#"{"type":"WA_EMBEDDED_SIGNUP","event":"NEW_EVENT"}"#);
    post_message(META, FINISH);
    l.login(token_login()).unwrap();
    let r = result(&l).await;
    assert_eq!(text(&r, "outcome").as_deref(), Some("finished"));
    assert_eq!(
        text(&r, "wabaId").as_deref(),
        Some("9007199254740993"),
        "the foreign origin's message was ignored"
    );
    let unknown: Vec<String> = js_sys::Array::from(&field(&r, "unknownEvents"))
        .iter()
        .filter_map(|v| v.as_string())
        .collect();
    assert_eq!(unknown, ["NEW_EVENT"]);
    // The finishing message as received, not the unknown one nor the foreign one.
    assert_eq!(stringify(&field(&r, "sessionMessage")), FINISH);
    l.dispose().unwrap();
}

#[wasm_bindgen_test]
async fn login_then_message_and_cancel() {
    let l = SignupListener::new(None).unwrap();
    l.login(js(r#"{"status":"unknown","authResponse":null}"#))
        .unwrap();
    post_message(
        META,
        r#"{"data":{"current_step":"PHONE_NUMBER_VERIFICATION"},"type":"WA_EMBEDDED_SIGNUP","event":"CANCEL","version":3}"#,
    );
    let r = result(&l).await;
    assert_eq!(text(&r, "outcome").as_deref(), Some("abandoned"));
    assert_eq!(
        text(&r, "currentStep").as_deref(),
        Some("PHONE_NUMBER_VERIFICATION")
    );
    assert_eq!(text(&r, "loginStatus").as_deref(), Some("unknown"));
    assert_eq!(
        text(&field(&r, "sessionMessage"), "event").as_deref(),
        Some("CANCEL")
    );
    // Later messages change nothing.
    post_message(META, FINISH);
    let again = result(&l).await;
    assert_eq!(text(&again, "outcome").as_deref(), Some("abandoned"));
    assert_eq!(
        text(&field(&again, "sessionMessage"), "event").as_deref(),
        Some("CANCEL")
    );
    l.dispose().unwrap();
}

#[wasm_bindgen_test]
async fn a_login_without_session_message_resolves_after_the_grace_period() {
    let l = SignupListener::new(Some(js(r#"{"graceMs":50}"#).unchecked_into())).unwrap();
    l.login(token_login()).unwrap();
    let r = result(&l).await;
    assert_eq!(text(&r, "outcome").as_deref(), Some("finished"));
    assert!(field(&r, "event").is_undefined());
    assert!(field(&r, "sessionMessage").is_undefined());
    l.dispose().unwrap();
    // A disposed listener no longer hears messages.
    let l2 = SignupListener::new(Some(js(r#"{"graceMs":50}"#).unchecked_into())).unwrap();
    l2.dispose().unwrap();
    post_message(META, FINISH);
    l2.login(token_login()).unwrap();
    assert!(field(&result(&l2).await, "wabaId").is_undefined());
    let _ = JsValue::from(l2).dyn_into::<js_sys::Object>();
}

/// Meta's v4 session messages: a multi-WABA finish (`waba_ids`, no `waba_id`), the newer
/// finish events, and a user-reported error with `error_code`
/// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/implementation>).
#[wasm_bindgen_test]
fn v4_session_messages() {
    let multi = parse(
        META,
        js(r#"{"data":{"phone_number_id":"106540352242922","waba_ids":["102289599326934",101569239400667],"business_id":"2729063490586005"},"type":"WA_EMBEDDED_SIGNUP","event":"FINISH"}"#),
    )
    .unwrap();
    assert_eq!(text(&multi, "wabaId").as_deref(), Some("102289599326934"));
    let ids = field(&multi, "wabaIds");
    assert_eq!(stringify(&ids), r#"["102289599326934","101569239400667"]"#);
    for event in ["FINISH_OBO_MIGRATION", "FINISH_GRANT_ONLY_API_ACCESS"] {
        let json = format!(
            r#"{{"data":{{"waba_id":"1","business_id":"2"}},"type":"WA_EMBEDDED_SIGNUP","event":"{event}"}}"#
        );
        let got = parse(META, js(&json)).unwrap();
        assert_eq!(text(&got, "event").as_deref(), Some(event));
        assert_eq!(text(&got, "wabaId").as_deref(), Some("1"));
    }
    let reported = parse(
        META,
        js(r#"{"data":{"error_message":"Your verification code is incorrect.","error_code":"524126","session_id":"f34b51dab5e0498","timestamp":"1746041036"},"type":"WA_EMBEDDED_SIGNUP","event":"CANCEL"}"#),
    )
    .unwrap();
    assert_eq!(text(&reported, "errorCode").as_deref(), Some("524126"));
    assert_eq!(
        text(&reported, "sessionId").as_deref(),
        Some("f34b51dab5e0498")
    );
}
