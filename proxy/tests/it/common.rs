//! Shared by the proxy's integration tests: a graph-sim in this process, a real
//! `waba-proxy` process in front of it, and an HTTP client.

// Test helpers: names say what they hold; an unwrap that fails is a failed test.
#![allow(missing_docs, clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;
use waba_testkit::harness::{Running, SimServer, scenario, start_proxy};
use waba_testkit::sim::scenario::World;

pub const PARTNER: &str = "805021500648488";
pub const DEMO_SYSTEM: &str = "EAASimSystemUserTokenDemo0000000000000000000000001";
pub const LARGE_SYSTEM: &str = "EAASimSystemUserTokenLarge000000000000000000000001";
pub const DEMO_APP_SECRET: &str = "sim-app-secret-demo-5f1e0c9a";
pub const ADMIN: &str = "admin-token-for-tests-7c1d9e0b4a";
pub const FINISH: &str = "EAASimBusinessTokenFinish000000000000000000000001";
pub const EXPIRED: &str = "EAASimBusinessTokenExpired0000000000000000000006";
pub const REVOKED: &str = "EAASimBusinessTokenRevoked0000000000000000000007";
pub const BIG_ID: &str = "EAASimBusinessTokenBigId000000000000000000000003";

/// The demo app's id.
pub const APP_ID: &str = "670843887433847";
/// A token key for tests (32 bytes, base64).
pub const TOKEN_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

/// The code flow's flags (the demo app, its secret, a token key), then `extra`, then
/// `--database db`.
pub fn code_flow_args(db: &str, extra: &[&str]) -> Vec<String> {
    let mut flags = vec![
        "--app-id",
        APP_ID,
        "--app-secret",
        DEMO_APP_SECRET,
        "--token-key",
        TOKEN_KEY,
    ];
    flags.extend_from_slice(extra);
    with_database(&flags, db)
}

/// A simulator and a proxy in front of it.
pub struct Stack {
    pub sim: SimServer,
    pub proxy: Running,
}

impl Stack {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.proxy.url)
    }
}

pub fn world(name: &str) -> World {
    World::load(&scenario(name)).unwrap()
}

/// The proxy for `world` with the scenario's System User token, the partner business and the
/// admin token, plus `extra` flags.
pub fn stack(world: World, extra: &[&str]) -> Stack {
    stack_with_code_ttl(world, extra, Duration::from_secs(30))
}

/// Like [`stack`], with graph-sim's authorization codes living `code_ttl`.
pub fn stack_with_code_ttl(world: World, extra: &[&str], code_ttl: Duration) -> Stack {
    let system = world.scenario.system_user_token.clone();
    let sim = SimServer::start_world_with(world, code_ttl).unwrap();
    let mut args = vec![
        "--system-user-token",
        system.as_str(),
        "--business-id",
        PARTNER,
        "--admin-token",
        ADMIN,
    ];
    if !extra.contains(&"--upstream-timeout-ms") {
        args.extend_from_slice(&["--upstream-timeout-ms", "1500"]);
    }
    if !extra.contains(&"--request-timeout-ms") {
        args.extend_from_slice(&["--request-timeout-ms", "4000"]);
    }
    args.extend_from_slice(extra);
    let proxy = start_proxy(env!("CARGO_BIN_EXE_waba-proxy").as_ref(), &sim.url, &args).unwrap();
    Stack { sim, proxy }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// An answer: status, headers, body text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The Graph error envelope's `error`.
    pub fn error(&self) -> waba_graph::GraphError {
        serde_json::from_str::<waba_graph::ErrorEnvelope>(&self.text)
            .unwrap_or_else(|e| panic!("not an error envelope ({e}): {}", self.text))
            .error
    }
}

pub async fn get(url: &str, token: Option<&str>) -> Answer {
    let mut req = client().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    send(req).await
}

pub async fn send(req: reqwest::RequestBuilder) -> Answer {
    let res = req.send().await.unwrap();
    Answer {
        status: res.status(),
        headers: res.headers().clone(),
        text: res.text().await.unwrap(),
    }
}

pub fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A proxy in front of `graph_url` with the demo's System User, the partner and the admin
/// token, plus `extra` (a restart uses the same `--database`).
pub fn proxy_for(graph_url: &str, extra: &[&str]) -> Running {
    let mut args = vec![
        "--system-user-token",
        DEMO_SYSTEM,
        "--business-id",
        PARTNER,
        "--admin-token",
        ADMIN,
    ];
    args.extend_from_slice(extra);
    waba_testkit::harness::start_proxy(env!("CARGO_BIN_EXE_waba-proxy").as_ref(), graph_url, &args)
        .unwrap()
}

/// `flags` followed by `--database db`, as owned strings.
pub fn with_database(flags: &[&str], db: &str) -> Vec<String> {
    flags
        .iter()
        .copied()
        .chain(["--database", db])
        .map(str::to_owned)
        .collect()
}
