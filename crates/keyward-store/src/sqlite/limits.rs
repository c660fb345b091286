//! [`LimitStore`] and [`UsageStore`] for SQLite: the `limits` table of `schema_v5.sql`, and
//! totals over the `audit` table of `schema_v3.sql` read with `json_extract` from each
//! record's JSON (one record per call, so the totals are exact).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::rows::ts;
use super::SqliteStore;
use crate::{
    LimitScope, LimitStore, Limits, Result, SessionLimits, StoreError, TenantId, UsageGroup,
    UsageGroupBy, UsageQuery, UsageStore,
};

/// Decisions of calls that reached an upstream (refused calls cost nothing).
const COUNTED: &str = "json_extract(record_json, '$.decision') IN ('forwarded', 'free_tier')";

/// The row key of a scope: the tenant scope has no name of its own.
fn row_name(scope: LimitScope, name: &str) -> &str {
    match scope {
        LimitScope::Tenant => "",
        _ => name,
    }
}

fn parse_limits(text: &str) -> Result<Limits> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt("limits"))
}

#[async_trait]
impl LimitStore for SqliteStore {
    async fn limits(
        &self,
        tenant: TenantId,
        scope: LimitScope,
        name: &str,
    ) -> Result<Option<Limits>> {
        let text: Option<String> = sqlx::query_scalar(
            "SELECT limits FROM limits WHERE tenant_id = ? AND scope = ? AND name = ?",
        )
        .bind(tenant.0)
        .bind(scope.as_str())
        .bind(row_name(scope, name))
        .fetch_optional(&self.pool)
        .await?;
        text.as_deref().map(parse_limits).transpose()
    }

    async fn put_limits(
        &self,
        tenant: TenantId,
        scope: LimitScope,
        name: &str,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let text = serde_json::to_string(limits).map_err(|_| StoreError::Corrupt("limits"))?;
        sqlx::query(
            "INSERT INTO limits (tenant_id, scope, name, limits, updated_at) \
             VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (tenant_id, scope, name) \
             DO UPDATE SET limits = excluded.limits, updated_at = excluded.updated_at",
        )
        .bind(tenant.0)
        .bind(scope.as_str())
        .bind(row_name(scope, name))
        .bind(text)
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_limits(&self, tenant: TenantId, scope: LimitScope, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM limits WHERE tenant_id = ? AND scope = ? AND name = ?")
            .bind(tenant.0)
            .bind(scope.as_str())
            .bind(row_name(scope, name))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn limits_for_session(
        &self,
        tenant: TenantId,
        agent: Option<&str>,
        session: &str,
    ) -> Result<SessionLimits> {
        let rows = sqlx::query(
            "SELECT scope, limits FROM limits WHERE tenant_id = ? AND ( \
                 (scope = 'tenant' AND name = '') \
                 OR (scope = 'agent' AND name = ?) \
                 OR (scope = 'session' AND name = ?))",
        )
        .bind(tenant.0)
        .bind(agent)
        .bind(session)
        .fetch_all(&self.pool)
        .await?;
        let mut found = SessionLimits::default();
        for row in rows {
            let scope: String = row.try_get("scope")?;
            let limits = parse_limits(row.try_get("limits")?)?;
            match LimitScope::parse(&scope) {
                Some(LimitScope::Tenant) => found.tenant = Some(limits),
                Some(LimitScope::Agent) => found.agent = Some(limits),
                Some(LimitScope::Session) => found.session = Some(limits),
                None => return Err(StoreError::Corrupt("limits scope")),
            }
        }
        Ok(found)
    }
}

fn group_key(group_by: UsageGroupBy) -> &'static str {
    match group_by {
        UsageGroupBy::Tenant => "tenant",
        UsageGroupBy::Agent => "agent",
        UsageGroupBy::Session => "session",
        UsageGroupBy::UserId => "json_extract(record_json, '$.user_id')",
        UsageGroupBy::Model => "json_extract(record_json, '$.model')",
        // `ts` is `YYYY-MM-DDTHH:MM:SS.mmmZ`, always UTC.
        UsageGroupBy::Day => "substr(ts, 1, 10)",
    }
}

fn count(row: &sqlx::sqlite::SqliteRow, column: &str) -> Result<u64> {
    let n: i64 = row.try_get(column)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

#[async_trait]
impl UsageStore for SqliteStore {
    async fn usage(&self, tenant_name: &str, query: &UsageQuery) -> Result<Vec<UsageGroup>> {
        let key = group_key(query.group_by);
        let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT CAST({key} AS TEXT) AS key, COUNT(*) AS requests, \
             CAST(COALESCE(SUM(json_extract(record_json, '$.tokens_in')), 0) AS INTEGER) AS input, \
             CAST(COALESCE(SUM(json_extract(record_json, '$.tokens_out')), 0) AS INTEGER) AS output, \
             CAST(COALESCE(SUM(json_extract(record_json, '$.tokens_cache_read')), 0) \
                + COALESCE(SUM(json_extract(record_json, '$.tokens_cache_write')), 0) \
                AS INTEGER) AS cache, \
             CAST(SUM(json_extract(record_json, '$.cost_usd')) AS REAL) AS cost \
             FROM audit WHERE {COUNTED} AND tenant = "
        ));
        sql.push_bind(tenant_name);
        if let Some(since) = query.since {
            sql.push(" AND ts >= ").push_bind(ts(since));
        }
        if let Some(until) = query.until {
            sql.push(" AND ts < ").push_bind(ts(until));
        }
        sql.push(" GROUP BY 1 ORDER BY 1");
        let rows = sql.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(UsageGroup {
                    key: row.try_get("key")?,
                    requests: count(row, "requests")?,
                    input_tokens: count(row, "input")?,
                    output_tokens: count(row, "output")?,
                    cache_tokens: count(row, "cache")?,
                    cost_usd: row.try_get("cost")?,
                })
            })
            .collect()
    }

    async fn spent_usd(
        &self,
        tenant_name: &str,
        scope: LimitScope,
        name: &str,
        since: DateTime<Utc>,
    ) -> Result<f64> {
        let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT CAST(COALESCE(SUM(json_extract(record_json, '$.cost_usd')), 0) AS REAL) \
             FROM audit WHERE {COUNTED} AND tenant = "
        ));
        sql.push_bind(tenant_name);
        sql.push(" AND ts >= ").push_bind(ts(since));
        match scope {
            LimitScope::Tenant => {}
            LimitScope::Agent => {
                sql.push(" AND agent = ").push_bind(name);
            }
            LimitScope::Session => {
                sql.push(" AND session = ").push_bind(name);
            }
        }
        let spent: f64 = sql.build().fetch_one(&self.pool).await?.try_get(0)?;
        Ok(spent)
    }
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
