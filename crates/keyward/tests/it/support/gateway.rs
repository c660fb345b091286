//! Helpers of the data-plane tests (`gateway*` modules): a keyward whose built-in providers
//! point at mock upstreams, sessions, raw calls through the data plane, audit polling, and the
//! official Python SDKs as clients.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use keyward_testkit::mock_upstream::echo_variants;
use keyward_testkit::{
    ApiClient, KeywardProcess, MockOptions, MockUpstream, RecordedRequest, CANARY_ANTHROPIC,
    CANARY_OPENAI,
};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{bin, SECRETS};

/// A running keyward with `--upstream openai=… --upstream anthropic=…` pointing at two mocks.
pub struct Gateway {
    pub kw: KeywardProcess,
    /// Holds the operator token (tenant `default`).
    pub admin: ApiClient,
    pub openai: MockUpstream,
    pub anthropic: MockUpstream,
}

impl Gateway {
    /// Both mocks plain HTTP with default options; `extra` flags go to `keyward serve`.
    pub async fn start(extra: &[&str]) -> anyhow::Result<Self> {
        let openai = MockUpstream::start(MockOptions::default()).await?;
        let anthropic = MockUpstream::start(MockOptions::default()).await?;
        let openai_flag = format!("openai={}", openai.url());
        Self::start_with(openai, anthropic, &openai_flag, extra).await
    }

    /// Like [`start`](Self::start) but the `openai` upstream flag is given (`openai=URL`).
    pub async fn start_with(
        openai: MockUpstream,
        anthropic: MockUpstream,
        openai_flag: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let anthropic_flag = format!("anthropic={}", anthropic.url());
        let mut args = vec![
            "--upstream",
            openai_flag,
            "--upstream",
            &anthropic_flag,
            "--log-format",
            "json",
        ];
        args.extend_from_slice(extra);
        let kw = KeywardProcess::start(bin(), &args, &[]).await?;
        let admin = kw.client(&kw.admin_token()?);
        Ok(Self {
            kw,
            admin,
            openai,
            anthropic,
        })
    }

    /// Bundle `providers` with both canary keys, and a session on it for user `usr_gw`.
    pub async fn with_provider_session(extra: &[&str]) -> anyhow::Result<(Self, Session)> {
        let gw = Self::start(extra).await?;
        gw.bundle(
            "providers",
            json!({"OPENAI_API_KEY": CANARY_OPENAI, "ANTHROPIC_API_KEY": CANARY_ANTHROPIC}),
        )
        .await?;
        let session = gw
            .session(json!({"secrets": ["providers"], "user_id": "usr_gw"}))
            .await?;
        Ok((gw, session))
    }

    /// Creates bundle `name` with secret `values` (asserting 201).
    pub async fn bundle(&self, name: &str, values: Value) -> anyhow::Result<()> {
        self.bundle_body(json!({"name": name, "values": values}))
            .await
    }

    /// `POST /v1/tenants/me/secrets` with a full body (asserting 201).
    pub async fn bundle_body(&self, body: Value) -> anyhow::Result<()> {
        let (status, answer) = self.admin.post(SECRETS, Some(body)).await?;
        anyhow::ensure!(status == 201, "create bundle: {status} {answer}");
        Ok(())
    }

    /// `POST /v1/sessions` (asserting 201).
    pub async fn session(&self, body: Value) -> anyhow::Result<Session> {
        let (status, created) = self.admin.post("/v1/sessions", Some(body)).await?;
        anyhow::ensure!(status == 201, "create session: {status} {created}");
        Ok(Session {
            id: created["session_id"].as_str().context("session_id")?.into(),
            token: created["session_token"]
                .as_str()
                .context("session_token")?
                .into(),
            env: created["env"].clone(),
        })
    }

    /// `PROXY_URL + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.kw.proxy_url())
    }

    /// The session's audit records, oldest first, once there are at least `n` (polls: records
    /// are group-committed off the request path). Errors after 10 s.
    pub async fn audit(&self, session: &str, n: usize) -> anyhow::Result<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = self
                .admin
                .get(&format!("/v1/audit?session={session}&limit=1000"), None)
                .await?;
            anyhow::ensure!(status == 200, "GET /v1/audit: {status} {body}");
            let records = body["records"].as_array().context("records")?.clone();
            if records.len() >= n {
                return Ok(records);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{} audit record(s) for {session} after 10 s, expected {n}: {records:?}",
                records.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The one audit record of the session's `n`th call (1-based), waiting for it.
    pub async fn audit_nth(&self, session: &str, n: usize) -> anyhow::Result<Value> {
        let records = self.audit(session, n).await?;
        Ok(records[n - 1].clone())
    }
}

/// What a platform gets back from `POST /v1/sessions`.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub token: String,
    pub env: Value,
}

impl Session {
    /// `env[name]` as a string (panics naming the variable if absent).
    pub fn env(&self, name: &str) -> String {
        match self.env[name].as_str() {
            Some(v) => v.to_owned(),
            None => panic!("session env has no {name}: {}", self.env),
        }
    }
}

/// A data-plane answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Headers and body as one text, for leak scans.
    pub fn everything(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.headers {
            out.push_str(name.as_str());
            out.push_str(": ");
            out.push_str(&String::from_utf8_lossy(value.as_bytes()));
            out.push('\n');
        }
        out.push_str(&self.text());
        out
    }
}

/// A client that ignores proxy variables.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// `method url` with the given headers and optional JSON body, read whole.
pub async fn call(
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> anyhow::Result<Reply> {
    let mut req = http().request(method, url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    let resp = req.send().await.with_context(|| format!("calling {url}"))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await?.to_vec();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// A small non-streaming chat completion body.
pub fn chat_body() -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
}

/// A small non-streaming Anthropic messages body.
pub fn messages_body() -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 16,
           "messages": [{"role": "user", "content": "hi"}]})
}

/// `POST /openai/v1/chat/completions` with `Authorization: Bearer token`.
pub async fn openai_chat(gw: &Gateway, token: &str) -> anyhow::Result<Reply> {
    let auth = format!("Bearer {token}");
    call(
        reqwest::Method::POST,
        &gw.url("/openai/v1/chat/completions"),
        &[("authorization", &auth)],
        Some(&chat_body()),
    )
    .await
}

/// Asserts `{"error": {"code": code, …}}` with that status, JSON, and no canary key in it.
#[track_caller]
pub fn assert_proxy_error(reply: &Reply, status: u16, code: &str) {
    let body = reply.json();
    assert_eq!(
        reply.status.as_u16(),
        status,
        "status; body: {}",
        reply.text()
    );
    assert_eq!(body["error"]["code"], code, "code; body: {}", reply.text());
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "message; body: {body}"
    );
    let ct = reply
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(ct.contains("json"), "content-type {ct:?}");
    assert_no_secret(&reply.everything(), CANARY_OPENAI, "an error answer");
    assert_no_secret(&reply.everything(), CANARY_ANTHROPIC, "an error answer");
}

/// Panics if `text` holds `secret` in any of the encodings an echoing upstream uses.
#[track_caller]
pub fn assert_no_secret(text: &str, secret: &str, what: &str) {
    for (variant, encoded) in echo_variants(secret) {
        assert!(
            !text.contains(&encoded),
            "{what} holds the secret ({variant}): {text}"
        );
    }
}

/// Panics if the session token reached the upstream in any header or body.
#[track_caller]
pub fn assert_token_not_forwarded(requests: &[RecordedRequest], token: &str) {
    for req in requests {
        for (name, value) in &req.headers {
            assert!(
                !value.contains(token),
                "session token forwarded in header {name} of {} {}",
                req.method,
                req.path
            );
        }
        assert!(
            !req.body_text().contains(token),
            "session token forwarded in the body of {} {}",
            req.method,
            req.path
        );
    }
}

/// The Python interpreter with the official SDKs: `KEYWARD_TEST_PYTHON`, else the repo's
/// `.venv`. Panics (never skips) when neither is there.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("KEYWARD_TEST_PYTHON") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "KEYWARD_TEST_PYTHON={} does not exist; run ./scripts/test, which creates the venv \
             with the openai and anthropic SDKs",
            p.display()
        );
        return p;
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with the official SDKs: KEYWARD_TEST_PYTHON is unset and {} does not exist. \
         Run ./scripts/test (it creates .venv with openai, anthropic, httpx and requests).",
        venv.display()
    );
    venv
}

/// Runs `code` with the Python of [`python`] and exactly `env` (plus PATH and HOME), as the
/// agent process would; returns the JSON object the program prints as its last stdout line.
pub async fn run_python(code: &str, env: &[(&str, String)]) -> anyhow::Result<Value> {
    let mut cmd = tokio::process::Command::new(python());
    cmd.arg("-c")
        .arg(code)
        .env_clear()
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for key in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .context("the Python client did not finish within 60 s")??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(
        out.status.success(),
        "python exited {}:\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .with_context(|| format!("python printed no JSON:\nstdout: {stdout}\nstderr: {stderr}"))
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
