//! AES-256-GCM sealing with random 96-bit nonces. Sealed format: `version(1) || nonce(12) ||
//! ciphertext || tag(16)`. The version byte lets a later format coexist with this one.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

use crate::CryptoError;

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Associated data: what a ciphertext is bound to. Encoded with length prefixes so that no two
/// different contexts share an encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aad(Vec<u8>);

impl Aad {
    /// An entry value: tenant, bundle, key name, and the version it was written at.
    pub fn entry(tenant_id: i64, bundle_id: i64, key_name: &str, version: i64) -> Self {
        let mut aad = Self::with_label("entry");
        aad.push(&tenant_id.to_be_bytes());
        aad.push(&bundle_id.to_be_bytes());
        aad.push(key_name.as_bytes());
        aad.push(&version.to_be_bytes());
        aad
    }

    /// A tenant's data key, wrapped by the master key.
    pub fn tenant_key(tenant_id: i64) -> Self {
        let mut aad = Self::with_label("tenant-key");
        aad.push(&tenant_id.to_be_bytes());
        aad
    }

    /// Any other object, named by a fixed label (for example the CA's private key).
    pub fn labelled(label: &str) -> Self {
        Self::with_label(label)
    }

    fn with_label(label: &str) -> Self {
        let mut aad = Self(b"keyward/v1".to_vec());
        aad.push(label.as_bytes());
        aad
    }

    fn push(&mut self, part: &[u8]) {
        // Parts are at most a few hundred bytes; u32 cannot overflow for any input we build.
        self.0.extend_from_slice(&(part.len() as u32).to_be_bytes());
        self.0.extend_from_slice(part);
    }
}

pub(crate) fn seal(key: &[u8; 32], aad: &Aad, plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let payload = Payload {
        msg: plaintext,
        aad: &aad.0,
    };
    let ciphertext = match cipher.encrypt(Nonce::from_slice(&nonce), payload) {
        Ok(ct) => ct,
        // AES-GCM encryption fails only for messages over 64 GiB; our values are ≤ 64 KiB.
        Err(_) => unreachable!("AES-GCM refused a small plaintext"),
    };
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

pub(crate) fn open(key: &[u8; 32], aad: &Aad, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != FORMAT_V1 {
        return Err(CryptoError::Malformed);
    }
    let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: &aad.0,
            },
        )
        .map_err(|_| CryptoError::Unauthentic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_do_not_collide() {
        assert_ne!(Aad::tenant_key(1), Aad::labelled("tenant-key"));
        assert_ne!(Aad::entry(1, 2, "A", 3), Aad::entry(1, 2, "A", 4));
        assert_ne!(Aad::entry(1, 2, "A", 3), Aad::entry(2, 2, "A", 3));
    }
}
