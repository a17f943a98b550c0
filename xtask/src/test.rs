//! `cargo xtask test`: every check the project has, in one command.

use crate::run::{Res, Totals, cargo, run, run_counting};
use crate::setup;

/// The steps by the names `cargo xtask test STEP...` takes, in the order they run.
pub const STEPS: [&str; 12] = [
    "fmt",
    "clippy",
    "native",
    "contract",
    "package",
    "image",
    "kubernetes",
    "wasm",
    "e2e",
    "fuzz",
    "smoke",
    "bench",
];

/// Runs every step (or only the steps named in `args`, see [`STEPS`]), even after one fails,
/// then reports all failures and the test totals.
pub fn run_all(args: &[String]) -> Res {
    if let Some(unknown) = args.iter().find(|a| !STEPS.contains(&a.as_str())) {
        return Err(format!(
            "unknown step `{unknown}`; the steps are {}",
            STEPS.join(", ")
        ));
    }
    let wanted = |key: &str| args.is_empty() || args.iter().any(|a| a == key);
    setup::all()?;
    let mut totals = Totals::default();
    let mut failures: Vec<String> = Vec::new();
    let mut step = |name: &str, result: Res| {
        if let Err(e) = result {
            eprintln!("xtask: step `{name}` failed: {e}");
            failures.push(name.to_owned());
        }
    };

    if wanted("fmt") {
        step("fmt", run(cargo(&["fmt", "--all", "--", "--check"])));
    }
    if wanted("clippy") {
        step(
            "clippy",
            run(cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ])),
        );
        // The signup page's module (no features) and the console's (`console`), each as built.
        for features in ["", "console"] {
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
                    "--features",
                    features,
                    "--",
                    "-D",
                    "warnings",
                ])),
            );
        }
    }
    // The proxy's PostgreSQL store tests and multi-replica tests run against a real server,
    // started for this step and stopped after it; the step fails if it cannot start.
    if wanted("native") {
        step(
            "native tests",
            crate::postgres::with_postgres(|pg| {
                let mut native = cargo(&["test", "--workspace"]);
                pg.set_env(&mut native);
                run_counting(native, &mut totals)
            })
            .and_then(|tests| tests),
        );
    }
    if wanted("contract") {
        step(
            "OpenAPI contract (Schemathesis against waba-proxy in front of graph-sim)",
            crate::contract::test(&mut totals),
        );
    }
    if wanted("package") {
        step("npm package and size budget", package_and_size(&mut totals));
        step(
            "the README's TypeScript against the tarball (tsc --strict, 5.9 and 7.0)",
            crate::typescript::check(&mut totals),
        );
    }
    if wanted("image") {
        step(
            "container image (podman build, export, run the binary)",
            counted(crate::image::test(), &mut totals),
        );
    }
    if wanted("kubernetes") {
        step(
            "Kubernetes manifests (kubernetes-validate --strict)",
            counted(crate::kubernetes::validate(), &mut totals),
        );
    }
    if wanted("wasm") {
        step("wasm tests (headless Chromium)", wasm_tests(&mut totals));
    }
    if wanted("e2e") {
        step(
            "end-to-end tests (headless Chromium)",
            e2e_tests(&mut totals),
        );
    }
    if wanted("fuzz") {
        step(
            "fuzz (10 s per target)",
            crate::fuzz::run_targets(10, crate::fuzz::TARGETS, &mut totals),
        );
    }
    if wanted("smoke") {
        step("demo smoke (headless Chromium)", crate::demo::smoke());
    }
    if wanted("bench") {
        step(
            "bench, quick mode (proves `cargo xtask bench` works; its numbers fail nothing)",
            crate::bench::bench(&["--quick".to_owned()]),
        );
        step("the bench left no nginx process behind", {
            let left = crate::bench::leftover_nginx();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("still running: {}", left.join(", ")))
            }
        });
    }

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

/// Builds the npm package and checks what the signup page and the console download against
/// their budgets (counted as one test).
fn package_and_size(totals: &mut Totals) -> Res {
    let sizes = crate::package::build()?;
    let checked = crate::package::check_size(&sizes);
    match &checked {
        Ok(()) => totals.passed += 1,
        Err(_) => totals.failed += 1,
    }
    checked
}

/// A step that is one test of its own: its outcome counts as passed or failed.
pub fn counted(result: Res, totals: &mut Totals) -> Res {
    match &result {
        Ok(()) => totals.passed += 1,
        Err(_) => totals.failed += 1,
    }
    result
}

/// The wasm tests in headless Chromium, with a live graph-sim and waba-proxy whose CORS
/// allows the test runner's origin.
fn wasm_tests(totals: &mut Totals) -> Res {
    let runner = crate::demo::free_port()?;
    let ports = crate::demo::Ports::free()?;
    let origin = format!("http://127.0.0.1:{runner}");
    let _stack = crate::demo::start(ports, &["--cors-origin".into(), origin])?;
    let mut wasm = cargo(&[
        "test",
        "-p",
        "waba-onboard",
        "--target",
        "wasm32-unknown-unknown",
        "--features",
        "console",
    ]);
    wasm.env(
        "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
        setup::wasm_bindgen_tool("wasm-bindgen-test-runner"),
    )
    .env("CHROMEDRIVER", setup::chromedriver())
    .env("WASM_BINDGEN_TEST_TIMEOUT", "120")
    .env("WASM_BINDGEN_TEST_ADDRESS", format!("127.0.0.1:{runner}"))
    .env("WASM_BINDGEN_TEST_NO_ORIGIN_ISOLATION", "1")
    .env(
        "WABA_TEST_PROXY_URL",
        format!("http://127.0.0.1:{}", ports.proxy),
    )
    .env(
        "WABA_TEST_SIM_URL",
        format!("http://127.0.0.1:{}", ports.sim),
    );
    run_counting(wasm, totals)
}

/// The end-to-end tests: real pages in headless Chromium against waba-proxy and graph-sim (the
/// signup page, the console on its own entry point, a Vite app built from the tarball).
fn e2e_tests(totals: &mut Totals) -> Res {
    crate::demo::build_binaries()?;
    build_fixture("vite-app")?;
    build_fixture("esbuild-app")?;
    build_fixture("react-app")?;
    // The React binding on a server: imported and rendered by react-dom/server in Node.
    let mut ssr = crate::run::cmd("npm", &["run", "ssr"]);
    ssr.current_dir(crate::project_root().join("tests/fixtures/react-app"));
    let ssr = counted(run(ssr), totals);
    let mut e2e = cargo(&[
        "test",
        "-p",
        "waba-testkit",
        "--features",
        "e2e",
        "--test",
        "e2e_signup",
        "--test",
        "e2e_console",
        "--test",
        "e2e_vite",
        "--test",
        "e2e_react",
        "--",
        "--test-threads",
        "2",
    ]);
    e2e.env("CHROMEDRIVER", setup::chromedriver())
        .env("CHROMIUM", setup::chromium());
    let browsers = run_counting(e2e, totals);
    ssr.and(browsers)
}

/// A fixture app under `tests/fixtures/`: its locked packages (`npm ci` by setup), the freshly
/// packed tarball installed the way a frontend team would, and a production build.
pub fn build_fixture(name: &str) -> Res {
    let dir = crate::project_root().join("tests/fixtures").join(name);
    let tarball = crate::package::tarball()?;
    let mut install = crate::run::cmd("npm", &["install", "--no-save", "--no-audit", "--no-fund"]);
    install.arg(&tarball).current_dir(&dir);
    run(install)?;
    let mut build = crate::run::cmd("npm", &["run", "build"]);
    build.current_dir(&dir);
    run(build)
}

/// `cargo xtask screenshots`: runs the end-to-end tests that take the README's pictures and
/// copies them into `docs/`.
pub fn screenshots() -> Res {
    crate::package::build()?;
    crate::demo::build_binaries()?;
    let mut shots = cargo(&[
        "test",
        "-p",
        "waba-testkit",
        "--features",
        "e2e",
        "--test",
        "e2e_signup",
        "--test",
        "e2e_console",
        "--",
        "happy_path",
        "ten_thousand",
    ]);
    shots
        .env("CHROMEDRIVER", setup::chromedriver())
        .env("CHROMIUM", setup::chromium());
    run(shots)?;
    let root = crate::project_root();
    std::fs::create_dir_all(root.join("docs")).map_err(|e| e.to_string())?;
    for name in ["signup.png", "console.png"] {
        std::fs::copy(
            root.join("artifacts").join(name),
            root.join("docs").join(name),
        )
        .map_err(|e| format!("{name}: {e}"))?;
        println!("docs/{name} updated");
    }
    Ok(())
}
