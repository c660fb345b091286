//! `keyward secrets …`: secret bundles. Values go to the server and never come back: these
//! commands print key names, variables and metadata, never a secret's value.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::output;
use super::secrets_write::{self, ImportArgs, SetArgs};
use crate::cli::GlobalArgs;
use crate::client::{self, ApiClient};

#[derive(clap::Subcommand, Debug)]
pub enum SecretsCmd {
    /// Create a bundle, or merge keys into an existing one
    Set(SetArgs),
    /// List bundles: names, key names and dates (never values)
    List,
    /// Show one bundle: key names, variables with their values, injection rules
    Get {
        /// Bundle name
        #[arg(value_name = "BUNDLE")]
        bundle: String,
    },
    /// Delete a bundle, or only the given keys of it
    #[command(after_help = "Examples:\n  \
        keyward secrets delete github          # the whole bundle\n  \
        keyward secrets delete github OLD_KEY  # one key; fails if the bundle has no OLD_KEY")]
    Delete {
        /// Bundle name
        #[arg(value_name = "BUNDLE")]
        bundle: String,
        /// Keys to remove; without any, the whole bundle is deleted
        #[arg(value_name = "KEY")]
        keys: Vec<String>,
    },
    /// Import a .env file into a bundle (created, or merged into)
    Import(ImportArgs),
}

pub async fn run(global: &GlobalArgs, cmd: SecretsCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretsCmd::Set(args) => secrets_write::set(global, args).await,
        SecretsCmd::Import(args) => secrets_write::import(global, args).await,
        SecretsCmd::List => list(global).await,
        SecretsCmd::Get { bundle } => get(global, &bundle).await,
        SecretsCmd::Delete { bundle, keys } => delete(global, &bundle, keys).await,
    }
}

/// `/v1/tenants/me/secrets`.
pub(crate) const SECRETS: [&str; 4] = ["v1", "tenants", "me", "secrets"];

/// `/v1/tenants/me/secrets/{name}`.
pub(crate) fn bundle_path(name: &str) -> [&str; 5] {
    let [a, b, c, d] = SECRETS;
    [a, b, c, d, name]
}

/// The server's `BundleView`, for human-readable output.
#[derive(Deserialize, Debug)]
pub(crate) struct Bundle {
    pub name: String,
    #[serde(default)]
    pub key_names: Vec<String>,
    pub created_at: String,
    pub last_rotated_at: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub injections: BTreeMap<String, Value>,
    pub version: i64,
}

impl Bundle {
    pub(crate) fn from_json(value: &Value) -> anyhow::Result<Self> {
        serde_json::from_value(value.clone())
            .context("unexpected answer from the server: not a secret bundle")
    }

    /// Key names that are secrets (not variables).
    pub(crate) fn secret_names(&self) -> Vec<String> {
        self.key_names
            .iter()
            .filter(|k| !self.variables.contains_key(*k))
            .cloned()
            .collect()
    }
}

async fn list(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let client = client::connect(global)?;
    let answer = client.get(&SECRETS).await?;
    if global.json {
        output::json(&answer)?;
        return Ok(ExitCode::SUCCESS);
    }
    let bundles = answer
        .get("bundles")
        .and_then(Value::as_array)
        .context("unexpected answer from the server: no bundle list")?
        .iter()
        .map(Bundle::from_json)
        .collect::<anyhow::Result<Vec<_>>>()?;
    if bundles.is_empty() {
        output::emit("No secret bundles.\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = bundles
        .into_iter()
        .map(|b| {
            vec![
                b.name,
                output::names(&b.key_names),
                b.created_at,
                b.last_rotated_at.unwrap_or_else(|| "never".to_owned()),
            ]
        })
        .collect();
    output::emit(&output::table(
        &["NAME", "KEYS", "CREATED", "LAST ROTATED"],
        &rows,
    ))?;
    Ok(ExitCode::SUCCESS)
}

async fn get(global: &GlobalArgs, bundle: &str) -> anyhow::Result<ExitCode> {
    let client = client::connect(global)?;
    let answer = client.get(&bundle_path(bundle)).await?;
    if global.json {
        output::json(&answer)?;
    } else {
        output::emit(&describe(&Bundle::from_json(&answer)?))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The human-readable form of one bundle.
fn describe(b: &Bundle) -> String {
    let mut text = String::new();
    let rotated = b.last_rotated_at.as_deref().unwrap_or("never");
    let _ = writeln!(text, "Bundle:        {}", b.name);
    let _ = writeln!(text, "Version:       {}", b.version);
    let _ = writeln!(text, "Created:       {}", b.created_at);
    let _ = writeln!(text, "Last rotated:  {rotated}");
    let _ = writeln!(text, "Secrets:       {}", output::names(&b.secret_names()));
    if b.variables.is_empty() {
        let _ = writeln!(text, "Variables:     (none)");
    } else {
        let _ = writeln!(text, "Variables:");
        for (key, value) in &b.variables {
            let _ = writeln!(text, "  {key}={}", output::one_line(value));
        }
    }
    if !b.injections.is_empty() {
        let _ = writeln!(text, "Injections:");
        for (key, rule) in &b.injections {
            let hosts: Vec<String> = rule
                .get("hosts")
                .and_then(Value::as_array)
                .map(|h| h.iter().filter_map(Value::as_str).map(str::to_owned))
                .into_iter()
                .flatten()
                .collect();
            let header = rule.get("header").and_then(Value::as_str).unwrap_or("?");
            let _ = writeln!(
                text,
                "  {key}: header `{header}` to {}",
                output::names(&hosts)
            );
        }
    }
    text
}

async fn delete(global: &GlobalArgs, bundle: &str, keys: Vec<String>) -> anyhow::Result<ExitCode> {
    let client = client::connect(global)?;
    if keys.is_empty() {
        let answer = client.delete(&bundle_path(bundle)).await?;
        if global.json {
            output::json(&answer)?;
        } else {
            output::emit(&format!("Deleted bundle {bundle}.\n"))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let answer = remove_keys(&client, bundle, keys.clone()).await?;
    if global.json {
        output::json(&answer)?;
    } else {
        let b = Bundle::from_json(&answer)?;
        output::emit(&format!(
            "Removed {} from bundle {bundle} (version {}).\n",
            output::names(&keys),
            b.version
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Remove `keys` from a bundle, refusing (before any change) if one of them is not in it.
async fn remove_keys(client: &ApiClient, bundle: &str, keys: Vec<String>) -> anyhow::Result<Value> {
    let current = Bundle::from_json(&client.get(&bundle_path(bundle)).await?)?;
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !current.key_names.contains(k))
        .collect();
    if !missing.is_empty() {
        // Name only what looks like a key name: a mistyped argument could be a pasted secret.
        let mut named: Vec<&str> = missing
            .iter()
            .filter(|k| secrets_write::looks_like_key(k))
            .map(|k| k.as_str())
            .collect();
        named.dedup();
        let what = if named.len() == missing.len() {
            format!("no key {}", named.join(", "))
        } else {
            "no such key (an argument is not even a valid key name)".to_owned()
        };
        anyhow::bail!("bundle {bundle} has {what}; nothing was changed");
    }
    Ok(client
        .patch(&bundle_path(bundle), &json!({ "unset": keys }))
        .await?)
}
