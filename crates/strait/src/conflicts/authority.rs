//! Regional authority in the flows (issue 16, item 3): a region owns some keys (order ids `US-.*`
//! belong to us-east), and a write to such a key made in another region is a violation.
//!
//! The flow `S->T` is the one place that sees each write on its way into another region, so it
//! judges every record of a topic under an `authority` rule as it hands it to the target
//! producer ([`TopicAuthority::decide`], the rule itself being the pure
//! [`strait_conflicts::authority::Authority::decide`]):
//! - the writing region is S for S's own topic, and the region the replication policy names for a
//!   remote topic in a chain (`central.orders` on S was written in `central`);
//! - a violation is always recorded: one [`ConflictRecord`] (kind `authority-violation`, one
//!   version, winner the owner) in `strait.conflicts` on T, and counted in
//!   `strait_conflicts_total{strategy="authority"}`;
//! - with `violations = quarantine` and T the owner, the record is not written to the remote topic
//!   but to `<remote topic>.quarantine` beside it ([`quarantine_topic`]), same partition, key,
//!   value and timestamp, its headers followed by strait's saying why ([`headers`]): the owner's
//!   consumers never see it, an operator can replay it. Anywhere else it is copied as usual (and
//!   reported), so every other region still holds every write.
//!
//! The source offset is committed only once the copy (or the quarantined copy) and the violation
//! record are both acknowledged, as for any record: a crash copies both again, and the record's
//! id (`v/<topic>/<region>:<partition>:<offset>`) makes the second a replacement in the
//! compacted topic. A quarantined record leaves a hole in the remote partition, which the offset
//! index, offset syncs and checkpoints cross as they cross a compacted source's holes.
//!
//! The quarantine topics are strait's: never replicated (see `config::conflicts::is_quarantine`),
//! never pruned or deleted by strait; they keep every record (`retention.ms=-1`) until an
//! operator deletes them.

use std::sync::Arc;

use rdkafka::message::{Header, OwnedHeaders};
use strait_conflicts::authority::{Authority, Decision};
use strait_conflicts::Rank;

use super::record::{digest_text, ConflictRecord, Kind, Outcome, VersionRecord};
use super::resolve::digest;
use super::tally::ConflictTally;
use crate::config::conflicts::{Conflicts, Strategy, Violations};
use crate::config::NameFilter;
use crate::policy::ReplicationPolicy;

pub use crate::config::conflicts::{quarantine_topic, QUARANTINE_SUFFIX};

/// `strait.violation`: why the record is in quarantine (`authority`).
pub const VIOLATION_HEADER: &str = "strait.violation";
/// `strait.rule`: the conflict rule (`strait.conflicts.rules`) it broke.
pub const RULE_HEADER: &str = "strait.rule";
/// `strait.owner`: the region that owns the key.
pub const OWNER_HEADER: &str = "strait.owner";
/// `strait.origin`: the region that wrote it.
pub const ORIGIN_HEADER: &str = "strait.origin";
/// `strait.source.cluster`: the cluster it was copied from (the flow's source).
pub const SOURCE_CLUSTER_HEADER: &str = "strait.source.cluster";
/// `strait.source.topic`: its topic there.
pub const SOURCE_TOPIC_HEADER: &str = "strait.source.topic";
/// `strait.source.partition`: its partition there.
pub const SOURCE_PARTITION_HEADER: &str = "strait.source.partition";
/// `strait.source.offset`: its offset there.
pub const SOURCE_OFFSET_HEADER: &str = "strait.source.offset";
/// `strait.target.topic`: the remote topic it was kept out of.
pub const TARGET_TOPIC_HEADER: &str = "strait.target.topic";

/// One authority rule, compiled, with ranks in `strait.conflicts.regions` order.
struct Rule {
    name: String,
    topics: NameFilter,
    authority: Authority,
    quarantine: bool,
}

/// The authority rules as one flow `S->T` applies them. `None` from [`AuthorityPlan::new`] when
/// the file has no authority rule: the flow then judges nothing.
pub struct AuthorityPlan {
    regions: Vec<String>,
    source: String,
    target: String,
    rules: Vec<Arc<Rule>>,
    tally: ConflictTally,
}

impl std::fmt::Debug for AuthorityPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorityPlan")
            .field("flow", &format!("{}->{}", self.source, self.target))
            .field(
                "rules",
                &self.rules.iter().map(|r| &r.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl AuthorityPlan {
    /// The plan of the flow `source->target` (cluster aliases), counting into `tally`.
    pub fn new(
        conflicts: &Conflicts,
        source: &str,
        target: &str,
        tally: ConflictTally,
    ) -> Option<Arc<Self>> {
        let rules: Vec<Arc<Rule>> = conflicts
            .rules
            .iter()
            .filter_map(|r| {
                let Strategy::Authority { owners, violations } = &r.strategy else {
                    return None;
                };
                let ranked: Vec<(Rank, String)> = owners
                    .iter()
                    .filter_map(|(region, p)| Some((conflicts.rank(region)?, p.clone())))
                    .collect();
                // Each pattern was compiled when the file was read.
                let authority = Authority::new(&ranked).ok()?;
                Some(Arc::new(Rule {
                    name: r.name.clone(),
                    topics: r.topics.clone(),
                    authority,
                    quarantine: *violations == Violations::Quarantine,
                }))
            })
            .collect();
        (!rules.is_empty()).then(|| {
            Arc::new(Self {
                regions: conflicts.regions.clone(),
                source: source.to_string(),
                target: target.to_string(),
                rules,
                tally,
            })
        })
    }

    fn rank(&self, region: &str) -> Option<Rank> {
        self.regions
            .iter()
            .position(|r| r == region)
            .and_then(|i| Rank::try_from(i).ok())
    }

    /// How the records of source topic `topic` (copied to `remote` on the target) are judged;
    /// `None` when no authority rule covers it. The rule is that of the topic's name where it was
    /// first written (`orders` for `central.orders`).
    pub(crate) fn for_topic(
        &self,
        policy: &ReplicationPolicy,
        topic: &str,
        remote: &str,
    ) -> Option<TopicAuthority> {
        let local = policy.original_topic(topic);
        let rule = self.rules.iter().find(|r| r.topics.matches(&local))?;
        // A local topic was written in S; a remote one in the region its name starts with.
        let origin = match policy.topic_source(topic) {
            Some(upstream) if policy.upstream_topic(topic).as_deref() != Some(topic) => upstream,
            _ => &self.source,
        }
        .to_string();
        Some(TopicAuthority {
            rule: rule.clone(),
            origin_rank: self.rank(&origin),
            target_rank: self.rank(&self.target),
            origin,
            local_topic: local,
            source_cluster: self.source.clone(),
            target: self.target.clone(),
            remote: remote.to_string(),
            quarantine_topic: quarantine_topic(remote),
            regions: self.regions.clone(),
            tally: self.tally.clone(),
        })
    }

    /// Whether the flow may quarantine records of source topic `topic` (whose remote topic then
    /// needs a quarantine topic beside it on the target): an authority rule with
    /// `violations = quarantine` covers it and the target owns some keys.
    pub(crate) fn quarantines(&self, policy: &ReplicationPolicy, topic: &str) -> bool {
        let local = policy.original_topic(topic);
        self.rules
            .iter()
            .find(|r| r.topics.matches(&local))
            .is_some_and(|r| r.quarantine && self.rank(&self.target).is_some())
    }
}

/// One source topic's judging: its rule, who wrote its records, where violations go.
pub(crate) struct TopicAuthority {
    rule: Arc<Rule>,
    /// The region that wrote the topic's records.
    pub(crate) origin: String,
    origin_rank: Option<Rank>,
    target_rank: Option<Rank>,
    /// The topic's name in the regions that write it.
    local_topic: String,
    source_cluster: String,
    target: String,
    remote: String,
    /// Where violations of keys the target owns go, under `violations = quarantine`.
    pub(crate) quarantine_topic: String,
    regions: Vec<String>,
    tally: ConflictTally,
}

/// A record judged a violation: what to write besides (or instead of) its copy.
pub(crate) struct Violation {
    /// Quarantined (true) or copied and reported.
    pub(crate) quarantined: bool,
    /// The owner's region alias.
    pub(crate) owner: String,
    /// The record for `strait.conflicts` (key: its id; value: the JSON).
    pub(crate) id: String,
    pub(crate) json: Vec<u8>,
    topic: String,
    outcome: Outcome,
    tally: ConflictTally,
}

impl Violation {
    /// Count it in `strait_conflicts_total`: once, when its writes are handed to the producer.
    pub(crate) fn count(&self) {
        self.tally.add(&self.topic, "authority", self.outcome);
    }
}

/// Where a judged record came from, for its violation record and headers.
pub(crate) struct At<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) timestamp: Option<i64>,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
}

impl TopicAuthority {
    /// What to do with a record of key `key`.
    pub(crate) fn decide(&self, key: Option<&[u8]>) -> Decision {
        self.rule.authority.decide(
            self.origin_rank,
            self.target_rank,
            self.rule.quarantine,
            key,
        )
    }

    /// The violation record of `at` under `decision` (None when it is no violation); the caller
    /// writes it, and counts it ([`Violation::count`]) once written.
    pub(crate) fn violation(
        &self,
        decision: Decision,
        at: &At<'_>,
        now_ms: i64,
    ) -> Option<Violation> {
        let owner = self
            .regions
            .get(usize::from(decision.violated_owner()?))?
            .clone();
        let quarantined = matches!(decision, Decision::Quarantine { .. });
        let outcome = if quarantined {
            Outcome::Quarantined
        } else {
            Outcome::Reported
        };
        let record = ConflictRecord {
            kind: Kind::AuthorityViolation,
            topic: self.local_topic.clone(),
            key: None,
            key_hex: None,
            rule: self.rule.name.clone(),
            strategy: "authority".into(),
            versions: vec![VersionRecord {
                region: self.origin.clone(),
                partition: at.partition,
                offset: at.offset,
                timestamp_ms: at.timestamp.unwrap_or(-1),
                value_digest: digest_text(digest(at.value)),
                visible_ms: None,
            }],
            certain: true,
            winner_certain: None,
            skew_reach_ms: None,
            outcome,
            winner: Some(owner.clone()),
            recorded_in: self.target.clone(),
            detected_at_ms: now_ms,
        }
        .with_key(at.key.unwrap_or_default());
        // Serializing plain strings and numbers cannot fail.
        let json = serde_json::to_vec(&record).unwrap_or_default();
        Some(Violation {
            quarantined,
            owner,
            id: record.id(),
            json,
            topic: self.local_topic.clone(),
            outcome,
            tally: self.tally.clone(),
        })
    }

    /// The headers of a quarantined record: its own (`original`), then strait's saying why and
    /// where it came from.
    pub(crate) fn headers(
        &self,
        original: Option<OwnedHeaders>,
        owner: &str,
        at: &At<'_>,
    ) -> OwnedHeaders {
        let (partition, offset) = (at.partition.to_string(), at.offset.to_string());
        let ours: [(&str, &str); 9] = [
            (VIOLATION_HEADER, "authority"),
            (RULE_HEADER, &self.rule.name),
            (OWNER_HEADER, owner),
            (ORIGIN_HEADER, &self.origin),
            (SOURCE_CLUSTER_HEADER, &self.source_cluster),
            (SOURCE_TOPIC_HEADER, at.topic),
            (SOURCE_PARTITION_HEADER, &partition),
            (SOURCE_OFFSET_HEADER, &offset),
            (TARGET_TOPIC_HEADER, &self.remote),
        ];
        let mut out = original.unwrap_or_else(|| OwnedHeaders::new_with_capacity(ours.len()));
        for (key, value) in ours {
            out = out.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use rdkafka::message::Headers;

    fn config(violations: &str) -> Config {
        Config::parse(
            &format!(
                "clusters = east, west, central\n\
                 east.bootstrap.servers = e:9092\nwest.bootstrap.servers = w:9092\n\
                 central.bootstrap.servers = c:9092\n\
                 east->west.enabled = true\nwest->east.enabled = true\n\
                 central->east.enabled = true\n\
                 strait.conflicts.rules = orders\n\
                 strait.conflicts.regions = east, west\n\
                 strait.conflicts.orders.topics = orders\n\
                 strait.conflicts.orders.strategy = authority\n\
                 strait.conflicts.orders.authority.east = US-.*\n\
                 strait.conflicts.orders.authority.west = EU-.*\n\
                 strait.conflicts.orders.violations = {violations}\n"
            ),
            "mm2.properties",
        )
        .unwrap()
    }

    fn topic(c: &Config, s: &str, t: &str, name: &str) -> Option<TopicAuthority> {
        let flow = c
            .flows
            .iter()
            .find(|f| f.source == s && f.target == t)
            .unwrap();
        let plan = AuthorityPlan::new(&c.conflicts, s, t, ConflictTally::default()).unwrap();
        plan.for_topic(&flow.policy, name, &flow.policy.remote_topic(name))
    }

    fn at<'a>(key: &'a [u8]) -> At<'a> {
        At {
            topic: "orders",
            partition: 2,
            offset: 10,
            timestamp: Some(1_700_000_000_000),
            key: Some(key),
            value: Some(b"CANCELLED"),
        }
    }

    #[test]
    fn a_violation_into_the_owner_is_quarantined_and_recorded_with_its_reasons() {
        let c = config("quarantine");
        let t = topic(&c, "west", "east", "orders").unwrap();
        assert_eq!(t.origin, "west");
        assert_eq!(t.quarantine_topic, "west.orders.quarantine");
        assert_eq!(t.decide(Some(b"EU-1")), Decision::Copy);
        let d = t.decide(Some(b"US-1"));
        assert_eq!(d, Decision::Quarantine { owner: 0 });
        let v = t.violation(d, &at(b"US-1"), 5).unwrap();
        assert!(t.tally.counts().is_empty(), "counted once written");
        v.count();
        assert!(v.quarantined);
        assert_eq!(v.owner, "east");
        assert_eq!(v.id, "v/orders/west:2:10");
        let r: ConflictRecord = serde_json::from_slice(&v.json).unwrap();
        assert_eq!(r.kind, Kind::AuthorityViolation);
        assert_eq!(r.outcome, Outcome::Quarantined);
        assert_eq!(r.winner.as_deref(), Some("east"));
        assert_eq!(r.recorded_in, "east");
        assert_eq!(r.key.as_deref(), Some("US-1"));
        assert_eq!(r.versions.len(), 1);
        assert_eq!(
            r.versions[0].value_digest,
            digest_text(digest(Some(b"CANCELLED")))
        );
        assert_eq!(
            t.tally.counts(),
            vec![("orders".to_string(), "authority", "quarantined", 1)]
        );

        let original = OwnedHeaders::new().insert(Header {
            key: "trace",
            value: Some(b"abc".as_slice()),
        });
        let h = t.headers(Some(original), &v.owner, &at(b"US-1"));
        let got: Vec<(String, String)> = h
            .iter()
            .map(|h| {
                (
                    h.key.to_string(),
                    String::from_utf8(h.value.unwrap().to_vec()).unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("trace", "abc"),
            ("strait.violation", "authority"),
            ("strait.rule", "orders"),
            ("strait.owner", "east"),
            ("strait.origin", "west"),
            ("strait.source.cluster", "west"),
            ("strait.source.topic", "orders"),
            ("strait.source.partition", "2"),
            ("strait.source.offset", "10"),
            ("strait.target.topic", "west.orders"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn report_mode_and_other_targets_copy_and_report() {
        let c = config("report");
        let t = topic(&c, "west", "east", "orders").unwrap();
        let d = t.decide(Some(b"US-1"));
        assert_eq!(d, Decision::CopyAndReport { owner: 0 });
        let v = t.violation(d, &at(b"US-1"), 5).unwrap();
        assert!(!v.quarantined);
        let r: ConflictRecord = serde_json::from_slice(&v.json).unwrap();
        assert_eq!(r.outcome, Outcome::Reported);
        assert!(t.violation(Decision::Copy, &at(b"US-1"), 5).is_none());
    }

    #[test]
    fn a_remote_topic_in_a_chain_was_written_upstream() {
        let c = config("quarantine");
        // central is no region of the rule: it owns nothing, its writes of owned keys violate.
        let t = topic(&c, "central", "east", "orders").unwrap();
        assert_eq!(t.origin, "central");
        assert_eq!(
            t.decide(Some(b"US-1")),
            Decision::Quarantine { owner: 0 },
            "into the owner"
        );
        // west's copy of east's topic, read on west by a flow to central: written in east.
        let plan =
            AuthorityPlan::new(&c.conflicts, "west", "central", ConflictTally::default()).unwrap();
        let policy = ReplicationPolicy::default_policy()
            .for_source("west")
            .with_target("central");
        let t = plan
            .for_topic(&policy, "east.orders", "west.east.orders")
            .unwrap();
        assert_eq!(t.origin, "east");
        assert_eq!(t.decide(Some(b"US-1")), Decision::Copy);
        assert_eq!(
            t.decide(Some(b"EU-1")),
            Decision::CopyAndReport { owner: 1 },
            "central owns nothing: copied and reported"
        );
        assert!(!plan.quarantines(&policy, "east.orders"));
        assert!(plan
            .for_topic(&policy, "payments", "west.payments")
            .is_none());
    }
}
