//! Secret bundles (seed 001): validation, sealing, rotation with per-entry versions, and
//! opening for the data plane.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use keyward_core::{caps, ErrorCode, KeyName, Name};
use keyward_crypto::{Aad, DataKey, Secret};
use keyward_store::{
    Bundle, BundleDeletion, BundleId, BundleMeta, Entry, EntryValue, StoreError, TenantId,
};

use crate::{BundleChanged, InjectionRule, Result, Vault, VaultError, VaultEvent};

/// The entries a client wants a bundle to hold (POST and PUT bodies).
#[derive(Default)]
pub struct BundleInput {
    pub values: BTreeMap<String, String>,
    pub variables: BTreeMap<String, String>,
    pub injections: BTreeMap<String, InjectionRule>,
}

/// A merge into an existing bundle (PATCH body).
#[derive(Default)]
pub struct PatchInput {
    /// Secrets to set (added or replaced).
    pub set: BTreeMap<String, String>,
    /// Variables to set (added or replaced).
    pub variables: BTreeMap<String, String>,
    /// Keys to remove.
    pub unset: Vec<String>,
    /// Injection rules to set for secrets of the merged bundle.
    pub injections: BTreeMap<String, InjectionRule>,
}

impl std::fmt::Debug for BundleInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleInput")
            .field("values", &self.values.keys().collect::<Vec<_>>())
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PatchInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatchInput")
            .field("set", &self.set.keys().collect::<Vec<_>>())
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .field("unset", &self.unset)
            .finish_non_exhaustive()
    }
}

/// The result of a rotation: the bundle as stored now and the keys that changed.
#[derive(Debug)]
pub struct RotationOutcome {
    pub bundle: Bundle,
    pub changed_keys: Vec<String>,
}

/// An entry opened for use: secrets decrypted, variables as stored.
#[derive(Debug, Clone)]
pub struct OpenedEntry {
    pub name: String,
    pub version: i64,
    pub value: Secret,
    pub is_secret: bool,
    pub injection: Option<InjectionRule>,
}

/// What an entry should hold, after validation and before sealing.
#[derive(Clone, PartialEq)]
struct Desired {
    value: Secret,
    is_secret: bool,
    injection: Option<InjectionRule>,
}

/// Serialises [`Vault::rotate`] within this process (see there).
static ROTATIONS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn reject(code: ErrorCode, message: impl Into<String>) -> VaultError {
    VaultError::rejected(code, message)
}

fn parse_bundle_name(raw: &str) -> Result<Name> {
    Name::parse(raw).map_err(|e| reject(e.into(), format!("bundle name: {e}")))
}

fn not_found() -> VaultError {
    reject(ErrorCode::SecretBundleNotFound, "no such secret bundle")
}

pub(crate) fn check_value(key: &str, value: &str) -> Result<()> {
    if value.len() > caps::MAX_VALUE_BYTES {
        return Err(reject(
            ErrorCode::ValueTooLarge,
            format!(
                "the value of {key} is larger than {} bytes",
                caps::MAX_VALUE_BYTES
            ),
        ));
    }
    if value.as_bytes().contains(&0) {
        return Err(reject(
            ErrorCode::ValueContainsNul,
            format!("the value of {key} contains a NUL byte"),
        ));
    }
    Ok(())
}

pub(crate) fn check_key(key: &str) -> Result<()> {
    KeyName::parse(key)
        .map(|_| ())
        .map_err(|e| reject(e.into(), format!("key {}: {e}", printable_key(key))))
}

/// A key name as it may appear in a message: valid names verbatim, anything else described,
/// since a malformed "name" could be a pasted secret.
pub(crate) fn printable_key(key: &str) -> String {
    if key.len() <= 64 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        key.to_owned()
    } else {
        format!("(an invalid name of {} bytes)", key.len())
    }
}

fn desired_entries(
    values: BTreeMap<String, String>,
    variables: BTreeMap<String, String>,
) -> Result<BTreeMap<String, Desired>> {
    let mut out = BTreeMap::new();
    for (key, value) in values {
        check_key(&key)?;
        check_value(&key, &value)?;
        out.insert(
            key,
            Desired {
                value: Secret::from_string(value),
                is_secret: true,
                injection: None,
            },
        );
    }
    for (key, value) in variables {
        check_key(&key)?;
        check_value(&key, &value)?;
        if out.contains_key(&key) {
            return Err(reject(
                ErrorCode::DuplicateKey,
                format!("{key} is given both as a secret and as a variable"),
            ));
        }
        out.insert(
            key,
            Desired {
                value: Secret::from_string(value),
                is_secret: false,
                injection: None,
            },
        );
    }
    Ok(out)
}

fn apply_injections(
    entries: &mut BTreeMap<String, Desired>,
    injections: BTreeMap<String, InjectionRule>,
) -> Result<()> {
    for (key, rule) in injections {
        let Some(entry) = entries.get_mut(&key).filter(|e| e.is_secret) else {
            return Err(reject(
                ErrorCode::InvalidInjection,
                format!(
                    "injection for {}: no secret of that name in the bundle",
                    printable_key(&key)
                ),
            ));
        };
        let (rule, _) = rule.validate(&key)?;
        entry.injection = Some(rule);
    }
    Ok(())
}

fn check_count(entries: &BTreeMap<String, Desired>) -> Result<()> {
    if entries.len() > caps::MAX_KEYS_PER_BUNDLE {
        return Err(reject(
            ErrorCode::TooManyKeys,
            format!(
                "a bundle holds at most {} keys (secrets and variables together)",
                caps::MAX_KEYS_PER_BUNDLE
            ),
        ));
    }
    Ok(())
}

impl Vault {
    pub async fn create_bundle(
        &self,
        tenant: TenantId,
        name: &str,
        input: BundleInput,
    ) -> Result<Bundle> {
        let name = parse_bundle_name(name)?;
        let mut desired = desired_entries(input.values, input.variables)?;
        apply_injections(&mut desired, input.injections)?;
        check_count(&desired)?;
        let key = self.data_key(tenant).await?;
        let id = BundleId::random();
        let version = 1;
        let entries = desired
            .iter()
            .map(|(k, d)| seal_entry(&key, tenant, id, k, version, d))
            .collect::<Vec<_>>();
        let bundle = Bundle {
            meta: BundleMeta {
                id,
                name: name.as_str().to_owned(),
                version,
                created_at: Utc::now(),
                last_rotated_at: None,
                deleted_at: None,
            },
            entries,
        };
        self.store()
            .create_bundle(tenant, &bundle, caps::MAX_BUNDLES_PER_TENANT)
            .await
            .map_err(|e| match e {
                StoreError::Exists => reject(
                    ErrorCode::SecretBundleExists,
                    "a secret bundle with this name already exists",
                ),
                StoreError::QuotaExceeded => reject(
                    ErrorCode::BundleQuotaExceeded,
                    format!(
                        "a tenant holds at most {} secret bundles",
                        caps::MAX_BUNDLES_PER_TENANT
                    ),
                ),
                other => other.into(),
            })?;
        Ok(bundle)
    }

    pub async fn get_bundle(&self, tenant: TenantId, name: &str) -> Result<Bundle> {
        let name = parse_bundle_name(name)?;
        self.store()
            .bundle(tenant, name.as_str())
            .await?
            .ok_or_else(not_found)
    }

    pub async fn list_bundles(&self, tenant: TenantId) -> Result<Vec<Bundle>> {
        Ok(self.store().list_bundles(tenant).await?)
    }

    /// PUT: replace every entry. Entries whose value, kind and rule are unchanged keep their
    /// version; the rest get the bundle's new version.
    pub async fn replace_bundle(
        &self,
        tenant: TenantId,
        name: &str,
        input: BundleInput,
    ) -> Result<RotationOutcome> {
        let mut desired = desired_entries(input.values, input.variables)?;
        apply_injections(&mut desired, input.injections)?;
        check_count(&desired)?;
        self.rotate(tenant, name, move |_| Ok(desired.clone()))
            .await
    }

    /// PATCH: merge `set`/`variables`, remove `unset`. A rotation like PUT.
    pub async fn patch_bundle(
        &self,
        tenant: TenantId,
        name: &str,
        patch: PatchInput,
    ) -> Result<RotationOutcome> {
        for key in &patch.unset {
            check_key(key)?;
        }
        let additions = desired_entries(patch.set, patch.variables)?;
        let injections = patch.injections;
        let unset = patch.unset;
        self.rotate(tenant, name, move |current| {
            let mut merged = current;
            for key in &unset {
                merged.remove(key);
            }
            for (key, mut entry) in additions.clone() {
                // Re-setting a secret keeps its rule unless a new one is given.
                if entry.is_secret {
                    entry.injection = merged.get(&key).and_then(|old| old.injection.clone());
                }
                merged.insert(key, entry);
            }
            apply_injections(&mut merged, injections.clone())?;
            check_count(&merged)?;
            Ok(merged)
        })
        .await
    }

    pub async fn delete_bundle(&self, tenant: TenantId, name: &str) -> Result<()> {
        let name = parse_bundle_name(name)?;
        let bundle = self
            .store()
            .bundle(tenant, name.as_str())
            .await?
            .ok_or_else(not_found)?;
        // Seed 004: a bundle attached to an agent cannot be deleted (checked in the same
        // transaction as the delete).
        match self
            .store()
            .delete_bundle_unless_attached(tenant, name.as_str(), Utc::now())
            .await?
        {
            BundleDeletion::Deleted => {}
            BundleDeletion::NotFound => return Err(not_found()),
            BundleDeletion::Attached(agents) => {
                return Err(crate::agents::bundle_attached(name.as_str(), &agents))
            }
        }
        self.bump_epoch();
        let _ = self
            .inner
            .changes
            .send(VaultEvent::BundleChanged(BundleChanged {
                tenant,
                bundle: bundle.meta.id,
                name: bundle.meta.name,
                keys: bundle.entries.into_iter().map(|e| e.name).collect(),
                version: bundle.meta.version,
                deleted: true,
            }));
        Ok(())
    }

    /// Decrypt a bundle's entries (the data plane and session env use this).
    pub async fn open_bundle(&self, tenant: TenantId, bundle: &Bundle) -> Result<Vec<OpenedEntry>> {
        let key = self.data_key(tenant).await?;
        bundle
            .entries
            .iter()
            .map(|e| open_entry(&key, tenant, bundle.meta.id, e))
            .collect()
    }

    /// Read, transform, write with an optimistic version check; retried if a concurrent
    /// rotation won.
    async fn rotate(
        &self,
        tenant: TenantId,
        name: &str,
        transform: impl Fn(BTreeMap<String, Desired>) -> Result<BTreeMap<String, Desired>>,
    ) -> Result<RotationOutcome> {
        let name = parse_bundle_name(name)?;
        let key = self.data_key(tenant).await?;
        // Rotations in this process take turns: with optimistic retries alone, a burst of
        // concurrent PATCHes on one bundle exhausted its attempts and answered 500. The
        // version check below still guards against writers in other processes.
        let _turn = ROTATIONS.lock().await;
        for _ in 0..8 {
            let current = self
                .store()
                .bundle(tenant, name.as_str())
                .await?
                .ok_or_else(not_found)?;
            let id = current.meta.id;
            let old_version = current.meta.version;
            let new_version = old_version + 1;
            let mut old: BTreeMap<String, (Desired, Entry)> = BTreeMap::new();
            for entry in &current.entries {
                let opened = open_entry(&key, tenant, id, entry)?;
                let desired = Desired {
                    value: opened.value,
                    is_secret: opened.is_secret,
                    injection: opened.injection,
                };
                old.insert(entry.name.clone(), (desired, entry.clone()));
            }
            let wanted = transform(
                old.iter()
                    .map(|(k, (d, _))| (k.clone(), d.clone()))
                    .collect(),
            )?;
            // The rules of seed 004 hold for the agents this bundle is attached to.
            let keys = wanted.iter().map(|(k, d)| (k.clone(), d.is_secret));
            let llm_base_url = wanted
                .get(keyward_core::providers::LLM_BASE_URL)
                .and_then(|d| d.value.expose_str().map(str::to_owned));
            self.check_agents_after_rotation(tenant, id, &current.meta.name, keys, llm_base_url)
                .await?;
            let mut changed: BTreeSet<String> = old
                .keys()
                .filter(|k| !wanted.contains_key(*k))
                .cloned()
                .collect();
            let mut entries = Vec::with_capacity(wanted.len());
            for (k, d) in &wanted {
                match old.get(k) {
                    Some((before, stored)) if before == d => entries.push(stored.clone()),
                    _ => {
                        changed.insert(k.clone());
                        entries.push(seal_entry(&key, tenant, id, k, new_version, d));
                    }
                }
            }
            match self
                .store()
                .rotate_bundle(tenant, id, old_version, &entries, Utc::now())
                .await
            {
                Ok(meta) => {
                    self.bump_epoch();
                    let changed_keys: Vec<String> = changed.into_iter().collect();
                    let _ = self
                        .inner
                        .changes
                        .send(VaultEvent::BundleChanged(BundleChanged {
                            tenant,
                            bundle: id,
                            name: meta.name.clone(),
                            keys: changed_keys.clone(),
                            version: meta.version,
                            deleted: false,
                        }));
                    return Ok(RotationOutcome {
                        bundle: Bundle { meta, entries },
                        changed_keys,
                    });
                }
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => return Err(not_found()),
                Err(other) => return Err(other.into()),
            }
        }
        Err(reject(
            ErrorCode::Internal,
            "the bundle kept changing concurrently; try again",
        ))
    }
}

fn seal_entry(
    key: &DataKey,
    tenant: TenantId,
    bundle: BundleId,
    name: &str,
    version: i64,
    desired: &Desired,
) -> Entry {
    let value = if desired.is_secret {
        EntryValue::Sealed(key.seal(
            &Aad::entry(tenant.0, bundle.0, name, version),
            desired.value.expose(),
        ))
    } else {
        // Variables are plain by definition (seed 004) and were validated as UTF-8 text.
        EntryValue::Variable(desired.value.expose_str().unwrap_or_default().to_owned())
    };
    Entry {
        name: name.to_owned(),
        version,
        value,
        injection: desired
            .injection
            .as_ref()
            .and_then(|rule| serde_json::to_string(rule).ok()),
    }
}

fn open_entry(
    key: &DataKey,
    tenant: TenantId,
    bundle: BundleId,
    entry: &Entry,
) -> Result<OpenedEntry> {
    let (value, is_secret) = match &entry.value {
        EntryValue::Sealed(sealed) => (
            key.open(
                &Aad::entry(tenant.0, bundle.0, &entry.name, entry.version),
                sealed,
            )
            .map_err(|_| VaultError::Decryption)?,
            true,
        ),
        EntryValue::Variable(text) => (Secret::from_string(text.clone()), false),
    };
    let injection = entry
        .injection
        .as_deref()
        .map(serde_json::from_str::<InjectionRule>)
        .transpose()
        .map_err(|_| VaultError::Store(StoreError::Corrupt("injection rule")))?;
    Ok(OpenedEntry {
        name: entry.name.clone(),
        version: entry.version,
        value,
        is_secret,
        injection,
    })
}
