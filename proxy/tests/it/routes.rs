//! Every route's happy path through a real `waba-proxy` in front of graph-sim, and paging
//! through 10,000 WABAs by the proxy's own links.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashSet;
use waba_graph::{DebugToken, Page, PhoneNumber, Waba, WabaScope};

#[tokio::test]
async fn debug_token_is_public_and_keeps_graphs_shape() {
    let s = stack(world("demo"), &[]);
    let a = get(
        &s.url(&format!("/graph/debug_token?input_token={FINISH}")),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let t: DebugToken = serde_json::from_str(&a.text).unwrap();
    let ids = t.data.granted_wabas(WabaScope::Management).unwrap();
    assert_eq!(ids[0].as_str(), "102289599326934", "newest first");
    // The version segment is accepted; the proxy uses its own version upstream.
    let a = get(
        &s.url(&format!("/graph/v21.0/debug_token?input_token={FINISH}")),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        s.sim.calls("debug_token"),
        1,
        "the second answer came from the cache"
    );
}

#[tokio::test]
async fn a_signup_token_reads_its_wabas_with_phones_in_one_call() {
    let s = stack(world("demo"), &[]);
    let fields = "id,name,account_review_status,phone_numbers{id,display_phone_number,status,quality_rating}";
    let a = get(
        &s.url(&format!(
            "/graph/v26.0/102289599326934?fields={}",
            encode(fields)
        )),
        Some(FINISH),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let w: Waba = serde_json::from_str(&a.text).unwrap();
    assert_eq!(w.name.as_deref(), Some("Lucky Shrub"));
    assert_eq!(w.phone_numbers.unwrap().data.len(), 2);
    assert_eq!((s.sim.calls("debug_token"), s.sim.calls("waba")), (1, 1));

    let a = get(
        &s.url("/graph/101569239400667/phone_numbers?fields=id,status&limit=1"),
        Some(FINISH),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let page: Page<PhoneNumber> = serde_json::from_str(&a.text).unwrap();
    assert_eq!(page.data[0].status.as_deref(), Some("CONNECTED"));
    assert_eq!(s.sim.calls("debug_token"), 1, "token check cached");

    // Ids above 2^53 stay exact end to end.
    let a = get(
        &s.url("/graph/9007199254740993?fields=id,phone_numbers{id}"),
        Some(BIG_ID),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json()["id"], json!("9007199254740993"));
    assert_eq!(
        a.json()["phone_numbers"]["data"][0]["id"],
        json!("9007199254740995")
    );
}

#[tokio::test]
async fn the_admin_lists_client_and_owned_wabas_and_reads_any_of_them() {
    let s = stack(world("demo"), &[]);
    let a = get(
        &s.url(&format!("/graph/{PARTNER}/client_whatsapp_business_accounts?fields=id,name,account_review_status&limit=3&sort=creation_time_descending")),
        Some(ADMIN),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let page: Page<Waba> = serde_json::from_str(&a.text).unwrap();
    assert_eq!(page.data.len(), 3);
    assert_eq!(page.data[0].id.as_str(), "9007199254740993", "newest first");
    let next = page.paging.unwrap().next.unwrap();
    assert!(next.starts_with(&s.proxy.url), "{next}");
    assert!(!next.contains("access_token"), "{next}");

    let a = get(
        &s.url(&format!(
            "/graph/{PARTNER}/owned_whatsapp_business_accounts"
        )),
        Some(ADMIN),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let page: Page<Waba> = serde_json::from_str(&a.text).unwrap();
    assert_eq!(page.data.len(), 2);

    let a = get(
        &s.url("/graph/106540352242922?fields=id,account_review_status"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json()["account_review_status"], json!("REJECTED"));
    assert_eq!(
        s.sim.calls("debug_token"),
        0,
        "the admin token is never sent to Graph"
    );
}

#[tokio::test]
async fn ten_thousand_wabas_page_through_the_proxys_links() {
    let s = stack(world("large"), &[]);
    let mut url = s.url(&format!(
        "/graph/v26.0/{PARTNER}/client_whatsapp_business_accounts?limit=100&fields=id,name,account_review_status"
    ));
    let mut pages = 0;
    let mut ids = HashSet::new();
    loop {
        let a = get(&url, Some(ADMIN)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        pages += 1;
        let page: Page<Waba> = serde_json::from_str(&a.text).unwrap();
        ids.extend(page.data.into_iter().map(|w| w.id));
        let Some(next) = page.paging.and_then(|p| p.next) else {
            break;
        };
        assert!(
            next.starts_with(&s.proxy.url) && !next.contains("access_token"),
            "{next}"
        );
        assert!(!next.contains(LARGE_SYSTEM));
        url = next;
        assert!(pages < 101);
    }
    assert_eq!((pages, ids.len()), (100, 10_000));
    assert_eq!(s.sim.calls("client_wabas"), 100);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let s = stack(world("demo"), &[]);
    assert_eq!(get(&s.url("/healthz"), None).await.status, StatusCode::OK);
    let a = get(&s.url("/readyz"), None).await;
    assert_eq!(
        (a.status, a.json()["status"].clone()),
        (StatusCode::OK, json!("ready"))
    );
    get(&s.url("/readyz"), None).await;
    assert_eq!(s.sim.calls("debug_token"), 1, "readiness is cached");
    get(
        &s.url(&format!("/graph/debug_token?input_token={FINISH}")),
        None,
    )
    .await;
    let m = get(&s.url("/metrics"), None).await;
    assert_eq!(m.status, StatusCode::OK);
    for name in [
        "waba_requests_total",
        "waba_upstream_seconds",
        "waba_cache_misses_total",
    ] {
        assert!(m.text.contains(name), "{name} missing from:\n{}", m.text);
    }
    assert!(m.text.contains(r#"route="debug_token""#), "{}", m.text);

    // With a System User token Graph does not accept, the proxy says it is not ready.
    let mut w = world("demo");
    w.scenario.system_user_token = "EAASimSomeOtherTokenThatGraphRejects00000000001".into();
    let sim = waba_testkit::harness::SimServer::start_world(w).unwrap();
    let proxy = waba_testkit::harness::start_proxy(
        env!("CARGO_BIN_EXE_waba-proxy").as_ref(),
        &sim.url,
        &["--system-user-token", DEMO_SYSTEM, "--business-id", PARTNER],
    )
    .unwrap();
    let a = get(&format!("{}/readyz", proxy.url), None).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text);
    assert!(!a.text.contains(DEMO_SYSTEM));
}

/// RFC 9110 §15.5.6: every 405 carries `Allow` with the methods the resource takes.
#[tokio::test]
async fn every_405_names_the_allowed_methods() {
    let s = stack(world("demo"), &[]);
    let cases = [
        (reqwest::Method::POST, "/graph/102289599326934", "GET"),
        (reqwest::Method::DELETE, "/graph/debug_token", "GET"),
        (reqwest::Method::GET, "/signup/exchange", "POST"),
        (reqwest::Method::PUT, "/admin/onboardings", "GET"),
    ];
    for (method, path, allowed) in cases {
        let a = send(
            client()
                .request(method.clone(), s.url(path))
                .bearer_auth(ADMIN),
        )
        .await;
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        let allow = a
            .headers
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            allow.split(',').any(|m| m.trim() == allowed),
            "{method} {path}: Allow is {allow:?}"
        );
        // In Graph's envelope like every other refusal.
        assert_eq!(a.error().code, 2500, "{method} {path}");
        assert_eq!(
            a.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json; charset=utf-8"),
            "{method} {path}"
        );
    }
}

/// `GET /signup/accounts`: the signup page's statuses in one round trip, for a business token
/// (the token flow) and for a code-flow session alike.
#[tokio::test]
async fn signup_accounts_answers_every_granted_waba_as_its_read_does() {
    let s = stack(world("demo"), &[]);
    let a = get(&s.url("/signup/accounts"), Some(FINISH)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(
        !a.text.contains(FINISH),
        "the business token is never echoed"
    );
    let body = a.json();
    assert_eq!(body["wabas"], json!(["102289599326934", "101569239400667"]));
    let accounts = body["accounts"].as_array().expect("accounts");
    assert_eq!(accounts.len(), 2);
    // One debug_token (which WABAs) and one read of each, no more.
    assert_eq!((s.sim.calls("debug_token"), s.sim.calls("waba")), (1, 2));
    let fields = encode(waba_graph::status::STATUS_FIELDS);
    for (i, id) in ["102289599326934", "101569239400667"].iter().enumerate() {
        let read = get(
            &s.url(&format!("/graph/{id}?fields={fields}")),
            Some(FINISH),
        )
        .await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.text);
        assert_eq!(accounts[i], read.json(), "the same answer as the read");
    }
    assert_eq!(s.sim.calls("waba"), 2, "the reads were shared");
}

#[tokio::test]
async fn signup_accounts_refuses_what_has_no_grant() {
    let s = stack(world("demo"), &[]);
    let url = s.url("/signup/accounts");
    assert_eq!(get(&url, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(&url, Some(EXPIRED)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let admin = get(&url, Some(ADMIN)).await;
    assert_eq!(admin.status, StatusCode::FORBIDDEN, "{}", admin.text);
    assert_eq!(admin.error().code, 200, "Graph's permission code");
    assert_eq!(
        s.sim.calls("waba"),
        0,
        "nothing was read for a refused caller"
    );
    let post = send(client().post(&url).bearer_auth(FINISH)).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// A granted WABA whose read fails is left out (the page reads it itself and shows that
/// read's error); the others are answered.
#[tokio::test]
async fn signup_accounts_leaves_out_a_read_that_failed() {
    let s = stack(world("demo"), &[]);
    s.sim.state.add_faults(vec![
        serde_json::from_value(
            json!({"route": "waba", "times": 1, "action": {"kind": "malformed"}}),
        )
        .unwrap(),
    ]);
    let a = get(&s.url("/signup/accounts"), Some(FINISH)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let body = a.json();
    assert_eq!(body["wabas"].as_array().map(Vec::len), Some(2));
    let accounts = body["accounts"].as_array().expect("accounts");
    assert_eq!(accounts.len(), 1, "{}", a.text);
    assert!(["102289599326934", "101569239400667"].contains(&accounts[0]["id"].as_str().unwrap()));
}

/// Meta limiting requests is the whole answer, with when to ask again: the page waits rather
/// than reading each account itself while Meta refuses.
#[tokio::test]
async fn signup_accounts_answers_metas_throttling_as_such() {
    let s = stack(world("demo"), &[]);
    s.sim.state.add_faults(vec![
        serde_json::from_value(json!({"route": "waba", "times": 1,
            "action": {"kind": "throttle", "code": 80008, "minutes": 1}}))
        .unwrap(),
    ]);
    let a = get(&s.url("/signup/accounts"), Some(FINISH)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text);
    assert!(a.headers.contains_key("retry-after"), "{:?}", a.headers);
    assert!(!a.text.contains(FINISH));
}

#[tokio::test]
async fn a_waba_read_without_id_among_its_fields_answers_with_the_id() {
    // Graph returns a node's id whatever fields are asked for; the contract promises it.
    let s = stack(world("demo"), &[]);
    for token in [ADMIN, FINISH] {
        let a = get(
            &s.url("/graph/101569239400667?fields=creation_time,health_status"),
            Some(token),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        let w: Waba = serde_json::from_str(&a.text).unwrap();
        assert_eq!(w.id.as_str(), "101569239400667");
        assert!(w.health_status.is_some());
    }
}
