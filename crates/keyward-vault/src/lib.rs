//! The encrypted secret service. It sits between the edges (control API, data plane, CLI) and
//! the [`Store`]: it validates what clients send, seals secret values with the tenant's data
//! key before they reach the store, opens them for the data plane, authenticates tokens,
//! creates and resolves sessions, and announces every rotation and every ended session on a
//! broadcast channel (for `config_update` frames and the data plane's caches).

mod agents;
mod auth;
mod bundles;
pub mod env;
mod error;
mod events;
pub mod injection;
pub mod limits;
mod master;
mod sessions;
pub use master::MasterKeyCheck;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use keyward_crypto::{DataKey, MasterKey};
use keyward_store::{Store, TenantId};

pub use agents::{
    Agent, IssuedAgent, NewAgent, SessionSync, AGENT_SESSION_PREFIX, AGENT_TOKEN_PREFIX,
};
pub use auth::{IssuedToken, Principal};
pub use bundles::{BundleInput, OpenedEntry, PatchInput, RotationOutcome};
pub use env::credential_placeholder;
pub use error::VaultError;
pub use events::{BundleChanged, VaultEvent};
pub use injection::InjectionRule;
pub use sessions::{
    is_session_id, CreatedSession, EgressPolicy, LlmSettings, NewSession, ResolvedSession, Session,
    SessionMode, SESSION_ID_PREFIX, SESSION_TOKEN_PREFIX,
};

/// Name of the built-in tenant that owns the operator token.
pub const DEFAULT_TENANT: &str = "default";
/// Meta key holding the master key's public fingerprint.
pub const META_MASTER_FINGERPRINT: &str = "master_key_fingerprint";

pub type Result<T, E = VaultError> = std::result::Result<T, E>;

/// The secret service. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    master: RwLock<MasterKey>,
    /// Unwrapped tenant data keys. Wrapped keys never change except on master-key rotation,
    /// which re-wraps the same data keys, so entries never go stale.
    data_keys: RwLock<HashMap<TenantId, DataKey>>,
    changes: tokio::sync::broadcast::Sender<VaultEvent>,
    /// Bumped (synchronously, before the write returns) by every change that can make a
    /// cached view of a session stale: rotations, deletions, ended sessions. Caches compare it
    /// on each use, so the very next request after a rotation sees the new value.
    epoch: std::sync::atomic::AtomicU64,
    /// Serialises tenant creation with master-key rotation, so no tenant key is wrapped under
    /// a key that is being retired.
    key_writes: tokio::sync::Mutex<()>,
}

impl Vault {
    /// Wrap an opened store. The caller has already checked the master key's fingerprint
    /// (see [`Vault::check_master_key`]).
    pub fn new(store: Arc<dyn Store>, master: MasterKey) -> Self {
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                store,
                master: RwLock::new(master),
                data_keys: RwLock::new(HashMap::new()),
                changes,
                epoch: std::sync::atomic::AtomicU64::new(0),
                key_writes: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Subscribe to bundle rotations and deletions and to sessions ending.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<VaultEvent> {
        self.inner.changes.subscribe()
    }

    /// The current change epoch (see `Inner::epoch`).
    pub fn epoch(&self) -> u64 {
        self.inner.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Mark every cached session view stale.
    pub(crate) fn bump_epoch(&self) {
        self.inner
            .epoch
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn master(&self) -> MasterKey {
        // A poisoned lock means a panic while swapping keys; the key itself is still whole.
        match self.inner.master.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The tenant's data key, unwrapped once and then cached.
    async fn data_key(&self, tenant: TenantId) -> Result<DataKey> {
        if let Some(key) = self.cached_data_key(tenant) {
            return Ok(key);
        }
        let record = self
            .inner
            .store
            .tenant(tenant)
            .await?
            .ok_or(VaultError::Store(keyward_store::StoreError::NotFound))?;
        let key = self
            .master()
            .unwrap(tenant.0, &record.wrapped_key)
            .map_err(|_| VaultError::Decryption)?;
        if let Ok(mut cache) = self.inner.data_keys.write() {
            cache.insert(tenant, key.clone());
        }
        Ok(key)
    }

    /// Seal an install-wide object (the CA's private key) under the `default` tenant's data
    /// key: it then survives master-key rotation untouched, like every tenant value.
    pub async fn seal_system(&self, label: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let key = self.system_key().await?;
        Ok(key.seal(&keyward_crypto::Aad::labelled(label), plaintext))
    }

    /// Open what [`Vault::seal_system`] sealed.
    pub async fn open_system(&self, label: &str, sealed: &[u8]) -> Result<keyward_crypto::Secret> {
        let key = self.system_key().await?;
        key.open(&keyward_crypto::Aad::labelled(label), sealed)
            .map_err(|_| VaultError::Decryption)
    }

    async fn system_key(&self) -> Result<DataKey> {
        let tenant = self
            .store()
            .tenant_by_name(DEFAULT_TENANT)
            .await?
            .ok_or(VaultError::Store(keyward_store::StoreError::NotFound))?;
        self.data_key(tenant.id).await
    }

    fn cached_data_key(&self, tenant: TenantId) -> Option<DataKey> {
        self.inner
            .data_keys
            .read()
            .ok()
            .and_then(|cache| cache.get(&tenant).cloned())
    }
}
