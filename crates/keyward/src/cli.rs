//! Command-line syntax. Flags are parsed here into plain values; each command resolves them
//! into what it needs (server address, token) in `client` and `serve`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::commands;

#[derive(Parser, Debug)]
#[command(
    name = "keyward",
    version,
    about = "A credential broker for AI agents: agents use keys they never hold."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts, before or after the subcommand.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Data directory [default: $KEYWARD_DATA_DIR, else $XDG_DATA_HOME/keyward, else ~/.local/share/keyward]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Control API URL (default: read from the data dir's server.json)
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// API token [default: $KEYWARD_TOKEN, else the data dir's admin.token]
    #[arg(long, global = true, value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON instead of human-readable output
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the keyward server (control API and data plane)
    Serve(crate::serve::ServeArgs),
    /// Manage secret bundles
    #[command(subcommand)]
    Secrets(commands::secrets::SecretsCmd),
    /// Manage agents: attached bundles, manifest check, gateway token
    #[command(subcommand)]
    Agents(commands::agents::AgentsCmd),
    /// Manage tenants (operator)
    #[command(subcommand)]
    Tenants(commands::tenants::TenantsCmd),
    /// Manage API tokens of your tenant
    #[command(subcommand)]
    Tokens(commands::tokens::TokensCmd),
    /// Run a command as an agent: a session, a clean environment, no real key
    Run(commands::run::RunArgs),
    /// Operator maintenance
    #[command(subcommand)]
    Admin(commands::admin::AdminCmd),
    /// Read, export and verify your tenant's audit log
    #[command(subcommand)]
    Audit(commands::audit::AuditCmd),
    /// Your tenant's usage: requests, tokens and cost, grouped by agent, session, model…
    Usage(commands::usage::UsageArgs),
    /// Rate limits and budgets on your tenant, an agent or a session
    #[command(subcommand)]
    Limits(commands::limits::LimitsCmd),
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = cli.global;
    match cli.command {
        Command::Serve(args) => crate::serve::run(&global, args).await,
        Command::Secrets(cmd) => commands::secrets::run(&global, cmd).await,
        Command::Agents(cmd) => commands::agents::run(&global, cmd).await,
        Command::Tenants(cmd) => commands::tenants::run(&global, cmd).await,
        Command::Tokens(cmd) => commands::tokens::run(&global, cmd).await,
        Command::Admin(cmd) => commands::admin::run(&global, cmd).await,
        Command::Run(args) => commands::run::run(&global, args).await,
        Command::Audit(cmd) => commands::audit::run(&global, cmd).await,
        Command::Usage(args) => commands::usage::run(&global, args).await,
        Command::Limits(cmd) => commands::limits::run(&global, cmd).await,
    }
}
