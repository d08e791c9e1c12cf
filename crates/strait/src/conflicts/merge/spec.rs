//! What a merger and a marks job are given, from the configuration, and which topics of a
//! region they take: the local topics of an events rule (not remote copies, not strait's own).

use std::sync::Arc;
use std::time::Duration;

use strait_conflicts::Rank;

use crate::config::conflicts::{Conflicts, Strategy};
use crate::config::{Config, Flow};
use crate::kafka::{Endpoint, TopicInfo};
use crate::policy::ReplicationPolicy;

/// One region whose events are merged, as a merger reaches its cluster.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    /// Its alias.
    pub alias: String,
    /// Its place in `strait.conflicts.regions`.
    pub rank: Rank,
    /// Consumer properties for its cluster.
    pub consumer: Endpoint,
    /// Admin properties for its cluster.
    pub admin: Endpoint,
}

/// Which topics of a region's cluster are local topics of an events rule.
#[derive(Clone, Debug)]
pub(crate) struct Topics {
    /// Every rule, with the region order (a topic belongs to the first rule covering it).
    pub conflicts: Arc<Conflicts>,
    /// Every cluster alias of the file, to tell remote copies from local topics.
    pub aliases: Vec<String>,
    /// The policies of the flows into the region (which name remote topics), the first one
    /// also telling internal and heartbeats topics.
    pub policies: Vec<ReplicationPolicy>,
}

impl Topics {
    /// Whether `topic` is a local topic of an events rule (`rule`, or any when `None`).
    pub(crate) fn covers(&self, topic: &str, rule: Option<&str>) -> bool {
        let Some(policy) = self.policies.first() else {
            return false;
        };
        let remote = self.policies.iter().any(|p| {
            p.topic_source(topic)
                .is_some_and(|s| self.aliases.iter().any(|a| a == s))
        });
        !policy.is_internal_topic(topic)
            && !policy.is_heartbeats_topic(topic)
            && !remote
            && !self.conflicts.derived().contains(topic)
            && self.conflicts.rule_for(topic).is_some_and(|r| {
                matches!(r.strategy, Strategy::Events { .. }) && rule.is_none_or(|n| n == r.name)
            })
    }

    /// The topics of `listed` it covers, sorted.
    pub(crate) fn pick(&self, listed: &[TopicInfo], rule: Option<&str>) -> Vec<TopicInfo> {
        let mut out: Vec<TopicInfo> = listed
            .iter()
            .filter(|t| self.covers(&t.name, rule))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

/// The merger of one events rule in one region R.
#[derive(Clone, Debug)]
pub(crate) struct MergeSpec {
    /// The rule's name.
    pub rule: String,
    /// R: the region whose cluster holds the merged topics.
    pub region: String,
    /// How far behind its partition's progress an event's timestamp may be.
    pub lateness: Duration,
    /// The header holding an event's id, if repeats are dropped.
    pub id_header: Option<String>,
    /// Which topics of R are the rule's.
    pub topics: Topics,
    /// Every region, in rank order, R among them.
    pub origins: Vec<Origin>,
    /// R's consumer (the group), producer and admin properties.
    pub consumer: Endpoint,
    pub producer: Endpoint,
    pub admin: Endpoint,
    /// For merged topics strait creates (lowered to R's broker count when it has fewer).
    pub replication_factor: i32,
    /// How often R's topics are listed again for new ones.
    pub refresh: Duration,
    pub admin_timeout: Duration,
}

/// The marks job of one region: marks every partition of its events topics.
#[derive(Clone, Debug)]
pub(crate) struct MarksSpec {
    /// The region whose cluster is marked.
    pub region: String,
    /// Which of its topics are event topics.
    pub topics: Topics,
    /// Its producer and admin properties.
    pub producer: Endpoint,
    pub admin: Endpoint,
    /// For the marks topic (lowered to the broker count when it has fewer).
    pub replication_factor: i32,
    pub admin_timeout: Duration,
}

/// The enabled flows into `region` from the other regions of the rules.
fn flows_into<'a>(config: &'a Config, conflicts: &Conflicts, region: &str) -> Vec<&'a Flow> {
    conflicts
        .regions
        .iter()
        .filter(|q| *q != region)
        .filter_map(|q| config.flow(q, region))
        .filter(|f| f.enabled)
        .collect()
}

fn topics(config: &Config, conflicts: &Arc<Conflicts>, into: &[&Flow]) -> Topics {
    Topics {
        conflicts: conflicts.clone(),
        aliases: config.clusters.iter().map(|c| c.alias.clone()).collect(),
        policies: into.iter().map(|f| f.policy.clone()).collect(),
    }
}

impl MergeSpec {
    /// One merger per events rule and region R of `strait.conflicts.regions` that is the target
    /// of an enabled flow `selected` accepts; every other region must be reachable through an
    /// enabled flow into R (its source side).
    pub(crate) fn from_config(config: &Config, selected: &dyn Fn(&Flow) -> bool) -> Vec<Self> {
        let conflicts = Arc::new(config.conflicts.clone());
        let mut out = Vec::new();
        for rule in &conflicts.rules {
            let Strategy::Events {
                id_header,
                lateness,
            } = &rule.strategy
            else {
                continue;
            };
            for region in &conflicts.regions {
                let into = flows_into(config, &conflicts, region);
                let Some(first) = into.first() else {
                    continue;
                };
                if !into.iter().any(|f| selected(f)) {
                    continue;
                }
                let mut origins = Vec::new();
                for (rank, alias) in conflicts.regions.iter().enumerate() {
                    let (consumer, admin) = if alias == region {
                        (
                            first.clients.target_consumer.clone(),
                            first.clients.target_admin.clone(),
                        )
                    } else {
                        match into.iter().find(|f| &f.source == alias) {
                            Some(f) => (
                                f.clients.source_consumer.clone(),
                                f.clients.source_admin.clone(),
                            ),
                            None => continue,
                        }
                    };
                    origins.push(Origin {
                        alias: alias.clone(),
                        rank: Rank::try_from(rank).unwrap_or(Rank::MAX),
                        consumer,
                        admin,
                    });
                }
                out.push(Self {
                    rule: rule.name.clone(),
                    region: region.clone(),
                    lateness: *lateness,
                    id_header: id_header.clone(),
                    topics: topics(config, &conflicts, &into),
                    origins,
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

    /// The consumer group owning partitions on R: a `strait.` group, never checkpointed.
    pub(crate) fn group(&self) -> String {
        format!("strait.merge.{}.{}", self.rule, self.region)
    }

    /// `order-events in us-east`.
    pub(crate) fn name(&self) -> String {
        format!("{} in {}", self.rule, self.region)
    }

    /// Why some region's events cannot be merged in R, if so: no enabled flow from it into R,
    /// or remote topics named as their source (IdentityReplicationPolicy), which puts the other
    /// regions' copies into R's own event topic.
    pub(crate) fn merge_problem(&self, regions: &[String]) -> Option<String> {
        if self
            .topics
            .policies
            .iter()
            .any(|p| p.kind() == crate::policy::PolicyKind::Identity)
        {
            return Some(format!(
                "a flow into {} names remote topics as their source (IdentityReplicationPolicy), so its event topics also hold the other regions' copies; merged streams need remote topics named apart (DefaultReplicationPolicy)",
                self.region
            ));
        }
        regions
            .iter()
            .find(|r| !self.origins.iter().any(|o| &o.alias == *r))
            .map(|r| {
                format!(
                    "no enabled flow {r}->{} reaches {r}'s cluster, so its events cannot be merged in {}",
                    self.region, self.region
                )
            })
    }
}

impl MarksSpec {
    /// One marks job for every region, when any merger runs (each merger needs every region's
    /// marks; several processes marking one region is harmless, see `marks`).
    pub(crate) fn from_config(config: &Config, mergers: &[MergeSpec]) -> Vec<Self> {
        if mergers.is_empty() {
            return Vec::new();
        }
        let conflicts = Arc::new(config.conflicts.clone());
        conflicts
            .regions
            .iter()
            .filter_map(|region| {
                let into = flows_into(config, &conflicts, region);
                let first = into.first()?;
                Some(Self {
                    region: region.clone(),
                    topics: topics(config, &conflicts, &into),
                    producer: first.clients.target_producer.clone(),
                    admin: first.clients.target_admin.clone(),
                    replication_factor: i32::from(first.replication_factor),
                    admin_timeout: first.admin_timeout,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::parse(
            &format!(
                "clusters = east, west\n\
                 east.bootstrap.servers = e:9092\nwest.bootstrap.servers = w:9092\n\
                 east->west.enabled = true\nwest->east.enabled = true\n\
                 strait.conflicts.regions = west, east\n{extra}"
            ),
            "mm2.properties",
        )
        .unwrap()
    }

    const RULES: &str = "strait.conflicts.rules = log, orders\n\
                         strait.conflicts.log.topics = order-events, audit-.*\n\
                         strait.conflicts.log.strategy = events\n\
                         strait.conflicts.log.event.id.header = event-id\n\
                         strait.conflicts.orders.topics = orders\n\
                         strait.conflicts.orders.strategy = last-writer-wins\n";

    #[test]
    fn one_merger_per_events_rule_and_region_reading_every_region() {
        let c = config(RULES);
        let all = MergeSpec::from_config(&c, &|_| true);
        let names: Vec<String> = all.iter().map(MergeSpec::name).collect();
        assert_eq!(names, ["log in west", "log in east"]);
        let east = &all[1];
        assert_eq!(east.group(), "strait.merge.log.east");
        assert!(crate::replicate::is_strait_group(&east.group()));
        assert_eq!(east.id_header.as_deref(), Some("event-id"));
        let origins: Vec<(&str, Rank, &str)> = east
            .origins
            .iter()
            .map(|o| (o.alias.as_str(), o.rank, o.consumer.alias.as_str()))
            .collect();
        assert_eq!(origins, [("west", 0, "west"), ("east", 1, "east")]);
        assert!(east.merge_problem(&c.conflicts.regions).is_none());
        assert_eq!(east.producer.alias, "east");
        let only_west = MergeSpec::from_config(&c, &|f| f.target == "west");
        assert_eq!(only_west.len(), 1);
        let marks = MarksSpec::from_config(&c, &only_west);
        let regions: Vec<&str> = marks.iter().map(|m| m.region.as_str()).collect();
        assert_eq!(
            regions,
            ["west", "east"],
            "a merger needs every region's marks"
        );
        assert_eq!(marks[1].producer.alias, "east");
        assert!(MarksSpec::from_config(&c, &[]).is_empty());
    }

    #[test]
    fn the_identity_policy_keeps_no_merged_stream() {
        let c = config(&format!(
            "{RULES}replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n"
        ));
        let east = MergeSpec::from_config(&c, &|_| true).remove(1);
        let problem = east.merge_problem(&c.conflicts.regions).unwrap();
        assert!(
            problem.contains("names remote topics as their source"),
            "{problem}"
        );
        assert!(
            c.warnings.iter().any(|w| w
                .message
                .contains("no merged stream is kept for events rules (`log`)")),
            "strait check says so too: {:?}",
            c.warnings
        );
    }

    #[test]
    fn only_local_event_topics_are_taken() {
        let c = config(RULES);
        let east = MergeSpec::from_config(&c, &|_| true).remove(1);
        let ti = |name: &str| TopicInfo {
            name: name.into(),
            partitions: 2,
        };
        let listed = [
            ti("order-events"),
            ti("west.order-events"),
            ti("order-events.merged"),
            ti("audit-eu"),
            ti("orders"),
            ti("heartbeats"),
            ti("strait.marks"),
        ];
        let names: Vec<String> = east
            .topics
            .pick(&listed, Some("log"))
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["audit-eu", "order-events"]);
        assert!(east.topics.pick(&listed, Some("orders")).is_empty());
        assert_eq!(east.topics.pick(&listed, None).len(), 2);
    }
}
