//! `cargo xtask fuzz [--seconds N] [target ...]`: the cargo-fuzz targets in `fuzz/` on the
//! nightly toolchain. The committed corpus in `fuzz/corpus/<target>` seeds each run; what a
//! run discovers goes to `target/fuzz-corpus/<target>`, so the tree stays clean. A crash stops
//! the run and leaves its input in `fuzz/artifacts/`.

use crate::run::{Res, Totals, cmd, output, run};

/// Every target.
pub const TARGETS: &[&str] = &[
    "session_message",
    "login_response",
    "graph_responses",
    "input_validators",
];

/// cargo-fuzz, pinned like every other tool.
const CARGO_FUZZ: &str = "0.13.2";

/// Installs the pinned nightly toolchain and cargo-fuzz when missing.
fn setup() -> Res {
    crate::setup::nightly()?;
    let want = format!("cargo-fuzz {CARGO_FUZZ}");
    if output("cargo", &["fuzz", "--version"]).is_none_or(|v| v.trim() != want) {
        println!("setup: installing {want}");
        run(cmd(
            "cargo",
            &[
                "install",
                "cargo-fuzz",
                "--version",
                &format!("={CARGO_FUZZ}"),
            ],
        ))?;
    }
    Ok(())
}

/// Runs `targets` for `seconds` each; counts each clean run as a passed check. When the
/// nightly toolchain or cargo-fuzz cannot be installed on this machine, the runs are counted
/// as skipped and the reason is printed.
pub fn run_targets(seconds: u32, targets: &[&str], totals: &mut Totals) -> Res {
    if let Err(e) = setup() {
        println!(
            "fuzz: skipped {} targets: the nightly toolchain or cargo-fuzz is not available ({e})",
            targets.len()
        );
        totals.ignored += targets.len() as u64;
        return Ok(());
    }
    for t in targets {
        if !TARGETS.contains(t) {
            return Err(format!(
                "unknown fuzz target `{t}` (have: {})",
                TARGETS.join(", ")
            ));
        }
        let work = crate::project_root().join("target/fuzz-corpus").join(t);
        std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
        let mut c = crate::setup::nightly_cargo(&["fuzz", "run", t]);
        c.arg(&work)
            .arg(crate::project_root().join("fuzz/corpus").join(t))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg("-rss_limit_mb=2048");
        match run(c) {
            Ok(()) => {
                println!("fuzz: {t} ran {seconds} s without a failure");
                totals.passed += 1;
            }
            Err(e) => {
                totals.failed += 1;
                return Err(format!(
                    "fuzz target {t} failed (input kept in fuzz/artifacts/{t}): {e}"
                ));
            }
        }
    }
    Ok(())
}

/// `cargo xtask fuzz [--seconds N] [target ...]`.
pub fn command(args: &[String]) -> Res {
    let mut seconds = 60;
    let mut targets: Vec<&str> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--seconds needs a number")?;
            }
            t => targets.push(t),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    setup()?;
    let mut totals = Totals::default();
    run_targets(seconds, &targets, &mut totals)
}
