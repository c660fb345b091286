//! [`MockUpstream`]: a fake LLM provider (OpenAI / Anthropic shapes) on `127.0.0.1:0`.
//!
//! Plain HTTP or HTTPS with a per-instance test CA, HTTP/1.1 and HTTP/2 (ALPN, or prior
//! knowledge on plain), every request recorded, misbehaviours switchable at runtime.

mod body;
mod responses;
mod server;
mod tls;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use responses::{echo_variants, ASSISTANT_DELTAS, ASSISTANT_TEXT};
pub use tls::LEAF_DNS_NAMES;

/// Start-up options of a [`MockUpstream`].
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Serve HTTPS with a fresh test CA (see [`MockUpstream::ca_pem`]).
    pub tls: bool,
    /// `prompt_tokens` / `input_tokens` reported in usage (default 11).
    pub prompt_tokens: u64,
    /// `completion_tokens` / `output_tokens` reported in usage (default 7).
    pub completion_tokens: u64,
    /// When set, requests must carry this key (`Authorization: Bearer K`, `x-api-key: K` or
    /// `x-goog-api-key: K`), else 401 `{"error": "mock: wrong key"}`.
    pub require_key: Option<String>,
    /// Pause between SSE events of streamed responses (default 5 ms), so they arrive as
    /// separate reads.
    pub chunk_delay: Duration,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            tls: false,
            prompt_tokens: 11,
            completion_tokens: 7,
            require_key: None,
            chunk_delay: Duration::from_millis(5),
        }
    }
}

/// How the mock answers; switch with [`MockUpstream::set_behavior`] between calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Behavior {
    /// Provider-shaped success responses.
    #[default]
    Normal,
    /// 401 whose JSON body echoes the received credential (the header value verbatim under
    /// `error.received`, the key inside `error.message`, plus the [`echo_variants`] as
    /// `error.key_<variant>`), and the header value again in response header `x-echo`.
    EchoAuth,
    /// 200 SSE stream echoing the key in a content delta, split across two body frames
    /// with a 20 ms pause between them.
    EchoAuthStreamSplit,
    /// Sleep before sending the response headers, then answer normally.
    Delay { first_byte: Duration },
    /// Send the first body chunk (first SSE event, or first half of a JSON body), then
    /// stall for `stall`, then send the rest.
    StallAfterFirstChunk { stall: Duration },
    /// Send one or two chunks (first half of a JSON body), then abort the body: the
    /// connection is dropped (HTTP/1.1) or the stream reset (HTTP/2). No terminating chunk.
    ResetMidStream,
    /// Answer this status with a JSON error body.
    Status(u16),
}

/// One request as the mock received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path with query, e.g. `/v1/chat/completions?x=1`.
    pub path: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Header names lowercase, in received order, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as (lossy) UTF-8.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The presented key: `Authorization` without `Bearer `, else `x-api-key`, else
    /// `x-goog-api-key`.
    pub fn presented_key(&self) -> Option<String> {
        self.credential().map(|(_, _, key)| key)
    }

    /// (header name, raw header value, key) of the first credential header present.
    fn credential(&self) -> Option<(String, String, String)> {
        for name in ["authorization", "x-api-key", "x-goog-api-key"] {
            if let Some(value) = self.header(name) {
                let key = if name == "authorization" {
                    strip_bearer(value).unwrap_or(value)
                } else {
                    value
                };
                return Some((name.to_owned(), value.to_owned(), key.to_owned()));
            }
        }
        None
    }

    fn carries_key(&self, expected: &str) -> bool {
        let bearer = self
            .header("authorization")
            .and_then(strip_bearer)
            .is_some_and(|k| k == expected);
        bearer
            || self.header("x-api-key") == Some(expected)
            || self.header("x-goog-api-key") == Some(expected)
    }
}

fn strip_bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(rest)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Shared {
    behavior: Mutex<Behavior>,
    requests: Mutex<Vec<RecordedRequest>>,
    expected_key: Mutex<Option<String>>,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    chunk_delay: Duration,
}

/// A running mock provider. Dropping it stops accepting and aborts open connections.
pub struct MockUpstream {
    addr: SocketAddr,
    ca_pem: Option<String>,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl MockUpstream {
    /// Binds `127.0.0.1:0` and starts serving (must run inside a tokio runtime).
    pub async fn start(opts: MockOptions) -> anyhow::Result<MockUpstream> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("binding mock upstream")?;
        let addr = listener.local_addr()?;
        let (ca_pem, acceptor) = if opts.tls {
            let pki = tls::mint()?;
            (Some(pki.ca_pem), Some(TlsAcceptor::from(pki.server_config)))
        } else {
            (None, None)
        };
        let shared = Arc::new(Shared {
            behavior: Mutex::new(Behavior::Normal),
            requests: Mutex::new(Vec::new()),
            expected_key: Mutex::new(opts.require_key),
            prompt_tokens: AtomicU64::new(opts.prompt_tokens),
            completion_tokens: AtomicU64::new(opts.completion_tokens),
            chunk_delay: opts.chunk_delay,
        });
        let accept_task = tokio::spawn(server::accept_loop(listener, acceptor, shared.clone()));
        Ok(MockUpstream {
            addr,
            ca_pem,
            shared,
            accept_task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn is_tls(&self) -> bool {
        self.ca_pem.is_some()
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// PEM of the test CA that signed the leaf (TLS mode only).
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    pub fn set_behavior(&self, behavior: Behavior) {
        *lock(&self.shared.behavior) = behavior;
    }

    pub fn behavior(&self) -> Behavior {
        *lock(&self.shared.behavior)
    }

    /// Sets (or clears) the key every request must carry; see [`MockOptions::require_key`].
    pub fn set_expected_key(&self, key: Option<&str>) {
        *lock(&self.shared.expected_key) = key.map(str::to_owned);
    }

    /// Changes the token counts reported in usage.
    pub fn set_usage(&self, prompt_tokens: u64, completion_tokens: u64) {
        self.shared
            .prompt_tokens
            .store(prompt_tokens, Ordering::SeqCst);
        self.shared
            .completion_tokens
            .store(completion_tokens, Ordering::SeqCst);
    }

    /// All requests received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.shared.requests).last().cloned()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Waits (polling every 10 ms) until at least `n` requests were recorded; false on timeout.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.request_count() < n {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl std::fmt::Debug for MockUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockUpstream")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}
