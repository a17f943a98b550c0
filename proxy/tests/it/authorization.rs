//! The authorization matrix: every refusal has the right status and Graph is not called for
//! what the proxy can refuse itself.

use crate::common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn no_token_is_401_without_any_graph_call() {
    let s = stack(world("demo"), &[]);
    for path in [
        "/graph/102289599326934".to_owned(),
        "/graph/102289599326934/phone_numbers".to_owned(),
        format!("/graph/{PARTNER}/client_whatsapp_business_accounts"),
    ] {
        let a = get(&s.url(&path), None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}");
        let e = a.error();
        assert_eq!((e.error_type.as_str(), e.code), ("WabaProxyError", 104));
        assert!(a.headers.contains_key("www-authenticate"));
    }
    for header in ["Basic YWxhZGRpbjpvcGVu", "Bearer", "Bearer  ", "Bearer a b"] {
        let a = send(
            client()
                .get(s.url("/graph/102289599326934"))
                .header("authorization", header),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{header}");
    }
    assert_eq!(s.sim.total_calls(), 0);
}

#[tokio::test]
async fn bad_and_expired_tokens_are_401_and_cached_negatively() {
    let s = stack(world("demo"), &[]);
    for token in [
        "EAASimNotAKnownTokenAtAll00000000000000000000099",
        REVOKED,
        EXPIRED,
    ] {
        for _ in 0..3 {
            let a = get(&s.url("/graph/102289599326934"), Some(token)).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
            assert_eq!(a.error().code, 190);
        }
    }
    assert_eq!(
        s.sim.calls("debug_token"),
        3,
        "one inspection per token, then the cache"
    );
    assert_eq!(s.sim.calls("waba"), 0);
}

#[tokio::test]
async fn a_token_granted_a_cannot_read_b() {
    let s = stack(world("demo"), &[]);
    let a = get(
        &s.url("/graph/106540352242922?fields=id,name"),
        Some(FINISH),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert_eq!(a.error().code, 200);
    let a = get(&s.url("/graph/106540352242922/phone_numbers"), Some(FINISH)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!((s.sim.calls("waba"), s.sim.calls("phone_numbers")), (0, 0));
    // Signup tokens never list; that is decided without asking Graph about the token.
    let a = get(
        &s.url(&format!(
            "/graph/{PARTNER}/client_whatsapp_business_accounts"
        )),
        Some(FINISH),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.sim.calls("debug_token"),
        1,
        "only the first request inspected the token"
    );
}

#[tokio::test]
async fn the_admin_is_limited_to_the_partners_business_and_wabas() {
    let mut w = world("demo");
    // A WABA Graph knows but that is not the partner's.
    let mut stranger = w.scenario.wabas[0].clone();
    stranger.id = "555000000000001".into();
    w.scenario.wabas.push(stranger);
    let w = waba_testkit::sim::scenario::World::new(w.scenario).unwrap();
    let s = stack(w, &[]);
    for edge in [
        "client_whatsapp_business_accounts",
        "owned_whatsapp_business_accounts",
    ] {
        let a = get(&s.url(&format!("/graph/1234567890/{edge}")), Some(ADMIN)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    }
    assert_eq!(
        s.sim.total_calls(),
        0,
        "another business: refused without Graph"
    );
    let a = get(&s.url("/graph/555000000000001"), Some(ADMIN)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert_eq!(s.sim.calls("waba"), 0, "the WABA itself was never fetched");
    let listed = s.sim.calls("client_wabas") + s.sim.calls("owned_wabas");
    let a = get(&s.url("/graph/555000000000001"), Some(ADMIN)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.sim.calls("client_wabas") + s.sim.calls("owned_wabas"),
        listed,
        "a repeated miss does not reload the directory"
    );
}

#[tokio::test]
async fn without_an_admin_token_list_routes_are_off() {
    let w = world("demo");
    let system = w.scenario.system_user_token.clone();
    let sim = waba_testkit::harness::SimServer::start_world(w).unwrap();
    let proxy = waba_testkit::harness::start_proxy(
        env!("CARGO_BIN_EXE_waba-proxy").as_ref(),
        &sim.url,
        &["--system-user-token", &system, "--business-id", PARTNER],
    )
    .unwrap();
    let a = get(
        &format!(
            "{}/graph/{PARTNER}/client_whatsapp_business_accounts",
            proxy.url
        ),
        Some(ADMIN),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.error().message.contains("no admin token"), "{}", a.text);
    assert_eq!(sim.calls("client_wabas") + sim.calls("debug_token"), 0);
}
