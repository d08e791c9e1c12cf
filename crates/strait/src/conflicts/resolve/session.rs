//! One session of a view job on a blocking thread: the input consumer (a group on R), the view
//! producer, the winners per key, and the commits after acknowledgements.

use super::headers::{
    digest, is_view_header, parse_view_headers, OFFSET_HEADER, ORIGIN_HEADER, PARTITION_HEADER,
};
use super::spec::{signature, Positions, ResolveSpec, ViewPlan};
use super::{Ended, ResolveStats};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, Timestamp, TopicPartitionList};
use strait_conflicts::lww::{Offer, Version, View};
use strait_conflicts::Rank;
use tracing::{debug, error, info, warn};

use crate::conflicts::keys::{KeyDigest, KeyDigester};
use crate::conflicts::output::OutputContext;
use crate::kafka::diagnose::Diagnosed;
use crate::kafka::{Admin, Created, TopicInfo, TopicSpec};
use crate::replicate::topics::effective_replication_factor;
use crate::stop::{or_cancel, pause, CancellationToken};

/// How often the topics are listed again while an input is still missing (a remote copy the
/// flow has not created yet), or no input exists at all.
pub(super) const INCOMPLETE_REFRESH: Duration = Duration::from_secs(2);
/// At most this many records are taken in before what they produced is awaited and committed.
pub(super) const BATCH_MAX: usize = 5_000;
/// ... or what arrived within this time.
pub(super) const BATCH_WINDOW: Duration = Duration::from_millis(100);
/// How long a stop waits for records already handed to the producer.
pub(super) const STOP_FLUSH: Duration = Duration::from_secs(2);

/// Set up the views for the inputs R has now, then keep them until stopped, failed, or the
/// inputs change.
pub(super) async fn session(
    spec: &ResolveSpec,
    cancel: &CancellationToken,
    stats: &Arc<ResolveStats>,
) -> Result<Ended, String> {
    let admin = Admin::new(&spec.admin, spec.admin_timeout).map_err(|e| e.to_string())?;
    let plans = loop {
        let Some(topics) = or_cancel(cancel, admin.topics(None)).await else {
            return Ok(Ended::Stopped);
        };
        let plans = spec.plan(&topics.map_err(|e| e.to_string())?);
        if !plans.is_empty() {
            break plans;
        }
        if !pause(cancel, INCOMPLETE_REFRESH.min(spec.refresh)).await {
            return Ok(Ended::Stopped);
        }
    };
    {
        let mut said = stats.said.lock().unwrap();
        for problem in plans.iter().filter_map(ViewPlan::partition_problem) {
            if said.0.insert(problem.clone()) {
                error!(rule = %spec.rule, region = %spec.region, "{problem}");
            }
        }
    }
    let create: Vec<&ViewPlan> = plans
        .iter()
        .filter(|p| p.output_partitions.is_none())
        .collect();
    if !create.is_empty() {
        let Some(brokers) = or_cancel(cancel, admin.broker_count()).await else {
            return Ok(Ended::Stopped);
        };
        let rf = effective_replication_factor(
            spec.replication_factor,
            brokers.map_err(|e| e.to_string())?,
        );
        let specs: Vec<TopicSpec> = create
            .iter()
            .map(|p| {
                TopicSpec::new(&p.output, p.partitions(), rf)
                    .config("cleanup.policy", "compact")
                    // Versions are read back from the records' own timestamps.
                    .config("message.timestamp.type", "CreateTime")
            })
            .collect();
        let Some(created) = or_cancel(cancel, admin.create_topics(&specs)).await else {
            return Ok(Ended::Stopped);
        };
        for (name, outcome) in created.map_err(|e| e.to_string())? {
            if outcome == Created::Created {
                info!(rule = %spec.rule, region = %spec.region, topic = %name, "created the view topic");
            }
        }
    }
    {
        let mut said = stats.said.lock().unwrap();
        let sig = signature(&plans);
        if said.1 != sig {
            for p in &plans {
                let inputs: Vec<&str> = p.inputs.iter().map(|i| i.topic.as_str()).collect();
                info!(
                    rule = %spec.rule,
                    region = %spec.region,
                    inputs = ?inputs,
                    waiting_for = ?p.missing,
                    output = %p.output,
                    group = %spec.group(),
                    "keeping a last-writer-wins view"
                );
            }
            said.1 = sig;
        }
    }
    drop(admin);
    let (spec, cancel, stats) = (spec.clone(), cancel.clone(), stats.clone());
    crate::kafka::blocking(move || Session::new(spec, plans, cancel, stats)?.run()).await
}

/// Errors and rebalances of the input consumer, and what was taken in but not yet committed.
pub(super) struct InputContext {
    diagnose: Diagnosed,
    name: String,
    state: Mutex<Rebalanced>,
}

#[derive(Default)]
pub(super) struct Rebalanced {
    /// Partitions were given up or assigned since the loop last looked.
    changed: bool,
    /// The next input offset per partition whose views are written and acknowledged, not yet
    /// committed.
    pending: Positions,
}

crate::kafka::diagnose::diagnosed_client_context!(InputContext, diagnose);

impl ConsumerContext for InputContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut state = self.state.lock().unwrap();
        match rebalance {
            Rebalance::Revoke(tpl) => {
                state.changed = true;
                // Nothing is in flight between batches: commit what is acknowledged for the
                // partitions going away, so their next owner starts after it.
                let mut commit = TopicPartitionList::new();
                for e in tpl.elements() {
                    if let Some(o) = state
                        .pending
                        .remove(&(e.topic().to_string(), e.partition()))
                    {
                        let _ = commit.add_partition_offset(
                            e.topic(),
                            e.partition(),
                            Offset::Offset(o),
                        );
                    }
                }
                if commit.count() > 0 {
                    if let Err(e) = consumer.commit(&commit, CommitMode::Sync) {
                        debug!(view = %self.name, error = %e, "commit before giving up partitions failed; their next owner reads some again");
                    }
                }
            }
            Rebalance::Assign(_) => state.changed = true,
            Rebalance::Error(e) => {
                warn!(view = %self.name, error = %e, "rebalance of the view's consumer group failed")
            }
        }
    }
}

/// Why the blocking loop ended early.
pub(super) type Stop = String;

/// One session's clients and views, on a blocking thread.
pub(super) struct Session {
    spec: ResolveSpec,
    plans: Vec<ViewPlan>,
    cancel: CancellationToken,
    stats: Arc<ResolveStats>,
    /// Input topic -> (its view, the rank of the region it holds writes of).
    inputs: HashMap<String, (usize, Rank)>,
    /// View topic -> its view.
    outputs: HashMap<String, usize>,
    /// The winners of each (view, partition) this process holds, by key digest.
    views: HashMap<(usize, i32), View<KeyDigest>>,
    keys: KeyDigester,
    consumer: BaseConsumer<InputContext>,
    producer: ThreadedProducer<OutputContext>,
    /// Reads views back (no group: assigned partitions).
    reader: BaseConsumer<Diagnosed>,
}

impl Session {
    fn new(
        spec: ResolveSpec,
        plans: Vec<ViewPlan>,
        cancel: CancellationToken,
        stats: Arc<ResolveStats>,
    ) -> Result<Self, Stop> {
        let name = spec.name();
        let mut inputs = HashMap::new();
        for (i, p) in plans.iter().enumerate() {
            for input in &p.inputs {
                let rank = spec.rank(&input.origin).ok_or_else(|| {
                    format!("{} is not in strait.conflicts.regions", input.origin)
                })?;
                inputs.insert(input.topic.clone(), (i, rank));
            }
        }
        let outputs = plans
            .iter()
            .enumerate()
            .map(|(i, p)| (p.output.clone(), i))
            .collect();
        let mut cfg = spec.consumer.consumer_config(&spec.group());
        crate::conflicts::bound_fetch_ahead(&mut cfg, crate::conflicts::Reading::Steady);
        // Partition p of every input to one member (see the module's comment), from the
        // beginning where the group has no commit.
        cfg.set("partition.assignment.strategy", "range");
        cfg.set("auto.offset.reset", "earliest");
        cfg.set("client.id", format!("strait-{}-resolver", spec.region));
        let consumer: BaseConsumer<InputContext> = cfg
            .create_with_context(InputContext {
                diagnose: spec.consumer.context(),
                name: name.clone(),
                state: Mutex::new(Rebalanced::default()),
            })
            .map_err(|e| format!("cannot create the view's consumer: {e}"))?;
        let mut cfg = spec.producer.producer_config();
        cfg.set("client.id", format!("strait-{}-resolver", spec.region));
        let producer: ThreadedProducer<OutputContext> = cfg
            .create_with_context(OutputContext::new(spec.producer.context()))
            .map_err(|e| format!("cannot create the view's producer: {e}"))?;
        let mut cfg = spec.consumer.consumer_config("strait-internal-reader");
        crate::conflicts::bound_fetch_ahead(&mut cfg, crate::conflicts::Reading::ReadBack);
        cfg.set("client.id", format!("strait-{}-reader", spec.region));
        let reader: BaseConsumer<Diagnosed> = cfg
            .create_with_context(spec.consumer.context())
            .map_err(|e| format!("cannot create a reader of the views: {e}"))?;
        let topics: Vec<&str> = inputs.keys().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| format!("cannot subscribe to {topics:?}: {e}"))?;
        Ok(Self {
            spec,
            plans,
            cancel,
            stats,
            inputs,
            outputs,
            views: HashMap::new(),
            keys: KeyDigester::new(),
            consumer,
            producer,
            reader,
        })
    }

    fn name(&self) -> String {
        self.spec.name()
    }

    /// Take in batches until stopped, failed, or the inputs change.
    fn run(mut self) -> Result<Ended, Stop> {
        let refresh = if self.plans.iter().any(|p| !p.missing.is_empty()) {
            INCOMPLETE_REFRESH.min(self.spec.refresh)
        } else {
            self.spec.refresh
        };
        let mut next_refresh = Instant::now() + refresh;
        let ended = loop {
            if self.cancel.is_cancelled() {
                break Ok(Ended::Stopped);
            }
            let batch = self.collect()?;
            if !batch.is_empty() {
                match self.take(&batch)? {
                    Some(done) => self.commit(done),
                    None => break Ok(Ended::Stopped),
                }
            }
            if Instant::now() >= next_refresh {
                next_refresh = Instant::now() + refresh;
                if self.inputs_changed() {
                    break Ok(Ended::TopicsChanged);
                }
            }
        };
        self.commit(Positions::new());
        ended
    }

    /// Poll for at most [`BATCH_WINDOW`] or [`BATCH_MAX`] records. A rebalance drops what was
    /// taken before it (each of those partitions resumes from its commit, here or elsewhere)
    /// and the winners held (read again from the views for the partitions assigned).
    fn collect(&mut self) -> Result<Vec<OwnedMessage>, Stop> {
        let until = Instant::now() + BATCH_WINDOW;
        let mut batch = Vec::new();
        while batch.len() < BATCH_MAX && !self.cancel.is_cancelled() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let got = self.consumer.poll(left);
            if std::mem::take(&mut self.consumer.context().state.lock().unwrap().changed) {
                batch.clear();
                self.views.clear();
            }
            match got {
                Some(Ok(m)) => batch.push(m.detach()),
                Some(Err(e)) => self.input_error(e)?,
                None => {}
            }
        }
        Ok(batch)
    }

    /// An error the input consumer returned: a topic not there (yet) is waited for, a refused
    /// authorization ends the session, others are librdkafka's transient errors.
    fn input_error(&self, e: KafkaError) -> Result<(), Stop> {
        use RDKafkaErrorCode as C;
        match e.rdkafka_error_code() {
            Some(C::UnknownTopicOrPartition | C::UnknownTopic | C::UnknownPartition) => {
                debug!(view = %self.name(), error = %e, "an input is not there yet");
                Ok(())
            }
            Some(C::TopicAuthorizationFailed | C::GroupAuthorizationFailed) => {
                Err(format!("reading the inputs was refused: {e}"))
            }
            _ => {
                debug!(view = %self.name(), error = %e, "input consumer error");
                Ok(())
            }
        }
    }

    /// Offer every record of `batch` to its view, write the winners, and wait for them: the
    /// next input offset of each partition, to commit; `None` when stopped before every winner
    /// was acknowledged (nothing of the batch is committed then).
    fn take(&mut self, batch: &[OwnedMessage]) -> Result<Option<Positions>, Stop> {
        let need: BTreeSet<(usize, i32)> = batch
            .iter()
            .filter_map(|m| {
                let (view, _) = self.inputs.get(m.topic())?;
                Some((*view, m.partition()))
            })
            .filter(|k| !self.views.contains_key(k))
            .collect();
        if !need.is_empty() && !self.rebuild(&need)? {
            return Ok(None);
        }
        let mut done = BTreeMap::new();
        for m in batch {
            let Some(&(view, rank)) = self.inputs.get(m.topic()) else {
                continue;
            };
            done.insert((m.topic().to_string(), m.partition()), m.offset() + 1);
            self.stats.read.fetch_add(1, Ordering::Relaxed);
            let Some(key) = m.key() else {
                self.stats.keyless.fetch_add(1, Ordering::Relaxed);
                if !self.stats.said_keyless.swap(true, Ordering::Relaxed) {
                    warn!(view = %self.name(), topic = m.topic(), partition = m.partition(), offset = m.offset(), "records without a key are skipped: last-writer-wins settles the versions of a key (said once; counted)");
                }
                continue;
            };
            let timestamp = match m.timestamp() {
                Timestamp::CreateTime(t) if t >= 0 => t,
                Timestamp::LogAppendTime(t) if t >= 0 => {
                    if !self.stats.said_log_append.swap(true, Ordering::Relaxed) {
                        warn!(view = %self.name(), topic = m.topic(), "an input's timestamps are the broker's append times (message.timestamp.type = LogAppendTime), which differ between regions for the same write: views may not converge; use CreateTime for conflict topics (said once)");
                    }
                    t
                }
                _ => {
                    self.stats.untimed.fetch_add(1, Ordering::Relaxed);
                    if !self.stats.said_untimed.swap(true, Ordering::Relaxed) {
                        warn!(view = %self.name(), topic = m.topic(), partition = m.partition(), offset = m.offset(), "records without a timestamp are skipped (said once; counted)");
                    }
                    continue;
                }
            };
            let version = Version {
                timestamp,
                origin: rank,
                partition: m.partition(),
                offset: m.offset(),
                digest: digest(m.payload()),
            };
            let Some(winners) = self.views.get_mut(&(view, m.partition())) else {
                continue; // read back above
            };
            if let Offer::Won { .. } = winners.offer(self.keys.digest(key), version) {
                self.write(view, m, key, timestamp)?;
            }
        }
        if !self.settle()? {
            return Ok(None);
        }
        Ok(Some(done))
    }

    /// Write `m`, a new winner, to its view.
    fn write(&self, view: usize, m: &OwnedMessage, key: &[u8], timestamp: i64) -> Result<(), Stop> {
        let origin = self.plans[view]
            .inputs
            .iter()
            .find(|i| i.topic == m.topic())
            .map(|i| i.origin.as_str())
            .unwrap_or_default();
        let mut headers = OwnedHeaders::new();
        if let Some(hs) = m.headers() {
            for h in hs.iter().filter(|h| !is_view_header(h.key)) {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        let (partition, offset) = (m.partition().to_string(), m.offset().to_string());
        for (k, v) in [
            (ORIGIN_HEADER, origin),
            (PARTITION_HEADER, &partition),
            (OFFSET_HEADER, &offset),
        ] {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.plans[view].output)
            .partition(m.partition())
            .key(key)
            .timestamp(timestamp)
            .headers(headers);
        if let Some(v) = m.payload() {
            rec = rec.payload(v);
        }
        loop {
            match self.producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    return Err(format!(
                        "cannot hand a record to the producer of {}: {e}",
                        self.plans[view].output
                    ))
                }
            }
        }
        self.stats.written.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Wait until every view record handed to the producer is acknowledged: true when they
    /// are, false when stopped first (given [`STOP_FLUSH`] more), an error when one failed.
    fn settle(&self) -> Result<bool, Stop> {
        let mut deadline: Option<Instant> = None;
        loop {
            if let Some(e) = self.producer.context().take_failure() {
                return Err(e);
            }
            if self.producer.in_flight_count() <= 0 {
                return Ok(true);
            }
            if self.cancel.is_cancelled() {
                let d = *deadline.get_or_insert_with(|| Instant::now() + STOP_FLUSH);
                if Instant::now() >= d {
                    return Ok(false);
                }
            }
            let _ = self.producer.flush(Duration::from_millis(100));
        }
    }

    /// Commit `done` with what an earlier commit could not.
    fn commit(&self, done: Positions) {
        let mut state = self.consumer.context().state.lock().unwrap();
        state.pending.extend(done);
        if state.pending.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in &state.pending {
            let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
        }
        match self.consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => state.pending.clear(),
            Err(e) => {
                debug!(view = %self.name(), error = %e, "input offsets not committed; tried again with the next batch")
            }
        }
    }

    /// Read back the winners of each (view, partition) in `need` from the view topic, from its
    /// start to its end as of now. False when stopped first.
    fn rebuild(&mut self, need: &BTreeSet<(usize, i32)>) -> Result<bool, Stop> {
        let timeout = self.spec.admin_timeout;
        let mut ends: HashMap<(String, i32), i64> = HashMap::new();
        let mut tpl = TopicPartitionList::new();
        for &(view, p) in need {
            self.views.insert((view, p), View::new());
            let out = &self.plans[view].output;
            // A view topic just created may have no leader known yet: asked again until it has.
            let asked = Instant::now();
            let (lo, hi) = loop {
                match self.reader.fetch_watermarks(out, p, timeout) {
                    Ok(w) => break w,
                    Err(e) if asked.elapsed() >= timeout => {
                        return Err(format!("cannot read the end of {out}-{p}: {e}"))
                    }
                    Err(e) => {
                        debug!(view = %self.name(), topic = %out, partition = p, error = %e, "view end not known yet; asking again");
                        if self.cancel.is_cancelled() {
                            return Ok(false);
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            };
            if hi > lo {
                ends.insert((out.clone(), p), hi);
                tpl.add_partition_offset(out, p, Offset::Beginning)
                    .map_err(|e| e.to_string())?;
            }
        }
        if ends.is_empty() {
            return Ok(true);
        }
        self.reader
            .assign(&tpl)
            .map_err(|e| format!("cannot read the views back: {e}"))?;
        let deadline = Instant::now() + timeout;
        let mut kept = 0u64;
        while !ends.is_empty() {
            if self.cancel.is_cancelled() {
                let _ = self.reader.unassign();
                return Ok(false);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the views were not read back within {}s",
                    timeout.as_secs()
                ));
            }
            match self.reader.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let tp = (m.topic().to_string(), m.partition());
                    if ends.get(&tp).is_some_and(|end| m.offset() + 1 >= *end) {
                        ends.remove(&tp);
                    }
                    let Some(&view) = self.outputs.get(m.topic()) else {
                        continue;
                    };
                    let origin = m
                        .headers()
                        .and_then(|hs| parse_view_headers(hs.iter().map(|h| (h.key, h.value))));
                    let version = match (origin, m.key(), m.timestamp().to_millis()) {
                        (Some((alias, partition, offset)), Some(key), Some(timestamp)) => {
                            self.spec.rank(&alias).map(|origin| {
                                (
                                    key,
                                    Version {
                                        timestamp,
                                        origin,
                                        partition,
                                        offset,
                                        digest: digest(m.payload()),
                                    },
                                )
                            })
                        }
                        _ => None,
                    };
                    match version {
                        Some((key, v)) => {
                            if let Some(w) = self.views.get_mut(&(view, m.partition())) {
                                w.offer(self.keys.digest(key), v);
                                kept += 1;
                            }
                        }
                        None => {
                            if !self.stats.said_foreign.swap(true, Ordering::Relaxed) {
                                warn!(view = %self.name(), topic = m.topic(), partition = m.partition(), offset = m.offset(), "a view record without strait's headers (strait.origin, strait.partition, strait.offset) or a known region was not written by strait; ignored (said once)");
                            }
                        }
                    }
                }
                // Compaction leaves the last offsets empty: a position at the end is the end.
                Some(Err(_)) | None => {
                    if let Ok(pos) = self.reader.position() {
                        for e in pos.elements() {
                            if let Offset::Offset(o) = e.offset() {
                                let tp = (e.topic().to_string(), e.partition());
                                if ends.get(&tp).is_some_and(|end| o >= *end) {
                                    ends.remove(&tp);
                                }
                            }
                        }
                    }
                }
            }
        }
        let _ = self.reader.unassign();
        debug!(view = %self.name(), partitions = need.len(), records = kept, "winners read back from the views");
        // The read-back's buffers are freed among the tables: give them back now.
        crate::memory::give_back_freed();
        Ok(true)
    }

    /// Whether R's topics now give other inputs (or partition counts) than this session's.
    fn inputs_changed(&self) -> bool {
        let md = match self.consumer.fetch_metadata(None, self.spec.admin_timeout) {
            Ok(md) => md,
            Err(e) => {
                debug!(view = %self.name(), error = %e, "topics not listed; tried again at the next refresh");
                return false;
            }
        };
        let topics: Vec<TopicInfo> = md
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| TopicInfo {
                name: t.name().to_string(),
                partitions: t.partitions().len() as i32,
            })
            .collect();
        let now = self.spec.plan(&topics);
        signature(&now) != signature(&self.plans)
            || now
                .iter()
                .map(|p| &p.missing)
                .ne(self.plans.iter().map(|p| &p.missing))
    }
}
