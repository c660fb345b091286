//! [`ApiClient`]: a tiny JSON client for keyward's management API.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A full response: status, headers, raw text and the text parsed as JSON.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON, or `Value::Null` if it is empty or not JSON.
    pub json: Value,
}

/// JSON client bound to a base URL, sending `Authorization: Bearer <token>` when it has one.
/// Ignores proxy environment variables; 30 s timeout per request.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl ApiClient {
    /// `base` like `http://127.0.0.1:PORT` (a trailing slash is dropped).
    pub fn new(base: &str, token: Option<&str>) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.map(str::to_owned),
            http,
        }
    }

    /// The same client with another token (or none).
    pub fn with_token(&self, token: Option<&str>) -> Self {
        Self {
            token: token.map(str::to_owned),
            ..self.clone()
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The underlying reqwest client, for requests this wrapper does not cover.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `base + path` (`path` should start with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends `method path` with an optional JSON body; transport errors are `Err`,
    /// any HTTP status is `Ok`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<ApiResponse> {
        let mut req = self.http.request(method.clone(), self.url(path));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{method} {path}: {e}"))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp
            .text()
            .await
            .map_err(|e| anyhow::anyhow!("{method} {path}: reading body: {e}"))?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(ApiResponse {
            status,
            headers,
            text,
            json,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let r = self.send(method, path, body).await?;
        Ok((r.status, r.json))
    }

    pub async fn get(
        &self,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.call(Method::GET, path, body).await
    }

    pub async fn post(
        &self,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.call(Method::POST, path, body).await
    }

    pub async fn put(
        &self,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.call(Method::PUT, path, body).await
    }

    pub async fn patch(
        &self,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.call(Method::PATCH, path, body).await
    }

    pub async fn delete(
        &self,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.call(Method::DELETE, path, body).await
    }
}
