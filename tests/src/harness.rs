//! Starting the project's real processes for tests, the demo and benchmarks, and stopping
//! them again: every child is killed when its handle drops.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
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
}

impl Running {
    /// Starts `cmd` and waits (up to `wait`) for a stdout line containing `marker` followed by
    /// a URL. Its other output goes on to this process's stderr.
    pub fn start(mut cmd: Command, marker: &str, wait: Duration) -> std::io::Result<Self> {
        cmd.stdout(Stdio::piped()).stdin(Stdio::null());
        let mut child = cmd.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("child has no stdout"))?;
        let (tx, rx) = mpsc::channel();
        let wanted = marker.to_owned();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split(&wanted).nth(1).filter(|_| !sent) {
                    sent = tx.send(rest.trim().to_owned()).is_ok();
                    continue;
                }
                eprintln!("{line}");
            }
        });
        match rx.recv_timeout(wait) {
            Ok(url) => Ok(Self { child, url }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                Err(std::io::Error::other(format!(
                    "process did not print `{marker}` within {wait:?} (exit: {status:?})"
                )))
            }
        }
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
