//! Canary provider keys and raw-byte leak scans of files and directories.

use std::path::{Path, PathBuf};

/// A fake OpenAI project key; must never appear in keyward's storage, logs or responses.
pub const CANARY_OPENAI: &str = "sk-proj-CANARY-openai-9f8e7d6c5b4a39281706f5e4d3c2b1a0";
/// A fake Anthropic key; must never appear in keyward's storage, logs or responses.
pub const CANARY_ANTHROPIC: &str = "sk-ant-api03-CANARY-anthropic-0a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// True when `needle` occurs in `hay` (an empty needle always does).
pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Every regular file under `dir` (recursively, symlinks not followed) whose raw bytes
/// contain `needle`. Files that vanish while scanning (e.g. SQLite `-shm`) are skipped.
/// Errors if `dir` itself cannot be read.
pub fn find_in_dir(dir: &Path, needle: &[u8]) -> anyhow::Result<Vec<PathBuf>> {
    let mut hits = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    let mut first = true;
    while let Some(current) = pending.pop() {
        let entries = match std::fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) if !first && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", current.display())),
        };
        first = false;
        for entry in entries {
            let path = entry?.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                pending.push(path);
            } else if meta.is_file() {
                match std::fs::read(&path) {
                    Ok(bytes) if contains_bytes(&bytes, needle) => hits.push(path),
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", path.display())),
                }
            }
        }
    }
    hits.sort();
    Ok(hits)
}

/// Panics, naming the file(s), if `needle` occurs in any file under `dir` (raw bytes,
/// recursive, including SQLite `-wal` / `-shm` files). Also panics if `dir` is unreadable.
#[allow(clippy::panic)]
pub fn assert_absent_in_dir(dir: &Path, needle: &str) {
    match find_in_dir(dir, needle.as_bytes()) {
        Ok(hits) if hits.is_empty() => {}
        Ok(hits) => panic!(
            "secret {needle:?} found in {} file(s) under {}: {}",
            hits.len(),
            dir.display(),
            hits.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => panic!("scanning {} for a secret: {e:#}", dir.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_bytes_basics() {
        assert!(contains_bytes(b"abcdef", b"cde"));
        assert!(!contains_bytes(b"abcdef", b"xyz"));
        assert!(!contains_bytes(b"ab", b"abc"));
        assert!(contains_bytes(b"", b""));
    }

    #[test]
    fn finds_secret_in_nested_wal_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("a/b"))?;
        std::fs::write(dir.path().join("clean.txt"), b"nothing here")?;
        let mut wal = b"\x00\x01binary".to_vec();
        wal.extend_from_slice(CANARY_OPENAI.as_bytes());
        std::fs::write(dir.path().join("a/b/keyward.db-wal"), &wal)?;
        let hits = find_in_dir(dir.path(), CANARY_OPENAI.as_bytes())?;
        assert_eq!(hits, vec![dir.path().join("a/b/keyward.db-wal")]);
        assert_absent_in_dir(dir.path(), CANARY_ANTHROPIC);
        let caught = std::panic::catch_unwind(|| assert_absent_in_dir(dir.path(), CANARY_OPENAI));
        let msg = caught
            .err()
            .and_then(|p| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert!(msg.contains("keyward.db-wal"), "panic message: {msg}");
        Ok(())
    }
}
