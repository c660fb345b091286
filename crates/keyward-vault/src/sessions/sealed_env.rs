//! The secret parts of a session at rest: the request's `env` (platforms may pass secrets in
//! it) and a copy of the session token, so a tenant can read the session's env with its own
//! API token and get the very env the session gets. Lookups never use this copy: tokens are
//! found by their SHA-256 digest. Sealed by the tenant's data key under associated data that
//! names the tenant and the session, so a blob copied onto another session's row fails to open.

use std::collections::BTreeMap;

use keyward_core::ErrorCode;
use keyward_crypto::{Aad, DataKey, Secret};
use keyward_store::TenantId;
use serde::{Deserialize, Serialize};

use crate::{Result, VaultError};

/// What is sealed (JSON). Never logged: no Debug.
#[derive(Serialize, Deserialize)]
struct Parts {
    token: String,
    env: BTreeMap<String, String>,
}

/// The opened parts.
pub(crate) struct Opened {
    pub token: Secret,
    pub env: BTreeMap<String, Secret>,
}

fn aad(tenant: TenantId, session_id: &str) -> Aad {
    // Both parts have a fixed alphabet (digits; `ses_` + hex), so "/" cannot be ambiguous.
    Aad::labelled(&format!("session-secrets/{}/{session_id}", tenant.0))
}

/// Seal the token and `env` of the session `session_id` of `tenant`.
pub(crate) fn seal(
    key: &DataKey,
    tenant: TenantId,
    session_id: &str,
    token: &str,
    env: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let parts = Parts {
        token: token.to_owned(),
        env: env.clone(),
    };
    let encoded = serde_json::to_vec(&parts)
        .map_err(|_| VaultError::rejected(ErrorCode::Internal, "could not encode env"))?;
    // The JSON text holds the values in clear: keep it in a zeroizing buffer.
    let plain = Secret::new(encoded);
    Ok(key.seal(&aad(tenant, session_id), plain.expose()))
}

/// Open what [`seal`] produced for the same tenant and session.
pub(crate) fn open(
    key: &DataKey,
    tenant: TenantId,
    session_id: &str,
    sealed: &[u8],
) -> Result<Opened> {
    let plain = key
        .open(&aad(tenant, session_id), sealed)
        .map_err(|_| VaultError::Decryption)?;
    let parts: Parts =
        serde_json::from_slice(plain.expose()).map_err(|_| VaultError::Decryption)?;
    Ok(Opened {
        token: Secret::from_string(parts.token),
        env: parts
            .env
            .into_iter()
            .map(|(k, v)| (k, Secret::from_string(v)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_parts_are_bound_to_tenant_and_session() -> Result<()> {
        let key = DataKey::generate();
        let env: BTreeMap<String, String> =
            [("TOKEN".to_owned(), "canary-env-71".to_owned())].into();
        let sealed = seal(&key, TenantId(7), "ses_aaaa", "kw_s_canary", &env)?;
        assert!(!sealed.windows(13).any(|w| w == b"canary-env-71"));
        assert!(!sealed.windows(11).any(|w| w == b"kw_s_canary"));
        let opened = open(&key, TenantId(7), "ses_aaaa", &sealed)?;
        assert_eq!(
            opened.env.get("TOKEN").and_then(Secret::expose_str),
            Some("canary-env-71")
        );
        assert_eq!(opened.token.expose_str(), Some("kw_s_canary"));
        assert!(open(&key, TenantId(7), "ses_bbbb", &sealed).is_err());
        assert!(open(&key, TenantId(8), "ses_aaaa", &sealed).is_err());
        assert!(open(&DataKey::generate(), TenantId(7), "ses_aaaa", &sealed).is_err());
        Ok(())
    }
}
