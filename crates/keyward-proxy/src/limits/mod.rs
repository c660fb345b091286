//! Rate limits and budgets of the embedded gateway, enforced before a call is forwarded, on
//! every route of both modes (gateway routes, proxy-mode interception, plain-HTTP proxying
//! and CONNECT tunnels):
//!
//! ```text
//! first call of a session view ─ load the limits of its tenant, agent and session (one read)
//!                                and resolve their counters ([`counters::LimitCounters`])
//! every call ─ admit: free-tier model check → estimate (input bytes / 4 + max_tokens, priced)
//!              → try_acquire in every scope at once → 429 rate_limited / budget_exceeded
//!              with Retry-After, audited blocked:<code>
//! end of call ─ Finisher → accounting: cost from the price table, settle the ticket with the
//!               real usage (a cut stream: what it carried, or its estimate if it carried none)
//! ```
//!
//! A session view (`SessionState`) is rebuilt after every change the vault announces, limit
//! changes included, so a new limit applies to the very next call. With no limit set the
//! per-call cost is one `OnceCell` read.

pub mod admit;
pub mod counters;
pub mod local;
pub mod window;

use std::sync::Arc;

use keyward_store::{Limits, Store, UsageStore};

use crate::free_tier::FreeTier;
use crate::session::SessionState;
use counters::{CounterError, LimitCounters, ScopeKey, ScopeKind, ScopeLimits};

/// The limits of one session view's scopes, with their counters.
#[derive(Debug, Default)]
pub struct ScopeSet {
    scopes: Vec<ScopeLimits>,
}

impl ScopeSet {
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    pub fn scopes(&self) -> &[ScopeLimits] {
        &self.scopes
    }

    /// Some scope limits tokens or spend (so the request body is worth estimating).
    pub fn needs_estimate(&self) -> bool {
        self.scopes
            .iter()
            .any(|s| s.limits.tokens_per_minute.is_some() || s.limits.has_budget())
    }
}

/// Loads limits and hands out the counters.
pub struct Limiter {
    pub counters: Arc<dyn LimitCounters>,
    /// `None` in static config mode: no limits.
    store: Option<Arc<dyn Store>>,
}

impl Limiter {
    /// The in-process counters, budgets starting from the audit log of `store`.
    pub fn new(store: Option<Arc<dyn Store>>) -> Self {
        let spend = store.clone().map(|s| -> Arc<dyn UsageStore> { s });
        Self::with_counters(Arc::new(local::LocalCounters::new(spend)), store)
    }

    /// Other counters (a shared store's).
    pub fn with_counters(counters: Arc<dyn LimitCounters>, store: Option<Arc<dyn Store>>) -> Self {
        Self { counters, store }
    }

    /// The limits on the session's scopes, read on the view's first call.
    pub async fn scopes<'s>(&self, state: &'s SessionState) -> Result<&'s ScopeSet, CounterError> {
        state.limits.get_or_try_init(|| self.load(state)).await
    }

    async fn load(&self, state: &SessionState) -> Result<ScopeSet, CounterError> {
        let Some(store) = &self.store else {
            return Ok(ScopeSet::default());
        };
        let agent = state.agent.as_deref();
        let found = store
            .limits_for_session(state.tenant, agent, &state.session_id)
            .await?;
        let mut scopes = Vec::new();
        for (kind, name, limits) in [
            (ScopeKind::Tenant, "", found.tenant),
            (ScopeKind::Agent, agent.unwrap_or_default(), found.agent),
            (ScopeKind::Session, state.session_id.as_str(), found.session),
        ] {
            let Some(limits) = limits.filter(|l| !l.is_empty()) else {
                continue;
            };
            scopes.push(self.resolve(state, kind, name, limits).await?);
        }
        Ok(ScopeSet { scopes })
    }

    async fn resolve(
        &self,
        state: &SessionState,
        kind: ScopeKind,
        name: &str,
        limits: Limits,
    ) -> Result<ScopeLimits, CounterError> {
        let key = ScopeKey {
            tenant: state.tenant,
            tenant_name: state.tenant_name.clone(),
            kind,
            name: name.to_owned(),
        };
        let handle = self.counters.scope(&key, &limits).await?;
        Ok(ScopeLimits {
            kind,
            limits,
            handle,
        })
    }

    /// The free tier's per-tenant requests-per-minute scope.
    pub async fn free_tier_scope(
        &self,
        state: &SessionState,
        tier: &FreeTier,
    ) -> Result<ScopeLimits, CounterError> {
        let limits = Limits {
            requests_per_minute: Some(tier.requests_per_minute),
            ..Limits::default()
        };
        let provider = keyward_core::providers::rule_for_provider(tier.provider).route;
        self.resolve(state, ScopeKind::FreeTier, provider, limits)
            .await
    }
}
