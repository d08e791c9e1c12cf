//! The detector's reading session: R's receipts under the group, each Q's by assignment of the
//! same partitions, fed to one `Detector` per (receipts partition, topic), on a blocking thread.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use strait_conflicts::detect::{Delivery, Detector, Write};
use tracing::{debug, info, warn};

use crate::conflicts::keys::{KeyDigest, KeyDigester};
use crate::conflicts::receipts::{self, Entry, RECEIPTS_TOPIC};
use crate::heartbeat::now_ms;
use crate::kafka::diagnose::Diagnosed;
use crate::kafka::{Admin, Created};
use crate::replicate::topics::effective_replication_factor;
use crate::stop::{or_cancel, CancellationToken};

use super::spec::DetectSpec;
use super::writer::{self, Raw, Writer};
use super::{DetectStats, DELIVERIES_PER_KEY};
use crate::conflicts::output::OutputContext;

/// How often positions are committed (after the conflict records found are acknowledged).
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// At most this many records of one input are taken in a round.
const ROUND_MAX: usize = 2_000;
/// How long a stop waits for conflict records already handed over.
const STOP_FLUSH: Duration = Duration::from_secs(2);
/// The tag of the positions stored in a commit's metadata.
const METADATA_TAG: &str = "strait.detect/1";

/// Create the topics, then read until stopped or failed.
pub(super) async fn run(
    spec: &DetectSpec,
    cancel: &CancellationToken,
    stats: &Arc<DetectStats>,
) -> Result<(), String> {
    let admin = Admin::new(&spec.admin, spec.admin_timeout).map_err(|e| e.to_string())?;
    let created = or_cancel(cancel, async {
        receipts::ensure_topic(&admin, spec.replication_factor).await?;
        let brokers = admin.broker_count().await?;
        let rf = effective_replication_factor(spec.replication_factor, brokers);
        admin
            .create_topics(&[crate::conflicts::record::topic_spec(rf)])
            .await
    })
    .await;
    match created {
        None => return Ok(()),
        Some(Err(e)) => return Err(e.to_string()),
        Some(Ok(outcomes)) => {
            for (name, outcome) in outcomes {
                if outcome == Created::Created {
                    info!(region = %spec.region, topic = %name, "created the conflicts topic");
                }
            }
        }
    }
    drop(admin);
    let (spec, cancel, stats) = (spec.clone(), cancel.clone(), stats.clone());
    crate::kafka::blocking(move || Session::new(spec, cancel, stats)?.run()).await
}

/// Positions stored in the metadata of R's commit of partition p: each Q's.
pub(crate) fn metadata(positions: &BTreeMap<String, i64>) -> String {
    let mut out = METADATA_TAG.to_string();
    for (q, o) in positions {
        out.push_str(&format!(" {q}={o}"));
    }
    out
}

/// Read back what [`metadata`] wrote (nothing from metadata it did not write).
pub(crate) fn parse_metadata(text: &str) -> BTreeMap<String, i64> {
    let mut words = text.split_whitespace();
    if words.next() != Some(METADATA_TAG) {
        return BTreeMap::new();
    }
    words
        .filter_map(|w| {
            let (q, o) = w.split_once('=')?;
            Some((q.to_string(), o.parse().ok()?))
        })
        .collect()
}

/// The position to restart an input partition from: its earliest receipt still kept, else the
/// next one to read.
pub(crate) fn restart_position(earliest: Option<i64>, next: Option<i64>) -> Option<i64> {
    match (earliest, next) {
        (Some(e), Some(n)) => Some(e.min(n)),
        (e, n) => e.or(n),
    }
}

struct GroupContext {
    diagnose: Diagnosed,
    changed: AtomicBool,
}

crate::kafka::diagnose::diagnosed_client_context!(GroupContext, diagnose);

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(_) | Rebalance::Assign(_) => {
                self.changed.store(true, Ordering::SeqCst)
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance of the detector's group failed"),
        }
    }
}

/// Where a kept delivery's receipt was read, and what the record needs of it: carried with the
/// delivery in its detector (40 bytes).
#[derive(Clone, Copy, Debug)]
struct Kept {
    input: u16,
    offset: i64,
    raw: Raw,
}

/// The offsets of the receipts kept from one input partition, in order, with how many kept
/// deliveries each has. Receipts are read in order and let go in about that order, so a queue
/// (16 bytes a receipt) does what a B-tree did at three times the size.
#[derive(Debug, Default)]
pub(crate) struct KeptOffsets(VecDeque<(i64, u32)>);

impl KeptOffsets {
    /// One more kept delivery read at `offset`.
    pub(crate) fn add(&mut self, offset: i64) {
        match self.0.back_mut() {
            Some((o, n)) if *o == offset => *n += 1,
            Some((o, _)) if *o > offset => {
                match self.0.binary_search_by_key(&offset, |&(o, _)| o) {
                    Ok(i) => self.0[i].1 += 1,
                    Err(i) => self.0.insert(i, (offset, 1)),
                }
            }
            _ => self.0.push_back((offset, 1)),
        }
    }

    /// A kept delivery read at `offset` let go.
    pub(crate) fn remove(&mut self, offset: i64) {
        if let Ok(i) = self.0.binary_search_by_key(&offset, |&(o, _)| o) {
            let n = &mut self.0[i].1;
            *n = n.saturating_sub(1);
        }
        while self.0.front().is_some_and(|&(_, n)| n == 0) {
            self.0.pop_front();
        }
    }

    /// The earliest offset with a kept delivery.
    pub(crate) fn earliest(&self) -> Option<i64> {
        self.0.front().map(|&(o, _)| o)
    }
}

/// What the session holds for its assignment.
#[derive(Default)]
struct State {
    /// Per (receipts partition, topic number).
    detectors: HashMap<(i32, u32), Detector<KeyDigest, Kept>>,
    /// Conflict topics by number.
    topics: HashMap<String, u32>,
    /// Per (input, partition), the offsets of the receipts kept.
    kept_offsets: HashMap<(usize, i32), KeptOffsets>,
    /// Per (input, partition), the next offset to read, when known.
    next: HashMap<(usize, i32), i64>,
    assigned: Vec<i32>,
}

impl State {
    /// The number of a conflict topic's name, given on first sight.
    fn topic_number(&mut self, topic: &str) -> u32 {
        if let Some(&n) = self.topics.get(topic) {
            return n;
        }
        let n = self.topics.len() as u32;
        self.topics.insert(topic.to_string(), n);
        n
    }
}

struct Session {
    spec: DetectSpec,
    cancel: CancellationToken,
    stats: Arc<DetectStats>,
    /// Input 0: R's receipts.
    consumer: BaseConsumer<GroupContext>,
    /// Input i + 1: `spec.remotes[i]`'s receipts.
    readers: Vec<BaseConsumer<Diagnosed>>,
    writer: Writer,
    state: State,
    /// The detectors hold key digests; the receipt in hand has the bytes a record needs.
    keys: KeyDigester,
    said_malformed: bool,
}

impl Session {
    fn new(
        spec: DetectSpec,
        cancel: CancellationToken,
        stats: Arc<DetectStats>,
    ) -> Result<Self, String> {
        let mut cfg = spec.consumer.consumer_config(&spec.group());
        crate::conflicts::bound_fetch_ahead(&mut cfg, crate::conflicts::Reading::Steady);
        cfg.set("partition.assignment.strategy", "range");
        cfg.set("auto.offset.reset", "earliest");
        cfg.set("client.id", format!("strait-{}-detector", spec.region));
        let consumer: BaseConsumer<GroupContext> = cfg
            .create_with_context(GroupContext {
                diagnose: spec.consumer.context(),
                changed: AtomicBool::new(false),
            })
            .map_err(|e| format!("cannot create the detector's consumer: {e}"))?;
        consumer
            .subscribe(&[RECEIPTS_TOPIC])
            .map_err(|e| format!("cannot subscribe to {RECEIPTS_TOPIC}: {e}"))?;
        let mut readers = Vec::new();
        for q in &spec.remotes {
            let mut cfg = q.consumer.consumer_config("strait-internal-reader");
            crate::conflicts::bound_fetch_ahead(&mut cfg, crate::conflicts::Reading::Steady);
            cfg.set("client.id", format!("strait-{}-detector", spec.region));
            readers.push(
                cfg.create_with_context(q.consumer.context()).map_err(|e| {
                    format!("cannot create a reader of {}'s receipts: {e}", q.alias)
                })?,
            );
        }
        let mut cfg = spec.producer.producer_config();
        cfg.set("client.id", format!("strait-{}-detector", spec.region));
        let producer = cfg
            .create_with_context(OutputContext::new(spec.producer.context()))
            .map_err(|e| format!("cannot create the conflicts producer: {e}"))?;
        let writer = Writer::new(producer, stats.counted.clone());
        info!(region = %spec.region, group = %spec.group(), remotes = ?spec.remotes.iter().map(|r| r.alias.as_str()).collect::<Vec<_>>(), "detecting concurrent writes");
        Ok(Self {
            spec,
            cancel,
            stats,
            consumer,
            readers,
            writer,
            state: State::default(),
            keys: KeyDigester::new(),
            said_malformed: false,
        })
    }

    fn run(mut self) -> Result<(), String> {
        let mut last_commit = Instant::now();
        while !self.cancel.is_cancelled() {
            let until = Instant::now() + Duration::from_millis(100);
            for _ in 0..ROUND_MAX {
                let left = until.saturating_duration_since(Instant::now());
                let got = match self.consumer.poll(left) {
                    Some(Ok(m)) => Some(Ok((
                        m.partition(),
                        m.offset(),
                        m.payload().map(<[u8]>::to_vec),
                    ))),
                    Some(Err(e)) => Some(Err(e)),
                    None => None,
                };
                if self
                    .consumer
                    .context()
                    .changed
                    .swap(false, Ordering::SeqCst)
                {
                    self.reassign()?;
                }
                match got {
                    Some(Ok((p, o, payload))) => {
                        self.handle(0, p, o, payload.as_deref())?;
                    }
                    Some(Err(e)) => {
                        debug!(region = %self.spec.region, error = %e, "receipts consumer error");
                        break;
                    }
                    None => break,
                }
            }
            for i in 0..self.readers.len() {
                for _ in 0..ROUND_MAX {
                    match self.readers[i].poll(Duration::ZERO) {
                        Some(Ok(m)) => {
                            let (p, o) = (m.partition(), m.offset());
                            let payload = m.payload().map(<[u8]>::to_vec);
                            drop(m);
                            self.handle(i + 1, p, o, payload.as_deref())?;
                        }
                        Some(Err(e)) => {
                            debug!(region = %self.spec.region, remote = %self.spec.remotes[i].alias, error = %e, "receipts reader error");
                            break;
                        }
                        None => break,
                    }
                }
            }
            if last_commit.elapsed() >= COMMIT_EVERY {
                last_commit = Instant::now();
                let kept: usize = self.state.detectors.values().map(Detector::kept).sum();
                self.stats.kept.store(kept as u64, Ordering::Relaxed);
                if !self.writer.settle(|| self.cancel.is_cancelled())? {
                    break;
                }
                self.commit();
            }
        }
        let deadline = Instant::now() + STOP_FLUSH;
        if self.writer.settle(|| Instant::now() >= deadline)? {
            self.commit();
        }
        Ok(())
    }

    /// The group gave or took partitions: start over from the commits of those assigned.
    fn reassign(&mut self) -> Result<(), String> {
        self.state = State::default();
        let assignment = self
            .consumer
            .assignment()
            .map_err(|e| format!("cannot read the detector's assignment: {e}"))?;
        let parts: Vec<i32> = assignment
            .elements()
            .iter()
            .filter(|e| e.topic() == RECEIPTS_TOPIC)
            .map(|e| e.partition())
            .collect();
        // Per partition, each Q's position stored with R's commit.
        let mut starts: HashMap<i32, BTreeMap<String, i64>> = HashMap::new();
        if !parts.is_empty() {
            let committed = self
                .consumer
                .committed(self.spec.admin_timeout)
                .map_err(|e| format!("cannot read the detector's commits: {e}"))?;
            for e in committed.elements() {
                if let Offset::Offset(o) = e.offset() {
                    self.state.next.insert((0, e.partition()), o);
                }
                starts.insert(e.partition(), parse_metadata(e.metadata()));
            }
        }
        for (i, q) in self.spec.remotes.iter().enumerate() {
            let mut tpl = TopicPartitionList::new();
            for &p in &parts {
                let at = starts.get(&p).and_then(|m| m.get(&q.alias).copied());
                let offset = match at {
                    Some(o) => {
                        self.state.next.insert((i + 1, p), o);
                        Offset::Offset(o)
                    }
                    None => Offset::Beginning,
                };
                tpl.add_partition_offset(RECEIPTS_TOPIC, p, offset)
                    .map_err(|e| e.to_string())?;
            }
            self.readers[i]
                .assign(&tpl)
                .map_err(|e| format!("cannot read {}'s receipts: {e}", q.alias))?;
        }
        debug!(region = %self.spec.region, partitions = ?parts, "receipts partitions assigned");
        self.state.assigned = parts;
        Ok(())
    }

    /// Commit, per partition assigned, where a restart must read again from.
    fn commit(&self) {
        let mut tpl = TopicPartitionList::new();
        for &p in &self.state.assigned {
            let at = |input: usize| {
                restart_position(
                    self.state
                        .kept_offsets
                        .get(&(input, p))
                        .and_then(KeptOffsets::earliest),
                    self.state.next.get(&(input, p)).copied(),
                )
            };
            let Some(here) = at(0) else { continue };
            let remote: BTreeMap<String, i64> = self
                .spec
                .remotes
                .iter()
                .enumerate()
                .filter_map(|(i, q)| Some((q.alias.clone(), at(i + 1)?)))
                .collect();
            let mut e = tpl.add_partition(RECEIPTS_TOPIC, p);
            let _ = e.set_offset(Offset::Offset(here));
            e.set_metadata(metadata(&remote));
        }
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync) {
            debug!(region = %self.spec.region, error = %e, "detector positions not committed; tried again in a second");
        }
    }

    /// Take in one record of input `input`'s receipts partition `p`.
    fn handle(
        &mut self,
        input: usize,
        p: i32,
        offset: i64,
        payload: Option<&[u8]>,
    ) -> Result<(), String> {
        if !self.state.assigned.contains(&p) {
            return Ok(());
        }
        self.state.next.insert((input, p), offset + 1);
        let entry = match Entry::decode(payload.unwrap_or_default()) {
            Ok(e) => e,
            Err(e) => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                if !self.said_malformed {
                    self.said_malformed = true;
                    warn!(region = %self.spec.region, partition = p, offset, "{e}; skipped (said once)");
                }
                return Ok(());
            }
        };
        // The region whose cluster this input is.
        let here = if input == 0 {
            self.spec.rank
        } else {
            self.spec.remotes[input - 1].rank
        };
        let rank = |alias: &str| self.spec.conflicts.rank(alias);
        match entry {
            Entry::Receipt(r) => {
                self.stats.receipts.fetch_add(1, Ordering::Relaxed);
                let (Some(origin), Some(into)) = (rank(&r.origin), rank(&r.into)) else {
                    return Ok(());
                };
                // On R: copies of the others' writes into R. On Q: copies of R's into Q.
                let wanted = into == here
                    && if input == 0 {
                        origin != self.spec.rank
                    } else {
                        origin == self.spec.rank
                    };
                let Some(rule) = self.spec.conflicts.rule_for(&r.topic) else {
                    return Ok(());
                };
                if !wanted {
                    return Ok(());
                }
                let topic = self.state.topic_number(&r.topic);
                let clocks = self.spec.clocks;
                let d = Delivery {
                    write: Write {
                        origin,
                        partition: r.partition,
                        offset: r.offset,
                        timestamp: clocks.stamp(origin, r.timestamp),
                        digest: r.value_digest,
                    },
                    into,
                    visible: clocks.visible(r.sent_ms, r.acked_ms),
                };
                let kept = Kept {
                    input: input as u16,
                    offset,
                    raw: Raw {
                        timestamp: r.timestamp,
                        sent_ms: r.sent_ms,
                        acked_ms: r.acked_ms,
                    },
                };
                let det = self
                    .state
                    .detectors
                    .entry((p, topic))
                    .or_insert_with(|| Detector::telling_releases(DELIVERIES_PER_KEY));
                let (before, live) = (det.dropped(), det.kept() as u64);
                let pairs = det.deliver_with(self.keys.digest(&r.key), d, kept);
                let after = det.dropped();
                // Kept, not ignored as a copy delivered twice (one pushed out for it counts).
                let taken = det.kept() as u64 + (after.evicted - before.evicted) > live;
                self.stats
                    .evicted
                    .fetch_add(after.evicted - before.evicted, Ordering::Relaxed);
                if after.late != before.late {
                    self.stats.late.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                if taken {
                    self.state
                        .kept_offsets
                        .entry((input, p))
                        .or_default()
                        .add(offset);
                }
                let now = now_ms();
                for pair in &pairs {
                    let (ka, kb) = &pair.carried;
                    if let Some(record) = writer::record(
                        &self.spec, &r.topic, rule, &r.key, pair, &ka.raw, &kb.raw, now,
                    ) {
                        self.writer.write(&self.spec, &record)?;
                        self.stats.written.fetch_add(1, Ordering::Relaxed);
                        debug!(region = %self.spec.region, id = %record.id(), certain = record.certain, "concurrent writes recorded");
                    }
                }
                self.released(p, topic);
            }
            Entry::Progress(m) => {
                let (Some(origin), Some(into)) = (rank(&m.origin), rank(&m.into)) else {
                    return Ok(());
                };
                if into != here {
                    return Ok(());
                }
                for (topic, partition, before) in m.marks {
                    if self.spec.conflicts.rule_for(&topic).is_none() {
                        continue;
                    }
                    let through = self.spec.clocks.progress(origin, before);
                    let number = self.state.topic_number(&topic);
                    self.state
                        .detectors
                        .entry((p, number))
                        .or_insert_with(|| Detector::telling_releases(DELIVERIES_PER_KEY))
                        .progress(origin, into, partition, through);
                    self.released(p, number);
                }
            }
        }
        Ok(())
    }

    /// Forget the receipts of deliveries the detector of (`p`, topic number `topic`) let go.
    fn released(&mut self, p: i32, topic: u32) {
        let Some(det) = self.state.detectors.get_mut(&(p, topic)) else {
            return;
        };
        for (_, k) in det.take_released() {
            if let Some(offsets) = self.state.kept_offsets.get_mut(&(k.input as usize, p)) {
                offsets.remove(k.offset);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn positions_in_metadata_read_back(positions in prop::collection::btree_map("[a-z][a-z0-9-]{0,10}", 0i64..i64::MAX, 0..4)) {
            prop_assert_eq!(parse_metadata(&metadata(&positions)), positions);
        }

        /// Whatever the order deliveries are let go in, the earliest offset kept is that of a
        /// multiset holding the same.
        #[test]
        fn kept_offsets_know_the_earliest(offsets in prop::collection::vec(0i64..50, 1..60), order in prop::collection::vec(any::<prop::sample::Index>(), 0..60)) {
            let mut sorted = offsets.clone();
            sorted.sort();
            let mut kept = KeptOffsets::default();
            let mut truth: BTreeMap<i64, u32> = BTreeMap::new();
            for &o in &sorted {
                kept.add(o);
                *truth.entry(o).or_default() += 1;
            }
            // A few read out of order too (a seek back).
            kept.add(sorted[0]);
            *truth.entry(sorted[0]).or_default() += 1;
            for ix in order {
                if truth.is_empty() {
                    break;
                }
                let o = *truth.keys().nth(ix.index(truth.len())).unwrap();
                kept.remove(o);
                let n = truth.get_mut(&o).unwrap();
                *n -= 1;
                if *n == 0 {
                    truth.remove(&o);
                }
                prop_assert_eq!(kept.earliest(), truth.keys().next().copied());
            }
        }

        /// A restart reads again from the earliest receipt kept, never past the next unread.
        #[test]
        fn restart_is_at_the_earliest_kept_receipt(kept in prop::collection::btree_map(0i64..1_000, 1u32..3, 0..10), next in prop::option::of(0i64..1_000)) {
            let mut offsets = KeptOffsets::default();
            for (&o, &n) in &kept {
                for _ in 0..n {
                    offsets.add(o);
                }
            }
            let at = restart_position(offsets.earliest(), next);
            for o in kept.keys() {
                prop_assert!(at.unwrap() <= *o);
            }
            if let Some(n) = next {
                prop_assert!(at.unwrap() <= n);
            }
            prop_assert_eq!(at.is_none(), kept.is_empty() && next.is_none());
        }
    }

    #[test]
    fn metadata_strait_did_not_write_gives_no_position() {
        assert!(parse_metadata("").is_empty());
        assert!(parse_metadata("something else west=4").is_empty());
        assert_eq!(
            parse_metadata("strait.detect/1 west=4 east=x"),
            BTreeMap::from([("west".to_string(), 4)])
        );
    }
}
