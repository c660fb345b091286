use std::process::ExitCode;

use crate::cli::GlobalArgs;

#[derive(clap::Subcommand, Debug)]
pub enum TokensCmd {
    /// placeholder
    List,
}

pub async fn run(_global: &GlobalArgs, _cmd: TokensCmd) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented")
}
