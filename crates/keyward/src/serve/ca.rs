//! keyward's CA: made once at initialisation (ECDSA P-256), the private key sealed like any
//! secret and kept in the database, the certificate public at `DATA_DIR/ca.pem`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use keyward_proxy::mint::{self, Minter};
use keyward_vault::Vault;

pub const CA_FILE: &str = "ca.pem";
const META_CA_CERT: &str = "ca_cert_pem";
const META_CA_KEY: &str = "ca_key_sealed";
const SEAL_LABEL: &str = "ca-private-key";

/// Load the CA, creating it on first start; returns its minter and certificate PEM.
pub async fn load_or_create(dir: &Path, vault: &Vault) -> anyhow::Result<(Arc<Minter>, String)> {
    let store = vault.store();
    let cert_pem = match (
        store.meta_get(META_CA_CERT).await?,
        store.meta_get(META_CA_KEY).await?,
    ) {
        (Some(cert), Some(sealed_b64)) => {
            let sealed = base64::engine::general_purpose::STANDARD
                .decode(sealed_b64)
                .context("the stored CA key is corrupt")?;
            let key = vault
                .open_system(SEAL_LABEL, &sealed)
                .await
                .context("the stored CA key failed to decrypt")?;
            let key_pem = key.expose_str().context("the stored CA key is not PEM")?;
            let minter = Minter::new(&cert, key_pem)?;
            write_cert(dir, &cert)?;
            return Ok((Arc::new(minter), cert));
        }
        _ => {
            let ca = mint::generate_ca()?;
            let sealed = vault.seal_system(SEAL_LABEL, ca.key_pem.as_bytes()).await?;
            // The key first: a crash in between leaves no certificate without its key.
            store
                .meta_set(
                    META_CA_KEY,
                    &base64::engine::general_purpose::STANDARD.encode(sealed),
                )
                .await?;
            store.meta_set(META_CA_CERT, &ca.cert_pem).await?;
            let minter = Minter::new(&ca.cert_pem, &ca.key_pem)?;
            write_cert(dir, &ca.cert_pem)?;
            (minter, ca.cert_pem)
        }
    };
    Ok((Arc::new(cert_pem.0), cert_pem.1))
}

fn write_cert(dir: &Path, pem: &str) -> anyhow::Result<()> {
    let path = dir.join(CA_FILE);
    if std::fs::read_to_string(&path).ok().as_deref() == Some(pem) {
        return Ok(());
    }
    crate::datadir::write_private(&path, pem.as_bytes())
}
