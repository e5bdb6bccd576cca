//! `latchkey-gateway`: the on-premises agent. The writeback preflight (`check`) and the unlock job
//! runner (`run`) arrive with issue 5; until then both say so and exit with code 2 ("could not
//! check"), so no script mistakes this build for a passing check.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "latchkey-gateway", version, about = "Latchkey on-premises gateway: AD writeback preflight and unlock jobs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check that password writeback and unlock can work against on-premises AD.
    Check {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Connect out to the portal and run unlock/reset jobs.
    Run {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let what = match Cli::parse().command {
        Command::Check { .. } => "the AD writeback preflight check",
        Command::Run { .. } => "the job runner",
    };
    eprintln!("latchkey-gateway: {what} is not available in this version yet.");
    ExitCode::from(2)
}
