//! Helpers shared by the integration tests: clients for sandbox clusters, producing and reading
//! back whole topics. Every test starts its own clusters on free ports.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use strait::kafka::{Admin, Endpoint, TopicSpec};
use strait_sandbox::Cluster;

pub fn endpoint(c: &Cluster) -> Endpoint {
    Endpoint::new(c.name(), c.bootstrap_servers())
}

pub fn admin(c: &Cluster) -> Admin {
    Admin::new(&endpoint(c), Duration::from_secs(10)).expect("admin client")
}

pub fn producer(c: &Cluster) -> FutureProducer {
    endpoint(c).producer_config().create().expect("producer")
}

pub async fn create_topic(c: &Cluster, name: &str, partitions: i32) {
    admin(c)
        .create_topics(&[TopicSpec::new(name, partitions, 1)])
        .await
        .expect("create topic");
}

/// One record as read back, every field owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Read {
    fn from(m: &BorrowedMessage<'_>) -> Self {
        let headers = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            timestamp: m.timestamp().to_millis(),
            headers,
        }
    }

    pub fn header(&self, k: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(hk, _)| hk == k)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// Read every partition of `topic` from the beginning until `expected` records arrived (or the
/// deadline passed), without a consumer group (assign, not subscribe).
pub async fn read_all(c: &Cluster, topic: &str, partitions: i32, expected: usize) -> Vec<Read> {
    let ep = endpoint(c);
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ep
            .consumer_config("strait-test-reader")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(&topic, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).expect("assign");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut out = Vec::with_capacity(expected);
        while out.len() < expected && Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => out.push(Read::from(&m)),
                Some(Err(e)) => panic!("consume error: {e}"),
                None => {}
            }
        }
        // Anything beyond `expected` would be a duplicate: give it a moment to show up.
        let settle = Instant::now() + Duration::from_millis(500);
        while Instant::now() < settle {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                out.push(Read::from(&m));
            }
        }
        out
    })
    .await
    .unwrap()
}

/// Group records by partition, in offset order.
pub fn by_partition(records: &[Read]) -> BTreeMap<i32, Vec<&Read>> {
    let mut m: BTreeMap<i32, Vec<&Read>> = BTreeMap::new();
    for r in records {
        m.entry(r.partition).or_default().push(r);
    }
    for v in m.values_mut() {
        v.sort_by_key(|r| r.offset);
    }
    m
}

/// Time a blocking metadata request on an already-connected client.
pub async fn time_metadata(admin: &Admin) -> Duration {
    let t = Instant::now();
    admin.topics(None).await.expect("metadata");
    t.elapsed()
}
