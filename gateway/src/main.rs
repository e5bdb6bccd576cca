//! `latchkey-gateway`: the on-premises agent. `check` is the AD writeback preflight; `run` (the
//! unlock job runner) is not built yet and says so with exit code 2.

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
    /// Connect out to the portal and run unlock/reset jobs (not available yet).
    Run {
        #[arg(long, short)]
        config: Option<PathBuf>,
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

fn main() -> ExitCode {
    let filter = std::env::var("LATCHKEY_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    // One process-wide crypto provider (ring), for any TLS config built without an explicit one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().command {
        Command::Check(args) => check(args),
        Command::Run { .. } => {
            eprintln!("latchkey-gateway: the job runner is not available in this version yet.");
            ExitCode::from(2)
        }
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
