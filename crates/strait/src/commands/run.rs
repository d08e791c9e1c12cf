//! `strait run CONFIG`: replicate every enabled flow (or those whose target is in `--clusters`)
//! until Ctrl-C or SIGTERM, then stop fetching, flush, commit and exit 0.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tracing::{info, warn};

use crate::cli::RunArgs;
use crate::commands::UsageError;
use strait::config::Config;
use strait::service::{Service, STOP_GRACE};

pub(super) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config).map_err(|e| UsageError(e.to_string()))?;
    let file = args.config.display().to_string();
    for c in &args.clusters {
        if config.cluster(c).is_none() {
            let known: Vec<&str> = config.clusters.iter().map(|c| c.alias.as_str()).collect();
            return Err(UsageError(format!(
                "--clusters names {c:?}, which is not a cluster in {file} (clusters are {})",
                known.join(", ")
            ))
            .into());
        }
    }
    if !config
        .enabled_flows()
        .any(|f| args.clusters.is_empty() || args.clusters.contains(&f.target))
    {
        return Err(UsageError(if args.clusters.is_empty() {
            format!("{file} enables no replication flow; add a line such as `A->B.enabled = true`")
        } else {
            format!(
                "{file} enables no replication flow into {}",
                args.clusters.join(", ")
            )
        })
        .into());
    }
    for w in &config.warnings {
        warn!("{}", w.message);
    }
    let listener = match &args.http {
        Some(addr) => Some(strait::http::bind(addr).await.map_err(UsageError)?),
        None => None,
    };

    let service = Service::start(&config, &args.clusters, listener);
    info!(
        flows = service.flows().count(),
        "strait running; Ctrl-C or SIGTERM stops it"
    );

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let failed = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break false,
            _ = term.recv() => break false,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if service.failed_flow().is_some() {
                    break true;
                }
            }
        }
    };
    info!("stopping: flushing in-flight records and committing");
    // Everything stops at once and shares one deadline, so SIGTERM ends the process within
    // STOP_GRACE even when a cluster is gone and every flush times out.
    match (failed, service.shutdown(STOP_GRACE).await) {
        (_, Err(e)) => Err(e.into()),
        (true, Ok(())) => Ok(ExitCode::from(1)),
        (false, Ok(())) => Ok(ExitCode::SUCCESS),
    }
}
