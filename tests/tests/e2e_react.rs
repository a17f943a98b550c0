//! A React team's app: `tests/fixtures/react-app` renders `<EmbeddedSignup>` from
//! `waba-onboard/react` (the packed tarball, React 19, built by Vite, in `StrictMode`), served
//! by `waba-proxy --www` and driven in headless Chromium through a whole code-flow signup
//! against graph-sim. `cargo xtask test` packs, installs and builds it first (and renders the
//! binding with `react-dom/server`), then runs this with `--features e2e`.

// An unwrap that fails here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::time::Duration;
use waba_testkit::browser::Browser;
use waba_testkit::harness::{
    Running, SimServer, catalog_messages, demo_proxy_args, project_root, scenario, start_proxy,
    target_bin,
};

const WAIT: Duration = Duration::from_secs(30);

/// graph-sim, a code-flow proxy serving the built app, and Chromium on the app's page, the
/// simulated dialog set to run `flow`, the signup button clicked once it works (the wasm and
/// Meta's SDK loaded).
struct App {
    sim: SimServer,
    _proxy: Running,
    browser: Browser,
}

impl App {
    async fn sign_up(flow: &str) -> App {
        Self::sign_up_with(flow, "").await
    }

    /// Like [`App::sign_up`], with `extra` added to the page's fragment.
    async fn sign_up_with(flow: &str, extra: &str) -> App {
        let dist = project_root().join("tests/fixtures/react-app/dist");
        assert!(
            dist.join("index.html").exists(),
            "build the fixture first (cargo xtask test does)"
        );
        let sim = SimServer::start(&scenario("demo")).unwrap();
        let www = dist.to_string_lossy().into_owned();
        let mut args = demo_proxy_args(true);
        args.extend_from_slice(&["--www", &www]);
        let proxy = start_proxy(&target_bin("waba-proxy"), &sim.url, &args).unwrap();
        sim.state
            .set_webhook_url(Some(format!("{}/webhooks/meta", proxy.url)));
        let browser = Browser::start(None).await.unwrap();
        browser
            .goto(&format!(
                "{}/index.html#app=670843887433847&config=sim-config-1&sdk={}/_sim/sdk.js&origin={}&dialog={}/v26.0/dialog/oauth{extra}",
                proxy.url, sim.url, sim.url, sim.url
            ))
            .await
            .unwrap();
        sim.state.set_auto_flow(Some(flow.into()));
        browser
            .wait_for(".waba-signup-button:not([disabled])", WAIT)
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        App {
            sim,
            _proxy: proxy,
            browser,
        }
    }

    /// Waits for the panel to name both accounts the `finish` flow shares.
    async fn shows_both_accounts(&self) {
        let names = self
            .browser
            .wait_texts(".waba-account__name", WAIT)
            .await
            .unwrap();
        assert_eq!(names, ["Lucky Shrub", "Lucky Shrub Garden Centre"]);
    }

    async fn js(&self, script: &str) -> serde_json::Value {
        self.browser.client.execute(script, vec![]).await.unwrap()
    }

    /// Waits until the app's callback log holds `line` (and `also`, when given); the log.
    async fn logged(&self, line: &str) -> Vec<String> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let log = self.browser.wait_texts("#log li", WAIT).await.unwrap();
            if log.iter().any(|l| l == line) {
                return log;
            }
            assert!(std::time::Instant::now() < deadline, "no {line:?}: {log:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn embedded_signup_in_react_onboards_and_calls_back() {
    let app = App::sign_up("finish").await;
    app.shows_both_accounts().await;
    let badges = app.browser.wait_texts(".waba-badge", WAIT).await.unwrap();
    assert_eq!(badges, ["APPROVED", "PENDING"]);
    let found = app.browser.axe().await.unwrap();
    assert!(found.is_empty(), "WCAG 2.1 AA: {found:#?}");
    // Meta's code flow, by default: one exchange, the business token stays in the proxy.
    let (response_type, _) = app.sim.state.last_login().unwrap_or_default();
    assert_eq!(response_type, "code");
    assert_eq!(
        (
            app.sim.calls("oauth_access_token"),
            app.sim.calls("debug_token"),
            app.sim.calls("waba")
        ),
        (1, 1, 2)
    );
    let page = app.js("return document.documentElement.outerHTML").await;
    assert!(!page.as_str().unwrap().contains("EAASimBusinessTokenFinish"));
    // The callbacks, in order, once each although StrictMode mounted the component twice.
    let log = app.logged("done 2").await;
    assert_eq!(log[..2], ["result finished", "done 2"], "{log:?}");
    // A review decision Meta announces reaches onStatusChange and the panel.
    let res = reqwest::Client::new()
        .post(format!("{}/_sim/webhooks/send", app.sim.url))
        .json(&serde_json::json!({"kind": "review", "waba_id": "101569239400667", "decision": "REJECTED"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    app.logged("status review").await;
    let badges = app.browser.wait_texts(".waba-badge", WAIT).await.unwrap();
    assert_eq!(badges, ["APPROVED", "REJECTED"]);
    app.browser.close().await;
}

#[tokio::test]
async fn closing_the_dialog_calls_on_cancel() {
    let app = App::sign_up("cancel").await;
    let log = app.logged("cancel").await;
    assert!(log.iter().any(|l| l == "result abandoned"), "{log:?}");
    app.browser.close().await;
}

/// `login="redirect"`: Meta's full-page dialog; back on the page, the component goes on by
/// itself and calls back as in the popup.
#[tokio::test]
async fn the_component_finishes_a_signup_on_the_full_page_dialog() {
    let app = App::sign_up_with("finish", "&login=redirect").await;
    app.shows_both_accounts().await;
    let log = app.logged("done 2").await;
    assert_eq!(log[..2], ["result finished", "done 2"], "{log:?}");
    let url = app.browser.client.current_url().await.unwrap();
    assert_eq!(url.query(), None, "the code and state left the address bar");
    app.browser.close().await;
}

/// A refusal on the full-page dialog: the component says so, calls onCancel, and its button
/// works again.
#[tokio::test]
async fn a_refusal_on_the_full_page_dialog_leaves_the_component_ready() {
    let app = App::sign_up_with("cancel", "&login=redirect").await;
    let log = app.logged("cancel").await;
    assert!(log.iter().any(|l| l == "result cancelled"), "{log:?}");
    app.browser
        .wait_for(".waba-signup-button:not([disabled])", WAIT)
        .await
        .unwrap();
    app.browser.close().await;
}

/// `locale="pt-BR"` through Meta's full-page dialog: the button, its wrapper and the panel
/// speak Brazilian Portuguese before the dialog and after the return.
#[tokio::test]
async fn the_component_speaks_its_locale_before_and_after_the_full_page_dialog() {
    let pt = catalog_messages("pt-BR").unwrap();
    let app = App::sign_up_with("finish", "&login=redirect&locale=pt-BR").await;
    app.shows_both_accounts().await;
    let seen = app
        .js("const w = document.querySelector('.waba-embedded-signup');
             const p = document.querySelector('.waba-panel');
             return { button: document.querySelector('.waba-signup-button').textContent,
                      wrapper: w.lang, panel: p.lang, label: p.getAttribute('aria-label') };")
        .await;
    assert_eq!(seen["button"], pt["page.button"], "{seen}");
    assert_eq!(seen["wrapper"], "pt-BR", "{seen}");
    assert_eq!(seen["panel"], "pt-BR", "{seen}");
    assert_eq!(seen["label"], pt["panel.label"], "{seen}");
    app.browser.close().await;
}
