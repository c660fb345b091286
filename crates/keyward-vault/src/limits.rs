//! Limits a tenant sets on itself, one of its agents or one of its sessions: validated here,
//! stored by the [`keyward_store::LimitStore`], enforced by the data plane. Every change bumps
//! the change epoch, so the data plane applies it to the very next request.

use chrono::Utc;
use keyward_core::ErrorCode;
use keyward_store::{LimitScope, Limits, TenantId};

use crate::{Result, Vault, VaultError};

/// The tenant scope's only name in the API (`/v1/limits/tenant/me`).
pub const TENANT_SCOPE_NAME: &str = "me";
/// Largest requests- or tokens-per-minute limit (the counters hold 40 bits).
pub const MAX_PER_MINUTE: u64 = 1_000_000_000_000;
/// Largest concurrency limit.
pub const MAX_CONCURRENT: u64 = 1_000_000;
/// Largest budget, USD per day or month (the spend counters hold 48 bits of 1e-8 USD).
pub const MAX_BUDGET_USD: f64 = 1_000_000.0;

fn invalid(message: String) -> VaultError {
    VaultError::rejected(ErrorCode::InvalidRequest, message)
}

/// Values in range: whole numbers for the counts, finite non-negative USD for budgets. Zero is
/// allowed everywhere and refuses every call (a way to suspend a scope).
pub fn validate(limits: &Limits) -> Result<()> {
    for (field, value, max) in [
        (
            "requests_per_minute",
            limits.requests_per_minute,
            MAX_PER_MINUTE,
        ),
        (
            "tokens_per_minute",
            limits.tokens_per_minute,
            MAX_PER_MINUTE,
        ),
        (
            "concurrent_requests",
            limits.concurrent_requests,
            MAX_CONCURRENT,
        ),
    ] {
        if value.is_some_and(|v| v > max) {
            return Err(invalid(format!("{field} must be at most {max}")));
        }
    }
    for (field, value) in [
        ("budget_usd_per_day", limits.budget_usd_per_day),
        ("budget_usd_per_month", limits.budget_usd_per_month),
    ] {
        if value.is_some_and(|v| !v.is_finite() || !(0.0..=MAX_BUDGET_USD).contains(&v)) {
            return Err(invalid(format!(
                "{field} must be a number of USD from 0 to {MAX_BUDGET_USD}"
            )));
        }
    }
    Ok(())
}

impl Vault {
    /// Check that the scope names an object of the tenant: `me` for the tenant, an agent name,
    /// a session id. Another tenant's object is as absent as one that never existed (404).
    async fn limit_target(&self, tenant: TenantId, scope: LimitScope, name: &str) -> Result<()> {
        match scope {
            LimitScope::Tenant if name == TENANT_SCOPE_NAME => Ok(()),
            LimitScope::Tenant => Err(VaultError::rejected(
                ErrorCode::NotFound,
                "the tenant's limits are at /v1/limits/tenant/me",
            )),
            LimitScope::Agent => self.agent_record(tenant, name).await.map(drop),
            LimitScope::Session => self.get_session(tenant, name).await.map(drop),
        }
    }

    /// Replace a scope's limits; returns them as stored.
    pub async fn put_limits(
        &self,
        tenant: TenantId,
        scope: LimitScope,
        name: &str,
        limits: Limits,
    ) -> Result<Limits> {
        validate(&limits)?;
        self.limit_target(tenant, scope, name).await?;
        self.store()
            .put_limits(tenant, scope, name, &limits, Utc::now())
            .await?;
        self.bump_epoch();
        Ok(limits)
    }

    /// A scope's limits (empty when none are set).
    pub async fn limits(&self, tenant: TenantId, scope: LimitScope, name: &str) -> Result<Limits> {
        self.limit_target(tenant, scope, name).await?;
        Ok(self
            .store()
            .limits(tenant, scope, name)
            .await?
            .unwrap_or_default())
    }

    /// Remove a scope's limits (no error if it had none).
    pub async fn clear_limits(
        &self,
        tenant: TenantId,
        scope: LimitScope,
        name: &str,
    ) -> Result<()> {
        self.limit_target(tenant, scope, name).await?;
        self.store().delete_limits(tenant, scope, name).await?;
        self.bump_epoch();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_ranges() {
        assert!(validate(&Limits::default()).is_ok());
        let ok = Limits {
            requests_per_minute: Some(0),
            tokens_per_minute: Some(MAX_PER_MINUTE),
            concurrent_requests: Some(2),
            budget_usd_per_day: Some(0.0),
            budget_usd_per_month: Some(12.5),
        };
        assert!(validate(&ok).is_ok());
        for bad in [
            Limits {
                requests_per_minute: Some(MAX_PER_MINUTE + 1),
                ..Limits::default()
            },
            Limits {
                concurrent_requests: Some(MAX_CONCURRENT + 1),
                ..Limits::default()
            },
            Limits {
                budget_usd_per_day: Some(-1.0),
                ..Limits::default()
            },
            Limits {
                budget_usd_per_month: Some(f64::NAN),
                ..Limits::default()
            },
            Limits {
                budget_usd_per_month: Some(MAX_BUDGET_USD * 2.0),
                ..Limits::default()
            },
        ] {
            let err = validate(&bad).map(|_| ()).map_err(|e| e.code());
            assert_eq!(err, Err(ErrorCode::InvalidRequest), "{bad:?}");
        }
    }
}
