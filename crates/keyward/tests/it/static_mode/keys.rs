//! Each key source — `$ENV`, inline, `file:` (re-read on change), passthrough — with the
//! official SDK as client: the upstream gets the right key, the client's own token is never
//! forwarded (except with passthrough), the key never shows in logs, responses or the audit
//! file, and every call leaves one chained audit record.

use keyward_testkit::mock_upstream::ASSISTANT_TEXT;
use keyward_testkit::{Behavior, CANARY_OPENAI};
use serde_json::{json, Value};

use super::{config, replace_file, route, sdk_call, sdk_chat, StaticKw};
use crate::support::gateway::{assert_token_not_forwarded, call, chat_body};

const OPENAI: &str = "{ provider: openai }";
/// What the SDK holds instead of a real key.
const CLIENT_TOKEN: &str = "sk-client-placeholder-not-a-real-key";

#[tokio::test]
async fn env_key_with_model_override_streams_meters_and_audits() -> anyhow::Result<()> {
    let yaml = config(&[route(
        "/openai",
        "{ provider: openai, model: gpt-4o-mini }",
        "{ key: \"$OPENAI_API_KEY\" }",
    )]);
    let st = StaticKw::start(&yaml, &[("OPENAI_API_KEY", CANARY_OPENAI)], &[]).await?;
    let out = sdk_chat(st.url(), "/openai", CLIENT_TOKEN).await?;
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(out["text"], ASSISTANT_TEXT, "{out}");
    assert_eq!(out["stream_text"], ASSISTANT_TEXT, "{out}");
    assert_eq!(out["usage"], json!([11, 7]), "{out}");

    let requests = st.openai.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for req in &requests {
        assert_eq!(req.path, "/v1/chat/completions");
        assert_eq!(req.presented_key().as_deref(), Some(CANARY_OPENAI));
        // The backend's model replaces the one the SDK asked for.
        assert_eq!(req.body_json().unwrap_or_default()["model"], "gpt-4o-mini");
    }
    assert_token_not_forwarded(&requests, CLIENT_TOKEN);
    assert_eq!(
        requests[1].body_json().unwrap_or_default()["stream_options"]["include_usage"],
        true
    );

    let records = st.audit(2).await?;
    assert_eq!(records.len(), 2);
    for record in &records {
        assert_eq!(record["tenant"], "static", "{record}");
        assert_eq!(record["session"], "127.0.0.1:0/openai", "{record}");
        assert_eq!(record["path"], "/openai/v1/chat/completions", "{record}");
        assert_eq!(record["credential"], "$OPENAI_API_KEY", "{record}");
        assert_eq!(record["credential_version"], 1, "{record}");
        assert_eq!(record["model"], "gpt-4o-mini", "{record}");
        assert_eq!(record["tokens_in"], 11, "{record}");
        assert_eq!(record["tokens_out"], 7, "{record}");
        assert_eq!(record["decision"], "forwarded", "{record}");
        assert_eq!(record["status"], 200, "{record}");
    }
    assert_eq!(records[1]["prev_hash"], records[0]["hash"]);
    st.verify_audit().await?;

    // An upstream that echoes the key: redacted on the way back.
    st.openai.set_behavior(Behavior::EchoAuth);
    let url = format!("{}/openai/v1/chat/completions", st.url());
    let reply = call(reqwest::Method::POST, &url, &[], Some(&chat_body())).await?;
    assert_eq!(reply.status, 401);
    assert!(
        !reply.everything().contains(CANARY_OPENAI),
        "{}",
        reply.everything()
    );
    st.audit(3).await?;
    st.assert_not_logged(CANARY_OPENAI);
    Ok(())
}

#[tokio::test]
async fn inline_key_works_and_is_warned_about() -> anyhow::Result<()> {
    const INLINE: &str = "sk-proj-INLINE-canary-0123456789abcdef";
    let yaml = config(&[route(
        "/openai",
        OPENAI,
        &format!("{{ key: \"{INLINE}\" }}"),
    )]);
    let st = StaticKw::start(&yaml, &[], &[]).await?;
    let out = sdk_call(st.url(), "/openai", CLIENT_TOKEN).await?;
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(
        out["model"], "gpt-4.1",
        "no override: the SDK's model stays: {out}"
    );
    let req = st.openai.last_request().expect("a request");
    assert_eq!(req.presented_key().as_deref(), Some(INLINE));
    assert!(
        st.kw.logs().contains("inline key in the config file"),
        "{}",
        st.kw.logs()
    );
    let records = st.audit(1).await?;
    assert_eq!(records[0]["credential"], "inline", "{}", records[0]);
    st.assert_not_logged(INLINE);
    Ok(())
}

#[tokio::test]
async fn file_key_is_trimmed_and_a_changed_file_reaches_the_next_call() -> anyhow::Result<()> {
    const FIRST: &str = "sk-proj-FILE-first-0123456789abcdef";
    const SECOND: &str = "sk-proj-FILE-second-0123456789abcdef";
    const THIRD: &str = "sk-proj-FILE-third-0123456789abcdef";
    let dir = tempfile::Builder::new()
        .prefix("keyward-static-")
        .tempdir()?;
    let key_path = dir.path().join("key.txt");
    std::fs::write(&key_path, format!("{FIRST}\n"))?;
    let yaml = config(&[route("/openai", OPENAI, "{ key: { file: key.txt } }")]);
    let st = StaticKw::start_in(dir, &yaml, &[], &[]).await?;

    let presented = |st: &StaticKw| st.openai.last_request().and_then(|r| r.presented_key());
    assert_eq!(
        sdk_call(st.url(), "/openai", CLIENT_TOKEN).await?["status"],
        200
    );
    assert_eq!(
        presented(&st).as_deref(),
        Some(FIRST),
        "trailing newline trimmed"
    );

    // Kubernetes updates a secret volume by swapping in a new file.
    replace_file(&key_path, &format!("{SECOND}\n"))?;
    assert_eq!(
        sdk_call(st.url(), "/openai", CLIENT_TOKEN).await?["status"],
        200
    );
    assert_eq!(presented(&st).as_deref(), Some(SECOND));

    // An in-place rewrite (`echo NEW > key.txt`) too.
    std::fs::write(&key_path, format!("{THIRD}\r\n"))?;
    assert_eq!(
        sdk_call(st.url(), "/openai", CLIENT_TOKEN).await?["status"],
        200
    );
    assert_eq!(presented(&st).as_deref(), Some(THIRD));

    let records = st.audit(3).await?;
    let versions: Vec<&Value> = records.iter().map(|r| &r["credential_version"]).collect();
    assert_eq!(versions, [&json!(1), &json!(2), &json!(3)]);
    let label = records[0]["credential"].as_str().unwrap_or_default();
    assert!(
        label.starts_with("file:") && label.ends_with("key.txt"),
        "{label}"
    );
    st.verify_audit().await?;
    for key in [FIRST, SECOND, THIRD] {
        st.assert_not_logged(key);
    }
    Ok(())
}

#[tokio::test]
async fn passthrough_forwards_the_clients_own_key() -> anyhow::Result<()> {
    let yaml = config(&[route("/openai", OPENAI, "{ passthrough: true }")]);
    let st = StaticKw::start(&yaml, &[], &[]).await?;
    let out = sdk_chat(st.url(), "/openai", CANARY_OPENAI).await?;
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(out["stream_text"], ASSISTANT_TEXT, "{out}");
    let requests = st.openai.requests();
    assert_eq!(requests.len(), 2);
    for req in &requests {
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {CANARY_OPENAI}").as_str())
        );
    }
    let records = st.audit(2).await?;
    for record in &records {
        assert_eq!(record["credential"], Value::Null, "{record}");
        assert_eq!(record["tokens_in"], 11, "{record}");
        assert!(
            !record.to_string().contains(CANARY_OPENAI),
            "client key in the audit record: {record}"
        );
    }
    st.verify_audit().await?;
    st.assert_not_logged(CANARY_OPENAI);
    Ok(())
}
