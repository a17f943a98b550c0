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
    // Meta's own example: the review status alone.
    let (_, _, body) = get(
        &node("102289599326934", "account_review_status"),
        Some(DEMO_SYSTEM),
    )
    .await;
    assert_eq!(body, json!({"account_review_status": "APPROVED"}));
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
        [0, 1, 3, 3, 2],
        "empty page, short page, then full pages and the rest"
    );
    assert_eq!(ids.len(), 9, "nothing skipped or repeated");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 9);
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
