use std::process::ExitCode;

use crate::cli::GlobalArgs;

#[derive(clap::Subcommand, Debug)]
pub enum SecretsCmd {
    /// placeholder
    List,
}

pub async fn run(_global: &GlobalArgs, _cmd: SecretsCmd) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented")
}
