//! `graph-sim`: serves a scenario the way Meta's Graph API would.

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use waba_testkit::sim::{app, scenario::World, state::SimState};

/// A local stand-in for Meta's Graph API, driven by a scenario file.
///
/// Graph routes: GET /{version}/debug_token, /{version}/{waba_id}[?fields=...],
/// /{version}/{waba_id}/phone_numbers, /{version}/{business_id}/client_whatsapp_business_accounts,
/// /{version}/{business_id}/owned_whatsapp_business_accounts, /{version}/oauth/access_token.
///
/// Control routes: GET /_sim/ (overview page), GET /_sim/calls, POST /_sim/reset,
/// GET|POST|DELETE /_sim/faults, PUT /_sim/latency {"ms":N}, POST /_sim/codes {"token":T}.
#[derive(Debug, Parser)]
#[command(name = "graph-sim", version)]
struct Args {
    /// Scenario file (JSON), e.g. tests/scenarios/demo.json.
    #[arg(long, env = "GRAPH_SIM_SCENARIO")]
    scenario: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "GRAPH_SIM_LISTEN", default_value = "127.0.0.1:0")]
    listen: String,
    /// Base URL written into paging links (default: http://{Host header}).
    #[arg(long, env = "GRAPH_SIM_PUBLIC_URL")]
    public_url: Option<String>,
    /// Lifetime of authorization codes, in seconds (Graph: 30).
    #[arg(long, env = "GRAPH_SIM_CODE_TTL", default_value_t = 30)]
    code_ttl_secs: u64,
    /// Latency added to every Graph call, in milliseconds.
    #[arg(long, env = "GRAPH_SIM_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,

    /// Where webhooks go (waba-proxy's `/webhooks/meta`); none are sent without it. With it,
    /// the scenario's webhooks are sent too (their delay after their WABA's first read).
    #[arg(long, env = "GRAPH_SIM_WEBHOOK_URL")]
    webhook_url: Option<String>,
}

fn main() {
    if let Err(e) = try_main() {
        eprintln!("graph-sim: {e:#}");
        std::process::exit(1);
    }
}

fn try_main() -> anyhow::Result<()> {
    let args = Args::parse();
    let world = World::load(&args.scenario)?;
    let state = Arc::new(SimState::new(
        world,
        Duration::from_secs(args.code_ttl_secs),
        args.public_url,
    ));
    state.set_latency(Duration::from_millis(args.latency_ms));
    if args.webhook_url.is_some() {
        state.arm_scenario_webhooks();
    }
    state.set_webhook_url(args.webhook_url);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        // The harness reads this line to learn the port.
        println!("graph-sim listening on http://{addr}");
        axum::serve(listener, app(state))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}
