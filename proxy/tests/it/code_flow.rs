//! The code flow, onboarding records and the newly-shared tracker, against a real proxy
//! process with a real SQLite file and graph-sim.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use waba_testkit::harness::temp_database;

const INCOMPLETE: &str = "EAASimBusinessTokenIncomplete0000000000000000002";

fn code_stack(db: &str) -> Stack {
    let args = code_flow_args(db, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    stack(world("demo"), &args)
}

fn finish_event() -> Value {
    json!({"type": "WA_EMBEDDED_SIGNUP", "event": "FINISH", "version": "3",
           "data": {"waba_id": "102289599326934", "phone_number_id": "110200000000001",
                    "business_id": "2729063490586005"}})
}

async fn post(url: &str, token: Option<&str>, body: Value) -> Answer {
    let mut req = client().post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    send(req).await
}

#[tokio::test]
async fn a_code_becomes_a_session_for_exactly_the_granted_wabas() {
    let db = temp_database();
    let s = code_stack(&db.display().to_string());
    let code = s.sim.state.mint_code(FINISH);
    let a = post(
        &s.url("/signup/exchange"),
        None,
        json!({"code": code, "event": finish_event()}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let body = a.json();
    let session = body["session"].as_str().unwrap().to_owned();
    assert!(session.starts_with("wos_") && session.len() > 40);
    assert!(
        !a.text.contains(FINISH),
        "the business token stays in the proxy"
    );
    assert_eq!(body["wabas"], json!(["102289599326934", "101569239400667"]));
    // 1 exchange + 1 debug_token + one read per granted WABA (the status check, shared with
    // the page's own reads for the cache lifetime).
    assert_eq!(
        (
            s.sim.calls("oauth_access_token"),
            s.sim.calls("debug_token"),
            s.sim.calls("waba")
        ),
        (1, 1, 2)
    );
    // The page asks for the same fields as the status check.
    let fields = encode(waba_graph::status::STATUS_FIELDS);
    let mine = get(
        &s.url(&format!("/graph/102289599326934?fields={fields}")),
        Some(&session),
    )
    .await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    assert_eq!(s.sim.calls("waba"), 2, "answered from the shared read");
    // The exchange already answered that: the page needs no second round trip.
    let accounts = body["accounts"].as_array().expect("accounts");
    assert_eq!(accounts.len(), 2);
    assert_eq!(
        accounts[0],
        mine.json(),
        "the exchange answers what the read does"
    );
    assert_eq!(accounts[1]["id"], "101569239400667");
    assert_eq!(
        s.sim.calls("debug_token"),
        1,
        "a session needs no debug_token"
    );
    // A page that comes back with its session gets the same statuses in one call.
    let again = get(&s.url("/signup/accounts"), Some(&session)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json()["wabas"], body["wabas"]);
    assert_eq!(&again.json()["accounts"], &body["accounts"]);
    assert_eq!(s.sim.calls("waba"), 2, "answered from the shared reads");

    // Another onboarding's session cannot read the first one's WABAs, nor the reverse.
    let other_code = s.sim.state.mint_code(BIG_ID);
    let b = post(
        &s.url("/signup/exchange"),
        None,
        json!({"code": other_code}),
    )
    .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text);
    let other = b.json()["session"].as_str().unwrap().to_owned();
    let denied = get(&s.url("/graph/102289599326934?fields=id"), Some(&other)).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let denied = get(&s.url("/graph/9007199254740993?fields=id"), Some(&session)).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    // Session credentials are not admin credentials, and forged ones are refused.
    let list = s.url(&format!(
        "/graph/{PARTNER}/client_whatsapp_business_accounts"
    ));
    assert_eq!(
        get(&list, Some(&session)).await.status,
        StatusCode::FORBIDDEN
    );
    let forged = get(
        &s.url("/graph/102289599326934?fields=id"),
        Some("wos_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    )
    .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert!(forged.error().message.contains("sign up again"));
    // Nothing secret reached the log: not the code, the business token, the session or the
    // app secret.
    let log = s.proxy.output().join("\n");
    assert!(log.contains("answered"), "the log has the requests");
    for secret in [
        code.as_str(),
        FINISH,
        session.as_str(),
        other.as_str(),
        DEMO_APP_SECRET,
    ] {
        assert!(!log.contains(secret), "the log holds a secret");
    }
}

#[tokio::test]
async fn reused_and_unknown_codes_say_click_again_and_are_recorded() {
    let db = temp_database();
    let s = code_stack(&db.display().to_string());
    let code = s.sim.state.mint_code(FINISH);
    let url = s.url("/signup/exchange");
    assert_eq!(
        post(&url, None, json!({"code": code})).await.status,
        StatusCode::OK
    );
    let again = post(&url, None, json!({"code": code})).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(
        again
            .error()
            .message
            .contains("click the signup button again"),
        "{}",
        again.text
    );
    assert_eq!(
        s.sim.calls("oauth_access_token"),
        1,
        "a reused code costs no Graph call"
    );
    // A code Meta no longer accepts (here: one it never issued).
    let unknown = post(&url, None, json!({"code": "AQDneverIssuedCode123"})).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown
            .error()
            .message
            .contains("click the signup button again")
    );
    assert!(!unknown.text.contains(DEMO_APP_SECRET));
    // Bad input: nothing recorded, no Graph call.
    let calls = s.sim.total_calls();
    for body in [
        json!({}),
        json!({"code": ""}),
        json!({"code": "has spaces in it"}),
        json!({"code": "x", "extra": 1}),
    ] {
        let a = post(&url, None, body.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.text);
    }
    assert_eq!(s.sim.total_calls(), calls);
    let records = get(&s.url("/admin/onboardings"), Some(ADMIN)).await;
    assert_eq!(records.status, StatusCode::OK, "{}", records.text);
    let outcomes: Vec<Value> = records.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].clone())
        .collect();
    assert_eq!(outcomes, [json!("code_rejected"), json!("finished")]);
}

#[tokio::test]
async fn the_business_token_is_sealed_on_disk_and_only_the_admin_reads_it() {
    let db = temp_database();
    let s = code_stack(&db.display().to_string());
    let code = s.sim.state.mint_code(FINISH);
    let a = post(&s.url("/signup/exchange"), None, json!({"code": code})).await;
    assert_eq!(a.status, StatusCode::OK);
    let id = a.json()["onboarding_id"].as_i64().unwrap();
    let session = a.json()["session"].as_str().unwrap().to_owned();
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", db.display());
        if let Ok(bytes) = std::fs::read(&path) {
            for secret in [FINISH, session.as_str(), DEMO_APP_SECRET] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{path} holds a secret in clear"
                );
            }
        }
    }
    let url = s.url(&format!("/admin/onboardings/{id}"));
    let admin = get(&url, Some(ADMIN)).await;
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.text);
    assert_eq!(admin.json()["business_token"], FINISH);
    assert_eq!(
        admin.json()["wabas"],
        json!(["102289599326934", "101569239400667"])
    );
    assert_eq!(get(&url, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(&url, Some(&session)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(get(&url, Some(FINISH)).await.status, StatusCode::FORBIDDEN);
    for route in [
        "/admin/onboardings",
        "/admin/follow-ups",
        "/admin/tracker/events",
    ] {
        assert_eq!(
            get(&s.url(route), Some(&session)).await.status,
            StatusCode::FORBIDDEN,
            "{route}"
        );
    }
    let list = get(&s.url("/admin/onboardings"), Some(ADMIN)).await;
    assert!(!list.text.contains(FINISH), "the list never carries tokens");
    assert_eq!(
        get(&s.url("/admin/onboardings/999"), Some(ADMIN))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn kill_9_then_restart_keeps_every_answered_record_and_session() {
    let db = temp_database();
    let dbs = db.display().to_string();
    let mut s = code_stack(&dbs);
    let code = s.sim.state.mint_code(FINISH);
    let a = post(&s.url("/signup/exchange"), None, json!({"code": code})).await;
    assert_eq!(a.status, StatusCode::OK);
    let session = a.json()["session"].as_str().unwrap().to_owned();
    let report = post(
        &s.url("/signup/events"),
        None,
        json!({"event": {"type": "WA_EMBEDDED_SIGNUP", "event": "CANCEL",
                         "data": {"current_step": "PHONE_NUMBER_VERIFICATION"}}}),
    )
    .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.text);
    let killed = std::process::Command::new("kill")
        .args(["-9", &s.proxy.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    s.proxy.stop();
    let args = code_flow_args(&dbs, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let proxy = proxy_for(&s.sim.url, &args);
    let url = |p: &str| format!("{}{p}", proxy.url);
    let records = get(&url("/admin/onboardings"), Some(ADMIN)).await;
    assert_eq!(records.json()["data"].as_array().unwrap().len(), 2);
    let read = get(&url("/graph/102289599326934?fields=id"), Some(&session)).await;
    assert_eq!(
        read.status,
        StatusCode::OK,
        "the session survived: {}",
        read.text
    );
}

#[tokio::test]
async fn reports_become_records_with_follow_ups() {
    let db = temp_database();
    let s = code_stack(&db.display().to_string());
    let url = s.url("/signup/events");
    // Left at phone verification after sharing: the WABA's phone is not verified.
    let a = post(
        &url,
        Some(INCOMPLETE),
        json!({"event": {"type": "WA_EMBEDDED_SIGNUP", "event": "CANCEL",
                         "data": {"current_step": "PHONE_NUMBER_VERIFICATION"}}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json()["follow_ups"][0]["waba_id"], "104996122399160");
    // A reported error with nothing shared, no credential: recorded from the event alone.
    let calls = s.sim.total_calls();
    let b = post(
        &url,
        None,
        json!({"event": {"type": "WA_EMBEDDED_SIGNUP", "event": "CANCEL",
                         "data": {"error_message": "Your verification code is incorrect.",
                                  "error_id": "524126", "session_id": "f34b51dab5e0498"}}}),
    )
    .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text);
    assert_eq!(
        s.sim.total_calls(),
        calls,
        "no Graph call without a credential"
    );
    assert_eq!(b.json()["follow_ups"][0]["reason"], "reported_error");
    // A finished signup with a ready phone leaves nothing to do.
    let c = post(&url, Some(FINISH), json!({"event": finish_event()})).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    let f = get(&s.url("/admin/follow-ups"), Some(ADMIN)).await;
    assert_eq!(f.status, StatusCode::OK, "{}", f.text);
    let data = f.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 2, "{}", f.text);
    assert_eq!(data[0]["outcome"], "error");
    assert_eq!(data[0]["error_id"], "524126");
    assert_eq!(data[1]["current_step"], "PHONE_NUMBER_VERIFICATION");
    let reason = data[1]["follow_ups"][0]["reason"].as_str().unwrap();
    assert!(
        ["certificate_not_ready", "left_at_step"].contains(&reason),
        "{reason}"
    );
    assert!(
        !data[1]["follow_ups"][0]["action"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    // Garbage is refused and not recorded.
    let bad = post(&url, None, json!({"event": {"type": "SOMETHING_ELSE"}})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let all = get(&s.url("/admin/onboardings"), Some(ADMIN)).await;
    assert_eq!(all.json()["data"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_tracker_finds_an_old_waba_shared_today_and_one_unshared() {
    let db = temp_database();
    let s = code_stack(&db.display().to_string());
    let pass = s.url("/admin/tracker/pass");
    let first = post(&pass, Some(ADMIN), json!({})).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.json()["baseline"], true);
    // Between two passes: an owned WABA created long ago is shared, another unshared.
    s.sim.state.share(PARTNER, "1906385232743451");
    s.sim.state.unshare(PARTNER, "106540352242922");
    let second = post(&pass, Some(ADMIN), json!({})).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    assert_eq!(second.json()["shared"], json!(["1906385232743451"]));
    assert_eq!(second.json()["unshared"], json!(["106540352242922"]));
    let events = get(&s.url("/admin/tracker/events?after=0"), Some(ADMIN)).await;
    let data = events.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["kind"], "shared");
    assert_eq!(data[1]["kind"], "unshared");
    let after = events.json()["next_after"].as_i64().unwrap();
    let none = get(
        &s.url(&format!("/admin/tracker/events?after={after}")),
        Some(ADMIN),
    )
    .await;
    assert_eq!(none.json()["data"], json!([]));
    // Nothing changed: no new events.
    let third = post(&pass, Some(ADMIN), json!({})).await;
    assert_eq!(third.json()["shared"], json!([]));
    assert_eq!(third.json()["unshared"], json!([]));
    // Not for non-admins.
    assert_eq!(
        post(&pass, Some(FINISH), json!({})).await.status,
        StatusCode::FORBIDDEN
    );
    // Throttled by Meta: the pass fails with 429 and the gate stops the next one at once.
    s.sim.state.add_faults(vec![
        serde_json::from_value(json!({"route": "client_wabas", "times": 1,
            "action": {"kind": "throttle", "code": 80008, "minutes": 5}}))
        .unwrap(),
    ]);
    let throttled = post(&pass, Some(ADMIN), json!({})).await;
    assert_eq!(
        throttled.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        throttled.text
    );
    let before = s.sim.calls("client_wabas");
    let gated = post(&pass, Some(ADMIN), json!({})).await;
    assert_eq!(gated.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(s.sim.calls("client_wabas"), before, "the gate held");
}

#[tokio::test]
async fn an_expired_code_says_click_again() {
    let db = temp_database();
    let world = world("demo");
    let args = code_flow_args(&db.display().to_string(), &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = stack_with_code_ttl(world, &args, std::time::Duration::from_secs(1));
    let code = s.sim.state.mint_code(FINISH);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let a = post(&s.url("/signup/exchange"), None, json!({"code": code})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert!(a.error().message.contains("expired"), "{}", a.text);
    assert!(a.error().message.contains("click the signup button again"));
    assert!(!a.text.contains(&code), "the code is not echoed");
    let f = get(&s.url("/admin/follow-ups"), Some(ADMIN)).await;
    assert_eq!(
        f.json()["data"][0]["follow_ups"][0]["reason"],
        "code_rejected"
    );
}

#[tokio::test]
async fn tracker_passes_never_overlap_and_its_state_survives_a_restart() {
    let db = temp_database();
    let dbs = db.display().to_string();
    let mut s = code_stack(&dbs);
    let pass = s.url("/admin/tracker/pass");
    assert_eq!(
        post(&pass, Some(ADMIN), json!({})).await.json()["baseline"],
        true
    );
    // Two passes at once while Graph is slow: one runs, the other is told to wait.
    s.sim
        .state
        .set_latency(std::time::Duration::from_millis(400));
    let (a, b) = tokio::join!(
        post(&pass, Some(ADMIN), json!({})),
        post(&pass, Some(ADMIN), json!({}))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
    s.sim.state.set_latency(std::time::Duration::ZERO);
    s.sim.state.unshare(PARTNER, "106540352242922");
    let diff = post(&pass, Some(ADMIN), json!({})).await;
    assert_eq!(diff.json()["unshared"], json!(["106540352242922"]));
    // A restarted proxy keeps the set and the events: nothing is reported twice.
    s.proxy.stop();
    let args = code_flow_args(&dbs, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let proxy = proxy_for(&s.sim.url, &args);
    let again = post(
        &format!("{}/admin/tracker/pass", proxy.url),
        Some(ADMIN),
        json!({}),
    )
    .await;
    assert_eq!(again.json()["baseline"], false);
    assert_eq!(again.json()["unshared"], json!([]));
    assert_eq!(again.json()["shared"], json!([]));
    let events = get(&format!("{}/admin/tracker/events", proxy.url), Some(ADMIN)).await;
    assert_eq!(events.json()["data"].as_array().unwrap().len(), 1);
}

/// A WhatsApp Business app onboarding (coexistence) brings the app's number onto the WABA, so
/// a shared WABA without a phone needs a follow-up, as on the page; only `FINISH_ONLY_WABA`
/// shares a WABA without one. Both sides read the rule from `waba_graph::signup`.
#[tokio::test]
async fn the_coexistence_finish_expects_a_phone_like_the_page() {
    let db = temp_database();
    let s = code_stack(&db.display().to_string());
    let url = s.url("/signup/events");
    let report = |event: &'static str| {
        let url = url.clone();
        async move {
            let a = post(
                &url,
                Some(BIG_ID),
                json!({"event": {"type": "WA_EMBEDDED_SIGNUP", "event": event,
                                 "data": {"waba_id": "9007199254740993", "business_id": "2"}}}),
            )
            .await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
            a.json()["follow_ups"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        }
    };
    let coexistence = report("FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING").await;
    assert_eq!(coexistence.len(), 1, "{coexistence:?}");
    assert_eq!(coexistence[0]["waba_id"], "107700000000001");
    assert_eq!(coexistence[0]["reason"], "no_phone_number");
    let only_waba = report("FINISH_ONLY_WABA").await;
    assert!(only_waba.is_empty(), "{only_waba:?}");
}

/// When Meta throttles the code exchange it has not used the code: the 429 invites a retry,
/// and the retry with the same code succeeds instead of being refused as "already used".
#[tokio::test]
async fn a_throttled_exchange_leaves_the_code_usable() {
    let db = temp_database();
    let s = code_stack(&db.display().to_string());
    let throttle: waba_testkit::sim::faults::Fault = serde_json::from_value(json!({
        "route": "oauth_access_token", "times": 1,
        "action": {"kind": "throttle", "code": 80008, "status": 403}
    }))
    .unwrap();
    s.sim.state.add_faults(vec![throttle]);
    let code = s.sim.state.mint_code(FINISH);
    let first = post(&s.url("/signup/exchange"), None, json!({"code": code})).await;
    assert_eq!(
        first.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        first.text
    );
    let again = post(&s.url("/signup/exchange"), None, json!({"code": code})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert!(
        again.json()["session"]
            .as_str()
            .is_some_and(|c| c.starts_with("wos_"))
    );
}

/// A wrong `--app-secret` is a configuration error: the exchange answers 500 without inviting
/// a retry (Graph's "Error validating client secret." carries code 1, its generic temporary
/// code), `/readyz` says what to fix, the log says it once without the secret, and the code
/// is not spent: the mended proxy exchanges it.
#[tokio::test]
async fn a_wrong_app_secret_is_a_configuration_error() {
    const WRONG: &str = "not-the-app-secret-4e7b1c2d";
    let db = temp_database();
    let db = db.display().to_string();
    let args = with_database(
        &[
            "--app-id",
            APP_ID,
            "--app-secret",
            WRONG,
            "--token-key",
            TOKEN_KEY,
        ],
        &db,
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut s = stack(world("demo"), &args);
    let code = s.sim.state.mint_code(FINISH);
    let a = post(&s.url("/signup/exchange"), None, json!({"code": code})).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", a.text);
    assert!(!a.headers.contains_key("retry-after"));
    let e = a.error();
    assert_eq!(e.error_type, "WabaProxyError");
    assert!(e.message.contains("app secret"), "{}", e.message);
    assert_ne!(e.is_transient, Some(true));

    let ready = get(&s.url("/readyz"), None).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert!(
        ready.json()["reason"]
            .as_str()
            .is_some_and(|r| r.contains("--app-secret")),
        "{}",
        ready.text
    );
    s.proxy.stop();
    let log = s.proxy.output().join("\n");
    assert!(!log.contains(WRONG), "the secret reached the log");
    assert_eq!(
        log.matches("Meta rejected the app id or app secret")
            .count(),
        1,
        "{log}"
    );

    let fixed_args = code_flow_args(&db, &[]);
    let fixed_args: Vec<&str> = fixed_args.iter().map(String::as_str).collect();
    let fixed = proxy_for(&s.sim.url, &fixed_args);
    let again = post(
        &format!("{}/signup/exchange", fixed.url),
        None,
        json!({"code": code}),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    let ready = get(&format!("{}/readyz", fixed.url), None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
}

/// Graph's `expires_in` is used with checked arithmetic and clamped: `i64::MAX` panicked on
/// overflow (debug) or wrapped into the past (release), and a non-integer lost the token.
#[tokio::test]
async fn an_absurd_expires_in_is_clamped() {
    let db = temp_database();
    let s = code_stack(&db.display().to_string());
    for (i, value) in [json!(i64::MAX), json!(1e300), json!("later")]
        .into_iter()
        .enumerate()
    {
        let fault: waba_testkit::sim::faults::Fault = serde_json::from_value(json!({
            "route": "oauth_access_token", "times": 1,
            "action": {"kind": "fields", "set": {"expires_in": value}}
        }))
        .unwrap();
        s.sim.state.add_faults(vec![fault]);
        let code = s.sim.state.mint_code(FINISH);
        let a = post(&s.url("/signup/exchange"), None, json!({"code": code})).await;
        assert_eq!(a.status, StatusCode::OK, "{value}: {}", a.text);
        let id = a.json()["onboarding_id"].as_i64().unwrap();
        let record = get(&s.url(&format!("/admin/onboardings/{id}")), Some(ADMIN)).await;
        let expires = record.json()["business_token_expires_at"].clone();
        let now = waba_testkit::sim::state::now_unix();
        let longest = waba_proxy::onboarding::MAX_TOKEN_LIFETIME_SECS;
        match i {
            2 => assert!(expires.is_null(), "{i}: {}", record.text),
            _ => {
                let at = expires.as_i64().unwrap();
                assert!(
                    (now + longest - 60..=now + longest + 60).contains(&at),
                    "{i}: {at}"
                );
            }
        }
    }
}

/// Made-up tokens that spend the global allowance of token checks do not block real signups:
/// code exchanges have a global allowance of their own.
#[tokio::test]
async fn made_up_tokens_cannot_block_real_signups() {
    let db = temp_database();
    let args = code_flow_args(&db.display().to_string(), &[]);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend([
        "--debug-token-per-minute",
        "100",
        "--debug-token-global-per-minute",
        "3",
    ]);
    let s = stack(world("demo"), &args);
    let mut statuses = Vec::new();
    for i in 0..6 {
        let token = format!("EAAMadeUp{i:040}");
        statuses.push(
            get(&s.url("/graph/102289599326934"), Some(&token))
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429]);
    let code = s.sim.state.mint_code(FINISH);
    let a = post(&s.url("/signup/exchange"), None, json!({"code": code})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

/// An exchange cut off mid-way (the client goes away while Graph is slow, so the proxy drops
/// the request) gives its code back: the retry is not refused as "already used" by the
/// proxy's own claim.
#[tokio::test]
async fn an_exchange_cut_off_mid_way_gives_the_code_back() {
    use tokio::io::AsyncWriteExt;
    let db = temp_database();
    let s = code_stack(&db.display().to_string());
    let slow: waba_testkit::sim::faults::Fault = serde_json::from_value(json!({
        "route": "oauth_access_token", "times": 1,
        "action": {"kind": "latency", "ms": 1500}
    }))
    .unwrap();
    s.sim.state.add_faults(vec![slow]);
    let code = s.sim.state.mint_code(FINISH);
    let body = json!({"code": code}).to_string();
    let mut stream = tokio::net::TcpStream::connect(s.proxy.url.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(
            format!(
                "POST /signup/exchange HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // The proxy has claimed the code and waits on Graph; the client goes away.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    drop(stream);
    // Let the slow call end on graph-sim's side, whatever it did with the code.
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    let again = post(&s.url("/signup/exchange"), None, json!({"code": code})).await;
    assert!(
        !again.text.contains("this signup code was already used"),
        "the proxy kept the code claimed: {}",
        again.text
    );
}

/// A client WABA the partner's System User is not assigned to: Graph answers code 200, and
/// the proxy says exactly that and what to do, in the error of a read and in the follow-up of
/// the onboarding that granted it.
#[tokio::test]
async fn an_unassigned_system_user_is_named_in_the_error_and_the_follow_up() {
    let mut w = world("demo");
    for waba in &mut w.scenario.wabas {
        if waba.id == "101569239400667" {
            waba.fields
                .insert("system_user_assigned".into(), json!(false));
        }
    }
    let db = temp_database();
    let args = code_flow_args(&db.display().to_string(), &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = stack(w, &args);
    let read = get(&s.url("/graph/101569239400667"), Some(ADMIN)).await;
    assert_eq!(read.status, StatusCode::FORBIDDEN, "{}", read.text);
    let e = read.error();
    assert_eq!((e.error_type.as_str(), e.code), ("WabaProxyError", 200));
    assert!(e.message.contains("assigned_users"), "{}", e.message);

    let code = s.sim.state.mint_code(FINISH);
    let a = post(&s.url("/signup/exchange"), None, json!({"code": code})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let id = a.json()["onboarding_id"].as_i64().unwrap();
    let record = get(&s.url(&format!("/admin/onboardings/{id}")), Some(ADMIN)).await;
    let follow_ups = record.json()["follow_ups"].clone();
    let assign: Vec<&Value> = follow_ups
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["reason"] == "assign_system_user")
        .collect();
    assert_eq!(assign.len(), 1, "{follow_ups}");
    assert_eq!(assign[0]["waba_id"], "101569239400667");
    assert!(
        assign[0]["action"]
            .as_str()
            .is_some_and(|a| a.contains("assigned_users")),
        "{follow_ups}"
    );
}

/// Meta's full-page dialog (no popup): the exchange names the page the dialog returned to,
/// as Meta requires of that flow; another address is refused by Meta.
#[tokio::test]
async fn a_code_from_the_full_page_dialog_is_exchanged_with_its_redirect_uri() {
    let db = temp_database();
    let s = code_stack(&db.display().to_string());
    let back = "http://partner.test/signup.html";
    let code = s.sim.state.mint_code_for(FINISH, Some(back.to_owned()));
    let url = s.url("/signup/exchange");
    let a = post(&url, None, json!({"code": code, "redirect_uri": back})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json()["accounts"].as_array().map(Vec::len), Some(2));
    let other = s.sim.state.mint_code_for(FINISH, Some(back.to_owned()));
    let wrong = post(
        &url,
        None,
        json!({"code": other, "redirect_uri": "http://partner.test/elsewhere"}),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text);
    assert!(wrong.text.contains("redirect_uri"), "{}", wrong.text);
    // The code was not spent: named with its own address it still works.
    let again = post(&url, None, json!({"code": other, "redirect_uri": back})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    for bad in [
        "javascript:alert(1)",
        "http://partner.test/#frag",
        "http://a b/",
    ] {
        let code = s.sim.state.mint_code_for(FINISH, Some(back.to_owned()));
        let a = post(&url, None, json!({"code": code, "redirect_uri": bad})).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
        assert!(a.text.contains("redirect_uri"), "{}", a.text);
    }
}

/// A business that logged in nowhere on the full-page dialog is recorded from Meta's words on
/// the page it returned to.
#[tokio::test]
async fn the_full_page_dialogs_refusal_is_recorded() {
    let db = temp_database();
    let s = code_stack(&db.display().to_string());
    let url = s.url("/signup/events");
    let refusal = json!({"error": "access_denied", "error_code": "200",
        "error_description": "Permissions error.", "error_reason": "user_denied"});
    let a = post(&url, None, json!({"flow": "code", "dialog_error": refusal})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let id = a.json()["onboarding_id"].as_i64().unwrap();
    let record = get(&s.url(&format!("/admin/onboardings/{id}")), Some(ADMIN)).await;
    let r = record.json();
    assert_eq!(
        (&r["outcome"], &r["event"], &r["error_message"], &r["flow"]),
        (
            &json!("cancelled"),
            &json!("access_denied"),
            &json!("Permissions error."),
            &json!("code")
        ),
        "{r}"
    );
    // One of the two, never both; nothing with a credential; bounded.
    let both = json!({"event": finish_event(), "dialog_error": refusal});
    assert_eq!(post(&url, None, both).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        post(&url, None, json!({"flow": "code"})).await.status,
        StatusCode::BAD_REQUEST
    );
    let with_token = post(&url, Some(FINISH), json!({"dialog_error": refusal})).await;
    assert_eq!(with_token.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        post(&url, None, json!({"dialog_error": {"error": ""}}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    // Meta words the description in the person's language: a long one is kept, cut at a
    // character boundary.
    let long = json!({"dialog_error": {"error": "access_denied", "error_reason": "user_denied",
        "error_description": "é".repeat(200)}});
    let a = post(&url, None, long).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let id = a.json()["onboarding_id"].as_i64().unwrap();
    let r = get(&s.url(&format!("/admin/onboardings/{id}")), Some(ADMIN))
        .await
        .json();
    assert_eq!(r["error_message"].as_str().map(str::len), Some(256));
}
