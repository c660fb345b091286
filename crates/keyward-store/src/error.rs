/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The object does not exist (in this tenant).
    #[error("not found")]
    NotFound,
    /// A unique name is already taken.
    #[error("already exists")]
    Exists,
    /// A per-tenant cap would be exceeded.
    #[error("quota exceeded")]
    QuotaExceeded,
    /// An optimistic-concurrency check failed: someone else changed the object first.
    #[error("concurrent modification")]
    Conflict,
    /// A stored row does not have the shape this version of keyward writes.
    #[error("corrupt row: {0}")]
    Corrupt(&'static str),
    /// The database failed. The message comes from the driver, which never sees plaintext.
    #[error("database error: {0}")]
    Backend(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}
