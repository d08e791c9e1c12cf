//! `strait check CONFIG [--json]`: validate an MM2 file and show what it means — every flow with
//! its effective settings, where the internal topics live, the clients with secrets redacted, and
//! the warnings. A bad file is one sentence and exit code 2 (a mistake in how strait was called).
//! The JSON document is [`strait::config::report::CheckReport`], whose field names are a
//! documented contract (README, `### strait check`).

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::CheckArgs;
use crate::commands::UsageError;
use strait::config::conflicts::{Strategy, Violations};
use strait::config::report::{reset, shown, CheckReport, Position};
use strait::config::{Config, LocalFiles};
use strait::kafka::Admin;
use strait::replicate::resume::{Resume, ResumeFrom, SeedSpec};

pub(super) async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    // A store or secret file that is only on the machines where strait runs is a warning here.
    let config = Config::load_with(&args.config, LocalFiles::MayBeMissing)
        .map_err(|e| UsageError(e.to_string()))?;
    let positions = match args.positions {
        true => Some(positions(&config).await?),
        false => None,
    };
    if args.json {
        let mut doc = CheckReport::new(&config);
        doc.positions = positions.as_ref().map(|p| {
            p.iter()
                .flat_map(|f| f.resume.iter().map(|r| Position::new(&f.flow, r)))
                .collect()
        });
        println!("{}", doc.to_json()?);
    } else {
        print!("{}", to_text(&config));
        if let Some(p) = &positions {
            print!("{}", positions_text(p));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a first `strait run` would resume the partitions of one flow.
struct FlowPositions {
    flow: String,
    resume: Vec<Resume>,
}

/// Ask the clusters, flow by flow, as `strait run` does at start (nothing is changed).
async fn positions(c: &Config) -> anyhow::Result<Vec<FlowPositions>> {
    let mut out = Vec::new();
    for f in c.flows.iter().filter(|f| f.enabled) {
        let timeout = f.admin_timeout.min(Duration::from_secs(30));
        let admin = Admin::new(&f.clients.source_admin, timeout)?;
        let topics: Vec<_> = admin
            .topics(None)
            .await?
            .into_iter()
            .filter(|t| f.should_replicate_topic(&t.name))
            .collect();
        let (flow, group) = (
            f.name(),
            strait::replicate::replication_group(&f.source, &f.target),
        );
        let spec = SeedSpec {
            flow: &flow,
            group: &group,
            source: &f.clients.source_consumer,
            source_admin: &admin,
            target: &f.clients.target_consumer,
            offsets_topic: &f.internal_topics.source_offsets.name,
            source_alias: f.policy.source_alias(),
            timeout,
        };
        let (resume, _) = strait::replicate::resume::decide(&spec, &topics).await?;
        out.push(FlowPositions { flow, resume });
    }
    Ok(out)
}

fn positions_text(p: &[FlowPositions]) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    for f in p {
        let _ = writeln!(o, "\nfirst run of {}: where each partition resumes", f.flow);
        if f.resume.is_empty() {
            let _ = writeln!(o, "  (no topic on the source matches the flow's filter)");
        }
        let mut topic = "";
        for r in &f.resume {
            if r.part.0 != topic {
                topic = &r.part.0;
                let _ = writeln!(o, "  {topic}");
            }
            let what = match r.from {
                ResumeFrom::Group(o) => format!("offset {o}, strait's group"),
                ResumeFrom::Mm2(o) => format!("offset {o}, MirrorMaker 2's position"),
                ResumeFrom::Reset => "auto.offset.reset (nothing recorded)".to_string(),
            };
            let stale = r.mm2_past_end.map_or(String::new(), |m| {
                format!("; MM2's position {m} is past the partition's end, not used")
            }) + r
                .of_earlier_topic
                .map_or(String::new(), |o| {
                    format!("; position {o} was taken on an earlier topic of this name, not used")
                })
                .as_str();
            let _ = writeln!(o, "    {:>4}  {what}{stale}", r.part.1);
        }
    }
    o
}

fn interval(d: Option<Duration>) -> String {
    d.map_or_else(|| "off".to_string(), |d| format!("{}s", d.as_secs()))
}

fn conflict_strategy_text(s: &Strategy) -> String {
    match s {
        Strategy::Authority { owners, violations } => {
            let owners: Vec<String> = owners
                .iter()
                .map(|(r, p)| format!("{r} owns {p}"))
                .collect();
            let v = match violations {
                Violations::Report => "violations reported",
                Violations::Quarantine => "violations quarantined",
            };
            format!("regional authority ({}; {v})", owners.join(", "))
        }
        Strategy::LastWriterWins => "last writer wins".to_string(),
        Strategy::Events {
            id_header,
            lateness,
        } => format!(
            "one event order in `<topic>{}` in each region (ids from header {}, lateness {} ms)",
            strait::config::conflicts::MERGED_SUFFIX,
            id_header.as_deref().unwrap_or("(none: no repeats dropped)"),
            lateness.as_millis()
        ),
    }
}

/// The human-readable report.
pub(super) fn to_text(c: &Config) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "{}: valid", c.file);
    let _ = writeln!(o, "\nclusters:");
    let width = c
        .clusters
        .iter()
        .map(|cl| cl.alias.len())
        .max()
        .unwrap_or(0);
    for cl in &c.clusters {
        let _ = writeln!(o, "  {:width$}  {}", cl.alias, cl.bootstrap_servers);
    }
    for f in &c.flows {
        let _ = writeln!(o);
        if !f.enabled {
            let what = match f.intervals.emit_heartbeats {
                Some(d) => format!(
                    "disabled (only heartbeats: every {}s to `{}` on {})",
                    d.as_secs(),
                    f.internal_topics.heartbeats.name,
                    f.target
                ),
                None => "disabled (not run)".to_string(),
            };
            let _ = writeln!(o, "flow {}: {what}", f.name());
            continue;
        }
        let it = &f.internal_topics;
        let iv = &f.intervals;
        let _ = writeln!(o, "flow {}: enabled", f.name());
        let _ = writeln!(o, "  topics           {}", f.topics);
        let _ = writeln!(o, "  topics.exclude   {}", f.topics_exclude);
        let _ = writeln!(o, "  groups           {}", f.groups);
        let _ = writeln!(o, "  groups.exclude   {}", f.groups_exclude);
        let _ = writeln!(
            o,
            "  policy           {} (separator \"{}\"): `orders` becomes `{}` on {}",
            f.policy_settings
                .kind
                .java_class()
                .rsplit('.')
                .next()
                .unwrap_or(""),
            f.policy_settings.separator,
            f.policy.remote_topic("orders"),
            f.target
        );
        let _ = writeln!(
            o,
            "  replication      factor {}, offset.lag.max {}, tasks.max {}, heartbeats replicated: {}",
            f.replication_factor,
            f.offset_lag_max,
            f.tasks_max,
            if f.heartbeats_replication { "yes" } else { "no" }
        );
        let _ = match &f.exactly_once {
            Some(e) => writeln!(
                o,
                "  delivery         exactly once ({}): a transaction on {} every {}ms, the positions in group `{}` there; \
                 read the remote topics with isolation.level=read_committed",
                e.because,
                f.target,
                e.transaction_interval.as_millis(),
                strait::replicate::replication_group(&f.source, &f.target),
            ),
            None => writeln!(
                o,
                "  delivery         at least once (a crash or a rebalance copies some records again)"
            ),
        };
        let _ = match strait::replicate::records_because_in(c, f) {
            None => writeln!(
                o,
                "  data path        record batches copied as they are, compression included (passthrough)"
            ),
            Some(why) => writeln!(o, "  data path        record by record, because {why}"),
        };
        let _ = writeln!(
            o,
            "  intervals        refresh.topics {}, sync.topic.configs {}, sync.topic.acls {}, refresh.groups {}, \
             emit.checkpoints {}, sync.group.offsets {}, emit.heartbeats {}, offset.flush {}ms",
            interval(iv.refresh_topics),
            interval(iv.sync_topic_configs),
            interval(iv.sync_topic_acls),
            interval(iv.refresh_groups),
            interval(iv.emit_checkpoints),
            interval(iv.sync_group_offsets),
            interval(iv.emit_heartbeats),
            f.offset_flush_interval.as_millis()
        );
        let _ = writeln!(o, "  internal topics");
        let syncs = if f.emit_offset_syncs {
            ""
        } else {
            " (not written: emit.offset-syncs.enabled = false)"
        };
        let _ = writeln!(
            o,
            "    offset syncs   {} on {} (RF {}){syncs}",
            it.offset_syncs.name, it.offset_syncs.cluster, f.offset_syncs_topic_replication_factor
        );
        let _ = writeln!(
            o,
            "    checkpoints    {} on {} (RF {})",
            it.checkpoints.name, it.checkpoints.cluster, f.checkpoints_topic_replication_factor
        );
        let _ = writeln!(
            o,
            "    heartbeats     {} on {} (RF {})",
            it.heartbeats.name, it.heartbeats.cluster, f.heartbeats_topic_replication_factor
        );
        let _ = writeln!(
            o,
            "    offset index   {} on {} (RF {}; strait's exact translation)",
            strait::translate::index_topic(&f.source),
            f.target,
            f.offset_syncs_topic_replication_factor
        );
        let _ = writeln!(
            o,
            "    MM2 positions  {} on {} ({} partitions, RF {}; read at start, kept equal to strait's commits)",
            it.source_offsets.name,
            it.source_offsets.cluster,
            f.source_offsets_topic_partitions,
            f.source_offsets_topic_replication_factor
        );
        let _ = if f.exactly_once.is_some() {
            writeln!(
                o,
                "  first run        each partition resumes from group `{}` on {} (the positions of committed transactions), \
                 else from the same group on {}; partitions neither knows start at {} (auto.offset.reset)",
                strait::replicate::replication_group(&f.source, &f.target),
                f.target,
                f.source,
                reset(f)
            )
        } else {
            writeln!(
                o,
                "  first run        each partition resumes from the further of group `{}` on {} and MirrorMaker 2's position; \
                 partitions neither knows start at {} (auto.offset.reset); `--positions` asks the clusters",
                strait::replicate::replication_group(&f.source, &f.target),
                f.source,
                reset(f)
            )
        };
        let _ = writeln!(o, "  clients");
        for (role, ep) in f.clients.roles() {
            let props: Vec<String> = shown(ep).iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(o, "    {role:<22} {}: {}", ep.alias, props.join(" "));
        }
    }
    if !c.stores.is_empty() {
        let _ = writeln!(o, "\nstores:");
        for s in &c.stores {
            let state = if s.read { "" } else { " (not on this machine)" };
            let _ = writeln!(
                o,
                "  {} {} ({}, from {}){state}",
                s.role, s.path, s.store_type, s.at
            );
            for cert in &s.certificates {
                let _ = writeln!(
                    o,
                    "    {}  issued by {}  expires {}",
                    cert.subject, cert.issuer, cert.not_after
                );
            }
        }
    }
    let w = &c.region_watch;
    let _ = writeln!(
        o,
        "\nregions: probed every {} ms ({} ms timeout), down after {} ms of failed probes",
        w.probe_every.as_millis(),
        w.probe_timeout.as_millis(),
        w.down_after.as_millis()
    );
    if !c.conflicts.rules.is_empty() {
        let _ = writeln!(
            o,
            "\nconflict rules (regions in tie-break order: {}; clocks within {} ms; writes appended at most {} ms after their timestamp):",
            c.conflicts.regions.join(", "),
            c.conflicts.clock_tolerance.as_millis(),
            c.conflicts.write_delay_max.as_millis()
        );
        for r in &c.conflicts.rules {
            let _ = writeln!(
                o,
                "  {}: topics {}, {}",
                r.name,
                r.topics,
                conflict_strategy_text(&r.strategy)
            );
            if let Strategy::Authority { .. } = &r.strategy {
                let _ = writeln!(
                    o,
                    "    a key no pattern matches is free: any region may write it; a violation is recorded in strait.conflicts of the region it is copied into"
                );
            }
            for q in strait::config::report::quarantine_topics(c, r) {
                let _ = writeln!(o, "    {}: quarantine {} on {}", q.flow, q.topic, q.target);
            }
        }
    }
    if c.warnings.is_empty() {
        let _ = writeln!(o, "\nno warnings");
    } else {
        let _ = writeln!(o, "\nwarnings:");
        for w in &c.warnings {
            let _ = writeln!(o, "  - {w}");
        }
    }
    o
}
