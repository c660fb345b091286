//! One proxied call's context, carried from authentication to the last byte, and turned into
//! exactly one audit record whatever the outcome (forwarded, blocked, failed, cut short).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use keyward_audit::{AuditRecord, AuditSlot};

use crate::accounting::Ending;
use crate::meter::Usage;
use crate::metrics::{Metrics, RequestLabels, RouteLabels, TokenLabels};
use crate::session::SessionState;

/// What is known about a call before it is forwarded.
pub struct Call {
    pub started: Instant,
    pub ts: DateTime<Utc>,
    pub route: &'static str,
    pub tenant: String,
    pub agent: Option<String>,
    pub session: String,
    pub user_id: Option<String>,
    pub mode: keyward_audit::AuditMode,
    pub method: String,
    pub host: String,
    /// Path with sensitive query values masked.
    pub path: String,
    /// Request headers minus credentials.
    pub request_headers: BTreeMap<String, String>,
    pub bytes_in: u64,
    pub credential: Option<(String, i64)>,
    pub model: Option<String>,
    pub decision: &'static str,
    /// Prices the call and holds what it took from its limits (set when it is admitted).
    pub accounting: Option<crate::accounting::Accounting>,
}

impl Call {
    pub fn new(
        session: &SessionState,
        route: &'static str,
        req: &http::request::Parts,
        host: String,
    ) -> Self {
        let path = req
            .uri
            .path_and_query()
            .map_or_else(|| req.uri.path().to_owned(), |pq| pq.as_str().to_owned());
        Call {
            started: Instant::now(),
            ts: Utc::now(),
            route,
            tenant: session.tenant_name.clone(),
            agent: session.agent.clone(),
            session: session.session_id.clone(),
            user_id: session.user_id.clone(),
            mode: match session.mode {
                keyward_vault::SessionMode::Gateway => keyward_audit::AuditMode::Gateway,
                keyward_vault::SessionMode::Proxy => keyward_audit::AuditMode::Proxy,
            },
            method: req.method.as_str().to_owned(),
            host,
            path: keyward_audit::mask_query(&path),
            request_headers: keyward_audit::safe_headers(&req.headers),
            bytes_in: 0,
            credential: None,
            model: None,
            decision: "forwarded",
            accounting: None,
        }
    }
}

/// How a call ended.
pub struct Outcome<'a> {
    pub status: Option<u16>,
    pub ttfb_ms: Option<u64>,
    pub bytes_out: u64,
    pub usage: Option<&'a Usage>,
    /// `None` for success; a blocked call's code is in `blocked`.
    pub error: Option<&'static str>,
    pub blocked: Option<&'static str>,
}

/// Writes the call's audit record and metrics, once.
///
/// Dropped without [`Finisher::finish`] — the agent went away while keyward waited for the
/// upstream, so hyper dropped the handler — it still writes the record, as
/// `client_disconnected`: the call may already have reached the upstream with the real key.
pub struct Finisher {
    pub call: Call,
    /// `None` once the record is written.
    pub slot: Option<AuditSlot>,
    pub metrics: Arc<Metrics>,
}

impl Drop for Finisher {
    fn drop(&mut self) {
        if self.slot.is_some() {
            self.write(Outcome {
                status: None,
                ttfb_ms: None,
                bytes_out: 0,
                usage: None,
                error: Some("client_disconnected"),
                blocked: None,
            });
        }
    }
}

impl Finisher {
    pub fn finish(mut self, outcome: Outcome<'_>) {
        self.write(outcome);
    }

    fn write(&mut self, outcome: Outcome<'_>) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let metrics = &self.metrics;
        let call = &mut self.call;
        let duration = call.started.elapsed();
        let decision = match outcome.blocked {
            Some(code) => format!("blocked:{code}"),
            None => call.decision.to_owned(),
        };
        metrics
            .requests
            .get_or_create(&RequestLabels {
                route: call.route,
                status: outcome.status.unwrap_or(0),
                decision: if outcome.blocked.is_some() {
                    "blocked"
                } else {
                    call.decision
                },
                reason: outcome.blocked.or(outcome.error).unwrap_or(""),
            })
            .inc();
        if outcome.blocked.is_none() {
            metrics
                .upstream_latency
                .get_or_create(&RouteLabels { route: call.route })
                .observe(duration.as_secs_f64());
        }
        let usage = outcome.usage.filter(|u| u.seen);
        let model = usage.and_then(|u| u.model.clone()).or(call.model.clone());
        if let (Some(u), Some(m)) = (usage, model.as_ref()) {
            metrics
                .tokens
                .get_or_create(&TokenLabels {
                    model: m.clone(),
                    direction: "input",
                })
                .inc_by(u.input_tokens);
            metrics
                .tokens
                .get_or_create(&TokenLabels {
                    model: m.clone(),
                    direction: "output",
                })
                .inc_by(u.output_tokens);
        }
        // The bill: cost, and the limits settled with what the call used.
        let ending = if outcome.error.is_some() && outcome.ttfb_ms.is_some() {
            Ending::Cut
        } else {
            Ending::Complete
        };
        let cost_usd = call
            .accounting
            .as_mut()
            .and_then(|a| a.finish(usage, model.as_deref(), ending));
        let (credential, credential_version) = match call.credential.take() {
            Some((name, version)) => (Some(name), Some(version)),
            None => (None, None),
        };
        slot.write(AuditRecord {
            ts: call.ts,
            tenant: std::mem::take(&mut call.tenant),
            agent: call.agent.take(),
            session: Some(std::mem::take(&mut call.session)),
            user_id: call.user_id.take(),
            mode: call.mode,
            method: std::mem::take(&mut call.method),
            host: std::mem::take(&mut call.host),
            path: std::mem::take(&mut call.path),
            request_headers: std::mem::take(&mut call.request_headers),
            status: outcome.status,
            bytes_in: call.bytes_in,
            bytes_out: outcome.bytes_out,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            ttfb_ms: outcome.ttfb_ms,
            credential,
            credential_version,
            model,
            tokens_in: usage.map(|u| u.input_tokens),
            tokens_out: usage.map(|u| u.output_tokens),
            cost_usd,
            decision,
            error: outcome.error.map(str::to_owned),
            tokens_cache_read: usage.map(|u| u.cache_read_tokens).filter(|n| *n > 0),
            tokens_cache_write: usage.map(|u| u.cache_write_tokens).filter(|n| *n > 0),
        });
    }
}
