//! The data directory: where it is, and the files in it.
//!
//! ```text
//! DATA_DIR/
//!   master.key      256-bit master key, base64, 0600 (absent when KEYWARD_MASTER_KEY is used)
//!   keyward.db      SQLite database (WAL: keyward.db-wal, keyward.db-shm)
//!   admin.token     the operator token, 0600, written once at initialisation
//!   server.json     {"pid", "api_url", "proxy_url"} of the running server, for the CLI
//! ```

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub const MASTER_KEY_FILE: &str = "master.key";
pub const MASTER_KEY_PENDING_FILE: &str = "master.key.new";
pub const DATABASE_FILE: &str = "keyward.db";
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
pub const SERVER_FILE: &str = "server.json";

/// Resolve the data dir: the flag, `$KEYWARD_DATA_DIR`, `$XDG_DATA_HOME/keyward`, or
/// `~/.local/share/keyward`.
pub fn resolve(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("KEYWARD_DATA_DIR").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("keyward"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .context("cannot find a data dir: set --data-dir, KEYWARD_DATA_DIR or HOME")?;
    Ok(PathBuf::from(home).join(".local/share/keyward"))
}

/// Create the data dir (0700) if needed.
pub fn ensure(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))
}

/// Write a file readable by its owner only, atomically (temp file, fsync, rename, fsync dir):
/// after a crash the file is either absent or whole.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    sync_dir(path)
}

/// Create an empty file with mode 0600 if it does not exist (SQLite then creates its -wal and
/// -shm files with the same mode).
pub fn create_private_file(path: &Path) -> anyhow::Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok(())
}

/// fsync the directory holding `path`, so a rename in it is durable.
pub fn sync_dir(path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Where the running server listens; written after both listeners are bound.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ServerInfo {
    pub pid: u32,
    pub api_url: String,
    pub proxy_url: String,
}

pub fn read_server_info(dir: &Path) -> Option<ServerInfo> {
    let text = fs::read_to_string(dir.join(SERVER_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}
