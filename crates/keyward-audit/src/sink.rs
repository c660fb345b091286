//! Where the writer's batches go. [`AuditSink`] is implemented for every
//! [`keyward_store::AuditStore`] (the SQLite table, keyed by tenant NAME) and by
//! [`crate::JsonlSink`] (a JSON-lines file, for static-config mode).

use async_trait::async_trait;

use crate::{AuditError, AuditStore, StoredAuditRecord};

/// Durable storage for chained records. The writer calls it from one task only.
#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// `(seq, hash)` of the tenant's last stored record; `None` if it has none.
    async fn last_hash(&self, tenant: &str) -> Result<Option<(i64, String)>, AuditError>;
    /// Persist a batch durably, all of it or none of it.
    async fn append(&self, batch: &[StoredAuditRecord]) -> Result<(), AuditError>;
}

#[async_trait]
impl<S: AuditStore + ?Sized> AuditSink for S {
    async fn last_hash(&self, tenant: &str) -> Result<Option<(i64, String)>, AuditError> {
        Ok(self.last_audit(tenant).await?)
    }

    async fn append(&self, batch: &[StoredAuditRecord]) -> Result<(), AuditError> {
        Ok(self.append_audit(batch).await?)
    }
}
