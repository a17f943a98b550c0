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
    let mut c = pins.load.command("wrk");
    if let Some(s) = script {
        c.arg("-s").arg(s);
    }
    c.args([
        "-t",
        "2",
        "-c",
        "64",
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
        .env("WABA_LOG", "warn");
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
    kids.0.push(spawn(
        &mut proxy(shared_port, Some("3000")),
        shared_port,
        "waba-proxy (sharing)",
    )?);
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
    let path = format!("102289599326934?{QUERY}");
    let signup = format!("Authorization: Bearer {SIGNUP}");
    let direct = wrk(
        &pins,
        &format!("http://127.0.0.1:{sim_port}/v26.0/{path}"),
        Some(&format!("Authorization: Bearer {SYSTEM}")),
        None,
        secs,
    )?;
    let nginx = wrk(
        &pins,
        &format!("http://127.0.0.1:{nginx_port}/graph/{path}"),
        None,
        None,
        secs,
    )?;
    let plain = wrk(
        &pins,
        &format!("http://127.0.0.1:{plain_port}/graph/{path}"),
        Some(&signup),
        None,
        secs,
    )?;
    let shared = wrk(
        &pins,
        &format!("http://127.0.0.1:{shared_port}/graph/{path}"),
        Some(&signup),
        None,
        secs,
    )?;
    let script = mix_script(&dir)?;
    let (mix, mem) = load_test(
        &pins,
        &format!("http://127.0.0.1:{load_port}"),
        load_pid,
        &script,
        load_secs,
    )?;
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
         | load test ({load_secs} s, 64 connections, 6 routes): unexpected errors | {} of {} | 0 |\n\
         | proxy RSS idle / peak / after the load | {:.1} / {:.1} / {:.1} MiB | flat |\n\
         | npm package, gzipped | {:.1} KB | 40 KB aim, 80 KB budget |\n",
        shared.rps / nginx.rps,
        shared.p99_ms / nginx.p99_ms,
        plain.rps / nginx.rps,
        plain.p99_ms / nginx.p99_ms,
        mix.errors,
        mix.requests,
        mib(mem.idle),
        mib(mem.peak),
        mib(mem.after),
        sizes.total_gz() as f64 / 1024.0,
    );
    let _ = writeln!(
        md,
        "## Proxy overhead\n\n`wrk -t2 -c64 -d{secs}s --latency` with keep-alive, `GET` of one WABA (`{QUERY}`) from graph-sim's demo scenario; {}. \
         nginx only adds the System User's `Authorization` header; waba-proxy also authenticates the caller (a signup token, checked with `debug_token` once and then cached), \
         authorises the WABA against the token's grants, validates the path and fields, re-serialises the answer from the typed model and scrubs it of secrets. \
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
    md.push_str(&browser_md);
    let _ = writeln!(
        md,
        "\n## npm package\n\nBuilt by `cargo xtask package` (wasm-release profile on the pinned nightly with `-Zbuild-std`, `panic=immediate-abort` and no panic locations, `wasm-opt -Oz --converge`, wasm-bindgen).\n\n\
         | file | raw | gzipped |\n|---|---|---|\n| wasm | {:.1} KB | {:.1} KB |\n| JS glue | {:.1} KB | {:.1} KB |\n| total | {:.1} KB | {:.1} KB (aim 40 KB, budget 80 KB) |",
        sizes.wasm.0 as f64 / 1024.0,
        sizes.wasm.1 as f64 / 1024.0,
        sizes.js.0 as f64 / 1024.0,
        sizes.js.1 as f64 / 1024.0,
        (sizes.wasm.0 + sizes.js.0) as f64 / 1024.0,
        sizes.total_gz() as f64 / 1024.0
    );
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
        mix.errors,
    ];
    if errors.iter().any(|e| *e > 0) {
        return Err(format!("the load runs saw unexpected errors: {errors:?}"));
    }
    Ok(())
}

/// Today's date (UTC), from the system clock.
fn today() -> String {
    output("date", &["-u", "+%Y-%m-%d"])
        .map(|d| d.trim().to_owned())
        .unwrap_or_default()
}
