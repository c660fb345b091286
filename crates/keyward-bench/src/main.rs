//! `keyward-bench`: the end-to-end benchmark of keyward's data plane (SPEC section 7).
//!
//! Three subcommands, each usable alone:
//!
//! - `upstream`: a minimal, fast mock OpenAI upstream (a fixed chat completion);
//! - `load`: a closed-loop HTTP/1.1 load generator that reports throughput and latency;
//! - `run`: starts the upstream, `keyward serve` and nginx, loads each of them in turn (direct,
//!   nginx, keyward gateway) and prints the table and the PASS/MISS of each target.
//!
//! It measures and never asserts: it is not part of `./scripts/test` nor of CI. Run it with
//! `./scripts/bench`.

mod load;
mod run;
mod upstream;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "keyward-bench",
    about = "End-to-end benchmark of keyward's data plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve a fixed OpenAI chat completion as fast as possible (mock upstream)
    Upstream(upstream::Args),
    /// Load one URL with N keep-alive connections and report throughput and latency
    Load(load::Args),
    /// Benchmark direct, nginx and keyward in one go and check the targets
    Run(run::Args),
}

impl Command {
    /// Worker threads of the runtime this command runs on.
    fn threads(&self) -> usize {
        match self {
            Command::Upstream(args) => args.threads,
            Command::Load(args) => args.threads,
            Command::Run(args) => args.load_threads,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match runtime(cli.command.threads()) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keyward-bench: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Upstream(args) => upstream::run(args).await,
            Command::Load(args) => load::cli(args).await,
            Command::Run(args) => run::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyward-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// One thread: a current-thread runtime (no cross-thread wake-ups); more: a multi-thread one.
fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}
