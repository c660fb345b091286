//! Gateway mode driven by the unmodified official Python SDKs, given exactly the env a session
//! hands the agent: the mock must receive the real (canary) key and never the session token,
//! streams must arrive whole, and every call must leave a metered audit record. Also the
//! vendor-neutral `/llm` route (seed 001's `LLM_*` keys).

use keyward_testkit::mock_upstream::ASSISTANT_TEXT;
use keyward_testkit::{MockOptions, MockUpstream, CANARY_ANTHROPIC, CANARY_OPENAI};
use serde_json::{json, Value};

use crate::support::gateway::{
    assert_proxy_error, assert_token_not_forwarded, call, chat_body, run_python, Gateway, Session,
};

const OPENAI_PROGRAM: &str = r#"
import json, openai
client = openai.OpenAI(max_retries=0)
messages = [{"role": "user", "content": "hi"}]
plain = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
deltas = []
for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
    for choice in chunk.choices:
        if choice.delta.content:
            deltas.append(choice.delta.content)
print(json.dumps({"text": plain.choices[0].message.content, "model": plain.model,
                  "usage": [plain.usage.prompt_tokens, plain.usage.completion_tokens],
                  "stream_text": "".join(deltas)}))
"#;

const ANTHROPIC_PROGRAM: &str = r#"
import json, anthropic
client = anthropic.Anthropic(max_retries=0)
messages = [{"role": "user", "content": "hi"}]
plain = client.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=messages)
with client.messages.stream(model="claude-sonnet-4-5", max_tokens=16, messages=messages) as s:
    streamed = "".join(s.text_stream)
    final = s.get_final_message()
print(json.dumps({"text": "".join(b.text for b in plain.content if b.type == "text"),
                  "usage": [plain.usage.input_tokens, plain.usage.output_tokens],
                  "stream_text": streamed,
                  "stream_usage": [final.usage.input_tokens, final.usage.output_tokens]}))
"#;

/// Env of the agent process: the named variables of the session's env.
fn agent_env<'a>(session: &Session, names: &[&'a str]) -> Vec<(&'a str, String)> {
    names.iter().map(|n| (*n, session.env(n))).collect()
}

/// A forwarded, metered call's audit record.
#[track_caller]
fn assert_metered(record: &Value, credential: &str, model: &str) {
    assert_eq!(record["credential"], credential, "{record}");
    assert_eq!(record["credential_version"], 1, "{record}");
    assert_eq!(record["model"], model, "{record}");
    assert_eq!(record["tokens_in"], 11, "{record}");
    assert_eq!(record["tokens_out"], 7, "{record}");
    assert_eq!(record["decision"], "forwarded", "{record}");
    assert_eq!(record["mode"], "gateway", "{record}");
    assert_eq!(record["status"], 200, "{record}");
    assert_eq!(record["error"], Value::Null, "{record}");
}

#[tokio::test]
async fn openai_sdk_gets_the_real_key_streams_and_is_metered() -> anyhow::Result<()> {
    let (gw, session) = Gateway::with_provider_session(&[]).await?;
    let out = run_python(
        OPENAI_PROGRAM,
        &agent_env(&session, &["OPENAI_BASE_URL", "OPENAI_API_KEY"]),
    )
    .await?;
    assert_eq!(out["text"], ASSISTANT_TEXT, "{out}");
    assert_eq!(out["stream_text"], ASSISTANT_TEXT, "{out}");
    assert_eq!(out["usage"], json!([11, 7]), "{out}");

    let requests = gw.openai.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for req in &requests {
        assert_eq!(req.path, "/v1/chat/completions");
        assert_eq!(req.presented_key().as_deref(), Some(CANARY_OPENAI));
    }
    assert_token_not_forwarded(&requests, &session.token);
    // keyward asks the stream for its usage, which the SDK did not.
    let streamed = requests[1].body_json().unwrap_or_default();
    assert_eq!(streamed["stream"], true);
    assert_eq!(
        streamed["stream_options"]["include_usage"], true,
        "{streamed}"
    );
    assert_eq!(gw.anthropic.request_count(), 0);

    let records = gw.audit(&session.id, 2).await?;
    assert_eq!(records.len(), 2);
    for record in &records {
        assert_metered(record, "OPENAI_API_KEY", "gpt-4o-mini");
        assert_eq!(record["path"], "/openai/v1/chat/completions", "{record}");
        assert_eq!(record["method"], "POST");
        assert_eq!(record["session"], session.id.as_str());
        assert_eq!(record["user_id"], "usr_gw", "{record}");
        assert_eq!(record["tenant"], "default", "{record}");
        let ttfb = record["ttfb_ms"].as_u64().expect("ttfb_ms");
        assert!(record["duration_ms"].as_u64() >= Some(ttfb), "{record}");
        assert!(record["bytes_in"].as_u64() > Some(0), "{record}");
        assert!(record["bytes_out"].as_u64() > Some(0), "{record}");
    }
    Ok(())
}

#[tokio::test]
async fn anthropic_sdk_gets_the_real_key_streams_and_is_metered() -> anyhow::Result<()> {
    let (gw, session) = Gateway::with_provider_session(&[]).await?;
    let out = run_python(
        ANTHROPIC_PROGRAM,
        &agent_env(&session, &["ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"]),
    )
    .await?;
    assert_eq!(out["text"], ASSISTANT_TEXT, "{out}");
    assert_eq!(out["stream_text"], ASSISTANT_TEXT, "{out}");
    assert_eq!(out["usage"], json!([11, 7]), "{out}");
    assert_eq!(out["stream_usage"], json!([11, 7]), "{out}");

    let requests = gw.anthropic.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for req in &requests {
        assert_eq!(req.path, "/v1/messages");
        assert_eq!(req.header("x-api-key"), Some(CANARY_ANTHROPIC));
        assert_eq!(req.presented_key().as_deref(), Some(CANARY_ANTHROPIC));
        assert!(req.header("anthropic-version").is_some());
    }
    assert_token_not_forwarded(&requests, &session.token);
    assert_eq!(gw.openai.request_count(), 0);

    let records = gw.audit(&session.id, 2).await?;
    assert_eq!(records.len(), 2);
    for record in &records {
        assert_metered(record, "ANTHROPIC_API_KEY", "claude-sonnet-4-5");
        assert_eq!(record["path"], "/anthropic/v1/messages", "{record}");
    }
    Ok(())
}

const LLM_PROGRAM: &str = r#"
import json, os, openai
client = openai.OpenAI(base_url=os.environ["LLM_BASE_URL"], api_key=os.environ["LLM_API_KEY"],
                       max_retries=0)
r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
print(json.dumps({"text": r.choices[0].message.content, "model": r.model}))
"#;

const LLM_KEY: &str = "sk-llm-CANARY-5d4c3b2a1f0e9d8c7b6a";

/// A gateway, a third mock as the tenant's `LLM_BASE_URL`, and bundle `llm` pointing at it.
async fn llm_gateway(extra: &[&str]) -> anyhow::Result<(Gateway, MockUpstream)> {
    let llm = MockUpstream::start(MockOptions::default()).await?;
    let gw = Gateway::start(extra).await?;
    gw.bundle_body(json!({"name": "llm",
        "values": {"LLM_API_KEY": LLM_KEY, "LLM_BASE_URL": format!("{}/v1", llm.url())},
        "variables": {"LLM_MODEL": "bundle-model"}}))
        .await?;
    Ok((gw, llm))
}

#[tokio::test]
async fn llm_route_refuses_a_loopback_base_url_by_default() -> anyhow::Result<()> {
    let (gw, llm) = llm_gateway(&[]).await?;
    let session = gw.session(json!({"secrets": ["llm"]})).await?;
    assert_eq!(session.env("LLM_BASE_URL"), gw.url("/llm"));
    let auth = format!("Bearer {}", session.token);
    let reply = call(
        reqwest::Method::POST,
        &gw.url("/llm/chat/completions"),
        &[("authorization", &auth)],
        Some(&chat_body()),
    )
    .await?;
    assert_proxy_error(&reply, 403, "private_destination");
    assert!(!reply.text().contains(LLM_KEY));
    assert_eq!(
        llm.request_count(),
        0,
        "a refused call reached the upstream"
    );
    let record = gw.audit_nth(&session.id, 1).await?;
    assert_eq!(
        record["decision"], "blocked:private_destination",
        "{record}"
    );
    assert_eq!(record["status"], 403, "{record}");
    assert_eq!(record["credential"], "LLM_API_KEY", "{record}");

    // The same loopback mock under other spellings, and the cloud metadata address: all are
    // refused on the resolved address, before any connection (a 0.0.0.0 dial would reach it).
    let port = llm.port();
    for base in [
        format!("http://localhost:{port}/v1"),
        format!("http://[::1]:{port}/v1"),
        format!("http://0.0.0.0:{port}/v1"),
        format!("http://[::ffff:127.0.0.1]:{port}/v1"),
        format!("http://2130706433:{port}/v1"),
        "http://169.254.169.254/v1".to_owned(),
    ] {
        let session = gw
            .session(json!({"secrets": ["llm"], "llm": {"base_url": base}}))
            .await?;
        let auth = format!("Bearer {}", session.token);
        let reply = call(
            reqwest::Method::POST,
            &gw.url("/llm/chat/completions"),
            &[("authorization", &auth)],
            Some(&chat_body()),
        )
        .await?;
        assert_eq!(reply.status, 403, "{base}: {}", reply.text());
        assert_proxy_error(&reply, 403, "private_destination");
    }
    assert_eq!(
        llm.request_count(),
        0,
        "a refused call reached the upstream"
    );
    Ok(())
}

#[tokio::test]
async fn llm_route_overrides_the_model_with_the_session_s_choice() -> anyhow::Result<()> {
    let (gw, llm) = llm_gateway(&["--allow-private-upstreams"]).await?;
    let session = gw.session(json!({"secrets": ["llm"]})).await?;
    assert_eq!(session.env("LLM_MODEL"), "bundle-model");
    let out = run_python(
        LLM_PROGRAM,
        &agent_env(&session, &["LLM_BASE_URL", "LLM_API_KEY"]),
    )
    .await?;
    assert_eq!(out["text"], ASSISTANT_TEXT, "{out}");
    assert_eq!(out["model"], "bundle-model", "{out}");
    let req = llm.last_request().expect("the LLM upstream was called");
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(req.presented_key().as_deref(), Some(LLM_KEY));
    assert_eq!(req.body_json().unwrap_or_default()["model"], "bundle-model");
    assert_token_not_forwarded(&llm.requests(), &session.token);
    let record = gw.audit_nth(&session.id, 1).await?;
    assert_metered(&record, "LLM_API_KEY", "bundle-model");

    // The session request's model wins over the bundle's LLM_MODEL.
    let session = gw
        .session(json!({"secrets": ["llm"], "llm": {"model": "request-model"}}))
        .await?;
    assert_eq!(session.env("LLM_MODEL"), "request-model");
    let out = run_python(
        LLM_PROGRAM,
        &agent_env(&session, &["LLM_BASE_URL", "LLM_API_KEY"]),
    )
    .await?;
    assert_eq!(out["model"], "request-model", "{out}");
    let req = llm.last_request().expect("the LLM upstream was called");
    assert_eq!(
        req.body_json().unwrap_or_default()["model"],
        "request-model"
    );
    assert_eq!(llm.request_count(), 2);
    assert_eq!(gw.openai.request_count() + gw.anthropic.request_count(), 0);
    Ok(())
}
