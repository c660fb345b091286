//! Limits (issue 6): `PUT|GET|DELETE /v1/limits/{tenant|agent|session}/{name}` read back what
//! they were sent and survive a restart; the data plane enforces requests per minute and
//! concurrency exactly, tokens per minute and budgets by reserving an estimate and settling the
//! real usage, before forwarding, with 429 + `Retry-After`, in gateway and proxy mode alike.

use std::time::Duration;

use keyward_testkit::Behavior;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::gateway::{
    assert_proxy_error, call, openai_chat, run_python, Gateway, Reply, Session,
};
use crate::support::proxy::{send, ProxyKw};
use crate::support::{assert_error, new_tenant, send_raw};

pub fn session_limits(session: &Session) -> String {
    format!("/v1/limits/session/{}", session.id)
}

async fn put_limits(gw: &Gateway, path: &str, body: Value) -> anyhow::Result<()> {
    let (status, answer) = gw.admin.put(path, Some(body.clone())).await?;
    anyhow::ensure!(status == 200, "PUT {path}: {status} {answer}");
    anyhow::ensure!(answer == body, "PUT {path} answered {answer}, sent {body}");
    Ok(())
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {:?}", reply.headers))
}

/// `POST /openai/v1/chat/completions` with `body`.
async fn chat(gw: &Gateway, token: &str, body: &Value) -> anyhow::Result<Reply> {
    let auth = format!("Bearer {token}");
    let url = gw.url("/openai/v1/chat/completions");
    call(Method::POST, &url, &[("authorization", &auth)], Some(body)).await
}

#[tokio::test]
async fn limits_are_read_back_validated_scoped_and_survive_a_restart() -> anyhow::Result<()> {
    let (mut gw, session) = Gateway::with_provider_session(&[]).await?;
    let path = session_limits(&session);
    let sent = json!({"requests_per_minute": 5, "tokens_per_minute": 10000,
        "concurrent_requests": 2, "budget_usd_per_day": 1.5, "budget_usd_per_month": 20});
    put_limits(&gw, &path, sent.clone()).await?;
    assert_eq!(gw.admin.get(&path, None).await?.1, sent);
    let tenant = json!({"requests_per_minute": 100000000, "tokens_per_minute": 100000000000u64});
    put_limits(&gw, "/v1/limits/tenant/me", tenant.clone()).await?;

    for bad in [
        json!({"requests_per_minute": -1}),
        json!({"requests_per_minute": 1.5}),
        json!({"requests_per_minute": "5"}),
        json!({"rpm": 5}),
        json!({"budget_usd_per_day": -0.5}),
        json!({"budget_usd_per_month": 5e6}),
        json!({"tokens_per_minute": 2_000_000_000_000u64}),
        json!([1]),
    ] {
        let (status, body) = gw.admin.put(&path, Some(bad.clone())).await?;
        assert_error(status, &body, 400, "invalid_request");
    }
    let token = gw.kw.admin_token()?;
    let raw = send_raw(&gw.admin, Some(&token), Method::PUT, &path, b"{nope").await?;
    assert_error(raw.status, &raw.json, 400, "invalid_json");
    assert_eq!(
        gw.admin.get(&path, None).await?.1,
        sent,
        "refused PUTs change nothing"
    );

    for (missing, code) in [
        ("/v1/limits/session/ses_doesnotexist", "session_not_found"),
        ("/v1/limits/agent/nobody", "agent_not_found"),
        ("/v1/limits/tenant/someone-else", "not_found"),
        ("/v1/limits/planet/x", "not_found"),
    ] {
        let (status, body) = gw.admin.get(missing, None).await?;
        assert_error(status, &body, 404, code);
        let (status, body) = gw.admin.put(missing, Some(json!({}))).await?;
        assert_error(status, &body, 404, code);
    }
    // Another tenant can neither read nor set this session's limits.
    let other = new_tenant(&gw.kw, &gw.admin, "other").await?;
    let (status, body) = other.get(&path, None).await?;
    assert_error(status, &body, 404, "session_not_found");
    assert_eq!(other.get("/v1/limits/tenant/me", None).await?.1, json!({}));
    let (status, _) = gw.admin.with_token(None).get(&path, None).await?;
    assert_eq!(status, 401);

    gw.kw.restart().await?;
    gw.admin = gw.kw.client(&gw.kw.admin_token()?);
    assert_eq!(gw.admin.get(&path, None).await?.1, sent);
    assert_eq!(gw.admin.get("/v1/limits/tenant/me", None).await?.1, tenant);
    let (status, body) = gw.admin.delete(&path, None).await?;
    assert_eq!((status.as_u16(), &body["status"]), (200, &json!("deleted")));
    assert_eq!(gw.admin.get(&path, None).await?.1, json!({}));
    Ok(())
}

const RPM_PROGRAM: &str = r#"
import json, openai
client = openai.OpenAI(max_retries=0)
messages = [{"role": "user", "content": "hi"}]
out = []
for i in range(5):
    try:
        if i % 2:
            for _ in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
                pass
        else:
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        out.append([200, None, None])
    except openai.RateLimitError as e:
        out.append([e.status_code, e.response.headers.get("retry-after"), e.code])
print(json.dumps(out))
"#;

#[tokio::test]
async fn requests_per_minute_admit_exactly_n_then_429_and_changes_apply_at_once(
) -> anyhow::Result<()> {
    let (gw, session) = Gateway::with_provider_session(&[]).await?;
    put_limits(
        &gw,
        &session_limits(&session),
        json!({"requests_per_minute": 3}),
    )
    .await?;
    let env = vec![
        ("OPENAI_BASE_URL", session.env("OPENAI_BASE_URL")),
        ("OPENAI_API_KEY", session.env("OPENAI_API_KEY")),
    ];
    let out = run_python(RPM_PROGRAM, &env).await?;
    let calls = out.as_array().cloned().unwrap_or_default();
    assert_eq!(calls.len(), 5, "{out}");
    for (i, c) in calls.iter().enumerate() {
        if i < 3 {
            assert_eq!(c[0], 200, "call {i}: {out}");
        } else {
            assert_eq!(c[0], 429, "call {i}: {out}");
            assert_eq!(c[2], "rate_limited", "{out}");
            let secs: u64 = c[1].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
            assert!((1..=60).contains(&secs), "Retry-After {secs}: {out}");
        }
    }
    assert_eq!(
        gw.openai.request_count(),
        3,
        "refused calls never reach the upstream"
    );
    let records = gw.audit(&session.id, 5).await?;
    let blocked: Vec<_> = records.iter().map(|r| r["decision"].clone()).collect();
    assert_eq!(
        blocked,
        [
            "forwarded",
            "forwarded",
            "forwarded",
            "blocked:rate_limited",
            "blocked:rate_limited"
        ],
        "{records:?}"
    );
    assert_eq!(records[4]["status"], 429);

    // A change applies to the very next call, both ways.
    let (status, _) = gw.admin.delete(&session_limits(&session), None).await?;
    assert_eq!(status, 200);
    assert_eq!(openai_chat(&gw, &session.token).await?.status, 200);
    put_limits(
        &gw,
        "/v1/limits/tenant/me",
        json!({"concurrent_requests": 0}),
    )
    .await?;
    let refused = openai_chat(&gw, &session.token).await?;
    assert_proxy_error(&refused, 429, "rate_limited");
    assert_eq!(retry_after(&refused), 1);
    Ok(())
}

#[tokio::test]
async fn a_concurrency_limit_of_2_holds_under_20_parallel_calls() -> anyhow::Result<()> {
    let (gw, session) = Gateway::with_provider_session(&[]).await?;
    put_limits(
        &gw,
        &session_limits(&session),
        json!({"concurrent_requests": 2}),
    )
    .await?;
    gw.openai.set_behavior(Behavior::Delay {
        first_byte: Duration::from_millis(1500),
    });
    let calls = (0..20).map(|_| openai_chat(&gw, &session.token));
    let replies = futures_util::future::join_all(calls).await;
    let mut ok = 0;
    for reply in replies {
        let reply = reply?;
        if reply.status == 200 {
            ok += 1;
        } else {
            assert_proxy_error(&reply, 429, "rate_limited");
            assert_eq!(retry_after(&reply), 1);
        }
    }
    assert_eq!(ok, 2, "exactly two calls in flight at once");
    assert_eq!(gw.openai.request_count(), 2);
    // The slots come back when the calls end.
    let again = futures_util::future::join_all((0..2).map(|_| openai_chat(&gw, &session.token)));
    assert!(again
        .await
        .iter()
        .all(|r| r.as_ref().is_ok_and(|r| r.status == 200)));
    Ok(())
}

#[tokio::test]
async fn tokens_per_minute_reserve_the_estimate_and_settle_the_usage() -> anyhow::Result<()> {
    let (gw, session) = Gateway::with_provider_session(&[]).await?;
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    // keyward's estimate: body bytes / 4 (the mock reports 11 + 7 = 18 tokens used).
    let estimate = (body.to_string().len() as u64).div_ceil(4);
    let tpm = 70;
    let mut used = 0;
    let mut expected = 0;
    while used < tpm && used + estimate <= tpm {
        used += 18;
        expected += 1;
    }
    put_limits(
        &gw,
        &session_limits(&session),
        json!({"tokens_per_minute": tpm}),
    )
    .await?;
    for _ in 0..expected {
        assert_eq!(chat(&gw, &session.token, &body).await?.status, 200);
    }
    let refused = chat(&gw, &session.token, &body).await?;
    assert_proxy_error(&refused, 429, "rate_limited");
    assert!((1..=60).contains(&retry_after(&refused)));
    assert!(
        refused.text().contains("tokens_per_minute"),
        "{}",
        refused.text()
    );
    assert_eq!(gw.openai.request_count(), expected);
    Ok(())
}

#[tokio::test]
async fn a_budget_stops_the_call_that_would_exceed_it_even_after_a_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let prices = dir.path().join("prices.json");
    // One dollar per output token; the mock reports 7 → 7 USD a call.
    std::fs::write(
        &prices,
        r#"{"gpt-4o-mini": {"input": 0, "output": 1000000}}"#,
    )?;
    let prices = prices.to_string_lossy().into_owned();
    let (mut gw, session) = Gateway::with_provider_session(&["--prices", &prices]).await?;
    put_limits(
        &gw,
        &session_limits(&session),
        json!({"budget_usd_per_day": 10}),
    )
    .await?;
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 7,
                      "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(chat(&gw, &session.token, &body).await?.status, 200);
    for _ in 0..2 {
        let refused = chat(&gw, &session.token, &body).await?;
        assert_proxy_error(&refused, 429, "budget_exceeded");
        assert!((1..=86_400).contains(&retry_after(&refused)));
    }
    assert_eq!(gw.openai.request_count(), 1);
    let records = gw.audit(&session.id, 3).await?;
    assert_eq!(records[0]["cost_usd"], 7.0, "{records:?}");
    assert_eq!(records[2]["decision"], "blocked:budget_exceeded");

    // The spend so far survives a restart (read back from the audit log).
    gw.kw.restart().await?;
    gw.admin = gw.kw.client(&gw.kw.admin_token()?);
    let refused = chat(&gw, &session.token, &body).await?;
    assert_proxy_error(&refused, 429, "budget_exceeded");
    // A monthly budget on the whole tenant counts the same spend: 7 + 7 ≤ 15, then no more.
    let (status, _) = gw.admin.delete(&session_limits(&session), None).await?;
    assert_eq!(status, 200);
    put_limits(
        &gw,
        "/v1/limits/tenant/me",
        json!({"budget_usd_per_month": 15}),
    )
    .await?;
    assert_eq!(chat(&gw, &session.token, &body).await?.status, 200);
    let refused = chat(&gw, &session.token, &body).await?;
    assert_proxy_error(&refused, 429, "budget_exceeded");
    assert_eq!(gw.openai.request_count(), 2);
    Ok(())
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_is_charged_what_was_streamed() -> anyhow::Result<()> {
    let (gw, session) = Gateway::with_provider_session(&[]).await?;
    put_limits(
        &gw,
        &session_limits(&session),
        json!({"tokens_per_minute": 100000}),
    )
    .await?;
    gw.anthropic.set_behavior(Behavior::StallAfterFirstChunk {
        stall: Duration::from_secs(3),
    });
    let mut resp = crate::support::gateway::http()
        .post(gw.url("/anthropic/v1/messages"))
        .header("x-api-key", &session.token)
        .header("anthropic-version", "2023-06-01")
        .json(
            &json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await?.unwrap_or_default();
    assert!(String::from_utf8_lossy(&first).contains("message_start"));
    drop(resp);
    // The mock's first event: message_start with 11 input and 1 output token.
    let record = gw.audit_nth(&session.id, 1).await?;
    assert_eq!(record["error"], "client_disconnected", "{record}");
    assert_eq!(record["tokens_in"], 11, "{record}");
    assert_eq!(record["tokens_out"], 1, "{record}");
    let cost = record["cost_usd"].as_f64().unwrap_or_default();
    let expected = (11.0 * 3.0 + 15.0) / 1e6;
    assert!(cost > 0.0 && (cost - expected).abs() < 1e-12, "{record}");
    let (_, usage) = gw.admin.get("/v1/usage?group_by=session", None).await?;
    let group = &usage["groups"][0];
    assert_eq!(
        (
            group["input_tokens"].as_u64(),
            group["output_tokens"].as_u64()
        ),
        (Some(11), Some(1))
    );
    assert!((group["cost_usd"].as_f64().unwrap_or_default() - expected).abs() < 1e-12);
    Ok(())
}

#[tokio::test]
async fn proxy_mode_calls_count_against_the_same_limits() -> anyhow::Result<()> {
    let px = ProxyKw::start(&[]).await?;
    let session = px.proxy_session(json!({})).await?;
    put_limits(
        &px,
        &session_limits(&session),
        json!({"requests_per_minute": 2}),
    )
    .await?;
    let client = px.through(&session.token)?;
    let chat = || {
        client
            .post("https://api.openai.com/v1/chat/completions")
            .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
    };
    assert_eq!(send(chat()).await?.status, 200);
    assert_eq!(send(chat()).await?.status, 200);
    let refused = send(chat()).await?;
    assert_proxy_error(&refused, 429, "rate_limited");
    assert_eq!(px.openai.request_count(), 2);
    let records = px.audited_n(&session.id, "blocked:rate_limited", 1).await?;
    assert!(records
        .iter()
        .any(|r| r["mode"] == "proxy" && r["tokens_in"] == 11));
    Ok(())
}
