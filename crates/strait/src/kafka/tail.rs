//! Read a single-partition internal topic (offset syncs, checkpoints, the offset index,
//! heartbeats) from the beginning, and keep up with it, without a consumer group. Blocking.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::diagnose::Diagnosed;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::{ClientError, Endpoint};

/// One record of the topic.
pub struct TailRecord<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub offset: i64,
    pub timestamp: Option<i64>,
}

/// A reader of partition `partition` of `topic`.
pub struct TopicTail {
    endpoint: Endpoint,
    topic: String,
    partition: i32,
    consumer: Option<BaseConsumer<Diagnosed>>,
    /// The next offset to read.
    next: i64,
}

impl TopicTail {
    pub fn new(endpoint: &Endpoint, topic: &str) -> Self {
        Self::partition(endpoint, topic, 0)
    }

    pub fn partition(endpoint: &Endpoint, topic: &str, partition: i32) -> Self {
        Self {
            endpoint: endpoint.clone(),
            topic: topic.to_string(),
            partition,
            consumer: None,
            next: 0,
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next offset to read (the number of records read, for a topic that was never cleaned).
    pub fn position(&self) -> i64 {
        self.next
    }

    fn consumer(&mut self) -> Result<&BaseConsumer<Diagnosed>, ClientError> {
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
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&self.topic, self.partition, Offset::Beginning)
                .map_err(|e| ClientError::from_kafka(&self.endpoint, "assign", e))?;
            c.assign(&tpl)
                .map_err(|e| ClientError::from_kafka(&self.endpoint, "assign", e))?;
            self.consumer = Some(c);
        }
        Ok(self.consumer.as_ref().expect("just created"))
    }

    /// Read every record up to the end offset as of now, calling `f` for each. A topic that does
    /// not exist yet reads as empty. Fails when the end is not reached within `timeout`.
    pub fn read_to_end(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(TailRecord<'_>),
    ) -> Result<usize, ClientError> {
        let deadline = Instant::now() + timeout;
        let (topic, partition) = (self.topic.clone(), self.partition);
        let endpoint = self.endpoint.clone();
        let op = format!("read {topic}");
        let consumer = self.consumer()?;
        let end = match consumer.fetch_watermarks(&topic, partition, timeout) {
            Ok((_, hi)) => hi,
            Err(e) if unknown_topic(&e) => {
                absent_or_denied(consumer, &endpoint, &topic, timeout)?;
                return Ok(0);
            }
            Err(e) => return Err(ClientError::from_blocking(&endpoint, &op, e, timeout)),
        };
        let mut n = 0;
        while self.next < end {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::timeout_diagnosed(&endpoint, &op, timeout));
            }
            let consumer = self.consumer.as_ref().expect("created above");
            match consumer.poll(left.min(Duration::from_millis(200))) {
                Some(Ok(m)) => {
                    self.next = m.offset() + 1;
                    n += 1;
                    f(TailRecord {
                        key: m.key().unwrap_or_default(),
                        value: m.payload().unwrap_or_default(),
                        offset: m.offset(),
                        timestamp: m.timestamp().to_millis(),
                    });
                }
                Some(Err(e)) if unknown_topic(&e) => return Ok(n),
                // Partition EOF and transient errors: keep polling until the deadline.
                Some(Err(_)) | None => {
                    if let Ok(pos) = consumer.position() {
                        if let Some(e) = pos.find_partition(&topic, partition) {
                            if let Offset::Offset(o) = e.offset() {
                                self.next = self.next.max(o);
                            }
                        }
                    }
                }
            }
        }
        Ok(n)
    }
}

/// Read every partition of `topic` from the beginning up to its end as of now, calling `f` for
/// each record (in order within a partition, in no set order across them), with one consumer.
/// For multi-partition compacted topics read once, like Kafka Connect's offsets topic. A topic
/// that does not exist reads as empty.
pub fn read_topic(
    endpoint: &Endpoint,
    topic: &str,
    timeout: Duration,
    mut f: impl FnMut(i32, TailRecord<'_>),
) -> Result<usize, ClientError> {
    let deadline = Instant::now() + timeout;
    let op = format!("read {topic}");
    let mut cfg = endpoint.consumer_config("strait-internal-reader");
    cfg.set("client.id", format!("strait-{}-reader", endpoint.alias));
    let consumer: BaseConsumer<Diagnosed> =
        cfg.create_with_context(endpoint.context()).map_err(|e| {
            ClientError::from_kafka(endpoint, &format!("create a reader of {topic}"), e)
        })?;
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| ClientError::from_blocking(endpoint, &op, e, timeout))?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(0);
    };
    match t.error().map(RDKafkaErrorCode::from) {
        None => {}
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => return Ok(0),
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
        return Ok(0);
    }
    consumer
        .assign(&tpl)
        .map_err(|e| ClientError::from_kafka(endpoint, "assign", e))?;
    let mut n = 0;
    while !left.is_empty() {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return Err(ClientError::timeout_diagnosed(endpoint, &op, timeout));
        }
        match consumer.poll(wait.min(Duration::from_millis(200))) {
            Some(Ok(m)) => {
                let p = m.partition();
                n += 1;
                f(
                    p,
                    TailRecord {
                        key: m.key().unwrap_or_default(),
                        value: m.payload().unwrap_or_default(),
                        offset: m.offset(),
                        timestamp: m.timestamp().to_millis(),
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
    Ok(n)
}

/// Whether the error says the topic or partition does not exist (yet).
/// A topic that read as unknown may exist and be hidden by the authorizer: Kafka answers a
/// Metadata request for it with TOPIC_AUTHORIZATION_FAILED. Ok when it is really absent.
pub(crate) fn absent_or_denied<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    ep: &Endpoint,
    topic: &str,
    timeout: std::time::Duration,
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
