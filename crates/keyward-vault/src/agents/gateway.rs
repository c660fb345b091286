//! The agent's gateway token on the data plane (seed 004): it authenticates like a session
//! token, with the agent's attached bundles and egress policy. The data plane sees a
//! synthetic, always-running gateway-mode session named `agent:<name>`, so metering, limits,
//! redaction and audit (whose `agent` field is the agent's name) work unchanged.

use std::collections::BTreeMap;

use keyward_crypto::token;
use keyward_store::StoreError;

use super::egress_from_record;
use crate::sessions::merge;
use crate::{LlmSettings, ResolvedSession, Result, Session, SessionMode, Vault, VaultError};

/// Prefix of agent gateway tokens.
pub const AGENT_TOKEN_PREFIX: &str = "kw_a_";
/// Prefix of the session id the data plane records for calls made with a gateway token.
pub const AGENT_SESSION_PREFIX: &str = "agent:";

impl Vault {
    /// Resolve a gateway token to what the data plane needs; `None` for anything that is not
    /// the current token of an existing agent (a rotated-away token included).
    pub async fn resolve_agent_token(&self, bearer: &str) -> Result<Option<ResolvedSession>> {
        if !bearer.starts_with(AGENT_TOKEN_PREFIX) {
            return Ok(None);
        }
        let digest = token::digest(bearer);
        let Some(record) = self.store().agent_by_token_digest(&digest).await? else {
            return Ok(None);
        };
        if !token::digests_match(&record.token_digest, &digest) {
            return Ok(None);
        }
        let tenant = record.tenant;
        let tenant_name = self
            .store()
            .tenant(tenant)
            .await?
            .ok_or(VaultError::Store(StoreError::NotFound))?
            .name;
        let bundles = self.agent_bundles(tenant, &record).await?;
        let mut opened = Vec::with_capacity(bundles.len());
        for bundle in &bundles {
            opened.push(self.open_bundle(tenant, bundle).await?);
        }
        let session = Session {
            id: format!("{AGENT_SESSION_PREFIX}{}", record.name),
            tenant,
            agent: Some(record.name.clone()),
            mode: SessionMode::Gateway,
            llm: LlmSettings::default(),
            bundles: bundles
                .iter()
                .map(|b| (b.meta.id, b.meta.name.clone()))
                .collect(),
            user_id: None,
            egress: egress_from_record(&record)?,
            created_at: record.created_at,
            ended_at: None,
        };
        Ok(Some(ResolvedSession {
            session,
            tenant_name,
            entries: merge(opened),
            request_env: BTreeMap::new(),
        }))
    }
}
