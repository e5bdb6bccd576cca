//! Latchkey's end-to-end test harness.
//!
//! Everything a page test needs, each started fresh per test and stopped when dropped:
//! - [`spawn_app`]: the real portal (with its simulated Entra tenant), in-process on a free port;
//! - [`Browser`]: headless Debian Chromium at 1024x768 through chromedriver, with helpers that
//!   find fields by their label and buttons by their text (so a test is also an accessibility
//!   check), and a screenshot into `target/e2e-screenshots/` when a [`browser_test`] fails;
//! - [`axe_check`]: axe-core (npm, installed by `tests/run`) injected into the page, failing on
//!   serious or critical WCAG 2.x A/AA violations;
//! - [`SmtpSink`]: a real SMTP server (Python aiosmtpd) that keeps every message it receives, and
//!   [`extract_code`] to read a one-time code out of one.
//!
//! A page test:
//! ```ignore
//! #[tokio::test(flavor = "multi_thread")]
//! async fn reset_page() -> anyhow::Result<()> {
//!     let app = spawn_app().await?;
//!     browser_test("reset_page", async |b| {
//!         b.open(&app.url("/reset")).await?;
//!         b.fill("Username", "adele.vance@contoso.com").await?;
//!         b.click_button("Continue").await?;
//!         b.wait_for_text("Check your email", WAIT).await?;
//!         b.assert_accessible().await
//!     })
//!     .await?;
//!     app.stop().await;
//!     Ok(())
//! }
//! ```
//!
//! Tools are found at Debian's paths or through the environment (`tests/run` exports them):
//! `CHROMIUM` (/usr/bin/chromium), `CHROMEDRIVER` (/usr/bin/chromedriver), `LATCHKEY_AXE_JS`
//! (tests/e2e/node_modules/axe-core/axe.min.js), `LATCHKEY_PYTHON` (python3). A missing tool is a
//! test failure that says how to install it, never a skip.
#![allow(clippy::disallowed_methods)]
// the browser-test harness: test code
// Test code: a failing test stops right there (unwrap, expect, panic), and what a test drops it
// does not need.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::let_underscore_must_use,
    clippy::let_underscore_future
)]

mod axe;
mod browser;
mod portal;
mod process;
mod smtp;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use axe::{AxeError, Violation, ViolationNode, axe_check, axe_run};
pub use browser::{Browser, WINDOW, browser_test};
pub use portal::{TestApp, spawn_app};
pub use smtp::{Email, SmtpSink, extract_code};
pub use thirtyfour;

/// The default time a test waits for something that should happen (a page, a message).
pub const WAIT: Duration = Duration::from_secs(15);

/// Process-wide set-up every entry point runs first: rustls's provider (reqwest, which drives
/// chromedriver and calls the portal, is built without one).
pub(crate) fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Polls `check` every 50 ms until it returns `Ok(Some(value))`, for at most `timeout`.
/// `Err` from `check` ends the wait at once. The error on timeout names `what`, and the last
/// `Ok(None)` cannot say more, so make `what` specific ("the confirmation email to adele").
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `tests/e2e`.
pub(crate) fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace's `target/` (or `CARGO_TARGET_DIR`).
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let dir = crate_dir().join("../../target");
            dir.canonicalize().unwrap_or(dir)
        }
    }
}

/// A tool's path: the environment variable when set, else the default.
pub(crate) fn tool(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}
