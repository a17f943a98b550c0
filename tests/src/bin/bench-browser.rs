//! `bench-browser`: the browser half of `cargo xtask bench`, in headless Chromium.
//!
//! - Time to status: the signup page with graph-sim adding a fixed latency to every Graph
//!   call; from the embed's `waba-onboard:result` event (the signup result is complete) to
//!   `waba-onboard:done` (every account's status is in the panel) and to the next painted
//!   frame. Cold samples use a new `waba-proxy` each (nothing cached); warm samples repeat on
//!   one proxy.
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
use waba_testkit::harness::{Running, SimServer, scenario, site, start_proxy, target_bin};

const WAIT: Duration = Duration::from_secs(60);
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
    let status = time_to_status(&browser, &args).await;
    let console = match status {
        Ok(_) => console(&browser, &args).await,
        Err(_) => Ok(Vec::new()),
    };
    browser.close().await;
    print!("{}", markdown(&args, &status?, &console?));
    Ok(())
}

/// Time-to-status samples, in milliseconds.
struct Status {
    cold_done: Vec<f64>,
    cold_painted: Vec<f64>,
    warm_done: Vec<f64>,
    warm_painted: Vec<f64>,
    /// Graph calls of each cold signup (debug_token, WABA and phone reads).
    calls: Vec<u64>,
}

/// Console samples for one size, in milliseconds.
struct Console {
    accounts: usize,
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

fn markdown(args: &Args, st: &Status, console: &[Console]) -> String {
    use std::fmt::Write as _;
    let floor = 2.0 * args.latency_ms as f64;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Time to status

The signup page in headless Chromium, the `finish` flow (2 WABAs), graph-sim adding {lat} ms to every Graph call. \
         From the embed's `waba-onboard:result` (the signup result is complete) to `waba-onboard:done` (both accounts' statuses in the panel) and to the second animation frame after it (painted). \
         The floor is 2 sequential Graph round trips, {floor:.0} ms: `debug_token`, then the WABAs in parallel. \
         Cold: a new waba-proxy for each of {n} signups (nothing cached; Graph calls per signup: {calls}). Warm: {n} more signups on one proxy (`debug_token` and the WABAs answered from its caches).\n",
        lat = args.latency_ms,
        n = args.samples,
        calls = st
            .calls
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    );
    let _ = writeln!(
        md,
        "| | median | p90 | gap to the {floor:.0} ms floor (median) |\n|---|---|---|---|"
    );
    for (name, v, gap) in [
        ("cold, statuses in the DOM", &st.cold_done, true),
        ("cold, painted", &st.cold_painted, true),
        ("warm, statuses in the DOM", &st.warm_done, false),
        ("warm, painted", &st.warm_painted, false),
    ] {
        let med = quantile(v, 0.5);
        let gap = if gap {
            format!("+{:.0} ms", med - floor)
        } else {
            "below the floor: no Graph call".into()
        };
        let _ = writeln!(
            md,
            "| {name} | {med:.0} ms | {:.0} ms | {gap} |",
            quantile(v, 0.9)
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
        "| accounts loaded | whole view, median | whole view, max | scroll step, median | rows in the DOM |\n|---|---|---|---|---|"
    );
    for c in console {
        let _ = writeln!(
            md,
            "| {} | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
            c.accounts,
            quantile(&c.view, 0.5),
            quantile(&c.view, 1.0),
            quantile(&c.scroll, 0.5),
            c.rows_in_dom
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
    start_proxy(
        &target_bin("waba-proxy"),
        &sim.url,
        &[
            "--system-user-token",
            system,
            "--business-id",
            "805021500648488",
            "--admin-token",
            ADMIN,
            "--www",
            www,
        ],
    )
    .context("waba-proxy")
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
           requestAnimationFrame(() => requestAnimationFrame(() => { __bench.painted = performance.now(); }));
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

async fn time_to_status(b: &Browser, args: &Args) -> Result<Status> {
    let sim = SimServer::start(&scenario("demo"))?;
    sim.state
        .set_latency(Duration::from_millis(args.latency_ms));
    let www = site(&sim.url)?;
    let www = www.to_string_lossy().into_owned();
    let system = "EAASimSystemUserTokenDemo0000000000000000000000001";
    let mut st = Status {
        cold_done: Vec::new(),
        cold_painted: Vec::new(),
        warm_done: Vec::new(),
        warm_painted: Vec::new(),
        calls: Vec::new(),
    };
    for _ in 0..args.samples {
        let p = proxy(&sim, system, &www)?;
        let (done, painted, calls) = one_signup(b, &sim, &format!("{}/signup.html", p.url)).await?;
        let graph: u64 = ["debug_token", "waba", "phone_numbers"]
            .iter()
            .map(|r| calls.get(*r).copied().unwrap_or(0))
            .sum();
        if graph != 3 {
            bail!("a signup granting 2 WABAs cost {calls:?}, not 1 debug_token + 2 WABA reads");
        }
        st.cold_done.push(done);
        st.cold_painted.push(painted);
        st.calls.push(graph);
    }
    let p = proxy(&sim, system, &www)?;
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
            view: floats(view),
            scroll: floats(scroll),
            rows_in_dom: rows_in_dom.as_u64().unwrap_or(0),
        });
    }
    Ok(out)
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
