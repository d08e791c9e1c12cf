//! A drill on the user's own clusters, where the primary's loss is simulated: the drill stops its
//! own replication of the primary and its clients there, and the cluster itself is not touched.
//!
//! Everything the drill runs is narrowed to the drill's topic and group ([`drill_flow`]); its copy
//! flow is in a replication group of its own (`strait.drill-<id>.A->B`, never the `strait.A->B`
//! group a production `strait run` may be in); it takes no lag snapshots (they would replace the
//! production replicator's snapshot of the same flow); the failover moves the drill's group only
//! and leaves the active-region record alone; clean-up deletes what the drill created.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, TopicResult};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaErrorCode;
use tokio::time::error::Elapsed;
use tracing::{debug, warn};

use super::{end_offsets, exact, Created, Detection, Names, Plan, Regions, TIMEOUT};
use crate::checkpoint::{self, CheckpointSpec, RunningCheckpoints};
use crate::config::{Config, Flow, NameFilter};
use crate::drill::narration::{Kind, Narrator, Note, Say};
use crate::drill::report::RpoEstimate;
use crate::drill::DrillError;
use crate::failover::{self, FailoverError, FailoverReport};
use crate::kafka::{Admin, Endpoint};
use crate::monitor::collect::HeartbeatSource;
use crate::replicate::{self, FlowSpec, RunningFlow};
use crate::service::STOP_GRACE;
use crate::stop::CancellationToken;

/// How long the drill's replication may take to stop once the primary is "lost".
const FAIL_GRACE: Duration = Duration::from_secs(10);

pub(crate) struct SimulatedRegions {
    flow: Flow,
    primary: String,
    secondary: String,
    /// The drill's own replication group on the primary.
    replication_group: String,
    replication: Option<DrillReplication>,
}

impl SimulatedRegions {
    /// The drill on `config`'s `primary->secondary` flow.
    pub(crate) fn new(
        config: Config,
        plan: &Names<'_>,
        narrator: &Narrator,
    ) -> Result<Self, DrillError> {
        let (a, b) = (plan.primary, plan.secondary);
        let base = config.flow(a, b).cloned().ok_or_else(|| {
            DrillError::Usage(format!(
                "{}: the configuration replicates nothing from {a} to {b}",
                config.file
            ))
        })?;
        let flow = drill_flow(&base, plan.topic, plan.group);
        let replication_group = format!("strait.drill-{}.{a}->{b}", plan.id);
        narrator.note(Note::SimulatedFailure { a: a.into() });
        narrator.note(Note::SimulatedReplication {
            file: config.file.clone(),
            a: a.into(),
            b: b.into(),
            replication_group: replication_group.clone(),
        });
        narrator.note(Note::CleanUpLeavesInternalRecords {
            a: a.into(),
            b: b.into(),
        });
        if base.topic_filter_matches(plan.topic) {
            narrator.note(Note::FilterAcceptsDrillTopic {
                file: config.file.clone(),
                a: a.into(),
                b: b.into(),
                topic: plan.topic.into(),
            });
        }
        Ok(Self {
            flow,
            primary: a.into(),
            secondary: b.into(),
            replication_group,
            replication: None,
        })
    }

    async fn stop(&mut self, grace: Duration) {
        if let Some(r) = self.replication.take() {
            r.shutdown(grace).await;
        }
    }
}

impl Regions for SimulatedRegions {
    fn kind(&self) -> Kind {
        Kind::Simulated
    }

    fn flow(&self) -> &Flow {
        &self.flow
    }

    fn replication_factor(&self) -> i32 {
        -1
    }

    fn start_replication(&mut self, _: &Plan) {
        self.replication = Some(DrillReplication::start(&self.flow, &self.replication_group));
    }

    fn readiness(&self) -> Option<HeartbeatSource> {
        None
    }

    fn replication_failed(&self) -> Option<String> {
        self.replication
            .as_ref()
            .filter(|r| r.flow.is_finished())
            .map(|r| r.flow.name.clone())
    }

    /// Everything at the same instant, as an outage would: replication stops fetching from the
    /// primary while the producer may still have had records acknowledged.
    fn fail_primary(&mut self, _: &Narrator) {
        if let Some(r) = &self.replication {
            r.cancel.cancel();
        }
    }

    async fn failure_settled(&mut self) {
        self.stop(FAIL_GRACE).await;
    }

    fn detection(&self) -> Detection {
        Detection::copies_of(&self.flow)
    }

    async fn fail_over(
        &mut self,
        opts: &failover::Options,
        progress: &failover::Progress<'_>,
    ) -> Result<FailoverReport, FailoverError> {
        failover::move_groups_unplanned(&self.flow, opts, progress).await
    }

    /// Both clusters answer in a simulation: what the secondary lacks is read directly.
    async fn estimate_rpo(&self, plan: &Plan, _: &FailoverReport, _: &Narrator) -> RpoEstimate {
        let a = Admin::new(&self.flow.clients.source_admin, TIMEOUT).ok();
        let b = Admin::new(&self.flow.clients.target_admin, TIMEOUT).ok();
        let records = match (a, b) {
            (Some(a), Some(b)) => match tokio::join!(
                end_offsets(&a, &plan.topic, plan.partitions),
                end_offsets(&b, &plan.remote_topic, plan.partitions)
            ) {
                (Some(ea), Some(eb)) => Some((ea - eb).max(0) as u64),
                _ => None,
            },
            _ => None,
        };
        RpoEstimate {
            records,
            at_least: None,
            source: format!(
                "the drill topic's end offsets on {} minus its copies' on {}, read after the failover (a simulation \
                 leaves the primary readable; strait's lag snapshots are left to the production replicator)",
                self.primary, self.secondary
            ),
        }
    }

    /// The drill's replication of the primary stopped at the failure.
    fn after_failover(&mut self) {}

    async fn stop_replication(&mut self) {
        self.stop(STOP_GRACE).await;
    }

    async fn clean_up(&mut self, plan: &Plan, created: Created, narrator: &Narrator) {
        self.stop(FAIL_GRACE).await;
        narrator.say(Say::Deleting);
        let a_topics: Vec<String> = if created.topic {
            vec![plan.topic.clone()]
        } else {
            Vec::new()
        };
        let mut b_topics = Vec::new();
        // With an identity policy the copies are the topic itself, the drill's only if it
        // created the topic.
        if plan.remote_topic != plan.topic || created.topic {
            b_topics.push(plan.remote_topic.clone());
        }
        if created.local_on_secondary {
            b_topics.push(plan.topic.clone());
        }
        let mut left = delete(
            &self.flow.clients.source_admin,
            &self.primary,
            &a_topics,
            &[plan.group.clone(), self.replication_group.clone()],
        )
        .await;
        left.extend(
            delete(
                &self.flow.clients.target_admin,
                &self.secondary,
                &b_topics,
                std::slice::from_ref(&plan.group),
            )
            .await,
        );
        if !left.is_empty() {
            narrator.say(Say::LeftBehind(left.clone()));
            narrator.note(Note::LeftBehind(left));
        }
    }
}

/// The `primary->secondary` flow of a configuration, narrowed to the drill: only the drill topic
/// is replicated, only the drill group checkpointed and synced, heartbeats are not copied (the
/// production replicator does that) and ACLs are not synced.
pub(crate) fn drill_flow(base: &Flow, topic: &str, group: &str) -> Flow {
    let only = |name: &str| NameFilter::new(vec![exact(name)]).expect("an escaped name is a regex");
    let none = NameFilter::new(Vec::new()).expect("an empty filter");
    let mut f = base.clone();
    f.enabled = true;
    f.topics = only(topic);
    f.topics_exclude = none.clone();
    f.groups = only(group);
    f.groups_exclude = none;
    f.heartbeats_replication = false;
    f.intervals.sync_topic_acls = None;
    f
}

/// The drill's replication: the copy flow in its own group and the checkpoint job.
struct DrillReplication {
    flow: RunningFlow,
    checkpoints: Option<RunningCheckpoints>,
    cancel: CancellationToken,
}

impl DrillReplication {
    fn start(flow: &Flow, group: &str) -> Self {
        let mut spec = FlowSpec::from_config(flow);
        spec.group = Some(group.to_string());
        spec.mm2_positions = None;
        let cancel = CancellationToken::new();
        Self {
            flow: replicate::start(spec, cancel.child_token()),
            checkpoints: CheckpointSpec::from_config(flow)
                .map(|c| checkpoint::start(c, cancel.child_token())),
            cancel,
        }
    }

    async fn shutdown(self, grace: Duration) {
        self.cancel.cancel();
        let DrillReplication {
            flow, checkpoints, ..
        } = self;
        let joined = async {
            if let Err(e) = flow.join().await {
                warn!(error = %e, "the drill's replication ended with an error");
            }
            if let Some(c) = checkpoints {
                c.join().await;
            }
        };
        if tokio::time::timeout(grace, joined).await.is_err() {
            warn!("the drill's replication did not stop in time; moving on");
        }
    }
}

/// Delete `topics` and `groups` on a cluster; returns what could not be deleted.
async fn delete(ep: &Endpoint, alias: &str, topics: &[String], groups: &[String]) -> Vec<String> {
    let mut left = Vec::new();
    let client: AdminClient<DefaultClientContext> = match ep.admin_config().create() {
        Ok(c) => c,
        Err(e) => {
            let all: Vec<&str> = topics.iter().chain(groups).map(String::as_str).collect();
            return vec![format!("{} on {alias} ({e})", all.join(", "))];
        }
    };
    let opts = AdminOptions::new()
        .request_timeout(Some(TIMEOUT))
        .operation_timeout(Some(TIMEOUT));
    if !topics.is_empty() {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let answer = tokio::time::timeout(TIMEOUT * 2, client.delete_topics(&names, &opts)).await;
        // Never created (the drill stopped before replication started): fine.
        let absent = RDKafkaErrorCode::UnknownTopicOrPartition;
        left.extend(not_deleted("topic", alias, &names, answer, absent));
    }
    if !groups.is_empty() {
        let names: Vec<&str> = groups.iter().map(String::as_str).collect();
        let answer = tokio::time::timeout(TIMEOUT * 2, client.delete_groups(&names, &opts)).await;
        // A group that never committed anything there does not exist: fine.
        let absent = RDKafkaErrorCode::GroupIdNotFound;
        left.extend(not_deleted("group", alias, &names, answer, absent));
    }
    left
}

/// What of `names` (of `kind`, topic or group) a delete request did not delete, as the clean-up
/// says it; one that did not exist (`absent`) counts as deleted.
fn not_deleted(
    kind: &str,
    alias: &str,
    names: &[&str],
    // `GroupResult` is the same type: one name for both answers.
    answer: Result<KafkaResult<Vec<TopicResult>>, Elapsed>,
    absent: RDKafkaErrorCode,
) -> Vec<String> {
    match answer {
        Ok(Ok(results)) => results
            .into_iter()
            .filter_map(|r| match r {
                Ok(_) => None,
                Err((name, code)) if code == absent => {
                    debug!(kind, name = %name, "nothing to delete");
                    None
                }
                Err((name, e)) => Some(format!("{kind} {name} on {alias} ({e})")),
            })
            .collect(),
        Ok(Err(e)) => vec![format!("{kind}s {} on {alias} ({e})", names.join(", "))],
        Err(_) => vec![format!(
            "{kind}s {} on {alias} (no answer)",
            names.join(", ")
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drill_flow_keeps_settings_and_narrows_names() {
        let c = Config::parse(
            "clusters = a, b\na.bootstrap.servers = x:1\nb.bootstrap.servers = y:1\n\
             a->b.enabled = true\ntopics = .*\ngroups = .*\nemit.checkpoints.interval.seconds = 7\n\
             a->b.consumer.fetch.min.bytes = 10\n",
            "t.properties",
        )
        .unwrap();
        let base = c.flow("a", "b").unwrap();
        let f = drill_flow(base, "strait-drill-1", "strait-drill-1");
        assert!(f.should_replicate_topic("strait-drill-1"));
        assert!(!f.should_replicate_topic("orders"));
        assert!(
            !f.should_replicate_topic("heartbeats"),
            "heartbeats are production's"
        );
        assert!(!f.should_replicate_group("app"));
        assert!(f.should_replicate_group("strait-drill-1"));
        assert_eq!(f.intervals.emit_checkpoints, Some(Duration::from_secs(7)));
        assert_eq!(f.intervals.sync_topic_acls, None);
        assert_eq!(f.clients.source_consumer, base.clients.source_consumer);
        let mut spec = FlowSpec::from_config(&f);
        assert_eq!(spec.group_id(), "strait.a->b");
        spec.group = Some("strait.drill-1.a->b".into());
        assert_eq!(spec.group_id(), "strait.drill-1.a->b");
    }
}
