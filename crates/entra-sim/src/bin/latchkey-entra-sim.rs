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
    let churn_per_minute = fixture.generate.as_ref().map_or(0, |g| g.churn_per_minute);
    let sim = Sim::start_on(fixture, args.listen)
        .await
        .context("starting the simulator")?;
    if churn_per_minute > 0 {
        // `[generate] churn_per_minute`: a live-looking directory for mirror demos. Every 5 s a
        // twelfth of the rate (the remainder carried over), seeds counting up.
        let tenant = sim.tenant();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            let (mut owed, mut seed) = (0u64, 0u64);
            loop {
                tick.tick().await;
                owed += u64::from(churn_per_minute);
                let n = owed / 12;
                owed %= 12;
                if n > 0 {
                    seed += 1;
                    let s = tenant.churn(n as usize, seed);
                    tracing::info!(applied = s.applied, "churn");
                }
            }
        });
    }
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
