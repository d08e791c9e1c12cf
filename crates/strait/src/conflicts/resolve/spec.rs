//! What a view job keeps: its rule and region, from the file ([`ResolveSpec`]), and the views
//! and inputs the topics on R make of it ([`ViewPlan`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use strait_conflicts::Rank;

use crate::config::conflicts::{view_topic, Conflicts, Strategy};
use crate::config::{Config, Flow};
use crate::kafka::{Endpoint, TopicInfo};
use crate::policy::{PolicyKind, ReplicationPolicy};

/// The last-writer-wins view job of one rule in one region.
#[derive(Clone, Debug)]
pub(crate) struct ResolveSpec {
    /// The rule's name.
    pub rule: String,
    /// R: the region whose cluster holds the inputs and the views.
    pub region: String,
    /// Every rule of the file (a topic belongs to the first rule covering it), with the region
    /// order.
    pub conflicts: Arc<Conflicts>,
    /// Every cluster alias of the file, to tell remote topics from local ones.
    pub aliases: Vec<String>,
    /// R's policy (that of a flow into R): which topics are internal or heartbeats.
    pub policy: ReplicationPolicy,
    /// Each other region Q whose flow Q->R is enabled, with that flow's policy (which names
    /// Q's remote topics on R).
    pub remotes: Vec<(String, ReplicationPolicy)>,
    /// Consumer, producer and admin properties for R (those of the first flow into R).
    pub consumer: Endpoint,
    pub producer: Endpoint,
    pub admin: Endpoint,
    /// For view topics strait creates (lowered to R's broker count when it has fewer).
    pub replication_factor: i32,
    /// How often R's topics are listed again for new inputs (`refresh.topics.interval.seconds`).
    pub refresh: Duration,
    pub admin_timeout: Duration,
}

impl ResolveSpec {
    /// One job per last-writer-wins rule and region R of `strait.conflicts.regions` that is the
    /// target of an enabled flow `selected` accepts, with another region's flow into R.
    pub(crate) fn from_config(config: &Config, selected: &dyn Fn(&Flow) -> bool) -> Vec<Self> {
        let conflicts = Arc::new(config.conflicts.clone());
        let mut out = Vec::new();
        for rule in &conflicts.rules {
            if rule.strategy != Strategy::LastWriterWins {
                continue;
            }
            for region in &conflicts.regions {
                let into: Vec<&Flow> = conflicts
                    .regions
                    .iter()
                    .filter(|q| *q != region)
                    .filter_map(|q| config.flow(q, region))
                    .filter(|f| f.enabled)
                    .collect();
                let Some(first) = into.first() else {
                    continue;
                };
                if !into.iter().any(|f| selected(f)) {
                    continue;
                }
                out.push(Self {
                    rule: rule.name.clone(),
                    region: region.clone(),
                    conflicts: conflicts.clone(),
                    aliases: config.clusters.iter().map(|c| c.alias.clone()).collect(),
                    policy: first.policy.clone(),
                    remotes: into
                        .iter()
                        .map(|f| (f.source.clone(), f.policy.clone()))
                        .collect(),
                    consumer: first.clients.target_consumer.clone(),
                    producer: first.clients.target_producer.clone(),
                    admin: first.clients.target_admin.clone(),
                    replication_factor: i32::from(first.replication_factor),
                    refresh: into
                        .iter()
                        .filter_map(|f| f.intervals.refresh_topics)
                        .min()
                        .unwrap_or(Duration::from_secs(600)),
                    admin_timeout: first.admin_timeout,
                });
            }
        }
        out
    }

    /// The consumer group reading the inputs on R: a `strait.` group, never checkpointed.
    pub(crate) fn group(&self) -> String {
        format!("strait.resolve.{}.{}", self.rule, self.region)
    }

    /// The job's name in logs and on the stop list: `orders in us-east`.
    pub(crate) fn name(&self) -> String {
        format!("{} in {}", self.rule, self.region)
    }

    pub(super) fn rank(&self, alias: &str) -> Option<Rank> {
        self.conflicts.rank(alias)
    }

    /// Why no view can be kept, if so: with a policy that names remote topics as their source
    /// (IdentityReplicationPolicy), another region's writes cannot be told from R's own.
    pub(super) fn naming_problem(&self) -> Option<String> {
        let (q, _) = self
            .remotes
            .iter()
            .find(|(_, p)| p.kind() == PolicyKind::Identity)?;
        Some(format!(
            "the flow {q}->{} names remote topics as their source (IdentityReplicationPolicy), so {q}'s writes cannot be told from {}'s own; last-writer-wins needs remote topics named apart (DefaultReplicationPolicy)",
            self.region, self.region
        ))
    }

    /// Whether `topic` is a remote copy (named after a cluster of the file), at any depth.
    fn is_remote(&self, topic: &str) -> bool {
        self.remotes.iter().any(|(_, p)| {
            p.topic_source(topic)
                .is_some_and(|s| self.aliases.iter().any(|a| a == s))
        })
    }

    /// Whether `topic` is a local topic of this rule (the first rule covering it).
    fn covers(&self, topic: &str) -> bool {
        !self.policy.is_internal_topic(topic)
            && !self.policy.is_heartbeats_topic(topic)
            && !self.conflicts.derived().contains(topic)
            && !self.is_remote(topic)
            && self
                .conflicts
                .rule_for(topic)
                .is_some_and(|r| r.name == self.rule)
    }

    /// The views to keep given R's topics: one per local topic of the rule that has any input
    /// on R (the local topic itself, or a direct remote copy of it).
    pub(super) fn plan(&self, topics: &[TopicInfo]) -> Vec<ViewPlan> {
        let have: BTreeMap<&str, i32> = topics
            .iter()
            .map(|t| (t.name.as_str(), t.partitions))
            .collect();
        let mut bases = BTreeSet::new();
        for t in have.keys() {
            if self.covers(t) {
                bases.insert(t.to_string());
                continue;
            }
            for (q, p) in &self.remotes {
                if p.topic_source(t) != Some(q.as_str()) {
                    continue;
                }
                if let Some(up) = p.upstream_topic(t) {
                    if self.covers(&up) {
                        bases.insert(up);
                    }
                }
            }
        }
        bases
            .into_iter()
            .map(|base| {
                let expected = std::iter::once((base.clone(), self.region.clone())).chain(
                    self.remotes
                        .iter()
                        .map(|(q, p)| (p.remote_topic(&base), q.clone())),
                );
                let (mut inputs, mut missing) = (Vec::new(), Vec::new());
                for (topic, origin) in expected {
                    match have.get(topic.as_str()) {
                        Some(&partitions) => inputs.push(Input {
                            topic,
                            origin,
                            partitions,
                        }),
                        None => missing.push(topic),
                    }
                }
                let output = view_topic(&base);
                ViewPlan {
                    output_partitions: have.get(output.as_str()).copied(),
                    topic: base,
                    output,
                    inputs,
                    missing,
                }
            })
            .filter(|v| !v.inputs.is_empty())
            .collect()
    }
}

/// One input topic of a view on R.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Input {
    pub(super) topic: String,
    /// The region its records were written in.
    pub(super) origin: String,
    pub(super) partitions: i32,
}

/// One view on R: the local topic it is named after, its inputs on R, and its topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ViewPlan {
    pub(super) topic: String,
    pub(super) output: String,
    pub(super) inputs: Vec<Input>,
    /// Inputs expected but not on R yet (a flow has not created its remote copy).
    pub(super) missing: Vec<String>,
    /// The view topic's partition count, when it exists.
    pub(super) output_partitions: Option<i32>,
}

impl ViewPlan {
    /// The view's partition count: the local topic's, else its remote copies' (the largest).
    pub(super) fn partitions(&self) -> i32 {
        self.inputs
            .iter()
            .find(|i| i.topic == self.topic)
            .map(|i| i.partitions)
            .or_else(|| self.inputs.iter().map(|i| i.partitions).max())
            .unwrap_or(1)
    }

    /// Why a key may not be in the same partition of every input and of the view, if so.
    pub(super) fn partition_problem(&self) -> Option<String> {
        let n = self.partitions();
        let mut counts: Vec<String> = self
            .inputs
            .iter()
            .map(|i| format!("{} has {}", i.topic, i.partitions))
            .collect();
        if let Some(o) = self.output_partitions {
            counts.push(format!("{} has {o}", self.output));
        }
        let differ = self.inputs.iter().any(|i| i.partitions != n)
            || self.output_partitions.is_some_and(|o| o != n);
        differ.then(|| {
            format!(
                "the partition counts of {}'s inputs and view differ ({}): a key must be in the same partition of every input and of the view, or the view may keep a version that lost; give them the same number of partitions",
                self.topic,
                counts.join(", ")
            )
        })
    }
}

/// Each view with its inputs and their partition counts.
pub(super) type Signature = Vec<(String, Vec<(String, i32)>)>;

/// Per input partition, the next offset to read: what a commit records.
pub(super) type Positions = BTreeMap<(String, i32), i64>;

/// The inputs of every view, with their partition counts: when this changes, the job starts
/// over with the new inputs.
pub(super) fn signature(plans: &[ViewPlan]) -> Signature {
    plans
        .iter()
        .map(|v| {
            (
                v.output.clone(),
                v.inputs
                    .iter()
                    .map(|i| (i.topic.clone(), i.partitions))
                    .collect(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::parse(
            &format!(
                "clusters = east, west, south\n\
                 east.bootstrap.servers = e:9092\nwest.bootstrap.servers = w:9092\nsouth.bootstrap.servers = s:9092\n\
                 east->west.enabled = true\nwest->east.enabled = true\n\
                 strait.conflicts.regions = west, east\n{extra}"
            ),
            "mm2.properties",
        )
        .unwrap()
    }

    fn ti(name: &str, partitions: i32) -> TopicInfo {
        TopicInfo {
            name: name.into(),
            partitions,
        }
    }

    const RULES: &str = "strait.conflicts.rules = orders, owned\n\
                         strait.conflicts.orders.topics = orders, ledger-.*\n\
                         strait.conflicts.orders.strategy = last-writer-wins\n\
                         strait.conflicts.owned.topics = accounts\n\
                         strait.conflicts.owned.strategy = authority\n\
                         strait.conflicts.owned.authority.east = E-.*\n";

    #[test]
    fn one_job_per_rule_and_region_with_its_remote_flows() {
        let c = config(RULES);
        let all = ResolveSpec::from_config(&c, &|_| true);
        let names: Vec<String> = all.iter().map(ResolveSpec::name).collect();
        assert_eq!(names, ["orders in west", "orders in east"]);
        let east = &all[1];
        assert_eq!(east.group(), "strait.resolve.orders.east");
        assert!(crate::replicate::is_strait_group(&east.group()));
        assert_eq!(
            east.remotes
                .iter()
                .map(|(q, _)| q.as_str())
                .collect::<Vec<_>>(),
            ["west"]
        );
        assert_eq!(east.consumer.alias, "east");
        assert_eq!(east.rank("west"), Some(0));
        // `--clusters west`: only the job on west.
        let west_only = ResolveSpec::from_config(&c, &|f| f.target == "west");
        assert_eq!(west_only.len(), 1);
        assert_eq!(west_only[0].region, "west");
        assert!(west_only[0].naming_problem().is_none());
    }

    #[test]
    fn views_take_the_local_topic_and_direct_remote_copies() {
        let c = config(RULES);
        let east = ResolveSpec::from_config(&c, &|_| true).remove(1);
        let plans = east.plan(&[
            ti("orders", 3),
            ti("west.orders", 3),
            ti("orders.resolved", 3),
            ti("west.south.orders", 3), // a copy of a copy: ignored
            ti("west.ledger-eu", 2),    // only the remote copy so far
            ti("accounts", 1),          // another rule's
            ti("west.accounts", 1),
            ti("payments", 1), // no rule
            ti("heartbeats", 1),
            ti("west.heartbeats", 1),
        ]);
        assert_eq!(
            plans,
            vec![
                ViewPlan {
                    topic: "ledger-eu".into(),
                    output: "ledger-eu.resolved".into(),
                    inputs: vec![Input {
                        topic: "west.ledger-eu".into(),
                        origin: "west".into(),
                        partitions: 2
                    }],
                    missing: vec!["ledger-eu".into()],
                    output_partitions: None,
                },
                ViewPlan {
                    topic: "orders".into(),
                    output: "orders.resolved".into(),
                    inputs: vec![
                        Input {
                            topic: "orders".into(),
                            origin: "east".into(),
                            partitions: 3
                        },
                        Input {
                            topic: "west.orders".into(),
                            origin: "west".into(),
                            partitions: 3
                        },
                    ],
                    missing: vec![],
                    output_partitions: Some(3),
                },
            ]
        );
        assert_eq!(plans[0].partitions(), 2);
        assert!(plans.iter().all(|p| p.partition_problem().is_none()));
    }

    #[test]
    fn different_partition_counts_are_named() {
        let c = config(RULES);
        let east = ResolveSpec::from_config(&c, &|_| true).remove(1);
        let plans = east.plan(&[ti("orders", 3), ti("west.orders", 4)]);
        let problem = plans[0].partition_problem().unwrap();
        assert!(
            problem.contains("(orders has 3, west.orders has 4)"),
            "{problem}"
        );
        assert_eq!(plans[0].partitions(), 3, "the local topic's count");
        let plans = east.plan(&[
            ti("orders", 3),
            ti("west.orders", 3),
            ti("orders.resolved", 6),
        ]);
        let problem = plans[0].partition_problem().unwrap();
        assert!(problem.contains("orders.resolved has 6"), "{problem}");
    }

    #[test]
    fn the_identity_policy_keeps_no_view() {
        let c = config(&format!(
            "{RULES}replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n"
        ));
        let east = ResolveSpec::from_config(&c, &|_| true).remove(1);
        let problem = east.naming_problem().unwrap();
        assert!(
            problem.contains("the flow west->east names remote topics as their source"),
            "{problem}"
        );
        assert!(
            c.warnings.iter().any(|w| w
                .message
                .contains("no last-writer-wins view is kept; use DefaultReplicationPolicy")),
            "strait check says so too: {:?}",
            c.warnings
        );
    }
}
