//! What a connection may hold: slow heads are cut at the header timeout, oversized heads get
//! 431, one client holds a bounded number of connections, and the process a bounded number in
//! all. Raw TCP, since an HTTP client would not misbehave on purpose.

// An unwrap that fails is a failed test.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn connect(s: &Stack) -> TcpStream {
    TcpStream::connect(s.proxy.url.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection (or resets it), for at most `limit`; what it
/// sent, or `None` when it still holds the connection open after `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read_all).await.ok()?;
    Some(String::from_utf8_lossy(&got).into_owned())
}

/// The status line of a `GET /healthz` on `stream`.
async fn healthz(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A client that sends one header line every 200 ms never finishes its head: the proxy
/// closes the connection at the header timeout instead of holding it forever.
#[tokio::test]
async fn a_slow_head_is_cut_at_the_client_timeout() {
    let s = stack(world("demo"), &["--client-timeout-ms", "1000"]);
    let mut stream = connect(&s).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let trickle = async {
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if stream
                .write_all(format!("X-Slow-{i}: a\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    };
    // Writes keep succeeding while the proxy holds the connection; they fail once it closed.
    let cut = tokio::time::timeout(Duration::from_secs(15), trickle).await;
    assert!(
        cut.is_ok(),
        "the proxy still held a 15 s slow head open (header timeout 1 s)"
    );
    assert!(started.elapsed() >= Duration::from_millis(800));

    // An idle keep-alive connection is closed by the same timer.
    let mut idle = connect(&s).await;
    assert!(healthz(&mut idle).await.starts_with("HTTP/1.1 200"));
    assert!(
        read_until_closed(&mut idle, Duration::from_secs(15))
            .await
            .is_some(),
        "an idle keep-alive connection was held past the header timeout"
    );
}

/// A head over `--max-header-bytes` is answered 431 and the connection closed; a head under
/// it is served.
#[tokio::test]
async fn an_oversized_head_gets_431() {
    let s = stack(world("demo"), &["--max-header-bytes", "8192"]);
    let mut stream = connect(&s).await;
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(12 * 1024)
    );
    // The proxy may close before it has read everything: a failed write is fine.
    let _ = stream.write_all(big.as_bytes()).await;
    let answer = read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .expect("the connection is closed");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    let mut ok = connect(&s).await;
    let fine = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Fine: {}\r\n\r\n",
        "a".repeat(4 * 1024)
    );
    ok.write_all(fine.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let n = ok.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
}

/// The proxy's resident memory, from `/proc`.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// 100 connections each pushing a huge head that never ends cost the proxy a bounded amount
/// of memory: each is refused at the head limit instead of buffering up to hyper's ~400 KB.
#[tokio::test]
async fn unfinished_heads_cost_bounded_memory() {
    let s = stack(world("demo"), &[]);
    let pid = s.proxy.pid();
    // Warm up allocator arenas with ordinary requests first.
    for _ in 0..20 {
        let mut c = connect(&s).await;
        let _ = healthz(&mut c).await;
    }
    let before = rss_kib(pid);
    let mut held = Vec::new();
    for _ in 0..100 {
        let mut c = connect(&s).await;
        let mut head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
        head.extend(std::iter::repeat_n(b'X', 384 * 1024));
        // Written in the background: the proxy stops reading (and closes) at its limit.
        held.push(tokio::spawn(async move {
            let _ = c.write_all(&head).await;
            c
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let grown = rss_kib(pid).saturating_sub(before);
    for h in held {
        h.abort();
    }
    assert!(
        grown < 16 * 1024,
        "100 unfinished heads grew the proxy by {grown} KiB"
    );
}

/// One client holds at most `--max-connections-per-client` connections: the next is closed at
/// once while the others are served, and a slot comes back when a connection closes.
#[tokio::test]
async fn one_client_holds_a_bounded_number_of_connections() {
    let s = stack(world("demo"), &["--max-connections-per-client", "3"]);
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(connect(&s).await);
    }
    // Make sure the proxy has accepted the three (each answers a request).
    for c in &mut open {
        assert!(healthz(c).await.starts_with("HTTP/1.1 200"));
    }
    let mut fourth = connect(&s).await;
    let _ = fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let answer = read_until_closed(&mut fourth, Duration::from_secs(10))
        .await
        .expect("the fourth connection is closed at once");
    assert!(answer.is_empty(), "{answer}");
    drop(open.pop());
    // The slot comes back once the proxy sees the close.
    let mut served = false;
    for _ in 0..50 {
        let mut again = connect(&s).await;
        let _ = again
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let mut buf = [0u8; 64];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), again.read(&mut buf)).await
            && buf[..n].starts_with(b"HTTP/1.1 200")
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "no slot came back after a connection closed");
}

/// Past `--max-connections` in all, a new connection waits to be accepted until one closes.
#[tokio::test]
async fn the_process_holds_a_bounded_number_of_connections() {
    let s = stack(world("demo"), &["--max-connections", "2"]);
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut c = connect(&s).await;
        assert!(healthz(&mut c).await.starts_with("HTTP/1.1 200"));
        open.push(c);
    }
    let mut waiting = connect(&s).await;
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    assert!(
        tokio::time::timeout(Duration::from_millis(700), waiting.read(&mut buf))
            .await
            .is_err(),
        "a third connection was served while two were open"
    );
    drop(open.pop());
    let n = tokio::time::timeout(Duration::from_secs(10), waiting.read(&mut buf))
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
}

/// A body that trickles in is cut at the request's time with 408, on the webhook route (up to
/// 1 MiB) as on the JSON routes, instead of holding a connection and a request slot.
#[tokio::test]
async fn a_slow_body_gets_408() {
    let s = stack(world("demo"), &["--request-timeout-ms", "1000"]);
    for path in ["/webhooks/meta", "/signup/events"] {
        let mut stream = connect(&s).await;
        stream
            .write_all(
                format!(
                    "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                     Content-Length: 4000\r\n\r\n{{"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let trickle = async {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if stream.write_all(b" ").await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), trickle).await;
        let answer = read_until_closed(&mut stream, Duration::from_secs(10))
            .await
            .unwrap_or_default();
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
    }
}

/// A client that asks for a large answer and never reads it is cut once a write has waited
/// the client timeout, instead of holding its connection (and the proxy's buffers) forever.
#[tokio::test]
async fn a_client_that_never_reads_is_cut() {
    let www = std::env::temp_dir().join(format!("waba-www-{}", std::process::id()));
    std::fs::create_dir_all(&www).unwrap();
    const SIZE: usize = 48 * 1024 * 1024;
    std::fs::write(www.join("big.bin"), vec![b'x'; SIZE]).unwrap();
    let dir = www.display().to_string();
    let s = stack(
        world("demo"),
        &["--www", &dir, "--client-timeout-ms", "1000"],
    );
    let mut stream = connect(&s).await;
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Read nothing while the proxy's writes stall on full buffers.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got += n,
            }
        }
    })
    .await;
    let _ = std::fs::remove_dir_all(&www);
    assert!(
        ended.is_ok(),
        "the connection was still open after {got} bytes"
    );
    assert!(
        got < SIZE,
        "the whole answer was delivered to a client that did not read"
    );
}
