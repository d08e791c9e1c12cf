//! `strait failback CONFIG --from B --to A [--salvage] [--groups REGEX] [--max-wait DUR] [--json]`:
//! return consumers to A once it is back. Exit codes as `strait failover`.

use std::process::ExitCode;

use crate::cli::FailbackArgs;
use crate::commands::failover::{finish, options};
use crate::commands::UsageError;
use strait::config::Config;
use strait::failover::{self, FailbackOptions};

pub(super) async fn run(args: FailbackArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config).map_err(|e| UsageError(e.to_string()))?;
    let base = options(
        &args.from,
        &args.to,
        args.groups.as_deref(),
        args.max_wait.as_deref(),
    )?;
    for alias in [&args.from, &args.to] {
        if config.cluster(alias).is_none() {
            let known: Vec<&str> = config.clusters.iter().map(|c| c.alias.as_str()).collect();
            return Err(UsageError(format!(
                "{alias:?} is not a cluster in {} (clusters are {})",
                args.config.display(),
                known.join(", ")
            ))
            .into());
        }
    }
    let opts = FailbackOptions {
        base,
        salvage: args.salvage,
    };
    let report = failover::failback(&config, &opts, &|line| eprintln!("strait: {line}")).await;
    finish(report, args.json)
}
