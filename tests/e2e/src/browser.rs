//! Headless Chromium through chromedriver, and the helpers page tests use.

use std::os::unix::process::CommandExt as _;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::FutureExt as _;
use serde_json::{Value, json};
use thirtyfour::prelude::*;

use crate::process::{ChildGuard, TempDir, read_lines, wait_for_line};

/// The Windows sign-in screen kiosk the portal must be usable on.
pub const WINDOW: (u32, u32) = (1024, 768);

/// A fresh headless Chromium (own profile, own chromedriver). Fields drop in order: the session
/// (thirtyfour ends it if [`Browser::quit`] was not called), then chromedriver's process group,
/// then the profile folder.
pub struct Browser {
    driver: WebDriver,
    _chromedriver: ChildGuard,
    _profile: TempDir,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium session at 1024x768.
    pub async fn start() -> anyhow::Result<Browser> {
        crate::init();
        let chromedriver = crate::tool("CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = crate::tool("CHROMIUM", "/usr/bin/chromium");
        for (path, package) in [(&chromedriver, "chromium-driver"), (&chromium, "chromium")] {
            anyhow::ensure!(
                path.is_file(),
                "{} not found: install Debian's {package} (`bash tests/run` does it when run as root), \
                 or point {} at it",
                path.display(),
                if package == "chromium" {
                    "CHROMIUM"
                } else {
                    "CHROMEDRIVER"
                },
            );
        }
        let profile = TempDir::new("latchkey-e2e-chromium")?;

        // --port=0: chromedriver binds a free port itself and prints it, so there is no race.
        let mut child = Command::new(&chromedriver)
            .args(["--port=0", "--allowed-ips=127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}", chromedriver.display()))?;
        let stdout = child.stdout.take().context("chromedriver stdout")?;
        let mut guard = ChildGuard::new(child);
        let port = match wait_for_line(read_lines(stdout), Duration::from_secs(20), |line| {
            line.split_once("started successfully on port ")
                .and_then(|(_, rest)| rest.trim_end_matches('.').trim().parse::<u16>().ok())
        })
        .await
        {
            Ok((port, _rest)) => port,
            Err(seen) => anyhow::bail!(
                "chromedriver did not report its port within 20 s (exit status: {:?}); it printed:\n{}",
                guard.exited(),
                seen.join("\n")
            ),
        };

        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(&chromium.to_string_lossy())?;
        for arg in [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--lang=en-US",
            &format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            &format!("--user-data-dir={}", profile.path().display()),
        ] {
            caps.add_arg(arg)?;
        }
        let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps)
            .await
            .with_context(|| {
                format!(
                    "cannot start a Chromium session ({}) through chromedriver",
                    chromium.display()
                )
            })?;
        let timeouts = TimeoutConfiguration::new(
            Some(Duration::from_secs(30)),
            Some(Duration::from_secs(30)),
            Some(Duration::ZERO),
        );
        driver.update_timeouts(timeouts).await?;
        // --window-size sets the outer window; depending on the Chromium build, headless mode
        // still reserves room for browser chrome. Grow the window by that difference so the
        // *viewport* is the kiosk's 1024x768.
        let inner: Vec<i64> = driver
            .execute("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];", vec![])
            .await?
            .convert()?;
        if let [dw, dh] = inner[..]
            && (dw != 0 || dh != 0)
        {
            let width = u32::try_from(i64::from(WINDOW.0) + dw)?;
            let height = u32::try_from(i64::from(WINDOW.1) + dh)?;
            driver.set_window_rect(0, 0, width, height).await?;
        }
        Ok(Browser {
            driver,
            _chromedriver: guard,
            _profile: profile,
        })
    }

    /// The thirtyfour session, for anything the helpers do not cover.
    pub fn driver(&self) -> &WebDriver {
        &self.driver
    }

    /// Ends the session and stops chromedriver.
    pub async fn quit(self) {
        let Browser {
            driver,
            _chromedriver,
            _profile,
        } = self;
        let _ = driver.quit().await;
    }

    /// Navigates to `url` and waits until the page has loaded.
    pub async fn open(&self, url: &str) -> anyhow::Result<()> {
        self.driver
            .goto(url)
            .await
            .with_context(|| format!("cannot open {url}"))?;
        self.wait_for_load().await
    }

    /// Waits until `document.readyState` is `complete` (after a click that submits a form, say).
    pub async fn wait_for_load(&self) -> anyhow::Result<()> {
        crate::wait_until("the page to load", crate::WAIT, || async {
            let state = self
                .driver
                .execute("return document.readyState", vec![])
                .await?;
            Ok((state.json().as_str() == Some("complete")).then_some(()))
        })
        .await
    }

    /// The current URL.
    pub async fn url(&self) -> anyhow::Result<String> {
        Ok(self.driver.current_url().await?.to_string())
    }

    /// Types `value` into the form field whose `<label>` reads `label` (whitespace-normalised,
    /// exact). A field without a label cannot be filled: that is an accessibility bug.
    pub async fn fill(&self, label: &str, value: &str) -> anyhow::Result<()> {
        let field = self.labelled_field(label).await?;
        field.clear().await?;
        field
            .send_keys(value)
            .await
            .with_context(|| format!("cannot type into the field labelled {label:?}"))?;
        Ok(())
    }

    /// The form control the `<label>` reading `label` belongs to (`for=` or nesting).
    pub async fn labelled_field(&self, label: &str) -> anyhow::Result<WebElement> {
        const SCRIPT: &str = r#"
            const want = arguments[0];
            const norm = (s) => (s || "").replace(/\s+/g, " ").trim();
            const labels = Array.from(document.querySelectorAll("label"));
            const hits = labels.filter((l) => norm(l.textContent) === want);
            if (hits.length !== 1) return { error: hits.length, labels: labels.map((l) => norm(l.textContent)) };
            const control = hits[0].control;
            if (!control) return { error: "no-control", labels: [] };
            return { found: control };
        "#;
        let what = format!("the field labelled {label:?}");
        self.find_by_script(SCRIPT, json!(label), &what).await
    }

    /// Clicks the one visible button whose text (or `value`, for `<input type=submit>`) reads
    /// `text` (whitespace-normalised, exact).
    pub async fn click_button(&self, text: &str) -> anyhow::Result<()> {
        const SCRIPT: &str = r#"
            const want = arguments[0];
            const norm = (s) => (s || "").replace(/\s+/g, " ").trim();
            const visible = (e) => e.getClientRects().length > 0;
            const buttons = Array.from(document.querySelectorAll(
                "button, input[type=submit], input[type=button], input[type=reset], [role=button]"
            )).filter(visible);
            const name = (e) => norm(e.tagName === "INPUT" ? e.value : e.textContent);
            const hits = buttons.filter((b) => name(b) === want);
            if (hits.length !== 1) return { error: hits.length, labels: buttons.map(name) };
            return { found: hits[0] };
        "#;
        let what = format!("the button {text:?}");
        let button = self.find_by_script(SCRIPT, json!(text), &what).await?;
        button
            .click()
            .await
            .with_context(|| format!("cannot click {what}"))?;
        Ok(())
    }

    async fn find_by_script(
        &self,
        script: &str,
        arg: Value,
        what: &str,
    ) -> anyhow::Result<WebElement> {
        let ret = self.driver.execute(script, vec![arg]).await?;
        let value = ret.json().clone();
        if let Some(found) = value.get("found") {
            return Ok(WebElement::from_json(
                found.clone(),
                self.driver.handle().clone(),
            )?);
        }
        let candidates = value.get("labels").cloned().unwrap_or_default();
        match value.get("error") {
            Some(Value::Number(n)) if n.as_u64() == Some(0) => {
                anyhow::bail!(
                    "no {what} on {}; the page has: {candidates}",
                    self.url().await?
                )
            }
            Some(Value::Number(n)) => anyhow::bail!(
                "{n} matches for {what} on {}: {candidates}",
                self.url().await?
            ),
            _ => anyhow::bail!(
                "{what} is a label that belongs to no form control, on {}",
                self.url().await?
            ),
        }
    }

    /// The visible text of the page's `<main>` landmark (every page must have one).
    pub async fn main_text(&self) -> anyhow::Result<String> {
        let ret = self
            .driver
            .execute(
                "const m = document.querySelector('main'); return m ? m.innerText : null;",
                vec![],
            )
            .await?;
        match ret.json().as_str() {
            Some(text) => Ok(text.to_owned()),
            None => anyhow::bail!("the page {} has no <main> landmark", self.url().await?),
        }
    }

    /// The text of the page's only `<h1>`.
    pub async fn heading(&self) -> anyhow::Result<String> {
        let h1 = self.driver.find_all(By::Tag("h1")).await?;
        anyhow::ensure!(
            h1.len() == 1,
            "the page {} has {} <h1> elements, not 1",
            self.url().await?,
            h1.len()
        );
        Ok(h1[0].text().await?.trim().to_owned())
    }

    /// Waits until the `<main>` text contains `text`.
    pub async fn wait_for_text(&self, text: &str, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let last = std::sync::Mutex::new(String::new());
        let result = crate::wait_until(&format!("{text:?} on the page"), timeout, || async {
            let now = self.main_text().await.unwrap_or_default();
            let found = now.contains(text);
            *last.lock().unwrap_or_else(|e| e.into_inner()) = now;
            Ok(found.then_some(()))
        })
        .await;
        let last = last.into_inner().unwrap_or_else(|e| e.into_inner());
        result.with_context(|| {
            format!(
                "after {:?} the page's main text was:\n{last}",
                started.elapsed()
            )
        })
    }

    /// Saves a PNG screenshot (and the page's HTML beside it) as
    /// `target/e2e-screenshots/<name>.png`; returns the PNG's path.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = crate::target_dir().join("e2e-screenshots");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let png = dir.join(format!("{safe}.png"));
        std::fs::write(&png, self.driver.screenshot_as_png().await?)?;
        if let Ok(source) = self.driver.source().await {
            let _ = std::fs::write(dir.join(format!("{safe}.html")), source);
        }
        Ok(png)
    }

    /// Checks the page at the kiosk size: the viewport is 1024x768 and nothing scrolls sideways.
    pub async fn assert_fits_kiosk(&self) -> anyhow::Result<()> {
        let ret = self
            .driver
            .execute("return [window.innerWidth, window.innerHeight, document.documentElement.scrollWidth];", vec![])
            .await?;
        let [width, height, scroll_width]: [u32; 3] = ret.convert()?;
        anyhow::ensure!(
            (width, height) == WINDOW,
            "viewport {width}x{height}, not {}x{}",
            WINDOW.0,
            WINDOW.1
        );
        anyhow::ensure!(
            scroll_width <= width,
            "{} scrolls sideways at {width} px wide (content is {scroll_width} px)",
            self.url().await?
        );
        Ok(())
    }

    /// Checks the current page at a phone's width (`width` CSS px: 375 is a common phone, 320 is
    /// WCAG 1.4.10's reflow width): nothing scrolls sideways and axe-core finds nothing serious.
    /// The window goes back to the kiosk size afterwards.
    pub async fn assert_reflows_at(&self, width: u32) -> anyhow::Result<()> {
        let chrome: Vec<i64> = self
            .driver
            .execute("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];", vec![])
            .await?
            .convert()?;
        let (dw, dh) = match chrome[..] {
            [dw, dh] => (dw, dh),
            _ => (0, 0),
        };
        let outer = u32::try_from(i64::from(width) + dw)?;
        let tall = u32::try_from(800 + dh)?;
        self.driver.set_window_rect(0, 0, outer, tall).await?;
        let checked = async {
            let ret = self
                .driver
                .execute(
                    "return [window.innerWidth, document.documentElement.scrollWidth];",
                    vec![],
                )
                .await?;
            let [inner, scroll_width]: [u32; 2] = ret.convert()?;
            anyhow::ensure!(
                inner == width,
                "the browser would not narrow to {width} CSS px (viewport {inner})"
            );
            anyhow::ensure!(
                scroll_width <= inner,
                "{} scrolls sideways at {width} px (content is {scroll_width} px wide)",
                self.url().await?
            );
            self.assert_accessible().await
        }
        .await;
        let back_w = u32::try_from(i64::from(WINDOW.0) + dw)?;
        let back_h = u32::try_from(i64::from(WINDOW.1) + dh)?;
        self.driver.set_window_rect(0, 0, back_w, back_h).await?;
        checked
    }

    /// Emulates Windows high-contrast mode (`forced-colors: active`) or turns it off again.
    pub async fn emulate_forced_colors(&self, on: bool) -> anyhow::Result<()> {
        let value = if on { "active" } else { "none" };
        self.driver
            .cdp()
            .send_raw(
                "Emulation.setEmulatedMedia",
                json!({ "features": [{ "name": "forced-colors", "value": value }] }),
            )
            .await?;
        let applied: bool = self
            .driver
            .execute(
                "return window.matchMedia('(forced-colors: active)').matches;",
                vec![],
            )
            .await?
            .convert()?;
        anyhow::ensure!(applied == on, "forced-colors emulation did not apply");
        Ok(())
    }

    /// Turns script execution off for the pages loaded from now on (what a locked-down
    /// browser may do).
    pub async fn disable_scripts(&self) -> anyhow::Result<()> {
        self.driver
            .cdp()
            .send_raw(
                "Emulation.setScriptExecutionDisabled",
                json!({ "value": true }),
            )
            .await?;
        Ok(())
    }

    /// Checks that nothing on the page leads off the portal's origin: every link, form target,
    /// image and frame source is on the page's own origin, and the visible text names no web
    /// address.
    pub async fn assert_stays_on_origin(&self) -> anyhow::Result<()> {
        let offenders: Vec<String> = self
            .driver
            .execute(
                r#"var out = [], here = window.location.origin;
                   function check(what, url) {
                     if (!url) return;
                     var u = new URL(url, window.location.href);
                     if (u.origin !== here) out.push(what + " " + u.href);
                   }
                   document.querySelectorAll("a[href], area[href]").forEach(function (a) { check("link", a.getAttribute("href")); });
                   document.querySelectorAll("form").forEach(function (f) { check("form", f.getAttribute("action") || window.location.href); });
                   document.querySelectorAll("iframe[src], img[src]").forEach(function (e) { check(e.tagName.toLowerCase(), e.getAttribute("src")); });
                   var text = document.body.innerText;
                   var m = text.match(/[a-z][a-z0-9+.-]*:\/\/\S+|www\.\S+/i);
                   if (m) out.push("text " + m[0]);
                   return out;"#,
                vec![],
            )
            .await?
            .convert()?;
        anyhow::ensure!(
            offenders.is_empty(),
            "{} leads off the portal: {offenders:?}",
            self.url().await?
        );
        Ok(())
    }

    /// Runs axe-core on the current page; an error (with the readable report) when it finds
    /// serious or critical violations.
    pub async fn assert_accessible(&self) -> anyhow::Result<()> {
        crate::axe_check(&self.driver)
            .await
            .map_err(anyhow::Error::from)
    }
}

/// Starts a [`Browser`], runs `test` with it, and on failure (an error or a panic) saves a
/// screenshot as `target/e2e-screenshots/<name>.png` before ending the browser session and
/// passing the failure on.
pub async fn browser_test<T>(
    name: &str,
    test: impl AsyncFnOnce(&Browser) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let started = Instant::now();
    let browser = Browser::start().await?;
    eprintln!("{name}: Chromium ready in {:?}", started.elapsed());
    let outcome = AssertUnwindSafe(test(&browser)).catch_unwind().await;
    if !matches!(outcome, Ok(Ok(_))) {
        match browser.screenshot(name).await {
            Ok(png) => eprintln!("{name}: failed; screenshot {}", png.display()),
            Err(e) => eprintln!("{name}: failed; no screenshot: {e:#}"),
        }
    }
    browser.quit().await;
    match outcome {
        Ok(result) => result.with_context(|| format!("browser test {name}")),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
