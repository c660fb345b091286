//! Static config mode (`keyward serve --config keyward.yaml`): the data plane run from one
//! file, for one developer or a sidecar — no database, no tenants, no control API. The file
//! declares listeners, each with routes (a path prefix → a provider, a key, who may call);
//! calls go through the server mode's own pipeline ([`crate::gateway::forward`]), so
//! streaming, metering, redaction and audit (to a JSON-lines file) behave the same.
//!
//! ```text
//! model     the file's shape; per-node rules, so errors name the line
//! parse     YAML or TOML by extension; messages with quoted values masked
//! keys      a route's key: inline, $ENV, file: (re-read when the file changes), passthrough
//! snapshot  a whole loaded config: listeners, routes sorted longest prefix first
//! reload    poll the file; apply a valid change, log and keep the old one otherwise
//! handler   one request: route → client allow-list → key → gateway::forward
//! ```

mod error;
mod handler;
mod keys;
mod model;

/// `$NAME` / `${NAME}` references, shared with the free tier's `key:`.
pub(crate) use model::env_reference;
mod parse;
mod reload;
mod snapshot;

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use error::StaticConfigError;
pub use keys::TENANT;
pub use reload::POLL;
pub use snapshot::{Snapshot, DEFAULT_AUDIT_FILE};

use crate::DataPlane;

/// The running static data plane: the shared pipeline and the current config.
pub struct StaticPlane {
    /// Built with [`DataPlane::without_vault`]: upstream clients, audit writer, metrics.
    pub data: Arc<DataPlane>,
    current: ArcSwap<Snapshot>,
    passthrough: Arc<keys::Loaded>,
}

impl StaticPlane {
    pub fn new(data: Arc<DataPlane>, snapshot: Snapshot) -> Arc<Self> {
        Arc::new(Self {
            data,
            current: ArcSwap::from_pointee(snapshot),
            passthrough: Arc::new(keys::passthrough()),
        })
    }

    /// The config new requests use.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    fn replace(&self, next: Snapshot) {
        self.current.store(Arc::new(next));
    }

    /// Serve the `index`th listener of the config until `stop` turns true.
    pub async fn serve(
        self: Arc<Self>,
        index: usize,
        listener: TcpListener,
        stop: watch::Receiver<bool>,
    ) {
        crate::server::serve_with(listener, stop, move |req| {
            handler::handle(self.clone(), index, req)
        })
        .await;
    }

    /// Watch the config file at `path` and apply valid changes until `stop` turns true.
    pub async fn watch(self: Arc<Self>, path: PathBuf, stop: watch::Receiver<bool>) {
        reload::watch(self, path, stop).await;
    }
}
