//! The portal under test, in-process on a free port.

use latchkey::demo::Demo;
use latchkey_entra_sim::Sim;

/// The portal and its simulated Entra tenant (the demo tenant: `Fixture::demo()`), on free
/// loopback ports, started fresh for one test.
pub struct TestApp {
    demo: Demo,
    http: reqwest::Client,
}

/// Starts `latchkey demo` in-process: the simulated tenant and the real portal on `127.0.0.1:0`.
pub async fn spawn_app() -> anyhow::Result<TestApp> {
    crate::init();
    let demo = latchkey::demo::start(([127, 0, 0, 1], 0).into()).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    Ok(TestApp { demo, http })
}

impl TestApp {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> &str {
        self.demo.portal_url()
    }

    /// `base_url + path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    pub fn sim(&self) -> &Sim {
        &self.demo.sim
    }

    pub fn demo(&self) -> &Demo {
        &self.demo
    }

    /// A client that does not follow redirects, for HTTP-level checks.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        Ok(self.http.get(self.url(path)).send().await?)
    }

    /// Stops the portal and the simulator.
    pub async fn stop(self) {
        self.demo.stop().await;
    }
}
