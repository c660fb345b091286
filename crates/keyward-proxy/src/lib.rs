//! The keyward data plane. Agents call it with a session token instead of a provider key; it
//! adds the real credential and forwards. One request runs this pipeline (one module each):
//!
//! ```text
//! server      accept, HTTP/1.1 + HTTP/2, graceful shutdown
//! gateway     route → authenticate (session) → pick credential → reserve audit slot
//! rewrite     model override, include_usage
//! upstream    resolve → private-address guard → dial → TLS (pooled)
//! body        stream back: meter (usage) + redact (secrets) + idle timeout
//! limits      admit: free tier, rate limits, budgets (before forwarding; see `limits`)
//! call        one audit record per call, whatever the outcome; accounting settles the bill
//! ```
//!
//! [`static_mode`] runs the same pipeline from a config file, with no vault behind it.

pub mod accounting;
pub mod body;
pub mod call;
pub mod config;
pub mod config_file;
pub mod error;
pub mod forward_proxy;
pub mod free_tier;
pub mod gateway;
pub mod intercept;
pub mod limits;
pub mod meter;
pub mod metrics;
pub mod mint;
pub mod prices;
pub mod redact;
pub mod rewrite;
pub mod route;
pub mod server;
pub mod session;
pub mod static_mode;
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
    /// Rate limits and budgets (see [`limits`]).
    pub limiter: limits::Limiter,
}

impl DataPlane {
    pub fn new(
        config: ProxyConfig,
        vault: Vault,
        audit: AuditWriter,
        metrics: Arc<Metrics>,
        minter: Option<Arc<mint::Minter>>,
    ) -> Result<Arc<Self>, ProxyConfigError> {
        Self::build(config, SessionCache::new(vault), audit, metrics, minter)
    }

    /// A data plane with no vault (static config mode): no session token is valid, and the
    /// caller hands [`gateway::forward`] the targets it builds itself.
    pub fn without_vault(
        config: ProxyConfig,
        audit: AuditWriter,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, ProxyConfigError> {
        Self::build(config, SessionCache::without_vault(), audit, metrics, None)
    }

    fn build(
        config: ProxyConfig,
        sessions: SessionCache,
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
        let store = sessions.vault().map(|v| v.store().clone());
        Ok(Arc::new(Self {
            limiter: limits::Limiter::new(store),
            minter,
            tls_server,
            sessions,
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
