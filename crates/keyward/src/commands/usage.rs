//! `keyward usage`: your tenant's usage (requests, tokens, cost), added up by the server from
//! the audit log and grouped as asked.

use std::process::ExitCode;

use serde_json::Value;

use super::audit::instant;
use super::output;
use crate::cli::GlobalArgs;
use crate::client;

/// What usage is grouped by.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum GroupBy {
    Tenant,
    Agent,
    Session,
    #[value(name = "user_id", alias = "user")]
    UserId,
    Model,
    Day,
}

impl GroupBy {
    fn as_str(self) -> &'static str {
        match self {
            GroupBy::Tenant => "tenant",
            GroupBy::Agent => "agent",
            GroupBy::Session => "session",
            GroupBy::UserId => "user_id",
            GroupBy::Model => "model",
            GroupBy::Day => "day",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct UsageArgs {
    /// Group the totals by this (default: one total for the tenant)
    #[arg(long, value_enum, value_name = "GROUP", default_value = "tenant")]
    group_by: GroupBy,
    /// Calls from this time on: RFC 3339, a date (2025-01-31), or an age such as 2h, 7d
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Calls before this time: RFC 3339, a date, or an age
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

pub async fn run(global: &GlobalArgs, args: UsageArgs) -> anyhow::Result<ExitCode> {
    let mut query = vec![("group_by", args.group_by.as_str().to_owned())];
    if let Some(since) = &args.since {
        query.push(("since", instant("since", since)?));
    }
    if let Some(until) = &args.until {
        query.push(("until", instant("until", until)?));
    }
    let client = client::connect(global)?;
    let answer = client.get_query(&["v1", "usage"], &query).await?;
    if global.json {
        output::json(&answer)?;
    } else {
        output::emit(&render(args.group_by, &answer))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn render(group_by: GroupBy, answer: &Value) -> String {
    let groups = answer["groups"].as_array().cloned().unwrap_or_default();
    if groups.is_empty() {
        return "No usage in this period.\n".to_owned();
    }
    let count = |g: &Value, field: &str| g[field].as_u64().unwrap_or(0).to_string();
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g["key"].as_str().unwrap_or("-").to_owned(),
                count(g, "requests"),
                count(g, "input_tokens"),
                count(g, "output_tokens"),
                count(g, "cache_tokens"),
                g["cost_usd"]
                    .as_f64()
                    .map_or_else(|| "-".to_owned(), |c| format!("{c:.6}")),
            ]
        })
        .collect();
    let key = group_by.as_str().to_ascii_uppercase();
    output::table(
        &[&key, "REQUESTS", "INPUT", "OUTPUT", "CACHE", "COST_USD"],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_table() {
        let answer = serde_json::json!({"group_by": "model", "groups": [
            {"key": "gpt-4o-mini", "requests": 2, "input_tokens": 22, "output_tokens": 14,
             "cache_tokens": 0, "cost_usd": 0.0000117},
            {"key": null, "requests": 1, "input_tokens": 0, "output_tokens": 0,
             "cache_tokens": 0, "cost_usd": null}]});
        let text = render(GroupBy::Model, &answer);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("MODEL"), "{text}");
        assert!(
            lines[1].contains("gpt-4o-mini") && lines[1].contains("0.000012"),
            "{text}"
        );
        assert!(lines[2].starts_with('-'), "{text}");
        let empty = serde_json::json!({"groups": []});
        assert_eq!(render(GroupBy::Day, &empty), "No usage in this period.\n");
    }
}
