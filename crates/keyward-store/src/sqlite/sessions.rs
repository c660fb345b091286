//! Session rows in SQLite. The `Store` impl in `mod.rs` delegates here so that file stays
//! about bundles and tenants.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::rows::{opt_ts, parse_ts, ts};
use crate::{BundleId, Result, SessionRecord, StoreError, TenantId};

const COLUMNS: &str = "id, tenant_id, token_digest, agent, mode, llm, user_id, sealed_env, \
                       egress, created_at, ended_at";

pub(super) async fn create(pool: &SqlitePool, tenant: TenantId, s: &SessionRecord) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!(
        "INSERT INTO sessions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&s.id)
    .bind(tenant.0)
    .bind(&s.token_digest)
    .bind(s.agent.as_deref())
    .bind(&s.mode)
    .bind(&s.llm)
    .bind(s.user_id.as_deref())
    .bind(&s.sealed_env)
    .bind(s.egress.as_deref())
    .bind(ts(s.created_at))
    .bind(s.ended_at.map(ts))
    .execute(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Exists,
        _ => e.into(),
    })?;
    insert_bundles(&mut tx, &s.id, &s.bundles).await?;
    tx.commit().await?;
    Ok(())
}

async fn insert_bundles(
    tx: &mut Transaction<'_, Sqlite>,
    session: &str,
    bundles: &[(BundleId, String)],
) -> Result<()> {
    for (position, (id, name)) in bundles.iter().enumerate() {
        sqlx::query(
            "INSERT INTO session_bundles (session_id, position, bundle_id, name) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(session)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(id.0)
        .bind(name)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn load(tx: &mut Transaction<'_, Sqlite>, row: &SqliteRow) -> Result<SessionRecord> {
    let id: String = row.try_get("id")?;
    let refs = sqlx::query(
        "SELECT bundle_id, name FROM session_bundles WHERE session_id = ? ORDER BY position",
    )
    .bind(&id)
    .fetch_all(&mut **tx)
    .await?;
    let bundles = refs
        .iter()
        .map(|r| Ok((BundleId(r.try_get("bundle_id")?), r.try_get("name")?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(SessionRecord {
        id,
        tenant: TenantId(row.try_get("tenant_id")?),
        token_digest: row.try_get("token_digest")?,
        agent: row.try_get("agent")?,
        mode: row.try_get("mode")?,
        llm: row.try_get("llm")?,
        bundles,
        user_id: row.try_get("user_id")?,
        sealed_env: row.try_get("sealed_env")?,
        egress: row.try_get("egress")?,
        created_at: parse_ts(row.try_get("created_at")?)?,
        ended_at: opt_ts(row.try_get("ended_at")?)?,
    })
}

async fn load_all(
    tx: &mut Transaction<'_, Sqlite>,
    rows: &[SqliteRow],
) -> Result<Vec<SessionRecord>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(load(tx, row).await?);
    }
    Ok(out)
}

pub(super) async fn get(
    pool: &SqlitePool,
    tenant: TenantId,
    id: &str,
) -> Result<Option<SessionRecord>> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE tenant_id = ? AND id = ?"
    ))
    .bind(tenant.0)
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let found = load_all(&mut tx, &rows).await?;
    tx.commit().await?;
    Ok(found.into_iter().next())
}

pub(super) async fn by_token_digest(
    pool: &SqlitePool,
    digest: &[u8],
) -> Result<Option<SessionRecord>> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE token_digest = ?"
    ))
    .bind(digest)
    .fetch_all(&mut *tx)
    .await?;
    let found = load_all(&mut tx, &rows).await?;
    tx.commit().await?;
    Ok(found.into_iter().next())
}

pub(super) async fn list(pool: &SqlitePool, tenant: TenantId) -> Result<Vec<SessionRecord>> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE tenant_id = ? ORDER BY created_at DESC, id"
    ))
    .bind(tenant.0)
    .fetch_all(&mut *tx)
    .await?;
    let found = load_all(&mut tx, &rows).await?;
    tx.commit().await?;
    Ok(found)
}

pub(super) async fn end(
    pool: &SqlitePool,
    tenant: TenantId,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<SessionRecord>> {
    // `ended_at` is written once: ending an ended session keeps the first instant.
    sqlx::query(
        "UPDATE sessions SET ended_at = ? \
         WHERE tenant_id = ? AND id = ? AND ended_at IS NULL",
    )
    .bind(ts(now))
    .bind(tenant.0)
    .bind(id)
    .execute(pool)
    .await?;
    get(pool, tenant, id).await
}

pub(super) async fn set_bundles(
    pool: &SqlitePool,
    tenant: TenantId,
    id: &str,
    bundles: &[(BundleId, String)],
) -> Result<()> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let running: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM sessions WHERE tenant_id = ? AND id = ? AND ended_at IS NULL",
    )
    .bind(tenant.0)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if running.is_none() {
        return Err(StoreError::NotFound);
    }
    sqlx::query("DELETE FROM session_bundles WHERE session_id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    insert_bundles(&mut tx, id, bundles).await?;
    tx.commit().await?;
    Ok(())
}
