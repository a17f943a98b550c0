//! Graph's failures, injected by graph-sim, on every route: transient ones are retried with
//! backoff within the request's deadline, throttling with an estimate closes the gate,
//! refusals and garbage are not retried. Each case asserts the client's status, the number
//! of upstream calls, and that the proxy serves the next request.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn fault(route: &str, times: Option<u32>, action: Value) -> waba_testkit::sim::faults::Fault {
    let mut f = json!({"route": route, "action": action});
    if let Some(t) = times {
        f["times"] = t.into();
    }
    serde_json::from_value(f).expect("fault")
}

/// The request deadline leaves room for every retry of quick failures; answers are not
/// shared, so each request reaches Graph and meets its fault.
const TIMEOUTS: &[&str] = &[
    "--upstream-timeout-ms",
    "1500",
    "--request-timeout-ms",
    "8000",
    "--cache-ttl-ms",
    "0",
];

#[tokio::test]
async fn each_failure_maps_to_an_honest_status_after_the_right_number_of_calls() {
    let s = stack(world("demo"), TIMEOUTS);
    let url = s.url("/graph/101569239400667?fields=id,name");
    assert_eq!(get(&url, Some(FINISH)).await.status, StatusCode::OK);
    let ok = StatusCode::OK;
    let cases: Vec<(Value, u32, StatusCode, u64, Option<&str>)> = vec![
        // Throttled without an estimate, then recovered: retried.
        (
            json!({"kind": "throttle", "code": 80008, "status": 403}),
            1,
            ok,
            2,
            None,
        ),
        (json!({"kind": "throttle", "code": 613}), 1, ok, 2, None),
        (json!({"kind": "throttle", "code": 4}), 1, ok, 2, None),
        // Meta's failures: retried.
        (
            json!({"kind": "server_error", "status": 500}),
            1,
            ok,
            2,
            None,
        ),
        (
            json!({"kind": "error", "status": 500, "code": 131000, "message": "Something went wrong"}),
            1,
            ok,
            2,
            None,
        ),
        (
            json!({"kind": "error", "status": 400, "code": 2, "message": "Service temporarily unavailable", "is_transient": true}),
            1,
            ok,
            2,
            None,
        ),
        (json!({"kind": "truncated"}), 1, ok, 2, None),
        (json!({"kind": "drop"}), 1, ok, 2, None),
        (json!({"kind": "latency", "ms": 2500}), 1, ok, 2, None),
        // A 5xx burst longer than the retries: Meta's transient error, with Retry-After.
        (
            json!({"kind": "server_error", "status": 503}),
            4,
            StatusCode::SERVICE_UNAVAILABLE,
            4,
            Some("5"),
        ),
        // Not retried: refusals, a rejected System User token, garbage.
        (
            json!({"kind": "error", "status": 400, "code": 190, "message": "Invalid OAuth access token"}),
            1,
            StatusCode::BAD_GATEWAY,
            1,
            None,
        ),
        (
            json!({"kind": "error", "status": 403, "code": 10, "message": "(#10) Application does not have permission"}),
            1,
            StatusCode::FORBIDDEN,
            1,
            None,
        ),
        (
            json!({"kind": "malformed"}),
            1,
            StatusCode::BAD_GATEWAY,
            1,
            None,
        ),
        (
            json!({"kind": "huge", "bytes": 6_000_000}),
            1,
            StatusCode::BAD_GATEWAY,
            1,
            None,
        ),
    ];
    for (action, times, want, calls, retry_after) in cases {
        let before = s.sim.calls("waba");
        s.sim
            .state
            .add_faults(vec![fault("waba", Some(times), action.clone())]);
        let a = get(&url, Some(FINISH)).await;
        assert_eq!(a.status, want, "{action}: {}", a.text);
        if want != ok {
            assert!(!a.error().message.is_empty(), "{action}");
        }
        assert_eq!(
            a.headers.get("retry-after").map(|v| v.to_str().unwrap()),
            retry_after,
            "{action}"
        );
        assert_eq!(
            s.sim.calls("waba") - before,
            calls,
            "{action}: upstream calls"
        );
        s.sim.state.clear_faults();
        let next = get(&url, Some(FINISH)).await;
        assert_eq!(next.status, ok, "after {action}: {}", next.text);
    }
}

#[tokio::test]
async fn slow_answers_past_the_deadline_are_504_without_hanging() {
    let s = stack(
        world("demo"),
        &[
            "--upstream-timeout-ms",
            "1000",
            "--request-timeout-ms",
            "3000",
        ],
    );
    let url = s.url("/graph/101569239400667?fields=id");
    s.sim.state.add_faults(vec![fault(
        "waba",
        None,
        json!({"kind": "latency", "ms": 5000}),
    )]);
    let started = Instant::now();
    let a = get(&url, Some(FINISH)).await;
    assert_eq!(a.status, StatusCode::GATEWAY_TIMEOUT, "{}", a.text);
    assert!(
        started.elapsed() < Duration::from_millis(3800),
        "answered by the deadline"
    );
    let calls = s.sim.calls("waba");
    assert!(
        (2..=3).contains(&calls),
        "retried within the deadline only: {calls} calls"
    );
    s.sim.state.clear_faults();
    assert_eq!(get(&url, Some(FINISH)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn throttling_with_an_estimate_closes_the_gate() {
    let s = stack(world("demo"), TIMEOUTS);
    let blocked = s.url("/graph/101569239400667?fields=id");
    let other = s.url("/graph/102289599326934?fields=id");
    s.sim.state.add_faults(vec![fault(
        "waba",
        Some(1),
        json!({"kind": "throttle", "code": 80008, "minutes": 3}),
    )]);
    let a = get(&blocked, Some(FINISH)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text);
    assert_eq!(a.headers["retry-after"], "180");
    assert_eq!(a.error().code, 80008, "Graph's own error");
    assert_eq!(s.sim.calls("waba"), 1, "no retry against an estimate");
    // Until then the proxy answers at once, without asking Graph.
    for _ in 0..5 {
        let a = get(&blocked, Some(FINISH)).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((170..=180).contains(&wait), "{wait}");
        assert_eq!(a.error().error_type, "WabaProxyError");
    }
    assert_eq!(s.sim.calls("waba"), 1);
    // Other objects are not blocked.
    assert_eq!(get(&other, Some(FINISH)).await.status, StatusCode::OK);
    assert_eq!(s.sim.calls("waba"), 2);
}

#[tokio::test]
async fn a_rejected_system_user_token_turns_readiness_off() {
    let s = stack(world("demo"), TIMEOUTS);
    assert_eq!(get(&s.url("/readyz"), None).await.status, StatusCode::OK);
    s.sim.state.add_faults(vec![
        fault("waba", Some(1), json!({"kind": "error", "status": 400, "code": 190, "message": "Error validating access token: Session has expired"})),
        fault("debug_token", Some(1), json!({"kind": "error", "status": 400, "code": 190, "message": "Error validating access token"})),
    ]);
    let a = get(&s.url("/graph/101569239400667?fields=id"), Some(ADMIN)).await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY, "{}", a.text);
    let r = get(&s.url("/readyz"), None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    let said: Vec<String> = s
        .proxy
        .output()
        .into_iter()
        .filter(|l| l.contains("rejected the System User token"))
        .collect();
    assert_eq!(said.len(), 1, "said once: {said:?}");
}

#[tokio::test]
async fn failures_on_every_route() {
    let s = stack(world("demo"), TIMEOUTS);
    let routes = [
        ("debug_token", String::new(), None),
        (
            "phone_numbers",
            "/graph/102289599326934/phone_numbers".to_owned(),
            Some(ADMIN),
        ),
        (
            "client_wabas",
            format!("/graph/{PARTNER}/client_whatsapp_business_accounts"),
            Some(ADMIN),
        ),
        (
            "owned_wabas",
            format!("/graph/{PARTNER}/owned_whatsapp_business_accounts"),
            Some(ADMIN),
        ),
    ];
    // Warm the admin's WABA directory so the faults hit the routes under test.
    assert_eq!(
        get(&s.url("/graph/102289599326934?fields=id"), Some(ADMIN))
            .await
            .status,
        StatusCode::OK
    );
    // debug_token answers are cached once good: each case inspects a token not seen yet.
    let fresh_tokens = [
        FINISH,
        BIG_ID,
        "EAASimBusinessTokenXss00000000000000000000000004",
        "EAASimBusinessTokenExtraScopes000000000000000005",
    ];
    for (route, path, token) in &routes {
        for (i, (action, want, calls)) in [
            (json!({"kind": "throttle", "code": 17}), StatusCode::OK, 2),
            (json!({"kind": "drop"}), StatusCode::OK, 2),
            (json!({"kind": "malformed"}), StatusCode::BAD_GATEWAY, 1),
            (json!({"kind": "latency", "ms": 2500}), StatusCode::OK, 2),
        ]
        .into_iter()
        .enumerate()
        {
            let path = match *route {
                "debug_token" => format!("/graph/debug_token?input_token={}", fresh_tokens[i]),
                _ => path.clone(),
            };
            let before = s.sim.calls(route);
            s.sim
                .state
                .add_faults(vec![fault(route, Some(1), action.clone())]);
            let a = get(&s.url(&path), *token).await;
            assert_eq!(a.status, want, "{route} {action}: {}", a.text);
            assert_eq!(
                s.sim.calls(route) - before,
                calls,
                "{route} {action}: upstream calls"
            );
            s.sim.state.clear_faults();
            let ok = get(&s.url(&path), *token).await;
            assert_eq!(
                ok.status,
                StatusCode::OK,
                "{route} after {action}: {}",
                ok.text
            );
        }
    }
}

#[tokio::test]
async fn short_and_empty_pages_keep_their_links() {
    let s = stack(world("demo"), &["--cache-ttl-ms", "0"]);
    s.sim.state.add_faults(vec![fault(
        "client_wabas",
        Some(1),
        json!({"kind": "short_page", "items": 0}),
    )]);
    let mut url = Some(s.url(&format!(
        "/graph/{PARTNER}/client_whatsapp_business_accounts?limit=4&fields=id"
    )));
    let mut ids = Vec::new();
    let mut pages = 0;
    while let Some(u) = url {
        let a = get(&u, Some(ADMIN)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        let page: waba_graph::Page<waba_graph::Waba> = serde_json::from_str(&a.text).unwrap();
        pages += 1;
        ids.extend(page.data.iter().map(|w| w.id.clone()));
        url = page.paging.and_then(|p| p.next);
    }
    assert_eq!(
        (pages, ids.len()),
        (5, 13),
        "an empty first page, then 4 + 4 + 4 + 1"
    );
}

#[tokio::test]
async fn the_app_at_its_limit_pauses_every_call() {
    let s = stack(world("demo"), TIMEOUTS);
    s.sim.state.add_faults(vec![fault(
        "waba",
        Some(1),
        json!({"kind": "throttle", "code": 4, "app_usage": 100}),
    )]);
    let a = get(&s.url("/graph/101569239400667?fields=id"), Some(ADMIN)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text);
    assert_eq!(a.headers["retry-after"], "60");
    let graph_calls = s.sim.state.calls().values().sum::<u64>();
    // Any other call, on any route, waits too, without asking Graph.
    for path in [
        "/graph/102289599326934?fields=id".to_owned(),
        format!("/graph/{PARTNER}/owned_whatsapp_business_accounts"),
        format!("/graph/debug_token?input_token={BIG_ID}"),
    ] {
        let a = get(&s.url(&path), Some(ADMIN)).await;
        assert_eq!(
            a.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{path}: {}",
            a.text
        );
    }
    assert_eq!(s.sim.state.calls().values().sum::<u64>(), graph_calls);
}

/// One deadline per request, shared by every Graph call it makes: a signup report (a
/// `debug_token` and a WABA read, each slow) and a code exchange (the exchange, `debug_token`
/// and a WABA read) are answered by the request timeout, not one timeout per call.
#[tokio::test]
async fn the_signup_routes_answer_by_one_request_deadline() {
    let db = waba_testkit::harness::temp_database();
    let dbs = db.display().to_string();
    let args = with_database(
        &[
            "--upstream-timeout-ms",
            "2500",
            "--request-timeout-ms",
            "3000",
            "--app-id",
            "670843887433847",
            "--app-secret",
            DEMO_APP_SECRET,
            "--token-key",
            "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
        ],
        &dbs,
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = stack(world("demo"), &args);
    let slow = |route| fault(route, None, json!({"kind": "latency", "ms": 2000}));
    s.sim.state.add_faults(vec![
        slow("debug_token"),
        slow("waba"),
        slow("oauth_access_token"),
    ]);
    let event = json!({"type": "WA_EMBEDDED_SIGNUP", "event": "FINISH",
                       "data": {"waba_id": "102289599326934", "business_id": "2"}});
    let started = Instant::now();
    let a = send(
        client()
            .post(s.url("/signup/events"))
            .bearer_auth(FINISH)
            .json(&json!({"event": event})),
    )
    .await;
    let report_took = started.elapsed();
    let code = s.sim.state.mint_code(FINISH);
    let started = Instant::now();
    let b = send(
        client()
            .post(s.url("/signup/exchange"))
            .json(&json!({"code": code, "event": event})),
    )
    .await;
    let exchange_took = started.elapsed();
    assert!(
        report_took < Duration::from_millis(3800),
        "the report took {report_took:?}: {} {}",
        a.status,
        a.text
    );
    assert!(
        exchange_took < Duration::from_millis(3800),
        "the exchange took {exchange_took:?}: {} {}",
        b.status,
        b.text
    );
}
