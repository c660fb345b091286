use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/openapi.json", get(openapi_json))
        .route("/v1/ca.pem", get(ca_pem))
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

/// keyward's CA certificate (PEM): proxy-mode agents trust it for intercepted hosts.
#[utoipa::path(get, path = "/v1/ca.pem", tag = "operations",
    responses((status = 200, description = "the CA certificate, PEM", content_type = "application/x-pem-file"),
        (status = 404, description = "no CA configured")))]
pub async fn ca_pem(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), crate::ApiError> {
    match state.ca_pem {
        Some(pem) => Ok((
            [(axum::http::header::CONTENT_TYPE, "application/x-pem-file")],
            pem,
        )),
        None => Err(crate::ApiError::new(
            keyward_core::ErrorCode::NotFound,
            "this server has no CA",
        )),
    }
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "the OpenAPI 3 document of this API")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::ApiDoc::openapi())
}
