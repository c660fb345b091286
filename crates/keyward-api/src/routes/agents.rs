//! Agents (seeds 002 and 004): `/v1/agents`. Bundles are attached to an agent; its sessions
//! inherit them, and its gateway token uses them on the data plane. Another tenant's agent is
//! 404, like a missing one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use keyward_vault::{EgressPolicy, NewAgent};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::agent_views::{
    AgentCreated, AgentList, AgentSessionList, AgentSessionView, AgentToken, AgentView,
};
use crate::extract::{Auth, JsonBody};
use crate::views::{ErrorEnvelope, StatusView};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/agents", get(list_agents).post(create_agent))
        .route("/v1/agents/{name}", get(get_agent).delete(delete_agent))
        .route("/v1/agents/{name}/token/rotate", post(rotate_agent_token))
        .route("/v1/agents/{name}/secrets", post(attach_bundle))
        .route("/v1/agents/{name}/secrets/{bundle}", delete(detach_bundle))
        .route("/v1/agents/{name}/sessions", get(agent_sessions))
}

/// The secret names an agent needs.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestBody {
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// `POST /v1/agents`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgentBody {
    /// `^[a-z0-9][a-z0-9-]{0,62}$`
    pub name: String,
    /// `{"mode": "allow"}` or `{"mode": "deny-unlisted", "allow": [...]}`: applies to the
    /// gateway token and to the agent's sessions that give no policy of their own.
    #[schema(value_type = Option<Object>)]
    pub egress: Option<serde_json::Value>,
    pub manifest: Option<ManifestBody>,
}

/// `POST /v1/agents/{name}/secrets`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachBody {
    /// The name of a secret bundle of this tenant.
    pub bundle: String,
}

/// Create an agent. Its gateway token is in this answer only.
#[utoipa::path(post, path = "/v1/agents", tag = "agents",
    request_body = CreateAgentBody, security(("bearer" = [])),
    responses(
        (status = 201, body = AgentCreated, description = "agent created"),
        (status = 400, body = ErrorEnvelope, description = "invalid_name, invalid_key_name, reserved_key_name (manifest), invalid_request"),
        (status = 401, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope, description = "agent_exists")))]
pub async fn create_agent(
    State(state): State<AppState>,
    Auth(principal): Auth,
    JsonBody(body): JsonBody<CreateAgentBody>,
) -> Result<(StatusCode, Json<AgentCreated>), ApiError> {
    let egress = match body.egress {
        None | Some(serde_json::Value::Null) => None,
        Some(json) => Some(EgressPolicy::from_json(&json)?),
    };
    let request = NewAgent {
        name: body.name,
        egress,
        manifest: body.manifest.map(|m| m.secrets).unwrap_or_default(),
    };
    let issued = state.vault.create_agent(principal.tenant, request).await?;
    tracing::info!(agent = issued.agent.name, "agent created");
    Ok((
        StatusCode::CREATED,
        Json(AgentCreated::new(&issued.agent, issued.token)),
    ))
}

/// List the tenant's agents (never their tokens).
#[utoipa::path(get, path = "/v1/agents", tag = "agents", security(("bearer" = [])),
    responses((status = 200, body = AgentList), (status = 401, body = ErrorEnvelope)))]
pub async fn list_agents(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<AgentList>, ApiError> {
    let agents = state.vault.list_agents(principal.tenant).await?;
    Ok(Json(AgentList {
        agents: agents.iter().map(AgentView::from).collect(),
    }))
}

/// One agent: its bundles and the manifest names none of them provides.
#[utoipa::path(get, path = "/v1/agents/{name}", tag = "agents", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = AgentView), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope, description = "agent_not_found")))]
pub async fn get_agent(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    let agent = state.vault.get_agent(principal.tenant, &name).await?;
    Ok(Json(AgentView::from(&agent)))
}

/// Delete an agent: its token stops working and its bundles are detached. Its running
/// sessions keep what they resolved.
#[utoipa::path(delete, path = "/v1/agents/{name}", tag = "agents", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = StatusView), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn delete_agent(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<Json<StatusView>, ApiError> {
    state.vault.delete_agent(principal.tenant, &name).await?;
    Ok(Json(StatusView { status: "deleted" }))
}

/// Issue a new gateway token; the old one stops working at once.
#[utoipa::path(post, path = "/v1/agents/{name}/token/rotate", tag = "agents",
    security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 200, body = AgentToken), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn rotate_agent_token(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<Json<AgentToken>, ApiError> {
    let issued = state
        .vault
        .rotate_agent_token(principal.tenant, &name)
        .await?;
    tracing::info!(agent = issued.agent.name, "agent gateway token rotated");
    Ok(Json(AgentToken {
        gateway_token: issued.token,
    }))
}

/// Attach a bundle. Attaching an attached bundle answers 200 with the agent unchanged.
#[utoipa::path(post, path = "/v1/agents/{name}/secrets", tag = "agents",
    request_body = AttachBody, security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 200, body = AgentView, description = "attached (or already attached)"),
        (status = 400, body = ErrorEnvelope, description = "unknown_bundle, secret_key_collision, too_many_bundles, invalid_name"),
        (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope, description = "agent_not_found"),
        (status = 409, body = ErrorEnvelope, description = "provider_conflict: a second credential for a provider the agent already has")))]
pub async fn attach_bundle(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<AttachBody>,
) -> Result<Json<AgentView>, ApiError> {
    let agent = state
        .vault
        .attach_bundle(principal.tenant, &name, &body.bundle)
        .await?;
    Ok(Json(AgentView::from(&agent)))
}

/// Detach a bundle.
#[utoipa::path(delete, path = "/v1/agents/{name}/secrets/{bundle}", tag = "agents",
    security(("bearer" = [])), params(("name" = String, Path), ("bundle" = String, Path)),
    responses((status = 200, body = AgentView), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope, description = "agent_not_found, bundle_not_attached")))]
pub async fn detach_bundle(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((name, bundle)): Path<(String, String)>,
) -> Result<Json<AgentView>, ApiError> {
    let agent = state
        .vault
        .detach_bundle(principal.tenant, &name, &bundle)
        .await?;
    Ok(Json(AgentView::from(&agent)))
}

/// The agent's running sessions, oldest first, each with seed 004's Synced indicator: false
/// while a value the session holds in its env changed since it last read its env.
#[utoipa::path(get, path = "/v1/agents/{name}/sessions", tag = "agents",
    security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 200, body = AgentSessionList), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn agent_sessions(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<Json<AgentSessionList>, ApiError> {
    let sessions = state.vault.agent_sessions(principal.tenant, &name).await?;
    Ok(Json(AgentSessionList {
        sessions: sessions.iter().map(AgentSessionView::from).collect(),
    }))
}
