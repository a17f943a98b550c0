//! `cargo xtask package`: the npm package `waba-onboard` in `target/npm/waba-onboard/`:
//! the wasm built with the `wasm-release` profile, `wasm-bindgen` output for the `web` and
//! `bundler` targets, `wasm-opt -Oz` (Debian's binaryen), the script embed, the live status
//! stream module, the default stylesheet, `package.json`, and a size check against the budget.

use crate::project_root;
use crate::run::{Res, cmd, run};
use crate::setup;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Gzipped wasm + JS glue may not exceed this (bytes).
pub const SIZE_BUDGET: u64 = 80 * 1024;
/// What the package aims for (bytes, gzipped).
pub const SIZE_AIM: u64 = 40 * 1024;

/// The package's own files from `wasm/js/`, next to the wasm-bindgen builds: the script
/// embed, the live status stream module (ES module with its types, no side effects) and the
/// default stylesheet.
pub const JS_FILES: [&str; 4] = [
    "waba-onboard-embed.js",
    "waba-onboard-stream.js",
    "waba-onboard-stream.d.ts",
    "waba-onboard.css",
];

/// Features rustc emits for wasm32 that wasm-opt must be told about.
const WASM_OPT_FEATURES: &[&str] = &[
    "--enable-reference-types",
    "--enable-bulk-memory",
    "--enable-multivalue",
    "--enable-sign-ext",
    "--enable-nontrapping-float-to-int",
    "--enable-mutable-globals",
];

/// The packed tarball of `npm pack`.
pub fn tarball() -> Result<PathBuf, String> {
    Ok(project_root().join(format!("target/npm/waba-onboard-{}.tgz", version()?)))
}

/// The package folder.
pub fn package_dir() -> PathBuf {
    project_root().join("target/npm/waba-onboard")
}

/// Sizes of the shipped web build.
pub struct Sizes {
    /// `waba_onboard_bg.wasm`, raw and gzipped.
    pub wasm: (u64, u64),
    /// `waba_onboard.js`, raw and gzipped.
    pub js: (u64, u64),
}

impl Sizes {
    /// wasm + JS, gzipped.
    pub fn total_gz(&self) -> u64 {
        self.wasm.1 + self.js.1
    }
}

fn gz_size(path: &Path) -> Result<(u64, u64), String> {
    let raw = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let out = std::process::Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .map_err(|e| format!("gzip: {e}"))?;
    if !out.status.success() {
        return Err(format!("gzip failed on {}", path.display()));
    }
    Ok((raw, out.stdout.len() as u64))
}

/// Measures the web build.
pub fn sizes() -> Result<Sizes, String> {
    let web = package_dir().join("web");
    Ok(Sizes {
        wasm: gz_size(&web.join("waba_onboard_bg.wasm"))?,
        js: gz_size(&web.join("waba_onboard.js"))?,
    })
}

fn version() -> Result<String, String> {
    let manifest =
        std::fs::read_to_string(project_root().join("Cargo.toml")).map_err(|e| e.to_string())?;
    manifest
        .lines()
        .skip_while(|l| l.trim() != "[workspace.package]")
        .find_map(|l| {
            l.trim()
                .strip_prefix("version = \"")?
                .strip_suffix('"')
                .map(str::to_owned)
        })
        .ok_or_else(|| "no [workspace.package] version".into())
}

fn package_json(version: &str) -> String {
    format!(
        r#"{{
  "name": "waba-onboard",
  "version": "{version}",
  "description": "Embedded Signup for WhatsApp Solution Partners: parse the signup result, ask the waba-proxy, render every account's status.",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "main": "./web/waba_onboard.js",
  "module": "./web/waba_onboard.js",
  "types": "./web/waba_onboard.d.ts",
  "exports": {{
    ".": {{
      "types": "./web/waba_onboard.d.ts",
      "import": "./web/waba_onboard.js",
      "default": "./web/waba_onboard.js"
    }},
    "./bundler": {{
      "types": "./bundler/waba_onboard.d.ts",
      "import": "./bundler/waba_onboard.js",
      "default": "./bundler/waba_onboard.js"
    }},
    "./embed": "./waba-onboard-embed.js",
    "./stream": {{
      "types": "./waba-onboard-stream.d.ts",
      "default": "./waba-onboard-stream.js"
    }},
    "./waba-onboard.css": "./waba-onboard.css",
    "./waba_onboard_bg.wasm": "./web/waba_onboard_bg.wasm",
    "./package.json": "./package.json"
  }},
  "files": [
    "web/",
    "bundler/",
    "waba-onboard-embed.js",
    "waba-onboard-stream.js",
    "waba-onboard-stream.d.ts",
    "waba-onboard.css",
    "README.md"
  ],
  "sideEffects": [
    "./waba-onboard-embed.js",
    "./bundler/waba_onboard.js",
    "*.css"
  ],
  "keywords": ["whatsapp", "embedded-signup", "meta", "graph-api", "wasm"]
}}
"#
    )
}

const PACKAGE_README: &str = "# waba-onboard\n\n\
Embedded Signup for WhatsApp Solution Partners, as WebAssembly: parse the `FB.login` response \
and the `WA_EMBEDDED_SIGNUP` messages, ask a `waba-proxy` (which alone holds the System User \
token) for `debug_token` and the shared WABAs, and render every account's status.\n\n\
```ts\nimport init, { SignupListener, WabaClient, onboard, renderAccounts } from \"waba-onboard\";\n\
import \"waba-onboard/waba-onboard.css\";\n\nawait init();\n```\n\n\
Or one tag: `<script type=\"module\" src=\".../waba-onboard-embed.js\" data-proxy-url=... \
data-app-id=... data-config-id=... data-target=\"#el\"></script>`.\n\n\
Live status changes (review decisions and the like, streamed by the proxy): \
`import { followStatus } from \"waba-onboard/stream\"`.\n\n\
Every rejection is an `Error` with a stable `code` (`network`, `timeout`, `unauthorized`, \
`forbidden`, `throttled` with `retryAfter`, `graph` with `graphCode`, ...).\n";

/// Where the package's wasm is built: apart from the stable toolchain's `target/`, so the two
/// toolchains never rebuild each other's artifacts.
fn wasm_target_dir() -> PathBuf {
    project_root().join("target/wasm-package")
}

/// `RUSTFLAGS` of the package's wasm build. `panic=immediate-abort` turns a panic into a trap
/// with no formatting machinery behind it and `location-detail=none` drops the file paths and
/// line numbers every panic site would otherwise carry (absolute paths of the machine's cargo
/// registry and of rustc's library: they made the bytes differ between machines).
const WASM_RUSTFLAGS: &str = "-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none";

/// Builds the package; returns its sizes.
pub fn build() -> Result<Sizes, String> {
    let mut build = setup::nightly_cargo(&[
        "build",
        "-p",
        "waba-onboard",
        "--lib",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm-release",
        "-Zbuild-std=std,panic_abort",
    ]);
    build
        .env("CARGO_TARGET_DIR", wasm_target_dir())
        .env("RUSTFLAGS", WASM_RUSTFLAGS);
    run(build)?;
    let out = wasm_target_dir().join("wasm32-unknown-unknown/wasm-release");
    let built = out.join("waba_onboard.wasm");
    // wasm-opt 108 (Debian's) works on rustc's output; on wasm-bindgen's output it breaks the
    // externref table. So: optimise first, then let wasm-bindgen finish the module.
    let wasm = out.join("waba_onboard.opt.wasm");
    let mut opt = cmd(
        "wasm-opt",
        &["-Oz", "--converge", "--strip-debug", "--strip-producers"],
    );
    opt.args(WASM_OPT_FEATURES).arg(&built).arg("-o").arg(&wasm);
    run(opt)?;
    let dir = package_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let bindgen = setup::wasm_bindgen_tool("wasm-bindgen");
    for target in ["web", "bundler"] {
        let out = dir.join(target);
        let mut c = cmd(
            &bindgen,
            &["--target", target, "--out-name", "waba_onboard"],
        );
        c.args(["--out-dir"]).arg(&out).arg(&wasm);
        run(c)?;
    }
    // wasm-bindgen's glue is documented source; the package ships it minified (terser, from
    // `wasm/tools`' lock file): about 40% fewer gzipped bytes for the page to download.
    for glue in ["web/waba_onboard.js", "bundler/waba_onboard_bg.js"] {
        minify(&dir.join(glue))?;
    }
    for file in JS_FILES {
        std::fs::copy(project_root().join("wasm/js").join(file), dir.join(file))
            .map_err(|e| format!("copy {file}: {e}"))?;
    }
    write(&dir.join("package.json"), &package_json(&version()?))?;
    write(&dir.join("README.md"), PACKAGE_README)?;
    // The tarball a frontend team would install (and the fixture app does).
    let mut pack = cmd("npm", &["pack", "--silent", "--pack-destination"]);
    pack.arg(project_root().join("target/npm"))
        .current_dir(&dir);
    run(pack)?;
    let sizes = sizes()?;
    println!(
        "package: {} — wasm {} B ({} B gz), JS {} B ({} B gz), total {:.1} KB gz (budget {} KB, aim {} KB)",
        dir.display(),
        sizes.wasm.0,
        sizes.wasm.1,
        sizes.js.0,
        sizes.js.1,
        sizes.total_gz() as f64 / 1024.0,
        SIZE_BUDGET / 1024,
        SIZE_AIM / 1024
    );
    println!("tarball: {}", tarball()?.display());
    Ok(sizes)
}

/// Minifies an ES module in place with terser (names of exports kept).
fn minify(path: &Path) -> Res {
    let terser = project_root().join("wasm/tools/node_modules/terser/bin/terser");
    let mut c = cmd("node", &[]);
    c.arg(&terser)
        .arg(path)
        .args(["--module", "--compress", "--mangle", "--output"])
        .arg(path);
    run(c)
}

fn write(path: &Path, content: &str) -> Res {
    let mut f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(content.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The size check of `cargo xtask test`: fails above the budget.
pub fn check_size(sizes: &Sizes) -> Res {
    if sizes.total_gz() > SIZE_BUDGET {
        Err(format!(
            "the package is {} B gzipped (wasm + JS), over the {} B budget",
            sizes.total_gz(),
            SIZE_BUDGET
        ))
    } else {
        println!(
            "size: ok, {} B gzipped (wasm + JS) within the {} B budget",
            sizes.total_gz(),
            SIZE_BUDGET
        );
        Ok(())
    }
}
