//! The audit log through the real server and CLI. Records are written by an `AuditWriter`
//! straight into the running server's database (the data plane's end-to-end test, with real
//! proxied traffic, comes with the data plane); they are then read through `GET /v1/audit` and
//! `keyward audit …`, and their chain is verified on the server and on the client, intact and
//! after tampering with a row, a line, or a deleted record.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{Duration, Utc};
use keyward_audit::{AuditMode, AuditRecord, AuditWriter, AuditWriterConfig, GENESIS_HASH};
use keyward_store::sqlite::SqliteStore;
use keyward_testkit::{ApiClient, KeywardProcess};
use serde_json::Value;

use crate::support;

fn record(tenant: &str, i: i64) -> AuditRecord {
    let mut r = AuditRecord::new(
        tenant,
        AuditMode::Gateway,
        "POST",
        "api.openai.com",
        keyward_audit::mask_query("/v1/chat/completions?api_key=sk-NOT-A-REAL-KEY"),
    );
    r.ts = Utc::now() - Duration::seconds(100 - i);
    r.agent = Some("coder".into());
    r.session = Some(format!("ses_{}", i % 2));
    r.status = Some(200);
    r.bytes_in = 10 * i as u64;
    r.credential = Some("OPENAI_API_KEY".into());
    r.credential_version = Some(1);
    r.model = Some("gpt-4o-mini".into());
    r.tokens_in = Some(12);
    r.tokens_out = Some(34);
    r.cost_usd = Some(0.000_021_3 * i as f64);
    r
}

/// Writes `n` records per tenant into the server's database, as the data plane would.
async fn write_records(kw: &KeywardProcess, tenants: &[(&str, i64)]) -> anyhow::Result<()> {
    let store = Arc::new(SqliteStore::open(&kw.data_dir().join("keyward.db")).await?);
    let writer = AuditWriter::start(store, AuditWriterConfig::default());
    for (tenant, n) in tenants {
        for i in 1..=*n {
            writer.reserve()?.write(record(tenant, i));
        }
    }
    writer.flush_and_stop().await;
    Ok(())
}

async fn records(client: &ApiClient, query: &str) -> anyhow::Result<Vec<Value>> {
    let (status, body) = client.get(&format!("/v1/audit{query}"), None).await?;
    anyhow::ensure!(status == 200, "GET /v1/audit{query}: {status} {body}");
    Ok(body["records"].as_array().context("records")?.clone())
}

fn seqs(records: &[Value]) -> Vec<i64> {
    records.iter().filter_map(|r| r["seq"].as_i64()).collect()
}

struct Run {
    code: i32,
    stdout: String,
}

/// `keyward --data-dir DIR --token TOKEN ARGS` with a cleared environment.
fn cli(dir: &Path, token: &str, args: &[&str]) -> anyhow::Result<Run> {
    let mut cmd = Command::new(support::bin());
    cmd.arg("--data-dir")
        .arg(dir)
        .args(["--token", token])
        .args(args)
        .env_clear()
        .stdin(Stdio::null());
    for key in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    let out = cmd.output()?;
    Ok(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

#[tokio::test]
async fn records_are_listed_filtered_and_isolated_per_tenant() -> anyhow::Result<()> {
    let (kw, admin) = support::start_server().await?;
    let acme = support::new_tenant(&kw, &admin, "acme").await?;
    write_records(&kw, &[("acme", 7), ("default", 2)]).await?;

    let all = records(&acme, "").await?;
    assert_eq!(seqs(&all), [1, 2, 3, 4, 5, 6, 7]);
    let first = &all[0];
    assert_eq!(first["prev_hash"], GENESIS_HASH);
    assert_eq!(all[1]["prev_hash"], first["hash"]);
    for field in [
        "ts",
        "tenant",
        "agent",
        "session",
        "user_id",
        "method",
        "host",
        "path",
        "request_headers",
        "status",
        "bytes_in",
        "bytes_out",
        "duration_ms",
        "ttfb_ms",
        "credential",
        "credential_version",
        "model",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "decision",
        "error",
        "mode",
        "seq",
        "prev_hash",
        "hash",
    ] {
        assert!(first.get(field).is_some(), "no {field} in {first}");
    }
    assert!(all.iter().all(|r| r["tenant"] == "acme"));
    assert!(support::is_utc_rfc3339(first["ts"].as_str().unwrap_or("")));
    assert_eq!(first["path"], "/v1/chat/completions?api_key=***");
    assert_eq!(first["credential"], "OPENAI_API_KEY");

    assert_eq!(seqs(&records(&acme, "?session=ses_1").await?), [1, 3, 5, 7]);
    assert_eq!(seqs(&records(&acme, "?agent=coder&limit=2").await?), [1, 2]);
    assert_eq!(seqs(&records(&acme, "?after=5").await?), [6, 7]);
    assert_eq!(seqs(&records(&acme, "?order=desc&limit=2").await?), [7, 6]);
    let future = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let since = format!("?since={}", future.replace('+', "%2B"));
    assert!(records(&acme, &since).await?.is_empty());
    assert!(records(&acme, "?agent=nobody").await?.is_empty());

    // The operator's token belongs to the `default` tenant: it sees that tenant's records only.
    assert_eq!(seqs(&records(&admin, "").await?), [1, 2]);
    assert!(records(&admin, "")
        .await?
        .iter()
        .all(|r| r["tenant"] == "default"));

    for bad in [
        "?limit=0",
        "?limit=1001",
        "?limit=x",
        "?after=x",
        "?since=yesterday",
        "?order=sideways",
        "?sesion=ses_1",
    ] {
        let (status, body) = acme.get(&format!("/v1/audit{bad}"), None).await?;
        support::assert_error(status, &body, 400, "invalid_request");
    }
    let (status, body) = kw.anon_client().get("/v1/audit", None).await?;
    support::assert_error(status, &body, 401, "unauthorized");
    Ok(())
}

#[tokio::test]
async fn the_chain_is_verified_on_the_server_and_by_the_cli() -> anyhow::Result<()> {
    let (kw, admin) = support::start_server().await?;
    let token = support::new_tenant_token(&admin, "acme").await?;
    let acme = kw.client(&token);
    write_records(&kw, &[("acme", 6), ("default", 3)]).await?;
    let dir = kw.data_dir().to_owned();

    let (status, body) = acme.get("/v1/audit/verify", None).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"ok": true, "checked": 6, "first_bad": null})
    );

    // Export, and verify the file on the client: intact, then with one line edited.
    let work = tempfile::tempdir()?;
    let file = work.path().join("audit.jsonl");
    let file_arg = file.to_str().context("utf-8 path")?;
    let run = cli(&dir, &token, &["audit", "export", "--output", file_arg])?;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let text = std::fs::read_to_string(&file)?;
    assert_eq!(text.lines().count(), 6);
    let run = cli(&dir, &token, &["audit", "verify", "--file", file_arg])?;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.contains("chain intact, 6 records"),
        "{}",
        run.stdout
    );

    let edited: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 2 {
                line.replace("\"status\":200", "\"status\":201")
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert_ne!(edited.join("\n"), text.trim_end());
    std::fs::write(&file, edited.join("\n") + "\n")?;
    let run = cli(&dir, &token, &["audit", "verify", "--file", file_arg])?;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("at seq 3 (changed)"), "{}", run.stdout);

    let removed: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("{\"seq\":5,"))
        .collect();
    std::fs::write(&file, removed.join("\n") + "\n")?;
    let run = cli(
        &dir,
        &token,
        &["audit", "verify", "--file", file_arg, "--json"],
    )?;
    assert_eq!(run.code, 1, "{}", run.stdout);
    let report: Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(report["ok"], false);
    assert_eq!(
        report["tenants"][0]["first_bad"],
        serde_json::json!({"seq": 5, "reason": "removed"})
    );

    // The server's records, fetched and verified by the CLI; then read back by tail and query.
    let run = cli(&dir, &token, &["audit", "verify"])?;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let run = cli(&dir, &token, &["audit", "tail", "-n", "2", "--json"])?;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let tail: Vec<Value> = run
        .stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(seqs(&tail), [5, 6]);
    let run = cli(
        &dir,
        &token,
        &["audit", "query", "--session", "ses_0", "--json"],
    )?;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let found: Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(
        seqs(found["records"].as_array().context("records")?),
        [2, 4, 6]
    );
    let run = cli(&dir, &token, &["audit", "query", "--since", "yesterday"])?;
    assert_eq!(run.code, 1, "{}", run.stdout);

    // Tamper with the database itself: an edited row, and (in another tenant) a deleted one.
    let db = support::open_db(&dir).await?;
    sqlx::query(
        "UPDATE audit SET record_json = replace(record_json, '\"status\":200', '\"status\":500') \
         WHERE tenant = 'acme' AND seq = 4",
    )
    .execute(&db)
    .await?;
    sqlx::query("DELETE FROM audit WHERE tenant = 'default' AND seq = 2")
        .execute(&db)
        .await?;
    db.close().await;

    let (_, body) = acme.get("/v1/audit/verify", None).await?;
    assert_eq!(
        body,
        serde_json::json!({"ok": false, "checked": 3, "first_bad": {"seq": 4, "reason": "changed"}})
    );
    let (_, body) = admin.get("/v1/audit/verify", None).await?;
    assert_eq!(
        body["first_bad"],
        serde_json::json!({"seq": 2, "reason": "removed"})
    );
    let run = cli(&dir, &token, &["audit", "verify"])?;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("at seq 4 (changed)"), "{}", run.stdout);
    Ok(())
}

type Lines = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>;

/// The `seq` of the next JSON line `keyward audit tail --json` prints.
async fn next_seq(lines: &mut Lines) -> anyhow::Result<Option<i64>> {
    let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .context("no record printed in time")??
        .context("tail ended")?;
    let record: Value = serde_json::from_str(&line)?;
    Ok(record["seq"].as_i64())
}

#[tokio::test]
async fn tail_follow_prints_records_as_they_are_written() -> anyhow::Result<()> {
    use tokio::io::AsyncBufReadExt as _;

    let (kw, admin) = support::start_server().await?;
    let token = support::new_tenant_token(&admin, "acme").await?;
    write_records(&kw, &[("acme", 2)]).await?;
    let mut child = tokio::process::Command::new(support::bin())
        .arg("--data-dir")
        .arg(kw.data_dir())
        .args([
            "--token", &token, "audit", "tail", "--follow", "--json", "-n", "1",
        ])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    assert_eq!(next_seq(&mut lines).await?, Some(2));
    // Two more records (seq 3 and 4) arrive while it follows.
    let store = Arc::new(SqliteStore::open(&kw.data_dir().join("keyward.db")).await?);
    let writer = AuditWriter::start(store, AuditWriterConfig::default());
    writer.reserve()?.write(record("acme", 3));
    writer.reserve()?.write(record("acme", 4));
    writer.flush_and_stop().await;
    assert_eq!(next_seq(&mut lines).await?, Some(3));
    assert_eq!(next_seq(&mut lines).await?, Some(4));
    child.kill().await?;
    Ok(())
}
