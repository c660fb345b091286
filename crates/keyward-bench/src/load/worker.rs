//! One load worker: its own connection, one request in flight, until the deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::Spec;

/// Latencies are recorded in microseconds, 1 µs to 60 s, 3 significant digits.
pub const MAX_LATENCY_US: u64 = 60_000_000;
/// How long a request may still take once the run's deadline has passed.
const GRACE: Duration = Duration::from_secs(2);

/// What one worker saw.
pub struct Tally {
    /// Latency of each 2xx response completed within the run, in µs.
    pub latency_us: Histogram<u64>,
    /// Every response read to its end, including those after the deadline (for CPU/request).
    pub completed: u64,
    pub non_2xx: u64,
    /// Failed connects, requests and bodies, and timeouts.
    pub errors: u64,
    /// Connections the server closed cleanly that had to be opened again.
    pub reconnects: u64,
    pub first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }
}

/// Run until `until`, recording into `latency_us` (empty, bounded to [`MAX_LATENCY_US`]).
pub async fn run(spec: Arc<Spec>, until: Instant, latency_us: Histogram<u64>) -> Tally {
    let mut tally = Tally {
        latency_us,
        completed: 0,
        non_2xx: 0,
        errors: 0,
        reconnects: 0,
        first_error: None,
    };
    let mut connections = 0u64;
    while Instant::now() < until {
        let mut sender = match connect(&spec).await {
            Ok(sender) => sender,
            Err(e) => {
                tally.error(format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if connections > 0 {
            tally.reconnects += 1;
        }
        connections += 1;
        // Requests on this connection until the deadline, an error, or the server closing it.
        while Instant::now() < until {
            if sender.ready().await.is_err() {
                break;
            }
            let req = match spec.request() {
                Ok(req) => req,
                Err(e) => {
                    tally.error(format!("request: {e}"));
                    return tally;
                }
            };
            let started = Instant::now();
            let deadline = until.max(started) + GRACE;
            let exchange = async {
                let response = sender.send_request(req).await?;
                let status = response.status();
                response.into_body().collect().await?;
                Ok::<_, hyper::Error>(status)
            };
            match tokio::time::timeout_at(deadline.into(), exchange).await {
                Ok(Ok(status)) => {
                    let finished = Instant::now();
                    tally.completed += 1;
                    if !status.is_success() {
                        tally.non_2xx += 1;
                    } else if finished <= until {
                        let us = (finished - started).as_micros();
                        let us = u64::try_from(us).unwrap_or(MAX_LATENCY_US);
                        tally
                            .latency_us
                            .saturating_record(us.clamp(1, MAX_LATENCY_US));
                    }
                }
                Ok(Err(e)) => {
                    // A clean close between two requests shows up at `ready()`, not here.
                    tally.error(format!("exchange: {e}"));
                    break;
                }
                Err(_) => {
                    tally.error("timeout".to_owned());
                    return tally;
                }
            }
        }
    }
    tally
}

async fn connect(
    spec: &Spec,
) -> anyhow::Result<http1::SendRequest<http_body_util::Full<bytes::Bytes>>> {
    if let Some(route) = &spec.tls {
        let stream = route.open().await?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        return Ok(sender);
    }
    let stream = TcpStream::connect(spec.addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}
