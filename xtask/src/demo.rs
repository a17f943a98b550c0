//! `cargo xtask demo`: the product on the built-in Graph simulator, no Meta account needed.

use crate::project_root;
use crate::run::{Res, cargo, run};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Children that are stopped when the demo ends, however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn wait_listening(port: u16, child: &mut Child, name: &str) -> Res {
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

/// Builds and starts the demo's processes on `sim_port`.
fn start(sim_port: u16) -> Result<Children, String> {
    run(cargo(&["build", "-p", "tests", "--bins"]))?;
    let bin = project_root().join("target/debug");
    let mut sim = Command::new(bin.join("graph-sim"))
        .arg("--scenario")
        .arg(project_root().join("tests/scenarios/demo.json"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{sim_port}"))
        .spawn()
        .map_err(|e| format!("cannot start graph-sim: {e}"))?;
    wait_listening(sim_port, &mut sim, "graph-sim")?;
    Ok(Children(vec![sim]))
}

fn page_url(sim_port: u16) -> String {
    format!("http://127.0.0.1:{sim_port}/_sim/")
}

/// `cargo xtask demo [--smoke] [--port N]`.
pub fn run_demo(args: &[String]) -> Res {
    let mut smoke_only = false;
    let mut port: u16 = 8090;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => smoke_only = true,
            "--port" => {
                port = it
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or("--port needs a port number")?;
            }
            other => return Err(format!("unknown demo option `{other}`")),
        }
    }
    if smoke_only {
        return smoke();
    }
    let mut children = start(port)?;
    println!();
    println!("waba-onboard demo is running on the built-in Graph simulator.");
    println!("  open:   {}", page_url(port));
    println!("  graph:  http://127.0.0.1:{port}/v26.0/...  (scenario tests/scenarios/demo.json)");
    println!("Press Ctrl-C to stop.");
    let status = children.0[0].wait().map_err(|e| e.to_string())?;
    Err(format!("graph-sim stopped ({status})"))
}

/// Starts the demo on free ports, drives it once in headless Chromium, and stops it.
pub fn smoke() -> Res {
    let port = free_port()?;
    let _children = start(port)?;
    let shot = project_root().join("artifacts/demo.png");
    let mut check = Command::new(project_root().join("target/debug/smoke"));
    check
        .arg("--url")
        .arg(page_url(port))
        .args(["--min", "5", "--screenshot"])
        .arg(&shot)
        .env("CHROMEDRIVER", crate::setup::chromedriver())
        .env("CHROMIUM", crate::setup::chromium());
    run(check)
}
