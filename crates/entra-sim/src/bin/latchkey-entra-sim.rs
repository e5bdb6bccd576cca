//! Standalone simulator for scripts and manual testing:
//! `latchkey-entra-sim --fixture FILE --listen 127.0.0.1:PORT` (or `--demo` / `--test`).
//! Prints the base URL on stdout, then serves until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use latchkey_entra_sim::{Fixture, Sim};

#[derive(Parser)]
#[command(
    version,
    about = "A simulated Microsoft Entra tenant (token endpoint, OIDC, Graph v1.0)"
)]
struct Args {
    /// Tenant fixture (TOML). Without it, the built-in test tenant.
    #[arg(long, conflicts_with = "demo")]
    fixture: Option<PathBuf>,
    /// Use the built-in demo tenant.
    #[arg(long)]
    demo: bool,
    /// Address to listen on (loopback recommended; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let fixture = match (&args.fixture, args.demo) {
        (Some(path), _) => Fixture::from_file(path)
            .with_context(|| format!("loading fixture {}", path.display()))?,
        (None, true) => Fixture::demo(),
        (None, false) => Fixture::test(),
    };
    let sim = Sim::start_on(fixture, args.listen)
        .await
        .context("starting the simulator")?;
    println!("{}", sim.base_url());
    eprintln!(
        "tenant {} | authority {} | graph {} | control {}/_sim/",
        sim.tenant_id(),
        sim.base_url(),
        sim.graph_base_url(),
        sim.base_url()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sim.stop().await;
    Ok(())
}
