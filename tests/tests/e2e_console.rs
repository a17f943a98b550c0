//! The partner console with 10,000 client WABAs, in headless Chromium against a real
//! `waba-proxy` and graph-sim: the first page shows, scrolling loads more through the proxy's
//! rewritten `next` links, filter and sort give exactly the simulator's ground truth, the
//! counts per status are right, and an account's details show its phones. In Spanish and in
//! Arabic (right to left) every console text comes from the console's catalogs.

// An unwrap that fails here is a failed assertion.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use waba_testkit::browser::Browser;
use waba_testkit::harness::{
    DEMO_APP_SECRET, Running, SimServer, catalog_messages, console_catalog_messages,
    demo_proxy_args, scenario, site, start_proxy, target_bin,
};

const ADMIN: &str = "console-admin-token-e2e";
const WAIT: Duration = Duration::from_secs(30);
/// The proxy's settings for the pipeline tests: the code exchange and a quick pipeline.
const PIPELINE_ARGS: &[&str] = &[
    "--app-id",
    "670843887433847",
    "--token-key",
    "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
    "--pipeline-interval-ms",
    "100",
];

async fn js(b: &Browser, script: &str) -> Value {
    b.client.execute(script, vec![]).await.unwrap()
}

async fn wait_until(b: &Browser, script: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while js(b, script).await != json!(true) {
        assert!(Instant::now() < deadline, "timed out waiting for: {script}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the list shows its first page and loads nothing more.
async fn first_page_shown(b: &Browser) {
    wait_until(
        b,
        "return Number(document.getElementById('status-line').dataset.loaded || 0) > 0 && !window.__console.loading",
        WAIT,
    )
    .await;
}

async fn loaded(b: &Browser) -> u64 {
    js(
        b,
        "return Number(document.getElementById('status-line').dataset.loaded || 0)",
    )
    .await
    .as_u64()
    .unwrap()
}

#[tokio::test]
async fn ten_thousand_accounts_scroll_filter_sort_and_count() {
    let sim = SimServer::start(&scenario("large")).unwrap();
    let world = &sim.state.world;
    let business = world.business("805021500648488").unwrap();
    let truth: Vec<(i64, String, String)> = business
        .client_wabas
        .iter()
        .map(|id| {
            let w = world.waba(id).unwrap();
            let status = w.fields["account_review_status"]
                .as_str()
                .unwrap()
                .to_owned();
            (w.creation_time, w.id.clone(), status)
        })
        .collect();
    let site = site(&sim.url).unwrap();
    let www = site.to_string_lossy().into_owned();
    let proxy = start_proxy(
        &target_bin("waba-proxy"),
        &sim.url,
        &[
            "--system-user-token",
            "EAASimSystemUserTokenLarge000000000000000000000001",
            "--business-id",
            "805021500648488",
            "--admin-token",
            ADMIN,
            "--www",
            &www,
        ],
    )
    .unwrap();
    let b = signed_in(&proxy.url).await;
    assert!(
        !b.client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains(ADMIN),
        "never in the URL"
    );

    // The first page, newest first.
    b.wait_for(".row", WAIT).await.unwrap();
    wait_until(
        &b,
        "return document.getElementById('status-line').dataset.loaded === '100'",
        WAIT,
    )
    .await;
    let mut newest = truth.clone();
    newest.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
    let first = js(
        &b,
        "return document.querySelector('.row[data-index=\"0\"]').dataset.accountId",
    )
    .await;
    assert_eq!(first, json!(newest[0].1));
    let rendered = js(&b, "return document.querySelectorAll('.row').length")
        .await
        .as_u64()
        .unwrap();
    assert!(
        rendered < 40,
        "only visible rows are in the DOM ({rendered})"
    );

    // Scrolling loads the next pages through the proxy's links.
    let mut previous = loaded(&b).await;
    let deadline = Instant::now() + Duration::from_secs(180);
    while js(
        &b,
        "return document.getElementById('status-line').dataset.complete",
    )
    .await
        != json!("true")
    {
        js(
            &b,
            "const l = document.getElementById('list'); l.scrollTop = l.scrollHeight; return true",
        )
        .await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        let now = loaded(&b).await;
        assert!(now >= previous);
        previous = now;
        assert!(
            Instant::now() < deadline,
            "scrolling stopped loading at {now}"
        );
    }
    assert_eq!(loaded(&b).await, 10_000);
    assert_eq!(sim.calls("client_wabas"), 100, "exactly 100 upstream pages");

    // Counts per status equal the simulator's.
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for (_, _, s) in &truth {
        *want.entry(s.clone()).or_default() += 1;
    }
    let got: BTreeMap<String, u64> = serde_json::from_value(
        js(&b, "return Object.fromEntries([...document.querySelectorAll('#counts [data-status]')].map(e => [e.dataset.status, Number(e.dataset.count)]))").await,
    )
    .unwrap();
    assert_eq!(got, want);

    // Filter by creation time: exactly the simulator's ground truth, in order.
    let cut_day = "2020-06-01";
    let cut = 1_590_969_600; // 2020-06-01T00:00:00Z
    js(&b, &format!("const i = document.getElementById('created-after'); i.value = '{cut_day}'; i.dispatchEvent(new Event('change')); return true")).await;
    b.wait_for("#load-all", WAIT).await.unwrap();
    js(
        &b,
        "document.getElementById('load-all').click(); return true",
    )
    .await;
    wait_until(&b, "return document.getElementById('status-line').dataset.complete === 'true' && !window.__console.loading", Duration::from_secs(120)).await;
    let ids: Vec<String> =
        serde_json::from_value(js(&b, "return window.__console.shown.map(w => w.id)").await)
            .unwrap();
    let want: Vec<String> = newest
        .iter()
        .filter(|t| t.0 > cut)
        .map(|t| t.1.clone())
        .collect();
    assert!(!want.is_empty() && want.len() < 10_000);
    assert_eq!(ids, want);

    // Sort ascending: the oldest account after the cut comes first.
    js(&b, "const s = document.getElementById('sort'); s.value = 'asc'; s.dispatchEvent(new Event('change')); return true").await;
    wait_until(
        &b,
        "return window.__console.rows.length >= 100 && !window.__console.loading",
        WAIT,
    )
    .await;
    let first = js(&b, "return window.__console.shown[0].id").await;
    assert_eq!(first, json!(want.last().unwrap()));

    // Search, then the details of one account.
    let target = js(&b, "return window.__console.shown[3].name").await;
    js(&b, &format!("const s = document.getElementById('search'); s.value = {target}; s.dispatchEvent(new Event('input')); return true")).await;
    wait_until(&b, "return window.__console.shown.length === 1", WAIT).await;
    // A page still in flight when the search ran re-renders the row when it lands: the row
    // is clicked once nothing is loading.
    wait_until(
        &b,
        "return !window.__console.loading && document.querySelectorAll('.row').length === 1",
        WAIT,
    )
    .await;
    b.wait_for(".row", WAIT)
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let phones = b
        .wait_texts("#detail .waba-phone__number", WAIT)
        .await
        .unwrap();
    assert_eq!(phones.len(), 1);
    let badge = b.wait_texts("#detail .waba-badge", WAIT).await.unwrap();
    assert!(!badge.is_empty());
    js(&b, "const s = document.getElementById('search'); s.value = ''; s.dispatchEvent(new Event('input')); return true").await;
    // Created before, on the client list; then a range (two conditions) on the owned list.
    js(&b, "document.getElementById('sort').value = 'desc'; const a = document.getElementById('created-after'); a.value = ''; const i = document.getElementById('created-before'); i.value = '2020-02-01'; i.dispatchEvent(new Event('change')); return true").await;
    wait_until(
        &b,
        "return !window.__console.loading && window.__console.rows.length > 0",
        WAIT,
    )
    .await;
    js(
        &b,
        "document.getElementById('load-all').click(); return true",
    )
    .await;
    wait_until(&b, "return document.getElementById('status-line').dataset.complete === 'true' && !window.__console.loading", Duration::from_secs(60)).await;
    let ids: Vec<String> =
        serde_json::from_value(js(&b, "return window.__console.shown.map(w => w.id)").await)
            .unwrap();
    let before = 1_580_515_200; // 2020-02-01T00:00:00Z
    let want: Vec<String> = newest
        .iter()
        .filter(|t| t.0 < before)
        .map(|t| t.1.clone())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(ids, want);
    let owned_truth: Vec<(i64, String)> = business
        .owned_wabas
        .iter()
        .map(|id| (world.waba(id).unwrap().creation_time, id.clone()))
        .collect();
    js(
        &b,
        "document.getElementById('tab-owned').click(); return true",
    )
    .await;
    js(&b, "const a = document.getElementById('created-after'); a.value = '2020-11-09'; const i = document.getElementById('created-before'); i.value = '2020-11-10'; i.dispatchEvent(new Event('change')); return true").await;
    wait_until(&b, "return document.getElementById('status-line').dataset.complete === 'true' && !window.__console.loading", WAIT).await;
    let ids: Vec<String> =
        serde_json::from_value(js(&b, "return window.__console.shown.map(w => w.id)").await)
            .unwrap();
    let (lo, hi) = (1_604_880_000, 1_604_966_400); // 2020-11-09 and 2020-11-10, 00:00 UTC
    let mut want: Vec<(i64, String)> = owned_truth
        .into_iter()
        .filter(|t| t.0 > lo && t.0 < hi)
        .collect();
    want.sort_by(|a, b| b.cmp(a));
    assert!(
        !want.is_empty() && want.len() < 3,
        "the range keeps some owned WABAs, not all"
    );
    assert_eq!(ids, want.into_iter().map(|t| t.1).collect::<Vec<_>>());
    let dir = waba_testkit::harness::project_root().join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("console.png"), b.screenshot().await.unwrap()).unwrap();
    let renders: Vec<f64> =
        serde_json::from_value(js(&b, "return window.__consoleMetrics.renders").await).unwrap();
    let worst = renders.iter().cloned().fold(0.0, f64::max);
    println!(
        "console: {} list renders with 10,000 accounts loaded, slowest {worst:.1} ms",
        renders.len()
    );
    b.client.set_window_size(390, 844).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        js(
            &b,
            "return document.documentElement.scrollWidth <= window.innerWidth"
        )
        .await,
        json!(true)
    );
    std::fs::write(dir.join("console-phone.png"), b.screenshot().await.unwrap()).unwrap();
    b.close().await;
    let _ = std::fs::remove_dir_all(&site);
}

/// The token field, once the console shows the sign-in form (its language chosen).
async fn sign_in_form(b: &Browser) -> fantoccini::elements::Element {
    wait_until(
        b,
        "return document.getElementById('signin').hidden === false",
        WAIT,
    )
    .await;
    b.wait_for("#admin-token", WAIT).await.unwrap()
}

/// Headless Chromium on the console at `proxy_url`, signed in with the admin token.
async fn signed_in(proxy_url: &str) -> Browser {
    signed_in_on(&format!("{proxy_url}/console.html")).await
}

/// Headless Chromium on the console page `page` (a query may choose its language), signed in
/// with the admin token.
async fn signed_in_on(page: &str) -> Browser {
    let b = Browser::start(Some((1280, 900))).await.unwrap();
    b.goto(page).await.unwrap();
    sign_in_form(&b).await.send_keys(ADMIN).await.unwrap();
    b.wait_for("#signin button", WAIT)
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b
}

/// graph-sim with the demo scenario, the console's site, and a proxy in front of them with
/// the demo's System User, the admin token and the app secret, plus `extra` flags.
fn demo_stack(extra: &[&str]) -> (SimServer, std::path::PathBuf, Running) {
    let sim = SimServer::start(&scenario("demo")).unwrap();
    let site = site(&sim.url).unwrap();
    let www = site.to_string_lossy().into_owned();
    let mut args = demo_proxy_args(false);
    args.extend_from_slice(&[
        "--admin-token",
        ADMIN,
        "--www",
        &www,
        "--app-secret",
        DEMO_APP_SECRET,
    ]);
    args.extend_from_slice(extra);
    let proxy = start_proxy(&target_bin("waba-proxy"), &sim.url, &args).unwrap();
    (sim, site, proxy)
}

#[tokio::test]
async fn follow_ups_new_shares_and_live_review_decisions() {
    let (sim, site, proxy) = demo_stack(&[]);
    sim.state
        .set_webhook_url(Some(format!("{}/webhooks/meta", proxy.url)));
    let http = reqwest::Client::new();
    // A business left at phone verification, reported by its signup page.
    let report = http
        .post(format!("{}/signup/events", proxy.url))
        .json(
            &json!({"event": {"type": "WA_EMBEDDED_SIGNUP", "event": "CANCEL",
                                "data": {"current_step": "PHONE_NUMBER_VERIFICATION"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 200);
    // The tracker's first pass records the set; then an old WABA is shared.
    let pass = http
        .post(format!("{}/admin/tracker/pass", proxy.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(pass.status(), 200);
    sim.state.share("805021500648488", "1906385232743451");

    let b = signed_in(&proxy.url).await;
    wait_until(
        &b,
        "return document.querySelector('#follow-ups li[data-reason]') !== null",
        WAIT,
    )
    .await;
    let text = js(
        &b,
        "return document.getElementById('follow-ups').textContent",
    )
    .await;
    assert!(
        text.as_str().unwrap().contains("PHONE_NUMBER_VERIFICATION"),
        "{text}"
    );
    b.wait_for("#check-shares", WAIT)
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &b,
        "return document.querySelector('#shares li.is-new[data-kind=\"shared\"]') !== null",
        WAIT,
    )
    .await;
    let id = js(
        &b,
        "return document.querySelector('#shares li.is-new').dataset.wabaId",
    )
    .await;
    assert_eq!(id, json!("1906385232743451"));

    // Live: Meta approves a pending account; the row and the counts change in place.
    let count = |status: &str| {
        format!(
            "const b = document.querySelector('#counts [data-status=\"{status}\"]'); return b ? Number(b.dataset.count) : 0"
        )
    };
    wait_until(
        &b,
        "return document.querySelector('.row[data-account-id=\"101569239400667\"]') !== null",
        WAIT,
    )
    .await;
    // As at Meta, a WABA's review webhooks reach the app only once it subscribed to the WABA.
    sim.state.subscribe("101569239400667", None);
    let approved = js(&b, &count("APPROVED")).await.as_u64().unwrap();
    let pending = js(&b, &count("PENDING")).await.as_u64().unwrap();
    let sent = http
        .post(format!("{}/_sim/webhooks/send", sim.url))
        .json(&json!({"kind": "review", "waba_id": "101569239400667", "decision": "APPROVED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let counted = |status: &str, n: u64| {
        format!(
            "const b = document.querySelector('#counts [data-status=\"{status}\"]'); return (b ? Number(b.dataset.count) : 0) === {n}"
        )
    };
    wait_until(
        &b,
        &counted("APPROVED", approved + 1),
        Duration::from_secs(2),
    )
    .await;
    wait_until(&b, &counted("PENDING", pending - 1), WAIT).await;
    wait_until(
        &b,
        "return document.querySelector('.row[data-account-id=\"101569239400667\"] .waba-badge').textContent === 'APPROVED'",
        WAIT,
    )
    .await;
    wait_until(
        &b,
        "return document.querySelector('#changes li[data-kind=\"review\"][data-waba-id=\"101569239400667\"]') !== null",
        WAIT,
    )
    .await;
    // A field this version does not know is shown as Meta sent it, not dropped.
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102289599326934", "time": 7,
        "changes": [{"field": "business_capability_update", "value": {"max_daily_conversation_per_phone": 1000}}]}]})
    .to_string();
    let delivered = http
        .post(format!("{}/webhooks/meta", proxy.url))
        .header(
            "x-hub-signature-256",
            waba_testkit::sim::webhooks::signature("sim-app-secret-demo-5f1e0c9a", body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status(), 200);
    wait_until(
        &b,
        "const li = document.querySelector('#changes li[data-kind=\"unknown\"]'); return li !== null && li.textContent.includes('business_capability_update') && li.textContent.includes('max_daily_conversation_per_phone')",
        WAIT,
    )
    .await;
    b.close().await;
    let _ = std::fs::remove_dir_all(&site);
}

/// Exchanges a code the simulator minted for `token` on the proxy's signup route, as a signup
/// page would; the onboarding record's id.
async fn sign_up(http: &reqwest::Client, proxy: &str, code: String, data: Value) -> i64 {
    let answer = http
        .post(format!("{proxy}/signup/exchange"))
        .json(
            &json!({"code": code, "event": {"type": "WA_EMBEDDED_SIGNUP", "event": "FINISH",
                                              "version": "3", "data": data}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    body["onboarding_id"].as_i64().unwrap()
}

/// A script that is true once the record `id` shows steps and every one is in `states`
/// (and at least one is `done`).
fn steps_settled(id: i64, states: &str) -> String {
    format!(
        "const r = document.querySelector('#onboarding-list [data-onboarding-id=\"{id}\"]'); if (!r) return false; \
         const s = [...r.querySelectorAll('[data-step-id]')].map(e => e.dataset.state); \
         return s.length > 0 && s.includes('done') && s.every(x => {states}.includes(x))"
    )
}

#[tokio::test]
async fn pipeline_steps_show_live_with_who_acts_a_pin_retry_and_an_offboarding() {
    let (sim, site, proxy) = demo_stack(PIPELINE_ARGS);
    let http = reqwest::Client::new();
    // A business whose number already has a two-step PIN (424242): registering it with
    // another PIN fails with Meta's 133005, and only the business can say the right one.
    let code = sim
        .state
        .mint_code("EAASimBusinessTokenPinMismatch0000000000000000011");
    let pinned = sign_up(
        &http,
        &proxy.url,
        code,
        json!({"waba_id": "109900000000004", "phone_number_id": "110200000000013"}),
    )
    .await;

    let b = signed_in(&proxy.url).await;
    // A reload would drop this mark: what follows happens in place, over the live stream.
    js(&b, "window.__sameDocument = true; return true").await;

    // The record, its steps, and the register step failed with Meta's code and who acts.
    let register =
        format!("#onboarding-list [data-onboarding-id=\"{pinned}\"] [data-kind=\"register\"]");
    wait_until(
        &b,
        &format!("const s = document.querySelector('{register}'); return s !== null && s.dataset.state === 'failed'"),
        WAIT,
    )
    .await;
    let step: Value = js(
        &b,
        &format!(
            "const s = document.querySelector('{register}'); return {{id: s.dataset.stepId, actor: s.dataset.actor, \
             text: s.innerText, state: s.querySelector('.ob-state').textContent, code: s.querySelector('.ob-error').dataset.errorCode, \
             kinds: [...s.closest('[data-onboarding-id]').querySelectorAll('[data-step-id]')].map(e => e.dataset.kind), \
             offboard: s.closest('[data-onboarding-id]').querySelector('.ob-button--danger') !== null}}"
        ),
    )
    .await;
    assert_eq!(step["code"], "133005", "{step:#}");
    assert_eq!(step["state"], "✕Failed", "a word, not only a colour");
    assert_eq!(step["actor"], "business", "{step:#}");
    let text = step["text"].as_str().unwrap();
    for shown in [
        "Number registration",
        "Who acts: the business",
        "133005",
        "Next attempt: waits for you",
        "Business's PIN",
        "Retry",
    ] {
        assert!(text.contains(shown), "{shown:?} not in {text:?}");
    }
    let kinds = step["kinds"].as_array().unwrap();
    assert!(kinds.contains(&json!("subscribe")), "{kinds:?}");
    assert_eq!(step["offboard"], true);
    let step_id = step["id"].as_str().unwrap().to_owned();

    // Listed under Needs follow-up, with who acts and why.
    let follow_up = format!("#follow-ups li[data-step-id=\"{step_id}\"]");
    wait_until(
        &b,
        &format!("return document.querySelector('{follow_up}') !== null"),
        WAIT,
    )
    .await;
    let item = js(
        &b,
        &format!("return document.querySelector('{follow_up}').innerText"),
    )
    .await;
    let item = item.as_str().unwrap();
    assert!(
        item.contains("Number registration failed") && item.contains("the business"),
        "{item}"
    );
    // Neither a business token nor a PIN is in the page or kept by it.
    let leaked = js(
        &b,
        "const html = document.documentElement.outerHTML; \
         const kept = JSON.stringify([...window.__onboardings.records.values()]); \
         return [...['EAASim', '424242'].filter(s => html.includes(s) || kept.includes(s)), \
                 ...['\"business_token\"', '\"pins\"'].filter(s => kept.includes(s))]",
    )
    .await;
    assert_eq!(leaked, json!([]));

    let dir = waba_testkit::harness::project_root().join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    js(
        &b,
        &format!(
            "document.querySelector('{register}').scrollIntoView({{block: 'center'}}); return true"
        ),
    )
    .await;
    std::fs::write(
        dir.join("console-pipeline-failed.png"),
        b.screenshot().await.unwrap(),
    )
    .unwrap();

    // The business tells its PIN: entered in the form, the step runs again and is done, live.
    let input = b.wait_for(&format!("#pin-{step_id}"), WAIT).await.unwrap();
    assert_eq!(
        input.attr("inputmode").await.unwrap().as_deref(),
        Some("numeric")
    );
    assert_eq!(
        input.attr("pattern").await.unwrap().as_deref(),
        Some("[0-9]{6}")
    );
    input.send_keys("424242").await.unwrap();
    b.wait_for(&format!("[data-focus-key=\"pin-{step_id}-submit\"]"), WAIT)
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &b,
        &format!("const s = document.querySelector('{register}'); return s !== null && s.dataset.state === 'done' && s.innerText.includes('ready to message')"),
        WAIT,
    )
    .await;
    assert_eq!(
        js(&b, "return window.__sameDocument === true").await,
        json!(true)
    );
    let gone = js(
        &b,
        &format!("const s = document.querySelector('{register}'); return s.querySelector('.ob-pin, .ob-error') === null && !s.innerText.includes('Retry')"),
    )
    .await;
    assert_eq!(gone, json!(true), "a done step offers nothing to do");
    // The change list reads what happened.
    wait_until(
        &b,
        "return [...document.querySelectorAll('#changes li[data-kind=\"pipeline_step\"]')].some(li => li.textContent.includes('Pipeline: ') && li.textContent.includes('ready to message'))",
        WAIT,
    )
    .await;
    // Nothing is left to follow up once the activity is refreshed.
    b.wait_for("#refresh-follow-ups", WAIT)
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &b,
        &format!("return document.querySelector('{follow_up}') === null"),
        WAIT,
    )
    .await;

    // A second business shares two WABAs: its record appears live, its steps get done.
    let code = sim
        .state
        .mint_code("EAASimBusinessTokenMultiWaba00000000000000000008");
    let multi = sign_up(
        &http,
        &proxy.url,
        code,
        json!({"waba_ids": ["109900000000001", "109900000000002"]}),
    )
    .await;
    assert!(multi > pinned);
    wait_until(&b, &steps_settled(multi, "['done', 'skipped']"), WAIT).await;
    let first = js(
        &b,
        "return document.querySelector('#onboarding-list [data-onboarding-id]').dataset.onboardingId",
    )
    .await;
    assert_eq!(first, json!(multi.to_string()), "newest first");
    assert_eq!(
        js(&b, "return window.__sameDocument === true").await,
        json!(true)
    );

    // Offboarding, confirmed: the app unsubscribes and the numbers are deregistered.
    js(
        &b,
        "window.__confirms = []; window.confirm = (m) => { window.__confirms.push(m); return true; }; return true",
    )
    .await;
    b.wait_for(
        &format!("#onboarding-list [data-onboarding-id=\"{multi}\"] .ob-button--danger"),
        WAIT,
    )
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let offboarded = format!(
        "const r = document.querySelector('#onboarding-list [data-onboarding-id=\"{multi}\"]'); if (!r) return false; \
         const off = [...r.querySelectorAll('[data-kind=\"unsubscribe\"], [data-kind=\"deregister\"]')]; \
         return off.some(e => e.dataset.kind === 'unsubscribe') && off.some(e => e.dataset.kind === 'deregister') \
           && off.every(e => e.dataset.state === 'done') && r.querySelector('[data-mark=\"offboarded\"]') !== null \
           && r.querySelector('.ob-button--danger') === null"
    );
    wait_until(&b, &offboarded, WAIT).await;
    let confirms = js(&b, "return window.__confirms").await;
    let confirms = confirms.as_array().unwrap();
    assert_eq!(confirms.len(), 1, "asked once: {confirms:?}");
    assert!(
        confirms[0].as_str().unwrap().contains(&format!("#{multi}")),
        "{confirms:?}"
    );
    assert!(!sim.state.is_subscribed("109900000000001"));
    assert!(!sim.state.is_subscribed("109900000000002"));
    assert_eq!(
        js(&b, "return window.__sameDocument === true").await,
        json!(true)
    );

    js(
        &b,
        "document.getElementById('onboardings').scrollIntoView(); return true",
    )
    .await;
    std::fs::write(
        dir.join("console-pipeline.png"),
        b.screenshot().await.unwrap(),
    )
    .unwrap();
    // On a phone the records stack, nothing wider than the screen.
    b.client.set_window_size(390, 844).await.unwrap();
    wait_until(
        &b,
        "return document.documentElement.scrollWidth <= window.innerWidth",
        WAIT,
    )
    .await;
    js(
        &b,
        "document.getElementById('onboardings').scrollIntoView(); return true",
    )
    .await;
    std::fs::write(
        dir.join("console-pipeline-phone.png"),
        b.screenshot().await.unwrap(),
    )
    .unwrap();
    b.close().await;
    let _ = std::fs::remove_dir_all(&site);
}

/// Clicks the row of `id` once the list shows it.
async fn open_account(b: &Browser, id: &str) {
    wait_until(
        b,
        &format!("return document.querySelector('[data-account-id=\"{id}\"]') !== null"),
        WAIT,
    )
    .await;
    js(
        b,
        &format!("document.querySelector('[data-account-id=\"{id}\"]').click(); return true"),
    )
    .await;
}

#[tokio::test]
async fn an_account_s_details_show_meta_s_budget_and_spare_it_when_nearly_spent() {
    // Every Graph read of the WABA through the proxy (no answer sharing here).
    let (sim, _site, proxy) = demo_stack(&["--cache-ttl-ms", "0"]);
    // A budget of 2 calls an hour, so two reads spend it.
    sim.state.set_buc_limit(Some(2));
    let (a, other) = ("104996122399160", "102289599326934");
    let b = signed_in(&proxy.url).await;
    let calls = || sim.state.calls().get("waba").copied().unwrap_or(0);
    let shows = |id: &str, text: &str| {
        format!(
            "return window.__console.selected === '{id}' && document.getElementById('detail-budget').textContent.includes('{text}')"
        )
    };
    // First look: no reading yet, so the read is made (1 of 2: 50%).
    open_account(&b, a).await;
    wait_until(&b, &shows(a, "50% used"), WAIT).await;
    // Second look: 50% is below the hold, so it reads again (2 of 2: 100%).
    open_account(&b, other).await;
    wait_until(&b, &shows(other, "used"), WAIT).await;
    open_account(&b, a).await;
    wait_until(&b, &shows(a, "100% used"), WAIT).await;
    // Third look: the budget is spent; the console shows the list's data without a Graph
    // call about it.
    open_account(&b, other).await;
    wait_until(&b, &shows(other, "used"), WAIT).await;
    let before = calls();
    open_account(&b, a).await;
    wait_until(&b, &shows(a, "without a new Graph call"), WAIT).await;
    assert_eq!(calls(), before, "no Graph call about the spent WABA");
    let text = js(
        &b,
        "return document.getElementById('detail-budget').textContent",
    )
    .await;
    assert!(
        text.as_str()
            .unwrap_or("")
            .contains("whatsapp_business_management"),
        "{text}"
    );
    let badge = b.wait_texts("#detail .waba-badge", WAIT).await.unwrap();
    assert!(!badge.is_empty(), "the account is shown from the list");
    b.close().await;
}

/// axe-core finds no WCAG 2.1 A or AA violation in the console: signing in, the account list,
/// and an account's details.
#[tokio::test]
async fn the_console_passes_axe() {
    let (_sim, _site, proxy) = demo_stack(&[]);
    let b = Browser::start(Some((1280, 900))).await.unwrap();
    b.goto(&format!("{}/console.html", proxy.url))
        .await
        .unwrap();
    sign_in_form(&b).await;
    let found = b.axe().await.unwrap();
    assert!(found.is_empty(), "signing in: {found:#?}");
    b.close().await;
    let b = signed_in(&proxy.url).await;
    wait_until(
        &b,
        "return Number(document.getElementById('status-line').dataset.loaded || 0) > 0",
        WAIT,
    )
    .await;
    assert!(loaded(&b).await > 0);
    let found = b.axe().await.unwrap();
    assert!(found.is_empty(), "the account list: {found:#?}");
    open_account(&b, "102289599326934").await;
    b.wait_texts("#detail .waba-badge", WAIT).await.unwrap();
    let found = b.axe().await.unwrap();
    assert!(found.is_empty(), "an account's details: {found:#?}");
    b.close().await;
}

/// The console by keyboard alone: the token typed and Enter, Tab to the account list, the
/// arrow keys move through the accounts and show each one's details.
#[tokio::test]
async fn the_console_works_by_keyboard_alone() {
    let (_sim, _site, proxy) = demo_stack(&[]);
    let b = Browser::start(Some((1280, 900))).await.unwrap();
    b.goto(&format!("{}/console.html", proxy.url))
        .await
        .unwrap();
    sign_in_form(&b)
        .await
        .send_keys(&format!("{ADMIN}\u{E007}"))
        .await
        .unwrap();
    wait_until(
        &b,
        "return Number(document.getElementById('status-line').dataset.loaded || 0) > 0",
        WAIT,
    )
    .await;
    let key = |k: &'static str| {
        let b = &b;
        async move {
            b.client
                .active_element()
                .await
                .unwrap()
                .send_keys(k)
                .await
                .unwrap();
        }
    };
    let mut tabs = 0;
    while js(
        &b,
        "return document.activeElement && document.activeElement.id",
    )
    .await
        != json!("list")
    {
        tabs += 1;
        assert!(tabs <= 30, "Tab never reached the account list");
        key("\u{E004}").await;
    }
    key("\u{E015}").await;
    wait_until(&b, "return Boolean(window.__console.selected)", WAIT).await;
    let first = js(&b, "return window.__console.selected").await;
    key("\u{E015}").await;
    wait_until(
        &b,
        &format!("return window.__console.selected && window.__console.selected !== {first}"),
        WAIT,
    )
    .await;
    key("\u{E013}").await;
    wait_until(
        &b,
        &format!("return window.__console.selected === {first}"),
        WAIT,
    )
    .await;
    b.wait_texts("#detail .waba-badge", WAIT).await.unwrap();
    b.close().await;
}

/// The text of `id` in a catalog's `messages`.
fn said(messages: &serde_json::Map<String, Value>, id: &str) -> String {
    messages[id]
        .as_str()
        .unwrap_or_else(|| panic!("no {id}"))
        .to_owned()
}

/// `template` with each `{name}` of `values` filled in.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(template.to_owned(), |t, (name, value)| {
        t.replace(&format!("{{{name}}}"), value)
    })
}

/// The console in Spanish (`?locale=es`): its static texts, the texts it builds (a failed
/// step, who acts, the PIN form, counts, the offboard dialog) and its dates are Spanish, no
/// English label is left, and the language switch keeps the choice for the tab.
#[tokio::test]
async fn the_console_in_spanish_writes_every_text_and_date_in_spanish() {
    let es = console_catalog_messages("es").unwrap();
    let en = console_catalog_messages("en").unwrap();
    let package = catalog_messages("es").unwrap();
    let (sim, site, proxy) = demo_stack(PIPELINE_ARGS);
    // A business whose number's two-step PIN differs: its register step fails, the business
    // acts, and the console offers the PIN form.
    let code = sim
        .state
        .mint_code("EAASimBusinessTokenPinMismatch0000000000000000011");
    let id = sign_up(
        &reqwest::Client::new(),
        &proxy.url,
        code,
        json!({"waba_id": "109900000000004", "phone_number_id": "110200000000013"}),
    )
    .await;
    let b = signed_in_on(&format!("{}/console.html?locale=es", proxy.url)).await;
    first_page_shown(&b).await;
    let page = js(
        &b,
        "const text = (css) => document.querySelector(css).textContent;
         return { lang: document.documentElement.lang, dir: document.documentElement.dir,
                  title: document.title, heading: text('h1'), client: text('#tab-client'),
                  owned: text('#tab-owned'), signout: text('#signout'),
                  changes: text('[data-t=\"console.changes_title\"]'),
                  onboardings: text('[data-t=\"console.onboardings_title\"]'),
                  search: document.getElementById('search').placeholder,
                  list: document.getElementById('list').getAttribute('aria-label'),
                  locale: document.getElementById('locale').value }",
    )
    .await;
    assert_eq!(page["lang"], "es", "{page:#}");
    assert_eq!(page["dir"], "ltr", "{page:#}");
    assert_eq!(page["locale"], "es", "the switch shows the choice");
    for (key, id) in [
        ("title", "console.page_title"),
        ("heading", "console.heading"),
        ("client", "console.tab_client"),
        ("owned", "console.tab_owned"),
        ("signout", "console.sign_out"),
        ("changes", "console.changes_title"),
        ("onboardings", "console.onboardings_title"),
        ("search", "console.search_placeholder"),
        ("list", "console.accounts"),
    ] {
        assert_eq!(page[key], json!(said(&es, id)), "{key}");
    }

    // The count of loaded accounts takes Spanish's plural form.
    let line = js(
        &b,
        "const n = Number(document.getElementById('status-line').dataset.loaded);
         return { text: document.getElementById('status-line').textContent, shown: window.__console.shown.length,
                  loaded: n, form: new Intl.PluralRules('es').select(n), more: Boolean(window.__console.next) }",
    )
    .await;
    let (shown, loaded) = (line["shown"].to_string(), line["loaded"].to_string());
    let form = line["form"].as_str().unwrap();
    let mut want = fill(
        &said(&es, &format!("console.accounts_shown.{form}")),
        &[("shown", &shown), ("count", &loaded)],
    );
    if line["more"] == json!(true) {
        want = fill(&said(&es, "console.more_on_scroll"), &[("text", &want)]);
    }
    assert_eq!(line["text"], json!(want));

    // A row's creation date, as Intl.DateTimeFormat writes it in Spanish.
    let row = js(
        &b,
        "const w = window.__console.shown[0];
         const date = new Intl.DateTimeFormat('es', { dateStyle: 'medium', timeZone: 'UTC' })
           .format(new Date(w.creation_time * 1000));
         return { id: w.id, date, meta: document.querySelector('.row[data-index=\"0\"] .meta').textContent }",
    )
    .await;
    let date = row["date"].as_str().unwrap();
    assert!(!date.chars().any(|c| c == '-'), "not an ISO date: {date}");
    assert_eq!(
        row["meta"],
        json!(fill(
            &said(&es, "console.row_meta"),
            &[("id", row["id"].as_str().unwrap()), ("date", date)]
        ))
    );

    // The failed register step: its state, who acts, the next attempt, the PIN form.
    let record = format!("#onboarding-list [data-onboarding-id=\"{id}\"]");
    let register = format!("{record} [data-kind=\"register\"]");
    wait_until(
        &b,
        &format!("const s = document.querySelector('{register}'); return s !== null && s.dataset.state === 'failed' && s.querySelector('.ob-pin') !== null"),
        WAIT,
    )
    .await;
    let step = js(
        &b,
        &format!(
            "const s = document.querySelector('{register}'); const r = document.querySelector('{record}');
             const text = (e, css) => e.querySelector(css).textContent;
             const created = window.__onboardings.records.get({id}).created_at;
             return {{ title: text(r, '.ob-title'), meta: text(r, '.ob-meta'), state: text(s, '.ob-state'),
                       kind: text(s, '.ob-kind'), text: text(s, '.ob-text'), actor: text(s, '.ob-actor'), next: text(s, '.ob-next'),
                       pin: text(s, '.ob-pin label'), submit: text(s, '.ob-pin button'),
                       retry: text(s, '.ob-actions > .ob-button'),
                       when: new Intl.DateTimeFormat('es', {{ year: 'numeric', month: 'short', day: 'numeric',
                         hour: '2-digit', minute: '2-digit', timeZone: 'UTC', timeZoneName: 'short' }})
                         .format(new Date(created * 1000)) }}"
        ),
    )
    .await;
    let who = fill(
        &said(&es, "console.who_acts"),
        &[("actor", &said(&es, "console.actor.business"))],
    );
    for (key, want) in [
        (
            "title",
            fill(
                &said(&es, "console.onboarding_title"),
                &[("id", &id.to_string())],
            ),
        ),
        ("state", format!("✕{}", said(&es, "console.state.failed"))),
        ("kind", said(&package, "step_name.register")),
        (
            "text",
            fill(
                &said(&package, "progress.failed"),
                &[("step", &said(&package, "step_name.register"))],
            ),
        ),
        ("actor", who),
        ("next", said(&es, "console.next_waits")),
        ("pin", said(&es, "console.pin_label")),
        ("submit", said(&es, "console.pin_submit")),
        ("retry", said(&es, "console.retry")),
    ] {
        assert_eq!(step[key], json!(want), "{key}: {step:#}");
    }
    let meta = step["meta"].as_str().unwrap();
    let when = step["when"].as_str().unwrap();
    assert!(
        meta.starts_with(when) && meta.contains(&said(&es, "console.flow.code")),
        "{meta:?} starts with {when:?}"
    );

    js(
        &b,
        &format!(
            "document.querySelector('{register}').scrollIntoView({{block: 'center'}}); return true"
        ),
    )
    .await;
    let dir = waba_testkit::harness::project_root().join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("console-es.png"), b.screenshot().await.unwrap()).unwrap();

    // The offboard dialog asks in Spanish (and, refused, changes nothing).
    js(
        &b,
        "window.__confirms = []; window.confirm = (m) => { window.__confirms.push(m); return false; }; return true",
    )
    .await;
    js(
        &b,
        &format!("document.querySelector('{record} .ob-button--danger').click(); return true"),
    )
    .await;
    wait_until(&b, "return window.__confirms.length === 1", WAIT).await;
    assert_eq!(
        js(&b, "return window.__confirms[0]").await,
        json!(fill(
            &said(&es, "console.offboard_confirm"),
            &[("id", &id.to_string()), ("wabas", "109900000000004")]
        ))
    );

    // No English console label is left on the page.
    let text = b.page_text().await.unwrap();
    for id in [
        "console.tab_client",
        "console.tab_owned",
        "console.sign_out",
        "console.needs_follow_up",
        "console.changes_title",
        "console.shares_title",
        "console.check_now",
        "console.load_all",
        "console.created_after",
        "console.sort_desc",
        "console.pin_label",
        "console.pin_submit",
        "console.next_waits",
        "console.show_step",
    ] {
        let english = said(&en, id);
        assert!(!text.contains(&english), "{english:?} ({id}) in {text}");
    }
    for english in ["Who acts", "Onboarding #", "loaded accounts shown"] {
        assert!(!text.contains(english), "{english:?} in {text}");
    }

    // The switch reloads the page in the language chosen, and the tab keeps it.
    js(
        &b,
        "const s = document.getElementById('locale'); s.value = 'pt-BR'; s.dispatchEvent(new Event('change')); return true",
    )
    .await;
    // The page reloads: a script may run into the old document going away.
    let deadline = Instant::now() + WAIT;
    while b
        .client
        .execute(
            "return location.search === '?locale=pt-BR' && document.documentElement.lang === 'pt-BR' \
             && sessionStorage.getItem('demo-locale') === 'pt-BR'",
            vec![],
        )
        .await
        .ok()
        != Some(json!(true))
    {
        assert!(Instant::now() < deadline, "the switch did not reload in pt-BR");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.goto(&format!("{}/console.html", proxy.url))
        .await
        .unwrap();
    let pt = console_catalog_messages("pt-BR").unwrap();
    wait_until(
        &b,
        &format!(
            "return document.documentElement.lang === 'pt-BR' && document.getElementById('tab-client').textContent === {}",
            json!(said(&pt, "console.tab_client"))
        ),
        WAIT,
    )
    .await;
    b.close().await;
    let _ = std::fs::remove_dir_all(&site);
}

/// The console in Arabic is laid out right to left, page and account details alike, and
/// axe-core finds no WCAG 2.1 A or AA violation in the list or in an account's details.
#[tokio::test]
async fn the_console_in_arabic_is_laid_out_right_to_left_and_passes_axe() {
    let ar = console_catalog_messages("ar").unwrap();
    let (_sim, site, proxy) = demo_stack(&[]);
    let b = signed_in_on(&format!("{}/console.html?locale=ar", proxy.url)).await;
    first_page_shown(&b).await;
    let layout = js(
        &b,
        "const row = document.querySelector('.row');
         return { dir: document.documentElement.dir, lang: document.documentElement.lang,
                  direction: getComputedStyle(document.body).direction,
                  list: getComputedStyle(document.getElementById('list')).direction,
                  client: document.getElementById('tab-client').textContent,
                  nameRight: row.querySelector('.name').getBoundingClientRect().right,
                  badgeRight: row.querySelector('.waba-badge').getBoundingClientRect().right }",
    )
    .await;
    assert_eq!(layout["dir"], "rtl", "{layout:#}");
    assert_eq!(layout["lang"], "ar", "{layout:#}");
    assert_eq!(layout["direction"], "rtl", "{layout:#}");
    assert_eq!(layout["list"], "rtl", "{layout:#}");
    assert_eq!(layout["client"], json!(said(&ar, "console.tab_client")));
    assert!(
        layout["nameRight"].as_f64().unwrap() > layout["badgeRight"].as_f64().unwrap(),
        "a row's name starts on the right, its badge after it: {layout:#}"
    );
    let found = b.axe().await.unwrap();
    assert!(found.is_empty(), "the account list: {found:#?}");

    open_account(&b, "102289599326934").await;
    b.wait_texts("#detail .waba-badge", WAIT).await.unwrap();
    let detail = js(
        &b,
        "const p = document.querySelector('#detail .waba-panel');
         return { lang: p.lang, dir: p.dir, direction: getComputedStyle(p).direction }",
    )
    .await;
    assert_eq!(
        detail,
        json!({"lang": "ar", "dir": "rtl", "direction": "rtl"})
    );
    let found = b.axe().await.unwrap();
    assert!(found.is_empty(), "an account's details: {found:#?}");
    let dir = waba_testkit::harness::project_root().join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("console-ar.png"), b.screenshot().await.unwrap()).unwrap();
    b.close().await;
    let _ = std::fs::remove_dir_all(&site);
}

/// The console's funnel over a proxy whose database holds `plan` (stored before it starts).
async fn funnel_stack(
    plan: &waba_testkit::funnel::Plan,
) -> (SimServer, std::path::PathBuf, Running) {
    let db = waba_testkit::harness::temp_database();
    let store = waba_proxy::store::open(
        &db.display().to_string(),
        &waba_proxy::store::PostgresOptions::default(),
    )
    .await
    .unwrap();
    plan.write(store.as_ref()).await.unwrap();
    drop(store);
    demo_stack(&["--database", &db.display().to_string()])
}

/// Waits until the funnel shows the answer to a query holding `from` (and no request runs).
async fn funnel_shown(b: &Browser, from: &str) -> Value {
    wait_until(
        b,
        &format!(
            "const f = window.__funnel; return Boolean(f && f.answer && f.answer.from === '{from}' \
             && document.getElementById('funnel-line').textContent === '')"
        ),
        WAIT,
    )
    .await;
    js(b, "return window.__funnel.answer").await
}

/// What a chart and its table show: the SVG's name, its bars' and values' count, and the
/// table's rows as text.
async fn funnel_chart(b: &Browser, chart: &str) -> Value {
    js(
        b,
        &format!(
            "const f = document.querySelector('[data-chart={chart}]');
             const svg = f.querySelector('svg');
             return {{ caption: f.querySelector('figcaption').textContent,
                      role: svg && svg.getAttribute('role'), label: svg && svg.getAttribute('aria-label'),
                      focusable: svg && svg.getAttribute('tabindex'),
                      bars: svg ? svg.querySelectorAll('rect').length : 0,
                      values: svg ? [...svg.querySelectorAll('.funnel-value')].map((t) => t.textContent) : [],
                      firstBar: svg && svg.querySelector('rect') ? {{ x: Number(svg.querySelector('rect').getAttribute('x')),
                                 width: Number(svg.querySelector('rect').getAttribute('width')) }} : null,
                      rows: [...f.querySelectorAll('tbody tr')].map((r) => [...r.cells].map((c) => c.textContent)) }}"
        ),
    )
    .await
}

/// The funnel view: a generated month of onboardings drawn as the generator's truth says
/// (every chart an SVG image with a name, focusable, and a table of the same numbers), a
/// narrower range, the CSV download's rows, and no axe violation, in English and in Arabic
/// (right to left: bars grow from the right).
#[tokio::test]
async fn the_funnel_view_draws_the_month_filters_a_range_and_exports_it() {
    let now = waba_proxy::clock::now();
    let plan = waba_testkit::funnel::Plan::generate(5, now, 160);
    let (_sim, site, proxy) = funnel_stack(&plan).await;
    let b = signed_in(&proxy.url).await;
    wait_until(
        &b,
        "return Boolean(window.__funnel && window.__funnel.answer)",
        WAIT,
    )
    .await;
    let offset = js(&b, "return -new Date().getTimezoneOffset()")
        .await
        .as_i64()
        .unwrap();
    let today = (now + offset * 60).div_euclid(86_400);
    let from = waba_proxy::store::funnel::format_day(today - 29);
    let answer = funnel_shown(&b, &from).await;
    let expected = plan.expected(today - 29, today, i32::try_from(offset).unwrap());
    assert_eq!(answer, expected);
    let summary = js(
        &b,
        "return document.getElementById('funnel-summary').textContent",
    )
    .await;
    let attempts = expected["attempts"].as_i64().unwrap();
    assert!(
        summary.as_str().unwrap().starts_with(&format!(
            "{attempts} attempts, {} finished",
            expected["finished"]
        )),
        "{summary}"
    );
    let days = funnel_chart(&b, "days").await;
    assert_eq!(days["role"], "img");
    assert_eq!(days["focusable"], "0");
    assert_eq!(days["label"], "Attempts and finished signups per day");
    assert_eq!(days["rows"].as_array().unwrap().len(), 30);
    let per_day: Vec<(i64, i64)> = days["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[1].as_str().unwrap().parse().unwrap(),
                r[2].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let truth: Vec<(i64, i64)> = expected["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["attempts"].as_i64().unwrap(),
                d["finished"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(per_day, truth);
    for (chart, key, none) in [
        ("stopped", "stopped_at", "No step named"),
        ("errors", "errors", "No code"),
        ("reviews", "reviews", "?"),
    ] {
        let shown = funnel_chart(&b, chart).await;
        let list = expected[key].as_array().unwrap();
        assert_eq!(shown["role"], "img", "{chart}");
        assert_eq!(shown["bars"], list.len(), "{chart}");
        let rows: Vec<Value> = list
            .iter()
            .map(|t| json!([t["key"].as_str().unwrap_or(none), t["count"].to_string()]))
            .collect();
        assert_eq!(shown["rows"], json!(rows), "{chart}");
        let values: Vec<String> = list.iter().map(|t| t["count"].to_string()).collect();
        assert_eq!(shown["values"], json!(values), "{chart}");
    }
    let ready = funnel_chart(&b, "ready").await;
    let counts: Vec<String> = expected["time_to_ready"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["count"].to_string())
        .collect();
    let shown: Vec<Value> = ready["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(json!(shown), json!(counts));
    assert_eq!(ready["rows"][0][0], "under 1 min");
    assert_eq!(
        js(&b, "return document.querySelectorAll('#funnel-charts svg[role=img][tabindex=\"0\"][aria-label]').length").await,
        5
    );
    // Every table open, then axe.
    js(
        &b,
        "for (const d of document.querySelectorAll('#funnel details')) d.open = true; return true",
    )
    .await;
    let found = b.axe().await.unwrap();
    assert!(found.is_empty(), "the funnel: {found:#?}");
    let dir = waba_testkit::harness::project_root().join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    js(
        &b,
        "document.getElementById('funnel').scrollIntoView(); return true",
    )
    .await;
    std::fs::write(
        dir.join("console-funnel.png"),
        b.screenshot().await.unwrap(),
    )
    .unwrap();

    // A week, ten days ago.
    let (week_from, week_to) = (today - 10, today - 4);
    let (wf, wt) = (
        waba_proxy::store::funnel::format_day(week_from),
        waba_proxy::store::funnel::format_day(week_to),
    );
    js(
        &b,
        &format!(
            "document.getElementById('funnel-from').value = '{wf}';
             document.getElementById('funnel-to').value = '{wt}';
             document.querySelector('#funnel-form button[type=submit]').click(); return true"
        ),
    )
    .await;
    let week = funnel_shown(&b, &wf).await;
    let expected_week = plan.expected(week_from, week_to, i32::try_from(offset).unwrap());
    assert_eq!(week, expected_week);
    assert_eq!(
        funnel_chart(&b, "days").await["rows"]
            .as_array()
            .unwrap()
            .len(),
        7
    );

    // The CSV of that week: fetched with the admin token and saved from a blob.
    b.wait_for("#funnel-csv", WAIT)
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(&b, "return Boolean(window.__funnel.download)", WAIT).await;
    let name = js(&b, "return window.__funnel.download.name").await;
    assert_eq!(name, format!("waba-funnel-{wf}-{wt}.csv"));
    let csv = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(window.__funnel.download.url).then((r) => r.text()).then(done, (e) => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    let lines: Vec<&str> = csv.as_str().unwrap().split_terminator("\r\n").collect();
    assert!(
        lines[0].starts_with("id,created_at,flow,outcome,"),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines.len() as i64,
        expected_week["attempts"].as_i64().unwrap() + 1
    );
    assert!(!csv.as_str().unwrap().contains(ADMIN));
    b.close().await;

    // In Arabic: right to left, bars from the right, and axe again.
    let b = signed_in_on(&format!("{}/console.html?locale=ar", proxy.url)).await;
    funnel_shown(&b, &from).await;
    assert_eq!(js(&b, "return document.documentElement.dir").await, "rtl");
    let stopped = funnel_chart(&b, "stopped").await;
    let bar = &stopped["firstBar"];
    let right = bar["x"].as_f64().unwrap() + bar["width"].as_f64().unwrap();
    assert!(
        (right - (640.0 - 280.0)).abs() < 0.01,
        "the longest bar ends at the labels, on the right: {stopped:#}"
    );
    assert_ne!(stopped["caption"], "Where the others stopped");
    js(
        &b,
        "for (const d of document.querySelectorAll('#funnel details')) d.open = true; return true",
    )
    .await;
    let found = b.axe().await.unwrap();
    assert!(found.is_empty(), "the funnel in Arabic: {found:#?}");
    js(
        &b,
        "document.getElementById('funnel').scrollIntoView(); return true",
    )
    .await;
    std::fs::write(
        dir.join("console-funnel-ar.png"),
        b.screenshot().await.unwrap(),
    )
    .unwrap();
    b.close().await;
    let _ = std::fs::remove_dir_all(&site);
}

/// The proxy's settings for the webhooks tests: the token key (endpoint secrets are sealed
/// with it), endpoints on loopback, a quick sender and a short retry window (three attempts
/// about a second apart, then given up).
const HOOK_ARGS: &[&str] = &[
    "--app-id",
    "670843887433847",
    "--token-key",
    "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
    "--outbound-allow-private-networks",
    "--outbound-poll-ms",
    "100",
    "--outbound-retry-schedule",
    "1s,1s",
];

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A webhook endpoint on 127.0.0.1 in this process: it records every request and answers
/// the status the test sets.
#[derive(Clone)]
struct Receiver {
    url: String,
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    got: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start() -> Self {
        use axum::http::{HeaderMap, StatusCode};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Self {
            url: format!("http://{}/hook", listener.local_addr().unwrap()),
            status: std::sync::Arc::new(std::sync::atomic::AtomicU16::new(204)),
            got: std::sync::Arc::default(),
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    state.got.lock().unwrap().push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body,
                    });
                    StatusCode::from_u16(state.status.load(std::sync::atomic::Ordering::SeqCst))
                        .unwrap()
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn answer(&self, status: u16) {
        self.status
            .store(status, std::sync::atomic::Ordering::SeqCst);
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until it got `n` requests.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "got {} of {n} requests",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Whether `r` is signed with `secret` as Standard Webhooks says (`v1,` and base64 of
/// HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed by the secret's base64 bytes).
fn signed_with(r: &Received, secret: &str) -> bool {
    use base64::Engine as _;
    use hmac::{Hmac, KeyInit, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let want = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    r.signature.split(' ').any(|s| s == want)
}

/// A business leaves the signup at `step`, as its signup page reports: an
/// `onboarding.abandoned` event.
async fn abandon(proxy: &str, step: &str) {
    let report = reqwest::Client::new()
        .post(format!("{proxy}/signup/events"))
        .json(
            &json!({"event": {"type": "WA_EMBEDDED_SIGNUP", "event": "CANCEL", "version": "3",
                                "data": {"current_step": step}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 200);
}

/// Clicks what `css` matches (the first) once it is there.
async fn click(b: &Browser, css: &str) {
    b.wait_for(css, WAIT).await.unwrap().click().await.unwrap();
}

/// The newest delivery shown, as a script expression.
const NEWEST: &str = "document.querySelector('#hook-delivery-list li[data-delivery-id]')";

/// The Webhooks view: an endpoint added through the form shows its secret once (never in the
/// list, the page's state or storage afterwards); its deliveries show as they happen, with
/// their attempts and payload; a failing endpoint's attempts show, and a resend delivers
/// once it answers again; pause holds deliveries and resume sends them; a new secret signs
/// from then on; delete removes it. axe-core finds nothing in English or in Arabic.
#[tokio::test]
async fn the_webhooks_view_adds_an_endpoint_shows_its_secret_once_and_follows_its_deliveries() {
    let receiver = Receiver::start().await;
    let (_sim, site, proxy) = demo_stack(HOOK_ARGS);
    let en = console_catalog_messages("en").unwrap();
    let b = signed_in(&proxy.url).await;
    js(&b, "window.__sameDocument = true; return true").await;
    wait_until(
        &b,
        "return document.querySelectorAll('#hook-event-types input').length > 5 && document.querySelector('#hook-list .hook-empty') !== null",
        WAIT,
    )
    .await;

    // The form: choosing one event type lifts "all events".
    let all = "document.getElementById('hook-all-events').checked";
    assert_eq!(js(&b, &format!("return {all}")).await, json!(true));
    b.wait_for("#hook-url", WAIT)
        .await
        .unwrap()
        .send_keys(&receiver.url)
        .await
        .unwrap();
    b.wait_for("#hook-description", WAIT)
        .await
        .unwrap()
        .send_keys("Order system")
        .await
        .unwrap();
    click(
        &b,
        "#hook-event-types input[value=\"onboarding.abandoned\"]",
    )
    .await;
    assert_eq!(js(&b, &format!("return {all}")).await, json!(false));
    let label = js(&b, "return document.querySelector('label[for=\"' + document.querySelector('#hook-event-types input[value=\"onboarding.abandoned\"]').id + '\"]').textContent").await;
    assert!(
        label
            .as_str()
            .unwrap()
            .contains(&said(&en, "console.hook_event.onboarding_abandoned")),
        "{label}"
    );
    click(&b, "#hook-add").await;

    // The secret, shown once, in a box that takes the focus.
    wait_until(
        &b,
        "return !document.getElementById('hook-secret').hidden && document.getElementById('hook-secret-value').textContent.startsWith('whsec_')",
        WAIT,
    )
    .await;
    let shown = js(
        &b,
        "return { secret: document.getElementById('hook-secret-value').textContent,
                  title: document.getElementById('hook-secret-title').textContent,
                  focused: document.activeElement.id,
                  id: document.getElementById('hook-secret').dataset.endpointId }",
    )
    .await;
    let secret = shown["secret"].as_str().unwrap().to_owned();
    let endpoint = shown["id"].as_str().unwrap().to_owned();
    assert_eq!(shown["focused"], "hook-secret", "{shown:#}");
    assert_eq!(
        shown["title"],
        json!(fill(
            &said(&en, "console.hook_secret_title"),
            &[("id", &endpoint)]
        ))
    );
    let item = format!("#hook-list li[data-endpoint-id=\"{endpoint}\"]");
    let leaks = format!(
        "const s = {}; const kept = [...Object.values(sessionStorage), ...Object.values(localStorage)];
         return {{ list: document.getElementById('hook-list').textContent.includes(s),
                  state: JSON.stringify(window.__hooks).includes(s),
                  storage: kept.some(v => v.includes(s)),
                  page: document.documentElement.outerHTML.includes(s) }}",
        json!(secret)
    );
    let found = js(&b, &leaks).await;
    assert_eq!(
        found,
        json!({"list": false, "state": false, "storage": false, "page": true})
    );
    let row = js(&b, &format!("const li = document.querySelector('{item}'); return {{ state: li.dataset.state, text: li.innerText }}")).await;
    assert_eq!(row["state"], "active", "{row:#}");
    let text = row["text"].as_str().unwrap();
    for want in [
        receiver.url.as_str(),
        "Order system",
        "Events: onboarding.abandoned",
        "Active",
        "No attempt yet",
    ] {
        assert!(text.contains(want), "{want:?} not in {text:?}");
    }
    // Copy: the clipboard, or the text selected to copy by hand; either is said.
    click(&b, "#hook-secret-copy").await;
    wait_until(
        &b,
        "return document.getElementById('hook-secret-copied').textContent !== ''",
        WAIT,
    )
    .await;
    let copied = js(
        &b,
        "return document.getElementById('hook-secret-copied').textContent",
    )
    .await;
    assert!(
        [
            said(&en, "console.hook_copied"),
            said(&en, "console.hook_copy_failed")
        ]
        .contains(&copied.as_str().unwrap().to_owned()),
        "{copied}"
    );
    // Hidden, it is gone from the page, and the focus goes to the endpoint's first action.
    click(&b, "#hook-secret-done").await;
    let found = js(&b, &leaks).await;
    assert_eq!(
        found,
        json!({"list": false, "state": false, "storage": false, "page": false})
    );
    assert_eq!(
        js(&b, "return document.activeElement.dataset.focusKey").await,
        json!(format!("hook-toggle-{endpoint}"))
    );

    // An event: delivered, signed with the secret shown.
    abandon(&proxy.url, "PHONE_NUMBER_VERIFICATION").await;
    let got = receiver.wait_for(1).await;
    assert!(signed_with(&got[0], &secret), "{got:?}");
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "onboarding.abandoned");
    click(&b, &format!("{item} [data-action=\"deliveries\"]")).await;
    wait_until(
        &b,
        &format!("const d = {NEWEST}; return d !== null && d.dataset.state === 'delivered'"),
        WAIT,
    )
    .await;
    assert_eq!(
        js(&b, "return document.activeElement.id").await,
        json!("hook-deliveries-title")
    );
    assert_eq!(
        js(&b, &format!("return document.querySelector('{item} [data-action=\"deliveries\"]').getAttribute('aria-expanded')")).await,
        json!("true")
    );
    // Its attempt and its payload, expanded.
    js(
        &b,
        &format!("{NEWEST}.querySelectorAll('summary').forEach(s => s.click()); return true"),
    )
    .await;
    let delivery = js(
        &b,
        &format!(
            "const d = {NEWEST}; return {{ event: d.dataset.eventId, attempts: d.dataset.attempts, text: d.textContent,
               tries: [...d.querySelectorAll('.delivery-try-list li')].map(li => li.dataset.status),
               payload: d.querySelector('pre').textContent, html: d.querySelector('pre').innerHTML,
               open: [...d.querySelectorAll('details')].every(x => x.open) }}"
        ),
    )
    .await;
    assert_eq!(delivery["event"], json!(got[0].id), "{delivery:#}");
    assert_eq!(delivery["attempts"], "1");
    assert_eq!(delivery["tries"], json!(["204"]));
    assert_eq!(delivery["open"], true);
    let text = delivery["text"].as_str().unwrap();
    for want in [
        "Delivered",
        "onboarding.abandoned",
        "HTTP 204",
        "1 attempt",
        &format!("Event id (webhook-id): {}", got[0].id),
        "PHONE_NUMBER_VERIFICATION",
    ] {
        assert!(text.contains(want), "{want:?} not in {text:?}");
    }
    let payload: Value = serde_json::from_str(delivery["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload, body, "the payload as sent");
    assert!(
        delivery["payload"]
            .as_str()
            .unwrap()
            .contains("\n  \"data\""),
        "pretty-printed"
    );
    wait_until(
        &b,
        &format!("return document.querySelector('{item}').dataset.delivered === '1'"),
        WAIT,
    )
    .await;

    // The endpoint fails: each attempt shows with its status, and it is given up.
    receiver.answer(503);
    abandon(&proxy.url, "PERMISSIONS").await;
    wait_until(
        &b,
        &format!("const d = {NEWEST}; return d !== null && d.dataset.eventId !== {} && d.dataset.state === 'failed'", json!(got[0].id)),
        WAIT,
    )
    .await;
    let failed = js(
        &b,
        &format!(
            "const d = {NEWEST}; return {{ id: d.dataset.deliveryId, event: d.dataset.eventId, attempts: Number(d.dataset.attempts),
               tries: [...d.querySelectorAll('.delivery-try-list li')].map(li => li.dataset.status), text: d.textContent }}"
        ),
    )
    .await;
    let attempts = failed["attempts"].as_u64().unwrap();
    assert!(attempts >= 2, "{failed:#}");
    assert_eq!(failed["tries"], json!(vec!["503"; attempts as usize]));
    assert!(
        failed["text"].as_str().unwrap().contains("Failed"),
        "{failed:#}"
    );
    assert_eq!(receiver.got().len() as u64, 1 + attempts);
    wait_until(
        &b,
        &format!("const li = document.querySelector('{item}'); return li.dataset.failed === '1' && li.innerText.includes('failed attempts in a row')"),
        WAIT,
    )
    .await;
    // It answers again: a resend delivers the same event (the same webhook-id).
    receiver.answer(204);
    let failed_id = failed["id"].as_str().unwrap();
    click(
        &b,
        &format!(
            "#hook-delivery-list li[data-delivery-id=\"{failed_id}\"] [data-action=\"resend\"]"
        ),
    )
    .await;
    wait_until(
        &b,
        &format!("const d = {NEWEST}; return d.dataset.deliveryId !== '{failed_id}' && d.dataset.eventId === {} && d.dataset.state === 'delivered'", failed["event"]),
        WAIT,
    )
    .await;
    let got = receiver.wait_for(2 + attempts as usize).await;
    let last = got.last().unwrap();
    assert_eq!(json!(last.id), failed["event"]);
    assert!(signed_with(last, &secret));
    let line = js(
        &b,
        "return document.getElementById('hook-deliveries-line').textContent",
    )
    .await;
    assert!(
        line.as_str()
            .unwrap()
            .starts_with(&format!("Delivery #{failed_id} queued again")),
        "{line}"
    );

    // Paused, an event waits; resumed, it is sent.
    click(&b, &format!("{item} [data-action=\"toggle\"]")).await;
    wait_until(
        &b,
        &format!("const li = document.querySelector('{item}'); return li.dataset.state === 'paused' && li.dataset.pausedReason === 'admin' && li.innerText.includes('Paused by you') && li.querySelector('[data-action=\"toggle\"]').textContent === 'Resume'"),
        WAIT,
    )
    .await;
    let before = receiver.got().len();
    abandon(&proxy.url, "BUSINESS_ACCOUNT_SELECTION").await;
    wait_until(
        &b,
        &format!("const d = {NEWEST}; return d.dataset.state === 'pending' && d.textContent.includes('Pending')"),
        WAIT,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        receiver.got().len(),
        before,
        "nothing goes to a paused endpoint"
    );
    click(&b, &format!("{item} [data-action=\"toggle\"]")).await;
    wait_until(
        &b,
        &format!("const d = {NEWEST}; return d.dataset.state === 'delivered' && document.querySelector('{item}').dataset.state === 'active'"),
        WAIT,
    )
    .await;
    receiver.wait_for(before + 1).await;

    // By keyboard: Escape closes the deliveries and gives the focus back to their button,
    // Enter on it opens them again with the focus on their heading.
    let show = format!("document.querySelector('{item} [data-action=\"deliveries\"]')");
    js(
        &b,
        "document.getElementById('hook-deliveries-title').focus(); return true",
    )
    .await;
    let key = |k: &'static str| {
        let b = &b;
        async move {
            b.client
                .active_element()
                .await
                .unwrap()
                .send_keys(k)
                .await
                .unwrap();
        }
    };
    key("\u{E00C}").await;
    wait_until(
        &b,
        &format!("return document.getElementById('hook-deliveries').hidden && document.activeElement === {show} && {show}.getAttribute('aria-expanded') === 'false'"),
        WAIT,
    )
    .await;
    key("\u{E007}").await;
    wait_until(
        &b,
        &format!("const d = {NEWEST}; return !document.getElementById('hook-deliveries').hidden && document.activeElement.id === 'hook-deliveries-title' && d !== null && d.dataset.state === 'delivered'"),
        WAIT,
    )
    .await;

    // A new secret, confirmed: shown once, and it signs from then on.
    js(
        &b,
        "window.__confirms = []; window.confirm = (m) => { window.__confirms.push(m); return true; }; return true",
    )
    .await;
    click(&b, &format!("{item} [data-action=\"secret\"]")).await;
    wait_until(
        &b,
        &format!("const v = document.getElementById('hook-secret-value').textContent; return !document.getElementById('hook-secret').hidden && v.startsWith('whsec_') && v !== {}", json!(secret)),
        WAIT,
    )
    .await;
    let rotated = js(
        &b,
        "return document.getElementById('hook-secret-value').textContent",
    )
    .await
    .as_str()
    .unwrap()
    .to_owned();
    let confirms = js(&b, "return window.__confirms").await;
    assert_eq!(
        confirms,
        json!([fill(
            &said(&en, "console.hook_secret_confirm"),
            &[("url", &receiver.url)]
        )])
    );
    // axe: the list, the secret box, the deliveries with attempts and payload open, the form.
    js(
        &b,
        &format!("{NEWEST}.querySelectorAll('summary').forEach(s => s.click()); return true"),
    )
    .await;
    let found = b.axe().await.unwrap();
    assert!(found.is_empty(), "the Webhooks view: {found:#?}");
    let dir = waba_testkit::harness::project_root().join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    js(
        &b,
        "document.getElementById('webhooks').scrollIntoView(); return true",
    )
    .await;
    std::fs::write(
        dir.join("console-webhooks.png"),
        b.screenshot().await.unwrap(),
    )
    .unwrap();
    click(&b, "#hook-secret-done").await;
    let before = receiver.got().len();
    abandon(&proxy.url, "PHONE_NUMBER_SETUP").await;
    let got = receiver.wait_for(before + 1).await;
    assert!(signed_with(got.last().unwrap(), &rotated));
    assert!(!signed_with(got.last().unwrap(), &secret));

    // In Arabic (another tab), right to left, and axe finds nothing either.
    let ar = console_catalog_messages("ar").unwrap();
    let arabic = signed_in_on(&format!("{}/console.html?locale=ar", proxy.url)).await;
    wait_until(
        &arabic,
        &format!("return document.querySelector('{item}') !== null"),
        WAIT,
    )
    .await;
    click(&arabic, &format!("{item} [data-action=\"deliveries\"]")).await;
    wait_until(
        &arabic,
        &format!("const d = {NEWEST}; return d !== null && d.dataset.state === 'delivered'"),
        WAIT,
    )
    .await;
    js(
        &arabic,
        &format!("{NEWEST}.querySelectorAll('summary').forEach(s => s.click()); return true"),
    )
    .await;
    let page = js(
        &arabic,
        &format!(
            "return {{ dir: document.documentElement.dir, direction: getComputedStyle(document.getElementById('webhooks')).direction,
                      title: document.getElementById('hooks-title').textContent,
                      add: document.getElementById('hook-add').textContent,
                      pause: document.querySelector('{item} [data-action=\"toggle\"]').textContent,
                      pre: getComputedStyle({NEWEST}.querySelector('pre')).direction,
                      kept: [...Object.values(sessionStorage), ...Object.values(localStorage)].some(v => v.includes('whsec_')) }}"
        ),
    )
    .await;
    assert_eq!(
        page,
        json!({"dir": "rtl", "direction": "rtl", "title": said(&ar, "console.hooks_title"),
               "add": said(&ar, "console.hook_add"), "pause": said(&ar, "console.hook_pause"),
               "pre": "ltr", "kept": false})
    );
    let found = arabic.axe().await.unwrap();
    assert!(found.is_empty(), "the Webhooks view in Arabic: {found:#?}");
    js(
        &arabic,
        "document.getElementById('webhooks').scrollIntoView(); return true",
    )
    .await;
    std::fs::write(
        dir.join("console-webhooks-ar.png"),
        arabic.screenshot().await.unwrap(),
    )
    .unwrap();
    arabic.close().await;

    // On a phone, the endpoint and its deliveries (attempts and payload open) fit the
    // screen's width.
    b.client.set_window_size(390, 844).await.unwrap();
    wait_until(
        &b,
        "return document.documentElement.scrollWidth <= window.innerWidth",
        WAIT,
    )
    .await;
    js(
        &b,
        "document.getElementById('hook-deliveries').scrollIntoView(); return true",
    )
    .await;
    std::fs::write(
        dir.join("console-webhooks-phone.png"),
        b.screenshot().await.unwrap(),
    )
    .unwrap();
    b.client.set_window_size(1280, 900).await.unwrap();

    // Deleted, once confirmed: gone from the list and from the proxy; the focus goes to the
    // section's heading.
    js(&b, "window.__confirms = []; return true").await;
    click(&b, &format!("{item} [data-action=\"delete\"]")).await;
    wait_until(
        &b,
        &format!("return document.querySelector('{item}') === null && document.querySelector('#hook-list .hook-empty') !== null && document.getElementById('hook-deliveries').hidden"),
        WAIT,
    )
    .await;
    assert_eq!(
        js(&b, "return document.activeElement.id").await,
        json!("hooks-title")
    );
    let confirms = js(&b, "return window.__confirms").await;
    assert_eq!(
        confirms,
        json!([fill(
            &said(&en, "console.hook_delete_confirm"),
            &[("url", &receiver.url)]
        )])
    );
    let listed: Value = reqwest::Client::new()
        .get(format!("{}/admin/webhook-endpoints", proxy.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"], json!([]));
    assert_eq!(
        js(&b, "return window.__sameDocument === true").await,
        json!(true),
        "all in place, without a reload"
    );
    b.close().await;
    let _ = std::fs::remove_dir_all(&site);
}

/// The form says what is missing before asking the proxy, and shows the proxy's refusal:
/// without the token key (no code flow) endpoints cannot be created, and no secret shows.
#[tokio::test]
async fn the_webhooks_form_checks_its_fields_and_shows_the_proxy_s_refusal() {
    let (_sim, site, proxy) = demo_stack(&[]);
    let en = console_catalog_messages("en").unwrap();
    let b = signed_in(&proxy.url).await;
    wait_until(
        &b,
        "return document.querySelectorAll('#hook-event-types input').length > 5",
        WAIT,
    )
    .await;
    let line = "return document.getElementById('hook-form-line').textContent";
    // No URL.
    click(&b, "#hook-add").await;
    assert_eq!(
        js(&b, line).await,
        json!(said(&en, "console.hook_url_invalid"))
    );
    assert_eq!(
        js(&b, "return [document.activeElement.id, document.getElementById('hook-url').getAttribute('aria-invalid')]").await,
        json!(["hook-url", "true"])
    );
    b.wait_for("#hook-url", WAIT)
        .await
        .unwrap()
        .send_keys("https://hooks.example.com/waba")
        .await
        .unwrap();
    // No event type.
    click(&b, "#hook-all-events").await;
    click(&b, "#hook-add").await;
    assert_eq!(
        js(&b, line).await,
        json!(said(&en, "console.hook_choose_event"))
    );
    // The proxy refuses (501): its message is shown.
    click(&b, "#hook-all-events").await;
    click(&b, "#hook-add").await;
    wait_until(
        &b,
        "return document.getElementById('hook-form-line').textContent.includes('outbound webhooks are not configured')",
        WAIT,
    )
    .await;
    let text = js(&b, line).await;
    assert!(
        text.as_str()
            .unwrap()
            .starts_with("Could not add the endpoint: "),
        "{text}"
    );
    assert_eq!(
        js(&b, "return document.getElementById('hook-secret').hidden && document.querySelector('#hook-list .hook-empty') !== null").await,
        json!(true)
    );
    let found = b.axe().await.unwrap();
    assert!(found.is_empty(), "the form with its messages: {found:#?}");
    b.close().await;
    let _ = std::fs::remove_dir_all(&site);
}

/// The Webhooks view pages an endpoint's deliveries (**Load more**), and shows an endpoint
/// whose circuit is open (until when) and one paused after answering `410 Gone`.
#[tokio::test]
async fn the_webhooks_view_pages_deliveries_and_shows_an_open_circuit_and_a_gone_endpoint() {
    let (ok, flaky, gone) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    flaky.answer(503);
    gone.answer(410);
    let mut args = HOOK_ARGS.to_vec();
    // One failure opens the circuit (for the default minute).
    args.extend_from_slice(&["--outbound-circuit-failures", "1"]);
    let (_sim, site, proxy) = demo_stack(&args);
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for r in [&ok, &flaky, &gone] {
        let created: Value = http
            .post(format!("{}/admin/webhook-endpoints", proxy.url))
            .bearer_auth(ADMIN)
            .json(&json!({"url": r.url, "events": ["onboarding.abandoned"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(created["id"].as_i64().unwrap());
    }
    for _ in 0..21 {
        abandon(&proxy.url, "PERMISSIONS").await;
    }
    ok.wait_for(21).await;
    flaky.wait_for(1).await;
    gone.wait_for(1).await;

    let b = signed_in(&proxy.url).await;
    let item = |id: i64| format!("#hook-list li[data-endpoint-id=\"{id}\"]");
    wait_until(
        &b,
        &format!(
            "const f = document.querySelector('{}'), g = document.querySelector('{}'), o = document.querySelector('{}');
             return f !== null && f.dataset.state === 'circuit' && f.innerText.includes('Circuit open until')
               && g !== null && g.dataset.state === 'paused' && g.dataset.pausedReason === 'gone'
               && g.innerText.includes('Paused: it answered 410 Gone') && g.querySelector('[data-action=\"toggle\"]').textContent === 'Resume'
               && o !== null && o.dataset.state === 'active' && o.dataset.delivered === '21'",
            item(ids[1]),
            item(ids[2]),
            item(ids[0])
        ),
        WAIT,
    )
    .await;
    let found = b.axe().await.unwrap();
    assert!(found.is_empty(), "paused and open endpoints: {found:#?}");

    // Twenty deliveries, then the older one with Load more.
    click(
        &b,
        &format!("{} [data-action=\"deliveries\"]", item(ids[0])),
    )
    .await;
    let shown = "const ids = [...document.querySelectorAll('#hook-delivery-list li[data-delivery-id]')].map(li => Number(li.dataset.deliveryId));
                 return { ids, more: !document.getElementById('hook-deliveries-more').hidden,
                          line: document.getElementById('hook-deliveries-line').textContent }";
    wait_until(
        &b,
        "return document.querySelectorAll('#hook-delivery-list li[data-delivery-id]').length === 20 && !document.getElementById('hook-deliveries-more').hidden",
        WAIT,
    )
    .await;
    let page = js(&b, shown).await;
    assert_eq!(
        page["line"],
        "20 deliveries shown · older ones with Load more."
    );
    click(&b, "#hook-deliveries-more").await;
    wait_until(
        &b,
        "return document.querySelectorAll('#hook-delivery-list li[data-delivery-id]').length === 21 && document.getElementById('hook-deliveries-more').hidden",
        WAIT,
    )
    .await;
    let page = js(&b, shown).await;
    assert_eq!(page["line"], "21 deliveries shown.");
    let listed: Vec<i64> = serde_json::from_value(page["ids"].clone()).unwrap();
    let mut newest_first = listed.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(listed, newest_first, "newest first");
    newest_first.dedup();
    assert_eq!(newest_first.len(), 21, "each once");

    // The failing endpoint's oldest delivery is still tried: it can be given up (a
    // delivered one offers Resend instead).
    assert!(
        js(
            &b,
            "return [...document.querySelectorAll('#hook-delivery-list li[data-delivery-id]')].every(li => li.querySelector('[data-action=\"resend\"]') !== null)"
        )
        .await
            == json!(true)
    );
    click(
        &b,
        &format!("{} [data-action=\"deliveries\"]", item(ids[1])),
    )
    .await;
    let head = "[...document.querySelectorAll('#hook-delivery-list li[data-delivery-id]')].pop()";
    wait_until(
        &b,
        &format!("const d = {head}; return d !== undefined && d.dataset.state === 'pending' && d.querySelector('[data-action=\"give-up\"]') !== null"),
        WAIT,
    )
    .await;
    let oldest = js(&b, &format!("return {head}.dataset.deliveryId")).await;
    let oldest = oldest.as_str().unwrap().to_owned();
    click(
        &b,
        &format!("#hook-delivery-list li[data-delivery-id=\"{oldest}\"] [data-action=\"give-up\"]"),
    )
    .await;
    wait_until(
        &b,
        &format!("const d = document.querySelector('#hook-delivery-list li[data-delivery-id=\"{oldest}\"]');
                  return d !== null && d.dataset.state === 'failed' && d.querySelector('[data-action=\"resend\"]') !== null
                    && document.getElementById('hook-deliveries-line').textContent.startsWith('Delivery #{oldest} given up')"),
        WAIT,
    )
    .await;

    // Edit: the form takes the endpoint's values, Cancel puts it back to adding, Save
    // changes what the endpoint wants.
    let form = "return [document.getElementById('hook-form-title').textContent, document.getElementById('hook-add').textContent,
                        document.getElementById('hook-url').value, document.getElementById('hook-all-events').checked,
                        document.getElementById('hook-cancel-edit').hidden]";
    click(&b, &format!("{} [data-action=\"edit\"]", item(ids[0]))).await;
    assert_eq!(
        js(&b, form).await,
        json!(["Change the endpoint", "Save changes", ok.url, false, false])
    );
    assert_eq!(
        js(&b, "return document.activeElement.id").await,
        json!("hook-url")
    );
    click(&b, "#hook-cancel-edit").await;
    assert_eq!(
        js(&b, form).await,
        json!(["Add an endpoint", "Add endpoint", "", true, true])
    );
    click(&b, &format!("{} [data-action=\"edit\"]", item(ids[0]))).await;
    js(
        &b,
        "document.getElementById('hook-description').value = 'CRM';
         for (const i of document.querySelectorAll('#hook-event-types input')) i.checked = i.value === 'onboarding.finished';
         return true",
    )
    .await;
    click(&b, "#hook-add").await;
    wait_until(
        &b,
        &format!("const li = document.querySelector('{}'); return li !== null && li.innerText.includes('CRM') && li.innerText.includes('onboarding.finished')
                  && document.getElementById('hook-form-line').textContent === 'Endpoint #{} saved.'", item(ids[0]), ids[0]),
        WAIT,
    )
    .await;
    let saved: Value = http
        .get(format!("{}/admin/webhook-endpoints/{}", proxy.url, ids[0]))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(saved["events"], json!(["onboarding.finished"]));
    assert_eq!(saved["description"], "CRM");
    assert_eq!(js(&b, form).await[0], json!("Add an endpoint"));
    b.close().await;
    let _ = std::fs::remove_dir_all(&site);
}
