//! `strait status CONFIG [--json] [--watch]`: how far each flow is behind, whether it is alive,
//! and where each consumer group would resume, read from the clusters (no `strait run` needed).
//! Exit code: 0 all OK, 1 some flow LAGGING, 2 some flow BROKEN.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cli::StatusArgs;
use crate::commands::UsageError;
use strait::config::Config;
use strait::monitor::{self, Options, Status};
use strait::reach::{ClusterReach, Logging, Reach, Watched};

pub(super) async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config).map_err(|e| UsageError(e.to_string()))?;
    let bad = |what: &str, v: f64| {
        UsageError(format!(
            "--{what} must be a positive number of seconds, not {v}"
        ))
    };
    if !(args.lag_threshold.is_finite() && args.lag_threshold >= 0.0) {
        return Err(bad("lag-threshold", args.lag_threshold).into());
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(bad("timeout", args.timeout).into());
    }
    if config.enabled_flows().next().is_none() {
        return Err(UsageError(format!(
            "{} enables no replication flow; nothing to report",
            args.config.display()
        ))
        .into());
    }
    let opts = Options {
        lag_threshold: Duration::from_secs_f64(args.lag_threshold),
        timeout: Duration::from_secs_f64(args.timeout),
        groups: !args.no_groups,
        ..Options::default()
    };
    // The clusters are probed as `strait run` probes them, for as long as the command runs.
    let probing = tokio_util::sync::CancellationToken::new();
    let _stop_probes = probing.clone().drop_guard();
    let watches: Vec<Watched> = strait::reach::touched(config.enabled_flows())
        .into_iter()
        .map(|ep| {
            strait::reach::watch(
                ep,
                config.region_watch,
                Logging::Quiet,
                probing.child_token(),
            )
            .0
        })
        .collect();
    let started = Instant::now();
    loop {
        let mut status = collect(&config, &opts).await?;
        status.clusters = verdicts(&watches, started + config.region_watch.verdict_within()).await;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&status)?);
        } else {
            if args.watch {
                print!("\x1b[2J\x1b[H");
            }
            print!("{}", to_text(&status));
            let _ = std::io::stdout().flush();
        }
        if !args.watch {
            return Ok(ExitCode::from(status.verdict.exit_code()));
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::from(status.verdict.exit_code())),
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

async fn collect(config: &Config, opts: &Options) -> anyhow::Result<Status> {
    let (config, opts) = (config.clone(), opts.clone());
    let pb = super::spinner("reading lag, heartbeats and groups from the clusters");
    let status = monitor::collect(&config, &opts).await;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(status)
}

/// Each cluster's state once the probes have decided (up at the first answer; down after
/// `strait.region.down.after.ms` of failures), or as it is at `by`.
async fn verdicts(watches: &[Watched], by: Instant) -> Vec<ClusterReach> {
    loop {
        let now: Vec<ClusterReach> = watches
            .iter()
            .map(|w| w.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect();
        let decided = now.iter().all(|c| match c.reach {
            Reach::Up => c.failed_probes == 0,
            Reach::Down => true,
            Reach::Unknown => false,
        });
        if decided || Instant::now() >= by {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn age(s: Option<f64>) -> String {
    s.map_or_else(|| "-".to_string(), |s| format!("{s:.1}s"))
}

/// The human-readable report: a table of flows, their reasons, and a table of groups.
pub(super) fn to_text(s: &Status) -> String {
    let mut o = String::new();
    let rows: Vec<Vec<String>> = s
        .flows
        .iter()
        .map(|f| {
            vec![
                strait::config::flow_name(&f.source, &f.target),
                f.verdict.as_str().to_string(),
                f.topics.to_string(),
                f.partitions.to_string(),
                if f.lag_known {
                    f.lag_records.to_string()
                } else {
                    "?".to_string()
                },
                if f.lag_known {
                    format!("{:.1}", f.lag_seconds)
                } else {
                    "?".to_string()
                },
                age(f.heartbeat_age_seconds),
                age(f.checkpoint_age_seconds),
                f.delivery.as_str().to_string(),
            ]
        })
        .collect();
    o += &super::table(
        &[
            "FLOW",
            "VERDICT",
            "TOPICS",
            "PARTITIONS",
            "LAG RECORDS",
            "LAG SECONDS",
            "HEARTBEAT AGE",
            "CHECKPOINT AGE",
            "DELIVERY",
        ],
        &rows,
    );
    for f in &s.flows {
        for r in &f.reasons {
            o += &format!("  {}->{}: {r}\n", f.source, f.target);
        }
    }
    if !s.groups.is_empty() {
        o += "\n";
        let rows: Vec<Vec<String>> = s
            .groups
            .iter()
            .map(|g| {
                let translated = g
                    .partitions
                    .iter()
                    .filter(|p| p.translated.is_some())
                    .count();
                vec![
                    g.group.clone(),
                    strait::config::flow_name(&g.source, &g.target),
                    g.partitions.len().to_string(),
                    g.source_lag.to_string(),
                    format!("{translated}/{}", g.partitions.len()),
                    g.target_lag
                        .map_or_else(|| "-".to_string(), |l| l.to_string()),
                ]
            })
            .collect();
        o += &super::table(
            &[
                "GROUP",
                "FLOW",
                "PARTITIONS",
                "LAG ON SOURCE",
                "TRANSLATED",
                "LAG ON TARGET",
            ],
            &rows,
        );
    }
    if !s.clusters.is_empty() {
        o += "\n";
        let rows: Vec<Vec<String>> = s
            .clusters
            .iter()
            .map(|c| {
                let since = (s.generated_at_ms - c.since_ms).max(0) as f64 / 1000.0;
                vec![
                    c.cluster.clone(),
                    c.address.clone(),
                    reach_word(c.reach).to_string(),
                    format!("{since:.1}s"),
                    c.failed_probes.to_string(),
                    c.error.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        o += &super::table(
            &[
                "CLUSTER",
                "ADDRESS",
                "REACH",
                "FOR",
                "FAILED PROBES",
                "LAST ERROR",
            ],
            &rows,
        );
    }
    for a in &s.active_regions {
        o += &format!(
            "\nactive region of {} <-> {}: {} (version {}, {}, {:.0} s ago)",
            a.pair[0],
            a.pair[1],
            a.active,
            a.version,
            a.reason,
            (s.generated_at_ms - a.changed_at_ms).max(0) as f64 / 1000.0
        );
    }
    if !s.active_regions.is_empty() {
        o += "\n";
    }
    for k in &s.clock_skews {
        o += &format!("\nclock skew {} / {}: {}", k.a, k.b, k.describe());
    }
    if !s.clock_skews.is_empty() {
        o += "\n";
    }
    o += &format!(
        "\noverall: {} (LAGGING above {:.0}s of lag)\n",
        s.verdict.as_str(),
        s.lag_threshold_seconds
    );
    o
}

fn reach_word(r: Reach) -> &'static str {
    match r {
        Reach::Up => "UP",
        Reach::Down => "DOWN",
        Reach::Unknown => "UNKNOWN",
    }
}
