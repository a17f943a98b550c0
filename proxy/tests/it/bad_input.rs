//! Bad input gets a clear 4xx in Graph's envelope, and nothing reaches Graph.

use crate::common::*;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn malformed_requests_are_refused_before_graph() {
    let s = stack(world("demo"), &[]);
    let list = format!("/graph/{PARTNER}/client_whatsapp_business_accounts");
    let huge = "a".repeat(5000);
    let cases: Vec<(String, StatusCode)> = vec![
        ("/graph/12ab".into(), StatusCode::BAD_REQUEST),
        // HTTP clients resolve dot segments before sending: this arrives as `/admin`.
        ("/graph/../admin".into(), StatusCode::NOT_FOUND),
        (
            "/graph/102289599326934%2Fphone_numbers".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/graph/https:%2F%2Fevil.example".into(),
            StatusCode::BAD_REQUEST,
        ),
        ("/graph//102289599326934".into(), StatusCode::BAD_REQUEST),
        ("/graph/102289599326934/".into(), StatusCode::BAD_REQUEST),
        (
            "/graph/102289599326934?fields=access_token".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/graph/102289599326934?fields=id,owner_business_info".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/graph/102289599326934?fields=phone_numbers{access_token}".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/graph/102289599326934?fields=id&fields=name".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/graph/102289599326934?access_token=x".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/graph/102289599326934?debug=all".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/graph/102289599326934/phone_numbers?limit=0".into(),
            StatusCode::BAD_REQUEST,
        ),
        (format!("{list}?limit=0"), StatusCode::BAD_REQUEST),
        (format!("{list}?limit=101"), StatusCode::BAD_REQUEST),
        (format!("{list}?limit=-1"), StatusCode::BAD_REQUEST),
        (
            format!(
                "{list}?filtering={}",
                encode("[{\"field\":\"creation_time\"")
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!(
                "{list}?filtering={}",
                encode(r#"[{"field":"name","operator":"LESS_THAN","value":1}]"#)
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("{list}?sort=name_ascending"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("{list}?after=a%26access_token%3Dx"),
            StatusCode::BAD_REQUEST,
        ),
        (format!("{list}?after=a&before=b"), StatusCode::BAD_REQUEST),
        (format!("{list}?fields={huge}"), StatusCode::URI_TOO_LONG),
        ("/graph/debug_token".into(), StatusCode::BAD_REQUEST),
        (
            format!("/graph/debug_token?input_token={FINISH}%26access_token%3Dx"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/graph/debug_token?input_token={FINISH}&input_token=x"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/graph/debug_token?input_token={FINISH}&fields=x"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/graph/102289599326934/assigned_users".into(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/graph/102289599326934/phone_numbers/extra".into(),
            StatusCode::NOT_FOUND,
        ),
        ("/graph/oauth/access_token".into(), StatusCode::BAD_REQUEST),
        ("/graph".into(), StatusCode::NOT_FOUND),
        ("/admin".into(), StatusCode::NOT_FOUND),
    ];
    for (path, want) in &cases {
        for token in [Some(ADMIN), Some(FINISH)] {
            let a = get(&s.url(path), token).await;
            assert_eq!(a.status, *want, "{path}: {}", a.text);
            let e = a.error();
            assert_eq!(e.error_type, "WabaProxyError", "{path}");
            assert!(!e.message.is_empty());
        }
    }
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let a = send(
            client()
                .request(method.clone(), s.url("/graph/102289599326934"))
                .bearer_auth(ADMIN),
        )
        .await;
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    let a = send(
        client()
            .get(s.url("/graph/102289599326934"))
            .bearer_auth(ADMIN)
            .body(vec![b'x'; 100_000]),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(s.sim.total_calls(), 0, "nothing reached Graph");
    // And the proxy still serves.
    assert_eq!(
        get(&s.url("/graph/102289599326934?fields=id"), Some(ADMIN))
            .await
            .status,
        StatusCode::OK
    );
}

/// Sends `path` byte for byte (no client-side normalisation) and returns the status code.
async fn raw_status(base: &str, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(req.as_bytes()).await.expect("write");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.expect("read");
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn path_traversal_as_sent_on_the_wire_is_refused() {
    let s = stack(world("demo"), &[]);
    for path in [
        "/graph/../admin",
        "/graph/v26.0/../../etc/passwd",
        "/graph/%2e%2e/102289599326934",
        "/graph/102289599326934/..",
        "/graph/./102289599326934",
        "/graph/http://evil.example/x",
        "/graph/102289599326934%3Ffields=access_token",
    ] {
        assert_eq!(raw_status(&s.proxy.url, path).await, 400, "{path}");
    }
    assert_eq!(s.sim.total_calls(), 0);
}

#[tokio::test]
async fn debug_token_is_rate_limited_per_client() {
    let s = stack(world("demo"), &["--debug-token-per-minute", "3"]);
    let url = s.url(&format!("/graph/debug_token?input_token={FINISH}"));
    for _ in 0..3 {
        assert_eq!(get(&url, None).await.status, StatusCode::OK);
    }
    let a = get(&url, None).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text);
    let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(s.sim.calls("debug_token"), 1);
}
