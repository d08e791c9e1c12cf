//! Records survive the sandbox round trip with every field intact.

use crate::common::*;
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use std::time::Duration;
use strait_sandbox::Cluster;

const N: usize = 10_000;
const PARTITIONS: i32 = 3;

fn value_of(i: usize) -> Vec<u8> {
    // Varied content and length, so a field mixed up between records cannot go unnoticed.
    format!("{{\"seq\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 97)).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_records_keep_key_value_headers_timestamp_and_partition() {
    let cluster = Cluster::start("east").await.unwrap();
    create_topic(&cluster, "orders", PARTITIONS).await;
    let producer = producer(&cluster);
    let base_ts = 1_700_000_000_000i64;

    let mut pending = FuturesUnordered::new();
    for i in 0..N {
        let key = format!("key-{i}");
        let value = value_of(i);
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "seq",
                value: Some(i.to_string().as_bytes()),
            })
            .insert(Header {
                key: "empty",
                value: None::<&[u8]>,
            });
        let record = FutureRecord::to("orders")
            .key(&key)
            .payload(&value)
            .partition((i % PARTITIONS as usize) as i32)
            .timestamp(base_ts + i as i64)
            .headers(headers);
        let fut = producer
            .send_result(record)
            .map_err(|(e, _)| e)
            .expect("enqueue");
        pending.push(async move { (i, fut.await) });
    }
    while let Some((i, r)) = pending.next().await {
        match r {
            Ok(Ok(_)) => {}
            other => panic!("record {i} not delivered: {other:?}"),
        }
    }

    let read = read_all(&cluster, "orders", PARTITIONS, N).await;
    assert_eq!(read.len(), N, "every record read back once");
    let mut seen = vec![false; N];
    for r in &read {
        let seq: usize = std::str::from_utf8(r.header("seq").expect("seq header"))
            .unwrap()
            .parse()
            .unwrap();
        assert!(!seen[seq], "record {seq} read twice");
        seen[seq] = true;
        assert_eq!(r.key.as_deref(), Some(format!("key-{seq}").as_bytes()));
        assert_eq!(r.value.as_deref(), Some(value_of(seq).as_slice()));
        assert_eq!(r.partition, (seq % PARTITIONS as usize) as i32);
        assert_eq!(r.timestamp, Some(base_ts + seq as i64));
        assert_eq!(
            r.headers,
            vec![
                ("seq".to_string(), Some(seq.to_string().into_bytes())),
                ("empty".to_string(), None)
            ]
        );
    }
    // Offsets are dense from 0 in each partition.
    for (p, recs) in by_partition(&read) {
        for (expect, r) in recs.iter().enumerate() {
            assert_eq!(r.offset, expect as i64, "partition {p} offsets dense");
        }
    }
}

/// The sandbox's storage is patched (third_party/tansu-storage): ListOffsets(latest) must count
/// every record of a multi-record batch, or every lag figure strait computes would be wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_offsets_count_every_record_of_multi_record_batches() {
    let cluster = Cluster::start("east").await.unwrap();
    create_topic(&cluster, "t", 1).await;
    produce_seq(&cluster, "t", 1, 1000).await; // batched by the producer
    let a = admin(&cluster);
    assert_eq!(a.watermarks("t", 0).await.unwrap(), (0, 1000));
    for _ in 0..3 {
        produce_seq(&cluster, "t", 1, 1).await;
    }
    assert_eq!(admin(&cluster).watermarks("t", 0).await.unwrap(), (0, 1003));
}

/// The sandbox's storage is patched (third_party/tansu-storage): a fetch that starts inside a
/// record batch returns the rest of that batch. Consumers resume mid-batch after every commit
/// and at every translated offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fetch_from_the_middle_of_a_batch_returns_the_rest_of_it() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{Offset, TopicPartitionList};
    let cluster = Cluster::start("east").await.unwrap();
    create_topic(&cluster, "t", 1).await;
    produce_seq(&cluster, "t", 1, 1000).await; // batched by the producer
    let ep = endpoint(&cluster);
    let offsets = tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ep.consumer_config("mid-batch").create().unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("t", 0, Offset::Offset(250))
            .unwrap();
        c.assign(&tpl).unwrap();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while got.len() < 750 && std::time::Instant::now() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                got.push(m.offset());
            }
        }
        got
    })
    .await
    .unwrap();
    assert_eq!(offsets, (250..1000).collect::<Vec<i64>>());
}

/// The sandbox's fetch is patched (third_party/tansu-storage): a fetch that starts inside a
/// record batch and goes on past it skips nothing. The broker filled a fetch by reading its
/// storage again from the requested offset plus the records it already had, counting those of
/// the first batch that lie before the requested offset: the next read started that many
/// records too far, and the records in between were never sent, a gap a consumer takes for
/// compaction. strait resumes mid-batch after every pause for a full producer queue, and lost a
/// record or a few that way in the target-down soak (the sandbox as the source).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fetch_from_the_middle_of_a_batch_skips_nothing_after_it() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::producer::FutureRecord;
    use rdkafka::{Offset, TopicPartitionList};
    let cluster = Cluster::start("east").await.unwrap();
    create_topic(&cluster, "t", 1).await;
    // Offsets 0..10 in one batch (one linger), then one batch per record: each is sent only once
    // the one before is acknowledged.
    let p: rdkafka::producer::FutureProducer = endpoint(&cluster)
        .producer_config()
        .set("linger.ms", "200")
        .create()
        .unwrap();
    let sends: Vec<_> = (0..10)
        .map(|i| {
            let v = format!("r{i}");
            p.send_result(FutureRecord::<(), _>::to("t").partition(0).payload(&v))
                .map_err(|(e, _)| e)
                .unwrap()
        })
        .collect();
    for (i, s) in sends.into_iter().enumerate() {
        s.await
            .unwrap()
            .unwrap_or_else(|e| panic!("record {i}: {e:?}"));
    }
    const N: i64 = 200;
    let p: rdkafka::producer::FutureProducer = producer(&cluster);
    for i in 10..N {
        let v = format!("r{i}");
        p.send(
            FutureRecord::<(), _>::to("t").partition(0).payload(&v),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("record {i}: {e}"));
    }
    let ep = endpoint(&cluster);
    let offsets = tokio::task::spawn_blocking(move || {
        // Small fetches, so that one answer holds the first batch and some of the next ones but
        // not the whole partition.
        let c: BaseConsumer = ep
            .consumer_config("mid-batch-on")
            .set("message.max.bytes", "1000")
            .set("fetch.max.bytes", "2000")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("t", 0, Offset::Offset(5)).unwrap();
        c.assign(&tpl).unwrap();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while got.last() != Some(&(N - 1)) && std::time::Instant::now() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                got.push(m.offset());
            }
        }
        got
    })
    .await
    .unwrap();
    let missing: Vec<i64> = (5..N).filter(|o| !offsets.contains(o)).collect();
    assert!(missing.is_empty(), "offsets never fetched: {missing:?}");
    assert_eq!(offsets, (5..N).collect::<Vec<i64>>());
}
