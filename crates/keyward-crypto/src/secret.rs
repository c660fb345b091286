//! The one type that holds a decrypted value.

use std::fmt;
use zeroize::Zeroizing;

/// A decrypted secret value. Zeroized on drop; `Debug` prints `[REDACTED]`; no `Display`, no
/// `Serialize`. The value is read through [`Secret::expose`] / [`Secret::expose_str`] only, so
/// every place that touches plaintext is easy to grep for.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(value: Vec<u8>) -> Self {
        Self(Zeroizing::new(value))
    }

    pub fn from_string(value: String) -> Self {
        Self::new(value.into_bytes())
    }

    /// The plaintext bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The plaintext as text, if it is UTF-8 (values stored through the API always are).
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from_string("sk-canary".into());
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([REDACTED])");
        assert_eq!(s.expose_str(), Some("sk-canary"));
    }
}
