//! Helpers shared by the mock upstream test binaries.
#![allow(dead_code)] // each test binary uses a different subset

use anyhow::Context as _;
use keyward_testkit::{MockOptions, MockUpstream};

pub fn plain_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().no_proxy().build()?)
}

pub fn tls_builder(mock: &MockUpstream) -> anyhow::Result<reqwest::ClientBuilder> {
    let ca = mock.ca_pem().context("TLS mock has a CA")?;
    Ok(reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes())?)
        .resolve("api.openai.com", mock.addr())
        .resolve("api.anthropic.com", mock.addr()))
}

pub async fn start(opts: MockOptions) -> anyhow::Result<MockUpstream> {
    MockUpstream::start(opts).await
}

/// Splits an SSE body into (event name, data) pairs.
pub fn sse_events(body: &str) -> Vec<(Option<String>, String)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (event, data)
        })
        .collect()
}
