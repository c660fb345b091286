//! keyward's audit log: exactly one [`AuditRecord`] per call through the data plane, chained
//! per tenant by hash so that an edited, inserted or deleted record is detectable, and written
//! by [`AuditWriter`] off the hot path, many records per transaction.
//!
//! How the data plane uses it, per request:
//!
//! ```text
//! let slot = writer.reserve()?;        // before forwarding; Err → 503 audit_unavailable
//! … forward, stream the answer back …
//! slot.write(record);                  // never blocks; the background task persists it
//! ```
//!
//! Records never hold secrets: callers pass credential *names* (never values), a path whose
//! query went through [`mask_query`], and headers that went through [`safe_headers`].
//!
//! Modules: [`record`] (the record and its sanitisers), [`chain`] (hashing and
//! verification), [`line`] (the JSON-lines form of export and of [`JsonlSink`]), [`sink`]
//! (where batches go), [`writer`] (the queue and its background task).

pub mod chain;
mod error;
mod jsonl;
pub mod line;
pub mod record;
mod sanitize;
pub mod sink;
pub mod writer;

#[cfg(test)]
mod test_helpers;

pub use chain::{verify, BreakReason, ChainBreak, ChainHead, Verifier, GENESIS_HASH};
pub use error::AuditError;
pub use jsonl::JsonlSink;
pub use keyward_store::{AuditFilter, AuditStore, StoredAuditRecord};
pub use line::StoredAuditRecordExt;
pub use record::{decision, AuditMode, AuditRecord};
pub use sanitize::{mask_query, safe_headers, MAX_HEADER_VALUE_BYTES};
pub use sink::AuditSink;
pub use writer::{AuditSlot, AuditUnavailable, AuditWriter, AuditWriterConfig};

pub type Result<T, E = AuditError> = std::result::Result<T, E>;
