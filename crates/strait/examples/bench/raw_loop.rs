//! (h): the passthrough prototype of issue 19. It fetches record batches from the source and
//! produces them to `rawloop.<topic>` on the target as bytes: never decompressed, never parsed
//! beyond the 61-byte batch header. It measures the ceiling of that design before anything is
//! built on it, so it does no more than the ceiling needs:
//! - one broker a cluster (the bench's), so every partition's leader is the bootstrap broker;
//! - no idempotence: the producer fields are cleared (-1), which changes the CRC only when the
//!   source's producer had an id; acks = all, as strait;
//! - control batches dropped; a batch with offset holes (a compacted source), which Kafka refuses
//!   from a producer, is a panic here (the bench's source has none);
//! - any error is a panic.
//!
//! strait's own protocol client (`kafka::raw`); one task. One fetch request at a time to the
//! source (all partitions, 1 MB a partition as librdkafka's default); up to five produce
//! requests in flight to the target. Kafka takes one batch a
//! partition in a produce request (v3 on; more is INVALID_RECORD, where Tansu takes them), so a
//! fetch answer makes as many requests as its partition with the most batches has.
//! `bench --raw-loop SRC DST TOPIC[,TOPIC] PARTITIONS N` exits once N records were acknowledged.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use strait::kafka::raw::Conn;
use strait::kafka::Endpoint;
use strait::replicate::passthrough::batch::{
    append_for_produce, disposition, Batches, Disposition, Stamp,
};

/// The whole batches of a fetched partition's `records` that end at or after `from`, each made
/// ready to produce on its own (the library's rules, `replicate::passthrough::batch`): Kafka
/// takes one batch a partition in a produce request (v3 and later). Returns them with their
/// record counts, and the next offset to fetch.
fn rewrite(records: &[u8], from: i64) -> (Vec<(Bytes, u64)>, i64) {
    let (mut next, mut out) = (from, Vec::new());
    for b in Batches::new(records) {
        let b = b.expect("a v2 record batch");
        match disposition(&b.header, next) {
            Disposition::Behind => continue,
            Disposition::Marker => {}
            Disposition::Bytes => {
                let mut one = BytesMut::with_capacity(b.bytes.len());
                append_for_produce(&b, Stamp::NONE, &mut one);
                out.push((one.freeze(), b.header.count as u64));
            }
            Disposition::Rewrite(why) => {
                panic!("batch at {} needs rewriting: {why:?}", b.header.base_offset)
            }
        }
        next = b.header.next_offset();
    }
    (out, next)
}

pub(crate) fn raw_loop(src: &str, dst: &str, topics: &str, partitions: i32, n: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(src, dst, topics, partitions, n));
}

/// A connection to the bench's cluster at `bootstrap`, through strait's own protocol client.
async fn connect(bootstrap: &str) -> Conn {
    Conn::bootstrap(&Endpoint::new("bench", bootstrap))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Read the oldest produce answer on `target`: the records of that request (`waiting`'s first),
/// once every partition took its batch.
async fn acked(target: &mut Conn, waiting: &mut VecDeque<u64>) -> u64 {
    let resp = target
        .recv::<ProduceRequest>()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for t in &resp.responses {
        for p in &t.partition_responses {
            assert_eq!(
                p.error_code, 0,
                "produce to {:?}-{}: {:?} {:?}",
                t.name, p.index, p.error_message, p.record_errors
            );
        }
    }
    waiting.pop_front().expect("a request in flight")
}

async fn run(src: &str, dst: &str, topics: &str, partitions: i32, n: u64) {
    let mut source = connect(src).await;
    let mut target = connect(dst).await;
    // Fetch and produce up to v12: the last versions that name topics.
    let fetch_v = source
        .version(ApiKey::Fetch, 4..=12)
        .expect("a Fetch version");
    let produce_v = target
        .version(ApiKey::Produce, 3..=12)
        .expect("a Produce version");
    let topics: Vec<String> = topics.split(',').map(String::from).collect();
    let mut next: Vec<Vec<i64>> = vec![vec![0; partitions as usize]; topics.len()];
    // The records of each produce request in flight, oldest first (answers come in order).
    let mut waiting: VecDeque<u64> = VecDeque::new();
    let mut done = 0u64;
    while done < n {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(50 << 20)
            .with_topics(
                topics
                    .iter()
                    .zip(&next)
                    .map(|(t, offsets)| {
                        FetchTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(t.clone())))
                            .with_partitions(
                                offsets
                                    .iter()
                                    .enumerate()
                                    .map(|(p, &o)| {
                                        FetchPartition::default()
                                            .with_partition(p as i32)
                                            .with_fetch_offset(o)
                                            .with_partition_max_bytes(1 << 20)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let resp = source
            .call(&req, fetch_v)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.error_code, 0, "fetch");
        // The k-th batch of every partition goes in the k-th produce request.
        let mut requests: Vec<(Vec<TopicProduceData>, u64)> = Vec::new();
        for t in &resp.responses {
            let ti = topics
                .iter()
                .position(|x| x.as_str() == t.topic.0.as_str())
                .unwrap();
            let name = TopicName(StrBytes::from_string(format!(
                "rawloop.{}",
                t.topic.0.as_str()
            )));
            for p in &t.partitions {
                assert_eq!(p.error_code, 0, "fetch {:?}-{}", t.topic, p.partition_index);
                let Some(bytes) = &p.records else { continue };
                let at = &mut next[ti][p.partition_index as usize];
                let (batches, after) = rewrite(bytes, *at);
                *at = after;
                for (k, (batch, count)) in batches.into_iter().enumerate() {
                    if requests.len() <= k {
                        requests.push((Vec::new(), 0));
                    }
                    let (topic_data, records) = &mut requests[k];
                    *records += count;
                    let data = PartitionProduceData::default()
                        .with_index(p.partition_index)
                        .with_records(Some(batch));
                    match topic_data
                        .iter_mut()
                        .find(|d: &&mut TopicProduceData| d.name == name)
                    {
                        Some(d) => d.partition_data.push(data),
                        None => topic_data.push(
                            TopicProduceData::default()
                                .with_name(name.clone())
                                .with_partition_data(vec![data]),
                        ),
                    }
                }
            }
        }
        if requests.is_empty() {
            // Caught up: what is in flight is all there is to wait for.
            while !waiting.is_empty() {
                done += acked(&mut target, &mut waiting).await;
            }
            continue;
        }
        for (topic_data, records) in requests {
            if waiting.len() >= 5 {
                done += acked(&mut target, &mut waiting).await;
            }
            let req = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(30_000)
                .with_topic_data(topic_data);
            target
                .send(&req, produce_v)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            waiting.push_back(records);
        }
    }
}

/// Bytes of record batches stored in `topic` on `bootstrap`, all partitions: every batch read
/// back from the start to the end as of now, as stored (what the log holds, less its indexes).
/// Tells whether a copy kept the source's compression.
pub(crate) async fn stored_bytes(bootstrap: &str, topic: &str, partitions: i32) -> u64 {
    let ep = Endpoint::new("bench", bootstrap);
    crate::stored::stored_batches(&ep, topic, partitions)
        .await
        .values()
        .flatten()
        .map(|h| h.size() as u64)
        .sum()
}
