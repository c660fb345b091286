use keyward_store::{TenantId, UsageGroup, UsageQuery};

use super::*;

/// A usage store whose every scope has spent `usd` in any period.
struct Spent(f64);

#[async_trait]
impl UsageStore for Spent {
    async fn usage(&self, _: &str, _: &UsageQuery) -> keyward_store::Result<Vec<UsageGroup>> {
        Ok(Vec::new())
    }
    async fn spent_usd(
        &self,
        _: &str,
        _: LimitScope,
        _: &str,
        _: chrono::DateTime<Utc>,
    ) -> keyward_store::Result<f64> {
        Ok(self.0)
    }
}

fn key(kind: ScopeKind, name: &str) -> ScopeKey {
    ScopeKey {
        tenant: TenantId(1),
        tenant_name: "acme".into(),
        kind,
        name: name.into(),
    }
}

async fn scope(c: &LocalCounters, kind: ScopeKind, name: &str, limits: Limits) -> ScopeLimits {
    let handle = c.scope(&key(kind, name), &limits).await.unwrap();
    ScopeLimits {
        kind,
        limits,
        handle,
    }
}

fn demand(tokens: u64, usd: f64) -> Amounts {
    Amounts {
        tokens,
        spend: spend_units(usd),
    }
}

#[tokio::test]
async fn requests_per_minute_admit_exactly_n() {
    let c = LocalCounters::new(None);
    let limits = Limits {
        requests_per_minute: Some(3),
        ..Limits::default()
    };
    let s = scope(&c, ScopeKind::Session, "s", limits).await;
    for _ in 0..3 {
        let t = c.try_acquire(&[&s], Amounts::default()).unwrap();
        c.settle(t, Amounts::default());
    }
    let refused = c.try_acquire(&[&s], Amounts::default()).err().unwrap();
    assert_eq!(refused.limit, LimitKind::RequestsPerMinute);
    assert_eq!(refused.limit.code(), "rate_limited");
    assert_eq!(refused.scope, ScopeKind::Session);
    assert!((1..=60).contains(&refused.retry_after_secs), "{refused:?}");
    // The same scope resolved again (a new session view) keeps its count.
    let again = scope(&c, ScopeKind::Session, "s", limits).await;
    assert!(c.try_acquire(&[&again], Amounts::default()).is_err());
}

#[tokio::test]
async fn concurrency_slots_are_freed_by_settle_and_release() {
    let c = LocalCounters::new(None);
    let limits = Limits {
        concurrent_requests: Some(2),
        ..Limits::default()
    };
    let s = scope(&c, ScopeKind::Agent, "a", limits).await;
    let a = c.try_acquire(&[&s], Amounts::default()).unwrap();
    let b = c.try_acquire(&[&s], Amounts::default()).unwrap();
    let refused = c.try_acquire(&[&s], Amounts::default()).err().unwrap();
    assert_eq!(
        (refused.limit, refused.retry_after_secs),
        (LimitKind::ConcurrentRequests, 1)
    );
    c.settle(a, Amounts::default());
    let d = c.try_acquire(&[&s], Amounts::default()).unwrap();
    c.release(b);
    c.release(d);
    let _e = c.try_acquire(&[&s], Amounts::default()).unwrap();
    let _f = c.try_acquire(&[&s], Amounts::default()).unwrap();
}

#[tokio::test]
async fn a_refusal_in_one_scope_takes_nothing_from_the_others() {
    let c = LocalCounters::new(None);
    let roomy = Limits {
        requests_per_minute: Some(10),
        concurrent_requests: Some(10),
        tokens_per_minute: Some(1000),
        ..Limits::default()
    };
    let tenant = scope(&c, ScopeKind::Tenant, "", roomy).await;
    let tight = Limits {
        tokens_per_minute: Some(100),
        ..Limits::default()
    };
    let session = scope(&c, ScopeKind::Session, "s", tight).await;
    let refused = c
        .try_acquire(&[&tenant, &session], demand(150, 0.0))
        .err()
        .unwrap();
    assert_eq!(refused.limit, LimitKind::TokensPerMinute);
    // The tenant's counters are untouched: ten full calls still fit.
    for _ in 0..10 {
        let t = c.try_acquire(&[&tenant], demand(100, 0.0)).unwrap();
        c.settle(t, demand(100, 0.0));
    }
    assert!(c.try_acquire(&[&tenant], demand(0, 0.0)).is_err());
}

#[tokio::test]
async fn tokens_are_reserved_then_settled_to_what_was_used() {
    let c = LocalCounters::new(None);
    let limits = Limits {
        tokens_per_minute: Some(100),
        ..Limits::default()
    };
    let s = scope(&c, ScopeKind::Session, "s", limits).await;
    let big = c.try_acquire(&[&s], demand(90, 0.0)).unwrap();
    assert!(
        c.try_acquire(&[&s], demand(20, 0.0)).is_err(),
        "90 reserved"
    );
    c.settle(big, demand(30, 0.0));
    let t = c.try_acquire(&[&s], demand(70, 0.0)).unwrap();
    c.settle(t, demand(70, 0.0));
    assert!(c.try_acquire(&[&s], demand(0, 0.0)).is_err(), "100 used");
}

#[tokio::test]
async fn budgets_start_from_the_spend_so_far_and_stop_the_call_that_would_exceed() {
    let c = LocalCounters::new(Some(Arc::new(Spent(4.0))));
    let limits = Limits {
        budget_usd_per_day: Some(10.0),
        ..Limits::default()
    };
    let s = scope(&c, ScopeKind::Tenant, "", limits).await;
    // 4 spent: a call estimated at 7 would exceed 10.
    let refused = c.try_acquire(&[&s], demand(0, 7.0)).err().unwrap();
    assert_eq!(refused.limit, LimitKind::BudgetPerDay);
    assert_eq!(refused.limit.code(), "budget_exceeded");
    assert!(refused.retry_after_secs <= 86_400);
    let t = c.try_acquire(&[&s], demand(0, 6.0)).unwrap();
    c.settle(t, demand(0, 6.0));
    // Exactly at the budget: nothing more, not even a call estimated at zero.
    assert!(c.try_acquire(&[&s], demand(0, 0.0)).is_err());

    let monthly = Limits {
        budget_usd_per_month: Some(5.0),
        ..Limits::default()
    };
    let m = scope(&c, ScopeKind::Agent, "a", monthly).await;
    let refused = c.try_acquire(&[&m], demand(0, 1.5)).err().unwrap();
    assert_eq!(refused.limit, LimitKind::BudgetPerMonth);
    let t = c.try_acquire(&[&m], demand(0, 0.5)).unwrap();
    c.release(t);
    assert!(c.try_acquire(&[&m], demand(0, 1.0)).is_ok());
}
