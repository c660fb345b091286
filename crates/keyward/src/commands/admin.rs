use std::process::ExitCode;

use crate::cli::GlobalArgs;

#[derive(clap::Subcommand, Debug)]
pub enum AdminCmd {
    /// placeholder
    List,
}

pub async fn run(_global: &GlobalArgs, _cmd: AdminCmd) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented")
}
