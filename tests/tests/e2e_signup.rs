//! The signup page as a business uses it, in real headless Chromium: the button, the
//! simulated Meta dialog (graph-sim's SDK stand-in), a real `waba-proxy` serving the page and
//! forwarding to graph-sim, and the status panel.
//!
//! These need the npm package and the proxy binary built, and Chromium installed;
//! `cargo xtask test` does all of that and then runs them (`--features e2e`).

// The helpers below are part of the tests: an unwrap that fails is a failed assertion.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use waba_testkit::browser::Browser;
use waba_testkit::harness::{
    DEMO_APP_SECRET, Running, SimServer, catalog_messages, demo_proxy_args, scenario, site,
    start_proxy, target_bin,
};

const WAIT: Duration = Duration::from_secs(20);

struct Stack {
    sim: SimServer,
    proxy: Running,
    proxy_args: Vec<String>,
    browser: Browser,
    site: PathBuf,
}

const ADMIN: &str = "e2e-admin-token-3b9f";

impl Stack {
    async fn start() -> Stack {
        Self::start_flow(false).await
    }

    /// With `code`, the page runs the code flow and the proxy exchanges codes. The proxy
    /// takes graph-sim's webhooks either way.
    async fn start_flow(code: bool) -> Stack {
        Self::start_in(code, None).await
    }

    /// Like [`Stack::start_flow`], with a browser asking for `language` first when given.
    async fn start_in(code: bool, language: Option<&str>) -> Stack {
        let sim = SimServer::start(&scenario("demo")).expect("graph-sim");
        let site = site(&sim.url).expect("site");
        let www = site.to_string_lossy().into_owned();
        let db = waba_testkit::harness::temp_database().display().to_string();
        // The app's secret either way (webhooks); with `code`, its id and a token key too.
        let mut args = demo_proxy_args(code);
        args.extend_from_slice(&["--admin-token", ADMIN, "--www", &www, "--database", &db]);
        if code {
            let config = site.join("config.js");
            let mut text = std::fs::read_to_string(&config).unwrap();
            // The embed's default: the code flow (and Embedded Signup v4).
            text.push_str("delete window.WABA_SIGNUP.responseType;\n");
            std::fs::write(&config, text).unwrap();
        } else {
            args.extend_from_slice(&["--app-secret", DEMO_APP_SECRET]);
        }
        let proxy = start_proxy(&target_bin("waba-proxy"), &sim.url, &args)
            .expect("waba-proxy (build it with `cargo build -p waba-proxy`)");
        sim.state
            .set_webhook_url(Some(format!("{}/webhooks/meta", proxy.url)));
        let browser = match language {
            Some(l) => Browser::start_in_language(l).await,
            None => Browser::start(None).await,
        }
        .expect("Chromium");
        Stack {
            proxy_args: args.iter().map(|a| a.to_string()).collect(),
            sim,
            proxy,
            browser,
            site,
        }
    }

    /// Opens the signup page, lets the simulated dialog run `flow`, clicks the button.
    async fn sign_up(&self, flow: &str) {
        self.sim.state.set_auto_flow(Some(flow.to_owned()));
        self.browser
            .goto(&format!("{}/signup.html", self.proxy.url))
            .await
            .unwrap();
        self.click_signup().await;
    }

    /// Opens the signup page in `locale` (`?locale=`), with the simulated dialog set to run
    /// `flow`.
    async fn open_in(&self, locale: &str, flow: &str) {
        self.sim.state.set_auto_flow(Some(flow.to_owned()));
        self.browser
            .goto(&format!("{}/signup.html?locale={locale}", self.proxy.url))
            .await
            .unwrap();
    }

    /// Opens the signup page and waits for its button.
    async fn open_page(&self) {
        self.browser
            .goto(&format!("{}/signup.html", self.proxy.url))
            .await
            .unwrap();
        self.browser
            .wait_for(".waba-signup-button", WAIT)
            .await
            .unwrap();
    }

    async fn click_signup(&self) {
        let button = self
            .browser
            .wait_for(".waba-signup-button", WAIT)
            .await
            .unwrap();
        button.click().await.unwrap();
    }

    async fn texts(&self, css: &str) -> Vec<String> {
        self.browser
            .wait_texts(css, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
    }

    async fn js(&self, script: &str) -> serde_json::Value {
        self.browser.client.execute(script, vec![]).await.unwrap()
    }

    async fn account_ids(&self) -> Vec<String> {
        self.texts("[data-account-id]").await;
        let ids = self
            .js("return [...document.querySelectorAll('[data-account-id]')].map(e => e.dataset.accountId)")
            .await;
        serde_json::from_value(ids).unwrap()
    }

    async fn close(self) {
        self.browser.close().await;
        let _ = std::fs::remove_dir_all(&self.site);
    }
}

fn artifact(name: &str) -> PathBuf {
    let dir = waba_testkit::harness::project_root().join("artifacts");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(name)
}

#[tokio::test]
async fn happy_path_shows_every_granted_account_newest_first() {
    let s = Stack::start().await;
    s.sign_up("finish").await;
    assert_eq!(
        s.account_ids().await,
        ["102289599326934", "101569239400667"]
    );
    let badges = s.texts(".waba-badge").await;
    assert_eq!(badges, ["APPROVED", "PENDING"]);
    assert_eq!(
        s.texts(".waba-account--newest .waba-account__name").await,
        ["Lucky Shrub"]
    );
    let phones = s.texts(".waba-phone__number").await;
    assert_eq!(
        phones,
        ["+1 631-555-0101", "+1 631-555-0102", "+49 30 5550 0103"]
    );
    // One debug_token and one call per WABA, phones by field expansion.
    assert_eq!(
        (
            s.sim.calls("debug_token"),
            s.sim.calls("waba"),
            s.sim.calls("phone_numbers")
        ),
        (1, 2, 0)
    );
    std::fs::write(
        artifact("signup.png"),
        s.browser.screenshot().await.unwrap(),
    )
    .unwrap();
    s.close().await;
}

/// A v4 multi-WABA finish (`waba_ids`, no `waba_id`) renders every WABA, and a verified
/// number that is still `PENDING` says the partner registers it, not the business.
#[tokio::test]
async fn a_multi_waba_finish_shows_every_account_and_who_acts() {
    let s = Stack::start().await;
    s.sign_up("multi_waba").await;
    let mut ids = s.account_ids().await;
    ids.sort();
    assert_eq!(ids, ["109900000000001", "109900000000002"]);
    let pending = s.texts("[data-phone-id='110200000000010']").await.join(" ");
    assert!(
        pending.contains("the partner acts") && pending.contains("register"),
        "{pending}"
    );
    assert!(!pending.contains("finish Embedded Signup"), "{pending}");
    let actor = s
        .js("return document.querySelector(\"[data-phone-id='110200000000010']\").dataset.actor")
        .await;
    assert_eq!(actor, "partner");
    let ready = s
        .texts("[data-phone-id='110200000000011'] .waba-phone__ready")
        .await;
    assert_eq!(ready, ["Ready"]);
    s.close().await;
}

/// The code flow's pipeline on the page: the partner's steps appear as they happen, and the
/// verified number the partner registers becomes ready to message, without a reload.
#[tokio::test]
async fn a_signup_becomes_ready_to_message_as_the_partner_s_steps_run() {
    let s = Stack::start_flow(true).await;
    s.sign_up("multi_waba").await;
    let deadline = std::time::Instant::now() + WAIT;
    while s
        .js("return [...document.querySelectorAll('[data-step=\"register\"][data-state=\"done\"]')].some(e => e.textContent.includes('ready to message'))")
        .await
        != true
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the number never became ready to message"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let steps = s.texts(".waba-step").await.join(" | ");
    assert!(steps.contains("Webhooks connected"), "{steps}");
    assert!(
        steps.contains("+44 20 5550 0110: ready to message"),
        "{steps}"
    );
    let phone = s
        .texts("[data-phone-id='110200000000010'] .waba-phone__ready")
        .await;
    assert_eq!(phone, ["Ready"]);
    assert!(s.sim.state.is_subscribed("109900000000001"));
    s.close().await;
}

#[tokio::test]
async fn the_login_may_arrive_before_the_session_message() {
    let s = Stack::start().await;
    s.sign_up("finish_login_first").await;
    assert_eq!(
        s.account_ids().await,
        ["102289599326934", "101569239400667"]
    );
    assert!(
        s.browser
            .client
            .find(fantoccini::Locator::Css("[data-warning]"))
            .await
            .is_err(),
        "no mismatch warning"
    );
    s.close().await;
}

#[tokio::test]
async fn leaving_early_gives_guidance_and_no_crash() {
    let s = Stack::start().await;
    s.sign_up("cancel").await;
    let state = s.texts(".waba-state--signup").await.join(" ");
    assert!(
        state.contains("PHONE_NUMBER_VERIFICATION") && state.contains("verification code"),
        "{state}"
    );
    assert!(
        s.browser
            .client
            .find(fantoccini::Locator::Css("[data-account-id]"))
            .await
            .is_err()
    );

    // Shared the account, then left: the account shows, with what the business must do.
    s.sign_up("incomplete").await;
    assert_eq!(s.account_ids().await, ["104996122399160"]);
    let notice = s.texts(".waba-notice--incomplete").await.join(" ");
    assert!(notice.contains("PHONE_NUMBER_VERIFICATION"), "{notice}");
    assert!(
        s.texts(".waba-state--signup")
            .await
            .join(" ")
            .contains("Signup not finished")
    );

    s.sign_up("error").await;
    let state = s.texts(".waba-state--signup").await.join(" ");
    assert!(
        state.contains("reported an error") && state.contains("524126"),
        "{state}"
    );

    s.sign_up("close").await;
    let state = s.texts("[data-outcome='cancelled']").await.join(" ");
    assert!(state.contains("Signup cancelled"), "{state}");
    s.close().await;
}

#[tokio::test]
async fn a_message_from_a_foreign_origin_is_ignored() {
    let s = Stack::start().await;
    s.sim.state.set_auto_flow(Some("finish".into()));
    s.browser
        .goto(&format!("{}/signup.html", s.proxy.url))
        .await
        .unwrap();
    // The same simulator under another host name is another origin: not trusted.
    let foreign = s.sim.url.replace("127.0.0.1", "localhost");
    s.js(&format!(
        "const f = document.createElement('iframe'); f.src = '{foreign}/_sim/forge'; document.body.appendChild(f); return true"
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.click_signup().await;
    assert_eq!(
        s.account_ids().await,
        ["102289599326934", "101569239400667"]
    );
    assert!(
        s.browser
            .client
            .find(fantoccini::Locator::Css("[data-warning='waba_mismatch']"))
            .await
            .is_err()
    );
    let text = s.browser.page_text().await.unwrap();
    assert!(!text.contains("666666666666666"), "{text}");
    s.close().await;
}

#[tokio::test]
async fn throttling_shows_a_retry_state_then_the_result() {
    let s = Stack::start().await;
    // Meta says access returns in a minute: the proxy answers 429 with Retry-After until then.
    s.sim.state.add_faults(vec![
        serde_json::from_value(json!({
            "route": "waba", "times": 1, "action": {"kind": "throttle", "code": 80008, "minutes": 1}
        }))
        .unwrap(),
    ]);
    s.sign_up("finish").await;
    let notice = s.texts(".waba-state--notice").await.join(" ");
    assert!(
        notice.contains("limiting requests") && notice.contains("Retrying automatically in"),
        "{notice}"
    );
    // "Retry now" during the wait: the proxy still holds the call back, the page keeps waiting.
    let retry = s
        .browser
        .wait_for(".waba-retry-button", WAIT)
        .await
        .unwrap();
    retry.click().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let notice = s.texts(".waba-state--notice").await.join(" ");
    assert!(notice.contains("Retrying automatically in"), "{notice}");
    let waba_calls = s.sim.calls("waba");
    // When the minute is over the page retries by itself and shows the accounts.
    let deadline = std::time::Instant::now() + Duration::from_secs(100);
    while s
        .browser
        .client
        .find(fantoccini::Locator::Css("[data-account-id]"))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no result after the wait"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        s.account_ids().await,
        ["102289599326934", "101569239400667"]
    );
    // The page retries when told to, so the minute costs a handful of calls, not a storm.
    let spent = s.sim.calls("waba") - waba_calls;
    assert!(
        spent <= 6,
        "Graph was hammered during the wait: {spent} calls"
    );
    s.close().await;
}

#[tokio::test]
async fn expired_token_and_proxy_down_give_clear_messages() {
    let mut s = Stack::start().await;
    s.sign_up("expired").await;
    let state = s.texts(".waba-state--error").await.join(" ");
    assert!(state.contains("no longer valid"), "{state}");
    assert_eq!(
        s.js("return document.querySelector('.waba-state--error').dataset.errorCode")
            .await,
        json!("unauthorized")
    );

    // The page is loaded; then the proxy goes away.
    s.sim.state.set_auto_flow(Some("finish".into()));
    s.open_page().await;
    s.proxy.stop();
    s.click_signup().await;
    let state = s.texts(".waba-state--error").await.join(" ");
    assert!(state.contains("cannot be reached"), "{state}");
    s.close().await;
}

#[tokio::test]
async fn an_xss_name_is_shown_as_text_and_never_runs() {
    let s = Stack::start().await;
    s.sign_up("xss").await;
    assert_eq!(s.account_ids().await, ["108800000000002"]);
    let name = s.texts(".waba-account__name").await;
    assert_eq!(name, ["<img src=x onerror=\"window.__xss=1\">Evil & Co"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        s.js("return window.__xss === undefined").await,
        json!(true),
        "an injected script ran"
    );
    assert_eq!(
        s.js("return document.querySelectorAll('#waba-signup img, #waba-signup script').length")
            .await,
        json!(0)
    );
    s.close().await;
}

async fn admin_get(url: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_code_flow_shows_every_account_and_the_token_stays_in_the_proxy() {
    let s = Stack::start_flow(true).await;
    s.sign_up("finish").await;
    assert_eq!(
        s.account_ids().await,
        ["102289599326934", "101569239400667"]
    );
    // By default the embed launches the code flow of Embedded Signup v4: chosen by the login
    // configuration, so no `version` and no v2 `sessionInfoVersion` in `extras`.
    let (response_type, extras) = s.sim.state.last_login().unwrap_or_default();
    assert_eq!(response_type, "code");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&extras).unwrap_or_default(),
        json!({"setup": {}})
    );
    assert_eq!(s.texts(".waba-badge").await, ["APPROVED", "PENDING"]);
    // One exchange, one debug_token, one read per WABA: the page's reads share the proxy's.
    assert_eq!(
        (
            s.sim.calls("oauth_access_token"),
            s.sim.calls("debug_token"),
            s.sim.calls("waba"),
            s.sim.calls("phone_numbers")
        ),
        (1, 1, 2, 0)
    );
    let storage = s
        .js("return JSON.stringify(Object.assign({}, sessionStorage, localStorage)) + document.documentElement.outerHTML")
        .await;
    assert!(
        !storage
            .as_str()
            .unwrap()
            .contains("EAASimBusinessTokenFinish"),
        "the business token never reaches the page"
    );
    let records = admin_get(&format!("{}/admin/onboardings", s.proxy.url)).await;
    let first = &records["data"][0];
    assert_eq!(first["flow"], "code");
    assert_eq!(first["outcome"], "finished");
    assert_eq!(first["has_business_token"], true);
    s.close().await;
}

#[tokio::test]
async fn a_cancelled_signup_is_recorded_with_what_to_do() {
    let s = Stack::start().await;
    s.sign_up("cancel").await;
    s.texts(".waba-state--signup").await;
    let url = format!("{}/admin/follow-ups", s.proxy.url);
    let deadline = std::time::Instant::now() + WAIT;
    let found = loop {
        let f = admin_get(&url).await;
        if f["data"].as_array().is_some_and(|d| !d.is_empty()) {
            break f;
        }
        assert!(std::time::Instant::now() < deadline, "no record: {f}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        found["data"][0]["current_step"],
        "PHONE_NUMBER_VERIFICATION"
    );
    assert_eq!(found["data"][0]["follow_ups"][0]["reason"], "left_at_step");
    s.close().await;
}

async fn sim_webhook(s: &Stack, w: serde_json::Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/_sim/webhooks/send", s.sim.url))
        .json(&w)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
}

/// Waits until the proxy's pipeline subscribed the app to `waba`: Meta (and graph-sim) sends
/// a WABA's webhooks only then.
async fn subscribed(s: &Stack, waba: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while !s.sim.state.is_subscribed(waba) {
        assert!(
            std::time::Instant::now() < deadline,
            "the pipeline never subscribed the app to {waba}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn badge_of(s: &Stack, waba: &str) -> String {
    s.js(&format!(
        "const b = document.querySelector('[data-account-id=\"{waba}\"] .waba-badge'); return b ? b.textContent : null"
    ))
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

async fn wait_badge(s: &Stack, waba: &str, want: &str, within: Duration) -> Duration {
    let started = std::time::Instant::now();
    while badge_of(s, waba).await != want {
        assert!(
            started.elapsed() < within,
            "{waba} still shows {} after {within:?}",
            badge_of(s, waba).await
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn a_review_decided_by_webhook_shows_without_a_reload() {
    let s = Stack::start_flow(true).await;
    s.sign_up("finish").await;
    s.account_ids().await;
    subscribed(&s, "101569239400667").await;
    assert_eq!(badge_of(&s, "101569239400667").await, "PENDING");
    s.js("window.__loaded = true; return true").await;
    // Let the page's stream connect, then Meta decides.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = std::time::Instant::now();
    sim_webhook(
        &s,
        json!({"kind": "review", "waba_id": "101569239400667", "decision": "APPROVED"}),
    )
    .await;
    wait_badge(&s, "101569239400667", "APPROVED", Duration::from_secs(1)).await;
    assert!(sent.elapsed() < Duration::from_secs(1));
    assert_eq!(
        s.js("return window.__loaded === true").await,
        json!(true),
        "no reload"
    );
    let live = s
        .js("return document.querySelector('.waba-live').textContent")
        .await;
    assert!(
        live.as_str().unwrap().contains("from PENDING to APPROVED"),
        "announced: {live}"
    );
    s.close().await;
}

/// A ban Meta announces by webhook (`DISABLED_UPDATE`, whose `entry.id` is the WABA) shows on
/// the account without a reload, and a reinstatement clears it.
#[tokio::test]
async fn a_ban_announced_by_webhook_shows_without_a_reload() {
    let s = Stack::start_flow(true).await;
    s.sign_up("finish").await;
    s.account_ids().await;
    subscribed(&s, "101569239400667").await;
    s.js("window.__loaded = true; return true").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alert_text = || {
        s.js("const a = document.querySelector(\"[data-account-id='101569239400667'] .waba-alert\"); return a ? a.dataset.kind + '|' + a.dataset.actor + '|' + a.textContent : ''")
    };
    assert_eq!(alert_text().await, "");
    sim_webhook(
        &s,
        json!({"kind": "account_update", "waba_id": "101569239400667", "event": "DISABLED_UPDATE",
               "value": {"ban_info": {"waba_ban_state": "DISABLE", "waba_ban_date": "April 17, 2025"}}}),
    )
    .await;
    let started = std::time::Instant::now();
    let shown = loop {
        let t = alert_text().await;
        if !t.as_str().unwrap_or_default().is_empty() {
            break t;
        }
        assert!(started.elapsed() < WAIT, "the ban never showed");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let shown = shown.as_str().unwrap_or_default().to_owned();
    assert!(shown.starts_with("disabled_update|business|"), "{shown}");
    assert!(shown.contains("disabled"), "{shown}");
    sim_webhook(
        &s,
        json!({"kind": "account_update", "waba_id": "101569239400667", "event": "DISABLED_UPDATE",
               "value": {"ban_info": {"waba_ban_state": "REINSTATE", "waba_ban_date": "April 18, 2025"}}}),
    )
    .await;
    let started = std::time::Instant::now();
    while alert_text().await != "" {
        assert!(
            started.elapsed() < WAIT,
            "the reinstatement never cleared the ban"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        s.js("return window.__loaded === true").await,
        json!(true),
        "no reload"
    );
    s.close().await;
}

#[tokio::test]
async fn the_page_reconnects_after_the_proxy_restarts_and_misses_nothing() {
    let mut s = Stack::start_flow(true).await;
    s.sign_up("finish").await;
    s.account_ids().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The proxy goes away and comes back on the same address with the same database; Meta's
    // next deliveries reach it there, and the page's stream has reconnected by itself.
    let port = s.proxy.url.rsplit(':').next().unwrap().to_owned();
    let args = s.proxy_args.clone();
    s.proxy.stop();
    let listen = format!("127.0.0.1:{port}");
    let mut again: Vec<&str> = args.iter().map(String::as_str).collect();
    again.extend_from_slice(&["--listen", &listen]);
    let proxy = start_proxy(&target_bin("waba-proxy"), &s.sim.url, &again).unwrap();
    assert_eq!(proxy.url, s.proxy.url);
    s.proxy = proxy;
    sim_webhook(
        &s,
        json!({"kind": "review", "waba_id": "101569239400667", "decision": "REJECTED"}),
    )
    .await;
    wait_badge(&s, "101569239400667", "REJECTED", Duration::from_secs(10)).await;
    sim_webhook(
        &s,
        json!({"kind": "review", "waba_id": "102289599326934", "decision": "DEFERRED"}),
    )
    .await;
    wait_badge(&s, "102289599326934", "DEFERRED", Duration::from_secs(2)).await;
    s.close().await;
}

/// axe-core finds no WCAG 2.1 A or AA violation on the signup page before a signup, while the
/// accounts load, with every account shown, and with an error.
#[tokio::test]
async fn the_signup_page_passes_axe_in_every_state() {
    let s = Stack::start().await;
    let check = |when: &'static str| {
        let b = &s.browser;
        async move {
            let found = b.axe().await.unwrap();
            assert!(found.is_empty(), "{when}: {found:#?}");
        }
    };
    s.open_page().await;
    check("before a signup").await;
    // Each Graph call takes a while: the panel shows that the accounts are loading.
    s.sim.state.set_latency(Duration::from_millis(1500));
    s.sim.state.set_auto_flow(Some("finish".into()));
    s.click_signup().await;
    s.texts(".waba-state--loading").await;
    check("while the accounts load").await;
    s.account_ids().await;
    s.sim.state.set_latency(Duration::ZERO);
    check("with every account shown").await;
    s.sign_up("expired").await;
    s.texts(".waba-state--error").await;
    check("with an error").await;
    s.close().await;
}

/// The whole signup by keyboard alone (Tab to the button, Enter), with what the live region
/// announces on the way: the accounts shown, then a review decision Meta announces.
#[tokio::test]
async fn a_keyboard_alone_completes_the_signup_and_the_live_region_says_what_changed() {
    let s = Stack::start_flow(true).await;
    s.sim.state.set_auto_flow(Some("finish".into()));
    s.open_page().await;
    let focused = "return document.activeElement && document.activeElement.classList.contains('waba-signup-button')";
    let mut tabs = 0;
    while s.js(focused).await != json!(true) {
        tabs += 1;
        assert!(tabs <= 20, "Tab never reached the signup button");
        s.browser
            .client
            .active_element()
            .await
            .unwrap()
            .send_keys("\u{E004}")
            .await
            .unwrap();
    }
    s.browser
        .client
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    assert_eq!(
        s.account_ids().await,
        ["102289599326934", "101569239400667"]
    );
    let live = "return document.querySelector('.waba-live').textContent";
    assert_eq!(s.js(live).await, json!("2 accounts shown."));
    sim_webhook(
        &s,
        json!({"kind": "review", "waba_id": "101569239400667", "decision": "REJECTED"}),
    )
    .await;
    wait_badge(&s, "101569239400667", "REJECTED", WAIT).await;
    let said = s.js(live).await;
    assert!(
        said.as_str()
            .is_some_and(|t| t.contains("review status changed from PENDING to REJECTED")),
        "{said}"
    );
    assert_eq!(
        s.js("return document.querySelector('.waba-live').getAttribute('aria-live')")
            .await,
        json!("polite")
    );
    s.close().await;
}

/// The stylesheet's colours, radii and the rest are custom properties a partner sets on the
/// container or on `:root`, and they reach the button and the panel's cards alike; a person
/// who prefers a dark scheme gets the dark theme, which passes axe-core's contrast checks too.
#[tokio::test]
async fn a_brand_colour_and_the_dark_theme_come_from_custom_properties() {
    let mut s = Stack::start_flow(true).await;
    s.sim.state.set_auto_flow(Some("finish".into()));
    s.open_page().await;
    let button_bg =
        "return getComputedStyle(document.querySelector('.waba-signup-button')).backgroundColor";
    assert_eq!(s.js(button_bg).await, json!("rgb(20, 100, 210)"));
    s.js("const box = document.querySelector('#waba-signup');
          box.style.setProperty('--waba-button-bg', '#123456');
          box.style.setProperty('--waba-radius', '3px');
          const brand = document.createElement('style');
          brand.textContent = ':root { --waba-accent: #5b2be0; }';
          document.head.append(brand);
          return true")
        .await;
    assert_eq!(s.js(button_bg).await, json!("rgb(18, 52, 86)"));
    s.click_signup().await;
    s.account_ids().await;
    assert_eq!(
        s.js(
            "return getComputedStyle(document.querySelector('.waba-account')).borderTopLeftRadius"
        )
        .await,
        json!("3px"),
        "the container's value reaches the panel's cards"
    );
    assert_eq!(
        s.js("return getComputedStyle(document.querySelector('.waba-newest')).backgroundColor")
            .await,
        json!("rgb(91, 43, 224)"),
        ":root's value reaches the panel"
    );
    let light = s.browser.axe().await.unwrap();
    assert!(light.is_empty(), "{light:#?}");

    let old = std::mem::replace(&mut s.browser, Browser::start_dark(None).await.unwrap());
    old.close().await;
    assert_eq!(
        s.js("return matchMedia('(prefers-color-scheme: dark)').matches")
            .await,
        json!(true)
    );
    s.sign_up("finish").await;
    s.account_ids().await;
    assert_eq!(
        s.js("return getComputedStyle(document.querySelector('.waba-account')).backgroundColor")
            .await,
        json!("rgb(36, 37, 38)")
    );
    let dark = s.browser.axe().await.unwrap();
    assert!(dark.is_empty(), "the dark theme: {dark:#?}");
    s.close().await;
}

/// On a right-to-left page the panel is laid out mirrored: a number's readiness sits at the
/// row's start (the left), the notice's bar on the right, the number itself left to right.
/// The panel takes the direction of its language, not of the page: an English panel on a
/// right-to-left page reads left to right, an Arabic one is mirrored (phone numbers still read
/// left to right).
#[tokio::test]
async fn the_panel_takes_its_language_s_direction_on_a_right_to_left_page() {
    let s = Stack::start_flow(true).await;
    s.sim.state.set_auto_flow(Some("finish".into()));
    let geometry = "const row = document.querySelector('.waba-phone');
        const box = (sel) => row.querySelector(sel).getBoundingClientRect();
        return { ready: box('.waba-phone__ready').left, number: box('.waba-phone__number').left,
                 direction: getComputedStyle(row.querySelector('.waba-phone__number')).direction,
                 panel: getComputedStyle(document.querySelector('.waba-panel')).direction };";
    for (locale, mirrored) in [("en", false), ("ar", true)] {
        s.browser
            .goto(&format!("{}/signup.html?locale={locale}", s.proxy.url))
            .await
            .unwrap();
        s.js("document.documentElement.dir = 'rtl'; return true")
            .await;
        s.click_signup().await;
        s.account_ids().await;
        let g = s.js(geometry).await;
        assert_eq!(
            g["ready"].as_f64() < g["number"].as_f64(),
            mirrored,
            "{locale}: {g}"
        );
        assert_eq!(
            g["panel"],
            json!(if mirrored { "rtl" } else { "ltr" }),
            "{locale}: {g}"
        );
        assert_eq!(
            g["direction"],
            json!("ltr"),
            "a phone number reads left to right"
        );
    }
    s.close().await;
}

/// A browser dropped without `close` (a test that panicked) leaves no Chromium process.
#[tokio::test]
async fn a_dropped_browser_leaves_no_chromium_behind() {
    let b = Browser::start(None).await.unwrap();
    b.goto("about:blank").await.unwrap();
    let flag = b.profile_flag();
    let running = || {
        std::process::Command::new("pgrep")
            .args(["-f", "--"])
            .arg(&flag)
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(running(), "Chromium runs with {flag}");
    drop(b);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while running() {
        assert!(
            std::time::Instant::now() < deadline,
            "Chromium outlived its session"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Stack {
    /// The code flow's page with the embed's `data-login` set to `login`.
    async fn with_login(login: &str) -> Stack {
        let s = Stack::start_flow(true).await;
        let config = s.site.join("config.js");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!("window.WABA_SIGNUP.login = \"{login}\";\n"));
        std::fs::write(&config, text).unwrap();
        s
    }

    /// The onboarding records, newest first.
    async fn records(&self) -> serde_json::Value {
        admin_get(&format!("{}/admin/onboardings", self.proxy.url)).await["data"].clone()
    }
}

/// Meta's full-page dialog when the partner chooses it: the page goes there, comes back with
/// the code, exchanges it with its address and shows the statuses; the code leaves the
/// address bar.
#[tokio::test]
async fn the_full_page_dialog_finishes_a_signup_when_the_partner_chooses_it() {
    let s = Stack::with_login("redirect").await;
    s.sign_up("finish").await;
    assert_eq!(
        s.account_ids().await,
        ["102289599326934", "101569239400667"]
    );
    let url = s.browser.client.current_url().await.unwrap();
    assert_eq!(url.path(), "/signup.html");
    assert_eq!(url.query(), None, "the code and state left the address bar");
    assert_eq!(s.sim.calls("oauth_access_token"), 1);
    let records = s.records().await;
    assert_eq!(
        (
            &records[0]["flow"],
            &records[0]["outcome"],
            &records[0]["has_business_token"]
        ),
        (&json!("code"), &json!("finished"), &json!(true))
    );
    let found = s.browser.axe().await.unwrap();
    assert!(found.is_empty(), "{found:#?}");
    s.close().await;
}

/// A blocked popup: the embed goes to Meta's full-page dialog by itself and the signup
/// finishes there.
#[tokio::test]
async fn a_blocked_popup_falls_back_to_the_full_page_dialog() {
    let s = Stack::start_flow(true).await;
    s.sim.state.set_auto_flow(Some("finish".into()));
    s.open_page().await;
    s.js("window.open = () => null; return true").await;
    s.click_signup().await;
    assert_eq!(
        s.account_ids().await,
        ["102289599326934", "101569239400667"]
    );
    let (response_type, _) = s.sim.state.last_login().unwrap_or_default();
    assert_eq!(response_type, "code");
    s.close().await;
}

/// Nobody logs in on the full-page dialog: the page says the signup was cancelled and the
/// proxy records Meta's words.
#[tokio::test]
async fn a_refusal_on_the_full_page_dialog_is_shown_and_recorded() {
    let s = Stack::with_login("redirect").await;
    s.sign_up("cancel").await;
    let state = s.texts("[data-outcome='cancelled']").await.join(" ");
    assert!(state.contains("Signup cancelled"), "{state}");
    let deadline = std::time::Instant::now() + WAIT;
    let records = loop {
        let r = s.records().await;
        if r.as_array().is_some_and(|a| !a.is_empty()) {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "no record");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (
            &records[0]["outcome"],
            &records[0]["event"],
            &records[0]["error_message"]
        ),
        (
            &json!("cancelled"),
            &json!("access_denied"),
            &json!("Permissions error.")
        )
    );
    s.close().await;
}

/// A person who closes Meta's popup in the code flow cancelled the signup: the page stays,
/// says so, and does not send them to the full-page dialog.
#[tokio::test]
async fn closing_the_popup_in_the_code_flow_cancels_without_leaving_the_page() {
    let s = Stack::start_flow(true).await;
    s.sim.state.set_auto_flow(Some("close".into()));
    s.open_page().await;
    s.js("window.__stayed = true; return true").await;
    s.click_signup().await;
    let state = s.texts("[data-outcome='cancelled']").await.join(" ");
    assert!(state.contains("Signup cancelled"), "{state}");
    assert_eq!(
        s.js("return window.__stayed === true").await,
        json!(true),
        "the page did not go anywhere"
    );
    s.close().await;
}

/// A catalog's text by id, as the test expects the page to show it.
fn said(messages: &serde_json::Map<String, serde_json::Value>, id: &str) -> String {
    messages[id]
        .as_str()
        .unwrap_or_else(|| panic!("no {id}"))
        .to_owned()
}

/// The locales graph-sim's SDK was loaded in.
async fn sdk_locales(s: &Stack) -> Vec<String> {
    serde_json::from_value(admin_get(&format!("{}/_sim/sdk-locales", s.sim.url)).await).unwrap()
}

#[tokio::test]
async fn a_signup_in_spanish_shows_every_text_in_spanish_and_loads_meta_s_sdk_in_it() {
    let es = catalog_messages("es").unwrap();
    let s = Stack::start_flow(true).await;
    s.open_in("es", "finish").await;
    let button = s.texts(".waba-signup-button").await;
    assert_eq!(button, [said(&es, "page.button")]);
    assert_eq!(sdk_locales(&s).await, ["es_LA"], "Meta's SDK in Spanish");
    s.click_signup().await;
    s.account_ids().await;
    let labels = s.texts(".waba-account__facts dt").await;
    for id in ["panel.waba_id", "panel.currency", "panel.timezone"] {
        assert!(labels.contains(&said(&es, id)), "{id} in {labels:?}");
    }
    let panel = s
        .js("const p = document.querySelector('.waba-panel');
             return { lang: p.lang, dir: p.dir, label: p.getAttribute('aria-label'),
                      live: document.querySelector('.waba-live').textContent };")
        .await;
    assert_eq!(panel["lang"], "es", "{panel}");
    assert_eq!(panel["dir"], "ltr", "{panel}");
    assert_eq!(panel["label"], json!(said(&es, "panel.label")));
    let n = s.account_ids().await.len();
    let shown = said(
        &es,
        if n == 1 {
            "panel.shown.one"
        } else {
            "panel.shown.other"
        },
    )
    .replace("{count}", &n.to_string());
    assert_eq!(panel["live"], json!(shown), "the live region in Spanish");
    // No English panel text is left.
    let text = s.browser.page_text().await.unwrap();
    for english in [
        "Currency",
        "Time zone",
        "Phone numbers",
        "Not ready",
        "Ready to",
    ] {
        assert!(!text.contains(english), "{english:?} in {text}");
    }
    s.close().await;
}

#[tokio::test]
async fn an_arabic_panel_is_laid_out_right_to_left_and_passes_axe() {
    let ar = catalog_messages("ar").unwrap();
    let s = Stack::start_flow(true).await;
    s.open_in("ar", "incomplete").await;
    s.click_signup().await;
    s.texts(".waba-notice--incomplete").await;
    let layout = s
        .js("const p = document.querySelector('.waba-panel');
             return { dir: p.dir, lang: p.lang, direction: getComputedStyle(p).direction,
                      page: getComputedStyle(document.body).direction,
                      incomplete: document.querySelector('.waba-notice--incomplete strong').textContent };")
        .await;
    assert_eq!(layout["dir"], "rtl", "{layout}");
    assert_eq!(layout["lang"], "ar", "{layout}");
    assert_eq!(layout["direction"], "rtl", "{layout}");
    assert_eq!(
        layout["page"], "ltr",
        "the partner's page keeps its own direction"
    );
    assert_eq!(layout["incomplete"], json!(said(&ar, "panel.incomplete")));
    // The model's guidance (written in Rust) is Arabic too.
    let guidance = s.texts(".waba-notice--incomplete p").await.join(" ");
    assert!(
        guidance.contains("PHONE_NUMBER_VERIFICATION")
            && guidance.contains(&said(&ar, "step.PHONE_NUMBER_VERIFICATION")),
        "{guidance}"
    );
    assert_eq!(sdk_locales(&s).await, ["ar_AR"]);
    let violations = s.browser.axe().await.unwrap();
    assert!(violations.is_empty(), "{violations:#?}");
    // Counted texts take Arabic's plural forms, numbers Arabic's digits.
    let plural = s
        .js("return import('/pkg/web/waba_onboard.js').then((m) => ({
               two: m.message('page.retrying_in', { count: 2 }),
               many: m.message('page.retrying_in', { count: 11 }),
               digits: new Intl.NumberFormat('ar').format(11) }))")
        .await;
    // Each value isolated (U+2068 ... U+2069) in a right-to-left text.
    let isolated = |v: &str| format!("\u{2068}{v}\u{2069}");
    let digits = isolated(plural["digits"].as_str().unwrap());
    let two = s.js("return new Intl.NumberFormat('ar').format(2)").await;
    assert_eq!(
        plural["two"],
        json!(
            said(&ar, "page.retrying_in.two").replace("{count}", &isolated(two.as_str().unwrap()))
        )
    );
    assert_eq!(
        plural["many"],
        json!(said(&ar, "page.retrying_in.many").replace("{count}", &digits))
    );
    s.close().await;
}

#[tokio::test]
async fn the_browser_s_language_chooses_the_catalog_and_a_close_one_serves_a_dialect() {
    let hi = catalog_messages("hi").unwrap();
    let s = Stack::start_in(true, Some("hi")).await;
    let browser = &s.browser;
    browser
        .goto(&format!("{}/signup.html", s.proxy.url))
        .await
        .unwrap();
    let first = browser
        .client
        .execute("return navigator.languages[0]", vec![])
        .await
        .unwrap();
    assert_eq!(first, "hi", "Chromium asks for Hindi first");
    let button = browser
        .wait_texts(".waba-signup-button", WAIT)
        .await
        .unwrap();
    assert_eq!(button, [said(&hi, "page.button")]);
    let chosen = browser
        .client
        .execute(
            "return import('/pkg/waba-onboard-locales.js').then((m) => [
               m.chooseLocale('pt-PT'), m.chooseLocale(['xx', 'es-MX']), m.chooseLocale('AR_eg'),
               m.chooseLocale('zz'), m.chooseLocale([]), m.LOCALES])",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        chosen,
        json!([
            "pt-BR",
            "es",
            "ar",
            "en",
            "en",
            ["en", "es", "pt-BR", "id", "hi", "ar"]
        ])
    );
    s.close().await;
}
