//! The "Synced" indicator of seed 004. A value the agent holds in its env (a plain secret or a
//! variable) stays what it was until the agent re-reads its env; a credential keyward injects
//! is swapped on the very next request, so it is always in sync (SPEC 7). keyward records,
//! per session, the version of every env-delivered entry it handed out (at creation and at
//! each `GET /v1/sessions/{id}/env`) and compares them with the versions stored now.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use keyward_store::TenantId;

use crate::env::delivered_as_env;
use crate::{OpenedEntry, Result, Session, Vault};

/// One running session of an agent and whether its env is current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSync {
    pub session_id: String,
    pub created_at: DateTime<Utc>,
    pub synced: bool,
    /// Env-delivered keys whose value changed (or that were added or removed) since the
    /// session last read its env; sorted.
    pub stale_keys: Vec<String>,
}

/// Keys whose version differs between what was read and what is current (either side
/// missing counts as a difference).
fn stale(read: &BTreeMap<String, i64>, current: &BTreeMap<String, i64>) -> Vec<String> {
    let names: BTreeSet<&String> = read.keys().chain(current.keys()).collect();
    names
        .into_iter()
        .filter(|n| read.get(*n) != current.get(*n))
        .cloned()
        .collect()
}

impl Vault {
    /// Record that `session` was just handed the env built from `entries`. Best effort: on a
    /// store failure the session merely shows as not synced, so the failure is logged rather
    /// than failing a request whose env was already built.
    pub async fn record_env_read(&self, session: &Session, entries: &[OpenedEntry]) {
        let reads: Vec<(String, i64)> = entries
            .iter()
            .filter(|e| delivered_as_env(&e.name, e.is_secret, e.injection.is_some(), session.mode))
            .map(|e| (e.name.clone(), e.version))
            .collect();
        if let Err(e) = self
            .store()
            .set_session_reads(session.tenant, &session.id, &reads)
            .await
        {
            tracing::warn!(session = session.id, error = %e, "could not record an env read");
        }
    }

    /// The running sessions of agent `name`, oldest first, each with its sync state.
    pub async fn agent_sessions(&self, tenant: TenantId, name: &str) -> Result<Vec<SessionSync>> {
        let record = self.agent_record(tenant, name).await?;
        let mut sessions: Vec<Session> = self
            .list_sessions(tenant)
            .await?
            .into_iter()
            .filter(|s| s.is_running() && s.agent.as_deref() == Some(record.name.as_str()))
            .collect();
        sessions.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let mut out = Vec::with_capacity(sessions.len());
        for session in sessions {
            let read: BTreeMap<String, i64> = self
                .store()
                .session_reads(tenant, &session.id)
                .await?
                .into_iter()
                .collect();
            let current = self.env_versions(&session).await?;
            let stale_keys = stale(&read, &current);
            out.push(SessionSync {
                session_id: session.id,
                created_at: session.created_at,
                synced: stale_keys.is_empty(),
                stale_keys,
            });
        }
        Ok(out)
    }

    /// The current version of every env-delivered entry of the session's bundles (the first
    /// bundle wins a name, as in the env). Needs no decryption.
    async fn env_versions(&self, session: &Session) -> Result<BTreeMap<String, i64>> {
        let mut versions = BTreeMap::new();
        for (id, _) in &session.bundles {
            let Some(bundle) = self.store().bundle_by_id(session.tenant, *id).await? else {
                continue;
            };
            for e in &bundle.entries {
                let is_secret = matches!(e.value, keyward_store::EntryValue::Sealed(_));
                if delivered_as_env(&e.name, is_secret, e.injection.is_some(), session.mode) {
                    versions.entry(e.name.clone()).or_insert(e.version);
                }
            }
        }
        Ok(versions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_are_the_differences() {
        let map = |items: &[(&str, i64)]| -> BTreeMap<String, i64> {
            items.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
        };
        let read = map(&[("A", 1), ("B", 1), ("GONE", 1)]);
        let now = map(&[("A", 1), ("B", 2), ("NEW", 3)]);
        assert_eq!(stale(&read, &now), ["B", "GONE", "NEW"]);
        assert!(stale(&read, &read).is_empty());
    }
}
