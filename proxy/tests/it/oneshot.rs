//! The router called in-process (`tower::ServiceExt::oneshot`), with Graph unreachable: every
//! answer here is one the proxy gives by itself.

#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::Parser;
use tower::ServiceExt;
use waba_proxy::config::{Args, Config};
use waba_proxy::{AppState, app};

async fn router() -> axum::Router {
    let db = waba_testkit::harness::temp_database().display().to_string();
    let args = Args::try_parse_from([
        "waba-proxy",
        "--graph-url",
        "http://127.0.0.1:1",
        "--system-user-token",
        "EAAsystemTokenForOneshotTests",
        "--business-id",
        "805021500648488",
        "--admin-token",
        "admin-oneshot",
        "--database",
        &db,
    ])
    .unwrap();
    app(AppState::new(Config::from_args(args).unwrap())
        .await
        .unwrap())
}

async fn call(method: &str, uri: &str, token: Option<&str>) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "proxy.test");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = router()
        .await
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn refusals_need_no_graph() {
    let cases = [
        (
            "GET",
            "/graph/102289599326934",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "GET",
            "/graph/805021500648488/client_whatsapp_business_accounts",
            Some("someone"),
            StatusCode::FORBIDDEN,
        ),
        (
            "GET",
            "/graph/1/owned_whatsapp_business_accounts",
            Some("admin-oneshot"),
            StatusCode::FORBIDDEN,
        ),
        (
            "GET",
            "/graph/102289599326934?fields=secret",
            Some("admin-oneshot"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/graph/102289599326934/insights",
            Some("admin-oneshot"),
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            "/graph/102289599326934",
            Some("admin-oneshot"),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        ("GET", "/nothing-here", None, StatusCode::NOT_FOUND),
    ];
    for (method, uri, token, want) in cases {
        let (status, body) = call(method, uri, token).await;
        assert_eq!(status, want, "{method} {uri}: {body}");
        assert_eq!(body["error"]["type"], "WabaProxyError", "{uri}");
    }
}

#[tokio::test]
async fn graph_unreachable_is_a_clean_502() {
    let (status, body) = call("GET", "/graph/102289599326934", Some("EAAsomeSignupToken")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["is_transient"], true);
    let (status, body) = call("GET", "/healthz", None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
}

#[tokio::test]
async fn a_credential_is_looked_at_before_the_query_is_read() {
    let bad_query = "fields=0000&limit=1";
    let cases = [
        // No credential: 401 whatever the query says.
        (
            format!("/graph/805021500648488/client_whatsapp_business_accounts?{bad_query}"),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            format!("/graph/102289599326934?{bad_query}"),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            format!("/graph/102289599326934/phone_numbers?{bad_query}"),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        // A signup credential is identified (by Graph) only once the query is good: Graph is
        // unreachable here, so a 400 proves no call was tried.
        (
            format!("/graph/102289599326934?{bad_query}"),
            Some("EAAsomeSignupToken"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/graph/805021500648488/owned_whatsapp_business_accounts?{bad_query}"),
            Some("EAAsomeSignupToken"),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (uri, token, want) in cases {
        let (status, body) = call("GET", &uri, token).await;
        assert_eq!(status, want, "{uri} with {token:?}: {body}");
        assert_eq!(body["error"]["type"], "WabaProxyError", "{uri}");
    }
}
