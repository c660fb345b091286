//! Limits and usage: what the gateway's metering needs from the store.
//!
//! - [`LimitStore`]: the limits a tenant set on itself, an agent or a session (requests and
//!   tokens per minute, concurrent requests, spend per UTC day and month).
//! - [`UsageStore`]: totals over the audit log (one record per call, so the totals are
//!   exact), for `GET /v1/usage` and for the spend a budget starts from after a restart.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};

use crate::{Result, TenantId};

/// What a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LimitScope {
    /// The whole tenant (named `me` in the API).
    Tenant,
    /// Every session of one agent, together.
    Agent,
    /// One session.
    Session,
}

impl LimitScope {
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitScope::Tenant => "tenant",
            LimitScope::Agent => "agent",
            LimitScope::Session => "session",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "tenant" => Some(LimitScope::Tenant),
            "agent" => Some(LimitScope::Agent),
            "session" => Some(LimitScope::Session),
            _ => None,
        }
    }
}

/// The limits of one scope; an absent field is no limit. Serialised with the API's field
/// names, absent fields left out, so what a `PUT` sent is what a `GET` returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_requests: Option<u64>,
    /// USD per UTC day.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "usd"
    )]
    pub budget_usd_per_day: Option<f64>,
    /// USD per UTC calendar month.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "usd"
    )]
    pub budget_usd_per_month: Option<f64>,
}

impl Limits {
    /// No limit at all is set.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// A day or month budget is set.
    pub fn has_budget(&self) -> bool {
        self.budget_usd_per_day.is_some() || self.budget_usd_per_month.is_some()
    }
}

/// A whole number of dollars is written as an integer (`10`, not `10.0`), so the JSON read
/// back equals the JSON sent.
fn usd<S: Serializer>(value: &Option<f64>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match value {
        Some(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => s.serialize_i64(*v as i64),
        Some(v) => s.serialize_f64(*v),
        None => s.serialize_none(),
    }
}

/// Limits set on the scopes of one session, as [`LimitStore::limits_for_session`] finds them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionLimits {
    pub tenant: Option<Limits>,
    pub agent: Option<Limits>,
    pub session: Option<Limits>,
}

/// Persistence of limits. Every method takes the tenant first.
#[async_trait]
pub trait LimitStore: Send + Sync + 'static {
    /// The limits of a scope (`name` is ignored for [`LimitScope::Tenant`]); `None` if unset.
    async fn limits(
        &self,
        tenant: TenantId,
        scope: LimitScope,
        name: &str,
    ) -> Result<Option<Limits>>;
    /// Replace a scope's limits.
    async fn put_limits(
        &self,
        tenant: TenantId,
        scope: LimitScope,
        name: &str,
        limits: &Limits,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Remove a scope's limits; `false` if it had none.
    async fn delete_limits(&self, tenant: TenantId, scope: LimitScope, name: &str) -> Result<bool>;
    /// The limits on a session's tenant, agent (if any) and the session itself, in one read.
    async fn limits_for_session(
        &self,
        tenant: TenantId,
        agent: Option<&str>,
        session: &str,
    ) -> Result<SessionLimits>;
}

/// What usage totals are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroupBy {
    Tenant,
    Agent,
    Session,
    UserId,
    Model,
    /// The UTC day of the call (`YYYY-MM-DD`).
    Day,
}

impl UsageGroupBy {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "tenant" => Some(Self::Tenant),
            "agent" => Some(Self::Agent),
            "session" => Some(Self::Session),
            "user_id" | "user" => Some(Self::UserId),
            "model" => Some(Self::Model),
            "day" => Some(Self::Day),
            _ => None,
        }
    }
}

/// Which calls [`UsageStore::usage`] adds up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    pub group_by: UsageGroupBy,
    /// Calls that started at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Calls that started before this instant.
    pub until: Option<DateTime<Utc>>,
}

/// The totals of one group. Only calls that were forwarded (with the tenant's credential or
/// the free tier) count; refused calls cost nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageGroup {
    /// The group's agent, session, user id, model or day; `null` for calls without one.
    pub key: Option<String>,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Cache reads and writes together.
    pub cache_tokens: u64,
    /// `null` when no call of the group had a known price.
    pub cost_usd: Option<f64>,
}

/// Totals over the audit log.
#[async_trait]
pub trait UsageStore: Send + Sync + 'static {
    /// The tenant's usage, one entry per group, sorted by key.
    async fn usage(&self, tenant_name: &str, query: &UsageQuery) -> Result<Vec<UsageGroup>>;
    /// USD spent by a scope's calls since `since` (tenant by NAME, as the audit log keeps it).
    async fn spent_usd(
        &self,
        tenant_name: &str,
        scope: LimitScope,
        name: &str,
        since: DateTime<Utc>,
    ) -> Result<f64>;
}
