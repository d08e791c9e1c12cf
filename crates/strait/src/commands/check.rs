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
use strait::kafka::Endpoint;

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    // A store or secret file that is only on the machines where strait runs is a warning here.
    let config = Config::load_with(&args.config, LocalFiles::MayBeMissing)
        .map_err(|e| UsageError(e.to_string()))?;
    if args.json {
        let text = serde_json::to_string_pretty(&to_json(&config))?;
        println!("{text}");
    } else {
        print!("{}", to_text(&config));
    }
    Ok(ExitCode::SUCCESS)
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
        },
        "clients": clients,
    })
}

/// The `--json` document (schema in the README).
pub fn to_json(c: &Config) -> Value {
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

fn interval(d: Option<Duration>) -> String {
    d.map_or_else(|| "off".to_string(), |d| format!("{}s", d.as_secs()))
}

/// The human-readable report.
pub fn to_text(c: &Config) -> String {
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
