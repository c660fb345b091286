//! Persistence for keyward. [`Store`] is the one interface the rest of the code sees; every
//! method takes the tenant first, so a cross-tenant read is hard to write by accident. The
//! store holds only sealed values: encryption happens above it, in `keyward-vault`.
//!
//! Backends: [`sqlite::SqliteStore`] (the embedded default: one WAL file, `synchronous=FULL`, so
//! an acknowledged write survives `kill -9`).

mod agent;
mod audit;
mod error;
mod limits;
mod model;
mod session;
pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use agent::{AgentRecord, BundleDeletion};
pub use audit::{AuditFilter, AuditStore, StoredAuditRecord};
pub use error::StoreError;
pub use limits::{
    LimitScope, LimitStore, Limits, SessionLimits, UsageGroup, UsageGroupBy, UsageQuery, UsageStore,
};
pub use model::*;
pub use session::SessionRecord;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything keyward persists. Implementations must make each method atomic.
#[async_trait]
pub trait Store: LimitStore + UsageStore + Send + Sync + 'static {
    /// A value of the install's own settings (master-key fingerprint, schema notes).
    async fn meta_get(&self, key: &str) -> Result<Option<String>>;
    async fn meta_set(&self, key: &str, value: &str) -> Result<()>;

    /// Fails with [`StoreError::Exists`] if the name is taken.
    async fn create_tenant(&self, tenant: &Tenant) -> Result<()>;
    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>>;
    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>>;
    /// Replace every tenant's wrapped key and the given meta values in one transaction
    /// (master-key rotation). Tenants not listed keep their key.
    async fn rewrap_tenant_keys(
        &self,
        rewrapped: &[(TenantId, Vec<u8>)],
        meta: &[(&str, &str)],
    ) -> Result<()>;

    async fn insert_token(&self, token: &TokenRecord) -> Result<()>;
    /// Find a live token by the SHA-256 digest of its text.
    async fn token_by_digest(&self, digest: &[u8]) -> Result<Option<TokenRecord>>;
    /// Delete one of the tenant's tokens; `false` if the tenant has no such token.
    async fn delete_token(&self, tenant: TenantId, id: &str) -> Result<bool>;

    /// Create a bundle. [`StoreError::Exists`] if the tenant already has a live bundle of this
    /// name; [`StoreError::QuotaExceeded`] if it already has `max_bundles` live bundles.
    async fn create_bundle(
        &self,
        tenant: TenantId,
        bundle: &Bundle,
        max_bundles: usize,
    ) -> Result<()>;
    /// A live (not deleted) bundle by name.
    async fn bundle(&self, tenant: TenantId, name: &str) -> Result<Option<Bundle>>;
    /// A bundle by id, deleted or not: sessions keep the values they resolved.
    async fn bundle_by_id(&self, tenant: TenantId, id: BundleId) -> Result<Option<Bundle>>;
    /// Live bundles, sorted by name.
    async fn list_bundles(&self, tenant: TenantId) -> Result<Vec<Bundle>>;
    /// Replace a live bundle's entries and bump its version to `expected_version + 1`.
    /// [`StoreError::Conflict`] if its version is no longer `expected_version` (a concurrent
    /// rotation won), [`StoreError::NotFound`] if it is gone.
    async fn rotate_bundle(
        &self,
        tenant: TenantId,
        id: BundleId,
        expected_version: i64,
        entries: &[Entry],
        now: DateTime<Utc>,
    ) -> Result<BundleMeta>;
    /// Mark a live bundle deleted; `false` if there is none. Its entries stay (sealed) for the
    /// sessions that already resolved it.
    async fn delete_bundle(&self, tenant: TenantId, name: &str, now: DateTime<Utc>)
        -> Result<bool>;

    /// Insert a session with its bundle references, in one transaction.
    async fn create_session(&self, tenant: TenantId, session: &SessionRecord) -> Result<()>;
    /// One of the tenant's sessions, running or ended.
    async fn session(&self, tenant: TenantId, id: &str) -> Result<Option<SessionRecord>>;
    /// A session by the SHA-256 digest of its token, running or ended: the caller compares
    /// the digest in constant time and checks `ended_at`.
    async fn session_by_token_digest(&self, digest: &[u8]) -> Result<Option<SessionRecord>>;
    /// The tenant's sessions, newest first.
    async fn list_sessions(&self, tenant: TenantId) -> Result<Vec<SessionRecord>>;
    /// Set `ended_at` to `now` unless it is already set, and return the session as stored
    /// afterwards; `None` if the tenant has no such session.
    async fn end_session(
        &self,
        tenant: TenantId,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>>;
    /// Replace a running session's bundle references (a resume re-resolved their names).
    /// [`StoreError::NotFound`] if the tenant has no such running session.
    async fn set_session_bundles(
        &self,
        tenant: TenantId,
        id: &str,
        bundles: &[(BundleId, String)],
    ) -> Result<()>;

    /// Mark a live bundle deleted unless an agent has it attached, in one transaction (so an
    /// attach cannot slip in between the check and the delete).
    async fn delete_bundle_unless_attached(
        &self,
        tenant: TenantId,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<BundleDeletion>;

    /// Create an agent. [`StoreError::Exists`] if the tenant has an agent of this name.
    async fn create_agent(&self, tenant: TenantId, agent: &AgentRecord) -> Result<()>;
    async fn agent(&self, tenant: TenantId, name: &str) -> Result<Option<AgentRecord>>;
    /// The tenant's agents, sorted by name.
    async fn list_agents(&self, tenant: TenantId) -> Result<Vec<AgentRecord>>;
    /// An agent by the SHA-256 digest of its gateway token; the caller compares the digest in
    /// constant time.
    async fn agent_by_token_digest(&self, digest: &[u8]) -> Result<Option<AgentRecord>>;
    /// Delete an agent and its attachments; `false` if the tenant has no such agent.
    async fn delete_agent(&self, tenant: TenantId, name: &str) -> Result<bool>;
    /// Replace an agent's token digest; `false` if the tenant has no such agent.
    async fn set_agent_token(&self, tenant: TenantId, name: &str, digest: &[u8]) -> Result<bool>;
    /// Replace an agent's attached bundles if they are still `expected` (compare-and-set, so
    /// two concurrent attaches cannot both pass the vault's checks). [`StoreError::Conflict`]
    /// if they changed or a newly listed bundle is no longer live; [`StoreError::NotFound`]
    /// if the agent is gone.
    async fn set_agent_bundles(
        &self,
        tenant: TenantId,
        agent: AgentId,
        expected: &[BundleId],
        bundles: &[BundleId],
    ) -> Result<()>;
    /// Names of the tenant's agents that have this bundle attached, sorted.
    async fn agents_with_bundle(&self, tenant: TenantId, bundle: BundleId) -> Result<Vec<String>>;

    /// The entry versions a session last received in its env (name, version).
    async fn session_reads(&self, tenant: TenantId, session: &str) -> Result<Vec<(String, i64)>>;
    /// Replace what [`Store::session_reads`] returns. [`StoreError::NotFound`] if the tenant
    /// has no such session.
    async fn set_session_reads(
        &self,
        tenant: TenantId,
        session: &str,
        reads: &[(String, i64)],
    ) -> Result<()>;
}
