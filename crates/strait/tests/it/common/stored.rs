//! A topic read back batch by batch, as its broker stores it (strait's own protocol client): the
//! passthrough tests compare the target's batches with the source's, the bench sums their bytes
//! (it includes this file).

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use strait::kafka::raw::Conn;
use strait::kafka::{Admin, Endpoint};
use strait::replicate::passthrough::batch::{Batches, Header};

/// The header of every batch of `topic` from its log start to its end, per partition, in order.
/// One broker (the test bed's or the bench's): every partition is read from the bootstrap one.
pub(crate) async fn stored_batches(
    ep: &Endpoint,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, Vec<Header>> {
    let admin = Admin::new(ep, Duration::from_secs(30)).expect("admin client");
    let mut next = Vec::new();
    let mut ends = Vec::new();
    for p in 0..partitions {
        let (lo, hi) = admin.watermarks(topic, p).await.expect("watermarks");
        next.push(lo);
        ends.push(hi);
    }
    let mut conn = Conn::bootstrap(ep).await.unwrap_or_else(|e| panic!("{e}"));
    let v = conn
        .version(ApiKey::Fetch, 4..=12)
        .expect("a Fetch version");
    let mut out: BTreeMap<i32, Vec<Header>> = BTreeMap::new();
    while next.iter().zip(&ends).any(|(n, e)| n < e) {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_bytes(50 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(
                    (0..partitions)
                        .filter(|p| next[*p as usize] < ends[*p as usize])
                        .map(|p| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_fetch_offset(next[p as usize])
                                .with_partition_max_bytes(4 << 20)
                        })
                        .collect(),
                )]);
        let resp = conn.call(&req, v).await.unwrap_or_else(|e| panic!("{e}"));
        for t in &resp.responses {
            for p in &t.partitions {
                let at = &mut next[p.partition_index as usize];
                for b in Batches::new(p.records.as_deref().unwrap_or_default()) {
                    let b = b.expect("a v2 record batch");
                    // A fetch starts at the batch holding the offset asked for.
                    if b.header.base_offset >= *at {
                        out.entry(p.partition_index).or_default().push(b.header);
                        *at = b.header.next_offset();
                    }
                }
            }
        }
    }
    out
}
