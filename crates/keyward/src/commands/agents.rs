//! `keyward agents …`: agents (seeds 002 and 004), the bundles attached to them, their
//! manifest check, the Synced state of their sessions and their gateway token. A gateway token
//! is printed only by `create` and `token rotate`, the two commands that issue one.

use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::output;
use crate::cli::GlobalArgs;
use crate::client::{self, ApiClient};

#[derive(clap::Subcommand, Debug)]
pub enum AgentsCmd {
    /// Create an agent and print its gateway token (shown once)
    #[command(after_help = "Examples:\n  \
        keyward agents create support-bot --manifest-secret OPENAI_API_KEY \
        --manifest-secret DATABASE_URL\n  \
        keyward agents create crawler --egress-allow api.example.com")]
    Create {
        /// Agent name (lowercase letters, digits, `-`)
        #[arg(value_name = "NAME")]
        name: String,
        /// A secret name the agent needs (repeatable); `agents check` reports the missing ones
        #[arg(long = "manifest-secret", value_name = "KEY")]
        manifest: Vec<String>,
        /// Allow only these hosts (plus the credential hosts) for the agent's token and its
        /// sessions that set no policy of their own (repeatable)
        #[arg(long = "egress-allow", value_name = "HOST")]
        egress_allow: Vec<String>,
    },
    /// List agents: names, attached bundles, missing secrets
    List,
    /// Show one agent
    Get {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Delete an agent (its bundles are detached, not deleted)
    Delete {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Attach a secret bundle to an agent
    Attach {
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(value_name = "BUNDLE")]
        bundle: String,
    },
    /// Detach a secret bundle from an agent
    Detach {
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(value_name = "BUNDLE")]
        bundle: String,
    },
    /// List the manifest's secrets that no attached bundle provides; exits 1 if there are any
    Check {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// The agent's running sessions and whether each runs with the latest env values
    Sessions {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Manage the agent's gateway token
    #[command(subcommand)]
    Token(TokenCmd),
}

#[derive(clap::Subcommand, Debug)]
pub enum TokenCmd {
    /// Issue a new gateway token (shown once); the old one stops working at once
    Rotate {
        #[arg(value_name = "NAME")]
        name: String,
    },
}

pub async fn run(global: &GlobalArgs, cmd: AgentsCmd) -> anyhow::Result<ExitCode> {
    let client = client::connect(global)?;
    match cmd {
        AgentsCmd::Create {
            name,
            manifest,
            egress_allow,
        } => create(global, &client, &name, manifest, egress_allow).await,
        AgentsCmd::List => list(global, &client).await,
        AgentsCmd::Get { name } => {
            let agent = client.get(&agent_path(&name)).await?;
            show(global, &agent, &describe(&agent)?)
        }
        AgentsCmd::Delete { name } => {
            let answer = client.delete(&agent_path(&name)).await?;
            show(global, &answer, &format!("Deleted agent {name}.\n"))
        }
        AgentsCmd::Attach { name, bundle } => {
            let body = json!({ "bundle": bundle });
            let agent = client.post(&agent_sub(&name, "secrets"), &body).await?;
            let text = format!("Attached bundle {bundle} to agent {name}.\n");
            show(global, &agent, &text)
        }
        AgentsCmd::Detach { name, bundle } => {
            let [a, b, c, d] = agent_sub(&name, "secrets");
            let agent = client.delete(&[a, b, c, d, &bundle]).await?;
            let text = format!("Detached bundle {bundle} from agent {name}.\n");
            show(global, &agent, &text)
        }
        AgentsCmd::Check { name } => check(global, &client, &name).await,
        AgentsCmd::Sessions { name } => sessions(global, &client, &name).await,
        AgentsCmd::Token(TokenCmd::Rotate { name }) => {
            let [a, b, c, d] = agent_sub(&name, "token");
            let answer = client.post(&[a, b, c, d, "rotate"], &json!({})).await?;
            let token = text_field(&answer, "gateway_token")?;
            let text = format!(
                "New gateway token for agent {name} (shown once; the old one no longer works):\n\
                 {token}\n"
            );
            show(global, &answer, &text)
        }
    }
}

/// `/v1/agents/{name}`.
pub(crate) fn agent_path(name: &str) -> [&str; 3] {
    ["v1", "agents", name]
}

/// `/v1/agents/{name}/{sub}`.
pub(crate) fn agent_sub<'a>(name: &'a str, sub: &'a str) -> [&'a str; 4] {
    ["v1", "agents", name, sub]
}

/// Print `answer` as JSON with `--json`, else `text`.
fn show(global: &GlobalArgs, answer: &Value, text: &str) -> anyhow::Result<ExitCode> {
    if global.json {
        output::json(answer)?;
    } else {
        output::emit(text)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn text_field<'a>(value: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .with_context(|| format!("unexpected answer from the server: no {key}"))
}

fn strings(value: &Value, key: &str) -> Vec<String> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn create(
    global: &GlobalArgs,
    client: &ApiClient,
    name: &str,
    manifest: Vec<String>,
    egress_allow: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let mut body = json!({ "name": name, "manifest": { "secrets": manifest } });
    if !egress_allow.is_empty() {
        body["egress"] = json!({ "mode": "deny-unlisted", "allow": egress_allow });
    }
    let answer = client.post(&["v1", "agents"], &body).await?;
    let mut text = format!(
        "Created agent {}.\nGateway token (shown once; store it safely):\n{}\n",
        text_field(&answer, "name")?,
        text_field(&answer, "gateway_token")?
    );
    let missing = strings(&answer, "missing_secrets");
    if !missing.is_empty() {
        text.push_str(&format!(
            "Missing secrets (attach bundles that provide them): {}\n",
            output::names(&missing)
        ));
    }
    show(global, &answer, &text)
}

async fn list(global: &GlobalArgs, client: &ApiClient) -> anyhow::Result<ExitCode> {
    let answer = client.get(&["v1", "agents"]).await?;
    let agents = answer
        .get("agents")
        .and_then(Value::as_array)
        .context("unexpected answer from the server: no agents")?;
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|a| {
            vec![
                a.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                output::names(&strings(a, "bundles")),
                output::names(&strings(a, "missing_secrets")),
            ]
        })
        .collect();
    let text = if rows.is_empty() {
        "No agents.\n".to_owned()
    } else {
        output::table(&["NAME", "BUNDLES", "MISSING SECRETS"], &rows)
    };
    show(global, &answer, &text)
}

fn describe(agent: &Value) -> anyhow::Result<String> {
    let manifest = agent
        .get("manifest")
        .map(|m| strings(m, "secrets"))
        .unwrap_or_default();
    let egress = match agent.get("egress") {
        None | Some(Value::Null) => "(none)".to_owned(),
        Some(policy) => policy.to_string(),
    };
    Ok(format!(
        "Agent {}\n  bundles:         {}\n  manifest:        {}\n  missing secrets: {}\n  \
         egress:          {egress}\n  created:         {}\n",
        text_field(agent, "name")?,
        output::names(&strings(agent, "bundles")),
        output::names(&manifest),
        output::names(&strings(agent, "missing_secrets")),
        text_field(agent, "created_at")?,
    ))
}

async fn check(global: &GlobalArgs, client: &ApiClient, name: &str) -> anyhow::Result<ExitCode> {
    let agent = client.get(&agent_path(name)).await?;
    let missing = strings(&agent, "missing_secrets");
    if global.json {
        output::json(&json!({ "name": name, "missing_secrets": missing }))?;
    } else if missing.is_empty() {
        output::emit(&format!(
            "Agent {name} has every secret its manifest lists.\n"
        ))?;
    } else {
        output::emit(&format!(
            "Agent {name} is missing {} secret(s) of its manifest: {}\n",
            missing.len(),
            output::names(&missing)
        ))?;
    }
    Ok(if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn sessions(global: &GlobalArgs, client: &ApiClient, name: &str) -> anyhow::Result<ExitCode> {
    let answer = client.get(&agent_sub(name, "sessions")).await?;
    let list = answer
        .get("sessions")
        .and_then(Value::as_array)
        .context("unexpected answer from the server: no sessions")?;
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            let field = |k: &str| {
                s.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let synced = s.get("synced").and_then(Value::as_bool).unwrap_or(false);
            vec![
                field("session_id"),
                field("created_at"),
                if synced { "yes" } else { "no" }.to_owned(),
                output::names(&strings(s, "stale_keys")),
            ]
        })
        .collect();
    let text = if rows.is_empty() {
        format!("Agent {name} has no running sessions.\n")
    } else {
        output::table(&["SESSION", "CREATED", "SYNCED", "STALE KEYS"], &rows)
    };
    show(global, &answer, &text)
}
