//! `strait clients CONFIG --group G`: where a consumer group should connect now.

use std::process::ExitCode;

use crate::cli::ClientsArgs;

pub async fn run(_args: ClientsArgs) -> anyhow::Result<ExitCode> {
    super::not_yet("clients")
}
