//! Attaching bundles to agents and detaching them, under seed 004's rules (see `rules`). The
//! checks read the agent, the write is a compare-and-set on its bundle list: if another attach
//! or detach won in between, the checks run again on what it left.
//!
//! Attaching a bundle that is already attached is idempotent (200, agent unchanged): a script
//! such as `keyward secrets set AGENT …` can attach on every run without looking first.

use keyward_core::providers::LLM_BASE_URL;
use keyward_core::{caps, ErrorCode, Name};
use keyward_store::{Bundle, BundleId, EntryValue, StoreError, TenantId};

use super::rules::{check_attach, KeySet};
use super::{not_found, parse_agent_name};
use crate::{Agent, Result, Vault, VaultError};

/// Compare-and-set attempts before giving up (only concurrent writers to one agent retry).
const ATTEMPTS: usize = 8;

fn reject(code: ErrorCode, message: impl Into<String>) -> VaultError {
    VaultError::rejected(code, message)
}

fn parse_bundle_name(raw: &str) -> Result<Name> {
    Name::parse(raw).map_err(|e| reject(e.into(), format!("bundle name: {e}")))
}

fn key_set(bundle: &Bundle) -> KeySet {
    KeySet {
        bundle: bundle.meta.name.clone(),
        keys: bundle
            .entries
            .iter()
            .map(|e| (e.name.clone(), matches!(e.value, EntryValue::Sealed(_))))
            .collect(),
    }
}

fn kept_changing() -> VaultError {
    reject(
        ErrorCode::Internal,
        "the agent kept changing concurrently; try again",
    )
}

impl Vault {
    /// Attach bundle `bundle` to agent `agent`. 400 `unknown_bundle` if the bundle does not
    /// exist, 409 `provider_conflict` / 400 `secret_key_collision` if it breaks a rule.
    pub async fn attach_bundle(
        &self,
        tenant: TenantId,
        agent: &str,
        bundle: &str,
    ) -> Result<Agent> {
        let agent_name = parse_agent_name(agent)?;
        let bundle_name = parse_bundle_name(bundle)?;
        for _ in 0..ATTEMPTS {
            let record = self.agent_record(tenant, agent_name.as_str()).await?;
            let incoming = self
                .store()
                .bundle(tenant, bundle_name.as_str())
                .await?
                .ok_or_else(|| {
                    reject(
                        ErrorCode::UnknownBundle,
                        format!("bundle: no secret bundle named {bundle_name} in this tenant"),
                    )
                })?;
            if record.bundles.contains(&incoming.meta.id) {
                return self.agent_view(tenant, &record).await;
            }
            if record.bundles.len() >= caps::MAX_BUNDLES_PER_SESSION {
                // Every session of the agent refers to all of them.
                return Err(reject(
                    ErrorCode::TooManyBundles,
                    format!(
                        "an agent has at most {} secret bundles attached",
                        caps::MAX_BUNDLES_PER_SESSION
                    ),
                ));
            }
            let attached = self.agent_bundles(tenant, &record).await?;
            let everything: Vec<&Bundle> = attached.iter().chain([&incoming]).collect();
            let llm_base_url = self.llm_base_url(tenant, &everything).await?;
            let existing: Vec<KeySet> = attached.iter().map(key_set).collect();
            check_attach(&existing, &key_set(&incoming), llm_base_url.as_deref())?;
            let mut bundles = record.bundles.clone();
            bundles.push(incoming.meta.id);
            match self
                .store()
                .set_agent_bundles(tenant, record.id, &record.bundles, &bundles)
                .await
            {
                Ok(()) => {
                    self.bump_epoch();
                    return self.get_agent(tenant, agent_name.as_str()).await;
                }
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => return Err(not_found()),
                Err(other) => return Err(other.into()),
            }
        }
        Err(kept_changing())
    }

    /// Detach bundle `bundle` from agent `agent`; 404 `bundle_not_attached` if it is not
    /// attached (or does not exist).
    pub async fn detach_bundle(
        &self,
        tenant: TenantId,
        agent: &str,
        bundle: &str,
    ) -> Result<Agent> {
        let agent_name = parse_agent_name(agent)?;
        let bundle_name = parse_bundle_name(bundle)?;
        let not_attached = || {
            reject(
                ErrorCode::BundleNotAttached,
                format!("secret bundle {bundle_name} is not attached to agent {agent_name}"),
            )
        };
        for _ in 0..ATTEMPTS {
            let record = self.agent_record(tenant, agent_name.as_str()).await?;
            let Some(found) = self.store().bundle(tenant, bundle_name.as_str()).await? else {
                return Err(not_attached());
            };
            if !record.bundles.contains(&found.meta.id) {
                return Err(not_attached());
            }
            let bundles: Vec<BundleId> = record
                .bundles
                .iter()
                .copied()
                .filter(|id| *id != found.meta.id)
                .collect();
            match self
                .store()
                .set_agent_bundles(tenant, record.id, &record.bundles, &bundles)
                .await
            {
                Ok(()) => {
                    self.bump_epoch();
                    return self.get_agent(tenant, agent_name.as_str()).await;
                }
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => return Err(not_found()),
                Err(other) => return Err(other.into()),
            }
        }
        Err(kept_changing())
    }

    /// Before a rotation of bundle `id` (named `name`) stores `keys`: refuse it if it would
    /// break seed 004's rules for an agent the bundle is attached to (say it adds a second
    /// OpenAI key). `llm_base_url` is the rotated bundle's own `LLM_BASE_URL`, if any.
    pub(crate) async fn check_agents_after_rotation(
        &self,
        tenant: TenantId,
        id: BundleId,
        name: &str,
        keys: impl Iterator<Item = (String, bool)>,
        llm_base_url: Option<String>,
    ) -> Result<()> {
        let agents = self.store().agents_with_bundle(tenant, id).await?;
        if agents.is_empty() {
            return Ok(());
        }
        let incoming = KeySet {
            bundle: name.to_owned(),
            keys: keys.collect(),
        };
        for agent in agents {
            let Some(record) = self.store().agent(tenant, &agent).await? else {
                continue;
            };
            let others: Vec<Bundle> = self
                .agent_bundles(tenant, &record)
                .await?
                .into_iter()
                .filter(|b| b.meta.id != id)
                .collect();
            let url = match &llm_base_url {
                Some(url) => Some(url.clone()),
                None => {
                    self.llm_base_url(tenant, &others.iter().collect::<Vec<_>>())
                        .await?
                }
            };
            let existing: Vec<KeySet> = others.iter().map(key_set).collect();
            check_attach(&existing, &incoming, url.as_deref()).map_err(|e| match e {
                VaultError::Rejected { code, message } => reject(
                    code,
                    format!("bundle {name} is attached to agent {agent}: {message}"),
                ),
                other => other,
            })?;
        }
        Ok(())
    }

    /// The first `LLM_BASE_URL` among these bundles (a variable as stored, a secret opened).
    async fn llm_base_url(&self, tenant: TenantId, bundles: &[&Bundle]) -> Result<Option<String>> {
        for bundle in bundles {
            let Some(entry) = bundle.entries.iter().find(|e| e.name == LLM_BASE_URL) else {
                continue;
            };
            return Ok(match &entry.value {
                EntryValue::Variable(text) => Some(text.clone()),
                EntryValue::Sealed(_) => self
                    .open_bundle(tenant, bundle)
                    .await?
                    .into_iter()
                    .find(|e| e.name == LLM_BASE_URL)
                    .and_then(|e| e.value.expose_str().map(str::to_owned)),
            });
        }
        Ok(None)
    }
}
