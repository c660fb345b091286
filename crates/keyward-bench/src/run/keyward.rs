//! The keyward side: `keyward serve` on a fresh data dir, a bundle with a fake OpenAI key, and
//! a session whose token the load generator presents: a gateway one against the plain HTTP
//! upstream, or (proxy mode) a proxy one, with `api.openai.com:443` resolved to the mock's
//! HTTPS port and its CA trusted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use serde_json::json;

use super::procs::Proc;

/// The fake provider key every target injects (nginx and direct send it as such).
pub const FAKE_KEY: &str = "sk-proj-bench0000000000000000000000000000000000000000";

/// `DATA_DIR/server.json`, written by `keyward serve` once it listens.
#[derive(Deserialize)]
struct ServerInfo {
    pid: u32,
    api_url: String,
    proxy_url: String,
}

/// How keyward reaches the mock upstream, and which session mode it is loaded through.
pub enum Setup {
    /// `--upstream openai=http://ADDR`, a gateway session.
    Gateway(SocketAddr),
    /// `--resolve api.openai.com:443=ADDR --upstream-ca CA`, a proxy-mode session.
    Proxy { tls_addr: SocketAddr, ca: PathBuf },
}

/// A running keyward with a session to load it through.
pub struct Keyward {
    pub proc: Proc,
    pub api_url: String,
    pub proxy_url: String,
    pub session_id: String,
    pub session_token: String,
    /// The session's `env` (proxy mode: `OPENAI_API_KEY` is the placeholder).
    pub env: serde_json::Value,
    /// Keyward's CA (PEM), given to proxy-mode sessions.
    pub ca_pem: Option<String>,
    admin_token: String,
    http: reqwest::Client,
}

impl Keyward {
    /// Start `bin serve` on `dir/NAME-data` against the mock upstream, and create the session.
    pub async fn start(
        bin: &Path,
        dir: &Path,
        name: &'static str,
        setup: &Setup,
    ) -> anyhow::Result<Self> {
        let data = dir.join(format!("{name}-data"));
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg("--data-dir").arg(&data);
        match setup {
            Setup::Gateway(upstream) => {
                cmd.arg("--upstream")
                    .arg(format!("openai=http://{upstream}"));
            }
            Setup::Proxy { tls_addr, ca } => {
                cmd.arg("--resolve")
                    .arg(format!("{}:443={tls_addr}", crate::upstream::TLS_HOST))
                    .arg("--upstream-ca")
                    .arg(ca);
            }
        }
        cmd.args([
            "--api-listen",
            "127.0.0.1:0",
            "--proxy-listen",
            "127.0.0.1:0",
        ])
        // Keep the master key on disk in the temp dir, whatever the caller's env says.
        .env_remove("KEYWARD_MASTER_KEY");
        let mut proc = Proc::spawn(name, cmd, &dir.join(format!("{name}.log")))?;
        let pid = proc.pid();
        let server_file = data.join("server.json");
        let info = proc
            .wait_for("server.json", Duration::from_secs(60), || {
                let text = std::fs::read(&server_file).ok()?;
                let info: ServerInfo = serde_json::from_slice(&text).ok()?;
                (info.pid == pid).then_some(info)
            })
            .await?;
        let token_file = data.join("admin.token");
        let admin_token = std::fs::read_to_string(&token_file)
            .with_context(|| format!("cannot read {}", token_file.display()))?
            .trim()
            .to_owned();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()?;
        let mut keyward = Keyward {
            proc,
            api_url: info.api_url,
            proxy_url: info.proxy_url,
            session_id: String::new(),
            session_token: String::new(),
            env: serde_json::Value::Null,
            ca_pem: None,
            admin_token,
            http,
        };
        let mode = match setup {
            Setup::Gateway(_) => "gateway",
            Setup::Proxy { .. } => "proxy",
        };
        keyward.create_session(mode).await?;
        Ok(keyward)
    }

    async fn create_session(&mut self, mode: &str) -> anyhow::Result<()> {
        let secrets = format!("{}/v1/tenants/me/secrets", self.api_url);
        let bundle = json!({"name": "bench", "values": {"OPENAI_API_KEY": FAKE_KEY}});
        self.call(reqwest::Method::POST, &secrets, &bundle).await?;
        let sessions = format!("{}/v1/sessions", self.api_url);
        let created = self
            .call(
                reqwest::Method::POST,
                &sessions,
                &json!({"secrets": ["bench"], "mode": mode}),
            )
            .await?;
        let field = |name: &str| {
            created[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("POST /v1/sessions answered without {name}: {created}"))
        };
        self.session_token = field("session_token")?;
        self.session_id = field("session_id")?;
        self.env = created["env"].clone();
        self.ca_pem = created["ca_pem"].as_str().map(str::to_owned);
        Ok(())
    }

    /// Configure generous limits on the session (checked on every call, never reached).
    /// `Ok(false)`: the endpoint does not exist (404).
    pub async fn set_limits(&self, body: &serde_json::Value) -> anyhow::Result<bool> {
        let url = format!("{}/v1/limits/session/{}", self.api_url, self.session_id);
        let response = self
            .http
            .put(&url)
            .bearer_auth(&self.admin_token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(false);
        }
        let text = response.text().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "PUT {url} answered {status}: {text}");
        Ok(true)
    }

    /// A control-API call that must succeed; returns the JSON answer.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let response = self
            .http
            .request(method.clone(), url)
            .bearer_auth(&self.admin_token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        anyhow::ensure!(
            status.is_success(),
            "{method} {url} answered {status}: {text}"
        );
        serde_json::from_str(&text).with_context(|| format!("{method} {url}: not JSON: {text}"))
    }
}

/// The keyward binary: the flag, else next to this one (target/release), else `$PATH`.
pub fn find_bin(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = flag {
        anyhow::ensure!(path.is_file(), "--keyward-bin {} not found", path.display());
        return Ok(path);
    }
    let sibling = std::env::current_exe()?.with_file_name("keyward");
    if sibling.is_file() {
        return Ok(sibling);
    }
    super::procs::find_in_path("keyward").context(
        "keyward binary not found: build it (cargo build --release -p keyward) or pass --keyward-bin",
    )
}
