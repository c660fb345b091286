//! Who may read a session's env and events: a tenant token of the session's tenant, or the
//! session's own token (the agent re-reads its env after a `config_update`).

use axum::http::HeaderMap;
use keyward_core::ErrorCode;
use keyward_vault::{Session, SESSION_TOKEN_PREFIX};

use crate::{ApiError, AppState};

/// An authorised reader of one session.
pub struct SessionReader {
    pub session: Session,
    /// The session token, when the caller presented it (a tenant caller did not).
    pub session_token: Option<String>,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let text = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = text.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Authorise a reader of session `id`. Unknown, revoked or ended tokens are 401; a valid
/// token for another session or tenant is 404, as if the session did not exist.
pub async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<SessionReader, ApiError> {
    let unauthorized = || {
        ApiError::new(
            ErrorCode::Unauthorized,
            "a valid tenant token or the session's own token is required",
        )
    };
    let token = bearer(headers).ok_or_else(unauthorized)?;
    if token.starts_with(SESSION_TOKEN_PREFIX) {
        let session = state
            .vault
            .session_by_token(token)
            .await?
            .ok_or_else(unauthorized)?;
        if session.id != id {
            return Err(ApiError::new(ErrorCode::SessionNotFound, "no such session"));
        }
        return Ok(SessionReader {
            session,
            session_token: Some(token.to_owned()),
        });
    }
    let principal = state
        .vault
        .authenticate(token)
        .await?
        .ok_or_else(unauthorized)?;
    let session = state.vault.get_session(principal.tenant, id).await?;
    Ok(SessionReader {
        session,
        session_token: None,
    })
}
