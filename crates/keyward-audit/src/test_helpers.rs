//! Fixtures for this crate's unit tests: sample records, chains, and an in-memory sink that
//! counts its transactions and can be told to fail.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::chain::{canonical_json, ChainHead};
use crate::{AuditError, AuditMode, AuditRecord, AuditSink, StoredAuditRecord};

/// A plausible record; `i` varies its content.
pub fn sample(tenant: &str, i: u64) -> AuditRecord {
    let mut r = AuditRecord::new(
        tenant,
        AuditMode::Gateway,
        "POST",
        "api.openai.com",
        "/v1/chat/completions",
    );
    r.agent = Some("coder".into());
    r.session = Some(format!("ses_{}", i % 3));
    r.status = Some(200);
    r.bytes_in = 100 + i;
    r.bytes_out = 2000 + i;
    r.credential = Some("OPENAI_API_KEY".into());
    r.credential_version = Some(1);
    r.model = Some("gpt-4o-mini".into());
    r.tokens_in = Some(i);
    r.cost_usd = Some(0.000_15 * i as f64);
    r.request_headers
        .insert("content-type".into(), "application/json".into());
    r
}

/// A valid chain of `n` records for `tenant`.
pub fn chain_of(tenant: &str, n: u64) -> Vec<StoredAuditRecord> {
    let mut head = ChainHead::genesis();
    (1..=n)
        .map(|i| head.append(tenant, canonical_json(&sample(tenant, i)).unwrap()))
        .collect()
}

/// Keeps appended records in memory; `fail` makes every call fail; `lose_ack` makes the next
/// append store its batch and still report a failure (a commit whose answer was lost).
#[derive(Default)]
pub struct MemorySink {
    pub records: Mutex<Vec<StoredAuditRecord>>,
    pub appends: AtomicUsize,
    pub fail: AtomicBool,
    pub lose_ack: AtomicBool,
}

impl MemorySink {
    pub fn stored(&self) -> Vec<StoredAuditRecord> {
        self.records.lock().unwrap().clone()
    }

    pub fn of_tenant(&self, tenant: &str) -> Vec<StoredAuditRecord> {
        self.stored()
            .into_iter()
            .filter(|r| r.tenant == tenant)
            .collect()
    }

    fn check(&self) -> Result<(), AuditError> {
        if self.fail.load(Ordering::SeqCst) {
            Err(AuditError::Io(std::io::Error::other("disk on fire")))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl AuditSink for MemorySink {
    async fn last_hash(&self, tenant: &str) -> Result<Option<(i64, String)>, AuditError> {
        self.check()?;
        Ok(self
            .of_tenant(tenant)
            .last()
            .map(|r| (r.seq, r.hash.clone())))
    }

    async fn append(&self, batch: &[StoredAuditRecord]) -> Result<(), AuditError> {
        self.check()?;
        self.appends.fetch_add(1, Ordering::SeqCst);
        self.records.lock().unwrap().extend_from_slice(batch);
        if self.lose_ack.swap(false, Ordering::SeqCst) {
            return Err(AuditError::Io(std::io::Error::other("connection reset")));
        }
        Ok(())
    }
}
