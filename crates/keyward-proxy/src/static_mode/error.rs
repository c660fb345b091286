//! Why a config file was refused. Every message names where the problem is (the line, the
//! route, the variable, the path) and never a key: values that the YAML or TOML reader quotes
//! back are masked before they reach a message.

use std::path::PathBuf;

/// A refused config file, at start (keyward exits 1) or on reload (the old config stays).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StaticConfigError {
    /// The file cannot be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Bad YAML/TOML, an unknown field, or a value a rule refuses.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    /// Nothing to serve.
    #[error("{}: listeners is empty", path.display())]
    NoListeners { path: PathBuf },
    /// Two listeners with one address.
    #[error("{}: two listeners bind {bind}", path.display())]
    DuplicateBind { path: PathBuf, bind: String },
    /// Two routes with one path on a listener.
    #[error("{}: listener {bind} has two routes with path {route_path}", path.display())]
    DuplicatePath {
        path: PathBuf,
        bind: String,
        route_path: String,
    },
    /// `key: "$VAR"` and `VAR` is not set (or empty).
    #[error("route {route}: environment variable {var} is not set or empty")]
    EnvUnset { route: String, var: String },
    /// `key: { file: … }` cannot be read.
    #[error("route {route}: cannot read key file {}: {error}", path.display())]
    KeyFile {
        route: String,
        path: PathBuf,
        error: std::io::Error,
    },
    /// The key file holds nothing but whitespace.
    #[error("route {route}: key file {} is empty", path.display())]
    KeyFileEmpty { route: String, path: PathBuf },
    /// The key has bytes an HTTP header cannot carry.
    #[error(
        "route {route}: the key from {source_name} has characters an HTTP header cannot carry"
    )]
    KeyInvalid { route: String, source_name: String },
}

/// Values longer than this that a reader quotes back in backticks are masked (field and
/// provider names are shorter; keys are longer).
const MAX_ECHO: usize = 15;

/// Mask what a reader's message quotes from the file: every `"…"` string, and any `` `…` ``
/// longer than [`MAX_ECHO`] (a key pasted as a field name or a provider).
pub fn scrub(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(['"', '`']) {
        let quote = rest[start..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=start]);
        let after = &rest[start + 1..];
        let Some(len) = after.find(quote) else {
            out.push_str(after);
            return out;
        };
        let inner = &after[..len];
        if quote == '"' || inner.chars().count() > MAX_ECHO {
            out.push('…');
        } else {
            out.push_str(inner);
        }
        out.push(quote);
        rest = &after[len + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn masks_quoted_values() {
        assert_eq!(
            scrub(r#"invalid type: string "sk-secret-1234", expected struct Auth"#),
            r#"invalid type: string "…", expected struct Auth"#
        );
        assert_eq!(
            scrub("unknown field `kee`, expected one of key, passthrough"),
            "unknown field `kee`, expected one of key, passthrough"
        );
        assert_eq!(
            scrub("unknown variant `sk-proj-abcdefghijklmnop`, expected one of"),
            "unknown variant `…`, expected one of"
        );
        assert_eq!(scrub("odd `quote"), "odd `quote");
    }
}
