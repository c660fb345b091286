//! Validated names. A [`Name`] names a tenant, bundle or agent; a [`KeyName`] names an entry,
//! which becomes an environment variable in the agent's process.

use std::fmt;

/// Why a name was refused. Messages never echo the rejected text: a caller could have pasted a
/// secret into the wrong field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Not `^[a-z0-9][a-z0-9-]{0,62}$`.
    #[error("names must match ^[a-z0-9][a-z0-9-]{{0,62}}$")]
    InvalidName,
    /// Not `^[A-Za-z_][A-Za-z0-9_]*$` (or longer than 256 bytes).
    #[error("key names must match ^[A-Za-z_][A-Za-z0-9_]*$")]
    InvalidKeyName,
    /// A name keyward sets itself in the agent's environment.
    #[error("key name is reserved by keyward")]
    ReservedKeyName,
}

/// A tenant, bundle or agent name: `^[a-z0-9][a-z0-9-]{0,62}$` (seed 001).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let bytes = raw.as_bytes();
        let valid_first = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let valid_rest = bytes[1.min(bytes.len())..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if valid_first && valid_rest && bytes.len() <= 63 {
            Ok(Self(raw.to_owned()))
        } else {
            Err(NameError::InvalidName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Names keyward sets in an agent's environment (proxy and CA settings of `keyward run`). A
/// bundle must not shadow them, in any letter case, or it could redirect the agent's traffic.
const RESERVED_KEY_NAMES: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "NODE_USE_ENV_PROXY",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "DENO_CERT",
    "CARGO_HTTP_CAINFO",
];

/// Longest accepted key name; environment variable names have no hard limit, but a bound keeps
/// every stored row small.
const MAX_KEY_NAME_BYTES: usize = 256;

/// An entry name: an environment-variable name that keyward does not reserve.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let bytes = raw.as_bytes();
        let valid_first = bytes
            .first()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
        let valid_rest = bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_');
        if !valid_first || !valid_rest || bytes.len() > MAX_KEY_NAME_BYTES {
            return Err(NameError::InvalidKeyName);
        }
        if is_reserved_key_name(raw) {
            return Err(NameError::ReservedKeyName);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `name` is one keyward sets itself (`KEYWARD_*` and the proxy/CA variables), compared
/// without regard to letter case.
pub fn is_reserved_key_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("KEYWARD_") || RESERVED_KEY_NAMES.contains(&upper.as_str())
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_names_follow_the_seed_regex() {
        for ok in ["a", "my-llm-keys", "0", "a-", &"a".repeat(63)] {
            assert!(Name::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "A", "my_keys", "a.b", "é", &"a".repeat(64), "a b"] {
            assert_eq!(Name::parse(bad), Err(NameError::InvalidName), "{bad}");
        }
    }

    #[test]
    fn key_names_are_env_names() {
        for ok in ["LLM_API_KEY", "_x", "a1", "Database_Url"] {
            assert!(KeyName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "É"] {
            assert_eq!(KeyName::parse(bad), Err(NameError::InvalidKeyName), "{bad}");
        }
    }

    #[test]
    fn reserved_names_in_any_case() {
        for reserved in [
            "KEYWARD_TOKEN",
            "keyward_x",
            "https_proxy",
            "Http_Proxy",
            "NO_PROXY",
            "all_proxy",
            "SSL_CERT_FILE",
            "node_extra_ca_certs",
            "CARGO_HTTP_CAINFO",
            "deno_cert",
        ] {
            assert_eq!(
                KeyName::parse(reserved),
                Err(NameError::ReservedKeyName),
                "{reserved}"
            );
        }
        assert!(KeyName::parse("KEYWARDX").is_ok());
    }
}
