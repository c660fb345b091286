//! MockUpstream behaviours switched at runtime: echoes, resets, stalls, statuses, key checks.

mod common;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use common::{plain_client, start, tls_builder};
use keyward_testkit::mock_upstream::echo_variants;
use keyward_testkit::{Behavior, MockOptions, CANARY_ANTHROPIC, CANARY_OPENAI};
use serde_json::{json, Value};

#[tokio::test]
async fn echo_auth_echoes_key_in_all_forms() -> anyhow::Result<()> {
    let mock = start(MockOptions::default()).await?;
    mock.set_behavior(Behavior::EchoAuth);
    let client = plain_client()?;
    let resp = client
        .post(format!("{}/v1/messages", mock.url()))
        .header("x-api-key", CANARY_ANTHROPIC)
        .json(&json!({"model": "m"}))
        .send()
        .await?;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["x-echo"], CANARY_ANTHROPIC);
    let text = resp.text().await?;
    for (name, form) in echo_variants(CANARY_ANTHROPIC) {
        assert!(
            text.contains(&form),
            "{name} form {form} missing from {text}"
        );
    }
    let v: Value = serde_json::from_str(&text)?;
    assert_eq!(v["error"]["key_json_escaped"], CANARY_ANTHROPIC);
    assert_eq!(v["error"]["received"], CANARY_ANTHROPIC);

    let resp = client
        .get(format!("{}/v1/models", mock.url()))
        .bearer_auth(CANARY_OPENAI)
        .send()
        .await?;
    let bearer = format!("Bearer {CANARY_OPENAI}");
    assert_eq!(resp.headers()["x-echo"], bearer.as_str());
    let v: Value = resp.json().await?;
    assert_eq!(v["error"]["received"], bearer.as_str());
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains(CANARY_OPENAI)));

    mock.set_behavior(Behavior::Normal);
    assert_eq!(mock.behavior(), Behavior::Normal);
    let resp = client
        .get(format!("{}/v1/models", mock.url()))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    Ok(())
}

#[tokio::test]
async fn echo_auth_stream_split_spans_frames() -> anyhow::Result<()> {
    let mock = start(MockOptions::default()).await?;
    mock.set_behavior(Behavior::EchoAuthStreamSplit);
    let client = plain_client()?;
    for (path, header, key) in [
        (
            "/v1/chat/completions",
            "authorization",
            format!("Bearer {CANARY_OPENAI}"),
        ),
        ("/v1/messages", "x-api-key", CANARY_ANTHROPIC.to_owned()),
    ] {
        let mut resp = client
            .post(format!("{}{path}", mock.url()))
            .header(header, &key)
            .json(&json!({"model": "m", "stream": true}))
            .send()
            .await?;
        assert_eq!(resp.status(), 200);
        let mut chunks = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            chunks.push(chunk);
        }
        let secret = key.trim_start_matches("Bearer ");
        assert!(chunks.len() >= 2);
        assert!(
            chunks
                .iter()
                .all(|c| !String::from_utf8_lossy(c).contains(secret)),
            "key must never be whole inside one frame"
        );
        let all: String = chunks.iter().map(|c| String::from_utf8_lossy(c)).collect();
        assert!(all.contains(secret), "{all}");
    }
    Ok(())
}

#[tokio::test]
async fn reset_mid_stream_breaks_the_body() -> anyhow::Result<()> {
    for tls in [false, true] {
        let mock = start(MockOptions {
            tls,
            ..MockOptions::default()
        })
        .await?;
        mock.set_behavior(Behavior::ResetMidStream);
        let client = if tls {
            tls_builder(&mock)?.build()?
        } else {
            plain_client()?
        };
        for stream in [true, false] {
            let mut resp = client
                .post(format!("{}/v1/chat/completions", mock.url()))
                .json(&json!({"model": "m", "stream": stream}))
                .send()
                .await?;
            assert_eq!(resp.status(), 200);
            let mut got = 0usize;
            let err = loop {
                match resp.chunk().await {
                    Ok(Some(c)) => got += c.len(),
                    Ok(None) => anyhow::bail!("tls={tls} stream={stream}: body ended cleanly"),
                    Err(e) => break e,
                }
            };
            assert!(got > 0, "some bytes arrive before the reset ({err})");
        }
    }
    Ok(())
}

#[tokio::test]
async fn status_delay_and_stall() -> anyhow::Result<()> {
    let mock = start(MockOptions::default()).await?;
    let client = plain_client()?;
    let url = format!("{}/v1/chat/completions", mock.url());

    mock.set_behavior(Behavior::Status(529));
    let resp = client
        .post(&url)
        .json(&json!({"model": "m"}))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 529);
    assert!(resp.json::<Value>().await?["error"].is_object());

    mock.set_behavior(Behavior::Delay {
        first_byte: Duration::from_millis(300),
    });
    let t = Instant::now();
    let resp = client
        .post(&url)
        .json(&json!({"model": "m"}))
        .send()
        .await?;
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(resp.status(), 200);

    mock.set_behavior(Behavior::StallAfterFirstChunk {
        stall: Duration::from_millis(400),
    });
    let t = Instant::now();
    let mut resp = client
        .post(&url)
        .json(&json!({"model": "m", "stream": true}))
        .send()
        .await?;
    let first = resp.chunk().await?.context("first chunk")?;
    assert!(String::from_utf8_lossy(&first).starts_with("data: "));
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "first chunk is prompt"
    );
    let mut rest = Vec::new();
    while let Some(c) = resp.chunk().await? {
        rest.extend_from_slice(&c);
    }
    assert!(t.elapsed() >= Duration::from_millis(400));
    assert!(String::from_utf8_lossy(&rest).ends_with("data: [DONE]\n\n"));
    Ok(())
}

#[tokio::test]
async fn require_key_checks_all_header_styles() -> anyhow::Result<()> {
    let mock = start(MockOptions {
        require_key: Some(CANARY_OPENAI.to_owned()),
        ..MockOptions::default()
    })
    .await?;
    let client = plain_client()?;
    let url = format!("{}/v1/models", mock.url());
    let wrong = client.get(&url).bearer_auth("sk-wrong").send().await?;
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.json::<Value>().await?,
        json!({"error": "mock: wrong key"})
    );
    assert_eq!(client.get(&url).send().await?.status(), 401);
    for (name, value) in [
        ("authorization", format!("Bearer {CANARY_OPENAI}")),
        ("x-api-key", CANARY_OPENAI.to_owned()),
        ("x-goog-api-key", CANARY_OPENAI.to_owned()),
    ] {
        let resp = client.get(&url).header(name, value).send().await?;
        assert_eq!(resp.status(), 200, "{name}");
    }
    mock.set_expected_key(None);
    assert_eq!(client.get(&url).send().await?.status(), 200);
    Ok(())
}
