//! Tenants and tenant API tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use keyward_core::ErrorCode;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::extract::{Auth, JsonBody};
use crate::views::{rfc3339, StatusView, TenantCreated, TokenCreated, WhoAmI};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", post(create_tenant))
        .route("/v1/tenants/me", get(whoami))
        .route("/v1/tenants/me/tokens", post(create_token))
        .route("/v1/tenants/me/tokens/{id}", delete(revoke_token))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// `^[a-z0-9][a-z0-9-]{0,62}$`
    pub name: String,
}

/// Create a tenant (operator token only). Returns its first API token, once.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = CreateTenant,
    security(("bearer" = [])),
    responses(
        (status = 201, body = TenantCreated),
        (status = 400, body = crate::views::ErrorEnvelope, description = "invalid name or body"),
        (status = 401, body = crate::views::ErrorEnvelope),
        (status = 403, body = crate::views::ErrorEnvelope, description = "not the operator"),
        (status = 409, body = crate::views::ErrorEnvelope, description = "name taken")))]
pub async fn create_tenant(
    State(state): State<AppState>,
    Auth(principal): Auth,
    JsonBody(body): JsonBody<CreateTenant>,
) -> Result<(StatusCode, Json<TenantCreated>), ApiError> {
    if !principal.is_operator() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the operator token may create tenants",
        ));
    }
    let issued = state.vault.create_tenant(&body.name).await?;
    tracing::info!(tenant = body.name, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(TenantCreated {
            name: body.name,
            token: issued.token,
        }),
    ))
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/v1/tenants/me", tag = "tenants", security(("bearer" = [])),
    responses((status = 200, body = WhoAmI), (status = 401, body = crate::views::ErrorEnvelope)))]
pub async fn whoami(Auth(principal): Auth) -> Json<WhoAmI> {
    Json(WhoAmI {
        operator: principal.is_operator(),
        tenant: principal.tenant_name,
        token_id: principal.token_id,
    })
}

/// Issue a new API token for the caller's tenant (shown once).
#[utoipa::path(post, path = "/v1/tenants/me/tokens", tag = "tenants", security(("bearer" = [])),
    responses((status = 201, body = TokenCreated), (status = 401, body = crate::views::ErrorEnvelope)))]
pub async fn create_token(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    let issued = state.vault.issue_token(principal.tenant).await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            id: issued.id,
            token: issued.token,
            created_at: rfc3339(issued.created_at),
        }),
    ))
}

/// Revoke one of the caller's tenant's tokens; it stops working at once.
#[utoipa::path(delete, path = "/v1/tenants/me/tokens/{id}", tag = "tenants",
    security(("bearer" = [])), params(("id" = String, Path, description = "token id (tok_…)")),
    responses((status = 200, body = StatusView), (status = 401, body = crate::views::ErrorEnvelope),
        (status = 404, body = crate::views::ErrorEnvelope)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<StatusView>, ApiError> {
    state.vault.revoke_token(principal.tenant, &id).await?;
    Ok(Json(StatusView { status: "deleted" }))
}
