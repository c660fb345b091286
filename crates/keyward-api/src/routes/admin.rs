//! Operator actions on the running server.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use keyward_core::ErrorCode;

use crate::extract::Auth;
use crate::views::StatusView;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/admin/rotate-master-key", post(rotate_master_key))
}

/// Re-wrap every tenant key under a new master key, without downtime (operator only).
#[utoipa::path(post, path = "/v1/admin/rotate-master-key", tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = StatusView), (status = 403, body = crate::views::ErrorEnvelope)))]
pub async fn rotate_master_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<StatusView>, ApiError> {
    if !principal.is_operator() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the operator token may rotate the master key",
        ));
    }
    let Some(rotator) = state.master_key_rotator.as_ref() else {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "this server cannot rotate its master key online",
        ));
    };
    rotator.rotate().await.map_err(|e| match e {
        crate::RotateError::Unsupported(reason) => {
            ApiError::new(ErrorCode::MasterKeyNotRotatable, reason)
        }
        crate::RotateError::Failed(reason) => {
            tracing::error!(reason, "master key rotation failed");
            ApiError::new(
                ErrorCode::Internal,
                "master key rotation failed; see the server log",
            )
        }
    })?;
    tracing::info!("master key rotated");
    Ok(Json(StatusView { status: "rotated" }))
}
