//! The drill's own traffic: a producer writing sequence-numbered records at a fixed rate and a
//! consumer group reading them, each on a thread of its own (librdkafka's calls block; tokio's
//! workers never wait on them). Both log what happened to every sequence number into a shared
//! [`DrillLog`], which is all [`super::verify`] needs afterwards.
//!
//! A drill record's value is its sequence number in decimal (`"1234"`), its timestamp is the
//! moment it was handed to the producer, and it carries the header `strait-drill` = the drill's
//! id, so that a consumer of a topic shared with other data counts only this drill's records.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{debug, warn};

use super::verify::{Ack, Delivery, Side};
use crate::heartbeat::now_ms;
use crate::kafka::Endpoint;

/// The header that marks a drill record; its value is the drill's id.
pub const HEADER: &str = "strait-drill";

/// How often the drill consumer commits what it has processed.
pub const COMMIT_EVERY: Duration = Duration::from_millis(200);

/// Everything the drill's clients observed, shared between their threads and the orchestrator.
#[derive(Debug, Default)]
pub struct DrillLog {
    /// The next sequence number; also the number of records handed to a producer so far.
    pub next_seq: AtomicU64,
    /// Every acknowledgement the producers received, in the order they came.
    pub acks: Mutex<Vec<Ack>>,
    /// Every drill record the consumers received, duplicates included, in the order they came.
    pub deliveries: Mutex<Vec<Delivery>>,
}

impl DrillLog {
    /// Acknowledgements so far (0 if the log's lock is poisoned).
    pub fn acked(&self) -> u64 {
        self.acks.lock().map_or(0, |a| a.len() as u64)
    }

    /// Deliveries so far, duplicates included (0 if the log's lock is poisoned).
    pub fn consumed(&self) -> u64 {
        self.deliveries.lock().map_or(0, |d| d.len() as u64)
    }

    /// Records handed to a producer so far, acknowledged or not.
    pub fn produced(&self) -> u64 {
        self.next_seq.load(Ordering::SeqCst)
    }

    /// Copies of both logs.
    pub fn snapshot(&self) -> (Vec<Ack>, Vec<Delivery>) {
        let acks = self.acks.lock().map(|a| a.clone()).unwrap_or_default();
        let deliveries = self
            .deliveries
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        (acks, deliveries)
    }
}

/// How a client thread is told to end.
const RUN: u8 = 0;
/// Finish properly: the producer flushes, the consumer commits and leaves its group.
const STOP: u8 = 1;
/// The region is gone: stop at once, without flushing or committing (the calls would only wait
/// for a cluster that no longer answers).
const ABANDON: u8 = 2;

/// A client thread of the drill.
pub struct ClientThread {
    state: Arc<AtomicU8>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ClientThread {
    fn spawn(
        name: String,
        f: impl FnOnce(Arc<AtomicU8>) + Send + 'static,
    ) -> std::io::Result<Self> {
        let state = Arc::new(AtomicU8::new(RUN));
        let thread = {
            let state = state.clone();
            std::thread::Builder::new()
                .name(name)
                .spawn(move || f(state))?
        };
        Ok(Self {
            state,
            thread: Some(thread),
        })
    }

    /// Ask the thread to finish properly (flush, or commit and leave the group).
    pub fn stop(&self) {
        let _ = self
            .state
            .compare_exchange(RUN, STOP, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Ask the thread to stop at once: its region is gone.
    pub fn abandon(&self) {
        self.state.store(ABANDON, Ordering::SeqCst);
    }

    /// Stop properly and wait for the thread, at most `grace` (it is left behind after that;
    /// what it logs from then on still counts).
    pub async fn join(mut self, grace: Duration) -> bool {
        self.stop();
        let Some(t) = self.thread.take() else {
            return true;
        };
        let joined = tokio::task::spawn_blocking(move || t.join());
        matches!(tokio::time::timeout(grace, joined).await, Ok(Ok(Ok(()))))
    }
}

/// A handle dropped without `join` still ends its thread (properly, unless abandoned).
impl Drop for ClientThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Logs the acknowledgement of each drill record.
struct AckContext {
    log: Arc<DrillLog>,
    side: Side,
}

/// Client errors (a region that is down) are expected in a drill: logged at debug level only.
impl ClientContext for AckContext {
    fn error(&self, error: KafkaError, reason: &str) {
        debug!(side = ?self.side, error = %error, reason, "drill producer client error");
    }
}

/// The drill consumer's context: quiet about client errors, as [`AckContext`].
struct QuietContext {
    side: Side,
}

impl ClientContext for QuietContext {
    fn error(&self, error: KafkaError, reason: &str) {
        debug!(side = ?self.side, error = %error, reason, "drill consumer client error");
    }
}

impl ConsumerContext for QuietContext {}

impl ProducerContext for AckContext {
    /// (sequence number, record timestamp).
    type DeliveryOpaque = Box<(u64, i64)>;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::DeliveryOpaque) {
        let (seq, ts) = *opaque;
        match result {
            Ok(_) => {
                if let Ok(mut acks) = self.log.acks.lock() {
                    acks.push(Ack {
                        seq,
                        side: self.side,
                        acked_at_ms: now_ms(),
                        record_ts_ms: ts,
                    });
                }
            }
            Err((e, _)) => debug!(seq, error = %e, "drill record not acknowledged"),
        }
    }
}

/// What a drill producer writes and where.
pub struct ProducerSpec {
    /// The cluster to write to, with its connection and security properties.
    pub endpoint: Endpoint,
    /// The topic to write, by its name on that cluster.
    pub topic: String,
    /// The topic's partition count: record `seq` goes to partition `seq % partitions`.
    pub partitions: i32,
    /// Records per second.
    pub rate: u64,
    /// The region the acknowledgements are logged under.
    pub side: Side,
    /// The value of the [`HEADER`] on every record.
    pub drill_id: String,
}

/// What a record carries besides its sequence number. The default is the drill's: no key, and
/// the number in decimal as the whole value.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecordShape {
    /// With `n > 0`, record `seq` has the key `k{seq % n}`; 0: no key.
    pub keys: u64,
    /// The value is at least this many bytes: the number, then spaces (which
    /// [`sequence_of`] ignores).
    pub value_bytes: usize,
}

/// Start writing `rate` records a second to `topic`, sequence numbers taken from `log` (so that
/// a producer started later continues where an earlier one stopped), record `seq` to partition
/// `seq % partitions`.
pub fn start_producer(spec: ProducerSpec, log: Arc<DrillLog>) -> std::io::Result<ClientThread> {
    start_producer_with(spec, RecordShape::default(), log)
}

/// [`start_producer`], with records shaped as `shape` says (keys, a longer value).
pub fn start_producer_with(
    spec: ProducerSpec,
    shape: RecordShape,
    log: Arc<DrillLog>,
) -> std::io::Result<ClientThread> {
    let name = format!("drill producer {}", spec.endpoint.alias);
    ClientThread::spawn(name, move |state| produce(spec, shape, log, &state))
}

fn produce(spec: ProducerSpec, shape: RecordShape, log: Arc<DrillLog>, state: &AtomicU8) {
    let mut cfg = spec.endpoint.producer_config();
    cfg.set("client.id", format!("strait-drill-{}", spec.endpoint.alias));
    let context = AckContext {
        log: log.clone(),
        side: spec.side,
    };
    let producer: ThreadedProducer<AckContext> = match cfg.create_with_context(context) {
        Ok(p) => p,
        Err(e) => {
            warn!(region = %spec.endpoint.alias, error = %e, "the drill producer did not start");
            return;
        }
    };
    let headers = OwnedHeaders::new().insert(Header {
        key: HEADER,
        value: Some(spec.drill_id.as_bytes()),
    });
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut said_full = false;
    while state.load(Ordering::SeqCst) == RUN {
        let due = (started.elapsed().as_secs_f64() * spec.rate as f64) as u64;
        while sent < due && state.load(Ordering::SeqCst) == RUN {
            // One producer at a time: the number is taken only once the record is queued, so a
            // refused send leaves no hole in the sequence.
            let seq = log.next_seq.load(Ordering::SeqCst);
            let ts = now_ms();
            let value = format!("{seq:<width$}", width = shape.value_bytes);
            let key = (shape.keys > 0).then(|| format!("k{}", seq % shape.keys));
            let mut record =
                BaseRecord::<str, str, _>::with_opaque_to(&spec.topic, Box::new((seq, ts)))
                    .payload(&value)
                    .partition((seq % spec.partitions.max(1) as u64) as i32)
                    .timestamp(ts)
                    .headers(headers.clone());
            if let Some(k) = &key {
                record = record.key(k.as_str());
            }
            match producer.send(record) {
                Ok(()) => {
                    log.next_seq.store(seq + 1, Ordering::SeqCst);
                    sent += 1;
                }
                Err((e, _)) => {
                    if !said_full {
                        debug!(region = %spec.endpoint.alias, error = %e, "drill record not queued; trying again");
                        said_full = true;
                    }
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if state.load(Ordering::SeqCst) == STOP {
        if let Err(e) = producer.flush(Duration::from_secs(15)) {
            warn!(region = %spec.endpoint.alias, error = %e, "the drill producer's last records were not all acknowledged");
        }
    }
    // Dropping purges whatever is still queued or in flight: those records are not acknowledged.
}

/// What a drill consumer reads and where.
pub struct ConsumerSpec {
    /// The cluster to read from, with its connection and security properties.
    pub endpoint: Endpoint,
    /// The consumer group to join and commit to.
    pub group: String,
    /// The topics to subscribe to, by their names on that cluster.
    pub topics: Vec<String>,
    /// The region the deliveries are logged under.
    pub side: Side,
    /// Only records whose [`HEADER`] carries this id are logged.
    pub drill_id: String,
}

/// Join `group` on the cluster, read `topics` from the group's committed offsets (the earliest
/// offset where it has none), log every drill record received and commit what was processed
/// every [`COMMIT_EVERY`].
pub fn start_consumer(spec: ConsumerSpec, log: Arc<DrillLog>) -> std::io::Result<ClientThread> {
    let name = format!("drill consumer {}", spec.endpoint.alias);
    ClientThread::spawn(name, move |state| consume(spec, log, &state))
}

fn consume(spec: ConsumerSpec, log: Arc<DrillLog>, state: &AtomicU8) {
    let mut cfg = spec.endpoint.consumer_config(&spec.group);
    cfg.set("client.id", format!("strait-drill-{}", spec.endpoint.alias));
    let consumer: BaseConsumer<QuietContext> = match cfg
        .create_with_context(QuietContext { side: spec.side })
    {
        Ok(c) => c,
        Err(e) => {
            warn!(region = %spec.endpoint.alias, error = %e, "the drill consumer did not start");
            return;
        }
    };
    let topics: Vec<&str> = spec.topics.iter().map(String::as_str).collect();
    if let Err(e) = consumer.subscribe(&topics) {
        warn!(region = %spec.endpoint.alias, error = %e, "the drill consumer cannot subscribe");
        return;
    }
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut committed: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut last_commit = Instant::now();
    let mut said_error = false;
    let commit = |next: &BTreeMap<(String, i32), i64>, mode| -> bool {
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in next {
            if tpl.add_partition_offset(t, *p, Offset::Offset(*o)).is_err() {
                return false;
            }
        }
        tpl.count() == 0 || consumer.commit(&tpl, mode).is_ok()
    };
    while state.load(Ordering::SeqCst) == RUN {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                next.insert((m.topic().to_string(), m.partition()), m.offset() + 1);
                if let Some(seq) = sequence_of(&m, &spec.drill_id) {
                    if let Ok(mut d) = log.deliveries.lock() {
                        d.push(Delivery {
                            seq,
                            side: spec.side,
                            received_at_ms: now_ms(),
                        });
                    }
                }
            }
            Some(Err(e)) if !said_error => {
                debug!(region = %spec.endpoint.alias, error = %e, "drill consumer error");
                said_error = true;
            }
            Some(Err(_)) => {}
            None => {}
        }
        if last_commit.elapsed() >= COMMIT_EVERY && next != committed {
            if commit(&next, CommitMode::Async) {
                committed = next.clone();
            }
            last_commit = Instant::now();
        }
    }
    if state.load(Ordering::SeqCst) == STOP && next != committed {
        commit(&next, CommitMode::Sync);
    }
    if state.load(Ordering::SeqCst) == STOP {
        consumer.unsubscribe();
    }
}

/// The sequence number of a record written by a producer of drill (or run) `id`, if it is one:
/// the record carries the [`HEADER`] with `id`, and its value is the number (trailing spaces
/// allowed).
pub fn sequence_of<M: Message>(m: &M, id: &str) -> Option<u64> {
    let ours = m.headers().is_some_and(|hs| {
        hs.iter()
            .any(|h| h.key == HEADER && h.value == Some(id.as_bytes()))
    });
    if !ours {
        return None;
    }
    std::str::from_utf8(m.payload()?).ok()?.trim().parse().ok()
}
