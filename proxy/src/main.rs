//! `waba-proxy`: reads its configuration, serves until SIGTERM or Ctrl-C, and lets in-flight
//! requests finish.

use clap::Parser;
use std::process::ExitCode;
use waba_proxy::config::{Args, Config};
use waba_proxy::{AppState, app, spawn_housekeeping};

/// mimalloc: fewer cycles per request than glibc's allocator under many small allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("waba-proxy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> anyhow::Result<()> {
    let config = Config::from_args(Args::parse())?;
    init_logs(config.json_logs);
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(config))
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WABA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(true).init();
    } else {
        builder.init();
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let state = AppState::new(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    spawn_housekeeping(&state);
    if let Some(pipeline) = &state.pipeline {
        pipeline.spawn();
    }
    if let Some(every) = state.config.tracker_interval {
        waba_proxy::tracker::spawn(state.tracker.clone(), every);
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, graph = %state.config.upstream.graph_url, version = %state.config.upstream.graph_version, "listening");
    // The test harness and xtask read this line to learn the port.
    println!("waba-proxy listening on http://{addr}");
    let hub = state.hub.clone();
    let limits = state.config.connections.clone();
    waba_proxy::server::serve(listener, app(state), limits, async move {
        shutdown_signal().await;
        // Open event streams end so the drain can finish; clients reconnect elsewhere.
        hub.close();
    })
    .await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
