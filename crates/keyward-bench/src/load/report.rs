//! The result of one load run: throughput, latency percentiles and failures.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::worker::{Tally, MAX_LATENCY_US};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub concurrency: usize,
    pub duration_s: f64,
    /// 2xx responses completed within the run.
    pub requests: u64,
    /// Every response read to its end, including the last ones after the deadline.
    pub completed: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub non_2xx: u64,
    pub errors: u64,
    pub reconnects: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    #[serde(skip)]
    histogram: Option<Histogram<u64>>,
}

impl Report {
    pub fn new(concurrency: usize, window: Duration) -> Self {
        Report {
            concurrency,
            duration_s: window.as_secs_f64(),
            requests: 0,
            completed: 0,
            rps: 0.0,
            p50_ms: 0.0,
            p90_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
            mean_ms: 0.0,
            non_2xx: 0,
            errors: 0,
            reconnects: 0,
            first_error: None,
            histogram: None,
        }
    }

    /// Merge one worker's tally and recompute the figures.
    pub fn add(&mut self, tally: Tally) -> anyhow::Result<()> {
        self.completed += tally.completed;
        self.non_2xx += tally.non_2xx;
        self.errors += tally.errors;
        self.reconnects += tally.reconnects;
        if self.first_error.is_none() {
            self.first_error = tally.first_error;
        }
        match &mut self.histogram {
            Some(h) => h.add(&tally.latency_us)?,
            None => self.histogram = Some(tally.latency_us),
        }
        if let Some(h) = &self.histogram {
            let ms = |us: u64| us.min(MAX_LATENCY_US) as f64 / 1000.0;
            self.requests = h.len();
            self.rps = h.len() as f64 / self.duration_s;
            self.p50_ms = ms(h.value_at_quantile(0.50));
            self.p90_ms = ms(h.value_at_quantile(0.90));
            self.p99_ms = ms(h.value_at_quantile(0.99));
            self.max_ms = ms(h.max());
            self.mean_ms = h.mean() / 1000.0;
        }
        Ok(())
    }

    /// Human-readable, a few lines.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "{} connections, {:.0} s: {} requests, {:.0} req/s\n\
             latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}  mean {:.3}\n\
             non-2xx {}  errors {}  reconnects {}",
            self.concurrency,
            self.duration_s,
            self.requests,
            self.rps,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            self.mean_ms,
            self.non_2xx,
            self.errors,
            self.reconnects
        );
        if let Some(e) = &self.first_error {
            text.push_str(&format!("\nfirst error: {e}"));
        }
        text
    }
}
