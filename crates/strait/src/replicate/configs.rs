//! Topic config sync (MM2-SPEC §5): which source configs a remote topic is created with, and the
//! IncrementalAlterConfigs SET/DELETE operations that keep it in line with its source afterwards.
//! The decisions are pure functions; `sync_topic_configs` applies them to a target cluster.

use std::collections::{BTreeMap, BTreeSet};

use tracing::{debug, warn};

use crate::config::Side;
use crate::kafka::{Admin, AlterOp, ClientError, ConfigEntryInfo, ConfigSource, TopicInfo};
use crate::policy::ReplicationPolicy;

/// MM2's base filter: never copy read-only, sensitive or `STATIC_BROKER_CONFIG` entries (they
/// describe the source broker, not the topic), nor what `config.properties.exclude` matches.
fn replicable(e: &ConfigEntryInfo, exclude: &dyn Fn(&str) -> bool) -> bool {
    !e.read_only && !e.sensitive && e.source != ConfigSource::StaticBroker && !exclude(&e.name)
}

/// Only Kafka's built-in default counts as "default": dynamic broker and cluster defaults are
/// copied as explicit topic overrides, as MM2 does.
fn is_default(e: &ConfigEntryInfo) -> bool {
    e.source == ConfigSource::Default
}

/// The configs to create a remote topic with, from its source topic's described entries: the
/// non-default replicable entries, plus the default ones when `use.defaults.from=source`.
/// Entries the broker gave no value for cannot be set and are skipped.
pub(crate) fn configs_for_new_topic(
    entries: &[ConfigEntryInfo],
    exclude: &dyn Fn(&str) -> bool,
    use_defaults_from: Side,
) -> BTreeMap<String, String> {
    entries
        .iter()
        .filter(|e| replicable(e, exclude))
        .filter(|e| !is_default(e) || use_defaults_from == Side::Source)
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect()
}

/// The operations that make a remote topic's configs match its source's (MM2's incremental
/// config sync): every replicable entry, defaults included. A default entry with
/// `use.defaults.from=target` becomes a DELETE, reverting the remote to the target's own default;
/// anything else becomes a SET to the source value. Sent every cycle, so manual edits on the
/// target are reverted, except for excluded properties, which are left alone.
pub(crate) fn config_sync_ops(
    entries: &[ConfigEntryInfo],
    exclude: &dyn Fn(&str) -> bool,
    use_defaults_from: Side,
) -> Vec<AlterOp> {
    entries
        .iter()
        .filter(|e| replicable(e, exclude))
        .filter_map(|e| {
            if is_default(e) && use_defaults_from == Side::Target {
                Some(AlterOp::delete(&e.name))
            } else {
                // Without a value there is nothing to SET (the broker withheld it).
                e.value.as_ref().map(|v| AlterOp::set(&e.name, v))
            }
        })
        .collect()
}

/// Configs every Kafka broker lists when describing a topic, whether set on it or not.
const ALWAYS_DESCRIBED: [&str; 3] = ["cleanup.policy", "retention.ms", "segment.bytes"];

/// Read a broker's answer that lists only a topic's overrides as overrides.
///
/// A Kafka broker describes every topic config, labelling the ones nobody set `DEFAULT_CONFIG`.
/// Tansu 0.6 (the sandbox broker) lists only the configs a topic was created or altered with,
/// and labels each of them `DEFAULT_CONFIG`; taken at face value, MM2's filter would copy none of
/// them and config sync would DELETE them all on the target. An answer lacking a config that
/// Kafka always lists can only be such a list of overrides, so its entries are relabelled
/// `DYNAMIC_TOPIC_CONFIG`. Complete answers are returned unchanged.
pub fn overrides_if_partial(mut entries: Vec<ConfigEntryInfo>) -> Vec<ConfigEntryInfo> {
    let names: BTreeSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let complete = ALWAYS_DESCRIBED.iter().all(|k| names.contains(k));
    if !complete {
        for e in &mut entries {
            if e.source == ConfigSource::Default {
                e.source = ConfigSource::DynamicTopic;
            }
        }
    }
    entries
}

/// A source topic's config entries, ready for [`configs_for_new_topic`] and [`config_sync_ops`].
pub(crate) async fn source_config_entries(
    source: &Admin,
    topic: &str,
) -> Result<Vec<ConfigEntryInfo>, ClientError> {
    Ok(overrides_if_partial(
        source.topic_config_entries(topic).await?,
    ))
}

/// What one config sync pass did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Remote topics whose configs were applied.
    pub synced: Vec<String>,
    /// SET and DELETE operations applied, over all synced topics.
    pub ops: usize,
    /// Replicated topics with no remote topic on the target yet (skipped, as MM2 does).
    pub no_remote: Vec<String>,
    /// Remote topics that could not be synced, with why; the others were synced regardless.
    pub failed: Vec<(String, ClientError)>,
}

/// Whether the target cannot do IncrementalAlterConfigs at all (MM2 4.0 fails the connector on
/// this rather than retry it every interval).
pub(crate) fn is_unsupported(e: &ClientError) -> bool {
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode as C;
    let ClientError::Kafka { source, .. } = e else {
        return false;
    };
    // Admin errors carry their code in `AdminOp`, which `rdkafka_error_code` does not report.
    let code = match source.as_ref() {
        KafkaError::AdminOp(c) => Some(*c),
        other => other.rdkafka_error_code(),
    };
    matches!(code, Some(C::UnsupportedVersion | C::UnsupportedFeature))
}

/// One config sync pass for a flow `source_alias -> target` (MM2-SPEC §5): for each replicated
/// source topic whose remote exists on the target, describe the source topic and apply
/// `config_sync_ops` to the remote. A topic that fails is logged and reported, and the pass
/// goes on with the next one.
///
/// Errors only when the pass cannot run: the target's topic list cannot be read, or the target
/// does not support IncrementalAlterConfigs (`is_unsupported`; the remaining topics are not
/// tried, since they would fail the same way).
#[allow(clippy::too_many_arguments)]
pub async fn sync_topic_configs(
    source: &Admin,
    target: &Admin,
    policy: &ReplicationPolicy,
    source_alias: &str,
    replicated: &[TopicInfo],
    exclude: &(dyn Fn(&str) -> bool + Sync),
    use_defaults_from: Side,
) -> Result<SyncReport, ClientError> {
    let existing: BTreeSet<String> = target
        .topics(None)
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    let (src, dst) = (&source.endpoint().alias, &target.endpoint().alias);
    let mut report = SyncReport::default();
    for t in replicated {
        let remote = policy.format_remote_topic(source_alias, &t.name);
        if !existing.contains(&remote) {
            report.no_remote.push(remote);
            continue;
        }
        let entries = match source_config_entries(source, &t.name).await {
            Ok(e) => e,
            Err(e) => {
                warn!(source = %src, topic = %t.name, error = %e, "cannot read source topic configs; its remote topic's configs are synced at the next pass");
                report.failed.push((remote, e));
                continue;
            }
        };
        let ops = config_sync_ops(&entries, exclude, use_defaults_from);
        match target.alter_topic_configs(&remote, &ops).await {
            Ok(()) => {
                debug!(target = %dst, topic = %remote, ops = ops.len(), "synced remote topic configs");
                report.ops += ops.len();
                report.synced.push(remote);
            }
            Err(e) if is_unsupported(&e) => {
                warn!(target = %dst, error = %e, "target cannot alter topic configs incrementally (IncrementalAlterConfigs); config sync stopped");
                return Err(e);
            }
            Err(e) => {
                warn!(target = %dst, topic = %remote, error = %e, "cannot sync remote topic configs; retried at the next pass");
                report.failed.push((remote, e));
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(name: &str, value: &str, source: ConfigSource) -> ConfigEntryInfo {
        ConfigEntryInfo {
            source,
            ..ConfigEntryInfo::topic(name, value)
        }
    }

    /// A describe answer shaped like a Kafka broker's: every topic config, some overridden.
    fn kafka_answer() -> Vec<ConfigEntryInfo> {
        use ConfigSource::*;
        vec![
            entry("cleanup.policy", "delete", Default),
            entry("retention.ms", "123456", DynamicTopic),
            entry("segment.bytes", "1073741824", StaticBroker),
            entry("min.insync.replicas", "2", DynamicTopic),
            entry("max.message.bytes", "2000000", DynamicDefaultBroker),
            entry("compression.type", "zstd", DynamicBroker),
            entry("message.format.version", "3.0-IV1", Unknown),
            ConfigEntryInfo {
                read_only: true,
                ..entry("remote.storage.enable", "false", DynamicTopic)
            },
            ConfigEntryInfo {
                sensitive: true,
                value: None,
                ..entry("secret.thing", "", DynamicTopic)
            },
            ConfigEntryInfo {
                value: None,
                ..entry("no.value", "", Default)
            },
        ]
    }

    fn mir(k: &str) -> bool {
        k == "min.insync.replicas"
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn new_topics_get_overrides_and_broker_defaults_but_not_kafka_defaults() {
        let got = configs_for_new_topic(&kafka_answer(), &mir, Side::Target);
        assert_eq!(
            got,
            map(&[
                ("compression.type", "zstd"),
                ("max.message.bytes", "2000000"),
                ("message.format.version", "3.0-IV1"),
                ("retention.ms", "123456"),
            ])
        );
    }

    #[test]
    fn use_defaults_from_source_also_copies_kafka_defaults() {
        let got = configs_for_new_topic(&kafka_answer(), &mir, Side::Source);
        assert_eq!(
            got.get("cleanup.policy").map(String::as_str),
            Some("delete")
        );
        assert!(!got.contains_key("no.value"), "nothing to set");
        assert!(!got.contains_key("segment.bytes"), "static broker config");
        assert!(!got.contains_key("min.insync.replicas"), "excluded");
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn sync_deletes_defaults_and_sets_the_rest() {
        let ops = config_sync_ops(&kafka_answer(), &mir, Side::Target);
        assert_eq!(
            ops,
            vec![
                AlterOp::delete("cleanup.policy"),
                AlterOp::set("retention.ms", "123456"),
                AlterOp::set("max.message.bytes", "2000000"),
                AlterOp::set("compression.type", "zstd"),
                AlterOp::set("message.format.version", "3.0-IV1"),
                AlterOp::delete("no.value"),
            ]
        );
        let ops = config_sync_ops(&kafka_answer(), &mir, Side::Source);
        assert_eq!(ops[0], AlterOp::set("cleanup.policy", "delete"));
        assert!(
            !ops.iter().any(|o| o.name() == "no.value"),
            "no value to set"
        );
        assert!(!ops.iter().any(|o| matches!(o, AlterOp::Delete { .. })));
    }

    #[test]
    fn partial_answers_are_read_as_overrides() {
        // Tansu 0.6: only what the topic was created with, all labelled DEFAULT_CONFIG.
        let tansu = vec![
            entry("retention.ms", "1000", ConfigSource::Default),
            entry("min.insync.replicas", "1", ConfigSource::Default),
        ];
        let fixed = overrides_if_partial(tansu);
        assert!(fixed.iter().all(|e| e.source == ConfigSource::DynamicTopic));
        assert_eq!(
            configs_for_new_topic(&fixed, &mir, Side::Target),
            map(&[("retention.ms", "1000")])
        );
        // A complete answer keeps its labels.
        assert_eq!(overrides_if_partial(kafka_answer()), kafka_answer());
        assert!(overrides_if_partial(Vec::new()).is_empty());
    }

    #[test]
    fn unsupported_errors_are_recognised() {
        use rdkafka::error::KafkaError;
        use rdkafka::types::RDKafkaErrorCode as C;
        let ep = crate::kafka::Endpoint::new("us-west", "127.0.0.1:9");
        let e = |c| ClientError::from_kafka(&ep, "alter", KafkaError::AdminOp(c));
        assert!(is_unsupported(&e(C::UnsupportedVersion)));
        assert!(is_unsupported(&e(C::UnsupportedFeature)));
        assert!(!is_unsupported(&e(C::InvalidConfig)));
        let t = ClientError::timeout(&ep, "alter", std::time::Duration::from_secs(1));
        assert!(!is_unsupported(&t));
    }

    fn any_source() -> impl Strategy<Value = ConfigSource> {
        prop_oneof![
            Just(ConfigSource::Unknown),
            Just(ConfigSource::DynamicTopic),
            Just(ConfigSource::DynamicBroker),
            Just(ConfigSource::DynamicDefaultBroker),
            Just(ConfigSource::StaticBroker),
            Just(ConfigSource::Default),
        ]
    }

    /// Describe answers: distinct names (as a broker sends), any source, flags and value.
    fn any_entries() -> impl Strategy<Value = Vec<ConfigEntryInfo>> {
        prop::collection::btree_map(
            "[a-e]\\.[a-c]{1,2}",
            (
                proptest::option::of("[0-9]{1,3}"),
                any_source(),
                any::<bool>(),
                any::<bool>(),
            ),
            0..12,
        )
        .prop_map(|m| {
            m.into_iter()
                .map(
                    |(name, (value, source, read_only, sensitive))| ConfigEntryInfo {
                        name,
                        value,
                        source,
                        read_only,
                        sensitive,
                    },
                )
                .collect()
        })
    }

    fn side() -> impl Strategy<Value = Side> {
        prop_oneof![Just(Side::Source), Just(Side::Target)]
    }

    proptest! {
        #[test]
        fn never_touches_excluded_read_only_sensitive_or_static(entries in any_entries(), side in side()) {
            let exclude = |k: &str| k.starts_with('a');
            let ops = config_sync_ops(&entries, &exclude, side);
            let created = configs_for_new_topic(&entries, &exclude, side);
            for e in &entries {
                if exclude(&e.name) || e.read_only || e.sensitive || e.source == ConfigSource::StaticBroker {
                    prop_assert!(!ops.iter().any(|o| o.name() == e.name), "op for {:?}", e);
                    prop_assert!(!created.contains_key(&e.name), "created with {:?}", e);
                }
            }
        }

        #[test]
        fn ops_follow_the_source(entries in any_entries(), side in side()) {
            let none = |_: &str| false;
            let ops = config_sync_ops(&entries, &none, side);
            let by_name: BTreeMap<&str, &ConfigEntryInfo> =
                entries.iter().map(|e| (e.name.as_str(), e)).collect();
            for op in &ops {
                let e = by_name[op.name()];
                match op {
                    AlterOp::Delete { .. } => {
                        prop_assert_eq!(e.source, ConfigSource::Default);
                        prop_assert_eq!(side, Side::Target);
                    }
                    AlterOp::Set { value, .. } => {
                        prop_assert_eq!(Some(value), e.value.as_ref());
                        prop_assert!(e.source != ConfigSource::Default || side == Side::Source);
                    }
                }
            }
            // At most one op per config, so librdkafka never sees a duplicate.
            let names: BTreeSet<&str> = ops.iter().map(AlterOp::name).collect();
            prop_assert_eq!(names.len(), ops.len());
        }

        #[test]
        fn creation_is_what_sync_would_set(entries in any_entries(), side in side()) {
            let exclude = |k: &str| k.ends_with('c');
            let created = configs_for_new_topic(&entries, &exclude, side);
            let sets: BTreeMap<String, String> = config_sync_ops(&entries, &exclude, side)
                .into_iter()
                .filter_map(|o| match o {
                    AlterOp::Set { name, value } => Some((name, value)),
                    AlterOp::Delete { .. } => None,
                })
                .collect();
            prop_assert_eq!(created, sets);
        }
    }
}
