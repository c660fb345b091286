//! Extractors: the caller's identity from its bearer token, and JSON bodies whose errors never
//! echo what the client sent.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use keyward_core::ErrorCode;
use keyward_vault::Principal;
use serde::de::DeserializeOwned;

use crate::{ApiError, AppState};

/// The authenticated caller.
pub struct Auth(pub Principal);

/// The bearer token of a request, if it has one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?;
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized =
            || ApiError::new(ErrorCode::Unauthorized, "a valid tenant token is required");
        let token = bearer(parts).ok_or_else(unauthorized)?;
        let principal = state
            .vault
            .authenticate(token)
            .await?
            .ok_or_else(unauthorized)?;
        Ok(Auth(principal))
    }
}

/// A JSON body. Unlike `axum::Json` it accepts any content type (curl's `-d` sends a form
/// type) and reports errors by position only: serde's messages quote the offending value,
/// which could be a secret.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!(
                        "request body is larger than {} bytes",
                        crate::MAX_BODY_BYTES
                    ),
                )
            } else {
                ApiError::new(ErrorCode::InvalidRequest, "could not read the request body")
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let parsed = serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        let at = format!("line {} column {}", e.line(), e.column());
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                ErrorCode::InvalidJson,
                format!("request body is not valid JSON ({at})"),
            ),
            Category::Data if e.to_string().starts_with(crate::unique_map::DUPLICATE_KEY) => {
                ApiError::new(
                    ErrorCode::DuplicateKey,
                    format!("the same key appears twice in one object ({at})"),
                )
            }
            Category::Data => ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "request body does not have the expected fields and types ({at}); \
                     see /v1/openapi.json"
                ),
            ),
        }
    })?;
    // serde's derived structs also accept an array (fields by position), so `["name"]` would
    // create a bundle. Every body of this API is a JSON object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "request body must be a JSON object; see /v1/openapi.json",
        ));
    }
    Ok(parsed)
}
