//! Reading the small operator files of `keyward serve` (`--prices`, `--free-tier`): YAML, JSON
//! or TOML chosen by extension (`.json`, `.toml`, anything else YAML), into any serde type.
//! Error messages keep the reader's position but mask quoted values, since a line of a
//! free-tier file may hold a key.

use std::path::Path;

use serde::de::DeserializeOwned;

/// Why a file could not be read; the message names the file and never a value in it.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FileError {
    pub path: String,
    pub message: String,
}

impl FileError {
    pub fn new(path: &Path, message: impl Into<String>) -> Self {
        Self {
            path: path.display().to_string(),
            message: scrub(&message.into()),
        }
    }
}

/// Read and parse `path`.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<T, FileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| FileError::new(path, format!("cannot read the file: {e}")))?;
    parse(path, &text)
}

/// Parse `text`, the contents of `path`, by the extension of `path`.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, FileError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "json" => serde_json::from_str(text).map_err(|e| FileError::new(path, e.to_string())),
        "toml" => toml::from_str(text).map_err(|e| FileError::new(path, e.message().trim())),
        _ => {
            let options = serde_saphyr::options! { with_snippet: false };
            serde_saphyr::from_str_with_options(text, options)
                .map_err(|e| FileError::new(path, e.to_string()))
        }
    }
}

/// Replace every quoted or backticked span with `…`: parsers quote the offending value.
fn scrub(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    for c in message.chars() {
        match open {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    open = Some(c);
                }
            }
        }
    }
    if open.is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Probe {
        a: u32,
    }

    #[test]
    fn formats_by_extension() {
        let yaml: Probe = parse(Path::new("x.yaml"), "a: 1\n").unwrap();
        let json: Probe = parse(Path::new("x.JSON"), r#"{"a": 2}"#).unwrap();
        let toml: Probe = parse(Path::new("x.toml"), "a = 3\n").unwrap();
        assert_eq!([yaml.a, json.a, toml.a], [1, 2, 3]);
    }

    #[test]
    fn errors_hide_values() {
        let err = parse::<Probe>(Path::new("x.json"), r#"{"a": "sk-secret"}"#).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("x.json: "), "{text}");
        assert!(!text.contains("sk-secret"), "{text}");
        assert_eq!(scrub(r#"bad "value" and `x"#), "bad \"…\" and `…");
    }
}
