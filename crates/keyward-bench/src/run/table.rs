//! The results: the table, the ratios, PASS/MISS per target (SPEC section 7), and the JSON.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::Args;
use crate::load::Report;

/// One target at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub target: &'static str,
    #[serde(flatten)]
    pub load: Report,
    /// CPU time (user + system) of the proxy per completed request, in µs.
    pub cpu_us_per_request: Option<f64>,
}

impl Row {
    pub fn new(target: &'static str, load: Report, cpu: Option<Duration>) -> Self {
        let per_request = cpu
            .filter(|_| load.completed > 0)
            .map(|cpu| cpu.as_secs_f64() * 1e6 / load.completed as f64);
        Row {
            target,
            load,
            cpu_us_per_request: per_request,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub target: String,
    /// PASS, MISS, or SKIP (not measurable in this run).
    pub result: &'static str,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Results {
    pub cores: usize,
    pub duration_s: u64,
    pub warmup_s: u64,
    pub nginx_workers: usize,
    pub upstream_threads: usize,
    pub load_threads: usize,
    pub nginx_version: Option<String>,
    pub rows: Vec<Row>,
    pub keyward_peak_rss_kib: Option<u64>,
    /// The proxy-mode keyward's (a process of its own), with --proxy-mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyward_proxy_peak_rss_kib: Option<u64>,
    pub verdicts: Vec<Verdict>,
    pub notes: Vec<String>,
}

const MIB: f64 = 1024.0;

impl Results {
    pub fn new(args: &Args, cores: usize, nginx_workers: usize) -> Self {
        Results {
            cores,
            duration_s: args.duration,
            warmup_s: args.warmup,
            nginx_workers,
            upstream_threads: args.upstream_threads,
            load_threads: args.load_threads,
            nginx_version: None,
            rows: Vec::new(),
            keyward_peak_rss_kib: None,
            keyward_proxy_peak_rss_kib: None,
            verdicts: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// A remark printed now and kept in the results.
    pub fn note(&mut self, text: &str) {
        eprintln!("{text}");
        self.notes.push(text.to_owned());
    }

    pub fn print_header(&mut self, load_average: Option<f64>) {
        println!(
            "keyward-bench: {} cores; {} s measured after {} s warmup per row; upstream {} \
             thread(s), load generator {} thread(s), nginx worker_processes {}",
            self.cores,
            self.duration_s,
            self.warmup_s,
            self.upstream_threads,
            self.load_threads,
            self.nginx_workers
        );
        if let Some(load) = load_average.filter(|&l| l > 0.5) {
            self.note(&format!(
                "warning: load average {load:.2} before the start: other work on this machine \
                 makes the numbers noisy"
            ));
        }
    }

    fn row(&self, target: &str, concurrency: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.target == target && r.load.concurrency == concurrency)
    }

    fn concurrencies(&self) -> Vec<usize> {
        let mut all = Vec::new();
        for c in self.rows.iter().map(|r| r.load.concurrency) {
            if !all.contains(&c) {
                all.push(c);
            }
        }
        all
    }

    pub fn print(&mut self) {
        if let Some(v) = &self.nginx_version {
            println!("baseline: {v}");
        }
        for c in self.concurrencies() {
            println!("\nconcurrency {c}");
            println!(
                "  {:<15} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7}  {:>11}",
                "target",
                "req/s",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "non2xx",
                "errors",
                "CPU µs/req"
            );
            for r in self.rows.iter().filter(|r| r.load.concurrency == c) {
                let l = &r.load;
                let cpu = r
                    .cpu_us_per_request
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
                println!(
                    "  {:<15} {:>9.0} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>7} {:>7}  {:>11}",
                    r.target,
                    l.rps,
                    l.p50_ms,
                    l.p90_ms,
                    l.p99_ms,
                    l.max_ms,
                    l.non_2xx,
                    l.errors,
                    cpu
                );
            }
            self.print_ratios(c);
        }
        if let Some(kib) = self.keyward_peak_rss_kib {
            println!("\nkeyward peak RSS (VmHWM): {:.1} MiB", kib as f64 / MIB);
        }
        if let Some(kib) = self.keyward_proxy_peak_rss_kib {
            println!(
                "keyward (proxy mode) peak RSS (VmHWM): {:.1} MiB",
                kib as f64 / MIB
            );
        }
        self.verdicts = self.judge();
        println!("\ntargets (SPEC section 7)");
        for v in &self.verdicts {
            println!("  {:<4}  {:<34} {}", v.result, v.target, v.detail);
        }
        for n in &self.notes {
            println!("  note: {n}");
        }
    }

    fn print_ratios(&self, c: usize) {
        self.print_gateway_ratios(c);
        if let (Some(kw), Some(d)) = (self.row("keyward-proxy", c), self.row("direct-tls", c)) {
            println!(
                "  keyward-proxy/direct-tls req/s {:.2}; added p99 over direct-tls {:+.3} ms",
                ratio(kw.load.rps, d.load.rps),
                kw.load.p99_ms - d.load.p99_ms
            );
        }
    }

    fn print_gateway_ratios(&self, c: usize) {
        let Some(kw) = self.row("keyward", c) else {
            return;
        };
        let mut parts = Vec::new();
        if let Some(ng) = self.row("nginx", c) {
            parts.push(format!(
                "keyward/nginx req/s {:.2}",
                ratio(kw.load.rps, ng.load.rps)
            ));
        }
        if let Some(d) = self.row("direct", c) {
            parts.push(format!(
                "keyward/direct req/s {:.2}",
                ratio(kw.load.rps, d.load.rps)
            ));
            parts.push(format!(
                "added p99 over direct {:+.3} ms",
                kw.load.p99_ms - d.load.p99_ms
            ));
        }
        if let Some(lim) = self.row("keyward+limits", c) {
            parts.push(format!(
                "with/without limits req/s {:.2}, p99 {:+.3} ms",
                ratio(lim.load.rps, kw.load.rps),
                lim.load.p99_ms - kw.load.p99_ms
            ));
        }
        println!("  {}", parts.join("; "));
    }

    /// The four targets. When 16 or 64 was not measured, the nearest measured one stands in.
    fn judge(&self) -> Vec<Verdict> {
        let all = self.concurrencies();
        let nearest = |want: usize| all.iter().copied().min_by_key(|c| c.abs_diff(want));
        let mut out = Vec::new();

        let ratios: Vec<(usize, f64)> = all
            .iter()
            .filter_map(|&c| {
                Some((
                    c,
                    ratio(
                        self.row("keyward", c)?.load.rps,
                        self.row("nginx", c)?.load.rps,
                    ),
                ))
            })
            .collect();
        out.push(if ratios.is_empty() {
            skip("throughput ≥ nginx", "nginx not measured")
        } else {
            let detail = ratios
                .iter()
                .map(|(c, r)| format!("keyward/nginx {r:.2} at c={c}"))
                .collect::<Vec<_>>()
                .join(", ");
            verdict(
                "throughput ≥ nginx",
                ratios.iter().all(|(_, r)| *r >= 1.0),
                detail,
            )
        });

        let cpu = nearest(64).and_then(|c| {
            let kw = self.row("keyward", c)?.cpu_us_per_request?;
            let ng = self.row("nginx", c)?.cpu_us_per_request?;
            Some((c, kw, ng))
        });
        out.push(match cpu {
            None => skip("CPU/request ≤ nginx at c=64", "nginx not measured"),
            Some((c, kw, ng)) => verdict(
                "CPU/request ≤ nginx at c=64",
                kw <= ng,
                format!("keyward {kw:.1} µs vs nginx {ng:.1} µs at c={c}"),
            ),
        });

        let added = nearest(16).and_then(|c| {
            Some((
                c,
                self.row("keyward", c)?.load.p99_ms - self.row("direct", c)?.load.p99_ms,
            ))
        });
        out.push(match added {
            None => skip("added p99 ≤ 1 ms at c=16", "not measured"),
            Some((c, ms)) => verdict(
                "added p99 ≤ 1 ms at c=16",
                ms <= 1.0,
                format!("{ms:+.3} ms over direct at c={c}"),
            ),
        });

        let proxy_added = nearest(16).and_then(|c| {
            Some((
                c,
                self.row("keyward-proxy", c)?.load.p99_ms - self.row("direct-tls", c)?.load.p99_ms,
            ))
        });
        if let Some((c, ms)) = proxy_added {
            out.push(verdict(
                "proxy mode: added p99 ≤ 1 ms, c=16",
                ms <= 1.0,
                format!("{ms:+.3} ms over direct-tls at c={c}"),
            ));
        }
        if let Some(kib) = self.keyward_proxy_peak_rss_kib {
            out.push(verdict(
                "proxy mode: peak RSS ≤ 50 MiB",
                kib as f64 / MIB <= 50.0,
                format!("{:.1} MiB", kib as f64 / MIB),
            ));
        }

        out.push(match self.keyward_peak_rss_kib {
            None => skip("peak RSS ≤ 50 MiB", "VmHWM not readable"),
            Some(kib) => verdict(
                "peak RSS ≤ 50 MiB",
                kib as f64 / MIB <= 50.0,
                format!("{:.1} MiB", kib as f64 / MIB),
            ),
        });
        out
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn verdict(target: &str, pass: bool, detail: String) -> Verdict {
    Verdict {
        target: target.to_owned(),
        result: if pass { "PASS" } else { "MISS" },
        detail,
    }
}

fn skip(target: &str, why: &str) -> Verdict {
    Verdict {
        target: target.to_owned(),
        result: "SKIP",
        detail: why.to_owned(),
    }
}
