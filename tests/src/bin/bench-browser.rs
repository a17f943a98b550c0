//! `bench-browser`: the browser half of `cargo xtask bench`, in headless Chromium.
//!
//! - Time to status, for the token flow and the code flow: the signup page with graph-sim
//!   adding a fixed latency to every Graph call; from the embed's `waba-onboard:result` event
//!   (the signup result is complete) to `waba-onboard:done` (every account's status is in the
//!   panel) and to the first task after the next rendered frame. Cold samples use a new `waba-proxy` each (nothing
//!   cached); warm samples repeat on one proxy. With the Graph calls each signup cost and the
//!   page's requests to the proxy on the way.
//! - Console render time with 1,000 and 10,000 accounts loaded: the whole view (filter,
//!   counts per status, visible rows, layout) and one scroll step.
//!
//! Prints one JSON object on stdout; `cargo xtask bench` turns it into BENCHMARKS.md. Needs
//! the npm package and the release binaries built (the bench builds them).

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use waba_testkit::browser::Browser;
use waba_testkit::harness::{
    DEMO_CODE_FLOW_ARGS, Running, SimServer, scenario, site, site_with, start_proxy, target_bin,
    temp_database,
};

const WAIT: Duration = Duration::from_secs(60);

/// What the page, the proxy and graph-sim were seen spending above a flow's floor.
const STATUS_PROFILE: &str = include_str!("status-profile.md");
const ADMIN: &str = "bench-admin-token-0001";

#[derive(clap::Parser)]
struct Args {
    /// Latency graph-sim adds to every Graph call, in milliseconds.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Samples per measurement.
    #[arg(long, default_value_t = 10)]
    samples: usize,
    /// Largest console size measured (1,000 and this).
    #[arg(long, default_value_t = 10_000)]
    console_max: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = <Args as clap::Parser>::parse();
    let browser = Browser::start(Some((1280, 900)))
        .await
        .context("headless Chromium")?;
    let mut status = Vec::new();
    for flow in [Flow::Token, Flow::Code] {
        match time_to_status(&browser, &args, flow).await {
            Ok(s) => status.push(s),
            Err(e) => {
                browser.close().await;
                return Err(e.context(format!("time to status, {} flow", flow.name())));
            }
        }
    }
    let console = console(&browser, &args).await;
    browser.close().await;
    let mut md = markdown(&args, &status, &console?);
    let (pass_calls, pass_wabas) = tracker_pass().await.context("a tracker pass")?;
    {
        use std::fmt::Write as _;
        let _ = writeln!(
            md,
            "\nOne tracker pass (`POST /admin/tracker/pass`, the first on a new proxy) over the `large` scenario's client WABAs ({pass_wabas} WABAs): {pass_calls} Graph calls.",
        );
    }
    print!("{md}");
    Ok(())
}

/// A signup flow the page runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// The page gets a business token and reads through the proxy with it.
    Token,
    /// The page hands the code to the proxy (`POST /signup/exchange`).
    Code,
}

impl Flow {
    fn name(self) -> &'static str {
        match self {
            Flow::Token => "token",
            Flow::Code => "code",
        }
    }

    /// Graph round trips that must follow one another before the statuses can show.
    fn round_trips(self) -> u64 {
        match self {
            Flow::Token => 2,
            Flow::Code => 3,
        }
    }

    fn floor_text(self) -> &'static str {
        match self {
            Flow::Token => "`debug_token`, then the WABAs in parallel",
            Flow::Code => {
                "`oauth/access_token`, `debug_token` of the business token, then the WABAs in parallel (the exchange answers them)"
            }
        }
    }

    /// Graph calls a cold signup granting 2 WABAs must cost before its statuses show.
    fn expected_calls(self) -> &'static [(&'static str, u64)] {
        match self {
            Flow::Token => &[("debug_token", 1), ("waba", 2)],
            Flow::Code => &[("oauth_access_token", 1), ("debug_token", 1), ("waba", 2)],
        }
    }
}

/// Time-to-status samples of one flow, in milliseconds.
struct Status {
    flow: Flow,
    cold_done: Vec<f64>,
    cold_painted: Vec<f64>,
    warm_done: Vec<f64>,
    warm_painted: Vec<f64>,
    /// Graph calls of each cold signup until its statuses showed, by route.
    calls: Vec<BTreeMap<String, u64>>,
    /// The page's requests to the proxy's `/graph/` and `/signup/exchange` routes on the way
    /// to the statuses, per cold signup.
    page_requests: Vec<u64>,
}

/// Console samples for one size, in milliseconds.
struct Console {
    accounts: usize,
    /// Graph calls from opening the console to having `accounts` loaded.
    graph_calls: u64,
    view: Vec<f64>,
    scroll: Vec<f64>,
    rows_in_dom: u64,
}

/// The value at quantile `q` (0..=1) of `v`, nearest rank.
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let i = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
    s[i]
}

fn markdown(args: &Args, status: &[Status], console: &[Console]) -> String {
    use std::fmt::Write as _;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Time to status

The signup page in headless Chromium, the `finish` flow (2 WABAs), graph-sim adding {lat} ms to every Graph call, for each flow the page can run. \
         From the embed's `waba-onboard:result` (the signup result is complete) to `waba-onboard:done` (both accounts' statuses in the panel) and to the first task after the next frame was rendered (painted: a message posted from that frame's animation-frame callback runs once the frame with the statuses is produced). \
         A flow's floor is the Graph round trips that must follow one another, {lat} ms each. \
         Cold: a new waba-proxy for each of {n} signups, ready (`/readyz` answered 200, as an orchestrator waits before it sends a replica traffic) and with nothing cached. Warm: {n} more signups on one proxy (what it keeps answers from its caches).\n",
        lat = args.latency_ms,
        n = args.samples,
    );
    let _ = writeln!(
        md,
        "| flow | floor | | median | p90 | gap to the floor (median) |\n|---|---|---|---|---|---|"
    );
    for st in status {
        let floor = (st.flow.round_trips() * args.latency_ms) as f64;
        for (name, v, cold) in [
            ("cold, statuses in the DOM", &st.cold_done, true),
            ("cold, painted", &st.cold_painted, true),
            ("warm, statuses in the DOM", &st.warm_done, false),
            ("warm, painted", &st.warm_painted, false),
        ] {
            let med = quantile(v, 0.5);
            let gap = match cold {
                true => format!("{:+.0} ms", med - floor),
                false => "(answers cached)".into(),
            };
            let _ = writeln!(
                md,
                "| {} | {floor:.0} ms | {name} | {med:.0} ms | {:.0} ms | {gap} |",
                st.flow.name(),
                quantile(v, 0.9)
            );
        }
    }
    md.push('\n');
    for st in status {
        let _ = writeln!(
            md,
            "- {} flow's floor: {} round trips, {}.",
            st.flow.name(),
            st.flow.round_trips(),
            st.flow.floor_text()
        );
    }
    let _ = writeln!(
        md,
        "{STATUS_PROFILE}\nGraph calls per cold onboarding until its statuses showed, and the page's requests to the proxy on the way (its `/graph/` reads, `/signup/accounts` and the code exchange):\n\n\
         | flow | Graph calls (each signup the same) | page requests to the proxy |\n|---|---|---|"
    );
    for st in status {
        let calls = st.calls.first().map_or_else(String::new, |c| {
            c.iter()
                .map(|(route, n)| format!("`{route}` {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let same = st.calls.windows(2).all(|w| w[0] == w[1]);
        let _ = writeln!(
            md,
            "| {} | {calls}{} | {} |",
            st.flow.name(),
            if same {
                ""
            } else {
                " (varied between signups)"
            },
            st.page_requests
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(
        md,
        "\n## Console render time\n\nThe partner console in headless Chromium (1280x900) with the accounts loaded through the proxy. \
         Whole view: what a search keystroke does (filter, counts per status, the visible rows, layout), {n} times. \
         Scroll step: 900 px further down, the rows entering the view, with layout. Only the visible rows are in the DOM.\n",
        n = args.samples.max(2)
    );
    let _ = writeln!(
        md,
        "| accounts loaded | whole view, median | whole view, max | scroll step, median | rows in the DOM | Graph calls of the session so far |\n|---|---|---|---|---|---|"
    );
    for c in console {
        let _ = writeln!(
            md,
            "| {} | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} |",
            c.accounts,
            quantile(&c.view, 0.5),
            quantile(&c.view, 1.0),
            quantile(&c.scroll, 0.5),
            c.rows_in_dom,
            c.graph_calls
        );
    }
    md
}

async fn js(b: &Browser, script: &str) -> Result<Value> {
    Ok(b.client.execute(script, vec![]).await?)
}

async fn wait_until(b: &Browser, script: &str) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    while js(b, script).await? != json!(true) {
        if Instant::now() > deadline {
            bail!("timed out waiting for: {script}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn proxy(sim: &SimServer, system: &str, www: &str) -> Result<Running> {
    proxy_for(sim, system, www, Flow::Token)
}

/// A proxy for the page running `flow`: the code flow's needs the app, a token key and a
/// database of its own.
fn proxy_for(sim: &SimServer, system: &str, www: &str, flow: Flow) -> Result<Running> {
    let db = temp_database().to_string_lossy().into_owned();
    let mut args = vec![
        "--system-user-token",
        system,
        "--business-id",
        "805021500648488",
        "--admin-token",
        ADMIN,
        "--www",
        www,
        "--database",
        &db,
    ];
    if flow == Flow::Code {
        args.extend_from_slice(&DEMO_CODE_FLOW_ARGS);
    }
    start_proxy(&target_bin("waba-proxy"), &sim.url, &args).context("waba-proxy")
}

/// Waits until the proxy at `url` answers `/readyz` with 200, as an orchestrator waits before
/// it sends a new replica traffic (its check of the System User token with Graph is made).
async fn ready(url: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        let res = reqwest::get(format!("{url}/readyz")).await?;
        if res.status().is_success() {
            return Ok(());
        }
        if started.elapsed() > WAIT {
            bail!("the proxy at {url} was not ready within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Requests the proxy at `url` answered on the routes the page uses on the way to the
/// statuses (`/graph/` reads and the code exchange), from its `/metrics`.
async fn page_requests(url: &str) -> Result<u64> {
    let text = reqwest::get(format!("{url}/metrics")).await?.text().await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("waba_requests_total{"))
        .filter(|l| {
            [
                "debug_token",
                "waba",
                "phone_numbers",
                "/signup/exchange",
                "/signup/accounts",
            ]
            .iter()
            .any(|r| l.contains(&format!("route=\"{r}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

/// One signup on the page at `url`: milliseconds from result to done and to paint, and the
/// Graph calls it cost.
async fn one_signup(
    b: &Browser,
    sim: &SimServer,
    url: &str,
) -> Result<(f64, f64, BTreeMap<String, u64>)> {
    b.goto(url).await?;
    js(
        b,
        "window.__bench = {};
         document.addEventListener('waba-onboard:result', () => { __bench.result = performance.now(); });
         document.addEventListener('waba-onboard:done', () => {
           __bench.done = performance.now();
           __bench.accounts = document.querySelectorAll('[data-account-id]').length;
           requestAnimationFrame(() => { const c = new MessageChannel(); c.port1.onmessage = () => { __bench.painted = performance.now(); }; c.port2.postMessage(0); });
         });
         return true;",
    )
    .await?;
    let before = sim.state.calls();
    sim.state.set_auto_flow(Some("finish".into()));
    b.wait_for(".waba-signup-button", WAIT)
        .await?
        .click()
        .await?;
    wait_until(b, "return window.__bench.painted !== undefined").await?;
    let m = js(b, "return window.__bench").await?;
    let accounts = m["accounts"].as_u64().unwrap_or(0);
    if accounts != 2 {
        bail!("the panel showed {accounts} accounts, expected the flow's 2");
    }
    let f = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
    let calls = sim
        .state
        .calls()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(route, n)| {
            (
                route.to_owned(),
                n - before.get(route).copied().unwrap_or(0),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    Ok((f("done") - f("result"), f("painted") - f("result"), calls))
}

async fn time_to_status(b: &Browser, args: &Args, flow: Flow) -> Result<Status> {
    let sim = SimServer::start(&scenario("demo"))?;
    sim.state
        .set_latency(Duration::from_millis(args.latency_ms));
    let www = site_with(&sim.url, flow.name())?;
    let www = www.to_string_lossy().into_owned();
    let system = "EAASimSystemUserTokenDemo0000000000000000000000001";
    let mut st = Status {
        flow,
        cold_done: Vec::new(),
        cold_painted: Vec::new(),
        warm_done: Vec::new(),
        warm_painted: Vec::new(),
        calls: Vec::new(),
        page_requests: Vec::new(),
    };
    for _ in 0..args.samples {
        let p = proxy_for(&sim, system, &www, flow)?;
        ready(&p.url).await?;
        let (done, painted, calls) = one_signup(b, &sim, &format!("{}/signup.html", p.url)).await?;
        for (route, n) in flow.expected_calls() {
            if calls.get(*route).copied().unwrap_or(0) < *n {
                bail!(
                    "a {} signup granting 2 WABAs cost {calls:?}, expected {:?} at least",
                    flow.name(),
                    flow.expected_calls()
                );
            }
        }
        st.cold_done.push(done);
        st.cold_painted.push(painted);
        st.calls.push(calls);
        st.page_requests.push(page_requests(&p.url).await?);
    }
    let p = proxy_for(&sim, system, &www, flow)?;
    let url = format!("{}/signup.html", p.url);
    one_signup(b, &sim, &url).await?;
    for _ in 0..args.samples {
        let (done, painted, _) = one_signup(b, &sim, &url).await?;
        st.warm_done.push(done);
        st.warm_painted.push(painted);
    }
    Ok(st)
}

async fn console(b: &Browser, args: &Args) -> Result<Vec<Console>> {
    let sim = SimServer::start(&scenario("large"))?;
    let www = site(&sim.url)?;
    let www = www.to_string_lossy().into_owned();
    let p = proxy(
        &sim,
        "EAASimSystemUserTokenLarge000000000000000000000001",
        &www,
    )?;
    let total = || sim.state.calls().values().sum::<u64>();
    let opened = total();
    b.goto(&format!("{}/console.html", p.url)).await?;
    b.wait_for("#admin-token", WAIT)
        .await?
        .send_keys(ADMIN)
        .await?;
    b.wait_for("#signin button", WAIT).await?.click().await?;
    b.wait_for(".row", WAIT).await?;
    let mut sizes = vec![1000usize];
    if args.console_max > 1000 {
        sizes.push(args.console_max);
    }
    let mut out = Vec::new();
    for n in sizes {
        // Scroll to the end until n accounts are loaded (a page of 100 per step).
        while loaded(b).await? < n {
            let before = loaded(b).await?;
            js(
                b,
                "const l = document.getElementById('list'); l.scrollTop = l.scrollHeight;
                 l.dispatchEvent(new Event('scroll')); return true;",
            )
            .await?;
            let deadline = Instant::now() + WAIT;
            while loaded(b).await? == before && complete(b).await? != json!("true") {
                if Instant::now() > deadline {
                    bail!("the console stopped loading at {before} accounts");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if complete(b).await? == json!("true") {
                break;
            }
        }
        let have = loaded(b).await?;
        let graph_calls = total() - opened;
        // The whole view: what a search keystroke does (filter, counts, rows), with layout.
        let view = js(
            b,
            &format!(
                "const s = document.getElementById('search'); const times = [];
                 for (let i = 0; i < {samples}; i++) {{
                   const t0 = performance.now();
                   s.value = (i % 2) ? '' : ' ';
                   s.dispatchEvent(new Event('input'));
                   document.body.getBoundingClientRect();
                   document.getElementById('list').scrollHeight;
                   times.push(performance.now() - t0);
                 }}
                 return times;",
                samples = args.samples.max(2)
            ),
        )
        .await?;
        // One scroll step: the rows entering the view.
        let scroll = js(
            b,
            &format!(
                "const l = document.getElementById('list'); const times = [];
                 l.scrollTop = 0; document.body.getBoundingClientRect();
                 for (let i = 0; i < {samples}; i++) {{
                   const t0 = performance.now();
                   l.scrollTop = (i + 1) * 900;
                   l.dispatchEvent(new Event('scroll'));
                   document.body.getBoundingClientRect();
                   times.push(performance.now() - t0);
                 }}
                 return times;",
                samples = args.samples.max(2)
            ),
        )
        .await?;
        let rows_in_dom = js(b, "return document.querySelectorAll('.row').length").await?;
        let floats = |v: Value| -> Vec<f64> {
            v.as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        out.push(Console {
            accounts: have,
            graph_calls,
            view: floats(view),
            scroll: floats(scroll),
            rows_in_dom: rows_in_dom.as_u64().unwrap_or(0),
        });
    }
    Ok(out)
}

/// One tracker pass over the partner's client WABAs (the `large` scenario), as the admin's
/// `POST /admin/tracker/pass` runs it: the Graph calls it cost and the WABAs it saw.
async fn tracker_pass() -> Result<(u64, u64)> {
    let sim = SimServer::start(&scenario("large"))?;
    let www = site(&sim.url)?;
    let p = proxy(
        &sim,
        "EAASimSystemUserTokenLarge000000000000000000000001",
        &www.to_string_lossy(),
    )?;
    let before = sim.state.calls().values().sum::<u64>();
    let answer = reqwest::Client::new()
        .post(format!("{}/admin/tracker/pass", p.url))
        .bearer_auth(ADMIN)
        .send()
        .await?;
    if !answer.status().is_success() {
        bail!("the tracker pass answered {}", answer.status());
    }
    let calls = sim.state.calls().values().sum::<u64>() - before;
    // How many client WABAs the scenario gives the partner.
    let text = std::fs::read_to_string(scenario("large"))?;
    let wabas = serde_json::from_str::<Value>(&text)?["generate"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["edge"] == "client")
        .filter_map(|g| g["count"].as_u64())
        .sum();
    Ok((calls, wabas))
}

async fn loaded(b: &Browser) -> Result<usize> {
    let v = js(
        b,
        "return Number(document.getElementById('status-line').dataset.loaded || 0)",
    )
    .await?;
    Ok(v.as_u64().unwrap_or(0) as usize)
}

async fn complete(b: &Browser) -> Result<Value> {
    js(
        b,
        "return document.getElementById('status-line').dataset.complete || 'false'",
    )
    .await
}
