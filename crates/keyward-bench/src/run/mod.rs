//! `keyward-bench run`: the whole benchmark in one go.
//!
//! ```text
//! upstream (mock, own process) ← direct ─────────────────────────── load generator (here)
//!                              ← nginx   (worker_processes = cores) ←
//!                              ← keyward (serve, gateway session)   ←
//! ```
//!
//! With `--proxy-mode`, two more rows per concurrency, both HTTPS to `api.openai.com` with
//! HTTP/1.1 keep-alive: `direct-tls` (straight to the mock's TLS port) and `keyward-proxy` (a
//! second keyward, proxy-mode session: CONNECT through it, TLS to its minted certificate,
//! keyward calling the mock over TLS in turn — interception on both sides).
//!
//! For each concurrency, each target is warmed up and then measured on fresh connections; the
//! CPU time of nginx (master + workers) and keyward is read from `/proc` around the measured
//! part. Everything runs on this one machine, so the load generator and the upstream compete
//! with the proxy for the cores: the ratios, not the absolute numbers, are what carry over.

mod keyward;
mod nginx;
mod procs;
mod procstat;
mod table;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;

use crate::load::{self, Spec, Via};
use keyward::{Keyward, Setup, FAKE_KEY};
use nginx::Nginx;
use procs::Proc;
use table::{Results, Row};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds measured per target and concurrency
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of unmeasured load before each measurement
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Concurrencies (connections), comma-separated
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    pub concurrency: Vec<usize>,
    /// The keyward binary [default: next to this one, else $PATH]
    #[arg(long, value_name = "PATH")]
    pub keyward_bin: Option<PathBuf>,
    /// The nginx binary [default: $PATH, /usr/sbin]; without one, nginx's rows are skipped
    #[arg(long, value_name = "PATH")]
    pub nginx_bin: Option<PathBuf>,
    /// nginx worker_processes [default: the number of cores, like keyward's runtime threads]
    #[arg(long)]
    pub nginx_workers: Option<usize>,
    /// Also run keyward's rows with limits set on the session, and compare
    #[arg(long)]
    pub limits: bool,
    /// The body of PUT /v1/limits/session/{id} for --limits (generous: never reached)
    #[arg(
        long,
        value_name = "JSON",
        default_value = r#"{"requests_per_minute":100000000,"tokens_per_minute":100000000000,"concurrent_requests":100000,"budget_usd_per_day":1000000}"#
    )]
    pub limits_json: String,
    /// Request body [default: a small chat request]
    #[arg(long, value_name = "JSON")]
    pub body_json: Option<String>,
    /// Runtime threads of the mock upstream (its own process)
    #[arg(long, default_value_t = 1)]
    pub upstream_threads: usize,
    /// Runtime threads of the load generator
    #[arg(long, default_value_t = 1)]
    pub load_threads: usize,
    /// Also measure proxy mode: direct-tls and keyward-proxy rows (HTTPS, CONNECT tunnel)
    #[arg(long)]
    pub proxy_mode: bool,
    /// Where to write the results as JSON
    #[arg(long, default_value = "bench-out/results.json", value_name = "FILE")]
    pub out: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(!args.concurrency.is_empty(), "--concurrency is empty");
    anyhow::ensure!(
        (1..=load::MAX_SECS).contains(&args.duration),
        "--duration must be 1 to {} seconds",
        load::MAX_SECS
    );
    let limits_body: serde_json::Value =
        serde_json::from_str(&args.limits_json).context("--limits-json is not JSON")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let nginx_workers = args.nginx_workers.unwrap_or(cores);
    let keyward_bin = keyward::find_bin(args.keyward_bin.clone())?;
    let nginx_bin = nginx::find_bin(args.nginx_bin.clone())?;
    let dir = tempfile::Builder::new()
        .prefix("keyward-bench-")
        .tempdir()?;
    let mut results = Results::new(&args, cores, nginx_workers);
    results.print_header(load_average());

    let (_upstream, upstream_addr, upstream_tls) =
        start_upstream(dir.path(), args.upstream_threads, args.proxy_mode).await?;
    let mut kw = Keyward::start(
        &keyward_bin,
        dir.path(),
        "keyward",
        &Setup::Gateway(upstream_addr),
    )
    .await?;
    let mut ngx = match &nginx_bin {
        Some(bin) => {
            let n = Nginx::start(bin, dir.path(), upstream_addr, nginx_workers, FAKE_KEY).await?;
            results.nginx_version = Some(n.version.clone());
            Some(n)
        }
        None => {
            results
                .note("nginx: not found (install it, or pass --nginx-bin): its rows are skipped");
            None
        }
    };

    let body = match &args.body_json {
        Some(json) => Bytes::from(json.clone().into_bytes()),
        None => Bytes::from_static(load::DEFAULT_BODY.as_bytes()),
    };
    let bearer = |token: &str| vec![format!("Authorization: Bearer {token}")];
    let direct = Arc::new(Spec::new(
        &format!("http://{upstream_addr}/v1/chat/completions"),
        &bearer(FAKE_KEY),
        body.clone(),
    )?);
    // The agent's token goes to nginx too (and is overwritten there), so requests are alike.
    let via_keyward = Arc::new(Spec::new(
        &format!("{}/openai/v1/chat/completions", kw.proxy_url),
        &bearer(&kw.session_token),
        body.clone(),
    )?);
    let via_nginx = match &ngx {
        Some(n) => Some(Arc::new(Spec::new(
            &format!("http://{}/v1/chat/completions", n.addr),
            &bearer(&kw.session_token),
            body.clone(),
        )?)),
        None => None,
    };

    let mut proxy_mode = match upstream_tls {
        Some((tls_addr, ca)) => {
            Some(ProxyMode::start(&keyward_bin, dir.path(), tls_addr, ca, body.clone()).await?)
        }
        None => None,
    };

    for &concurrency in &args.concurrency {
        let cell = |target, spec: &Arc<Spec>, pid| Cell {
            target,
            spec: spec.clone(),
            concurrency,
            pid,
        };
        let row = measure(&args, &cell("direct", &direct, None)).await?;
        results.push(row);
        if let (Some(n), Some(spec)) = (&mut ngx, &via_nginx) {
            n.proc.check_alive()?;
            let pid = n.proc.pid();
            results.push(measure(&args, &cell("nginx", spec, Some(pid))).await?);
        }
        kw.proc.check_alive()?;
        let pid = kw.proc.pid();
        results.push(measure(&args, &cell("keyward", &via_keyward, Some(pid))).await?);
        if let Some(p) = &mut proxy_mode {
            results.push(measure(&args, &cell("direct-tls", &p.direct, None)).await?);
            p.kw.proc.check_alive()?;
            let pid = Some(p.kw.proc.pid());
            results.push(measure(&args, &cell("keyward-proxy", &p.via_keyward, pid)).await?);
        }
    }
    results.keyward_peak_rss_kib = procstat::peak_rss_kib(kw.proc.pid()).ok();
    if let Some(p) = &proxy_mode {
        results.keyward_proxy_peak_rss_kib = procstat::peak_rss_kib(p.kw.proc.pid()).ok();
    }
    drop(ngx.take());

    if args.limits {
        if kw.set_limits(&limits_body).await? {
            for &concurrency in &args.concurrency {
                let pid = Some(kw.proc.pid());
                let cell = Cell {
                    target: "keyward+limits",
                    spec: via_keyward.clone(),
                    concurrency,
                    pid,
                };
                results.push(measure(&args, &cell).await?);
            }
        } else {
            results.note("limits: endpoint not available yet");
        }
    }

    results.print();
    results.write_json(&args.out)?;
    println!("\nresults written to {}", args.out.display());
    Ok(())
}

/// The proxy-mode targets: a second keyward (proxy session) and the two HTTPS load specs.
struct ProxyMode {
    kw: Keyward,
    direct: Arc<Spec>,
    via_keyward: Arc<Spec>,
}

impl ProxyMode {
    async fn start(
        bin: &Path,
        dir: &Path,
        tls_addr: SocketAddr,
        upstream_ca: PathBuf,
        body: Bytes,
    ) -> anyhow::Result<Self> {
        let setup = Setup::Proxy {
            tls_addr,
            ca: upstream_ca.clone(),
        };
        let kw = Keyward::start(bin, dir, "keyward-proxy", &setup).await?;
        let placeholder = kw.env["OPENAI_API_KEY"]
            .as_str()
            .context("the proxy session's env has no OPENAI_API_KEY")?
            .to_owned();
        let ca_pem = kw
            .ca_pem
            .as_deref()
            .context("the proxy session came without ca_pem")?;
        let keyward_ca = dir.join("keyward-ca.pem");
        crate::upstream::write_atomically(&keyward_ca, ca_pem)?;
        let url = format!("https://{}/v1/chat/completions", crate::upstream::TLS_HOST);
        let headers = vec![format!("Authorization: Bearer {placeholder}")];
        let direct = Spec::https(
            &url,
            &[format!("Authorization: Bearer {FAKE_KEY}")],
            body.clone(),
            &Via::Direct(tls_addr),
            &upstream_ca,
        )?;
        let proxy_addr = kw
            .proxy_url
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let proxy = format!("http://kw:{}@{proxy_addr}", kw.session_token);
        let via_keyward = Spec::https(&url, &headers, body, &Via::Proxy(proxy), &keyward_ca)?;
        Ok(ProxyMode {
            kw,
            direct: Arc::new(direct),
            via_keyward: Arc::new(via_keyward),
        })
    }
}

/// One measurement: a target, a concurrency, and the process whose CPU time to charge.
struct Cell {
    target: &'static str,
    spec: Arc<Spec>,
    concurrency: usize,
    pid: Option<u32>,
}

async fn measure(args: &Args, cell: &Cell) -> anyhow::Result<Row> {
    eprintln!(
        "… {} at concurrency {}: {} s warmup, {} s measured",
        cell.target, cell.concurrency, args.warmup, args.duration
    );
    if args.warmup > 0 {
        let warm = load::run(cell.spec.clone(), cell.concurrency, args.warmup).await?;
        anyhow::ensure!(
            warm.requests > 0,
            "{}: no successful request during warmup ({} non-2xx, {} errors; first error: {})",
            cell.target,
            warm.non_2xx,
            warm.errors,
            warm.first_error.as_deref().unwrap_or("none")
        );
    }
    let before = cell.pid.map(procstat::tree_ticks).transpose()?;
    let report = load::run(cell.spec.clone(), cell.concurrency, args.duration).await?;
    let cpu = match (cell.pid, before) {
        (Some(pid), Some(before)) => {
            let ticks = procstat::tree_ticks(pid)?.saturating_sub(before);
            Some(procstat::ticks_to_duration(ticks, procstat::clock_ticks()))
        }
        _ => None,
    };
    Ok(Row::new(cell.target, report, cpu))
}

/// Start `keyward-bench upstream` (this binary) as its own process, so its CPU is not mixed
/// with the load generator's; returns it, its address and, with `tls`, its HTTPS address and
/// the file of the CA that signed its certificate.
async fn start_upstream(
    dir: &Path,
    threads: usize,
    tls: bool,
) -> anyhow::Result<(Proc, SocketAddr, Option<(SocketAddr, PathBuf)>)> {
    let ready = dir.join("upstream.addr");
    let ca = dir.join("upstream-ca.pem");
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["upstream", "--listen", "127.0.0.1:0", "--threads"])
        .arg(threads.to_string())
        .arg("--ready-file")
        .arg(&ready);
    if tls {
        cmd.args(["--tls", "--tls-listen", "127.0.0.1:0", "--ca-out"])
            .arg(&ca);
    }
    let mut proc = Proc::spawn("upstream", cmd, &dir.join("upstream.log"))?;
    let (addr, tls_addr) = proc
        .wait_for("its address", Duration::from_secs(10), || {
            let text = std::fs::read_to_string(&ready).ok()?;
            let mut lines = text.lines();
            let addr: SocketAddr = lines.next()?.trim().parse().ok()?;
            let tls_addr: Option<SocketAddr> = lines.next().and_then(|l| l.trim().parse().ok());
            (tls_addr.is_some() == tls).then_some((addr, tls_addr))
        })
        .await?;
    Ok((proc, addr, tls_addr.map(|a| (a, ca))))
}

/// The 1-minute load average: other work on the machine skews every number.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
