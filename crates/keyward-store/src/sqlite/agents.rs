//! Agent rows, their attached bundles, and what each session last read into its env, in
//! SQLite. The `Store` impl in `mod.rs` delegates here.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::rows::{parse_ts, ts};
use crate::{AgentId, AgentRecord, BundleDeletion, BundleId, Result, StoreError, TenantId};

const COLUMNS: &str = "id, tenant_id, name, egress, manifest, token_digest, created_at";

fn position(i: usize) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

async fn load(tx: &mut Transaction<'_, Sqlite>, row: &SqliteRow) -> Result<AgentRecord> {
    let id = AgentId(row.try_get("id")?);
    let bundles: Vec<i64> = sqlx::query_scalar(
        "SELECT bundle_id FROM agent_bundles WHERE agent_id = ? ORDER BY position",
    )
    .bind(id.0)
    .fetch_all(&mut **tx)
    .await?;
    Ok(AgentRecord {
        id,
        tenant: TenantId(row.try_get("tenant_id")?),
        name: row.try_get("name")?,
        egress: row.try_get("egress")?,
        manifest: row.try_get("manifest")?,
        token_digest: row.try_get("token_digest")?,
        created_at: parse_ts(row.try_get("created_at")?)?,
        bundles: bundles.into_iter().map(BundleId).collect(),
    })
}

async fn load_all(
    tx: &mut Transaction<'_, Sqlite>,
    rows: &[SqliteRow],
) -> Result<Vec<AgentRecord>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(load(tx, row).await?);
    }
    Ok(out)
}

pub(super) async fn create(pool: &SqlitePool, tenant: TenantId, a: &AgentRecord) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!(
        "INSERT INTO agents ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(a.id.0)
    .bind(tenant.0)
    .bind(&a.name)
    .bind(a.egress.as_deref())
    .bind(&a.manifest)
    .bind(&a.token_digest)
    .bind(ts(a.created_at))
    .execute(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Exists,
        _ => e.into(),
    })?;
    for (i, bundle) in a.bundles.iter().enumerate() {
        sqlx::query("INSERT INTO agent_bundles (agent_id, bundle_id, position) VALUES (?, ?, ?)")
            .bind(a.id.0)
            .bind(bundle.0)
            .bind(position(i))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn get(
    pool: &SqlitePool,
    tenant: TenantId,
    name: &str,
) -> Result<Option<AgentRecord>> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM agents WHERE tenant_id = ? AND name = ?"
    ))
    .bind(tenant.0)
    .bind(name)
    .fetch_all(&mut *tx)
    .await?;
    let found = load_all(&mut tx, &rows).await?;
    tx.commit().await?;
    Ok(found.into_iter().next())
}

pub(super) async fn list(pool: &SqlitePool, tenant: TenantId) -> Result<Vec<AgentRecord>> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM agents WHERE tenant_id = ? ORDER BY name"
    ))
    .bind(tenant.0)
    .fetch_all(&mut *tx)
    .await?;
    let found = load_all(&mut tx, &rows).await?;
    tx.commit().await?;
    Ok(found)
}

pub(super) async fn by_token_digest(
    pool: &SqlitePool,
    digest: &[u8],
) -> Result<Option<AgentRecord>> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM agents WHERE token_digest = ?"
    ))
    .bind(digest)
    .fetch_all(&mut *tx)
    .await?;
    let found = load_all(&mut tx, &rows).await?;
    tx.commit().await?;
    Ok(found.into_iter().next())
}

pub(super) async fn delete(pool: &SqlitePool, tenant: TenantId, name: &str) -> Result<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let id: Option<i64> =
        sqlx::query_scalar("SELECT id FROM agents WHERE tenant_id = ? AND name = ?")
            .bind(tenant.0)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(id) = id else { return Ok(false) };
    sqlx::query("DELETE FROM agent_bundles WHERE agent_id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM agents WHERE id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn set_token(
    pool: &SqlitePool,
    tenant: TenantId,
    name: &str,
    digest: &[u8],
) -> Result<bool> {
    let done = sqlx::query("UPDATE agents SET token_digest = ? WHERE tenant_id = ? AND name = ?")
        .bind(digest)
        .bind(tenant.0)
        .bind(name)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn set_bundles(
    pool: &SqlitePool,
    tenant: TenantId,
    agent: AgentId,
    expected: &[BundleId],
    bundles: &[BundleId],
) -> Result<()> {
    // BEGIN IMMEDIATE takes the write lock first: the compare and the set cannot interleave
    // with another attach, nor with a bundle delete (which checks attachments the same way).
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM agents WHERE tenant_id = ? AND id = ?")
            .bind(tenant.0)
            .bind(agent.0)
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    let current: Vec<i64> = sqlx::query_scalar(
        "SELECT bundle_id FROM agent_bundles WHERE agent_id = ? ORDER BY position",
    )
    .bind(agent.0)
    .fetch_all(&mut *tx)
    .await?;
    if current.iter().copied().ne(expected.iter().map(|b| b.0)) {
        return Err(StoreError::Conflict);
    }
    for bundle in bundles.iter().filter(|b| !expected.contains(b)) {
        let live: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM bundles WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL",
        )
        .bind(tenant.0)
        .bind(bundle.0)
        .fetch_optional(&mut *tx)
        .await?;
        if live.is_none() {
            return Err(StoreError::Conflict);
        }
    }
    sqlx::query("DELETE FROM agent_bundles WHERE agent_id = ?")
        .bind(agent.0)
        .execute(&mut *tx)
        .await?;
    for (i, bundle) in bundles.iter().enumerate() {
        sqlx::query("INSERT INTO agent_bundles (agent_id, bundle_id, position) VALUES (?, ?, ?)")
            .bind(agent.0)
            .bind(bundle.0)
            .bind(position(i))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn attached_to(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: TenantId,
    bundle: i64,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT a.name FROM agent_bundles ab JOIN agents a ON a.id = ab.agent_id \
         WHERE a.tenant_id = ? AND ab.bundle_id = ? ORDER BY a.name",
    )
    .bind(tenant.0)
    .bind(bundle)
    .fetch_all(&mut **tx)
    .await?)
}

pub(super) async fn with_bundle(
    pool: &SqlitePool,
    tenant: TenantId,
    bundle: BundleId,
) -> Result<Vec<String>> {
    let mut tx = pool.begin().await?;
    let names = attached_to(&mut tx, tenant, bundle.0).await?;
    tx.commit().await?;
    Ok(names)
}

pub(super) async fn delete_bundle_unless_attached(
    pool: &SqlitePool,
    tenant: TenantId,
    name: &str,
    now: DateTime<Utc>,
) -> Result<BundleDeletion> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let id: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM bundles WHERE tenant_id = ? AND name = ? AND deleted_at IS NULL",
    )
    .bind(tenant.0)
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        return Ok(BundleDeletion::NotFound);
    };
    let agents = attached_to(&mut tx, tenant, id).await?;
    if !agents.is_empty() {
        return Ok(BundleDeletion::Attached(agents));
    }
    sqlx::query("UPDATE bundles SET deleted_at = ? WHERE id = ?")
        .bind(ts(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(BundleDeletion::Deleted)
}

pub(super) async fn session_reads(
    pool: &SqlitePool,
    tenant: TenantId,
    session: &str,
) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT r.name, r.version FROM session_reads r JOIN sessions s ON s.id = r.session_id \
         WHERE s.tenant_id = ? AND s.id = ? ORDER BY r.name",
    )
    .bind(tenant.0)
    .bind(session)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get("version")?)))
        .collect()
}

pub(super) async fn set_session_reads(
    pool: &SqlitePool,
    tenant: TenantId,
    session: &str,
    reads: &[(String, i64)],
) -> Result<()> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sessions WHERE tenant_id = ? AND id = ?")
            .bind(tenant.0)
            .bind(session)
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    sqlx::query("DELETE FROM session_reads WHERE session_id = ?")
        .bind(session)
        .execute(&mut *tx)
        .await?;
    for (name, version) in reads {
        sqlx::query("INSERT INTO session_reads (session_id, name, version) VALUES (?, ?, ?)")
            .bind(session)
            .bind(name)
            .bind(version)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
