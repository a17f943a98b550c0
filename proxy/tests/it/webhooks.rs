//! Meta's webhooks into a real proxy (signed by graph-sim or by the tests), and the status
//! stream out: handshake, signatures, redeliveries, 10,000 changes, scopes, resuming.

// An unwrap that fails here is a failed assertion.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use waba_testkit::harness::temp_database;

const VERIFY: &str = "verify-token-for-webhook-tests-91c2";

fn hook_args(db: &str) -> Vec<String> {
    with_database(
        &[
            "--app-secret",
            DEMO_APP_SECRET,
            "--webhook-verify-token",
            VERIFY,
        ],
        db,
    )
}

/// Points the simulator's webhooks at the proxy, with the app subscribed to the WABAs the
/// tests hear about (Meta sends a WABA's webhooks only to subscribed apps).
fn listen(s: &Stack) {
    s.sim
        .state
        .set_webhook_url(Some(format!("{}/webhooks/meta", s.proxy.url)));
    for waba in ["101569239400667", "102289599326934"] {
        s.sim.state.subscribe(waba, None);
    }
}

fn hook_stack() -> Stack {
    let db = temp_database().display().to_string();
    let args = hook_args(&db);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = stack(world("demo"), &args);
    listen(&s);
    s
}

async fn deliver(s: &Stack, body: &str, signature: Option<&str>) -> StatusCode {
    let mut req = client()
        .post(s.url("/webhooks/meta"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    req.send().await.unwrap().status()
}

fn signed(body: &str) -> String {
    waba_testkit::sim::webhooks::signature(DEMO_APP_SECRET, body.as_bytes())
}

async fn sim_send(s: &Stack, w: Value) -> Value {
    let res = client()
        .post(format!("{}/_sim/webhooks/send", s.sim.url))
        .json(&w)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn ticket(s: &Stack, credential: &str) -> String {
    let a = send(
        client()
            .post(s.url("/events/ticket"))
            .bearer_auth(credential),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json()["ticket"].as_str().unwrap().to_owned()
}

/// Opens the stream and reads until `n` changes arrived or `wait` passed.
async fn read_stream(
    base: &str,
    ticket: &str,
    last_id: Option<i64>,
    n: usize,
    wait: Duration,
) -> Vec<(i64, Value)> {
    // No overall timeout: `wait` bounds the read.
    let mut req = reqwest::Client::new().get(format!("{base}/events/stream?ticket={ticket}"));
    if let Some(id) = last_id {
        req = req.header("last-event-id", id.to_string());
    }
    let mut res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let deadline = Instant::now() + wait;
    let mut buf = String::new();
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Ok(Some(chunk))) = tokio::time::timeout(left, res.chunk()).await else {
            break;
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut id = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse::<i64>().ok();
                }
                if let Some(v) = line.strip_prefix("data:") {
                    data = serde_json::from_str::<Value>(v.trim()).ok();
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                out.push((id, data));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_subscription_handshake_echoes_only_for_the_right_token() {
    let s = hook_stack();
    let url = |q: &str| s.url(&format!("/webhooks/meta?{q}"));
    let ok = client()
        .get(url(&format!(
            "hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=1158201444"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    for q in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=verify-token-for-webhook-tests-91c2&hub.challenge=1",
        "hub.mode=subscribe&hub.challenge=1",
        "",
    ] {
        let a = get(&url(q), None).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{q}");
        assert!(!a.text.contains(VERIFY));
    }
}

#[tokio::test]
async fn only_correctly_signed_bodies_are_stored_and_redeliveries_count_once() {
    let s = hook_stack();
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "101569239400667", "time": 1,
        "changes": [{"field": "account_review_update", "value": {"decision": "APPROVED"}}]}]})
    .to_string();
    assert_eq!(deliver(&s, &body, None).await, StatusCode::FORBIDDEN);
    assert_eq!(
        deliver(&s, &body, Some("sha256=00")).await,
        StatusCode::FORBIDDEN
    );
    let other = waba_testkit::sim::webhooks::signature("another-secret", body.as_bytes());
    assert_eq!(
        deliver(&s, &body, Some(&other)).await,
        StatusCode::FORBIDDEN
    );
    let modified = body.replace("APPROVED", "REJECTED");
    assert_eq!(
        deliver(&s, &modified, Some(&signed(&body))).await,
        StatusCode::FORBIDDEN
    );
    // The simulator's own bad-signature delivery.
    let bad = sim_send(
        &s,
        json!({"kind": "review", "waba_id": "101569239400667",
                                  "decision": "REJECTED", "bad_signature": true}),
    )
    .await;
    assert_eq!(bad["statuses"], json!([403]));
    // Good, and redelivered three times.
    for _ in 0..4 {
        assert_eq!(
            deliver(&s, &body, Some(&signed(&body))).await,
            StatusCode::OK
        );
    }
    let redelivered = sim_send(
        &s,
        json!({"kind": "shared", "waba_id": "1906385232743451", "redeliveries": 2}),
    )
    .await;
    assert_eq!(redelivered["statuses"], json!([200, 200, 200]));
    let t = ticket(&s, ADMIN).await;
    let events = read_stream(&s.proxy.url, &t, None, 4, Duration::from_secs(2)).await;
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|(_, e)| (e["kind"].as_str().unwrap(), e["waba_id"].as_str().unwrap()))
        .collect();
    // The share starts the partner's steps for the WABA (once, like the change itself).
    assert_eq!(
        kinds,
        [
            ("review", "101569239400667"),
            ("partner_added", "1906385232743451"),
            ("pipeline_step", "1906385232743451"),
        ],
        "one event per change, none for refused deliveries"
    );
    // PARTNER_ADDED reached the tracker's events.
    let shares = get(&s.url("/admin/tracker/events"), Some(ADMIN)).await;
    assert_eq!(shares.json()["data"][0]["waba_id"], "1906385232743451");
}

#[tokio::test]
async fn ten_thousand_changes_arrive_once_each_in_order() {
    let s = hook_stack();
    // 100 deliveries of 100 changes, 8 at a time, every tenth delivered twice.
    let bodies: Vec<String> = (0..100)
        .map(|d| {
            let entries: Vec<Value> = (0..100)
                .map(|c| {
                    json!({"id": "102289599326934", "time": d * 1000 + c,
                        "changes": [{"field": "account_review_update",
                                     "value": {"decision": if c % 2 == 0 { "APPROVED" } else { "PENDING" }}}]})
                })
                .collect();
            json!({"object": "whatsapp_business_account", "entry": entries}).to_string()
        })
        .collect();
    let mut jobs = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let times = if i % 10 == 0 { 2 } else { 1 };
        for _ in 0..times {
            jobs.push(body.clone());
        }
    }
    let url = s.url("/webhooks/meta");
    let results = futures_util::future::join_all(jobs.chunks(8).map(|chunk| {
        let chunk = chunk.to_vec();
        let url = url.clone();
        async move {
            let mut statuses = Vec::new();
            for body in chunk {
                let sig = signed(&body);
                let res = client()
                    .post(&url)
                    .header("x-hub-signature-256", sig)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                statuses.push(res.status().as_u16());
            }
            statuses
        }
    }))
    .await;
    assert!(results.iter().flatten().all(|s| *s == 200));
    let t = ticket(&s, ADMIN).await;
    let events = read_stream(&s.proxy.url, &t, None, 10_000, Duration::from_secs(20)).await;
    assert_eq!(events.len(), 10_000, "nothing lost");
    assert!(
        events.windows(2).all(|w| w[0].0 < w[1].0),
        "in order, no repeats"
    );
    let last = events[9_999].0;
    let more = read_stream(&s.proxy.url, &t, Some(last), 1, Duration::from_millis(500)).await;
    assert!(more.is_empty(), "nothing doubled: {more:?}");
    // Resuming from the middle gives exactly the rest.
    let middle = events[4_999].0;
    let rest = read_stream(
        &s.proxy.url,
        &t,
        Some(middle),
        5_000,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(rest.len(), 5_000);
    assert_eq!(rest[0].0, events[5_000].0);
    assert_eq!(rest[4_999].0, last);
}

#[tokio::test]
async fn a_signup_stream_sees_only_its_wabas_and_reads_are_fresh_after_a_decision() {
    let s = hook_stack();
    // A read is shared for 3 s; the webhook makes the next read ask Graph again.
    let read = s.url("/graph/101569239400667?fields=id,account_review_status");
    assert_eq!(
        get(&read, Some(FINISH)).await.json()["account_review_status"],
        "PENDING"
    );
    let t = ticket(&s, FINISH).await;
    sim_send(
        &s,
        json!({"kind": "review", "waba_id": "9007199254740993", "decision": "REJECTED"}),
    )
    .await;
    sim_send(
        &s,
        json!({"kind": "review", "waba_id": "101569239400667", "decision": "APPROVED"}),
    )
    .await;
    assert_eq!(
        get(&read, Some(FINISH)).await.json()["account_review_status"],
        "APPROVED"
    );
    let events = read_stream(&s.proxy.url, &t, None, 2, Duration::from_secs(2)).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].1["waba_id"], "101569239400667");
    assert_eq!(events[0].1["value"], "APPROVED");
    // Tickets: forged or missing are refused; none without a credential.
    let forged = get(&s.url("/events/stream?ticket=e30.AAAA"), None).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(&s.url("/events/stream"), None).await.status,
        StatusCode::BAD_REQUEST
    );
    let none = send(client().post(s.url("/events/ticket"))).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    // The ticket travels in the URL, so the proxy never logs URLs.
    let log = s.proxy.output().join("\n");
    assert!(log.contains("answered"));
    for secret in [t.as_str(), FINISH, DEMO_APP_SECRET] {
        assert!(!log.contains(secret), "the log holds a secret");
    }
}

#[tokio::test]
async fn after_a_restart_the_stream_resumes_from_the_last_event_id() {
    let db = temp_database().display().to_string();
    let args = hook_args(&db);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut s = stack(world("demo"), &argv);
    listen(&s);
    sim_send(
        &s,
        json!({"kind": "review", "waba_id": "101569239400667", "decision": "DEFERRED"}),
    )
    .await;
    let t = ticket(&s, ADMIN).await;
    let first = read_stream(&s.proxy.url, &t, None, 1, Duration::from_secs(2)).await;
    assert_eq!(first.len(), 1);
    s.proxy.stop();
    let proxy = proxy_for(&s.sim.url, &argv);
    s.sim
        .state
        .set_webhook_url(Some(format!("{}/webhooks/meta", proxy.url)));
    sim_send(
        &s,
        json!({"kind": "review", "waba_id": "101569239400667", "decision": "APPROVED"}),
    )
    .await;
    // The ticket key is kept in the database: within its minute the ticket works on the
    // restarted process (as on another replica), and the stream resumes after the last id.
    let rest = read_stream(&proxy.url, &t, Some(first[0].0), 2, Duration::from_secs(2)).await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0].1["value"], "APPROVED");
    assert!(rest[0].0 > first[0].0);
}

#[tokio::test]
async fn scenario_webhooks_follow_the_first_read_with_a_redelivery_and_a_forgery() {
    let db = temp_database().display().to_string();
    let mut w = world("demo");
    for hook in &mut w.scenario.webhooks {
        hook.after_secs = 0.2;
    }
    let args = hook_args(&db);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = stack(w, &args);
    listen(&s);
    s.sim.state.arm_scenario_webhooks();
    let t = ticket(&s, ADMIN).await;
    let read = s.url("/graph/101569239400667?fields=id,account_review_status");
    assert_eq!(
        get(&read, Some(FINISH)).await.json()["account_review_status"],
        "PENDING"
    );
    let events = read_stream(&s.proxy.url, &t, None, 2, Duration::from_secs(3)).await;
    let values: Vec<&str> = events
        .iter()
        .map(|(_, e)| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["APPROVED"], "redelivered once, forged one refused");
    assert_eq!(
        get(&read, Some(FINISH)).await.json()["account_review_status"],
        "APPROVED"
    );
}

#[tokio::test]
async fn a_record_lists_what_meta_announced_about_its_wabas() {
    let s = hook_stack();
    let report = send(
        client()
            .post(s.url("/signup/events"))
            .bearer_auth(FINISH)
            .json(
                &json!({"event": {"type": "WA_EMBEDDED_SIGNUP", "event": "FINISH",
                "data": {"waba_id": "102289599326934", "phone_number_id": "110200000000001"}}}),
            ),
    )
    .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.text);
    let id = report.json()["onboarding_id"].as_i64().unwrap();
    sim_send(
        &s,
        json!({"kind": "review", "waba_id": "101569239400667", "decision": "APPROVED"}),
    )
    .await;
    sim_send(
        &s,
        json!({"kind": "review", "waba_id": "9007199254740993", "decision": "REJECTED"}),
    )
    .await;
    let record = get(&s.url(&format!("/admin/onboardings/{id}")), Some(ADMIN)).await;
    assert_eq!(record.status, StatusCode::OK, "{}", record.text);
    let changes = record.json()["changes"].clone();
    assert_eq!(changes.as_array().unwrap().len(), 1, "{changes}");
    assert_eq!(changes[0]["waba_id"], "101569239400667");
    assert_eq!(changes[0]["value"], "APPROVED");
}

/// With a stream open, 16 clients deliver 2,000 changes at once: the stream gets every one
/// exactly once, in sequence order, though concurrent deliveries are announced in any order.
#[tokio::test]
async fn an_open_stream_gets_every_concurrent_delivery_once_in_order() {
    const CLIENTS: usize = 16;
    const PER_CLIENT: usize = 125;
    let s = hook_stack();
    let t = ticket(&s, ADMIN).await;
    let base = s.proxy.url.clone();
    let reader = tokio::spawn(async move {
        read_stream(
            &base,
            &t,
            None,
            CLIENTS * PER_CLIENT,
            Duration::from_secs(300),
        )
        .await
    });
    // The stream is open (its first replay is done) before the deliveries start.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = s.url("/webhooks/meta");
    let results = futures_util::future::join_all((0..CLIENTS).map(|c| {
        let url = url.clone();
        async move {
            let mut ok = 0;
            for i in 0..PER_CLIENT {
                let body = json!({"object": "whatsapp_business_account", "entry": [
                    {"id": "102289599326934", "time": c * 100_000 + i,
                     "changes": [{"field": "account_review_update",
                                  "value": {"decision": "APPROVED"}}]}]})
                .to_string();
                let res = client()
                    .post(&url)
                    .header("x-hub-signature-256", signed(&body))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                ok += usize::from(res.status() == StatusCode::OK);
            }
            ok
        }
    }))
    .await;
    assert_eq!(results.iter().sum::<usize>(), CLIENTS * PER_CLIENT);
    let events = reader.await.unwrap();
    assert_eq!(
        events.len(),
        CLIENTS * PER_CLIENT,
        "every stored change reached the stream"
    );
    assert!(
        events.windows(2).all(|w| w[0].0 < w[1].0),
        "in sequence order, no repeats"
    );
}

/// `PARTNER_APP_UNINSTALLED` (and `PARTNER_REMOVED`) for a WABA revoke the onboardings that
/// were granted it, in the same transaction that stores the change: the record says when,
/// and its business token is forgotten. Records of other WABAs stay as they were.
#[tokio::test]
async fn a_removed_app_revokes_the_onboarding_and_forgets_its_token() {
    let db = temp_database().display().to_string();
    let mut args = hook_args(&db);
    args.extend(
        [
            "--app-id",
            "670843887433847",
            "--token-key",
            "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
        ]
        .map(str::to_owned),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = stack(world("demo"), &args);
    listen(&s);
    let code = s.sim.state.mint_code(FINISH);
    let exchanged = send(
        client()
            .post(s.url("/signup/exchange"))
            .json(&json!({"code": code})),
    )
    .await;
    assert_eq!(exchanged.status, StatusCode::OK, "{}", exchanged.text);
    let revoked_id = exchanged.json()["onboarding_id"].as_i64().unwrap();
    let other_code = s
        .sim
        .state
        .mint_code("EAASimBusinessTokenIncomplete0000000000000000002");
    let other = send(
        client()
            .post(s.url("/signup/exchange"))
            .json(&json!({"code": other_code})),
    )
    .await;
    let other_id = other.json()["onboarding_id"].as_i64().unwrap();
    let record = |id: i64| {
        let url = s.url(&format!("/admin/onboardings/{id}"));
        async move { get(&url, Some(ADMIN)).await.json() }
    };
    assert!(record(revoked_id).await["business_token"].is_string());

    sim_send(
        &s,
        json!({"kind": "account_update", "waba_id": "101569239400667", "event": "PARTNER_APP_UNINSTALLED",
               "value": {"waba_info": {"waba_id": "101569239400667", "owner_business_id": "2729063490586005", "partner_app_id": "670843887433847"}}}),
    )
    .await;
    let revoked = record(revoked_id).await;
    assert!(revoked["revoked_at"].as_i64().is_some(), "{revoked}");
    assert_eq!(revoked["has_business_token"], false, "{revoked}");
    assert!(revoked["business_token"].is_null(), "{revoked}");
    let untouched = record(other_id).await;
    assert!(untouched["revoked_at"].is_null(), "{untouched}");
    assert_eq!(untouched["has_business_token"], true, "{untouched}");
}
