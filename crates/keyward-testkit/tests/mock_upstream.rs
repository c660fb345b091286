//! MockUpstream over real loopback sockets: endpoints, TLS names, HTTP/1.1 and HTTP/2.

mod common;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use common::{plain_client, sse_events, start, tls_builder};
use keyward_testkit::{MockOptions, CANARY_OPENAI};
use serde_json::{json, Value};

#[tokio::test]
async fn openai_non_stream_and_recording() -> anyhow::Result<()> {
    let mock = start(MockOptions::default()).await?;
    assert!(mock.url().starts_with("http://127.0.0.1:"));
    assert!(mock.ca_pem().is_none());
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    let resp = plain_client()?
        .post(format!("{}/api/v1/chat/completions?trace=1", mock.url()))
        .bearer_auth(CANARY_OPENAI)
        .json(&body)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await?;
    assert_eq!(v["model"], "gpt-4o-mini");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from mock");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18})
    );

    assert_eq!(mock.request_count(), 1);
    let rec = mock.last_request().context("recorded")?;
    assert_eq!(rec.method, "POST");
    assert_eq!(rec.path, "/api/v1/chat/completions?trace=1");
    assert_eq!(rec.version, "HTTP/1.1");
    let bearer = format!("Bearer {CANARY_OPENAI}");
    assert_eq!(rec.header("Authorization"), Some(bearer.as_str()));
    assert!(rec.headers.iter().all(|(n, _)| n == &n.to_lowercase()));
    assert_eq!(rec.body_json(), Some(body));
    assert_eq!(rec.presented_key().as_deref(), Some(CANARY_OPENAI));
    mock.clear_requests();
    assert!(mock.requests().is_empty());
    Ok(())
}

#[tokio::test]
async fn openai_stream_with_and_without_usage() -> anyhow::Result<()> {
    let opts = MockOptions {
        prompt_tokens: 100,
        completion_tokens: 5,
        ..MockOptions::default()
    };
    let mock = start(opts).await?;
    let client = plain_client()?;
    for include_usage in [true, false] {
        let resp = client
            .post(format!("{}/v1/chat/completions", mock.url()))
            .json(&json!({"model": "gpt-4o", "stream": true,
                          "stream_options": {"include_usage": include_usage}}))
            .send()
            .await?;
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str()?.to_owned();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        let events = sse_events(&resp.text().await?);
        let datas: Vec<&str> = events.iter().map(|(_, d)| d.as_str()).collect();
        assert_eq!(datas.last(), Some(&"[DONE]"));
        let chunks: Vec<Value> = datas[..datas.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d))
            .collect::<Result<_, _>>()?;
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Hello from mock");
        assert!(chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk"));
        let usage_chunks: Vec<&Value> = chunks.iter().filter(|c| c["usage"].is_object()).collect();
        if include_usage {
            assert_eq!(usage_chunks.len(), 1);
            let last = chunks.last().context("chunks")?;
            assert_eq!(last["choices"], json!([]));
            assert_eq!(
                last["usage"],
                json!({"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105})
            );
        } else {
            assert!(usage_chunks.is_empty());
        }
    }
    Ok(())
}

#[tokio::test]
async fn anthropic_json_and_sse_sequence() -> anyhow::Result<()> {
    let mock = start(MockOptions::default()).await?;
    mock.set_usage(42, 9);
    let client = plain_client()?;
    let url = format!("{}/v1/messages", mock.url());
    let req = json!({"model": "claude-3-5-haiku", "max_tokens": 10, "messages": []});
    let v: Value = client.post(&url).json(&req).send().await?.json().await?;
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "claude-3-5-haiku");
    assert_eq!(v["content"][0]["text"], "Hello from mock");
    assert_eq!(v["usage"], json!({"input_tokens": 42, "output_tokens": 9}));

    let mut stream_req = req.clone();
    stream_req["stream"] = json!(true);
    let body = client
        .post(&url)
        .json(&stream_req)
        .send()
        .await?
        .text()
        .await?;
    let events = sse_events(&body);
    let names: Vec<&str> = events.iter().filter_map(|(e, _)| e.as_deref()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let datas: Vec<Value> = events
        .iter()
        .map(|(_, d)| serde_json::from_str(d))
        .collect::<Result<_, _>>()?;
    for ((name, _), data) in events.iter().zip(&datas) {
        assert_eq!(data["type"].as_str(), name.as_deref());
    }
    assert_eq!(datas[0]["message"]["usage"]["input_tokens"], 42);
    assert_eq!(datas[0]["message"]["usage"]["output_tokens"], 1);
    assert_eq!(datas[6]["usage"]["output_tokens"], 9);
    let text: String = datas
        .iter()
        .filter_map(|d| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello from mock");
    Ok(())
}

#[tokio::test]
async fn models_and_other_paths() -> anyhow::Result<()> {
    let mock = start(MockOptions::default()).await?;
    let client = plain_client()?;
    let models: Value = client
        .get(format!("{}/v1/models", mock.url()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(models["object"], "list");
    assert!(models["data"].as_array().is_some_and(|d| !d.is_empty()));
    let other: Value = client
        .get(format!("{}/custom/thing?q=1", mock.url()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        other,
        json!({"ok": true, "method": "GET", "path": "/custom/thing?q=1"})
    );
    Ok(())
}

#[tokio::test]
async fn tls_names_and_http2_via_alpn() -> anyhow::Result<()> {
    let mock = start(MockOptions {
        tls: true,
        ..MockOptions::default()
    })
    .await?;
    assert!(mock.url().starts_with("https://127.0.0.1:"));
    let client = tls_builder(&mock)?.build()?;
    let port = mock.port();
    for base in [
        format!("https://api.openai.com:{port}"),
        format!("https://api.anthropic.com:{port}"),
        mock.url(),
    ] {
        let resp = client.get(format!("{base}/v1/models")).send().await?;
        assert_eq!(resp.version(), reqwest::Version::HTTP_2, "{base}");
        assert_eq!(resp.status(), 200);
    }
    let rec = mock.last_request().context("recorded")?;
    assert_eq!(rec.version, "HTTP/2.0");

    let h1 = tls_builder(&mock)?.http1_only().build()?;
    let resp = h1
        .post(format!("https://api.openai.com:{port}/v1/chat/completions"))
        .json(&json!({"model": "m"}))
        .send()
        .await?;
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    assert_eq!(resp.json::<Value>().await?["usage"]["total_tokens"], 18);

    // Without the CA the handshake must fail.
    let untrusting = reqwest::Client::builder()
        .no_proxy()
        .resolve("api.openai.com", mock.addr())
        .build()?;
    let err = untrusting
        .get(format!("https://api.openai.com:{port}/v1/models"))
        .send()
        .await;
    assert!(err.is_err());
    Ok(())
}

#[tokio::test]
async fn plain_http2_prior_knowledge() -> anyhow::Result<()> {
    let mock = start(MockOptions::default()).await?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()?;
    let resp = client
        .get(format!("{}/v1/models", mock.url()))
        .send()
        .await?;
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    Ok(())
}

#[tokio::test]
async fn drop_stops_listening() -> anyhow::Result<()> {
    let mock = start(MockOptions::default()).await?;
    let addr = mock.addr();
    drop(mock);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "still accepting after drop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
