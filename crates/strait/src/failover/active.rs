//! Which region is active for a pair of clusters, recorded durably so that every strait process,
//! `strait status` and the client-switch endpoint agree after a failover or failback.
//!
//! The record lives in `strait-active-region.internal` (one partition, compacted) on *both*
//! clusters, keyed by the pair, so it can be read from whichever side is up. `.internal` keeps it
//! out of every replication. The value is JSON, for people reading the topic with any tool.

use serde::{Deserialize, Serialize};

/// The topic, on every cluster of the pair.
pub const TOPIC: &str = "strait-active-region.internal";

/// The compaction key of a pair: the two aliases sorted, so `a,b` and `b,a` are one record.
pub fn pair_key(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a}<->{b}")
    } else {
        format!("{b}<->{a}")
    }
}

/// One decision: `active` serves the pair from `changed_at_ms` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveRegion {
    /// The two aliases, sorted.
    pub pair: [String; 2],
    /// The alias of the cluster clients of the pair should use now.
    pub active: String,
    /// Grows by one with every switch; clients re-read their settings when it changes.
    pub version: u64,
    /// When the switch was recorded (ms since the epoch).
    pub changed_at_ms: i64,
    /// `failover from us-east`, `failback to us-east`, ...
    pub reason: String,
}

impl ActiveRegion {
    /// The record that makes `active` the active region of the pair, after `previous`.
    pub fn switch(
        previous: Option<&ActiveRegion>,
        a: &str,
        b: &str,
        active: &str,
        at_ms: i64,
        reason: impl Into<String>,
    ) -> Self {
        let mut pair = [a.to_string(), b.to_string()];
        pair.sort();
        Self {
            pair,
            active: active.to_string(),
            version: previous.map_or(1, |p| p.version + 1),
            changed_at_ms: at_ms,
            reason: reason.into(),
        }
    }

    /// The record's compaction key: its pair, as [`pair_key`] writes it.
    pub fn key(&self) -> String {
        pair_key(&self.pair[0], &self.pair[1])
    }

    /// The record's value: the record as JSON.
    pub fn value(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain data serializes")
    }

    /// The record in a value read from the topic; `None` when it is not one.
    pub fn decode(value: &[u8]) -> Option<Self> {
        serde_json::from_slice(value).ok()
    }
}

/// The current decision among records read from one or both clusters: the highest version (the
/// newest time breaks a tie between the two sides).
pub fn current<'a>(
    records: impl IntoIterator<Item = &'a ActiveRegion>,
) -> Option<&'a ActiveRegion> {
    records
        .into_iter()
        .max_by_key(|r| (r.version, r.changed_at_ms))
}

/// Every active-region record on the cluster of `consumer` (a missing topic reads as none).
pub async fn read(
    consumer: &crate::kafka::Endpoint,
    timeout: std::time::Duration,
) -> Result<Vec<ActiveRegion>, crate::kafka::ClientError> {
    crate::kafka::tail::TopicTail::new(consumer, TOPIC)
        .collect(timeout, |r| ActiveRegion::decode(r.value))
        .await
}

/// The current decision for pair (`a`, `b`) among `records`.
pub fn for_pair<'a>(records: &'a [ActiveRegion], a: &str, b: &str) -> Option<&'a ActiveRegion> {
    let key = pair_key(a, b);
    current(records.iter().filter(|r| r.key() == key))
}

/// A writer of the active-region record on one cluster: the topic made sure of and the producer
/// created by [`Writer::open`], so that a failover does it while it reads the current record.
pub struct Writer {
    producer: rdkafka::producer::FutureProducer,
    endpoint: crate::kafka::Endpoint,
    timeout: std::time::Duration,
}

impl Writer {
    /// Create the topic if needed (compacted, one partition) on the cluster of `admin`, and a
    /// producer of `producer_ep`.
    pub async fn open(
        admin: &crate::kafka::Admin,
        producer_ep: &crate::kafka::Endpoint,
        replication_factor: i32,
        timeout: std::time::Duration,
    ) -> Result<Self, crate::kafka::ClientError> {
        let brokers = admin.broker_count().await?;
        let rf =
            crate::replicate::topics::effective_replication_factor(replication_factor, brokers);
        admin
            .create_topics(&[
                crate::kafka::TopicSpec::new(TOPIC, 1, rf).config("cleanup.policy", "compact")
            ])
            .await?;
        let producer = producer_ep.producer_config().create().map_err(|e| {
            crate::kafka::ClientError::from_kafka(producer_ep, "create a producer", e)
        })?;
        Ok(Self {
            producer,
            endpoint: producer_ep.clone(),
            timeout,
        })
    }

    /// Write `record` and wait for the acknowledgement.
    pub async fn send(&self, record: &ActiveRegion) -> Result<(), crate::kafka::ClientError> {
        let (k, v) = (record.key(), record.value());
        self.producer
            .send(
                rdkafka::producer::FutureRecord::to(TOPIC)
                    .partition(0)
                    .key(&k)
                    .payload(&v),
                self.timeout,
            )
            .await
            .map(|_| ())
            .map_err(|(e, _)| {
                crate::kafka::ClientError::from_kafka(&self.endpoint, "record the active region", e)
            })
    }
}

/// Write `record` to the cluster of `admin` / `producer` (creating the topic if needed) and
/// wait for the acknowledgement.
pub async fn write(
    admin: &crate::kafka::Admin,
    producer: &crate::kafka::Endpoint,
    record: &ActiveRegion,
    replication_factor: i32,
    timeout: std::time::Duration,
) -> Result<(), crate::kafka::ClientError> {
    Writer::open(admin, producer, replication_factor, timeout)
        .await?
        .send(record)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_the_same_both_ways() {
        assert_eq!(pair_key("us-west", "us-east"), "us-east<->us-west");
        assert_eq!(pair_key("us-east", "us-west"), "us-east<->us-west");
    }

    #[test]
    fn versions_grow_and_the_newest_wins() {
        let first = ActiveRegion::switch(
            None,
            "us-east",
            "us-west",
            "us-west",
            10,
            "failover from us-east",
        );
        assert_eq!(first.version, 1);
        let back = ActiveRegion::switch(
            Some(&first),
            "us-west",
            "us-east",
            "us-east",
            20,
            "failback to us-east",
        );
        assert_eq!(back.version, 2);
        assert_eq!(back.key(), first.key());
        assert_eq!(current([&first, &back]), Some(&back));
        assert_eq!(ActiveRegion::decode(&back.value()), Some(back.clone()));
        assert_eq!(ActiveRegion::decode(b"not json"), None);
    }
}
