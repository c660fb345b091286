//! Envelope encryption for keyward, with no I/O. A [`MasterKey`] wraps one [`DataKey`] per
//! tenant; data keys seal entry values with AES-256-GCM under associated data ([`Aad`]) that
//! binds tenant, bundle, key name and version, so a ciphertext copied to another row fails to
//! open. Plaintext only ever lives in [`Secret`], which zeroizes on drop and prints `[REDACTED]`.

mod aead;
mod keys;
mod secret;
pub mod token;

pub use aead::Aad;
pub use keys::{DataKey, MasterKey};
pub use secret::Secret;

/// Why a cryptographic operation failed. Variants never carry key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The ciphertext does not authenticate under this key and associated data: it was
    /// tampered with, moved to another row, or sealed under another key.
    #[error("ciphertext failed to authenticate (tampered, moved, or wrong key)")]
    Unauthentic,
    /// The sealed blob is too short or has an unknown format version.
    #[error("sealed value is malformed")]
    Malformed,
    /// A master key given as text is not base64 of exactly 32 bytes.
    #[error("master key must be base64 of exactly 32 bytes")]
    BadMasterKey,
}
