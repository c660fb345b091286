//! [`LocalCounters`]: the in-process [`LimitCounters`], exact within one keyward process.
//!
//! - Requests and tokens per minute: a fixed 60-second window per scope, anchored when the
//!   scope's counters are created (so the first call of a newly limited scope opens a full
//!   window); `Retry-After` is the rest of the window.
//! - Concurrency: an atomic in-flight count, compare-and-swap below the limit.
//! - Budgets: spend per UTC day and calendar month. It is loaded once from the audit log's
//!   `cost_usd` (so it survives restarts) when the scope is first resolved with a budget, and
//!   counted here afterwards: reserved before a call, corrected by its real cost after.
//!
//! Every counter is one atomic word ([`Window`]); the hot path takes no lock. The scope map is
//! locked only when a session's view is built.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use chrono::Utc;
use keyward_store::{LimitScope, Limits, UsageStore};

use super::counters::*;
use super::window::{Calendar, Window, MINUTE_BITS, SPEND_BITS};

/// Past this many scopes, scopes no session view uses any more are dropped.
const MAX_SCOPES_KEPT: usize = 100_000;

/// One scope's counters.
#[derive(Debug)]
pub struct LocalScope {
    anchor: Instant,
    requests: Window<MINUTE_BITS>,
    tokens: Window<MINUTE_BITS>,
    concurrent: AtomicU64,
    day: Window<SPEND_BITS>,
    month: Window<SPEND_BITS>,
    /// The spend counters hold this scope's spend (loaded, and counted since).
    spend_live: AtomicBool,
    loading: tokio::sync::Mutex<()>,
}

impl LocalScope {
    fn new() -> Self {
        Self {
            anchor: Instant::now(),
            requests: Window::default(),
            tokens: Window::default(),
            concurrent: AtomicU64::new(0),
            day: Window::default(),
            month: Window::default(),
            spend_live: AtomicBool::new(false),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// Take one request of `demand` under `limits`, all or nothing.
    fn acquire(
        &self,
        handle: &ScopeHandle,
        limits: &Limits,
        demand: Amounts,
        now: Instant,
        calendar: Option<Calendar>,
    ) -> Result<Held, (LimitKind, u64)> {
        let elapsed = now.saturating_duration_since(self.anchor).as_secs();
        let minute = elapsed / 60;
        let to_next_minute = 60 - elapsed % 60;
        let (day, month) = calendar.map_or((0, 0), |c| (c.day, c.month));
        let mut held = Held {
            handle: handle.clone(),
            minute,
            day,
            month,
            requests: false,
            tokens: false,
            concurrent: false,
            budget_day: false,
            budget_month: false,
        };
        let result = self.take(limits, demand, &mut held, calendar, to_next_minute);
        if result.is_err() {
            self.undo(&held, demand);
        }
        result.map(|()| held)
    }

    fn take(
        &self,
        limits: &Limits,
        demand: Amounts,
        held: &mut Held,
        calendar: Option<Calendar>,
        to_next_minute: u64,
    ) -> Result<(), (LimitKind, u64)> {
        if let Some(max) = limits.concurrent_requests {
            let taken = self
                .concurrent
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                })
                .is_ok();
            if !taken {
                return Err((LimitKind::ConcurrentRequests, 1));
            }
            held.concurrent = true;
        }
        if let Some(max) = limits.requests_per_minute {
            if !self.requests.try_add(held.minute, 1, max) {
                return Err((LimitKind::RequestsPerMinute, to_next_minute));
            }
            held.requests = true;
        }
        if let Some(max) = limits.tokens_per_minute {
            if !self.tokens.try_add(held.minute, demand.tokens, max) {
                return Err((LimitKind::TokensPerMinute, to_next_minute));
            }
            held.tokens = true;
        }
        if let (Some(usd), Some(cal)) = (limits.budget_usd_per_day, calendar) {
            if !self.day.try_add(cal.day, demand.spend, spend_units(usd)) {
                return Err((LimitKind::BudgetPerDay, cal.secs_to_next_day));
            }
            held.budget_day = true;
        }
        if let (Some(usd), Some(cal)) = (limits.budget_usd_per_month, calendar) {
            if !self
                .month
                .try_add(cal.month, demand.spend, spend_units(usd))
            {
                return Err((LimitKind::BudgetPerMonth, cal.secs_to_next_month));
            }
            held.budget_month = true;
        }
        Ok(())
    }

    /// Take back everything `held` counted.
    fn undo(&self, held: &Held, demand: Amounts) {
        self.finish(held, demand, Amounts::default(), true);
    }

    /// Free the slot and replace the reserved `demand` by `used`; `undo` also uncounts the
    /// request itself.
    fn finish(&self, held: &Held, demand: Amounts, used: Amounts, undo: bool) {
        if held.concurrent {
            let _ = self
                .concurrent
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
        if held.requests && undo {
            self.requests.sub(held.minute, 1);
        }
        if held.tokens {
            self.tokens.correct(held.minute, demand.tokens, used.tokens);
        }
        if held.budget_day {
            self.day.correct(held.day, demand.spend, used.spend);
        }
        if held.budget_month {
            self.month.correct(held.month, demand.spend, used.spend);
        }
    }
}

/// See the module documentation.
pub struct LocalCounters {
    scopes: Mutex<HashMap<ScopeKey, Arc<LocalScope>>>,
    /// Where the spend so far is read from (`None`: budgets start at zero).
    spend: Option<Arc<dyn UsageStore>>,
}

impl LocalCounters {
    pub fn new(spend: Option<Arc<dyn UsageStore>>) -> Self {
        Self {
            scopes: Mutex::new(HashMap::new()),
            spend,
        }
    }

    fn get_or_create(&self, key: &ScopeKey) -> Arc<LocalScope> {
        let mut scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(scope) = scopes.get(key) {
            return scope.clone();
        }
        if scopes.len() >= MAX_SCOPES_KEPT {
            scopes.retain(|_, scope| Arc::strong_count(scope) > 1);
        }
        let scope = Arc::new(LocalScope::new());
        scopes.insert(key.clone(), scope.clone());
        scope
    }

    /// Load the scope's spend of this day and month from the audit log.
    async fn load_spend(&self, key: &ScopeKey, scope: &LocalScope) -> Result<(), CounterError> {
        let _loading = scope.loading.lock().await;
        if scope.spend_live.load(Ordering::Acquire) {
            return Ok(());
        }
        let store_scope = match key.kind {
            ScopeKind::Tenant => LimitScope::Tenant,
            ScopeKind::Agent => LimitScope::Agent,
            ScopeKind::Session => LimitScope::Session,
            ScopeKind::FreeTier => return Ok(()),
        };
        let now = Utc::now();
        let calendar = Calendar::at(now);
        let (day_start, month_start) = Calendar::starts(now);
        let (day, month) = match &self.spend {
            Some(store) => {
                let spent =
                    |since| store.spent_usd(&key.tenant_name, store_scope, &key.name, since);
                (spent(day_start).await?, spent(month_start).await?)
            }
            None => (0.0, 0.0),
        };
        scope.day.set(calendar.day, spend_units(day));
        scope.month.set(calendar.month, spend_units(month));
        scope.spend_live.store(true, Ordering::Release);
        Ok(())
    }
}

fn local(handle: &ScopeHandle) -> Option<&LocalScope> {
    handle.downcast_ref::<LocalScope>()
}

#[async_trait]
impl LimitCounters for LocalCounters {
    async fn scope(&self, key: &ScopeKey, limits: &Limits) -> Result<ScopeHandle, CounterError> {
        let scope = self.get_or_create(key);
        if limits.has_budget() {
            self.load_spend(key, &scope).await?;
        } else {
            // Calls are not charged to a scope without a budget: load again once it has one.
            scope.spend_live.store(false, Ordering::Release);
        }
        Ok(scope)
    }

    fn try_acquire(&self, scopes: &[&ScopeLimits], demand: Amounts) -> Result<Ticket, Refusal> {
        let now = Instant::now();
        let calendar = scopes
            .iter()
            .any(|s| s.limits.has_budget())
            .then(Calendar::now);
        let mut ticket = Ticket {
            held: Default::default(),
            demand,
        };
        for (slot, s) in ticket.held.iter_mut().zip(scopes) {
            let Some(scope) = local(&s.handle) else {
                continue;
            };
            match scope.acquire(&s.handle, &s.limits, demand, now, calendar) {
                Ok(held) => *slot = Some(held),
                Err((limit, retry_after)) => {
                    self.release(ticket);
                    return Err(Refusal {
                        scope: s.kind,
                        limit,
                        retry_after_secs: retry_after.max(1),
                    });
                }
            }
        }
        Ok(ticket)
    }

    fn settle(&self, ticket: Ticket, used: Amounts) {
        for held in ticket.held.iter().flatten() {
            if let Some(scope) = local(&held.handle) {
                scope.finish(held, ticket.demand, used, false);
            }
        }
    }

    fn release(&self, ticket: Ticket) {
        for held in ticket.held.iter().flatten() {
            if let Some(scope) = local(&held.handle) {
                scope.undo(held, ticket.demand);
            }
        }
    }
}

#[cfg(test)]
#[path = "local_tests.rs"]
mod tests;
