//! A route's upstream key, ready for the wire: the credential header plus the state that
//! redacts the key from responses. Inline and `$VAR` keys are read once per load; a `file:`
//! key is checked on every call (one `stat`) and re-read when the file changed, so a
//! Kubernetes secret update (an atomic symlink swap) or an `echo > key.txt` reaches the very
//! next call. Change is judged by size, modification and change times, device and inode of the
//! file the path leads to now — never by inotify events, which a symlink swap does not raise
//! on the path itself.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use http::{HeaderName, HeaderValue};
use keyward_core::providers::AuthStyle;
use keyward_crypto::Secret;

use super::error::StaticConfigError;
use crate::redact::Redactor;
use crate::session::{Credential, SessionState};

/// The audit log's tenant in static config mode.
pub const TENANT: &str = "static";

/// One version of a key, as calls use it.
pub struct Loaded {
    pub credential: Arc<Credential>,
    /// Redacts this key from responses (see [`crate::gateway::forward`]).
    pub state: Arc<SessionState>,
}

/// Where a key came from, for re-reading and for messages.
#[derive(Debug, Clone)]
pub enum Origin {
    Inline,
    Env(String),
    File(PathBuf),
}

impl Origin {
    /// The credential name in audit records and logs (never the value).
    pub fn label(&self) -> String {
        match self {
            Origin::Inline => "inline".to_owned(),
            Origin::Env(var) => format!("${var}"),
            Origin::File(path) => format!("file:{}", path.display()),
        }
    }
}

/// A route's key and, for `file:` keys, what is needed to notice a change.
pub struct KeyCell {
    origin: Origin,
    style: AuthStyle,
    route: String,
    current: ArcSwap<Loaded>,
    /// `file:` keys: the last file state seen, and the version in use.
    watch: Option<Mutex<(Option<Fingerprint>, i64)>>,
}

impl KeyCell {
    /// `key: "$VAR"`: read from keyward's environment; `route` names the route in errors.
    pub fn from_env(var: &str, style: AuthStyle, route: &str) -> Result<Self, StaticConfigError> {
        let value = std::env::var(var).unwrap_or_default();
        let value = value.trim();
        if value.is_empty() {
            return Err(StaticConfigError::EnvUnset {
                route: route.to_owned(),
                var: var.to_owned(),
            });
        }
        let secret = Secret::from_string(value.to_owned());
        Self::new(Origin::Env(var.to_owned()), style, route, &secret, None)
    }

    /// `key: { file: PATH }` (`path` already resolved against the config file's folder).
    pub fn from_file(
        path: &Path,
        style: AuthStyle,
        route: &str,
    ) -> Result<Self, StaticConfigError> {
        let fingerprint = Fingerprint::of(path).ok();
        let secret = read_key_file(path, route)?;
        let origin = Origin::File(path.to_owned());
        Self::new(origin, style, route, &secret, Some(fingerprint))
    }

    /// An inline key, as the config file gave it.
    pub fn inline(
        secret: &Secret,
        style: AuthStyle,
        route: &str,
    ) -> Result<Self, StaticConfigError> {
        Self::new(Origin::Inline, style, route, secret, None)
    }

    /// `watch` is `Some` for file keys: the file's state when it was read.
    fn new(
        origin: Origin,
        style: AuthStyle,
        route: &str,
        secret: &Secret,
        watch: Option<Option<Fingerprint>>,
    ) -> Result<Self, StaticConfigError> {
        let loaded =
            build(&origin, style, secret, 1).ok_or_else(|| StaticConfigError::KeyInvalid {
                route: route.to_owned(),
                source_name: origin.label(),
            })?;
        Ok(Self {
            origin,
            style,
            route: route.to_owned(),
            current: ArcSwap::from_pointee(loaded),
            watch: watch.map(|fingerprint| Mutex::new((fingerprint, 1))),
        })
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The key to use now: a `file:` key is re-read first if its file changed. A file that
    /// cannot be read, or holds an unusable key, leaves the previous key in use (logged).
    pub fn current(&self) -> Arc<Loaded> {
        if let (Some(watch), Origin::File(path)) = (&self.watch, &self.origin) {
            self.refresh(watch, path);
        }
        self.current.load_full()
    }

    fn refresh(&self, watch: &Mutex<(Option<Fingerprint>, i64)>, path: &Path) {
        let now = Fingerprint::of(path).ok();
        let mut seen = watch.lock().unwrap_or_else(PoisonError::into_inner);
        if now.is_none() || seen.0 == now {
            // Missing for now (mid-swap, or deleted): keep the key we have.
            return;
        }
        seen.0 = now;
        let secret = match read_key_file(path, &self.route) {
            Ok(secret) => secret,
            Err(e) => {
                tracing::warn!(error = %e, "key file changed but cannot be used; keeping the previous key");
                return;
            }
        };
        if secret.expose() == self.current.load().credential.secret.expose() {
            return;
        }
        let version = seen.1 + 1;
        match build(&self.origin, self.style, &secret, version) {
            Some(loaded) => {
                seen.1 = version;
                self.current.store(Arc::new(loaded));
                tracing::info!(route = %self.route, key = %self.origin.label(), version, "key file changed: using the new key");
            }
            None => tracing::warn!(
                route = %self.route,
                key = %self.origin.label(),
                "key file changed to a value an HTTP header cannot carry; keeping the previous key"
            ),
        }
    }
}

/// The key in `path`, without surrounding whitespace (the trailing newline of `echo`).
fn read_key_file(path: &Path, route: &str) -> Result<Secret, StaticConfigError> {
    let bytes = std::fs::read(path).map_err(|error| StaticConfigError::KeyFile {
        route: route.to_owned(),
        path: path.to_owned(),
        error,
    })?;
    let trimmed = bytes.trim_ascii();
    if trimmed.is_empty() {
        return Err(StaticConfigError::KeyFileEmpty {
            route: route.to_owned(),
            path: path.to_owned(),
        });
    }
    Ok(Secret::new(trimmed.to_vec()))
}

/// The credential header and redacting state of one key version; `None` if the key cannot be
/// a header value.
fn build(origin: &Origin, style: AuthStyle, secret: &Secret, version: i64) -> Option<Loaded> {
    let mut raw = Vec::with_capacity(secret.len() + 7);
    if style == AuthStyle::Bearer {
        raw.extend_from_slice(b"Bearer ");
    }
    raw.extend_from_slice(secret.expose());
    let mut value = HeaderValue::from_bytes(&raw).ok()?;
    value.set_sensitive(true);
    let credential = Credential {
        name: origin.label(),
        version,
        header: HeaderName::from_static(style.header()),
        value,
        secret: secret.clone(),
        placeholder: String::new(),
    };
    let state = SessionState::standalone(TENANT, Redactor::new([secret.expose()]));
    Some(Loaded {
        credential: Arc::new(credential),
        state: Arc::new(state),
    })
}

/// What identifies a file's contents without reading them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    unix: (u64, u64, i64, i64),
}

impl Fingerprint {
    fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        #[cfg(unix)]
        let unix = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec())
        };
        Ok(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            unix,
        })
    }
}

/// The stand-in of a passthrough route: nothing injected, nothing of keyward's to redact.
pub fn passthrough() -> Loaded {
    Loaded {
        credential: Arc::new(Credential {
            name: "passthrough".to_owned(),
            version: 0,
            header: HeaderName::from_static("authorization"),
            value: HeaderValue::from_static(""),
            secret: Secret::new(Vec::new()),
            placeholder: String::new(),
        }),
        state: Arc::new(SessionState::standalone(TENANT, Redactor::default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_are_trimmed_and_re_read_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.txt");
        std::fs::write(&path, "sk-first-key-123456\n").unwrap();
        let cell = KeyCell::from_file(&path, AuthStyle::Bearer, "/r").unwrap();
        let first = cell.current();
        assert_eq!(first.credential.secret.expose(), b"sk-first-key-123456");
        assert_eq!(
            first.credential.value.as_bytes(),
            b"Bearer sk-first-key-123456"
        );
        assert_eq!(first.credential.version, 1);

        // A Kubernetes-style swap: a new file renamed over the path.
        let next = dir.path().join("key.new");
        std::fs::write(&next, "sk-second-key-7890\r\n").unwrap();
        std::fs::rename(&next, &path).unwrap();
        let second = cell.current();
        assert_eq!(second.credential.secret.expose(), b"sk-second-key-7890");
        assert_eq!(second.credential.version, 2);
        assert!(!second.state.redactor.is_empty());

        // Gone or empty: the last good key stays.
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(cell.current().credential.version, 2);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            cell.current().credential.secret.expose(),
            b"sk-second-key-7890"
        );
    }

    #[test]
    fn env_and_file_errors_name_their_source() {
        let e = KeyCell::from_env("KW_TEST_SURELY_UNSET", AuthStyle::XApiKey, "/r")
            .err()
            .unwrap();
        assert!(e.to_string().contains("KW_TEST_SURELY_UNSET"), "{e}");
        let e = KeyCell::from_file(Path::new("/nonexistent/kw.key"), AuthStyle::XApiKey, "/r")
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/kw.key"), "{e}");
        let bad = Secret::from_string("sk-bad\u{1}value-123".into());
        assert!(KeyCell::inline(&bad, AuthStyle::Bearer, "/r").is_err());
    }
}
