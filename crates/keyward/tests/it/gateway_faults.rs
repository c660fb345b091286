//! Upstream faults in gateway mode (SPEC section 6): refused, slow to answer, stalled, reset,
//! and the agent going away mid-stream. Each gets a JSON error naming the fault (before the
//! response head) or a cut stream (after it), never the key, and an audit record saying why.

use std::time::{Duration, Instant};

use keyward_testkit::{Behavior, MockOptions, MockUpstream, CANARY_OPENAI};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::gateway::{
    assert_no_secret, assert_proxy_error, call, closed_port, http, openai_chat, Gateway, Session,
};

fn stream_body() -> Value {
    json!({"model": "gpt-4o-mini", "stream": true,
           "messages": [{"role": "user", "content": "hi"}]})
}

/// How a streamed answer ended on the agent's side.
struct Streamed {
    status: u16,
    body: String,
    /// The body ended with an error (cut), not cleanly.
    cut: bool,
    elapsed: Duration,
}

/// A streaming chat call, read chunk by chunk until it ends or fails.
async fn stream_chat(gw: &Gateway, session: &Session) -> anyhow::Result<Streamed> {
    let started = Instant::now();
    let mut resp = http()
        .post(gw.url("/openai/v1/chat/completions"))
        .bearer_auth(&session.token)
        .json(&stream_body())
        .send()
        .await?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    let cut = loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    Ok(Streamed {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        cut,
        elapsed: started.elapsed(),
    })
}

/// A gateway with a provider session whose OpenAI mock behaves as `behavior`.
async fn faulty(behavior: Behavior, extra: &[&str]) -> anyhow::Result<(Gateway, Session)> {
    let (gw, session) = Gateway::with_provider_session(extra).await?;
    gw.openai.set_behavior(behavior);
    Ok((gw, session))
}

#[tokio::test]
async fn a_refused_upstream_is_502_upstream_unreachable() -> anyhow::Result<()> {
    let openai = MockUpstream::start(MockOptions::default()).await?;
    let anthropic = MockUpstream::start(MockOptions::default()).await?;
    let flag = format!("openai=http://127.0.0.1:{}", closed_port()?);
    let gw = Gateway::start_with(openai, anthropic, &flag, &[]).await?;
    gw.bundle("keys", json!({"OPENAI_API_KEY": CANARY_OPENAI}))
        .await?;
    let session = gw.session(json!({"secrets": ["keys"]})).await?;

    let reply = openai_chat(&gw, &session.token).await?;
    assert_proxy_error(&reply, 502, "upstream_unreachable");
    assert_no_secret(&reply.everything(), CANARY_OPENAI, "the 502");
    let record = gw.audit_nth(&session.id, 1).await?;
    assert_eq!(record["status"], 502, "{record}");
    assert_eq!(record["error"], "upstream_unreachable", "{record}");
    assert_eq!(record["credential"], "OPENAI_API_KEY", "{record}");
    Ok(())
}

#[tokio::test]
async fn a_slow_first_byte_is_504_upstream_timeout() -> anyhow::Result<()> {
    let delay = Behavior::Delay {
        first_byte: Duration::from_secs(4),
    };
    let (gw, session) = faulty(delay, &["--first-byte-timeout", "1"]).await?;
    let started = Instant::now();
    let reply = openai_chat(&gw, &session.token).await?;
    let elapsed = started.elapsed();
    assert_proxy_error(&reply, 504, "upstream_timeout");
    assert_no_secret(&reply.everything(), CANARY_OPENAI, "the 504");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "answered after {elapsed:?}, the first-byte timeout is 1 s"
    );
    let record = gw.audit_nth(&session.id, 1).await?;
    assert_eq!(record["status"], 504, "{record}");
    assert_eq!(record["error"], "upstream_timeout", "{record}");
    Ok(())
}

#[tokio::test]
async fn a_stalled_stream_is_cut_by_the_idle_timeout() -> anyhow::Result<()> {
    let stall = Behavior::StallAfterFirstChunk {
        stall: Duration::from_secs(4),
    };
    let (gw, session) = faulty(stall, &["--idle-timeout", "1"]).await?;
    let streamed = stream_chat(&gw, &session).await?;
    assert_eq!(streamed.status, 200);
    assert!(
        streamed.body.contains("chat.completion.chunk"),
        "the first chunk should arrive: {:?}",
        streamed.body
    );
    assert!(!streamed.body.contains("[DONE]"), "{}", streamed.body);
    assert!(
        streamed.cut,
        "the agent should see the stream fail, not end cleanly"
    );
    assert!(
        streamed.elapsed < Duration::from_secs(3),
        "cut after {:?}, the idle timeout is 1 s",
        streamed.elapsed
    );
    let record = gw.audit_nth(&session.id, 1).await?;
    assert_eq!(record["error"], "idle_timeout", "{record}");
    assert_eq!(record["status"], 200, "{record}");
    Ok(())
}

#[tokio::test]
async fn an_upstream_reset_mid_stream_cuts_the_agent_s_stream() -> anyhow::Result<()> {
    let (gw, session) = faulty(Behavior::ResetMidStream, &[]).await?;
    let streamed = stream_chat(&gw, &session).await?;
    assert_eq!(streamed.status, 200);
    assert!(
        streamed.body.contains("chat.completion.chunk"),
        "{}",
        streamed.body
    );
    assert!(!streamed.body.contains("[DONE]"), "{}", streamed.body);
    assert!(
        streamed.cut,
        "a reset upstream must not look like a complete answer"
    );
    assert_no_secret(&streamed.body, CANARY_OPENAI, "the cut stream");
    let record = gw.audit_nth(&session.id, 1).await?;
    assert_eq!(record["error"], "upstream_reset", "{record}");

    // A JSON answer reset halfway is cut as well.
    let reply = openai_chat(&gw, &session.token).await;
    let truncated = match reply {
        Err(_) => true,
        Ok(r) => serde_json::from_slice::<Value>(&r.body).is_err(),
    };
    assert!(truncated, "a reset JSON body reached the agent as if whole");
    let record = gw.audit_nth(&session.id, 2).await?;
    assert_eq!(record["error"], "upstream_reset", "{record}");
    Ok(())
}

#[tokio::test]
async fn an_agent_leaving_mid_stream_is_audited_as_client_disconnected() -> anyhow::Result<()> {
    let stall = Behavior::StallAfterFirstChunk {
        stall: Duration::from_secs(2),
    };
    let (gw, session) = faulty(stall, &[]).await?;
    let client = http();
    let started = Instant::now();
    let mut resp = client
        .post(gw.url("/openai/v1/chat/completions"))
        .bearer_auth(&session.token)
        .json(&stream_body())
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await?.unwrap_or_default();
    assert!(!first.is_empty());
    // The first event arrives while the upstream still stalls: nothing is buffered.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "first chunk after {:?}; the upstream sent it at once, then stalled 2 s",
        started.elapsed()
    );
    drop(resp);
    drop(client);
    let record = gw.audit_nth(&session.id, 1).await?;
    assert_eq!(record["error"], "client_disconnected", "{record}");
    assert_eq!(record["status"], 200, "{record}");

    // The upstream misbehaving or not, a fresh call works.
    gw.openai.set_behavior(Behavior::Normal);
    let reply = call(
        Method::POST,
        &gw.url("/openai/v1/chat/completions"),
        &[("api-key", &session.token)],
        Some(&stream_body()),
    )
    .await?;
    assert_eq!(reply.status, 200);
    assert!(reply.text().contains("[DONE]"), "{}", reply.text());
    Ok(())
}

#[tokio::test]
async fn an_agent_leaving_before_the_answer_is_still_audited() -> anyhow::Result<()> {
    let delay = Behavior::Delay {
        first_byte: Duration::from_secs(2),
    };
    let (gw, session) = faulty(delay, &[]).await?;
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()?;
    let gone = impatient
        .post(gw.url("/openai/v1/chat/completions"))
        .bearer_auth(&session.token)
        .json(&stream_body())
        .send()
        .await;
    assert!(gone.is_err(), "the agent should have given up: {gone:?}");
    drop(impatient);
    assert!(
        gw.openai.wait_for_requests(1, Duration::from_secs(2)).await,
        "the call was forwarded before the agent left"
    );
    // The upstream got the real key (and may bill for the call): the call must be audited.
    let record = gw.audit_nth(&session.id, 1).await?;
    assert_eq!(record["error"], "client_disconnected", "{record}");
    assert_eq!(record["credential"], "OPENAI_API_KEY", "{record}");
    Ok(())
}
