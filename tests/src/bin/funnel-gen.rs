//! `funnel-gen`: stores a believable month of synthetic onboardings in a proxy's database
//! (before the proxy starts), through the proxy's own store API, and prints the ground truth
//! of the last 30 days (what `GET /admin/funnel` must answer, UTC) as JSON.
//! `cargo xtask demo` runs it once, when the demo's database is new.

use anyhow::{Context, bail};
use clap::Parser;
use waba_proxy::store::PostgresOptions;
use waba_testkit::funnel::Plan;

/// Seeds a proxy's database with synthetic onboardings.
#[derive(Debug, Parser)]
struct Args {
    /// The proxy's `--database`: a SQLite file (created if missing) or a `postgres://` URL.
    #[arg(long)]
    database: String,
    /// The seed: the same seed (and `--now`) writes the same records.
    #[arg(long, default_value_t = 19)]
    seed: u64,
    /// About how many onboardings to write.
    #[arg(long, default_value_t = 450)]
    count: usize,
    /// The time the month ends (unix seconds; default now).
    #[arg(long)]
    now: Option<i64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store = waba_proxy::store::open(&args.database, &PostgresOptions::default())
        .await
        .with_context(|| format!("cannot open {}", args.database))?;
    if !store.onboardings(None, 1).await?.is_empty() {
        bail!(
            "{} already holds onboarding records: nothing written",
            args.database
        );
    }
    let now = args.now.unwrap_or_else(waba_proxy::clock::now);
    let plan = Plan::generate(args.seed, now, args.count);
    plan.write(store.as_ref()).await?;
    let today = now.div_euclid(86_400);
    println!("{}", plan.expected(today - 29, today, 0));
    Ok(())
}
