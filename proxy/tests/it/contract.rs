//! The OpenAPI contract: `docs/openapi.json` is what the code generates, and what a running
//! proxy serves at `/openapi.json`.

use crate::common::*;
use reqwest::StatusCode;
use std::path::PathBuf;
use waba_proxy::routes::openapi::document_json;

/// How to bring the committed document up to date, said by every failure here.
const REGENERATE: &str = "regenerate it with `UPDATE_OPENAPI=1 cargo test -p waba-proxy --test it contract` and commit docs/openapi.json";

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

/// The committed document.
fn committed() -> String {
    let path = committed_path();
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; {REGENERATE}", path.display()))
}

#[test]
fn the_committed_document_is_what_the_code_generates() {
    // The one place that writes it, so the other test never reads it half written.
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(committed_path(), document_json()).unwrap();
    }
    assert!(
        committed() == document_json(),
        "docs/openapi.json differs from the contract the code generates: {REGENERATE}"
    );
}

#[tokio::test]
async fn the_proxy_serves_the_committed_document_without_a_credential() {
    let s = stack(world("demo"), &[]);
    let a = get(&s.url("/openapi.json"), None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let header = |name: &str| {
        a.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "application/json; charset=utf-8");
    assert_eq!(header("cache-control"), "public, max-age=300");
    // While the other test rewrites the file, the served document is held to what it writes.
    let expected = match std::env::var_os("UPDATE_OPENAPI") {
        Some(_) => document_json(),
        None => committed(),
    };
    assert!(
        a.text == expected,
        "GET /openapi.json differs from docs/openapi.json: {REGENERATE}"
    );
    let doc = a.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    // Every route of the router is described, each Graph read on its own path.
    for path in [
        "/graph/debug_token",
        "/graph/{waba_id}",
        "/graph/{waba_id}/phone_numbers",
        "/graph/{business_id}/client_whatsapp_business_accounts",
        "/graph/{business_id}/owned_whatsapp_business_accounts",
        "/signup/exchange",
        "/signup/events",
        "/signup/accounts",
        "/admin/onboardings",
        "/admin/onboardings/{id}",
        "/admin/follow-ups",
        "/admin/onboardings/{id}/offboard",
        "/admin/steps/{id}/retry",
        "/admin/phones/{id}/pin",
        "/admin/writes",
        "/admin/graph-usage",
        "/admin/tracker/events",
        "/admin/tracker/pass",
        "/events/ticket",
        "/events/stream",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/webhooks/meta",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not described");
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let mut names: Vec<&str> = schemes.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "admin",
            "session",
            "signup_token",
            "stream_ticket",
            "webhook_signature"
        ]
    );
    // The document names no secret of the running proxy.
    for secret in [DEMO_SYSTEM, ADMIN, DEMO_APP_SECRET, TOKEN_KEY] {
        assert!(!a.text.contains(secret));
    }
}
