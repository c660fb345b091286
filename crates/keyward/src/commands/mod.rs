//! CLI commands that talk to the control API (and `admin rotate-master-key`, which can also
//! work offline on the data dir).

pub mod admin;
mod agent_bundle;
pub mod agents;
pub mod audit;
pub mod limits;
mod output;
pub mod run;
pub mod secrets;
mod secrets_write;
pub mod tenants;
pub mod tokens;
pub mod usage;

use std::fmt;
use std::process::ExitCode;

use clap::CommandFactory;

/// Report a usage error that clap's derive cannot express, formatted by clap with the usage
/// of `keyward GROUP NAME`; the exit code is clap's (2).
pub(crate) fn usage_error(group: &str, name: &str, message: impl fmt::Display) -> ExitCode {
    let kind = clap::error::ErrorKind::ValueValidation;
    let mut cmd = crate::cli::Cli::command();
    cmd.build();
    let sub = cmd
        .find_subcommand_mut(group)
        .and_then(|g| g.find_subcommand_mut(name));
    let error = match sub {
        Some(sub) => sub.error(kind, message),
        None => clap::Error::raw(kind, message),
    };
    let _ = error.print();
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
}
