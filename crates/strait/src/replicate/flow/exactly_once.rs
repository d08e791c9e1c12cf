//! Exactly-once replication (issue 18; MirrorMaker 2's KIP-618 settings): a flow's copies, their
//! offset index records and its source positions are committed in one transaction on the
//! target, so a `read_committed` reader of the remote topics sees each source record once,
//! whatever crashed, stopped or moved meanwhile.
//!
//! **Why the group is on the target.** Which process copies a source partition is decided by a
//! consumer group, and a process that lost a partition (paused, cut off, evicted: a zombie) must
//! never commit into it again. Kafka fences zombies by the group's generation (KIP-447): a
//! transaction commits offsets for a group of the producer's own cluster, with the generation of
//! the member that sends them, and a stale generation fails the transaction. So the flow's group
//! `strait.S->T` lives on the target here: it subscribes to the remote topics (the partitions of
//! their sources; strait keeps the counts equal), never reads them, and takes their assignment as
//! the source partitions to copy, which the source consumer then reads by assignment. The group's
//! committed offset of a remote partition is the next source offset of its source partition,
//! stamped with the source topic's id as at-least-once commits are. The positions live on the
//! target, committed with exactly the records they count.
//!
//! **One transaction at a time.** Each flow has one transactional producer in a process; its
//! `transactional.id` is new at every start, since the group, not the id, fences. A transaction
//! ends every `transaction.boundary` interval: every record sent is acknowledged, the offset
//! index records of their runs are sent, then the positions, then the commit. Only then are the
//! offset syncs of its records written (outside the transaction, as in MirrorMaker 2, and naming
//! committed records only), the positions copied to the source group (where lag tools read
//! them) and to MirrorMaker 2's offsets topic. A transaction that fails is aborted, and every
//! partition starts again from its committed position. A process that crashed leaves its open
//! transaction to `transaction.timeout.ms` (10 s unless set): `read_committed` readers, and the
//! next owner's read of the positions, wait for it that long.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, ConsumerGroupMetadata,
};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use tracing::{debug, info, warn};

use super::{settle, Delivery, DeliveryContext, Listed, RebalanceContext, Shared, Tp};
use crate::kafka::Endpoint;

/// `transaction.timeout.ms` unless the target's producer properties set it: how long a crashed
/// process's open transaction holds `read_committed` readers back.
const TRANSACTION_TIMEOUT_MS: &str = "10000";

/// The group whose committed offset the start's probe transaction writes: never a real group.
const PROBE_GROUP: &str = "strait.exactly-once-probe";

/// Make a producer configuration transactional, under a `transactional.id` of its own.
pub(super) fn transactional(cfg: &mut rdkafka::ClientConfig, flow: &str, target: &Endpoint) {
    cfg.set(
        "transactional.id",
        format!("strait.{flow}.{}", uuid::Uuid::new_v4().simple()),
    );
    if !target.props.contains_key("transaction.timeout.ms") {
        cfg.set("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS);
    }
    // librdkafka requires `message.timeout.ms` within the transaction's timeout; a record the
    // target does not take in time fails its transaction, which starts over from its positions.
    let timeout = cfg
        .get("transaction.timeout.ms")
        .unwrap_or(TRANSACTION_TIMEOUT_MS)
        .to_string();
    cfg.set("message.timeout.ms", timeout);
    cfg.remove("enable.gapless.guarantee");
}

/// Why the start's probe transaction failed.
pub(super) enum Probe {
    /// The broker has no transactions: the flow cannot run exactly once there.
    Unsupported(String),
    /// Anything else (the target away, the producer fenced meanwhile): tried again with a new
    /// producer.
    Failed(String),
}

/// Whether `e` says the broker lacks what transactions need (Tansu answers an unknown request
/// by closing the connection, which librdkafka reports as an unsupported feature or version).
fn unsupported_by_broker(e: &KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(C::UnsupportedFeature | C::UnsupportedVersion | C::UnsupportedForMessageFormat)
    ) || e.to_string().contains("not supported")
}

/// Make the producer's transactions ready, and prove the target commits one before anything is
/// written: a transaction that only commits an offset of [`PROBE_GROUP`]. A broker without
/// transactions (the Tansu sandbox) fails here with one sentence, and no record is written.
pub(super) fn begin(
    producer: &ThreadedProducer<DeliveryContext>,
    target_reader: &Endpoint,
    index_topic: &str,
    timeout: Duration,
) -> Result<(), Probe> {
    let cluster = format!(
        "cluster {} ({})",
        target_reader.alias,
        target_reader.bootstrap_servers()
    );
    let failed = |step: &str, e: KafkaError| {
        if unsupported_by_broker(&e) {
            Probe::Unsupported(format!(
                "{cluster} cannot run exactly-once replication: {step} failed ({e}); exactly-once \
                 needs a broker with transactions (Apache Kafka 2.5 or later; the Tansu sandbox \
                 has none): set `exactly.once.support = disabled` for this flow, or point it at \
                 such a broker"
            ))
        } else {
            Probe::Failed(format!(
                "the start's probe transaction on {cluster} failed: {step}: {e}"
            ))
        }
    };
    producer
        .init_transactions(timeout)
        .map_err(|e| failed("starting transactions (InitProducerId)", e))?;
    let probe: BaseConsumer = target_reader
        .consumer_config(PROBE_GROUP)
        .create()
        .map_err(|e| {
            Probe::Failed(format!(
                "cannot create the exactly-once probe on {cluster}: {e}"
            ))
        })?;
    let metadata = probe.group_metadata().ok_or_else(|| {
        Probe::Failed(format!(
            "no group metadata for the exactly-once probe on {cluster}"
        ))
    })?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(index_topic, 0, Offset::Offset(0))
        .map_err(|e| Probe::Failed(e.to_string()))?;
    producer
        .begin_transaction()
        .map_err(|e| failed("beginning a transaction", e))?;
    let probed = producer
        .send_offsets_to_transaction(&tpl, &metadata, timeout)
        .map_err(|e| failed("adding offsets to a transaction (TxnOffsetCommit)", e))
        .and_then(|()| {
            producer
                .commit_transaction(timeout)
                .map_err(|e| failed("committing a transaction (EndTxn)", e))
        });
    if let Err(e) = probed {
        let _ = producer.abort_transaction(timeout);
        return Err(e);
    }
    producer
        .begin_transaction()
        .map_err(|e| failed("beginning a transaction", e))
}

/// The configuration of the flow's member of its group on the target. A member that dies is
/// noticed within Kafka Connect's times (10 s of silence, or 30 s stuck in a rebalance) rather
/// than a consumer's (45 s, and 5 minutes for a member killed while it was rejoining), unless
/// the target's consumer properties say otherwise: until then, nobody copies its partitions.
pub(super) fn membership_config(target: &Endpoint, group: &str) -> rdkafka::ClientConfig {
    let mut cfg = target.consumer_config(group);
    for (k, v) in [
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "3000"),
        ("max.poll.interval.ms", "30000"),
    ] {
        if !target.props.contains_key(k) {
            cfg.set(k, v);
        }
    }
    cfg
}

/// The flow's member of its group on the target: the partitions it is given are the remote
/// copies of the source partitions it copies.
pub(super) struct MembershipContext {
    pub(super) shared: Arc<Shared>,
}

impl ClientContext for MembershipContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.shared.client_error(true, &error, reason)
    }
}

impl ConsumerContext for MembershipContext {
    /// Eager rebalances only (the consumer's `range,roundrobin`): every assignment is whole.
    /// Before partitions go, the open transaction ends (committed, or aborted), so that the next
    /// owner starts where this process really stopped; the source consumer follows the new
    /// assignment in the copy loop, before it reads again.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let shared = &self.shared;
        if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            if let Err(e) = consumer.assign(tpl) {
                warn!(flow = %shared.flow, error = %e, "cannot take the group's new assignment; the group rebalances again");
            }
            // The remote topics are the group's only to hold: never read.
            let _ = consumer.pause(tpl);
            let remote: Vec<(String, i32)> = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect();
            info!(flow = %shared.flow, partitions = remote.len(), "partitions assigned (exactly once)");
            *shared.exactly_once_assignment.lock().unwrap() = Some(remote);
            return;
        }
        if let Some(metadata) = consumer.group_metadata() {
            if let Err(e) = end(shared, &metadata, TRANSACTION_WAIT) {
                warn!(flow = %shared.flow, error = %e, "the open transaction could not be committed before giving up partitions; it is aborted, and the next owner copies its records again");
                abort(shared);
            }
        }
        let owned = shared.progress.lock().unwrap().owned();
        shared.give_up(&owned);
        let _ = consumer.unassign();
        *shared.exactly_once_assignment.lock().unwrap() = Some(Vec::new());
        info!(flow = %shared.flow, partitions = tpl.count(), "partitions revoked (exactly once)");
    }
}

/// End the open transaction and begin the next: every record sent acknowledged (their offsets
/// on the target make the index), the index records of their runs sent, the positions added,
/// the transaction committed. Then what only committed records may name: offset syncs,
/// MirrorMaker 2's positions. Returns the positions committed (source topic, partition, next
/// offset).
pub(super) fn end(
    shared: &Shared,
    group: &ConsumerGroupMetadata,
    timeout: Duration,
) -> Result<Vec<(Tp, i64)>, String> {
    let producer = shared.producer.get().expect("the producer is made first");
    let waited = |n: usize| format!("{n} records were not acknowledged within {timeout:?}");
    let began = std::time::Instant::now();
    let slow = |step: &str| {
        if began.elapsed() > Duration::from_secs(1) {
            warn!(flow = %shared.flow, step, took_ms = began.elapsed().as_millis() as u64, "slow transaction end");
        }
    };
    settle(producer, timeout).map_err(waited)?;
    slow("records acknowledged");
    let runs = shared.runs.lock().unwrap().take_pending();
    let mut written = Vec::with_capacity(runs.len());
    for run in runs {
        let (k, v) = (run.record.key(), run.record.value());
        let tp: Tp = (Arc::from(run.record.topic.as_str()), run.record.partition);
        let rec = BaseRecord::with_opaque_to(&shared.index_topic, Box::new(Delivery::index(&tp)))
            .partition(0)
            .key(&k)
            .payload(&v);
        producer
            .send(rec)
            .map_err(|(e, _)| format!("cannot send an offset index record: {e}"))?;
        written.push((tp, run.id, run.record.pairs()));
    }
    // The index records are acknowledged while the positions are added (below), and waited
    // for before the commit: rust-rdkafka's commit flushes first, and its flush, finding
    // anything in flight, polls this producer's queue from this thread in 100 ms steps (the
    // producer's own thread takes the reports). Left to it, every end took 100 ms more, longer
    // than the interval it ends: each transaction then held one record (4 KB/s in the bench).
    let positions = shared
        .progress
        .lock()
        .unwrap()
        .to_commit_within(|_| Some(i64::MAX));
    if !positions.is_empty() {
        let tpl = shared.stamped(
            positions.iter().map(|((t, p), o)| (&**t, *p, *o)),
            Listed::Remote,
        );
        producer
            .send_offsets_to_transaction(&tpl, group, timeout)
            .map_err(|e| format!("cannot add the positions to the transaction: {e}"))?;
        slow("positions added");
    }
    settle(producer, timeout).map_err(|n| {
        format!("{n} offset index records were not acknowledged within {timeout:?}")
    })?;
    producer
        .commit_transaction(timeout)
        .map_err(|e| format!("cannot commit the transaction: {e}"))?;
    slow("committed");
    let mut runs = shared.runs.lock().unwrap();
    for (tp, id, pairs) in written {
        runs.persisted(&tp, id, pairs);
    }
    drop(runs);
    let mut progress = shared.progress.lock().unwrap();
    for (tp, o) in &positions {
        progress.committed(tp, *o);
    }
    drop(progress);
    let syncs = std::mem::take(&mut *shared.transaction_syncs.lock().unwrap());
    if !syncs.is_empty() {
        let mut writer = shared.syncs.lock().unwrap();
        for (tp, up, down) in syncs {
            writer.record(&tp.0, tp.1, up, down);
        }
        drop(writer);
        shared.send_syncs();
    }
    shared.write_positions(&positions);
    producer
        .begin_transaction()
        .map_err(|e| format!("cannot begin the next transaction: {e}"))?;
    Ok(positions)
}

/// End the open transaction ([`end`]) and copy its positions to the source group, where lag
/// tools read them; or, when it fails, abort it ([`abort`]).
pub(super) fn commit(
    membership: &BaseConsumer<MembershipContext>,
    source: &BaseConsumer<RebalanceContext>,
    shared: &Shared,
) {
    let Some(group) = membership.group_metadata() else {
        return;
    };
    match end(shared, &group, TRANSACTION_WAIT) {
        Ok(_) => {
            // At most every second, as at-least-once flows commit: the newest positions.
            let mut due = shared.source_commit_due.lock().unwrap();
            if due.elapsed() < Duration::from_secs(1) {
                return;
            }
            *due = std::time::Instant::now();
            drop(due);
            let positions: Vec<(Tp, i64)> = shared
                .progress
                .lock()
                .unwrap()
                .positions()
                .into_iter()
                .filter_map(|(tp, o)| Some((tp, o?)))
                .collect();
            if positions.is_empty() {
                return;
            }
            let tpl = shared.stamped(
                positions.iter().map(|((t, p), o)| (&**t, *p, *o)),
                Listed::Source,
            );
            if let Err(e) = source.commit(&tpl, CommitMode::Async) {
                debug!(flow = %shared.flow, error = %e, "positions not copied to the source group; copied at the next transaction");
            }
        }
        Err(e) => {
            warn!(flow = %shared.flow, error = %e, "the transaction failed; it is aborted, and its partitions start again from their committed positions");
            abort(shared);
        }
    }
}

/// How long reading the flow's positions on the target may take (a crashed process's open
/// transaction holds them for up to its `transaction.timeout.ms`).
const POSITIONS_WAIT: Duration = Duration::from_secs(30);

/// How long a transaction's end may wait for its records, and the commit for the broker.
const TRANSACTION_WAIT: Duration = Duration::from_secs(10);

/// The group on the target follows the remote topics of `topics` (the source topics to copy).
pub(super) fn subscribe(
    membership: &BaseConsumer<MembershipContext>,
    shared: &Shared,
    policy: &crate::policy::ReplicationPolicy,
    topics: &[crate::kafka::TopicInfo],
    timeout: Duration,
) -> Result<(), String> {
    let remote: Vec<String> = {
        let mut names = shared.remote_names.lock().unwrap();
        topics
            .iter()
            .map(|t| {
                names
                    .entry(t.name.clone())
                    .or_insert_with(|| policy.remote_topic(&t.name))
                    .clone()
            })
            .collect()
    };
    if remote.is_empty() {
        membership.unsubscribe();
        return Ok(());
    }
    // A grown topic: the member's metadata must know the new count before the rebalance.
    for t in &remote {
        if let Err(e) = membership.fetch_metadata(Some(t), timeout) {
            debug!(flow = %shared.flow, topic = %t, error = %e, "remote topic metadata not refreshed");
        }
    }
    let list: Vec<&str> = remote.iter().map(String::as_str).collect();
    membership
        .subscribe(&list)
        .map_err(|e| format!("cannot subscribe the flow's group on the target to {list:?}: {e}"))
}

/// Abort the open transaction and begin another; every partition then starts again from its
/// committed position (the copy loop reads them again, as at an assignment). An abort that
/// fails for good leaves the producer unusable: the flow ends with the reason.
pub(super) fn abort(shared: &Shared) {
    let producer = shared.producer.get().expect("the producer is made first");
    shared.transaction_syncs.lock().unwrap().clear();
    // A target away cannot take the abort: it is asked again until it does (a timeout is
    // retriable), or until the producer cannot go on.
    let mut backoff =
        crate::backoff::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let aborted = loop {
        match producer.abort_transaction(Duration::from_secs(10)) {
            Ok(()) => break true,
            // Stopping: the broker aborts it when its timeout passes.
            Err(_) if shared.stop.is_cancelled() => break false,
            // A fenced producer says so again at every call: it is replaced.
            Err(KafkaError::Transaction(e)) if e.is_retriable() && !e.is_fatal() => {
                debug!(flow = %shared.flow, error = %e, "the abort of the transaction did not get through; asked again");
                std::thread::sleep(backoff.next_wait());
            }
            Err(e) => {
                let msg = format!("the flow's transaction could not be aborted: {e}");
                shared.fenced.store(true, Ordering::Relaxed);
                shared.failure.lock().unwrap().get_or_insert(msg);
                return;
            }
        }
    };
    if !aborted {
        return;
    }
    if let Err(e) = producer.begin_transaction() {
        let msg = format!("cannot begin a transaction after an abort: {e}");
        shared.fenced.store(true, Ordering::Relaxed);
        shared.failure.lock().unwrap().get_or_insert(msg);
        return;
    }
    let owned = shared.progress.lock().unwrap().owned();
    // Read again, as the group assigned them.
    let again: Vec<(String, i32)> = {
        let remote = shared.remote_names.lock().unwrap();
        owned
            .iter()
            .map(|(t, p)| {
                (
                    remote.get(&**t).cloned().unwrap_or_else(|| t.to_string()),
                    *p,
                )
            })
            .collect()
    };
    shared.give_up(&owned);
    shared
        .exactly_once_assignment
        .lock()
        .unwrap()
        .get_or_insert(again);
}

/// Take the group's latest assignment, if it changed: each source partition resumes at the
/// position committed on the target, else at the source group's commit (a flow that ran at
/// least once before), else where `auto.offset.reset` says.
pub(super) fn follow_assignment(
    membership: &BaseConsumer<MembershipContext>,
    source: &BaseConsumer<RebalanceContext>,
    shared: &Shared,
) {
    let Some(remote) = shared.exactly_once_assignment.lock().unwrap().take() else {
        return;
    };
    if remote.is_empty() {
        let _ = source.unassign();
        shared.stats.assigned_partitions.store(0, Ordering::Relaxed);
        return;
    }
    // (remote topic, source topic, partition) of each partition assigned.
    let pairs: Vec<(String, String, i32)> = {
        let names = shared.remote_names.lock().unwrap();
        let upstream: HashMap<&str, &str> = names
            .iter()
            .map(|(s, r)| (r.as_str(), s.as_str()))
            .collect();
        remote
            .iter()
            .filter_map(|(r, p)| match upstream.get(r.as_str()) {
                Some(s) => Some((r.clone(), s.to_string(), *p)),
                None => {
                    debug!(flow = %shared.flow, topic = %r, "an assigned remote topic whose source is not known yet; taken at the next assignment");
                    None
                }
            })
            .collect()
    };
    let mut on_target = TopicPartitionList::new();
    let mut tpl = TopicPartitionList::new();
    for (r, s, p) in &pairs {
        on_target.add_partition(r, *p);
        tpl.add_partition(s, *p);
    }
    // Only the target knows how far committed transactions got: until it answers, nothing is
    // read (the source group's commits may be behind them).
    let asked = std::time::Instant::now();
    let read = membership.committed_offsets(on_target, POSITIONS_WAIT);
    if asked.elapsed() > Duration::from_secs(1) {
        warn!(flow = %shared.flow, took_ms = asked.elapsed().as_millis() as u64, "slow read of the positions");
    }
    let committed_on_target = match read {
        Ok(c) => c,
        Err(e) => {
            warn!(flow = %shared.flow, error = %e, "cannot read the flow's positions on the target; asked again before anything is copied");
            let _ = source.unassign();
            shared
                .exactly_once_assignment
                .lock()
                .unwrap()
                .get_or_insert(remote);
            return;
        }
    };
    let committed_on_source = source
        .committed_offsets(tpl.clone(), Duration::from_secs(10))
        .map_err(
            |e| debug!(flow = %shared.flow, error = %e, "cannot read the source group's commits"),
        )
        .ok();
    // One list of commits, by source partition: the target's first.
    let mut committed = TopicPartitionList::new();
    for (r, s, p) in &pairs {
        let from_target = committed_on_target
            .find_partition(r, *p)
            .filter(|c| matches!(c.offset(), Offset::Offset(_)));
        let from_source = committed_on_source
            .as_ref()
            .and_then(|c| c.find_partition(s, *p))
            .filter(|c| matches!(c.offset(), Offset::Offset(_)));
        if let Some(c) = from_target.or(from_source) {
            let mut added = committed.add_partition(s, *p);
            let _ = added.set_offset(c.offset());
            added.set_metadata(c.metadata());
        }
    }
    super::resume_points(shared, Some(&committed), &mut tpl);
    for e in committed.elements() {
        if let Some(mut at) = tpl.find_partition(e.topic(), e.partition()) {
            if at.offset() == Offset::Invalid {
                let _ = at.set_offset(e.offset());
            }
        }
    }
    if let Err(e) = source.assign(&tpl) {
        let msg = format!("cannot read the source partitions the group assigned: {e}");
        shared.failure.lock().unwrap().get_or_insert(msg);
        return;
    }
    shared
        .stats
        .assigned_partitions
        .store(tpl.count() as u64, Ordering::Relaxed);
}
