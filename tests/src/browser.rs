//! Real headless Chromium, driven through chromedriver (WebDriver) with fantoccini.
//!
//! [`Browser::start`] launches Debian's `chromedriver` on a free loopback port and opens a
//! session of Debian's `chromium` with the flags this workplace needs, in a fresh profile.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why the browser could not be driven.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// chromedriver could not be started.
    #[error("cannot start chromedriver ({path}): {source}")]
    Spawn {
        /// The binary tried.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// chromedriver did not accept a session.
    #[error("cannot open a Chromium session: {0}")]
    Session(String),
    /// A WebDriver command failed.
    #[error("webdriver: {0}")]
    Command(#[from] fantoccini::error::CmdError),
    /// Waiting for the page timed out.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
}

/// A chromedriver process and a Chromium session; both end on [`Browser::close`] or drop.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

/// The chromedriver binary: `$CHROMEDRIVER` or Debian's.
pub fn chromedriver_path() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

/// The Chromium binary: `$CHROMIUM` or Debian's.
pub fn chromium_path() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session (1280x900 unless `size` says).
    pub async fn start(size: Option<(u32, u32)>) -> Result<Self, BrowserError> {
        Self::start_with(size, &[]).await
    }

    /// Like [`Browser::start`], with a person's preference of a dark colour scheme (what
    /// `prefers-color-scheme` answers).
    pub async fn start_dark(size: Option<(u32, u32)>) -> Result<Self, BrowserError> {
        Self::start_with(
            size,
            &[
                "--force-dark-mode",
                "--blink-settings=preferredColorScheme=0",
            ],
        )
        .await
    }

    /// Like [`Browser::start`], for a person whose browser asks for `language` first (what
    /// `navigator.languages` answers).
    pub async fn start_in_language(language: &str) -> Result<Self, BrowserError> {
        let lang = format!("--lang={language}");
        let accept = format!("--accept-lang={language}");
        Self::start_with(None, &[&lang, &accept]).await
    }

    async fn start_with(size: Option<(u32, u32)>, extra: &[&str]) -> Result<Self, BrowserError> {
        let path = chromedriver_path();
        let spawn_err = |source| BrowserError::Spawn {
            path: path.clone(),
            source,
        };
        let port = free_port().map_err(spawn_err)?;
        let driver = Command::new(&path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(spawn_err)?;
        let profile =
            std::env::temp_dir().join(format!("waba-chromium-{}-{port}", std::process::id()));
        let (w, h) = size.unwrap_or((1280, 900));
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ]
        .iter()
        .chain(extra)
        .map(|a| (*a).to_owned())
        .collect();
        args.push(format!("--window-size={w},{h}"));
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium_path(), "args": args },
        });
        let caps = match caps {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let browser = Self {
            client: loop {
                match ClientBuilder::rustls()
                    .map_err(|e| BrowserError::Session(e.to_string()))?
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await
                {
                    Ok(c) => break c,
                    Err(e) if Instant::now() > deadline => {
                        return Err(BrowserError::Session(e.to_string()));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            },
            driver,
            profile,
        };
        browser.client.set_window_size(w, h).await?;
        Ok(browser)
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        Ok(self.client.goto(url).await?)
    }

    /// Waits until `css` matches at least one element; returns the texts of all matches.
    pub async fn wait_texts(
        &self,
        css: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, BrowserError> {
        let deadline = Instant::now() + timeout;
        loop {
            // One script reads every match at once: the page may re-render between a lookup
            // and a later read of each element (a live status change), which would leave the
            // element references stale.
            let found = self
                .client
                .execute(
                    "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText)",
                    vec![serde_json::Value::String(css.to_owned())],
                )
                .await?;
            let texts: Vec<String> = serde_json::from_value(found).unwrap_or_default();
            if !texts.is_empty() {
                return Ok(texts);
            }
            if Instant::now() > deadline {
                return Err(BrowserError::Timeout(timeout, css.to_owned()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `css` matches an element and returns the first.
    pub async fn wait_for(
        &self,
        css: &str,
        timeout: Duration,
    ) -> Result<fantoccini::elements::Element, BrowserError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                return Ok(el);
            }
            if Instant::now() > deadline {
                return Err(BrowserError::Timeout(timeout, css.to_owned()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The WCAG 2.1 A and AA violations axe-core finds in the page as it is now, one line each
    /// (rule, impact, what it says and the first elements concerned); empty when it passes.
    /// axe-core comes from `tests/a11y` (its lock file; setup installs it).
    pub async fn axe(&self) -> Result<Vec<String>, BrowserError> {
        let path =
            crate::harness::project_root().join("tests/a11y/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&path)
            .map_err(|e| BrowserError::Session(format!("{}: {e}", path.display())))?;
        self.client.execute(&source, vec![]).await?;
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
                   .then(r => done(r.violations.map(v => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)),
                         e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await?;
        serde_json::from_value(found.clone())
            .map_err(|_| BrowserError::Session(format!("axe-core answered {found}")))
    }

    /// The visible text of the whole page.
    pub async fn page_text(&self) -> Result<String, BrowserError> {
        Ok(self.client.find(Locator::Css("body")).await?.text().await?)
    }

    /// A PNG screenshot of the viewport.
    pub async fn screenshot(&self) -> Result<Vec<u8>, BrowserError> {
        Ok(self.client.screenshot().await?)
    }

    /// Ends the session and stops chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.cleanup();
    }

    fn cleanup(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // Chromium outlives a killed chromedriver (a test that panicked never ended its
        // session): its processes are the ones started with this session's profile.
        let pattern = format!("{}( |$)", self.profile_flag().replace('.', "\\."));
        let _ = Command::new("pkill")
            .args(["-f", "--"])
            .arg(pattern)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.profile);
    }

    /// The flag that names this session's profile on every one of its Chromium processes.
    pub fn profile_flag(&self) -> String {
        format!("--user-data-dir={}", self.profile.display())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.cleanup();
    }
}
