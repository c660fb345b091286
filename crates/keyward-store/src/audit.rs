//! Persistence of the audit log: [`AuditStore`], kept apart from [`crate::Store`] so the audit
//! work and the rest of the store grow independently. The store only keeps rows; building a
//! record, hashing it into its tenant's chain and verifying the chain is `keyward-audit`'s job.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;

/// One audit record as persisted: its canonical JSON text exactly as it was hashed, and its
/// place in its tenant's hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAuditRecord {
    /// Position in the tenant's chain: 1 for the first record, +1 per record, no gaps.
    pub seq: i64,
    /// The tenant's name (tenant names never change).
    pub tenant: String,
    /// The record serialised once, in a fixed field order. Verification hashes these bytes.
    pub record_json: String,
    /// `hash` of the tenant's previous record; 64 zeros for the first one.
    pub prev_hash: String,
    /// `hex(SHA-256(prev_hash || "\n" || record_json))`.
    pub hash: String,
}

/// Which of a tenant's records [`AuditStore::query_audit`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only records of this session id.
    pub session: Option<String>,
    /// Only records of this agent name.
    pub agent: Option<String>,
    /// Only records at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only records strictly before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only records with `seq > after_seq` (paging forward).
    pub after_seq: Option<i64>,
    /// Only records with `seq < before_seq` (paging backward).
    pub before_seq: Option<i64>,
    /// At most this many records.
    pub limit: u32,
    /// Newest first (highest `seq` first) instead of oldest first.
    pub newest_first: bool,
}

impl Default for AuditFilter {
    fn default() -> Self {
        Self {
            session: None,
            agent: None,
            since: None,
            until: None,
            after_seq: None,
            before_seq: None,
            limit: 100,
            newest_first: false,
        }
    }
}

/// The audit log's storage. Every method takes the tenant first, like [`crate::Store`].
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Append records (of any tenants) in ONE transaction: all of them or none. Fails with
    /// [`crate::StoreError::Exists`] if a `(tenant, seq)` is already taken.
    async fn append_audit(&self, records: &[StoredAuditRecord]) -> Result<()>;
    /// The `(seq, hash)` of the tenant's last record, `None` if it has none.
    async fn last_audit(&self, tenant: &str) -> Result<Option<(i64, String)>>;
    /// The tenant's records that match `filter`, ordered by `seq` (ascending unless
    /// `filter.newest_first`).
    async fn query_audit(
        &self,
        tenant: &str,
        filter: &AuditFilter,
    ) -> Result<Vec<StoredAuditRecord>>;
}
