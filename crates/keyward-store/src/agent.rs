//! Agent rows (seeds 002 and 004). Like sessions, the structured fields the vault gives meaning
//! to (egress policy, manifest) stay opaque JSON text here.

use chrono::{DateTime, Utc};

use crate::{AgentId, BundleId, TenantId};

/// A named kind of workload, as stored.
#[derive(Clone)]
pub struct AgentRecord {
    pub id: AgentId,
    pub tenant: TenantId,
    /// `^[a-z0-9][a-z0-9-]{0,62}$`, unique in the tenant.
    pub name: String,
    /// The validated egress policy, as JSON; `None` when the agent has none.
    pub egress: Option<String>,
    /// The secret names the agent declares it needs, as a JSON array.
    pub manifest: String,
    /// SHA-256 of the gateway token; the token itself is never stored.
    pub token_digest: Vec<u8>,
    pub created_at: DateTime<Utc>,
    /// Attached bundles, in attach order. Always live: a bundle attached to an agent cannot
    /// be deleted.
    pub bundles: Vec<BundleId>,
}

impl std::fmt::Debug for AgentRecord {
    // Hand-written so a stray `{:?}` never prints the token digest.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentRecord")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("name", &self.name)
            .field("bundles", &self.bundles)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// What [`crate::Store::delete_bundle_unless_attached`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleDeletion {
    Deleted,
    /// The tenant has no live bundle of that name.
    NotFound,
    /// Nothing changed: these agents (names, sorted) still have the bundle attached.
    Attached(Vec<String>),
}
