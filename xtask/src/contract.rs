//! `cargo xtask test contract`: the proxy's OpenAPI contract checked by Schemathesis against a
//! live `waba-proxy` in front of `graph-sim`, for every route and every kind of credential.
//!
//! The step starts both (the proxy with the code flow, the pipeline, webhooks and an admin
//! token), obtains one credential of each kind for real (the admin token it was given, a
//! business token the simulator issued and the proxy checks with `debug_token`, a code-flow
//! session from a code the simulator minted and the proxy exchanged, stream tickets), then
//! runs Schemathesis once per bearer kind and once without a credential, with every check
//! `tests/contract/schemathesis.toml` does not turn off (it says why), its webhooks signed
//! with the app secret by `tests/contract/signed_webhooks.py`. Any failure fails the step;
//! every process it started is stopped however it ends.

use crate::bench::{connect, exchange, read_head};
use crate::demo::{
    Children, DEMO_APP_ID, DEMO_APP_SECRET, DEMO_BUSINESS_ID, DEMO_SYSTEM_USER_TOKEN,
    DEMO_TOKEN_KEY, Ports,
};
use crate::project_root;
use crate::run::{Res, Totals};
use crate::test::counted;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The admin token of the proxy under test.
const ADMIN_TOKEN: &str = "contract-admin-token-4e1f9b";
/// The proxy's webhook verify token.
const VERIFY_TOKEN: &str = "contract-verify-token-0c7a2d";
/// A business token the demo scenario's simulator issues to a business that finished
/// Embedded Signup (`tests/scenarios/demo.json`): the token flow's signup credential.
const BUSINESS_TOKEN: &str = "EAASimBusinessTokenFinish000000000000000000000001";
/// Test cases per operation and phase of a run: the step takes about three minutes on two
/// cores.
const MAX_EXAMPLES: &str = "20";
/// The most one run may take before it is stopped and fails (Schemathesis's own `--max-time`
/// is a budget it spends in full, not a ceiling).
const RUN_LIMIT: Duration = Duration::from_secs(240);
/// Seconds an answer may take. It also ends the one answer that never ends: when a run's
/// stateful phase follows a ticket to `GET /events/stream`, Schemathesis reads the events
/// that came until then and checks each against the contract.
const REQUEST_TIMEOUT: &str = "3";
/// The seed of every run, so a failure replays the same way (`st replay` with its id, or
/// this seed).
const SEED: &str = "20261204";

/// Where the step keeps its database, logs and Schemathesis's own files.
fn work_dir() -> PathBuf {
    project_root().join("target/contract")
}

/// The step: each run, and the stream check, counted as one test.
pub fn test(totals: &mut Totals) -> Res {
    crate::setup::python_tools()?;
    crate::demo::build_binaries()?;
    let dir = work_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ports = Ports::free()?;
    let mut children = Children::default();
    children.push(crate::demo::start_sim(ports)?);
    children.push(start_proxy(ports)?);
    let credentials = Credentials::obtain(ports)?;
    let mut results = Vec::new();
    let stream = counted(credentials.stream_opens(ports.proxy), totals);
    results.push(stream.map_err(|e| format!("the event stream: {e}")));
    for (kind, bearer) in [
        ("no credential", None),
        ("admin token", Some(ADMIN_TOKEN)),
        ("business token", Some(BUSINESS_TOKEN)),
        ("code-flow session", Some(credentials.session.as_str())),
    ] {
        let result = counted(schemathesis(ports.proxy, kind, bearer), totals);
        results.push(result.map_err(|e| format!("{kind}: {e}")));
    }
    let leaked = counted(secrets_stay_out_of_the_log(&credentials), totals);
    results.push(leaked);
    drop(children);
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// The proxy log's path.
fn proxy_log() -> PathBuf {
    work_dir().join("proxy.log")
}

/// Starts the built `waba-proxy` on `ports.proxy` in front of the simulator, with every
/// feature on, its output in `target/contract/proxy.log`.
fn start_proxy(ports: Ports) -> Result<std::process::Child, String> {
    let log = std::fs::File::create(proxy_log()).map_err(|e| e.to_string())?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let mut proxy = Command::new(project_root().join("target/debug/waba-proxy"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", ports.proxy))
        .arg("--graph-url")
        .arg(format!("http://127.0.0.1:{}", ports.sim))
        .args(["--business-id", DEMO_BUSINESS_ID, "--app-id", DEMO_APP_ID])
        .args(["--log-format", "text"])
        .arg("--database")
        .arg(work_dir().join("contract.db"))
        // Secrets through the environment, as an operator would.
        .env("WABA_SYSTEM_USER_TOKEN", DEMO_SYSTEM_USER_TOKEN)
        .env("WABA_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("WABA_APP_SECRET", DEMO_APP_SECRET)
        .env("WABA_TOKEN_KEY", DEMO_TOKEN_KEY)
        .env("WABA_WEBHOOK_VERIFY_TOKEN", VERIFY_TOKEN)
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err))
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start waba-proxy: {e}"))?;
    if let Err(e) = crate::demo::wait_listening(ports.proxy, &mut proxy, "waba-proxy") {
        let _ = proxy.kill();
        let _ = proxy.wait();
        return Err(e);
    }
    Ok(proxy)
}

/// The credentials obtained from the running stack.
struct Credentials {
    /// The code-flow session the proxy gave for a code the simulator minted.
    session: String,
}

/// A JSON answer's string field.
fn field(body: &str, name: &str) -> Result<String, String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get(name).and_then(|f| f.as_str()).map(str::to_owned))
        .ok_or_else(|| format!("no `{name}` in the answer {body}"))
}

/// A POST of JSON `body` to loopback `port`, and its answer's text when it is a 200.
fn post(port: u16, path: &str, bearer: Option<&str>, body: &str) -> Result<String, String> {
    let mut conn = connect(port)?;
    let auth = bearer.map(|b| format!("Bearer {b}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    let answer = exchange(&mut conn, port, "POST", path, &headers, body.as_bytes())?;
    match answer.status {
        200 => Ok(answer.body),
        status => Err(format!("POST {path} answered {status}: {}", answer.body)),
    }
}

impl Credentials {
    /// Checks the business token through the proxy (`debug_token`), and exchanges a code the
    /// simulator mints for it into a session.
    fn obtain(ports: Ports) -> Result<Self, String> {
        let mut conn = connect(ports.proxy)?;
        let path = format!("/graph/debug_token?input_token={BUSINESS_TOKEN}");
        let checked = exchange(&mut conn, ports.proxy, "GET", &path, &[], b"")?;
        if checked.status != 200 {
            return Err(format!(
                "the business token was refused ({}): {}",
                checked.status, checked.body
            ));
        }
        let minted = post(
            ports.sim,
            "/_sim/codes",
            None,
            &format!("{{\"token\":\"{BUSINESS_TOKEN}\"}}"),
        )?;
        let code = field(&minted, "code")?;
        let exchanged = post(
            ports.proxy,
            "/signup/exchange",
            None,
            &format!("{{\"code\":\"{code}\"}}"),
        )?;
        Ok(Self {
            session: field(&exchanged, "session")?,
        })
    }

    /// A ticket from `POST /events/ticket` for each bearer kind opens `GET /events/stream`
    /// (200, `text/event-stream`). Checked here rather than by Schemathesis alone: the stream
    /// never ends by design, so only its head can be awaited.
    fn stream_opens(&self, port: u16) -> Res {
        for bearer in [ADMIN_TOKEN, BUSINESS_TOKEN, self.session.as_str()] {
            let ticket = field(&post(port, "/events/ticket", Some(bearer), "")?, "ticket")?;
            let mut conn = connect(port)?;
            let request = format!(
                "GET /events/stream?ticket={ticket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
            );
            std::io::Write::write_all(conn.get_mut(), request.as_bytes())
                .map_err(|e| e.to_string())?;
            let (status, headers) = read_head(&mut conn)?;
            let event_stream = headers
                .iter()
                .any(|(n, v)| n == "content-type" && v.starts_with("text/event-stream"));
            if status != 200 || !event_stream {
                return Err(format!(
                    "a ticket's stream answered {status} with {headers:?}"
                ));
            }
        }
        Ok(())
    }
}

/// One Schemathesis run over every operation of the served document, with `bearer` as
/// `Authorization` on every request (the run without one checks the refusals).
fn schemathesis(port: u16, kind: &str, bearer: Option<&str>) -> Res {
    let mut st = Command::new(crate::setup::schemathesis_bin());
    st.current_dir(work_dir())
        .arg("--config-file")
        .arg(project_root().join("tests/contract/schemathesis.toml"))
        .arg("run")
        .arg(format!("http://127.0.0.1:{port}/openapi.json"))
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--request-timeout", REQUEST_TIMEOUT, "--seed", SEED])
        // One worker: with two, Hypothesis 6's lambda-source cache races between threads
        // ("AST constructor recursion depth mismatch") and a run errs for no fault of the
        // proxy's.
        .args(["--workers", "1", "--no-shrink"])
        .args(["--report", "junit", "--report-dir"])
        .arg(work_dir().join(kind.replace(' ', "-")));
    if let Some(bearer) = bearer {
        st.arg("-H").arg(format!("Authorization: Bearer {bearer}"));
    }
    // Its hook signs what it posts to Meta's webhook route with the proxy's app secret, so
    // that route is checked past its signature check too.
    st.env("SCHEMATHESIS_HOOKS", "signed_webhooks")
        .env("PYTHONPATH", project_root().join("tests/contract"))
        .env("WABA_CONTRACT_APP_SECRET", DEMO_APP_SECRET);
    // The command line is shown without the credential.
    println!(
        "$ schemathesis run http://127.0.0.1:{port}/openapi.json ({kind}; options in xtask/src/contract.rs)"
    );
    let mut child = st
        .spawn()
        .map_err(|e| format!("cannot run schemathesis: {e}"))?;
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "Schemathesis took longer than {} s and was stopped",
                    RUN_LIMIT.as_secs()
                ));
            }
            None => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(format!("Schemathesis found failures ({status})"))
    }
}

/// After every run, the proxy's log holds none of the secrets it was given or handed out.
fn secrets_stay_out_of_the_log(credentials: &Credentials) -> Res {
    let log = std::fs::read_to_string(proxy_log()).map_err(|e| e.to_string())?;
    let secrets = [
        ("the System User token", DEMO_SYSTEM_USER_TOKEN),
        ("the admin token", ADMIN_TOKEN),
        ("the app secret", DEMO_APP_SECRET),
        ("the token key", DEMO_TOKEN_KEY),
        ("the business token", BUSINESS_TOKEN),
        ("the session", credentials.session.as_str()),
    ];
    match secrets.iter().find(|(_, s)| log.contains(s)) {
        Some((name, _)) => Err(format!("{name} appears in {}", proxy_log().display())),
        None => Ok(()),
    }
}
