//! Starting the project's real processes for tests, the demo and benchmarks, and stopping
//! them again: every child is killed when its handle drops.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// The repository root.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A scenario file under `tests/scenarios/`.
pub fn scenario(name: &str) -> PathBuf {
    project_root()
        .join("tests/scenarios")
        .join(format!("{name}.json"))
}

/// A running child process that announced its URL; killed on drop.
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// The base URL it listens on, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    output: Arc<Mutex<Vec<String>>>,
}

fn keep(sink: &Mutex<Vec<String>>, line: String) {
    if std::env::var_os("WABA_TEST_ECHO").is_some() {
        eprintln!("{line}");
    }
    if let Ok(mut v) = sink.lock() {
        v.push(line);
    }
}

impl Running {
    /// Starts `cmd` and waits (up to `wait`) for a stdout line containing `marker` followed by
    /// a URL. Everything else it prints (stdout and stderr) is kept for [`Running::output`],
    /// and echoed to this process's stderr when `WABA_TEST_ECHO` is set.
    pub fn start(mut cmd: Command, marker: &str, wait: Duration) -> std::io::Result<Self> {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn()?;
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            let wanted = marker.to_owned();
            let sink = output.clone();
            std::thread::spawn(move || {
                let mut sent = false;
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split(&wanted).nth(1).filter(|_| !sent) {
                        sent = tx.send(rest.trim().to_owned()).is_ok();
                    }
                    keep(&sink, line);
                }
            });
        }
        if let Some(stderr) = child.stderr.take() {
            let sink = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    keep(&sink, line);
                }
            });
        }
        match rx.recv_timeout(wait) {
            Ok(url) => Ok(Self { child, url, output }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                let said = output.lock().map(|o| o.join("\n")).unwrap_or_default();
                Err(std::io::Error::other(format!(
                    "process did not print `{marker}` within {wait:?} (exit: {status:?}); it said:\n{said}"
                )))
            }
        }
    }

    /// Every line the process printed so far (stdout and stderr).
    pub fn output(&self) -> Vec<String> {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Stops the process now.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `graph-sim` (the binary at `bin`) on a free loopback port with `scenario`.
pub fn start_sim(bin: &Path, scenario: &Path, extra: &[&str]) -> std::io::Result<Running> {
    let mut cmd = Command::new(bin);
    cmd.arg("--scenario")
        .arg(scenario)
        .arg("--listen")
        .arg("127.0.0.1:0");
    cmd.args(extra);
    Running::start(cmd, "graph-sim listening on ", Duration::from_secs(20))
}

/// Starts `waba-proxy` (the binary at `bin`) on a free loopback port in front of `graph_url`,
/// with `args` added (for example `--system-user-token`, `--business-id`).
/// Without `--database` in `args`, the proxy gets a new database file in the temp folder.
pub fn start_proxy(bin: &Path, graph_url: &str, args: &[&str]) -> std::io::Result<Running> {
    let mut cmd = Command::new(bin);
    cmd.arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--graph-url")
        .arg(graph_url);
    if !args.contains(&"--database") {
        cmd.arg("--database").arg(temp_database());
    }
    cmd.args(args);
    Running::start(cmd, "waba-proxy listening on ", Duration::from_secs(20))
}

/// The demo scenario's credentials a `waba-proxy` needs in front of graph-sim, and with
/// `code_flow` [`DEMO_CODE_FLOW_ARGS`] too.
pub fn demo_proxy_args(code_flow: bool) -> Vec<&'static str> {
    let mut args = vec![
        "--system-user-token",
        "EAASimSystemUserTokenDemo0000000000000000000000001",
        "--business-id",
        "805021500648488",
    ];
    if code_flow {
        args.extend_from_slice(&DEMO_CODE_FLOW_ARGS);
    }
    args
}

/// The demo app's secret (webhook signatures, code exchanges).
pub const DEMO_APP_SECRET: &str = "sim-app-secret-demo-5f1e0c9a";

/// The demo app's id and secret and a token key: a proxy with them exchanges signup codes.
pub const DEMO_CODE_FLOW_ARGS: [&str; 6] = [
    "--app-id",
    "670843887433847",
    "--app-secret",
    DEMO_APP_SECRET,
    "--token-key",
    "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
];

/// A path for a new database file in the temp folder (removed first if it exists).
pub fn temp_database() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("waba-proxy-{}-{n}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// Where cargo puts this workspace's binaries for the running profile.
pub fn target_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // Test executables live in target/<profile>/deps; binaries one level up.
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

/// graph-sim served from this process on a free loopback port, on a thread of its own, with
/// its state at hand (call counts, faults) for assertions.
pub struct SimServer {
    /// Base URL.
    pub url: String,
    /// The simulator's state.
    pub state: Arc<crate::sim::state::SimState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimServer {
    /// Serves the scenario file `scenario`.
    pub fn start(scenario: &Path) -> std::io::Result<Self> {
        let world = crate::sim::scenario::World::load(scenario).map_err(std::io::Error::other)?;
        Self::start_world(world)
    }

    /// Serves an already loaded (and possibly edited) world.
    pub fn start_world(world: crate::sim::scenario::World) -> std::io::Result<Self> {
        Self::start_world_with(world, Duration::from_secs(30))
    }

    /// Serves `world` with authorization codes living `code_ttl` (Meta's: 30 s).
    pub fn start_world_with(
        world: crate::sim::scenario::World,
        code_ttl: Duration,
    ) -> std::io::Result<Self> {
        let state = Arc::new(crate::sim::state::SimState::new(world, code_ttl, None));
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = crate::sim::app(state.clone());
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Ok(Self {
            url,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Calls the simulator received on `route` (`debug_token`, `waba`, `client_wabas`, ...).
    pub fn calls(&self, route: &str) -> u64 {
        self.state.calls().get(route).copied().unwrap_or(0)
    }

    /// Calls on every route.
    pub fn total_calls(&self) -> u64 {
        self.state.calls().values().sum()
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A site folder for `waba-proxy --www`: `www/`, the built npm package under `pkg/`, and a
/// `config.js` that points the signup page at the simulator at `sim_url`. The package must
/// have been built (`cargo xtask package`, which `cargo xtask test` runs first).
pub fn site(sim_url: &str) -> std::io::Result<PathBuf> {
    site_with(sim_url, "token")
}

/// Like [`site`], the page running the signup flow `response_type` (`token` or `code`).
pub fn site_with(sim_url: &str, response_type: &str) -> std::io::Result<PathBuf> {
    let root = project_root();
    let pkg = root.join("target/npm/waba-onboard");
    if !pkg.join("web/waba_onboard_bg.wasm").exists() {
        return Err(std::io::Error::other(
            "the npm package is not built: run `cargo xtask package` (cargo xtask test does)",
        ));
    }
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("waba-site-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&root.join("www"), &dir)?;
    for build in ["web", "console", "locales"] {
        copy_dir(&pkg.join(build), &dir.join("pkg").join(build))?;
    }
    for file in [
        "waba-onboard-embed.js",
        "waba-onboard-signup.js",
        "waba-onboard-stream.js",
        "waba-onboard-locales.js",
        "waba-onboard.css",
    ] {
        std::fs::copy(pkg.join(file), dir.join("pkg").join(file))?;
    }
    std::fs::write(
        dir.join("config.js"),
        format!(
            "window.WABA_SIGNUP = {{ appId: \"670843887433847\", configId: \"sim-config-1\", businessId: \"805021500648488\", \
             sdkUrl: \"{sim_url}/_sim/{{locale}}/sdk.js\", extraOrigins: [\"{sim_url}\"], responseType: \"{response_type}\", \
             dialogUrl: \"{sim_url}/v26.0/dialog/oauth\" }};\n"
        ),
    )?;
    Ok(dir)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)?.flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// The message catalog the package ships for `tag` (`wasm/js/locales/{tag}.js`): its
/// `messages`, by id.
pub fn catalog_messages(tag: &str) -> std::io::Result<serde_json::Map<String, serde_json::Value>> {
    messages_in("wasm/js/locales", tag)
}

/// The partner console's own message catalog for `tag` (`www/locales/{tag}.js`): its
/// `messages`, by id.
pub fn console_catalog_messages(
    tag: &str,
) -> std::io::Result<serde_json::Map<String, serde_json::Value>> {
    messages_in("www/locales", tag)
}

/// The `messages` of the catalog `{dir}/{tag}.js` (`dir` from the repository root).
fn messages_in(
    dir: &str,
    tag: &str,
) -> std::io::Result<serde_json::Map<String, serde_json::Value>> {
    let path = project_root().join(dir).join(format!("{tag}.js"));
    let text = std::fs::read_to_string(&path)?;
    let json = waba_graph::messages::catalog_json(&text)
        .ok_or_else(|| std::io::Error::other(format!("{tag}: not `export default {{...}};`")))?;
    let mut catalog: serde_json::Value =
        serde_json::from_str(json).map_err(std::io::Error::other)?;
    match catalog.get_mut("messages").map(serde_json::Value::take) {
        Some(serde_json::Value::Object(m)) => Ok(m),
        _ => Err(std::io::Error::other(format!("{tag}: no messages"))),
    }
}
