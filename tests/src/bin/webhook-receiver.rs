//! `webhook-receiver`: a partner's endpoint for waba-proxy's outbound webhooks, verifying
//! each delivery as Standard Webhooks specifies.

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use waba_testkit::receiver::server::{ReceiverState, app};

/// Receives Standard Webhooks deliveries on any path with POST, verifies them (signature with
/// the secret, timestamp within 5 minutes) with the `standardwebhooks` crate and answers 204
/// when they verify, 401 when not. Bodies above 256 KiB are refused (413).
///
/// Other routes: GET / (the events, newest first, a page refreshing itself), GET /_events
/// (JSON, in arrival order, one per webhook-id), GET|POST /_control/mode ({"status": 503}
/// answers every delivery 503, {"delay_ms": 20000} answers 20 s late, {"status": 204} is
/// normal).
#[derive(Debug, Parser)]
#[command(name = "webhook-receiver", version)]
struct Args {
    /// Port on 127.0.0.1; 0 picks a free one. The first line on stdout is
    /// `webhook-receiver listening on http://127.0.0.1:PORT`.
    #[arg(long, env = "WEBHOOK_RECEIVER_PORT", default_value_t = 0)]
    port: u16,
    /// The endpoint's signing secret, `whsec_` and base64 (never printed).
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    secret: Secret,
    /// Appends one JSON line per delivery to this file, synced to disk:
    /// {"received_at","id","timestamp","signature","body","verified","status","error"}.
    #[arg(long, env = "WEBHOOK_RECEIVER_LOG")]
    log: Option<PathBuf>,
}

/// A secret that no `Debug` output shows.
#[derive(Clone)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

fn main() {
    if let Err(e) = try_main() {
        eprintln!("webhook-receiver: {e:#}");
        std::process::exit(1);
    }
}

fn try_main() -> anyhow::Result<()> {
    let args = Args::parse();
    let state = Arc::new(ReceiverState::new(&args.secret.0, args.log.as_deref())?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listen = ("127.0.0.1", args.port);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
        let addr = listener.local_addr()?;
        // The harness reads this line to learn the port.
        println!("webhook-receiver listening on http://{addr}");
        let stopping = state.clone();
        axum::serve(listener, app(state))
            .with_graceful_shutdown(async move {
                stop_signal().await;
                eprintln!("webhook-receiver: shutting down");
                // Deliveries waiting out a delay end now (503) rather than hold the exit up.
                stopping.shut_down();
            })
            .await?;
        eprintln!("webhook-receiver: stopped");
        Ok(())
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
