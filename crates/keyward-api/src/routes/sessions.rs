//! Sessions (seeds 000 and 001): `/v1/sessions`. A platform creates one per agent run and
//! hands the agent its token and env; the agent re-reads the env after a rotation.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use keyward_core::ErrorCode;
use keyward_vault::{EgressPolicy, LlmSettings, NewSession, SessionMode};
use serde::Deserialize;
use utoipa::ToSchema;

use super::session_auth::authorize;
use super::session_events::session_events;
use crate::extract::{Auth, JsonBody};
use crate::session_views::{SessionCreated, SessionEnv, SessionList, SessionView};
use crate::views::{rfc3339, ErrorEnvelope};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions", get(list_sessions).post(create_session))
        .route("/v1/sessions/{id}", get(get_session).delete(end_session))
        .route("/v1/sessions/{id}/revoke", post(revoke_session))
        .route("/v1/sessions/{id}/resume", post(resume_session))
        .route("/v1/sessions/{id}/env", get(session_env))
        .route("/v1/sessions/{id}/events", get(session_events))
}

/// LLM settings of a session; they win over `LLM_*` entries of its bundles.
#[derive(Deserialize, ToSchema, Default)]
pub struct LlmBody {
    /// `anthropic` or `openai` (any OpenAI-compatible endpoint).
    pub vendor: Option<String>,
    pub model: Option<String>,
    /// An http(s) URL; stays server-side.
    pub base_url: Option<String>,
}

/// `POST /v1/sessions`. Unknown fields (seed 001's `template`) are accepted and ignored.
#[derive(Deserialize, ToSchema)]
pub struct CreateSessionBody {
    /// The agent's name: the session inherits its bundles (before its own) and its egress
    /// policy. Seed 001's object form (`{"kind": …}`) is accepted and names no agent.
    #[schema(value_type = Option<String>)]
    pub agent: Option<serde_json::Value>,
    /// `gateway` (default) or `proxy`.
    pub mode: Option<String>,
    pub llm: Option<LlmBody>,
    /// Bundle names, at most 10; their keys are merged.
    pub secrets: Option<Vec<String>>,
    /// Your end user's id, recorded in the audit log (≤ 256 bytes).
    pub user_id: Option<String>,
    /// Extra variables for the agent's process; stored sealed.
    pub env: Option<BTreeMap<String, String>>,
    /// `{"mode": "allow"}` or `{"mode": "deny-unlisted", "allow": ["host", "*.suffix"]}`.
    #[schema(value_type = Option<Object>)]
    pub egress: Option<serde_json::Value>,
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

impl CreateSessionBody {
    fn into_request(self) -> Result<NewSession, ApiError> {
        let agent = match self.agent {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(name)) => Some(name),
            // Seed 001's example sends `{"kind": "deictic"}`: a runtime hint, not an agent.
            Some(serde_json::Value::Object(_)) => None,
            Some(_) => return Err(invalid("agent must be an agent name (a string)")),
        };
        let mode = match self.mode.as_deref() {
            None => SessionMode::default(),
            Some(raw) => SessionMode::parse(raw)
                .ok_or_else(|| invalid("mode must be \"gateway\" or \"proxy\""))?,
        };
        let llm = self.llm.unwrap_or_default();
        let egress = match self.egress {
            None | Some(serde_json::Value::Null) => None,
            Some(json) => Some(EgressPolicy::from_json(&json)?),
        };
        Ok(NewSession {
            agent,
            mode,
            llm: LlmSettings {
                vendor: llm.vendor,
                model: llm.model,
                base_url: llm.base_url,
            },
            secrets: self.secrets.unwrap_or_default(),
            user_id: self.user_id,
            env: self.env.unwrap_or_default(),
            egress,
        })
    }
}

/// Create a session: returns its token and the env to set in the agent's process.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions",
    request_body = CreateSessionBody, security(("bearer" = [])),
    responses(
        (status = 201, body = SessionCreated, description = "session created"),
        (status = 400, body = ErrorEnvelope, description = "too_many_bundles, invalid_name, unknown_bundle, unknown_agent, secret_key_collision, reserved_key_name, invalid_key_name, invalid_request"),
        (status = 401, body = ErrorEnvelope)))]
pub async fn create_session(
    State(state): State<AppState>,
    Auth(principal): Auth,
    JsonBody(body): JsonBody<CreateSessionBody>,
) -> Result<(StatusCode, Json<SessionCreated>), ApiError> {
    let request = body.into_request()?;
    let created = state
        .vault
        .create_session(principal.tenant, request)
        .await?;
    let resolved = state.vault.resolve_session(&created.session).await?;
    let mut env = state
        .vault
        .session_env(&resolved, &state.data_plane_url, &created.token);
    add_free_tier(&state, &created.session, &mut env, &created.token);
    tracing::info!(session = created.session.id, "session created");
    Ok((
        StatusCode::CREATED,
        Json(SessionCreated {
            session_id: created.session.id.clone(),
            mode: created.session.mode.as_str().to_owned(),
            env,
            created_at: rfc3339(created.session.created_at),
            ca_pem: (created.session.mode == keyward_vault::SessionMode::Proxy)
                .then(|| state.ca_pem.clone())
                .flatten(),
            session_token: created.token,
        }),
    ))
}

/// List the tenant's sessions, newest first.
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = SessionList), (status = 401, body = ErrorEnvelope)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<SessionList>, ApiError> {
    let sessions = state.vault.list_sessions(principal.tenant).await?;
    Ok(Json(SessionList {
        sessions: sessions.iter().map(SessionView::from).collect(),
    }))
}

/// One session (never its token or env values).
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "ses_…")),
    responses((status = 200, body = SessionView), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope, description = "no such session in this tenant")))]
pub async fn get_session(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    let session = state.vault.get_session(principal.tenant, &id).await?;
    Ok(Json(SessionView::from(&session)))
}

/// End a session: its token stops working at once and its event socket closes.
#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "ses_…")),
    responses((status = 200, body = SessionView), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub async fn end_session(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    let session = state.vault.end_session(principal.tenant, &id).await?;
    tracing::info!(session = session.id, "session ended");
    Ok(Json(SessionView::from(&session)))
}

/// Revoke a session: the same as ending it.
#[utoipa::path(post, path = "/v1/sessions/{id}/revoke", tag = "sessions",
    security(("bearer" = [])), params(("id" = String, Path, description = "ses_…")),
    responses((status = 200, body = SessionView), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub async fn revoke_session(
    state: State<AppState>,
    auth: Auth,
    id: Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    end_session(state, auth, id).await
}

/// Resume a session: re-resolve its bundles by name.
#[utoipa::path(post, path = "/v1/sessions/{id}/resume", tag = "sessions",
    security(("bearer" = [])), params(("id" = String, Path, description = "ses_…")),
    responses((status = 200, body = SessionView), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope, description = "session_ended"),
        (status = 502, body = ErrorEnvelope, description = "secret_bundle_not_found_at_resume: a bundle was deleted")))]
pub async fn resume_session(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    let session = state.vault.resume_session(principal.tenant, &id).await?;
    Ok(Json(SessionView::from(&session)))
}

/// The session's env, re-read (after a `config_update`). Authenticated by a tenant token or
/// by the session's own token.
#[utoipa::path(get, path = "/v1/sessions/{id}/env", tag = "sessions",
    security(("bearer" = [])), params(("id" = String, Path, description = "ses_…")),
    responses((status = 200, body = SessionEnv), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub async fn session_env(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SessionEnv>, ApiError> {
    let reader = authorize(&state, &headers, &id).await?;
    let resolved = state.vault.resolve_session(&reader.session).await?;
    // What the session now holds, for its agent's Synced indicator (seed 004).
    state
        .vault
        .record_env_read(&reader.session, &resolved.entries)
        .await;
    let env = match &reader.session_token {
        Some(token) => {
            let mut env = state
                .vault
                .session_env(&resolved, &state.data_plane_url, token);
            add_free_tier(&state, &reader.session, &mut env, token);
            env
        }
        None => {
            let token = state.vault.session_token(&reader.session).await?;
            let text = token.expose_str().unwrap_or_default();
            let mut env = state
                .vault
                .session_env(&resolved, &state.data_plane_url, text);
            add_free_tier(&state, &reader.session, &mut env, text);
            env
        }
    };
    Ok(Json(SessionEnv { env }))
}

/// A gateway session without a key for the free tier's provider reaches the free tier through
/// that provider's gateway route: give its SDK the token and base URL, as for its own keys.
fn add_free_tier(
    state: &AppState,
    session: &keyward_vault::Session,
    env: &mut std::collections::BTreeMap<String, String>,
    token: &str,
) {
    let Some(provider) = state.free_tier_provider else {
        return;
    };
    if session.mode != keyward_vault::SessionMode::Gateway {
        return;
    }
    let rule = keyward_core::providers::rule_for_provider(provider);
    if env.contains_key(rule.key_name) {
        return;
    }
    let url = state.data_plane_url.trim_end_matches('/');
    env.insert(rule.key_name.to_owned(), token.to_owned());
    env.insert(
        rule.base_url_env.to_owned(),
        format!("{url}{}", rule.gateway_suffix),
    );
}
