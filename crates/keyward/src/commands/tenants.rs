use std::process::ExitCode;

use crate::cli::GlobalArgs;

#[derive(clap::Subcommand, Debug)]
pub enum TenantsCmd {
    /// placeholder
    List,
}

pub async fn run(_global: &GlobalArgs, _cmd: TenantsCmd) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented")
}
