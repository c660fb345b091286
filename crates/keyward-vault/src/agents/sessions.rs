//! What a session created with `"agent"` inherits: the agent's bundles (in attach order, before
//! the request's own) and its egress policy when the request gives none. A bundle the request
//! names that the agent already has is used once; the 10-bundle cap counts them together,
//! since the session refers to all of them. Key collisions between the two are checked by the
//! caller like any others (400 `secret_key_collision`).

use keyward_core::{caps, ErrorCode, Name};
use keyward_store::{Bundle, TenantId};

use crate::{NewSession, Result, Vault, VaultError};

impl Vault {
    /// The bundles of a new session: its agent's, then the request's `names`. Sets
    /// `req.egress` to the agent's policy when the request has none.
    pub(crate) async fn session_bundles(
        &self,
        tenant: TenantId,
        req: &mut NewSession,
        names: &[Name],
    ) -> Result<Vec<Bundle>> {
        let mut bundles = Vec::new();
        if let Some(agent) = &req.agent {
            let record = self.store().agent(tenant, agent).await?.ok_or_else(|| {
                VaultError::rejected(
                    ErrorCode::UnknownAgent,
                    format!("agent: no agent named {agent} in this tenant"),
                )
            })?;
            bundles = self.agent_bundles(tenant, &record).await?;
            if req.egress.is_none() {
                req.egress = super::egress_from_record(&record)?;
            }
        }
        let own: Vec<Name> = names
            .iter()
            .filter(|n| !bundles.iter().any(|b| b.meta.name == n.as_str()))
            .cloned()
            .collect();
        if bundles.len() + own.len() > caps::MAX_BUNDLES_PER_SESSION {
            return Err(VaultError::rejected(
                ErrorCode::TooManyBundles,
                format!(
                    "a session references at most {} secret bundles, its agent's included",
                    caps::MAX_BUNDLES_PER_SESSION
                ),
            ));
        }
        let own = self
            .live_bundles(tenant, &own, |name| {
                VaultError::rejected(
                    ErrorCode::UnknownBundle,
                    format!("secrets: no secret bundle named {name} in this tenant"),
                )
            })
            .await?;
        bundles.extend(own);
        Ok(bundles)
    }
}
