//! Tenants and their API tokens. Tokens are random, shown once, stored as SHA-256 digests.

use chrono::{DateTime, Utc};
use keyward_core::{ErrorCode, Name};
use keyward_crypto::{token, DataKey};
use keyward_store::{StoreError, Tenant, TenantId, TokenKind, TokenRecord};

use crate::{Result, Vault, VaultError, DEFAULT_TENANT};

/// Prefix of tenant API tokens (the operator token is one of them).
pub const TENANT_TOKEN_PREFIX: &str = "kw_t_";

/// Who is calling: resolved from a bearer token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: TenantId,
    pub tenant_name: String,
    pub kind: TokenKind,
    pub token_id: String,
}

impl Principal {
    pub fn is_operator(&self) -> bool {
        self.kind == TokenKind::Operator
    }
}

/// A token just issued. `token` is the only time its text exists outside the caller.
pub struct IssuedToken {
    pub id: String,
    pub token: String,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

const META_BOOTSTRAPPED: &str = "bootstrapped";

impl Vault {
    /// Make sure the `default` tenant and its operator token exist. Returns the operator token
    /// if it was created now (first start): the caller saves it and prints it once.
    pub async fn bootstrap(&self) -> Result<Option<IssuedToken>> {
        let store = self.store();
        if store.meta_get(META_BOOTSTRAPPED).await?.as_deref() == Some("1") {
            return Ok(None);
        }
        // Idempotent across a crash between these steps: the tenant is reused if it exists,
        // and the flag is set only after the token row is written.
        let tenant = match store.tenant_by_name(DEFAULT_TENANT).await? {
            Some(t) => t.id,
            None => self.insert_tenant(DEFAULT_TENANT).await?,
        };
        let issued = self.insert_token(tenant, TokenKind::Operator).await?;
        store.meta_set(META_BOOTSTRAPPED, "1").await?;
        Ok(Some(issued))
    }

    /// Resolve a bearer token. `None` for unknown or revoked tokens.
    pub async fn authenticate(&self, bearer: &str) -> Result<Option<Principal>> {
        if !bearer.starts_with(TENANT_TOKEN_PREFIX) {
            return Ok(None);
        }
        let digest = token::digest(bearer);
        let Some(record) = self.store().token_by_digest(&digest).await? else {
            return Ok(None);
        };
        if !token::digests_match(&record.digest, &digest) {
            return Ok(None);
        }
        let Some(tenant) = self.store().tenant(record.tenant).await? else {
            return Ok(None);
        };
        Ok(Some(Principal {
            tenant: tenant.id,
            tenant_name: tenant.name,
            kind: record.kind,
            token_id: record.id,
        }))
    }

    /// Create a tenant with a fresh data key and a first API token (operator only: the caller
    /// checks).
    pub async fn create_tenant(&self, raw_name: &str) -> Result<IssuedToken> {
        let name = Name::parse(raw_name)
            .map_err(|e| VaultError::rejected(ErrorCode::from(e), format!("tenant name: {e}")))?;
        let tenant = self.insert_tenant(name.as_str()).await?;
        self.insert_token(tenant, TokenKind::Tenant).await
    }

    /// A new API token for the caller's own tenant.
    pub async fn issue_token(&self, tenant: TenantId) -> Result<IssuedToken> {
        self.insert_token(tenant, TokenKind::Tenant).await
    }

    /// Revoke one of the tenant's tokens. Another tenant's token id is "not found".
    pub async fn revoke_token(&self, tenant: TenantId, id: &str) -> Result<()> {
        if self.store().delete_token(tenant, id).await? {
            Ok(())
        } else {
            Err(VaultError::rejected(
                ErrorCode::TokenNotFound,
                "no such token in this tenant",
            ))
        }
    }

    async fn insert_tenant(&self, name: &str) -> Result<TenantId> {
        let _serialised = self.inner.key_writes.lock().await;
        let id = TenantId::random();
        let data_key = DataKey::generate();
        let tenant = Tenant {
            id,
            name: name.to_owned(),
            wrapped_key: self.master().wrap(id.0, &data_key),
            created_at: Utc::now(),
        };
        self.store()
            .create_tenant(&tenant)
            .await
            .map_err(|e| match e {
                StoreError::Exists => {
                    VaultError::rejected(ErrorCode::TenantExists, "a tenant with this name exists")
                }
                other => other.into(),
            })?;
        Ok(id)
    }

    async fn insert_token(&self, tenant: TenantId, kind: TokenKind) -> Result<IssuedToken> {
        let text = token::generate(TENANT_TOKEN_PREFIX);
        let mut id_bytes = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id_bytes);
        let record = TokenRecord {
            id: format!("tok_{}", hex::encode(id_bytes)),
            tenant,
            kind,
            digest: token::digest(&text).to_vec(),
            created_at: Utc::now(),
        };
        self.store().insert_token(&record).await?;
        Ok(IssuedToken {
            id: record.id,
            token: text,
            created_at: record.created_at,
        })
    }
}
