//! Prometheus metrics of the data plane, served as text on the API listener's `/metrics`.
//! Label values are static strings, so recording allocates nothing.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub status: u16,
    /// `forwarded`, `free_tier` or `blocked`.
    pub decision: &'static str,
    /// The error code when blocked or failed, else empty.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub model: String,
    pub direction: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub upstream_latency: Family<RouteLabels, Histogram>,
    pub upstream_ttfb: Family<RouteLabels, Histogram>,
    pub open_streams: Gauge<i64, AtomicI64>,
    pub tokens: Family<TokenLabels, Counter>,
    pub audit_queue_depth: Gauge<i64, AtomicI64>,
    pub audit_write_failures: Gauge<i64, AtomicI64>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("keyward");
        let requests = Family::<RequestLabels, Counter>::default();
        let upstream_latency =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let upstream_ttfb =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let open_streams = Gauge::<i64, AtomicI64>::default();
        let tokens = Family::<TokenLabels, Counter>::default();
        let audit_queue_depth = Gauge::<i64, AtomicI64>::default();
        let audit_write_failures = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "proxy_requests",
            "Data-plane requests by route, status and decision",
            requests.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Time from forwarding to the end of the upstream response",
            upstream_latency.clone(),
        );
        registry.register(
            "upstream_ttfb_seconds",
            "Time from forwarding to the upstream response head",
            upstream_ttfb.clone(),
        );
        registry.register(
            "open_streams",
            "Responses currently streaming to agents",
            open_streams.clone(),
        );
        registry.register(
            "tokens",
            "LLM tokens by model and direction",
            tokens.clone(),
        );
        registry.register(
            "audit_queue_depth",
            "Audit records waiting to be written",
            audit_queue_depth.clone(),
        );
        registry.register(
            "audit_write_failures",
            "Failed audit batch writes since start",
            audit_write_failures.clone(),
        );
        Arc::new(Self {
            registry,
            requests,
            upstream_latency,
            upstream_ttfb,
            open_streams,
            tokens,
            audit_queue_depth,
            audit_write_failures,
        })
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    pub fn set_audit(&self, depth: usize, failures: u64) {
        self.audit_queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.audit_write_failures
            .set(i64::try_from(failures).unwrap_or(i64::MAX));
    }

    pub fn stream_opened(&self) {
        self.open_streams.inner().fetch_add(1, Ordering::Relaxed);
    }

    pub fn stream_closed(&self) {
        self.open_streams.inner().fetch_sub(1, Ordering::Relaxed);
    }
}
