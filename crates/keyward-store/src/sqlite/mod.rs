//! The embedded SQLite backend: one file in WAL mode with `synchronous=FULL`, so a write that
//! returned survives `kill -9` (and power loss) at any instant.

mod agents;
mod audit;
mod limits;
mod rows;
mod sessions;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::path::Path;
use std::time::Duration;

use crate::{AgentId, AgentRecord, BundleDeletion, EntryValue, SessionRecord, TokenRecord};
use crate::{Bundle, BundleId, BundleMeta, Entry, Result, Store, StoreError, Tenant, TenantId};
use rows::{bundle_meta_from_row, entry_from_row, tenant_from_row, token_from_row, ts};

/// Schema migrations, applied in order; `meta.schema_version` records the last one applied.
const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
    include_str!("schema_v5.sql"),
];

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open (creating if needed) the database file and bring its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            .execute(&mut *tx)
            .await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'schema_version'")
                .fetch_optional(&mut *tx)
                .await?;
        let current: usize = current
            .map(|v| v.parse().map_err(|_| StoreError::Corrupt("schema_version")))
            .transpose()?
            .unwrap_or(0);
        if current > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(
                "database was written by a newer keyward (schema_version too high)",
            ));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            // The first migration's `CREATE TABLE meta` would clash with the bootstrap above.
            let sql = sql.replace("CREATE TABLE meta", "CREATE TABLE IF NOT EXISTS meta");
            sqlx::raw_sql(&sql).execute(&mut *tx).await?;
            sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)")
                .bind((i + 1).to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn entries(tx: &mut Transaction<'_, Sqlite>, bundle: BundleId) -> Result<Vec<Entry>> {
        let rows = sqlx::query(
            "SELECT name, version, sealed, plain, injection FROM entries \
             WHERE bundle_id = ? ORDER BY name",
        )
        .bind(bundle.0)
        .fetch_all(&mut **tx)
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn insert_entries(
        tx: &mut Transaction<'_, Sqlite>,
        bundle: BundleId,
        entries: &[Entry],
    ) -> Result<()> {
        for entry in entries {
            let (sealed, plain) = match &entry.value {
                EntryValue::Sealed(bytes) => (Some(bytes.as_slice()), None),
                EntryValue::Variable(text) => (None, Some(text.as_str())),
            };
            sqlx::query(
                "INSERT INTO entries (bundle_id, name, version, sealed, plain, injection) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(bundle.0)
            .bind(&entry.name)
            .bind(entry.version)
            .bind(sealed)
            .bind(plain)
            .bind(entry.injection.as_deref())
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    async fn load_bundle(
        tx: &mut Transaction<'_, Sqlite>,
        row: Option<sqlx::sqlite::SqliteRow>,
    ) -> Result<Option<Bundle>> {
        let Some(row) = row else { return Ok(None) };
        let meta = bundle_meta_from_row(&row)?;
        let entries = Self::entries(tx, meta.id).await?;
        Ok(Some(Bundle { meta, entries }))
    }
}

const BUNDLE_COLUMNS: &str = "id, name, version, created_at, last_rotated_at, deleted_at";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[async_trait]
impl Store for SqliteStore {
    async fn meta_get(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_tenant(&self, tenant: &Tenant) -> Result<()> {
        sqlx::query("INSERT INTO tenants (id, name, wrapped_key, created_at) VALUES (?, ?, ?, ?)")
            .bind(tenant.id.0)
            .bind(&tenant.name)
            .bind(&tenant.wrapped_key)
            .bind(ts(tenant.created_at))
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Exists
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        sqlx::query("SELECT id, name, wrapped_key, created_at FROM tenants WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(tenant_from_row)
            .transpose()
    }

    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        sqlx::query("SELECT id, name, wrapped_key, created_at FROM tenants WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(tenant_from_row)
            .transpose()
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        sqlx::query("SELECT id, name, wrapped_key, created_at FROM tenants ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(tenant_from_row)
            .collect()
    }

    async fn rewrap_tenant_keys(
        &self,
        rewrapped: &[(TenantId, Vec<u8>)],
        meta: &[(&str, &str)],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (id, wrapped) in rewrapped {
            sqlx::query("UPDATE tenants SET wrapped_key = ? WHERE id = ?")
                .bind(wrapped)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
        }
        for (key, value) in meta {
            sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)")
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_token(&self, token: &TokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO tokens (id, tenant_id, kind, digest, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&token.id)
        .bind(token.tenant.0)
        .bind(token.kind.as_str())
        .bind(&token.digest)
        .bind(ts(token.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn token_by_digest(&self, digest: &[u8]) -> Result<Option<TokenRecord>> {
        sqlx::query("SELECT id, tenant_id, kind, digest, created_at FROM tokens WHERE digest = ?")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(token_from_row)
            .transpose()
    }

    async fn delete_token(&self, tenant: TenantId, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM tokens WHERE tenant_id = ? AND id = ?")
            .bind(tenant.0)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_bundle(
        &self,
        tenant: TenantId,
        bundle: &Bundle,
        max_bundles: usize,
    ) -> Result<()> {
        // BEGIN IMMEDIATE takes the write lock first, so the count and the insert cannot
        // interleave with another writer's (the 51st bundle is refused exactly).
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let taken: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM bundles WHERE tenant_id = ? AND name = ? AND deleted_at IS NULL",
        )
        .bind(tenant.0)
        .bind(&bundle.meta.name)
        .fetch_one(&mut *tx)
        .await?;
        if taken > 0 {
            return Err(StoreError::Exists);
        }
        let live: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM bundles WHERE tenant_id = ? AND deleted_at IS NULL",
        )
        .bind(tenant.0)
        .fetch_one(&mut *tx)
        .await?;
        if usize::try_from(live).unwrap_or(usize::MAX) >= max_bundles {
            return Err(StoreError::QuotaExceeded);
        }
        let meta = &bundle.meta;
        sqlx::query(
            "INSERT INTO bundles (id, tenant_id, name, version, created_at, last_rotated_at) \
             VALUES (?, ?, ?, ?, ?, NULL)",
        )
        .bind(meta.id.0)
        .bind(tenant.0)
        .bind(&meta.name)
        .bind(meta.version)
        .bind(ts(meta.created_at))
        .execute(&mut *tx)
        .await?;
        Self::insert_entries(&mut tx, meta.id, &bundle.entries).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn bundle(&self, tenant: TenantId, name: &str) -> Result<Option<Bundle>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {BUNDLE_COLUMNS} FROM bundles \
             WHERE tenant_id = ? AND name = ? AND deleted_at IS NULL"
        ))
        .bind(tenant.0)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let bundle = Self::load_bundle(&mut tx, row).await?;
        tx.commit().await?;
        Ok(bundle)
    }

    async fn bundle_by_id(&self, tenant: TenantId, id: BundleId) -> Result<Option<Bundle>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {BUNDLE_COLUMNS} FROM bundles WHERE tenant_id = ? AND id = ?"
        ))
        .bind(tenant.0)
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?;
        let bundle = Self::load_bundle(&mut tx, row).await?;
        tx.commit().await?;
        Ok(bundle)
    }

    async fn list_bundles(&self, tenant: TenantId) -> Result<Vec<Bundle>> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(&format!(
            "SELECT {BUNDLE_COLUMNS} FROM bundles \
             WHERE tenant_id = ? AND deleted_at IS NULL ORDER BY name"
        ))
        .bind(tenant.0)
        .fetch_all(&mut *tx)
        .await?;
        let mut bundles = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(bundle) = Self::load_bundle(&mut tx, Some(row)).await? {
                bundles.push(bundle);
            }
        }
        tx.commit().await?;
        Ok(bundles)
    }

    async fn rotate_bundle(
        &self,
        tenant: TenantId,
        id: BundleId,
        expected_version: i64,
        entries: &[Entry],
        now: DateTime<Utc>,
    ) -> Result<BundleMeta> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(&format!(
            "SELECT {BUNDLE_COLUMNS} FROM bundles \
             WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL"
        ))
        .bind(tenant.0)
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound);
        };
        let mut meta = bundle_meta_from_row(&row)?;
        if meta.version != expected_version {
            return Err(StoreError::Conflict);
        }
        meta.version += 1;
        meta.last_rotated_at = Some(now);
        sqlx::query("UPDATE bundles SET version = ?, last_rotated_at = ? WHERE id = ?")
            .bind(meta.version)
            .bind(ts(now))
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM entries WHERE bundle_id = ?")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        Self::insert_entries(&mut tx, id, entries).await?;
        tx.commit().await?;
        Ok(meta)
    }

    async fn delete_bundle(
        &self,
        tenant: TenantId,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE bundles SET deleted_at = ? \
             WHERE tenant_id = ? AND name = ? AND deleted_at IS NULL",
        )
        .bind(ts(now))
        .bind(tenant.0)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_session(&self, tenant: TenantId, session: &SessionRecord) -> Result<()> {
        sessions::create(&self.pool, tenant, session).await
    }

    async fn session(&self, tenant: TenantId, id: &str) -> Result<Option<SessionRecord>> {
        sessions::get(&self.pool, tenant, id).await
    }

    async fn session_by_token_digest(&self, digest: &[u8]) -> Result<Option<SessionRecord>> {
        sessions::by_token_digest(&self.pool, digest).await
    }

    async fn list_sessions(&self, tenant: TenantId) -> Result<Vec<SessionRecord>> {
        sessions::list(&self.pool, tenant).await
    }

    async fn end_session(
        &self,
        tenant: TenantId,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>> {
        sessions::end(&self.pool, tenant, id, now).await
    }

    async fn set_session_bundles(
        &self,
        tenant: TenantId,
        id: &str,
        bundles: &[(BundleId, String)],
    ) -> Result<()> {
        sessions::set_bundles(&self.pool, tenant, id, bundles).await
    }

    async fn delete_bundle_unless_attached(
        &self,
        tenant: TenantId,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<BundleDeletion> {
        agents::delete_bundle_unless_attached(&self.pool, tenant, name, now).await
    }

    async fn create_agent(&self, tenant: TenantId, agent: &AgentRecord) -> Result<()> {
        agents::create(&self.pool, tenant, agent).await
    }

    async fn agent(&self, tenant: TenantId, name: &str) -> Result<Option<AgentRecord>> {
        agents::get(&self.pool, tenant, name).await
    }

    async fn list_agents(&self, tenant: TenantId) -> Result<Vec<AgentRecord>> {
        agents::list(&self.pool, tenant).await
    }

    async fn agent_by_token_digest(&self, digest: &[u8]) -> Result<Option<AgentRecord>> {
        agents::by_token_digest(&self.pool, digest).await
    }

    async fn delete_agent(&self, tenant: TenantId, name: &str) -> Result<bool> {
        agents::delete(&self.pool, tenant, name).await
    }

    async fn set_agent_token(&self, tenant: TenantId, name: &str, digest: &[u8]) -> Result<bool> {
        agents::set_token(&self.pool, tenant, name, digest).await
    }

    async fn set_agent_bundles(
        &self,
        tenant: TenantId,
        agent: AgentId,
        expected: &[BundleId],
        bundles: &[BundleId],
    ) -> Result<()> {
        agents::set_bundles(&self.pool, tenant, agent, expected, bundles).await
    }

    async fn agents_with_bundle(&self, tenant: TenantId, bundle: BundleId) -> Result<Vec<String>> {
        agents::with_bundle(&self.pool, tenant, bundle).await
    }

    async fn session_reads(&self, tenant: TenantId, session: &str) -> Result<Vec<(String, i64)>> {
        agents::session_reads(&self.pool, tenant, session).await
    }

    async fn set_session_reads(
        &self,
        tenant: TenantId,
        session: &str,
        reads: &[(String, i64)],
    ) -> Result<()> {
        agents::set_session_reads(&self.pool, tenant, session, reads).await
    }
}
