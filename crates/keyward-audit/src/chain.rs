//! The per-tenant hash chain. Each record's
//! `hash = hex(SHA-256(prev_hash || "\n" || record_json))`, where `record_json` is the record
//! serialised once in its fixed field order and stored as is, and `prev_hash` is the hash of
//! the tenant's previous record ([`GENESIS_HASH`] for the first). Changing a stored record
//! breaks its hash; removing or inserting one breaks the `seq` sequence or the next link.
//!
//! What the chain alone cannot show: records cut off the END of the log. Compare the head
//! (`seq`, `hash`) that `keyward audit verify` prints with one noted earlier to catch that.

use sha2::{Digest, Sha256};

use crate::{AuditError, AuditRecord, StoredAuditRecord};

/// `prev_hash` of a tenant's first record: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `hex(SHA-256(prev_hash || "\n" || record_json))`.
pub fn hash(prev_hash: &str, record_json: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(prev_hash.as_bytes());
    digest.update(b"\n");
    digest.update(record_json.as_bytes());
    hex::encode(digest.finalize())
}

/// The JSON text that is hashed and stored for `record`.
pub fn canonical_json(record: &AuditRecord) -> Result<String, AuditError> {
    serde_json::to_string(record).map_err(|e| AuditError::json(&e))
}

/// The end of a tenant's chain: the last record's `seq` and `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

impl ChainHead {
    /// Before the first record: seq 0, [`GENESIS_HASH`].
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }

    /// Link `record_json` after this head and move the head to it.
    pub fn append(&mut self, tenant: &str, record_json: String) -> StoredAuditRecord {
        let hash = hash(&self.hash, &record_json);
        let record = StoredAuditRecord {
            seq: self.seq + 1,
            tenant: tenant.to_owned(),
            record_json,
            prev_hash: std::mem::replace(&mut self.hash, hash.clone()),
            hash,
        };
        self.seq = record.seq;
        record
    }
}

/// What is wrong at the first bad record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakReason {
    /// The record's content does not hash to its stored `hash`: it was edited.
    Changed,
    /// A record is missing: a gap in `seq`, or a `prev_hash` that does not link to the record
    /// before (one was removed and the rest renumbered, or this one was forged in).
    Removed,
    /// A second record with a `seq` already seen, or one of another tenant.
    Inserted,
    /// The record with this `seq` is further on: records were swapped.
    Reordered,
}

impl BreakReason {
    /// Stable snake_case name, used in JSON (`first_bad.reason`).
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakReason::Changed => "changed",
            BreakReason::Removed => "removed",
            BreakReason::Inserted => "inserted",
            BreakReason::Reordered => "reordered",
        }
    }

    /// What the reason means, for people.
    pub const fn description(self) -> &'static str {
        match self {
            BreakReason::Changed => "its content does not match its hash (edited)",
            BreakReason::Removed => {
                "it is missing or does not link to the record before it (removed, or forged in)"
            }
            BreakReason::Inserted => "a record with this seq was already seen (inserted)",
            BreakReason::Reordered => "it appears out of order (reordered)",
        }
    }
}

impl std::fmt::Display for BreakReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first record where a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at seq {seq}: {}", reason.description())]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: BreakReason,
}

/// Checks one tenant's records in `seq` order, one at a time (so a long log can be checked
/// page by page). The first record must be seq 1.
#[derive(Debug, Clone)]
pub struct Verifier {
    tenant: Option<String>,
    head: ChainHead,
    checked: usize,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    pub fn new() -> Self {
        Self {
            tenant: None,
            head: ChainHead::genesis(),
            checked: 0,
        }
    }

    /// Check the next record.
    pub fn push(&mut self, record: &StoredAuditRecord) -> Result<(), ChainBreak> {
        let brk = |seq, reason| Err(ChainBreak { seq, reason });
        let tenant = self.tenant.get_or_insert_with(|| record.tenant.clone());
        if *tenant != record.tenant {
            return brk(record.seq, BreakReason::Inserted);
        }
        let expected = self.head.seq + 1;
        if record.seq < expected {
            return brk(record.seq, BreakReason::Inserted);
        }
        if record.seq > expected {
            return brk(expected, BreakReason::Removed);
        }
        if record.prev_hash != self.head.hash {
            return brk(record.seq, BreakReason::Removed);
        }
        if hash(&record.prev_hash, &record.record_json) != record.hash {
            return brk(record.seq, BreakReason::Changed);
        }
        self.head = ChainHead {
            seq: record.seq,
            hash: record.hash.clone(),
        };
        self.checked += 1;
        Ok(())
    }

    /// Records checked and found intact so far.
    pub fn checked(&self) -> usize {
        self.checked
    }

    /// The last intact record's `seq` and `hash` (genesis before any).
    pub fn head(&self) -> &ChainHead {
        &self.head
    }
}

/// Verify one tenant's whole chain, from seq 1, in the order given. `Ok(n)`: `n` records,
/// all intact.
pub fn verify(records: &[StoredAuditRecord]) -> Result<usize, ChainBreak> {
    let mut verifier = Verifier::new();
    for record in records {
        if let Err(mut brk) = verifier.push(record) {
            // A gap whose missing record shows up later is a swap, not a removal.
            let missing_is_later = brk.reason == BreakReason::Removed
                && brk.seq != record.seq
                && records.iter().any(|r| r.seq == brk.seq);
            if missing_is_later {
                brk.reason = BreakReason::Reordered;
            }
            return Err(brk);
        }
    }
    Ok(verifier.checked())
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
