//! Checkpoints and group offset sync for one flow `S->T` (MM2-SPEC §4.4, §4.5): find the
//! consumer groups on S, translate their committed offsets, emit `Checkpoint` records to
//! `<S>.checkpoints.internal` on T, and, when `sync.group.offsets.enabled`, commit the translated
//! offsets into the same groups on T while nobody consumes there.
//!
//! An async task like every job beside the copy loop; stopped through its [`CancellationToken`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use crate::kafka::diagnose::Diagnosed;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::heartbeat::now_ms;
use crate::kafka::groups::{Groups, TopicPartition};
use crate::kafka::tail::TopicTail;
use crate::kafka::{Admin, ClientError, Endpoint, TopicSpec};
use crate::policy::ReplicationPolicy;
use crate::replicate::topics::effective_replication_factor;
use crate::replicate::NameMatcher;
use crate::stop::{or_cancel, pause, CancellationToken};
use crate::translate::checkpoints::CheckpointStore;
use crate::translate::group_sync::{plan_group_sync, GroupSyncDecision, TargetGroupState};
use crate::translate::Translator;
use crate::wire::Checkpoint;

/// The most offset index tombstones one round writes (a topic written by earlier releases may
/// hold a record per transaction): the rest wait for the next rounds.
const PRUNE_MAX_PER_ROUND: usize = 100_000;

/// Hand one record to the producer (`None`: a tombstone), waiting while its queue is full.
async fn send_index_record(
    producer: &ThreadedProducer<Diagnosed>,
    topic: &str,
    key: &[u8],
    value: Option<Vec<u8>>,
) -> Result<(), rdkafka::error::KafkaError> {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    loop {
        let mut rec = BaseRecord::<[u8], [u8]>::to(topic).partition(0).key(key);
        if let Some(v) = &value {
            rec = rec.payload(v);
        }
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Everything the checkpoint job of one flow needs.
#[derive(Clone)]
pub(crate) struct CheckpointSpec {
    pub source_alias: String,
    pub target_alias: String,
    pub policy: ReplicationPolicy,
    /// MM2's `shouldReplicateTopic` for this flow.
    pub topic_filter: NameMatcher,
    /// `groups` / `groups.exclude`.
    pub group_filter: NameMatcher,
    /// Source: consumer properties (group offsets) and admin properties (topics).
    pub source_consumer: Endpoint,
    pub source_admin: Endpoint,
    /// Target: consumer (reading internal topics, committing group offsets), producer, admin.
    pub target_consumer: Endpoint,
    pub target_producer: Endpoint,
    pub target_admin: Endpoint,
    pub checkpoints_topic: String,
    pub checkpoints_replication_factor: i32,
    pub index_topic: String,
    /// Replication factor for the index topic, should this job create it (that of the
    /// offset-syncs topic, as the copy flow does).
    pub index_replication_factor: i32,
    /// Where MM2 offset syncs are read from (cluster consumer properties, topic).
    pub offset_syncs: Option<(Endpoint, String)>,
    pub emit_interval: Duration,
    pub refresh_groups: Duration,
    pub sync_group_offsets: Option<Duration>,
    pub admin_timeout: Duration,
}

impl CheckpointSpec {
    /// The checkpoint job of a configured flow, if checkpoints are on for it.
    pub(crate) fn from_config(flow: &crate::config::Flow) -> Option<Self> {
        let emit_interval = flow.intervals.emit_checkpoints?;
        let f = Arc::new(flow.clone());
        let (f1, f2) = (f.clone(), f.clone());
        let syncs = &flow.internal_topics.offset_syncs;
        Some(Self {
            source_alias: flow.source.clone(),
            target_alias: flow.target.clone(),
            policy: flow.policy.clone(),
            topic_filter: Arc::new(move |t: &str| f1.should_replicate_topic(t)),
            group_filter: Arc::new(move |g: &str| {
                f2.should_replicate_group(g) && !crate::replicate::is_strait_group(g)
            }),
            source_consumer: flow.clients.source_consumer.clone(),
            source_admin: flow.clients.source_admin.clone(),
            target_consumer: flow.clients.target_consumer.clone(),
            target_producer: flow.clients.target_producer.clone(),
            target_admin: flow.clients.target_admin.clone(),
            checkpoints_topic: flow.internal_topics.checkpoints.name.clone(),
            checkpoints_replication_factor: i32::from(flow.checkpoints_topic_replication_factor),
            index_topic: crate::translate::index_topic(&flow.source),
            index_replication_factor: i32::from(flow.offset_syncs_topic_replication_factor),
            offset_syncs: flow
                .emit_offset_syncs
                .then(|| (flow.offset_syncs_reader().clone(), syncs.name.clone())),
            emit_interval,
            refresh_groups: flow
                .intervals
                .refresh_groups
                .unwrap_or(Duration::from_secs(600)),
            sync_group_offsets: flow.intervals.sync_group_offsets,
            admin_timeout: flow.admin_timeout,
        })
    }

    pub(crate) fn name(&self) -> String {
        crate::config::flow_name(&self.source_alias, &self.target_alias)
    }
}

/// Counters the job exposes.
#[derive(Debug, Default)]
pub struct CheckpointStats {
    pub checkpoints: AtomicU64,
    pub group_offsets_synced: AtomicU64,
    pub groups: AtomicU64,
    /// Offset index records deleted (tombstoned) because the target no longer holds their
    /// copies.
    pub index_records_pruned: AtomicU64,
    /// Epoch ms of the last completed emission round (0: none yet).
    pub last_round_ms: AtomicU64,
}

/// A running checkpoint job.
pub(crate) struct RunningCheckpoints {
    /// The flow, `S->T`.
    pub name: String,
    pub stats: Arc<CheckpointStats>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningCheckpoints {
    /// Wait for the job to end (after its token was cancelled; it flushes what it produced).
    pub(crate) async fn join(self) {
        let _ = self.task.await;
    }
}

/// Start the job on the current runtime; it runs until `cancel` fires.
pub(crate) fn start(spec: CheckpointSpec, cancel: CancellationToken) -> RunningCheckpoints {
    let stats = Arc::new(CheckpointStats::default());
    let name = spec.name();
    let task = tokio::spawn(job(spec, cancel, stats.clone()));
    RunningCheckpoints { name, stats, task }
}

async fn job(spec: CheckpointSpec, cancel: CancellationToken, stats: Arc<CheckpointStats>) {
    let flow = spec.name();
    let mut backoff = Backoff::standard();
    // Setup: the checkpoints topic, and the store of what was emitted before (so checkpoints
    // never go backwards across restarts).
    let (mut state, producer) = loop {
        match or_cancel(&cancel, setup(&spec)).await {
            None => return,
            Some(Ok(s)) => break s,
            Some(Err(e)) => {
                warn!(flow = %flow, error = %e, "checkpoints cannot start yet; retrying");
                if !backoff.wait(&cancel).await {
                    return;
                }
            }
        }
    };
    info!(flow = %flow, topic = %spec.checkpoints_topic, interval_ms = spec.emit_interval.as_millis() as u64, group_sync = spec.sync_group_offsets.is_some(), "emitting checkpoints");
    let mut next_emit = Instant::now();
    let mut next_groups = Instant::now();
    // MM2 syncs group offsets for the first time one interval after start.
    let mut next_sync = spec.sync_group_offsets.map(|d| Instant::now() + d);
    let mut groups: BTreeSet<String> = BTreeSet::new();
    let round = async {
        loop {
            let now = Instant::now();
            if now >= next_groups {
                match state.discover_groups(&spec).await {
                    Ok(g) => {
                        if g != groups {
                            info!(flow = %flow, groups = ?g, "checkpointing groups");
                        }
                        groups = g;
                        stats.groups.store(groups.len() as u64, Ordering::Relaxed);
                        next_groups = now + spec.refresh_groups;
                    }
                    Err(e) => {
                        warn!(flow = %flow, error = %e, "group discovery failed; retrying");
                        next_groups = now + Duration::from_secs(5).min(spec.refresh_groups);
                    }
                }
            }
            if now >= next_emit {
                next_emit = now + spec.emit_interval;
                match state.emit(&spec, &groups, &producer).await {
                    Ok(n) => {
                        stats.checkpoints.fetch_add(n as u64, Ordering::Relaxed);
                        stats
                            .last_round_ms
                            .store(now_ms() as u64, Ordering::Relaxed);
                        // The index was just read to its end: prune what the target deleted.
                        let pruned = state.prune_index(&spec, &producer).await;
                        stats
                            .index_records_pruned
                            .fetch_add(pruned as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        warn!(flow = %flow, error = %e, "checkpoint round failed; retried at the next interval")
                    }
                }
            }
            if let (Some(at), Some(every)) = (next_sync, spec.sync_group_offsets) {
                if now >= at {
                    next_sync = Some(now + every);
                    let n = state.sync_group_offsets(&spec).await;
                    stats
                        .group_offsets_synced
                        .fetch_add(n as u64, Ordering::Relaxed);
                }
            }
            let wake = [Some(next_emit), Some(next_groups), next_sync]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(next_emit);
            if !pause(&cancel, wake.saturating_duration_since(Instant::now())).await {
                break;
            }
        }
    };
    // A stop during a round ends it where it is: what was sent is flushed below.
    or_cancel(&cancel, round).await;
    let _ = crate::kafka::blocking(move || producer.flush(Duration::from_secs(2))).await;
}

struct State {
    store: CheckpointStore,
    translator: Translator,
    source_groups: Groups,
    target_groups: Groups,
    source_admin: Admin,
    target_admin: Admin,
    /// Whether the index topic's `segment.ms` was checked (once per job).
    index_topic_checked: bool,
    /// Replicated source partitions, from the last discovery.
    partitions: Vec<TopicPartition>,
}

async fn setup(spec: &CheckpointSpec) -> Result<(State, ThreadedProducer<Diagnosed>), ClientError> {
    let target_admin = Admin::new(&spec.target_admin, spec.admin_timeout)?;
    let brokers = target_admin.broker_count().await?;
    let rf = effective_replication_factor(spec.checkpoints_replication_factor, brokers);
    let index_rf = effective_replication_factor(spec.index_replication_factor, brokers);
    target_admin
        .create_topics(&[
            TopicSpec::new(&spec.checkpoints_topic, 1, rf).config("cleanup.policy", "compact"),
            crate::translate::index_topic_spec(&spec.index_topic, index_rf),
        ])
        .await?;
    let store = TopicTail::new(&spec.target_consumer, &spec.checkpoints_topic)
        .fold(
            spec.admin_timeout,
            CheckpointStore::new(),
            |store, r| match Checkpoint::decode(r.key, r.value) {
                Ok(cp) => store.record(cp),
                Err(e) => {
                    debug!(offset = r.offset, error = %e, "skipping an undecodable checkpoint")
                }
            },
        )
        .await?;
    let mut translator = Translator::new(
        &spec.target_consumer,
        &spec.index_topic,
        spec.offset_syncs.as_ref().map(|(ep, t)| (ep, t.as_str())),
    );
    translator.refresh(spec.admin_timeout).await?;
    let producer = spec
        .target_producer
        .producer_config()
        .create_with_context(spec.target_producer.context())
        .map_err(|e| {
            ClientError::from_kafka(&spec.target_producer, "create the checkpoint producer", e)
        })?;
    Ok((
        State {
            store,
            translator,
            source_groups: Groups::new(&spec.source_consumer, spec.admin_timeout),
            target_groups: Groups::new(&spec.target_consumer, spec.admin_timeout),
            source_admin: Admin::new(&spec.source_admin, spec.admin_timeout)?,
            target_admin,
            index_topic_checked: false,
            partitions: Vec::new(),
        },
        producer,
    ))
}

impl State {
    /// The groups to checkpoint: those that pass the group filter and have committed an offset
    /// on a replicated topic (MM2's rule).
    async fn discover_groups(
        &mut self,
        spec: &CheckpointSpec,
    ) -> Result<BTreeSet<String>, ClientError> {
        let topics = self.source_admin.topics(None).await?;
        self.partitions = topics
            .iter()
            .filter(|t| (spec.topic_filter)(&t.name))
            .flat_map(|t| (0..t.partitions).map(move |p| (t.name.clone(), p)))
            .collect();
        let listed = self.source_groups.list(None).await?;
        let mut out = BTreeSet::new();
        for g in listed {
            if !(spec.group_filter)(&g.name) {
                continue;
            }
            if !self
                .source_groups
                .committed(&g.name, &self.partitions)
                .await?
                .is_empty()
            {
                out.insert(g.name);
            }
        }
        Ok(out)
    }

    /// One emission round: translate every group's committed offsets and emit the checkpoints
    /// that move forward.
    async fn emit(
        &mut self,
        spec: &CheckpointSpec,
        groups: &BTreeSet<String>,
        producer: &ThreadedProducer<Diagnosed>,
    ) -> Result<usize, ClientError> {
        self.translator.refresh(spec.admin_timeout).await?;
        let mut emitted = 0;
        for group in groups {
            let listed_at = now_ms();
            let upstream = self
                .source_groups
                .committed(group, &self.partitions)
                .await?;
            let translator = std::cell::RefCell::new(&mut self.translator);
            let cps = self.store.checkpoints_for_group(
                group,
                &upstream,
                |t, p, g| translator.borrow_mut().translate(t, p, g).downstream,
                |t| spec.policy.remote_topic(t),
                |t| (spec.topic_filter)(t),
            );
            for cp in cps {
                let (k, v) = (cp.key(), cp.value());
                let rec = BaseRecord::to(&spec.checkpoints_topic)
                    .partition(0)
                    .key(&k)
                    .payload(&v)
                    .timestamp(listed_at);
                match producer.send(rec) {
                    Ok(()) => {
                        debug!(group = %cp.group, topic = %cp.topic, partition = cp.partition, upstream = cp.upstream_offset, downstream = cp.downstream_offset, "checkpoint");
                        self.store.record(cp);
                        emitted += 1;
                    }
                    Err((e, _)) => {
                        warn!(flow = %spec.name(), error = %e, "checkpoint not sent; retried at the next interval")
                    }
                }
            }
        }
        Ok(emitted)
    }

    /// Delete the offset index records whose copies the target no longer holds (retention,
    /// `delete-records`), so that the index topic and every reader's memory follow what the
    /// target keeps. Per partition with more than one record: its remote partition's log start,
    /// then a floor and tombstones ([`crate::translate::OffsetIndex::prune`]). This job prunes,
    /// not the copy loop: it reads every record of the index (the copy loop knows only the
    /// blocks it wrote since it started), and the newest record of a partition, the only one a
    /// copy loop may still rewrite, is never deleted. Returns the tombstones written; a failure
    /// is logged and retried at the next round.
    async fn prune_index(
        &mut self,
        spec: &CheckpointSpec,
        producer: &ThreadedProducer<Diagnosed>,
    ) -> usize {
        let flow = spec.name();
        if !self.index_topic_checked {
            self.index_topic_checked = self.check_index_topic(spec).await;
        }
        let mut written = 0;
        for (topic, partition) in self.translator.index().prunable_partitions() {
            if written >= PRUNE_MAX_PER_ROUND {
                break;
            }
            let remote = spec.policy.remote_topic(&topic);
            let log_start = match self.target_admin.watermarks(&remote, partition).await {
                Ok((lo, _)) => lo,
                Err(e) => {
                    warn!(flow = %flow, cluster = %spec.target_alias, topic = %remote, partition, error = %e, "cannot read where the remote partition starts; its offset index records are pruned at a later round");
                    continue;
                }
            };
            let Some(plan) = self.translator.index().prune(&topic, partition, log_start) else {
                continue;
            };
            // The floor first: a reader that sees a tombstone already drops what it covered.
            let floor = (plan.floor.key(), Some(plan.floor.value()));
            let records =
                std::iter::once(floor).chain(plan.tombstones.iter().map(|k| (k.encode(), None)));
            for (key, value) in records {
                if let Err(e) = send_index_record(producer, &spec.index_topic, &key, value).await {
                    warn!(flow = %flow, cluster = %spec.target_alias, topic = %spec.index_topic, error = %e, "offset index pruning stopped; retried at the next round");
                    return written;
                }
            }
            written += plan.tombstones.len();
            debug!(flow = %flow, topic = %remote, partition, log_start, records = plan.tombstones.len(), "offset index records below the target's log start deleted");
        }
        written
    }

    /// Give an index topic created by an earlier release the `segment.ms` strait creates it
    /// with (unless someone set one), so that compaction reaches the versions of rewritten
    /// blocks. Whether it is done (or need not be).
    async fn check_index_topic(&self, spec: &CheckpointSpec) -> bool {
        let topic = &spec.index_topic;
        let entries = match self.target_admin.topic_config_entries(topic).await {
            Ok(e) => e,
            Err(e) => {
                debug!(flow = %spec.name(), topic = %topic, error = %e, "index topic configs not read; checked again at the next round");
                return false;
            }
        };
        // Only a value the topic inherits is replaced (Tansu lists only what was set, without
        // a source: left alone).
        use crate::kafka::ConfigSource;
        let inherited = entries.iter().any(|e| {
            e.name == "segment.ms"
                && !matches!(e.source, ConfigSource::DynamicTopic | ConfigSource::Unknown)
        });
        if !inherited {
            return true;
        }
        let op = crate::kafka::AlterOp::Set {
            name: "segment.ms".into(),
            value: crate::translate::INDEX_SEGMENT_MS.into(),
        };
        if let Err(e) = self.target_admin.alter_topic_configs(topic, &[op]).await {
            warn!(flow = %spec.name(), cluster = %spec.target_alias, topic = %topic, error = %e, "cannot set segment.ms on the offset index topic: compaction keeps every version of its newest blocks until a segment rolls");
        }
        true
    }

    /// Commit the latest checkpoints into the same groups on the target, where nobody consumes
    /// and never backwards. Returns the number of partitions written.
    async fn sync_group_offsets(&mut self, spec: &CheckpointSpec) -> usize {
        let mut written = 0;
        for group in self
            .store
            .groups()
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>()
        {
            match self.sync_group(spec, &group).await {
                Ok(n) => written += n,
                Err(e) => {
                    warn!(flow = %spec.name(), group = %group, error = %e, "group offset sync failed; retried at the next interval")
                }
            }
        }
        written
    }

    /// Commit one group's latest checkpoints on the target, if nobody consumes there.
    async fn sync_group(
        &mut self,
        spec: &CheckpointSpec,
        group: &str,
    ) -> Result<usize, ClientError> {
        let translated = self.store.translated_offsets(group);
        let listing = self.target_groups.list(Some(group)).await?;
        let state = match listing.first() {
            Some(g) => TargetGroupState::from_state_name(&g.state, g.members),
            None => TargetGroupState::NonExistent,
        };
        let tps: Vec<TopicPartition> = translated.keys().cloned().collect();
        let current = self.target_groups.committed(group, &tps).await?;
        let target: BTreeMap<TopicPartition, Option<i64>> = current
            .into_iter()
            .map(|(tp, c)| (tp, Some(c.offset)))
            .collect();
        match plan_group_sync(&state, &target, &translated) {
            GroupSyncDecision::GroupActive { state, members } => {
                debug!(flow = %spec.name(), group = %group, state = %state, members, "group is active on the target; its offsets are left alone");
                Ok(0)
            }
            GroupSyncDecision::Write(w) => {
                let n = w.offsets.len();
                self.target_groups.commit(group, &w.offsets).await?;
                if n > 0 {
                    debug!(flow = %spec.name(), group = %group, partitions = n, state = ?state, "group offsets synced to the target");
                }
                Ok(n)
            }
        }
    }
}
