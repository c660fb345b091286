//! `keyward`: the server (`keyward serve`) and the CLI that talks to it, in one binary.
//! `anyhow` lives here only; the libraries have typed errors.

mod cli;
mod client;
mod commands;
mod datadir;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Usage errors exit 2 (clap's convention), everything else that fails exits 1.
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keyward: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("keyward: {e:#}");
            ExitCode::from(1)
        }
    }
}
