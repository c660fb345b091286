//! Reading the config file: YAML (`.yaml`, `.yml`, anything else) or TOML (`.toml`), chosen by
//! extension, into [`FileConfig`]. Errors carry the reader's line and column and a message
//! with quoted values masked ([`super::error::scrub`]); neither reader's source snippet is
//! shown, since the line it would quote may hold an inline key.

use std::path::Path;

use super::error::{scrub, StaticConfigError};
use super::model::FileConfig;

/// The file's format, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Toml,
}

impl Format {
    pub fn of(path: &Path) -> Self {
        let toml = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        if toml {
            Format::Toml
        } else {
            Format::Yaml
        }
    }
}

/// Parse `text`, the contents of `path`.
pub fn parse(path: &Path, text: &str) -> Result<FileConfig, StaticConfigError> {
    let syntax = |line: u64, column: u64, message: &str| StaticConfigError::Syntax {
        path: path.to_owned(),
        line,
        column,
        message: scrub(message),
    };
    match Format::of(path) {
        Format::Yaml => {
            let options = serde_saphyr::options! { with_snippet: false };
            serde_saphyr::from_str_with_options(text, options).map_err(|e| {
                let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
                let message = e.to_string();
                // The reader appends " at line L, column C": the error names it once already.
                let message = message
                    .rfind(" at line ")
                    .map_or(message.as_str(), |i| &message[..i]);
                syntax(line, column, message)
            })
        }
        Format::Toml => toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map_or((0, 0), |span| line_column(text, span.start));
            syntax(line, column, e.message().trim())
        }),
    }
}

/// 1-based line and column of byte `offset`.
fn line_column(text: &str, offset: usize) -> (u64, u64) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line as u64, column as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(name: &str, text: &str) -> String {
        match parse(Path::new(name), text) {
            Ok(_) => panic!("{name} parsed"),
            Err(e) => e.to_string(),
        }
    }

    const ROUTE: &str =
        "listeners:\n  - bind: 127.0.0.1:3000\n    routes:\n      - path: /openai\n";

    #[test]
    fn yaml_errors_name_the_line_and_hide_the_key() {
        let e = error(
            "k.yaml",
            &format!("{ROUTE}        backend: {{ provider: openai }}\n        auth: {{ kee: \"sk-proj-secret-value\" }}\n"),
        );
        assert!(e.starts_with("k.yaml:6:"), "{e}");
        assert!(e.contains("unknown field `kee`"), "{e}");
        assert!(!e.contains("sk-proj"), "{e}");

        let e = error(
            "k.yaml",
            &format!("{ROUTE}        backend: {{ provider: sk-proj-secret-value }}\n        auth: {{ passthrough: true }}\n"),
        );
        assert!(e.starts_with("k.yaml:5:"), "{e}");
        assert!(!e.contains("sk-proj"), "{e}");

        let e = error(
            "k.yaml",
            &format!("{ROUTE}        backend:\n          provider: custom\n        auth: {{ passthrough: true }}\n"),
        );
        assert!(e.contains("provider custom needs base_url"), "{e}");
        assert!(e.starts_with("k.yaml:6:"), "{e}");
    }

    #[test]
    fn toml_errors_name_the_line_and_hide_the_key() {
        let text = "[[listeners]]\nbind = \"127.0.0.1:1\"\n[[listeners.routes]]\npath = \"/x\"\n\
                    backend = { provider = \"openai\" }\nauth = \"sk-proj-secret-value\"\n";
        let e = error("k.toml", text);
        assert!(e.starts_with("k.toml:6:"), "{e}");
        assert!(!e.contains("sk-proj"), "{e}");
    }

    #[test]
    fn parses_every_key_source() {
        let text = format!(
            "{ROUTE}        backend: {{ provider: openai, model: gpt-4o-mini }}\n        auth: {{ key: \"$OPENAI_API_KEY\" }}\n\
             \x20     - path: /a\n        backend: {{ provider: anthropic }}\n        auth: {{ key: {{ file: key.txt }} }}\n\
             \x20     - path: /c/\n        backend: {{ provider: custom, base_url: \"http://localhost:11434/v1/\" }}\n        auth: {{ key: sk-inline-1 }}\n\
             \x20       clients: [ {{ token_sha256: \"{}\", name: me }} ]\n\
             \x20     - path: /p\n        backend: {{ provider: openrouter }}\n        auth: {{ passthrough: true }}\n\
             audit: {{ file: a.jsonl }}\n",
            "ab".repeat(32)
        );
        let config = parse(Path::new("k.yml"), &text).unwrap();
        let routes = &config.listeners[0].routes;
        assert_eq!(routes.len(), 4);
        assert!(
            matches!(&routes[0].auth, super::super::model::Auth::Key(super::super::model::KeySpec::Env(v)) if v == "OPENAI_API_KEY")
        );
        assert_eq!(routes[2].path.0, "/c");
        assert_eq!(
            routes[2].backend.base_url.as_deref(),
            Some("http://localhost:11434/v1")
        );
        assert_eq!(
            routes[2].clients.as_ref().unwrap().0[0].token_sha256,
            [0xab; 32]
        );
        assert!(matches!(
            routes[3].auth,
            super::super::model::Auth::Passthrough
        ));
    }

    #[test]
    fn line_columns() {
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ab", 0), (1, 1));
    }
}
