use keyward_core::ErrorCode;
use keyward_store::StoreError;

/// Why a vault operation failed. `Rejected` carries a message written for the client, which
/// never contains a submitted value; the other variants are server faults whose details go to
/// the log only.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The request was refused: bad input, missing object, conflict or quota.
    #[error("{message}")]
    Rejected { code: ErrorCode, message: String },
    /// A stored value or key failed to authenticate: tampering, a moved ciphertext, or a
    /// wrong master key.
    #[error("a stored value failed to decrypt")]
    Decryption,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl VaultError {
    pub fn rejected(code: ErrorCode, message: impl Into<String>) -> Self {
        VaultError::Rejected {
            code,
            message: message.into(),
        }
    }

    /// The stable code the edges report.
    pub fn code(&self) -> ErrorCode {
        match self {
            VaultError::Rejected { code, .. } => *code,
            VaultError::Decryption => ErrorCode::DecryptionFailed,
            VaultError::Store(StoreError::Backend(_)) => ErrorCode::StoreUnavailable,
            VaultError::Store(_) => ErrorCode::Internal,
        }
    }
}
