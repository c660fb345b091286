//! Static config mode (`keyward serve --config keyward.yaml`, seed 003): the real binary on a
//! config file in a temp dir, a mock OpenAI upstream behind `--upstream openai=URL`, and the
//! official `openai` Python SDK as the client.

mod access;
mod keys;
mod reload;
mod startup;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use keyward_testkit::{KeywardProcess, MockOptions, MockUpstream};
use serde_json::Value;
use tempfile::TempDir;

use crate::support::bin;
use crate::support::gateway::run_python;

/// Two chat calls through the SDK, one plain and one streamed; prints what came back, or the
/// status of the API error.
const CHAT_PROGRAM: &str = r#"
import json, openai
client = openai.OpenAI(max_retries=0)
messages = [{"role": "user", "content": "hi"}]
try:
    plain = client.chat.completions.create(model="gpt-4.1", messages=messages)
    deltas = []
    for chunk in client.chat.completions.create(model="gpt-4.1", messages=messages, stream=True):
        for choice in chunk.choices:
            if choice.delta.content:
                deltas.append(choice.delta.content)
    print(json.dumps({"status": 200, "text": plain.choices[0].message.content,
                      "model": plain.model, "stream_text": "".join(deltas),
                      "usage": [plain.usage.prompt_tokens, plain.usage.completion_tokens]}))
except openai.APIStatusError as e:
    print(json.dumps({"status": e.status_code, "body": e.response.text}))
"#;

/// One plain chat call through the SDK.
const ONE_CALL_PROGRAM: &str = r#"
import json, openai
client = openai.OpenAI(max_retries=0)
try:
    r = client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    print(json.dumps({"status": 200, "text": r.choices[0].message.content, "model": r.model}))
except openai.APIStatusError as e:
    print(json.dumps({"status": e.status_code, "body": e.response.text}))
"#;

/// A running static-mode keyward and its upstream.
pub struct StaticKw {
    pub kw: KeywardProcess,
    /// Holds `keyward.yaml`, key files and `audit.jsonl`.
    pub dir: TempDir,
    pub openai: MockUpstream,
}

impl StaticKw {
    /// Writes `config` to `DIR/keyward.yaml` and starts `keyward serve --config` on it with
    /// `--upstream openai=MOCK`, the child's environment `envs`, and `extra` flags.
    pub async fn start(
        config: &str,
        envs: &[(&str, &str)],
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("keyward-static-")
            .tempdir()?;
        Self::start_in(dir, config, envs, extra).await
    }

    /// Like [`start`](Self::start) in a dir the caller prepared (key files).
    pub async fn start_in(
        dir: TempDir,
        config: &str,
        envs: &[(&str, &str)],
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let openai = MockUpstream::start(MockOptions::default()).await?;
        let path = dir.path().join("keyward.yaml");
        std::fs::write(&path, config)?;
        let upstream = format!("openai={}", openai.url());
        let path_text = path.to_string_lossy().into_owned();
        let mut args = vec!["--config", path_text.as_str(), "--upstream", &upstream];
        args.extend_from_slice(extra);
        let kw = KeywardProcess::start(bin(), &args, envs).await?;
        Ok(Self { kw, dir, openai })
    }

    /// `http://127.0.0.1:PORT` of the first listener.
    pub fn url(&self) -> &str {
        self.kw.proxy_url()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("keyward.yaml")
    }

    /// Replace the config the way editors and Kubernetes do: a new file renamed over it.
    pub fn rewrite_config(&self, text: &str) -> anyhow::Result<()> {
        replace_file(&self.config_path(), text)
    }

    /// The audit file's records, once there are at least `n` (waits up to 10 s).
    pub async fn audit(&self, n: usize) -> anyhow::Result<Vec<Value>> {
        let path = self.dir.path().join("audit.jsonl");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let records: Vec<Value> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(serde_json::from_str)
                .collect::<Result<_, _>>()?;
            if records.len() >= n || tokio::time::Instant::now() >= deadline {
                anyhow::ensure!(
                    records.len() >= n,
                    "{} audit records, want {n}",
                    records.len()
                );
                return Ok(records);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `keyward audit verify --file DIR/audit.jsonl` must pass; returns its output.
    pub async fn verify_audit(&self) -> anyhow::Result<String> {
        let out = tokio::process::Command::new(bin())
            .args(["audit", "verify", "--file"])
            .arg(self.dir.path().join("audit.jsonl"))
            .env_clear()
            .stdin(Stdio::null())
            .output()
            .await?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        anyhow::ensure!(out.status.success(), "audit verify failed: {text}");
        Ok(text)
    }

    /// Waits up to `secs` for the log to contain `needle`.
    pub async fn wait_log(&self, needle: &str, secs: u64) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while tokio::time::Instant::now() < deadline {
            if self.kw.logs().contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Neither keyward's log nor its audit file holds `secret`.
    pub fn assert_not_logged(&self, secret: &str) {
        assert!(
            !self.kw.logs().contains(secret),
            "key in the log:\n{}",
            self.kw.logs()
        );
        let audit =
            std::fs::read_to_string(self.dir.path().join("audit.jsonl")).unwrap_or_default();
        assert!(!audit.contains(secret), "key in the audit file:\n{audit}");
    }
}

/// Write `text` to a sibling temp file and rename it over `path`.
pub fn replace_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("swap");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).context("renaming over the file")
}

/// Runs [`CHAT_PROGRAM`] with `OPENAI_BASE_URL=BASE/PREFIX/v1` and `OPENAI_API_KEY=key`.
pub async fn sdk_chat(base: &str, prefix: &str, key: &str) -> anyhow::Result<Value> {
    sdk(CHAT_PROGRAM, base, prefix, key).await
}

/// Runs [`ONE_CALL_PROGRAM`] like [`sdk_chat`].
pub async fn sdk_call(base: &str, prefix: &str, key: &str) -> anyhow::Result<Value> {
    sdk(ONE_CALL_PROGRAM, base, prefix, key).await
}

async fn sdk(program: &str, base: &str, prefix: &str, key: &str) -> anyhow::Result<Value> {
    let env = [
        ("OPENAI_BASE_URL", format!("{base}{prefix}/v1")),
        ("OPENAI_API_KEY", key.to_owned()),
    ];
    run_python(program, &env).await
}

/// One route of a config, in YAML.
pub fn route(path: &str, backend: &str, auth: &str) -> String {
    format!("      - path: {path}\n        backend: {backend}\n        auth: {auth}\n")
}

/// A config with one listener on `127.0.0.1:0` and these routes.
pub fn config(routes: &[String]) -> String {
    format!(
        "listeners:\n  - bind: 127.0.0.1:0\n    routes:\n{}",
        routes.concat()
    )
}
