//! `cargo xtask bench [--quick]`: measures the proxy and the browser module and writes
//! `BENCHMARKS.md`.
//!
//! - Proxy overhead, side by side in one run: graph-sim directly, through Debian's nginx
//!   (configured to add the same `Authorization` header, keep-alive to the upstream), and
//!   through `waba-proxy` (answer sharing off, then on), each loaded by Debian's `wrk` with
//!   keep-alive. On a machine with 2 or more cores, `wrk` runs on core 0 and the servers on
//!   core 1, so each server under test gets the same single core.
//! - A load test of `waba-proxy` with its default settings over a mix of routes and callers:
//!   zero unexpected errors, RSS idle, during the load (sampled each second), peak and after.
//! - The same load on three replicas sharing one PostgreSQL (a server the bench starts and
//!   stops, `xtask/src/postgres.rs`), one wrk per replica at once, beside the single SQLite
//!   sidecar; and the time from a webhook's 200 on one replica to its change on the live
//!   status stream of each replica (LISTEN/NOTIFY across replicas).
//! - Time to status and the console's render time in headless Chromium (`bench-browser`).
//! - The npm package's size.
//!
//! `--quick` uses the debug builds, runs each load for 2 s and takes few browser samples, to
//! prove the bench still works (`cargo xtask test` does); it writes
//! `target/BENCHMARKS.quick.md`.

use crate::project_root;
use crate::run::{Res, cargo, output, run};
use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SYSTEM: &str = "EAASimSystemUserTokenDemo0000000000000000000000001";
const SIGNUP: &str = "EAASimBusinessTokenFinish000000000000000000000001";
const ADMIN: &str = "bench-admin-token-0001";
const QUERY: &str = "fields=id,name,account_review_status";
/// wrk's connections in every load run (spread over the replicas when there are several).
const CONNECTIONS: u32 = 64;

struct Killed(Vec<Child>);

impl Drop for Killed {
    /// Asks each server to stop (SIGTERM: nginx's master then stops its workers, which a
    /// SIGKILL would leave running), waits a little, then kills what is left.
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        for c in &mut self.0 {
            for _ in 0..100 {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// nginx processes (master or workers) still running from the bench: those holding a file of
/// `target/bench-nginx` open (its error log).
pub fn leftover_nginx() -> Vec<String> {
    let dir = project_root().join("target/bench-nginx");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        })
        .filter(|p| {
            std::fs::read_link(p.join("exe")).is_ok_and(|exe| exe.ends_with("nginx"))
                && std::fs::read_dir(p.join("fd")).is_ok_and(|fds| {
                    fds.flatten()
                        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|f| f.starts_with(&dir)))
                })
        })
        .map(|p| p.display().to_string())
        .collect()
}

/// One load run's numbers.
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Requests completed.
    requests: u64,
    /// Non-2xx answers and socket errors (timeouts included).
    errors: u64,
}

fn install() -> Res {
    let have = |p: &str| std::path::Path::new(p).exists();
    if have("/usr/bin/wrk") && have("/usr/sbin/nginx") {
        return Ok(());
    }
    println!("setup: installing Debian's wrk and nginx with apt-get (for the benchmarks)");
    crate::setup::apt(&["wrk", "nginx"])
}

fn ms(text: &str) -> f64 {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

/// Runs wrk (on the load core) against `url` with `header` (or the Lua `script`) and
/// parses its summary.
fn wrk(
    pins: &Pins,
    url: &str,
    header: Option<&str>,
    script: Option<&std::path::Path>,
    seconds: u32,
) -> Result<Load, String> {
    wrk_with(pins, url, header, script, seconds, (2, CONNECTIONS))
}

/// [`wrk`] with `threads` threads and `connections` connections.
fn wrk_with(
    pins: &Pins,
    url: &str,
    header: Option<&str>,
    script: Option<&std::path::Path>,
    seconds: u32,
    (threads, connections): (u32, u32),
) -> Result<Load, String> {
    let mut c = pins.load.command("wrk");
    if let Some(s) = script {
        c.arg("-s").arg(s);
    }
    c.args([
        "-t",
        &threads.to_string(),
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{seconds}s"),
        "--latency",
        "--timeout",
        "5s",
    ]);
    if let Some(h) = header {
        c.args(["-H", h]);
    }
    let out = c.arg(url).output().map_err(|e| format!("wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .map(str::to_owned)
    };
    let rps = line("Requests/sec:")
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .ok_or_else(|| format!("wrk printed no Requests/sec:\n{text}"))?;
    let pct = |p: &str| {
        line(p)
            .and_then(|l| l.split_whitespace().nth(1).map(ms))
            .unwrap_or(f64::NAN)
    };
    let errors = text
        .lines()
        .filter(|l| l.contains("Non-2xx or 3xx responses") || l.contains("Socket errors"))
        .flat_map(|l| {
            l.split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum();
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    Ok(Load {
        requests,
        rps,
        p50_ms: pct("50%"),
        p99_ms: pct("99%"),
        errors,
    })
}

fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn spawn(c: &mut Command, port: u16, name: &str) -> Result<Child, String> {
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(child);
        }
        if let Ok(Some(s)) = child.try_wait() {
            return Err(format!("{name} exited ({s})"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{name} did not listen on {port}"))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem} RAM, Linux")
}

/// Where a process runs: a core list for `taskset`, or anywhere.
struct Pin(Option<&'static str>);

impl Pin {
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match self.0 {
            Some(cores) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cores]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }
}

/// The load generator's core and the servers' core.
struct Pins {
    load: Pin,
    servers: Pin,
}

impl Pins {
    fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let taskset = output("taskset", &["-V"]).is_some();
        if cores >= 2 && taskset {
            Pins {
                load: Pin(Some("0")),
                servers: Pin(Some("1")),
            }
        } else {
            Pins {
                load: Pin(None),
                servers: Pin(None),
            }
        }
    }

    fn describe(&self) -> &'static str {
        if self.load.0.is_some() {
            "wrk on core 0; graph-sim, nginx and waba-proxy on core 1 (taskset)"
        } else {
            "everything on the same cores (no pinning)"
        }
    }
}

/// The mix of routes and callers of the load test, as a wrk Lua script.
fn mix_script(dir: &std::path::Path) -> Result<std::path::PathBuf, String> {
    let path = dir.join("mix.lua");
    let script = format!(
        "-- waba-proxy's load test: signup callers and the admin over the allowlisted routes.\n\
         local signup = {{ [\"Authorization\"] = \"Bearer {SIGNUP}\" }}\n\
         local admin = {{ [\"Authorization\"] = \"Bearer {ADMIN}\" }}\n\
         local reqs\n\
         -- Built in init, once wrk has set the Host header the paging links are made from.\n\
         function init(args)\n\
         reqs = {{\n\
           wrk.format(\"GET\", \"/graph/102289599326934?{QUERY}\", signup),\n\
           wrk.format(\"GET\", \"/graph/101569239400667\", signup),\n\
           wrk.format(\"GET\", \"/graph/102289599326934/phone_numbers\", signup),\n\
           wrk.format(\"GET\", \"/graph/805021500648488/client_whatsapp_business_accounts?limit=25\", admin),\n\
           wrk.format(\"GET\", \"/graph/805021500648488/owned_whatsapp_business_accounts\", admin),\n\
           wrk.format(\"GET\", \"/graph/102289599326934?fields=id,name,health_status\", admin),\n\
         }}\n\
         end\n\
         local i = 0\n\
         request = function()\n\
           i = i + 1\n\
           return reqs[(i % #reqs) + 1]\n\
         end\n"
    );
    std::fs::write(&path, script).map_err(|e| e.to_string())?;
    Ok(path)
}

/// RSS of the load-tested proxy over time, in KiB.
struct Memory {
    idle: u64,
    during: Vec<u64>,
    peak: u64,
    after: u64,
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Runs the mixed load against the proxy `pid` listens on at `url`, sampling its RSS.
fn load_test(
    pins: &Pins,
    url: &str,
    pid: u32,
    script: &std::path::Path,
    seconds: u32,
) -> Result<(Load, Memory), String> {
    let idle = rss_kb(pid, "VmRSS:");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut v = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                v.push(rss_kb(pid, "VmRSS:"));
            }
            v
        })
    };
    let load = wrk(pins, url, None, Some(script), seconds);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let during = sampler.join().unwrap_or_default();
    let peak = rss_kb(pid, "VmHWM:");
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kb(pid, "VmRSS:");
    Ok((
        load?,
        Memory {
            idle,
            during,
            peak,
            after,
        },
    ))
}

/// The replicas' app secret: graph-sim's demo app's (`tests/scenarios/demo.json`), which
/// signs the bench's webhook deliveries.
const APP_SECRET: &str = "sim-app-secret-demo-5f1e0c9a";
/// The WABA the bench's webhooks are about (in the demo scenario).
const REVIEWED_WABA: &str = "102289599326934";
/// Replicas on the PostgreSQL database.
const REPLICAS: usize = 3;
/// Deliveries before the timed ones (connections and caches settle).
const WARM_UP: usize = 2;
/// How long a stream may take to show a delivery's change before the bench fails.
const EVENT_WAIT: Duration = Duration::from_secs(10);

/// Replica `n`'s (from 0) share of wrk's [`CONNECTIONS`]: 22, 21, 21.
fn replica_connections(n: usize) -> u32 {
    CONNECTIONS / REPLICAS as u32 + u32::from(n < CONNECTIONS as usize % REPLICAS)
}

/// What the replicas on PostgreSQL measured.
struct Replicated {
    /// The server's version.
    version: String,
    /// Processes of the server pinned to the servers' core (0: not pinned).
    pg_pinned: usize,
    /// Each replica's share of the mixed load.
    each: Vec<Load>,
    /// The whole: requests/s, requests and errors summed; p50 and p99 the highest of the
    /// replicas' (the combined percentile is at most that).
    all: Load,
    /// Each replica's peak RSS (VmHWM) after the load, in KiB.
    peaks: Vec<u64>,
    /// From a webhook's 200 on replica 1 to its change on a stream of replica 1, 2 and 3, in
    /// ms (negative: the event was there before the 200).
    from_200: [Vec<f64>; REPLICAS],
    /// The same from the moment the delivery was sent.
    from_sent: [Vec<f64>; REPLICAS],
}

/// PostgreSQL started for the bench, three waba-proxy replicas on it in front of graph-sim
/// (`sim_port`): the webhook-to-stream latency across replicas (`deliveries` timed), then the
/// mixed load (`script`) spread over the three for `seconds`. Everything it started is
/// stopped before it returns, also on an error.
fn replicated(
    pins: &Pins,
    bin: &std::path::Path,
    sim_port: u16,
    script: &std::path::Path,
    seconds: u32,
    deliveries: usize,
) -> Result<Replicated, String> {
    println!("bench: {REPLICAS} waba-proxy replicas on one PostgreSQL");
    let pg = crate::postgres::Postgres::start()?;
    let pg_pinned = pin_postgres(pins, &pg.dir.join("data"));
    let ca = pg.ca_file.display().to_string();
    // Declared after `pg`, so dropped (the replicas stopped) before the server on an error.
    let mut replicas = Killed(Vec::new());
    let mut ports = Vec::new();
    for n in 1..=REPLICAS {
        let port = crate::demo::free_port()?;
        let mut c = pins.servers.command(bin.join("waba-proxy"));
        c.args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--graph-url",
            &format!("http://127.0.0.1:{sim_port}"),
            "--business-id",
            "805021500648488",
            "--database",
            &pg.url,
            "--database-ca-file",
            &ca,
        ])
        .env("WABA_SYSTEM_USER_TOKEN", SYSTEM)
        .env("WABA_ADMIN_TOKEN", ADMIN)
        .env("WABA_APP_SECRET", APP_SECRET)
        // The default level: every request's JSON log line (to /dev/null here).
        .env("WABA_LOG", "info");
        replicas
            .0
            .push(spawn(&mut c, port, &format!("waba-proxy (replica {n})"))?);
        ports.push(port);
    }
    for (n, port) in ports.iter().enumerate() {
        let mut conn = connect(*port)?;
        let ready = exchange(&mut conn, *port, "GET", "/readyz", &[], b"")?;
        if ready.status != 200 || !ready.body.contains("postgresql") {
            return Err(format!(
                "replica {} is not ready on PostgreSQL ({}): {}",
                n + 1,
                ready.status,
                ready.body
            ));
        }
    }
    let (from_200, from_sent) = stream_latency(&ports, deliveries)?;

    let runs: Vec<Result<Load, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = ports
            .iter()
            .enumerate()
            .map(|(n, port)| {
                let url = format!("http://127.0.0.1:{port}");
                s.spawn(move || {
                    wrk_with(
                        pins,
                        &url,
                        None,
                        Some(script),
                        seconds,
                        (1, replica_connections(n)),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a wrk thread panicked".into()))
            })
            .collect()
    });
    let each = runs.into_iter().collect::<Result<Vec<Load>, String>>()?;
    let highest = |f: fn(&Load) -> f64| each.iter().map(f).fold(f64::NAN, f64::max);
    let all = Load {
        rps: each.iter().map(|l| l.rps).sum(),
        p50_ms: highest(|l| l.p50_ms),
        p99_ms: highest(|l| l.p99_ms),
        requests: each.iter().map(|l| l.requests).sum(),
        errors: each.iter().map(|l| l.errors).sum(),
    };
    // taskset execs the proxy: each child's pid is the replica's.
    let peaks = replicas
        .0
        .iter()
        .map(|c| rss_kb(c.id(), "VmHWM:"))
        .collect();
    drop(replicas);
    let version = pg.version.clone();
    pg.stop()?;
    Ok(Replicated {
        version,
        pg_pinned,
        each,
        all,
        peaks,
        from_200,
        from_sent,
    })
}

/// Pins the PostgreSQL server whose data directory is `data` (its postmaster, named by
/// `postmaster.pid`, and the processes it has forked so far; the backends it forks for the
/// replicas' connections later inherit the postmaster's core) to the servers' core. How many
/// processes were pinned; 0 when pinning is off or the server's pid could not be read.
fn pin_postgres(pins: &Pins, data: &std::path::Path) -> usize {
    let Some(cores) = pins.servers.0 else {
        return 0;
    };
    let Some(postmaster) = std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
    else {
        return 0;
    };
    let mut pids = vec![postmaster];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // `pid (comm) state ppid ...`: the comm may hold spaces and parentheses.
        let ppid = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| {
                let rest = &s[s.rfind(')')? + 1..];
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            });
        if ppid == Some(postmaster) {
            pids.push(pid);
        }
    }
    pids.iter()
        .filter(|pid| {
            Command::new("taskset")
                .args(["-a", "-p", "-c", cores, &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .count()
}

/// A keep-alive connection to a server on loopback `port`.
pub fn connect(port: u16) -> Result<std::io::BufReader<std::net::TcpStream>, String> {
    let socket = std::net::TcpStream::connect(("127.0.0.1", port))
        .map_err(|e| format!("cannot connect to 127.0.0.1:{port}: {e}"))?;
    socket
        .set_nodelay(true)
        .and_then(|()| socket.set_read_timeout(Some(EVENT_WAIT)))
        .map_err(|e| e.to_string())?;
    Ok(std::io::BufReader::new(socket))
}

/// An HTTP answer: status, body, and when its head had arrived.
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
    head_at: std::time::Instant,
}

/// Reads an HTTP/1.1 answer's status line and headers (lower-cased names).
pub fn read_head(
    conn: &mut std::io::BufReader<std::net::TcpStream>,
) -> Result<(u16, Vec<(String, String)>), String> {
    use std::io::BufRead as _;
    let mut line = String::new();
    let read = |conn: &mut std::io::BufReader<_>, line: &mut String| {
        line.clear();
        match conn.read_line(line) {
            Ok(0) => Err("the server closed the connection".to_owned()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("reading an answer: {e}")),
        }
    };
    read(conn, &mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        read(conn, &mut line)?;
        if line.trim().is_empty() {
            return Ok((status, headers));
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
}

/// One request on `conn` (to `port`) and its answer, which must have a `Content-Length`.
pub fn exchange(
    conn: &mut std::io::BufReader<std::net::TcpStream>,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Answer, String> {
    use std::io::{Read as _, Write as _};
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    conn.get_mut()
        .write_all(&bytes)
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let (status, head) = read_head(conn).map_err(|e| format!("{method} {path}: {e}"))?;
    let head_at = std::time::Instant::now();
    let length = head
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .ok_or_else(|| format!("{method} {path}: an answer without Content-Length"))?;
    let mut body = vec![0; length];
    conn.read_exact(&mut body)
        .map_err(|e| format!("{method} {path}: {e}"))?;
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        head_at,
    })
}

/// An admin's live status stream open on a replica: each event's data with the moment it
/// arrived, read by a thread of its own.
struct Events {
    replica: usize,
    events: std::sync::mpsc::Receiver<(std::time::Instant, String)>,
    socket: std::net::TcpStream,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Events {
    /// Asks replica `replica` (on `port`) for a ticket with the admin token and opens its
    /// stream with it.
    fn open(replica: usize, port: u16) -> Result<Events, String> {
        let mut conn = connect(port)?;
        let auth = format!("Bearer {ADMIN}");
        let ticket = exchange(
            &mut conn,
            port,
            "POST",
            "/events/ticket",
            &[("Authorization", &auth)],
            b"",
        )?;
        let value = ticket
            .body
            .split_once("\"ticket\":\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(t, _)| t.to_owned());
        let (200, Some(value)) = (ticket.status, value) else {
            return Err(format!(
                "POST /events/ticket on replica {replica} answered {}: {}",
                ticket.status, ticket.body
            ));
        };
        let mut stream = connect(port)?;
        let request = format!(
            "GET /events/stream?ticket={value} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
        );
        std::io::Write::write_all(stream.get_mut(), request.as_bytes())
            .map_err(|e| format!("opening replica {replica}'s stream: {e}"))?;
        let (status, head) =
            read_head(&mut stream).map_err(|e| format!("replica {replica}'s stream: {e}"))?;
        if status != 200 {
            return Err(format!("replica {replica}'s stream answered {status}"));
        }
        let chunked = head
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        let socket = stream.get_ref().try_clone().map_err(|e| e.to_string())?;
        // Events come when they come: the channel's wait bounds it instead.
        socket.set_read_timeout(None).map_err(|e| e.to_string())?;
        let (tx, events) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || read_events(stream, chunked, &tx));
        Ok(Events {
            replica,
            events,
            socket,
            reader: Some(reader),
        })
    }

    /// The next event's arrival and data, within [`EVENT_WAIT`].
    fn next(&self, what: &str) -> Result<(std::time::Instant, String), String> {
        self.events.recv_timeout(EVENT_WAIT).map_err(|e| {
            format!(
                "{what}: replica {}'s stream showed nothing within {} s ({e})",
                self.replica,
                EVENT_WAIT.as_secs()
            )
        })
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Reads Server-Sent Events from `stream` (after the answer's head) until it ends, sending
/// each event's `data` with the moment the bytes that completed it arrived.
fn read_events(
    mut stream: std::io::BufReader<std::net::TcpStream>,
    chunked: bool,
    tx: &std::sync::mpsc::Sender<(std::time::Instant, String)>,
) {
    use std::io::{BufRead as _, Read as _};
    let mut text = String::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let piece = if chunked {
            let mut size = String::new();
            if !matches!(stream.read_line(&mut size), Ok(n) if n > 0) {
                return;
            }
            let size = size.trim();
            let size = size.split(';').next().unwrap_or(size);
            let Ok(size) = usize::from_str_radix(size, 16) else {
                return;
            };
            let mut data = vec![0; size + 2];
            if size == 0 || stream.read_exact(&mut data).is_err() {
                return;
            }
            data.truncate(size);
            data
        } else {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf[..n].to_vec(),
            }
        };
        let at = std::time::Instant::now();
        text.push_str(&String::from_utf8_lossy(&piece));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let data: Vec<&str> = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            // Comments (the keep-alive) carry no data.
            if !data.is_empty() && tx.send((at, data.join("\n"))).is_err() {
                return;
            }
        }
    }
}

/// `later - earlier` in ms, negative when `later` came first.
fn ms_between(earlier: std::time::Instant, later: std::time::Instant) -> f64 {
    match later.checked_duration_since(earlier) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(earlier.duration_since(later).as_secs_f64() * 1000.0),
    }
}

/// Posts `deliveries` signed `account_review_update` webhooks (after [`WARM_UP`] untimed
/// ones) to the first replica, one at a time, and times each change's arrival on an admin
/// stream open on every replica (the first one included): from the 200 and from the send,
/// per replica. Each stream must show each change exactly once, in order.
#[allow(clippy::type_complexity)]
fn stream_latency(
    ports: &[u16],
    deliveries: usize,
) -> Result<([Vec<f64>; REPLICAS], [Vec<f64>; REPLICAS]), String> {
    let streams = ports
        .iter()
        .enumerate()
        .map(|(n, port)| Events::open(n + 1, *port))
        .collect::<Result<Vec<_>, String>>()?;
    let port = ports[0];
    let mut conn = connect(port)?;
    let mut from_200: [Vec<f64>; REPLICAS] = Default::default();
    let mut from_sent: [Vec<f64>; REPLICAS] = Default::default();
    for n in 0..WARM_UP + deliveries {
        let decision = if n % 2 == 0 { "APPROVED" } else { "REJECTED" };
        // A new `time` each: a redelivery (same body) would be stored once, and not announced.
        let body = format!(
            "{{\"object\":\"whatsapp_business_account\",\"entry\":[{{\"id\":\"{REVIEWED_WABA}\",\"time\":{},\
             \"changes\":[{{\"field\":\"account_review_update\",\"value\":{{\"decision\":\"{decision}\"}}}}]}}]}}",
            1_700_000_000 + n
        );
        let signature = signature(APP_SECRET.as_bytes(), body.as_bytes());
        let what = format!("webhook delivery {} of {}", n + 1, WARM_UP + deliveries);
        let sent = std::time::Instant::now();
        let answer = exchange(
            &mut conn,
            port,
            "POST",
            "/webhooks/meta",
            &[
                ("Content-Type", "application/json"),
                ("X-Hub-Signature-256", &signature),
            ],
            body.as_bytes(),
        )
        .map_err(|e| format!("{what}: {e}"))?;
        if answer.status != 200 {
            return Err(format!(
                "{what}: replica 1 answered {}: {}",
                answer.status, answer.body
            ));
        }
        for (i, stream) in streams.iter().enumerate() {
            let (at, data) = stream.next(&what)?;
            let expected = [
                "\"kind\":\"review\"".to_owned(),
                format!("\"waba_id\":\"{REVIEWED_WABA}\""),
                format!("\"value\":\"{decision}\""),
            ];
            if !expected.iter().all(|e| data.contains(e.as_str())) {
                return Err(format!(
                    "{what}: replica {}'s stream showed another event than the {decision} review: {data}",
                    stream.replica
                ));
            }
            if n >= WARM_UP {
                from_200[i].push(ms_between(answer.head_at, at));
                from_sent[i].push(ms_between(sent, at));
            }
        }
    }
    // Nothing more may come: each change once.
    std::thread::sleep(Duration::from_millis(300));
    for stream in &streams {
        if let Ok((_, data)) = stream.events.try_recv() {
            return Err(format!(
                "replica {}'s stream showed more events than deliveries: {data}",
                stream.replica
            ));
        }
    }
    Ok((from_200, from_sent))
}

/// The `p` quantile (0..=1, nearest rank) of `values`.
fn quantile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// `X-Hub-Signature-256` as Meta sends it: `sha256=` and the HMAC-SHA256 of the raw body
/// with the app secret, in hex.
fn signature(secret: &[u8], body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The "Several replicas on PostgreSQL" section.
fn replicas_md(
    r: &Replicated,
    single: &Load,
    pins: &Pins,
    load_secs: u32,
    deliveries: usize,
) -> String {
    let mut md = String::new();
    let pinning = match (pins.servers.0, r.pg_pinned) {
        (None, _) => "Nothing is pinned here (taskset or a second core is missing).".to_owned(),
        (Some(core), 0) => format!(
            "wrk on core 0; graph-sim and the {REPLICAS} replicas on core {core} (taskset), as the single sidecar was; \
             PostgreSQL could not be pinned (its postmaster's pid was not found) and runs anywhere."
        ),
        (Some(core), n) => format!(
            "wrk on core 0; graph-sim, the {REPLICAS} replicas and PostgreSQL on core {core} (taskset; PostgreSQL's {n} processes \
             pinned with `taskset -a -p` once it started: the postmaster named by its `postmaster.pid` and its children, and the \
             backends it forks later for the replicas' connections inherit the core)."
        ),
    };
    let shares: Vec<String> = (0..REPLICAS)
        .map(|n| replica_connections(n).to_string())
        .collect();
    let _ = writeln!(
        md,
        "## Several replicas on PostgreSQL\n\n\
         {REPLICAS} `waba-proxy` replicas with their default settings and `--database postgres://...` in place of the SQLite file, on one \
         {version} server that the bench starts and stops as the tests do (`xtask/src/postgres.rs`: TLS on and checked with \
         `--database-ca-file`, `fsync` off; the default pool of 16 connections per replica), in front of the same graph-sim. \
         The load is the load test's: the same 6 requests and {CONNECTIONS} connections for {load_secs} s, spread as one `wrk -t1` per replica \
         run at the same time ({} connections): one wrk cannot spread its requests over several ports (its Lua script picks a request's \
         path and headers, not its host). Requests/s, requests and errors are the three runs' sums; p50 and p99 are the highest of the three \
         (the percentile of all requests together is at most that). {pinning} \
         So the three replicas together get the one core the single sidecar had: the comparison shows what a shared database costs \
         (and three wrk threads on core 0 instead of two), not what more machines would add.\n",
        shares.join(" + "),
        version = r.version,
    );
    let _ = writeln!(
        md,
        "| setup | requests/s | p50 | p99 | requests | unexpected errors |\n|---|---|---|---|---|---|"
    );
    let row = |md: &mut String, name: &str, l: &Load| {
        let _ = writeln!(
            md,
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {} | {} |",
            l.rps, l.p50_ms, l.p99_ms, l.requests, l.errors
        );
    };
    row(
        &mut md,
        "one waba-proxy on SQLite (the load test above)",
        single,
    );
    row(
        &mut md,
        &format!("{REPLICAS} replicas on PostgreSQL, together"),
        &r.all,
    );
    for (n, l) in r.each.iter().enumerate() {
        row(
            &mut md,
            &format!("replica {} ({} connections)", n + 1, shares[n]),
            l,
        );
    }
    let peaks: Vec<String> = r
        .peaks
        .iter()
        .map(|kb| format!("{:.1}", mib(*kb)))
        .collect();
    let _ = writeln!(
        md,
        "\nPeak RSS (VmHWM) of each replica after the load: {} MiB.\n",
        peaks.join(" / ")
    );
    let _ = writeln!(
        md,
        "Webhook to stream across replicas, before the load: {deliveries} signed `account_review_update` deliveries (after {WARM_UP} untimed ones), \
         posted one at a time to replica 1 (`POST /webhooks/meta` with `X-Hub-Signature-256`), the next only once every stream showed the last; \
         each timed from replica 1's 200 (its head read by the bench) to the change's event arriving on the admin's `/events/stream` open on \
         each replica. Replica 1 stores the change and wakes its reader of new changes before it answers 200; the other replicas' readers \
         are woken by PostgreSQL's `NOTIFY` (sent by the storing transaction); each reads the change from the database and hands it to its \
         streams. Negative: the event was there before the 200. \
         Every stream must show every change once, in order, within {} s, or the bench fails.\n\n\
         | stream on | median | p99 | max | median from sending the webhook |\n|---|---|---|---|---|",
        EVENT_WAIT.as_secs()
    );
    for n in 0..REPLICAS {
        let name = if n == 0 {
            "replica 1, which received the webhook".to_owned()
        } else {
            format!("replica {}, another replica", n + 1)
        };
        let v = &r.from_200[n];
        let _ = writeln!(
            md,
            "| {name} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
            quantile(v, 0.5),
            quantile(v, 0.99),
            quantile(v, 1.0),
            quantile(&r.from_sent[n], 0.5)
        );
    }
    md.push('\n');
    md
}

/// `cargo xtask bench [--quick]`.
pub fn bench(args: &[String]) -> Res {
    let quick = args.iter().any(|a| a == "--quick");
    let secs = if quick { 2 } else { 10 };
    let load_secs = if quick { 3 } else { 30 };
    crate::setup::all()?;
    install()?;
    crate::package::build()?;
    // The quick run proves the bench works with the test suite's own (debug) build; the
    // numbers come from release builds.
    let profile = if quick { "dev" } else { "release" };
    run(cargo(&[
        "build",
        "--profile",
        profile,
        "-p",
        "waba-proxy",
        "-p",
        "waba-testkit",
        "--bins",
    ]))?;
    let bin = project_root().join(if quick {
        "target/debug"
    } else {
        "target/release"
    });
    let pins = Pins::new();
    let port = || crate::demo::free_port();
    let (sim_port, plain_port, shared_port, load_port, nginx_port) =
        (port()?, port()?, port()?, port()?, port()?);
    let mut kids = Killed(Vec::new());
    let (hello_port, cold_port) = (port()?, port()?);
    kids.0.push(spawn(
        pins.servers
            .command(bin.join("graph-sim"))
            .arg("--scenario")
            .arg(project_root().join("tests/scenarios/demo.json"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{sim_port}")),
        sim_port,
        "graph-sim",
    )?);
    // taskset execs the server: a child's pid is the server's.
    let sim_pid = kids.0[0].id();
    let proxy = |p: u16, ttl: Option<&str>| {
        let mut c = pins.servers.command(bin.join("waba-proxy"));
        c.args([
            "--listen",
            &format!("127.0.0.1:{p}"),
            "--graph-url",
            &format!("http://127.0.0.1:{sim_port}"),
            "--business-id",
            "805021500648488",
        ])
        .env("WABA_SYSTEM_USER_TOKEN", SYSTEM)
        .env("WABA_ADMIN_TOKEN", ADMIN)
        // The default level: every request's log line is made and written (to /dev/null).
        .env("WABA_LOG", "info");
        if let Some(ttl) = ttl {
            // Above wrk's 64 connections, so load shedding never answers 503 here.
            c.args(["--cache-ttl-ms", ttl, "--max-concurrency", "4096"]);
        }
        c
    };
    kids.0.push(spawn(
        &mut proxy(plain_port, Some("0")),
        plain_port,
        "waba-proxy",
    )?);
    let plain_pid = kids.0[kids.0.len() - 1].id();
    kids.0.push(spawn(
        &mut proxy(shared_port, Some("3000")),
        shared_port,
        "waba-proxy (sharing)",
    )?);
    let shared_pid = kids.0[kids.0.len() - 1].id();
    let loaded = spawn(&mut proxy(load_port, None), load_port, "waba-proxy (load)")?;
    // taskset execs the proxy: the child's pid is the proxy's.
    let load_pid = loaded.id();
    kids.0.push(loaded);
    let dir = project_root().join("target/bench-nginx");
    std::fs::create_dir_all(dir.join("logs")).map_err(|e| e.to_string())?;
    let conf = format!(
        "worker_processes 2;\nerror_log {d}/logs/error.log;\npid {d}/nginx.pid;\nevents {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         upstream graph {{ server 127.0.0.1:{sim_port}; keepalive 64; }}\n\
         server {{\n    listen 127.0.0.1:{nginx_port};\n    location /graph/ {{\n      proxy_pass http://graph/v26.0/;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_set_header Authorization \"Bearer {SYSTEM}\";\n    }}\n  }}\n}}\n",
        d = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).map_err(|e| e.to_string())?;
    kids.0.push(spawn(
        pins.servers
            .command("/usr/sbin/nginx")
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"]),
        nginx_port,
        "nginx",
    )?);
    let nginx_pids = crate::cost::with_children(&[kids.0[kids.0.len() - 1].id()]);
    let path = format!("102289599326934?{QUERY}");
    let signup = format!("Authorization: Bearer {SIGNUP}");
    // The hello-world floor answers with the body the proxy answers this read with.
    let answer = exchange(
        &mut connect(shared_port)?,
        shared_port,
        "GET",
        &format!("/graph/{path}"),
        &[("Authorization", &format!("Bearer {SIGNUP}"))],
        b"",
    )?;
    if answer.status != 200 {
        return Err(format!(
            "the proxy answered {}: {}",
            answer.status, answer.body
        ));
    }
    kids.0.push(spawn(
        pins.servers.command(bin.join("bench-hello")).args([
            "--listen",
            &format!("127.0.0.1:{hello_port}"),
            "--body",
            &answer.body,
        ]),
        hello_port,
        "bench-hello",
    )?);
    let hello_pid = kids.0[kids.0.len() - 1].id();
    // Each path's load, what a request cost the server under test and graph-sim.
    let measured = |url: &str, header: Option<&str>, server: &[u32]| {
        let (s0, g0) = (crate::cost::usage(server), crate::cost::usage(&[sim_pid]));
        let load = wrk(&pins, url, header, None, secs)?;
        let (s1, g1) = (crate::cost::usage(server), crate::cost::usage(&[sim_pid]));
        Ok::<_, String>((
            crate::cost::per_request(s0, s1, load.requests),
            crate::cost::per_request(g0, g1, load.requests),
            load,
        ))
    };
    let (direct_cost, _, direct) = measured(
        &format!("http://127.0.0.1:{sim_port}/v26.0/{path}"),
        Some(&format!("Authorization: Bearer {SYSTEM}")),
        &[sim_pid],
    )?;
    let (nginx_cost, nginx_sim, nginx) = measured(
        &format!("http://127.0.0.1:{nginx_port}/graph/{path}"),
        None,
        &nginx_pids,
    )?;
    let (plain_cost, plain_sim, plain) = measured(
        &format!("http://127.0.0.1:{plain_port}/graph/{path}"),
        Some(&signup),
        &[plain_pid],
    )?;
    let (shared_cost, _, shared) = measured(
        &format!("http://127.0.0.1:{shared_port}/graph/{path}"),
        Some(&signup),
        &[shared_pid],
    )?;
    let (hello_cost, _, hello) = measured(
        &format!("http://127.0.0.1:{hello_port}/graph/{path}"),
        None,
        &[hello_pid],
    )?;
    let costs = [
        ("graph-sim directly", direct_cost, None),
        ("nginx", nginx_cost, Some(nginx_sim)),
        (
            "waba-proxy, every request forwarded",
            plain_cost,
            Some(plain_sim),
        ),
        ("waba-proxy, answers shared", shared_cost, None),
        ("hello-world axum (`bench-hello`)", hello_cost, None),
    ];
    let starts = if quick { 3 } else { 15 };
    let mut cold: Vec<f64> = Vec::new();
    for n in 0..starts {
        let db = project_root().join(format!("target/bench-cold-{n}.sqlite"));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        let mut c = proxy(cold_port, None);
        c.arg("--database").arg(&db);
        cold.push(crate::cost::cold_start(c, cold_port)?);
    }
    let script = mix_script(&dir)?;
    let (mix, mem) = load_test(
        &pins,
        &format!("http://127.0.0.1:{load_port}"),
        load_pid,
        &script,
        load_secs,
    )?;
    let deliveries = if quick { 20 } else { 200 };
    let replicas = replicated(&pins, &bin, sim_port, &script, load_secs, deliveries)?;
    drop(kids);

    println!("bench: time to status and console render time in headless Chromium");
    let samples = if quick { "2" } else { "15" };
    let console_max = if quick { "1000" } else { "10000" };
    let browser = std::process::Command::new(bin.join("bench-browser"))
        .args(["--samples", samples, "--console-max", console_max])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("bench-browser: {e}"))?;
    if !browser.status.success() {
        return Err(format!("bench-browser failed ({})", browser.status));
    }
    let browser_md = String::from_utf8_lossy(&browser.stdout).into_owned();
    let sizes = crate::package::sizes()?;

    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Benchmarks\n\nWritten by `cargo xtask bench`{} on {}. Machine: {}.\n",
        if quick {
            " --quick (debug builds and short runs that prove the bench works: not numbers to quote)"
        } else {
            ""
        },
        today(),
        machine()
    );
    let _ = writeln!(
        md,
        "## Summary\n\n| measure | result | target |\n|---|---|---|\n\
         | waba-proxy throughput vs nginx, answer sharing on (the default) | {:.2}x | at least 1x |\n\
         | waba-proxy p99 vs nginx, answer sharing on | {:.2}x | at most 1x |\n\
         | waba-proxy throughput vs nginx, every request forwarded (sharing off) | {:.2}x | at least 1x |\n\
         | waba-proxy p99 vs nginx, sharing off | {:.2}x | at most 1x |\n\
         | waba-proxy's shared (cached) reads vs a hello-world axum: requests/s | {:.2}x | at least 0.8x |\n\
         | waba-proxy's shared (cached) reads vs a hello-world axum: p99 | {:.2}x | at most 1.25x |\n\
         | proxy start to `/readyz` 200, median / slowest of {} | {:.1} / {:.1} ms | under 100 ms |\n\
         | load test ({load_secs} s, 64 connections, 6 routes): unexpected errors | {} of {} | 0 |\n\
         | proxy RSS idle / peak / after the load | {:.1} / {:.1} / {:.1} MiB | idle under 20 MiB, flat |\n\
         | {REPLICAS} replicas on PostgreSQL, same load: requests/s vs one SQLite sidecar | {:.2}x ({:.0} vs {:.0}) | reported ({}) |\n\
         | {REPLICAS} replicas on PostgreSQL: p99 vs one SQLite sidecar | {:.2}x ({:.2} vs {:.2} ms) | reported |\n\
         | {REPLICAS} replicas on PostgreSQL, same load: unexpected errors | {} of {} | 0 |\n\
         | webhook's 200 on one replica to its change on another replica's stream, median / p99 | {:.1} / {:.1} ms | reported |\n\
         | what the signup page downloads from the npm package, gzipped | {:.1} KB | at most {} KB (budget {} KB) |\n\
         | what the console downloads from the npm package (its own entry point), gzipped | {:.1} KB | at most {} KB |\n",
        shared.rps / nginx.rps,
        shared.p99_ms / nginx.p99_ms,
        plain.rps / nginx.rps,
        plain.p99_ms / nginx.p99_ms,
        shared.rps / hello.rps,
        shared.p99_ms / hello.p99_ms,
        cold.len(),
        quantile(&cold, 0.5),
        cold.iter().copied().fold(0.0, f64::max),
        mix.errors,
        mix.requests,
        mib(mem.idle),
        mib(mem.peak),
        mib(mem.after),
        replicas.all.rps / mix.rps,
        replicas.all.rps,
        mix.rps,
        if pins.load.0.is_some() {
            "the servers share core 1"
        } else {
            "no pinning"
        },
        replicas.all.p99_ms / mix.p99_ms,
        replicas.all.p99_ms,
        mix.p99_ms,
        replicas.all.errors,
        replicas.all.requests,
        quantile(&replicas.from_200[1], 0.5),
        quantile(&replicas.from_200[1], 0.99),
        sizes.signup.total_gz() as f64 / 1024.0,
        crate::package::SIGNUP_AIM / 1024,
        crate::package::SIGNUP_BUDGET / 1024,
        sizes.console.total_gz() as f64 / 1024.0,
        crate::package::SIZE_BUDGET / 1024,
    );
    let _ = writeln!(
        md,
        "## Proxy overhead\n\n`wrk -t2 -c64 -d{secs}s --latency` with keep-alive, `GET` of one WABA (`{QUERY}`) from graph-sim's demo scenario; {}. \
         nginx only adds the System User's `Authorization` header; waba-proxy also authenticates the caller (a signup token, checked with `debug_token` once and then cached), \
         authorises the WABA against the token's grants, validates the path and fields, re-serialises the answer from the typed model, scrubs it of secrets and logs it (a JSON line per request at the default level, written to /dev/null). \
         With answer sharing on (`--cache-ttl-ms`, 3000 by default), identical reads within 3 s share one Graph call.\n",
        pins.describe()
    );
    let _ = writeln!(
        md,
        "| path | requests/s | p50 | p99 | errors | throughput vs nginx | p99 vs nginx |\n|---|---|---|---|---|---|---|"
    );
    for (name, l) in [
        ("graph-sim directly", &direct),
        (
            "nginx (adds the Authorization header, keep-alive upstream)",
            &nginx,
        ),
        ("waba-proxy, answer sharing on (default)", &shared),
        (
            "waba-proxy, every request forwarded (`--cache-ttl-ms 0`)",
            &plain,
        ),
        (
            "hello-world axum (`bench-hello`: the same body, no work)",
            &hello,
        ),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {} | {:.2}x | {:.2}x |",
            l.rps,
            l.p50_ms,
            l.p99_ms,
            l.errors,
            l.rps / nginx.rps,
            l.p99_ms / nginx.p99_ms
        );
    }
    md.push_str(&costs_md(&costs, &cold));
    let lowest = mem.during.iter().copied().min().unwrap_or(0);
    let highest = mem.during.iter().copied().max().unwrap_or(0);
    let _ = writeln!(
        md,
        "\n## Load test and proxy memory\n\nwaba-proxy with its default settings, `wrk -t2 -c64 -d{load_secs}s` cycling through 6 requests: two WABAs and a WABA's phone numbers with a signup token, \
         the client list (limit 25), the owned list and a WABA with the admin token. All must answer 200.\n\n\
         | requests/s | p50 | p99 | requests | unexpected errors |\n|---|---|---|---|---|\n\
         | {:.0} | {:.2} ms | {:.2} ms | {} | {} |\n\n\
         | RSS idle | RSS during the load (lowest..highest of {} samples) | peak (VmHWM) | 2 s after |\n|---|---|---|---|\n\
         | {:.1} MiB | {:.1}..{:.1} MiB | {:.1} MiB | {:.1} MiB |\n",
        mix.rps,
        mix.p50_ms,
        mix.p99_ms,
        mix.requests,
        mix.errors,
        mem.during.len(),
        mib(mem.idle),
        mib(lowest),
        mib(highest),
        mib(mem.peak),
        mib(mem.after),
    );
    let series: Vec<String> = mem
        .during
        .iter()
        .step_by(5)
        .map(|kb| format!("{:.1}", mib(*kb)))
        .collect();
    let _ = writeln!(
        md,
        "RSS every 5 s during the load (MiB): {}.\n",
        series.join(", ")
    );
    md.push_str(&replicas_md(&replicas, &mix, &pins, load_secs, deliveries));
    md.push_str(&browser_md);
    let _ = writeln!(
        md,
        "\n## npm package\n\nBuilt by `cargo xtask package` (wasm-release profile on the pinned nightly with `-Zbuild-std`, `optimize_for_size`, `panic=immediate-abort` and no panic locations, `wasm-opt -Oz --converge --low-memory-unused`, wasm-bindgen, terser). \
         The signup page loads the script embed, which imports the signup entry point (`web/`) and the live status module; the console imports its own entry point (`console/`).\n"
    );
    let (aim, budget, console_budget) = (
        crate::package::SIGNUP_AIM / 1024,
        crate::package::SIGNUP_BUDGET / 1024,
        crate::package::SIZE_BUDGET / 1024,
    );
    for (what, download, limits) in [
        (
            "What the signup page downloads",
            &sizes.signup,
            format!("budget {budget} KB, aim {aim} KB"),
        ),
        (
            "What the console downloads",
            &sizes.console,
            format!("budget {console_budget} KB"),
        ),
    ] {
        let _ = writeln!(md, "| {what} | raw | gzipped |\n|---|---|---|");
        for f in &download.0 {
            let _ = writeln!(
                md,
                "| `{}` | {:.1} KB | {:.1} KB |",
                f.path,
                f.raw as f64 / 1024.0,
                f.gz as f64 / 1024.0
            );
        }
        let _ = writeln!(
            md,
            "| total | {:.1} KB | {:.1} KB ({limits}) |\n",
            download.total_raw() as f64 / 1024.0,
            download.total_gz() as f64 / 1024.0,
        );
    }
    let out = project_root().join(if quick {
        "target/BENCHMARKS.quick.md"
    } else {
        "BENCHMARKS.md"
    });
    std::fs::write(&out, &md).map_err(|e| e.to_string())?;
    print!("{md}");
    println!("written: {}", out.display());
    let errors = [
        direct.errors,
        nginx.errors,
        plain.errors,
        shared.errors,
        hello.errors,
        mix.errors,
        replicas.all.errors,
    ];
    if errors.iter().any(|e| *e > 0) {
        return Err(format!("the load runs saw unexpected errors: {errors:?}"));
    }
    Ok(())
}

/// "Where the time goes": CPU per request of each server under test, and the cold starts.
fn costs_md(
    costs: &[(&str, crate::cost::Cost, Option<crate::cost::Cost>)],
    cold: &[f64],
) -> String {
    let mut md = String::from(
        "\n### Where the time goes\n\nCPU time each server under test spent per request during its run above (user space and kernel, from `/proc/<pid>/stat`; \
         nginx is its master and workers), its context switches per request (all threads, voluntary and not, from `/proc/<pid>/task/*/status`), \
         and, for the paths that forward, what graph-sim spent per request meanwhile. All servers share core 1, so graph-sim's wake-ups preempt the forwarding server.\n\n\
         | server | user µs/request | kernel µs/request | total µs/request | context switches/request | graph-sim µs/request |\n|---|---|---|---|---|---|\n",
    );
    for (name, c, sim) in costs {
        let _ = writeln!(
            md,
            "| {name} | {:.1} | {:.1} | {:.1} | {:.2} | {} |",
            c.user_us,
            c.sys_us,
            c.total_us(),
            c.switches,
            sim.map_or_else(|| "-".to_owned(), |g| format!("{:.1}", g.total_us()))
        );
    }
    let _ = writeln!(
        md,
        "\nCold start: {} starts of the proxy (the build measured above) with its default settings and a new SQLite file each, from `exec` to `/readyz` answering 200 \
         (polled every 0.5 ms; ready means the database answers and Graph accepts the System User token): {} ms.\n\n{PROFILE}",
        cold.len(),
        cold.iter()
            .map(|ms| format!("{ms:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    md
}

/// What `perf` showed of the forwarding path, and what was changed for it.
const PROFILE: &str = include_str!("profile.md");

/// Today's date (UTC), from the system clock.
fn today() -> String {
    output("date", &["-u", "+%Y-%m-%d"])
        .map(|d| d.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_are_signed_as_meta_signs_them() {
        // RFC 4231, test cases 2 and 6 (a key longer than the block).
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            signature(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "sha256=60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn quantiles_are_nearest_rank_and_connections_add_up() {
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 100.0);
        assert_eq!(quantile(&v, 0.99), 198.0);
        assert_eq!(quantile(&v, 1.0), 200.0);
        assert!(quantile(&[], 0.5).is_nan());
        let total: u32 = (0..REPLICAS).map(replica_connections).sum();
        assert_eq!(total, CONNECTIONS);
    }
}
