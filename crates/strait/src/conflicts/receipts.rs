//! Receipts: when each copy of a conflict topic's record became readable in the region it was
//! copied into, written by the flow that copied it, read by the detector (`detect`).
//!
//! **What.** A flow S->T copying a record of a topic a conflict rule covers (S's local topic,
//! the write made in S; copies of copies are not) knows when it handed the copy to its
//! producer (`sent`) and when T acknowledged it (`acked`): the copy became readable in T within
//! `[sent, acked]` on the copying process's clock. The flow writes a receipt to
//! `strait.receipts` on T: origin and target region, topic, partition, offset, the record's
//! timestamp, key, a digest of its value, and that window.
//!
//! **Where.** `strait.receipts` has [`RECEIPT_PARTITIONS`] partitions on every cluster, and a
//! receipt goes to the partition of its key's digest, so that every receipt of one key is in the
//! same partition number on every region's cluster: the detector of a region reads partition p
//! here and there together. It is time-retained ([`RECEIPT_RETENTION`]): a cut longer than that
//! loses the receipts of its first writes (their conflicts are missed).
//!
//! **Progress.** Every second the flow also writes, into every receipts partition, a progress
//! mark: per source partition it copies, an instant before which every record appended to it
//! has been delivered and its receipt acknowledged. It follows those receipts in every
//! partition, so a detector reading a partition in order has seen every receipt it covers
//! (the detector turns it into timestamps with `clock::Clocks::progress`, and lets go of what
//! can pair with nothing more).
//!
//! **At least once.** The flow commits a source offset only once the receipts of the records
//! before it are acknowledged, so a crash loses no receipt: the records are copied again, with
//! new receipts. The cost is small: receipts go through their own producer, batched, and the
//! copy path only waits on them at commit time.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use tracing::{debug, error, warn};

use crate::config::{Config, Flow};
use crate::heartbeat::now_ms;
use crate::kafka::diagnose::Diagnosed;
use crate::kafka::{Admin, ClientError, Created, Endpoint, TopicSpec};
use crate::replicate::{FlowStats, NameMatcher};
use crate::stop::CancellationToken;

use super::resolve::digest;

/// The topic on every region's cluster that holds the receipts of the copies made into it.
pub const RECEIPTS_TOPIC: &str = "strait.receipts";
/// Its partition count, the same everywhere (a key's receipts are in the same partition number
/// on every cluster).
pub const RECEIPT_PARTITIONS: i32 = 8;
/// How long receipts are kept.
pub const RECEIPT_RETENTION: Duration = Duration::from_secs(86_400);
/// How often progress marks are written.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The receipts partition of a key.
pub(crate) fn partition_of(key: &[u8]) -> i32 {
    (digest(Some(key)) % RECEIPT_PARTITIONS as u64) as i32
}

/// The receipts topic as strait creates it.
pub(crate) fn topic_spec(replication_factor: i32) -> TopicSpec {
    TopicSpec::new(RECEIPTS_TOPIC, RECEIPT_PARTITIONS, replication_factor)
        .config("cleanup.policy", "delete")
        .config("retention.ms", RECEIPT_RETENTION.as_millis().to_string())
}

/// Create the receipts topic on the cluster of `admin` if it is not there.
pub(crate) async fn ensure_topic(
    admin: &Admin,
    replication_factor: i32,
) -> Result<(), ClientError> {
    let brokers = admin.broker_count().await?;
    let rf = crate::replicate::topics::effective_replication_factor(replication_factor, brokers);
    for (name, outcome) in admin.create_topics(&[topic_spec(rf)]).await? {
        if outcome == Created::Created {
            tracing::info!(cluster = %admin.endpoint().alias, topic = %name, "created the receipts topic");
        }
    }
    Ok(())
}

/// One copy of a write, and when it became readable where it was copied to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Receipt {
    /// The region written in (the flow's source).
    pub origin: String,
    /// The region copied into (the flow's target).
    pub into: String,
    /// The local topic written (in the origin region).
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The record's timestamp, as written.
    pub timestamp: i64,
    pub key: Vec<u8>,
    /// `resolve::digest` of the value.
    pub value_digest: u64,
    /// Handed to the producer (the copying process's clock, ms).
    pub sent_ms: i64,
    /// Acknowledged by the target.
    pub acked_ms: i64,
}

/// Every record appended to each listed partition of `topic` in `origin` before `before_ms`
/// (the copying process's clock) has been delivered into `into`, with its receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProgressMark {
    pub origin: String,
    pub into: String,
    /// (topic, partition, before_ms).
    pub marks: Vec<(String, i32, i64)>,
}

/// A record of `strait.receipts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    Receipt(Receipt),
    Progress(ProgressMark),
}

/// A record of `strait.receipts` that strait cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a record of strait.receipts is not a receipt of this version of strait: {0}")]
pub(crate) struct Malformed(&'static str);

const TAG_RECEIPT: u8 = 1;
const TAG_PROGRESS: u8 = 2;

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(u16::MAX as usize);
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&b[..n]);
}

impl Entry {
    /// The bytes written (a tag, then big-endian fields; strings and the key prefixed by their
    /// length).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        match self {
            Entry::Receipt(r) => {
                out.push(TAG_RECEIPT);
                put_str(&mut out, &r.origin);
                put_str(&mut out, &r.into);
                put_str(&mut out, &r.topic);
                out.extend_from_slice(&r.partition.to_be_bytes());
                out.extend_from_slice(&r.offset.to_be_bytes());
                out.extend_from_slice(&r.timestamp.to_be_bytes());
                out.extend_from_slice(&r.value_digest.to_be_bytes());
                out.extend_from_slice(&r.sent_ms.to_be_bytes());
                out.extend_from_slice(&r.acked_ms.to_be_bytes());
                out.extend_from_slice(&(r.key.len() as u32).to_be_bytes());
                out.extend_from_slice(&r.key);
            }
            Entry::Progress(p) => {
                out.push(TAG_PROGRESS);
                put_str(&mut out, &p.origin);
                put_str(&mut out, &p.into);
                out.extend_from_slice(&(p.marks.len() as u32).to_be_bytes());
                for (t, part, before) in &p.marks {
                    put_str(&mut out, t);
                    out.extend_from_slice(&part.to_be_bytes());
                    out.extend_from_slice(&before.to_be_bytes());
                }
            }
        }
        out
    }

    /// Read back what [`Entry::encode`] wrote.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Entry, Malformed> {
        let mut r = Reader(bytes);
        let entry = match r.u8()? {
            TAG_RECEIPT => Entry::Receipt(Receipt {
                origin: r.str()?,
                into: r.str()?,
                topic: r.str()?,
                partition: r.i32()?,
                offset: r.i64()?,
                timestamp: r.i64()?,
                value_digest: r.i64()? as u64,
                sent_ms: r.i64()?,
                acked_ms: r.i64()?,
                key: {
                    let n = r.i32()? as u32 as usize;
                    r.take(n)?.to_vec()
                },
            }),
            TAG_PROGRESS => {
                let origin = r.str()?;
                let into = r.str()?;
                let n = r.i32()? as u32 as usize;
                let mut marks = Vec::with_capacity(n.min(4096));
                for _ in 0..n {
                    marks.push((r.str()?, r.i32()?, r.i64()?));
                }
                Entry::Progress(ProgressMark {
                    origin,
                    into,
                    marks,
                })
            }
            _ => return Err(Malformed("unknown kind")),
        };
        if !r.0.is_empty() {
            return Err(Malformed("bytes after its end"));
        }
        Ok(entry)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed("cut short"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }
    fn i32(&mut self) -> Result<i32, Malformed> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i64(&mut self) -> Result<i64, Malformed> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn str(&mut self) -> Result<String, Malformed> {
        let n = u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| Malformed("a name is not UTF-8"))
    }
}

/// What a flow needs to write receipts: set on its `FlowSpec` when the flow runs between two
/// regions of `strait.conflicts.regions` and a rule exists.
#[derive(Clone)]
pub struct ReceiptSpec {
    /// The flow's source alias (the origin of what it copies).
    pub(crate) origin: String,
    /// True for a source topic whose records get receipts: a local topic a rule covers.
    pub(crate) covers: NameMatcher,
    /// For the receipts topic, if the flow creates it.
    pub(crate) replication_factor: i32,
}

impl std::fmt::Debug for ReceiptSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiptSpec")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl ReceiptSpec {
    /// The receipts of `flow`, if it copies between two conflict regions of a file with rules.
    pub fn for_flow(config: &Config, flow: &Flow) -> Option<Arc<Self>> {
        let c = &config.conflicts;
        if c.rules.is_empty() || c.rank(&flow.source).is_none() || c.rank(&flow.target).is_none() {
            return None;
        }
        let conflicts = Arc::new(c.clone());
        let derived = c.derived();
        let aliases: Vec<String> = config.clusters.iter().map(|c| c.alias.clone()).collect();
        let policy = flow.policy.clone();
        let covers: NameMatcher = Arc::new(move |t: &str| {
            conflicts.rule_for(t).is_some()
                && !derived.contains(t)
                && !policy.is_internal_topic(t)
                && !policy.is_heartbeats_topic(t)
                && !policy
                    .topic_source(t)
                    .is_some_and(|s| aliases.iter().any(|a| a == s))
        });
        Some(Arc::new(Self {
            origin: flow.source.clone(),
            covers,
            replication_factor: i32::from(flow.replication_factor),
        }))
    }
}

/// A source partition, as the flow's bookkeeping names it.
type Tp = crate::replicate::progress::Tp;

/// Receipts handed to the producer and not yet acknowledged, per source partition (offsets,
/// with a count: a record copied twice under one ownership has two).
type Pending = HashMap<Tp, BTreeMap<i64, u32>>;

struct SinkContext {
    diagnose: Diagnosed,
    pending: Arc<Mutex<Pending>>,
    failed: Arc<Mutex<Option<String>>>,
}

crate::kafka::diagnose::diagnosed_client_context!(SinkContext, diagnose);

impl ProducerContext for SinkContext {
    /// The source record a receipt is of; none for a progress mark.
    type DeliveryOpaque = Box<Option<(Tp, i64)>>;

    fn delivery(&self, result: &DeliveryResult<'_>, of: Self::DeliveryOpaque) {
        match result {
            Ok(_) => {
                if let Some((tp, offset)) = *of {
                    let mut pending = self.pending.lock().unwrap();
                    if let Some(offsets) = pending.get_mut(&tp) {
                        if let Some(n) = offsets.get_mut(&offset) {
                            *n -= 1;
                            if *n == 0 {
                                offsets.remove(&offset);
                            }
                        }
                        if offsets.is_empty() {
                            pending.remove(&tp);
                        }
                    }
                }
            }
            // A lost progress mark is superseded by the next; a lost receipt stops the flow
            // (its source offsets were never committed: a restart copies the records again).
            Err((e, _)) if of.is_some() => {
                let msg = format!("a receipt could not be written to {RECEIPTS_TOPIC}: {e}");
                error!("{msg}");
                self.failed.lock().unwrap().get_or_insert(msg);
            }
            Err((e, _)) => {
                debug!(error = %e, "a progress mark was not written; the next one follows")
            }
        }
    }
}

/// A flow's receipt writer: its own producer to the target, and the progress marks' thread.
pub(crate) struct ReceiptSink {
    spec: Arc<ReceiptSpec>,
    into: String,
    producer: Arc<ThreadedProducer<SinkContext>>,
    pending: Arc<Mutex<Pending>>,
    failed: Arc<Mutex<Option<String>>>,
    /// Records of conflict topics copied without a timestamp (no receipt: they cannot be
    /// judged).
    untimed: AtomicU64,
    /// Source topic -> whether its records get receipts (the rules' regexes, asked once).
    covered: Mutex<HashMap<String, bool>>,
}

impl ReceiptSink {
    /// Create the producer and start the progress marks for the flow `source`->`target`; they
    /// stop with `stop`.
    pub(crate) fn start(
        spec: Arc<ReceiptSpec>,
        source: &Endpoint,
        target: &Endpoint,
        stats: Arc<FlowStats>,
        stop: CancellationToken,
    ) -> Result<Arc<Self>, ClientError> {
        let pending = Arc::new(Mutex::new(Pending::new()));
        let failed = Arc::new(Mutex::new(None));
        let mut cfg = target.producer_config();
        // As the copy: never give up on a receipt while the target is away.
        cfg.set("message.timeout.ms", "2147483647");
        cfg.set("client.id", format!("strait-{}-receipts", target.alias));
        let producer: ThreadedProducer<SinkContext> = cfg
            .create_with_context(SinkContext {
                diagnose: target.context(),
                pending: pending.clone(),
                failed: failed.clone(),
            })
            .map_err(|e| ClientError::from_kafka(target, "create the receipts producer", e))?;
        let mut ccfg = source.consumer_config("strait-internal-reader");
        ccfg.set("client.id", format!("strait-{}-receipts", source.alias));
        let watermarks: BaseConsumer<Diagnosed> =
            ccfg.create_with_context(source.context()).map_err(|e| {
                ClientError::from_kafka(source, "create the receipts' progress reader", e)
            })?;
        let sink = Arc::new(Self {
            spec,
            into: target.alias.clone(),
            producer: Arc::new(producer),
            pending,
            failed,
            untimed: AtomicU64::new(0),
            covered: Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&sink);
        let name = format!("receipts {}->{}", source.alias, target.alias);
        let _ = std::thread::Builder::new()
            .name(name)
            .spawn(move || marks(weak, watermarks, stats, stop));
        Ok(sink)
    }

    /// Whether records of source topic `topic` get receipts.
    pub(crate) fn covers(&self, topic: &str) -> bool {
        if let Some(c) = self.covered.lock().unwrap().get(topic) {
            return *c;
        }
        let c = (self.spec.covers)(topic);
        self.covered.lock().unwrap().insert(topic.to_string(), c);
        c
    }

    /// The receipt of `copy`, record `offset` of source partition `tp` handed to the producer at
    /// `sent_ms`, just acknowledged by the target. Called from the flow's delivery callback,
    /// before the record counts as acknowledged.
    pub(crate) fn send<M: Message>(&self, tp: &Tp, offset: i64, copy: &M, sent_ms: i64) {
        let Some(timestamp) = copy.timestamp().to_millis().filter(|t| *t >= 0) else {
            if self.untimed.fetch_add(1, Ordering::Relaxed) == 0 {
                warn!(topic = %tp.0, "records of a conflict topic without a timestamp get no receipt: their conflicts cannot be found (said once)");
            }
            return;
        };
        let key = copy.key().unwrap_or_default();
        let receipt = Entry::Receipt(Receipt {
            origin: self.spec.origin.clone(),
            into: self.into.clone(),
            topic: tp.0.to_string(),
            partition: tp.1,
            offset,
            timestamp,
            key: key.to_vec(),
            value_digest: digest(copy.payload()),
            sent_ms,
            acked_ms: now_ms(),
        })
        .encode();
        *self
            .pending
            .lock()
            .unwrap()
            .entry(tp.clone())
            .or_default()
            .entry(offset)
            .or_default() += 1;
        let mut rec: BaseRecord<'_, (), Vec<u8>, _> =
            BaseRecord::with_opaque_to(RECEIPTS_TOPIC, Box::new(Some((tp.clone(), offset))))
                .partition(partition_of(key))
                .payload(&receipt);
        loop {
            match self.producer.send(rec) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    let msg = format!("cannot hand a receipt to the producer: {e}");
                    self.failed.lock().unwrap().get_or_insert(msg);
                    return;
                }
            }
        }
    }

    /// The lowest source offset of `tp` whose receipt is not acknowledged: nothing from there on
    /// may be committed.
    pub(crate) fn pending_min(&self, tp: &Tp) -> Option<i64> {
        self.pending
            .lock()
            .unwrap()
            .get(tp)
            .and_then(|o| o.keys().next().copied())
    }

    /// Why receipts cannot be written, if so (the flow stops with it).
    pub(crate) fn failure(&self) -> Option<String> {
        self.failed.lock().unwrap().clone()
    }

    /// Wait up to `timeout` for every receipt handed over; false if some are still on their way.
    pub(crate) fn settle(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while self.producer.in_flight_count() > 0 {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }
}

/// The progress marks' loop (see the module docs): every [`PROGRESS_EVERY`], for each source
/// partition of a conflict topic this process copies, ask the source for its end at `t0`; once
/// the flow has delivered up to that end and every receipt before it is acknowledged, every
/// record appended before `t0` is covered. The marks go to every receipts partition.
fn marks(
    sink: Weak<ReceiptSink>,
    watermarks: BaseConsumer<Diagnosed>,
    stats: Arc<FlowStats>,
    stop: CancellationToken,
) {
    // Per partition: the end asked for and when, not reached yet; and the last mark.
    let mut asked: HashMap<(String, i32), (i64, i64)> = HashMap::new();
    let mut reached: BTreeMap<(String, i32), i64> = BTreeMap::new();
    while !stop.is_cancelled() {
        std::thread::sleep(PROGRESS_EVERY);
        let Some(sink) = sink.upgrade() else { return };
        if stop.is_cancelled() {
            return;
        }
        let delivered: Vec<((String, i32), i64)> = stats
            .delivered
            .lock()
            .unwrap()
            .iter()
            .map(|((t, p), o)| ((t.clone(), *p), *o))
            .collect();
        let owned: Vec<_> = delivered
            .into_iter()
            .filter(|((t, _), _)| sink.covers(t))
            .collect();
        reached.retain(|tp, _| owned.iter().any(|(o, _)| o == tp));
        asked.retain(|tp, _| owned.iter().any(|(o, _)| o == tp));
        for ((topic, p), delivered) in owned {
            let tp = (topic.clone(), p);
            if !asked.contains_key(&tp) {
                let t0 = now_ms();
                match watermarks.fetch_watermarks(&topic, p, Duration::from_secs(5)) {
                    Ok((_, end)) => {
                        asked.insert(tp.clone(), (t0, end));
                    }
                    Err(e) => {
                        debug!(topic = %topic, partition = p, error = %e, "the source's end not known; progress asked again later");
                        break; // the source is away: the next round asks again
                    }
                }
            }
            let Some(&(t0, end)) = asked.get(&tp) else {
                continue;
            };
            let key: Tp = (Arc::from(topic.as_str()), p);
            let done = match sink.pending_min(&key) {
                Some(m) => delivered.min(m),
                None => delivered,
            };
            if done >= end {
                asked.remove(&tp);
                reached.insert(tp, t0);
            }
        }
        if reached.is_empty() {
            continue;
        }
        let mark = Entry::Progress(ProgressMark {
            origin: sink.spec.origin.clone(),
            into: sink.into.clone(),
            marks: reached
                .iter()
                .map(|((t, p), before)| (t.clone(), *p, *before))
                .collect(),
        })
        .encode();
        for partition in 0..RECEIPT_PARTITIONS {
            let rec: BaseRecord<'_, (), Vec<u8>, _> =
                BaseRecord::with_opaque_to(RECEIPTS_TOPIC, Box::new(None))
                    .partition(partition)
                    .payload(&mark);
            if let Err((e, _)) = sink.producer.send(rec) {
                debug!(error = %e, "a progress mark was not queued; the next one follows");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn receipt() -> impl Strategy<Value = Receipt> {
        (
            "[a-z-]{1,12}",
            "[a-z-]{1,12}",
            "[a-zA-Z0-9._-]{1,40}",
            any::<i32>(),
            any::<i64>(),
            any::<i64>(),
            prop::collection::vec(any::<u8>(), 0..64),
            any::<u64>(),
            any::<i64>(),
            any::<i64>(),
        )
            .prop_map(
                |(
                    origin,
                    into,
                    topic,
                    partition,
                    offset,
                    timestamp,
                    key,
                    value_digest,
                    sent_ms,
                    acked_ms,
                )| Receipt {
                    origin,
                    into,
                    topic,
                    partition,
                    offset,
                    timestamp,
                    key,
                    value_digest,
                    sent_ms,
                    acked_ms,
                },
            )
    }

    proptest! {
        #[test]
        fn receipts_read_back_as_written(r in receipt()) {
            let e = Entry::Receipt(r);
            prop_assert_eq!(Entry::decode(&e.encode()).unwrap(), e);
        }

        #[test]
        fn progress_marks_read_back_as_written(
            origin in "[a-z]{1,8}",
            into in "[a-z]{1,8}",
            marks in prop::collection::vec(("[a-z.]{1,20}", any::<i32>(), any::<i64>()), 0..20),
        ) {
            let e = Entry::Progress(ProgressMark { origin, into, marks });
            prop_assert_eq!(Entry::decode(&e.encode()).unwrap(), e);
        }

        /// Whatever is cut off or added, reading fails with a sentence, never a panic.
        #[test]
        fn damaged_entries_are_refused(r in receipt(), cut in 0usize..200, extra in any::<u8>()) {
            let bytes = Entry::Receipt(r).encode();
            let cut = cut.min(bytes.len() - 1);
            prop_assert!(Entry::decode(&bytes[..cut]).is_err());
            let mut longer = bytes.clone();
            longer.push(extra);
            prop_assert!(Entry::decode(&longer).is_err());
        }

        /// A key's receipts partition is the same in every process: a function of its bytes.
        #[test]
        fn a_key_has_one_receipts_partition(key in prop::collection::vec(any::<u8>(), 0..40)) {
            let p = partition_of(&key);
            prop_assert!((0..RECEIPT_PARTITIONS).contains(&p));
            prop_assert_eq!(p, (digest(Some(&key)) % 8) as i32);
        }
    }

    #[test]
    fn an_unknown_kind_is_named() {
        let e = Entry::decode(&[9, 0]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a record of strait.receipts is not a receipt of this version of strait: unknown kind"
        );
    }

    #[test]
    fn flows_between_conflict_regions_give_receipts_for_local_conflict_topics() {
        let c = Config::parse(
            "clusters = east, west, south\n\
             east.bootstrap.servers = e:9092\nwest.bootstrap.servers = w:9092\nsouth.bootstrap.servers = s:9092\n\
             east->west.enabled = true\nwest->east.enabled = true\neast->south.enabled = true\n\
             strait.conflicts.regions = west, east\n\
             strait.conflicts.rules = orders\n\
             strait.conflicts.orders.topics = orders, ledger-.*\n\
             strait.conflicts.orders.strategy = last-writer-wins\n",
            "mm2.properties",
        )
        .unwrap();
        let ew = c.flow("east", "west").unwrap();
        let spec = ReceiptSpec::for_flow(&c, ew).unwrap();
        assert_eq!(spec.origin, "east");
        for (topic, covered) in [
            ("orders", true),
            ("ledger-eu", true),
            ("payments", false),
            ("west.orders", false),
            ("south.west.orders", false),
            ("orders.resolved", false),
            ("heartbeats", false),
        ] {
            assert_eq!((spec.covers)(topic), covered, "{topic}");
        }
        assert!(
            ReceiptSpec::for_flow(&c, c.flow("east", "south").unwrap()).is_none(),
            "south is not a conflict region"
        );
    }
}
