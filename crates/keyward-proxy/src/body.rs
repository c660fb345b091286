//! The response body on its way back to the agent: each chunk is metered (usage read on the
//! side) and scrubbed of secrets, then forwarded at once — no buffering. The idle timeout cuts
//! a stalled upstream; whatever way the body ends (done, upstream reset, idle, the agent gone),
//! the call's audit record is written exactly once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::call::{Finisher, Outcome};
use crate::meter::Meter;
use crate::metrics::Metrics;
use crate::redact::RedactStream;
use crate::upstream::BoxError;

/// Why the data plane cut a stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamCut {
    #[error("upstream idle for too long")]
    IdleTimeout,
}

pin_project_lite::pin_project! {
    pub struct ResponseBody {
        #[pin]
        inner: Incoming,
        #[pin]
        idle: Sleep,
        idle_timeout: Duration,
        redact: Option<RedactStream>,
        meter: Option<Meter>,
        tail: Option<Bytes>,
        finisher: Option<Finisher>,
        status: u16,
        ttfb_ms: u64,
        bytes_out: u64,
        done: bool,
        metrics: Arc<Metrics>,
    }

    impl PinnedDrop for ResponseBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if this.finisher.is_some() {
                // Dropped before the end: the agent went away (hyper drops the body).
                finish(this.finisher, this.meter, *this.status, *this.ttfb_ms, *this.bytes_out, Some("client_disconnected"));
            }
            this.metrics.stream_closed();
        }
    }
}

impl ResponseBody {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        inner: Incoming,
        idle_timeout: Duration,
        redact: Option<RedactStream>,
        meter: Option<Meter>,
        finisher: Finisher,
        status: u16,
        ttfb_ms: u64,
        metrics: Arc<Metrics>,
    ) -> Self {
        metrics.stream_opened();
        ResponseBody {
            inner,
            idle: tokio::time::sleep(idle_timeout),
            idle_timeout,
            redact,
            meter,
            tail: None,
            finisher: Some(finisher),
            status,
            ttfb_ms,
            bytes_out: 0,
            done: false,
            metrics,
        }
    }
}

fn finish(
    finisher: &mut Option<Finisher>,
    meter: &mut Option<Meter>,
    status: u16,
    ttfb_ms: u64,
    bytes_out: u64,
    error: Option<&'static str>,
) {
    if let Some(f) = finisher.take() {
        let usage = meter.as_mut().map(|m| m.finish().clone());
        f.finish(Outcome {
            status: Some(status),
            ttfb_ms: Some(ttfb_ms),
            bytes_out,
            usage: usage.as_ref(),
            error,
            blocked: None,
        });
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        if let Some(tail) = this.tail.take() {
            return Poll::Ready(Some(Ok(Frame::data(tail))));
        }
        if *this.done {
            return Poll::Ready(None);
        }
        loop {
            match this.inner.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let frame = match frame.into_data() {
                        Ok(data) => {
                            if let Some(meter) = this.meter.as_mut() {
                                meter.observe(&data);
                            }
                            let out = match this.redact.as_mut() {
                                Some(r) => r.push(data),
                                None => data,
                            };
                            this.idle
                                .as_mut()
                                .reset(Instant::now() + *this.idle_timeout);
                            if out.is_empty() {
                                continue;
                            }
                            *this.bytes_out += out.len() as u64;
                            Frame::data(out)
                        }
                        Err(frame) => frame,
                    };
                    return Poll::Ready(Some(Ok(frame)));
                }
                Poll::Ready(Some(Err(e))) => {
                    *this.done = true;
                    finish(
                        this.finisher,
                        this.meter,
                        *this.status,
                        *this.ttfb_ms,
                        *this.bytes_out,
                        Some("upstream_reset"),
                    );
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
                Poll::Ready(None) => {
                    *this.done = true;
                    let tail = this.redact.as_mut().map(|r| r.finish()).unwrap_or_default();
                    *this.bytes_out += tail.len() as u64;
                    finish(
                        this.finisher,
                        this.meter,
                        *this.status,
                        *this.ttfb_ms,
                        *this.bytes_out,
                        None,
                    );
                    if tail.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(tail))));
                }
                Poll::Pending => {
                    ready!(this.idle.as_mut().poll(cx));
                    *this.done = true;
                    finish(
                        this.finisher,
                        this.meter,
                        *this.status,
                        *this.ttfb_ms,
                        *this.bytes_out,
                        Some("idle_timeout"),
                    );
                    return Poll::Ready(Some(Err(Box::new(StreamCut::IdleTimeout))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.tail.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // Redaction may change the length: never promise one.
        SizeHint::default()
    }
}
