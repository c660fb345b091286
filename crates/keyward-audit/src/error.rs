//! Why an audit operation failed. No variant carries a record's contents.

use keyward_store::StoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The store refused or failed the read or the append.
    #[error("audit store: {0}")]
    Store(#[from] StoreError),
    /// The JSON-lines file could not be read, written or synced.
    #[error("audit file: {0}")]
    Io(#[from] std::io::Error),
    /// A record could not be serialised, or stored JSON does not have a record's shape.
    /// Only the position is kept: serde's messages may quote values.
    #[error("audit record JSON: {0}")]
    Json(String),
}

impl AuditError {
    pub(crate) fn json(e: &serde_json::Error) -> Self {
        AuditError::Json(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    }
}
