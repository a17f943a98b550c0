//! webhook-receiver, the partner's end of the proxy's outbound webhooks, as a real process:
//! deliveries signed here as the Standard Webhooks specification says are accepted, listed and
//! verified again by the reference libraries for Node and Python; a tampered body, a wrong
//! secret and a stale timestamp are refused by all three; duplicates are merged; the control
//! modes and SIGTERM behave.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use waba_testkit::receiver::{Mode, Receiver, Verification, sign};

/// The endpoint's secret: `whsec_` and 32 random bytes in base64.
const SECRET: &str = "whsec_8s+i92SbQSRnFBD3JtgN7UguNEfmo/QgHCq0SLDXtyc=";
/// Another endpoint's secret.
const OTHER_SECRET: &str = "whsec_ot9UHPFyOCMUBV5l+3UrZn+0GTShvNzsmXlVqbqQNo0=";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .expect("a clock after 1970")
}

fn receiver() -> Receiver {
    Receiver::start(SECRET).expect("webhook-receiver starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A Standard Webhooks body: `type`, `timestamp` (RFC 3339), `data`.
fn event(kind: &str, data: Value) -> String {
    json!({"type": kind, "timestamp": "2026-12-05T00:00:00Z", "data": data}).to_string()
}

/// Posts `body` to `url` with the three Standard Webhooks headers.
async fn post(url: &str, id: &str, timestamp: i64, signature: &str, body: &str) -> StatusCode {
    client()
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .expect("delivery answered")
        .status()
}

/// Signs `body` with `secret` as of `timestamp` and posts it to the receiver's root.
async fn deliver(r: &Receiver, secret: &str, id: &str, timestamp: i64, body: &str) -> StatusCode {
    let signature = sign(secret, id, timestamp, body.as_bytes()).expect("a usable secret");
    post(&format!("{}/", r.url()), id, timestamp, &signature, body).await
}

/// Both reference verifiers over the receiver's log: (Node, Python).
fn verify_both(r: &Receiver) -> [Verification; 2] {
    let node = r.verify_with_node().expect("the Node verifier runs");
    let python = r.verify_with_python().expect("the Python verifier runs");
    [node, python]
}

#[test]
fn signer_matches_the_reference_libraries_vectors() {
    // The specification's example signature comes without its secret, so the vectors are
    // the reference libraries' own: the one the JavaScript, Go, Java, PHP and C# suites share,
    // and the Rust crate's.
    assert_eq!(
        sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .as_deref(),
        Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    );
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    let rust_vector = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
    for secret in [
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        // The prefix is optional.
        "C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    ] {
        assert_eq!(
            sign(secret, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body).as_deref(),
            Some(rust_vector)
        );
    }
    // Every part is signed: another id, time, body or key gives another signature.
    for other in [
        sign(SECRET, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpl", 1649367553, body),
        sign(SECRET, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367554, body),
        sign(SECRET, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, b"{}"),
        sign(
            OTHER_SECRET,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            body,
        ),
    ] {
        assert_ne!(other.as_deref(), Some(rust_vector));
        assert!(other.is_some_and(|s| s.starts_with("v1,") && s.len() == 47));
    }
    assert_eq!(sign("whsec_not base64!", "msg_1", 1, b"{}"), None);
    assert_eq!(sign("whsec_", "msg_1", 1, b"{}"), None);
    // And the crate the receiver verifies with agrees.
    let crate_sign = standardwebhooks::Webhook::new(SECRET)
        .unwrap()
        .sign("msg_x", 1_700_000_000, b"{\"a\":1}")
        .unwrap();
    assert_eq!(
        sign(SECRET, "msg_x", 1_700_000_000, b"{\"a\":1}"),
        Some(crate_sign)
    );
}

#[tokio::test]
async fn signed_deliveries_are_accepted_listed_and_verified_by_both_libraries() {
    let r = receiver();
    // Bodies are signed as sent: spaces and non-ASCII text must reach the verifiers unchanged.
    let shared = event(
        "waba.shared",
        json!({"waba_id": "102289599326934", "business_id": "805021500648488"}),
    );
    let phone = "{ \"type\": \"phone.ready\", \"timestamp\": \"2026-12-05T00:00:01Z\",\n  \"data\": {\"phone_number_id\": \"106540352242922\", \"verified_name\": \"Café Olé ☕\"} }";
    let pipeline = event(
        "pipeline.step",
        json!({"waba_id": "102289599326934", "step": {"name": "register", "phone_number_id": "106540352242922"}}),
    );
    let ts = now();
    for (id, body) in [
        ("msg_shared_1", &shared),
        ("msg_phone_1", &phone.to_owned()),
        ("msg_step_1", &pipeline),
    ] {
        assert_eq!(
            deliver(&r, SECRET, id, ts, body).await,
            StatusCode::NO_CONTENT,
            "{id}"
        );
    }
    // Any path takes deliveries.
    let on_path = event("waba.shared", json!({"waba_id": "1"}));
    let signature = sign(SECRET, "msg_path_1", ts, on_path.as_bytes()).unwrap();
    let url = format!("{}/hooks/whatsapp", r.url());
    assert_eq!(
        post(&url, "msg_path_1", ts, &signature, &on_path).await,
        StatusCode::NO_CONTENT
    );

    let events = r.events().await.unwrap();
    let ids: Vec<_> = events.iter().map(|e| e.id.as_deref()).collect();
    assert_eq!(
        ids,
        [
            Some("msg_shared_1"),
            Some("msg_phone_1"),
            Some("msg_step_1"),
            Some("msg_path_1")
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.verified && e.duplicates == 0 && e.status == 204 && e.error.is_none())
    );
    assert_eq!(events[0].event_type.as_deref(), Some("waba.shared"));
    assert_eq!(events[0].timestamp.as_deref(), Some("2026-12-05T00:00:00Z"));
    assert_eq!(events[0].data["waba_id"], "102289599326934");
    assert_eq!(events[1].data["verified_name"], "Café Olé ☕");

    // The log keeps the raw bodies, so other implementations verify the same bytes.
    let log = std::fs::read_to_string(r.log_path()).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[1]["body"], phone);
    assert_eq!(lines[1]["id"], "msg_phone_1");
    assert_eq!(lines[1]["timestamp"], ts.to_string());
    assert_eq!(
        lines[1]["signature"].as_str(),
        sign(SECRET, "msg_phone_1", ts, phone.as_bytes()).as_deref()
    );
    assert_eq!(
        (lines[1]["verified"].clone(), lines[1]["status"].clone()),
        (json!(true), json!(204))
    );
    assert!(lines[1]["received_at"].as_u64().unwrap() >= u64::try_from(ts).unwrap() * 1000);

    for v in verify_both(&r) {
        assert_eq!((v.verified, v.failed.len()), (4, 0), "{v:?}");
        assert!(v.passed, "{v:?}");
    }

    // The demo's page: newest first, the main ids, verified marks.
    let page = client().get(r.url()).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("http-equiv=\"refresh\""));
    let at = |text: &str| html.find(text).unwrap();
    let first_shared = html.rfind("waba.shared").unwrap();
    assert!(
        at("pipeline.step") < at("phone.ready") && at("phone.ready") < first_shared,
        "newest first"
    );
    assert!(html.contains("step.phone_number_id=106540352242922"));
    assert!(html.contains("waba_id=102289599326934"));
    assert_eq!(html.matches('✓').count(), 4);

    // A body above the limit is refused before it is read whole, and neither listed nor logged.
    let huge = event("waba.shared", json!({"padding": "x".repeat(300 * 1024)}));
    assert_eq!(
        deliver(&r, SECRET, "msg_huge", now(), &huge).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(r.events().await.unwrap().len(), 4);
    let log = std::fs::read_to_string(r.log_path()).unwrap();
    assert_eq!(log.lines().count(), 4);
}

#[tokio::test]
async fn tampered_wrong_secret_and_stale_deliveries_are_refused_by_all_three() {
    let r = receiver();
    let ts = now();
    let body = event("waba.shared", json!({"waba_id": "102289599326934"}));
    assert_eq!(
        deliver(&r, SECRET, "msg_good", ts, &body).await,
        StatusCode::NO_CONTENT
    );
    // Signed, then changed on the way.
    let signature = sign(SECRET, "msg_tampered", ts, body.as_bytes()).unwrap();
    let tampered = body.replace("102289599326934", "102289599326935");
    let url = format!("{}/", r.url());
    assert_eq!(
        post(&url, "msg_tampered", ts, &signature, &tampered).await,
        StatusCode::UNAUTHORIZED
    );
    // Signed with another endpoint's secret.
    assert_eq!(
        deliver(&r, OTHER_SECRET, "msg_wrong_secret", ts, &body).await,
        StatusCode::UNAUTHORIZED
    );
    // Correctly signed, but 6 minutes old: a replay.
    assert_eq!(
        deliver(&r, SECRET, "msg_stale", ts - 360, &body).await,
        StatusCode::UNAUTHORIZED
    );
    // Just inside the 5-minute tolerance is still accepted.
    assert_eq!(
        deliver(&r, SECRET, "msg_old_but_fine", ts - 240, &body).await,
        StatusCode::NO_CONTENT
    );

    let events = r.events().await.unwrap();
    let verdicts: Vec<_> = events
        .iter()
        .map(|e| (e.id.as_deref().unwrap(), e.verified, e.status))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("msg_good", true, 204),
            ("msg_tampered", false, 401),
            ("msg_wrong_secret", false, 401),
            ("msg_stale", false, 401),
            ("msg_old_but_fine", true, 204),
        ]
    );
    assert!(events[3].error.as_deref().unwrap().contains("too old"));

    for v in verify_both(&r) {
        assert_eq!(v.verified, 2, "{v:?}");
        assert_eq!(
            v.failed,
            ["msg_tampered", "msg_wrong_secret", "msg_stale"],
            "{v:?}"
        );
        assert!(!v.passed, "a failed line fails the verifier: {v:?}");
        assert!(v.late.is_empty(), "verified promptly: {v:?}");
        assert!(v.errors["msg_stale"].contains("too old"), "{v:?}");
        assert!(
            v.errors["msg_tampered"].contains("No matching signature"),
            "{v:?}"
        );
        assert!(v.stderr.contains("msg_wrong_secret"), "{v:?}");
    }
}

#[tokio::test]
async fn duplicates_are_listed_once_and_counted() {
    let r = receiver();
    let ts = now();
    let body = event("waba.shared", json!({"waba_id": "102289599326934"}));
    for _ in 0..3 {
        assert_eq!(
            deliver(&r, SECRET, "msg_dup", ts, &body).await,
            StatusCode::NO_CONTENT
        );
    }
    // A retry keeps its id but is signed again at a later time.
    assert_eq!(
        deliver(&r, SECRET, "msg_dup", ts + 1, &body).await,
        StatusCode::NO_CONTENT
    );
    let other = event("waba.shared", json!({"waba_id": "2"}));
    assert_eq!(
        deliver(&r, SECRET, "msg_other", ts, &other).await,
        StatusCode::NO_CONTENT
    );
    let events = r.events().await.unwrap();
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.id.as_deref().unwrap(), e.duplicates))
        .collect();
    assert_eq!(seen, [("msg_dup", 3), ("msg_other", 0)]);
    // Every delivery is logged, and each one verifies on its own.
    for v in verify_both(&r) {
        assert_eq!((v.verified, v.passed), (5, true), "{v:?}");
    }
}

#[tokio::test]
async fn modes_answer_503_hang_and_return_to_normal() {
    let r = receiver();
    let body = event("waba.shared", json!({"waba_id": "102289599326934"}));
    r.set_mode(Mode::status(503)).await.unwrap();
    assert_eq!(
        deliver(&r, SECRET, "msg_retry", now(), &body).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        deliver(&r, OTHER_SECRET, "msg_forged", now(), &body).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "every delivery"
    );
    // The JSON a test or a person posts.
    let res = client()
        .post(format!("{}/_control/mode", r.url()))
        .json(&json!({"status": 204}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        deliver(&r, SECRET, "msg_retry", now(), &body).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        deliver(&r, OTHER_SECRET, "msg_forged", now(), &body).await,
        StatusCode::UNAUTHORIZED
    );
    let events = r.events().await.unwrap();
    let retry = &events[0];
    assert_eq!(
        (
            retry.id.as_deref(),
            retry.duplicates,
            retry.status,
            retry.verified
        ),
        (Some("msg_retry"), 1, 204, true)
    );
    // A status that cannot be an answer is refused.
    let res = client()
        .post(format!("{}/_control/mode", r.url()))
        .json(&json!({"status": 302}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // Hanging: recorded at once, answered late; a sender that gives up first sees a timeout.
    r.set_mode(Mode::delayed(Duration::from_millis(1500)))
        .await
        .unwrap();
    let signature = sign(SECRET, "msg_slow", now(), body.as_bytes()).unwrap();
    let started = Instant::now();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .post(format!("{}/", r.url()))
        .header("webhook-id", "msg_slow")
        .header("webhook-timestamp", now().to_string())
        .header("webhook-signature", signature)
        .body(body.clone())
        .send()
        .await;
    assert!(impatient.is_err_and(|e| e.is_timeout()));
    assert!(
        r.events()
            .await
            .unwrap()
            .iter()
            .any(|e| e.id.as_deref() == Some("msg_slow"))
    );
    let started_patient = Instant::now();
    assert_eq!(
        deliver(&r, SECRET, "msg_slow_2", now(), &body).await,
        StatusCode::NO_CONTENT
    );
    assert!(started_patient.elapsed() >= Duration::from_millis(1500));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn verifiers_fail_on_an_empty_log_and_name_late_lines() {
    let r = receiver();
    for v in verify_both(&r) {
        assert_eq!(
            (v.verified, v.failed.len(), v.passed),
            (0, 0, false),
            "{v:?}"
        );
        assert!(v.stderr.contains("no delivery"), "{v:?}");
    }
    // A line received 10 minutes ago, correctly signed then: too late to judge now, and said so.
    let then = now() - 600;
    let body = event("waba.shared", json!({"waba_id": "1"}));
    let line = json!({
        "received_at": then * 1000, "id": "msg_from_before", "timestamp": then.to_string(),
        "signature": sign(SECRET, "msg_from_before", then, body.as_bytes()), "body": body,
        "verified": true, "status": 204, "error": null,
    });
    std::fs::write(r.log_path(), format!("{line}\n")).unwrap();
    for v in verify_both(&r) {
        assert_eq!(v.failed, ["msg_from_before"], "{v:?}");
        assert_eq!(v.late, ["msg_from_before"], "{v:?}");
        assert!(
            v.errors["msg_from_before"].contains("verify promptly"),
            "{v:?}"
        );
        assert!(!v.passed);
    }
}

#[tokio::test]
async fn sigterm_stops_it_cleanly_even_while_a_delivery_hangs() {
    let r = receiver();
    r.set_mode(Mode::delayed(Duration::from_secs(20)))
        .await
        .unwrap();
    let body = event("waba.shared", json!({"waba_id": "1"}));
    let url = r.url().to_owned();
    let signature = sign(SECRET, "msg_hang", now(), body.as_bytes()).unwrap();
    let ts = now();
    let hanging =
        tokio::spawn(
            async move { post(&format!("{url}/"), "msg_hang", ts, &signature, &body).await },
        );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &r.process().pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(hanging.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not held up by the delay"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !r.process().output().iter().any(|l| l.contains("stopped")) {
        assert!(Instant::now() < deadline, "{:?}", r.process().output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(client().get(r.url()).send().await.is_err(), "it is gone");
    // The secret is never printed.
    let said = r.process().output().join("\n");
    assert!(!said.contains(&SECRET[6..]), "{said}");
}
