//! `smoke`: opens a page in headless Chromium, waits for accounts to render, prints what the
//! page shows, and exits 0 only if at least `--min` accounts appeared.
//! `cargo xtask demo --smoke` uses it to prove the demo works without a person.

use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use waba_testkit::browser::Browser;

/// Checks a page in headless Chromium.
#[derive(Debug, Parser)]
struct Args {
    /// The page to open.
    #[arg(long)]
    url: String,
    /// CSS selector of one rendered account.
    #[arg(long, default_value = "[data-account-id]")]
    account_selector: String,
    /// Fewest accounts that must render.
    #[arg(long, default_value_t = 1)]
    min: usize,
    /// Seconds to wait for them.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// Where to save a screenshot (PNG).
    #[arg(long)]
    screenshot: Option<PathBuf>,
    /// The Graph simulator, to pick the signup dialog's flow.
    #[arg(long, requires = "flow")]
    sim_url: Option<String>,
    /// The flow the simulated signup dialog runs (then the signup button is clicked).
    #[arg(long, requires = "sim_url")]
    flow: Option<String>,
    /// After the accounts render, wait until the element matching this selector shows
    /// `--then-text` (a live update, without reloading).
    #[arg(long, requires = "then_text")]
    then_selector: Option<String>,
    /// The text `--then-selector` must come to show.
    #[arg(long, requires = "then_selector")]
    then_text: Option<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    match run(&args).await {
        Ok(n) if n >= args.min => println!("smoke: ok, {n} accounts rendered"),
        Ok(n) => {
            println!(
                "smoke: FAILED, {n} accounts rendered, wanted at least {}",
                args.min
            );
            std::process::exit(1);
        }
        Err(e) => {
            println!("smoke: FAILED, {e:#}");
            std::process::exit(1);
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<usize> {
    if let (Some(sim), Some(flow)) = (&args.sim_url, &args.flow) {
        let res = reqwest::Client::new()
            .put(format!("{sim}/_sim/flow"))
            .json(&serde_json::json!({ "name": flow }))
            .send()
            .await?;
        anyhow::ensure!(
            res.status().is_success(),
            "the simulator has no flow `{flow}`"
        );
    }
    let browser = Browser::start(None).await?;
    let result = async {
        browser.goto(&args.url).await?;
        if args.flow.is_some() {
            let button = browser
                .wait_for(
                    ".waba-signup-button",
                    Duration::from_secs(args.timeout_secs),
                )
                .await?;
            println!("clicking: {}", button.text().await?);
            button.click().await?;
        }
        let accounts = browser
            .wait_texts(
                &args.account_selector,
                Duration::from_secs(args.timeout_secs),
            )
            .await?;
        if let (Some(css), Some(want)) = (&args.then_selector, &args.then_text) {
            let deadline = std::time::Instant::now() + Duration::from_secs(args.timeout_secs);
            loop {
                let shown = browser
                    .wait_texts(css, Duration::from_secs(args.timeout_secs))
                    .await?;
                if shown.iter().any(|t| t == want) {
                    println!("live: {css} shows {want}");
                    break;
                }
                anyhow::ensure!(
                    std::time::Instant::now() < deadline,
                    "{css} shows {shown:?}, never {want}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        println!(
            "--- page text ---\n{}\n-----------------",
            browser.page_text().await?
        );
        if let Some(path) = &args.screenshot {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, browser.screenshot().await?)?;
            println!("screenshot: {}", path.display());
        }
        anyhow::Ok(accounts.len())
    }
    .await;
    browser.close().await;
    result
}
