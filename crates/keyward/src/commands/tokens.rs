//! `keyward tokens …`: API tokens of the caller's tenant.

use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::output;
use crate::cli::GlobalArgs;
use crate::client;

#[derive(clap::Subcommand, Debug)]
pub enum TokensCmd {
    /// Issue a new API token for your tenant and print it (shown once)
    Create,
    /// Revoke a token of your tenant: it stops working at once
    Revoke {
        /// Token id (`tok_…`), as printed by `tokens create`
        #[arg(value_name = "ID")]
        id: String,
    },
}

pub async fn run(global: &GlobalArgs, cmd: TokensCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        TokensCmd::Create => create(global).await,
        TokensCmd::Revoke { id } => revoke(global, &id).await,
    }
}

async fn create(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let client = client::connect(global)?;
    let answer = client
        .post(&["v1", "tenants", "me", "tokens"], &json!({}))
        .await?;
    if global.json {
        output::json(&answer)?;
        return Ok(ExitCode::SUCCESS);
    }
    let field = |key: &str| {
        answer
            .get(key)
            .and_then(Value::as_str)
            .context("unexpected answer from the server: no token")
    };
    output::emit(&format!(
        "Token id: {}\nToken (shown once; store it safely):\n{}\n",
        field("id")?,
        field("token")?
    ))?;
    Ok(ExitCode::SUCCESS)
}

async fn revoke(global: &GlobalArgs, id: &str) -> anyhow::Result<ExitCode> {
    let client = client::connect(global)?;
    let answer = client
        .delete(&["v1", "tenants", "me", "tokens", id])
        .await?;
    if global.json {
        output::json(&answer)?;
    } else {
        output::emit(&format!("Revoked token {id}.\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}
