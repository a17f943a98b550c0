//! Installs what the tests need and a fresh Debian machine lacks, saying what it does:
//! the pinned toolchain of `rust-toolchain.toml` (with the wasm32 target), the pinned nightly
//! of [`NIGHTLY`] (with `rust-src`), Debian's Chromium, ChromeDriver and binaryen (`wasm-opt`),
//! `wasm-bindgen-cli` at exactly the pinned version, npm packages from lock files (again when
//! a lock file changed since they were installed), Debian's
//! PostgreSQL server and `openssl` (the proxy's store tests), what the container image needs
//! (the musl target, Debian's `podman`, `musl-tools` and `ca-certificates`), and a Python venv
//! under `target/` with `kubernetes-validate` for the Kubernetes manifests, Schemathesis for
//! the proxy's OpenAPI contract and `standardwebhooks` for the outbound webhooks' Python
//! verifier (`tests/outbound/verify.py`; its Node twin's package comes from
//! `tests/outbound/package-lock.json` like every npm project's).

use crate::run::{Res, cargo, cmd, output, run};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Installs everything missing.
pub fn all() -> Res {
    rust_target("wasm32-unknown-unknown")?;
    nightly()?;
    browser()?;
    wasm_bindgen_cli()?;
    npm_packages()?;
    postgres()?;
    container()?;
    python_tools()
}

/// The toolchain of `rust-toolchain.toml` with `target` (which it names, so installing the
/// toolchain usually brings it; else it is added).
fn rust_target(target: &str) -> Res {
    let has = || {
        output("rustup", &["target", "list", "--installed"])
            .is_some_and(|o| o.lines().any(|l| l.trim() == target))
    };
    if has() {
        return Ok(());
    }
    println!("setup: installing the toolchain of rust-toolchain.toml (with {target})");
    run(cmd("rustup", &["toolchain", "install"]))?;
    if !has() {
        run(cmd("rustup", &["target", "add", target]))?;
    }
    Ok(())
}

/// The nightly toolchain, pinned to a date so every machine builds the same bytes. It builds
/// only the npm package's wasm (`-Zbuild-std` with `panic=immediate-abort` and no panic
/// locations) and runs the fuzz targets; everything else uses `rust-toolchain.toml`'s release.
pub const NIGHTLY: &str = "nightly-2026-05-19";

/// `cargo` of [`NIGHTLY`] (through rustup, whatever toolchain runs xtask).
pub fn nightly_cargo(args: &[&str]) -> Command {
    let mut c = cmd("rustup", &["run", NIGHTLY, "cargo"]);
    c.args(args).env_remove("RUSTC").env_remove("RUSTDOC");
    c
}

/// Installs [`NIGHTLY`] with `rust-src` when missing.
pub fn nightly() -> Res {
    let has = output(
        "rustup",
        &["component", "list", "--installed", "--toolchain", NIGHTLY],
    )
    .is_some_and(|o| o.lines().any(|l| l.trim() == "rust-src"));
    if has {
        return Ok(());
    }
    println!("setup: installing {NIGHTLY} with rust-src (the package's wasm build, fuzzing)");
    run(cmd(
        "rustup",
        &[
            "toolchain",
            "install",
            NIGHTLY,
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ],
    ))
}

/// Debian's Chromium binary, or `$CHROMIUM`.
pub fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// Debian's ChromeDriver binary, or `$CHROMEDRIVER`.
pub fn chromedriver() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

fn browser() -> Res {
    let have_browser = Path::new(&chromium()).exists() && Path::new(&chromedriver()).exists();
    let have_wasm_opt = output("wasm-opt", &["--version"]).is_some();
    if have_browser && have_wasm_opt {
        return Ok(());
    }
    install(
        &["chromium", "chromium-driver", "binaryen"],
        "the browser tests and wasm-opt",
        " (or set CHROMIUM and CHROMEDRIVER)",
    )
}

/// Installs Debian's `packages` with apt-get, saying `why`; on failure, says how to install
/// them by hand (and `hint`).
fn install(packages: &[&str], why: &str, hint: &str) -> Res {
    println!(
        "setup: installing Debian's {} with apt-get ({why})",
        packages.join(", ")
    );
    apt(packages).map_err(|e| {
        format!(
            "{e}; or install them yourself: `sudo apt-get install {}`{hint}",
            packages.join(" ")
        )
    })
}

/// Installs Debian's `postgresql` when no `initdb` is found under `/usr/lib/postgresql/*/bin`,
/// and `openssl` (for the test server's certificates) when missing. The cluster that the
/// package's postinst may create and start on port 5432 is neither used nor touched: the tests
/// run their own server (`crate::postgres`).
pub fn postgres() -> Res {
    let mut packages = Vec::new();
    if crate::postgres::bin_dir().is_none() {
        packages.push("postgresql");
    }
    if output("openssl", &["version"]).is_none() {
        packages.push("openssl");
    }
    if packages.is_empty() {
        return Ok(());
    }
    install(
        &packages,
        "a PostgreSQL server for the proxy's store tests",
        "",
    )
}

/// Installs Debian `packages` with apt-get (as root; updates the package lists first).
pub fn apt(packages: &[&str]) -> Res {
    let is_root = output("id", &["-u"]).is_some_and(|o| o.trim() == "0");
    if !is_root {
        return Err(format!(
            "{} missing and installing needs root",
            packages.join(", ")
        ));
    }
    let mut update = cmd("apt-get", &["update", "-q"]);
    update.env("DEBIAN_FRONTEND", "noninteractive");
    run(update)?;
    let mut install = cmd(
        "apt-get",
        &["install", "-y", "-q", "--no-install-recommends"],
    );
    install.args(packages);
    install.env("DEBIAN_FRONTEND", "noninteractive");
    run(install)
}

/// The exact `wasm-bindgen` version pinned in the workspace `Cargo.toml`.
pub fn pinned_wasm_bindgen() -> Result<String, String> {
    manifest_value("wasm-bindgen = \"=")
        .ok_or_else(|| "Cargo.toml does not pin wasm-bindgen with `=X.Y.Z`".into())
}

/// The first quoted value in the workspace `Cargo.toml` on a line starting with `prefix`
/// (which ends where the value begins), up to its closing quote.
pub fn manifest_value(prefix: &str) -> Option<String> {
    let manifest = std::fs::read_to_string(crate::project_root().join("Cargo.toml")).ok()?;
    manifest.lines().find_map(|l| {
        let rest = l.trim().strip_prefix(prefix)?;
        Some(rest.split('"').next()?.to_owned())
    })
}

/// Where `cargo install` puts binaries.
fn cargo_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default()
        .join("bin")
}

/// A wasm-bindgen tool (`wasm-bindgen`, `wasm-bindgen-test-runner`) by absolute path when
/// `cargo install` put it in cargo's bin directory.
pub fn wasm_bindgen_tool(name: &str) -> String {
    let installed = cargo_bin_dir().join(name);
    if installed.exists() {
        installed.display().to_string()
    } else {
        name.to_owned()
    }
}

fn wasm_bindgen_cli() -> Res {
    let want = pinned_wasm_bindgen()?;
    let have = output(&wasm_bindgen_tool("wasm-bindgen"), &["--version"]);
    if have.as_deref().map(str::trim) == Some(format!("wasm-bindgen {want}").as_str()) {
        return Ok(());
    }
    println!(
        "setup: installing wasm-bindgen-cli {want} to match the pinned wasm-bindgen (found: {})",
        have.as_deref().map(str::trim).unwrap_or("none")
    );
    // Not `--locked`: the registry here lacks some of that crate's locked dependency versions.
    run(cargo(&[
        "install",
        "wasm-bindgen-cli",
        "--version",
        &format!("={want}"),
    ]))
}

/// Folders with a committed `package-lock.json` (outside `node_modules`).
pub fn npm_projects() -> Vec<PathBuf> {
    let root = crate::project_root();
    let mut found = Vec::new();
    let mut stack = vec![root.join("tests"), root.join("www"), root.join("wasm")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n != "node_modules" && n != "target")
            {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "package-lock.json") {
                found.push(dir.clone());
            }
        }
    }
    found.sort();
    found
}

/// Whether `dir`'s packages were installed from its lock file as it is now (npm writes
/// `node_modules/.package-lock.json` when it installs; a lock file changed since is newer).
fn npm_installed(dir: &Path) -> bool {
    let modified = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (
        modified(dir.join("node_modules/.package-lock.json")),
        modified(dir.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed >= lock,
        _ => false,
    }
}

fn npm_packages() -> Res {
    for dir in npm_projects() {
        if npm_installed(&dir) {
            continue;
        }
        println!(
            "setup: installing npm packages of {} from its lock file",
            dir.display()
        );
        let mut c = cmd("npm", &["ci", "--no-audit", "--no-fund"]);
        c.current_dir(&dir);
        run(c)?;
    }
    Ok(())
}

/// The target of the container image's static `waba-proxy` (named in `rust-toolchain.toml`).
pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

/// What `cargo xtask image` needs: the musl target of `rust-toolchain.toml`, Debian's
/// `podman` (builds the image), `musl-tools` (`musl-gcc`: the C code of aws-lc-sys, SQLite and
/// mimalloc is compiled for the musl target too) and `ca-certificates` (the image's CA roots).
pub fn container() -> Res {
    rust_target(MUSL_TARGET)?;
    let mut missing: Vec<&str> = [("podman", "podman"), ("musl-gcc", "musl-tools")]
        .into_iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(_, package)| package)
        .collect();
    if !Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        missing.push("ca-certificates");
    }
    if missing.is_empty() {
        return Ok(());
    }
    install(&missing, "the container image", "")
}

/// Whether `program` is an executable file in a directory of `$PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program)).is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
    })
}

/// The exact `kubernetes-validate` release the manifests are checked with (PyPI).
pub const KUBERNETES_VALIDATE: &str = "1.37.0";

/// The Python venv that holds the test tools from PyPI.
pub fn venv_dir() -> PathBuf {
    crate::project_root().join("target/venv")
}

/// The `kubernetes-validate` command of the venv.
pub fn kubernetes_validate_bin() -> PathBuf {
    venv_dir().join("bin/kubernetes-validate")
}

/// The exact Schemathesis release the proxy's OpenAPI contract is checked with (PyPI).
pub const SCHEMATHESIS: &str = "4.32.5";

/// The `schemathesis` command of the venv.
pub fn schemathesis_bin() -> PathBuf {
    venv_dir().join("bin/schemathesis")
}

/// The exact `standardwebhooks` release (PyPI, the Standard Webhooks reference library) that
/// `tests/outbound/verify.py` checks webhook-receiver's log with.
pub const STANDARDWEBHOOKS: &str = "1.3.0";

/// A venv in `target/venv` with `kubernetes-validate` at [`KUBERNETES_VALIDATE`],
/// Schemathesis at [`SCHEMATHESIS`] and `standardwebhooks` at [`STANDARDWEBHOOKS`] (Debian's
/// `python3-venv` through apt-get when `python3 -m venv` cannot make one).
pub fn python_tools() -> Res {
    let venv = venv_dir();
    let python = venv.join("bin/python3");
    let cli_version = ["--version"].as_slice();
    // A library has no command: the venv's Python prints the version pip recorded.
    let library_version = [
        "-c",
        "import importlib.metadata as m; print(m.version('standardwebhooks'))",
    ];
    let wanted = [
        (
            "kubernetes-validate",
            KUBERNETES_VALIDATE,
            kubernetes_validate_bin(),
            cli_version,
        ),
        (
            "schemathesis",
            SCHEMATHESIS,
            schemathesis_bin(),
            cli_version,
        ),
        (
            "standardwebhooks",
            STANDARDWEBHOOKS,
            python.clone(),
            library_version.as_slice(),
        ),
    ];
    // Each probe prints the installed version as a word of its output.
    let missing: Vec<String> = wanted
        .iter()
        .filter(|(_, version, program, probe)| {
            !output(&program.display().to_string(), probe)
                .is_some_and(|v| v.split_whitespace().any(|w| w == *version))
        })
        .map(|(name, version, _, _)| format!("{name}=={version}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !python.exists() {
        println!("setup: creating a Python venv in {}", venv.display());
        let make = |python: &str| {
            let mut c = cmd(python, &["-m", "venv"]);
            c.arg(&venv);
            run(c)
        };
        if make("python3").is_err() {
            let _ = std::fs::remove_dir_all(&venv);
            println!("setup: installing Debian's python3-venv with apt-get (for the venv)");
            apt(&["python3", "python3-venv"]).map_err(|e| {
                format!("{e}; or install it yourself: `sudo apt-get install python3-venv`")
            })?;
            make("/usr/bin/python3")?;
        }
    }
    println!(
        "setup: installing {} into the venv (PyPI)",
        missing.join(", ")
    );
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--quiet"])
        .args(&missing)
        .current_dir(crate::project_root());
    run(pip)
}
