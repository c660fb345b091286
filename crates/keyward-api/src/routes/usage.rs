//! `GET /v1/usage`: the caller's tenant's usage, added up from its audit log (one record per
//! call, so the totals are exact), grouped by tenant, agent, session, user id, model or day.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use keyward_core::ErrorCode;
use keyward_store::{UsageGroup, UsageGroupBy, UsageQuery as StoreQuery};
use keyward_vault::VaultError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::extract::Auth;
use crate::views::ErrorEnvelope;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/usage", get(usage))
}

/// Query parameters of `GET /v1/usage`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// `agent`, `session`, `user_id`, `model`, `day` (UTC) or `tenant` (the default: one
    /// total).
    group_by: Option<String>,
    /// Calls from this instant on: RFC 3339, or a date (`2025-01-31`, midnight UTC).
    since: Option<String>,
    /// Calls before this instant: RFC 3339, or a date (midnight UTC, excluded).
    until: Option<String>,
}

/// `GET /v1/usage`.
#[derive(Serialize, ToSchema)]
pub struct UsageView {
    pub group_by: String,
    pub groups: Vec<UsageGroupView>,
}

/// One group's totals. Calls refused before forwarding do not count.
#[derive(Serialize, ToSchema)]
pub struct UsageGroupView {
    /// The agent, session, user id, model, day or tenant; null for calls without one.
    pub key: Option<String>,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Cache reads and writes.
    pub cache_tokens: u64,
    /// Null when no call of the group has a known price.
    pub cost_usd: Option<f64>,
}

impl From<UsageGroup> for UsageGroupView {
    fn from(g: UsageGroup) -> Self {
        Self {
            key: g.key,
            requests: g.requests,
            input_tokens: g.input_tokens,
            output_tokens: g.output_tokens,
            cache_tokens: g.cache_tokens,
            cost_usd: g.cost_usd,
        }
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

/// RFC 3339, or a bare date meaning its midnight UTC.
pub fn instant(name: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(text) = text else { return Ok(None) };
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Some(t.and_utc()))
        .ok_or_else(|| {
            invalid(format!(
                "`{name}` must be an RFC 3339 timestamp (2025-01-31T12:00:00Z) or a date \
                 (2025-01-31)"
            ))
        })
}

/// Usage totals of the caller's tenant.
#[utoipa::path(get, path = "/v1/usage", tag = "usage", params(UsageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = UsageView),
        (status = 400, body = ErrorEnvelope, description = "unknown parameter or group, bad timestamp"),
        (status = 401, body = ErrorEnvelope),
        (status = 503, body = ErrorEnvelope, description = "the store is unavailable")))]
pub async fn usage(
    State(state): State<AppState>,
    Auth(principal): Auth,
    query: Result<Query<UsageParams>, QueryRejection>,
) -> Result<Json<UsageView>, ApiError> {
    let Query(params) =
        query.map_err(|_| invalid("query parameters must be among group_by, since, until"))?;
    let group_name = params.group_by.as_deref().unwrap_or("tenant");
    let group_by = UsageGroupBy::parse(group_name).ok_or_else(|| {
        invalid("`group_by` must be one of agent, session, user_id, model, day, tenant")
    })?;
    let query = StoreQuery {
        group_by,
        since: instant("since", params.since.as_deref())?,
        until: instant("until", params.until.as_deref())?,
    };
    let groups = state
        .vault
        .store()
        .usage(&principal.tenant_name, &query)
        .await
        .map_err(|e| ApiError::from(VaultError::Store(e)))?;
    Ok(Json(UsageView {
        group_by: group_name.to_owned(),
        groups: groups.into_iter().map(UsageGroupView::from).collect(),
    }))
}
