//! Sessions (seeds 000 and 001): one run of an agent, with a token that stands in for every
//! credential of the bundles it names. Creating one validates everything first and stores
//! nothing on error; the token is random and kept only as a SHA-256 digest; the request's
//! `env` is sealed. The data plane resolves a session to its decrypted entries on a cache miss.

mod egress;
mod model;
mod sealed_env;
mod store_form;
mod validate;

use std::collections::BTreeMap;

use chrono::{SubsecRound, Utc};
use keyward_core::{ErrorCode, Name};
use keyward_crypto::token;
use keyward_store::{Bundle, BundleId, StoreError, TenantId};

use crate::{BundleChanged, OpenedEntry, Result, Vault, VaultError, VaultEvent};
pub use egress::EgressPolicy;
pub use model::{CreatedSession, LlmSettings, NewSession, ResolvedSession, Session, SessionMode};

/// Prefix of session tokens.
pub const SESSION_TOKEN_PREFIX: &str = "kw_s_";
/// Prefix of session ids.
pub const SESSION_ID_PREFIX: &str = "ses_";
/// Random bytes in a session id (24 hex digits).
const SESSION_ID_BYTES: usize = 12;

fn reject(code: ErrorCode, message: impl Into<String>) -> VaultError {
    VaultError::rejected(code, message)
}

fn not_found() -> VaultError {
    reject(ErrorCode::SessionNotFound, "no such session")
}

/// Whether `raw` has the shape of a session id. Ids are not names: a malformed one is simply
/// an id that does not exist (404), never a 400.
pub fn is_session_id(raw: &str) -> bool {
    raw.strip_prefix(SESSION_ID_PREFIX).is_some_and(|hex| {
        hex.len() == SESSION_ID_BYTES * 2
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn new_session_id() -> String {
    let mut bytes = [0u8; SESSION_ID_BYTES];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    format!("{SESSION_ID_PREFIX}{}", hex::encode(bytes))
}

/// Refuse two bundles that define the same key: which value the agent got would depend on
/// order (seed 001: "collision across bundles returns 400").
fn check_collisions(bundles: &[Bundle], code: ErrorCode) -> Result<()> {
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for bundle in bundles {
        for entry in &bundle.entries {
            if let Some(first) = owner.insert(&entry.name, &bundle.meta.name) {
                return Err(reject(
                    code,
                    format!(
                        "key {} is defined in both bundle {first} and bundle {}",
                        entry.name, bundle.meta.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Entries of several bundles as one list sorted by name. Bundles are checked for collisions
/// when a session is created or resumed; if a later rotation adds a key that another bundle
/// of the session already has, the bundle listed first keeps it rather than breaking a
/// running session.
pub(crate) fn merge(opened: Vec<Vec<OpenedEntry>>) -> Vec<OpenedEntry> {
    let mut merged: BTreeMap<String, OpenedEntry> = BTreeMap::new();
    for entries in opened {
        for entry in entries {
            merged.entry(entry.name.clone()).or_insert(entry);
        }
    }
    merged.into_values().collect()
}

impl Vault {
    /// Create a session for `tenant`. Nothing is stored unless every check passes.
    pub async fn create_session(
        &self,
        tenant: TenantId,
        mut req: NewSession,
    ) -> Result<CreatedSession> {
        let names = validate::check_request(&mut req)?;
        // The agent's bundles first, then the request's own (see `agents::sessions`).
        let bundles = self.session_bundles(tenant, &mut req, &names).await?;
        check_collisions(&bundles, ErrorCode::SecretKeyCollision)?;
        let mut opened = Vec::with_capacity(bundles.len());
        for bundle in &bundles {
            opened.push(self.open_bundle(tenant, bundle).await?);
        }
        let merged = merge(opened);
        let managed = crate::env::managed_keys(&merged, &req.llm);
        if let Some(key) = req.env.keys().find(|k| managed.contains(*k)) {
            return Err(reject(
                ErrorCode::InvalidRequest,
                format!("env: {key} is set by keyward for this session's credentials"),
            ));
        }
        let data_key = self.data_key(tenant).await?;
        let token_text = token::generate(SESSION_TOKEN_PREFIX);
        let session = Session {
            id: new_session_id(),
            tenant,
            agent: req.agent,
            mode: req.mode,
            llm: req.llm,
            bundles: bundles
                .iter()
                .map(|b| (b.meta.id, b.meta.name.clone()))
                .collect(),
            user_id: req.user_id,
            egress: req.egress,
            // The store keeps milliseconds: answer what a later read will return.
            created_at: Utc::now().trunc_subsecs(3),
            ended_at: None,
        };
        let sealed = sealed_env::seal(&data_key, tenant, &session.id, &token_text, &req.env)?;
        let record = store_form::to_record(&session, token::digest(&token_text).to_vec(), sealed)?;
        self.store().create_session(tenant, &record).await?;
        self.record_env_read(&session, &merged).await;
        Ok(CreatedSession {
            session,
            token: token_text,
        })
    }

    /// One of the tenant's sessions; another tenant's is "not found" (404, never 403).
    pub async fn get_session(&self, tenant: TenantId, id: &str) -> Result<Session> {
        if !is_session_id(id) {
            return Err(not_found());
        }
        let record = self
            .store()
            .session(tenant, id)
            .await?
            .ok_or_else(not_found)?;
        store_form::from_record(record)
    }

    /// The tenant's sessions, newest first.
    pub async fn list_sessions(&self, tenant: TenantId) -> Result<Vec<Session>> {
        self.store()
            .list_sessions(tenant)
            .await?
            .into_iter()
            .map(store_form::from_record)
            .collect()
    }

    /// End a session: its token stops working at once. Ending an ended session answers it
    /// unchanged (its first `ended_at` is kept).
    pub async fn end_session(&self, tenant: TenantId, id: &str) -> Result<Session> {
        let before = self.get_session(tenant, id).await?;
        if !before.is_running() {
            return Ok(before);
        }
        let record = self
            .store()
            .end_session(tenant, id, Utc::now())
            .await?
            .ok_or_else(not_found)?;
        // Bumped before answering, so the data plane refuses the token on its next request.
        self.bump_epoch();
        let _ = self.inner.changes.send(VaultEvent::SessionEnded {
            tenant,
            session: id.to_owned(),
        });
        store_form::from_record(record)
    }

    /// Re-resolve a running session's bundles by name (seed 001: "resume recovers secrets
    /// references automatically"). A bundle deleted since answers 502
    /// `secret_bundle_not_found_at_resume`; an ended session answers 409 `session_ended`.
    pub async fn resume_session(&self, tenant: TenantId, id: &str) -> Result<Session> {
        let mut session = self.get_session(tenant, id).await?;
        if !session.is_running() {
            return Err(reject(
                ErrorCode::SessionEnded,
                "the session has ended; create a new one",
            ));
        }
        let names = session
            .bundles
            .iter()
            .map(|(_, name)| Name::parse(name))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| VaultError::Store(StoreError::Corrupt("session bundle name")))?;
        let bundles = self
            .live_bundles(tenant, &names, |name| {
                reject(
                    ErrorCode::SecretBundleNotFoundAtResume,
                    format!("secret bundle {name} was deleted; the session cannot resume"),
                )
            })
            .await?;
        let refs: Vec<(BundleId, String)> = bundles
            .iter()
            .map(|b| (b.meta.id, b.meta.name.clone()))
            .collect();
        if refs == session.bundles {
            return Ok(session);
        }
        // A bundle was deleted and created again under the same name: point at the new one.
        check_collisions(&bundles, ErrorCode::SecretKeyCollision)?;
        self.store()
            .set_session_bundles(tenant, id, &refs)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => not_found(),
                other => other.into(),
            })?;
        self.bump_epoch();
        let replaced = std::mem::replace(&mut session.bundles, refs);
        for (old, name) in replaced
            .into_iter()
            .filter(|r| !session.bundles.contains(r))
        {
            // Re-announce the old bundle's deletion so caches holding this session's resolved
            // entries (keyed by the old id) drop them and re-resolve with the new references.
            let _ = self
                .inner
                .changes
                .send(VaultEvent::BundleChanged(BundleChanged {
                    tenant,
                    bundle: old,
                    name,
                    keys: Vec::new(),
                    version: 0,
                    deleted: true,
                }));
        }
        Ok(session)
    }

    /// The running session a token belongs to; `None` for an unknown token or an ended
    /// session (its token stopped working when it ended).
    pub async fn session_by_token(&self, bearer: &str) -> Result<Option<Session>> {
        if !bearer.starts_with(SESSION_TOKEN_PREFIX) {
            return Ok(None);
        }
        let digest = token::digest(bearer);
        let Some(record) = self.store().session_by_token_digest(&digest).await? else {
            return Ok(None);
        };
        if !token::digests_match(&record.token_digest, &digest) || record.ended_at.is_some() {
            return Ok(None);
        }
        store_form::from_record(record).map(Some)
    }

    /// Decrypt everything the data plane needs for `session`. Bundles are read by id, so one
    /// deleted while the session runs still resolves to the values it had (seed 001).
    pub async fn resolve_session(&self, session: &Session) -> Result<ResolvedSession> {
        let tenant = session.tenant;
        let tenant_name = self
            .store()
            .tenant(tenant)
            .await?
            .ok_or(VaultError::Store(StoreError::NotFound))?
            .name;
        let mut opened = Vec::with_capacity(session.bundles.len());
        for (id, _) in &session.bundles {
            let bundle = self
                .store()
                .bundle_by_id(tenant, *id)
                .await?
                .ok_or(VaultError::Store(StoreError::Corrupt(
                    "session names a missing bundle",
                )))?;
            opened.push(self.open_bundle(tenant, &bundle).await?);
        }
        let request_env = self.open_secrets(session).await?.env;
        Ok(ResolvedSession {
            session: session.clone(),
            tenant_name,
            entries: merge(opened),
            request_env,
        })
    }

    /// The token of one of the tenant's sessions, for a tenant that reads the session's env
    /// with its own API token (the env holds the token in every credential variable).
    pub async fn session_token(&self, session: &Session) -> Result<keyward_crypto::Secret> {
        Ok(self.open_secrets(session).await?.token)
    }

    async fn open_secrets(&self, session: &Session) -> Result<sealed_env::Opened> {
        let record = self
            .store()
            .session(session.tenant, &session.id)
            .await?
            .ok_or_else(not_found)?;
        let data_key = self.data_key(session.tenant).await?;
        sealed_env::open(&data_key, session.tenant, &session.id, &record.sealed_env)
    }

    /// The live bundles of these names, in order; `missing` builds the error for one that
    /// does not exist.
    pub(crate) async fn live_bundles(
        &self,
        tenant: TenantId,
        names: &[Name],
        missing: impl Fn(&Name) -> VaultError,
    ) -> Result<Vec<Bundle>> {
        let mut bundles = Vec::with_capacity(names.len());
        for name in names {
            match self.store().bundle(tenant, name.as_str()).await? {
                Some(bundle) => bundles.push(bundle),
                None => return Err(missing(name)),
            }
        }
        Ok(bundles)
    }
}

#[cfg(test)]
mod tests;
