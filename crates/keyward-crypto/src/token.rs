//! Bearer tokens: random, shown once, stored only as SHA-256 digests.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes of randomness in every token (256 bits; the floor is 128).
const TOKEN_BYTES: usize = 32;

/// A new random token with a readable prefix such as `kw_t_`. The text is returned to the
/// caller once; only [`digest`] of it is stored.
pub fn generate(prefix: &str) -> String {
    let mut raw = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    format!("{prefix}{}", hex::encode(raw))
}

/// The stored form of a token.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compare two digests without leaking, through timing, how many leading bytes matched.
pub fn digests_match(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_prefixed() {
        let a = generate("kw_t_");
        let b = generate("kw_t_");
        assert!(a.starts_with("kw_t_") && a.len() == 5 + 64);
        assert_ne!(a, b);
        assert!(digests_match(&digest(&a), &digest(&a)));
        assert!(!digests_match(&digest(&a), &digest(&b)));
    }
}

/// A proxy-mode placeholder for one credential of one session: `prefix` followed by 48 hex
/// characters derived from the session token and the credential's name. Unique per session
/// and credential, shaped like a real key so SDK format checks pass, and unguessable without
/// the session token; the data plane recomputes it instead of storing it.
pub fn placeholder(session_token: &str, key_name: &str, prefix: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"keyward/v1/placeholder\0");
    hasher.update(session_token.as_bytes());
    hasher.update(b"\0");
    hasher.update(key_name.as_bytes());
    format!("{prefix}{}", hex::encode(&hasher.finalize()[..24]))
}

#[cfg(test)]
mod placeholder_tests {
    use super::*;

    #[test]
    fn placeholders_differ_per_session_and_key() {
        let a = placeholder("kw_s_1", "OPENAI_API_KEY", "sk-proj-kw");
        assert!(a.starts_with("sk-proj-kw") && a.len() == 10 + 48);
        assert_eq!(a, placeholder("kw_s_1", "OPENAI_API_KEY", "sk-proj-kw"));
        assert_ne!(a, placeholder("kw_s_2", "OPENAI_API_KEY", "sk-proj-kw"));
        assert_ne!(a, placeholder("kw_s_1", "OTHER", "sk-proj-kw"));
    }
}
