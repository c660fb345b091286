//! Usage metering (issue 6): `GET /v1/usage` and `keyward usage` add up exactly what the
//! upstream reported, streaming or not, per model, session, user, agent and day, priced from
//! the built-in table; refused calls do not count; tenants see only their own usage.

use serde_json::{json, Value};

use crate::support::gateway::{call, chat_body, run_python, Gateway, Session};
use crate::support::proxy::{send, ProxyKw};
use crate::support::{assert_error, bin, new_tenant};

const PROGRAM: &str = r#"
import json, openai, anthropic
oa = openai.OpenAI(max_retries=0)
an = anthropic.Anthropic(max_retries=0)
messages = [{"role": "user", "content": "hi"}]
oa.chat.completions.create(model="gpt-4o-mini", messages=messages)
for _ in oa.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
    pass
an.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=messages)
with an.messages.stream(model="claude-sonnet-4-5", max_tokens=16, messages=messages) as s:
    s.get_final_message()
print(json.dumps({"ok": True}))
"#;

fn env(session: &Session) -> Vec<(&'static str, String)> {
    [
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_API_KEY",
    ]
    .into_iter()
    .map(|n| (n, session.env(n)))
    .collect()
}

async fn usage(gw: &Gateway, query: &str) -> anyhow::Result<Vec<Value>> {
    let (status, body) = gw.admin.get(&format!("/v1/usage{query}"), None).await?;
    anyhow::ensure!(status == 200, "GET /v1/usage{query}: {status} {body}");
    Ok(body["groups"].as_array().cloned().unwrap_or_default())
}

/// (requests, input, output) of a group.
fn totals(group: &Value) -> (u64, u64, u64) {
    let n = |f: &str| group[f].as_u64().unwrap_or(u64::MAX);
    (n("requests"), n("input_tokens"), n("output_tokens"))
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-12)
}

#[tokio::test]
async fn usage_totals_equal_what_the_upstream_reported() -> anyhow::Result<()> {
    let (gw, session) = Gateway::with_provider_session(&[]).await?;
    gw.openai.set_usage(13, 5);
    gw.anthropic.set_usage(17, 9);
    run_python(PROGRAM, &env(&session)).await?;
    // A second session with the same user, and a refused call that must not count.
    let other = gw
        .session(json!({"secrets": ["providers"], "user_id": "usr_gw"}))
        .await?;
    let auth = format!("Bearer {}", other.token);
    let url = gw.url("/openai/v1/chat/completions");
    let headers = [("authorization", auth.as_str())];
    let reply = call(reqwest::Method::POST, &url, &headers, Some(&chat_body())).await?;
    assert_eq!(reply.status, 200);
    let refused = gw.url("/h/not-a-rule.example/x");
    let reply = call(reqwest::Method::GET, &refused, &headers, None).await?;
    assert_eq!(reply.status, 403);
    gw.audit(&other.id, 2).await?;
    gw.audit(&session.id, 4).await?;

    let by_model = usage(&gw, "?group_by=model").await?;
    assert_eq!(by_model.len(), 2, "{by_model:?}");
    assert_eq!(by_model[0]["key"], "claude-sonnet-4-5");
    assert_eq!(totals(&by_model[0]), (2, 34, 18));
    assert!(
        close(&by_model[0]["cost_usd"], (34.0 * 3.0 + 18.0 * 15.0) / 1e6),
        "{by_model:?}"
    );
    assert_eq!(by_model[1]["key"], "gpt-4o-mini");
    assert_eq!(totals(&by_model[1]), (3, 39, 15));
    assert!(
        close(&by_model[1]["cost_usd"], (39.0 * 0.15 + 15.0 * 0.6) / 1e6),
        "{by_model:?}"
    );

    let by_session = usage(&gw, "?group_by=session").await?;
    let mine = by_session
        .iter()
        .find(|g| g["key"] == session.id.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(totals(&mine), (4, 60, 28), "{by_session:?}");
    let by_user = usage(&gw, "?group_by=user_id").await?;
    assert_eq!(by_user.len(), 1);
    assert_eq!(
        (by_user[0]["key"].clone(), totals(&by_user[0])),
        (json!("usr_gw"), (5, 73, 33))
    );
    let by_agent = usage(&gw, "?group_by=agent").await?;
    assert_eq!(
        (by_agent[0]["key"].clone(), totals(&by_agent[0])),
        (Value::Null, (5, 73, 33))
    );
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let by_day = usage(&gw, "?group_by=day").await?;
    assert_eq!(by_day[0]["key"], today.as_str());
    let total = usage(&gw, "").await?;
    assert_eq!(
        (total[0]["key"].clone(), totals(&total[0])),
        (json!("default"), (5, 73, 33))
    );
    assert_eq!(total[0]["cache_tokens"], 0);
    assert!(usage(&gw, "?since=2999-01-01").await?.is_empty());
    assert_eq!(usage(&gw, &format!("?until={today}")).await?.len(), 0);

    // Each record carries its own cost.
    for record in gw.audit(&session.id, 4).await? {
        assert!(
            record["cost_usd"].as_f64().is_some_and(|c| c > 0.0),
            "{record}"
        );
    }

    // The CLI prints the same totals.
    let out = tokio::process::Command::new(bin())
        .args([
            "--server",
            gw.kw.api_url(),
            "--token",
            &gw.kw.admin_token()?,
        ])
        .args(["usage", "--group-by", "model", "--json"])
        .output()
        .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(printed["groups"], json!(by_model));
    let table = tokio::process::Command::new(bin())
        .args([
            "--server",
            gw.kw.api_url(),
            "--token",
            &gw.kw.admin_token()?,
        ])
        .args(["usage", "--group-by", "model"])
        .output()
        .await?;
    let text = String::from_utf8_lossy(&table.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with("gpt-4o-mini"))
        .unwrap_or_default();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert!(
        text.starts_with("MODEL") && cells[..4] == ["gpt-4o-mini", "3", "39", "15"],
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn unknown_models_count_tokens_with_no_cost() -> anyhow::Result<()> {
    let (gw, session) = Gateway::with_provider_session(&[]).await?;
    let auth = format!("Bearer {}", session.token);
    let body = json!({"model": "mystery-model-9", "messages": [{"role": "user", "content": "hi"}]});
    let url = gw.url("/openai/v1/chat/completions");
    let reply = call(
        reqwest::Method::POST,
        &url,
        &[("authorization", &auth)],
        Some(&body),
    )
    .await?;
    assert_eq!(reply.status, 200);
    let record = gw.audit_nth(&session.id, 1).await?;
    assert_eq!(record["model"], "mystery-model-9");
    assert_eq!(
        (record["tokens_in"].clone(), record["tokens_out"].clone()),
        (json!(11), json!(7))
    );
    assert_eq!(record["cost_usd"], Value::Null, "{record}");
    let groups = usage(&gw, "?group_by=model").await?;
    assert_eq!(totals(&groups[0]), (1, 11, 7));
    assert_eq!(groups[0]["cost_usd"], Value::Null);
    Ok(())
}

#[tokio::test]
async fn usage_queries_are_checked_and_per_tenant() -> anyhow::Result<()> {
    let (gw, session) = Gateway::with_provider_session(&[]).await?;
    assert_eq!(
        crate::support::gateway::openai_chat(&gw, &session.token)
            .await?
            .status,
        200
    );
    gw.audit(&session.id, 1).await?;
    for bad in [
        "?group_by=planet",
        "?since=yesterday",
        "?until=2025-13-01",
        "?color=red",
    ] {
        let (status, body) = gw.admin.get(&format!("/v1/usage{bad}"), None).await?;
        assert_error(status, &body, 400, "invalid_request");
    }
    let (status, _) = gw.admin.with_token(None).get("/v1/usage", None).await?;
    assert_eq!(status, 401);
    let other = new_tenant(&gw.kw, &gw.admin, "other").await?;
    let (status, body) = other.get("/v1/usage?group_by=session", None).await?;
    assert_eq!((status.as_u16(), body["groups"].clone()), (200, json!([])));
    assert_eq!(usage(&gw, "").await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn proxy_mode_calls_are_metered_exactly_too() -> anyhow::Result<()> {
    let px = ProxyKw::start(&[]).await?;
    px.openai.set_usage(21, 4);
    let session = px.proxy_session(json!({})).await?;
    let client = px.through(&session.token)?;
    for stream in [false, true] {
        let body = json!({"model": "gpt-4o-mini", "stream": stream,
                          "messages": [{"role": "user", "content": "hi"}]});
        let reply = send(
            client
                .post("https://api.openai.com/v1/chat/completions")
                .json(&body),
        );
        assert_eq!(reply.await?.status, 200);
    }
    px.audited_n(&session.id, "forwarded", 2).await?;
    let groups = usage(&px, "?group_by=session").await?;
    assert_eq!(totals(&groups[0]), (2, 42, 8), "{groups:?}");
    Ok(())
}
