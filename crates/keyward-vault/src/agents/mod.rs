//! Agents (seeds 002 and 004): a named kind of workload in a tenant. Bundles are attached to
//! an agent rather than named by every session; an agent has a gateway token that works on the
//! data plane like a session token (for a long-running gateway that has no session), and an
//! optional manifest of the secret names it needs.
//!
//! The token is random (256 bits), shown once, stored as a SHA-256 digest. Every change that
//! alters what a token resolves to (rotation, delete, attach, detach) bumps the vault epoch, so
//! the data plane's cache sees it on the very next request.

mod attach;
mod gateway;
mod rules;
mod sessions;
mod synced;

use chrono::{DateTime, SubsecRound, Utc};
use keyward_core::{ErrorCode, Name};
use keyward_crypto::token;
use keyward_store::{AgentId, AgentRecord, Bundle, StoreError, TenantId};

use crate::bundles::check_key;
use crate::{EgressPolicy, Result, Vault, VaultError};
pub use gateway::{AGENT_SESSION_PREFIX, AGENT_TOKEN_PREFIX};
pub use synced::SessionSync;

/// Most names a manifest may list (a bundle holds at most 50 keys; an agent has at most 10).
pub const MAX_MANIFEST_NAMES: usize = 500;

/// What a client asks for in `POST /v1/agents`.
#[derive(Debug, Clone, Default)]
pub struct NewAgent {
    pub name: String,
    /// Applies to the agent's sessions that give no policy of their own, and to its token.
    pub egress: Option<EgressPolicy>,
    /// Secret names the agent needs (seed 002's `superserve.yaml` `secrets:` list).
    pub manifest: Vec<String>,
}

/// An agent as clients see it: never its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub name: String,
    pub egress: Option<EgressPolicy>,
    pub manifest: Vec<String>,
    /// Names of the attached bundles, in attach order.
    pub bundles: Vec<String>,
    /// Manifest names that no attached bundle provides, in manifest order.
    pub missing_secrets: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// An agent just created or whose token was just rotated. `token` exists in clear only here
/// and in the one response that carries it.
pub struct IssuedAgent {
    pub agent: Agent,
    pub token: String,
}

impl std::fmt::Debug for IssuedAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedAgent")
            .field("agent", &self.agent)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

fn reject(code: ErrorCode, message: impl Into<String>) -> VaultError {
    VaultError::rejected(code, message)
}

pub(crate) fn not_found() -> VaultError {
    reject(ErrorCode::AgentNotFound, "no such agent")
}

pub(crate) fn parse_agent_name(raw: &str) -> Result<Name> {
    Name::parse(raw).map_err(|e| reject(e.into(), format!("agent name: {e}")))
}

/// 409 `bundle_attached` for a bundle that `agents` still have attached.
pub(crate) fn bundle_attached(bundle: &str, agents: &[String]) -> VaultError {
    reject(
        ErrorCode::BundleAttached,
        format!(
            "secret bundle {bundle} is attached to agent {}; detach it first",
            agents.join(", ")
        ),
    )
}

/// Key names, checked like entry names and without repeats (first kept).
fn check_manifest(names: Vec<String>) -> Result<Vec<String>> {
    if names.len() > MAX_MANIFEST_NAMES {
        return Err(reject(
            ErrorCode::InvalidRequest,
            format!("manifest.secrets lists at most {MAX_MANIFEST_NAMES} names"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        check_key(&name)?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

fn corrupt(what: &'static str) -> VaultError {
    VaultError::Store(StoreError::Corrupt(what))
}

fn egress_from_record(record: &AgentRecord) -> Result<Option<EgressPolicy>> {
    record
        .egress
        .as_deref()
        .map(|text| {
            serde_json::from_str(text)
                .ok()
                .and_then(|json| EgressPolicy::from_json(&json).ok())
                .ok_or_else(|| corrupt("agent egress"))
        })
        .transpose()
}

impl Vault {
    /// Create an agent with a fresh gateway token.
    pub async fn create_agent(&self, tenant: TenantId, req: NewAgent) -> Result<IssuedAgent> {
        let name = parse_agent_name(&req.name)?;
        let manifest = check_manifest(req.manifest)?;
        let text = token::generate(AGENT_TOKEN_PREFIX);
        let record = AgentRecord {
            id: AgentId::random(),
            tenant,
            name: name.as_str().to_owned(),
            egress: req.egress.as_ref().map(|e| e.to_json().to_string()),
            manifest: serde_json::to_string(&manifest).map_err(|_| corrupt("agent manifest"))?,
            token_digest: token::digest(&text).to_vec(),
            // The store keeps milliseconds: answer what a later read will return.
            created_at: Utc::now().trunc_subsecs(3),
            bundles: Vec::new(),
        };
        self.store()
            .create_agent(tenant, &record)
            .await
            .map_err(|e| match e {
                StoreError::Exists => reject(
                    ErrorCode::AgentExists,
                    "an agent with this name already exists",
                ),
                other => other.into(),
            })?;
        let agent = self.agent_view(tenant, &record).await?;
        Ok(IssuedAgent { agent, token: text })
    }

    pub async fn get_agent(&self, tenant: TenantId, name: &str) -> Result<Agent> {
        let record = self.agent_record(tenant, name).await?;
        self.agent_view(tenant, &record).await
    }

    /// The tenant's agents, sorted by name.
    pub async fn list_agents(&self, tenant: TenantId) -> Result<Vec<Agent>> {
        let mut out = Vec::new();
        for record in self.store().list_agents(tenant).await? {
            out.push(self.agent_view(tenant, &record).await?);
        }
        Ok(out)
    }

    /// Delete an agent: its token stops working at once and its bundles are detached (they can
    /// then be deleted). Its running sessions keep the bundles they resolved.
    pub async fn delete_agent(&self, tenant: TenantId, name: &str) -> Result<()> {
        let name = parse_agent_name(name)?;
        if !self.store().delete_agent(tenant, name.as_str()).await? {
            return Err(not_found());
        }
        self.bump_epoch();
        Ok(())
    }

    /// Issue a new gateway token; the old one stops working before this returns.
    pub async fn rotate_agent_token(&self, tenant: TenantId, name: &str) -> Result<IssuedAgent> {
        let record = self.agent_record(tenant, name).await?;
        let text = token::generate(AGENT_TOKEN_PREFIX);
        let digest = token::digest(&text);
        if !self
            .store()
            .set_agent_token(tenant, &record.name, &digest)
            .await?
        {
            return Err(not_found());
        }
        // Cached views of the old token are rebuilt on their next use, and find nothing.
        self.bump_epoch();
        let agent = self.agent_view(tenant, &record).await?;
        Ok(IssuedAgent { agent, token: text })
    }

    /// The stored agent of this name; 400 for a malformed name, 404 if there is none.
    pub(crate) async fn agent_record(&self, tenant: TenantId, name: &str) -> Result<AgentRecord> {
        let name = parse_agent_name(name)?;
        self.store()
            .agent(tenant, name.as_str())
            .await?
            .ok_or_else(not_found)
    }

    /// The agent's attached bundles, in attach order.
    pub(crate) async fn agent_bundles(
        &self,
        tenant: TenantId,
        record: &AgentRecord,
    ) -> Result<Vec<Bundle>> {
        let mut bundles = Vec::with_capacity(record.bundles.len());
        for id in &record.bundles {
            let bundle = self
                .store()
                .bundle_by_id(tenant, *id)
                .await?
                .ok_or_else(|| corrupt("agent names a missing bundle"))?;
            bundles.push(bundle);
        }
        Ok(bundles)
    }

    pub(crate) async fn agent_view(&self, tenant: TenantId, record: &AgentRecord) -> Result<Agent> {
        let bundles = self.agent_bundles(tenant, record).await?;
        let manifest: Vec<String> =
            serde_json::from_str(&record.manifest).map_err(|_| corrupt("agent manifest"))?;
        let provided = |name: &str| {
            bundles
                .iter()
                .any(|b| b.entries.iter().any(|e| e.name == name))
        };
        let missing_secrets = manifest.iter().filter(|n| !provided(n)).cloned().collect();
        Ok(Agent {
            name: record.name.clone(),
            egress: egress_from_record(record)?,
            manifest,
            bundles: bundles.into_iter().map(|b| b.meta.name).collect(),
            missing_secrets,
            created_at: record.created_at,
        })
    }
}

#[cfg(test)]
mod tests;
