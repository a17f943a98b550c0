//! Runs in headless Chromium (`cargo xtask test`): the graph model across the JS boundary.
// clippy does not see `#[wasm_bindgen_test]` functions as tests; unwrapping is how they fail.
#![allow(clippy::unwrap_used)]
// Browser-only: natively the file compiles to an empty test crate.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn js(json: &str) -> JsValue {
    js_sys::JSON::parse(json).expect("test JSON")
}

#[wasm_bindgen_test]
fn granted_ids_come_newest_first_and_exact() {
    // String ids above 2^53 must survive the trip through JS untouched.
    let answer = js(r#"{"data":{"is_valid":true,"granular_scopes":[
        {"scope":"whatsapp_business_manage_events","target_ids":["1"]},
        {"scope":"whatsapp_business_management","target_ids":["9007199254740993","101569239400667"]}]}}"#);
    let ids = waba_onboard::granted_waba_ids(answer).unwrap();
    assert_eq!(ids, ["9007199254740993", "101569239400667"]);
}

#[wasm_bindgen_test]
fn a_js_number_above_2_pow_53_is_refused_not_rounded() {
    // JSON.parse already rounded 9007199254740993 to ...992; the model must refuse it.
    let answer = js(r#"{"data":{"is_valid":true,"granular_scopes":[
        {"scope":"whatsapp_business_management","target_ids":[9007199254740993]}]}}"#);
    assert!(waba_onboard::granted_waba_ids(answer).is_err());
    let small = js(r#"{"data":{"is_valid":true,"granular_scopes":[
        {"scope":"whatsapp_business_management","target_ids":[102289599326934]}]}}"#);
    assert_eq!(
        waba_onboard::granted_waba_ids(small).unwrap(),
        ["102289599326934"]
    );
}

#[wasm_bindgen_test]
fn origins() {
    assert!(waba_onboard::is_trusted_origin(
        "https://www.facebook.com",
        vec![]
    ));
    assert!(!waba_onboard::is_trusted_origin(
        "https://evilfacebook.com",
        vec![]
    ));
    assert!(!waba_onboard::is_trusted_origin(
        "http://www.facebook.com",
        vec![]
    ));
    assert!(waba_onboard::is_trusted_origin(
        "http://127.0.0.1:1",
        vec!["http://127.0.0.1:1".into()]
    ));
}
