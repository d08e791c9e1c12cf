//! `strait check CONFIG [--json]`: validate an MM2 file and show what it means — every flow with
//! its effective settings, where the internal topics live, the clients with secrets redacted, and
//! the warnings. A bad file is one sentence and exit code 2 (a mistake in how strait was called).
//! The JSON field names are a documented contract (README, `### strait check`).

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::CheckArgs;
use crate::commands::UsageError;
use strait::config::{Config, Flow, LocalFiles, NameFilter, Origin, StoreSummary};
use strait::kafka::{Admin, Endpoint};
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
        let mut doc = to_json(&config);
        if let Some(p) = &positions {
            doc["positions"] = positions_json(p);
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
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

fn positions_json(p: &[FlowPositions]) -> Value {
    p.iter()
        .flat_map(|f| {
            f.resume.iter().map(move |r| {
                json!({
                    "flow": f.flow,
                    "topic": r.part.0,
                    "partition": r.part.1,
                    "from": r.from.name(),
                    "offset": r.from.offset(),
                    "mm2_position_past_end": r.mm2_past_end,
                })
            })
        })
        .collect()
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
            });
            let _ = writeln!(o, "    {:>4}  {what}{stale}", r.part.1);
        }
    }
    o
}

fn secs(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_secs()))
}

fn patterns(f: &NameFilter) -> Value {
    json!(f.patterns())
}

/// Properties as shown: secrets redacted, and PEM read out of a store summarised (the
/// certificates are listed under `stores`).
fn shown(ep: &Endpoint) -> std::collections::BTreeMap<String, String> {
    let mut props = ep.redacted();
    for (k, v) in props.iter_mut() {
        if k.ends_with(".pem") && v != "[redacted]" {
            let n = v.matches("-----BEGIN CERTIFICATE-----").count();
            *v = format!("[PEM: {n} certificate{}]", if n == 1 { "" } else { "s" });
        }
    }
    props
}

fn origin_json(o: &Origin) -> Value {
    let from = if o.store.is_some() {
        "store"
    } else if !o.providers.is_empty() {
        "provider"
    } else {
        "file"
    };
    json!({
        "from": from,
        "key": o.at.key,
        "line": o.at.line,
        "providers": o.providers,
        "store": o.store,
    })
}

fn client_json(f: &Flow, role: &str, ep: &Endpoint) -> Value {
    let origins: serde_json::Map<String, Value> = f
        .clients
        .origins
        .get(role)
        .into_iter()
        .flatten()
        .map(|(k, o)| (k.clone(), origin_json(o)))
        .collect();
    json!({ "cluster": ep.alias, "properties": shown(ep), "origins": origins })
}

fn store_json(s: &StoreSummary) -> Value {
    json!({
        "path": s.path,
        "role": s.role,
        "type": s.store_type,
        "key": s.at.key,
        "line": s.at.line,
        "read": s.read,
        "certificates": s.certificates.iter().map(|c| json!({
            "subject": c.subject,
            "issuer": c.issuer,
            "not_after": c.not_after,
            "alias": c.alias,
        })).collect::<Vec<_>>(),
    })
}

fn flow_json(f: &Flow) -> Value {
    let it = &f.internal_topics;
    let iv = &f.intervals;
    let clients: serde_json::Map<String, Value> = f
        .clients
        .roles()
        .iter()
        .map(|(role, ep)| (role.to_string(), client_json(f, role, ep)))
        .collect();
    json!({
        "name": f.name(),
        "source": f.source,
        "target": f.target,
        "enabled": f.enabled,
        "runs": f.runs(),
        "topics": { "include": patterns(&f.topics), "exclude": patterns(&f.topics_exclude) },
        "groups": { "include": patterns(&f.groups), "exclude": patterns(&f.groups_exclude) },
        "policy": {
            "class": f.policy_settings.kind.java_class(),
            "separator": f.policy_settings.separator,
            "internal_topic_separator_enabled": f.policy_settings.internal_topic_separator_enabled,
            "example_remote_topic": f.policy.remote_topic("orders"),
        },
        "replication_factor": f.replication_factor,
        "offset_syncs_topic_location": f.offset_syncs_topic_location.as_str(),
        "internal_topic_replication_factors": {
            "offset_syncs": f.offset_syncs_topic_replication_factor,
            "checkpoints": f.checkpoints_topic_replication_factor,
            "heartbeats": f.heartbeats_topic_replication_factor,
        },
        "offset_lag_max": f.offset_lag_max,
        "intervals_seconds": {
            "refresh_topics": secs(iv.refresh_topics),
            "sync_topic_configs": secs(iv.sync_topic_configs),
            "sync_topic_acls": secs(iv.sync_topic_acls),
            "refresh_groups": secs(iv.refresh_groups),
            "emit_checkpoints": secs(iv.emit_checkpoints),
            "sync_group_offsets": secs(iv.sync_group_offsets),
            "emit_heartbeats": secs(iv.emit_heartbeats),
        },
        "emit_offset_syncs": f.emit_offset_syncs,
        "heartbeats_replication": f.heartbeats_replication,
        "config_properties_exclude": patterns(&f.config_properties_exclude),
        "use_defaults_from": f.use_defaults_from.as_str(),
        "tasks_max": f.tasks_max,
        "offset_flush_interval_ms": u64::try_from(f.offset_flush_interval.as_millis()).unwrap_or(u64::MAX),
        "consumer_poll_timeout_ms": u64::try_from(f.consumer_poll_timeout.as_millis()).unwrap_or(u64::MAX),
        "admin_timeout_ms": u64::try_from(f.admin_timeout.as_millis()).unwrap_or(u64::MAX),
        "internal_topics": {
            "offset_syncs": { "name": it.offset_syncs.name, "cluster": it.offset_syncs.cluster },
            "checkpoints": { "name": it.checkpoints.name, "cluster": it.checkpoints.cluster },
            "heartbeats": { "name": it.heartbeats.name, "cluster": it.heartbeats.cluster },
            "offset_index": { "name": strait::translate::index_topic(&f.source), "cluster": f.target },
            "mm2_source_positions": {
                "name": it.source_offsets.name,
                "cluster": it.source_offsets.cluster,
                "partitions": f.source_offsets_topic_partitions,
                "replication_factor": f.source_offsets_topic_replication_factor,
            },
        },
        "first_run": {
            "group": strait::replicate::replication_group(&f.source, &f.target),
            "rule": "the further of the group's commit and MirrorMaker 2's position",
            "otherwise": reset(f),
        },
        "clients": clients,
    })
}

/// The `--json` document (schema in the README).
pub(super) fn to_json(c: &Config) -> Value {
    json!({
        "config": c.file,
        "valid": true,
        "clusters": c.clusters.iter().map(|cl| json!({
            "alias": cl.alias,
            "bootstrap_servers": cl.bootstrap_servers,
        })).collect::<Vec<_>>(),
        "flows": c.flows.iter().map(flow_json).collect::<Vec<_>>(),
        "stores": c.stores.iter().map(store_json).collect::<Vec<_>>(),
        "warnings": c.warnings.iter().map(|w| json!({
            "message": w.message,
            "keys": w.keys.iter().map(|k| json!({ "key": k.key, "line": k.line })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// Where a partition nobody recorded starts: the source consumer's `auto.offset.reset`.
fn reset(f: &Flow) -> &str {
    f.clients
        .source_consumer
        .props
        .get("auto.offset.reset")
        .map_or("earliest", String::as_str)
}

fn interval(d: Option<Duration>) -> String {
    d.map_or_else(|| "off".to_string(), |d| format!("{}s", d.as_secs()))
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
        let _ = writeln!(
            o,
            "  first run        each partition resumes from the further of group `{}` on {} and MirrorMaker 2's position; \
             partitions neither knows start at {} (auto.offset.reset); `--positions` asks the clusters",
            strait::replicate::replication_group(&f.source, &f.target),
            f.source,
            reset(f)
        );
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
