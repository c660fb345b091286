//! `keyward limits set|get|clear SCOPE [NAME]`: rate limits and budgets on your tenant
//! (`tenant`, name `me`, the default), one of its agents or one of its sessions.

use std::process::ExitCode;

use serde_json::{Map, Value};

use super::output;
use crate::cli::GlobalArgs;
use crate::client;

/// What a limit is set on.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Tenant,
    Agent,
    Session,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Tenant => "tenant",
            Scope::Agent => "agent",
            Scope::Session => "session",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Target {
    /// tenant, agent or session
    #[arg(value_enum)]
    scope: Scope,
    /// The agent's name or the session's id (for the tenant: `me`, the default)
    name: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub enum LimitsCmd {
    /// Set a scope's limits, replacing those it had
    #[command(after_help = "Zero refuses every call. Limits apply from the very next call.")]
    Set {
        #[command(flatten)]
        target: Target,
        /// Requests per minute
        #[arg(long, value_name = "N")]
        rpm: Option<u64>,
        /// Tokens (input + output) per minute
        #[arg(long, value_name = "N")]
        tpm: Option<u64>,
        /// Requests in flight at once
        #[arg(long, value_name = "N")]
        concurrent: Option<u64>,
        /// Spend per UTC day, in USD
        #[arg(long, value_name = "USD")]
        budget_day: Option<f64>,
        /// Spend per UTC calendar month, in USD
        #[arg(long, value_name = "USD")]
        budget_month: Option<f64>,
    },
    /// Show a scope's limits
    Get {
        #[command(flatten)]
        target: Target,
    },
    /// Remove every limit of a scope
    Clear {
        #[command(flatten)]
        target: Target,
    },
}

impl Target {
    /// `["v1", "limits", scope, name]`, or a usage error (exit 2) naming what is missing.
    fn path(&self, command: &str) -> Result<[String; 4], ExitCode> {
        let name = match (self.scope, &self.name) {
            (_, Some(name)) => name.clone(),
            (Scope::Tenant, None) => "me".to_owned(),
            (scope, None) => {
                let what = if scope == Scope::Agent {
                    "an agent name"
                } else {
                    "a session id"
                };
                return Err(super::usage_error(
                    "limits",
                    command,
                    format!("{} limits need {what}", scope.as_str()),
                ));
            }
        };
        Ok([
            "v1".into(),
            "limits".into(),
            self.scope.as_str().into(),
            name,
        ])
    }
}

pub async fn run(global: &GlobalArgs, cmd: LimitsCmd) -> anyhow::Result<ExitCode> {
    let (command, target) = match &cmd {
        LimitsCmd::Set { target, .. } => ("set", target),
        LimitsCmd::Get { target } => ("get", target),
        LimitsCmd::Clear { target } => ("clear", target),
    };
    let path = match target.path(command) {
        Ok(path) => path,
        Err(code) => return Ok(code),
    };
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    let answer = match cmd {
        LimitsCmd::Set {
            rpm,
            tpm,
            concurrent,
            budget_day,
            budget_month,
            ..
        } => {
            let mut body = Map::new();
            let mut put = |field: &str, value: Option<Value>| {
                if let Some(v) = value {
                    body.insert(field.to_owned(), v);
                }
            };
            put("requests_per_minute", rpm.map(Value::from));
            put("tokens_per_minute", tpm.map(Value::from));
            put("concurrent_requests", concurrent.map(Value::from));
            put("budget_usd_per_day", budget_day.map(Value::from));
            put("budget_usd_per_month", budget_month.map(Value::from));
            if body.is_empty() {
                return Ok(super::usage_error(
                    "limits",
                    "set",
                    "give at least one of --rpm, --tpm, --concurrent, --budget-day, \
                     --budget-month (`limits clear` removes them all)",
                ));
            }
            client::connect(global)?
                .put(&path, &Value::Object(body))
                .await?
        }
        LimitsCmd::Get { .. } => client::connect(global)?.get(&path).await?,
        LimitsCmd::Clear { .. } => {
            let answer = client::connect(global)?.delete(&path).await?;
            if !global.json {
                output::emit("Limits cleared.\n")?;
                return Ok(ExitCode::SUCCESS);
            }
            answer
        }
    };
    if global.json {
        output::json(&answer)?;
    } else {
        output::emit(&render(&answer))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn render(limits: &Value) -> String {
    let Some(fields) = limits.as_object().filter(|o| !o.is_empty()) else {
        return "No limits.\n".to_owned();
    };
    let rows: Vec<Vec<String>> = fields
        .iter()
        .map(|(k, v)| vec![k.clone(), v.to_string()])
        .collect();
    output::table(&["LIMIT", "VALUE"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_limits() {
        let text =
            render(&serde_json::json!({"requests_per_minute": 5, "budget_usd_per_day": 2.5}));
        assert!(text.contains("requests_per_minute  5"), "{text}");
        assert!(text.contains("2.5"), "{text}");
        assert_eq!(render(&serde_json::json!({})), "No limits.\n");
    }
}
