//! The keyward control API: JSON over HTTP, thin axum handlers over [`keyward_vault::Vault`].
//! [`router`] builds the whole app from its state, so tests drive it in-process or over a
//! real socket alike. Every error is `{"error": {"code", "message"}}` with a stable code.

mod agent_views;
mod error;
mod extract;
mod openapi;
mod routes;
mod session_views;
mod unique_map;
mod views;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;

pub use error::ApiError;
pub use openapi::ApiDoc;

/// Largest request body the API reads: a full bundle (50 × 64 KiB) plus JSON overhead.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Rotates the master key of the running server: writes the new key where the install keeps
/// it and re-wraps tenant keys. The binary provides it; it owns the data dir.
#[async_trait::async_trait]
pub trait MasterKeyRotator: Send + Sync {
    async fn rotate(&self) -> Result<(), RotateError>;
}

/// Why the master key was not rotated.
#[derive(Debug)]
pub enum RotateError {
    /// This install cannot rotate in place (the key comes from `KEYWARD_MASTER_KEY`).
    Unsupported(String),
    /// The rotation failed; the old key still opens everything.
    Failed(String),
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub vault: keyward_vault::Vault,
    pub master_key_rotator: Option<Arc<dyn MasterKeyRotator>>,
    /// The audit log's store (`GET /v1/audit`); `None` answers 503 on those routes.
    pub audit_store: Option<Arc<dyn keyward_store::AuditStore>>,
    /// Base URL agents reach the data plane at (`http://127.0.0.1:8421`, or the public URL
    /// behind a load balancer); session envs point SDKs at it.
    pub data_plane_url: String,
    /// keyward's CA certificate (PEM), which proxy-mode agents must trust.
    pub ca_pem: Option<String>,
    /// The provider of the operator's free tier, if any: keyless gateway sessions get that
    /// provider's SDK variables so they can use it.
    pub free_tier_provider: Option<keyward_core::providers::Provider>,
}

/// The whole control API.
pub fn router(state: AppState) -> Router {
    routes::routes()
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(routes::log_request))
        .with_state(state)
}
