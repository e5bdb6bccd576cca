//! `latchkey`: the self-service password reset portal and its command line.
//!
//! Each subcommand lives in its own module of the library; this file only parses arguments and
//! dispatches.
#![cfg_attr(test, allow(clippy::disallowed_methods))] // unit tests read the system clock and randomness directly

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use latchkey::config::{LogFormat, LogSettings};

use latchkey::{
    app, check, delegate, demo, gateway, login_screen, passkey_cli, policy_cli, user_show,
};

#[derive(Parser)]
#[command(
    name = "latchkey",
    version,
    about = "Self-service password reset and account unlock for Microsoft Entra ID"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the portal with a configuration file.
    Serve {
        /// TOML configuration file (see README, "Configuration").
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Hybrid tenants: sign in once as an Authentication Administrator so synced users can reset
    /// (delegated resetPassword with writeback). Stores the refresh token encrypted in
    /// `[delegated] token_file`.
    Delegate {
        #[arg(long, short)]
        config: PathBuf,
        /// Loopback port of the redirect listener (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Run a self-contained demo: a simulated Entra tenant and the portal on loopback.
    Demo {
        /// Address the portal listens on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
    /// Test the tenant connection: acquire tokens, probe every permission and directory role the
    /// configured features need, print a table. Exit code 1 when something required is missing.
    Check {
        #[arg(long, short)]
        config: PathBuf,
        /// Print the result as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Inspect directory users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Validate access policies, and explain which applies to a user.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// On-premises gateways (`latchkey-gateway run`): issue, list, change and revoke them.
    Gateway {
        #[command(subcommand)]
        command: GatewayCommand,
    },
    /// The Windows sign-in screen's way to the portal (installer/windows/README.md).
    LoginScreen {
        #[command(subcommand)]
        command: LoginScreenCommand,
    },
    /// Passkeys (FIDO2 security keys) in Entra: provision the key plugged into this computer for
    /// a user, list a user's passkeys with their models, remove one (docs/passkeys.md).
    Passkey {
        #[command(subcommand)]
        command: PasskeyCommand,
    },
}

#[derive(Subcommand)]
enum PasskeyCommand {
    /// Register the security key plugged into this computer for the user (asks for its PIN).
    Provision {
        /// User principal name, email address or object id.
        user: String,
        #[arg(long, short)]
        config: PathBuf,
        /// The name Entra shows (default: "Security key (YYYY-MM-DD)").
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
        /// Also for accounts with directory roles.
        #[arg(long)]
        allow_privileged: bool,
    },
    /// The user's passkeys in Entra, with their models.
    List {
        user: String,
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Remove one of the user's passkeys (the id `list` prints).
    Remove {
        user: String,
        id: String,
        #[arg(long, short)]
        config: PathBuf,
        /// Also for accounts with directory roles.
        #[arg(long)]
        allow_privileged: bool,
    },
}

#[derive(Subcommand)]
enum LoginScreenCommand {
    /// Write the lock-screen images (address + QR code), the logon message (.txt, .reg) and,
    /// with [kiosk] enabled, the Assigned Access configurations of a "Reset password" kiosk.
    Assets {
        #[arg(long, short)]
        config: PathBuf,
        /// Folder to write them to (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Language of the words.
        #[arg(long, value_enum, default_value_t = latchkey::i18n::Lang::En)]
        language: latchkey::i18n::Lang,
        /// The shared-PC kiosk account people choose on the sign-in screen (`name`, `.\name`,
        /// `DOMAIN\name` or `AzureAD\user@domain`).
        #[arg(long, default_value = "ResetPassword", value_parser = kiosk_account)]
        kiosk_account: latchkey_loginscreen::assigned_access::KioskAccount,
    },
}

#[derive(Subcommand)]
enum GatewayCommand {
    /// Register a gateway and print its credential once (only a hash is stored).
    Register {
        /// A name for the gateway, e.g. the site or host it runs on.
        name: String,
        /// Also allow `reset` jobs (they carry users' new passwords); without it the gateway
        /// only unlocks, whatever it asks for.
        #[arg(long = "allow", value_name = "KIND", value_parser = ["unlock", "reset"])]
        allow: Vec<String>,
        #[arg(long, short)]
        config: PathBuf,
    },
    /// List gateways: connected or not, last poll, what they may do.
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Change what a live gateway may do, keeping its credential: unlock always; reset only
    /// when listed (`--allow unlock` takes reset away, `--allow unlock,reset` grants it).
    Allow {
        name: String,
        /// The kinds it may run from now on (repeat or comma-separate): `unlock`, `reset`.
        /// Unlock stays allowed either way: a gateway that should do nothing is revoked.
        #[arg(long = "allow", value_name = "KIND", value_parser = ["unlock", "reset"],
              value_delimiter = ',', required = true)]
        allow: Vec<String>,
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Revoke a gateway's credential at once.
    Revoke {
        name: String,
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate every *.toml policy file in DIR (exit 1 with file:line:column errors).
    Check { dir: PathBuf },
    /// Which policy applies to a user, and why (evaluated against the tenant, live).
    Explain {
        /// User principal name, email address or object id.
        user: String,
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Show a user: identity, sync state, groups, directory roles and authentication methods.
    Show {
        /// User principal name, email address (mail, otherMails, proxyAddresses) or object id.
        user: String,
        #[arg(long, short)]
        config: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `[log] format` of the configuration the portal serves with (logging starts first).
    let format = match &cli.command {
        Command::Serve { config } => LogSettings::peek(config).format,
        _ => LogFormat::Text,
    };
    init_tracing(format);
    // One TLS stack: rustls with ring, installed before anything builds a TLS client.
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        // Only one can be installed; one already is (the same, in a single binary).
        tracing::debug!("a crypto provider was already installed");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config } => app::serve(&config).await,
            Command::Delegate { config, port } => delegate::run(&config, port).await,
            Command::Demo { listen } => demo::run(listen).await,
            Command::Check { config, json } => check::run(&config, json).await,
            Command::User {
                command: UserCommand::Show { user, config, json },
            } => user_show::run(&config, &user, json).await,
            Command::Policy {
                command: PolicyCommand::Check { dir },
            } => policy_cli::check(&dir),
            Command::Passkey { command } => match command {
                PasskeyCommand::Provision {
                    user,
                    config,
                    name,
                    json,
                    allow_privileged,
                } => {
                    let flags = (json, allow_privileged);
                    passkey_cli::provision(&config, &user, name.as_deref(), flags).await
                }
                PasskeyCommand::List { user, config, json } => {
                    passkey_cli::list(&config, &user, json).await
                }
                PasskeyCommand::Remove {
                    user,
                    id,
                    config,
                    allow_privileged,
                } => passkey_cli::remove(&config, &user, &id, allow_privileged).await,
            },
            Command::Policy {
                command: PolicyCommand::Explain { user, config },
            } => policy_cli::explain(&config, &user).await,
            Command::LoginScreen {
                command:
                    LoginScreenCommand::Assets {
                        config,
                        out,
                        language,
                        kiosk_account,
                    },
            } => login_screen::assets(&login_screen::AssetOptions {
                config: &config,
                out: &out,
                language,
                kiosk_account: &kiosk_account,
            }),
            Command::Gateway { command } => match command {
                GatewayCommand::Register {
                    name,
                    allow,
                    config,
                } => {
                    let allow_reset = allow.iter().any(|k| k == "reset");
                    gateway::cli::register(&config, &name, allow_reset).await
                }
                GatewayCommand::List { config } => gateway::cli::list(&config).await,
                GatewayCommand::Allow {
                    name,
                    allow,
                    config,
                } => {
                    let allow_reset = allow.iter().any(|k| k == "reset");
                    gateway::cli::allow(&config, &name, allow_reset).await
                }
                GatewayCommand::Revoke { name, config } => {
                    gateway::cli::revoke(&config, &name).await
                }
            },
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            // In the JSON format even the last word is one JSON line.
            match format {
                LogFormat::Json => tracing::error!(error = %format!("{e:#}"), "cannot run"),
                LogFormat::Text => eprintln!("error: {e:#}"),
            }
            ExitCode::from(2)
        }
    }
}

/// `--kiosk-account`, checked as Assigned Access will take it.
fn kiosk_account(
    spelling: &str,
) -> Result<latchkey_loginscreen::assigned_access::KioskAccount, String> {
    latchkey_loginscreen::assigned_access::KioskAccount::account(spelling)
        .map_err(|e| e.to_string())
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // The redacted Graph HTTP log (its own target) is emitted only while `[graph] http_debug`
    // or the admin console's time-boxed toggle is on, so the default filter lets it through.
    let filter = EnvFilter::try_from_env("LATCHKEY_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,latchkey_graph::http=debug"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let set = match format {
        LogFormat::Text => builder.try_init(),
        // One JSON object per line; `span` holds the request's id (request_id.rs).
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    if let Err(e) = set {
        // Only when a logger is already set (tests that run main's code twice): keep that one.
        eprintln!("latchkey: logging was already set up: {e}");
    }
}
