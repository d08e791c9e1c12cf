//! `strait translate CONFIG --group G --source A --target B [--json] [--apply]`: where group G,
//! which consumed on A, resumes on B, per partition, how that was worked out, and what a consumer
//! there would read again; `--apply` commits it to the group on B.

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::TranslateArgs;
use crate::commands::UsageError;
use strait::config::Config;
use strait::translate::{GroupTranslation, GroupTranslator, TranslateReport};

/// How long the source may take to answer before its checkpoints are used instead.
const SOURCE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn run(args: TranslateArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config).map_err(|e| UsageError(e.to_string()))?;
    let file = args.config.display().to_string();
    for alias in [&args.source, &args.target] {
        if config.cluster(alias).is_none() {
            let known: Vec<&str> = config.clusters.iter().map(|c| c.alias.as_str()).collect();
            return Err(UsageError(format!(
                "{alias:?} is not a cluster in {file} (clusters are {})",
                known.join(", ")
            ))
            .into());
        }
    }
    let Some(flow) = config.flow(&args.source, &args.target).cloned() else {
        return Err(UsageError(format!(
            "--source and --target must differ (both are {:?})",
            args.source
        ))
        .into());
    };
    if !flow.enabled {
        tracing::warn!(
            "{} is not enabled in {file}: translation uses whatever an earlier run replicated",
            flow.name()
        );
    }
    let group = args.group.clone();
    let timeout = flow.admin_timeout.min(Duration::from_secs(30));
    let pb = super::spinner(&format!(
        "translating group {} from {} to {}",
        args.group, args.source, args.target
    ));
    // Kept for `--apply`, which commits with the client that read the group on the target.
    let mut translator = GroupTranslator::new(&flow, timeout, SOURCE_TIMEOUT);
    let t = translator.translate(&group).await;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let t = t?;
    if t.partitions.is_empty() {
        anyhow::bail!(
            "group {} has no committed offsets on {} for the topics {} replicates{}",
            t.group,
            t.source,
            flow.name(),
            if t.source_reachable {
                String::new()
            } else {
                format!(
                    ", and no checkpoints on {} ({} is unreachable: {})",
                    t.target,
                    t.source,
                    t.source_error.clone().unwrap_or_default()
                )
            }
        );
    }

    let mut applied = false;
    if args.apply {
        if t.active_on_target() {
            anyhow::bail!(
                "group {} is active on {} ({} members, state {}): stop its consumers there, then run --apply again",
                t.group,
                t.target,
                t.target_members,
                t.target_state.clone().unwrap_or_default()
            );
        }
        translator.apply(&t).await?;
        applied = true;
    }

    let untranslated = t.partitions.iter().any(|p| p.downstream_offset.is_none());
    if args.json {
        let report = TranslateReport {
            translation: t,
            applied,
        };
        println!("{}", report.to_json()?);
    } else {
        print!("{}", to_text(&t, applied));
    }
    Ok(if untranslated {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn to_text(t: &GroupTranslation, applied: bool) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "group {}: {} -> {}{}",
        t.group,
        t.source,
        t.target,
        if t.source_reachable {
            String::new()
        } else {
            format!(
                " ({} unreachable, from the last checkpoints: {})",
                t.source,
                t.source_error.clone().unwrap_or_default()
            )
        }
    );
    let _ = writeln!(
        o,
        "on {}: {} ({} members)\n",
        t.target,
        t.target_state.as_deref().unwrap_or("no such group"),
        t.target_members
    );
    let rows: Vec<Vec<String>> = t
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.topic.clone(),
                p.partition.to_string(),
                opt(p.upstream_offset),
                p.remote_topic.clone(),
                opt(p.downstream_offset),
                p.method.clone(),
                opt(p.reread),
                opt(p.target_committed),
                opt(p.mm2_offset),
            ]
        })
        .collect();
    o += &super::table(
        &[
            "TOPIC",
            "PARTITION",
            "SOURCE OFFSET",
            "TARGET TOPIC",
            "TARGET OFFSET",
            "METHOD",
            "RE-READ",
            "COMMITTED ON TARGET",
            "MM2 WOULD SAY",
        ],
        &rows,
    );
    for p in t.partitions.iter().filter(|p| p.detail.is_some()) {
        let _ = writeln!(
            o,
            "  {}-{}: {}",
            p.topic,
            p.partition,
            p.detail.as_deref().unwrap_or_default()
        );
    }
    let _ = writeln!(
        o,
        "\n{}",
        if applied {
            format!("committed to group {} on {}", t.group, t.target)
        } else {
            format!(
                "not applied; add --apply to commit these offsets to group {} on {}",
                t.group, t.target
            )
        }
    );
    o
}
