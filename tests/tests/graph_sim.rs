//! The Graph simulator behaves like Graph: shapes, auth errors, paging, filtering, the code
//! exchange, call counts and fault injection. Each test runs a real `graph-sim` process.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use waba_graph::error::{BusinessUseCaseUsage, regain_access_minutes};
use waba_graph::{DebugToken, ErrorClass, ErrorEnvelope, Page, Waba, WabaScope};
use waba_testkit::harness::{Running, scenario, start_sim};

const DEMO_SYSTEM: &str = "EAASimSystemUserTokenDemo0000000000000000000000001";
const LARGE_SYSTEM: &str = "EAASimSystemUserTokenLarge000000000000000000000001";
const PARTNER: &str = "805021500648488";
const FINISH: &str = "EAASimBusinessTokenFinish000000000000000000000001";

fn sim(name: &str, extra: &[&str]) -> Running {
    start_sim(
        env!("CARGO_BIN_EXE_graph-sim").as_ref(),
        &scenario(name),
        extra,
    )
    .expect("graph-sim starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

async fn get(url: &str, token: Option<&str>) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = client().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.json().await.expect("JSON body");
    (status, headers, body)
}

fn graph_error(body: &Value) -> waba_graph::GraphError {
    serde_json::from_value::<ErrorEnvelope>(body.clone())
        .expect("Graph error envelope")
        .error
}

async fn calls(s: &Running) -> Value {
    get(&format!("{}/_sim/calls", s.url), None).await.2
}

async fn add_fault(s: &Running, fault: Value) {
    let res = client()
        .post(format!("{}/_sim/faults", s.url))
        .json(&fault)
        .send()
        .await
        .expect("control call");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn debug_token_requires_the_system_user_token() {
    let s = sim("demo", &[]);
    let url = format!("{}/v26.0/debug_token?input_token={FINISH}", s.url);
    let (status, headers, body) = get(&url, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let e = graph_error(&body);
    assert_eq!((e.code, e.error_type.as_str()), (104, "OAuthException"));
    assert!(e.fbtrace_id.is_some());
    assert!(headers.contains_key("www-authenticate"));
    // A business token is not allowed to inspect tokens.
    let (status, _, body) = get(&url, Some(FINISH)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(graph_error(&body).class(), ErrorClass::InvalidToken);
    // The app token (app_id|secret) is, like in Graph.
    let (status, _, _) = get(&url, Some("670843887433847|sim-app-secret-demo-5f1e0c9a")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn debug_token_describes_each_kind_of_token() {
    let s = sim("demo", &[]);
    let inspect = |t: &str| format!("{}/v26.0/debug_token?input_token={t}", s.url);
    let (status, _, body) = get(&inspect(FINISH), Some(DEMO_SYSTEM)).await;
    assert_eq!(status, StatusCode::OK);
    let t: DebugToken = serde_json::from_value(body).unwrap();
    assert!(t.data.is_valid);
    let ids = t.data.granted_wabas(WabaScope::Management).unwrap();
    assert_eq!(
        ids.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
        ["102289599326934", "101569239400667"]
    );

    let (_, _, body) = get(
        &inspect("EAASimBusinessTokenExpired0000000000000000000006"),
        Some(DEMO_SYSTEM),
    )
    .await;
    let t: DebugToken = serde_json::from_value(body).unwrap();
    assert!(!t.data.is_valid);
    let err = t.data.error.unwrap();
    assert_eq!((err.code, err.subcode), (190, Some(463)));

    for unknown in [
        "EAASimBusinessTokenRevoked0000000000000000000007",
        "nonsense",
    ] {
        let (status, _, body) = get(&inspect(unknown), Some(DEMO_SYSTEM)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "debug_token answers 200 for bad input tokens"
        );
        let t: DebugToken = serde_json::from_value(body).unwrap();
        assert!(!t.data.is_valid);
        assert_eq!(t.data.error.unwrap().code, 190);
    }

    let (_, _, body) = get(
        &inspect("EAASimBusinessTokenExtraScopes000000000000000005"),
        Some(DEMO_SYSTEM),
    )
    .await;
    let t: DebugToken = serde_json::from_value(body).unwrap();
    assert!(
        t.data
            .granular_scopes
            .iter()
            .any(|g| g.scope == "whatsapp_business_manage_events")
    );
    let ids = t.data.granted_wabas(WabaScope::Management).unwrap();
    assert_eq!(
        ids.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
        ["106540352242922"]
    );

    let (status, _, body) = get(&format!("{}/v26.0/debug_token", s.url), Some(DEMO_SYSTEM)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(graph_error(&body).code, 100);
}

#[tokio::test]
async fn ten_thousand_wabas_take_exactly_100_pages_of_100() {
    let s = sim("large", &[]);
    let mut url = format!(
        "{}/v26.0/{PARTNER}/client_whatsapp_business_accounts?limit=100&fields=id,name,account_review_status,creation_time",
        s.url
    );
    let mut pages = 0;
    let mut seen = HashSet::new();
    loop {
        let (status, _, body) = get(&url, Some(LARGE_SYSTEM)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        let page: Page<Waba> = serde_json::from_value(body).unwrap();
        assert_eq!(page.data.len(), 100);
        for w in &page.data {
            assert!(seen.insert(w.id.clone()), "duplicate {}", w.id);
        }
        match page.paging.and_then(|p| p.next) {
            Some(next) => {
                assert!(next.starts_with(&s.url), "absolute URL: {next}");
                assert!(
                    next.contains(&format!("access_token={LARGE_SYSTEM}")),
                    "{next}"
                );
                // Follow it verbatim, as a Graph SDK does: the token is in the URL.
                url = next;
                let (status, _, _) = get(&url, None).await;
                assert_eq!(status, StatusCode::OK);
            }
            None => break,
        }
        assert!(pages <= 100, "more than 100 pages");
    }
    assert_eq!(pages, 100);
    assert_eq!(seen.len(), 10_000);
    assert!(
        seen.iter()
            .any(|id| id.as_str().parse::<u64>().unwrap() > (1u64 << 53))
    );
    assert_eq!(calls(&s).await["routes"]["client_wabas"], json!(100 + 99));
}

#[tokio::test]
async fn filtering_and_sort_match_ground_truth() {
    let s = sim("large", &[]);
    let edge = format!(
        "{}/v26.0/{PARTNER}/client_whatsapp_business_accounts",
        s.url
    );
    let all = |query: String| {
        let url = format!("{edge}?limit=100&fields=id,creation_time&{query}");
        async move {
            let mut out = Vec::new();
            let mut next = Some(url);
            while let Some(url) = next {
                let (status, _, body) = get(&url, Some(LARGE_SYSTEM)).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                let page: Page<Waba> = serde_json::from_value(body).unwrap();
                next = page.paging.and_then(|p| p.next);
                out.extend(page.data.into_iter().map(|w| w.creation_time.unwrap().0));
            }
            out
        }
    };
    let cut = 1_577_836_800 + 9_000 * 3600;
    let filter = |op: &str| {
        let f = format!(r#"[{{"field":"creation_time","operator":"{op}","value":"{cut}"}}]"#);
        form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>()
    };
    let newer = all(format!(
        "filtering={}&sort=creation_time_descending",
        filter("GREATER_THAN")
    ))
    .await;
    assert!(!newer.is_empty() && newer.len() < 10_000);
    assert!(newer.iter().all(|t| *t > cut));
    assert!(newer.windows(2).all(|w| w[0] >= w[1]), "descending");
    let older = all(format!(
        "filtering={}&sort=creation_time_ascending",
        filter("LESS_THAN")
    ))
    .await;
    assert!(older.iter().all(|t| *t < cut));
    assert!(older.windows(2).all(|w| w[0] <= w[1]), "ascending");
    assert_eq!(newer.len() + older.len(), 10_000);

    // A range is two conditions; IN_RANGE is not documented for these edges.
    let low = 1_577_836_800 + 2_000 * 3600;
    let both = form_urlencoded::byte_serialize(
        format!(
            r#"[{{"field":"creation_time","operator":"GREATER_THAN","value":"{low}"}},{{"field":"creation_time","operator":"LESS_THAN","value":"{cut}"}}]"#
        )
        .as_bytes(),
    )
    .collect::<String>();
    let between = all(format!("filtering={both}")).await;
    assert!(!between.is_empty() && between.len() < older.len());
    assert!(between.iter().all(|t| *t > low && *t < cut));
    let range = form_urlencoded::byte_serialize(
        br#"[{"field":"creation_time","operator":"IN_RANGE","value":["1","2"]}]"#,
    )
    .collect::<String>();
    let owned = format!("{}/v26.0/{PARTNER}/owned_whatsapp_business_accounts", s.url);
    for list in [&edge, &owned] {
        let (status, _, body) = get(&format!("{list}?filtering={range}"), Some(LARGE_SYSTEM)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "IN_RANGE: {body}");
        assert_eq!(graph_error(&body).code, 100);
    }
    // Meta's client-edge example: ownership_type IN.
    let own = form_urlencoded::byte_serialize(
        br#"[{"field":"ownership_type","operator":"IN","value":["SELF","CLIENT_OWNED"]}]"#,
    )
    .collect::<String>();
    let (status, _, body) = get(
        &format!("{edge}?filtering={own}&limit=5"),
        Some(LARGE_SYSTEM),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn bad_parameters_get_graphs_errors() {
    let s = sim("demo", &[]);
    let edge = format!(
        "{}/v26.0/{PARTNER}/client_whatsapp_business_accounts",
        s.url
    );
    for query in [
        "limit=101",
        "limit=0",
        "limit=abc",
        "sort=name",
        "filtering=%5B%5D",
        "after=%25%25",
    ] {
        let (status, _, body) = get(&format!("{edge}?{query}"), Some(DEMO_SYSTEM)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let e = graph_error(&body);
        assert_eq!(e.code, 100, "{query}");
        assert!(
            e.message.starts_with("(#100)") || e.message.contains("cursor"),
            "{query}: {}",
            e.message
        );
    }
    let (_, _, body) = get(&format!("{edge}?limit=101"), Some(DEMO_SYSTEM)).await;
    assert!(graph_error(&body).message.contains("(#100)"));
    // Business tokens may not list a business's WABAs; unknown businesses do not exist.
    let (status, _, body) = get(&edge, Some(FINISH)).await;
    assert_eq!(
        (status, graph_error(&body).code),
        (StatusCode::FORBIDDEN, 200)
    );
    let (status, _, body) = get(
        &format!("{}/v26.0/1/client_whatsapp_business_accounts", s.url),
        Some(DEMO_SYSTEM),
    )
    .await;
    assert_eq!(
        (status, graph_error(&body).error_subcode),
        (StatusCode::BAD_REQUEST, Some(33))
    );
    let (status, _, body) = get(
        &format!("{}/v26.0/{PARTNER}/secrets", s.url),
        Some(DEMO_SYSTEM),
    )
    .await;
    assert_eq!(
        (status, graph_error(&body).code),
        (StatusCode::BAD_REQUEST, 2500)
    );
    let res = client()
        .post(&edge)
        .bearer_auth(DEMO_SYSTEM)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn waba_node_with_phone_expansion_and_per_token_access() {
    let s = sim("demo", &[]);
    let node = |id: &str, fields: &str| {
        let fields = form_urlencoded::byte_serialize(fields.as_bytes()).collect::<String>();
        format!("{}/v26.0/{id}?fields={fields}", s.url)
    };
    let fields = "id,name,account_review_status,creation_time,health_status,phone_numbers{id,display_phone_number,status,quality_rating,code_verification_status}";
    let (status, _, body) = get(&node("102289599326934", fields), Some(FINISH)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let w: Waba = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(w.account_review_status.unwrap().as_str(), "APPROVED");
    assert_eq!(w.phone_numbers.unwrap().data.len(), 2);
    assert!(body["creation_time"].as_str().unwrap().ends_with("+0000"));
    assert!(body.get("currency").is_none(), "only requested fields");
    // Meta's own example: the review status, and the id Graph always adds
    // (`{ "account_review_status": "APPROVED", "id": "1111111111111" }`).
    let (_, _, body) = get(
        &node("102289599326934", "account_review_status"),
        Some(DEMO_SYSTEM),
    )
    .await;
    assert_eq!(
        body,
        json!({"account_review_status": "APPROVED", "id": "102289599326934"})
    );
    // A token granted A asking for B: Graph's unsupported-get error, not the data.
    let (status, _, body) = get(&node("106540352242922", "id,name"), Some(FINISH)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(graph_error(&body).error_subcode, Some(33));
    let (_, _, body) = get(&node("102289599326934", "id,access_token"), Some(FINISH)).await;
    assert!(
        graph_error(&body)
            .message
            .contains("nonexisting field (access_token)")
    );
    let (_, _, body) = get(
        &node("102289599326934", "id"),
        Some("EAASimBusinessTokenExpired0000000000000000000006"),
    )
    .await;
    let e = graph_error(&body);
    assert_eq!((e.code, e.error_subcode), (190, Some(463)));
    // Ids above 2^53 come back exact.
    let (status, _, body) = get(
        &node("9007199254740993", "id,phone_numbers{id}"),
        Some(DEMO_SYSTEM),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], json!("9007199254740993"));
    assert_eq!(
        body["phone_numbers"]["data"][0]["id"],
        json!("9007199254740995")
    );
    // The phone numbers edge pages like the others.
    let url = format!("{}/v26.0/102289599326934/phone_numbers?limit=1", s.url);
    let (status, _, body) = get(&url, Some(FINISH)).await;
    assert_eq!(status, StatusCode::OK);
    let page: Page<waba_graph::PhoneNumber> = serde_json::from_value(body).unwrap();
    assert_eq!(page.data.len(), 1);
    let next = page.paging.unwrap().next.unwrap();
    let (_, _, body) = get(&next, None).await;
    let page: Page<waba_graph::PhoneNumber> = serde_json::from_value(body).unwrap();
    assert_eq!(page.data[0].id.as_str(), "110200000000002");
    assert!(page.paging.unwrap().previous.is_some());
}

#[tokio::test]
async fn codes_work_once_and_expire() {
    let s = sim("demo", &["--code-ttl-secs", "1"]);
    let mint = || async {
        let res = client()
            .post(format!("{}/_sim/codes", s.url))
            .json(&json!({"token": FINISH}))
            .send()
            .await
            .unwrap();
        res.json::<Value>().await.unwrap()["code"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let exchange = |code: String, secret: &str| {
        format!(
            "{}/v26.0/oauth/access_token?client_id=670843887433847&client_secret={secret}&code={code}",
            s.url
        )
    };
    let secret = "sim-app-secret-demo-5f1e0c9a";
    let code = mint().await;
    let (status, _, body) = get(&exchange(code.clone(), secret), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["access_token"], json!(FINISH));
    let (status, _, body) = get(&exchange(code, secret), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(graph_error(&body).error_subcode, Some(36009), "used once");
    let (_, _, body) = get(&exchange(mint().await, "wrong"), None).await;
    assert_eq!(
        graph_error(&body).message,
        "Error validating client secret."
    );
    let late = mint().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, _, body) = get(&exchange(late, secret), None).await;
    assert_eq!(graph_error(&body).error_subcode, Some(36007), "expired");
}

#[tokio::test]
async fn first_call_throttled_then_success() {
    let s = sim("demo", &[]);
    add_fault(&s, json!({"route": "waba", "times": 1, "action": {"kind": "throttle", "code": 80008, "minutes": 7}})).await;
    let url = format!("{}/v26.0/102289599326934?fields=id", s.url);
    let (status, headers, body) = get(&url, Some(DEMO_SYSTEM)).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "Graph throttles with 400, not 429"
    );
    let e = graph_error(&body);
    assert_eq!((e.code, e.class()), (80008, ErrorClass::Throttled));
    let usage: BusinessUseCaseUsage =
        serde_json::from_str(headers["x-business-use-case-usage"].to_str().unwrap()).unwrap();
    assert_eq!(regain_access_minutes(&usage), 7);
    let (status, _, _) = get(&url, Some(DEMO_SYSTEM)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(calls(&s).await["routes"]["waba"], json!(2));
}

#[tokio::test]
async fn injected_faults_behave_as_named() {
    let s = sim("demo", &[]);
    let url = format!("{}/v26.0/102289599326934?fields=id", s.url);
    let send = || client().get(&url).bearer_auth(DEMO_SYSTEM).send();

    add_fault(
        &s,
        json!({"route": "any", "times": 1, "action": {"kind": "drop"}}),
    )
    .await;
    assert!(send().await.is_err(), "dropped connection is an error");

    add_fault(
        &s,
        json!({"route": "waba", "times": 1, "action": {"kind": "truncated"}}),
    )
    .await;
    let res = send().await.expect("headers arrive");
    assert!(res.bytes().await.is_err(), "truncated body is an error");

    add_fault(
        &s,
        json!({"route": "waba", "times": 1, "action": {"kind": "malformed"}}),
    )
    .await;
    let res = send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.json::<Value>().await.is_err());

    add_fault(
        &s,
        json!({"route": "waba", "times": 1, "action": {"kind": "huge", "bytes": 3_000_000}}),
    )
    .await;
    assert!(send().await.unwrap().bytes().await.unwrap().len() > 3_000_000);

    add_fault(
        &s,
        json!({"route": "waba", "times": 1, "action": {"kind": "server_error", "status": 503}}),
    )
    .await;
    let res = send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        graph_error(&res.json().await.unwrap()).class(),
        ErrorClass::Transient
    );

    add_fault(&s, json!({"route": "waba", "skip": 1, "times": 1, "action": {"kind": "error", "status": 500, "code": 1, "message": "An unknown error occurred"}})).await;
    assert_eq!(send().await.unwrap().status(), StatusCode::OK, "skipped");
    assert_eq!(
        send().await.unwrap().status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );

    add_fault(
        &s,
        json!({"route": "waba", "times": 1, "action": {"kind": "latency", "ms": 300}}),
    )
    .await;
    let started = Instant::now();
    assert_eq!(send().await.unwrap().status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));

    let (_, _, faults) = get(&format!("{}/_sim/faults", s.url), None).await;
    assert_eq!(faults, json!([]), "all faults consumed");
    assert_eq!(
        send().await.unwrap().status(),
        StatusCode::OK,
        "still serving"
    );
    assert_eq!(calls(&s).await["routes"]["waba"], json!(9));
    let res = client()
        .post(format!("{}/_sim/reset", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(calls(&s).await["total"], json!(0));
}

#[tokio::test]
async fn short_and_empty_pages_still_link_onwards() {
    let s = sim("demo", &[]);
    add_fault(
        &s,
        json!({"route": "client_wabas", "times": 1, "action": {"kind": "short_page", "items": 0}}),
    )
    .await;
    add_fault(
        &s,
        json!({"route": "client_wabas", "times": 1, "action": {"kind": "short_page", "items": 1}}),
    )
    .await;
    let mut url = Some(format!(
        "{}/v26.0/{PARTNER}/client_whatsapp_business_accounts?limit=3",
        s.url
    ));
    let mut sizes = Vec::new();
    let mut ids = Vec::new();
    while let Some(u) = url {
        let (status, _, body) = get(&u, Some(DEMO_SYSTEM)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page: Page<Waba> = serde_json::from_value(body).unwrap();
        sizes.push(page.data.len());
        ids.extend(page.data.into_iter().map(|w| w.id));
        url = page.paging.and_then(|p| p.next);
    }
    assert_eq!(
        sizes,
        [0, 1, 3, 3, 3, 3],
        "empty page, short page, then full pages and the rest"
    );
    assert_eq!(ids.len(), 13, "nothing skipped or repeated");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 13);
}

#[tokio::test]
async fn sharing_and_unsharing_change_the_client_list_whatever_the_age() {
    let s = sim("demo", &[]);
    let list = format!(
        "{}/v26.0/{PARTNER}/client_whatsapp_business_accounts?fields=id&limit=100",
        s.url
    );
    let ids = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, _, before) = get(&list, Some(DEMO_SYSTEM)).await;
    assert!(!ids(&before).contains(&"1906385232743451".to_owned()));
    let post = |path: &str, waba: &str| {
        client()
            .post(format!("{}/_sim/{path}", s.url))
            .json(&json!({"business_id": PARTNER, "waba_id": waba}))
            .send()
    };
    assert_eq!(
        post("share", "1906385232743451").await.unwrap().status(),
        204
    );
    assert_eq!(
        post("unshare", "106540352242922").await.unwrap().status(),
        204
    );
    assert_eq!(post("share", "404404404").await.unwrap().status(), 404);
    let (_, _, after) = get(&list, Some(DEMO_SYSTEM)).await;
    let after = ids(&after);
    assert_eq!(after[0], "1906385232743451", "the latest share comes first");
    assert!(!after.contains(&"106540352242922".to_owned()));
    assert_eq!(after.len(), ids(&before).len());
}

// ---- The writes a partner makes after Embedded Signup ----

const MULTI: &str = "EAASimBusinessTokenMultiWaba00000000000000000008";
const COEXISTENCE: &str = "EAASimBusinessTokenCoexistence0000000000000000010";
const PIN_MISMATCH: &str = "EAASimBusinessTokenPinMismatch0000000000000000011";
const REGISTER_LIMIT: &str = "EAASimBusinessTokenRegisterLimit00000000000000012";
const UNVERIFIED: &str = "EAASimBusinessTokenUnverified00000000000000000013";
const CREDIT_LINE: &str = "58501441721238";

/// A request body, in each syntax Graph accepts.
enum Body {
    None,
    Json(Value),
    Form(&'static str),
}

async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Body,
) -> (StatusCode, Value) {
    let mut req = client().request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req = match body {
        Body::None => req,
        Body::Json(v) => req.json(&v),
        Body::Form(f) => req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(f),
    };
    let res = req.send().await.expect("request");
    let status = res.status();
    (status, res.json().await.expect("JSON body"))
}

async fn post(url: &str, token: Option<&str>, body: Body) -> (StatusCode, Value) {
    call(reqwest::Method::POST, url, token, body).await
}

/// `POST /{phone}/register` with this PIN.
async fn register(s: &Running, phone: &str, token: &str, pin: &str) -> (StatusCode, Value) {
    post(
        &format!("{}/v26.0/{phone}/register", s.url),
        Some(token),
        Body::Json(json!({"messaging_product": "whatsapp", "pin": pin})),
    )
    .await
}

async fn phone_state(s: &Running, phone: &str, token: &str) -> (String, String) {
    let (status, _, body) = get(
        &format!("{}/v26.0/{phone}?fields=status,platform_type", s.url),
        Some(token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["status"]
            .as_str()
            .expect("status is a string")
            .to_owned(),
        body["platform_type"]
            .as_str()
            .expect("platform_type is a string")
            .to_owned(),
    )
}

async fn control(s: &Running, method: reqwest::Method, path: &str, body: Value) -> StatusCode {
    client()
        .request(method, format!("{}/_sim/{path}", s.url))
        .json(&body)
        .send()
        .await
        .expect("control call")
        .status()
}

/// The demo scenario with `edit` applied, served by a real graph-sim process.
fn sim_with(edit: impl FnOnce(&mut Value), extra: &[&str]) -> Running {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let mut v: Value = serde_json::from_str(
        &std::fs::read_to_string(scenario("demo")).expect("demo scenario readable"),
    )
    .expect("demo scenario is JSON");
    edit(&mut v);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("graph-sim-test-{}-{n}.json", std::process::id()));
    std::fs::write(&path, v.to_string()).expect("temp scenario written");
    start_sim(env!("CARGO_BIN_EXE_graph-sim").as_ref(), &path, extra).expect("graph-sim starts")
}

/// The scenario WABA `id` in a scenario JSON.
fn waba_mut<'a>(v: &'a mut Value, id: &str) -> &'a mut Value {
    v["wabas"]
        .as_array_mut()
        .expect("wabas is an array")
        .iter_mut()
        .find(|w| w["id"] == id)
        .expect("the WABA is in the scenario")
}

type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>;

/// A tiny HTTP receiver: answers Meta's verification GET (echoing `hub.challenge` when
/// `hub.verify_token` is `tok-ok`, something else for `tok-wrong`, 403 otherwise), takes
/// webhook POSTs, and records every request as (method, query, body).
async fn receiver() -> (String, Seen) {
    use axum::extract::{Query, State};
    use axum::routing::get as route_get;
    use std::collections::HashMap;
    let seen: Seen = Default::default();
    async fn verify(
        State(seen): State<Seen>,
        Query(q): Query<HashMap<String, String>>,
    ) -> (axum::http::StatusCode, String) {
        let query = serde_json::to_string(&q).expect("query as JSON");
        seen.lock()
            .expect("receiver lock")
            .push(("GET".into(), query, String::new()));
        match q.get("hub.verify_token").map(String::as_str) {
            Some("tok-ok") if q.get("hub.mode").map(String::as_str) == Some("subscribe") => (
                axum::http::StatusCode::OK,
                q.get("hub.challenge").cloned().unwrap_or_default(),
            ),
            Some("tok-wrong") => (axum::http::StatusCode::OK, "<html>hello</html>".into()),
            _ => (axum::http::StatusCode::FORBIDDEN, "forbidden".into()),
        }
    }
    async fn take(State(seen): State<Seen>, body: String) -> axum::http::StatusCode {
        seen.lock()
            .expect("receiver lock")
            .push(("POST".into(), String::new(), body));
        axum::http::StatusCode::OK
    }
    let app = axum::Router::new()
        .route("/cb", route_get(verify).post(take))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("receiver binds");
    let url = format!(
        "http://{}",
        listener.local_addr().expect("receiver address")
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, seen)
}

#[tokio::test]
async fn subscribed_apps_subscribe_list_override_and_unsubscribe() {
    let s = sim("demo", &[]);
    let (rx, seen) = receiver().await;
    let edge = format!("{}/v26.0/102289599326934/subscribed_apps", s.url);
    // A WABA shared by a signup flow starts unsubscribed.
    let (status, _, body) = get(&edge, Some(FINISH)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"data": []}));
    // Meta allows an alternate callback URL only once the app is subscribed.
    let (status, body) = post(
        &edge,
        Some(FINISH),
        Body::Json(json!({"override_callback_uri": format!("{rx}/cb"), "verify_token": "tok-ok"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let e = graph_error(&body);
    assert_eq!(e.code, 100);
    assert!(e.message.contains("must be subscribed"), "{}", e.message);
    // Subscribe, then again: both succeed.
    for _ in 0..2 {
        let (status, body) = post(&edge, Some(FINISH), Body::None).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    }
    let (_, _, body) = get(&edge, Some(FINISH)).await;
    assert_eq!(
        body,
        json!({"data": [{"whatsapp_business_api_data": {
            "id": "670843887433847",
            "link": "https://www.facebook.com/games/?app_id=670843887433847",
            "name": "JaspersMarket"}}]})
    );
    // The System User may do the same on the partner's client WABA.
    let (status, _, _) = get(&edge, Some(DEMO_SYSTEM)).await;
    assert_eq!(status, StatusCode::OK);
    // An alternate callback URL that answers Meta's challenge (JSON body).
    let (status, body) = post(
        &edge,
        Some(FINISH),
        Body::Json(json!({"override_callback_uri": format!("{rx}/cb"), "verify_token": "tok-ok"})),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    {
        let seen = seen.lock().unwrap();
        let (method, query, _) = seen.last().unwrap();
        assert_eq!(method, "GET");
        let q: Value = serde_json::from_str(query).unwrap();
        assert_eq!(q["hub.mode"], "subscribe");
        assert_eq!(q["hub.verify_token"], "tok-ok");
        assert!(!q["hub.challenge"].as_str().unwrap().is_empty());
    }
    let (_, _, body) = get(&edge, Some(FINISH)).await;
    assert_eq!(
        body["data"][0]["override_callback_uri"],
        json!(format!("{rx}/cb"))
    );
    // Ones that do not: the wrong answer is 2201, an error status or no server 2200.
    let form = |token: &str, uri: String| {
        format!(
            "override_callback_uri={}&verify_token={token}",
            form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>()
        )
    };
    for (body, code) in [
        (form("tok-wrong", format!("{rx}/cb")), 2201),
        (form("tok-refused", format!("{rx}/cb")), 2200),
        (form("tok-ok", format!("{rx}/nowhere")), 2200),
        (form("tok-ok", "http://127.0.0.1:9/cb".into()), 2200),
    ] {
        let body: &'static str = Box::leak(body.into_boxed_str());
        let (status, answer) = post(&edge, Some(FINISH), Body::Form(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(graph_error(&answer).code, code, "{body}: {answer}");
    }
    let (_, _, body) = get(&edge, Some(FINISH)).await;
    assert_eq!(
        body["data"][0]["override_callback_uri"],
        json!(format!("{rx}/cb")),
        "a failed override keeps the last good one"
    );
    // Missing verify_token, too long a URL: code 100.
    let (status, body) = post(
        &format!("{edge}?override_callback_uri={rx}/cb"),
        Some(FINISH),
        Body::None,
    )
    .await;
    assert_eq!(
        (status, graph_error(&body).code),
        (StatusCode::BAD_REQUEST, 100)
    );
    let long = format!("https://example.com/{}", "a".repeat(200));
    let (_, body) = post(
        &edge,
        Some(FINISH),
        Body::Json(json!({"override_callback_uri": long, "verify_token": "tok-ok"})),
    )
    .await;
    assert_eq!(graph_error(&body).code, 100);
    // Subscribing without parameters removes the alternate callback URL, as Meta documents.
    post(&edge, Some(FINISH), Body::None).await;
    let (_, _, body) = get(&edge, Some(FINISH)).await;
    assert!(
        body["data"][0].get("override_callback_uri").is_none(),
        "{body}"
    );
    // A token not granted this WABA: Graph's unsupported-post error.
    let (status, body) = post(
        &format!("{}/v26.0/106540352242922/subscribed_apps", s.url),
        Some(FINISH),
        Body::None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let e = graph_error(&body);
    assert_eq!((e.code, e.error_subcode), (100, Some(33)));
    assert!(
        e.message.starts_with("Unsupported post request."),
        "{}",
        e.message
    );
    // Unsubscribe.
    let (status, body) = call(reqwest::Method::DELETE, &edge, Some(FINISH), Body::None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (_, _, body) = get(&edge, Some(FINISH)).await;
    assert_eq!(body, json!({"data": []}));
    assert_eq!(calls(&s).await["routes"]["subscribed_apps"], json!(20));
}

#[tokio::test]
async fn webhooks_reach_the_app_only_for_subscribed_wabas() {
    let s = sim("demo", &[]);
    let (rx, seen) = receiver().await;
    assert_eq!(
        control(
            &s,
            reqwest::Method::PUT,
            "webhooks",
            json!({"url": format!("{rx}/cb")})
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let send = |w: Value| {
        let url = format!("{}/_sim/webhooks/send", s.url);
        async move {
            let res = client().post(url).json(&w).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.json::<Value>().await.unwrap()
        }
    };
    let posts = || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(m, _, _)| m == "POST")
            .map(|(_, _, b)| serde_json::from_str::<Value>(b).unwrap())
            .collect::<Vec<_>>()
    };
    // The WABA's own webhooks: not sent while the app is not subscribed to it...
    for w in [
        json!({"kind": "review", "waba_id": "102289599326934", "decision": "REJECTED"}),
        json!({"kind": "account_update", "waba_id": "102289599326934", "event": "DISABLED_UPDATE",
               "value": {"ban_info": {"waba_ban_state": "DISABLE", "waba_ban_date": "April 17, 2025"}}}),
        json!({"kind": "account_update", "waba_id": "102289599326934", "event": "ACCOUNT_VIOLATION"}),
    ] {
        let answer = send(w).await;
        assert_eq!(answer["delivered"], json!(false), "{answer}");
        assert_eq!(answer["statuses"], json!([]));
        assert!(
            answer["reason"]
                .as_str()
                .unwrap()
                .contains("not subscribed"),
            "{answer}"
        );
    }
    assert!(posts().is_empty());
    // ...though what they announce still happens.
    let (_, _, body) = get(
        &format!(
            "{}/v26.0/102289599326934?fields=account_review_status",
            s.url
        ),
        Some(DEMO_SYSTEM),
    )
    .await;
    assert_eq!(body["account_review_status"], "REJECTED");
    // Partner-level events always arrive.
    for w in [
        json!({"kind": "shared", "waba_id": "102289599326934"}),
        json!({"kind": "account_update", "waba_id": "102289599326934", "event": "PARTNER_APP_INSTALLED"}),
    ] {
        let answer = send(w).await;
        assert_eq!(answer, json!({"delivered": true, "statuses": [200]}));
    }
    assert_eq!(posts().len(), 2);
    assert_eq!(posts()[0]["entry"][0]["id"], PARTNER);
    // A long-standing client (listed in the scenario's `subscribed`) gets its own.
    let answer = send(json!({"kind": "review", "waba_id": "106540352242922", "decision": "APPROVED", "redeliveries": 1})).await;
    assert_eq!(answer, json!({"delivered": true, "statuses": [200, 200]}));
    // Subscribed by the control route, or by the partner's POST, the WABA's own arrive.
    assert_eq!(
        control(
            &s,
            reqwest::Method::POST,
            "subscribed",
            json!({"waba_id": "102289599326934"})
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        control(
            &s,
            reqwest::Method::POST,
            "subscribed",
            json!({"waba_id": "404"})
        )
        .await,
        StatusCode::NOT_FOUND
    );
    let answer = send(json!({"kind": "account_update", "waba_id": "102289599326934", "event": "ACCOUNT_RESTRICTION"})).await;
    assert_eq!(answer["delivered"], json!(true));
    let last = posts().pop().unwrap();
    assert_eq!(last["entry"][0]["id"], "102289599326934");
    post(
        &format!("{}/v26.0/101569239400667/subscribed_apps", s.url),
        Some(FINISH),
        Body::None,
    )
    .await;
    let answer =
        send(json!({"kind": "review", "waba_id": "101569239400667", "decision": "APPROVED"})).await;
    assert_eq!(answer["delivered"], json!(true));
    let (_, _, listed) = get(&format!("{}/_sim/subscribed", s.url), None).await;
    let listed: Vec<&str> = listed["subscribed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["waba_id"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&"101569239400667") && listed.contains(&"102289599326934"));
    let overview = client()
        .get(format!("{}/_sim/", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        overview.contains("not subscribed")
            && overview.contains("<td data-webhooks>subscribed</td>")
    );
}

#[tokio::test]
async fn scenario_webhooks_are_checked_when_they_are_sent() {
    let (rx, seen) = receiver().await;
    let hook = format!("{rx}/cb");
    let s = sim_with(
        |v| {
            v["webhooks"] = json!([
                {"kind": "review", "waba_id": "101569239400667", "decision": "APPROVED",
                 "after_read_of": "101569239400667", "after_secs": 0.2},
                {"kind": "review", "waba_id": "106540352242922", "decision": "APPROVED",
                 "after_read_of": "106540352242922", "after_secs": 0.2}
            ]);
        },
        &["--webhook-url", &hook],
    );
    for waba in ["101569239400667", "106540352242922"] {
        let (status, _, _) = get(
            &format!("{}/v26.0/{waba}?fields=id", s.url),
            Some(DEMO_SYSTEM),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let ids: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, _, _)| m == "POST")
        .map(|(_, _, b)| {
            serde_json::from_str::<Value>(b).unwrap()["entry"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        ids,
        ["106540352242922"],
        "only the subscribed WABA's review is sent"
    );
}

#[tokio::test]
async fn register_connects_the_number_in_every_read() {
    let s = sim("demo", &[]);
    let phone = "110200000000010";
    assert_eq!(
        phone_state(&s, phone, MULTI).await,
        ("PENDING".into(), "NOT_APPLICABLE".into())
    );
    // Graph's parameter errors.
    for body in [
        json!({"pin": "123456"}),
        json!({"messaging_product": "sms", "pin": "123456"}),
        json!({"messaging_product": "whatsapp"}),
        json!({"messaging_product": "whatsapp", "pin": "12345"}),
        json!({"messaging_product": "whatsapp", "pin": "12a456"}),
        json!({"messaging_product": "whatsapp", "pin": "123456", "data_localization_region": "XX"}),
    ] {
        let (status, answer) = post(
            &format!("{}/v26.0/{phone}/register", s.url),
            Some(MULTI),
            Body::Json(body.clone()),
        )
        .await;
        assert_eq!(
            (status, graph_error(&answer).code),
            (StatusCode::BAD_REQUEST, 100),
            "{body}"
        );
    }
    // A form body works as well as JSON.
    let (status, body) = post(
        &format!("{}/v26.0/{phone}/register", s.url),
        Some(MULTI),
        Body::Form("messaging_product=whatsapp&pin=123456&data_localization_region=GB"),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    assert_eq!(
        phone_state(&s, phone, MULTI).await,
        ("CONNECTED".into(), "CLOUD_API".into())
    );
    let fields = form_urlencoded::byte_serialize(b"phone_numbers{id,status,platform_type}")
        .collect::<String>();
    let (_, _, body) = get(
        &format!("{}/v26.0/109900000000001?fields={fields}", s.url),
        Some(DEMO_SYSTEM),
    )
    .await;
    assert_eq!(body["phone_numbers"]["data"][0]["status"], "CONNECTED");
    assert_eq!(
        body["phone_numbers"]["data"][0]["platform_type"],
        "CLOUD_API"
    );
    let (_, _, body) = get(
        &format!(
            "{}/v26.0/109900000000001/phone_numbers?fields=id,status",
            s.url
        ),
        Some(MULTI),
    )
    .await;
    assert_eq!(body["data"][0]["status"], "CONNECTED");
    let (_, _, body) = get(
        &format!(
            "{}/v26.0/{PARTNER}/client_whatsapp_business_accounts?limit=100&fields=id,{fields}",
            s.url
        ),
        Some(DEMO_SYSTEM),
    )
    .await;
    let listed = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == "109900000000001")
        .unwrap();
    assert_eq!(listed["phone_numbers"]["data"][0]["status"], "CONNECTED");
    // Registering set the two-step PIN: the same PIN again works, another does not.
    let (status, _) = register(&s, phone, MULTI, "123456").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = register(&s, phone, MULTI, "654321").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(graph_error(&body).code, 133005);
    // The System User may register too; a token not granted the WABA may not.
    let (status, _) = register(&s, phone, DEMO_SYSTEM, "123456").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = register(&s, phone, FINISH, "123456").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(graph_error(&body).error_subcode, Some(33));
    let (status, body) = register(&s, "110299999999999", MULTI, "123456").await;
    assert_eq!(
        (status, graph_error(&body).error_subcode),
        (StatusCode::BAD_REQUEST, Some(33))
    );
}

#[tokio::test]
async fn a_wrong_pin_is_133005_until_the_pin_is_reset() {
    let s = sim("demo", &[]);
    let phone = "110200000000013";
    let (status, body) = register(&s, phone, PIN_MISMATCH, "123456").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], 133005);
    assert_eq!(
        body["error"]["message"],
        "(#133005) Two step verification PIN Mismatch"
    );
    assert_eq!(body["error"]["error_data"]["messaging_product"], "whatsapp");
    assert_eq!(
        body["error"]["error_data"]["details"],
        "Two-step verification PIN incorrect."
    );
    assert_eq!(
        phone_state(&s, phone, PIN_MISMATCH).await.0,
        "PENDING",
        "a failed registration changes nothing"
    );
    // Meta lets the partner set a new PIN without the old one, then register with it.
    let (status, body) = post(
        &format!("{}/v26.0/{phone}", s.url),
        Some(PIN_MISMATCH),
        Body::Json(json!({"pin": "123456"})),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (status, _) = register(&s, phone, PIN_MISMATCH, "123456").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(phone_state(&s, phone, PIN_MISMATCH).await.0, "CONNECTED");
    // The scenario's PIN itself works too (on a fresh simulator).
    let s = sim("demo", &[]);
    let (status, _) = register(&s, phone, PIN_MISMATCH, "424242").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn ten_register_attempts_in_72_hours_then_133016() {
    let s = sim("demo", &[]);
    // The scenario's number that already spent its ten attempts.
    let (status, body) = register(&s, "110200000000014", REGISTER_LIMIT, "123456").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let e = graph_error(&body);
    assert_eq!(e.code, 133016);
    assert!(e.message.contains("rate limit"), "{}", e.message);
    assert_eq!(
        body["error"]["error_data"]["details"],
        "Registration or Deregistration failed because there were too many attempts for this phone number in a short period of time"
    );
    // Failed attempts count: ten wrong PINs, and the right one is refused too.
    let phone = "110200000000013";
    for _ in 0..10 {
        let (_, body) = register(&s, phone, PIN_MISMATCH, "000000").await;
        assert_eq!(graph_error(&body).code, 133005);
    }
    let (_, body) = register(&s, phone, PIN_MISMATCH, "424242").await;
    assert_eq!(graph_error(&body).code, 133016);
    assert_eq!(phone_state(&s, phone, PIN_MISMATCH).await.0, "PENDING");
}

#[tokio::test]
async fn an_unverified_number_cannot_register() {
    let s = sim("demo", &[]);
    for (phone, token) in [
        ("110200000000015", UNVERIFIED),
        (
            "110200000000004",
            "EAASimBusinessTokenIncomplete0000000000000000002",
        ),
    ] {
        let (status, body) = register(&s, phone, token, "123456").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], 133006, "{body}");
        assert_eq!(
            body["error"]["message"],
            "(#133006) Phone number re-verification needed"
        );
        assert_eq!(phone_state(&s, phone, token).await.0, "PENDING");
    }
}

#[tokio::test]
async fn deregister_disconnects_with_its_own_limit() {
    let s = sim("demo", &[]);
    let phone = "110200000000001";
    let url = format!("{}/v26.0/{phone}/deregister", s.url);
    let (status, body) = post(&url, Some(FINISH), Body::None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    assert_eq!(
        phone_state(&s, phone, FINISH).await,
        ("DISCONNECTED".into(), "NOT_APPLICABLE".into())
    );
    for _ in 0..9 {
        let (status, _) = post(&url, Some(DEMO_SYSTEM), Body::None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = post(&url, Some(FINISH), Body::None).await;
    assert_eq!(
        (status, graph_error(&body).code),
        (StatusCode::BAD_REQUEST, 133016)
    );
    // Registration has a window of its own.
    let (status, _) = register(&s, phone, FINISH, "123456").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(phone_state(&s, phone, FINISH).await.0, "CONNECTED");
    // A number also on the WhatsApp Business app cannot be deregistered (or registered).
    let (status, body) = post(
        &format!("{}/v26.0/110200000000012/deregister", s.url),
        Some(COEXISTENCE),
        Body::None,
    )
    .await;
    assert_eq!(
        (status, graph_error(&body).code),
        (StatusCode::BAD_REQUEST, 100)
    );
    let (status, body) = register(&s, "110200000000012", COEXISTENCE, "123456").await;
    assert_eq!(
        (status, graph_error(&body).code),
        (StatusCode::BAD_REQUEST, 100)
    );
    assert_eq!(
        phone_state(&s, "110200000000012", COEXISTENCE).await.0,
        "CONNECTED"
    );
}

#[tokio::test]
async fn assigned_users_lifts_system_user_assigned_false() {
    let s = sim_with(
        |v| {
            waba_mut(v, "101569239400667")["system_user_assigned"] = json!(false);
        },
        &[],
    );
    let node = format!("{}/v26.0/101569239400667?fields=id,name", s.url);
    let (status, _, body) = get(&node, Some(DEMO_SYSTEM)).await;
    assert_eq!(
        (status, graph_error(&body).code),
        (StatusCode::FORBIDDEN, 200)
    );
    // Credit sharing needs the System User on the WABA first.
    let share = format!(
        "{}/v26.0/{CREDIT_LINE}/whatsapp_credit_sharing_and_attach?waba_currency=EUR&waba_id=101569239400667",
        s.url
    );
    let (status, body) = post(&share, Some(DEMO_SYSTEM), Body::None).await;
    assert_eq!(
        (status, graph_error(&body).code),
        (StatusCode::FORBIDDEN, 200)
    );
    let edge = format!("{}/v26.0/101569239400667/assigned_users", s.url);
    let (_, _, body) = get(&edge, Some(DEMO_SYSTEM)).await;
    assert_eq!(body, json!({"data": []}));
    // Only the System User token may assign; a business token gets Graph's code 200.
    let (status, body) = post(
        &format!("{edge}?user=61550000000001&tasks=['MANAGE']"),
        Some(FINISH),
        Body::None,
    )
    .await;
    assert_eq!(
        (status, graph_error(&body).code),
        (StatusCode::FORBIDDEN, 200)
    );
    // Bad parameters: code 100.
    for q in [
        "tasks=['MANAGE']",
        "user=61550000000001",
        "user=61550000000001&tasks=['OWN']",
        "user=1234&tasks=['MANAGE']",
    ] {
        let (status, body) = post(&format!("{edge}?{q}"), Some(DEMO_SYSTEM), Body::None).await;
        assert_eq!(
            (status, graph_error(&body).code),
            (StatusCode::BAD_REQUEST, 100),
            "{q}"
        );
    }
    // Not the partner's WABA: Graph's unsupported-post error.
    let (status, body) = post(
        &format!(
            "{}/v26.0/555000000000001/assigned_users?user=61550000000001&tasks=['MANAGE']",
            s.url
        ),
        Some(DEMO_SYSTEM),
        Body::None,
    )
    .await;
    assert_eq!(
        (status, graph_error(&body).error_subcode),
        (StatusCode::BAD_REQUEST, Some(33))
    );
    // Graph's array-in-a-string syntax, in the query string.
    let (status, body) = post(
        &format!("{edge}?user=61550000000001&tasks=%5B%27MANAGE%27%5D"),
        Some(DEMO_SYSTEM),
        Body::None,
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (status, _, body) = get(&node, Some(DEMO_SYSTEM)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], "101569239400667");
    let (_, _, body) = get(&edge, Some(DEMO_SYSTEM)).await;
    assert_eq!(body["data"][0]["id"], "61550000000001");
    assert_eq!(body["data"][0]["tasks"], json!(["MANAGE"]));
    let (status, _) = post(&share, Some(DEMO_SYSTEM), Body::None).await;
    assert_eq!(status, StatusCode::OK);
    // A JSON array in a JSON body works too (and assigning again succeeds).
    let (status, _) = post(
        &edge,
        Some(DEMO_SYSTEM),
        Body::Json(json!({"user": "61550000000001", "tasks": ["MANAGE", "DEVELOP"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, body) = get(&edge, Some(DEMO_SYSTEM)).await;
    assert_eq!(body["data"][0]["tasks"], json!(["MANAGE", "DEVELOP"]));
    // Reset restores the scenario's assignment.
    let res = client()
        .post(format!("{}/_sim/reset", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (status, _, _) = get(&node, Some(DEMO_SYSTEM)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_credit_line_is_shared_and_attached_once() {
    let s = sim("demo", &[]);
    let node = format!(
        "{}/v26.0/102289599326934?fields=id,primary_funding_id",
        s.url
    );
    let (_, _, body) = get(&node, Some(FINISH)).await;
    assert!(body.get("primary_funding_id").is_none(), "{body}");
    let share = |q: &str| {
        format!(
            "{}/v26.0/{CREDIT_LINE}/whatsapp_credit_sharing_and_attach?{q}",
            s.url
        )
    };
    let ok = share("waba_currency=USD&waba_id=102289599326934");
    // Only the System User token.
    let (status, body) = post(&ok, Some(FINISH), Body::None).await;
    assert_eq!(
        (status, graph_error(&body).code),
        (StatusCode::FORBIDDEN, 200)
    );
    // Bad parameters: code 100.
    for q in [
        "waba_id=102289599326934",
        "waba_currency=USD",
        "waba_currency=BRL&waba_id=102289599326934",
        "waba_currency=USD&waba_id=555000000000001",
    ] {
        let (status, body) = post(&share(q), Some(DEMO_SYSTEM), Body::None).await;
        assert_eq!(
            (status, graph_error(&body).code),
            (StatusCode::BAD_REQUEST, 100),
            "{q}"
        );
    }
    // An unknown credit line: Graph's unknown-object error.
    let (status, body) = post(
        &format!("{}/v26.0/123456789/whatsapp_credit_sharing_and_attach?waba_currency=USD&waba_id=102289599326934", s.url),
        Some(DEMO_SYSTEM),
        Body::None,
    )
    .await;
    let e = graph_error(&body);
    assert_eq!(
        (status, e.code, e.error_subcode),
        (StatusCode::BAD_REQUEST, 100, Some(33))
    );
    let (status, body) = post(&ok, Some(DEMO_SYSTEM), Body::None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["waba_id"], "102289599326934");
    let allocation = body["allocation_config_id"].as_str().unwrap().to_owned();
    assert!(allocation.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    // Meta's check: the allocation's receiving credential is the WABA's primary funding id.
    let (status, _, alloc) = get(
        &format!(
            "{}/v26.0/{allocation}?fields=id,receiving_credential",
            s.url
        ),
        Some(DEMO_SYSTEM),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{alloc}");
    assert_eq!(alloc["id"], json!(allocation));
    let (_, _, body) = get(&node, Some(FINISH)).await;
    assert_eq!(
        body["primary_funding_id"],
        alloc["receiving_credential"]["id"]
    );
    // A second share for the same WABA: an attached credit line cannot change.
    let (status, body) = post(&ok, Some(DEMO_SYSTEM), Body::None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let e = graph_error(&body);
    assert_eq!(e.code, 100);
    assert!(e.message.contains("already attached"), "{}", e.message);
    // Parameters in a form body are read too.
    let (status, body) = post(
        &share(""),
        Some(DEMO_SYSTEM),
        Body::Form("waba_currency=USD&waba_id=9007199254740993"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(calls(&s).await["routes"]["credit_sharing"], json!(9));
}

#[tokio::test]
async fn smb_app_data_once_each_within_24_hours_of_onboarding() {
    let s = sim("demo", &[]);
    let phone = "110200000000012";
    let (status, _, body) = get(
        &format!("{}/v26.0/{phone}?fields=id,status,platform_type,is_on_biz_app,code_verification_status", s.url),
        Some(COEXISTENCE),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"id": phone, "status": "CONNECTED", "platform_type": "CLOUD_API",
               "is_on_biz_app": true, "code_verification_status": "VERIFIED"})
    );
    let url = format!("{}/v26.0/{phone}/smb_app_data", s.url);
    let sync = |t: &str| Body::Json(json!({"messaging_product": "whatsapp", "sync_type": t}));
    let (status, body) = post(&url, Some(COEXISTENCE), sync("contacts")).await;
    assert_eq!(
        (status, graph_error(&body).code),
        (StatusCode::BAD_REQUEST, 100)
    );
    for t in ["smb_app_state_sync", "history"] {
        let (status, body) = post(&url, Some(COEXISTENCE), sync(t)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["messaging_product"], "whatsapp");
        assert!(!body["request_id"].as_str().unwrap().is_empty());
        let (status, body) = post(&url, Some(COEXISTENCE), sync(t)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], 2593107, "only once: {body}");
    }
    // A number not onboarded from the WhatsApp Business app.
    let (status, body) = post(
        &format!("{}/v26.0/110200000000001/smb_app_data", s.url),
        Some(FINISH),
        sync("history"),
    )
    .await;
    assert_eq!(
        (status, graph_error(&body).code),
        (StatusCode::BAD_REQUEST, 100)
    );
    // Past 24 hours after onboarding.
    let s = sim_with(
        |v| {
            waba_mut(v, "109900000000003")["phone_numbers"][0]["onboarded_secs_ago"] =
                json!(90_000);
        },
        &[],
    );
    let (status, body) = post(
        &format!("{}/v26.0/{phone}/smb_app_data", s.url),
        Some(COEXISTENCE),
        sync("smb_app_state_sync"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], 2593108, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("within 24 hours")
    );
    let (_, _, body) = get(
        &format!("{}/v26.0/{phone}?fields=last_onboarded_time", s.url),
        Some(COEXISTENCE),
    )
    .await;
    assert!(
        body["last_onboarded_time"]
            .as_str()
            .unwrap()
            .ends_with("+0000")
    );
}

#[tokio::test]
async fn the_phone_number_node_reads_like_graph() {
    let s = sim("demo", &[]);
    let (status, _, body) = get(&format!("{}/v26.0/110200000000001", s.url), Some(FINISH)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let p: waba_graph::PhoneNumber = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(p.id.as_str(), "110200000000001");
    assert_eq!(body["display_phone_number"], "+1 631-555-0101");
    assert!(body.get("status").is_none(), "default fields only");
    let (status, _, _) = get(
        &format!("{}/v26.0/110200000000001?fields=status", s.url),
        Some(DEMO_SYSTEM),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = get(
        &format!("{}/v26.0/110200000000005?fields=status", s.url),
        Some(FINISH),
    )
    .await;
    assert_eq!(
        (status, graph_error(&body).error_subcode),
        (StatusCode::BAD_REQUEST, Some(33))
    );
    let (_, _, body) = get(
        &format!("{}/v26.0/110200000000001?fields=id,two_step_pin", s.url),
        Some(FINISH),
    )
    .await;
    assert!(
        graph_error(&body)
            .message
            .contains("nonexisting field (two_step_pin)")
    );
    assert_eq!(calls(&s).await["routes"]["phone"], json!(4));
}

#[tokio::test]
async fn new_routes_are_counted_take_faults_and_refuse_other_methods() {
    let s = sim("demo", &[]);
    add_fault(
        &s,
        json!({"route": "register", "times": 1, "action": {"kind": "throttle", "code": 80008, "minutes": 2}}),
    )
    .await;
    add_fault(
        &s,
        json!({"route": "subscribed_apps", "skip": 1, "times": 1, "action": {"kind": "server_error", "status": 503}}),
    )
    .await;
    let (status, body) = register(&s, "110200000000010", MULTI, "123456").await;
    assert_eq!(
        (status, graph_error(&body).code),
        (StatusCode::BAD_REQUEST, 80008)
    );
    let (status, _) = register(&s, "110200000000010", MULTI, "123456").await;
    assert_eq!(status, StatusCode::OK);
    let edge = format!("{}/v26.0/109900000000001/subscribed_apps", s.url);
    let (status, _, _) = get(&edge, Some(MULTI)).await;
    assert_eq!(status, StatusCode::OK, "skipped");
    let (status, body) = post(&edge, Some(MULTI), Body::None).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a POST is the same route: {body}"
    );
    let (status, _) = post(&edge, Some(MULTI), Body::None).await;
    assert_eq!(status, StatusCode::OK);
    // Methods Graph does not support on a path.
    for (method, path, word) in [
        (reqwest::Method::GET, "110200000000010/register", "get"),
        (
            reqwest::Method::DELETE,
            "110200000000010/register",
            "delete",
        ),
        (reqwest::Method::GET, "110200000000010/smb_app_data", "get"),
        (reqwest::Method::POST, "102289599326934", "post"),
        (
            reqwest::Method::DELETE,
            "102289599326934/phone_numbers",
            "delete",
        ),
        (
            reqwest::Method::GET,
            "58501441721238/whatsapp_credit_sharing_and_attach",
            "get",
        ),
        (
            reqwest::Method::POST,
            "110200000000010/deregister/extra",
            "post",
        ),
    ] {
        let (status, body) = call(
            method,
            &format!("{}/v26.0/{path}", s.url),
            Some(DEMO_SYSTEM),
            Body::None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        let e = graph_error(&body);
        assert_eq!(e.code, 100, "{path}");
        assert_eq!(e.message, format!("Unsupported {word} request."), "{path}");
    }
    let (status, _) = post(
        &format!("{}/v26.0/110200000000010/deregister", s.url),
        Some(MULTI),
        Body::None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    post(
        &format!("{}/v26.0/110200000000012/smb_app_data", s.url),
        Some(COEXISTENCE),
        Body::Json(json!({"messaging_product": "whatsapp", "sync_type": "history"})),
    )
    .await;
    post(
        &format!(
            "{}/v26.0/102289599326934/assigned_users?user=61550000000001&tasks=['MANAGE']",
            s.url
        ),
        Some(DEMO_SYSTEM),
        Body::None,
    )
    .await;
    let routes = calls(&s).await["routes"].clone();
    assert_eq!(routes["register"], json!(4));
    assert_eq!(routes["subscribed_apps"], json!(3));
    assert_eq!(routes["smb_app_data"], json!(2));
    assert_eq!(routes["deregister"], json!(1));
    assert_eq!(routes["assigned_users"], json!(1));
    assert_eq!(routes["credit_sharing"], json!(1));
    assert_eq!(routes["waba"], json!(1));
    assert_eq!(routes["phone_numbers"], json!(1));
    assert_eq!(routes["other"], json!(1));
    // Faults on every new route parse.
    for route in [
        "subscribed_apps",
        "assigned_users",
        "credit_sharing",
        "register",
        "deregister",
        "smb_app_data",
        "phone",
        "credit_allocation",
    ] {
        add_fault(
            &s,
            json!({"route": route, "times": 1, "action": {"kind": "malformed"}}),
        )
        .await;
    }
}

#[tokio::test]
async fn reset_restores_the_scenarios_state() {
    let s = sim("demo", &[]);
    let subscribed = format!("{}/v26.0/102289599326934/subscribed_apps", s.url);
    post(&subscribed, Some(FINISH), Body::None).await;
    call(
        reqwest::Method::DELETE,
        &format!("{}/v26.0/106540352242922/subscribed_apps", s.url),
        Some(DEMO_SYSTEM),
        Body::None,
    )
    .await;
    let (status, _) = register(&s, "110200000000010", MULTI, "123456").await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..10 {
        register(&s, "110200000000013", PIN_MISMATCH, "000000").await;
    }
    let (status, _) = post(
        &format!("{}/v26.0/{CREDIT_LINE}/whatsapp_credit_sharing_and_attach?waba_currency=USD&waba_id=102289599326934", s.url),
        Some(DEMO_SYSTEM),
        Body::None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    post(
        &format!("{}/v26.0/110200000000012/smb_app_data", s.url),
        Some(COEXISTENCE),
        Body::Json(json!({"messaging_product": "whatsapp", "sync_type": "history"})),
    )
    .await;
    let res = client()
        .post(format!("{}/_sim/reset", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (_, _, body) = get(&subscribed, Some(FINISH)).await;
    assert_eq!(body, json!({"data": []}));
    let (_, _, body) = get(
        &format!("{}/v26.0/106540352242922/subscribed_apps", s.url),
        Some(DEMO_SYSTEM),
    )
    .await;
    assert_eq!(
        body["data"].as_array().unwrap().len(),
        1,
        "the scenario's subscription is back"
    );
    assert_eq!(phone_state(&s, "110200000000010", MULTI).await.0, "PENDING");
    let (_, body) = register(&s, "110200000000013", PIN_MISMATCH, "000000").await;
    assert_eq!(
        graph_error(&body).code,
        133005,
        "the attempts are forgotten"
    );
    let (_, _, body) = get(
        &format!("{}/v26.0/102289599326934?fields=primary_funding_id", s.url),
        Some(DEMO_SYSTEM),
    )
    .await;
    assert_eq!(body, json!({"id": "102289599326934"}), "no credit line");
    let (status, _) = post(
        &format!("{}/v26.0/110200000000012/smb_app_data", s.url),
        Some(COEXISTENCE),
        Body::Json(json!({"messaging_product": "whatsapp", "sync_type": "history"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_registers_never_exceed_ten_attempts() {
    let s = sim("demo", &[]);
    let attempts = (0..25).map(|_| register(&s, "110200000000013", PIN_MISMATCH, "000000"));
    let answers = futures_util::future::join_all(attempts).await;
    let codes: Vec<i64> = answers.iter().map(|(_, b)| graph_error(b).code).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == 133005).count(),
        10,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == 133016).count(),
        15,
        "{codes:?}"
    );
}

#[tokio::test]
async fn the_large_scenario_subscribes_every_generated_waba() {
    let s = sim("large", &[]);
    let (status, _, body) = get(
        &format!("{}/v26.0/9007199254735000/subscribed_apps", s.url),
        Some(LARGE_SYSTEM),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn waba_endpoints_report_the_share_of_the_hourly_budget_used() {
    // Meta's BUC limit for the WhatsApp Business Management API: 200 calls per hour per app
    // per WABA (5000 with a registered number); every answer of a limited endpoint says the
    // share used, keyed by the WABA. A WABA without a registered number: 1 call is 0%, 2
    // calls 1%. The list edges are the business's and carry no WABA's usage.
    let s = sim("demo", &[]);
    let waba = "104996122399160";
    let usage = |h: &reqwest::header::HeaderMap| -> BusinessUseCaseUsage {
        h.get("x-business-use-case-usage")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default()
    };
    let mut shares = Vec::new();
    for _ in 0..4 {
        let (status, headers, _) = get(
            &format!("{}/v26.0/{waba}?fields=id", s.url),
            Some(DEMO_SYSTEM),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let u = usage(&headers);
        let entry = &u[waba][0];
        assert_eq!(
            entry.use_case.as_deref(),
            Some("whatsapp_business_management")
        );
        assert_eq!(regain_access_minutes(&u), 0);
        shares.push(entry.call_count);
    }
    assert_eq!(
        shares,
        vec![0, 1, 1, 2],
        "calls of the hour out of 200, in percent"
    );
    let (status, headers, _) = get(
        &format!(
            "{}/v26.0/{PARTNER}/client_whatsapp_business_accounts",
            s.url
        ),
        Some(DEMO_SYSTEM),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(usage(&headers).is_empty());
}

#[tokio::test]
async fn a_browsers_icon_request_is_no_graph_call_and_latency_is_added_in_full() {
    let s = sim("demo", &[]);
    let res = client()
        .get(format!("{}/favicon.ico", s.url))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        calls(&s).await["total"],
        0,
        "the dialog's icon is not a Graph call"
    );
    let set = client()
        .put(format!("{}/_sim/latency", s.url))
        .json(&json!({"ms": 40}))
        .send()
        .await
        .expect("control call");
    assert!(set.status().is_success());
    let url = format!(
        "{}/v26.0/{PARTNER}/client_whatsapp_business_accounts",
        s.url
    );
    for _ in 0..3 {
        let started = Instant::now();
        let (status, _, _) = get(&url, Some(DEMO_SYSTEM)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(started.elapsed() >= Duration::from_millis(40));
    }
    assert_eq!(calls(&s).await["total"], 3);
}

/// Meta's full-page login dialog: back to `redirect_uri` with a code bound to it (the exchange
/// must name the same address), or with `error=access_denied` when nobody logged in.
#[tokio::test]
async fn the_full_page_dialog_redirects_back_with_a_code_bound_to_its_address() {
    let s = sim("demo", &[]);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let dialog = |flow: &str, client_id: &str| {
        format!(
            "{}/v26.0/dialog/oauth?client_id={client_id}&redirect_uri=http%3A%2F%2Fpartner.test%2Fsignup.html&state=s%201&config_id=sim-config-1&response_type=code&flow={flow}",
            s.url
        )
    };
    let res = no_redirects
        .get(dialog("finish", "670843887433847"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let back = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        back.starts_with("http://partner.test/signup.html?code="),
        "{back}"
    );
    assert!(back.ends_with("&state=s+1"), "{back}");
    let code = back
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .unwrap()
        .to_owned();
    let exchange = |redirect: &str| {
        format!(
            "{}/v26.0/oauth/access_token?client_id=670843887433847&client_secret=sim-app-secret-demo-5f1e0c9a&code={code}&redirect_uri={redirect}",
            s.url
        )
    };
    let (status, _, body) = get(&exchange("http%3A%2F%2Fpartner.test%2Fother"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let e = graph_error(&body);
    assert_eq!((e.code, e.error_subcode), (100, Some(36008)), "{body}");
    let (status, _, body) = get(&exchange("http%3A%2F%2Fpartner.test%2Fsignup.html"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["access_token"], FINISH);
    // Nobody logged in: Meta's words, and the state.
    let res = no_redirects
        .get(dialog("cancel", "670843887433847"))
        .send()
        .await
        .unwrap();
    let back = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        back,
        "http://partner.test/signup.html?error=access_denied&error_code=200&error_description=Permissions+error.&error_reason=user_denied&state=s+1"
    );
    // Another app's id is refused on the spot.
    let res = no_redirects
        .get(dialog("finish", "1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}
