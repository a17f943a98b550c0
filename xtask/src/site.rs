//! The site the demo and the end-to-end tests serve through `waba-proxy --www`: `www/` as it
//! is, the npm package under `pkg/`, and a `config.js` pointing the page at the Graph
//! simulator's SDK stand-in (the only difference from a production site).

use crate::project_root;
use std::path::{Path, PathBuf};

/// Where the site is assembled.
pub fn site_dir() -> PathBuf {
    project_root().join("target/site")
}

/// Copies the folder `from` into `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for e in entries.flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| format!("{}: {e}", src.display()))?;
        }
    }
    Ok(())
}

/// Copies `www/` as it is into `dir`, and the built npm package's `web/` (the signup page's
/// entry point), `console/` (the console's), `locales/` (the catalogs) and script files under
/// `dir/pkg/` (the layout the pages load them from).
pub fn assemble(dir: &Path) -> Result<(), String> {
    copy_dir(&project_root().join("www"), dir)?;
    let pkg = crate::package::package_dir();
    let pkg_out = dir.join("pkg");
    for build in ["web", "console", "locales"] {
        copy_dir(&pkg.join(build), &pkg_out.join(build))?;
    }
    for file in crate::package::JS_FILES {
        std::fs::copy(pkg.join(file), pkg_out.join(file)).map_err(|e| format!("{file}: {e}"))?;
    }
    Ok(())
}

/// Assembles the site for a simulator at `sim_url` and a proxy at `proxy_url`.
pub fn prepare(sim_url: &str, proxy_url: &str) -> Result<PathBuf, String> {
    let dir = site_dir();
    let _ = std::fs::remove_dir_all(&dir);
    assemble(&dir)?;
    let config = format!(
        "// Written by cargo xtask: the demo's signup page talks to the Graph simulator.\n\
         window.WABA_SIGNUP = {{\n  proxyUrl: \"{proxy_url}\",\n  appId: \"670843887433847\",\n  \
         configId: \"sim-config-1\",\n  businessId: \"805021500648488\",\n  sdkUrl: \"{sim_url}/_sim/{{locale}}/sdk.js\",\n  \
         extraOrigins: [\"{sim_url}\"],\n  responseType: \"code\",\n  \
         dialogUrl: \"{sim_url}/v26.0/dialog/oauth\",\n}};\n"
    );
    std::fs::write(dir.join("config.js"), config).map_err(|e| format!("config.js: {e}"))?;
    Ok(dir)
}
