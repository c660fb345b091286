//! Helpers shared by the integration test modules.

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::Context as _;
use keyward_testkit::{ApiClient, ApiResponse, KeywardProcess};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The `keyward` binary cargo built for this test run.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_keyward"))
}

// ---------------------------------------------------------------------------------------------
// Control-API helpers (secrets, tenants, durability, tampering, canary, startup modules).

/// The seed 001 collection path.
pub const SECRETS: &str = "/v1/tenants/me/secrets";

/// `/v1/tenants/me/secrets/{name}`.
pub fn bundle_path(name: &str) -> String {
    format!("{SECRETS}/{name}")
}

/// A fresh `keyward serve` on a temp data dir, and a client holding its operator token.
pub async fn start_server() -> anyhow::Result<(KeywardProcess, ApiClient)> {
    start_server_with(&[]).await
}

/// [`start_server`] with extra environment variables for the child.
pub async fn start_server_with(
    envs: &[(&str, &str)],
) -> anyhow::Result<(KeywardProcess, ApiClient)> {
    let kw = KeywardProcess::start(bin(), &[], envs).await?;
    let admin = kw.client(&kw.admin_token()?);
    Ok((kw, admin))
}

/// Seed 001's cap on one value: 64 KiB.
pub const KIB64: usize = 64 * 1024;

/// `n` keys split between secrets (`S_i`) and variables (`V_i`), counted together by the cap.
pub fn split_keys(n: usize) -> (Value, Value) {
    let mut values = serde_json::Map::new();
    let mut variables = serde_json::Map::new();
    for i in 0..n {
        if i % 2 == 0 {
            values.insert(format!("S_{i}"), Value::from("s"));
        } else {
            variables.insert(format!("V_{i}"), Value::from("v"));
        }
    }
    (Value::Object(values), Value::Object(variables))
}

/// Creates tenant `name` with the operator client; returns a client holding its first token.
pub async fn new_tenant(
    kw: &KeywardProcess,
    admin: &ApiClient,
    name: &str,
) -> anyhow::Result<ApiClient> {
    Ok(kw.client(&new_tenant_token(admin, name).await?))
}

/// Creates tenant `name` with the operator client; returns its first token.
pub async fn new_tenant_token(admin: &ApiClient, name: &str) -> anyhow::Result<String> {
    let (status, body) = admin
        .post("/v1/tenants", Some(serde_json::json!({ "name": name })))
        .await?;
    anyhow::ensure!(status == 201, "creating tenant {name}: {status} {body}");
    anyhow::ensure!(body["name"] == name, "tenant name echoed: {body}");
    let token = body["token"].as_str().context("tenant token")?;
    anyhow::ensure!(token.starts_with("kw_t_"), "tenant token shape: {token}");
    Ok(token.to_owned())
}

/// Sends raw bytes as the body (for malformed JSON), with the client's token.
pub async fn send_raw(
    client: &ApiClient,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: &[u8],
) -> anyhow::Result<ApiResponse> {
    let mut req = client
        .http()
        .request(method, client.url(path))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await?;
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(ApiResponse {
        status,
        headers,
        text,
        json,
    })
}

/// Asserts an error answer: exact status, exact stable code, a non-empty message, nothing else.
#[track_caller]
pub fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "status; body: {body}");
    assert_eq!(body["error"]["code"], want_code, "error code; body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error message; body: {body}"
    );
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "envelope: {body}"
    );
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z`: RFC 3339 in UTC with the `Z` suffix.
pub fn is_utc_rfc3339(text: &str) -> bool {
    text.ends_with('Z')
        && text.len() >= 20
        && text.as_bytes()[10] == b'T'
        && chrono::DateTime::parse_from_rfc3339(text)
            .is_ok_and(|t| t.offset().local_minus_utc() == 0)
}

/// The bundles of a tenant, as the list endpoint returns them (asserting 200).
pub async fn list_bundles(client: &ApiClient) -> anyhow::Result<Vec<Value>> {
    let (status, body) = client.get(SECRETS, None).await?;
    anyhow::ensure!(status == 200, "list: {status} {body}");
    let list = body["bundles"].as_array().context("bundles array")?;
    Ok(list.clone())
}

/// Runs `keyward serve` on `data_dir` expecting it to exit by itself (refusing to start);
/// returns its exit status and stdout+stderr. Errors if it is still running after 20 s.
pub async fn run_until_exit(
    data_dir: &std::path::Path,
    envs: &[(&str, &str)],
) -> anyhow::Result<(ExitStatus, String)> {
    let mut cmd = tokio::process::Command::new(bin());
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "--api-listen",
            "127.0.0.1:0",
            "--proxy-listen",
            "127.0.0.1:0",
        ])
        .env_clear()
        .envs(envs.iter().copied())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .context("keyward serve kept running; it should have refused to start")??;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status, text))
}

/// The data dir's SQLite database, opened directly (the server must be stopped).
pub async fn open_db(data_dir: &std::path::Path) -> anyhow::Result<sqlx::SqlitePool> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(data_dir.join("keyward.db"))
        .create_if_missing(false);
    Ok(sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?)
}

/// A valid master key (base64 of 32 bytes) that no server generated.
pub fn foreign_master_key(seed: u8) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(31).wrapping_add(seed))
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Helpers of the data-plane (`gateway*`) modules.
pub mod gateway;
/// Helpers of the proxy-mode (`proxy_*`, `keyward_run`) modules.
pub mod proxy;
/// Hand-written CONNECT and absolute-form requests to the data plane.
pub mod raw_proxy;
