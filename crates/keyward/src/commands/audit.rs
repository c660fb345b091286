//! `keyward audit …`: your tenant's audit log. `tail` and `query` read it, `export` writes it
//! as JSON lines, and `verify` checks its hash chain HERE, on the records themselves, so it
//! does not have to take the server's word for it.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{SecondsFormat, Utc};
use keyward_audit::line::{self, LineError};
use keyward_audit::{BreakReason, ChainBreak, StoredAuditRecord, Verifier};
use serde_json::{json, Value};

use super::output;
use crate::cli::GlobalArgs;
use crate::client::{self, ApiClient};

#[derive(clap::Subcommand, Debug)]
pub enum AuditCmd {
    /// Show the latest records; with --follow, keep showing new ones
    Tail(TailArgs),
    /// Find records by session, agent and time
    Query(QueryArgs),
    /// Write every record of your tenant as JSON lines
    Export {
        /// File to write (default: standard output)
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Check the hash chain of the server's records, or of an exported file
    #[command(
        after_help = "Exits 1 and names the first bad record if a record was changed, \
        removed or inserted. The chain cannot show records cut off its end: compare the head \
        it prints with one noted earlier."
    )]
    Verify {
        /// A JSON-lines file from `audit export` (or a static-mode audit file) instead of the
        /// server's records
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
pub struct TailArgs {
    /// Keep printing new records as they are written (Ctrl-C stops)
    #[arg(long, short)]
    follow: bool,
    /// Only this session's records
    #[arg(long, value_name = "ID")]
    session: Option<String>,
    /// How many of the latest records to show
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 20)]
    lines: u64,
}

#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// Only this session's records
    #[arg(long, value_name = "ID")]
    session: Option<String>,
    /// Only this agent's records
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
    /// Records at or after this time: RFC 3339, or an age such as 30m, 2h, 7d
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Records before this time: RFC 3339, or an age such as 30m, 2h, 7d
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// At most this many records (oldest first)
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: u64,
}

pub async fn run(global: &GlobalArgs, cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCmd::Tail(args) => tail(global, args).await,
        AuditCmd::Query(args) => query(global, args).await,
        AuditCmd::Export { output } => export(global, output.as_deref()).await,
        AuditCmd::Verify { file } => verify(global, file.as_deref()).await,
    }
}

const AUDIT: [&str; 2] = ["v1", "audit"];
/// The server's largest page.
const PAGE: u64 = 1000;
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// One page of records for `query`.
async fn page(client: &ApiClient, query: &[(&str, String)]) -> anyhow::Result<Vec<Value>> {
    let answer = client.get_query(&AUDIT, query).await?;
    match answer.get("records") {
        Some(Value::Array(records)) => Ok(records.clone()),
        _ => anyhow::bail!("unexpected answer from the server: no audit records"),
    }
}

fn seq_of(record: &Value) -> anyhow::Result<i64> {
    record
        .get("seq")
        .and_then(Value::as_i64)
        .context("unexpected answer from the server: a record without seq")
}

/// Every record matching `filters` with a `seq` above `after`, oldest first, at most `max`,
/// paged with `after`; `each` sees them in order.
async fn for_each_record(
    client: &ApiClient,
    filters: &[(&str, String)],
    mut after: Option<i64>,
    max: u64,
    mut each: impl FnMut(Value) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut seen = 0;
    while seen < max {
        let limit = (max - seen).min(PAGE);
        let mut query = filters.to_vec();
        query.push(("limit", limit.to_string()));
        if let Some(after) = after {
            query.push(("after", after.to_string()));
        }
        let records = page(client, &query).await?;
        let full = records.len() as u64 == limit;
        for record in records {
            after = Some(seq_of(&record)?);
            seen += 1;
            each(record)?;
        }
        if !full {
            break;
        }
    }
    Ok(seen)
}

async fn tail(global: &GlobalArgs, args: TailArgs) -> anyhow::Result<ExitCode> {
    if args.lines == 0 {
        anyhow::bail!("-n must be at least 1");
    }
    let client = client::connect(global)?;
    let filters: Vec<(&str, String)> = args.session.map(|s| ("session", s)).into_iter().collect();
    // The newest N, fetched newest first and paged backward with `before`.
    let mut latest: Vec<Value> = Vec::new();
    let mut before: Option<i64> = None;
    while (latest.len() as u64) < args.lines {
        let limit = (args.lines - latest.len() as u64).min(PAGE);
        let mut query = filters.clone();
        query.push(("order", "desc".to_owned()));
        query.push(("limit", limit.to_string()));
        if let Some(before) = before {
            query.push(("before", before.to_string()));
        }
        let records = page(&client, &query).await?;
        let full = records.len() as u64 == limit;
        if let Some(last) = records.last() {
            before = Some(seq_of(last)?);
        }
        latest.extend(records);
        if !full {
            break;
        }
    }
    latest.reverse();
    let mut last_seq = latest.last().map(seq_of).transpose()?.unwrap_or(0);
    print_records(global, &latest)?;
    if !args.follow {
        if latest.is_empty() && !global.json {
            output::emit("No audit records.\n")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        let mut fresh = Vec::new();
        for_each_record(&client, &filters, Some(last_seq), u64::MAX, |r| {
            fresh.push(r);
            Ok(())
        })
        .await?;
        if let Some(last) = fresh.last() {
            last_seq = seq_of(last)?;
        }
        print_records(global, &fresh)?;
    }
}

/// Records one per line: a summary, or (with `--json`) the record as a JSON line.
fn print_records(global: &GlobalArgs, records: &[Value]) -> anyhow::Result<()> {
    let mut text = String::new();
    for record in records {
        if global.json {
            text.push_str(&json_line(record.clone()));
        } else {
            text.push_str(&describe(record));
        }
        text.push('\n');
    }
    output::emit(&text)
}

/// A record as one JSON line in the form of `keyward_audit::line` (seq first, the record's
/// fields in their canonical order); one that is no longer a readable record, as received.
fn json_line(record: Value) -> String {
    match line::from_value(record.clone()) {
        Ok(stored) => line::to_line(&stored),
        Err(_) => record.to_string(),
    }
}

/// `#12 2025-01-31T12:00:00.123Z POST api.openai.com/v1/chat/completions 200 forwarded …`
fn describe(r: &Value) -> String {
    let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
    let num = |k: &str| r.get(k).filter(|v| !v.is_null()).map(Value::to_string);
    let mut line = format!(
        "#{} {} {} {}{} {} {}",
        num("seq").unwrap_or_default(),
        text("ts"),
        text("method"),
        text("host"),
        text("path"),
        num("status").unwrap_or_else(|| "-".to_owned()),
        text("decision"),
    );
    for key in ["agent", "session", "credential", "model", "error"] {
        if let Some(value) = r.get(key).and_then(Value::as_str) {
            line.push_str(&format!(" {key}={value}"));
        }
    }
    if let (Some(i), Some(o)) = (num("tokens_in"), num("tokens_out")) {
        line.push_str(&format!(" tokens={i}/{o}"));
    }
    if let Some(cost) = r.get("cost_usd").and_then(Value::as_f64) {
        line.push_str(&format!(" cost=${cost:.6}"));
    }
    if let Some(ms) = num("duration_ms") {
        line.push_str(&format!(" {ms}ms"));
    }
    line
}

/// `--since`/`--until`: RFC 3339 passes through; an age (`90s`, `30m`, `2h`, `7d`) becomes
/// now minus that age.
pub(crate) fn instant(flag: &str, raw: &str) -> anyhow::Result<String> {
    let raw = raw.trim();
    let (number, unit) = raw.split_at(raw.len().saturating_sub(1));
    let seconds = match unit {
        "s" => Some(1),
        "m" => Some(60),
        "h" => Some(3600),
        "d" => Some(86_400),
        _ => None,
    };
    match (seconds, number.parse::<i64>()) {
        (Some(unit), Ok(n)) if n >= 0 => {
            let age = n
                .checked_mul(unit)
                .and_then(chrono::Duration::try_seconds)
                .with_context(|| format!("--{flag} is too far back"))?;
            Ok((Utc::now() - age).to_rfc3339_opts(SecondsFormat::Millis, true))
        }
        _ => Ok(raw.to_owned()),
    }
}

async fn query(global: &GlobalArgs, args: QueryArgs) -> anyhow::Result<ExitCode> {
    if args.limit == 0 {
        anyhow::bail!("--limit must be at least 1");
    }
    let mut filters: Vec<(&str, String)> = Vec::new();
    filters.extend(args.session.map(|s| ("session", s)));
    filters.extend(args.agent.map(|a| ("agent", a)));
    if let Some(since) = args.since {
        filters.push(("since", instant("since", &since)?));
    }
    if let Some(until) = args.until {
        filters.push(("until", instant("until", &until)?));
    }
    let client = client::connect(global)?;
    let mut records = Vec::new();
    for_each_record(&client, &filters, None, args.limit, |r| {
        records.push(r);
        Ok(())
    })
    .await?;
    if global.json {
        output::json(&json!({ "records": records }))?;
    } else if records.is_empty() {
        output::emit("No matching audit records.\n")?;
    } else {
        print_records(global, &records)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn export(global: &GlobalArgs, path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let client = client::connect(global)?;
    let mut out: Box<dyn Write> = match path {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let count = for_each_record(&client, &[], None, u64::MAX, |record| {
        writeln!(out, "{}", json_line(record))?;
        Ok(())
    })
    .await?;
    out.flush()?;
    drop(out);
    if let Some(path) = path {
        eprintln!("Exported {count} audit records to {}.", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// One tenant's chain as it is being checked.
#[derive(Default)]
struct TenantCheck {
    verifier: Verifier,
    broken: Option<ChainBreak>,
}

impl TenantCheck {
    fn push(&mut self, record: Result<StoredAuditRecord, (i64, BreakReason)>) {
        if self.broken.is_some() {
            return;
        }
        self.broken = match record {
            Ok(record) => self.verifier.push(&record).err(),
            Err((seq, reason)) => Some(ChainBreak { seq, reason }),
        };
    }
}

/// Chains by tenant name (a static-mode file holds several).
#[derive(Default)]
struct Checks(BTreeMap<String, TenantCheck>);

impl Checks {
    /// Feed one parsed line; `where_` names it in an error.
    fn push(
        &mut self,
        parsed: Result<StoredAuditRecord, LineError>,
        where_: &str,
    ) -> anyhow::Result<()> {
        let (tenant, record) = match parsed {
            Ok(record) => (record.tenant.clone(), Ok(record)),
            // Has a seq but is no longer a record: it was edited.
            Err(LineError::Unreadable { seq, tenant }) => {
                (tenant.unwrap_or_default(), Err((seq, BreakReason::Changed)))
            }
            Err(LineError::NotARecord) => anyhow::bail!("{where_} is not an audit record"),
        };
        self.0.entry(tenant).or_default().push(record);
        Ok(())
    }
}

async fn verify(global: &GlobalArgs, file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut checks = Checks::default();
    match file {
        Some(path) => {
            let reader = std::io::BufReader::new(
                std::fs::File::open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            );
            for (i, text) in reader.lines().enumerate() {
                let text = text.with_context(|| format!("cannot read {}", path.display()))?;
                if !text.trim().is_empty() {
                    checks.push(
                        line::parse_line(&text),
                        &format!("line {} of {}", i + 1, path.display()),
                    )?;
                }
            }
        }
        None => {
            let client = client::connect(global)?;
            for_each_record(&client, &[], None, u64::MAX, |record| {
                let seq = record.get("seq").cloned().unwrap_or(Value::Null);
                checks.push(
                    line::from_value(record),
                    &format!("the record with seq {seq}"),
                )
            })
            .await?;
        }
    }
    report(global, &checks)
}

fn report(global: &GlobalArgs, checks: &Checks) -> anyhow::Result<ExitCode> {
    let ok = checks.0.values().all(|c| c.broken.is_none());
    if global.json {
        let tenants: Vec<Value> = checks
            .0
            .iter()
            .map(|(tenant, c)| {
                json!({
                    "tenant": tenant,
                    "ok": c.broken.is_none(),
                    "checked": c.verifier.checked(),
                    "first_bad": c.broken.as_ref().map(|b| json!({"seq": b.seq, "reason": b.reason.as_str()})),
                    "head": {"seq": c.verifier.head().seq, "hash": c.verifier.head().hash},
                })
            })
            .collect();
        let checked: usize = checks.0.values().map(|c| c.verifier.checked()).sum();
        output::json(&json!({ "ok": ok, "checked": checked, "tenants": tenants }))?;
    } else if checks.0.is_empty() {
        output::emit("No audit records to verify.\n")?;
    } else {
        let mut text = String::new();
        for (tenant, c) in &checks.0 {
            let head = c.verifier.head();
            match &c.broken {
                None => text.push_str(&format!(
                    "{tenant}: chain intact, {} records; head seq {} hash {}\n",
                    c.verifier.checked(),
                    head.seq,
                    head.hash
                )),
                Some(brk) => text.push_str(&format!(
                    "{tenant}: CHAIN BROKEN at seq {} ({}): {}; {} records intact before it\n",
                    brk.seq,
                    brk.reason,
                    brk.reason.description(),
                    c.verifier.checked()
                )),
            }
        }
        output::emit(&text)?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_become_instants_and_timestamps_pass_through() {
        let t = instant("since", "2h").unwrap();
        let parsed = chrono::DateTime::parse_from_rfc3339(&t).unwrap();
        let age = Utc::now() - parsed.to_utc();
        assert!((7199..=7201).contains(&age.num_seconds()), "{t}");
        assert_eq!(
            instant("since", "2025-01-31T12:00:00Z").unwrap(),
            "2025-01-31T12:00:00Z"
        );
        assert_eq!(instant("since", "yesterday").unwrap(), "yesterday");
    }
}
