//! The keyward data plane. This crate grows into the request pipeline
//! `accept → authenticate → route → inject → forward → meter/redact → audit`; for now it
//! answers the health checks of its listener and refuses everything else with JSON.

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

/// The data-plane listener's app.
pub fn router() -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/readyz",
            get(|| async { Json(serde_json::json!({"status": "ready"})) }),
        )
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(serde_json::json!({"error": {
                    "code": "not_found",
                    "message": "no data-plane route matches this request"
                }})),
            )
        })
}
