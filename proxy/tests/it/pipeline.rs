//! The partner's post-signup pipeline against a real proxy process, a real SQLite file and
//! graph-sim's writes: subscribe, register with a PIN, Meta's refusals, kill -9 mid-step,
//! revocation, offboarding, discovery by webhook, coexistence, the admin routes, secrets.

// Test code: an unwrap that fails is a failed test.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use waba_testkit::harness::temp_database;

pub(crate) const MULTI: &str = "EAASimBusinessTokenMultiWaba00000000000000000008";
const PIN_MISMATCH: &str = "EAASimBusinessTokenPinMismatch0000000000000000011";
const REGISTER_LIMIT: &str = "EAASimBusinessTokenRegisterLimit00000000000000012";
const UNVERIFIED: &str = "EAASimBusinessTokenUnverified00000000000000000013";
const COEXISTENCE: &str = "EAASimBusinessTokenCoexistence0000000000000000010";
const WAIT: Duration = Duration::from_secs(20);

pub(crate) fn args(db: &str, extra: &[&str]) -> Vec<String> {
    let mut flags = vec![
        "--pipeline-interval-ms",
        "100",
        "--discovery-grace-secs",
        "0",
    ];
    flags.extend_from_slice(extra);
    code_flow_args(db, &flags)
}

pub(crate) fn pipeline_stack(db: &str, extra: &[&str]) -> Stack {
    let args = args(db, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = stack(world("demo"), &args);
    s.sim
        .state
        .set_webhook_url(Some(format!("{}/webhooks/meta", s.proxy.url)));
    s
}

pub(crate) fn event(name: &str, data: Value) -> Value {
    json!({"type": "WA_EMBEDDED_SIGNUP", "event": name, "version": "3", "data": data})
}

/// A signup that finished with `data`; the onboarding id.
pub(crate) async fn finish(s: &Stack, token: &str, data: Value) -> i64 {
    sign_up(s, token, event("FINISH", data)).await
}

/// Exchanges a code for `token` with `event`; the onboarding id.
async fn sign_up(s: &Stack, token: &str, event: Value) -> i64 {
    let code = s.sim.state.mint_code(token);
    let a = send(
        client()
            .post(s.url("/signup/exchange"))
            .json(&json!({"code": code, "event": event})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json()["onboarding_id"].as_i64().unwrap()
}

/// The multi-WABA signup finished: two WABAs, a number on the first.
async fn finish_multi(s: &Stack) -> i64 {
    finish(
        s,
        MULTI,
        json!({"waba_ids": ["109900000000001", "109900000000002"],
               "phone_number_id": "110200000000010", "business_id": "2729063490586009"}),
    )
    .await
}

async fn record(s: &Stack, id: i64) -> Value {
    let a = get(&s.url(&format!("/admin/onboardings/{id}")), Some(ADMIN)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json()
}

/// The record once `done` says its steps are where the test wants them.
async fn record_when(s: &Stack, id: i64, done: impl Fn(&[Value]) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = record(s, id).await;
        if done(r["steps"].as_array().unwrap()) {
            return r;
        }
        assert!(Instant::now() < deadline, "steps never got there: {r:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn settled(steps: &[Value]) -> bool {
    !steps.is_empty()
        && steps
            .iter()
            .all(|s| matches!(s["state"].as_str(), Some("done" | "skipped" | "failed")))
}

fn step<'a>(steps: &'a [Value], kind: &str, about: &str) -> &'a Value {
    steps
        .iter()
        .find(|s| {
            s["kind"] == kind && (s["waba_id"] == about || s["phone_id"].as_str() == Some(about))
        })
        .unwrap_or_else(|| panic!("no {kind} step for {about}: {steps:#?}"))
}

async fn phone_status(s: &Stack, phone: &str) -> String {
    let a = get(
        &format!("{}/v26.0/{phone}?fields=status", s.sim.url),
        Some(DEMO_SYSTEM),
    )
    .await;
    a.json()["status"].as_str().unwrap_or_default().to_owned()
}

async fn writes(s: &Stack) -> Vec<Value> {
    let a = get(&s.url("/admin/writes?limit=500"), Some(ADMIN)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json()["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_finished_signup_is_subscribed_and_registered_until_ready_to_message() {
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), &[]);
    let id = finish_multi(&s).await;
    let r = record_when(&s, id, settled).await;
    let steps = r["steps"].as_array().unwrap();
    for waba in ["109900000000001", "109900000000002"] {
        let sub = step(steps, "subscribe", waba);
        assert_eq!(sub["state"], "done", "{sub:#}");
        assert_eq!(sub["token"], "business", "Meta's guide: the business token");
        assert!(s.sim.state.is_subscribed(waba));
    }
    let reg = step(steps, "register", "110200000000010");
    assert_eq!(reg["state"], "done", "{reg:#}");
    assert_eq!(reg["token"], "business");
    assert_eq!(reg["text"], "+44 20 5550 0110: ready to message");
    let connected = step(steps, "register", "110200000000011");
    assert_eq!(connected["state"], "skipped", "already CONNECTED");
    assert_eq!(phone_status(&s, "110200000000010").await, "CONNECTED");
    assert_eq!(s.sim.calls("register"), 1);
    // No follow-up for people: the pipeline did the registering.
    assert_eq!(r["needs_follow_up"], false, "{r:#}");

    // The PIN: six digits, shown to the admin only, used for the registration.
    let pins = r["pins"].as_array().unwrap();
    assert_eq!(pins.len(), 1, "{pins:?}");
    let pin = pins[0]["pin"].as_str().unwrap().to_owned();
    assert!(pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(
        s.sim
            .state
            .phone_runtime("110200000000010")
            .and_then(|p| p.pin)
            .as_deref(),
        Some(pin.as_str()),
        "registered with the PIN the admin sees"
    );

    // Every write is in the audit trail, without the PIN or the business token.
    let audit = writes(&s).await;
    let paths: Vec<(&str, &str, &str)> = audit
        .iter()
        .map(|w| {
            (
                w["method"].as_str().unwrap(),
                w["path"].as_str().unwrap(),
                w["token"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(audit.len(), 3, "{audit:#?}");
    for expected in [
        ("POST", "109900000000001/subscribed_apps", "business"),
        ("POST", "109900000000002/subscribed_apps", "business"),
        ("POST", "110200000000010/register", "business"),
    ] {
        assert!(paths.contains(&expected), "{paths:?}");
    }
    let everything = format!("{audit:?}{}", s.proxy.output().join("\n"));
    assert!(!everything.contains(&pin), "the PIN leaked");
    assert!(!everything.contains(MULTI), "the business token leaked");
    let file = std::fs::read(&db).unwrap();
    let wal = std::fs::read(format!("{}-wal", db.display())).unwrap_or_default();
    for bytes in [&file, &wal] {
        // The PIN as a value of its own (not inside a longer run of digits such as an id).
        let alone = bytes.windows(8).any(|w| {
            &w[1..7] == pin.as_bytes() && !w[0].is_ascii_digit() && !w[7].is_ascii_digit()
        });
        assert!(!alone, "the PIN is in the database file in clear");
        assert!(!bytes.windows(MULTI.len()).any(|w| w == MULTI.as_bytes()));
    }
}

#[tokio::test]
async fn meta_s_register_refusals_reach_the_right_state_and_who_acts() {
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), &[]);
    let data = |waba: &str, phone: &str| json!({"waba_id": waba, "phone_number_id": phone});
    let mismatch = finish(&s, PIN_MISMATCH, data("109900000000004", "110200000000013")).await;
    let limit = finish(
        &s,
        REGISTER_LIMIT,
        data("109900000000005", "110200000000014"),
    )
    .await;
    let unverified = finish(&s, UNVERIFIED, data("109900000000006", "110200000000015")).await;

    let r = record_when(&s, mismatch, settled).await;
    let reg = step(
        r["steps"].as_array().unwrap(),
        "register",
        "110200000000013",
    );
    assert_eq!(
        (&reg["state"], &reg["error_code"], &reg["actor"]),
        (&json!("failed"), &json!(133005), &json!("business")),
        "{reg:#}"
    );
    assert!(
        reg["next_attempt_at"].is_null(),
        "waits for people: {reg:#}"
    );
    assert_eq!(r["needs_follow_up"], true);
    // The business tells the partner its PIN; the admin sets it and retries.
    let set = send(
        client()
            .put(s.url("/admin/phones/110200000000013/pin"))
            .bearer_auth(ADMIN)
            .json(&json!({"pin": "424242"})),
    )
    .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{}", set.text);
    let retry = send(
        client()
            .post(s.url(&format!("/admin/steps/{}/retry", reg["id"])))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text);
    let r = record_when(&s, mismatch, |steps| {
        step(steps, "register", "110200000000013")["state"] == "done"
    })
    .await;
    assert_eq!(r["needs_follow_up"], false);
    assert_eq!(phone_status(&s, "110200000000013").await, "CONNECTED");
    let again = send(
        client()
            .post(s.url(&format!("/admin/steps/{}/retry", reg["id"])))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(
        again.status,
        StatusCode::CONFLICT,
        "a done step is not retried"
    );

    let r = record_when(&s, limit, settled).await;
    let reg = step(
        r["steps"].as_array().unwrap(),
        "register",
        "110200000000014",
    );
    assert_eq!(
        (&reg["state"], &reg["error_code"], &reg["actor"]),
        (&json!("failed"), &json!(133016), &json!("meta")),
        "{reg:#}"
    );
    let wait = reg["next_attempt_at"].as_i64().unwrap() - reg["updated_at"].as_i64().unwrap();
    assert!(
        (72 * 3600 - 5..=72 * 3600 + 5).contains(&wait),
        "the next attempt waits Meta's 72 hours: {wait}"
    );

    let r = record_when(&s, unverified, settled).await;
    let reg = step(
        r["steps"].as_array().unwrap(),
        "register",
        "110200000000015",
    );
    assert_eq!(
        (&reg["state"], &reg["actor"]),
        (&json!("failed"), &json!("business")),
        "{reg:#}"
    );
    assert!(reg["message"].as_str().unwrap().contains("not verified"));
    // The status was read first: no register attempt was spent on an unverified number.
    let audit = writes(&s).await;
    assert!(
        !audit
            .iter()
            .any(|w| w["path"] == "110200000000015/register"),
        "{audit:#?}"
    );
}

#[tokio::test]
async fn a_kill_mid_register_resumes_after_restart_without_a_blind_repeat() {
    let db = temp_database();
    let db = db.display().to_string();
    let extra = [
        "--request-timeout-ms",
        "1500",
        "--register-max-attempts",
        "3",
    ];
    let mut s = pipeline_stack(&db, &extra);
    // Registrations hang: the proxy is killed while one is in flight.
    s.sim.state.add_faults(vec![
        serde_json::from_value(json!({"route": "register", "times": 1,
            "action": {"kind": "latency", "ms": 5000}}))
        .unwrap(),
    ]);
    let id = finish(
        &s,
        MULTI,
        json!({"waba_ids": ["109900000000001", "109900000000002"]}),
    )
    .await;
    let deadline = Instant::now() + WAIT;
    while s.sim.calls("register") == 0 {
        assert!(Instant::now() < deadline, "the register call never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.proxy.stop();
    let args = args(&db, &extra);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    s.proxy = proxy_for(&s.sim.url, &argv);
    let r = record_when(&s, id, settled).await;
    let steps = r["steps"].as_array().unwrap();
    let reg = step(steps, "register", "110200000000010");
    assert_eq!(reg["state"], "done", "{reg:#}");
    assert_eq!(phone_status(&s, "110200000000010").await, "CONNECTED");
    assert!(
        (1..=3).contains(&s.sim.calls("register")),
        "within the configured attempts: {}",
        s.sim.calls("register")
    );
    // Each step ended done once: one `done` change per step on the stream's record.
    let done_steps = steps.iter().filter(|s| s["state"] == "done").count();
    assert_eq!(done_steps, 3, "{steps:#?}");
}

#[tokio::test]
async fn two_proxies_on_one_database_run_each_step_once() {
    let db = temp_database();
    each_step_once(&db.display().to_string(), &[], 2).await;
}

#[tokio::test]
async fn three_replicas_on_one_postgresql_run_each_step_once() {
    let Some(db) = waba_testkit::postgres::fresh_database().await else {
        return;
    };
    let ca = waba_testkit::postgres::ca_file()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    each_step_once(&db, &["--database-ca-file", &ca], 3).await;
}

/// `replicas` proxies on `db`, two signups: every write of their steps is made once.
async fn each_step_once(db: &str, extra: &[&str], replicas: usize) {
    let s = pipeline_stack(db, extra);
    let args = args(db, extra);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let _others: Vec<_> = (1..replicas)
        .map(|_| proxy_for(&s.sim.url, &argv))
        .collect();
    let mut ids = Vec::new();
    for (token, waba, phone) in [
        (MULTI, "109900000000001", "110200000000010"),
        (PIN_MISMATCH, "109900000000004", "110200000000013"),
    ] {
        ids.push(
            finish(
                &s,
                token,
                json!({"waba_id": waba, "phone_number_id": phone}),
            )
            .await,
        );
    }
    for id in ids {
        record_when(&s, id, settled).await;
    }
    assert_eq!(s.sim.calls("register"), 2, "one attempt per number");
    // Each write once, whichever proxy made it: the granted WABAs' subscriptions and the
    // two registrations.
    let audit = writes(&s).await;
    let mut paths: Vec<&str> = audit.iter().map(|w| w["path"].as_str().unwrap()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "109900000000001/subscribed_apps",
            "109900000000002/subscribed_apps",
            "109900000000004/subscribed_apps",
            "110200000000010/register",
            "110200000000013/register",
        ],
        "{audit:#?}"
    );
}

#[tokio::test]
async fn a_removed_partner_stops_the_steps_and_an_offboarding_undoes_them() {
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), &[]);
    let unverified = finish(
        &s,
        UNVERIFIED,
        json!({"waba_id": "109900000000006", "phone_number_id": "110200000000015"}),
    )
    .await;
    record_when(&s, unverified, settled).await;
    let sent = send(
        client()
            .post(format!("{}/_sim/webhooks/send", s.sim.url))
            .json(&json!({"kind": "removed", "waba_id": "109900000000006"})),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    let r = record_when(&s, unverified, |steps| {
        step(steps, "register", "110200000000015")["state"] == "skipped"
    })
    .await;
    assert!(r["revoked_at"].is_i64());
    let reg = step(
        r["steps"].as_array().unwrap(),
        "register",
        "110200000000015",
    );
    assert!(
        reg["message"].as_str().unwrap().contains("PARTNER_REMOVED"),
        "{reg:#}"
    );
    let retry = send(
        client()
            .post(s.url(&format!("/admin/steps/{}/retry", reg["id"])))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(retry.status, StatusCode::CONFLICT, "{}", retry.text);
    let off = send(
        client()
            .post(s.url(&format!("/admin/onboardings/{unverified}/offboard")))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(
        off.status,
        StatusCode::CONFLICT,
        "nothing to offboard: {}",
        off.text
    );

    // A deliberate offboarding: the app leaves the WABA, the registered number is deregistered.
    let id = finish(&s, MULTI, json!({"waba_ids": ["109900000000001"]})).await;
    record_when(&s, id, settled).await;
    assert_eq!(phone_status(&s, "110200000000010").await, "CONNECTED");
    let off = send(
        client()
            .post(s.url(&format!("/admin/onboardings/{id}/offboard")))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(off.status, StatusCode::ACCEPTED, "{}", off.text);
    let r = record_when(&s, id, |steps| {
        steps.iter().any(|s| s["kind"] == "deregister") && settled(steps)
    })
    .await;
    assert!(r["offboarded_at"].is_i64(), "{r:#}");
    let steps = r["steps"].as_array().unwrap();
    assert_eq!(
        step(steps, "unsubscribe", "109900000000001")["state"],
        "done"
    );
    assert_eq!(
        step(steps, "deregister", "110200000000010")["state"],
        "done"
    );
    assert!(!s.sim.state.is_subscribed("109900000000001"));
    assert_ne!(phone_status(&s, "110200000000010").await, "CONNECTED");
    assert!(
        writes(&s)
            .await
            .iter()
            .any(|w| w["method"] == "DELETE" && w["path"] == "109900000000001/subscribed_apps")
    );
}

#[tokio::test]
async fn a_share_announced_by_webhook_is_onboarded_with_the_system_user() {
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), &[]);
    let sent = send(
        client()
            .post(format!("{}/_sim/webhooks/send", s.sim.url))
            .json(&json!({"kind": "shared", "waba_id": "109900000000001"})),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    let deadline = Instant::now() + WAIT;
    let id = loop {
        let list = get(&s.url("/admin/onboardings"), Some(ADMIN)).await.json();
        if let Some(r) = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["flow"] == "discovered")
        {
            break r["id"].as_i64().unwrap();
        }
        assert!(Instant::now() < deadline, "no discovered record: {list:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let r = record_when(&s, id, |steps| {
        steps.iter().any(|s| s["kind"] == "register") && settled(steps)
    })
    .await;
    let steps = r["steps"].as_array().unwrap();
    assert_eq!(
        step(steps, "find_phones", "109900000000001")["state"],
        "done"
    );
    let reg = step(steps, "register", "110200000000010");
    assert_eq!(
        (&reg["state"], &reg["token"]),
        (&json!("done"), &json!("system_user"))
    );
    assert_eq!(
        step(steps, "subscribe", "109900000000001")["token"],
        "system_user"
    );
    // A redelivery of the webhook does not onboard the WABA twice.
    let again = send(
        client()
            .post(format!("{}/_sim/webhooks/send", s.sim.url))
            .json(&json!({"kind": "shared", "waba_id": "109900000000001"})),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    let list = get(&s.url("/admin/onboardings"), Some(ADMIN)).await.json();
    let discovered = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["flow"] == "discovered")
        .count();
    assert_eq!(discovered, 1);
}

#[tokio::test]
async fn a_coexistence_number_is_synced_not_registered() {
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), &[]);
    let id = sign_up(
        &s,
        COEXISTENCE,
        event(
            "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING",
            json!({"waba_id": "109900000000003", "business_id": "2729063490586010"}),
        ),
    )
    .await;
    let r = record_when(&s, id, settled).await;
    let steps = r["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["kind"] != "register"), "{steps:#?}");
    assert_eq!(
        step(steps, "sync_contacts", "110200000000012")["state"],
        "done"
    );
    assert_eq!(
        step(steps, "sync_history", "110200000000012")["state"],
        "done"
    );
    assert_eq!(s.sim.calls("smb_app_data"), 2);
    let audit = writes(&s).await;
    let order: Vec<&str> = audit
        .iter()
        .filter_map(|w| w["path"].as_str())
        .filter(|p| p.ends_with("smb_app_data"))
        .collect();
    assert_eq!(order.len(), 2);
    assert!(
        audit
            .iter()
            .position(|w| w["step_id"] == step(steps, "sync_contacts", "110200000000012")["id"])
            < audit
                .iter()
                .position(|w| w["step_id"] == step(steps, "sync_history", "110200000000012")["id"]),
        "contacts first, then history"
    );
}

#[tokio::test]
async fn the_pipeline_s_admin_routes_are_the_admin_s_alone() {
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), &[]);
    let id = finish(&s, MULTI, json!({"waba_ids": ["109900000000001"]})).await;
    let r = record_when(&s, id, settled).await;
    let session_code = s.sim.state.mint_code(MULTI);
    let session = send(
        client()
            .post(s.url("/signup/exchange"))
            .json(&json!({"code": session_code})),
    )
    .await
    .json()["session"]
        .as_str()
        .unwrap()
        .to_owned();
    let step_id = r["steps"][0]["id"].as_i64().unwrap();
    let routes: Vec<(reqwest::Method, String, Option<Value>)> = vec![
        (
            reqwest::Method::GET,
            format!("/admin/onboardings/{id}"),
            None,
        ),
        (reqwest::Method::GET, "/admin/writes".into(), None),
        (
            reqwest::Method::POST,
            format!("/admin/steps/{step_id}/retry"),
            None,
        ),
        (
            reqwest::Method::POST,
            format!("/admin/onboardings/{id}/offboard"),
            None,
        ),
        (
            reqwest::Method::PUT,
            "/admin/phones/110200000000010/pin".into(),
            Some(json!({"pin": "123456"})),
        ),
    ];
    for (method, path, body) in routes {
        for (credential, want) in [
            (None, StatusCode::UNAUTHORIZED),
            (Some(session.as_str()), StatusCode::FORBIDDEN),
            (Some(MULTI), StatusCode::FORBIDDEN),
        ] {
            let mut req = client().request(method.clone(), s.url(&path));
            if let Some(c) = credential {
                req = req.bearer_auth(c);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let a = send(req).await;
            assert_eq!(a.status, want, "{method} {path}: {}", a.text);
            assert!(!a.text.contains("pin\":\""), "{}", a.text);
        }
    }
    // A malformed PIN is refused and nothing is stored.
    let bad = send(
        client()
            .put(s.url("/admin/phones/110200000000010/pin"))
            .bearer_auth(ADMIN)
            .json(&json!({"pin": "12ab56"})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    // What a signup page sees of the steps (its stream) never holds a PIN or token.
    let t = send(client().post(s.url("/events/ticket")).bearer_auth(&session))
        .await
        .json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut res = client()
        .get(s.url(&format!("/events/stream?ticket={t}")))
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && !seen.contains("ready to message") {
        if let Ok(Ok(Some(chunk))) =
            tokio::time::timeout(Duration::from_millis(500), res.chunk()).await
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(seen.contains("pipeline_step"), "{seen}");
    assert!(seen.contains("ready to message"), "{seen}");
    let pin = record(&s, id).await["pins"][0]["pin"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!seen.contains(&pin) && !seen.contains(MULTI), "{seen}");
}

#[tokio::test]
async fn the_solution_partner_s_steps_run_in_order_and_meta_s_refusals_are_read() {
    let db = temp_database();
    let s = pipeline_stack(
        &db.display().to_string(),
        &[
            "--system-user-id",
            "61550000000001",
            "--credit-line-id",
            "58501441721238",
            // Meta cannot verify this callback: the subscription is refused (2200).
            "--override-callback-uri",
            "https://127.0.0.1:9/hook",
            "--override-verify-token",
            "override-verify-token-5e2a",
        ],
    );
    let id = finish(&s, MULTI, json!({"waba_ids": ["109900000000001"]})).await;
    let r = record_when(&s, id, settled).await;
    let steps = r["steps"].as_array().unwrap();
    let kinds: Vec<&str> = steps
        .iter()
        .filter(|s| s["waba_id"] == "109900000000001")
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "assign_system_user",
            "subscribe",
            "share_credit_line",
            "register"
        ]
    );
    let assign = step(steps, "assign_system_user", "109900000000001");
    assert_eq!(
        (&assign["state"], &assign["token"]),
        (&json!("done"), &json!("system_user"))
    );
    let credit = step(steps, "share_credit_line", "109900000000001");
    assert_eq!(
        (&credit["state"], &credit["token"]),
        (&json!("done"), &json!("system_user"))
    );
    let sub = step(steps, "subscribe", "109900000000001");
    assert_eq!(
        (&sub["state"], &sub["error_code"], &sub["actor"]),
        (&json!("failed"), &json!(2200), &json!("partner")),
        "{sub:#}"
    );
    assert!(
        sub["message"]
            .as_str()
            .unwrap()
            .contains("override callback URL")
    );
    // The other steps went on: the number is registered.
    assert_eq!(step(steps, "register", "110200000000010")["state"], "done");
    let log = s.proxy.output().join("\n");
    assert!(
        !log.contains("override-verify-token-5e2a"),
        "the verify token leaked"
    );
    let audit = writes(&s).await;
    assert!(
        !format!("{audit:?}").contains("override-verify-token-5e2a"),
        "the verify token leaked into the audit trail"
    );

    // A second onboarding of the same WABA: the credit line is already attached, so it is
    // not shared twice; a permission refusal says the partner acts.
    s.sim.state.add_faults(vec![
        serde_json::from_value(json!({"route": "assigned_users", "times": 1,
            "action": {"kind": "error", "status": 403, "code": 200,
                       "message": "(#200) Permissions error"}}))
        .unwrap(),
    ]);
    let shares_before = s.sim.calls("credit_sharing");
    let again = finish(&s, MULTI, json!({"waba_ids": ["109900000000001"]})).await;
    let failed_assign = |steps: &[Value]| {
        steps
            .iter()
            .find(|s| s["kind"] == "assign_system_user" && s["state"] == "failed")
            .cloned()
    };
    let r = record_when(&s, again, |steps| failed_assign(steps).is_some()).await;
    let assign = failed_assign(r["steps"].as_array().unwrap()).unwrap();
    let waba = assign["waba_id"].as_str().unwrap().to_owned();
    assert_eq!(
        (&assign["error_code"], &assign["actor"]),
        (&json!(200), &json!("partner")),
        "{assign:#}"
    );
    // That WABA's credit line waits for the System User's assignment.
    let r = record(&s, again).await;
    assert_eq!(
        step(r["steps"].as_array().unwrap(), "share_credit_line", &waba)["state"],
        "pending"
    );
    let retry = send(
        client()
            .post(s.url(&format!("/admin/steps/{}/retry", assign["id"])))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text);
    let r = record_when(&s, again, settled).await;
    let credit = step(r["steps"].as_array().unwrap(), "share_credit_line", &waba);
    assert_eq!(credit["state"], "done", "{credit:#}");
    assert!(
        credit["message"]
            .as_str()
            .unwrap()
            .contains("funding source"),
        "{credit:#}"
    );
    assert_eq!(s.sim.calls("credit_sharing"), shares_before, "shared once");
}

#[tokio::test]
async fn a_share_the_tracker_finds_is_onboarded_too() {
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), &[]);
    let pass = || async {
        let a = send(
            client()
                .post(s.url("/admin/tracker/pass"))
                .bearer_auth(ADMIN),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.json()
    };
    assert_eq!(pass().await["baseline"], true);
    s.sim.state.share(PARTNER, "1906385232743451");
    assert_eq!(pass().await["shared"], json!(["1906385232743451"]));
    let list = get(&s.url("/admin/onboardings"), Some(ADMIN)).await.json();
    let id = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["flow"] == "discovered" && r["wabas"] == json!(["1906385232743451"]))
        .unwrap_or_else(|| panic!("no discovered record: {list:#}"))["id"]
        .as_i64()
        .unwrap();
    let r = record_when(&s, id, |steps| {
        steps.iter().any(|s| s["kind"] == "register") && settled(steps)
    })
    .await;
    let steps = r["steps"].as_array().unwrap();
    let sub = step(steps, "subscribe", "1906385232743451");
    assert_eq!(
        (&sub["state"], &sub["token"]),
        (&json!("done"), &json!("system_user"))
    );
    assert_eq!(
        step(steps, "register", "110200000000009")["state"],
        "skipped",
        "already CONNECTED"
    );
}

#[tokio::test]
async fn background_steps_wait_while_meta_says_a_waba_s_budget_is_nearly_spent() {
    // Meta reports each WABA's hourly budget in `X-Business-Use-Case-Usage`; here a budget of
    // 10 calls an hour. The signup's own read of the WABA takes it to 90%: the page still
    // gets its answers, but the pipeline's subscribe waits instead of spending the rest.
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), &[]);
    s.sim.state.set_buc_limit(Some(10));
    let waba = "109900000000001";
    // Calls made elsewhere with the same app (another tool, another replica) spent 8.
    for _ in 0..8 {
        s.sim.state.buc_call(waba);
    }
    let id = finish_multi(&s).await;
    // The other WABA's budget is untouched: its subscribe goes through.
    let r = record_when(&s, id, |steps| {
        step(steps, "subscribe", "109900000000002")["state"] == "done"
    })
    .await;
    let held = step(r["steps"].as_array().unwrap(), "subscribe", waba);
    assert_eq!(held["state"], "pending", "{held:#}");
    assert_eq!(held["error_code"], 80008, "{held:#}");
    assert!(!s.sim.state.is_subscribed(waba), "no call was spent on it");
    // What Meta said is in the admin's view and in /metrics.
    let usage = get(
        &s.url(&format!("/admin/graph-usage?object={waba}")),
        Some(ADMIN),
    )
    .await;
    assert_eq!(usage.status, StatusCode::OK, "{}", usage.text);
    let u = usage.json();
    assert!(u["data"][0]["percent"].as_u64().unwrap() >= 90, "{u:#}");
    assert!(
        u["data"][0]["background_waits_secs"].as_u64().unwrap() > 0,
        "{u:#}"
    );
    assert_eq!(
        u["data"][0]["entries"][0]["type"],
        "whatsapp_business_management"
    );
    let all = get(&s.url("/admin/graph-usage"), Some(ADMIN)).await.json();
    assert!(all["data"].as_array().unwrap().len() >= 2, "{all:#}");
    let metrics = get(&s.url("/metrics"), None).await.text;
    assert!(
        metrics.contains(&format!("waba_graph_usage_percent{{object=\"{waba}\"}}")),
        "{metrics}"
    );
    assert_eq!(
        get(&s.url("/admin/graph-usage"), Some("not-the-admin"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&s.url("/admin/graph-usage"), None).await.status,
        StatusCode::UNAUTHORIZED
    );
}
