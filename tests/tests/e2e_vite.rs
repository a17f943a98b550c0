//! A frontend team's real import: the fixture apps in `tests/fixtures/vite-app` and
//! `tests/fixtures/esbuild-app` depend on the packed npm tarball, are built by Vite 7 with no
//! plugin and by esbuild, served by `waba-proxy --www`, and opened in headless Chromium
//! against graph-sim. `cargo xtask test` packs, installs and builds them first, then runs
//! this with `--features e2e`.

// An unwrap that fails here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::time::Duration;
use waba_testkit::browser::Browser;
use waba_testkit::harness::{
    SimServer, demo_proxy_args, project_root, scenario, start_proxy, target_bin,
};

#[tokio::test]
async fn the_vite_build_onboards_a_token_and_renders_its_accounts() {
    onboards_a_token("vite-app").await;
}

/// esbuild emits no .wasm by itself: the app imports it as a file and hands its URL to
/// `init()`, as the README says.
#[tokio::test]
async fn the_esbuild_build_onboards_a_token_and_renders_its_accounts() {
    onboards_a_token("esbuild-app").await;
}

/// The fixture app `name`'s build, served by the proxy, onboards a signup token.
async fn onboards_a_token(name: &str) {
    let dist = project_root()
        .join("tests/fixtures")
        .join(name)
        .join("dist");
    assert!(
        dist.join("index.html").exists(),
        "build the fixture first (cargo xtask test does)"
    );
    let sim = SimServer::start(&scenario("demo")).unwrap();
    let www = dist.to_string_lossy().into_owned();
    let mut args = demo_proxy_args(false);
    args.extend_from_slice(&["--www", &www]);
    let proxy = start_proxy(&target_bin("waba-proxy"), &sim.url, &args).unwrap();
    let browser = Browser::start(None).await.unwrap();
    browser
        .goto(&format!(
            "{}/index.html#token=EAASimBusinessTokenBigId000000000000000000000003",
            proxy.url
        ))
        .await
        .unwrap();
    let names = browser
        .wait_texts(".waba-account__name", Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(names, ["Big Id Bakery", "Harbor Logistics"]);
    let state = browser
        .client
        .execute("return document.body.dataset.state", vec![])
        .await
        .unwrap();
    assert_eq!(state, serde_json::json!("done"));
    let ids = browser
        .client
        .execute("return [...document.querySelectorAll('[data-account-id]')].map(e => e.dataset.accountId)", vec![])
        .await
        .unwrap();
    assert_eq!(
        ids,
        serde_json::json!(["9007199254740993", "107700000000001"]),
        "ids above 2^53 exact"
    );
    let badge = browser
        .wait_texts(
            "[data-account-id='107700000000001'] .waba-badge--unknown",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(badge, ["UNDER_APPEAL"]);
    assert_eq!((sim.calls("debug_token"), sim.calls("waba")), (1, 2));
    browser.close().await;
}
