//! Session rows. The store keeps what a session was created with; the vault gives it meaning
//! (modes, LLM settings, egress), so the fields that are structured JSON stay opaque text here.

use chrono::{DateTime, Utc};

use crate::{BundleId, TenantId};

/// One run of an agent (seed 001 / 000), as stored.
#[derive(Clone)]
pub struct SessionRecord {
    /// Public id: `ses_` + 24 hex.
    pub id: String,
    pub tenant: TenantId,
    /// SHA-256 of the session token; the token itself is never stored.
    pub token_digest: Vec<u8>,
    /// The agent's name, if the session was created for one.
    pub agent: Option<String>,
    /// `gateway` or `proxy`.
    pub mode: String,
    /// The request's `llm` settings, as JSON.
    pub llm: String,
    /// The bundles the session resolved, in request order: (id, name at resolution).
    pub bundles: Vec<(BundleId, String)>,
    pub user_id: Option<String>,
    /// The request's `env` map and a copy of the token, sealed by the tenant's data key and
    /// bound to this session: platforms may pass secrets in `env`, so it is never stored in
    /// clear. Lookups by token use `token_digest` only.
    pub sealed_env: Vec<u8>,
    /// The validated egress policy, as JSON; `None` when the request gave none.
    pub egress: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Set once, when the session ends; its token stops working at that instant.
    pub ended_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SessionRecord {
    // Hand-written so a stray `{:?}` prints neither the token digest nor the sealed env.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("agent", &self.agent)
            .field("mode", &self.mode)
            .field("bundles", &self.bundles)
            .field("created_at", &self.created_at)
            .field("ended_at", &self.ended_at)
            .finish_non_exhaustive()
    }
}
