//! `cargo xtask demo`: the product on the built-in Graph simulator, no Meta account needed.

use crate::project_root;
use crate::run::{Res, cargo, run};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Children that are stopped when the demo ends, however it ends.
#[derive(Default)]
pub struct Children(Vec<Child>);

impl Children {
    /// Stops `child` with the others.
    pub fn push(&mut self, child: Child) {
        self.0.push(child);
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A loopback port free at the time of asking.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Waits up to 30 s for `child` to listen on loopback `port`; an error if it exits first.
pub fn wait_listening(port: u16, child: &mut Child, name: &str) -> Res {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{name} exited early ({status})"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{name} did not listen on port {port} within 30 s"))
}

/// The demo's System User token: the one `tests/scenarios/demo.json` gives its partner.
pub const DEMO_SYSTEM_USER_TOKEN: &str = "EAASimSystemUserTokenDemo0000000000000000000000001";
/// The partner business of the demo scenario.
pub const DEMO_BUSINESS_ID: &str = "805021500648488";
/// The admin token the demo proxy accepts (for the partner console).
pub const DEMO_ADMIN_TOKEN: &str = "demo-admin-token";
/// The simulator's app (`tests/scenarios/demo.json`).
pub const DEMO_APP_ID: &str = "670843887433847";
/// The simulator app's secret.
pub const DEMO_APP_SECRET: &str = "sim-app-secret-demo-5f1e0c9a";
/// The demo's webhook verify token (what you would enter in Meta's app dashboard).
pub const DEMO_WEBHOOK_VERIFY_TOKEN: &str = "demo-webhook-verify-token";
/// A token key for the demo only (32 bytes, base64): never use a published key for real.
pub const DEMO_TOKEN_KEY: &str = "ZGVtby1vbmx5LXRva2VuLWtleS0zMi1ieXRlcyEhISE=";

/// Ports of a running demo.
#[derive(Clone, Copy)]
pub struct Ports {
    /// waba-proxy.
    pub proxy: u16,
    /// graph-sim.
    pub sim: u16,
}

impl Ports {
    /// Two free loopback ports.
    pub fn free() -> Result<Self, String> {
        Ok(Ports {
            proxy: free_port()?,
            sim: free_port()?,
        })
    }
}

/// Starts the built graph-sim (`target/debug`) with the demo scenario on `ports.sim`, sending
/// Meta's webhooks to a proxy on `ports.proxy`, and waits until it listens.
pub fn start_sim(ports: Ports) -> Result<Child, String> {
    let mut sim = Command::new(project_root().join("target/debug/graph-sim"))
        .arg("--scenario")
        .arg(project_root().join("tests/scenarios/demo.json"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", ports.sim))
        // Meta's webhooks (a review decided a few seconds after the account is first shown).
        .arg("--webhook-url")
        .arg(format!("http://127.0.0.1:{}/webhooks/meta", ports.proxy))
        .spawn()
        .map_err(|e| format!("cannot start graph-sim: {e}"))?;
    if let Err(e) = wait_listening(ports.sim, &mut sim, "graph-sim") {
        let _ = sim.kill();
        let _ = sim.wait();
        return Err(e);
    }
    Ok(sim)
}

/// Builds graph-sim, waba-proxy and the test tools' binaries (`target/debug`).
pub fn build_binaries() -> Res {
    run(cargo(&[
        "build",
        "-p",
        "waba-testkit",
        "-p",
        "waba-proxy",
        "--bins",
    ]))
}

/// Builds and starts graph-sim and waba-proxy (with `proxy_args` added).
pub fn start(ports: Ports, proxy_args: &[String]) -> Result<Children, String> {
    build_binaries()?;
    if !crate::package::package_dir()
        .join("web/waba_onboard_bg.wasm")
        .exists()
    {
        crate::package::build()?;
    }
    let site = crate::site::prepare(
        &format!("http://127.0.0.1:{}", ports.sim),
        &format!("http://127.0.0.1:{}", ports.proxy),
    )?;
    let bin = project_root().join("target/debug");
    let mut children = Children(Vec::new());
    children.0.push(start_sim(ports)?);
    let mut proxy = Command::new(bin.join("waba-proxy"));
    proxy
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", ports.proxy))
        .arg("--graph-url")
        .arg(format!("http://127.0.0.1:{}", ports.sim))
        .args(["--business-id", DEMO_BUSINESS_ID, "--log-format", "text"])
        .env("WABA_SYSTEM_USER_TOKEN", DEMO_SYSTEM_USER_TOKEN)
        .env("WABA_ADMIN_TOKEN", DEMO_ADMIN_TOKEN)
        // The demo's webhook receiver listens on loopback; retries come quickly (then once a
        // minute for half an hour), so a receiver stopped and started again gets its backlog
        // while you watch.
        .arg("--outbound-allow-private-networks")
        .arg("--outbound-retry-schedule")
        .arg(format!("2s,5s,10s,30s{}", ",1m".repeat(26)))
        .args(["--outbound-circuit-cooldown", "5s"])
        .args(["--outbound-circuit-max-cooldown", "30s"])
        .args(proxy_args);
    proxy.arg("--www").arg(&site);
    // Records, sessions and the tracker persist across demo runs in target/demo/. The code
    // flow uses the simulator's app and a demo-only token key; the tracker looks every minute.
    let data = crate::project_root().join("target/demo");
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let database = data.join("waba-onboard.db");
    if !database.exists() {
        seed_funnel(&database)?;
    }
    proxy
        .arg("--database")
        .arg(&database)
        .args(["--app-id", DEMO_APP_ID, "--tracker-interval-secs", "60"])
        .env("WABA_APP_SECRET", DEMO_APP_SECRET)
        .env("WABA_TOKEN_KEY", DEMO_TOKEN_KEY)
        .env("WABA_WEBHOOK_VERIFY_TOKEN", DEMO_WEBHOOK_VERIFY_TOKEN);
    let mut proxy = proxy
        .spawn()
        .map_err(|e| format!("cannot start waba-proxy: {e}"))?;
    wait_listening(ports.proxy, &mut proxy, "waba-proxy")?;
    children.0.push(proxy);
    Ok(children)
}

/// The words that mark the demo's own webhook endpoint.
const RECEIVER_DESCRIPTION: &str = "demo receiver (cargo xtask demo)";

/// One request to the proxy on `port` as the demo's admin: the answer's status and body.
fn admin_call(port: u16, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    let mut conn = crate::bench::connect(port)?;
    let auth = format!("Bearer {DEMO_ADMIN_TOKEN}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let answer = crate::bench::exchange(&mut conn, port, method, path, &headers, body.as_bytes())?;
    Ok((answer.status, answer.body))
}

/// The demo's webhook endpoint pointed at a receiver on `receiver_port`, with a new secret
/// (made by the proxy, shown once): kept in `target/demo/webhook-secret` for the receiver.
fn demo_endpoint(proxy_port: u16, receiver_port: u16) -> Result<String, String> {
    let url = format!("http://127.0.0.1:{receiver_port}/hooks/waba");
    let (_, list) = admin_call(proxy_port, "GET", "/admin/webhook-endpoints", "")?;
    let list: serde_json::Value =
        serde_json::from_str(&list).map_err(|e| format!("endpoints: {e}: {list}"))?;
    let existing = list["data"].as_array().and_then(|l| {
        l.iter()
            .find(|e| e["description"] == RECEIVER_DESCRIPTION)
            .and_then(|e| e["id"].as_i64())
    });
    let (status, answer) = match existing {
        Some(id) => {
            let moved = serde_json::json!({"url": url, "enabled": true}).to_string();
            admin_call(
                proxy_port,
                "PATCH",
                &format!("/admin/webhook-endpoints/{id}"),
                &moved,
            )?;
            admin_call(
                proxy_port,
                "POST",
                &format!("/admin/webhook-endpoints/{id}/secret"),
                "",
            )?
        }
        None => {
            let new = serde_json::json!({
                "url": url, "events": ["*"], "description": RECEIVER_DESCRIPTION,
            })
            .to_string();
            admin_call(proxy_port, "POST", "/admin/webhook-endpoints", &new)?
        }
    };
    let secret = serde_json::from_str::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| v["secret"].as_str().map(str::to_owned))
        .ok_or_else(|| format!("the demo endpoint was refused ({status}): {answer}"))?;
    let file = project_root().join("target/demo/webhook-secret");
    std::fs::write(&file, &secret).map_err(|e| format!("{}: {e}", file.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(secret)
}

/// Starts the demo's webhook receiver on `port`, verifying with the demo endpoint's secret,
/// logging to `target/demo/webhooks.jsonl`.
pub fn start_receiver(proxy_port: u16, port: u16) -> Result<Child, String> {
    let secret = demo_endpoint(proxy_port, port)?;
    let mut receiver = Command::new(project_root().join("target/debug/webhook-receiver"))
        .args(["--port", &port.to_string(), "--log"])
        .arg(project_root().join("target/demo/webhooks.jsonl"))
        .env("WEBHOOK_SECRET", secret)
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start webhook-receiver: {e}"))?;
    if let Err(e) = wait_listening(port, &mut receiver, "webhook-receiver") {
        let _ = receiver.kill();
        let _ = receiver.wait();
        return Err(e);
    }
    Ok(receiver)
}

/// Writes a month of synthetic onboardings into the new demo database (`funnel-gen`, before
/// the proxy opens it), so the console's funnel has something to show; says what it wrote.
fn seed_funnel(database: &std::path::Path) -> Res {
    let out = Command::new(project_root().join("target/debug/funnel-gen"))
        .arg("--database")
        .arg(database)
        .output()
        .map_err(|e| format!("cannot run funnel-gen: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "funnel-gen failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let truth: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("funnel-gen printed no ground truth: {e}"))?;
    println!(
        "demo: wrote {} synthetic onboardings of the last 30 days ({} finished) for the console's funnel",
        truth["attempts"], truth["finished"]
    );
    Ok(())
}

fn page_url(ports: Ports) -> String {
    format!("http://127.0.0.1:{}/signup.html", ports.proxy)
}

/// `cargo xtask demo [--smoke] [--port N]`.
pub fn run_demo(args: &[String]) -> Res {
    let mut smoke_only = false;
    let mut port: u16 = 8080;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => smoke_only = true,
            "--port" => {
                port = it
                    .next()
                    .and_then(|p| p.parse().ok())
                    .filter(|p| *p < 65_000)
                    .ok_or("--port needs a port number below 65000")?;
            }
            other => return Err(format!("unknown demo option `{other}`")),
        }
    }
    if smoke_only {
        return smoke();
    }
    let ports = Ports {
        proxy: port,
        sim: port + 10,
    };
    let mut children = start(ports, &[])?;
    // The receiver may be stopped and started again by hand: it is stopped with the demo
    // but not watched.
    let receiver_port = port + 20;
    let mut receiver = Children::default();
    receiver.push(start_receiver(ports.proxy, receiver_port)?);
    // The React binding's page: the fixture app built from the package's tarball, served at
    // /react/ (it takes the Meta app and the simulator's SDK from the URL's fragment).
    crate::test::build_fixture("react-app")?;
    crate::site::copy_dir(
        &project_root().join("tests/fixtures/react-app/dist"),
        &crate::site::site_dir().join("react"),
    )?;
    let p = ports.proxy;
    println!();
    println!(
        "waba-onboard demo is running on the built-in Graph simulator (tests/scenarios/demo.json)."
    );
    println!("  signup page:  {}", page_url(ports));
    println!(
        "                click the button: the simulated Meta dialog lets you pick how the business signs up"
    );
    println!(
        "                its language switch (or ?locale=es, pt-BR, id, hi, ar) changes the panel's language"
    );
    println!(
        "  React page:   http://127.0.0.1:{p}/react/index.html#app={DEMO_APP_ID}&config=sim-config-1&sdk=http://127.0.0.1:{s}/_sim/sdk.js&origin=http://127.0.0.1:{s}",
        s = ports.sim
    );
    println!(
        "  console:      http://127.0.0.1:{p}/console.html  (admin token: {DEMO_ADMIN_TOKEN})"
    );
    println!("  scenario:     http://127.0.0.1:{}/_sim/", ports.sim);
    println!(
        "  webhooks:     http://127.0.0.1:{receiver_port}/  signed events (Standard Webhooks) as signups and their steps progress"
    );
    println!(
        "                stop it (kill {pid}), sign up meanwhile, start it again and the backlog arrives in order:",
        pid = receiver.0.first().map(Child::id).unwrap_or_default()
    );
    println!(
        "                WEBHOOK_SECRET=$(cat target/demo/webhook-secret) target/debug/webhook-receiver --port {receiver_port}"
    );
    println!("                the console's Webhooks view shows every delivery and attempt");
    println!("  through the proxy:");
    println!(
        "    curl 'http://127.0.0.1:{p}/graph/debug_token?input_token=EAASimBusinessTokenFinish000000000000000000000001'"
    );
    println!(
        "    curl -H 'Authorization: Bearer EAASimBusinessTokenFinish000000000000000000000001' \\"
    );
    println!(
        "      'http://127.0.0.1:{p}/graph/102289599326934?fields=id,name,account_review_status,phone_numbers%7Bdisplay_phone_number,status%7D'"
    );
    println!("    curl -H 'Authorization: Bearer {DEMO_ADMIN_TOKEN}' \\");
    println!(
        "      'http://127.0.0.1:{p}/graph/{DEMO_BUSINESS_ID}/client_whatsapp_business_accounts?limit=3'"
    );
    println!("Press Ctrl-C to stop.");
    loop {
        for c in &mut children.0 {
            if let Ok(Some(status)) = c.try_wait() {
                return Err(format!("a demo process stopped ({status})"));
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Starts the demo on free ports, drives it once in headless Chromium, and stops it.
pub fn smoke() -> Res {
    let ports = Ports::free()?;
    let _children = start(ports, &[])?;
    let receiver_port = free_port()?;
    let _receiver = {
        let mut r = Children::default();
        r.push(start_receiver(ports.proxy, receiver_port)?);
        r
    };
    let shot = project_root().join("artifacts/demo.png");
    let mut check = Command::new(project_root().join("target/debug/smoke"));
    check
        .arg("--url")
        .arg(page_url(ports))
        .arg("--sim-url")
        .arg(format!("http://127.0.0.1:{}", ports.sim))
        .args(["--flow", "finish", "--min", "2"])
        // The scenario's webhook approves the pending account a few seconds later.
        .args([
            "--then-selector",
            "[data-account-id=\"101569239400667\"] .waba-badge",
            "--then-text",
            "APPROVED",
            "--screenshot",
        ])
        .arg(&shot)
        .env("CHROMEDRIVER", crate::setup::chromedriver())
        .env("CHROMIUM", crate::setup::chromium());
    run(check)?;
    received(
        receiver_port,
        &["onboarding.finished", "waba.review_decided"],
    )
}

/// Waits (up to 20 s) until the receiver on `port` lists a verified event of each of `kinds`.
fn received(port: u16, kinds: &[&str]) -> Res {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut conn = crate::bench::connect(port)?;
        let answer = crate::bench::exchange(&mut conn, port, "GET", "/_events", &[], b"")?;
        let events: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
        let verified = |kind: &str| {
            events
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["type"] == kind && e["verified"] == true)
        };
        let missing: Vec<&&str> = kinds.iter().filter(|k| !verified(k)).collect();
        if missing.is_empty() {
            println!("demo: the webhook receiver verified {}", kinds.join(", "));
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the demo's webhook receiver never got a verified {missing:?}: {}",
                answer.body
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
