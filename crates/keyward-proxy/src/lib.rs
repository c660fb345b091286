//! The keyward data plane. Agents call it with a session token instead of a provider key; it
//! adds the real credential and forwards. One request runs this pipeline (one module each):
//!
//! ```text
//! server      accept, HTTP/1.1 + HTTP/2, graceful shutdown
//! gateway     route → authenticate (session) → pick credential → reserve audit slot
//! rewrite     model override, include_usage
//! upstream    resolve → private-address guard → dial → TLS (pooled)
//! body        stream back: meter (usage) + redact (secrets) + idle timeout
//! call        one audit record per call, whatever the outcome
//! ```

pub mod body;
pub mod call;
pub mod config;
pub mod error;
pub mod forward_proxy;
pub mod gateway;
pub mod intercept;
pub mod meter;
pub mod metrics;
pub mod mint;
pub mod redact;
pub mod rewrite;
pub mod route;
pub mod server;
pub mod session;
pub mod upstream;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use keyward_audit::AuditWriter;
use keyward_vault::Vault;

pub use config::{ProxyConfig, ProxyConfigError};
pub use metrics::Metrics;
use session::SessionCache;
use upstream::{BoxError, Upstreams};

/// The body type of every response the data plane sends.
pub type ResBody = BoxBody<Bytes, BoxError>;

/// Everything a request needs, shared by all connections.
pub struct DataPlane {
    pub config: ProxyConfig,
    pub sessions: SessionCache,
    pub upstreams: Upstreams,
    pub audit: AuditWriter,
    pub metrics: Arc<Metrics>,
    /// keyward's CA, for proxy-mode interception (absent: CONNECT only tunnels).
    pub minter: Option<Arc<mint::Minter>>,
    pub tls_server: Option<Arc<rustls::ServerConfig>>,
}

impl DataPlane {
    pub fn new(
        config: ProxyConfig,
        vault: Vault,
        audit: AuditWriter,
        metrics: Arc<Metrics>,
        minter: Option<Arc<mint::Minter>>,
    ) -> Result<Arc<Self>, ProxyConfigError> {
        let tls = upstream::tls::client_config(&config.upstream_cas)?;
        let upstreams = Upstreams::new(
            tls,
            Arc::new(config.resolve.clone()),
            config.allow_private_upstreams,
            config.connect_timeout,
        );
        let tls_server = minter.clone().map(mint::server_config);
        Ok(Arc::new(Self {
            minter,
            tls_server,
            sessions: SessionCache::new(vault),
            upstreams,
            audit,
            metrics,
            config,
        }))
    }

    /// A provider's base URL: the operator's `--upstream` override, else the built-in one.
    pub fn base_url(&self, route: &str, default: &str) -> String {
        self.config
            .upstream_overrides
            .get(route)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }
}
