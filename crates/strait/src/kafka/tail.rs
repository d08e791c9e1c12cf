//! Read a single-partition internal topic (offset syncs, checkpoints, the offset index,
//! heartbeats) from the beginning, and keep up with it, without a consumer group.
//!
//! The reads are folds: each record is handed, with a state the caller owns, to a function that
//! runs on tokio's blocking pool beside librdkafka's blocking consumer, and the state comes back
//! when the end is reached. Records are never collected, so reading a long index costs what the
//! state keeps.
//!
//! A read waits for nothing but the broker. The partition is assigned only once its watermarks
//! are known: assigned earlier, before the client had the partition's leader, librdkafka put off
//! the lookup of where the log begins by a fixed 500 ms. The end is the high watermark as of the
//! start of the read, reached on the last record itself or, when the last offsets hold no record
//! for the reader (a transaction marker), on the position moving past them, looked at every few
//! milliseconds. A reader's client goes away off the caller's thread (see [`super::dispose`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::diagnose::Diagnosed;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::{ClientError, Endpoint};

/// One record of the topic.
pub(crate) struct TailRecord<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub offset: i64,
}

/// A reader of partition `partition` of `topic`.
pub(crate) struct TopicTail {
    endpoint: Endpoint,
    topic: String,
    partition: i32,
    consumer: Option<Arc<BaseConsumer<Diagnosed>>>,
    /// Whether `consumer` has the partition assigned (it is, from the first read that found the
    /// topic on).
    assigned: bool,
    /// The next offset to read.
    next: i64,
    /// Whether a read that starts afresh skips what the topic holds already (a tail of what
    /// arrives from now on).
    from_end: bool,
}

impl Drop for TopicTail {
    fn drop(&mut self) {
        if let Some(c) = self.consumer.take() {
            super::dispose(c);
        }
    }
}

impl TopicTail {
    pub(crate) fn new(endpoint: &Endpoint, topic: &str) -> Self {
        Self::partition(endpoint, topic, 0)
    }

    pub(crate) fn partition(endpoint: &Endpoint, topic: &str, partition: i32) -> Self {
        Self {
            endpoint: endpoint.clone(),
            topic: topic.to_string(),
            partition,
            consumer: None,
            assigned: false,
            next: 0,
            from_end: false,
        }
    }

    /// A reader of partition 0 of `topic` that skips the records there now: each read hands only
    /// what arrived since the previous one (after a failure, since the failed read started).
    pub(crate) fn from_end(endpoint: &Endpoint, topic: &str) -> Self {
        let mut tail = Self::new(endpoint, topic);
        tail.from_end = true;
        tail
    }

    fn consumer(&mut self) -> Result<Arc<BaseConsumer<Diagnosed>>, ClientError> {
        if self.consumer.is_none() {
            // A group id is required by librdkafka's consumer; it is never joined or committed.
            let mut cfg = self.endpoint.consumer_config("strait-internal-reader");
            cfg.set(
                "client.id",
                format!("strait-{}-reader", self.endpoint.alias),
            );
            let c: BaseConsumer<Diagnosed> = cfg
                .create_with_context(self.endpoint.context())
                .map_err(|e| {
                    ClientError::from_kafka(
                        &self.endpoint,
                        &format!("create a reader of {}", self.topic),
                        e,
                    )
                })?;
            self.consumer = Some(Arc::new(c));
            self.assigned = false;
        }
        Ok(self.consumer.clone().expect("just created"))
    }

    /// Read every record up to the end offset as of now, folding each into `state` with `f`,
    /// and return the state. A topic that does not exist yet reads as empty. Fails when the end
    /// is not reached within `timeout`. After a failure, or dropped before it returns, the reader
    /// starts over at the next call: a caller that keeps state across calls moves it in
    /// (`std::mem::take`), so that both start over together.
    pub(crate) async fn fold<S, F>(
        &mut self,
        timeout: Duration,
        state: S,
        f: F,
    ) -> Result<S, ClientError>
    where
        S: Send + 'static,
        F: FnMut(&mut S, TailRecord<'_>) + Send + 'static,
    {
        let consumer = self.consumer()?;
        let at = Read {
            endpoint: self.endpoint.clone(),
            topic: self.topic.clone(),
            partition: self.partition,
            assigned: self.assigned,
            next: self.next,
            from_end: self.from_end,
        };
        // Taken while the read runs: if this future is dropped (with the caller's state, which
        // moved into it), the next call begins afresh from the first record.
        self.consumer = None;
        self.assigned = false;
        self.next = 0;
        let (at, consumer, got) = super::blocking(move || {
            let (mut at, mut state, mut f) = (at, state, f);
            let got = at.until_end(&consumer, timeout, &mut |r| f(&mut state, r));
            (at, consumer, got.map(|()| state))
        })
        .await;
        // After a failure the state is gone with the closure: start over with it.
        if got.is_ok() {
            self.next = at.next;
            self.assigned = at.assigned;
            self.consumer = Some(consumer);
        } else {
            super::dispose(consumer);
        }
        got
    }

    /// [`TopicTail::fold`] into a list of what `f` makes of each record.
    pub(crate) async fn collect<T, F>(
        &mut self,
        timeout: Duration,
        mut f: F,
    ) -> Result<Vec<T>, ClientError>
    where
        T: Send + 'static,
        F: FnMut(TailRecord<'_>) -> Option<T> + Send + 'static,
    {
        self.fold(timeout, Vec::new(), move |out: &mut Vec<T>, r| {
            out.extend(f(r))
        })
        .await
    }
}

/// Where a blocking read of one partition is.
struct Read {
    endpoint: Endpoint,
    topic: String,
    partition: i32,
    assigned: bool,
    next: i64,
    from_end: bool,
}

/// How long one poll waits before the reader looks at its position again: short, so that a read
/// whose last offsets hold no record (a transaction marker) ends as soon as the consumer has moved
/// past them. A poll returns at once when a record is there.
const POLL_SLICE: Duration = Duration::from_millis(10);

impl Read {
    fn until_end(
        &mut self,
        consumer: &BaseConsumer<Diagnosed>,
        timeout: Duration,
        f: &mut dyn FnMut(TailRecord<'_>),
    ) -> Result<(), ClientError> {
        let deadline = Instant::now() + timeout;
        let (topic, partition, endpoint) = (&self.topic, self.partition, &self.endpoint);
        let op = format!("read {topic}");
        let (start, end) = match consumer.fetch_watermarks(topic, partition, timeout) {
            Ok(w) => w,
            Err(e) if unknown_topic(&e) => {
                return absent_or_denied(consumer, endpoint, topic, timeout);
            }
            Err(e) => return Err(ClientError::from_blocking(endpoint, &op, e, timeout)),
        };
        if !self.assigned && self.from_end && self.next == 0 {
            self.next = end;
        }
        if !self.assigned {
            // Now, not when the client was made: the client knows the partition's leader now
            // (the watermarks came from it), so librdkafka looks up where the log starts at once.
            let from = if self.next > start {
                Offset::Offset(self.next)
            } else {
                Offset::Beginning
            };
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, partition, from)
                .map_err(|e| ClientError::from_kafka(endpoint, "assign", e))?;
            consumer
                .assign(&tpl)
                .map_err(|e| ClientError::from_kafka(endpoint, "assign", e))?;
            self.assigned = true;
        }
        // The clock is read after a poll that brought no record, and every so many records:
        // not once per record of a topic of millions.
        let (mut look_at_clock, mut records) = (true, 0u32);
        while self.next < end {
            if look_at_clock && Instant::now() >= deadline {
                return Err(ClientError::timeout_diagnosed(endpoint, &op, timeout));
            }
            match consumer.poll(POLL_SLICE) {
                Some(Ok(m)) => {
                    self.next = m.offset() + 1;
                    f(TailRecord {
                        key: m.key().unwrap_or_default(),
                        value: m.payload().unwrap_or_default(),
                        offset: m.offset(),
                    });
                    records = records.wrapping_add(1);
                    look_at_clock = records % 1024 == 0;
                }
                Some(Err(e)) if unknown_topic(&e) => return Ok(()),
                // Partition EOF and transient errors: keep polling until the deadline.
                Some(Err(_)) | None => {
                    look_at_clock = true;
                    if let Ok(pos) = consumer.position() {
                        if let Some(e) = pos.find_partition(topic, partition) {
                            if let Offset::Offset(o) = e.offset() {
                                self.next = self.next.max(o);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Read every partition of `topic` from the beginning up to its end as of now, calling `f` for
/// each record (in order within a partition, in no set order across them), with one consumer.
/// For multi-partition compacted topics read once, like Kafka Connect's offsets topic. A topic
/// that does not exist reads as empty.
pub(crate) async fn fold_topic<S, F>(
    endpoint: &Endpoint,
    topic: &str,
    timeout: Duration,
    state: S,
    f: F,
) -> Result<S, ClientError>
where
    S: Send + 'static,
    F: FnMut(&mut S, i32, TailRecord<'_>) + Send + 'static,
{
    let (endpoint, topic) = (endpoint.clone(), topic.to_string());
    super::blocking(move || {
        let (mut state, mut f) = (state, f);
        read_topic(&endpoint, &topic, timeout, &mut |p, r| f(&mut state, p, r)).map(|()| state)
    })
    .await
}

fn read_topic(
    endpoint: &Endpoint,
    topic: &str,
    timeout: Duration,
    f: &mut dyn FnMut(i32, TailRecord<'_>),
) -> Result<(), ClientError> {
    let mut cfg = endpoint.consumer_config("strait-internal-reader");
    cfg.set("client.id", format!("strait-{}-reader", endpoint.alias));
    let consumer: BaseConsumer<Diagnosed> =
        cfg.create_with_context(endpoint.context()).map_err(|e| {
            ClientError::from_kafka(endpoint, &format!("create a reader of {topic}"), e)
        })?;
    let read = read_topic_with(&consumer, endpoint, topic, timeout, f);
    super::dispose(consumer);
    read
}

fn read_topic_with(
    consumer: &BaseConsumer<Diagnosed>,
    endpoint: &Endpoint,
    topic: &str,
    timeout: Duration,
    f: &mut dyn FnMut(i32, TailRecord<'_>),
) -> Result<(), ClientError> {
    let deadline = Instant::now() + timeout;
    let op = format!("read {topic}");
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| ClientError::from_blocking(endpoint, &op, e, timeout))?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(());
    };
    match t.error().map(RDKafkaErrorCode::from) {
        None => {}
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => return Ok(()),
        Some(code) => {
            return Err(ClientError::from_kafka(
                endpoint,
                &op,
                KafkaError::MetadataFetch(code),
            ))
        }
    }
    // Partition -> end offset, for the partitions with something to read.
    let mut left = std::collections::HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        let (lo, hi) = consumer
            .fetch_watermarks(topic, p.id(), timeout)
            .map_err(|e| ClientError::from_blocking(endpoint, &op, e, timeout))?;
        if hi > lo {
            left.insert(p.id(), hi);
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .map_err(|e| ClientError::from_kafka(endpoint, "assign", e))?;
        }
    }
    if left.is_empty() {
        return Ok(());
    }
    consumer
        .assign(&tpl)
        .map_err(|e| ClientError::from_kafka(endpoint, "assign", e))?;
    while !left.is_empty() {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return Err(ClientError::timeout_diagnosed(endpoint, &op, timeout));
        }
        match consumer.poll(wait.min(POLL_SLICE)) {
            Some(Ok(m)) => {
                let p = m.partition();
                f(
                    p,
                    TailRecord {
                        key: m.key().unwrap_or_default(),
                        value: m.payload().unwrap_or_default(),
                        offset: m.offset(),
                    },
                );
                if left.get(&p).is_some_and(|end| m.offset() + 1 >= *end) {
                    left.remove(&p);
                }
            }
            // Compaction leaves the last offsets empty: a position at the end is the end.
            Some(Err(_)) | None => {
                if let Ok(pos) = consumer.position() {
                    for e in pos.elements() {
                        if let Offset::Offset(o) = e.offset() {
                            if left.get(&e.partition()).is_some_and(|end| o >= *end) {
                                left.remove(&e.partition());
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Whether the error says the topic or partition does not exist (yet).
/// A topic that read as unknown may exist and be hidden by the authorizer: Kafka answers a
/// Metadata request for it with TOPIC_AUTHORIZATION_FAILED. Ok when it is really absent.
pub(crate) fn absent_or_denied<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    ep: &Endpoint,
    topic: &str,
    timeout: Duration,
) -> Result<(), ClientError> {
    let Ok(md) = consumer.fetch_metadata(Some(topic), timeout) else {
        return Ok(());
    };
    let denied = md.topics().iter().any(|t| {
        t.name() == topic
            && t.error().map(RDKafkaErrorCode::from)
                == Some(RDKafkaErrorCode::TopicAuthorizationFailed)
    });
    if denied {
        return Err(ClientError::from_kafka(
            ep,
            &format!("read {topic}"),
            KafkaError::MetadataFetch(RDKafkaErrorCode::TopicAuthorizationFailed),
        ));
    }
    Ok(())
}

pub(crate) fn unknown_topic(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition
        )
    )
}
