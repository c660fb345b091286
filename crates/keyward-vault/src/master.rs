//! Master-key checks and rotation.

use keyward_crypto::MasterKey;

use crate::{Result, Vault, VaultError, META_MASTER_FINGERPRINT};

/// How a master key relates to an opened store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterKeyCheck {
    /// The store records this key's fingerprint.
    Matches,
    /// The store records another key's fingerprint: refuse to start.
    Mismatch,
    /// The store records no fingerprint yet (a fresh install).
    Unset,
}

impl Vault {
    /// Compare a key with the fingerprint the store recorded.
    pub async fn check_master_key(
        store: &dyn keyward_store::Store,
        key: &MasterKey,
    ) -> Result<MasterKeyCheck> {
        Ok(match store.meta_get(META_MASTER_FINGERPRINT).await? {
            None => MasterKeyCheck::Unset,
            Some(fp) if fp == key.fingerprint() => MasterKeyCheck::Matches,
            Some(_) => MasterKeyCheck::Mismatch,
        })
    }

    /// Re-wrap every tenant's data key under `new` and record its fingerprint, in one
    /// transaction; then use `new` from this process on. Values are not touched: they are
    /// sealed by the data keys, which do not change.
    pub async fn rotate_master_key(&self, new: MasterKey) -> Result<()> {
        let _serialised = self.inner.key_writes.lock().await;
        let old = self.master();
        let tenants = self.store().list_tenants().await?;
        let mut rewrapped = Vec::with_capacity(tenants.len());
        for tenant in &tenants {
            let data_key = old
                .unwrap(tenant.id.0, &tenant.wrapped_key)
                .map_err(|_| VaultError::Decryption)?;
            rewrapped.push((tenant.id, new.wrap(tenant.id.0, &data_key)));
        }
        let fingerprint = new.fingerprint();
        self.store()
            .rewrap_tenant_keys(&rewrapped, &[(META_MASTER_FINGERPRINT, &fingerprint)])
            .await?;
        match self.inner.master.write() {
            Ok(mut guard) => *guard = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
        Ok(())
    }
}
