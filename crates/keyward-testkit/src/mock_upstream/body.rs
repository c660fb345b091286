//! A response body played from a script of frames, pauses and a final failure.

use std::collections::VecDeque;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, SizeHint};

/// One step of a scripted body.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Send one data frame (hyper writes and flushes it as its own chunk / DATA frame).
    Data(Bytes),
    /// Wait before the next step.
    Sleep(Duration),
    /// Fail the body: hyper aborts the connection (HTTP/1) or resets the stream (HTTP/2).
    Fail,
}

/// Body that replays [`Step`]s lazily, so dropping the connection cancels it.
pub(crate) struct ScriptBody {
    steps: VecDeque<Step>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl ScriptBody {
    pub(crate) fn new(steps: Vec<Step>) -> Self {
        Self {
            steps: steps.into(),
            sleep: None,
        }
    }

    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        Self::new(vec![Step::Data(bytes.into())])
    }
}

impl Body for ScriptBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
            }
            match this.steps.pop_front() {
                None => return Poll::Ready(None),
                Some(Step::Data(bytes)) => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                Some(Step::Sleep(d)) => this.sleep = Some(Box::pin(tokio::time::sleep(d))),
                Some(Step::Fail) => {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "mock upstream: reset mid-stream",
                    ))))
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.steps.is_empty() && self.sleep.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // An exact size (Content-Length) only for plain data; scripted streams go chunked.
        let mut total = 0u64;
        for step in &self.steps {
            match step {
                Step::Data(b) => total += b.len() as u64,
                Step::Sleep(_) | Step::Fail => return SizeHint::default(),
            }
        }
        if self.steps.len() <= 1 && self.sleep.is_none() {
            SizeHint::with_exact(total)
        } else {
            SizeHint::default()
        }
    }
}
