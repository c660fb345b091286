//! A call's bill, settled once when it ends (in [`crate::call::Finisher`], whatever way the
//! call ends): its cost from the price table, and the limits [`Permit`] it holds settled with
//! what it really used.
//!
//! What a call is charged against its limits: the usage the response reported (a stream cut
//! short reports what it carried so far); if a response was cut before reporting any usage,
//! the estimate reserved for it (so a client cannot dodge its limits by hanging up early);
//! nothing for a call that failed before a response.

use std::sync::Arc;

use crate::limits::counters::{spend_units, Amounts, LimitCounters, Ticket};
use crate::meter::Usage;
use crate::prices::{PriceTable, UsageStyle};

/// What a call took from its limits, given back exactly once.
pub struct Permit {
    counters: Arc<dyn LimitCounters>,
    ticket: Option<Ticket>,
}

impl Permit {
    pub fn new(counters: Arc<dyn LimitCounters>, ticket: Ticket) -> Self {
        Self {
            counters,
            ticket: Some(ticket),
        }
    }

    fn demand(&self) -> Amounts {
        self.ticket.as_ref().map(|t| t.demand).unwrap_or_default()
    }

    pub fn settle(mut self, used: Amounts) {
        if let Some(ticket) = self.ticket.take() {
            self.counters.settle(ticket, used);
        }
    }
}

impl Drop for Permit {
    /// Never settled (the call was dropped before its end was seen): taken back whole.
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.counters.release(ticket);
        }
    }
}

/// How a call is priced and what it holds.
pub struct Accounting {
    pub prices: Arc<PriceTable>,
    pub style: UsageStyle,
    pub permit: Option<Permit>,
}

/// How a call ended, as far as its bill is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The response ended (or failed before one arrived).
    Complete,
    /// The response was cut short (upstream reset, idle timeout, the client gone).
    Cut,
}

impl Accounting {
    pub fn new(prices: Arc<PriceTable>, style: UsageStyle) -> Self {
        Self {
            prices,
            style,
            permit: None,
        }
    }

    /// The call's cost in USD (`None` without usage or without a price for `model`), after
    /// settling its permit.
    pub fn finish(
        &mut self,
        usage: Option<&Usage>,
        model: Option<&str>,
        ending: Ending,
    ) -> Option<f64> {
        let usage = usage.filter(|u| u.seen);
        let cost = usage.and_then(|u| {
            let price = self.prices.price(model?)?;
            Some(price.cost(u, self.style))
        });
        if let Some(permit) = self.permit.take() {
            let used = match (usage, ending) {
                (Some(u), _) => Amounts {
                    tokens: u.input_tokens.saturating_add(u.output_tokens),
                    spend: cost.map_or(0, spend_units),
                },
                (None, Ending::Cut) => permit.demand(),
                (None, Ending::Complete) => Amounts::default(),
            };
            permit.settle(used);
        }
        cost
    }
}
