//! One flow `S->T` running: discover topics, keep remote topics in shape, copy records, commit
//! source offsets only once the target has them, and write offset syncs.
//!
//! The copy loop runs on its own thread with librdkafka's blocking clients (the fastest path: no
//! per-record future), the topic refresh on tokio. Scale-out is Kafka's own group protocol: every
//! process running the same flow joins the group `strait.S->T` on the source and gets a share of
//! the partitions.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::stop::{or_cancel, pause, CancellationToken};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, RebalanceProtocol,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{
    BorrowedHeaders, DeliveryResult, Headers, Message, OwnedHeaders, OwnedMessage,
};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, PurgeConfig, ThreadedProducer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{debug, error, info, warn};

use super::health::{ErrorClass, FlowHealth, StoppedPartition};
use super::mm2_offsets::PositionLog;
use super::offset_syncs::OffsetSyncWriter;
use super::progress::{Jump, Owner, Progress, Sent, Tp};
use super::topics::{names, TopicSync};
use super::FlowError;
use crate::conflicts::authority::{self, AuthorityPlan, TopicAuthority};
use crate::kafka::diagnose::Diagnosed;
use crate::kafka::{Admin, ClientError, Endpoint, TopicInfo, TopicSpec};
use crate::policy::ReplicationPolicy;
use crate::translate::{self, PendingRun, RunId, RunTracker};
use crate::wire::IndexBlock;

mod exactly_once;
mod passthrough;

pub use passthrough::{records_because, records_because_in};

/// A test on a name (a topic, a config property), shareable between the flow's tasks.
pub type NameMatcher = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Where offset syncs go: a cluster (source by default, as MM2) and topic.
#[derive(Clone, Debug)]
pub struct OffsetSyncTarget {
    /// The cluster, with the offset-syncs producer's properties.
    pub cluster: Endpoint,
    /// The offset-syncs topic on that cluster.
    pub topic: String,
    /// For the topic if strait creates it (lowered to the number of brokers when there are fewer).
    pub replication_factor: i32,
}

/// MirrorMaker 2's record of its source positions (Kafka Connect's offsets topic on the target),
/// see [`super::mm2_offsets`] and [`super::resume`].
#[derive(Clone, Debug)]
pub struct Mm2Positions {
    /// The offsets topic's name on the target.
    pub topic: String,
    /// Partitions and replication factor if strait creates the topic (Connect's defaults).
    pub partitions: i32,
    /// See `partitions`; lowered to the number of target brokers when there are fewer.
    pub replication_factor: i32,
}

/// Everything one flow needs, independent of how it was configured.
#[derive(Clone)]
pub struct FlowSpec {
    /// Source cluster, consumer properties (the replication consumer).
    pub source: Endpoint,
    /// Source cluster, admin properties (topic discovery).
    pub source_admin: Endpoint,
    /// Target cluster, producer properties (replicated records).
    pub target: Endpoint,
    /// Target cluster, admin properties (remote topic creation).
    pub target_admin: Endpoint,
    /// Target cluster, consumer properties (reads MirrorMaker 2's positions).
    pub target_reader: Endpoint,
    /// MM2's positions: read at start, so that a switch from MM2 resumes where MM2 stopped, and
    /// kept equal to strait's commits, so that MM2 can resume where strait stopped. None: neither
    /// (a drill's flow, which replicates its own topics under its own group).
    pub mm2_positions: Option<Mm2Positions>,
    /// The policy, already bound to the source alias.
    pub policy: ReplicationPolicy,
    /// The flow's topic filter (`topics`, `topics.exclude`): true for a topic to replicate.
    pub topic_filter: NameMatcher,
    /// True for a topic config property never copied to the target (`config.properties.exclude`).
    pub config_exclude: NameMatcher,
    /// Replicate heartbeats topics even when the topic filter does not accept them.
    pub heartbeats_replication: bool,
    /// For new remote topics (lowered to the number of target brokers when there are fewer).
    pub replication_factor: i32,
    /// How often the source is listed again for new topics and partitions; `None`: never.
    pub refresh_topics: Option<Duration>,
    /// `offset.lag.max`: at most this many records between offset syncs of a partition.
    pub offset_lag_max: i64,
    /// Where offset syncs are written; `None`: they are not (`emit.offset-syncs.enabled` off).
    pub offset_syncs: Option<OffsetSyncTarget>,
    /// How often delayed offset syncs are promoted (MM2: `offset.flush.interval.ms`).
    pub offset_flush_interval: Duration,
    /// How often replicated source offsets are committed.
    pub commit_interval: Duration,
    /// How long an admin or metadata request may take (`admin.timeout.ms`).
    pub admin_timeout: Duration,
    /// strait's exact offset index, on the target (see `translate::index`).
    pub index_topic: String,
    /// Replication factor for the index topic (that of the offset-syncs topic).
    pub index_replication_factor: i32,
    /// `use.defaults.from`: whose defaults a default-valued source config means.
    pub use_defaults_from: crate::config::Side,
    /// `sync.topic.configs.*`: how often remote topic configs are made equal to the source's.
    pub sync_topic_configs: Option<Duration>,
    /// `sync.topic.acls.*`: how often topic ACLs are copied.
    pub sync_topic_acls: Option<Duration>,
    /// The replication group on the source; `None`: `strait.S->T`, the group every process
    /// running this flow shares. A drill names its own so that it never joins a running flow's.
    pub group: Option<String>,
    /// Receipts of the copies of conflict topics' records (`conflicts::receipts`), when the flow
    /// runs between two conflict regions.
    pub receipts: Option<Arc<crate::conflicts::receipts::ReceiptSpec>>,
    /// The conflict rules of strategy authority, as this flow applies them to each record
    /// (`conflicts::authority`); `None`: none (the service sets it from the file's rules).
    pub authority: Option<Arc<AuthorityPlan>>,
    /// Exactly-once replication (see `exactly_once`): how long one transaction takes in records;
    /// `None`: at least once, with the source group's commits.
    pub exactly_once: Option<Duration>,
    /// Why the flow must copy record by record (`strait.data.path = records`), when the user
    /// says so; otherwise the flow copies record batches as they are wherever it can (see
    /// [`records_because`]).
    pub records_path: Option<String>,
}

impl FlowSpec {
    /// The data path's view of a configured flow. Source offsets are committed every second:
    /// that bounds what a restart copies again (MM2 keeps its position only every 60 s).
    pub fn from_config(flow: &crate::config::Flow) -> Self {
        let f = Arc::new(flow.clone());
        let (f1, f2) = (f.clone(), f.clone());
        Self {
            source: flow.clients.source_consumer.clone(),
            source_admin: flow.clients.source_admin.clone(),
            target: flow.clients.target_producer.clone(),
            target_admin: flow.clients.target_admin.clone(),
            target_reader: flow.clients.target_consumer.clone(),
            mm2_positions: Some(Mm2Positions {
                topic: flow.internal_topics.source_offsets.name.clone(),
                partitions: flow.source_offsets_topic_partitions,
                replication_factor: i32::from(flow.source_offsets_topic_replication_factor),
            }),
            policy: flow.policy.clone(),
            topic_filter: Arc::new(move |t: &str| f1.topic_filter_matches(t)),
            config_exclude: Arc::new(move |k: &str| !f2.should_replicate_config_property(k)),
            heartbeats_replication: flow.heartbeats_replication,
            replication_factor: i32::from(flow.replication_factor),
            refresh_topics: flow.intervals.refresh_topics,
            offset_lag_max: flow.offset_lag_max,
            offset_syncs: flow.emit_offset_syncs.then(|| OffsetSyncTarget {
                cluster: flow.clients.offset_syncs_producer.clone(),
                topic: flow.internal_topics.offset_syncs.name.clone(),
                replication_factor: i32::from(flow.offset_syncs_topic_replication_factor),
            }),
            offset_flush_interval: flow.offset_flush_interval,
            commit_interval: Duration::from_secs(1),
            admin_timeout: flow.admin_timeout,
            index_topic: translate::index_topic(&flow.source),
            index_replication_factor: i32::from(flow.offset_syncs_topic_replication_factor),
            use_defaults_from: flow.use_defaults_from,
            sync_topic_configs: flow.intervals.sync_topic_configs,
            sync_topic_acls: flow.intervals.sync_topic_acls,
            group: None,
            receipts: None,
            authority: None,
            exactly_once: flow.exactly_once.as_ref().map(|e| e.transaction_interval),
            records_path: flow.records_path.clone(),
        }
    }

    /// The flow's name, `S->T`.
    pub fn name(&self) -> String {
        crate::config::flow_name(&self.source.alias, &self.target.alias)
    }

    /// The replicator's consumer group on the source. Never checkpointed or synced.
    pub fn group_id(&self) -> String {
        self.group
            .clone()
            .unwrap_or_else(|| super::replication_group(&self.source.alias, &self.target.alias))
    }
}

/// Counters a running flow exposes.
#[derive(Debug, Default)]
pub struct FlowStats {
    /// Records replicated and acknowledged by the target since the flow started.
    pub records: AtomicU64,
    /// Key and value bytes of those records.
    pub bytes: AtomicU64,
    /// Offset syncs written.
    pub offset_syncs: AtomicU64,
    /// Source partitions this process currently replicates (its share of the group).
    pub assigned_partitions: AtomicU64,
    /// Times partitions were taken away from this process (rebalances, or an eviction from the
    /// group).
    pub revocations: AtomicU64,
    /// For the last acknowledged record: acknowledgement time minus its source timestamp, in
    /// ms (MM2's `replication-latency-ms`).
    pub last_latency_ms: AtomicU64,
    /// What the flow is doing and the errors it meets.
    pub health: FlowHealth,
    /// Per source partition this process owns, the offset up to which the target holds every
    /// record (updated every commit interval): the flow's true position, ahead of its commits.
    pub delivered: Mutex<std::collections::BTreeMap<crate::kafka::TopicPartition, i64>>,
    /// What the flow knows of its source without asking it (ends and positions, and when the
    /// source last answered), for the lag snapshots.
    pub source_view: Mutex<super::SourceView>,
}

/// State shared by the copy loop, the producer's delivery callbacks and the rebalance callbacks.
struct Shared {
    flow: String,
    /// The source and target clusters, as errors name them: `us-east (host:9092)`.
    source: Named,
    target: Named,
    progress: Mutex<Progress>,
    syncs: Mutex<OffsetSyncWriter>,
    failure: Mutex<Option<String>>,
    stats: Arc<FlowStats>,
    producer: OnceLock<ThreadedProducer<DeliveryContext>>,
    /// Where offset syncs go (producer and topic), when they are on.
    sync_producer: Option<SyncProducer>,
    /// Runs of (upstream, downstream) pairs not yet in the offset index, and how far the index
    /// holds each partition (which bounds what may be committed).
    runs: Mutex<RunTracker>,
    index_producer: OnceLock<ThreadedProducer<IndexContext>>,
    index_topic: String,
    /// MM2's offsets topic and what was last written to it.
    mm2_positions: Option<(String, Mutex<PositionLog>)>,
    /// Partitions given up since the copy loop last looked (it drops what it holds for them).
    revoked: Mutex<Vec<Tp>>,
    /// The source topics' ids as the copy loop knows them: each position recorded is stamped
    /// with its topic's, and a commit stamped with another is of an earlier topic.
    topic_ids: Mutex<HashMap<String, String>>,
    /// Receipts of conflict topics' copies, when the flow writes them.
    receipts: Option<Arc<crate::conflicts::receipts::ReceiptSink>>,
    /// Whether the flow copies exactly once (`exactly_once`): then what follows is used.
    exactly_once: bool,
    /// The flow's stop, seen by what waits inside a callback.
    stop: CancellationToken,
    /// When the committed positions are next copied to the source group (exactly once).
    source_commit_due: Mutex<Instant>,
    /// The transactional producer failed for good (`failure` says why): the copy loop starts
    /// again rather than ending the flow.
    fenced: AtomicBool,
    /// Offset syncs of the open transaction's records, written once it commits.
    transaction_syncs: Mutex<Vec<(Tp, i64, i64)>>,
    /// Source topic -> remote topic, for every topic the flow copies.
    remote_names: Mutex<HashMap<String, String>>,
    /// The remote partitions the group on the target assigned last, until the copy loop has
    /// made the source consumer read their sources (empty: none).
    exactly_once_assignment: Mutex<Option<Vec<(String, i32)>>>,
    /// The passthrough engine, when the flow copies record batches as they are.
    engine: OnceLock<crate::replicate::passthrough::engine::Engine>,
    /// The source's end of each partition as the engine last fetched it (passthrough).
    source_ends: Mutex<HashMap<Tp, i64>>,
}

impl Shared {
    /// An error librdkafka reported for one of the flow's clients: its cause is kept for the
    /// errors of later calls, it is counted, and logged at most every few seconds per class.
    fn client_error(&self, on_target: bool, error: &KafkaError, reason: &str) {
        let cluster = if on_target {
            &self.target
        } else {
            &self.source
        };
        crate::kafka::diagnose::record(&cluster.address, error, reason);
        let class = ErrorClass::of(error, on_target);
        let message = match reason.trim() {
            "" => format!("cluster {cluster}: {error}"),
            reason => format!("cluster {cluster}: {error}: {reason}"),
        };
        if !on_target && class == ErrorClass::Unreachable {
            self.stats
                .source_view
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unreachable(crate::heartbeat::now_ms());
        }
        if self.stats.health.met(class, message.clone()) {
            warn!(flow = %self.flow, class = class.as_str(), "{message}");
        }
    }

    /// Forget partitions given up: their progress, runs and syncs, and what the copy loop still
    /// holds of them (told through `revoked`).
    fn give_up(&self, tps: &[Tp]) {
        let mut progress = self.progress.lock().unwrap();
        let mut syncs = self.syncs.lock().unwrap();
        let mut runs = self.runs.lock().unwrap();
        let mut revoked = self.revoked.lock().unwrap();
        for tp in tps {
            progress.forget(tp);
            runs.forget(tp);
            syncs.forget(&tp.0, tp.1);
            revoked.push(tp.clone());
        }
        drop((progress, syncs, runs, revoked));
        self.stats
            .delivered
            .lock()
            .unwrap()
            .retain(|(t, p), _| !tps.iter().any(|(u, q)| **u == **t && q == p));
        self.stats.assigned_partitions.store(0, Ordering::Relaxed);
        self.stats.revocations.fetch_add(1, Ordering::Relaxed);
    }

    /// Positions to commit (source topic, partition, next offset), each stamped with its topic's
    /// id, listed under the source topic's name or its remote topic's (`listed`).
    fn stamped<'a>(
        &self,
        positions: impl IntoIterator<Item = (&'a str, i32, i64)>,
        listed: Listed,
    ) -> TopicPartitionList {
        let ids = self.topic_ids.lock().unwrap();
        let remote = matches!(listed, Listed::Remote).then(|| self.remote_names.lock().unwrap());
        let mut tpl = TopicPartitionList::new();
        for (topic, p, o) in positions {
            let name = remote
                .as_ref()
                .and_then(|r| r.get(topic))
                .map_or(topic, String::as_str);
            let mut e = tpl.add_partition(name, p);
            let _ = e.set_offset(Offset::Offset(o));
            if let Some(id) = ids.get(topic) {
                e.set_metadata(crate::kafka::topic_ids::stamp(id));
            }
        }
        tpl
    }

    /// Hand the offset index every run that changed. Their acknowledgements raise the commit
    /// limit of their partitions.
    fn write_index(&self) {
        let Some(p) = self.index_producer.get() else {
            return;
        };
        if self.exactly_once {
            // Only in transactions (`exactly_once::end`).
            return;
        }
        let pending = self.runs.lock().unwrap().take_pending();
        for PendingRun { id, record: run } in pending {
            let (k, v) = (run.key(), run.value());
            let mut rec = BaseRecord::with_opaque_to(
                &self.index_topic,
                Box::new(IndexWrite::Run { id, run }),
            )
            .partition(0)
            .key(&k)
            .payload(&v);
            loop {
                match p.send(rec) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        rec = r;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err((e, _)) => {
                        let msg =
                            format!("cannot hand an offset index record to the producer: {e}");
                        self.failure.lock().unwrap().get_or_insert(msg);
                        return;
                    }
                }
            }
        }
    }

    /// Write MM2's position for every partition whose commit moved, through the index producer
    /// (same cluster). A record that cannot be queued is written at the next commit.
    fn write_positions(&self, committed: &[(Tp, i64)]) {
        let (Some(p), Some((topic, log))) = (self.index_producer.get(), &self.mm2_positions) else {
            return;
        };
        let mut log = log.lock().unwrap();
        let ids = self.topic_ids.lock().unwrap();
        let records = log.changed(
            committed
                .iter()
                .map(|((t, p), o)| (&**t, *p, *o, ids.get(&**t).map(String::as_str))),
        );
        drop(ids);
        for r in records {
            let rec = BaseRecord::with_opaque_to(topic, Box::new(IndexWrite::Position))
                .partition(r.partition)
                .key(&r.key)
                .payload(&r.value);
            if let Err((e, _)) = p.send(rec) {
                debug!(flow = %self.flow, error = %e, "MirrorMaker 2 position not queued; written at the next commit");
                log.forget(&r.key);
            }
        }
    }

    /// The flow's outcome so far: a failure a callback recorded ends it, to be restarted when
    /// its producer was fenced (another process took over), for good otherwise.
    fn outcome(&self) -> Result<(), FlowError> {
        let Some(reason) = self.failure.lock().unwrap().clone() else {
            return Ok(());
        };
        let flow = self.flow.clone();
        Err(if self.fenced.load(Ordering::Relaxed) {
            FlowError::Restart { flow, reason }
        } else {
            FlowError::Fatal { flow, reason }
        })
    }

    /// Everything acknowledged so far is in the index, within `timeout`; else how many index
    /// records are still on their way.
    fn flush_index(&self, timeout: Duration) -> Result<(), usize> {
        self.write_index();
        match self.index_producer.get() {
            Some(p) => settle(p, timeout),
            None => Ok(()),
        }
    }

    /// Hand pending offset syncs to the sync producer, as many as may be in flight (MM2's
    /// `firePendingOffsetSyncs`). Called after each acknowledged record, as MM2 does after each
    /// `commitRecord`; what cannot go yet stays pending, superseded by newer syncs of its
    /// partition, so a fast copy writes a sync per round trip rather than one per gap (one per
    /// record for a source of single-record transactions), as MM2 does.
    fn send_syncs(&self) {
        if self.sync_producer.is_some() {
            self.fire_syncs(&mut self.syncs.lock().unwrap());
        }
    }

    /// [`Shared::send_syncs`] with `syncs` locked already (a batch recorded as a run fires
    /// its syncs as they fall due).
    fn fire_syncs(&self, syncs: &mut OffsetSyncWriter) {
        let Some(sp) = &self.sync_producer else {
            return;
        };
        let free = MAX_SYNCS_IN_FLIGHT.saturating_sub(sp.in_flight.load(Ordering::Acquire));
        let pending = syncs.take_pending(free);
        sp.in_flight.fetch_add(pending.len(), Ordering::AcqRel);
        for s in pending {
            let (k, v) = (s.key(), s.value());
            match sp
                .producer
                .send(BaseRecord::to(&sp.topic).partition(0).key(&k).payload(&v))
            {
                Ok(()) => {
                    self.stats.offset_syncs.fetch_add(1, Ordering::Relaxed);
                }
                // As MM2: a sync that cannot be sent is dropped; the next one supersedes it.
                Err((e, _)) => {
                    sp.in_flight.fetch_sub(1, Ordering::AcqRel);
                    debug!(flow = %self.flow, error = %e, "offset sync not sent");
                }
            }
        }
    }

    /// Send every pending sync (promoted first) before the flow stops, within `timeout`.
    fn drain_syncs(&self, timeout: Duration) {
        let Some(sp) = &self.sync_producer else {
            return;
        };
        let deadline = Instant::now() + timeout;
        self.syncs.lock().unwrap().promote_delayed();
        loop {
            self.send_syncs();
            let left = deadline.saturating_duration_since(Instant::now());
            // Each flush lets the next few go.
            let _ = sp.producer.flush(left);
            if !self.syncs.lock().unwrap().has_pending() || Instant::now() >= deadline {
                return;
            }
        }
    }
}

/// Offset syncs in flight at once, as MM2 (`MAX_OUTSTANDING_OFFSET_SYNCS`).
const MAX_SYNCS_IN_FLIGHT: usize = 10;

/// The producer of MM2's offset syncs, and how many of its syncs are in flight.
struct SyncProducer {
    producer: ThreadedProducer<SyncContext>,
    topic: String,
    in_flight: Arc<AtomicUsize>,
}

/// Counts offset syncs acknowledged (or failed: as MM2, a failed sync is only logged).
struct SyncContext {
    diagnose: Diagnosed,
    in_flight: Arc<AtomicUsize>,
}

crate::kafka::diagnose::diagnosed_client_context!(SyncContext, diagnose);

impl ProducerContext for SyncContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        if let Err((e, _)) = result {
            debug!(error = %e, "offset sync not written");
        }
    }
}

struct Delivery {
    tp: Tp,
    /// The ownership of `tp` the record was sent under.
    owner: Owner,
    offset: i64,
    bytes: u64,
    /// Source timestamp (ms), or -1.
    timestamp: i64,
    /// When it was handed to the producer (ms), for a record that gets a receipt; else -1.
    receipt_sent_ms: i64,
    /// Which write of the source record this is.
    part: Part,
    /// The source record's writes not acknowledged yet, shared by them, when it has more than
    /// one (a violation of authority): it counts as acknowledged with the last.
    writes: Option<Arc<AtomicUsize>>,
}

/// The writes one source record makes on the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// Its copy in the remote topic (indexed, synced).
    Copy,
    /// Its copy in the quarantine topic instead: a hole in the remote topic.
    Quarantined,
    /// Its violation record in `strait.conflicts`.
    Violation,
    /// Not a source record's: an offset index record written in a transaction, which commits
    /// or fails as a whole (see `exactly_once`).
    Index,
}

impl Delivery {
    /// What an offset index record of `tp` written in a transaction carries.
    fn index(tp: &Tp) -> Self {
        Delivery {
            tp: tp.clone(),
            owner: 0,
            offset: -1,
            bytes: 0,
            timestamp: -1,
            receipt_sent_ms: -1,
            part: Part::Index,
            writes: None,
        }
    }
}

/// Holds `Shared` weakly: `Shared` owns the producer, so a strong reference would keep both
/// alive (and the producer's threads running) after the flow ends.
struct DeliveryContext {
    shared: Weak<Shared>,
    diagnose: Diagnosed,
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        match self.shared.upgrade() {
            Some(s) => s.client_error(true, &error, reason),
            None => self.diagnose.error(error, reason),
        }
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Delivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, d: Box<Delivery>) {
        // The flow is gone: nothing left to account for.
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        if d.part == Part::Index {
            // Its transaction's commit fails if it was not written.
            return;
        }
        match result {
            Ok(m) => {
                if !shared.progress.lock().unwrap().owns(&d.tp, d.owner) {
                    // Sent before the partition was given up: the new owner copies it again
                    // and accounts for it; here it must move nothing (index, syncs, commits).
                    return;
                }
                // The index learns of a write before the source record may count as
                // acknowledged (below), so that no commit passes a pair it lacks.
                match d.part {
                    Part::Copy => {
                        // The receipt is handed over before the record counts as acknowledged:
                        // commits wait for it (see `conflicts::receipts`).
                        if d.receipt_sent_ms >= 0 {
                            if let Some(r) = &shared.receipts {
                                r.send(&d.tp, d.offset, m, d.receipt_sent_ms);
                            }
                        }
                        shared
                            .runs
                            .lock()
                            .unwrap()
                            .observe(&d.tp, d.offset, m.offset());
                        if shared.exactly_once {
                            // Named only once its transaction commits.
                            shared.transaction_syncs.lock().unwrap().push((
                                d.tp.clone(),
                                d.offset,
                                m.offset(),
                            ));
                        } else {
                            shared.syncs.lock().unwrap().record(
                                &d.tp.0,
                                d.tp.1,
                                d.offset,
                                m.offset(),
                            );
                            shared.send_syncs();
                        }
                    }
                    Part::Quarantined => shared.runs.lock().unwrap().skipped(&d.tp, d.offset),
                    Part::Violation | Part::Index => {}
                }
                let last = d
                    .writes
                    .as_ref()
                    .is_none_or(|w| w.fetch_sub(1, Ordering::AcqRel) == 1);
                if last {
                    shared
                        .progress
                        .lock()
                        .unwrap()
                        .acked(&d.tp, d.owner, d.offset);
                }
                if d.part == Part::Violation {
                    return;
                }
                shared.stats.records.fetch_add(1, Ordering::Relaxed);
                shared.stats.bytes.fetch_add(d.bytes, Ordering::Relaxed);
                if d.timestamp >= 0 {
                    let latency = crate::heartbeat::now_ms()
                        .saturating_sub(d.timestamp)
                        .max(0);
                    shared
                        .stats
                        .last_latency_ms
                        .store(latency as u64, Ordering::Relaxed);
                }
            }
            Err((e, _)) if !shared.progress.lock().unwrap().owns(&d.tp, d.owner) => {
                // Given up meanwhile (and purged, when the revoke could not wait for it): the
                // new owner copies it again.
                debug!(flow = %shared.flow, error = %e, partition = %format!("{}-{}", d.tp.0, d.tp.1), offset = d.offset, "record of a partition given up not written");
            }
            Err((e, _)) if shared.exactly_once => {
                // Its transaction cannot commit: it is aborted, and the partition copied again
                // from its committed position (a target away longer than the transaction's
                // timeout, for instance).
                debug!(flow = %shared.flow, error = %e, partition = %format!("{}-{}", d.tp.0, d.tp.1), offset = d.offset, "record not written; its transaction will be aborted");
            }
            Err((e, _)) => {
                // Delivery is retried for as long as librdkafka allows (no message timeout), so an
                // error here is permanent. The record stays unacknowledged, its offset is never
                // committed, and the flow stops: a restart replicates it again.
                let msg = format!(
                    "record {}-{} offset {} could not be written to the target: {e}",
                    d.tp.0, d.tp.1, d.offset
                );
                error!(flow = %shared.flow, "{msg}");
                shared.failure.lock().unwrap().get_or_insert(msg);
            }
        }
    }
}

/// Acknowledgements of offset index records.
struct IndexContext {
    shared: Weak<Shared>,
    diagnose: Diagnosed,
}

impl ClientContext for IndexContext {
    fn error(&self, error: KafkaError, reason: &str) {
        match self.shared.upgrade() {
            Some(s) => s.client_error(true, &error, reason),
            None => self.diagnose.error(error, reason),
        }
    }
}

/// What the index producer writes: offset index blocks, and MM2's positions beside them.
enum IndexWrite {
    Run { id: RunId, run: IndexBlock },
    Position,
}

impl ProducerContext for IndexContext {
    type DeliveryOpaque = Box<IndexWrite>;

    fn delivery(&self, result: &DeliveryResult<'_>, write: Box<IndexWrite>) {
        // The flow is gone: nothing left to account for.
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let (id, run) = match *write {
            IndexWrite::Run { id, run } => (id, run),
            IndexWrite::Position => {
                if let Err((e, _)) = result {
                    // Not the data path: MM2 would resume from an older position, copying again.
                    warn!(flow = %shared.flow, error = %e, "a MirrorMaker 2 position could not be written; written again at the next commit");
                    if let Some((_, log)) = &shared.mm2_positions {
                        log.lock().unwrap().forget_all();
                    }
                }
                return;
            }
        };
        match result {
            Ok(_) => {
                let tp: Tp = (Arc::from(run.topic.as_str()), run.partition);
                shared.runs.lock().unwrap().persisted(&tp, id, run.pairs());
            }
            Err((e, _)) => {
                // Retried without a deadline, so this is permanent: stop rather than commit
                // source offsets the index cannot translate.
                let msg = format!(
                    "offset index record for {}-{} could not be written to the target: {e}",
                    run.topic, run.partition
                );
                error!(flow = %shared.flow, "{msg}");
                shared.failure.lock().unwrap().get_or_insert(msg);
            }
        }
    }
}

struct RebalanceContext {
    shared: Arc<Shared>,
}

impl ClientContext for RebalanceContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.shared.client_error(false, &error, reason)
    }
}

impl RebalanceContext {
    /// [`resume_points`], from the source group's commits.
    fn resume_points(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let committed = consumer
            .committed_offsets(tpl.clone(), Duration::from_secs(10))
            .map_err(|e| debug!(flow = %self.shared.flow, error = %e, "cannot read the committed offsets of the partitions assigned"))
            .ok();
        resume_points(&self.shared, committed.as_ref(), tpl);
    }
}

/// Where each partition of a new assignment resumes, read from `committed`: kept in
/// `Progress`, so the first record is checked against it (a gap there is what retention
/// deleted while no one copied). A commit stamped with the id of an earlier topic of the same
/// name (deleted and created again while no strait ran) is not resumed from: the partition
/// starts at its beginning, or every record below the old position would be skipped.
fn resume_points(
    shared: &Shared,
    committed: Option<&TopicPartitionList>,
    tpl: &mut TopicPartitionList,
) {
    let ids = shared.topic_ids.lock().unwrap();
    let mut progress = shared.progress.lock().unwrap();
    let mut restart = Vec::new();
    for e in tpl.elements() {
        let tp: Tp = (Arc::from(e.topic()), e.partition());
        let commit = committed.and_then(|c| c.find_partition(e.topic(), e.partition()));
        let resume_at = commit.as_ref().and_then(|c| match c.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        });
        let earlier = resume_at.is_some()
            && crate::kafka::topic_ids::of_earlier_topic(
                commit
                    .as_ref()
                    .and_then(|c| crate::kafka::topic_ids::stamp_of(c.metadata())),
                ids.get(e.topic()).map(String::as_str),
            );
        if earlier {
            warn!(flow = %shared.flow, topic = e.topic(), partition = e.partition(), committed = resume_at, "the committed position was taken on an earlier topic {} (deleted and created again since): copying the partition from its start", e.topic());
            restart.push((e.topic().to_string(), e.partition()));
            progress.assigned(&tp, None);
        } else {
            progress.assigned(&tp, resume_at);
        }
    }
    drop((progress, ids));
    for (topic, p) in restart {
        let _ = tpl.set_partition_offset(&topic, p, Offset::Beginning);
    }
}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            // Before another process takes these partitions, finish what is in flight and commit
            // it, so it starts where this one really stopped (duplicates only for what could not
            // be delivered in time).
            let mut unsettled = !passthrough::revoking(&self.shared, tpl, Duration::from_secs(30));
            if let Some(p) = self.shared.producer.get() {
                if let Err(n) = settle(p, Duration::from_secs(30)) {
                    warn!(flow = %self.shared.flow, in_flight = n, "in-flight records not all acknowledged before giving up partitions; the next owner will copy them again");
                    unsettled = true;
                }
            }
            if let Err(n) = self.shared.flush_index(Duration::from_secs(10)) {
                warn!(flow = %self.shared.flow, in_flight = n, "offset index not fully written before giving up partitions; the next owner will copy the rest again");
            }
            commit(consumer, &self.shared, CommitMode::Sync);
            let tps: Vec<Tp> = tpl
                .elements()
                .iter()
                .map(|e| (Arc::from(e.topic()), e.partition()))
                .collect();
            self.shared.give_up(&tps);
            let none_left = self.shared.progress.lock().unwrap().is_empty();
            // Records still queued for partitions given up would otherwise be written later,
            // beside the new owner's copies of them. When every partition went (an eager
            // rebalance, or a stop), nothing queued is still ours: purge it all.
            if unsettled && none_left {
                if let Some(p) = self.shared.producer.get() {
                    p.purge(PurgeConfig::default().queue().inflight());
                }
            }
            info!(flow = %self.shared.flow, partitions = tpl.count(), "partitions revoked");
        }
    }

    /// rust-rdkafka's own sequence (pre, assign or unassign, post), with one step before an
    /// assignment: [`RebalanceContext::resume_points`].
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let assign = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        if assign {
            self.resume_points(consumer, tpl);
        }
        let tpl = &*tpl;
        let rebalance = match err {
            _ if assign => Rebalance::Assign(tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(tpl),
            other => Rebalance::Error(KafkaError::Rebalance(other.into())),
        };
        self.pre_rebalance(consumer, &rebalance);
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let done = match (assign, cooperative) {
            (true, true) => consumer.incremental_assign(tpl),
            (true, false) => consumer.assign(tpl),
            (false, true) => consumer.incremental_unassign(tpl),
            (false, false) => consumer.unassign(),
        };
        match done {
            Err(e) => {
                warn!(flow = %self.shared.flow, error = %e, "cannot apply the group's new assignment; the group rebalances again");
            }
            Ok(()) if assign => passthrough::assigned(&self.shared, consumer, tpl),
            Ok(()) => {}
        }
        self.post_rebalance(consumer, &rebalance);
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.shared
                .stats
                .assigned_partitions
                .store(tpl.count() as u64, Ordering::Relaxed);
            info!(flow = %self.shared.flow, partitions = tpl.count(), "partitions assigned");
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                let mut done = Vec::new();
                let mut progress = self.shared.progress.lock().unwrap();
                for e in offsets.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        let tp = (Arc::from(e.topic()), e.partition());
                        progress.committed(&tp, o);
                        done.push((tp, o));
                    }
                }
                drop(progress);
                self.shared.write_positions(&done);
            }
            Err(e) => {
                debug!(flow = %self.shared.flow, error = %e, "offset commit failed; retried at the next interval")
            }
        }
    }
}

/// Wait until `producer` has nothing in flight, or `timeout` (then: how many records are). Its
/// own polling thread serves the delivery reports meanwhile. `flush` would poll the same queue
/// from this thread too, and two delivery-report batches of one partition could then be
/// accounted at the same time, out of order.
fn settle<C: ProducerContext>(
    producer: &ThreadedProducer<C>,
    timeout: Duration,
) -> Result<(), usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let n = producer.in_flight_count();
        if n <= 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(n as usize);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// How far `tp` may be committed: as far as the offset index holds it, and not past a record
/// whose receipt is not acknowledged.
fn commit_limit(shared: &Shared, runs: &RunTracker, tp: &Tp) -> Option<i64> {
    let limit = runs.commit_limit(tp)?;
    match shared.receipts.as_ref().and_then(|r| r.pending_min(tp)) {
        Some(m) => Some(limit.min(m)),
        None => Some(limit),
    }
}

/// Commit what is safe to commit: acknowledged by the target, and held by the offset index.
fn commit(consumer: &BaseConsumer<RebalanceContext>, shared: &Shared, mode: CommitMode) {
    shared.write_index();
    let to_commit = {
        let runs = shared.runs.lock().unwrap();
        shared
            .progress
            .lock()
            .unwrap()
            .to_commit_within(|tp| commit_limit(shared, &runs, tp))
    };
    if to_commit.is_empty() {
        return;
    }
    let tpl = shared.stamped(
        to_commit.iter().map(|((t, p), o)| (&**t, *p, *o)),
        Listed::Source,
    );
    if let Err(e) = consumer.commit(&tpl, mode) {
        debug!(flow = %shared.flow, error = %e, "offset commit failed; retried at the next interval");
    } else if matches!(mode, CommitMode::Sync) {
        let mut progress = shared.progress.lock().unwrap();
        for (tp, o) in &to_commit {
            progress.committed(tp, *o);
        }
        drop(progress);
        shared.write_positions(&to_commit);
    }
}

/// How often the copy loop serves the flow's group on the target, when it copies exactly once.
const MEMBERSHIP_POLL_EVERY: Duration = Duration::from_millis(10);

/// Under which name [`Shared::stamped`] lists a position: the source group's commits name
/// source topics; the exactly-once group on the target names their remote topics.
#[derive(Clone, Copy)]
enum Listed {
    Source,
    Remote,
}

/// How long a copy loop's graceful stop (flush, index, commit, group leave, offset syncs) may
/// take in all: a second inside the service's grace period.
const STOP_BUDGET: Duration = Duration::from_secs(7);

/// A running flow. Stop it with [`RunningFlow::stop`] (or by cancelling the token it was
/// started with) and wait with [`RunningFlow::join`].
pub struct RunningFlow {
    /// The flow, `S->T`.
    pub name: String,
    /// Its counters, updated as it runs.
    pub stats: Arc<FlowStats>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), FlowError>>,
}

/// A flow that is dropped without being stopped (a panicking caller, a runtime shutting down)
/// still ends its copy thread, which would otherwise keep the process from exiting.
impl Drop for RunningFlow {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl RunningFlow {
    /// Ask the flow to stop: it flushes, commits what the target has and leaves the group.
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// Wait for the flow to end; `Ok` when it was stopped, the error when it failed.
    pub async fn join(mut self) -> Result<(), FlowError> {
        let name = self.name.clone();
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(FlowError::Fatal {
                flow: name,
                reason: format!("flow task ended abnormally: {e}"),
            }),
        }
    }

    /// Whether the flow has ended, stopped or failed.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Start `spec` on the current tokio runtime; it runs until `cancel` fires (or a fatal error).
pub fn start(spec: FlowSpec, cancel: CancellationToken) -> RunningFlow {
    let stats = Arc::new(FlowStats::default());
    let name = spec.name();
    let task = {
        let stats = stats.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let r = run(spec, cancel, stats.clone()).await;
            if let Err(e) = &r {
                stats.health.failed(e.to_string());
            }
            r
        })
    };
    RunningFlow {
        name,
        stats,
        cancel,
        task,
    }
}

/// Retry `f` with the standard backoff until it succeeds or the flow is stopped (`None`); a
/// stop also ends an attempt under way.
/// While it retries, the flow is waiting, for the reason the operator reads in `/api/status`.
async fn retrying<T, F, Fut>(at: &Setup<'_>, what: &str, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let mut backoff = Backoff::standard();
    let flow = at.flow;
    loop {
        match or_cancel(at.cancel, f()).await? {
            Ok(v) => return Some(v),
            Err(e) => {
                let wait = backoff.next_wait();
                let class = ErrorClass::of_client(&e, e.cluster() == at.target);
                at.health.met(class, e.to_string());
                at.health.waiting(format!("{what} failed; retrying: {e}"));
                warn!(flow, class = class.as_str(), error = %e, "{what} failed; retrying in {:.1}s", wait.as_secs_f64());
                if !pause(at.cancel, wait).await {
                    return None;
                }
            }
        }
    }
}

/// What the flow's setup steps share: its name, its stop, where to report trouble.
struct Setup<'a> {
    flow: &'a str,
    /// The target's alias: errors from it are classed as the target's.
    target: &'a str,
    cancel: &'a CancellationToken,
    health: &'a FlowHealth,
}

/// The user's `auto.offset.reset` when it skips what a partition already holds.
fn latest_reset(source: &Endpoint) -> Option<&str> {
    source
        .props
        .get("auto.offset.reset")
        .map(String::as_str)
        .filter(|v| ["latest", "largest", "end"].contains(&v.to_ascii_lowercase().as_str()))
}

/// A cluster as the flow's messages name it: `alias (bootstrap servers)`.
struct Named {
    alias: String,
    address: String,
}

impl Named {
    fn of(ep: &Endpoint) -> Self {
        Self {
            alias: ep.alias.clone(),
            address: ep.bootstrap_servers().to_string(),
        }
    }
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.alias, self.address)
    }
}

async fn run(
    spec: FlowSpec,
    cancel: CancellationToken,
    stats: Arc<FlowStats>,
) -> Result<(), FlowError> {
    // The copy loop stops with the flow, and also when this task ends any other way.
    let copy_cancel = cancel.child_token();
    let _stop_copy_on_exit = copy_cancel.clone().drop_guard();
    let flow = spec.name();
    let source_admin = Admin::new(&spec.source_admin, spec.admin_timeout)?;
    let target_admin = Admin::new(&spec.target_admin, spec.admin_timeout)?;
    info!(flow = %flow, source = spec.source.bootstrap_servers(), target = spec.target.bootstrap_servers(), "flow starting");
    if let Some(reset) = latest_reset(&spec.source) {
        warn!(flow = %flow, "the source consumer has auto.offset.reset={reset}: a partition with no committed position (a new topic, a first start, or a position older than the source's retention) starts at its end, and the records already in it are never copied");
    }
    let at = Setup {
        flow: &flow,
        target: &spec.target.alias,
        cancel: &cancel,
        health: &stats.health,
    };

    let created = retrying(&at, "creating the offset index topic", || async {
        let brokers = target_admin.broker_count().await?;
        let rf =
            super::topics::effective_replication_factor(spec.index_replication_factor, brokers);
        target_admin
            .create_topics(&[translate::index_topic_spec(&spec.index_topic, rf)])
            .await
    })
    .await;
    if created.is_none() {
        return Ok(());
    }
    if let Some(r) = &spec.receipts {
        let created = retrying(&at, "creating the receipts topic", || {
            crate::conflicts::receipts::ensure_topic(&target_admin, r.replication_factor)
        })
        .await;
        if created.is_none() {
            return Ok(());
        }
    }
    if spec.authority.is_some() {
        // Where violations of regional authority are recorded (`conflicts::authority`).
        let created = retrying(&at, "creating the conflicts topic", || async {
            let brokers = target_admin.broker_count().await?;
            let rf =
                super::topics::effective_replication_factor(spec.index_replication_factor, brokers);
            target_admin
                .create_topics(&[crate::conflicts::record::topic_spec(rf)])
                .await
        })
        .await;
        if created.is_none() {
            return Ok(());
        }
    }
    if let Some(os) = &spec.offset_syncs {
        let admin = Admin::new(&os.cluster, spec.admin_timeout)?;
        let created = retrying(&at, "creating the offset-syncs topic", || async {
            let brokers = admin.broker_count().await?;
            let rf = super::topics::effective_replication_factor(os.replication_factor, brokers);
            admin
                .create_topics(&[
                    TopicSpec::new(&os.topic, 1, rf).config("cleanup.policy", "compact")
                ])
                .await
        })
        .await;
        if created.is_none() {
            return Ok(());
        }
    }

    let sync = TopicSync {
        source_alias: spec.policy.source_alias(),
        target_alias: &spec.target.alias,
        policy: &spec.policy,
        filter: spec.topic_filter.as_ref(),
        heartbeats_replication: spec.heartbeats_replication,
        replication_factor: spec.replication_factor,
        config_exclude: spec.config_exclude.as_ref(),
        use_defaults_from: spec.use_defaults_from,
    };
    // Beside the remote topics, the quarantine topics of authority rules: they must exist before
    // a violation is written to one.
    let quarantines = |t: &str| {
        spec.authority
            .as_ref()
            .is_some_and(|a| a.quarantines(&spec.policy, t))
    };
    let ensure_topics = || async {
        let topics = sync
            .ensure_remote_topics(&source_admin, &target_admin)
            .await?;
        sync.ensure_quarantine_topics(&source_admin, &target_admin, &topics, &quarantines)
            .await?;
        Ok::<_, ClientError>(topics)
    };
    let Some(mut topics) = retrying(&at, "topic discovery", &ensure_topics).await else {
        return Ok(());
    };
    let positions = match &spec.mm2_positions {
        Some(m) => {
            let Some(p) = mm2_positions(&spec, m, &source_admin, &target_admin, &topics, &at).await
            else {
                return Ok(());
            };
            p
        }
        None => None,
    };
    info!(flow = %flow, topics = ?names(&topics), "replicating");

    let limits = record_limits(&target_admin, &spec.policy, &topics).await;
    let (topics_tx, topics_rx) = std::sync::mpsc::channel::<ToCopy>();
    // Topic ids, to tell a source topic deleted and created again (`kafka::topic_ids`); known
    // to the copy loop before its first assignment, which checks the commits' stamps.
    let id_names = |topics: &[TopicInfo]| topics.iter().map(|t| t.name.clone()).collect();
    let mut ids = match source_admin.topic_ids(id_names(&topics)).await {
        Ok(ids) => ids,
        Err(e) => {
            info!(flow = %flow, error = %e, "cannot read the source's topic ids; a topic deleted and created again is noticed only when its offsets go back");
            HashMap::new()
        }
    };
    topics_tx
        .send(ToCopy::Ids {
            ids: ids.clone(),
            recreated: Vec::new(),
        })
        .ok();
    topics_tx.send(ToCopy::Topics(topics.clone())).ok();
    let records = records_because(&spec);
    match &records {
        None => info!(flow = %flow, "data path: record batches copied as they are (passthrough)"),
        Some(why) => info!(flow = %flow, "data path: record by record, because {why}"),
    }
    let copy = {
        let spec = spec.clone();
        let copy_cancel = copy_cancel.clone();
        let stats = stats.clone();
        tokio::task::spawn_blocking(move || {
            let mut told = Told {
                limits: Some(limits),
                ..Told::default()
            };
            let mut positions = positions;
            loop {
                let copy = match &records {
                    None => passthrough::copy_loop,
                    Some(_) => copy_loop,
                };
                let copied = copy(
                    &spec,
                    &topics_rx,
                    &copy_cancel,
                    stats.clone(),
                    positions.take(),
                    &mut told,
                );
                match copied {
                    Err(FlowError::Restart { reason, .. }) if !copy_cancel.is_cancelled() => {
                        warn!(flow = %spec.name(), "{reason}; the flow starts again with a new producer, from its committed positions");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    // Stopping anyway: what the producer did not commit is copied again.
                    Err(FlowError::Restart { reason, .. }) => {
                        warn!(flow = %spec.name(), "{reason}; stopping");
                        return Ok(());
                    }
                    done => return done,
                }
            }
        })
    };
    tokio::pin!(copy);

    let refresh = spec.refresh_topics.unwrap_or(Duration::MAX);
    let mut next_refresh =
        tokio::time::Instant::now() + refresh.min(Duration::from_secs(86400 * 365));
    // Config and ACL sync run at once and then every interval (MM2-SPEC §5).
    let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
    let mut next_configs = spec
        .sync_topic_configs
        .map_or(far, |_| tokio::time::Instant::now());
    let mut next_acls = spec
        .sync_topic_acls
        .map_or(far, |_| tokio::time::Instant::now());
    let mut acls_unsupported_logged = false;
    // At least as often as the topics are listed again.
    let id_every = refresh.min(ID_CHECK_EVERY);
    let mut next_ids = tokio::time::Instant::now() + id_every;
    let mut stopping = false;
    let result = loop {
        tokio::select! {
            r = &mut copy => break r.unwrap_or_else(|e| Err(FlowError::Fatal { flow: flow.clone(), reason: format!("copy loop panicked: {e}") })),
            // The copy loop sees the same stop (its token is a child) and ends after its final
            // flush and commit; meanwhile no other round starts.
            _ = cancel.cancelled(), if !stopping => {
                stopping = true;
                (next_configs, next_acls, next_refresh) = (far, far, far);
            }
            _ = tokio::time::sleep_until(next_configs) => {
                next_configs = spec.sync_topic_configs.map_or(far, |d| tokio::time::Instant::now() + d);
                // Each round gives way to a stop at once (its admin calls may wait out a timeout).
                let Some(synced) = or_cancel(&cancel, super::configs::sync_topic_configs(&source_admin, &target_admin, &spec.policy, spec.policy.source_alias(), &topics, spec.config_exclude.as_ref(), spec.use_defaults_from)).await else { continue };
                match synced {
                    Ok(r) => debug!(flow = %flow, topics = r.synced.len(), ops = r.ops, failed = r.failed.len(), "topic configs synced"),
                    Err(e) if super::configs::is_unsupported(&e) => {
                        warn!(flow = %flow, error = %e, "the target does not support IncrementalAlterConfigs; topic config sync is off for this run");
                        next_configs = far;
                    }
                    Err(e) => warn!(flow = %flow, error = %e, "topic config sync failed; retried at the next interval"),
                }
            }
            _ = tokio::time::sleep_until(next_acls) => {
                next_acls = spec.sync_topic_acls.map_or(far, |d| tokio::time::Instant::now() + d);
                let replicate = |t: &str| super::topics::should_replicate(&spec.policy, spec.topic_filter.as_ref(), spec.heartbeats_replication, spec.policy.target_alias().unwrap_or(&spec.target.alias), t);
                let remote = |t: &str| spec.policy.remote_topic(t);
                let Some(synced) = or_cancel(&cancel, super::acls::sync_topic_acls(&source_admin, &target_admin, &replicate, &remote)).await else { continue };
                match synced {
                    Ok(n) if n > 0 => info!(flow = %flow, bindings = n, "topic ACLs copied"),
                    Ok(_) => {}
                    Err(e) if e.means_no_acls() => {
                        if !acls_unsupported_logged {
                            info!(flow = %flow, error = %e, "no ACLs to sync (no authorizer on a cluster); ACL sync skipped");
                            acls_unsupported_logged = true;
                        }
                    }
                    Err(e) => warn!(flow = %flow, error = %e, "topic ACL sync failed; retried at the next interval"),
                }
            }
            _ = tokio::time::sleep_until(next_ids), if !ids.is_empty() && !stopping => {
                next_ids = tokio::time::Instant::now() + id_every;
                let Some(now) = or_cancel(&cancel, source_admin.topic_ids(id_names(&topics))).await else { continue };
                match now {
                    Ok(now) => {
                        let again = crate::kafka::topic_ids::recreated(&ids, &now);
                        for t in &again {
                            warn!(flow = %flow, topic = %t, "source topic {t} was deleted and created again (topic id {} is now {}): copying it from its start", ids[t], now[t]);
                        }
                        if now.iter().any(|(t, id)| ids.get(t) != Some(id)) {
                            topics_tx.send(ToCopy::Ids { ids: now.clone(), recreated: again }).ok();
                        }
                        ids.extend(now);
                    }
                    Err(e) => debug!(flow = %flow, error = %e, "topic ids not read; checked again later"),
                }
            }
            _ = tokio::time::sleep_until(next_refresh) => {
                next_refresh = tokio::time::Instant::now() + refresh;
                let Some(refreshed) = or_cancel(&cancel, ensure_topics()).await else { continue };
                match refreshed {
                    // Resubscribe (a group rebalance) when the set of topics or a partition count
                    // changed: librdkafka's consumer would notice new partitions only at its own
                    // metadata refresh (5 minutes by default), leaving them uncopied until then.
                    Ok(now) if shape(&now) != shape(&topics) => {
                        info!(flow = %flow, topics = ?shape(&now), "topics or partition counts changed");
                        topics = now;
                        topics_tx.send(ToCopy::Topics(topics.clone())).ok();
                        next_ids = tokio::time::Instant::now();
                    }
                    Ok(now) => topics = now,
                    Err(e) => warn!(flow = %flow, error = %e, "topic refresh failed; retried at the next interval"),
                }
                if let Some(l) = or_cancel(&cancel, record_limits(&target_admin, &spec.policy, &topics)).await {
                    topics_tx.send(ToCopy::Limits(l)).ok();
                }
            }
        }
    };
    info!(flow = %flow, records = stats.records.load(Ordering::Relaxed), "flow stopped");
    result
}

/// How often (at most) the source's topic ids are compared with those seen before.
const ID_CHECK_EVERY: Duration = Duration::from_secs(30);

/// What the flow's task last told the copy loop, told again to a copy loop started again (see
/// [`FlowError::Restart`]).
#[derive(Default)]
struct Told {
    topics: Option<Vec<TopicInfo>>,
    ids: HashMap<String, String>,
    limits: Option<HashMap<String, i64>>,
}

impl Told {
    /// Keep what `m` tells.
    fn keep(&mut self, m: &ToCopy) {
        match m {
            ToCopy::Topics(t) => self.topics = Some(t.clone()),
            ToCopy::Ids { ids, .. } => self.ids.extend(ids.clone()),
            ToCopy::Limits(l) => self.limits = Some(l.clone()),
        }
    }

    /// What a new copy loop must be told first.
    fn again(&self) -> Vec<ToCopy> {
        let mut again = Vec::new();
        if !self.ids.is_empty() {
            again.push(ToCopy::Ids {
                ids: self.ids.clone(),
                recreated: Vec::new(),
            });
        }
        if let Some(t) = &self.topics {
            again.push(ToCopy::Topics(t.clone()));
        }
        again
    }
}

/// What the flow's task tells the copy loop.
enum ToCopy {
    /// The topics to replicate now (subscribe to them).
    Topics(Vec<TopicInfo>),
    /// The source topics' ids now; those in `recreated` changed (deleted and created again):
    /// read them from their start.
    Ids {
        ids: HashMap<String, String>,
        recreated: Vec<String>,
    },
    /// Each remote topic's `max.message.bytes` on the target, read again.
    Limits(HashMap<String, i64>),
}

/// Take over from MirrorMaker 2 where it stopped ([`super::resume`]), and make ready to keep its
/// positions current: the writer, or None when the offsets topic cannot be used (a missing ACL:
/// said once, and replication goes on). The outer None: the flow was stopped meanwhile.
async fn mm2_positions(
    spec: &FlowSpec,
    m: &Mm2Positions,
    source_admin: &Admin,
    target_admin: &Admin,
    topics: &[TopicInfo],
    at: &Setup<'_>,
) -> Option<Option<PositionLog>> {
    let flow = spec.name();
    let group = spec.group_id();
    let seed = super::resume::SeedSpec {
        flow: &flow,
        group: &group,
        source: &spec.source,
        source_admin,
        target: &spec.target_reader,
        offsets_topic: &m.topic,
        source_alias: spec.policy.source_alias(),
        timeout: spec.admin_timeout,
    };
    let seeded = retrying(at, "reading MirrorMaker 2's positions", || async {
        match super::resume::seed(&seed, topics).await {
            Err(e) if e.is_denied() => {
                warn!(flow = %flow, error = %e, "cannot read MirrorMaker 2's positions; partitions resume from strait's group or auto.offset.reset");
                Ok(())
            }
            other => other.map(|_| ()),
        }
    })
    .await;
    seeded?;
    let ready = retrying(at, "preparing MirrorMaker 2's offsets topic", || async {
        let brokers = target_admin.broker_count().await?;
        let rf = super::topics::effective_replication_factor(m.replication_factor, brokers);
        let made = target_admin
            .create_topics(&[TopicSpec::new(&m.topic, m.partitions, rf).config("cleanup.policy", "compact")])
            .await;
        let partitions = match made {
            Ok(_) => target_admin.topics(Some(&m.topic)).await.map(|t| t.first().map(|t| t.partitions)),
            Err(e) => Err(e),
        };
        match partitions {
            Ok(Some(n)) if n > 0 => Ok(Some(PositionLog::new(spec.policy.source_alias(), n))),
            Ok(_) => Ok(None),
            Err(e) if e.is_denied() => {
                warn!(flow = %flow, error = %e, topic = %m.topic, "cannot keep MirrorMaker 2's positions current; an MM2 started on this flow later would copy again");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    })
    .await;
    ready
}

/// The topics with their partition counts, sorted: what the consumer's subscription depends on.
fn shape(topics: &[TopicInfo]) -> Vec<(&str, usize)> {
    let mut v: Vec<(&str, usize)> = topics
        .iter()
        .map(|t| (t.name.as_str(), t.partitions as usize))
        .collect();
    v.sort_unstable();
    v
}

/// What handing a record to the producer needs, kept across records.
struct Handing<'a> {
    producer: &'a ThreadedProducer<DeliveryContext>,
    shared: &'a Shared,
    spec: &'a FlowSpec,
    flow: &'a str,
    stop: &'a CancellationToken,
    /// Source topic -> (shared name for bookkeeping, remote topic name), computed once per topic.
    remote_names: HashMap<String, (Arc<str>, String)>,
    /// Whether the consumer's partitions are paused for want of room in the producer.
    paused: bool,
    /// Partitions whose offsets jumped, for the copy loop to look into.
    jumps: Vec<(Tp, Jump)>,
    /// Remote topic -> its `max.message.bytes` on the target, where known.
    limits: HashMap<String, i64>,
    /// Whether the producer compresses (then the broker, not strait, measures a record).
    compressing: bool,
    /// The producer's `message.max.bytes`.
    max_send: i64,
    /// Source topic -> how its records are judged, when an authority rule covers it.
    authority: HashMap<String, Option<TopicAuthority>>,
}

/// A source record, borrowed from the consumer or parked for later.
struct Source<'m> {
    topic: &'m str,
    partition: i32,
    offset: i64,
    key: Option<&'m [u8]>,
    payload: Option<&'m [u8]>,
    /// Source timestamp (ms), if it has one.
    timestamp: Option<i64>,
    headers: Option<OwnedHeaders>,
}

impl<'m> Source<'m> {
    /// `m`, with its headers already made owned (how depends on the message type).
    fn of<M: Message>(m: &'m M, headers: Option<OwnedHeaders>) -> Self {
        Source {
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key(),
            payload: m.payload(),
            timestamp: m.timestamp().to_millis(),
            headers,
        }
    }
}

/// What became of a record handed to the producer.
enum Handed {
    Sent,
    /// The target will never take it: its partition stops there (the reason says why).
    Refused {
        tp: Tp,
        offset: i64,
        reason: String,
    },
    /// The producer's queue is full: the record was not taken.
    Full,
    /// The flow is stopping.
    Stopped,
}

/// Hand one source record to the producer, as its copy on the remote topic.
fn hand(m: Source<'_>, h: &mut Handing<'_>) -> Result<Handed, FlowError> {
    let fatal = |reason: String| FlowError::Fatal {
        flow: h.flow.to_string(),
        reason,
    };
    if !h.remote_names.contains_key(m.topic) {
        let r = h.spec.policy.remote_topic(m.topic);
        h.remote_names
            .insert(m.topic.to_string(), (Arc::from(m.topic), r));
    }
    let judged = judge(&m, h);
    let (tp_topic, remote) = &h.remote_names[m.topic];
    let tp: Tp = (tp_topic.clone(), m.partition);
    let bytes = (m.payload.map_or(0, <[u8]>::len) + m.key.map_or(0, <[u8]>::len)) as u64;
    // Uncompressed, a record's batch is what the broker measures against the topic's limit: one
    // over it would fail for good, after which the records behind it would land before it.
    let size = batch_bytes(m.key, m.payload, m.headers.as_ref());
    if !h.compressing {
        if let Some(limit) = h.limits.get(remote.as_str()) {
            if size > *limit {
                return Ok(Handed::Refused {
                    offset: m.offset,
                    reason: too_large(&tp, m.offset, size, *limit, remote, h.spec),
                    tp,
                });
            }
        }
    }
    let receipt_sent_ms = match &h.shared.receipts {
        Some(r) if r.covers(m.topic) => crate::heartbeat::now_ms(),
        _ => -1,
    };
    // Counted in flight from now on, so that nothing past it is committed while it waits.
    let Sent { owner, jump } = h.shared.progress.lock().unwrap().sent(&tp, m.offset);
    if jump != Jump::None {
        h.jumps.push((tp.clone(), jump));
    }
    // A violation is two writes: the record (copied, or quarantined) and its violation record.
    let writes = judged.as_ref().map(|_| Arc::new(AtomicUsize::new(2)));
    let (destination, part, headers) = match judged.as_ref().and_then(|j| j.quarantine.clone()) {
        Some((topic, headers)) => (topic, Part::Quarantined, Some(headers)),
        None => (remote.clone(), Part::Copy, m.headers),
    };
    let mut rec = BaseRecord::with_opaque_to(
        destination.as_str(),
        Box::new(Delivery {
            tp: tp.clone(),
            owner,
            offset: m.offset,
            bytes,
            timestamp: m.timestamp.unwrap_or(-1),
            receipt_sent_ms,
            part,
            writes: writes.clone(),
        }),
    )
    .partition(m.partition);
    if let Some(k) = m.key {
        rec = rec.key(k);
    }
    if let Some(v) = m.payload {
        rec = rec.payload(v);
    }
    if let Some(ts) = m.timestamp.filter(|t| *t >= 0) {
        rec = rec.timestamp(ts);
    }
    if let Some(hd) = headers {
        rec = rec.headers(hd);
    }
    let mut unknown_since: Option<Instant> = None;
    loop {
        match h.producer.send(rec) {
            Ok(()) => {
                return match judged {
                    None => Ok(Handed::Sent),
                    Some(j) => {
                        let delivery = Delivery {
                            tp: tp.clone(),
                            owner,
                            offset: m.offset,
                            bytes: 0,
                            timestamp: -1,
                            receipt_sent_ms: -1,
                            part: Part::Violation,
                            writes,
                        };
                        send_violation(h, j, delivery)
                    }
                };
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::UnknownPartition), r)) => {
                // The remote topic grew (partition growth) after the producer last read its
                // metadata: read it again and wait, keeping the record. A target that never gets
                // the partition is warned about by the topic refresh; stopping leaves the record
                // uncommitted, to be read again.
                rec = r;
                let waited = unknown_since.get_or_insert_with(Instant::now);
                if waited.elapsed() > Duration::from_secs(30) {
                    warn!(flow = %h.flow, topic = destination.as_str(), partition = tp.1, "the target does not have this partition of the remote topic yet; waiting");
                    *waited = Instant::now();
                }
                let _ = h
                    .producer
                    .client()
                    .fetch_metadata(Some(&destination), h.spec.admin_timeout);
                if h.stop.is_cancelled() {
                    return Ok(Handed::Stopped);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // The target is slow or away: the caller parks the record and pauses the source.
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                return Ok(Handed::Full)
            }
            // Larger than the producer may send (`message.max.bytes`).
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
                let reason = format!(
                    "record {}-{}@{} is {size} bytes, over the {} bytes strait's producer may send to {} (message.max.bytes): {}-{} stops there; set `{}.producer.message.max.bytes` higher and restart strait",
                    tp.0, tp.1, m.offset, h.max_send, h.shared.target, tp.0, tp.1, h.spec.target.alias
                );
                return Ok(Handed::Refused {
                    tp,
                    offset: m.offset,
                    reason,
                });
            }
            Err((e, _)) => {
                return Err(fatal(format!(
                    "cannot hand record {}-{}@{} to the producer: {e}",
                    tp.0, tp.1, m.offset
                )))
            }
        }
    }
}

/// A record judged a violation of regional authority: its violation record, and where it goes
/// instead of the remote topic when it is quarantined (topic, headers).
struct Judged {
    violation: authority::Violation,
    quarantine: Option<(String, OwnedHeaders)>,
}

/// Judge a record of a topic under an authority rule (`conflicts::authority`); `None` for every
/// other record.
fn judge(m: &Source<'_>, h: &mut Handing<'_>) -> Option<Judged> {
    let plan = h.spec.authority.as_ref()?;
    if !h.authority.contains_key(m.topic) {
        let remote = &h.remote_names[m.topic].1;
        let judging = plan.for_topic(&h.spec.policy, m.topic, remote);
        h.authority.insert(m.topic.to_string(), judging);
    }
    let judging = h.authority[m.topic].as_ref()?;
    let at = authority::At {
        topic: m.topic,
        partition: m.partition,
        offset: m.offset,
        timestamp: m.timestamp,
        key: m.key,
        value: m.payload,
    };
    let decision = judging.decide(m.key);
    let violation = judging.violation(decision, &at, crate::heartbeat::now_ms())?;
    let quarantine = violation.quarantined.then(|| {
        (
            judging.quarantine_topic.clone(),
            judging.headers(m.headers.clone(), &violation.owner, &at),
        )
    });
    Some(Judged {
        violation,
        quarantine,
    })
}

/// Hand a violation record to the producer (for `strait.conflicts` on the target), right after
/// its record: waits for room, as the offset index does. A stop meanwhile leaves the source
/// record unacknowledged (both are written again after a restart).
fn send_violation(h: &Handing<'_>, j: Judged, delivery: Delivery) -> Result<Handed, FlowError> {
    let v = j.violation;
    let mut rec = BaseRecord::with_opaque_to(
        crate::conflicts::record::CONFLICTS_TOPIC,
        Box::new(delivery),
    )
    .key(v.id.as_bytes())
    .payload(&v.json);
    loop {
        match h.producer.send(rec) {
            Ok(()) => {
                v.count();
                return Ok(Handed::Sent);
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                if h.stop.is_cancelled() {
                    return Ok(Handed::Stopped);
                }
                rec = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => {
                return Err(FlowError::Fatal {
                    flow: h.flow.to_string(),
                    reason: format!(
                        "cannot hand the violation record {} to the producer: {e}",
                        v.id
                    ),
                })
            }
        }
    }
}

/// How often the flow's delivered positions ([`FlowStats::delivered`]) and its view of the
/// source ([`FlowStats::source_view`]) are brought up to date.
const DELIVERED_EVERY: Duration = super::source_view::LOOK_EVERY;

/// Bring [`FlowStats::delivered`] and [`FlowStats::source_view`] up to date from one look at
/// the progress: each owned partition's position and its end as librdkafka last heard it from a
/// fetch response (no request).
fn look_at_source(
    end_of: impl Fn(&str, i32) -> Option<i64>,
    shared: &Shared,
    partitions_total: usize,
) {
    let positions = shared.progress.lock().unwrap().positions();
    let owned: std::collections::BTreeMap<_, _> = positions
        .into_iter()
        .map(|((t, p), delivered)| {
            let end = end_of(&t, p).filter(|hi| *hi >= 0);
            (
                (t.to_string(), p),
                super::source_view::OwnedPartition { end, delivered },
            )
        })
        .collect();
    *shared.stats.delivered.lock().unwrap() = owned
        .iter()
        .filter_map(|(tp, o)| Some((tp.clone(), o.delivered?)))
        .collect();
    shared
        .stats
        .source_view
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .look(crate::heartbeat::now_ms(), owned, partitions_total);
}

/// How long the target may acknowledge nothing while records wait before the flow says it waits.
const STALL_AFTER: Duration = Duration::from_secs(10);

/// Whether the target is taking records: a flow whose records wait and are not acknowledged for
/// [`STALL_AFTER`] is waiting, with the reason, until they move again.
struct Stall {
    records: u64,
    moved: Instant,
    said: bool,
    /// What waits, as the message counts it: "records" or "batches".
    unit: &'static str,
}

impl Stall {
    fn new(records: u64, unit: &'static str) -> Self {
        Self {
            records,
            moved: Instant::now(),
            said: false,
            unit,
        }
    }

    /// `waiting`: records (or batches) handed to the target or parked, not acknowledged yet.
    fn check(&mut self, shared: &Shared, waiting: u64) {
        let records = shared.stats.records.load(Ordering::Relaxed);
        if records != self.records || waiting == 0 {
            self.records = records;
            self.moved = Instant::now();
            if self.said {
                self.said = false;
                shared.stats.health.replicating();
                info!(flow = %shared.flow, target = %shared.target, "the target acknowledges records again");
            }
        } else if self.moved.elapsed() >= STALL_AFTER {
            let reason = format!(
                "the target {} has acknowledged no record for {}s; {waiting} {} wait (the source is paused when the producer's queue is full)",
                shared.target,
                self.moved.elapsed().as_secs(),
                self.unit,
            );
            if !self.said {
                warn!(flow = %shared.flow, "{reason}");
                self.said = true;
            }
            shared.stats.health.waiting(reason);
        }
    }
}

/// The steps both copy loops take between polls, each on its own clock: the stall check (every
/// second), the look at the source ([`DELIVERED_EVERY`]), the commit (the loop's own step, every
/// `commit_every`) and the promotion of delayed offset syncs (`offset.flush.interval.ms`).
struct Rounds {
    stall: Stall,
    stall_checked: Instant,
    looked: Instant,
    committed: Instant,
    commit_every: Duration,
    promoted: Instant,
    promote_every: Duration,
}

impl Rounds {
    /// The clocks start now, and so does the flow's health as replicating (the stall check
    /// moves it to waiting and back from here).
    fn new(
        shared: &Shared,
        unit: &'static str,
        commit_every: Duration,
        promote_every: Duration,
    ) -> Self {
        let now = Instant::now();
        shared.stats.health.replicating();
        Self {
            stall: Stall::new(shared.stats.records.load(Ordering::Relaxed), unit),
            stall_checked: now,
            looked: now,
            committed: now,
            commit_every,
            promoted: now,
            promote_every,
        }
    }

    /// Take the steps that are due. `waiting` counts what the target has not acknowledged yet;
    /// `end_of` is a partition's end as last heard (for [`look_at_source`]); `commit` is the
    /// loop's commit.
    fn run(
        &mut self,
        shared: &Shared,
        waiting: impl FnOnce() -> u64,
        end_of: impl Fn(&str, i32) -> Option<i64>,
        partitions_total: usize,
        commit: impl FnOnce(),
    ) {
        if self.stall_checked.elapsed() >= Duration::from_secs(1) {
            self.stall_checked = Instant::now();
            self.stall.check(shared, waiting());
        }
        if self.looked.elapsed() >= DELIVERED_EVERY {
            self.looked = Instant::now();
            look_at_source(end_of, shared, partitions_total);
        }
        if self.committed.elapsed() >= self.commit_every {
            commit();
            // From the end of this one: an exactly-once commit (a transaction's end) may take as
            // long as the interval, and the next transaction must still get the interval's
            // reading.
            self.committed = Instant::now();
        }
        if self.promoted.elapsed() >= self.promote_every {
            shared.syncs.lock().unwrap().promote_delayed();
            self.promoted = Instant::now();
        }
    }
}

/// Tell what a jump in a partition's offsets means: records the source deleted before they were
/// copied (counted and said), or a partition that went back (said; it is copied again from
/// there). Gaps from compaction or transaction markers are normal and pass silently.
fn look_into(consumer: &BaseConsumer<RebalanceContext>, shared: &Shared, tp: &Tp, jump: Jump) {
    let partition = format!("{}-{}", tp.0, tp.1);
    match jump {
        Jump::None => {}
        Jump::Gap { from, to } => {
            // The log start offset as the last fetch response gave it (no request).
            let Some(low) = crate::kafka::cached_watermarks(consumer.client(), &tp.0, tp.1)
                .map(|(low, _)| low)
                .filter(|low| *low >= 0)
            else {
                return;
            };
            if low > from {
                let end = low.min(to);
                let n = (end - from) as u64;
                shared.stats.health.skipped_by_retention(n);
                warn!(flow = %shared.flow, partition = %partition, skipped = n, "source {} deleted records {from}..{end} of {partition} (retention) before they were copied: they are not on the target", shared.source);
            }
        }
        Jump::Back { from, to } => {
            warn!(flow = %shared.flow, partition = %partition, "source partition {partition} went back from offset {from} to {to} (the topic was re-created, or truncated): copying it from {to}, and committing from there");
        }
    }
}

/// The assigned partitions of `topics` (deleted and created again) start over: copying them
/// stops (`stop_copying`), their group position is committed at 0 at once (so that whoever owns
/// them next starts there), and they start a new ownership at 0. Returns them, for the caller to
/// read again from their start (the record path: [`Holds`]).
fn restart_topics(
    consumer: &BaseConsumer<RebalanceContext>,
    shared: &Shared,
    topics: &[String],
    stop_copying: impl FnOnce(&[Tp]),
) -> Vec<Tp> {
    let Ok(assigned) = consumer.assignment() else {
        return Vec::new();
    };
    let again: Vec<Tp> = assigned
        .elements()
        .iter()
        .filter(|e| topics.iter().any(|t| t == e.topic()))
        .map(|e| (Arc::from(e.topic()), e.partition()))
        .collect();
    if again.is_empty() {
        return again;
    }
    stop_copying(&again);
    let tpl = shared.stamped(again.iter().map(|(t, p)| (&**t, *p, 0)), Listed::Source);
    if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
        warn!(flow = %shared.flow, error = %e, "cannot commit the start of a topic created again; retried with the next commit");
    }
    let mut progress = shared.progress.lock().unwrap();
    for tp in &again {
        progress.assigned(tp, Some(0));
    }
    again
}

/// Partitions whose fetched records are not copied: those to read again from their start (until
/// the seek takes, their records come from the old position), and those stopped at a record the
/// target will never take (paused; nothing after that record is copied or committed, so order is
/// kept).
#[derive(Default)]
struct Holds {
    pending: Vec<Tp>,
    stopped: Vec<Tp>,
}

impl Holds {
    /// Whether records of `topic`/`partition` are held back.
    fn holds(&self, topic: &str, partition: i32) -> bool {
        self.pending
            .iter()
            .chain(&self.stopped)
            .any(|(t, p)| &**t == topic && *p == partition)
    }

    /// Stop `tp` at the record at `offset`, which the target will never take.
    fn stop(
        &mut self,
        consumer: &BaseConsumer<RebalanceContext>,
        shared: &Shared,
        tp: &Tp,
        offset: i64,
        reason: String,
    ) {
        let mut one = TopicPartitionList::new();
        one.add_partition(&tp.0, tp.1);
        if let Err(e) = consumer.pause(&one) {
            debug!(flow = %shared.flow, error = %e, "cannot pause a stopped partition; its records are dropped as they come");
        }
        error!(flow = %shared.flow, partition = %format!("{}-{}", tp.0, tp.1), offset, "{reason}");
        shared.stats.health.met(ErrorClass::Record, reason.clone());
        shared.stats.health.stopped(StoppedPartition {
            topic: tp.0.to_string(),
            partition: tp.1,
            offset,
            reason,
        });
        self.stopped.push(tp.clone());
    }

    /// Partitions given up: no longer held here (their next owner meets the same record).
    fn released(&mut self, revoked: &[Tp], shared: &Shared) {
        for tp in revoked {
            if self.stopped.contains(tp) {
                shared.stats.health.released(&tp.0, tp.1);
            }
        }
        self.pending.retain(|tp| !revoked.contains(tp));
        self.stopped.retain(|tp| !revoked.contains(tp));
    }

    /// The assigned partitions to resume when the producer has room: all but the stopped.
    fn resumable(
        &self,
        consumer: &BaseConsumer<RebalanceContext>,
    ) -> KafkaResult<TopicPartitionList> {
        let assigned = consumer.assignment()?;
        let mut out = TopicPartitionList::new();
        for e in assigned.elements() {
            if !self
                .stopped
                .iter()
                .any(|(t, p)| &**t == e.topic() && *p == e.partition())
            {
                out.add_partition(e.topic(), e.partition());
            }
        }
        Ok(out)
    }

    /// Seek what is pending (a partition just assigned may not take a seek yet); drop what this
    /// process no longer owns (its next owner starts at the committed 0).
    fn seek(&mut self, consumer: &BaseConsumer<RebalanceContext>, shared: &Shared) {
        if self.pending.is_empty() {
            return;
        }
        let owned = consumer.assignment().unwrap_or_default();
        self.pending.retain(|(t, p)| {
            if owned.find_partition(t, *p).is_none() {
                return false;
            }
            match consumer.seek(t, *p, Offset::Beginning, Duration::from_secs(1)) {
                Ok(()) => {
                    info!(flow = %shared.flow, partition = %format!("{t}-{p}"), "reading the topic created again from its start");
                    false
                }
                Err(e) => {
                    debug!(flow = %shared.flow, partition = %format!("{t}-{p}"), error = %e, "seek not taken yet; tried again");
                    true
                }
            }
        });
    }
}

/// The size of a batch holding only this record, as the broker measures it against
/// `max.message.bytes` (record batch v2, uncompressed: 61 bytes of header, then the record).
fn batch_bytes(key: Option<&[u8]>, value: Option<&[u8]>, headers: Option<&OwnedHeaders>) -> i64 {
    fn varint(v: i64) -> i64 {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        let mut n = 1;
        while z >= 0x80 {
            z >>= 7;
            n += 1;
        }
        n
    }
    let field =
        |b: Option<&[u8]>| b.map_or(varint(-1), |b| varint(b.len() as i64) + b.len() as i64);
    let mut body = 1 + 1 + 1 + field(key) + field(value); // attributes, timestamp and offset deltas
    let n = headers.map_or(0, |h| h.count());
    body += varint(n as i64);
    if let Some(h) = headers {
        for hd in h.iter() {
            body += varint(hd.key.len() as i64) + hd.key.len() as i64 + field(hd.value);
        }
    }
    61 + varint(body) + body
}

/// Why a partition stops at a record over the remote topic's limit, in one sentence.
fn too_large(tp: &Tp, offset: i64, size: i64, limit: i64, remote: &str, spec: &FlowSpec) -> String {
    format!(
        "record {}-{}@{offset} is {size} bytes, over the {limit} bytes (max.message.bytes) {remote} accepts on {}: {}-{} stops there, the rest of the flow goes on; raise max.message.bytes of {remote} on {} (or of {} on {}, which strait copies) and restart strait",
        tp.0, tp.1, spec.target.alias, tp.0, tp.1, spec.target.alias, tp.0, spec.source.alias
    )
}

/// Each remote topic's `max.message.bytes` on the target (the effective value, default
/// included); a topic whose configs cannot be read is left out (its records are not measured).
async fn record_limits(
    target: &Admin,
    policy: &ReplicationPolicy,
    topics: &[TopicInfo],
) -> HashMap<String, i64> {
    let reads = topics.iter().map(|t| async move {
        let remote = policy.remote_topic(&t.name);
        let limit = target
            .topic_configs(&remote)
            .await
            .ok()?
            .get("max.message.bytes")?
            .parse::<i64>()
            .ok()?;
        Some((remote, limit))
    });
    futures::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Stop fetching every assigned partition (the producer has no room); true when paused.
fn pause_source(consumer: &BaseConsumer<RebalanceContext>, flow: &str) -> bool {
    match consumer.assignment().and_then(|a| consumer.pause(&a)) {
        Ok(()) => true,
        Err(e) => {
            debug!(flow, error = %e, "cannot pause the source partitions");
            false
        }
    }
}

/// Fetch again: the producer has room (not the partitions stopped for good).
fn resume_source(consumer: &BaseConsumer<RebalanceContext>, flow: &str, holds: &Holds) {
    if let Err(e) = holds.resumable(consumer).and_then(|a| consumer.resume(&a)) {
        debug!(flow, error = %e, "cannot resume the source partitions");
    }
}

/// The state a copy loop shares with its clients' callbacks, and the offset-syncs producer and
/// receipts it needs.
fn new_shared(
    spec: &FlowSpec,
    stop: &CancellationToken,
    stats: Arc<FlowStats>,
    positions: Option<PositionLog>,
) -> Result<Arc<Shared>, FlowError> {
    let flow = spec.name();
    let sync_producer = match &spec.offset_syncs {
        Some(os) => {
            let in_flight = Arc::new(AtomicUsize::new(0));
            let context = SyncContext {
                diagnose: os.cluster.context(),
                in_flight: in_flight.clone(),
            };
            Some(SyncProducer {
                producer: os
                    .cluster
                    .producer_config()
                    .create_with_context::<_, ThreadedProducer<SyncContext>>(context)
                    .map_err(|e| {
                        ClientError::from_kafka(&os.cluster, "create the offset-syncs producer", e)
                    })?,
                topic: os.topic.clone(),
                in_flight,
            })
        }
        None => None,
    };
    let receipts = match &spec.receipts {
        Some(r) => Some(crate::conflicts::receipts::ReceiptSink::start(
            r.clone(),
            &spec.source,
            &spec.target,
            stats.clone(),
            stop.clone(),
        )?),
        None => None,
    };
    let shared = Arc::new(Shared {
        flow: flow.clone(),
        source: Named::of(&spec.source),
        target: Named::of(&spec.target),
        progress: Mutex::new(Progress::default()),
        syncs: Mutex::new(OffsetSyncWriter::new(spec.offset_lag_max)),
        failure: Mutex::new(None),
        stats,
        producer: OnceLock::new(),
        sync_producer,
        runs: Mutex::new(RunTracker::default()),
        index_producer: OnceLock::new(),
        index_topic: spec.index_topic.clone(),
        mm2_positions: spec
            .mm2_positions
            .as_ref()
            .zip(positions)
            .map(|(m, log)| (m.topic.clone(), Mutex::new(log))),
        revoked: Mutex::new(Vec::new()),
        topic_ids: Mutex::new(HashMap::new()),
        receipts,
        exactly_once: spec.exactly_once.is_some(),
        stop: stop.clone(),
        fenced: AtomicBool::new(false),
        source_commit_due: Mutex::new(Instant::now()),
        transaction_syncs: Mutex::new(Vec::new()),
        remote_names: Mutex::new(HashMap::new()),
        exactly_once_assignment: Mutex::new(None),
        engine: OnceLock::new(),
        source_ends: Mutex::new(HashMap::new()),
    });
    Ok(shared)
}

/// The offset index's producer (MM2's positions go through it too), set in `shared`.
fn start_index_producer(spec: &FlowSpec, shared: &Arc<Shared>) -> Result<(), FlowError> {
    let mut icfg = spec.target.producer_config();
    icfg.set("message.timeout.ms", "2147483647");
    let index_producer: ThreadedProducer<IndexContext> = icfg
        .create_with_context(IndexContext {
            shared: Arc::downgrade(shared),
            diagnose: spec.target.context(),
        })
        .map_err(|e| {
            ClientError::from_kafka(&spec.target, "create the offset index producer", e)
        })?;
    let _ = shared.index_producer.set(index_producer);
    Ok(())
}

/// The source consumer in the flow's group: it reads the records (record path), or only holds
/// the flow's share of the partitions (passthrough).
fn membership_consumer(
    spec: &FlowSpec,
    shared: &Arc<Shared>,
) -> Result<BaseConsumer<RebalanceContext>, FlowError> {
    let mut ccfg = spec.source.consumer_config(&spec.group_id());
    // A fetch waits at most this long for records (librdkafka's default is 500 ms): it bounds
    // how old the source's ends in the flow's view can be, and so the RPO estimate's margin.
    if !spec.source.props.contains_key("fetch.wait.max.ms") {
        ccfg.set("fetch.wait.max.ms", "100");
    }
    let fetch_wait_ms = ccfg
        .get("fetch.wait.max.ms")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(500);
    shared
        .stats
        .source_view
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .fetch_wait_ms = fetch_wait_ms;
    let consumer: BaseConsumer<RebalanceContext> = ccfg
        .create_with_context(RebalanceContext {
            shared: shared.clone(),
        })
        .map_err(|e| ClientError::from_kafka(&spec.source, "create the replication consumer", e))?;
    Ok(consumer)
}

/// Subscribe the consumer to `topics` (a rebalance), unless nothing changed.
fn subscribe(
    consumer: &BaseConsumer<RebalanceContext>,
    topics: &[TopicInfo],
    subscribed: &mut Option<Vec<String>>,
    spec: &FlowSpec,
    flow: &str,
) -> Result<(), String> {
    let list: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    let mut same: Vec<String> = list.iter().map(|t| t.to_string()).collect();
    same.sort_unstable();
    if list.is_empty() {
        consumer.unsubscribe();
    } else {
        if Some(&same) == subscribed.as_ref() {
            // Same topics, more partitions: the consumer's metadata cache must learn the
            // new count first, or the rebalance below hands out the old partitions.
            for t in &list {
                if let Err(e) = consumer.fetch_metadata(Some(t), spec.admin_timeout) {
                    warn!(flow = %flow, topic = t, error = %e, "cannot refresh the metadata of a grown topic; its new partitions wait for the consumer's own refresh");
                }
            }
        }
        consumer
            .subscribe(&list)
            .map_err(|e| format!("cannot subscribe to {list:?}: {e}"))?;
    }
    *subscribed = Some(same);
    Ok(())
}

/// A graceful stop's last commit (not exactly once): what was acknowledged goes into the index
/// first, within the stop's budget, then its positions are committed.
fn last_commit(consumer: &BaseConsumer<RebalanceContext>, shared: &Shared, stop_by: Instant) {
    let left = stop_by.saturating_duration_since(Instant::now());
    if let Err(n) = shared.flush_index(left.min(Duration::from_secs(2))) {
        warn!(flow = %shared.flow, in_flight = n, "the offset index was not fully written before stopping; the records it misses will be copied again on restart");
    }
    commit(consumer, shared, CommitMode::Async);
}

/// The end of a copy loop's graceful stop, after its last commit was asked for: wait for the
/// commit, leave the groups, send the last offset syncs, all within `stop_by`; then the flow's
/// outcome.
fn finish(
    flow: String,
    shared: Arc<Shared>,
    consumer: BaseConsumer<RebalanceContext>,
    membership: Option<BaseConsumer<exactly_once::MembershipContext>>,
    stop_by: Instant,
) -> Result<(), FlowError> {
    let left = || stop_by.saturating_duration_since(Instant::now());
    let deadline = Instant::now() + left().min(Duration::from_secs(2));
    let uncommitted = || {
        let runs = shared.runs.lock().unwrap();
        !shared
            .progress
            .lock()
            .unwrap()
            .to_commit_within(|tp| commit_limit(&shared, &runs, tp))
            .is_empty()
    };
    while Instant::now() < deadline && uncommitted() {
        // Serves the commit callback; records polled now are not copied and not committed.
        let _ = consumer.poll(Duration::from_millis(50));
    }
    let (closed_tx, closed_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        // Both leave their groups, so that another process takes over at once.
        drop(membership);
        drop(consumer);
        let _ = closed_tx.send(());
    });
    if closed_rx
        .recv_timeout(left().clamp(Duration::from_millis(200), Duration::from_secs(3)))
        .is_err()
    {
        warn!(flow = %flow, "the source did not answer the group leave in time; other processes take over after the session timeout");
    }
    shared.drain_syncs(left().min(Duration::from_secs(2)));
    let outcome = shared.outcome();
    // Destroying a librdkafka client waits for its broker threads, which against a cluster
    // that does not answer can take longer than the stop may: the producers go on their own.
    let _ = std::thread::Builder::new()
        .name(format!("close {flow}"))
        .spawn(move || drop(shared));
    outcome
}

/// The copy loop: poll the source, produce to the target, commit what the target acknowledged.
fn copy_loop(
    spec: &FlowSpec,
    topics_rx: &std::sync::mpsc::Receiver<ToCopy>,
    stop: &CancellationToken,
    stats: Arc<FlowStats>,
    positions: Option<PositionLog>,
    told: &mut Told,
) -> Result<(), FlowError> {
    let limits = told.limits.clone().unwrap_or_default();
    let mut again = told.again();
    let flow = spec.name();
    let fatal = |reason: String| FlowError::Fatal {
        flow: flow.clone(),
        reason,
    };
    let shared = new_shared(spec, stop, stats, positions)?;

    let mut pcfg = spec.target.producer_config();
    // Never give up on a record: a target that is down for a while is waited for, not skipped.
    pcfg.set("message.timeout.ms", "2147483647");
    // A record that fails for good must not be overtaken by the records behind it: librdkafka
    // then stops the producer (a fatal error, which ends the flow with its reason) rather than
    // writing past it.
    pcfg.set("enable.gapless.guarantee", "true");
    // Up to the largest record a remote topic takes (librdkafka's own default is 1 MB, below
    // Kafka's 1 MiB + 12), in batches no remote topic refuses.
    let user = |k: &str| spec.target.props.contains_key(k);
    if !user("message.max.bytes") {
        if let Some(max) = limits.values().max() {
            pcfg.set(
                "message.max.bytes",
                (max + 1024).clamp(1_000_000, 1_000_000_000).to_string(),
            );
        }
    }
    if !user("batch.size") {
        if let Some(min) = limits.values().min().filter(|m| **m < 1_000_000 + 1024) {
            pcfg.set("batch.size", (min - 1024).max(1).to_string());
        }
    }
    if spec.exactly_once.is_some() {
        exactly_once::transactional(&mut pcfg, &flow, &spec.target);
    }
    let max_send: i64 = pcfg
        .get("message.max.bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let compressing = ["compression.type", "compression.codec"]
        .iter()
        .any(|k| pcfg.get(k).is_some_and(|v| !v.eq_ignore_ascii_case("none")));
    let producer: ThreadedProducer<DeliveryContext> = pcfg
        .create_with_context(DeliveryContext {
            shared: Arc::downgrade(&shared),
            diagnose: spec.target.context(),
        })
        .map_err(|e| ClientError::from_kafka(&spec.target, "create the replication producer", e))?;
    let _ = shared.producer.set(producer);
    let producer = shared.producer.get().expect("just set");
    // Exactly once: the target proves it commits a transaction before anything is copied, and
    // the flow's member of its group there decides what this process copies.
    let membership = match spec.exactly_once {
        Some(_) => {
            exactly_once::begin(
                producer,
                &spec.target_reader,
                &spec.index_topic,
                spec.admin_timeout,
            )
            .map_err(|e| match e {
                exactly_once::Probe::Unsupported(reason) => fatal(reason),
                exactly_once::Probe::Failed(reason) => FlowError::Restart {
                    flow: flow.clone(),
                    reason,
                },
            })?;
            let membership: BaseConsumer<exactly_once::MembershipContext> =
                exactly_once::membership_config(&spec.target_reader, &spec.group_id())
                    .create_with_context(exactly_once::MembershipContext {
                        shared: shared.clone(),
                    })
                    .map_err(|e| {
                        ClientError::from_kafka(
                            &spec.target_reader,
                            "create the flow's group member on the target",
                            e,
                        )
                    })?;
            info!(flow = %flow, interval_ms = spec.exactly_once.unwrap_or_default().as_millis() as u64, "exactly once: transactions on the target, the group {} there", spec.group_id());
            Some(membership)
        }
        None => None,
    };
    start_index_producer(spec, &shared)?;

    let consumer = membership_consumer(spec, &shared)?;

    // Source topic -> (shared name for bookkeeping, remote topic name), computed once per topic.
    let mut handing = Handing {
        producer,
        shared: &shared,
        spec,
        flow: &flow,
        stop,
        remote_names: HashMap::new(),
        paused: false,
        jumps: Vec::new(),
        limits,
        compressing,
        max_send,
        authority: HashMap::new(),
    };
    // Records the producer had no room for, oldest first, while the partitions are paused.
    let mut parked: VecDeque<OwnedMessage> = VecDeque::new();
    let mut seen_revocations = shared.stats.revocations.load(Ordering::Relaxed);
    let mut partitions_total = 0usize;
    // Exactly once, a commit is a transaction's end.
    let mut rounds = Rounds::new(
        &shared,
        "records",
        spec.exactly_once.unwrap_or(spec.commit_interval),
        spec.offset_flush_interval,
    );
    let mut subscribed: Option<Vec<String>> = None;
    let mut holds = Holds::default();
    let mut last_membership_poll = Instant::now();
    'copy: loop {
        shared.outcome()?;
        if let Some(reason) = shared.receipts.as_ref().and_then(|r| r.failure()) {
            return Err(fatal(reason));
        }
        if stop.is_cancelled() {
            break;
        }
        let mut latest = None;
        let messages: Vec<ToCopy> = std::mem::take(&mut again)
            .into_iter()
            .chain(topics_rx.try_iter())
            .collect();
        for m in messages {
            told.keep(&m);
            match m {
                ToCopy::Topics(t) => {
                    partitions_total = t.iter().map(|t| t.partitions.max(0) as usize).sum();
                    latest = Some(t)
                }
                ToCopy::Limits(l) => handing.limits = l,
                ToCopy::Ids { ids, recreated } => {
                    // Known before the restart's commits, which are stamped with the new ids.
                    shared.topic_ids.lock().unwrap().extend(ids);
                    if !recreated.is_empty() {
                        parked.retain(|m| !recreated.iter().any(|n| n == m.topic()));
                        let again = restart_topics(&consumer, &shared, &recreated, |_| {});
                        holds.pending.extend(again);
                    }
                }
            }
        }
        if let (Some(topics), Some(m)) = (&latest, &membership) {
            exactly_once::subscribe(m, &shared, &spec.policy, topics, spec.admin_timeout)
                .map_err(fatal)?;
        } else if let Some(topics) = latest {
            subscribe(&consumer, &topics, &mut subscribed, spec, &flow).map_err(&fatal)?;
        }
        // Exactly once: the group on the target is served (its rebalances end transactions) and
        // the source consumer follows what it assigns, before anything more is read.
        if let Some(m) = &membership {
            if last_membership_poll.elapsed() >= MEMBERSHIP_POLL_EVERY {
                last_membership_poll = Instant::now();
                if let Some(Err(e)) = m.poll(Duration::ZERO) {
                    shared.client_error(true, &e, "");
                }
                exactly_once::follow_assignment(m, &consumer, &shared);
            }
        }
        // Partitions given up since the last round (the revoke callback runs inside `poll`):
        // what waits for them is the new owner's now. The counter keeps the lock off the
        // per-record path.
        let revocations = shared.stats.revocations.load(Ordering::Relaxed);
        if revocations != seen_revocations {
            seen_revocations = revocations;
            let revoked = std::mem::take(&mut *shared.revoked.lock().unwrap());
            parked.retain(|m| {
                !revoked
                    .iter()
                    .any(|(t, p)| &**t == m.topic() && *p == m.partition())
            });
            holds.released(&revoked, &shared);
        }
        while let Some(m) = parked.front() {
            match hand(Source::of(m, m.headers().cloned()), &mut handing)? {
                Handed::Sent => {
                    parked.pop_front();
                }
                Handed::Refused { tp, offset, reason } => {
                    holds.stop(&consumer, &shared, &tp, offset, reason);
                    parked.retain(|m| !holds.holds(m.topic(), m.partition()));
                }
                Handed::Full => break,
                Handed::Stopped => break 'copy,
            }
        }
        if parked.is_empty() && handing.paused {
            resume_source(&consumer, &flow, &holds);
            handing.paused = false;
        }
        // While records wait for room, the consumer is still polled (paused, it fetches
        // nothing): the group keeps this member, rebalances are served and a stop is seen.
        let wait = if parked.is_empty() {
            Duration::from_millis(100)
        } else {
            Duration::from_millis(5)
        };
        holds.seek(&consumer, &shared);
        match consumer.poll(wait) {
            // From the old position of a topic created again (read again from its start), or
            // after a record the target will never take.
            Some(Ok(m)) if holds.holds(m.topic(), m.partition()) => {}
            Some(Ok(m)) => {
                if parked.is_empty() {
                    let headers = m.headers().map(BorrowedHeaders::detach);
                    match hand(Source::of(&m, headers), &mut handing)? {
                        Handed::Sent => {}
                        Handed::Refused { tp, offset, reason } => {
                            holds.stop(&consumer, &shared, &tp, offset, reason)
                        }
                        Handed::Stopped => break 'copy,
                        Handed::Full => {
                            parked.push_back(m.detach());
                            handing.paused |= pause_source(&consumer, &flow);
                        }
                    }
                } else {
                    // Fetched before the pause took hold, or from a partition newly assigned:
                    // behind what waits, in order.
                    parked.push_back(m.detach());
                    handing.paused |= pause_source(&consumer, &flow);
                }
            }
            // librdkafka retries by itself: count it, keep it as the flow's problem, say it
            // now and then.
            Some(Err(e)) => shared.client_error(false, &e, ""),
            None => {}
        }
        for (tp, jump) in handing.jumps.drain(..) {
            look_into(&consumer, &shared, &tp, jump);
        }
        rounds.run(
            &shared,
            || producer.in_flight_count().max(0) as u64 + parked.len() as u64,
            |t, p| crate::kafka::cached_watermarks(consumer.client(), t, p).map(|(_, hi)| hi),
            partitions_total,
            || match &membership {
                Some(m) => {
                    exactly_once::commit(m, &consumer, &shared);
                    // After an abort, nothing more is read before the positions are.
                    exactly_once::follow_assignment(m, &consumer, &shared);
                }
                None => {
                    commit(&consumer, &shared, CommitMode::Async);
                    shared.send_syncs();
                }
            },
        );
    }

    // Graceful stop: everything handed to the producer is delivered, committed and synced,
    // all within one budget inside the service's grace period, so that clusters that do not
    // answer cannot hold the stop past it (what is not committed is copied again on restart).
    let stop_by = Instant::now() + STOP_BUDGET;
    let left = || stop_by.saturating_duration_since(Instant::now());
    if let Err(n) = settle(producer, left().min(Duration::from_secs(5))) {
        warn!(flow = %flow, in_flight = n, "not every record was acknowledged before stopping; they will be copied again on restart");
    }
    if let Some(r) = &shared.receipts {
        if !r.settle(left().min(Duration::from_secs(2))) {
            warn!(flow = %flow, "not every receipt was acknowledged before stopping; their records will be copied again on restart");
        }
    }
    match &membership {
        // The last transaction: what was copied since the previous one, and its positions.
        Some(m) => exactly_once::commit(m, &consumer, &shared),
        None => last_commit(&consumer, &shared, stop_by),
    }
    finish(flow, shared, consumer, membership, stop_by)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Header;

    #[test]
    fn a_record_is_measured_as_the_broker_measures_its_batch() {
        // DefaultRecordBatch.RECORD_BATCH_OVERHEAD (61) + DefaultRecord.sizeInBytes: a 17-byte
        // body (attributes, timestamp and offset deltas, key "k", a 10-byte value, no headers)
        // behind its 1-byte length.
        assert_eq!(batch_bytes(Some(b"k"), Some(&[0; 10]), None), 79);
        // Null key and value: -1 lengths, one byte each.
        assert_eq!(batch_bytes(None, None, None), 61 + 1 + 6);
        // A header adds its key and value with their lengths.
        let h = OwnedHeaders::new().insert(Header {
            key: "seq",
            value: Some(b"42".as_slice()),
        });
        assert_eq!(
            batch_bytes(Some(b"k"), Some(&[0; 10]), Some(&h)),
            79 + 1 + 3 + 1 + 2
        );
        // A body of 200 bytes needs a 2-byte length.
        let v = vec![0u8; 200];
        let body = 3 + 1 + 2 + 200 + 1;
        assert_eq!(batch_bytes(None, Some(&v), None), 61 + 2 + body);
    }
}
