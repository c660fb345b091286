//! One proxied call's context, carried from authentication to the last byte, and turned into
//! exactly one audit record whatever the outcome (forwarded, blocked, failed, cut short).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use keyward_audit::{AuditRecord, AuditSlot};

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
pub struct Finisher {
    pub call: Call,
    pub slot: AuditSlot,
    pub metrics: Arc<Metrics>,
}

impl Finisher {
    pub fn finish(self, outcome: Outcome<'_>) {
        let Finisher {
            call,
            slot,
            metrics,
        } = self;
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
        let (credential, credential_version) = match call.credential {
            Some((name, version)) => (Some(name), Some(version)),
            None => (None, None),
        };
        slot.write(AuditRecord {
            ts: call.ts,
            tenant: call.tenant,
            agent: call.agent,
            session: Some(call.session),
            user_id: call.user_id,
            mode: call.mode,
            method: call.method,
            host: call.host,
            path: call.path,
            request_headers: call.request_headers,
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
            cost_usd: None,
            decision,
            error: outcome.error.map(str::to_owned),
        });
    }
}
