//! `waba-proxy`: reads its configuration, serves until SIGTERM or Ctrl-C, and lets in-flight
//! requests finish. `waba-proxy --healthcheck [ADDRESS]` instead asks a running proxy's
//! `/healthz` and exits 0 when it answers 200 (a container image without curl uses it).

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;
use std::time::Duration;
use waba_proxy::config::{Args, Config};
use waba_proxy::{AppState, app, spawn_housekeeping};

/// mimalloc: fewer cycles per request than glibc's allocator under many small allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What `--help` adds about `--healthcheck`, which is read before the other flags.
const HEALTHCHECK_HELP: &str = "\
Health check (for container images without curl):
  waba-proxy --healthcheck [ADDRESS]
      GET /healthz of the proxy at ADDRESS (default: $WABA_LISTEN, else 127.0.0.1:8080; an
      unspecified address such as 0.0.0.0 means loopback); exits 0 on 200, 1 otherwise.";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == "--healthcheck") {
        return healthcheck(args.next().map(|a| a.to_string_lossy().into_owned()));
    }
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("waba-proxy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> anyhow::Result<()> {
    let matches = Args::command().after_help(HEALTHCHECK_HELP).get_matches();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let config = Config::from_args(args)?;
    // Held until the process ends: dropping it writes out the lines still queued.
    let _logs = init_logs(config.json_logs);
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(config))
}

/// Log lines queued for the writer thread; past it a request waits for room (lines are
/// never dropped).
const QUEUED_LOG_LINES: usize = 8192;

/// Logs to stderr from a thread of their own: a request formats its line and queues it; the
/// thread writes whatever is queued in one `write` (buffered, flushed whenever the queue is
/// empty), so a busy proxy makes one system call for many lines instead of one per line.
fn init_logs(json: bool) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WABA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(QUEUED_LOG_LINES)
        .lossy(false)
        .thread_name("waba-proxy-logs")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if json {
        builder.json().with_current_span(true).init();
    } else {
        builder.init();
    }
    guard
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let state = AppState::new(config)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    spawn_housekeeping(&state);
    if let Some(pipeline) = &state.pipeline {
        pipeline.spawn();
    }
    state.outbound.clone().spawn();
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

/// `waba-proxy --healthcheck [ADDRESS]`: exit status 0 when `/healthz` answers 200 in time.
fn healthcheck(address: Option<String>) -> ExitCode {
    match probe_healthz(address) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("waba-proxy: healthcheck: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One `GET /healthz` over plain HTTP/1.1, 3 s at most per step.
fn probe_healthz(address: Option<String>) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::{Read, Write};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
    let address = address
        .or_else(|| std::env::var("WABA_LISTEN").ok())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let mut addr: SocketAddr = address
        .parse()
        .with_context(|| format!("`{address}` is not an address such as 127.0.0.1:8080"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    let limit = Duration::from_secs(3);
    let mut stream =
        TcpStream::connect_timeout(&addr, limit).with_context(|| format!("connect to {addr}"))?;
    stream.set_read_timeout(Some(limit))?;
    stream.set_write_timeout(Some(limit))?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut status_line = [0u8; 12];
    stream
        .read_exact(&mut status_line)
        .with_context(|| format!("no answer from {addr}"))?;
    if status_line.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        anyhow::bail!(
            "http://{addr}/healthz answered `{}`",
            String::from_utf8_lossy(&status_line)
        )
    }
}
