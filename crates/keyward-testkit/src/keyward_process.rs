//! [`KeywardProcess`]: the real `keyward serve` binary as a child process.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::Value;
use tempfile::TempDir;

use crate::api_client::ApiClient;

/// How long [`KeywardProcess::start`] waits for `server.json`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`KeywardProcess::terminate`] waits after SIGTERM.
pub const TERM_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

/// A running `keyward serve`. Dropping it SIGKILLs the child; owned temp dirs are removed.
#[derive(Debug)]
pub struct KeywardProcess {
    bin: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    data_dir: PathBuf,
    owned_data_dir: Option<TempDir>,
    log_dir: TempDir,
    child: Option<Child>,
    pid: u32,
    api_url: String,
    proxy_url: String,
}

impl KeywardProcess {
    /// Runs `bin serve --data-dir DIR --api-listen 127.0.0.1:0 --proxy-listen 127.0.0.1:0
    /// <args>`, each default flag left out if `args` has it. DIR is a fresh temp dir unless
    /// `args` has `--data-dir`. Waits until `DIR/server.json` names the child's pid.
    pub async fn start(bin: &Path, args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<Self> {
        match flag_value(args, "--data-dir") {
            Some(dir) => Self::launch_new(bin, PathBuf::from(dir), None, args, envs).await,
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("keyward-data-")
                    .tempdir()
                    .context("creating data dir")?;
                Self::launch_new(bin, tmp.path().to_path_buf(), Some(tmp), args, envs).await
            }
        }
    }

    /// Like [`start`](Self::start) on an existing data dir that the caller owns.
    pub async fn start_in(
        bin: &Path,
        data_dir: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::launch_new(bin, data_dir.to_path_buf(), None, args, envs).await
    }

    async fn launch_new(
        bin: &Path,
        data_dir: PathBuf,
        owned_data_dir: Option<TempDir>,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let log_dir = tempfile::Builder::new()
            .prefix("keyward-logs-")
            .tempdir()
            .context("creating log dir")?;
        let mut me = Self {
            bin: bin.to_path_buf(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            data_dir,
            owned_data_dir,
            log_dir,
            child: None,
            pid: 0,
            api_url: String::new(),
            proxy_url: String::new(),
        };
        me.launch().await?;
        Ok(me)
    }

    fn command(&self) -> anyhow::Result<Command> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve");
        let has = |flag: &str| has_flag(&self.args, flag);
        if !has("--data-dir") {
            cmd.arg("--data-dir").arg(&self.data_dir);
        }
        if !has("--api-listen") {
            cmd.args(["--api-listen", "127.0.0.1:0"]);
        }
        if !has("--proxy-listen") {
            cmd.args(["--proxy-listen", "127.0.0.1:0"]);
        }
        cmd.args(&self.args);
        cmd.env_clear();
        for key in ["PATH", "HOME"] {
            if let Some(v) = std::env::var_os(key) {
                cmd.env(key, v);
            }
        }
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)));
        let open = |name: &str| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.log_dir.path().join(name))
                .with_context(|| format!("opening {name}"))
        };
        cmd.stdin(Stdio::null())
            .stdout(open("stdout.log")?)
            .stderr(open("stderr.log")?);
        Ok(cmd)
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        let child = self
            .command()?
            .spawn()
            .with_context(|| format!("spawning {}", self.bin.display()))?;
        self.pid = child.id();
        self.child = Some(child);
        let started = Instant::now();
        let server_json = self.data_dir.join("server.json");
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    bail!(
                        "keyward exited ({status}) before becoming ready; logs:\n{}",
                        self.logs()
                    );
                }
            }
            if let Some((api, proxy)) = read_server_json(&server_json, self.pid) {
                self.api_url = api;
                self.proxy_url = proxy;
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                let _ = self.kill9();
                bail!(
                    "keyward not ready after {READY_TIMEOUT:?} ({} has no pid {}); logs:\n{}",
                    server_json.display(),
                    self.pid,
                    self.logs()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `http://127.0.0.1:P` of the management API.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// `http://127.0.0.1:Q` of the agent-facing proxy.
    pub fn proxy_url(&self) -> &str {
        &self.proxy_url
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Directory holding `stdout.log` and `stderr.log` (outside the data dir).
    pub fn log_dir(&self) -> &Path {
        self.log_dir.path()
    }

    /// Pid of the current (or last) child.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Contents of `DATA_DIR/admin.token`, trimmed.
    pub fn admin_token(&self) -> anyhow::Result<String> {
        let path = self.data_dir.join("admin.token");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(text.trim().to_owned())
    }

    /// Everything the child(ren) wrote so far: stdout, then stderr (appended across restarts).
    pub fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.log_dir.path().join(name));
        format!(
            "{}{}",
            read("stdout.log").unwrap_or_default(),
            read("stderr.log").unwrap_or_default()
        )
    }

    /// True while the child has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_)) | Err(_)) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// SIGKILL and reap. Errors if there is no child.
    pub fn kill9(&mut self) -> anyhow::Result<ExitStatus> {
        let mut child = self.child.take().context("keyward is not running")?;
        let _ = child.kill(); // Err only if it already exited; wait() below reaps it either way.
        child.wait().context("waiting for keyward")
    }

    /// SIGTERM, then wait up to [`TERM_TIMEOUT`] for exit; on timeout SIGKILL and error.
    pub async fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        self.terminate_within(TERM_TIMEOUT).await
    }

    /// [`terminate`](Self::terminate) with a custom timeout.
    pub async fn terminate_within(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let Some(child) = self.child.as_mut() else {
            bail!("keyward is not running");
        };
        if let Some(status) = child.try_wait()? {
            self.child = None;
            return Ok(status);
        }
        let status = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .context("running kill -TERM")?;
        if !status.success() {
            bail!("kill -TERM {} failed: {status}", self.pid);
        }
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    return Ok(status);
                }
            }
            if started.elapsed() > timeout {
                let _ = self.kill9();
                bail!(
                    "keyward did not exit within {timeout:?} of SIGTERM; logs:\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts again on the same data dir with the same args and envs (a still-running
    /// child is first stopped with [`terminate`](Self::terminate)). URLs and pid change.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            self.terminate().await?;
        }
        self.launch().await
    }

    /// API client for [`api_url`](Self::api_url) with `Authorization: Bearer token`.
    pub fn client(&self, token: &str) -> ApiClient {
        ApiClient::new(&self.api_url, Some(token))
    }

    /// API client for [`api_url`](Self::api_url) without credentials.
    pub fn anon_client(&self) -> ApiClient {
        ApiClient::new(&self.api_url, None)
    }

    /// Keeps the data dir on disk after drop (returns its path); for debugging failures.
    pub fn keep_data_dir(&mut self) -> PathBuf {
        if let Some(tmp) = self.owned_data_dir.take() {
            return tmp.keep();
        }
        self.data_dir.clone()
    }
}

impl Drop for KeywardProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// (api_url, proxy_url) once `server.json` is complete and names `pid`.
fn read_server_json(path: &Path, pid: u32) -> Option<(String, String)> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    if v.get("pid")?.as_u64()? != u64::from(pid) {
        return None;
    }
    let api = v.get("api_url")?.as_str()?.to_owned();
    let proxy = v.get("proxy_url")?.as_str()?.to_owned();
    Some((api, proxy))
}

fn flag_value<'a>(args: &[&'a str], flag: &str) -> Option<&'a str> {
    let prefix = format!("{flag}=");
    args.iter().enumerate().find_map(|(i, a)| {
        if *a == flag {
            args.get(i + 1).copied()
        } else {
            a.strip_prefix(prefix.as_str())
        }
    })
}

fn has_flag(args: &[String], flag: &str) -> bool {
    let prefix = format!("{flag}=");
    args.iter().any(|a| a == flag || a.starts_with(&prefix))
}
