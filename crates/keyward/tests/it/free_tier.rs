//! The keyless free tier (issue 6, seed 004): `keyward serve --free-tier FILE`. A session with
//! no key of its own for the provider uses the operator's shared key, for the allowed models
//! only and within the per-tenant requests-per-minute limit, audited as `free_tier`; a session
//! with its own key never touches it; the shared key never reaches an agent.

use keyward_testkit::{Behavior, CANARY_OPENAI};
use serde_json::{json, Value};

use crate::support::gateway::{
    assert_no_secret, assert_proxy_error, call, run_python, Gateway, Reply, Session,
};
use crate::support::new_tenant_token;

const FREE_KEY: &str = "sk-proj-freetier0123456789abcdefghijklmnopqrstuv";

const PROGRAM: &str = r#"
import json, openai
client = openai.OpenAI(max_retries=0)
messages = [{"role": "user", "content": "hi"}]
plain = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
text = "".join(c.choices[0].delta.content or "" for c in
               client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
               if c.choices)
try:
    client.chat.completions.create(model="gpt-4o", messages=messages)
    denied = None
except openai.PermissionDeniedError as e:
    denied = [e.status_code, e.code]
print(json.dumps({"text": plain.choices[0].message.content, "stream": text, "denied": denied}))
"#;

/// A keyward with an OpenAI free tier (key from a file with a trailing newline, 3 calls a
/// minute per tenant, gpt-4o-mini only).
async fn start() -> anyhow::Result<(Gateway, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("free.key");
    std::fs::write(&key, format!("{FREE_KEY}\n"))?;
    let config = dir.path().join("free-tier.yaml");
    std::fs::write(
        &config,
        format!(
            "provider: openai\nkey:\n  file: {}\nallowed_models: [gpt-4o-mini]\nrequests_per_minute: 3\n",
            key.display()
        ),
    )?;
    let config = config.to_string_lossy().into_owned();
    let gw = Gateway::start(&["--free-tier", &config]).await?;
    Ok((gw, dir))
}

async fn chat(gw: &Gateway, token: &str, model: &str) -> anyhow::Result<Reply> {
    let auth = format!("Bearer {token}");
    let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let url = gw.url("/openai/v1/chat/completions");
    call(
        reqwest::Method::POST,
        &url,
        &[("authorization", &auth)],
        Some(&body),
    )
    .await
}

/// Exactly what the session's own env hands the SDK: keyless sessions get the free tier's
/// provider variables too.
fn keyless_env(gw: &Gateway, session: &Session) -> Vec<(&'static str, String)> {
    assert_eq!(session.env("OPENAI_BASE_URL"), gw.url("/openai/v1"));
    assert_eq!(session.env("OPENAI_API_KEY"), session.token);
    vec![
        ("OPENAI_BASE_URL", session.env("OPENAI_BASE_URL")),
        ("OPENAI_API_KEY", session.env("OPENAI_API_KEY")),
    ]
}

#[tokio::test]
async fn a_session_without_a_key_uses_the_free_tier_for_allowed_models_only() -> anyhow::Result<()>
{
    let (gw, _dir) = start().await?;
    gw.openai.set_expected_key(Some(FREE_KEY));
    let keyless = gw.session(json!({})).await?;
    let out = run_python(PROGRAM, &keyless_env(&gw, &keyless)).await?;
    assert_eq!(out["text"], "Hello from mock", "{out}");
    assert_eq!(out["stream"], "Hello from mock", "{out}");
    assert_eq!(out["denied"], json!([403, "model_not_allowed"]), "{out}");
    let requests = gw.openai.requests();
    assert_eq!(
        requests.len(),
        2,
        "the refused model never reached the upstream"
    );
    assert!(requests
        .iter()
        .all(|r| r.presented_key().as_deref() == Some(FREE_KEY)));

    let records = gw.audit(&keyless.id, 3).await?;
    for record in &records[..2] {
        assert_eq!(record["decision"], "free_tier", "{record}");
        assert_eq!(record["credential"], "free_tier", "{record}");
        assert_eq!(record["tokens_in"], 11, "{record}");
        assert!(
            record["cost_usd"].as_f64().is_some_and(|c| c > 0.0),
            "{record}"
        );
    }
    assert_eq!(records[2]["decision"], "blocked:model_not_allowed");
    // The usage API counts free-tier calls.
    let (_, usage) = gw.admin.get("/v1/usage", None).await?;
    assert_eq!(usage["groups"][0]["requests"], 2, "{usage}");

    // Anthropic has no free tier here: still 401 no_credential.
    let auth = keyless.token.clone();
    let url = gw.url("/anthropic/v1/messages");
    let body = json!({"model": "claude-haiku-4-5", "max_tokens": 8, "messages": []});
    let reply = call(
        reqwest::Method::POST,
        &url,
        &[("x-api-key", &auth)],
        Some(&body),
    )
    .await?;
    assert_proxy_error(&reply, 401, "no_credential");
    Ok(())
}

#[tokio::test]
async fn the_free_tier_limit_is_per_tenant_and_own_keys_bypass_it() -> anyhow::Result<()> {
    let (gw, _dir) = start().await?;
    let first = gw.session(json!({})).await?;
    let second = gw.session(json!({})).await?;
    for token in [&first.token, &second.token, &first.token] {
        assert_eq!(chat(&gw, token, "gpt-4o-mini").await?.status, 200);
    }
    // Three calls a minute for the whole tenant, whichever session makes them.
    let refused = chat(&gw, &second.token, "gpt-4o-mini").await?;
    assert_proxy_error(&refused, 429, "rate_limited");
    assert!(refused.headers.contains_key("retry-after"));
    assert!(refused.text().contains("free tier"), "{}", refused.text());

    // Another tenant has its own allowance.
    let token = new_tenant_token(&gw.admin, "other").await?;
    let other_admin = gw.kw.client(&token);
    let (status, created) = other_admin.post("/v1/sessions", Some(json!({}))).await?;
    assert_eq!(status, 201, "{created}");
    let other = created["session_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(chat(&gw, &other, "gpt-4o-mini").await?.status, 200);

    // A session with its own key uses it, for any model, never limited by the free tier.
    gw.bundle("mine", json!({"OPENAI_API_KEY": CANARY_OPENAI}))
        .await?;
    let own = gw.session(json!({"secrets": ["mine"]})).await?;
    gw.openai.clear_requests();
    for model in ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini"] {
        assert_eq!(chat(&gw, &own.token, model).await?.status, 200);
    }
    let keys: Vec<_> = gw
        .openai
        .requests()
        .iter()
        .map(|r| r.presented_key())
        .collect();
    assert!(
        keys.iter().all(|k| k.as_deref() == Some(CANARY_OPENAI)),
        "{keys:?}"
    );
    let records = gw.audit(&own.id, 3).await?;
    assert!(
        records.iter().all(|r| r["decision"] == "forwarded"),
        "{records:?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_shared_key_is_scrubbed_from_echoes() -> anyhow::Result<()> {
    let (gw, _dir) = start().await?;
    let keyless = gw.session(json!({})).await?;
    gw.openai.set_behavior(Behavior::EchoAuth);
    let reply = chat(&gw, &keyless.token, "gpt-4o-mini").await?;
    assert_eq!(reply.status, 401);
    assert_no_secret(
        &reply.everything(),
        FREE_KEY,
        "an echo of the free-tier key",
    );
    let record: Value = gw.audit_nth(&keyless.id, 1).await?;
    assert_eq!(record["decision"], "free_tier");
    let logs = gw.kw.logs();
    assert!(!logs.contains(FREE_KEY), "the free-tier key is in the logs");
    Ok(())
}
