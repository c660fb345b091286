//! The load generator: a closed loop of N workers, each with its own keep-alive HTTP/1.1
//! connection (hyper's low-level client, no pool), sending the next request as soon as the
//! previous response has been read to its end. Latency is recorded per request in an HDR
//! histogram. Only loopback targets are accepted, and every run is bounded in time.
//!
//! HTTPS targets (`--connect-to` or `--proxy`, with `--cacert`) run TLS on each connection,
//! through an HTTP proxy's `CONNECT` tunnel when `--proxy` is given (keyward's proxy mode).

mod report;
mod spec;
mod tls;
mod worker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

pub use report::Report;
pub use spec::Spec;
pub use tls::Via;

/// The longest run `load` accepts, in seconds (warmup and measurement each).
pub const MAX_SECS: u64 = 600;

/// A small chat request, the default body.
pub const DEFAULT_BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one sentence."}]}"#;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Target URL: http (loopback only), e.g. http://127.0.0.1:8421/openai/v1/chat/completions,
    /// or https with --connect-to or --proxy, e.g. https://api.openai.com/v1/chat/completions
    #[arg(long)]
    pub url: String,
    /// HTTPS: connect to this loopback address instead of resolving the URL's host
    #[arg(
        long,
        value_name = "ADDR",
        conflicts_with = "proxy",
        requires = "cacert"
    )]
    pub connect_to: Option<std::net::SocketAddr>,
    /// HTTPS through this HTTP proxy (CONNECT tunnel, one per connection), loopback only;
    /// credentials in the URL go in Proxy-Authorization: Basic, e.g. http://kw:TOKEN@127.0.0.1:8421
    #[arg(long, value_name = "URL", requires = "cacert")]
    pub proxy: Option<String>,
    /// HTTPS: trust only the CA(s) in this PEM file
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,
    /// Extra request header, `Name: value` (repeatable)
    #[arg(long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Concurrent connections, one request in flight on each
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds measured
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of unmeasured load before (on its own connections)
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Request body from a file (default: a small chat request)
    #[arg(long, value_name = "FILE", conflicts_with = "body_json")]
    pub body: Option<std::path::PathBuf>,
    /// Request body given inline
    #[arg(long, value_name = "JSON")]
    pub body_json: Option<String>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
    /// Runtime worker threads of the load generator
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// `keyward-bench load`.
pub async fn cli(args: Args) -> anyhow::Result<()> {
    let body = match (&args.body, &args.body_json) {
        (Some(path), _) => std::fs::read(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .into(),
        (None, Some(json)) => json.clone().into_bytes().into(),
        (None, None) => bytes::Bytes::from_static(DEFAULT_BODY.as_bytes()),
    };
    let via = match (&args.connect_to, &args.proxy) {
        (Some(addr), _) => Some(Via::Direct(*addr)),
        (None, Some(url)) => Some(Via::Proxy(url.clone())),
        (None, None) => None,
    };
    let spec = match (via, &args.cacert) {
        (Some(via), Some(cacert)) => Spec::https(&args.url, &args.headers, body, &via, cacert)?,
        (None, Some(_)) => anyhow::bail!("--cacert needs --connect-to or --proxy"),
        (_, None) => Spec::new(&args.url, &args.headers, body)?,
    };
    let spec = Arc::new(spec);
    if args.warmup > 0 {
        run(spec.clone(), args.concurrency, args.warmup).await?;
    }
    let report = run(spec, args.concurrency, args.duration).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.summary());
    }
    Ok(())
}

/// Load `spec` with `concurrency` connections for `secs` seconds and report.
pub async fn run(spec: Arc<Spec>, concurrency: usize, secs: u64) -> anyhow::Result<Report> {
    anyhow::ensure!(
        (1..=4096).contains(&concurrency),
        "concurrency must be 1 to 4096"
    );
    anyhow::ensure!(
        (1..=MAX_SECS).contains(&secs),
        "a run lasts 1 to {MAX_SECS} seconds"
    );
    let window = Duration::from_secs(secs);
    let start = Instant::now();
    let until = start + window;
    let histogram = hdrhistogram::Histogram::new_with_bounds(1, worker::MAX_LATENCY_US, 3)?;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(worker::run(spec.clone(), until, histogram.clone())))
        .collect();
    let mut report = Report::new(concurrency, window);
    for handle in workers {
        let tally = handle.await.context("a load worker panicked")?;
        report.add(tally)?;
    }
    Ok(report)
}
