//! Serving connections with bounds on what each one, and all of them, may hold: a request's
//! head must arrive whole within the header timeout (the same timer closes an idle keep-alive
//! connection), a head larger than the limit is answered 431 and the connection closed (so
//! a connection's read buffer never grows past a few KiB), a client that stops reading what
//! the proxy writes (pipelined requests it never reads, a stalled event stream) is cut once
//! a write has waited the same time, a client address holds a bounded number of connections
//! (more are closed at once), and the process holds a bounded number in all (more wait in the
//! kernel's backlog until one closes). Bodies are bounded by the router (bytes read, and the
//! time they take to arrive).

use crate::auth::limit::client_key;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;
use tower::ServiceExt as _;

/// Smallest accepted `--max-header-bytes`: room for a request line, a bearer token and the
/// usual browser headers.
pub const MIN_HEADER_BYTES: usize = 4 * 1024;
/// Largest accepted `--max-header-bytes`.
pub const MAX_HEADER_BYTES: usize = 1024 * 1024;
/// Longest wait for open connections to finish after the shutdown signal.
pub const DRAIN: Duration = Duration::from_secs(30);

/// What connections may hold.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time to send a request's whole head; also the longest idle keep-alive, and the
    /// longest a write to the client may wait.
    pub client_timeout: Duration,
    /// Largest request head in bytes.
    pub max_header_bytes: usize,
    /// Open connections in all.
    pub max_connections: usize,
    /// Open connections per client address (IPv6 by /64).
    pub max_connections_per_client: usize,
}

/// Open connections per client address.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

/// One client's hold on a connection slot, given back when the connection ends.
struct ClientSlot {
    table: Arc<PerClient>,
    key: IpAddr,
}

impl PerClient {
    /// A slot for `client`, or `None` when it already holds `max`.
    fn take(table: &Arc<Self>, client: IpAddr, max: usize) -> Option<ClientSlot> {
        let key = client_key(client);
        let mut open = table.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            table: table.clone(),
            key,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then lets open
/// connections finish their requests (at most [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.client_timeout)
        .max_header_size(limits.max_header_bytes)
        // The read buffer holds at most one head, plus a little of the body behind it.
        .max_buf_size((limits.max_header_bytes + 8 * 1024).max(16 * 1024));
    let all = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = Arc::new(PerClient::default());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &all) => accepted,
        };
        let Some((permit, stream, remote)) = accepted else {
            continue;
        };
        let Some(slot) =
            PerClient::take(&per_client, remote.ip(), limits.max_connections_per_client)
        else {
            metrics::counter!("waba_connections_refused_total", "reason" => "per_client")
                .increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut stream = TimeoutStream::new(stream);
        stream.set_write_timeout(Some(limits.client_timeout));
        let service = app
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(remote));
                req
            });
        let conn = http.serve_connection(
            TokioIo::new(Box::pin(stream)),
            TowerToHyperService::new(service),
        );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            metrics::gauge!("waba_open_connections").increment(1.0);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            metrics::gauge!("waba_open_connections").decrement(1.0);
            drop((slot, permit));
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain; closing them");
    }
}

/// The next connection once a slot is free; `None` after an accept error (a pause first
/// when the process is out of file descriptors or memory, so the loop does not spin).
async fn accept(
    listener: &TcpListener,
    all: &Arc<Semaphore>,
) -> Option<(tokio::sync::OwnedSemaphorePermit, TcpStream, SocketAddr)> {
    let permit = all.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, remote)) => Some((permit, stream, remote)),
        Err(e) => {
            if !matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionRefused
            ) {
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            None
        }
    }
}
