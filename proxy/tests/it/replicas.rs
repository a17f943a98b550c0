//! Three `waba-proxy` processes on one PostgreSQL database, in front of one graph-sim, behave
//! as one proxy: sessions, used codes, webhook changes, streams, cached answers, throttle
//! gates and tracker passes are shared; a replica killed mid-pass is taken over.
//! Needs the PostgreSQL server `cargo xtask test` starts (`WABA_TEST_POSTGRES_URL`); without
//! one each test says it is skipped and returns (under CI it fails instead).

// An unwrap that fails here is a failed assertion.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use waba_testkit::harness::{Running, SimServer};

const VERIFY: &str = "verify-token-for-replica-tests-1b7e";
const WABA: &str = "102289599326934";

/// graph-sim and `n` replicas on a new database, each with the code flow, webhooks and
/// `extra` flags.
struct Replicas {
    sim: SimServer,
    proxies: Vec<Running>,
    database: String,
}

impl Replicas {
    async fn start(n: usize, extra: &[&str]) -> Option<Self> {
        let database = waba_testkit::postgres::fresh_database().await?;
        let ca = waba_testkit::postgres::ca_file()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let sim = SimServer::start_world_with(world("demo"), Duration::from_secs(30)).unwrap();
        let mut flags = vec![
            "--app-secret",
            DEMO_APP_SECRET,
            "--webhook-verify-token",
            VERIFY,
            "--app-id",
            APP_ID,
            "--token-key",
            TOKEN_KEY,
            "--database-ca-file",
            &ca,
            "--upstream-timeout-ms",
            "3000",
        ];
        flags.extend_from_slice(extra);
        let args = with_database(&flags, &database);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let proxies = (0..n).map(|_| proxy_for(&sim.url, &args)).collect();
        Some(Self {
            sim,
            proxies,
            database,
        })
    }

    fn url(&self, replica: usize, path: &str) -> String {
        format!("{}{path}", self.proxies[replica].url)
    }

    /// A direct connection to the replicas' database.
    async fn sql(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.database, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }
}

async fn post(url: &str, token: Option<&str>, body: Value) -> Answer {
    let mut req = client().post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    send(req).await
}

fn review(n: u32) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "time": 1_700_000_000 + n,
        "changes": [{"field": "account_review_update",
                     "value": {"decision": if n.is_multiple_of(2) { "APPROVED" } else { "REJECTED" }}}]}]})
    .to_string()
}

async fn deliver(url: &str, body: &str) -> StatusCode {
    client()
        .post(url)
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            waba_testkit::sim::webhooks::signature(DEMO_APP_SECRET, body.as_bytes()),
        )
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
}

/// An open stream: the event ids and data it receives, read in the background.
struct Stream {
    events: tokio::sync::mpsc::UnboundedReceiver<(i64, Value)>,
}

impl Stream {
    /// Opens the admin's stream on `base` with a ticket from `issuer` (any replica: the
    /// ticket key is kept in the database).
    async fn open(base: &str, issuer: &str) -> Self {
        let t = send(
            client()
                .post(format!("{issuer}/events/ticket"))
                .bearer_auth(ADMIN),
        )
        .await;
        assert_eq!(t.status, StatusCode::OK, "{}", t.text);
        let ticket = t.json()["ticket"].as_str().unwrap().to_owned();
        let mut res = reqwest::Client::new()
            .get(format!("{base}/events/stream?ticket={ticket}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = String::new();
            while let Ok(Some(chunk)) = res.chunk().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let id = block
                        .lines()
                        .find_map(|l| l.strip_prefix("id:")?.trim().parse::<i64>().ok());
                    let data = block
                        .lines()
                        .find_map(|l| serde_json::from_str(l.strip_prefix("data:")?.trim()).ok());
                    if let (Some(id), Some(data)) = (id, data)
                        && tx.send((id, data)).is_err()
                    {
                        return;
                    }
                }
            }
        });
        Self { events }
    }

    /// What arrives within `wait`.
    async fn read_for(&mut self, wait: Duration) -> Vec<(i64, Value)> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            out.push(e);
        }
        out
    }
}

/// Polls `check` every 50 ms until it holds or `wait` passed; whether it held.
async fn eventually<F, Fut>(wait: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + wait;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_session_minted_on_one_replica_reads_on_another_and_a_raced_code_succeeds_once() {
    let Some(r) = Replicas::start(3, &[]).await else {
        return;
    };
    for i in 0..3 {
        let ready = get(&r.url(i, "/readyz"), None).await;
        assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
        assert_eq!(ready.json()["database"], "postgresql");
    }
    let code = r.sim.state.mint_code(FINISH);
    let a = post(&r.url(0, "/signup/exchange"), None, json!({"code": code})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let session = a.json()["session"].as_str().unwrap().to_owned();
    let read = get(
        &r.url(2, &format!("/graph/{WABA}?fields=id,name")),
        Some(&session),
    )
    .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.json()["id"], WABA);
    // The record is there for the admin of any replica.
    let listed = get(&r.url(1, "/admin/onboardings"), Some(ADMIN)).await;
    assert_eq!(listed.json()["data"].as_array().unwrap().len(), 1);

    // The same code on two replicas at once: one exchange, one "already used".
    for _ in 0..5 {
        let code = r.sim.state.mint_code(FINISH);
        let (first, second) = (r.url(0, "/signup/exchange"), r.url(1, "/signup/exchange"));
        let (a, b) = tokio::join!(
            post(&first, None, json!({"code": code})),
            post(&second, None, json!({"code": code}))
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::BAD_REQUEST],
            "{} / {}",
            a.text,
            b.text
        );
    }
}

#[tokio::test]
async fn a_webhook_on_one_replica_reaches_every_replica_s_streams_once_and_drops_their_cache() {
    let Some(r) = Replicas::start(3, &[]).await else {
        return;
    };
    let mut first = Stream::open(&r.proxies[0].url, &r.proxies[0].url).await;
    // A page may get its ticket from one replica and open the stream on another.
    let mut third = Stream::open(&r.proxies[2].url, &r.proxies[1].url).await;
    // Replica 1 has the WABA in its shared answers.
    let path = format!("/graph/{WABA}?fields=id,account_review_status");
    for _ in 0..2 {
        assert_eq!(get(&r.url(0, &path), Some(ADMIN)).await.status, 200);
    }
    let reads = r.sim.calls("waba");
    for n in 0..5 {
        assert_eq!(
            deliver(&r.url(1, "/webhooks/meta"), &review(n)).await,
            StatusCode::OK
        );
    }
    // A redelivery to another replica is stored once.
    assert_eq!(
        deliver(&r.url(2, "/webhooks/meta"), &review(0)).await,
        StatusCode::OK
    );
    for stream in [&mut first, &mut third] {
        let got = stream.read_for(Duration::from_secs(3)).await;
        let ids: Vec<i64> = got.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), 5, "each change once: {got:?}");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
        assert!(got.iter().all(|(_, d)| d["waba_id"] == WABA));
    }
    // Replica 1 dropped its cached answer about the WABA when replica 2 stored the change.
    assert_eq!(get(&r.url(0, &path), Some(ADMIN)).await.status, 200);
    assert_eq!(r.sim.calls("waba"), reads + 1, "read again from Graph");
}

#[tokio::test]
async fn a_gate_closed_by_meta_on_one_replica_closes_on_all() {
    let Some(r) = Replicas::start(3, &[]).await else {
        return;
    };
    r.sim.state.add_faults(vec![
        serde_json::from_value(json!({"route": "client_wabas", "times": 1,
            "action": {"kind": "throttle", "code": 80008, "minutes": 5}}))
        .unwrap(),
    ]);
    let list = format!("/graph/{PARTNER}/client_whatsapp_business_accounts");
    let throttled = get(&r.url(0, &list), Some(ADMIN)).await;
    assert_eq!(
        throttled.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        throttled.text
    );
    let calls = r.sim.calls("client_wabas");
    // The closing travels by NOTIFY in milliseconds; a second is room for a loaded machine.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let third = get(&r.url(2, &list), Some(ADMIN)).await;
    assert_eq!(
        third.status,
        StatusCode::TOO_MANY_REQUESTS,
        "replica 3 paused the calls Meta throttled on replica 1: {}",
        third.text
    );
    let gated = get(&r.url(1, &list), Some(ADMIN)).await;
    assert_eq!(gated.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(gated.headers.contains_key("retry-after"));
    assert_eq!(
        r.sim.calls("client_wabas"),
        calls,
        "no replica asked Graph again"
    );
}

/// Sums `waba_tracker_passes_total` over the replicas still running.
async fn passes(r: &Replicas, alive: &[usize]) -> u64 {
    let mut total = 0;
    for &i in alive {
        let text = get(&r.url(i, "/metrics"), None).await.text;
        total += text
            .lines()
            .find_map(|l| l.strip_prefix("waba_tracker_passes_total "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

#[tokio::test]
async fn tracker_passes_run_once_per_interval_and_a_killed_holder_is_taken_over() {
    let Some(mut r) = Replicas::start(
        3,
        &["--tracker-interval-secs", "2", "--tracker-lease-secs", "4"],
    )
    .await
    else {
        return;
    };
    // Three replicas looking every second: one pass per 2 s interval between them.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let ran = passes(&r, &[0, 1, 2]).await;
    assert!(
        (3..=6).contains(&ran),
        "about one pass per interval across replicas, not one per replica: {ran}"
    );

    // A pass in flight: Graph is slow, and the holder of the lease is killed mid-pass.
    r.sim.state.set_latency(Duration::from_millis(2500));
    // The lease is `<until> <holder>`, the holder `<host>-<pid>-<random>`.
    let sql = r.sql().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        let row = sql
            .query_opt("SELECT value FROM tracker_state WHERE key = 'lease'", &[])
            .await
            .unwrap();
        let pid = row.and_then(|r| {
            let v: String = r.get(0);
            v.split(' ').nth(1)?.rsplit('-').nth(1)?.parse::<u32>().ok()
        });
        if let Some(pid) = pid {
            break pid;
        }
        assert!(Instant::now() < deadline, "a pass took the lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let killed = r
        .proxies
        .iter()
        .position(|p| p.pid() == pid)
        .expect("the lease names a replica");
    r.proxies[killed].stop();
    // Meanwhile a WABA is shared: the next pass, by another replica, records it once.
    r.sim.state.share(PARTNER, "1906385232743451");
    r.sim.state.set_latency(Duration::ZERO);
    let alive: Vec<usize> = (0..3).filter(|&i| i != killed).collect();
    let before = passes(&r, &alive).await;
    let events_url = r.url(alive[0], "/admin/tracker/events?after=0");
    let recorded = eventually(Duration::from_secs(15), || async {
        let events = get(&events_url, Some(ADMIN)).await.json();
        events["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|e| e["waba_id"] == "1906385232743451"))
    })
    .await;
    assert!(recorded, "another replica took the pass over");
    assert!(passes(&r, &alive).await > before);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let events = get(&events_url, Some(ADMIN)).await.json();
    let data = events["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "recorded once, nothing else: {data:?}");
    assert_eq!(data[0]["kind"], "shared");
}

#[tokio::test]
async fn a_lost_database_makes_a_replica_unready_until_it_reconnects() {
    let Some(r) = Replicas::start(2, &[]).await else {
        return;
    };
    // From the server's own database: the replicas' refuses new connections and drops the
    // open ones.
    let (admin, conn) = tokio_postgres::connect(
        &waba_testkit::postgres::server_url().unwrap(),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let name = r.database.rsplit('/').next().unwrap().to_owned();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .unwrap();
    let unready = eventually(Duration::from_secs(10), || async {
        get(&r.url(0, "/readyz"), None).await.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert!(unready, "the replica said it lost its database");
    let why = get(&r.url(0, "/readyz"), None).await;
    assert!(why.text.contains("postgresql"), "{}", why.text);
    assert!(!why.text.contains("waba-test"), "no password: {}", why.text);
    // An API call that needs the database fails cleanly meanwhile.
    let listed = get(&r.url(0, "/admin/onboardings"), Some(ADMIN)).await;
    assert!(listed.status.is_server_error(), "{}", listed.text);
    assert!(listed.text.contains("\"error\""), "{}", listed.text);

    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    let ready = eventually(Duration::from_secs(15), || async {
        get(&r.url(0, "/readyz"), None).await.status == StatusCode::OK
    })
    .await;
    assert!(ready, "reconnected");
    // And it hears the other replica again.
    let mut stream = Stream::open(&r.proxies[0].url, &r.proxies[0].url).await;
    assert_eq!(
        deliver(&r.url(1, "/webhooks/meta"), &review(7)).await,
        StatusCode::OK
    );
    assert_eq!(stream.read_for(Duration::from_secs(3)).await.len(), 1);
}

#[tokio::test]
async fn the_database_password_never_shows() {
    let Some(r) = Replicas::start(1, &[]).await else {
        return;
    };
    let password = r
        .database
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(user, _)| user.split_once(':'))
        .map(|(_, p)| p.to_owned())
        .expect("the test URL has a password");
    for path in ["/readyz", "/metrics", "/healthz"] {
        let a = get(&r.url(0, path), None).await;
        assert!(!a.text.contains(&password), "{path}: {}", a.text);
    }
    let said = r.proxies[0].output().join("\n");
    assert!(!said.contains(&password), "{said}");
    // A wrong password: the proxy does not start, and says why without either password.
    let ca = waba_testkit::postgres::ca_file()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let wrong = r.database.replacen(&password, "not-the-password-5e1d", 1);
    let failed = start_up_failure(&r.sim.url, &wrong, &["--database-ca-file", &ca]);
    assert!(
        failed.contains("password authentication failed"),
        "{failed}"
    );
    assert!(failed.contains("postgres://waba@127.0.0.1"), "{failed}");
    for secret in [password.as_str(), "not-the-password-5e1d"] {
        assert!(!failed.contains(secret), "{failed}");
    }
    // Without the server's CA, the TLS handshake fails and says why.
    let untrusted = start_up_failure(&r.sim.url, &r.database, &[]);
    assert!(untrusted.contains("UnknownIssuer"), "{untrusted}");
    assert!(!untrusted.contains(&password), "{untrusted}");
}

/// Everything a proxy on `database` printed before it stopped (it must not start).
fn start_up_failure(graph_url: &str, database: &str, extra: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_waba-proxy"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--graph-url",
            graph_url,
            "--system-user-token",
            DEMO_SYSTEM,
            "--business-id",
            PARTNER,
            "--database",
            database,
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(!out.status.success(), "it started");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
