//! Routes of the control API, one module per resource.

mod admin;
mod agents;
mod audit;
mod health;
mod limits;
mod secrets;
mod session_auth;
mod session_events;
mod sessions;
mod tenants;
mod usage;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use keyward_core::ErrorCode;

use crate::{ApiError, AppState};

pub use admin::__path_rotate_master_key;
pub use agents::{
    __path_agent_sessions, __path_attach_bundle, __path_create_agent, __path_delete_agent,
    __path_detach_bundle, __path_get_agent, __path_list_agents, __path_rotate_agent_token,
};
pub use audit::{__path_list_audit, __path_verify_audit};
pub use health::{__path_ca_pem, __path_healthz, __path_openapi_json, __path_readyz};
pub use limits::{__path_clear_limits, __path_get_limits, __path_put_limits};
pub use secrets::{
    __path_create_bundle, __path_delete_bundle, __path_get_bundle, __path_list_bundles,
    __path_patch_bundle, __path_replace_bundle,
};
pub use session_events::__path_session_events;
pub use sessions::{
    __path_create_session, __path_end_session, __path_get_session, __path_list_sessions,
    __path_resume_session, __path_revoke_session, __path_session_env,
};
pub use tenants::{__path_create_tenant, __path_create_token, __path_revoke_token, __path_whoami};
pub use usage::__path_usage;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(health::routes())
        .merge(tenants::routes())
        .merge(secrets::routes())
        .merge(sessions::routes())
        .merge(agents::routes())
        .merge(admin::routes())
        .merge(audit::routes())
        .merge(limits::routes())
        .merge(usage::routes())
}

pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

pub async fn method_not_allowed() -> Response {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not accept that method",
    )
    .into_response()
}

/// One log line per request: method, route template (never the raw URL), status, duration.
pub async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        target: "keyward::api",
        %method,
        route,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}
