//! `latchkey demo`: a simulated Entra tenant and the portal on loopback, nothing else needed.

use std::net::SocketAddr;
use std::process::ExitCode;

use latchkey_entra_sim::{Fixture, Sim};

/// Client id and secret of the demo tenant's app registration (`crates/entra-sim/fixtures/demo.toml`).
const DEMO_CLIENT_ID: &str = "22222222-2222-2222-2222-222222222222";
const DEMO_CLIENT_SECRET: &str = "demo-secret-value";

pub async fn run(listen: SocketAddr) -> anyhow::Result<ExitCode> {
    let sim = Sim::start(Fixture::demo()).await?;
    let dir = std::env::temp_dir().join(format!("latchkey-demo-{}", std::process::id()));
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
    println!("Latchkey demo");
    println!("  simulated Entra tenant: {}", sim.base_url());
    println!("  portal:                 http://{listen}/");
    println!("  configuration:          {}", config_path.display());
    println!();
    println!("Try, in another terminal:");
    println!("  latchkey check --config {}", config_path.display());
    println!("  latchkey user show adele.vance@contoso.com --config {}", config_path.display());
    println!();
    println!("Not in this version yet: the self-service reset, unlock and enrollment pages (issue 3).");
    println!("Press Ctrl+C to stop.");
    crate::app::run_server(&listen.to_string()).await?;
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}
