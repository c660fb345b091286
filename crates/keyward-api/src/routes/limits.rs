//! Limits on the caller's tenant, one of its agents or one of its sessions:
//! `PUT|GET|DELETE /v1/limits/{tenant|agent|session}/{name}` (for the tenant the name is
//! `me`). The data plane enforces them from the very next call.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use keyward_core::ErrorCode;
use keyward_store::{LimitScope, Limits};
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::{Auth, JsonBody};
use crate::views::{ErrorEnvelope, StatusView};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/v1/limits/{scope}/{name}",
        get(get_limits).put(put_limits).delete(clear_limits),
    )
}

/// The limits of one scope. Every field is optional; an absent field is no limit. Zero
/// refuses every call.
#[derive(Serialize, ToSchema)]
pub struct LimitsView {
    /// Calls per 60-second window.
    pub requests_per_minute: Option<u64>,
    /// Input + output tokens per 60-second window (a call reserves its estimate: body bytes
    /// / 4 + `max_tokens`, then is charged what it used).
    pub tokens_per_minute: Option<u64>,
    /// Calls in flight at once.
    pub concurrent_requests: Option<u64>,
    /// USD per UTC day, priced from the price table.
    pub budget_usd_per_day: Option<f64>,
    /// USD per UTC calendar month.
    pub budget_usd_per_month: Option<f64>,
}

fn scope(raw: &str) -> Result<LimitScope, ApiError> {
    LimitScope::parse(raw).ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "no such limit scope: use /v1/limits/tenant/me, /v1/limits/agent/{name} or \
             /v1/limits/session/{id}",
        )
    })
}

/// Set (replace) the limits of a scope.
#[utoipa::path(put, path = "/v1/limits/{scope}/{name}", tag = "limits",
    security(("bearer" = [])),
    params(("scope" = String, Path, description = "tenant, agent or session"),
           ("name" = String, Path, description = "me, an agent name or a session id")),
    request_body = LimitsView,
    responses(
        (status = 200, body = LimitsView, description = "the limits as stored"),
        (status = 400, body = ErrorEnvelope, description = "unknown field, negative or non-integer count, budget outside 0–1,000,000 USD"),
        (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope, description = "no such agent or session in this tenant")))]
pub async fn put_limits(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((raw_scope, name)): Path<(String, String)>,
    JsonBody(limits): JsonBody<Limits>,
) -> Result<Json<Limits>, ApiError> {
    let scope = scope(&raw_scope)?;
    let stored = state
        .vault
        .put_limits(principal.tenant, scope, &name, limits)
        .await?;
    Ok(Json(stored))
}

/// The limits of a scope (`{}` when none are set).
#[utoipa::path(get, path = "/v1/limits/{scope}/{name}", tag = "limits",
    security(("bearer" = [])),
    params(("scope" = String, Path), ("name" = String, Path)),
    responses(
        (status = 200, body = LimitsView),
        (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub async fn get_limits(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((raw_scope, name)): Path<(String, String)>,
) -> Result<Json<Limits>, ApiError> {
    let scope = scope(&raw_scope)?;
    let limits = state.vault.limits(principal.tenant, scope, &name).await?;
    Ok(Json(limits))
}

/// Remove every limit of a scope.
#[utoipa::path(delete, path = "/v1/limits/{scope}/{name}", tag = "limits",
    security(("bearer" = [])),
    params(("scope" = String, Path), ("name" = String, Path)),
    responses(
        (status = 200, body = StatusView),
        (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub async fn clear_limits(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((raw_scope, name)): Path<(String, String)>,
) -> Result<Json<StatusView>, ApiError> {
    let scope = scope(&raw_scope)?;
    state
        .vault
        .clear_limits(principal.tenant, scope, &name)
        .await?;
    Ok(Json(StatusView { status: "deleted" }))
}
