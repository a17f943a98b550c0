//! `cargo xtask`: the project's tasks, with few dependencies.
//!
//! - `cargo xtask demo [--smoke]`: build, start the Graph simulator with the demo scenario,
//!   serve the pages, print the URL; `--smoke` checks the page in headless Chromium and exits.
//! - `cargo xtask test`: every check (fmt, clippy, native tests, wasm tests in headless
//!   Chromium, end-to-end), installing what a fresh Debian machine lacks.
//! - `cargo xtask image`: the container image of `waba-proxy` (podman, `FROM scratch`).

mod bench;
mod contract;
mod cost;
mod demo;
mod fuzz;
mod image;
mod kubernetes;
mod package;
mod postgres;
mod run;
mod setup;
mod site;
mod test;
mod typescript;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  demo [--smoke] [--port N]   run the demo on the Graph simulator (no Meta account needed);
                              --smoke drives it once in headless Chromium and exits
  test [STEP...]              fmt, clippy, native tests, wasm tests in headless Chromium,
                              end-to-end tests; installs missing tools first. With STEPs
                              (fmt clippy native contract package image kubernetes wasm
                              e2e fuzz smoke bench), only those
  package [--names]           build the npm package into target/npm/waba-onboard; --names also
                              builds its wasm with function names kept, for twiggy
  screenshots                 refresh docs/*.png (the README's pictures) from the e2e tests
  fuzz [--seconds N] [target]  run the cargo-fuzz targets (nightly), N seconds each (default 60)
  bench [--quick]             load-test graph-sim, waba-proxy and nginx; write BENCHMARKS.md
  image [--test]              build the container image of waba-proxy with podman
                              (FROM scratch, static musl binary): localhost/waba-proxy;
                              --test checks a fresh build as `test` does, keeping nothing
  kubernetes                  check deploy/kubernetes/ with kubernetes-validate --strict
  postgres                    start a throwaway PostgreSQL server (TLS, password login),
                              print its URL and CA certificate, stop it on Enter or Ctrl-C
  setup                       only install the tools the tests need
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo::run_demo(&args[1..]),
        Some("test") => test::run_all(&args[1..]),
        Some("setup") => setup::all(),
        Some("package") => setup::all().and_then(|()| package::command(&args[1..])),
        Some("screenshots") => setup::all().and_then(|()| test::screenshots()),
        Some("fuzz") => fuzz::command(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        Some("image") => image::command(&args[1..]),
        Some("kubernetes") => kubernetes::validate(),
        Some("postgres") => postgres::command(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root (the parent of `xtask/`).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
