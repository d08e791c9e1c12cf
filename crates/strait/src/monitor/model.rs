//! The lag model: what `strait status`, `/api/status`, `/metrics` and the dashboard show, and
//! the verdicts, as plain data. Computing it from the clusters is `collect`'s job; deciding
//! what it means is here, without I/O.
//!
//! The field names are the documented `strait status --json` schema (README).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a flow is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// The clusters answer, heartbeats are fresh and the lag is within the threshold.
    Ok,
    /// Lag in seconds over the threshold (`--lag-threshold`).
    Lagging,
    /// A cluster did not answer or refused strait, or heartbeats are stale or missing.
    Broken,
}

impl Verdict {
    /// `OK`, `LAGGING` or `BROKEN`, as the table and `--json` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Lagging => "LAGGING",
            Verdict::Broken => "BROKEN",
        }
    }

    /// `strait status`'s exit code: 0 all OK, 1 some LAGGING, 2 some BROKEN.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Ok => 0,
            Verdict::Lagging => 1,
            Verdict::Broken => 2,
        }
    }
}

/// One replicated partition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartitionLag {
    /// The topic on the source.
    pub topic: String,
    /// The partition number.
    pub partition: i32,
    /// Its copy's name on the target, as the flow's replication policy names it.
    pub remote_topic: String,
    /// The source partition's end offset (the next offset to be written).
    pub source_end: i64,
    /// The next source offset the target lacks: where the process running the flow knows it
    /// (`/api/status`, or its lag snapshot of the last few seconds), what the target
    /// acknowledged; otherwise the flow's committed offset.
    pub replicated: i64,
    /// The flow's committed offset on the source (or the start of the partition when it never
    /// committed): where a restart resumes, a second or so behind `replicated`.
    #[serde(default)]
    pub committed: i64,
    /// Records the target lacks: `source_end - replicated`.
    pub lag_records: i64,
    /// Now minus the source timestamp of the oldest record not replicated yet; 0 when caught up.
    pub lag_seconds: f64,
}

/// Where a flow's `replicated` positions come from: the best evidence of what the target holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicatedFrom {
    /// The process serving `/api/status` runs the flow: what the target acknowledged, for the
    /// partitions it owns (commits for the others).
    Process,
    /// The flow's lag snapshot, written every second by the `strait run` that runs it, when it
    /// is at most 10 s old.
    Snapshot,
    /// The flow's committed offsets (no process said more): a second or so behind.
    Commits,
}

impl ReplicatedFrom {
    fn commits() -> Self {
        ReplicatedFrom::Commits
    }
}

/// How a flow copies records: a closed set, as `check`, `status` and the dashboard say it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// Commits after the target acknowledged: a crash or a rebalance copies some records again.
    #[default]
    AtLeastOnce,
    /// Records, index and positions in one transaction on the target (`read_committed`
    /// readers see each record once).
    ExactlyOnce,
}

impl Delivery {
    /// What a flow configured so does.
    pub fn of(flow: &crate::config::Flow) -> Self {
        if flow.exactly_once.is_some() {
            Delivery::ExactlyOnce
        } else {
            Delivery::AtLeastOnce
        }
    }

    /// As written in `--json` and on the dashboard.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::AtLeastOnce => "at-least-once",
            Delivery::ExactlyOnce => "exactly-once",
        }
    }
}

/// One flow `S->T`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowStatus {
    /// The source cluster's alias (S).
    pub source: String,
    /// The target cluster's alias (T).
    pub target: String,
    /// How the flow is doing; `reasons` says why when not OK.
    pub verdict: Verdict,
    /// Why the verdict is not OK (empty when OK).
    pub reasons: Vec<String>,
    /// Topics on the source the flow replicates.
    pub topics: usize,
    /// Partitions of those topics.
    pub partitions: usize,
    /// Whether the source could be read: when false, the lag figures below are unknown (0).
    pub lag_known: bool,
    /// Records not replicated yet, summed over every partition.
    pub lag_records: i64,
    /// The largest lag in seconds of any partition.
    pub lag_seconds: f64,
    /// Age of the newest heartbeat that crossed this flow (see `heartbeat_topic`), if any.
    pub heartbeat_age_seconds: Option<f64>,
    /// Where that heartbeat was read: `us-east.heartbeats` on the target (heartbeats the
    /// reverse pair emitted on S, replicated by this flow), or `heartbeats` on the target.
    pub heartbeat_topic: Option<String>,
    /// Age of the newest checkpoint record of this flow, if any.
    pub checkpoint_age_seconds: Option<f64>,
    /// Whether this flow's consumer groups were collected (not when a cluster was unreachable,
    /// or with `--no-groups`): when false, `groups` says nothing about this flow.
    pub groups_known: bool,
    /// The lag of each replicated partition (empty when the source could not be read).
    pub partition_lags: Vec<PartitionLag>,
    /// Where the partitions' `replicated` positions come from.
    #[serde(default = "ReplicatedFrom::commits")]
    pub replicated_from: ReplicatedFrom,
    /// How the flow copies: at least once, or exactly once (transactions on the target).
    #[serde(default)]
    pub delivery: Delivery,
    /// How old those positions were when collected (0 for commits, read now); the lag in seconds
    /// is as of then.
    #[serde(default)]
    pub replicated_age_seconds: f64,
    /// What the process serving `/api/status` sees of the flow it runs (absent from
    /// `strait status`, which reads only the clusters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<crate::replicate::FlowProcess>,
}

/// One partition of a consumer group, on both sides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupPartition {
    /// The topic on the source.
    pub topic: String,
    /// The partition number.
    pub partition: i32,
    /// Its copy's name on the target.
    pub remote_topic: String,
    /// The group's committed offset on the source.
    pub source_committed: i64,
    /// The source partition's end offset.
    pub source_end: i64,
    /// Records the group has not read on the source: `source_end - source_committed`.
    pub source_lag: i64,
    /// Where the group would resume on the target (exact translation), if known.
    pub translated: Option<i64>,
    /// The group's committed offset on the remote topic on the target; `None` when it has none.
    pub target_committed: Option<i64>,
    /// The remote topic's end offset on the target; `None` when it could not be read.
    pub target_end: Option<i64>,
    /// Records the group has not read on the target, from its committed offset there.
    pub target_lag: Option<i64>,
}

/// One consumer group of one flow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// The consumer group, named the same on both clusters.
    pub group: String,
    /// The flow's source cluster, where the group consumes.
    pub source: String,
    /// The flow's target cluster.
    pub target: String,
    /// Records the group has not read on the source, summed over its partitions.
    pub source_lag: i64,
    /// The same on the target; `None` when any partition's is unknown.
    pub target_lag: Option<i64>,
    /// Each partition the group has committed on the source, among those the flow replicates.
    pub partitions: Vec<GroupPartition>,
}

/// Everything, at one moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Epoch milliseconds when collected.
    pub generated_at_ms: i64,
    /// The worst flow verdict.
    pub verdict: Verdict,
    /// Lag in seconds above which a flow is LAGGING (`--lag-threshold`).
    pub lag_threshold_seconds: f64,
    /// Every enabled flow.
    pub flows: Vec<FlowStatus>,
    /// The groups each flow replicates, for the flows whose groups could be read.
    pub groups: Vec<GroupStatus>,
    /// Per pair with a recorded failover or failback, the region active now (the newest
    /// record read from either cluster).
    pub active_regions: Vec<crate::failover::active::ActiveRegion>,
    /// Whether each cluster answers, as the probes of the process serving `/api/status` see it
    /// (absent from `strait status`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<crate::reach::ClusterReach>,
    /// The clock skew between each pair of regions measured from heartbeats both ways (with
    /// `strait.conflicts.rules` set; see `conflicts::clock`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clock_skews: Vec<crate::conflicts::clock::RegionSkew>,
}

impl Status {
    /// The worst verdict of `flows`; OK when there are none.
    pub fn worst(flows: &[FlowStatus]) -> Verdict {
        flows.iter().map(|f| f.verdict).max().unwrap_or(Verdict::Ok)
    }
}

/// The bound after which heartbeats count as stale: three intervals and 10 s of slack.
pub(crate) fn heartbeat_stale_after(interval: Duration) -> Duration {
    interval * 3 + Duration::from_secs(10)
}

/// What is known about a flow when judging it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Evidence {
    /// A cluster that could not be read, with the reason (names cluster and address).
    pub unreachable: Vec<String>,
    pub lag_seconds: f64,
    /// `None`: no heartbeat seen.
    pub heartbeat_age: Option<Duration>,
    /// The heartbeat interval, when heartbeats are expected for this flow.
    pub heartbeat_interval: Option<Duration>,
}

/// The verdict and its reasons: BROKEN when a cluster is unreachable or heartbeats are stale
/// (or missing where expected), LAGGING when the lag in seconds is over the threshold.
pub(crate) fn judge(e: &Evidence, lag_threshold: Duration) -> (Verdict, Vec<String>) {
    let mut reasons = Vec::new();
    let mut verdict = Verdict::Ok;
    for u in &e.unreachable {
        reasons.push(u.clone());
        verdict = Verdict::Broken;
    }
    if let Some(interval) = e.heartbeat_interval {
        let bound = heartbeat_stale_after(interval);
        match e.heartbeat_age {
            None if e.unreachable.is_empty() => {
                reasons.push("no heartbeat has crossed this flow".to_string());
                verdict = Verdict::Broken;
            }
            Some(age) if age > bound => {
                reasons.push(format!(
                    "heartbeats stale: newest is {:.0}s old (limit {:.0}s)",
                    age.as_secs_f64(),
                    bound.as_secs_f64()
                ));
                verdict = Verdict::Broken;
            }
            _ => {}
        }
    }
    if e.lag_seconds > lag_threshold.as_secs_f64() {
        reasons.push(format!(
            "lag {:.0}s over the {:.0}s threshold",
            e.lag_seconds,
            lag_threshold.as_secs_f64()
        ));
        verdict = verdict.max(Verdict::Lagging);
    }
    (verdict, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A status with every verdict, a group and an active region: its JSON is the contract of
    /// `strait status --json` and `/api/status` (`testdata/status.json`; regenerate with
    /// `STRAIT_UPDATE_GOLDEN=1` only for an intended change of the documented format).
    #[test]
    fn json_matches_the_golden_file() {
        let flow = |source: &str, verdict: Verdict, reasons: &[&str]| FlowStatus {
            source: source.into(),
            target: "us-west".into(),
            verdict,
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
            topics: 1,
            partitions: 1,
            lag_known: verdict != Verdict::Broken,
            lag_records: 5,
            lag_seconds: 1.5,
            heartbeat_age_seconds: Some(0.8),
            heartbeat_topic: Some(format!("{source}.heartbeats")),
            checkpoint_age_seconds: None,
            groups_known: verdict == Verdict::Ok,
            replicated_from: ReplicatedFrom::Snapshot,
            delivery: Delivery::AtLeastOnce,
            replicated_age_seconds: 0.8,
            partition_lags: vec![PartitionLag {
                topic: "orders".into(),
                partition: 0,
                remote_topic: format!("{source}.orders"),
                source_end: 105,
                replicated: 100,
                committed: 98,
                lag_records: 5,
                lag_seconds: 1.5,
            }],
            process: None,
        };
        let mut flows = vec![
            flow("us-east", Verdict::Ok, &[]),
            flow("eu", Verdict::Lagging, &["lag 40 s over 30 s"]),
            flow("ap", Verdict::Broken, &["cluster ap: unreachable"]),
        ];
        // As `/api/status` completes it: what the process running the flow sees.
        flows[2].process = Some(crate::replicate::FlowProcess {
            condition: crate::replicate::Condition::Waiting,
            reason: Some("the target us-west (w:9092) has acknowledged no record for 12s; 40 records wait (the source is paused when the producer's queue is full)".into()),
            problem: Some(crate::replicate::Problem {
                class: crate::replicate::ErrorClass::Unreachable,
                message: "cluster ap (ap:9092): BrokerTransportFailure".into(),
                since_ms: 1_714_564_790_000,
            }),
            errors: [(crate::replicate::ErrorClass::Unreachable, 4)].into(),
            records_skipped: [(crate::replicate::SkipReason::Retention, 150)].into(),
            stopped_partitions: vec![crate::replicate::StoppedPartition {
                topic: "orders".into(),
                partition: 0,
                offset: 1234,
                reason: "record orders-0@1234 is 2000140 bytes, over the 1048588 bytes (max.message.bytes) ap.orders accepts on us-west: orders-0 stops there; raise max.message.bytes of ap.orders on us-west (or of orders on ap, which strait copies) and restart strait".into(),
            }],
            assigned_partitions: 1,
        });
        let status = Status {
            generated_at_ms: 1_714_564_800_000,
            verdict: Status::worst(&flows),
            lag_threshold_seconds: 30.0,
            flows,
            groups: vec![GroupStatus {
                group: "app".into(),
                source: "us-east".into(),
                target: "us-west".into(),
                source_lag: 3,
                target_lag: None,
                partitions: vec![GroupPartition {
                    topic: "orders".into(),
                    partition: 0,
                    remote_topic: "us-east.orders".into(),
                    source_committed: 102,
                    source_end: 105,
                    source_lag: 3,
                    translated: Some(102),
                    target_committed: None,
                    target_end: Some(100),
                    target_lag: None,
                }],
            }],
            active_regions: vec![crate::failover::active::ActiveRegion {
                pair: ["us-east".into(), "us-west".into()],
                active: "us-west".into(),
                version: 2,
                changed_at_ms: 1_714_564_700_000,
                reason: "failover from us-east".into(),
            }],
            clusters: vec![crate::reach::ClusterReach {
                cluster: "ap".into(),
                address: "ap:9092".into(),
                reach: crate::reach::Reach::Down,
                since_ms: 1_714_564_790_000,
                failed_probes: 10,
                error: Some(
                    "ap:9092/bootstrap: Connect to ipv4#10.0.0.9:9092 failed: Connection refused"
                        .into(),
                ),
                answered_at_ms: Some(1_714_564_789_000),
                failing_since_ms: Some(1_714_564_790_500),
            }],
            clock_skews: vec![crate::conflicts::clock::RegionSkew {
                a: "us-east".into(),
                b: "us-west".into(),
                offset_ms: -120,
                bound_ms: 35,
                measured_at_ms: 1_714_564_795_000,
            }],
        };
        let json = serde_json::to_string_pretty(&status).unwrap() + "\n";
        crate::text::assert_golden("src/monitor/testdata/status.json", &json);
        assert_eq!(status.verdict, Verdict::Broken);
        assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), status);
    }

    const T: Duration = Duration::from_secs(30);

    #[test]
    fn healthy_flow_is_ok() {
        let e = Evidence {
            heartbeat_age: Some(Duration::from_secs(1)),
            heartbeat_interval: Some(Duration::from_secs(1)),
            lag_seconds: 2.0,
            ..Default::default()
        };
        assert_eq!(judge(&e, T), (Verdict::Ok, vec![]));
    }

    #[test]
    fn unreachable_cluster_is_broken_with_its_reason() {
        let e = Evidence {
            unreachable: vec!["cluster us-west (127.0.0.1:1): timed out".into()],
            heartbeat_interval: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        let (v, r) = judge(&e, T);
        assert_eq!(v, Verdict::Broken);
        assert_eq!(
            r,
            vec!["cluster us-west (127.0.0.1:1): timed out".to_string()]
        );
    }

    #[test]
    fn stale_heartbeats_are_broken_after_three_intervals_and_ten_seconds() {
        let mut e = Evidence {
            heartbeat_interval: Some(Duration::from_secs(5)),
            heartbeat_age: Some(Duration::from_secs(25)),
            ..Default::default()
        };
        assert_eq!(judge(&e, T).0, Verdict::Ok);
        e.heartbeat_age = Some(Duration::from_secs(26));
        assert_eq!(judge(&e, T).0, Verdict::Broken);
        e.heartbeat_age = None;
        assert_eq!(judge(&e, T).0, Verdict::Broken);
        e.heartbeat_interval = None; // heartbeats not expected
        assert_eq!(judge(&e, T).0, Verdict::Ok);
    }

    #[test]
    fn lag_over_threshold_is_lagging() {
        let e = Evidence {
            lag_seconds: 31.0,
            ..Default::default()
        };
        assert_eq!(judge(&e, T).0, Verdict::Lagging);
        assert_eq!(Verdict::Lagging.exit_code(), 1);
        assert_eq!(Verdict::Broken.exit_code(), 2);
    }

    proptest! {
        #[test]
        fn broken_always_wins_and_ok_has_no_reason(
            unreachable in proptest::bool::ANY,
            lag in 0.0f64..100.0,
            age in proptest::option::of(0u64..100),
            interval in proptest::option::of(1u64..20),
        ) {
            let e = Evidence {
                unreachable: if unreachable { vec!["x".into()] } else { vec![] },
                lag_seconds: lag,
                heartbeat_age: age.map(Duration::from_secs),
                heartbeat_interval: interval.map(Duration::from_secs),
            };
            let (v, r) = judge(&e, T);
            if unreachable { prop_assert_eq!(v, Verdict::Broken); }
            prop_assert_eq!(v == Verdict::Ok, r.is_empty());
            if lag > 30.0 { prop_assert!(v >= Verdict::Lagging); }
        }
    }
}
