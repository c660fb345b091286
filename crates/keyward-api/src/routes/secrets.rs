//! The Secrets API of seed 001: `/v1/tenants/me/secrets`. Values go in, never come out.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use keyward_vault::{BundleInput, InjectionRule, PatchInput};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::extract::{Auth, JsonBody};
use crate::views::{BundleList, BundleView, ErrorEnvelope, StatusView};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/tenants/me/secrets",
            get(list_bundles).post(create_bundle),
        )
        .route(
            "/v1/tenants/me/secrets/{name}",
            get(get_bundle)
                .put(replace_bundle)
                .patch(patch_bundle)
                .delete(delete_bundle),
        )
}

/// A custom injection rule (seed 002).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectionBody {
    /// Hosts the secret may be sent to.
    pub hosts: Vec<String>,
    /// `Header-Name: template` with one `{KEY}` placeholder, e.g. `X-Custom-Auth: {KEY}`.
    pub header: String,
}

fn rules(injections: BTreeMap<String, InjectionBody>) -> BTreeMap<String, InjectionRule> {
    injections
        .into_iter()
        .map(|(k, r)| {
            (
                k,
                InjectionRule {
                    hosts: r.hosts,
                    header: r.header,
                },
            )
        })
        .collect()
}

/// `POST /v1/tenants/me/secrets`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBundleBody {
    /// `^[a-z0-9][a-z0-9-]{0,62}$`
    pub name: String,
    /// Secrets: encrypted, never returned.
    #[serde(default, deserialize_with = "crate::unique_map::deserialize")]
    pub values: BTreeMap<String, String>,
    /// Plain variables: returned in listings.
    #[serde(default, deserialize_with = "crate::unique_map::deserialize")]
    pub variables: BTreeMap<String, String>,
    /// Custom injection rules for secrets of this bundle.
    #[serde(default, deserialize_with = "crate::unique_map::deserialize")]
    pub injections: BTreeMap<String, InjectionBody>,
}

/// `PUT /v1/tenants/me/secrets/{name}`: the bundle's whole new content.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceBundleBody {
    #[serde(default, deserialize_with = "crate::unique_map::deserialize")]
    pub values: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "crate::unique_map::deserialize")]
    pub variables: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "crate::unique_map::deserialize")]
    pub injections: BTreeMap<String, InjectionBody>,
}

/// `PATCH /v1/tenants/me/secrets/{name}`: a merge.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchBundleBody {
    /// Secrets to add or replace.
    #[serde(default, deserialize_with = "crate::unique_map::deserialize")]
    pub set: BTreeMap<String, String>,
    /// Variables to add or replace.
    #[serde(default, deserialize_with = "crate::unique_map::deserialize")]
    pub variables: BTreeMap<String, String>,
    /// Keys to remove.
    #[serde(default)]
    pub unset: Vec<String>,
    #[serde(default, deserialize_with = "crate::unique_map::deserialize")]
    pub injections: BTreeMap<String, InjectionBody>,
}

/// Create a secret bundle.
#[utoipa::path(post, path = "/v1/tenants/me/secrets", tag = "secrets",
    request_body = CreateBundleBody, security(("bearer" = [])),
    responses(
        (status = 201, body = BundleView, description = "bundle stored"),
        (status = 400, body = ErrorEnvelope, description = "invalid name, reserved or invalid key name, value > 64 KiB, > 50 keys, malformed JSON"),
        (status = 401, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope, description = "a bundle with this name exists"),
        (status = 429, body = ErrorEnvelope, description = "tenant quota exceeded (50 bundles)")))]
pub async fn create_bundle(
    State(state): State<AppState>,
    Auth(principal): Auth,
    JsonBody(body): JsonBody<CreateBundleBody>,
) -> Result<(StatusCode, Json<BundleView>), ApiError> {
    let input = BundleInput {
        values: body.values,
        variables: body.variables,
        injections: rules(body.injections),
    };
    let bundle = state
        .vault
        .create_bundle(principal.tenant, &body.name, input)
        .await?;
    Ok((StatusCode::CREATED, Json(BundleView::from(&bundle))))
}

/// List secret bundles. Values are never returned.
#[utoipa::path(get, path = "/v1/tenants/me/secrets", tag = "secrets", security(("bearer" = [])),
    responses((status = 200, body = BundleList), (status = 401, body = ErrorEnvelope)))]
pub async fn list_bundles(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<BundleList>, ApiError> {
    let bundles = state.vault.list_bundles(principal.tenant).await?;
    Ok(Json(BundleList {
        bundles: bundles.iter().map(BundleView::from).collect(),
    }))
}

/// Get one bundle's metadata. Values are never returned.
#[utoipa::path(get, path = "/v1/tenants/me/secrets/{name}", tag = "secrets",
    security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 200, body = BundleView), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope, description = "no such bundle")))]
pub async fn get_bundle(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<Json<BundleView>, ApiError> {
    let bundle = state.vault.get_bundle(principal.tenant, &name).await?;
    Ok(Json(BundleView::from(&bundle)))
}

/// Replace all values (hot-replace): running sessions get a `config_update` frame.
#[utoipa::path(put, path = "/v1/tenants/me/secrets/{name}", tag = "secrets",
    request_body = ReplaceBundleBody, security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 200, body = BundleView, description = "bundle rotated"),
        (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn replace_bundle(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<ReplaceBundleBody>,
) -> Result<Json<BundleView>, ApiError> {
    let input = BundleInput {
        values: body.values,
        variables: body.variables,
        injections: rules(body.injections),
    };
    let outcome = state
        .vault
        .replace_bundle(principal.tenant, &name, input)
        .await?;
    Ok(Json(BundleView::from(&outcome.bundle)))
}

/// Merge keys into a bundle (a rotation like PUT).
#[utoipa::path(patch, path = "/v1/tenants/me/secrets/{name}", tag = "secrets",
    request_body = PatchBundleBody, security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 200, body = BundleView), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub async fn patch_bundle(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<PatchBundleBody>,
) -> Result<Json<BundleView>, ApiError> {
    let patch = PatchInput {
        set: body.set,
        variables: body.variables,
        unset: body.unset,
        injections: rules(body.injections),
    };
    let outcome = state
        .vault
        .patch_bundle(principal.tenant, &name, patch)
        .await?;
    Ok(Json(BundleView::from(&outcome.bundle)))
}

/// Delete a bundle. Running sessions keep their values; resume answers 502.
#[utoipa::path(delete, path = "/v1/tenants/me/secrets/{name}", tag = "secrets",
    security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 200, body = StatusView), (status = 404, body = ErrorEnvelope)))]
pub async fn delete_bundle(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<Json<StatusView>, ApiError> {
    state.vault.delete_bundle(principal.tenant, &name).await?;
    Ok(Json(StatusView { status: "deleted" }))
}
