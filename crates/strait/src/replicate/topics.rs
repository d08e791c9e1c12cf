//! Which source topics a flow replicates, and what must change on the target for them
//! (MM2-SPEC §5): the decisions are pure functions; `ensure_remote_topics` applies them.

use std::collections::{BTreeMap, BTreeSet};

use tracing::{info, warn};

use super::configs::{configs_for_new_topic, source_config_entries};
use crate::config::Side;
use crate::kafka::{Admin, ClientError, Created, TopicInfo, TopicSpec};
use crate::policy::ReplicationPolicy;

/// Whether the flow `source -> target` replicates `topic` (MM2's `shouldReplicateTopic`):
/// the filter accepts it (or it is a heartbeats topic and heartbeats replication is on), it is not
/// internal, and replicating it would not send it back to the target.
pub(crate) fn should_replicate(
    policy: &ReplicationPolicy,
    filter: &dyn Fn(&str) -> bool,
    heartbeats_replication: bool,
    target: &str,
    topic: &str,
) -> bool {
    let wanted = filter(topic) || (heartbeats_replication && policy.is_heartbeats_topic(topic));
    wanted && !policy.is_internal_topic(topic) && !policy.is_cycle(topic, target)
}

/// A change to make on the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RemoteAction {
    /// Create `remote` with the source's partition count.
    Create {
        source: String,
        remote: String,
        partitions: i32,
    },
    /// The source grew: raise the remote's partition count (never lowered).
    GrowPartitions { remote: String, from: i32, to: i32 },
}

/// What the target needs so that every replicated source partition has a counterpart with the
/// same number.
pub(crate) fn plan_remote_topics(
    policy: &ReplicationPolicy,
    source_alias: &str,
    replicated: &[TopicInfo],
    target_topics: &[TopicInfo],
) -> Vec<RemoteAction> {
    let existing: BTreeMap<&str, i32> = target_topics
        .iter()
        .map(|t| (t.name.as_str(), t.partitions))
        .collect();
    let mut out = Vec::new();
    for t in replicated {
        let remote = policy.format_remote_topic(source_alias, &t.name);
        match existing.get(remote.as_str()) {
            None => out.push(RemoteAction::Create {
                source: t.name.clone(),
                remote,
                partitions: t.partitions,
            }),
            Some(&have) if have < t.partitions => out.push(RemoteAction::GrowPartitions {
                remote,
                from: have,
                to: t.partitions,
            }),
            Some(_) => {}
        }
    }
    out
}

/// The replication factor to create remote topics with: the configured one, or the number of
/// target brokers when there are fewer (the caller warns).
pub(crate) fn effective_replication_factor(configured: i32, target_brokers: usize) -> i32 {
    configured.min(target_brokers.max(1) as i32)
}

/// Everything a flow needs to know to keep remote topics in shape.
pub struct TopicSync<'a> {
    /// The source cluster's alias, which remote topic names carry.
    pub source_alias: &'a str,
    /// The target cluster's alias: topics that came from it are not sent back.
    pub target_alias: &'a str,
    /// How remote topics are named, and which topics are internal or heartbeats.
    pub policy: &'a ReplicationPolicy,
    /// The flow's topic filter: true for a topic to replicate.
    pub filter: &'a (dyn Fn(&str) -> bool + Send + Sync),
    /// Replicate heartbeats topics even when `filter` does not accept them.
    pub heartbeats_replication: bool,
    /// For new remote topics (lowered to the number of target brokers when there are fewer).
    pub replication_factor: i32,
    /// True for a topic config property never copied to a new remote topic.
    pub config_exclude: &'a (dyn Fn(&str) -> bool + Send + Sync),
    /// `use.defaults.from`: whether remote topics are created with the source's Kafka defaults
    /// too (`Source`) or leave those to the target (`Target`, MM2's default).
    pub use_defaults_from: Side,
}

impl TopicSync<'_> {
    /// List the source, select the topics to replicate, and create or grow what is missing on the
    /// target. Returns the replicated source topics with their partition counts.
    pub async fn ensure_remote_topics(
        &self,
        source: &Admin,
        target: &Admin,
    ) -> Result<Vec<TopicInfo>, ClientError> {
        let all = source.topics(None).await?;
        let replicated: Vec<TopicInfo> = all
            .into_iter()
            .filter(|t| {
                should_replicate(
                    self.policy,
                    self.filter,
                    self.heartbeats_replication,
                    self.target_alias,
                    &t.name,
                )
            })
            .collect();
        let target_topics = target.topics(None).await?;
        let plan = plan_remote_topics(self.policy, self.source_alias, &replicated, &target_topics);
        if plan.is_empty() {
            return Ok(replicated);
        }
        let brokers = target.broker_count().await?;
        let rf = effective_replication_factor(self.replication_factor, brokers);
        if rf < self.replication_factor {
            warn!(
                target = self.target_alias,
                configured = self.replication_factor,
                brokers,
                "target has fewer brokers than replication.factor; creating remote topics with replication factor {rf}"
            );
        }
        let mut specs = Vec::new();
        for action in &plan {
            match action {
                RemoteAction::Create {
                    source: src_topic,
                    remote,
                    partitions,
                } => {
                    let configs = match source_config_entries(source, src_topic).await {
                        Ok(entries) => configs_for_new_topic(
                            &entries,
                            self.config_exclude,
                            self.use_defaults_from,
                        ),
                        Err(e) => {
                            warn!(error = %e, topic = %src_topic, "cannot read source topic configs; creating the remote topic without them");
                            BTreeMap::new()
                        }
                    };
                    let mut spec = TopicSpec::new(remote, *partitions, rf);
                    spec.configs = configs;
                    specs.push(spec);
                }
                RemoteAction::GrowPartitions { remote, from, to } => {
                    // Records keep their partition number, so the remote needs at least as many
                    // partitions as its source. Until it has them, records of the new partitions
                    // cannot be written (the flow stops on them rather than lose them).
                    match target.create_partitions(remote, *to as usize).await {
                        Ok(()) => {
                            info!(target = self.target_alias, topic = %remote, from, to, "added partitions to remote topic")
                        }
                        Err(e) => warn!(
                            target = self.target_alias,
                            topic = %remote,
                            from,
                            to,
                            error = %e,
                            "remote topic has fewer partitions than its source and could not be grown; retried at the next refresh"
                        ),
                    }
                }
            }
        }
        if !specs.is_empty() {
            for (name, outcome) in target.create_topics(&specs).await? {
                if outcome == Created::Created {
                    info!(target = self.target_alias, topic = %name, "created remote topic");
                }
            }
        }
        Ok(replicated)
    }
}

impl TopicSync<'_> {
    /// Create (or grow) the quarantine topic beside the remote topic of each replicated source
    /// topic `quarantines` accepts (regional authority, `conflicts::authority`): same partition
    /// count as the source, its configs as the remote topic gets them, but never compacted and
    /// never deleted by time or size (`retention.ms=-1`, `retention.bytes=-1`): each record is a
    /// write an operator must look at, and only the operator removes it.
    pub(crate) async fn ensure_quarantine_topics(
        &self,
        source: &Admin,
        target: &Admin,
        replicated: &[TopicInfo],
        quarantines: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<(), ClientError> {
        let wanted: Vec<(&TopicInfo, String)> = replicated
            .iter()
            .filter(|t| quarantines(&t.name))
            .map(|t| {
                let remote = self.policy.format_remote_topic(self.source_alias, &t.name);
                (t, crate::config::conflicts::quarantine_topic(&remote))
            })
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let existing: BTreeMap<String, i32> = target
            .topics(None)
            .await?
            .into_iter()
            .map(|t| (t.name, t.partitions))
            .collect();
        let mut specs = Vec::new();
        for (t, name) in wanted {
            match existing.get(&name) {
                Some(&have) if have < t.partitions => {
                    if let Err(e) = target.create_partitions(&name, t.partitions as usize).await {
                        warn!(target = self.target_alias, topic = %name, error = %e, "quarantine topic has fewer partitions than its source and could not be grown; retried at the next refresh");
                    }
                }
                Some(_) => {}
                None => {
                    let mut configs = match source_config_entries(source, &t.name).await {
                        Ok(entries) => configs_for_new_topic(
                            &entries,
                            self.config_exclude,
                            self.use_defaults_from,
                        ),
                        Err(_) => BTreeMap::new(),
                    };
                    for (k, v) in [
                        ("cleanup.policy", "delete"),
                        ("retention.ms", "-1"),
                        ("retention.bytes", "-1"),
                    ] {
                        configs.insert(k.to_string(), v.to_string());
                    }
                    let brokers = target.broker_count().await?;
                    let rf = effective_replication_factor(self.replication_factor, brokers);
                    let mut spec = TopicSpec::new(&name, t.partitions, rf);
                    spec.configs = configs;
                    specs.push(spec);
                }
            }
        }
        if !specs.is_empty() {
            for (name, outcome) in target.create_topics(&specs).await? {
                if outcome == Created::Created {
                    info!(target = self.target_alias, topic = %name, "created quarantine topic");
                }
            }
        }
        Ok(())
    }
}

/// The names of remote topics, for logs.
pub(crate) fn names(topics: &[TopicInfo]) -> BTreeSet<String> {
    topics.iter().map(|t| t.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyKind;

    fn ti(name: &str, p: i32) -> TopicInfo {
        TopicInfo {
            name: name.into(),
            partitions: p,
        }
    }

    #[test]
    fn selection_follows_filters_internal_topics_and_cycles() {
        let p = ReplicationPolicy::default_policy();
        let only_orders = |t: &str| t == "orders" || t == "us-west.orders";
        let sel = |t: &str| should_replicate(&p, &only_orders, true, "us-west", t);
        assert!(sel("orders"));
        assert!(!sel("payments"), "filtered out");
        assert!(
            sel("heartbeats"),
            "heartbeats replicated despite the filter"
        );
        assert!(!sel("us-west.orders"), "would go back to us-west");
        assert!(!sel("__consumer_offsets"));
        assert!(!sel("mm2-offset-syncs.us-west.internal"));
        assert!(!sel("us-east.checkpoints.internal"));
        let no_hb = should_replicate(&p, &only_orders, false, "us-west", "heartbeats");
        assert!(!no_hb);
    }

    #[test]
    fn plan_creates_missing_and_grows_smaller_remotes() {
        let p = ReplicationPolicy::default_policy();
        let plan = plan_remote_topics(
            &p,
            "us-east",
            &[ti("a", 3), ti("b", 6), ti("c", 2)],
            &[ti("us-east.b", 4), ti("us-east.c", 5), ti("a", 1)],
        );
        assert_eq!(
            plan,
            vec![
                RemoteAction::Create {
                    source: "a".into(),
                    remote: "us-east.a".into(),
                    partitions: 3
                },
                RemoteAction::GrowPartitions {
                    remote: "us-east.b".into(),
                    from: 4,
                    to: 6
                },
            ]
        );
        let id = ReplicationPolicy::new(PolicyKind::Identity, None, true, Some("us-east"));
        let plan = plan_remote_topics(&id, "us-east", &[ti("a", 3)], &[]);
        assert_eq!(
            plan,
            vec![RemoteAction::Create {
                source: "a".into(),
                remote: "a".into(),
                partitions: 3
            }]
        );
    }

    #[test]
    fn replication_factor_falls_back_to_broker_count() {
        assert_eq!(effective_replication_factor(2, 1), 1);
        assert_eq!(effective_replication_factor(3, 5), 3);
        assert_eq!(effective_replication_factor(2, 0), 1);
        assert_eq!(
            effective_replication_factor(-1, 1),
            -1,
            "-1: the broker default"
        );
    }
}
