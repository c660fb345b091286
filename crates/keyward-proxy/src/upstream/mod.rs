//! Outbound calls: two pooled hyper clients over one rustls configuration. `trusted` serves
//! destinations the operator or keyward itself names (built-in providers, `--upstream`);
//! `guarded` serves destinations a tenant chose (`LLM_BASE_URL`, custom hosts) and refuses
//! private addresses at connect time unless `--allow-private-upstreams`.

pub mod connector;
pub mod ip;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

pub use connector::{ConnectError, Connector, ResolveMap};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ReqBody = BoxBody<Bytes, BoxError>;
pub type HttpClient = Client<Connector, ReqBody>;

#[derive(Clone)]
pub struct Upstreams {
    pub trusted: HttpClient,
    pub guarded: HttpClient,
}

impl Upstreams {
    pub fn new(
        tls: Arc<rustls::ClientConfig>,
        resolve: Arc<ResolveMap>,
        allow_private: bool,
        connect_timeout: Duration,
    ) -> Self {
        let build = |guard: bool| {
            let connector = Connector::new(tls.clone(), resolve.clone(), guard, connect_timeout);
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(512)
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .build(connector)
        };
        Self {
            trusted: build(false),
            guarded: build(!allow_private),
        }
    }
}
