//! `latchkey demo`: a simulated Entra tenant and the portal on loopback, nothing else needed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use latchkey_entra_sim::{Fixture, Sim};

use crate::app::RunningPortal;

/// Client id and secret of the demo tenant's app registration (`crates/entra-sim/fixtures/demo.toml`).
const DEMO_CLIENT_ID: &str = "22222222-2222-2222-2222-222222222222";
const DEMO_CLIENT_SECRET: &str = "demo-secret-value";

/// A demo running in the background: the simulated tenant, the portal pointed at it, and the
/// configuration file `latchkey check` / `latchkey user show` can use. End-to-end tests start it
/// in-process with `start("127.0.0.1:0")`.
pub struct Demo {
    pub sim: Sim,
    pub portal: RunningPortal,
    pub config_path: PathBuf,
    dir: PathBuf,
}

impl Demo {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn portal_url(&self) -> &str {
        self.portal.url()
    }

    /// Stops the portal and the simulator and removes the configuration folder.
    pub async fn stop(self) {
        self.portal.stop().await;
        self.sim.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts the simulated tenant and the portal (on `listen`; port 0 picks a free one).
pub async fn start(listen: SocketAddr) -> anyhow::Result<Demo> {
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let listen = listener.local_addr()?;
    let sim = Sim::start(Fixture::demo()).await?;
    let dir = std::env::temp_dir().join(format!(
        "latchkey-demo-{}-{}",
        std::process::id(),
        listen.port()
    ));
    std::fs::create_dir_all(&dir)?;
    let config_path = dir.join("latchkey.toml");
    std::fs::write(
        &config_path,
        format!(
            "# Written by `latchkey demo`: points the portal at the in-process simulated tenant.\n\
             [entra]\ntenant_id = \"{tenant}\"\nclient_id = \"{DEMO_CLIENT_ID}\"\n\
             client_secret = \"{DEMO_CLIENT_SECRET}\"\nauthority_host = \"{authority}\"\n\
             graph_base_url = \"{graph}\"\n\n[server]\nlisten = \"{listen}\"\n",
            tenant = sim.tenant_id(),
            authority = sim.base_url(),
            graph = sim.graph_base_url(),
        ),
    )?;
    let portal = crate::app::start(listener)?;
    Ok(Demo {
        sim,
        portal,
        config_path,
        dir,
    })
}

pub async fn run(listen: SocketAddr) -> anyhow::Result<ExitCode> {
    let demo = start(listen).await?;
    let config_path = demo.config_path.display();
    println!("Latchkey demo");
    println!("  simulated Entra tenant: {}", demo.sim.base_url());
    println!("  portal:                 {}/", demo.portal_url());
    println!("  configuration:          {config_path}");
    println!();
    println!("Try, in another terminal:");
    println!("  latchkey check --config {config_path}");
    println!("  latchkey user show adele.vance@contoso.com --config {config_path}");
    println!();
    println!(
        "Not in this version yet: the self-service reset, unlock and enrollment pages (issue 3)."
    );
    println!("Press Ctrl+C to stop.");
    crate::app::shutdown_signal().await;
    demo.stop().await;
    Ok(ExitCode::SUCCESS)
}
