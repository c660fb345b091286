//! The audit log of the caller's tenant: `GET /v1/audit` (records, filtered and paged) and
//! `GET /v1/audit/verify` (the hash chain checked on the server). Records are written by the
//! data plane through `keyward-audit`; nothing here writes.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use keyward_audit::line::to_line;
use keyward_audit::{AuditFilter, AuditStore, Verifier};
use keyward_core::ErrorCode;
use keyward_vault::VaultError;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use crate::extract::Auth;
use crate::views::ErrorEnvelope;
use crate::{ApiError, AppState};

/// Records per page when `limit` is not given, and the most a page may hold.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// Longest `session` / `agent` filter accepted.
const MAX_FILTER_LEN: usize = 256;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/audit", get(list_audit))
        .route("/v1/audit/verify", get(verify_audit))
}

/// Query parameters of `GET /v1/audit`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this session's records.
    session: Option<String>,
    /// Only this agent's records.
    agent: Option<String>,
    /// RFC 3339: records at or after this instant.
    since: Option<String>,
    /// RFC 3339: records before this instant.
    until: Option<String>,
    /// Only records with `seq` greater than this (page forward with the last `seq` seen).
    after: Option<i64>,
    /// Only records with `seq` less than this (page backward).
    before: Option<i64>,
    /// Records per page, 1–1000 (default 100).
    limit: Option<u32>,
    /// `asc` (oldest first, the default) or `desc` (newest first).
    order: Option<String>,
}

/// `GET /v1/audit`.
#[derive(Serialize, ToSchema)]
pub struct AuditList {
    /// Each record's fields (`ts`, `tenant`, `agent`, `session`, `user_id`, `method`, `host`,
    /// `path`, `request_headers`, `status`, `bytes_in`, `bytes_out`, `duration_ms`, `ttfb_ms`,
    /// `credential`, `credential_version`, `model`, `tokens_in`, `tokens_out`, `cost_usd`,
    /// `decision`, `error`, `mode`) plus its chain fields `seq`, `prev_hash` and `hash`.
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<Box<RawValue>>,
}

/// `GET /v1/audit/verify`.
#[derive(Serialize, ToSchema)]
pub struct AuditVerification {
    /// The whole chain is intact.
    pub ok: bool,
    /// Records found intact before the first bad one (all of them when `ok`).
    pub checked: usize,
    pub first_bad: Option<FirstBad>,
}

/// The first record where the chain breaks.
#[derive(Serialize, ToSchema)]
pub struct FirstBad {
    pub seq: i64,
    /// `changed`, `removed`, `inserted` or `reordered`.
    pub reason: String,
}

fn audit_store(state: &AppState) -> Result<&Arc<dyn AuditStore>, ApiError> {
    state.audit_store.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::StoreUnavailable,
            "this server keeps no audit log in its store",
        )
    })
}

fn store_error(e: keyward_store::StoreError) -> ApiError {
    ApiError::from(VaultError::Store(e))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

fn instant(name: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                invalid(format!(
                    "`{name}` must be an RFC 3339 timestamp such as 2025-01-31T12:00:00Z"
                ))
            })
    })
    .transpose()
}

impl AuditQuery {
    /// "Parse, don't validate": the raw query to the store's filter, or a 400.
    fn filter(self) -> Result<AuditFilter, ApiError> {
        for (name, value) in [("session", &self.session), ("agent", &self.agent)] {
            if value
                .as_deref()
                .is_some_and(|v| v.is_empty() || v.len() > MAX_FILTER_LEN)
            {
                return Err(invalid(format!(
                    "`{name}` must be 1 to {MAX_FILTER_LEN} bytes"
                )));
            }
        }
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid(format!("`limit` must be 1 to {MAX_LIMIT}")));
        }
        let newest_first = match self.order.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(invalid("`order` must be `asc` or `desc`")),
        };
        Ok(AuditFilter {
            since: instant("since", self.since.as_deref())?,
            until: instant("until", self.until.as_deref())?,
            session: self.session,
            agent: self.agent,
            after_seq: self.after,
            before_seq: self.before,
            limit,
            newest_first,
        })
    }
}

/// The caller's tenant's audit records, oldest first; page with `after` (the last `seq`).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = AuditList),
        (status = 400, body = ErrorEnvelope, description = "unknown parameter, bad timestamp, limit outside 1–1000"),
        (status = 401, body = ErrorEnvelope),
        (status = 503, body = ErrorEnvelope, description = "the store is unavailable")))]
pub async fn list_audit(
    State(state): State<AppState>,
    Auth(principal): Auth,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditList>, ApiError> {
    let Query(query) = query.map_err(|_| {
        invalid(
            "query parameters must be among session, agent, since, until, after, before, \
             limit, order, with integers for after, before and limit",
        )
    })?;
    let filter = query.filter()?;
    let rows = audit_store(&state)?
        .query_audit(&principal.tenant_name, &filter)
        .await
        .map_err(store_error)?;
    let records = rows
        .iter()
        .map(|row| RawValue::from_string(to_line(row)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            tracing::error!(error = %e, "an audit row did not make a JSON line");
            ApiError::new(ErrorCode::Internal, "internal error")
        })?;
    Ok(Json(AuditList { records }))
}

/// Check the caller's tenant's whole hash chain on the server. (`keyward audit verify` does the
/// same on the client, from the records themselves.)
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses(
        (status = 200, body = AuditVerification),
        (status = 401, body = ErrorEnvelope),
        (status = 503, body = ErrorEnvelope, description = "the store is unavailable")))]
pub async fn verify_audit(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<AuditVerification>, ApiError> {
    let store = audit_store(&state)?;
    let mut verifier = Verifier::new();
    let mut filter = AuditFilter {
        limit: MAX_LIMIT,
        ..AuditFilter::default()
    };
    loop {
        let page = store
            .query_audit(&principal.tenant_name, &filter)
            .await
            .map_err(store_error)?;
        for record in &page {
            if let Err(brk) = verifier.push(record) {
                return Ok(Json(AuditVerification {
                    ok: false,
                    checked: verifier.checked(),
                    first_bad: Some(FirstBad {
                        seq: brk.seq,
                        reason: brk.reason.as_str().to_owned(),
                    }),
                }));
            }
        }
        match page.last() {
            Some(last) if page.len() == MAX_LIMIT as usize => filter.after_seq = Some(last.seq),
            _ => break,
        }
    }
    Ok(Json(AuditVerification {
        ok: true,
        checked: verifier.checked(),
        first_bad: None,
    }))
}
