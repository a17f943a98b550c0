//! What a request costs the servers of `cargo xtask bench` (CPU time in user space and in the
//! kernel, and context switches, read from `/proc` around a load run), and how long the proxy
//! takes from its start to `/readyz` answering 200.

use std::process::Command;
use std::time::{Duration, Instant};

/// CPU time and context switches of some processes (all their threads), at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    user_ticks: u64,
    sys_ticks: u64,
    switches: u64,
}

/// What one request cost a server, averaged over a load run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    /// CPU time in user space, µs per request.
    pub user_us: f64,
    /// CPU time in the kernel, µs per request.
    pub sys_us: f64,
    /// Context switches (voluntary and not) per request.
    pub switches: f64,
}

impl Cost {
    /// User and kernel time together, µs per request.
    pub fn total_us(&self) -> f64 {
        self.user_us + self.sys_us
    }
}

/// `pids` and their child processes (nginx's workers under its master).
pub fn with_children(pids: &[u32]) -> Vec<u32> {
    let mut all = pids.to_vec();
    for pid in pids {
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        all.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
    }
    all
}

/// The usage of `pids` now.
pub fn usage(pids: &[u32]) -> Usage {
    let mut total = Usage::default();
    for pid in pids {
        // Fields after the command name (which may hold spaces) start at the state, field 3.
        if let Some(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.to_owned()))
        {
            let field = |n: usize| {
                stat.split_whitespace()
                    .nth(n - 3)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            total.user_ticks += field(14);
            total.sys_ticks += field(15);
        }
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            total.switches += status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    total
}

/// Clock ticks per second of `/proc/*/stat`'s times (asked of `getconf` once).
fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        crate::run::output("getconf", &["CLK_TCK"])
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// The cost per request between two usages over `requests` requests.
pub fn per_request(before: Usage, after: Usage, requests: u64) -> Cost {
    let n = requests.max(1) as f64;
    let us_per_tick = 1e6 / ticks_per_second();
    Cost {
        user_us: after.user_ticks.saturating_sub(before.user_ticks) as f64 * us_per_tick / n,
        sys_us: after.sys_ticks.saturating_sub(before.sys_ticks) as f64 * us_per_tick / n,
        switches: after.switches.saturating_sub(before.switches) as f64 / n,
    }
}

/// Milliseconds from starting `command` (a proxy listening on loopback `port`) to its
/// `/readyz` answering 200, polled every half millisecond; the process is stopped after.
pub fn cold_start(mut command: Command, port: u16) -> Result<f64, String> {
    use std::io::{Read as _, Write as _};
    let started = Instant::now();
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the proxy: {e}"))?;
    let ready = loop {
        if started.elapsed() > Duration::from_secs(10) {
            break Err("the proxy was not ready within 10 s".to_owned());
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Err(format!("the proxy exited ({status})"));
        }
        let answer = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
            let mut head = [0u8; 12];
            s.read_exact(&mut head)?;
            Ok(head)
        });
        match answer {
            Ok(head) if head.starts_with(b"HTTP/1.1 200") => {
                break Ok(started.elapsed().as_secs_f64() * 1000.0);
            }
            _ => std::thread::sleep(Duration::from_micros(500)),
        }
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    ready
}
