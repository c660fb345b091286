//! What flows back and what stays behind: echoed keys are redacted on the way to the agent,
//! the audit chain of real proxied calls detects an edited record, and after a scenario full
//! of echoes and errors the canary keys are nowhere — logs, responses, audit, data dir; calls
//! are counted in `/metrics`, and both listeners answer health checks.

use std::process::Stdio;

use anyhow::Context as _;
use keyward_testkit::mock_upstream::echo_variants;
use keyward_testkit::{assert_absent_in_dir, Behavior, CANARY_ANTHROPIC, CANARY_OPENAI};
use reqwest::Method;
use serde_json::json;

use crate::support::gateway::{
    assert_no_secret, call, chat_body, messages_body, openai_chat, Gateway, Reply, Session,
};
use crate::support::{bin, open_db};

const REDACTED: &str = "[REDACTED]";

async fn anthropic_stream(gw: &Gateway, session: &Session) -> anyhow::Result<Reply> {
    let mut body = messages_body();
    body["stream"] = json!(true);
    call(
        Method::POST,
        &gw.url("/anthropic/v1/messages"),
        &[("x-api-key", &session.token)],
        Some(&body),
    )
    .await
}

#[tokio::test]
async fn echoed_keys_are_redacted_in_bodies_headers_and_split_streams() -> anyhow::Result<()> {
    let (gw, session) = Gateway::with_provider_session(&[]).await?;
    gw.openai.set_behavior(Behavior::EchoAuth);
    gw.anthropic.set_behavior(Behavior::EchoAuth);

    let reply = openai_chat(&gw, &session.token).await?;
    assert_eq!(reply.status, 401, "the upstream's status passes through");
    // The mock did receive (and echo) the real key: redaction is what hides it.
    let req = gw.openai.last_request().context("forwarded")?;
    assert_eq!(req.presented_key().as_deref(), Some(CANARY_OPENAI));
    assert_no_secret(&reply.everything(), CANARY_OPENAI, "the echoing 401");
    assert!(reply.text().contains(REDACTED), "{}", reply.text());
    let echo = reply.headers.get("x-echo").context("x-echo header")?;
    assert!(echo.to_str()?.contains(REDACTED), "{echo:?}");
    // Every encoding the mock wrote is gone (each `key_<variant>` field was scrubbed).
    let body = reply.json();
    for (variant, _) in echo_variants(CANARY_OPENAI) {
        let field = body["error"][format!("key_{variant}")]
            .as_str()
            .unwrap_or_default();
        assert!(field.contains(REDACTED), "key_{variant}: {field:?}");
    }

    let reply = call(
        Method::POST,
        &gw.url("/anthropic/v1/messages"),
        &[("x-api-key", &session.token)],
        Some(&messages_body()),
    )
    .await?;
    assert_eq!(reply.status, 401);
    assert_no_secret(&reply.everything(), CANARY_ANTHROPIC, "the Anthropic echo");
    assert!(reply.text().contains(REDACTED));

    // The key split across two stream chunks is still caught.
    gw.openai.set_behavior(Behavior::EchoAuthStreamSplit);
    gw.anthropic.set_behavior(Behavior::EchoAuthStreamSplit);
    let mut stream = chat_body();
    stream["stream"] = json!(true);
    let auth = format!("Bearer {}", session.token);
    let reply = call(
        Method::POST,
        &gw.url("/openai/v1/chat/completions"),
        &[("authorization", &auth)],
        Some(&stream),
    )
    .await?;
    assert_eq!(reply.status, 200);
    assert_no_secret(
        &reply.everything(),
        CANARY_OPENAI,
        "the split OpenAI stream",
    );
    assert!(reply.text().contains(REDACTED), "{}", reply.text());
    assert!(
        reply.text().contains("[DONE]"),
        "the stream is whole: {}",
        reply.text()
    );
    let reply = anthropic_stream(&gw, &session).await?;
    assert_no_secret(
        &reply.everything(),
        CANARY_ANTHROPIC,
        "the split Anthropic stream",
    );
    assert!(reply.text().contains(REDACTED), "{}", reply.text());
    assert!(reply.text().contains("message_stop"), "{}", reply.text());
    Ok(())
}

/// `keyward --data-dir DIR --token T audit verify` → (exit code, stdout + stderr).
async fn cli_verify(dir: &std::path::Path, token: &str) -> anyhow::Result<(i32, String)> {
    let out = tokio::process::Command::new(bin())
        .arg("--data-dir")
        .arg(dir)
        .args(["--token", token, "audit", "verify"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .await?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code().unwrap_or(-1), text))
}

#[tokio::test]
async fn the_audit_chain_of_proxied_calls_detects_an_edited_record() -> anyhow::Result<()> {
    let (mut gw, session) = Gateway::with_provider_session(&[]).await?;
    for _ in 0..3 {
        assert_eq!(openai_chat(&gw, &session.token).await?.status, 200);
    }
    let records = gw.audit(&session.id, 3).await?;
    assert_eq!(records[1]["prev_hash"], records[0]["hash"]);
    let (status, body) = gw.admin.get("/v1/audit/verify", None).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"ok": true, "checked": 3, "first_bad": null}));
    let token = gw.kw.admin_token()?;
    let dir = gw.kw.data_dir().to_owned();
    let (code, out) = cli_verify(&dir, &token).await?;
    assert_eq!(code, 0, "{out}");

    gw.kw.terminate().await?;
    let target = records[1]["seq"].as_i64().context("seq")?;
    let db = open_db(&dir).await?;
    let changed = sqlx::query(
        "UPDATE audit SET record_json = replace(record_json, '\"status\":200', '\"status\":201') \
         WHERE tenant = 'default' AND seq = ?",
    )
    .bind(target)
    .execute(&db)
    .await?
    .rows_affected();
    db.close().await;
    assert_eq!(changed, 1);

    gw.kw.restart().await?;
    let admin = gw.kw.client(&token);
    let (status, body) = admin.get("/v1/audit/verify", None).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"ok": false, "checked": target - 1, "first_bad": {"seq": target, "reason": "changed"}})
    );
    let (code, out) = cli_verify(&dir, &token).await?;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("seq {target}")), "{out}");
    Ok(())
}

#[tokio::test]
async fn the_canary_keys_appear_nowhere_after_echoes_and_errors() -> anyhow::Result<()> {
    let (mut gw, session) = Gateway::with_provider_session(&[]).await?;
    let mut seen: Vec<String> = Vec::new();
    let bearer = format!("Bearer {}", session.token);
    let chat_url = gw.url("/openai/v1/chat/completions");

    seen.push(openai_chat(&gw, &session.token).await?.everything());
    gw.openai.set_behavior(Behavior::EchoAuth);
    seen.push(openai_chat(&gw, &session.token).await?.everything());
    gw.anthropic.set_behavior(Behavior::EchoAuthStreamSplit);
    seen.push(anthropic_stream(&gw, &session).await?.everything());
    gw.openai.set_behavior(Behavior::Status(500));
    seen.push(openai_chat(&gw, &session.token).await?.everything());
    // The session token in the query string (masked in the audit), and an ordinary header.
    gw.openai.set_behavior(Behavior::Normal);
    let with_query = format!("{chat_url}?api_key={}", session.token);
    seen.push(
        call(
            Method::POST,
            &with_query,
            &[("authorization", &bearer), ("x-trace", "t-1")],
            Some(&chat_body()),
        )
        .await?
        .everything(),
    );
    for (method, url, headers) in [
        (Method::POST, chat_url.clone(), vec![]),
        (
            Method::POST,
            chat_url.clone(),
            vec![("authorization", "Bearer kw_s_bogus")],
        ),
        (
            Method::GET,
            gw.url("/h/evil.example.net/x"),
            vec![("authorization", bearer.as_str())],
        ),
        (
            Method::GET,
            gw.url("/unknown/route"),
            vec![("authorization", bearer.as_str())],
        ),
    ] {
        seen.push(
            call(method, &url, &headers, Some(&chat_body()))
                .await?
                .everything(),
        );
    }
    let records = gw.audit(&session.id, 6).await?;
    let audit_text = serde_json::to_string(&records)?;
    let (_, verify) = gw.admin.get("/v1/audit/verify", None).await?;
    seen.push(verify.to_string());
    let (_, bundles) = gw
        .admin
        .get("/v1/tenants/me/secrets/providers", None)
        .await?;
    seen.push(bundles.to_string());

    for text in &seen {
        assert_no_secret(text, CANARY_OPENAI, "a response");
        assert_no_secret(text, CANARY_ANTHROPIC, "a response");
    }
    assert_no_secret(&audit_text, CANARY_OPENAI, "the audit log");
    assert_no_secret(&audit_text, CANARY_ANTHROPIC, "the audit log");
    assert!(
        !audit_text.contains(&session.token),
        "session token in the audit log"
    );
    for record in &records {
        let headers = record["request_headers"].as_object().context("headers")?;
        for name in ["authorization", "x-api-key", "api-key", "x-goog-api-key"] {
            assert!(!headers.contains_key(name), "{name} in {record}");
        }
    }
    assert!(
        records
            .iter()
            .any(|r| r["request_headers"]["x-trace"] == "t-1"),
        "ordinary headers are kept: {audit_text}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["path"] == "/openai/v1/chat/completions?api_key=***"),
        "the token in the query is masked: {audit_text}"
    );

    gw.kw.terminate().await?;
    let logs = gw.kw.logs();
    assert!(!logs.is_empty(), "the server logged nothing at all");
    for secret in [CANARY_OPENAI, CANARY_ANTHROPIC] {
        assert_no_secret(&logs, secret, "the server logs");
        for (_, encoded) in echo_variants(secret) {
            assert_absent_in_dir(gw.kw.data_dir(), &encoded);
        }
    }
    assert!(!logs.contains(&session.token), "session token in the logs");
    assert_absent_in_dir(gw.kw.data_dir(), &session.token);
    Ok(())
}

#[tokio::test]
async fn metrics_count_calls_and_both_listeners_answer_health() -> anyhow::Result<()> {
    let (gw, session) = Gateway::with_provider_session(&[]).await?;
    assert_eq!(openai_chat(&gw, &session.token).await?.status, 200);
    let reply = call(
        Method::GET,
        &gw.url("/h/nowhere.example.net/x"),
        &[("x-api-key", &session.token)],
        None,
    )
    .await?;
    assert_eq!(reply.status, 403);
    let _ = gw.audit(&session.id, 2).await?;

    let reply = call(
        Method::GET,
        &format!("{}/metrics", gw.kw.api_url()),
        &[],
        None,
    )
    .await?;
    assert_eq!(reply.status, 200);
    let text = reply.text();
    let line = |route: &str, status: &str, decision: &str| {
        text.lines().any(|l| {
            l.starts_with("keyward_proxy_requests_total{")
                && l.contains(&format!("route=\"{route}\""))
                && l.contains(&format!("status=\"{status}\""))
                && l.contains(&format!("decision=\"{decision}\""))
                && l.trim_end().ends_with(" 1")
        })
    };
    assert!(line("openai", "200", "forwarded"), "{text}");
    assert!(line("h", "403", "blocked"), "{text}");
    assert!(!text.contains(CANARY_OPENAI) && !text.contains(&session.token));

    for base in [gw.kw.api_url(), gw.kw.proxy_url()] {
        for path in ["/healthz", "/readyz"] {
            let reply = call(Method::GET, &format!("{base}{path}"), &[], None).await?;
            assert_eq!(reply.status, 200, "{base}{path}: {}", reply.text());
        }
    }
    Ok(())
}
