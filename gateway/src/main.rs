//! `latchkey-gateway`: the on-premises agent. `check` is the AD writeback preflight; `run` takes
//! unlock/reset jobs from the portal (in the foreground, or as a Windows service).
#![cfg_attr(test, allow(clippy::disallowed_methods))] // unit tests read the system clock and randomness directly

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use latchkey_gateway::checks::{self, Report};
use latchkey_gateway::config::{self, Overrides};
use latchkey_gateway::{apply, fixscript, report};
use latchkey_types::Secret;

#[derive(Parser)]
#[command(
    name = "latchkey-gateway",
    version,
    about = "Latchkey on-premises gateway: AD writeback preflight and unlock jobs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check that password writeback and unlock can work against on-premises AD. Exit code 0:
    /// nothing failed (warnings allowed), 1: a requirement failed, 2: could not check.
    Check(CheckArgs),
    /// Connect out to the portal and run its unlock/reset jobs with the [ad] service account.
    /// Runs until Ctrl+C / SIGTERM; exit code 2 when the configuration is wrong or the portal
    /// refuses the credential.
    Run {
        /// TOML configuration file with [ad], [portal] and [jobs] tables.
        #[arg(long, short)]
        config: PathBuf,
        /// Windows: run under the service control manager (logs go to the Event Log).
        #[arg(long)]
        service: bool,
    },
}

#[derive(Args)]
struct CheckArgs {
    /// TOML configuration file with an [ad] table.
    #[arg(long, short)]
    config: PathBuf,
    /// Print the result as JSON (schema in the README).
    #[arg(long)]
    json: bool,
    /// Print a PowerShell script with one dsacls command per missing right instead of the report.
    #[arg(long, conflicts_with = "json")]
    fix_script: bool,
    /// Apply the missing grants with the administrator credentials below, re-check, and print
    /// what changed. Nothing is written to AD without this flag.
    #[arg(long, requires_all = ["admin_bind_dn", "admin_password_file"])]
    apply_fix: bool,
    /// Administrator bind DN (or UPN) for --apply-fix.
    #[arg(long)]
    admin_bind_dn: Option<String>,
    /// File holding the administrator's password for --apply-fix.
    #[arg(long)]
    admin_password_file: Option<PathBuf>,
    /// Overrides ad.url.
    #[arg(long)]
    url: Option<String>,
    /// Overrides ad.bind_dn.
    #[arg(long)]
    bind_dn: Option<String>,
    /// Overrides ad.password_file.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Overrides ad.ca_file.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Overrides ad.base_dn.
    #[arg(long)]
    base_dn: Option<String>,
    /// Overrides ad.connector_account.
    #[arg(long)]
    connector_account: Option<String>,
    /// LABS ONLY: do not verify the DC's TLS certificate.
    #[arg(long)]
    insecure_skip_tls_verify: bool,
}

fn init_tracing(default: &str) {
    let filter = std::env::var("LATCHKEY_LOG").unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    // One process-wide crypto provider (ring), for any TLS config built without an explicit one.
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        // Only one can be installed; one already is (the same, in a single binary).
        tracing::debug!("a crypto provider was already installed");
    }
    match Cli::parse().command {
        Command::Check(args) => {
            init_tracing("warn");
            check(args)
        }
        Command::Run { config, service } => run(config, service),
    }
}

fn run(config: PathBuf, service: bool) -> ExitCode {
    if service {
        #[cfg(windows)]
        {
            return match latchkey_gateway::service::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("latchkey-gateway: {e}");
                    ExitCode::from(2)
                }
            };
        }
        #[cfg(not(windows))]
        {
            eprintln!("latchkey-gateway: --service is for Windows; run it in the foreground here");
            return ExitCode::from(2);
        }
    }
    init_tracing("info");
    let cfg = match config::load_agent(&config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("latchkey-gateway run: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("latchkey-gateway run: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(latchkey_gateway::agent::run(cfg, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey-gateway run: {e}");
            ExitCode::from(2)
        }
    }
}

/// Ctrl+C, or SIGTERM (what systemd sends).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::error!(error = %e, "cannot wait for Ctrl+C");
    }
}

fn check(args: CheckArgs) -> ExitCode {
    let overrides = Overrides {
        url: args.url.clone(),
        bind_dn: args.bind_dn.clone(),
        password_file: args.password_file.clone(),
        ca_file: args.ca_file.clone(),
        base_dn: args.base_dn.clone(),
        connector_account: args.connector_account.clone(),
        insecure: args.insecure_skip_tls_verify,
    };
    let fail = |message: String| {
        if args.json {
            println!("{}", report::error_json(&message));
        } else {
            eprintln!("latchkey-gateway check: could not check: {message}");
        }
        ExitCode::from(2)
    };
    let config = match config::load(&args.config, &overrides) {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    if args.insecure_skip_tls_verify {
        eprintln!(
            "WARNING: --insecure-skip-tls-verify: the DC's certificate is NOT verified. Labs only."
        );
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async {
        let first = match checks::run(&config).await {
            Ok(r) => r,
            Err(e) => return fail(e.to_string()),
        };
        if !args.apply_fix {
            emit(&args, &first);
            return ExitCode::from(first.exit_code());
        }
        let (Some(dn), Some(pw_file)) = (&args.admin_bind_dn, &args.admin_password_file) else {
            return fail("--apply-fix needs --admin-bind-dn and --admin-password-file".into());
        };
        let password = match std::fs::read_to_string(pw_file) {
            Ok(p) => p.trim_end_matches(['\r', '\n']).to_string(),
            Err(e) => return fail(format!("{}: {e}", pw_file.display())),
        };
        let mut admin = config.ldap.clone();
        admin.bind_dn = dn.clone();
        admin.password = Secret::new(password);
        let changes = match apply::apply(&first, &admin).await {
            Ok(c) => c,
            Err(e) => return fail(format!("applying the fix: {e}")),
        };
        let second = match checks::run(&config).await {
            Ok(r) => r,
            Err(e) => return fail(e.to_string()),
        };
        if !args.json {
            println!("applied {} change(s):", changes.len());
            for c in &changes {
                println!("  {c}");
            }
            println!("status changes:");
            for (a, b) in first.checks.iter().zip(&second.checks) {
                if a.status != b.status {
                    println!("  {}: {} -> {}", a.id, a.status.label(), b.status.label());
                }
            }
            println!();
        }
        emit(&args, &second);
        ExitCode::from(second.exit_code())
    })
}

fn emit(args: &CheckArgs, r: &Report) {
    if args.fix_script {
        print!("{}", fixscript::render(r));
    } else if args.json {
        println!("{:#}", report::to_json(r));
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        print!("{}", report::human(r, colour));
    }
}
