//! The API's error type: shows the client a stable code and a safe message, hands the cause
//! to the log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::ErrorCode;
use keyward_vault::VaultError;

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Rejected { code, message } => ApiError { code, message },
            other => {
                let code = other.code();
                tracing::error!(error = %other, code = code.as_str(), "request failed");
                let message = match code {
                    ErrorCode::DecryptionFailed => {
                        "a stored value failed to decrypt; it may have been tampered with"
                    }
                    ErrorCode::StoreUnavailable => "the store is unavailable; try again",
                    _ => "internal error",
                };
                ApiError::new(code, message)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({
            "error": { "code": self.code.as_str(), "message": self.message }
        });
        (status, Json(body)).into_response()
    }
}
