//! The partner's own webhooks against real `waba-proxy` processes: signed deliveries of a
//! signup and its pipeline, retries and the circuit, `410 Gone`, resends, the SSRF guard at
//! saving and at sending, the outbox across a kill -9, and one delivery per event across
//! replicas on PostgreSQL. The receiver is an HTTP server in this process that records
//! every request and answers with the status the test sets; signatures are checked here
//! with HMAC-SHA256 as the Standard Webhooks specification defines it.

// Test code: an unwrap that fails is a failed test.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use crate::pipeline::{MULTI, event, finish, pipeline_stack};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxStatus};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use waba_testkit::harness::temp_database;

const WAIT: Duration = Duration::from_secs(30);
/// Retries every second for 30 s, a circuit that opens after three failures and probes
/// every second or two.
const QUICK: &[&str] = &[
    "--outbound-allow-private-networks",
    "--outbound-poll-ms",
    "100",
    "--outbound-timeout-ms",
    "2000",
    "--outbound-retry-schedule",
    "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s",
    "--outbound-circuit-failures",
    "3",
    "--outbound-circuit-cooldown",
    "1s",
    "--outbound-circuit-max-cooldown",
    "2s",
];

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hook {
    id: String,
    timestamp: i64,
    signature: String,
    body: String,
}

impl Hook {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap().to_owned()
    }

    /// Whether one of the signatures is HMAC-SHA256 of `{id}.{timestamp}.{body}` with the
    /// secret's bytes.
    fn signed_by(&self, secret: &str) -> bool {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.{}", self.id, self.timestamp, self.body).as_bytes());
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        self.signature.split(' ').any(|s| s == expected)
    }
}

/// An HTTP receiver in this process.
struct Receiver {
    url: String,
    addr: std::net::SocketAddr,
    got: Arc<Mutex<Vec<Hook>>>,
    status: Arc<AtomicU16>,
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(status: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(
            listener,
            Arc::default(),
            Arc::new(AtomicU16::new(status)),
            Arc::default(),
        )
    }

    /// Answers every request only after `d`.
    fn hang(&self, d: Duration) {
        self.delay_ms.store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Stops listening: attempts find nothing there (connection refused).
    fn kill(&self) {
        self.server.abort();
    }

    /// Listens again on the same address, keeping what arrived.
    async fn revive(self) -> Self {
        let deadline = Instant::now() + WAIT;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot listen again: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        Self::serve(
            listener,
            self.got.clone(),
            self.status.clone(),
            self.delay_ms.clone(),
        )
    }

    fn serve(
        listener: tokio::net::TcpListener,
        got: Arc<Mutex<Vec<Hook>>>,
        status: Arc<AtomicU16>,
        delay_ms: Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        let (g, s, w) = (got.clone(), status.clone(), delay_ms.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (g, s, w) = (g.clone(), s.clone(), w.clone());
            async move {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                g.lock().unwrap().push(Hook {
                    id: h("webhook-id"),
                    timestamp: h("webhook-timestamp").parse().unwrap_or(0),
                    signature: h("webhook-signature"),
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                let wait = w.load(Ordering::SeqCst);
                if wait > 0 {
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                // No connection outlives its request, so a killed receiver is gone at once.
                (
                    AxStatus::from_u16(s.load(Ordering::SeqCst)).unwrap(),
                    [(axum::http::header::CONNECTION, "close")],
                )
            }
        });
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/hooks"),
            addr,
            got,
            status,
            delay_ms,
            server,
        }
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn hooks(&self) -> Vec<Hook> {
        self.got.lock().unwrap().clone()
    }

    /// The event ids in the order they first arrived.
    fn first_seen(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for h in self.hooks() {
            if !seen.contains(&h.id) {
                seen.push(h.id);
            }
        }
        seen
    }

    /// Waits until `done` holds for what arrived.
    async fn until(&self, what: &str, done: impl Fn(&[Hook]) -> bool) -> Vec<Hook> {
        let deadline = Instant::now() + WAIT;
        loop {
            let hooks = self.hooks();
            if done(&hooks) {
                return hooks;
            }
            assert!(
                Instant::now() < deadline,
                "{what} never arrived; got {:#?}",
                hooks.iter().map(Hook::kind).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn admin_send(req: reqwest::RequestBuilder) -> Answer {
    send(req.bearer_auth(ADMIN)).await
}

/// A new endpoint for `events` at `url`; its JSON (with the secret).
async fn endpoint(proxy: &str, url: &str, events: &[&str]) -> Value {
    let a = admin_send(
        client()
            .post(format!("{proxy}/admin/webhook-endpoints"))
            .json(&json!({"url": url, "events": events, "description": "tests"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    a.json()
}

async fn deliveries(proxy: &str, endpoint: i64) -> Vec<Value> {
    let a = get(
        &format!("{proxy}/admin/webhook-endpoints/{endpoint}/deliveries?limit=500"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let mut list = a.json()["data"].as_array().unwrap().clone();
    list.reverse();
    list
}

async fn endpoint_now(proxy: &str, id: i64) -> Value {
    let a = get(
        &format!("{proxy}/admin/webhook-endpoints/{id}"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json()
}

/// Reports how a signup ended without a code (cancelled or failed).
async fn report(proxy: &str, name: &str, data: Value) {
    let a = send(
        client()
            .post(format!("{proxy}/signup/events"))
            .json(&json!({ "event": event(name, data) })),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

/// A finished, an abandoned and a failed signup, in that order.
async fn three_signups(s: &Stack) {
    finish(
        s,
        MULTI,
        json!({"waba_id": "109900000000001", "phone_number_id": "110200000000010"}),
    )
    .await;
    report(
        &s.proxy.url,
        "CANCEL",
        json!({"current_step": "PHONE_NUMBER_VERIFICATION"}),
    )
    .await;
    report(
        &s.proxy.url,
        "ERROR",
        json!({"error_message": "It failed", "error_code": "524126", "session_id": "f3a1"}),
    )
    .await;
}

const OUTCOMES: [&str; 3] = [
    "onboarding.finished",
    "onboarding.abandoned",
    "onboarding.failed",
];

#[tokio::test]
async fn a_signup_and_its_pipeline_arrive_signed_in_order_with_nothing_secret() {
    let inbox = Receiver::start(204).await;
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), QUICK);
    let created = endpoint(&s.proxy.url, &inbox.url, &["*"]).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let id = created["id"].as_i64().unwrap();
    let onboarding = finish(
        &s,
        MULTI,
        json!({"waba_ids": ["109900000000001", "109900000000002"],
               "phone_number_id": "110200000000010", "business_id": "2729063490586009"}),
    )
    .await;
    let hooks = inbox
        .until("phone.ready", |h| {
            h.iter().any(|h| h.kind() == "phone.ready")
        })
        .await;
    for h in &hooks {
        assert!(h.signed_by(&secret), "a valid signature: {h:?}");
        assert!(h.id.starts_with("msg_") && !h.id.contains('.'), "{}", h.id);
        let age = waba_proxy::clock::now() - h.timestamp;
        assert!((0..60).contains(&age), "the attempt's time: {age}");
        for never in [
            MULTI,
            ADMIN,
            DEMO_SYSTEM,
            DEMO_APP_SECRET,
            TOKEN_KEY,
            &secret,
        ] {
            assert!(
                !h.body.contains(never),
                "a secret in a delivery: {}",
                h.body
            );
        }
        let body = h.json();
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(body["data"].is_object());
    }
    let kinds: Vec<String> = hooks.iter().map(Hook::kind).collect();
    assert_eq!(kinds[0], "onboarding.finished", "{kinds:?}");
    let first = hooks[0].json();
    assert_eq!(first["data"]["onboarding_id"], onboarding);
    assert_eq!(
        first["data"]["waba_ids"],
        json!(["109900000000001", "109900000000002"])
    );
    assert!(kinds.iter().any(|k| k == "pipeline.step_changed"));
    let ready = hooks
        .iter()
        .find(|h| h.kind() == "phone.ready")
        .unwrap()
        .json();
    assert_eq!(ready["data"]["phone_number_id"], "110200000000010");
    assert_eq!(ready["data"]["waba_id"], "109900000000001");
    // Each event once (nothing failed), in the order the proxy recorded them.
    let list = deliveries(&s.proxy.url, id).await;
    let ids: Vec<&str> = list
        .iter()
        .map(|d| d["event_id"].as_str().unwrap())
        .collect();
    let arrived = inbox.first_seen();
    assert_eq!(arrived.len(), hooks.len(), "no event twice");
    assert_eq!(ids[..arrived.len()], arrived[..]);
    let made = &list[0];
    assert_eq!(made["state"], "delivered");
    assert_eq!(made["tries"][0]["status"], 204);
    assert!(made["tries"][0]["latency_ms"].as_u64().is_some());
    // The secret is in the creating answer only: not listed, not logged.
    let listed = get(&s.url("/admin/webhook-endpoints"), Some(ADMIN)).await;
    assert!(!listed.text.contains(&secret) && listed.text.contains(&inbox.url));
    assert!(s.proxy.output().iter().all(|l| !l.contains(&secret)));
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_its_circuit_opens_and_the_backlog_arrives_in_order() {
    let inbox = Receiver::start(503).await;
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), QUICK);
    let created = endpoint(&s.proxy.url, &inbox.url, &OUTCOMES).await;
    let id = created["id"].as_i64().unwrap();
    three_signups(&s).await;
    // Only the oldest event is tried while it fails: order is kept.
    let deadline = Instant::now() + WAIT;
    let open = loop {
        let e = endpoint_now(&s.proxy.url, id).await;
        if e["circuit"] == "open" {
            break e;
        }
        assert!(Instant::now() < deadline, "the circuit never opened: {e:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(open["failures"].as_u64().unwrap() >= 3, "{open:#}");
    assert_eq!(open["pending"], 3);
    assert_eq!(
        inbox.first_seen().len(),
        1,
        "the later events wait their turn"
    );
    let tried = deliveries(&s.proxy.url, id).await;
    assert!(tried[0]["attempts"].as_u64().unwrap() >= 3);
    assert!(
        tried[0]["tries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == 503 && t["error"].as_str().unwrap().contains("503"))
    );
    // While the circuit is open nothing is sent until its probe.
    let during = inbox.hooks().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(inbox.hooks().len() <= during + 1, "at most the one probe");
    inbox.answer(204);
    let hooks = inbox
        .until("the backlog", |h| {
            let kinds: Vec<String> = h.iter().map(Hook::kind).collect();
            OUTCOMES.iter().all(|o| kinds.iter().any(|k| k == o))
        })
        .await;
    let order: Vec<String> = inbox
        .first_seen()
        .iter()
        .map(|id| hooks.iter().find(|h| &h.id == id).unwrap().kind())
        .collect();
    assert_eq!(order, OUTCOMES, "in the order they happened");
    let secret = created["secret"].as_str().unwrap();
    assert!(hooks.iter().all(|h| h.signed_by(secret)));
    let after = endpoint_now(&s.proxy.url, id).await;
    assert_eq!(
        (after["circuit"].as_str(), after["failures"].as_u64()),
        (Some("closed"), Some(0))
    );
    assert_eq!(after["delivered"], 3);
    let failed_data = hooks
        .iter()
        .find(|h| h.kind() == "onboarding.failed")
        .unwrap()
        .json();
    assert_eq!(failed_data["data"]["error_code"], "524126");
    let abandoned = hooks
        .iter()
        .find(|h| h.kind() == "onboarding.abandoned")
        .unwrap()
        .json();
    assert_eq!(
        abandoned["data"]["current_step"],
        "PHONE_NUMBER_VERIFICATION"
    );
}

#[tokio::test]
async fn a_delivery_failing_past_the_retry_window_is_given_up_and_the_next_goes() {
    let inbox = Receiver::start(500).await;
    let db = temp_database();
    let s = pipeline_stack(
        &db.display().to_string(),
        &[
            "--outbound-allow-private-networks",
            "--outbound-poll-ms",
            "100",
            "--outbound-retry-schedule",
            "1s,1s",
            "--outbound-circuit-failures",
            "100",
        ],
    );
    let created = endpoint(&s.proxy.url, &inbox.url, &OUTCOMES).await;
    let id = created["id"].as_i64().unwrap();
    report(
        &s.proxy.url,
        "CANCEL",
        json!({"current_step": "WABA_CREATION"}),
    )
    .await;
    report(
        &s.proxy.url,
        "CANCEL",
        json!({"current_step": "PERMISSIONS"}),
    )
    .await;
    let deadline = Instant::now() + WAIT;
    let list = loop {
        let list = deliveries(&s.proxy.url, id).await;
        if list[0]["state"] == "failed" && list[1]["attempts"].as_u64() >= Some(1) {
            break list;
        }
        assert!(Instant::now() < deadline, "never given up: {list:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let tries = list[0]["tries"].as_array().unwrap();
    assert!(tries.len() >= 2, "retried before giving up: {tries:#?}");
    assert!(tries.iter().all(|t| t["status"] == 500));
    assert!(list[0]["next_attempt_at"].is_null());
    // The later event follows once the first is given up, and arrives when the endpoint
    // answers again; a resend of the given-up one comes after it.
    inbox.answer(204);
    inbox
        .until("the second", |h| {
            h.iter()
                .any(|h| h.json()["data"]["current_step"] == "PERMISSIONS")
        })
        .await;
    let again = admin_send(client().post(s.url(&format!(
        "/admin/webhook-deliveries/{}/resend",
        list[0]["id"]
    ))))
    .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text);
    let hooks = inbox
        .until("the resend", |h| {
            h.last().is_some_and(|h| {
                h.json()["data"]["current_step"] == "WABA_CREATION"
                    && h.id == list[0]["event_id"].as_str().unwrap_or_default()
            })
        })
        .await;
    assert!(
        hooks
            .iter()
            .all(|h| h.signed_by(created["secret"].as_str().unwrap()))
    );
}

#[tokio::test]
async fn gone_pauses_an_endpoint_a_resume_sends_what_waited_and_a_resend_repeats_the_id() {
    let inbox = Receiver::start(410).await;
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), QUICK);
    // Paused by the admin, it still gets the events queued; resumed, it answers 410.
    let created = admin_send(
        client()
            .post(s.url("/admin/webhook-endpoints"))
            .json(&json!({"url": inbox.url, "events": OUTCOMES, "enabled": false})),
    )
    .await
    .json();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["paused_reason"], "admin");
    three_signups(&s).await;
    assert_eq!(endpoint_now(&s.proxy.url, id).await["pending"], 3);
    let enable = |on: bool| {
        admin_send(
            client()
                .patch(s.url(&format!("/admin/webhook-endpoints/{id}")))
                .json(&json!({ "enabled": on })),
        )
    };
    assert_eq!(enable(true).await.status, StatusCode::OK);
    let deadline = Instant::now() + WAIT;
    while endpoint_now(&s.proxy.url, id).await["paused_reason"] != "gone" {
        assert!(Instant::now() < deadline, "410 never paused the endpoint");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What happens while it said it is gone is not queued for it.
    report(
        &s.proxy.url,
        "CANCEL",
        json!({"current_step": "PERMISSIONS"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(inbox.hooks().len(), 1, "nothing after the 410");
    assert_eq!(endpoint_now(&s.proxy.url, id).await["pending"], 3);
    // Paused by the admin meanwhile, the reason stays the endpoint's own.
    assert_eq!(enable(false).await.json()["paused_reason"], "gone");
    inbox.answer(200);
    let resumed = admin_send(
        client()
            .patch(s.url(&format!("/admin/webhook-endpoints/{id}")))
            .json(&json!({"enabled": true})),
    )
    .await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.text);
    assert_eq!(resumed.json()["enabled"], true);
    inbox.until("the three", |h| h.len() >= 4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        inbox.first_seen().len(),
        3,
        "the three queued before the 410, no more"
    );
    // A resend queues the same event (same webhook-id) again.
    let list = deliveries(&s.proxy.url, id).await;
    let first = &list[0];
    let again = admin_send(
        client().post(s.url(&format!("/admin/webhook-deliveries/{}/resend", first["id"]))),
    )
    .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text);
    let hooks = inbox.until("the resend", |h| h.len() >= 5).await;
    assert_eq!(
        hooks.last().unwrap().id,
        first["event_id"].as_str().unwrap()
    );
    let missing = admin_send(client().post(s.url("/admin/webhook-deliveries/999999/resend"))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // A pending delivery is not resent (it is still tried); a settled one is not given up.
    let pending = deliveries(&s.proxy.url, id).await;
    let delivered = &pending[0];
    let refused = admin_send(client().post(s.url(&format!(
        "/admin/webhook-deliveries/{}/give-up",
        delivered["id"]
    ))))
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
}

#[tokio::test]
async fn a_delivery_its_endpoint_keeps_refusing_can_be_given_up_so_the_next_goes() {
    let inbox = Receiver::start(422).await;
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), QUICK);
    let created = endpoint(&s.proxy.url, &inbox.url, &OUTCOMES).await;
    let id = created["id"].as_i64().unwrap();
    three_signups(&s).await;
    inbox.until("two refusals", |h| h.len() >= 2).await;
    let head = deliveries(&s.proxy.url, id).await[0].clone();
    let resend = admin_send(
        client().post(s.url(&format!("/admin/webhook-deliveries/{}/resend", head["id"]))),
    )
    .await;
    assert_eq!(resend.status, StatusCode::CONFLICT, "{}", resend.text);
    let given = admin_send(
        client().post(s.url(&format!("/admin/webhook-deliveries/{}/give-up", head["id"]))),
    )
    .await;
    assert_eq!(given.status, StatusCode::OK, "{}", given.text);
    inbox.answer(204);
    let hooks = inbox
        .until("the other two", |h| {
            h.iter().any(|h| h.kind() == "onboarding.failed")
        })
        .await;
    let kinds: Vec<String> = hooks.iter().map(Hook::kind).collect();
    assert!(
        kinds.contains(&"onboarding.abandoned".to_owned()),
        "{kinds:?}"
    );
    let list = deliveries(&s.proxy.url, id).await;
    assert_eq!(list[0]["state"], "failed");
}

#[tokio::test]
async fn a_hanging_endpoint_holds_only_its_own_queue_and_its_attempts_time_out() {
    let stuck = Receiver::start(204).await;
    stuck.hang(Duration::from_secs(30));
    let fine = Receiver::start(204).await;
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), QUICK);
    let slow = endpoint(&s.proxy.url, &stuck.url, &OUTCOMES).await;
    endpoint(&s.proxy.url, &fine.url, &OUTCOMES).await;
    let started = Instant::now();
    three_signups(&s).await;
    fine.until("all three at the other endpoint", |h| h.len() >= 3)
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the other endpoint did not wait for the hanging one"
    );
    let id = slow["id"].as_i64().unwrap();
    let deadline = Instant::now() + WAIT;
    let tried = loop {
        let list = deliveries(&s.proxy.url, id).await;
        if let Some(t) = list[0]["tries"].as_array().and_then(|t| t.first()).cloned() {
            break t;
        }
        assert!(Instant::now() < deadline, "no attempt recorded: {list:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(tried["status"].is_null(), "{tried}");
    assert!(
        tried["error"]
            .as_str()
            .unwrap()
            .contains("no answer within 2 s"),
        "{tried}"
    );
    assert!(tried["latency_ms"].as_u64().unwrap() >= 2000);
    assert_eq!(stuck.first_seen().len(), 1, "only the head was tried");
}

#[tokio::test]
async fn private_networks_are_refused_when_saved_and_when_sent_unless_allowed() {
    let inbox = Receiver::start(204).await;
    let db = temp_database();
    let dbs = db.display().to_string();
    let strict = pipeline_stack(&dbs, &["--outbound-poll-ms", "100"]);
    for url in [
        "http://127.0.0.1:9/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/",
        "http://[::1]/",
        "http://[::ffff:7f00:1]/",
        "http://localhost:8080/",
        "http://user:pw@hooks.example.com/",
        "gopher://hooks.example.com/",
    ] {
        let a = admin_send(
            client()
                .post(strict.url("/admin/webhook-endpoints"))
                .json(&json!({"url": url, "events": ["*"]})),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{url}: {}", a.text);
        assert_eq!(a.error().error_type, "WabaProxyError");
    }
    let public = admin_send(
        client()
            .post(strict.url("/admin/webhook-endpoints"))
            .json(&json!({"url": "https://hooks.example.com/waba", "events": ["waba.shared"]})),
    )
    .await;
    assert_eq!(public.status, StatusCode::CREATED, "{}", public.text);
    let pid = public.json()["id"].as_i64().unwrap();
    let moved = admin_send(
        client()
            .patch(strict.url(&format!("/admin/webhook-endpoints/{pid}")))
            .json(&json!({"url": inbox.url})),
    )
    .await;
    assert_eq!(moved.status, StatusCode::BAD_REQUEST, "{}", moved.text);
    for (body, why) in [
        (
            json!({"url": "https://a.example/", "events": []}),
            "no events",
        ),
        (
            json!({"url": "https://a.example/", "events": ["nope.never"]}),
            "unknown",
        ),
        (
            json!({"url": "https://a.example/", "events": ["*"], "secret": "x"}),
            "a field",
        ),
    ] {
        let a = admin_send(
            client()
                .post(strict.url("/admin/webhook-endpoints"))
                .json(&body),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{why}: {}", a.text);
    }
    drop(strict);
    // Saved while the operator allowed private networks, sent after the flag was removed:
    // the attempt is refused before any connection.
    let allowed = pipeline_stack(&dbs, QUICK);
    let created = endpoint(&allowed.proxy.url, &inbox.url, &OUTCOMES).await;
    let id = created["id"].as_i64().unwrap();
    drop(allowed);
    let strict = pipeline_stack(&dbs, &["--outbound-poll-ms", "100"]);
    report(
        &strict.proxy.url,
        "CANCEL",
        json!({"current_step": "WABA_CREATION"}),
    )
    .await;
    let deadline = Instant::now() + WAIT;
    let tried = loop {
        let list = deliveries(&strict.proxy.url, id).await;
        if list.first().is_some_and(|d| {
            d["attempts"].as_u64() >= Some(1) && !d["tries"].as_array().unwrap().is_empty()
        }) {
            break list;
        }
        assert!(Instant::now() < deadline, "never attempted: {list:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let t = &tried[0]["tries"][0];
    assert!(t["status"].is_null(), "{t}");
    assert!(t["error"].as_str().unwrap().contains("private"), "{t}");
    assert!(
        inbox.hooks().is_empty(),
        "nothing reached the private address"
    );
}

#[tokio::test]
async fn the_outbox_survives_a_kill_9_and_delivers_everything_in_order_after_restart() {
    let inbox = Receiver::start(503).await;
    let db = temp_database();
    let dbs = db.display().to_string();
    let mut s = pipeline_stack(&dbs, QUICK);
    let created = endpoint(&s.proxy.url, &inbox.url, &OUTCOMES).await;
    three_signups(&s).await;
    inbox.until("a first attempt", |h| !h.is_empty()).await;
    s.proxy.stop(); // SIGKILL
    inbox.answer(204);
    let args = crate::pipeline::args(&dbs, QUICK);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let again = proxy_for(&s.sim.url, &args);
    let hooks = inbox
        .until("every event", |h| {
            OUTCOMES.iter().all(|o| h.iter().any(|x| x.kind() == *o))
        })
        .await;
    let order: Vec<String> = inbox
        .first_seen()
        .iter()
        .map(|id| hooks.iter().find(|h| &h.id == id).unwrap().kind())
        .collect();
    assert_eq!(order, OUTCOMES);
    let list = deliveries(&again.url, created["id"].as_i64().unwrap()).await;
    assert_eq!(list.len(), 3, "each event queued once");
    assert!(list.iter().all(|d| d["state"] == "delivered"), "{list:#?}");
}

#[tokio::test]
async fn a_receiver_down_and_back_gets_the_backlog_in_order_with_no_loss() {
    let inbox = Receiver::start(204).await;
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), QUICK);
    let created = endpoint(&s.proxy.url, &inbox.url, &OUTCOMES).await;
    let id = created["id"].as_i64().unwrap();
    report(
        &s.proxy.url,
        "CANCEL",
        json!({"current_step": "WABA_CREATION"}),
    )
    .await;
    inbox.until("the first", |h| h.len() == 1).await;
    inbox.kill();
    three_signups(&s).await;
    let deadline = Instant::now() + WAIT;
    let refused = loop {
        let list = deliveries(&s.proxy.url, id).await;
        let tries = list[1]["tries"].as_array().unwrap().clone();
        if tries.len() >= 3 {
            break tries;
        }
        assert!(Instant::now() < deadline, "no retries: {list:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        refused
            .iter()
            .all(|t| t["status"].is_null() && !t["error"].as_str().unwrap().is_empty()),
        "{refused:#?}"
    );
    assert_eq!(endpoint_now(&s.proxy.url, id).await["circuit"], "open");
    let inbox = inbox.revive().await;
    let hooks = inbox.until("the backlog", |h| h.len() >= 4).await;
    let order: Vec<String> = inbox
        .first_seen()
        .iter()
        .map(|id| hooks.iter().find(|h| &h.id == id).unwrap().kind())
        .collect();
    assert_eq!(
        order,
        [
            "onboarding.abandoned",
            "onboarding.finished",
            "onboarding.abandoned",
            "onboarding.failed"
        ]
    );
    assert_eq!(
        hooks.len(),
        4,
        "each once: nothing reached the dead receiver"
    );
    let secret = created["secret"].as_str().unwrap();
    assert!(hooks.iter().all(|h| h.signed_by(secret)));
}

#[tokio::test]
async fn three_replicas_on_postgresql_deliver_each_event_once_in_order() {
    let Some(db) = waba_testkit::postgres::fresh_database().await else {
        return;
    };
    let ca = waba_testkit::postgres::ca_file()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let inbox = Receiver::start(204).await;
    let mut extra = vec!["--database-ca-file", ca.as_str()];
    extra.extend_from_slice(QUICK);
    let s = pipeline_stack(&db, &extra);
    let args = crate::pipeline::args(&db, &extra);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let others: Vec<_> = (0..2).map(|_| proxy_for(&s.sim.url, &argv)).collect();
    let urls: Vec<&str> = std::iter::once(s.proxy.url.as_str())
        .chain(others.iter().map(|p| p.url.as_str()))
        .collect();
    let created = endpoint(urls[1], &inbox.url, &["onboarding.abandoned"]).await;
    let steps = [
        "BUSINESS_ACCOUNT_SELECTION",
        "WABA_CREATION",
        "PHONE_NUMBER_SETUP",
        "PHONE_NUMBER_VERIFICATION",
        "WABA_PHONE_PROFILE_PICKER",
        "PERMISSIONS",
    ];
    for (i, step) in steps.iter().cycle().take(12).enumerate() {
        report(urls[i % 3], "CANCEL", json!({"current_step": step})).await;
    }
    let hooks = inbox.until("twelve events", |h| h.len() >= 12).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hooks_now = inbox.hooks();
    assert_eq!(hooks_now.len(), 12, "each event sent once: {hooks:#?}");
    let list = deliveries(urls[2], created["id"].as_i64().unwrap()).await;
    let ids: Vec<String> = list
        .iter()
        .map(|d| d["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(inbox.first_seen(), ids, "in the order they happened");
    let reported: Vec<String> = hooks_now
        .iter()
        .map(|h| {
            h.json()["data"]["current_step"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let expected: Vec<String> = steps
        .iter()
        .cycle()
        .take(12)
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(reported, expected);
}

#[tokio::test]
async fn the_endpoint_routes_are_the_admin_s_alone() {
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), QUICK);
    for (method, path) in [
        (reqwest::Method::GET, "/admin/webhook-endpoints"),
        (reqwest::Method::POST, "/admin/webhook-endpoints"),
        (reqwest::Method::GET, "/admin/webhook-event-types"),
        (
            reqwest::Method::GET,
            "/admin/webhook-endpoints/1/deliveries",
        ),
        (reqwest::Method::POST, "/admin/webhook-deliveries/1/resend"),
        (reqwest::Method::DELETE, "/admin/webhook-endpoints/1"),
    ] {
        let none = send(client().request(method.clone(), s.url(path))).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{path}");
        let business = send(client().request(method, s.url(path)).bearer_auth(MULTI)).await;
        assert_eq!(business.status, StatusCode::FORBIDDEN, "{path}");
    }
    let types = get(&s.url("/admin/webhook-event-types"), Some(ADMIN)).await;
    let types = types.json();
    let names: Vec<&str> = types["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"phone.ready") && names.contains(&"onboarding.abandoned"));
    let created = endpoint(&s.proxy.url, "http://127.0.0.1:9/", &["*"]).await;
    let id = created["id"].as_i64().unwrap();
    let rotated =
        admin_send(client().post(s.url(&format!("/admin/webhook-endpoints/{id}/secret")))).await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert_ne!(rotated.json()["secret"], created["secret"]);
    let gone = admin_send(client().delete(s.url(&format!("/admin/webhook-endpoints/{id}")))).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let again = admin_send(client().delete(s.url(&format!("/admin/webhook-endpoints/{id}")))).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_a_token_key_endpoints_are_refused_plainly() {
    let s = stack(world("demo"), &[]);
    let a = admin_send(
        client()
            .post(s.url("/admin/webhook-endpoints"))
            .json(&json!({"url": "https://hooks.example.com/", "events": ["*"]})),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_IMPLEMENTED, "{}", a.text);
    assert!(a.error().message.contains("token key"));
}

#[tokio::test]
async fn real_deliveries_verify_with_the_standard_webhooks_libraries_of_npm_and_pypi() {
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), QUICK);
    // The secret is made by the proxy: the endpoint starts paused, the receiver starts with
    // the secret, and the endpoint is pointed at it and resumed.
    let created = admin_send(
        client()
            .post(s.url("/admin/webhook-endpoints"))
            .json(&json!({"url": "http://127.0.0.1:9/", "events": ["*"], "enabled": false})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let created = created.json();
    let secret = created["secret"].as_str().unwrap();
    let receiver = waba_testkit::receiver::Receiver::start(secret).unwrap();
    let id = created["id"].as_i64().unwrap();
    let pointed = admin_send(
        client()
            .patch(s.url(&format!("/admin/webhook-endpoints/{id}")))
            .json(&json!({"url": format!("{}/hooks/waba", receiver.url()), "enabled": true})),
    )
    .await;
    assert_eq!(pointed.status, StatusCode::OK, "{}", pointed.text);
    finish(
        &s,
        MULTI,
        json!({"waba_ids": ["109900000000001", "109900000000002"],
               "phone_number_id": "110200000000010"}),
    )
    .await;
    three_signups(&s).await;
    let deadline = Instant::now() + WAIT;
    let events = loop {
        let events = receiver.events().await.unwrap();
        let ready = events
            .iter()
            .any(|e| e.event_type.as_deref() == Some("phone.ready"));
        let failed = events
            .iter()
            .any(|e| e.event_type.as_deref() == Some("onboarding.failed"));
        if ready && failed {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "not everything arrived: {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(events.iter().all(|e| e.verified), "{events:#?}");
    let node = receiver.verify_with_node().unwrap();
    let python = receiver.verify_with_python().unwrap();
    for (library, v) in [
        ("npm standardwebhooks", &node),
        ("PyPI standardwebhooks", &python),
    ] {
        assert!(v.passed, "{library}: {v:#?}");
        assert!(v.failed.is_empty(), "{library}: {v:#?}");
        assert!(v.verified >= events.len(), "{library}: {v:#?}");
    }
}

/// Has graph-sim send Meta's webhook `body` to the proxy.
async fn meta_sends(s: &Stack, body: Value) {
    let sent = send(
        client()
            .post(format!("{}/_sim/webhooks/send", s.sim.url))
            .json(&body),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
}

#[tokio::test]
async fn meta_s_changes_reach_the_partner_as_waba_events_in_order() {
    let inbox = Receiver::start(204).await;
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), QUICK);
    let created = endpoint(
        &s.proxy.url,
        &inbox.url,
        &[
            "waba.shared",
            "waba.unshared",
            "waba.review_decided",
            "waba.restricted",
            "waba.reinstated",
        ],
    )
    .await;
    let waba = "109900000000001";
    let onboarding = finish(&s, MULTI, json!({"waba_id": waba})).await;
    // A WABA's own webhooks reach the app once it is subscribed to the WABA.
    let deadline = Instant::now() + WAIT;
    loop {
        let r = get(
            &s.url(&format!("/admin/onboardings/{onboarding}")),
            Some(ADMIN),
        )
        .await
        .json();
        let subscribed =
            r["steps"].as_array().unwrap().iter().any(|st| {
                st["kind"] == "subscribe" && st["waba_id"] == waba && st["state"] == "done"
            });
        if subscribed {
            break;
        }
        assert!(Instant::now() < deadline, "never subscribed: {r:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let other = "109900000000004";
    for body in [
        json!({"kind": "review", "waba_id": waba, "decision": "APPROVED"}),
        json!({"kind": "account_update", "waba_id": waba, "event": "DISABLED_UPDATE",
               "value": {"ban_info": {"waba_ban_state": "DISABLE", "waba_ban_date": "April 17, 2025"}}}),
        json!({"kind": "account_update", "waba_id": waba, "event": "DISABLED_UPDATE",
               "value": {"ban_info": {"waba_ban_state": "REINSTATE"}}}),
        json!({"kind": "account_update", "waba_id": waba, "event": "ACCOUNT_RESTRICTION",
               "value": {"restriction_info": [{"restriction_type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION",
                                               "expiration": 1_900_000_000}]}}),
        json!({"kind": "shared", "waba_id": other}),
        json!({"kind": "removed", "waba_id": other}),
    ] {
        meta_sends(&s, body).await;
    }
    let hooks = inbox.until("six changes", |h| h.len() >= 6).await;
    let seen: Vec<(String, Value)> = hooks
        .iter()
        .map(|h| (h.kind(), h.json()["data"].clone()))
        .collect();
    let kinds: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "waba.review_decided",
            "waba.restricted",
            "waba.reinstated",
            "waba.restricted",
            "waba.shared",
            "waba.unshared"
        ],
        "{seen:#?}"
    );
    assert_eq!(seen[0].1["waba_id"], waba);
    assert_eq!(seen[0].1["decision"], "APPROVED");
    assert_eq!(
        seen[0].1["meta"]["decision"], "APPROVED",
        "Meta's value as sent"
    );
    assert_eq!(
        seen[1].1["meta"]["ban_info"]["waba_ban_date"],
        "April 17, 2025"
    );
    assert_eq!(seen[1].1["event"], "DISABLED_UPDATE");
    assert_eq!(seen[1].1["detail"], "DISABLE");
    assert_eq!(seen[3].1["event"], "ACCOUNT_RESTRICTION");
    assert_eq!(seen[3].1["detail"], "RESTRICTED_ADD_PHONE_NUMBER_ACTION");
    assert_eq!(seen[4].1, json!({"waba_id": other}));
    let secret = created["secret"].as_str().unwrap();
    assert!(hooks.iter().all(|h| h.signed_by(secret)));
}

#[tokio::test]
async fn a_new_secret_can_overlap_the_old_one_so_the_receiver_changes_over_without_a_refusal() {
    let inbox = Receiver::start(204).await;
    let db = temp_database();
    let s = pipeline_stack(&db.display().to_string(), QUICK);
    let created = endpoint(&s.proxy.url, &inbox.url, &["onboarding.abandoned"]).await;
    let id = created["id"].as_i64().unwrap();
    let first = created["secret"].as_str().unwrap().to_owned();
    let rotate = |query: &'static str| {
        admin_send(client().post(s.url(&format!("/admin/webhook-endpoints/{id}/secret{query}"))))
    };
    let overlapping = rotate("?keep_previous_secs=3600").await;
    assert_eq!(overlapping.status, StatusCode::OK, "{}", overlapping.text);
    let overlapping = overlapping.json();
    let second = overlapping["secret"].as_str().unwrap().to_owned();
    let until = overlapping["previous_secret_until"].as_i64().unwrap();
    assert!((3590..=3610).contains(&(until - waba_proxy::clock::now())));
    report(
        &s.proxy.url,
        "CANCEL",
        json!({"current_step": "WABA_CREATION"}),
    )
    .await;
    let hooks = inbox.until("one", |h| h.len() == 1).await;
    assert_eq!(
        hooks[0].signature.split(' ').count(),
        2,
        "{}",
        hooks[0].signature
    );
    assert!(hooks[0].signed_by(&first) && hooks[0].signed_by(&second));
    // Replaced again without overlap (as after a leak): only the newest signs.
    let third = rotate("").await.json();
    assert!(third["previous_secret_until"].is_null());
    let third = third["secret"].as_str().unwrap().to_owned();
    report(
        &s.proxy.url,
        "CANCEL",
        json!({"current_step": "PERMISSIONS"}),
    )
    .await;
    let hooks = inbox.until("two", |h| h.len() == 2).await;
    assert!(hooks[1].signed_by(&third));
    assert!(!hooks[1].signed_by(&second) && !hooks[1].signed_by(&first));
    assert_eq!(hooks[1].signature.split(' ').count(), 1);
    let refused = rotate("?keep_previous_secs=999999").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
}
