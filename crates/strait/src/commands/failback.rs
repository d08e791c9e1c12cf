//! `strait failback CONFIG --from B --to A [--salvage] [--groups REGEX] [--max-wait DUR] [--json]`:
//! return consumers to A once it is back. Exit codes as `strait failover`.

use std::process::ExitCode;

use crate::cli::FailbackArgs;
use crate::commands::failover::parse_duration;
use crate::commands::UsageError;
use strait::config::Config;
use strait::failover::{self, FailbackOptions, FailoverError, Options};

pub async fn run(args: FailbackArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config).map_err(|e| UsageError(e.to_string()))?;
    let mut base = Options::new(&args.from, &args.to);
    if let Some(w) = &args.max_wait {
        base.max_wait = parse_duration("--max-wait", w)?;
    }
    if let Some(g) = &args.groups {
        base.groups = Some(fancy_regex::Regex::new(g).map_err(|e| {
            UsageError(format!(
                "--groups {g:?} is not a valid regular expression: {e}"
            ))
        })?);
    }
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
    let rt = tokio::runtime::Handle::current();
    let report = tokio::task::spawn_blocking(move || {
        failover::failback(&config, &opts, &rt, &|line| eprintln!("strait: {line}"))
    })
    .await?;
    let report = match report {
        Ok(r) => r,
        Err(FailoverError::Usage(m)) => return Err(UsageError(m).into()),
        Err(e) => return Err(e.into()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
