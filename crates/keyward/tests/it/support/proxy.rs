//! Helpers of the proxy-mode tests (`proxy_mode`, `proxy_attacks`, `keyward_run`): a keyward
//! that reaches two TLS mocks *as* `api.openai.com` and `api.anthropic.com` (`--resolve` +
//! `--upstream-ca`, no `--upstream`), `keyward run`, raw CONNECTs, a Rust client that goes
//! through the proxy, and the canary sweep.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use keyward_testkit::{
    assert_absent_in_dir, KeywardProcess, MockOptions, MockUpstream, RecordedRequest,
    CANARY_ANTHROPIC, CANARY_OPENAI,
};
use serde_json::{json, Value};
use tempfile::TempDir;

use super::bin;
use super::gateway::{Gateway, Session};

/// How long one `keyward run` (or one client) may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A keyward whose outbound calls to `api.openai.com:443` / `api.anthropic.com:443` land on
/// two TLS mocks (each requiring its canary key), with bundle `providers` holding both
/// canaries. Derefs to the [`Gateway`] helpers (`kw`, `admin`, `openai`, `anthropic`,
/// `bundle`, `session`, `audit`).
pub struct ProxyKw {
    pub gw: Gateway,
    /// Scratch files: the mocks' CAs, keyward's CA, client scripts.
    pub files: TempDir,
    /// keyward's CA (`GET /v1/ca.pem`).
    pub ca_pem: String,
}

impl Deref for ProxyKw {
    type Target = Gateway;
    fn deref(&self) -> &Gateway {
        &self.gw
    }
}

impl ProxyKw {
    /// `extra` flags go to `keyward serve` (more `--resolve`, `--upstream-ca`…).
    pub async fn start(extra: &[&str]) -> anyhow::Result<Self> {
        Self::start_with_env(extra, &[]).await
    }

    pub async fn start_with_env(extra: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<Self> {
        let tls = |key: &str| MockOptions {
            tls: true,
            require_key: Some(key.to_owned()),
            ..MockOptions::default()
        };
        let openai = MockUpstream::start(tls(CANARY_OPENAI)).await?;
        let anthropic = MockUpstream::start(tls(CANARY_ANTHROPIC)).await?;
        let files = tempfile::Builder::new().prefix("keyward-px-").tempdir()?;
        let openai_ca = write_pem(files.path(), "openai-ca.pem", &openai)?;
        let anthropic_ca = write_pem(files.path(), "anthropic-ca.pem", &anthropic)?;
        let resolve_openai = format!("api.openai.com:443=127.0.0.1:{}", openai.port());
        let resolve_anthropic = format!("api.anthropic.com:443=127.0.0.1:{}", anthropic.port());
        let (openai_ca, anthropic_ca) = (path_str(&openai_ca)?, path_str(&anthropic_ca)?);
        let mut args = vec![
            "--resolve",
            &resolve_openai,
            "--resolve",
            &resolve_anthropic,
            "--upstream-ca",
            &openai_ca,
            "--upstream-ca",
            &anthropic_ca,
            "--log-format",
            "json",
        ];
        args.extend_from_slice(extra);
        let kw = KeywardProcess::start(bin(), &args, envs).await?;
        let admin = kw.client(&kw.admin_token()?);
        let reply = admin.http().get(admin.url("/v1/ca.pem")).send().await?;
        anyhow::ensure!(reply.status() == 200, "GET /v1/ca.pem: {}", reply.status());
        let ca_pem = reply.text().await?;
        anyhow::ensure!(ca_pem.contains("BEGIN CERTIFICATE"), "ca.pem: {ca_pem}");
        std::fs::write(files.path().join("keyward-ca.pem"), &ca_pem)?;
        let gw = Gateway {
            kw,
            admin,
            openai,
            anthropic,
        };
        gw.bundle(
            "providers",
            json!({"OPENAI_API_KEY": CANARY_OPENAI, "ANTHROPIC_API_KEY": CANARY_ANTHROPIC}),
        )
        .await?;
        Ok(Self { gw, files, ca_pem })
    }

    /// `127.0.0.1:PORT` of the data plane.
    pub fn proxy_addr(&self) -> String {
        self.kw
            .proxy_url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned()
    }

    /// keyward's CA as a file.
    pub fn ca_file(&self) -> PathBuf {
        self.files.path().join("keyward-ca.pem")
    }

    /// A file in the scratch dir.
    pub fn file(&self, name: &str) -> PathBuf {
        self.files.path().join(name)
    }

    /// A proxy-mode session on `providers` plus the fields of `extra`.
    pub async fn proxy_session(&self, extra: Value) -> anyhow::Result<Session> {
        let mut body = json!({"mode": "proxy", "secrets": ["providers"]});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        self.session(body).await
    }

    /// `keyward --data-dir DIR run ARGS -- CMD…` with a cleared environment (PATH and HOME
    /// kept) plus `envs`, as a command to spawn.
    pub fn run_command(
        &self,
        args: &[&str],
        cmd: &[&str],
        envs: &[(&str, &str)],
    ) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(bin());
        command
            .arg("--data-dir")
            .arg(self.kw.data_dir())
            .arg("run")
            .args(args)
            .arg("--")
            .args(cmd)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for key in ["PATH", "HOME"] {
            if let Some(v) = std::env::var_os(key) {
                command.env(key, v);
            }
        }
        command.envs(envs.iter().copied());
        command
    }

    /// Runs [`run_command`](Self::run_command) to the end.
    pub async fn run(
        &self,
        args: &[&str],
        cmd: &[&str],
        envs: &[(&str, &str)],
    ) -> anyhow::Result<RunOutput> {
        let out = tokio::time::timeout(RUN_TIMEOUT, self.run_command(args, cmd, envs).output())
            .await
            .context("keyward run did not finish in time")??;
        Ok(RunOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// The tenant's sessions, newest first.
    pub async fn sessions(&self) -> anyhow::Result<Vec<Value>> {
        let (status, body) = self.admin.get("/v1/sessions", None).await?;
        anyhow::ensure!(status == 200, "GET /v1/sessions: {status} {body}");
        Ok(body["sessions"].as_array().context("sessions")?.clone())
    }

    /// The id of the only session of the tenant (one `keyward run` on a fresh server).
    pub async fn only_session_id(&self) -> anyhow::Result<String> {
        let sessions = self.sessions().await?;
        anyhow::ensure!(sessions.len() == 1, "expected one session: {sessions:?}");
        let id = sessions[0]["session_id"]
            .as_str()
            .or_else(|| sessions[0]["id"].as_str())
            .context("session id")?;
        Ok(id.to_owned())
    }

    /// Waits until the session has a record whose `decision` is `decision`; returns it.
    pub async fn audited(&self, session: &str, decision: &str) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let records = self.audit(session, 0).await?;
            if let Some(found) = records.iter().find(|r| r["decision"] == decision) {
                return Ok(found.clone());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "no {decision} record for {session} after 10 s: {records:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The session's records once at least `n` of them have `decision` (records are written
    /// off the request path, a tunnel's only when it closes). Errors after 10 s.
    pub async fn audited_n(
        &self,
        session: &str,
        decision: &str,
        n: usize,
    ) -> anyhow::Result<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let records = self.audit(session, 0).await?;
            if records.iter().filter(|r| r["decision"] == decision).count() >= n {
                return Ok(records);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "fewer than {n} {decision} records for {session} after 10 s: {records:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Every audit record of the tenant, as text.
    pub async fn all_audit_text(&self) -> anyhow::Result<String> {
        let (status, body) = self.admin.get("/v1/audit?limit=1000", None).await?;
        anyhow::ensure!(status == 200, "GET /v1/audit: {status} {body}");
        Ok(body.to_string())
    }

    /// A reqwest client whose every request goes through the proxy with `token`, trusting
    /// keyward's CA only (so an intercepted host must present a keyward leaf).
    pub fn through(&self, token: &str) -> anyhow::Result<reqwest::Client> {
        let proxy = reqwest::Proxy::all(self.kw.proxy_url())?.basic_auth("kw", token);
        Ok(reqwest::Client::builder()
            .proxy(proxy)
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes())?)
            .timeout(Duration::from_secs(30))
            .build()?)
    }

    /// Panics if a canary (or `also`) occurs in keyward's logs, its data dir, any audit
    /// record of the tenant, or any of `texts` (client outputs, responses).
    pub async fn assert_canaries_nowhere(
        &self,
        also: &[&str],
        texts: &[&str],
    ) -> anyhow::Result<()> {
        let audit = self.all_audit_text().await?;
        let logs = self.kw.logs();
        let mut secrets = vec![CANARY_OPENAI, CANARY_ANTHROPIC];
        secrets.extend_from_slice(also);
        for secret in secrets {
            assert!(
                !logs.contains(secret),
                "keyward's logs hold {secret}:\n{logs}"
            );
            assert!(
                !audit.contains(secret),
                "the audit log holds {secret}: {audit}"
            );
            for text in texts {
                assert!(!text.contains(secret), "an output holds {secret}:\n{text}");
            }
            assert_absent_in_dir(self.kw.data_dir(), secret);
        }
        Ok(())
    }
}

fn write_pem(dir: &Path, name: &str, mock: &MockUpstream) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, mock.ca_pem().context("a TLS mock has a CA")?)?;
    Ok(path)
}

pub fn path_str(path: &Path) -> anyhow::Result<String> {
    path.to_str()
        .map(str::to_owned)
        .context("temp paths are UTF-8")
}

/// What `keyward run` (or a client) left behind.
#[derive(Debug)]
pub struct RunOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    /// Asserts exit code 0 and returns self.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "{self:#?}");
        self
    }

    /// Every line of stdout parsed as JSON (lines that are not JSON are an error).
    pub fn json_lines(&self) -> anyhow::Result<Vec<Value>> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).with_context(|| format!("not JSON: {l}\n{self:#?}")))
            .collect()
    }

    /// The last stdout line as JSON.
    pub fn last_json(&self) -> anyhow::Result<Value> {
        let last = self.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last).with_context(|| format!("no JSON line: {self:#?}"))
    }

    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `program args…` with exactly `envs` (plus PATH and HOME); for clients run directly,
/// not through `keyward run`.
pub async fn run_plain(
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> anyhow::Result<RunOutput> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for key in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd.envs(envs.iter().copied());
    let out = tokio::time::timeout(RUN_TIMEOUT, cmd.output())
        .await
        .with_context(|| format!("{program} did not finish in time"))??;
    Ok(RunOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Panics unless every request carries exactly `key` and nowhere a placeholder, the session
/// token, or any of `never`.
#[track_caller]
pub fn assert_only_real_key(requests: &[RecordedRequest], key: &str, never: &[&str]) {
    assert!(!requests.is_empty(), "the mock received nothing");
    for req in requests {
        assert_eq!(req.presented_key().as_deref(), Some(key), "{req:#?}");
        let mut text = req.path.clone();
        for (name, value) in &req.headers {
            text.push_str(&format!("\n{name}: {value}"));
        }
        text.push('\n');
        text.push_str(&req.body_text());
        for bad in never
            .iter()
            .chain(&["sk-proj-kw", "sk-ant-api03-kw", "kw_s_"])
        {
            assert!(!text.contains(bad), "upstream saw {bad:?}:\n{text}");
        }
    }
}

/// The Node.js `node_modules` with `openai` and `undici`: `KEYWARD_TEST_NODE_MODULES`, else
/// `tests/node/node_modules`. Panics (never skips) when missing.
pub fn node_modules() -> PathBuf {
    let dir = std::env::var_os("KEYWARD_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/node/node_modules")
        });
    assert!(
        dir.join("openai/package.json").exists() && dir.join("undici/package.json").exists(),
        "no Node clients in {}: run ./scripts/test (it runs `npm ci --prefix tests/node`) or \
         set KEYWARD_TEST_NODE_MODULES",
        dir.display()
    );
    dir
}

/// Sends a request and reads the whole answer.
pub async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<super::gateway::Reply> {
    let resp = request.send().await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await?.to_vec();
    Ok(super::gateway::Reply {
        status,
        headers,
        body,
    })
}

/// A TLS mock (no key required) and its CA as a file, for `--upstream-ca`.
pub async fn tls_mock() -> anyhow::Result<(MockUpstream, tempfile::NamedTempFile, String)> {
    let mock = MockUpstream::start(MockOptions {
        tls: true,
        ..MockOptions::default()
    })
    .await?;
    let file = tempfile::Builder::new().suffix(".pem").tempfile()?;
    std::fs::write(file.path(), mock.ca_pem().context("a TLS mock has a CA")?)?;
    let path = path_str(file.path())?;
    Ok((mock, file, path))
}

/// How many of `records` were `blocked:<code>`.
pub fn blocked(records: &[Value], code: &str) -> usize {
    let decision = format!("blocked:{code}");
    records.iter().filter(|r| r["decision"] == decision).count()
}

/// A plain-HTTP mock reached as `http://plain.test` and the `--resolve` flag naming it.
pub async fn plain_mock() -> anyhow::Result<(MockUpstream, String)> {
    let plain = MockUpstream::start(MockOptions::default()).await?;
    let flag = format!("plain.test:80=127.0.0.1:{}", plain.port());
    Ok((plain, flag))
}
