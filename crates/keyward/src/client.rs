//! The CLI's HTTP client for the control API: where the server is, which token to send, and
//! errors that keep the server's code and message.
//!
//! Discovery, so that commands run on the server's host need no flags:
//! - server URL: `--server`, else `api_url` of `DATA_DIR/server.json`, else [`DEFAULT_SERVER`];
//! - token: `--token`, else `$KEYWARD_TOKEN`, else `DATA_DIR/admin.token`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use reqwest::{Method, Url};
use serde_json::Value;

use crate::cli::GlobalArgs;
use crate::datadir::{self, ADMIN_TOKEN_FILE};

/// The control API's address when neither a flag nor `server.json` names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8420";
/// Environment variable holding an API token.
pub const TOKEN_ENV: &str = "KEYWARD_TOKEN";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the server URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerSource {
    /// `--server`.
    Flag,
    /// `DATA_DIR/server.json`, written by a running (or crashed) `keyward serve`.
    ServerFile,
    /// [`DEFAULT_SERVER`].
    Default,
}

/// The server URL and where it came from.
pub fn server_url(global: &GlobalArgs, dir: &Path) -> (String, ServerSource) {
    if let Some(url) = &global.server {
        return (url.clone(), ServerSource::Flag);
    }
    match datadir::read_server_info(dir) {
        Some(info) => (info.api_url, ServerSource::ServerFile),
        None => (DEFAULT_SERVER.to_owned(), ServerSource::Default),
    }
}

/// The API token: `--token`, `$KEYWARD_TOKEN`, or the data dir's `admin.token`.
pub fn token(global: &GlobalArgs, dir: &Path) -> anyhow::Result<String> {
    if let Some(token) = global.token.as_deref().filter(|t| !t.is_empty()) {
        return Ok(token.to_owned());
    }
    if let Some(token) = std::env::var_os(TOKEN_ENV).filter(|v| !v.is_empty()) {
        return token
            .into_string()
            .map_err(|_| anyhow::anyhow!("${TOKEN_ENV} is not valid text"));
    }
    let path = dir.join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Ok(_) => anyhow::bail!("{} is empty", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "no API token: pass --token, set ${TOKEN_ENV}, or point --data-dir at the data dir \
             of `keyward serve` (no {} there)",
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The data dir named by the global flags (or the environment).
pub fn data_dir(global: &GlobalArgs) -> anyhow::Result<PathBuf> {
    datadir::resolve(global.data_dir.as_deref())
}

/// A client for the server and token the global flags resolve to.
pub fn connect(global: &GlobalArgs) -> anyhow::Result<ApiClient> {
    let dir = data_dir(global)?;
    let (url, _) = server_url(global, &dir);
    let token = token(global, &dir)?;
    ApiClient::new(&url, token)
}

/// A failed call.
#[derive(Debug)]
pub enum ClientError {
    /// The server answered with an error.
    Api { code: String, message: String },
    /// Nothing listens at the URL.
    Unreachable { url: String },
    /// Any other transport failure (timeout, reset, bad answer).
    Transport { url: String, reason: String },
    /// A path segment the client refuses to send (empty, `.` or `..`).
    BadSegment,
}

impl ClientError {
    /// The server's error code, if the server answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Api { code, message, .. } => write!(f, "{message} ({code})"),
            ClientError::Unreachable { url } => {
                write!(
                    f,
                    "cannot reach keyward at {url}: is `keyward serve` running?"
                )
            }
            ClientError::Transport { url, reason } => {
                write!(f, "request to keyward at {url} failed: {reason}")
            }
            ClientError::BadSegment => {
                write!(f, "names must not be empty, `.` or `..` (invalid_name)")
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// JSON over HTTP to the control API, with `Authorization: Bearer <token>`.
pub struct ApiClient {
    base: Url,
    token: String,
    http: reqwest::Client,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base.as_str())
            .field("token", &"[REDACTED]")
            .finish()
    }
}

impl ApiClient {
    pub fn new(url: &str, token: String) -> anyhow::Result<Self> {
        let base = Url::parse(url).with_context(|| format!("invalid server URL {url}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            anyhow::bail!("invalid server URL {url}: expected http://HOST:PORT");
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT);
        // A proxy from the environment must not stand between the CLI and a local server.
        let host = base.host_str().unwrap_or_default();
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            builder = builder.no_proxy();
        }
        let http = builder.build().context("cannot build the HTTP client")?;
        Ok(Self { base, token, http })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    pub async fn get(&self, path: &[&str]) -> Result<Value, ClientError> {
        self.send(Method::GET, path, None).await
    }

    /// `GET` with query parameters (names and values percent-encoded here).
    pub async fn get_query(
        &self,
        path: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value, ClientError> {
        self.send_query(Method::GET, path, query, None).await
    }

    pub async fn post(&self, path: &[&str], body: &Value) -> Result<Value, ClientError> {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &[&str], body: &Value) -> Result<Value, ClientError> {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, path: &[&str], body: &Value) -> Result<Value, ClientError> {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &[&str]) -> Result<Value, ClientError> {
        self.send(Method::DELETE, path, None).await
    }

    /// `path` is a list of segments, each percent-encoded as needed.
    fn url(&self, path: &[&str]) -> Result<Url, ClientError> {
        if path.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
            return Err(ClientError::BadSegment);
        }
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ClientError::BadSegment)?
            .pop_if_empty()
            .extend(path);
        Ok(url)
    }

    async fn send(
        &self,
        method: Method,
        path: &[&str],
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        self.send_query(method, path, &[], body).await
    }

    async fn send_query(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let mut url = self.url(path)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status.is_success() {
            return json.ok_or_else(|| ClientError::Transport {
                url: self.base().to_owned(),
                reason: format!("the answer (HTTP {}) is not JSON", status.as_u16()),
            });
        }
        let error = json.as_ref().and_then(|v| v.get("error"));
        let text = |field: &str| {
            error
                .and_then(|e| e.get(field))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Err(ClientError::Api {
            code: text("code").unwrap_or_else(|| format!("http_{}", status.as_u16())),
            message: text("message")
                .unwrap_or_else(|| format!("the server answered HTTP {}", status.as_u16())),
        })
    }

    fn transport(&self, e: &reqwest::Error) -> ClientError {
        let url = self.base().to_owned();
        if e.is_connect() {
            return ClientError::Unreachable { url };
        }
        let reason = if e.is_timeout() {
            "no answer in time".to_owned()
        } else {
            // The reqwest error (it names the URL) and its causes.
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                reason.push_str(": ");
                reason.push_str(&cause.to_string());
                source = cause.source();
            }
            reason
        };
        ClientError::Transport { url, reason }
    }
}
