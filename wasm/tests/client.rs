//! In headless Chromium, against the live graph-sim + waba-proxy that `cargo xtask test`
//! starts (their URLs come in as WABA_TEST_PROXY_URL and WABA_TEST_SIM_URL): the client, the
//! onboarding flow, and errors surfacing with the right `code`.
// clippy does not see `#[wasm_bindgen_test]` functions as tests; unwrapping is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The URLs exist only when `cargo xtask test` builds these tests; clippy and plain builds
// must still compile them, so a missing URL fails at run time with instructions.
#![allow(clippy::option_env_unwrap)]
// Browser-only: natively the file compiles to an empty test crate.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Reflect};
use waba_onboard::client::WabaClient;
use waba_onboard::onboard::onboard;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const FINISH: &str = "EAASimBusinessTokenFinish000000000000000000000001";
const BIG_ID: &str = "EAASimBusinessTokenBigId000000000000000000000003";
const INCOMPLETE: &str = "EAASimBusinessTokenIncomplete0000000000000000002";
const EXPIRED: &str = "EAASimBusinessTokenExpired0000000000000000000006";
const XSS: &str = "EAASimBusinessTokenXss00000000000000000000000004";
const ADMIN: &str = "demo-admin-token";
const PARTNER: &str = "805021500648488";

fn proxy_url() -> &'static str {
    option_env!("WABA_TEST_PROXY_URL")
        .expect("run through `cargo xtask test`, which starts graph-sim and waba-proxy")
}

fn sim_url() -> &'static str {
    option_env!("WABA_TEST_SIM_URL")
        .expect("run through `cargo xtask test`, which starts graph-sim and waba-proxy")
}

fn js(json: &str) -> JsValue {
    js_sys::JSON::parse(json).unwrap()
}

fn client(credential: Option<&str>, timeout_ms: u32) -> WabaClient {
    let options = js(&format!(
        r#"{{"proxyUrl":"{}","timeoutMs":{timeout_ms}}}"#,
        proxy_url()
    ));
    let mut c = WabaClient::new(options).unwrap();
    c.set_credential(credential.map(str::to_owned));
    c
}

fn get(v: &JsValue, path: &str) -> JsValue {
    path.split('.')
        .fold(v.clone(), |acc, k| match k.parse::<u32>() {
            Ok(i) => Array::from(&acc).get(i),
            Err(_) => Reflect::get(&acc, &k.into()).unwrap_or(JsValue::UNDEFINED),
        })
}

fn s(v: &JsValue, path: &str) -> Option<String> {
    get(v, path).as_string()
}

async fn ok(p: js_sys::Promise) -> JsValue {
    JsFuture::from(p).await.unwrap()
}

async fn err(p: js_sys::Promise) -> JsValue {
    JsFuture::from(p).await.expect_err("expected a rejection")
}

async fn fault(json: &str) {
    let res = gloo_net::http::Request::post(&format!("{}/_sim/faults", sim_url()))
        .header("content-type", "application/json")
        .body(json)
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
}

fn token_result(token: &str, extra: &str) -> JsValue {
    js(&format!(
        r#"{{"outcome":"finished","credential":{{"kind":"token","value":"{token}"}},"unknownEvents":[]{extra}}}"#
    ))
}

/// `,"sessionMessage":{...}`: Meta's message for `event` naming `waba_id`, as received.
fn session(event: &str, waba_id: &str) -> String {
    format!(
        r#","sessionMessage":{{"data":{{"waba_id":"{waba_id}","business_id":"2729063490586005"}},"type":"WA_EMBEDDED_SIGNUP","event":"{event}","version":3}}"#
    )
}

#[wasm_bindgen_test]
async fn onboard_lists_every_granted_account_newest_first() {
    record_exchange_bodies();
    let window = web_sys::window().unwrap();
    Reflect::set(&window, &"__graphFetches".into(), &0.into()).unwrap();
    let r = ok(onboard(
        &client(None, 10_000),
        token_result(FINISH, &session("FINISH", "102289599326934")),
    ))
    .await;
    // `GET /signup/accounts` answered the grant and both statuses: no read of its own.
    assert_eq!(
        Reflect::get(&window, &"__graphFetches".into()).unwrap(),
        JsValue::from(0)
    );
    let accounts = Array::from(&get(&r, "accounts"));
    assert_eq!(accounts.length(), 2);
    assert_eq!(
        s(&r, "accounts.0.waba.id").as_deref(),
        Some("102289599326934")
    );
    assert_eq!(get(&r, "accounts.0.newest").as_bool(), Some(true));
    assert_eq!(s(&r, "accounts.0.review").as_deref(), Some("APPROVED"));
    assert_eq!(s(&r, "accounts.1.review").as_deref(), Some("PENDING"));
    // The second account's business verification is pending: Meta acts.
    assert_eq!(
        s(&r, "accounts.1.verification.kind").as_deref(),
        Some("pending")
    );
    assert_eq!(
        s(&r, "accounts.1.verification.actor").as_deref(),
        Some("meta")
    );
    assert!(get(&r, "accounts.0.verification").is_undefined());
    assert_eq!(Array::from(&get(&r, "accounts.0.phones")).length(), 2);
    assert_eq!(
        s(&r, "accounts.0.phones.0.phone.display_phone_number").as_deref(),
        Some("+1 631-555-0101")
    );
    assert_eq!(Array::from(&get(&r, "warnings")).length(), 0);

    // The session message's WABA is not among the grants: a visible warning.
    let r = ok(onboard(
        &client(None, 10_000),
        token_result(FINISH, &session("FINISH", "999")),
    ))
    .await;
    assert_eq!(s(&r, "warnings.0.code").as_deref(), Some("waba_mismatch"));
    assert!(s(&r, "warnings.0.message").unwrap().contains("999"));
    // The event comes from the session message, not from the fields derived beside it.
    let r = ok(onboard(
        &client(None, 10_000),
        token_result(
            FINISH,
            &format!(
                r#","event":"FINISH","wabaId":"102289599326934"{}"#,
                session("FINISH", "999")
            ),
        ),
    ))
    .await;
    assert_eq!(s(&r, "warnings.0.code").as_deref(), Some("waba_mismatch"));
    // Something else in sessionMessage is refused.
    let e = err(onboard(
        &client(None, 10_000),
        token_result(FINISH, r#","sessionMessage":{"type":"webpackOk"}"#),
    ))
    .await;
    assert_eq!(s(&e, "code").as_deref(), Some("invalid_signup_result"));

    // A phone that is not verified: the certificate is not ready.
    let r = ok(onboard(&client(None, 10_000), token_result(INCOMPLETE, ""))).await;
    assert_eq!(
        s(&r, "accounts.0.incomplete.reason").as_deref(),
        Some("certificate_not_ready")
    );
    // Who acts, for the account and for the phone: the business verifies its number.
    assert_eq!(
        s(&r, "accounts.0.incomplete.actor").as_deref(),
        Some("business")
    );
    assert_eq!(
        s(&r, "accounts.0.phones.0.actor").as_deref(),
        Some("business")
    );
    assert_eq!(
        s(&r, "accounts.0.phones.0.action").as_deref(),
        Some("verify_number")
    );
}

#[wasm_bindgen_test]
async fn ids_above_2_pow_53_reach_js_exactly() {
    let c = client(Some(BIG_ID), 10_000);
    let w = ok(c.waba(
        "9007199254740993".into(),
        Some("id,phone_numbers{id}".into()),
    ))
    .await;
    assert_eq!(s(&w, "id").as_deref(), Some("9007199254740993"));
    assert_eq!(
        s(&w, "phone_numbers.data.0.id").as_deref(),
        Some("9007199254740995")
    );
    let t = ok(c.debug_token(BIG_ID.into())).await;
    assert_eq!(
        s(&t, "data.granular_scopes.0.target_ids.0").as_deref(),
        Some("9007199254740993")
    );
}

#[wasm_bindgen_test]
async fn lists_and_phones_with_the_admin_token() {
    let c = client(Some(ADMIN), 10_000);
    let q = js(&format!(
        r#"{{"businessId":"{PARTNER}","limit":2,"sort":"desc","fields":"id,name,account_review_status"}}"#
    ));
    let page = ok(c.client_wabas(q)).await;
    assert_eq!(Array::from(&get(&page, "data")).length(), 2);
    assert_eq!(s(&page, "data.0.id").as_deref(), Some("9007199254740993"));
    let after = s(&page, "paging.cursors.after").unwrap();
    let next = ok(c.client_wabas(js(&format!(
        r#"{{"businessId":"{PARTNER}","limit":2,"sort":"desc","after":"{after}"}}"#
    ))))
    .await;
    assert_ne!(s(&next, "data.0.id"), s(&page, "data.0.id"));
    let owned = ok(c.owned_wabas(js(&format!(
        r#"{{"businessId":"{PARTNER}","createdAfter":1600000000,"createdBefore":1700000000}}"#
    ))))
    .await;
    assert_eq!(Array::from(&get(&owned, "data")).length(), 2);
    let phones = ok(c.phone_numbers(
        "102289599326934".into(),
        Some(js(r#"{"limit":1}"#).unchecked_into()),
    ))
    .await;
    assert_eq!(Array::from(&get(&phones, "data")).length(), 1);
    let phones = ok(c.phone_numbers(
        "102289599326934".into(),
        Some(js(r#"{"fields":"id,status","limit":2}"#).unchecked_into()),
    ))
    .await;
    // The query is optional: Graph's default page.
    let all = ok(c.phone_numbers("102289599326934".into(), None)).await;
    assert_eq!(Array::from(&get(&all, "data")).length(), 2);
    assert_eq!(Array::from(&get(&phones, "data")).length(), 2);
    assert_eq!(s(&phones, "data.0.status").as_deref(), Some("CONNECTED"));
    // The phone query is the model's PhoneQuery: refused before any request.
    for bad in [
        r#"{"limit":0}"#,
        r#"{"limit":101}"#,
        r#"{"after":"QVFI","before":"QVFI"}"#,
        r#"{"fields":"account_review_status"}"#,
        r#"{"after":"a b"}"#,
    ] {
        let e =
            err(c.phone_numbers("102289599326934".into(), Some(js(bad).unchecked_into()))).await;
        assert_eq!(s(&e, "code").as_deref(), Some("invalid_argument"), "{bad}");
    }
    // A range is two conditions on the client list too.
    ok(c.client_wabas(js(&format!(
        r#"{{"businessId":"{PARTNER}","createdAfter":1,"createdBefore":2}}"#
    ))))
    .await;
    // Bad input (an empty range) is refused before any request.
    let e = err(c.client_wabas(js(&format!(
        r#"{{"businessId":"{PARTNER}","createdAfter":5,"createdBefore":2}}"#
    ))))
    .await;
    assert_eq!(s(&e, "code").as_deref(), Some("invalid_argument"));
    let e = err(c.client_wabas(js(r#"{"businessId":"80502x"}"#))).await;
    assert_eq!(s(&e, "code").as_deref(), Some("invalid_argument"));
}

#[wasm_bindgen_test]
async fn errors_carry_stable_codes() {
    // 401: no credential, and an expired signup token.
    let e = err(client(None, 10_000).waba("102289599326934".into(), None)).await;
    assert_eq!(
        (s(&e, "code").as_deref(), get(&e, "status").as_f64()),
        (Some("unauthorized"), Some(401.0))
    );
    assert_eq!(s(&e, "name").as_deref(), Some("WabaOnboardError"));
    let e = err(client(Some(EXPIRED), 10_000).waba("102289599326934".into(), None)).await;
    assert_eq!(s(&e, "code").as_deref(), Some("unauthorized"));
    let e = err(onboard(&client(None, 10_000), token_result(EXPIRED, ""))).await;
    assert_eq!(s(&e, "code").as_deref(), Some("unauthorized"));
    // 403: a token granted A asking for B.
    let e = err(client(Some(FINISH), 10_000).waba("106540352242922".into(), None)).await;
    assert_eq!(s(&e, "code").as_deref(), Some("forbidden"));
    // Throttled by Meta: code, status and Retry-After.
    // (The XSS test account: no other test here reads it, and the proxy now holds it back for
    // 2 minutes.)
    fault(r#"{"route":"waba","times":1,"action":{"kind":"throttle","code":80008,"minutes":2}}"#)
        .await;
    let e = err(client(Some(XSS), 10_000).waba("108800000000002".into(), None)).await;
    assert_eq!(s(&e, "code").as_deref(), Some("throttled"));
    assert_eq!(get(&e, "retryAfter").as_f64(), Some(120.0));
    let e = err(client(Some(XSS), 10_000).waba("108800000000002".into(), None)).await;
    assert_eq!(
        s(&e, "code").as_deref(),
        Some("throttled"),
        "the proxy's gate answers at once"
    );
    // Graph's own refusal keeps Graph's code.
    fault(r#"{"route":"waba","times":1,"action":{"kind":"error","status":403,"code":10,"message":"(#10) Application does not have permission for this action"}}"#).await;
    // (Fields no other test asks for: the proxy shares recent identical answers.)
    let e =
        err(client(Some(FINISH), 10_000).waba("101569239400667".into(), Some("id,name".into())))
            .await;
    assert_eq!(
        (s(&e, "code").as_deref(), get(&e, "graphCode").as_f64()),
        (Some("graph"), Some(10.0))
    );
    // Slow: the client's own timeout.
    fault(r#"{"route":"waba","times":1,"action":{"kind":"latency","ms":2000}}"#).await;
    let e =
        err(client(Some(FINISH), 300).waba("101569239400667".into(), Some("id,currency".into())))
            .await;
    assert_eq!(s(&e, "code").as_deref(), Some("timeout"));
    // Nobody listening.
    let down =
        WabaClient::new(js(r#"{"proxyUrl":"http://127.0.0.1:9","timeoutMs":3000}"#)).unwrap();
    let e = err(down.debug_token(FINISH.into())).await;
    assert_eq!(s(&e, "code").as_deref(), Some("network"));
    // A code nobody issued: the proxy's exchange says to sign up again. Without a session
    // message the exchange body has no event.
    let code_result = js(
        r#"{"outcome":"finished","credential":{"kind":"code","value":"AQBxNeverIssued"},"unknownEvents":[]}"#,
    );
    record_exchange_bodies();
    let e = err(onboard(&client(None, 10_000), code_result)).await;
    assert_eq!(
        exchange_bodies("AQBxNeverIssued").await,
        [r#"{"code":"AQBxNeverIssued"}"#]
    );
    assert_eq!(s(&e, "code").as_deref(), Some("bad_request"));
    assert!(
        s(&e, "message")
            .unwrap_or_default()
            .contains("click the signup button again"),
        "{:?}",
        s(&e, "message")
    );
    let cancelled = js(r#"{"outcome":"cancelled","unknownEvents":[]}"#);
    assert_eq!(
        s(
            &err(onboard(&client(None, 10_000), cancelled)).await,
            "code"
        )
        .as_deref(),
        Some("signup_cancelled")
    );
    assert_eq!(
        s(&err(onboard(&client(None, 10_000), js("{}"))).await, "code").as_deref(),
        Some("invalid_signup_result")
    );
}

#[wasm_bindgen_test]
async fn the_session_event_says_whether_a_phone_is_expected() {
    // Big Id Bakery (newest) and Harbor Logistics, which has no phone number yet.
    let harbor_incomplete = |r: &JsValue| s(r, "accounts.1.incomplete.reason");
    // A WhatsApp Business app onboarding (coexistence) brings the app's number: none is a
    // problem to follow up.
    let r = ok(onboard(
        &client(None, 10_000),
        token_result(
            BIG_ID,
            &session(
                "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING",
                "9007199254740993",
            ),
        ),
    ))
    .await;
    assert_eq!(
        s(&r, "accounts.1.waba.id").as_deref(),
        Some("107700000000001")
    );
    assert_eq!(harbor_incomplete(&r).as_deref(), Some("no_phone_number"));
    // FINISH_ONLY_WABA shares a WABA without a number: nothing is missing.
    let r = ok(onboard(
        &client(None, 10_000),
        token_result(BIG_ID, &session("FINISH_ONLY_WABA", "9007199254740993")),
    ))
    .await;
    assert_eq!(harbor_incomplete(&r), None);
    assert_eq!(Array::from(&get(&r, "warnings")).length(), 0);
}

/// Starts recording the bodies this page POSTs to `/signup/exchange` (`window.fetch` with a
/// URL and options, or with a `Request`) and counting its `/graph/` reads
/// (`window.__graphFetches`), passing every call through unchanged.
fn record_exchange_bodies() {
    js_sys::Function::new_no_args(
        r#"
        if (window.__exchangeBodies) return;
        window.__exchangeBodies = [];
        const fetch = window.fetch;
        window.__graphFetches = 0;
        window.fetch = function (input, init) {
            const url = input instanceof Request ? input.url : String(input);
            if (url.includes("/graph/")) window.__graphFetches += 1;
            if (input instanceof Request && input.method === "POST" && input.url.endsWith("/signup/exchange")) {
                window.__exchangeBodies.push(input.clone().text());
            } else if (typeof input === "string" && init && init.method === "POST" && input.endsWith("/signup/exchange")) {
                window.__exchangeBodies.push(Promise.resolve(String(init.body)));
            }
            return fetch.call(this, input, init);
        };
        "#,
    )
    .call0(&JsValue::NULL)
    .unwrap();
}

/// The bodies of the exchanges recorded so far that carry `code`.
async fn exchange_bodies(code: &str) -> Vec<String> {
    let recorded = Reflect::get(&web_sys::window().unwrap(), &"__exchangeBodies".into()).unwrap();
    let mut out = Vec::new();
    for body in Array::from(&recorded).iter() {
        let text = JsFuture::from(js_sys::Promise::from(body))
            .await
            .unwrap()
            .as_string()
            .unwrap();
        if text.contains(&format!(r#""code":"{code}""#)) {
            out.push(text);
        }
    }
    out
}

/// `GET {proxy}{path}` with the admin token, as JSON.
async fn admin_get(path: &str) -> JsValue {
    let res = gloo_net::http::Request::get(&format!("{}{path}", proxy_url()))
        .header("Authorization", &format!("Bearer {ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    js_sys::JSON::parse(&res.text().await.unwrap()).unwrap()
}

/// A code for `token`, minted by graph-sim as `FB.login` would hand it over.
async fn mint_code(token: &str) -> String {
    let res = gloo_net::http::Request::post(&format!("{}/_sim/codes", sim_url()))
        .header("content-type", "application/json")
        .body(format!(r#"{{"token":"{token}"}}"#))
        .unwrap()
        .send()
        .await
        .unwrap();
    let body = js_sys::JSON::parse(&res.text().await.unwrap()).unwrap();
    s(&body, "code").unwrap()
}

#[wasm_bindgen_test]
async fn the_code_flow_exchanges_once_and_reads_with_the_session() {
    let code = mint_code(FINISH).await;
    // Meta's message as the listener hands it over, with a field this version does not read.
    let message = r#"{"data":{"phone_number_id":"110200000000001","waba_id":"102289599326934","business_id":"2729063490586099","timestamp":1698675133},"type":"WA_EMBEDDED_SIGNUP","event":"FINISH","version":3}"#;
    let result = js(&format!(
        r#"{{"outcome":"finished","credential":{{"kind":"code","value":"{code}"}},"event":"FINISH","wabaId":"102289599326934","phoneNumberId":"110200000000001","unknownEvents":[],"sessionMessage":{message}}}"#
    ));
    record_exchange_bodies();
    let window = web_sys::window().unwrap();
    Reflect::set(&window, &"__graphFetches".into(), &0.into()).unwrap();
    let done = JsFuture::from(onboard(&client(None, 10_000), result.clone()))
        .await
        .unwrap();
    // The exchange's answer carried both accounts' statuses: no read of its own.
    assert_eq!(
        Reflect::get(&window, &"__graphFetches".into()).unwrap(),
        JsValue::from(0)
    );
    // The exchange carries the code and Meta's message exactly as received, nothing else.
    assert_eq!(
        exchange_bodies(&code).await,
        [format!(r#"{{"code":"{code}","event":{message}}}"#)]
    );
    // The proxy recorded the signup from that message.
    let records = admin_get("/admin/onboardings?limit=100").await;
    let record = Array::from(&get(&records, "data"))
        .iter()
        .find(|r| s(r, "business_id").as_deref() == Some("2729063490586099"))
        .expect("the exchange's record");
    assert_eq!(
        (
            s(&record, "flow").as_deref(),
            s(&record, "outcome").as_deref(),
            s(&record, "event").as_deref(),
            s(&record, "reported_waba_id").as_deref(),
            s(&record, "phone_number_id").as_deref()
        ),
        (
            Some("code"),
            Some("finished"),
            Some("FINISH"),
            Some("102289599326934"),
            Some("110200000000001")
        )
    );
    let accounts = js_sys::Array::from(&get(&done, "accounts"));
    assert_eq!(accounts.length(), 2);
    let first = get(&accounts.get(0), "waba");
    assert_eq!(s(&first, "id").as_deref(), Some("102289599326934"));
    let session = s(&done, "session").unwrap();
    assert!(session.starts_with("wos_"));
    assert!(
        !js_sys::JSON::stringify(&done)
            .unwrap()
            .as_string()
            .unwrap()
            .contains(FINISH)
    );
    // The session reads its WABAs through the client, and nothing else.
    let c = client(Some(&session), 10_000);
    let own = JsFuture::from(c.waba("101569239400667".into(), Some("id".into())))
        .await
        .unwrap();
    assert_eq!(s(&own, "id").as_deref(), Some("101569239400667"));
    let e = err(c.waba("9007199254740993".into(), Some("id".into()))).await;
    assert_eq!(s(&e, "code").as_deref(), Some("forbidden"));
    // The same code again: refused, with the way out.
    let e = err(onboard(&client(None, 10_000), result)).await;
    assert_eq!(s(&e, "code").as_deref(), Some("bad_request"));
}
