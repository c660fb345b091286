//! The one interface behind which limit counters live: [`LimitCounters`]. keyward ships an
//! in-process implementation ([`super::local::LocalCounters`], exact within one process); a
//! shared store (PostgreSQL, Redis) implements the same four methods to make the counters
//! exact across replicas.
//!
//! A call takes a [`Ticket`] before it is forwarded (`try_acquire`: one request, its estimated
//! tokens and spend, one concurrency slot, in every scope at once or in none) and gives it back
//! when it ends: `settle` with what it really used, or `release` if it was never made.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use keyward_store::{Limits, StoreError, TenantId};

/// How many scopes one call counts against: tenant, agent, session, free tier.
pub const MAX_SCOPES: usize = 4;

/// Spend is counted in units of 1e-8 USD (integers, so counters are exact and atomic).
pub const SPEND_UNITS_PER_USD: f64 = 1e8;

/// USD to spend units, rounded to the nearest unit.
pub fn spend_units(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * SPEND_UNITS_PER_USD).round() as u64
    } else {
        0
    }
}

/// What a limit is set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeKind {
    Tenant,
    Agent,
    Session,
    /// The operator's free tier, per tenant and provider.
    FreeTier,
}

impl ScopeKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Tenant => "tenant",
            ScopeKind::Agent => "agent",
            ScopeKind::Session => "session",
            ScopeKind::FreeTier => "free tier",
        }
    }
}

/// One scope's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScopeKey {
    pub tenant: TenantId,
    /// The tenant's name, as the audit log (where spend is summed from) keys it.
    pub tenant_name: String,
    pub kind: ScopeKind,
    /// Agent name, session id or provider; empty for the tenant.
    pub name: String,
}

/// An implementation's handle on one scope's counters, resolved once per session view (not
/// per request) by [`LimitCounters::scope`].
pub type ScopeHandle = Arc<dyn Any + Send + Sync>;

/// A scope's limits with its counters.
#[derive(Clone)]
pub struct ScopeLimits {
    pub kind: ScopeKind,
    pub limits: Limits,
    pub handle: ScopeHandle,
}

impl std::fmt::Debug for ScopeLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopeLimits")
            .field("kind", &self.kind)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What a call asks for (besides one request and, while it runs, one concurrency slot), or
/// what it used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Amounts {
    pub tokens: u64,
    /// In units of 1e-8 USD ([`spend_units`]).
    pub spend: u64,
}

/// Which limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    RequestsPerMinute,
    TokensPerMinute,
    ConcurrentRequests,
    BudgetPerDay,
    BudgetPerMonth,
}

impl LimitKind {
    /// The stable error code the client gets (and the audit records as `blocked:<code>`).
    pub const fn code(self) -> &'static str {
        match self {
            LimitKind::BudgetPerDay | LimitKind::BudgetPerMonth => "budget_exceeded",
            _ => "rate_limited",
        }
    }

    pub const fn field(self) -> &'static str {
        match self {
            LimitKind::RequestsPerMinute => "requests_per_minute",
            LimitKind::TokensPerMinute => "tokens_per_minute",
            LimitKind::ConcurrentRequests => "concurrent_requests",
            LimitKind::BudgetPerDay => "budget_usd_per_day",
            LimitKind::BudgetPerMonth => "budget_usd_per_month",
        }
    }
}

/// Why a call may not go now, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub scope: ScopeKind,
    pub limit: LimitKind,
    /// Whole seconds until the limit can admit a call again (at least 1).
    pub retry_after_secs: u64,
}

/// What one scope took for a call, in the windows it took it in.
#[derive(Clone)]
pub struct Held {
    pub handle: ScopeHandle,
    /// Minute window, UTC day and month the amounts were counted in.
    pub minute: u64,
    pub day: u64,
    pub month: u64,
    pub requests: bool,
    pub tokens: bool,
    pub concurrent: bool,
    pub budget_day: bool,
    pub budget_month: bool,
}

/// What a call took, to be settled or released exactly once.
pub struct Ticket {
    pub held: [Option<Held>; MAX_SCOPES],
    /// The estimate reserved.
    pub demand: Amounts,
}

/// The counters could not be prepared (the spend so far could not be read).
#[derive(Debug, thiserror::Error)]
#[error("limit counters unavailable: {0}")]
pub struct CounterError(#[from] pub StoreError);

/// See the module documentation.
#[async_trait]
pub trait LimitCounters: Send + Sync + 'static {
    /// The counters of a scope whose limits are `limits`, ready to count: an implementation
    /// loads here what it must know first (the in-process one: the spend so far this day and
    /// month, from the audit log).
    async fn scope(&self, key: &ScopeKey, limits: &Limits) -> Result<ScopeHandle, CounterError>;
    /// Count one request with `demand` in every scope, or in none and say why not.
    fn try_acquire(&self, scopes: &[&ScopeLimits], demand: Amounts) -> Result<Ticket, Refusal>;
    /// The call ended having used `used`: the request stays counted, its concurrency slot is
    /// freed and the reserved estimate is replaced by `used`.
    fn settle(&self, ticket: Ticket, used: Amounts);
    /// The call was never made: everything `try_acquire` counted is taken back.
    fn release(&self, ticket: Ticket);
}
