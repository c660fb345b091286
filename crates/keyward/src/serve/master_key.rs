//! Finding the master key at start, and never generating one over existing data.

use std::path::Path;

use anyhow::{bail, Context};
use keyward_crypto::MasterKey;
use keyward_store::Store;
use keyward_vault::{MasterKeyCheck, Vault, META_MASTER_FINGERPRINT};

use crate::datadir::{self, DATABASE_FILE, MASTER_KEY_FILE, MASTER_KEY_PENDING_FILE};

/// Meta key: where this install's master key lives (`file` or `env`).
const META_KEY_SOURCE: &str = "master_key_source";
pub const MASTER_KEY_ENV: &str = "KEYWARD_MASTER_KEY";

/// Where the key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    File,
    Env,
}

impl KeySource {
    fn as_str(self) -> &'static str {
        match self {
            KeySource::File => "file",
            KeySource::Env => "env",
        }
    }
}

/// Read the key from `KEYWARD_MASTER_KEY` or `DATA_DIR/master.key`; generate it only when the
/// data dir holds no database yet.
pub fn load_or_create(dir: &Path) -> anyhow::Result<(MasterKey, KeySource)> {
    if let Some(text) = std::env::var_os(MASTER_KEY_ENV).filter(|v| !v.is_empty()) {
        let text = text
            .into_string()
            .map_err(|_| anyhow::anyhow!("{MASTER_KEY_ENV} is not valid text"))?;
        let key = MasterKey::from_base64(&text)
            .with_context(|| format!("{MASTER_KEY_ENV} must be base64 of 32 bytes"))?;
        return Ok((key, KeySource::Env));
    }
    let file = dir.join(MASTER_KEY_FILE);
    if file.exists() {
        return Ok((read_key_file(&file)?, KeySource::File));
    }
    // An empty file is what a first start that crashed early leaves: it holds no data.
    if std::fs::metadata(dir.join(DATABASE_FILE)).is_ok_and(|m| m.len() > 0) {
        bail!(
            "{} holds a keyward database but no master key: {MASTER_KEY_FILE} is missing and \
             {MASTER_KEY_ENV} is not set. Refusing to start; restore the key (a new key could \
             not open the existing data).",
            dir.display()
        );
    }
    let key = MasterKey::generate();
    datadir::write_private(&file, key.to_base64().as_bytes())?;
    Ok((key, KeySource::File))
}

pub fn read_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read master key file {}", path.display()))?,
    );
    MasterKey::from_base64(&text)
        .with_context(|| format!("{} is not a keyward master key", path.display()))
}

/// Check the key against the store, finishing or undoing an interrupted rotation; record the
/// fingerprint on a fresh install.
pub async fn verify(
    dir: &Path,
    store: &dyn Store,
    key: MasterKey,
    source: KeySource,
) -> anyhow::Result<MasterKey> {
    let pending = dir.join(MASTER_KEY_PENDING_FILE);
    match Vault::check_master_key(store, &key).await? {
        MasterKeyCheck::Matches => {
            if pending.exists() {
                // A rotation wrote the new key but did not commit: the old key still rules.
                std::fs::remove_file(&pending)?;
            }
            Ok(key)
        }
        MasterKeyCheck::Unset => {
            store
                .meta_set(META_MASTER_FINGERPRINT, &key.fingerprint())
                .await?;
            store.meta_set(META_KEY_SOURCE, source.as_str()).await?;
            Ok(key)
        }
        MasterKeyCheck::Mismatch => {
            if source == KeySource::File && pending.exists() {
                let new = read_key_file(&pending)?;
                if Vault::check_master_key(store, &new).await? == MasterKeyCheck::Matches {
                    // A rotation committed but crashed before renaming the key file.
                    std::fs::rename(&pending, dir.join(MASTER_KEY_FILE))?;
                    datadir::sync_dir(&pending)?;
                    return Ok(new);
                }
            }
            let hint = match store.meta_get(META_KEY_SOURCE).await?.as_deref() {
                Some("env") if source == KeySource::File => {
                    " This data dir was initialised with KEYWARD_MASTER_KEY; set it."
                }
                _ => "",
            };
            bail!(
                "the master key does not match the data in {}: refusing to start.{hint}",
                dir.display()
            )
        }
    }
}

/// Generate a new master key and re-wrap every tenant key under it: the new key is made
/// durable first (`master.key.new`), then the store commits, then the file is renamed. A crash
/// at any point leaves a key that opens the data (see [`verify`]).
pub async fn rotate(dir: &Path, vault: &Vault, source: KeySource) -> anyhow::Result<()> {
    if source == KeySource::Env {
        bail!(
            "the master key comes from {MASTER_KEY_ENV}; keyward never writes it to disk, so it \
             cannot rotate it in place"
        );
    }
    let new = MasterKey::generate();
    let pending = dir.join(MASTER_KEY_PENDING_FILE);
    datadir::write_private(&pending, new.to_base64().as_bytes())?;
    vault.rotate_master_key(new).await?;
    std::fs::rename(&pending, dir.join(MASTER_KEY_FILE))?;
    datadir::sync_dir(&pending)?;
    Ok(())
}
