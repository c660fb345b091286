//! The master key and per-tenant data keys.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

use crate::aead::{self, Aad};
use crate::{CryptoError, Secret};

fn random_key() -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    key
}

/// The 256-bit key that wraps every tenant's data key. It never seals values itself, so
/// rotating it means re-wrapping one small key per tenant.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    pub fn generate() -> Self {
        Self(random_key())
    }

    /// Parse base64 (standard alphabet, padding optional; surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let trimmed = text.trim();
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(trimmed)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
                .map_err(|_| CryptoError::BadMasterKey)?,
        );
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::BadMasterKey)?;
        Ok(Self(Zeroizing::new(bytes)))
    }

    /// The key as base64, for writing the key file. Zeroized when dropped.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.0.as_ref()))
    }

    /// A public fingerprint stored beside the data, so a wrong key is detected at start with a
    /// clear message instead of as a decryption failure later. A hash of the key under a fixed
    /// label: it reveals nothing about the key.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"keyward/v1/master-key-fingerprint");
        hasher.update(self.0.as_ref());
        hex::encode(&hasher.finalize()[..16])
    }

    /// Wrap a tenant's data key, bound to that tenant.
    pub fn wrap(&self, tenant_id: i64, data_key: &DataKey) -> Vec<u8> {
        aead::seal(&self.0, &Aad::tenant_key(tenant_id), data_key.0.as_ref())
    }

    /// Unwrap a tenant's data key; fails if the blob was wrapped for another tenant or key.
    pub fn unwrap(&self, tenant_id: i64, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        let raw = Zeroizing::new(aead::open(&self.0, &Aad::tenant_key(tenant_id), wrapped)?);
        let bytes: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Malformed)?;
        Ok(DataKey(Zeroizing::new(bytes)))
    }

    /// Seal a small object that belongs to no tenant (for example the CA's private key).
    pub fn seal_labelled(&self, label: &str, plaintext: &[u8]) -> Vec<u8> {
        aead::seal(&self.0, &Aad::labelled(label), plaintext)
    }

    pub fn open_labelled(&self, label: &str, sealed: &[u8]) -> Result<Secret, CryptoError> {
        aead::open(&self.0, &Aad::labelled(label), sealed).map(Secret::new)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

/// A tenant's data key: seals and opens that tenant's entry values.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    pub fn generate() -> Self {
        Self(random_key())
    }

    pub fn seal(&self, aad: &Aad, plaintext: &[u8]) -> Vec<u8> {
        aead::seal(&self.0, aad, plaintext)
    }

    pub fn open(&self, aad: &Aad, sealed: &[u8]) -> Result<Secret, CryptoError> {
        aead::open(&self.0, aad, sealed).map(Secret::new)
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let dk = DataKey::generate();
        let aad = Aad::entry(1, 7, "OPENAI_API_KEY", 3);
        let sealed = dk.seal(&aad, b"sk-canary");
        assert!(!sealed.windows(9).any(|w| w == b"sk-canary"));
        assert_eq!(
            dk.open(&aad, &sealed).map(|s| s.expose().to_vec()),
            Ok(b"sk-canary".to_vec())
        );
        // Moved to another tenant, bundle, key or version: refused.
        for other in [
            Aad::entry(2, 7, "OPENAI_API_KEY", 3),
            Aad::entry(1, 8, "OPENAI_API_KEY", 3),
            Aad::entry(1, 7, "OTHER", 3),
            Aad::entry(1, 7, "OPENAI_API_KEY", 4),
        ] {
            assert_eq!(dk.open(&other, &sealed), Err(CryptoError::Unauthentic));
        }
        // One flipped bit anywhere: refused.
        for i in 1..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 1;
            assert_eq!(
                dk.open(&aad, &flipped),
                Err(CryptoError::Unauthentic),
                "bit in byte {i}"
            );
        }
        // Another tenant's key: refused.
        assert_eq!(
            DataKey::generate().open(&aad, &sealed),
            Err(CryptoError::Unauthentic)
        );
    }

    #[test]
    fn master_key_wraps_per_tenant() {
        let mk = MasterKey::generate();
        let dk = DataKey::generate();
        let wrapped = mk.wrap(5, &dk);
        assert!(mk.unwrap(5, &wrapped).is_ok());
        assert!(mk.unwrap(6, &wrapped).is_err());
        assert!(MasterKey::generate().unwrap(5, &wrapped).is_err());
    }

    #[test]
    fn master_key_text_form() {
        let mk = MasterKey::generate();
        let again = MasterKey::from_base64(&format!(" {}\n", mk.to_base64().as_str()));
        assert_eq!(again.map(|k| k.fingerprint()), Ok(mk.fingerprint()));
        assert_eq!(
            MasterKey::from_base64("c2hvcnQ=").map(|_| ()),
            Err(CryptoError::BadMasterKey)
        );
        assert_eq!(format!("{mk:?}"), "MasterKey([REDACTED])");
    }
}
