//! In headless Chromium: the status panel renders text as text, shows unknown statuses raw,
//! and updates in place.
// clippy does not see `#[wasm_bindgen_test]` functions as tests; unwrapping is how they fail.
#![allow(clippy::unwrap_used)]
// Browser-only: natively the file compiles to an empty test crate.
#![cfg(target_arch = "wasm32")]

use waba_onboard::render::{StatusPanel, render_accounts};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;
use web_sys::Element;

wasm_bindgen_test_configure!(run_in_browser);

fn container() -> Element {
    let doc = web_sys::window().unwrap().document().unwrap();
    let div = doc.create_element("div").unwrap();
    doc.body().unwrap().append_child(&div).unwrap();
    div
}

fn accounts(json: &str) -> JsValue {
    js_sys::JSON::parse(json).unwrap()
}

const XSS: &str = r#"[{"waba":{"id":"108800000000002","name":"<img src=x onerror=\"window.__xss=1\">Evil & Co","account_review_status":"APPROVED",
  "phone_numbers":{"data":[{"id":"1","display_phone_number":"<script>window.__xss=2</script>","status":"CONNECTED","code_verification_status":"VERIFIED"}]}},
  "review":"APPROVED","reviewKnown":true,"newest":true,
  "phones":[{"phone":{"id":"1","display_phone_number":"<script>window.__xss=2</script>","status":"CONNECTED"},"ready":true}],"healthProblems":[]}]"#;

#[wasm_bindgen_test]
async fn names_are_text_and_no_script_runs() {
    let c = container();
    render_accounts(c.clone(), accounts(XSS), None).unwrap();
    let name = c.query_selector(".waba-account__name").unwrap().unwrap();
    assert_eq!(
        name.text_content().unwrap(),
        "<img src=x onerror=\"window.__xss=1\">Evil & Co"
    );
    assert!(c.query_selector("img").unwrap().is_none());
    assert!(c.query_selector("script").unwrap().is_none());
    // Give an injected handler every chance to run.
    wasm_bindgen_futures::JsFuture::from(js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 100)
            .unwrap();
    }))
    .await
    .unwrap();
    let flag = js_sys::Reflect::get(&web_sys::window().unwrap(), &"__xss".into()).unwrap();
    assert!(flag.is_undefined(), "an injected script ran");
    assert_eq!(
        c.query_selector("[data-account-id]")
            .unwrap()
            .unwrap()
            .get_attribute("data-account-id")
            .as_deref(),
        Some("108800000000002")
    );
}

const TWO: &str = r#"[
 {"waba":{"id":"1","name":"Harbor","account_review_status":"UNDER_APPEAL","currency":"USD","phone_numbers":{"data":[]}},
  "review":"UNDER_APPEAL","reviewKnown":false,"newest":true,"phones":[],
  "incomplete":{"reason":"left_at_step","step":"PHONE_NUMBER_VERIFICATION","message":"The business left at PHONE_NUMBER_VERIFICATION."},"healthProblems":["Blocked. Fix it."]},
 {"waba":{"id":"2","name":"Lucky","account_review_status":"PENDING"},"review":"PENDING","reviewKnown":true,"newest":false,"phones":[],"healthProblems":[]}]"#;

#[wasm_bindgen_test]
fn unknown_status_is_shown_raw_and_updates_happen_in_place() {
    let c = container();
    let mut panel = StatusPanel::new(c.clone()).unwrap();
    panel.loading(None).unwrap();
    assert!(c.query_selector(".waba-state--loading").unwrap().is_some());
    panel.render(accounts(TWO), None).unwrap();
    let badge = c
        .query_selector("[data-account-id='1'] .waba-badge")
        .unwrap()
        .unwrap();
    assert_eq!(badge.text_content().unwrap(), "UNDER_APPEAL");
    assert!(badge.class_list().contains("waba-badge--unknown"));
    assert!(
        c.query_selector("[data-account-id='1'].waba-account--newest .waba-newest")
            .unwrap()
            .is_some()
    );
    let notice = c
        .query_selector("[data-account-id='1'] .waba-notice")
        .unwrap()
        .unwrap();
    assert!(
        notice
            .text_content()
            .unwrap()
            .contains("PHONE_NUMBER_VERIFICATION")
    );
    assert_eq!(
        c.query_selector(".waba-live")
            .unwrap()
            .unwrap()
            .text_content()
            .unwrap(),
        "2 accounts shown."
    );

    let before = c.query_selector("[data-account-id='2']").unwrap().unwrap();
    let approved = TWO.replace(r#""review":"PENDING""#, r#""review":"APPROVED""#);
    panel.render(accounts(&approved), None).unwrap();
    let after = c.query_selector("[data-account-id='2']").unwrap().unwrap();
    assert!(
        before.is_same_node(Some(&after)),
        "the row was updated in place"
    );
    assert_eq!(
        after
            .query_selector(".waba-badge")
            .unwrap()
            .unwrap()
            .text_content()
            .unwrap(),
        "APPROVED"
    );
    let live = c
        .query_selector(".waba-live")
        .unwrap()
        .unwrap()
        .text_content()
        .unwrap();
    assert_eq!(
        live,
        "Lucky: review status changed from PENDING to APPROVED"
    );
    assert_eq!(
        c.query_selector_all("[data-account-id]").unwrap().length(),
        2
    );

    // Rows that disappear are removed; an empty list says so.
    panel.render(accounts("[]"), None).unwrap();
    assert_eq!(
        c.query_selector_all("[data-account-id]").unwrap().length(),
        0
    );
    assert!(c.query_selector(".waba-state--empty").unwrap().is_some());
    assert!(
        panel
            .render(accounts(r#"[{"waba":{"id":"x1"}}]"#), None)
            .is_err(),
        "bad ids are refused"
    );
}

#[wasm_bindgen_test]
fn errors_and_signup_guidance() {
    let c = container();
    let panel = StatusPanel::new(c.clone()).unwrap();
    let err = js_sys::Error::new("Meta is rate limiting these calls; retry in 60 s");
    js_sys::Reflect::set(&err, &"code".into(), &"throttled".into()).unwrap();
    panel.show_error(err.into()).unwrap();
    let state = c.query_selector(".waba-state--error").unwrap().unwrap();
    assert_eq!(state.get_attribute("role").as_deref(), Some("alert"));
    assert_eq!(
        state.get_attribute("data-error-code").as_deref(),
        Some("throttled")
    );
    assert!(state.text_content().unwrap().contains("limiting"));
    // The guidance comes from Meta's session message.
    let cancel = js_sys::JSON::parse(r#"{"outcome":"abandoned","event":"CANCEL","currentStep":"PHONE_NUMBER_VERIFICATION","unknownEvents":[],
        "sessionMessage":{"type":"WA_EMBEDDED_SIGNUP","event":"CANCEL","data":{"current_step":"PHONE_NUMBER_VERIFICATION"}}}"#).unwrap();
    panel.show_signup(cancel).unwrap();
    assert!(c.text_content().unwrap().contains("verification code"));
    let reported = js_sys::JSON::parse(r#"{"outcome":"abandoned","unknownEvents":[],
        "sessionMessage":{"type":"WA_EMBEDDED_SIGNUP","event":"CANCEL","data":{"error_message":"Your verification code is incorrect.","error_id":524126}}}"#).unwrap();
    panel.show_signup(reported).unwrap();
    let shown = c.text_content().unwrap();
    assert!(
        shown.contains("reported an error") && shown.contains("(error 524126)"),
        "{shown}"
    );
    let not_meta = js_sys::JSON::parse(
        r#"{"outcome":"abandoned","unknownEvents":[],"sessionMessage":{"type":"other"}}"#,
    )
    .unwrap();
    assert!(panel.show_signup(not_meta).is_err());
    let closed = js_sys::JSON::parse(r#"{"outcome":"cancelled","unknownEvents":[]}"#).unwrap();
    panel.show_signup(closed).unwrap();
    assert!(c.text_content().unwrap().contains("Signup cancelled"));
}

/// The time zone shows its name next to Graph's id when Meta's table names it, and the id
/// alone when it does not; alerts and the business verification say who acts.
#[wasm_bindgen_test]
fn time_zones_alerts_and_verification_are_shown() {
    let c = container();
    let json = r#"[
 {"waba":{"id":"1","name":"Berlin","timezone_id":"47","business_verification_status":"not_verified"},"review":"UNKNOWN","reviewKnown":false,"newest":true,"phones":[],"healthProblems":[],
  "alerts":[{"kind":"disabled_update","actor":"business","message":"Meta disabled this account (DISABLE)."}],
  "verification":{"kind":"not_verified","actor":"business","message":"The business is not verified."}},
 {"waba":{"id":"2","name":"Far","timezone_id":"590"},"review":"UNKNOWN","reviewKnown":false,"newest":false,"phones":[],"healthProblems":[]}]"#;
    render_accounts(c.clone(), accounts(json), None).unwrap();
    let text = c.text_content().unwrap_or_default();
    assert!(text.contains("Europe/Berlin (47)"), "{text}");
    assert!(text.contains("590") && !text.contains("(590)"), "{text}");
    let alert = c.query_selector(".waba-alert").unwrap().unwrap();
    assert_eq!(
        alert.get_attribute("data-actor").as_deref(),
        Some("business")
    );
    let note = c.query_selector(".waba-verification").unwrap().unwrap();
    assert_eq!(
        note.get_attribute("data-status").as_deref(),
        Some("not_verified")
    );
}

#[wasm_bindgen_test]
fn the_partner_s_steps_update_the_panel_until_the_number_is_ready() {
    let c = container();
    let list = accounts(
        r#"[{"waba":{"id":"9","name":"Pine","phone_numbers":{"data":[{"id":"10","display_phone_number":"+44 20 5550 0110","status":"PENDING","code_verification_status":"VERIFIED"}]}},
  "review":"APPROVED","reviewKnown":true,"newest":true,
  "phones":[{"phone":{"id":"10","display_phone_number":"+44 20 5550 0110","status":"PENDING","code_verification_status":"VERIFIED"},"ready":false,"actor":"partner","action":"register"}],
  "healthProblems":[]}]"#,
    );
    let change = |kind: &str, state: &str, text: &str| {
        js_sys::JSON::parse(&format!(
            r#"{{"kind":"pipeline_step","waba_id":"9","value":"{kind}:{state}",
               "step":{{"kind":"{kind}","state":"{state}","phone_id":{},"actor":"partner","text":"{text}"}}}}"#,
            if kind == "register" { "\"10\"" } else { "null" }
        ))
        .unwrap()
    };
    assert!(
        waba_onboard::onboard::apply_change(
            list.clone(),
            change("subscribe", "pending", "Connecting webhooks")
        )
        .unwrap()
    );
    assert!(
        !waba_onboard::onboard::apply_change(
            list.clone(),
            change("subscribe", "pending", "Connecting webhooks")
        )
        .unwrap(),
        "the same line twice changes nothing"
    );
    assert!(
        waba_onboard::onboard::apply_change(
            list.clone(),
            change("register", "running", "Registering +44 20 5550 0110")
        )
        .unwrap()
    );
    let mut panel = StatusPanel::new(c.clone()).unwrap();
    panel.render(list.clone(), None).unwrap();
    let steps = c.query_selector_all(".waba-step").unwrap();
    assert_eq!(steps.length(), 2);
    assert!(
        c.text_content()
            .unwrap_or_default()
            .contains("Registering +44 20 5550 0110")
    );
    let phone = c.query_selector(".waba-phone").unwrap().unwrap();
    assert!(phone.class_name().contains("not-ready"));

    assert!(
        waba_onboard::onboard::apply_change(
            list.clone(),
            change("register", "done", "+44 20 5550 0110: ready to message")
        )
        .unwrap()
    );
    panel.render(list, None).unwrap();
    let text = c.text_content().unwrap_or_default();
    assert!(text.contains("ready to message"), "{text}");
    let phone = c.query_selector(".waba-phone").unwrap().unwrap();
    assert!(
        phone.class_name().contains("waba-phone--ready"),
        "{}",
        phone.class_name()
    );
    assert!(text.contains("CONNECTED"), "{text}");
    let done = c
        .query_selector("[data-step=\"register\"]")
        .unwrap()
        .unwrap();
    assert_eq!(done.get_attribute("data-state").as_deref(), Some("done"));
}
