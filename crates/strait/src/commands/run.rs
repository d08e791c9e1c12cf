//! `strait run CONFIG`: replicate every enabled flow (or those whose target is in `--clusters`)
//! until Ctrl-C or SIGTERM, then stop fetching, flush, commit and exit 0.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tracing::{error, info, warn};

use crate::cli::RunArgs;
use crate::commands::UsageError;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use strait::checkpoint::{self, CheckpointSpec};
use strait::config::Config;
use strait::heartbeat::{self, HeartbeatSpec};
use strait::http::Observed;
use strait::replicate::{self, FlowSpec};

/// How long a graceful stop may take before strait exits anyway (in-flight records are then
/// copied again on the next start: nothing is lost, a few are duplicated).
const STOP_GRACE: Duration = Duration::from_secs(8);

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
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
    let flows: Vec<FlowSpec> = config
        .enabled_flows()
        .filter(|f| args.clusters.is_empty() || args.clusters.contains(&f.target))
        .map(FlowSpec::from_config)
        .collect();
    if flows.is_empty() {
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

    let targets =
        |f: &&strait::config::Flow| args.clusters.is_empty() || args.clusters.contains(&f.target);
    // Heartbeats run for every pair MM2 would run a herder for, enabled or not (MM2-SPEC §6).
    let (hb_stop_tx, hb_stop) = tokio::sync::watch::channel(false);
    let mut observed = Observed::default();
    let heartbeats: Vec<_> = config
        .flows
        .iter()
        .filter(targets)
        .filter_map(HeartbeatSpec::from_config)
        .map(|spec| {
            let sent = Arc::new(AtomicU64::new(0));
            observed.heartbeats.push((
                spec.source_alias.clone(),
                spec.target.alias.clone(),
                sent.clone(),
            ));
            tokio::spawn(heartbeat::run(spec, hb_stop.clone(), sent))
        })
        .collect();
    let checkpoints: Vec<_> = config
        .enabled_flows()
        .filter(targets)
        .filter_map(CheckpointSpec::from_config)
        .map(|spec| {
            let (s, t) = (spec.source_alias.clone(), spec.target_alias.clone());
            let c = checkpoint::start(spec);
            observed.checkpoints.push((s, t, c.stats.clone()));
            c
        })
        .collect();
    let running: Vec<_> = flows
        .into_iter()
        .map(|spec| {
            let (s, t) = (spec.source.alias.clone(), spec.target.alias.clone());
            let f = replicate::start(spec);
            observed.flows.push((s, t, f.stats.clone()));
            f
        })
        .collect();
    let http = listener.map(|l| {
        let opts = strait::monitor::Options {
            timeout: Duration::from_secs(5),
            ..Default::default()
        };
        strait::http::serve(l, config.clone(), observed, opts, hb_stop.clone())
    });
    info!(
        flows = running.len(),
        "strait running; Ctrl-C or SIGTERM stops it"
    );

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let failed = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break None,
            _ = term.recv() => break None,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if let Some(i) = running.iter().position(|f| f.is_finished()) {
                    break Some(i);
                }
            }
        }
    };
    info!("stopping: flushing in-flight records and committing");
    for f in &running {
        f.stop();
    }
    let _ = hb_stop_tx.send(true);
    for c in &checkpoints {
        c.stop();
    }
    // Everything stops at once and shares one deadline, so SIGTERM ends the process within
    // STOP_GRACE even when a cluster is gone and every flush times out.
    let mut first_error = None;
    let flows_done = async {
        for f in running {
            let name = f.name.clone();
            if let Err(e) = f.join().await {
                error!(flow = %name, error = %e, "flow failed");
                first_error.get_or_insert(e);
            }
        }
    };
    let others_done = async {
        for h in heartbeats {
            let _ = h.await;
        }
        let _ = tokio::task::spawn_blocking(move || {
            for c in checkpoints {
                c.join();
            }
        })
        .await;
        if let Some(h) = http {
            let _ = h.await;
        }
    };
    let joined = tokio::time::timeout(STOP_GRACE, async {
        tokio::join!(flows_done, others_done);
    })
    .await;
    if joined.is_err() {
        warn!(
            "not everything stopped within {}s; exiting anyway (unacknowledged records are copied again on the next start)",
            STOP_GRACE.as_secs()
        );
    }
    match (failed, first_error) {
        (_, Some(e)) => Err(e.into()),
        (Some(_), None) => Ok(ExitCode::from(1)),
        (None, None) => Ok(ExitCode::SUCCESS),
    }
}
