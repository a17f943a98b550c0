//! Graceful shutdown, CORS, and answers from a proxy that cannot reach Graph.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

/// graph-sim answers the next WABA read `ms` milliseconds late.
#[allow(clippy::unwrap_used)] // Test code: a fault that does not parse is a failed test.
fn slow_next_waba_read(s: &Stack, ms: u64) {
    s.sim.state.add_faults(vec![
        serde_json::from_value(json!({
            "route": "waba", "times": 1, "action": {"kind": "latency", "ms": ms}
        }))
        .unwrap(),
    ]);
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    let s = stack(world("demo"), &[]);
    let url = s.url("/graph/102289599326934?fields=id");
    assert_eq!(get(&url, Some(ADMIN)).await.status, StatusCode::OK);
    slow_next_waba_read(&s, 700);
    let slow = tokio::spawn(async move { get(&url, Some(ADMIN)).await.status });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &s.proxy.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(
        slow.await.unwrap(),
        StatusCode::OK,
        "the in-flight request finished"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        client().get(s.url("/healthz")).send().await.is_err(),
        "then it stopped"
    );
    assert!(s.proxy.output().iter().any(|l| l.contains("shutting down")));
}

#[tokio::test]
async fn cors_only_for_configured_origins() {
    let s = stack(world("demo"), &["--cors-origin", "https://partner.example"]);
    let preflight = |origin: &'static str| {
        client()
            .request(reqwest::Method::OPTIONS, s.url("/graph/102289599326934"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let ok = preflight("https://partner.example").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://partner.example"
    );
    assert!(
        !ok.headers()
            .contains_key("access-control-allow-credentials")
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    let a = send(
        client()
            .get(s.url("/graph/102289599326934?fields=id"))
            .bearer_auth(FINISH)
            .header("origin", "https://partner.example"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.headers["access-control-allow-origin"],
        "https://partner.example"
    );
    assert!(a.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn graph_unreachable_is_502_and_never_hangs() {
    // Nothing listens on port 1.
    let proxy = proxy_for("http://127.0.0.1:1", &[]);
    let a = get(
        &format!("{}/graph/102289599326934", proxy.url),
        Some(FINISH),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY, "{}", a.text);
    let a = get(&format!("{}/readyz", proxy.url), None).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        get(&format!("{}/healthz", proxy.url), None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn max_concurrency_counts_requests_on_every_route_together() {
    // `--max-concurrency 1`: while one read waits on Graph, a request to another route is
    // shed with 503 at once; once the read is answered, the next request is served.
    let s = stack(world("demo"), &["--max-concurrency", "1"]);
    let url = s.url("/graph/102289599326934?fields=id");
    assert_eq!(get(&url, Some(ADMIN)).await.status, StatusCode::OK);
    slow_next_waba_read(&s, 800);
    // Another read than the one just shared, so it reaches Graph.
    let slow_url = s.url("/graph/102289599326934?fields=id,name");
    let before = s.sim.calls("waba");
    let slow = tokio::spawn(async move { get(&slow_url, Some(ADMIN)).await.status });
    // The slow read is at Graph (and holds the only slot) once graph-sim has counted it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.sim.calls("waba") == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the read never reached Graph"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let shed = get(&s.url("/admin/onboardings"), Some(ADMIN)).await;
    assert_eq!(
        shed.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        shed.text
    );
    assert!(shed.headers.contains_key("x-request-id"));
    // What tells an orchestrator and Prometheus about the proxy is never shed.
    for probe in ["/healthz", "/metrics"] {
        let a = get(&s.url(probe), None).await;
        assert_eq!(a.status, StatusCode::OK, "{probe} while full: {}", a.text);
    }
    assert_eq!(slow.await.unwrap(), StatusCode::OK);
    let after = get(&s.url("/admin/onboardings"), Some(ADMIN)).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text);
}
