//! Graph's failures, injected by graph-sim, reach the client with the right status, never a
//! panic or a hang, and the proxy serves the next request.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn fault(route: &str, action: Value) -> tests::sim::faults::Fault {
    serde_json::from_value(json!({"route": route, "times": 1, "action": action})).expect("fault")
}

#[tokio::test]
async fn each_failure_maps_to_an_honest_status() {
    let s = stack(world("demo"), &[]);
    let url = s.url("/graph/102289599326934?fields=id,name");
    assert_eq!(get(&url, Some(FINISH)).await.status, StatusCode::OK);
    let cases: Vec<(Value, StatusCode, Option<&str>)> = vec![
        (
            json!({"kind": "throttle", "code": 4, "minutes": 3}),
            StatusCode::TOO_MANY_REQUESTS,
            Some("180"),
        ),
        (
            json!({"kind": "throttle", "code": 80008, "status": 403}),
            StatusCode::TOO_MANY_REQUESTS,
            Some("60"),
        ),
        (
            json!({"kind": "throttle", "code": 613}),
            StatusCode::TOO_MANY_REQUESTS,
            Some("60"),
        ),
        (
            json!({"kind": "server_error", "status": 500}),
            StatusCode::SERVICE_UNAVAILABLE,
            Some("5"),
        ),
        (
            json!({"kind": "error", "status": 500, "code": 131000, "message": "Something went wrong"}),
            StatusCode::BAD_GATEWAY,
            None,
        ),
        (
            json!({"kind": "error", "status": 400, "code": 190, "message": "Invalid OAuth access token"}),
            StatusCode::BAD_GATEWAY,
            None,
        ),
        (
            json!({"kind": "error", "status": 403, "code": 10, "message": "(#10) Application does not have permission"}),
            StatusCode::FORBIDDEN,
            None,
        ),
        (json!({"kind": "malformed"}), StatusCode::BAD_GATEWAY, None),
        (json!({"kind": "truncated"}), StatusCode::BAD_GATEWAY, None),
        (json!({"kind": "drop"}), StatusCode::BAD_GATEWAY, None),
        (
            json!({"kind": "huge", "bytes": 6_000_000}),
            StatusCode::BAD_GATEWAY,
            None,
        ),
        (
            json!({"kind": "latency", "ms": 2500}),
            StatusCode::GATEWAY_TIMEOUT,
            None,
        ),
    ];
    for (action, want, retry_after) in cases {
        let before = s.sim.calls("waba");
        s.sim.state.add_faults(vec![fault("waba", action.clone())]);
        let a = get(&url, Some(FINISH)).await;
        assert_eq!(a.status, want, "{action}: {}", a.text);
        let e = a.error();
        assert!(!e.message.is_empty(), "{action}");
        assert_eq!(
            a.headers.get("retry-after").map(|v| v.to_str().unwrap()),
            retry_after,
            "{action}"
        );
        assert_eq!(
            s.sim.calls("waba"),
            before + 1,
            "{action}: one upstream call"
        );
        // The proxy is still serving.
        let ok = get(&url, Some(FINISH)).await;
        assert_eq!(ok.status, StatusCode::OK, "after {action}: {}", ok.text);
    }
}

#[tokio::test]
async fn failures_on_every_route() {
    let s = stack(world("demo"), &[]);
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
        for (i, (action, want)) in [
            (
                json!({"kind": "throttle", "code": 17}),
                StatusCode::TOO_MANY_REQUESTS,
            ),
            (json!({"kind": "drop"}), StatusCode::BAD_GATEWAY),
            (json!({"kind": "malformed"}), StatusCode::BAD_GATEWAY),
            (
                json!({"kind": "latency", "ms": 2500}),
                StatusCode::GATEWAY_TIMEOUT,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let path = match *route {
                "debug_token" => format!("/graph/debug_token?input_token={}", fresh_tokens[i]),
                _ => path.clone(),
            };
            s.sim.state.add_faults(vec![fault(route, action.clone())]);
            let a = get(&s.url(&path), *token).await;
            assert_eq!(a.status, want, "{route} {action}: {}", a.text);
            assert_eq!(
                a.error().error_type == "WabaProxyError",
                want != StatusCode::TOO_MANY_REQUESTS
            );
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
    let s = stack(world("demo"), &[]);
    s.sim.state.add_faults(vec![fault(
        "client_wabas",
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
        (3, 7),
        "an empty first page, then 4 + 3"
    );
}
