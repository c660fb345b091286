//! `keyward tenants …` (operator token).

use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::output;
use crate::cli::GlobalArgs;
use crate::client;

#[derive(clap::Subcommand, Debug)]
pub enum TenantsCmd {
    /// Create a tenant and print its first API token (shown once)
    Create {
        /// Tenant name (lowercase letters, digits, `-`)
        #[arg(value_name = "NAME")]
        name: String,
    },
}

pub async fn run(global: &GlobalArgs, cmd: TenantsCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        TenantsCmd::Create { name } => create(global, &name).await,
    }
}

async fn create(global: &GlobalArgs, name: &str) -> anyhow::Result<ExitCode> {
    let client = client::connect(global)?;
    let answer = client
        .post(&["v1", "tenants"], &json!({ "name": name }))
        .await?;
    if global.json {
        output::json(&answer)?;
        return Ok(ExitCode::SUCCESS);
    }
    let field = |key: &str| {
        answer
            .get(key)
            .and_then(Value::as_str)
            .context("unexpected answer from the server: no tenant")
    };
    output::emit(&format!(
        "Created tenant {}.\nAPI token (shown once; store it safely):\n{}\n",
        field("name")?,
        field("token")?
    ))?;
    Ok(ExitCode::SUCCESS)
}
