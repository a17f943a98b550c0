//! The partner's end of the proxy's outbound webhooks (Standard Webhooks), for the tests and
//! the demo: [`server`] is the `webhook-receiver` binary's HTTP side, [`Receiver`] runs that
//! binary as a child process, and [`Receiver::verify_with_node`] and
//! [`Receiver::verify_with_python`] check its log again with the official libraries
//! (`tests/outbound/verify.mjs`, `tests/outbound/verify.py`).

pub mod server;

pub use server::{Event, Mode};

use crate::harness::{Running, project_root, target_bin};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// What `webhook-receiver` prints first on stdout, followed by its base URL.
pub const ANNOUNCEMENT: &str = "webhook-receiver listening on ";

/// The signature Standard Webhooks puts in `webhook-signature` for one key: `v1,` and the
/// base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed by the base64-decoded part of
/// `secret` after `whsec_`. `None` when the secret is not base64 or decodes to nothing.
///
/// Written from the specification (`spec/standard-webhooks.md`), independently of both the
/// proxy's signer and the `standardwebhooks` crate the receiver verifies with.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = STANDARD.decode(encoded).ok().filter(|k| !k.is_empty())?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// What a reference verifier (`tests/outbound/verify.*`) found in a log file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Verification {
    /// Lines whose delivery the library verified.
    pub verified: usize,
    /// The `webhook-id` of every line it refused, in file order (a line with no id is named
    /// `line N`).
    pub failed: Vec<String>,
    /// The failed lines received more than 5 minutes before the verifier ran: the library
    /// measures the timestamp against its own clock, so these could not be judged.
    #[serde(default)]
    pub late: Vec<String>,
    /// The library's reason for each failed id (the last one when an id failed twice).
    #[serde(default)]
    pub errors: BTreeMap<String, String>,
    /// Whether the verifier exited 0 (it does when every line verified and there was one).
    #[serde(skip)]
    pub passed: bool,
    /// What the verifier wrote on stderr.
    #[serde(skip)]
    pub stderr: String,
}

/// A running `webhook-receiver` process with a log file of its own; killed (and its log
/// removed) on drop.
pub struct Receiver {
    process: Running,
    log: PathBuf,
    secret: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("url", &self.process.url)
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

fn http_error(e: reqwest::Error) -> std::io::Error {
    std::io::Error::other(e)
}

impl Receiver {
    /// Starts this workspace's built `webhook-receiver` (next to the running test binary:
    /// cargo builds it before the tests of `waba-testkit`; other crates' tests use
    /// [`Receiver::start_bin`] with their `CARGO_BIN_EXE_` path, or build it first).
    pub fn start(secret: &str) -> std::io::Result<Self> {
        Self::start_bin(&target_bin("webhook-receiver"), secret)
    }

    /// Starts the `webhook-receiver` binary at `bin` on a free loopback port, verifying with
    /// `secret` (handed over in `WEBHOOK_SECRET`, so it shows in no command line) and logging
    /// to a new file in the temp folder.
    pub fn start_bin(bin: &Path, secret: &str) -> std::io::Result<Self> {
        if !bin.exists() {
            return Err(std::io::Error::other(format!(
                "{} is not built: `cargo build -p waba-testkit --bin webhook-receiver` \
                 (`cargo test --workspace` and `cargo xtask test` build it)",
                bin.display()
            )));
        }
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log =
            std::env::temp_dir().join(format!("webhook-receiver-{}-{n}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let mut cmd = Command::new(bin);
        cmd.arg("--port")
            .arg("0")
            .arg("--log")
            .arg(&log)
            .env("WEBHOOK_SECRET", secret);
        let process = Running::start(cmd, ANNOUNCEMENT, Duration::from_secs(20))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(http_error)?;
        Ok(Self {
            process,
            log,
            secret: secret.to_owned(),
            client,
        })
    }

    /// Its base URL, e.g. `http://127.0.0.1:40123`; deliveries go to `POST {url}/`.
    pub fn url(&self) -> &str {
        &self.process.url
    }

    /// Its log file: one JSON line per delivery (see the `webhook-receiver` binary).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The process (its output, its pid).
    pub fn process(&self) -> &Running {
        &self.process
    }

    /// Sets how it answers deliveries from now on.
    pub async fn set_mode(&self, mode: Mode) -> std::io::Result<()> {
        let res = self
            .client
            .post(format!("{}/_control/mode", self.url()))
            .json(&mode)
            .send()
            .await
            .map_err(http_error)?;
        if res.status().is_success() {
            Ok(())
        } else {
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            Err(std::io::Error::other(format!(
                "POST /_control/mode answered {status}: {text}"
            )))
        }
    }

    /// The events it received, in the order they first arrived, one per `webhook-id`.
    pub async fn events(&self) -> std::io::Result<Vec<Event>> {
        self.client
            .get(format!("{}/_events", self.url()))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(http_error)?
            .json()
            .await
            .map_err(http_error)
    }

    /// Verifies every line of the log with npm's `standardwebhooks` (`tests/outbound/verify.mjs`
    /// in Node), installing `tests/outbound/node_modules` from its lock file first if it is
    /// missing. Call it within 5 minutes of the deliveries (see [`Verification::late`]).
    pub fn verify_with_node(&self) -> std::io::Result<Verification> {
        let dir = outbound_dir();
        node_modules(&dir)?;
        let mut node = Command::new("node");
        node.arg(dir.join("verify.mjs"));
        self.verify(node, "node")
    }

    /// Verifies every line of the log with PyPI's `standardwebhooks` (`tests/outbound/verify.py`
    /// in the venv `target/venv`, where `cargo xtask setup` installs it).
    pub fn verify_with_python(&self) -> std::io::Result<Verification> {
        let python = project_root().join("target/venv/bin/python3");
        if !python.exists() {
            return Err(std::io::Error::other(format!(
                "no Python venv at {}: `cargo xtask setup` makes it (`cargo xtask test` does too)",
                python.display()
            )));
        }
        let mut py = Command::new(python);
        py.arg(outbound_dir().join("verify.py"));
        self.verify(py, "python")
    }

    /// Runs a verifier (`cmd`, its script given) over the log and reads its summary.
    fn verify(&self, mut cmd: Command, name: &str) -> std::io::Result<Verification> {
        let out = cmd
            .arg(&self.log)
            .env("WEBHOOK_SECRET", &self.secret)
            .current_dir(project_root())
            .output()
            .map_err(|e| std::io::Error::other(format!("cannot run the {name} verifier: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let summary = stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str::<Verification>(l).ok());
        match summary {
            Some(v) => Ok(Verification {
                passed: out.status.success(),
                stderr,
                ..v
            }),
            None => Err(std::io::Error::other(format!(
                "the {name} verifier printed no summary ({}); stdout:\n{stdout}\nstderr:\n{stderr}",
                out.status
            ))),
        }
    }
}

/// `tests/outbound/`: the verifiers and their Node packages.
fn outbound_dir() -> PathBuf {
    project_root().join("tests/outbound")
}

/// Installs `dir`'s Node packages with `npm ci` once, unless `standardwebhooks` is already
/// there (then nothing runs, so it works offline; `cargo xtask setup` reinstalls when the lock
/// file changes).
fn node_modules(dir: &Path) -> std::io::Result<()> {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _once = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if dir
        .join("node_modules/standardwebhooks/package.json")
        .exists()
    {
        return Ok(());
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .map_err(|e| std::io::Error::other(format!("cannot run npm: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "`npm ci` in {} failed ({}): {}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.process.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}
