//! Headless Chromium driven over WebDriver, for the web console's browser tests.
//!
//! [`Browser::start`] runs Debian's `chromedriver` on a free port of the loopback
//! interface, opens a session with headless Chromium in a fresh profile, and kills
//! chromedriver (and with it Chromium) when the browser is dropped. The helpers act as a
//! user does: they type into fields and click buttons, and wait for a page to show a text
//! by polling it up to a deadline, never by sleeping for a fixed time.
//!
//! When a step fails, the browser saves a screenshot and the page's HTML into a directory
//! that outlives the test, and the error names both files.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Map, Value, json};

/// Set to 1 by `scripts/test.sh`: the browser tests then fail, instead of skipping, when
/// Chromium or chromedriver is missing.
pub const REQUIRE_ENV: &str = "TEND_REQUIRE_BROWSER";

/// Path of the browser from Debian's `chromium` package.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Path of the WebDriver server from Debian's `chromium-driver` package.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Maximum time from starting chromedriver until its `/status` reports ready.
const DRIVER_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Maximum time that [`Browser::wait_for_text`] and the other waits poll a page.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause between two looks at a page while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Whether the page may run JavaScript. The console needs none, and
/// [`Scripts::Disabled`] proves that its forms work without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scripts {
    Enabled,
    Disabled,
}

/// A WebDriver session with headless Chromium, and the chromedriver that serves it.
pub struct Browser {
    // Declared first so that the session ends before chromedriver is killed.
    client: Client,
    driver: tokio::process::Child,
    // The profile (`--user-data-dir`) and chromedriver's log, removed on drop.
    _profile: tempfile::TempDir,
    // Screenshots and page sources of failed steps, kept once one is saved.
    artifacts: Option<tempfile::TempDir>,
    failures: usize,
}

impl Browser {
    /// Returns whether Chromium and chromedriver are installed. When one is missing, fails
    /// under `TEND_REQUIRE_BROWSER=1`, and otherwise prints why `test` is skipped and
    /// returns `false`.
    pub fn available(test: &str) -> anyhow::Result<bool> {
        let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
            .into_iter()
            .filter(|program| !Path::new(program).is_file())
            .collect();
        if missing.is_empty() {
            return Ok(true);
        }
        let reason = format!(
            "{} not found: run scripts/ensure-chromium.sh",
            missing.join(" and ")
        );
        anyhow::ensure!(
            std::env::var(REQUIRE_ENV).as_deref() != Ok("1"),
            "{reason} ({REQUIRE_ENV}=1 makes this a failure)"
        );
        eprintln!("skipped {test}: {reason}");
        Ok(false)
    }

    /// Starts chromedriver and opens a headless Chromium session in a new profile.
    pub async fn start(scripts: Scripts) -> anyhow::Result<Browser> {
        let profile = tempfile::Builder::new()
            .prefix("tend-browser-")
            .tempdir()
            .context("failed to create the browser's profile directory")?;
        let port = free_port()?;
        let log = profile.path().join("chromedriver.log");
        // chromedriver listens on the loopback interface and accepts connections from
        // the local host only unless `--allowed-ips` lists others.
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // A group of its own, which Chromium joins, so that dropping the browser can
            // kill both.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("failed to start {CHROMEDRIVER}"))?;
        let mut driver = Driver {
            child: Some(driver),
            log,
        };
        let url = format!("http://127.0.0.1:{port}");
        driver.wait_until_ready(&url).await?;

        let capabilities = capabilities(&profile.path().join("chromium"), scripts);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .map_err(|error| {
                anyhow::anyhow!(
                    "chromedriver at {url} did not open a Chromium session: {error}; see {}",
                    driver.log.display()
                )
            })?;
        Ok(Browser {
            client,
            driver: driver.child.take().context("chromedriver is not running")?,
            _profile: profile,
            artifacts: None,
            failures: 0,
        })
    }

    /// Returns the WebDriver client, for steps that the helpers here do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits until the page has loaded.
    pub async fn goto(&mut self, url: &str) -> anyhow::Result<()> {
        let result = self
            .client
            .goto(url)
            .await
            .with_context(|| format!("failed to open {url}"));
        self.check(result).await
    }

    /// Reloads the current page.
    pub async fn refresh(&mut self) -> anyhow::Result<()> {
        let result = self
            .client
            .refresh()
            .await
            .context("failed to reload the page");
        self.check(result).await
    }

    /// Logs `user` in through the console's login form at `base_url`, and waits until
    /// the browser has left the login page.
    pub async fn log_in(
        &mut self,
        base_url: &str,
        user: &str,
        password: &str,
    ) -> anyhow::Result<()> {
        self.goto(&format!("{base_url}/login")).await?;
        self.type_into("#login-user", user).await?;
        self.type_into("#login-password", password).await?;
        self.click_button("Log in").await?;
        let left = self
            .wait_until("the browser leaves the login page", async |client| {
                let url = client.current_url().await?;
                Ok(url.path() != "/login")
            })
            .await;
        self.check(left).await
    }

    /// Types `text` into the field that the CSS selector `field` finds, as a user does.
    pub async fn type_into(&mut self, field: &str, text: &str) -> anyhow::Result<()> {
        let result = async {
            let element = self
                .client
                .find(Locator::Css(field))
                .await
                .with_context(|| format!("no field matches `{field}`"))?;
            element.clear().await?;
            element.send_keys(text).await?;
            anyhow::Ok(())
        }
        .await;
        self.check(result).await
    }

    /// Clicks the button whose text is `label`. Fails when no button or more than one has
    /// that text.
    pub async fn click_button(&mut self, label: &str) -> anyhow::Result<()> {
        self.click_button_in(None, label).await
    }

    /// Clicks the button `label` inside the element that the XPath `scope` finds, such as
    /// the table row of one run.
    pub async fn click_button_in(
        &mut self,
        scope: Option<&str>,
        label: &str,
    ) -> anyhow::Result<()> {
        let path = format!(
            "{}//button[normalize-space()={}]",
            scope.unwrap_or(""),
            xpath_literal(label)
        );
        let result = async {
            let buttons = self.client.find_all(Locator::XPath(&path)).await?;
            match buttons.as_slice() {
                [button] => button.click().await?,
                [] => anyhow::bail!("no button `{label}` on the page (XPath {path})"),
                _ => anyhow::bail!(
                    "{} buttons `{label}` on the page (XPath {path}): name one in a scope",
                    buttons.len()
                ),
            }
            anyhow::Ok(())
        }
        .await;
        self.check(result).await
    }

    /// Returns the visible text of the page's body.
    pub async fn body_text(&mut self) -> anyhow::Result<String> {
        let result = body_text(&self.client).await;
        self.check(result).await
    }

    /// Waits until the page's visible text contains `needle`, and returns that text.
    pub async fn wait_for_text(&mut self, needle: &str) -> anyhow::Result<String> {
        let result = self
            .wait_until(&format!("the page shows `{needle}`"), async |client| {
                Ok(body_text(client).await?.contains(needle))
            })
            .await;
        self.check(result).await?;
        self.body_text().await
    }

    /// Reloads the page until its visible text contains `needle`, for what a worker
    /// changes in the background, and returns that text.
    pub async fn reload_until_text(&mut self, needle: &str) -> anyhow::Result<String> {
        let result = self
            .wait_until(
                &format!("the reloaded page shows `{needle}`"),
                async |client| {
                    client.refresh().await?;
                    Ok(body_text(client).await?.contains(needle))
                },
            )
            .await;
        self.check(result).await?;
        self.body_text().await
    }

    /// Returns the current value of the form field that the CSS selector `field` finds.
    pub async fn field_value(&mut self, field: &str) -> anyhow::Result<String> {
        let result = async {
            let element = self
                .client
                .find(Locator::Css(field))
                .await
                .with_context(|| format!("no field matches `{field}`"))?;
            anyhow::Ok(element.prop("value").await?.unwrap_or_default())
        }
        .await;
        self.check(result).await
    }

    /// Returns the visible text of the element that the XPath `path` finds.
    pub async fn text_of(&mut self, path: &str) -> anyhow::Result<String> {
        let result = async {
            let element = self
                .client
                .find(Locator::XPath(path))
                .await
                .with_context(|| format!("nothing on the page matches the XPath {path}"))?;
            anyhow::Ok(element.text().await?)
        }
        .await;
        self.check(result).await
    }

    /// Turns a failed step into an error that names a screenshot and the page's HTML,
    /// saved into a directory that is kept after the test.
    pub async fn check<T>(&mut self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        match result {
            Ok(value) => Ok(value),
            Err(error) => Err(self.failure(error).await),
        }
    }

    /// Saves a screenshot and the page's HTML, and adds their paths and the page's URL to
    /// `error`.
    pub async fn failure(&mut self, error: anyhow::Error) -> anyhow::Error {
        self.failures += 1;
        let url = self
            .client
            .current_url()
            .await
            .map_or_else(|error| format!("unknown ({error})"), |url| url.to_string());
        match self.save_artifacts().await {
            Ok((screenshot, source)) => error.context(format!(
                "browser step failed on {url}; screenshot {}, page source {}",
                screenshot.display(),
                source.display()
            )),
            Err(save_error) => error.context(format!(
                "browser step failed on {url}; saving a screenshot failed too: {save_error:#}"
            )),
        }
    }

    async fn save_artifacts(&mut self) -> anyhow::Result<(PathBuf, PathBuf)> {
        if self.artifacts.is_none() {
            self.artifacts = Some(
                tempfile::Builder::new()
                    .prefix("tend-browser-failure-")
                    .tempdir()?,
            );
        }
        let dir = self
            .artifacts
            .as_ref()
            .map(|dir| dir.path().to_path_buf())
            .context("no directory for screenshots")?;
        let screenshot = dir.join(format!("failure-{}.png", self.failures));
        let source = dir.join(format!("failure-{}.html", self.failures));
        std::fs::write(&screenshot, self.client.screenshot().await?)?;
        std::fs::write(&source, self.client.source().await?)?;
        Ok((screenshot, source))
    }

    /// Calls `ready` every [`POLL_INTERVAL`] until it returns `true`, for at most
    /// [`WAIT_TIMEOUT`]. `what` describes the wait in the timeout's error.
    async fn wait_until<F>(&self, what: &str, mut ready: F) -> anyhow::Result<()>
    where
        F: AsyncFnMut(&Client) -> anyhow::Result<bool>,
    {
        let deadline = Instant::now() + WAIT_TIMEOUT;
        let mut last_error = None;
        loop {
            match ready(&self.client).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(error) => last_error = Some(error),
            }
            if Instant::now() >= deadline {
                let detail = last_error.map_or_else(String::new, |error| {
                    format!(" (the last look failed: {error:#})")
                });
                anyhow::bail!(
                    "timed out after {} s waiting until {what}{detail}",
                    WAIT_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium runs in chromedriver's process group, so this ends both even when a
        // failed test never closed the session.
        kill_group(&self.driver);
        if let Some(artifacts) = self.artifacts.take() {
            let kept = artifacts.keep();
            eprintln!(
                "kept the browser's failure screenshots in {}",
                kept.display()
            );
        }
    }
}

/// Sends SIGKILL to the process group that `leader` leads.
fn kill_group(leader: &tokio::process::Child) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;

    if let Some(id) = leader.id().and_then(|id| i32::try_from(id).ok()) {
        let _ = killpg(Pid::from_raw(id), Signal::SIGKILL);
    }
}

/// chromedriver while it starts, killed with its group if the start fails.
struct Driver {
    child: Option<tokio::process::Child>,
    log: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            kill_group(child);
        }
    }
}

impl Driver {
    /// Polls chromedriver's `/status` until it reports ready.
    async fn wait_until_ready(&mut self, url: &str) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + DRIVER_STARTUP_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                anyhow::bail!(
                    "{CHROMEDRIVER} exited with {status} before it answered; see {}",
                    self.log.display()
                );
            }
            let ready = match http.get(format!("{url}/status")).send().await {
                Ok(response) => response
                    .json::<Value>()
                    .await
                    .is_ok_and(|status| status["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{CHROMEDRIVER} did not answer on {url} within {} s; see {}",
                DRIVER_STARTUP_TIMEOUT.as_secs(),
                self.log.display()
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// Returns a port of 127.0.0.1 that was free a moment ago. Another process may take it
/// before chromedriver binds it, which then fails the start with chromedriver's log.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("failed to find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// The session's capabilities: headless Chromium from Debian's package in the profile
/// directory `profile`. `--no-sandbox` is needed because the tests run as root, and
/// `--disable-dev-shm-usage` because containers often have a small `/dev/shm`.
fn capabilities(profile: &Path, scripts: Scripts) -> Map<String, Value> {
    let mut args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--disable-gpu".to_owned(),
        "--window-size=1280,1024".to_owned(),
        format!("--user-data-dir={}", profile.display()),
    ];
    if scripts == Scripts::Disabled {
        args.push("--blink-settings=scriptEnabled=false".to_owned());
    }
    let mut capabilities = Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": CHROMIUM, "args": args }),
    );
    capabilities
}

async fn body_text(client: &Client) -> anyhow::Result<String> {
    let body = client.find(Locator::Css("body")).await?;
    Ok(body.text().await?)
}

/// Quotes `text` as an XPath 1.0 string literal, which has no escape character.
fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        return format!("'{text}'");
    }
    if !text.contains('"') {
        return format!("\"{text}\"");
    }
    let parts: Vec<String> = text.split('\'').map(|part| format!("'{part}'")).collect();
    format!("concat({})", parts.join(", \"'\", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xpath_literal_quotes_any_text() {
        assert_eq!(xpath_literal("Run it"), "'Run it'");
        assert_eq!(xpath_literal("Don't"), "\"Don't\"");
        assert_eq!(xpath_literal("a'b\"c"), "concat('a', \"'\", 'b\"c')");
    }
}
