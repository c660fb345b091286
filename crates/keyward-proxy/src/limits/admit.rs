//! The admission step of the pipeline, just before a call is forwarded: price it, check the
//! free tier's model list, and take the call's ticket from the counters of every scope it
//! counts against. A refused call gets its JSON error (429 with `Retry-After`, or 403) and is
//! audited as `blocked:<code>`.

use http::{HeaderValue, Response, StatusCode};

use super::counters::{spend_units, Amounts, Refusal, ScopeKind, ScopeLimits, MAX_SCOPES};
use crate::accounting::{Accounting, Permit};
use crate::call::{Finisher, Outcome};
use crate::error::json_error;
use crate::free_tier::FreeTier;
use crate::gateway::Target;
use crate::meter::inspect_request;
use crate::prices::UsageStyle;
use crate::session::SessionState;
use crate::{DataPlane, ResBody};

/// Why a call was not admitted; [`Refused::respond`] answers and audits it.
#[derive(Debug)]
pub enum Refused {
    Limit(Refusal),
    /// A free-tier call for a model the free tier does not serve.
    ModelNotAllowed,
    /// The limits could not be read (the store is down): refuse rather than run unlimited.
    Unavailable,
}

impl Refused {
    pub fn code(&self) -> &'static str {
        match self {
            Refused::Limit(r) => r.limit.code(),
            Refused::ModelNotAllowed => "model_not_allowed",
            Refused::Unavailable => "limits_unavailable",
        }
    }

    /// The answer to the client, and the call's audit record.
    pub fn respond(self, finisher: Finisher) -> Response<ResBody> {
        let code = self.code();
        let response = match &self {
            Refused::Limit(r) => {
                let scope = match r.scope {
                    ScopeKind::FreeTier => "the free tier's".to_owned(),
                    kind => format!("this {}'s", kind.as_str()),
                };
                let message = format!(
                    "{scope} {} limit is reached; retry in {} s",
                    r.limit.field(),
                    r.retry_after_secs
                );
                let mut response = json_error(StatusCode::TOO_MANY_REQUESTS, code, &message);
                response.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    HeaderValue::from(r.retry_after_secs),
                );
                response
            }
            Refused::ModelNotAllowed => json_error(
                StatusCode::FORBIDDEN,
                code,
                "the free tier does not serve this model (this session has no key of its own \
                 for the provider)",
            ),
            Refused::Unavailable => json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                code,
                "the limits of this call could not be read; try again",
            ),
        };
        if let Refused::Limit(r) = &self {
            tracing::debug!(
                code,
                scope = r.scope.as_str(),
                limit = r.limit.field(),
                "call refused"
            );
        }
        finisher.finish(Outcome {
            status: Some(response.status().as_u16()),
            ttfb_ms: None,
            bytes_out: 0,
            usage: None,
            error: None,
            blocked: Some(code),
        });
        response
    }
}

/// The free tier whose shared credential `target` carries, if it does.
pub fn free_tier_of<'p>(plane: &'p DataPlane, target: &Target) -> Option<&'p FreeTier> {
    plane
        .config
        .free_tier
        .as_deref()
        .filter(|tier| tier.is(&target.credential))
}

/// Admit a call (see the module documentation). `target` is `None` for calls keyward does not
/// meter (plain-HTTP proxying, tunnels): they count as requests and hold a concurrency slot.
/// `body` is the request body when keyward read it whole.
pub async fn admit(
    plane: &DataPlane,
    state: &SessionState,
    target: Option<&Target>,
    body: Option<&[u8]>,
    finisher: &mut Finisher,
) -> Result<(), Refused> {
    let style = match target {
        Some(t) if t.anthropic => UsageStyle::CachedApart,
        _ => UsageStyle::CachedInInput,
    };
    finisher.call.accounting = Some(Accounting::new(plane.config.prices.clone(), style));
    let free = target.and_then(|t| free_tier_of(plane, t));
    if let Some(tier) = free {
        finisher.call.decision = keyward_audit::decision::FREE_TIER;
        if !tier.allows(finisher.call.model.as_deref()) {
            return Err(Refused::ModelNotAllowed);
        }
    }
    let limiter = &plane.limiter;
    let scopes = limiter.scopes(state).await.map_err(|e| unavailable(&e))?;
    if scopes.is_empty() && free.is_none() {
        return Ok(());
    }
    let free_scope = match free {
        Some(tier) => Some(
            limiter
                .free_tier_scope(state, tier)
                .await
                .map_err(|e| unavailable(&e))?,
        ),
        None => None,
    };
    let demand = match body {
        Some(body) if scopes.needs_estimate() => estimate(plane, body, finisher),
        _ => Amounts::default(),
    };
    let Some((refs, n)) = refs(scopes.scopes(), free_scope.as_ref()) else {
        return Ok(());
    };
    let ticket = limiter
        .counters
        .try_acquire(&refs[..n], demand)
        .map_err(Refused::Limit)?;
    if let Some(accounting) = finisher.call.accounting.as_mut() {
        accounting.permit = Some(Permit::new(limiter.counters.clone(), ticket));
    }
    Ok(())
}

fn unavailable(e: &dyn std::error::Error) -> Refused {
    tracing::error!(error = %e, "limits unavailable");
    Refused::Unavailable
}

/// What a request will probably use: its input (body bytes / 4, an overestimate) and at most
/// its `max_tokens`, priced at the model's input and output prices.
fn estimate(plane: &DataPlane, body: &[u8], finisher: &Finisher) -> Amounts {
    let info = inspect_request(body);
    let output = info.max_output_tokens.unwrap_or(0);
    let input = info.estimated_input_tokens;
    let model = finisher.call.model.as_deref().or(info.model.as_deref());
    let usd = model
        .and_then(|m| plane.config.prices.price(m))
        .map_or(0.0, |p| p.estimate(input, output));
    Amounts {
        tokens: input.saturating_add(output),
        spend: spend_units(usd),
    }
}

/// The scopes as one slice of references, without allocating; `None` if there are none.
fn refs<'a>(
    scopes: &'a [ScopeLimits],
    extra: Option<&'a ScopeLimits>,
) -> Option<([&'a ScopeLimits; MAX_SCOPES], usize)> {
    let mut all = scopes.iter().chain(extra).take(MAX_SCOPES);
    let first = all.next()?;
    let mut out = [first; MAX_SCOPES];
    let mut n = 1;
    for (slot, scope) in out.iter_mut().skip(1).zip(all) {
        *slot = scope;
        n += 1;
    }
    Some((out, n))
}
