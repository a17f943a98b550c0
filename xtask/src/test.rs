//! `cargo xtask test`: every check the project has, in one command.

use crate::run::{Res, Totals, cargo, run, run_counting};
use crate::setup;

/// Runs every step, even after one fails, then reports all failures and the test totals.
pub fn run_all(_args: &[String]) -> Res {
    setup::all()?;
    let mut totals = Totals::default();
    let mut failures: Vec<String> = Vec::new();
    let mut step = |name: &str, result: Res| {
        if let Err(e) = result {
            eprintln!("xtask: step `{name}` failed: {e}");
            failures.push(name.to_owned());
        }
    };

    step("fmt", run(cargo(&["fmt", "--all", "--", "--check"])));
    step(
        "clippy",
        run(cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])),
    );
    step(
        "clippy (wasm32)",
        run(cargo(&[
            "clippy",
            "-p",
            "waba-onboard",
            "-p",
            "waba-graph",
            "--target",
            "wasm32-unknown-unknown",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])),
    );
    step(
        "native tests",
        run_counting(cargo(&["test", "--workspace"]), &mut totals),
    );
    let mut wasm = cargo(&[
        "test",
        "-p",
        "waba-onboard",
        "--target",
        "wasm32-unknown-unknown",
    ]);
    wasm.env(
        "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
        setup::wasm_bindgen_tool("wasm-bindgen-test-runner"),
    )
    .env("CHROMEDRIVER", setup::chromedriver())
    .env("WASM_BINDGEN_TEST_TIMEOUT", "60");
    step(
        "wasm tests (headless Chromium)",
        run_counting(wasm, &mut totals),
    );
    step("demo smoke (headless Chromium)", crate::demo::smoke());

    println!();
    if failures.is_empty() {
        println!("xtask: every step passed");
    } else {
        println!("xtask: failed steps: {}", failures.join(", "));
    }
    println!(
        "xtask: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} step(s) failed", failures.len()))
    }
}
