//! Checkpoints and group offset sync for one flow `S->T` (MM2-SPEC §4.4, §4.5): find the
//! consumer groups on S, translate their committed offsets, emit `Checkpoint` records to
//! `<S>.checkpoints.internal` on T, and, when `sync.group.offsets.enabled`, commit the translated
//! offsets into the same groups on T while nobody consumes there.
//!
//! Runs on its own thread: librdkafka's group and metadata calls block.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use crate::kafka::diagnose::Diagnosed;
use tracing::{debug, info, warn};

use crate::heartbeat::now_ms;
use crate::kafka::groups::{Groups, TopicPartition};
use crate::kafka::tail::TopicTail;
use crate::kafka::{Admin, ClientError, Endpoint, TopicSpec};
use crate::policy::ReplicationPolicy;
use crate::replicate::topics::effective_replication_factor;
use crate::replicate::NameMatcher;
use crate::translate::checkpoints::CheckpointStore;
use crate::translate::group_sync::{plan_group_sync, GroupSyncDecision, TargetGroupState};
use crate::translate::Translator;
use crate::wire::Checkpoint;
use crate::worker::{pause, Worker};

/// Everything the checkpoint job of one flow needs.
#[derive(Clone)]
pub struct CheckpointSpec {
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
    /// Where MM2 offset syncs are read from (cluster consumer properties, topic).
    pub offset_syncs: Option<(Endpoint, String)>,
    pub emit_interval: Duration,
    pub refresh_groups: Duration,
    pub sync_group_offsets: Option<Duration>,
    pub admin_timeout: Duration,
}

impl CheckpointSpec {
    /// The checkpoint job of a configured flow, if checkpoints are on for it.
    pub fn from_config(flow: &crate::config::Flow) -> Option<Self> {
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

    pub fn name(&self) -> String {
        format!("{}->{}", self.source_alias, self.target_alias)
    }
}

/// Counters the job exposes.
#[derive(Debug, Default)]
pub struct CheckpointStats {
    pub checkpoints: AtomicU64,
    pub group_offsets_synced: AtomicU64,
    pub groups: AtomicU64,
    /// Epoch ms of the last completed emission round (0: none yet).
    pub last_round_ms: AtomicU64,
}

/// A running checkpoint job; stops when dropped.
pub struct RunningCheckpoints {
    pub stats: Arc<CheckpointStats>,
    worker: Worker,
}

impl RunningCheckpoints {
    pub fn stop(&self) {
        self.worker.stop();
    }

    /// Stop and wait (the job flushes what it produced).
    pub fn join(self) {
        self.worker.join();
    }
}

/// Start the job on its own thread. Must be called inside a tokio runtime (admin calls use it).
pub fn start(spec: CheckpointSpec) -> RunningCheckpoints {
    let stats = Arc::new(CheckpointStats::default());
    let handle = tokio::runtime::Handle::current();
    let worker = {
        let stats = stats.clone();
        Worker::spawn(format!("checkpoints {}", spec.name()), move |stop| {
            job(spec, handle, stop, &stats)
        })
    };
    RunningCheckpoints { stats, worker }
}

fn job(
    spec: CheckpointSpec,
    rt: tokio::runtime::Handle,
    stop: &AtomicBool,
    stats: &CheckpointStats,
) {
    let flow = spec.name();
    let mut backoff = Duration::from_millis(500);
    // Setup: the checkpoints topic, and the store of what was emitted before (so checkpoints
    // never go backwards across restarts).
    let (mut state, producer) = loop {
        match setup(&spec, &rt) {
            Ok(s) => break s,
            Err(e) => {
                warn!(flow = %flow, error = %e, "checkpoints cannot start yet; retrying");
                if !pause(stop, backoff) {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    };
    info!(flow = %flow, topic = %spec.checkpoints_topic, interval_ms = spec.emit_interval.as_millis() as u64, group_sync = spec.sync_group_offsets.is_some(), "emitting checkpoints");
    let mut next_emit = Instant::now();
    let mut next_groups = Instant::now();
    // MM2 syncs group offsets for the first time one interval after start.
    let mut next_sync = spec.sync_group_offsets.map(|d| Instant::now() + d);
    let mut groups: BTreeSet<String> = BTreeSet::new();
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= next_groups {
            match state.discover_groups(&spec, &rt) {
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
            match state.emit(&spec, &groups, &producer) {
                Ok(n) => {
                    stats.checkpoints.fetch_add(n as u64, Ordering::Relaxed);
                    stats
                        .last_round_ms
                        .store(now_ms() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    warn!(flow = %flow, error = %e, "checkpoint round failed; retried at the next interval")
                }
            }
        }
        if let (Some(at), Some(every)) = (next_sync, spec.sync_group_offsets) {
            if now >= at {
                next_sync = Some(now + every);
                let n = state.sync_group_offsets(&spec);
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
        if !pause(stop, wake.saturating_duration_since(Instant::now())) {
            break;
        }
    }
    let _ = producer.flush(Duration::from_secs(2));
}

struct State {
    store: CheckpointStore,
    translator: Translator,
    source_groups: Groups,
    target_groups: Groups,
    source_admin: Admin,
    /// Replicated source partitions, from the last discovery.
    partitions: Vec<TopicPartition>,
}

fn setup(
    spec: &CheckpointSpec,
    rt: &tokio::runtime::Handle,
) -> Result<(State, ThreadedProducer<Diagnosed>), ClientError> {
    let target_admin = Admin::new(&spec.target_admin, spec.admin_timeout)?;
    rt.block_on(async {
        let brokers = target_admin.broker_count().await?;
        let rf = effective_replication_factor(spec.checkpoints_replication_factor, brokers);
        target_admin
            .create_topics(&[
                TopicSpec::new(&spec.checkpoints_topic, 1, rf).config("cleanup.policy", "compact")
            ])
            .await
    })?;
    let mut store = CheckpointStore::new();
    let mut tail = TopicTail::new(&spec.target_consumer, &spec.checkpoints_topic);
    tail.read_to_end(spec.admin_timeout, |r| {
        match Checkpoint::decode(r.key, r.value) {
            Ok(cp) => store.record(cp),
            Err(e) => debug!(offset = r.offset, error = %e, "skipping an undecodable checkpoint"),
        }
    })?;
    let mut translator = Translator::new(
        &spec.target_consumer,
        &spec.index_topic,
        spec.offset_syncs.as_ref().map(|(ep, t)| (ep, t.as_str())),
    );
    translator.refresh(spec.admin_timeout)?;
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
            partitions: Vec::new(),
        },
        producer,
    ))
}

impl State {
    /// The groups to checkpoint: those that pass the group filter and have committed an offset
    /// on a replicated topic (MM2's rule).
    fn discover_groups(
        &mut self,
        spec: &CheckpointSpec,
        rt: &tokio::runtime::Handle,
    ) -> Result<BTreeSet<String>, ClientError> {
        let topics = rt.block_on(self.source_admin.topics(None))?;
        self.partitions = topics
            .iter()
            .filter(|t| (spec.topic_filter)(&t.name))
            .flat_map(|t| (0..t.partitions).map(move |p| (t.name.clone(), p)))
            .collect();
        let listed = self.source_groups.list(None)?;
        let mut out = BTreeSet::new();
        for g in listed {
            if !(spec.group_filter)(&g.name) {
                continue;
            }
            if !self
                .source_groups
                .committed(&g.name, &self.partitions)?
                .is_empty()
            {
                out.insert(g.name);
            }
        }
        Ok(out)
    }

    /// One emission round: translate every group's committed offsets and emit the checkpoints
    /// that move forward.
    fn emit(
        &mut self,
        spec: &CheckpointSpec,
        groups: &BTreeSet<String>,
        producer: &ThreadedProducer<Diagnosed>,
    ) -> Result<usize, ClientError> {
        self.translator.refresh(spec.admin_timeout)?;
        let mut emitted = 0;
        for group in groups {
            let listed_at = now_ms();
            let upstream = self.source_groups.committed(group, &self.partitions)?;
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

    /// Commit the latest checkpoints into the same groups on the target, where nobody consumes
    /// and never backwards. Returns the number of partitions written.
    fn sync_group_offsets(&mut self, spec: &CheckpointSpec) -> usize {
        let mut written = 0;
        for group in self
            .store
            .groups()
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>()
        {
            let translated = self.store.translated_offsets(&group);
            let r = (|| -> Result<usize, ClientError> {
                let listing = self.target_groups.list(Some(&group))?;
                let state = match listing.first() {
                    Some(g) => TargetGroupState::from_state_name(&g.state, g.members),
                    None => TargetGroupState::NonExistent,
                };
                let tps: Vec<TopicPartition> = translated.keys().cloned().collect();
                let current = self.target_groups.committed(&group, &tps)?;
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
                        self.target_groups.commit(&group, &w.offsets)?;
                        if n > 0 {
                            debug!(flow = %spec.name(), group = %group, partitions = n, state = ?state, "group offsets synced to the target");
                        }
                        Ok(n)
                    }
                }
            })();
            match r {
                Ok(n) => written += n,
                Err(e) => {
                    warn!(flow = %spec.name(), group = %group, error = %e, "group offset sync failed; retried at the next interval")
                }
            }
        }
        written
    }
}
