//! Bad input gets a clear 4xx in Graph's envelope, and nothing reaches Graph.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

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
    let ask = |token: String| {
        let url = s.url(&format!("/graph/debug_token?input_token={token}"));
        async move { get(&url, None).await }
    };
    // A cached answer costs Graph nothing, so it is not counted.
    for _ in 0..5 {
        assert_eq!(ask(FINISH.to_owned()).await.status, StatusCode::OK);
    }
    for i in 0..2 {
        assert_eq!(ask(made_up_token(i)).await.status, StatusCode::OK);
    }
    let a = ask(made_up_token(2)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text);
    let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(s.sim.calls("debug_token"), 3);
}

/// A token nobody issued, different for each `i`.
fn made_up_token(i: usize) -> String {
    format!("EAAMadeUp{i:040}")
}

/// Unknown bearer tokens on every route that would inspect them spend the client's
/// allowance before Graph hears of them: the WABA reads, the stream ticket and the signup
/// report. A made-up token asked again is answered from the negative cache.
#[tokio::test]
async fn unknown_bearer_tokens_cannot_spend_the_graph_budget() {
    let s = stack(world("demo"), &["--debug-token-per-minute", "3"]);
    let mut statuses = Vec::new();
    for i in 0..8 {
        let token = made_up_token(i);
        let a = match i % 3 {
            0 => get(&s.url("/graph/102289599326934"), Some(&token)).await,
            1 => send(client().post(s.url("/events/ticket")).bearer_auth(&token)).await,
            _ => {
                send(
                    client()
                        .post(s.url("/signup/events"))
                        .bearer_auth(&token)
                        .json(&serde_json::json!({"event": {
                            "type": "WA_EMBEDDED_SIGNUP", "event": "CANCEL",
                            "data": {"current_step": "PHONE_NUMBER_SETUP"}
                        }})),
                )
                .await
            }
        };
        statuses.push(a.status.as_u16());
    }
    assert_eq!(s.sim.calls("debug_token"), 2, "{statuses:?}");
    assert_eq!(statuses[..2], [401, 401]);
    assert!(statuses[2..].iter().all(|s| *s == 429), "{statuses:?}");
    // Known answers are still served: an invalid token again is a cached 401, not a call.
    let again = get(&s.url("/graph/102289599326934"), Some(&made_up_token(0))).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.text);
    assert_eq!(s.sim.calls("debug_token"), 2);
}

/// The global allowance of token checks holds even when the client's own allows more (how it
/// holds across addresses is in `auth::limit`'s unit tests: every request here comes from one).
#[tokio::test]
async fn the_global_allowance_caps_token_checks() {
    let s = stack(
        world("demo"),
        &[
            "--debug-token-per-minute",
            "100",
            "--debug-token-global-per-minute",
            "4",
        ],
    );
    let mut statuses = Vec::new();
    for i in 0..10 {
        let a = get(&s.url("/graph/102289599326934"), Some(&made_up_token(i))).await;
        statuses.push(a.status.as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429, 429, 429, 429, 429]);
    assert_eq!(s.sim.calls("debug_token"), 4);
}

/// Posts `body` with `Transfer-Encoding: chunked` (no `Content-Length`) over a raw
/// connection, reading the answer while it writes; the answer's status code.
async fn post_chunked(base: &str, path: &str, body: Vec<u8>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("the proxy accepts connections");
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    // The writer keeps its half open until the answer is read: the server closes a
    // half-closed connection without answering.
    let (done, wait) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        let sent: std::io::Result<()> = async {
            write.write_all(head.as_bytes()).await?;
            for chunk in body.chunks(8 * 1024) {
                write
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                write.write_all(chunk).await?;
                write.write_all(b"\r\n").await?;
            }
            write.write_all(b"0\r\n\r\n").await
        }
        .await;
        let _ = wait.await;
        sent
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let _ = done.send(());
    let _ = writer.await;
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Body limits count the bytes actually read: a chunked body without `Content-Length` gets
/// 413 like a declared one, and nothing of it is stored.
#[tokio::test]
async fn chunked_bodies_are_held_to_the_same_limits() {
    let db = waba_testkit::harness::temp_database();
    let args = with_database(&[], &db.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = stack(world("demo"), &args);
    let huge_step = "X".repeat(1536 * 1024);
    let report = json!({"event": {"type": "WA_EMBEDDED_SIGNUP", "event": "CANCEL",
                                  "data": {"current_step": huge_step}}})
    .to_string()
    .into_bytes();
    assert_eq!(
        post_chunked(&s.proxy.url, "/signup/events", report).await,
        413
    );
    let exchange = json!({"code": "A".repeat(20 * 1024)})
        .to_string()
        .into_bytes();
    assert_eq!(
        post_chunked(&s.proxy.url, "/signup/exchange", exchange).await,
        413
    );
    let webhook = vec![b' '; 1536 * 1024];
    assert_eq!(
        post_chunked(&s.proxy.url, "/webhooks/meta", webhook).await,
        413
    );
    // Within the limit, a chunked body is read as usual.
    let small = json!({"event": {"type": "WA_EMBEDDED_SIGNUP", "event": "CANCEL",
                                 "data": {"current_step": "PHONE_NUMBER_SETUP"}}})
    .to_string()
    .into_bytes();
    assert_eq!(
        post_chunked(&s.proxy.url, "/signup/events", small).await,
        200
    );
    let records = get(&s.url("/admin/onboardings"), Some(ADMIN)).await;
    let data = records.json()["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        data.len(),
        1,
        "only the small report is stored: {}",
        records.text
    );
    assert_eq!(data[0]["current_step"], "PHONE_NUMBER_SETUP");
}

/// Every text field of a posted session message is bounded: a field over its limit is
/// refused with 400 naming it, and nothing is stored; at the limit it is stored whole.
#[tokio::test]
async fn oversized_event_fields_are_refused_not_stored() {
    let s = stack(world("demo"), &[]);
    let report = |data: serde_json::Value, event: &str| {
        let body = json!({"event": {"type": "WA_EMBEDDED_SIGNUP", "event": event, "data": data}});
        let url = s.url("/signup/events");
        async move { send(client().post(url).json(&body)).await }
    };
    let long = |n: usize| "S".repeat(n);
    for (data, event, field) in [
        (json!({"current_step": long(65)}), "CANCEL", "current_step"),
        (
            json!({"error_message": long(1025)}),
            "ERROR",
            "error_message",
        ),
        (
            json!({"error_message": "x", "error_id": long(129)}),
            "ERROR",
            "error_id",
        ),
        (
            json!({"error_message": "x", "session_id": long(129)}),
            "ERROR",
            "session_id",
        ),
        (json!({}), &long(65), "event"),
    ] {
        let a = report(data, event).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{field}: {}", a.text);
        assert!(a.error().message.contains(field), "{field}: {}", a.text);
    }
    let records = get(&s.url("/admin/onboardings"), Some(ADMIN)).await;
    assert_eq!(records.json()["data"], json!([]), "{}", records.text);

    let at_limit = report(json!({"current_step": long(64)}), "CANCEL").await;
    assert_eq!(at_limit.status, StatusCode::OK, "{}", at_limit.text);
    let records = get(&s.url("/admin/onboardings"), Some(ADMIN)).await;
    assert_eq!(records.json()["data"][0]["current_step"], json!(long(64)));
}

/// Many concurrent first requests with one new token make one `debug_token` call and spend
/// one unit of the client's allowance: the page's parallel reads after a signup all succeed.
#[tokio::test]
async fn concurrent_requests_with_one_new_token_spend_one_check() {
    let s = stack(world("demo"), &["--debug-token-per-minute", "3"]);
    let url = s.url("/graph/102289599326934");
    let reads = (0..48).map(|_| {
        let url = url.clone();
        async move { get(&url, Some(FINISH)).await.status.as_u16() }
    });
    let statuses = futures_util::future::join_all(reads).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(s.sim.calls("debug_token"), 1);
}
