//! Running commands: echoed before they run, failures reported with the command line.

use std::process::{Command, Stdio};

/// Result of a task.
pub type Res = Result<(), String>;

fn shown(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// A command in the project root.
pub fn cmd(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args).current_dir(crate::project_root());
    c
}

/// `cargo` as the caller's cargo.
pub fn cargo(args: &[&str]) -> Command {
    cmd(
        &std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        args,
    )
}

/// Runs a command to completion; an error names it.
pub fn run(mut c: Command) -> Res {
    println!("$ {}", shown(&c));
    let status = c
        .status()
        .map_err(|e| format!("cannot run `{}`: {e}", shown(&c)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", shown(&c)))
    }
}

/// Runs a command, streaming its stdout through while collecting `test result:` lines.
pub fn run_counting(mut c: Command, totals: &mut Totals) -> Res {
    use std::io::{BufRead, BufReader};
    println!("$ {}", shown(&c));
    c.stdout(Stdio::piped());
    let mut child = c
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", shown(&c)))?;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            totals.add_line(&line);
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", shown(&c)))
    }
}

/// The output of a command, if it ran and succeeded.
pub fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Test counts summed over every `test result:` line seen.
#[derive(Debug, Default)]
pub struct Totals {
    /// Passed.
    pub passed: u64,
    /// Failed.
    pub failed: u64,
    /// Ignored.
    pub ignored: u64,
}

impl Totals {
    /// Adds the counts of a libtest summary line (`test result: ok. 3 passed; 0 failed; ...`).
    pub fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result:") else {
            return;
        };
        for part in rest.split([';', '.']) {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Totals;

    #[test]
    fn sums_libtest_lines() {
        let mut t = Totals::default();
        t.add_line("test result: ok. 29 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s");
        t.add_line(
            "test result: FAILED. 8 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        t.add_line("running 3 tests");
        assert_eq!((t.passed, t.failed, t.ignored), (37, 1, 1));
    }
}
