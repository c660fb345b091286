use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/openapi.json", get(openapi_json))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "alive")))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the store answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "ready"), (status = 503, description = "store unavailable")))]
pub async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<Json<serde_json::Value>, crate::ApiError> {
    state
        .vault
        .store()
        .meta_get("schema_version")
        .await
        .map_err(|e| crate::ApiError::from(keyward_vault::VaultError::Store(e)))?;
    Ok(Json(serde_json::json!({"status": "ready"})))
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "the OpenAPI 3 document of this API")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::ApiDoc::openapi())
}
