//! The passthrough data path (issue 19) against real brokers: record batches reach the target as
//! the bytes they were, compression included (small ones merged, in their codec), and every
//! record with every field; the record path stays what `strait.data.path = records` asks for.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use strait::kafka::TopicSpec;
use strait::replicate;

use crate::common::*;

/// One stored batch, as the broker keeps it: its codec id, record count and size in bytes.
type Stored = (i16, i32, usize);

/// Every batch of `topic` on `c`, per partition, read back as stored (one broker: the bed's).
async fn stored_batches(
    c: &strait_sandbox::Cluster,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, Vec<Stored>> {
    stored::stored_batches(&endpoint(c), topic, partitions)
        .await
        .into_iter()
        .map(|(p, hs)| {
            let batches = hs.iter().map(|h| (h.compression(), h.count, h.size()));
            (p, batches.collect())
        })
        .collect()
}

/// How a test's producer batches.
#[derive(Clone, Copy)]
enum Batching {
    /// Batches of up to 500 small records (a few KB compressed), which strait merges.
    Small,
    /// Batches of exactly 100 records of about 230 bytes, above the 16 KiB under which strait
    /// merges batches: copied as they are.
    Large,
}

/// `n` records to `topic`, round-robin over `partitions`, through a producer that batches
/// (`batching`) and compresses with `codec`: value `<topic>:<i>` (padded for large batches), a
/// key, a header, a timestamp.
async fn produce_compressed(
    c: &strait_sandbox::Cluster,
    topic: &str,
    partitions: i32,
    n: usize,
    codec: &str,
    batching: Batching,
) {
    use futures::stream::{FuturesUnordered, StreamExt};
    use rdkafka::message::{Header, OwnedHeaders};
    let (linger, per_batch, pad) = match batching {
        Batching::Small => ("20", "500", 0),
        Batching::Large => ("1000", "100", 200),
    };
    let p: FutureProducer = endpoint(c)
        .with("compression.type", codec)
        .with("linger.ms", linger)
        .with("batch.num.messages", per_batch)
        .producer_config()
        .create()
        .expect("producer");
    let mut pending = FuturesUnordered::new();
    for i in 0..n {
        let (k, v) = (
            format!("k{}", i % 97),
            format!("{topic}:{i}{}", "-".repeat(pad)),
        );
        let rec = FutureRecord::to(topic)
            .partition((i % partitions as usize) as i32)
            .key(&k)
            .payload(&v)
            .timestamp(1_700_000_000_000 + i as i64)
            .headers(OwnedHeaders::new().insert(Header {
                key: "seq",
                value: Some(&i.to_string()),
            }));
        pending.push(p.send_result(rec).map_err(|(e, _)| e).expect("queued"));
        if pending.len() >= 5_000 {
            while let Some(r) = pending.next().await {
                r.expect("delivered").expect("produced");
            }
        }
    }
    while let Some(r) = pending.next().await {
        r.expect("delivered").expect("produced");
    }
}

on_both_engines! {
async fn record_batches_reach_the_target_as_they_were(engine) {
    let _heavy = heavy().await;
    const N: usize = 20_000;
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    admin(east)
        .create_topics(&[TopicSpec::new("clicks", 3, 1), TopicSpec::new("plain", 2, 1)])
        .await
        .unwrap();
    produce_compressed(east, "clicks", 3, N, "zstd", Batching::Small).await;
    produce_compressed(east, "plain", 2, 2_000, "none", Batching::Large).await;
    let flow = replicate::start(
        flow_spec(east, west, &["clicks", "plain"]),
        strait::stop::CancellationToken::new(),
    );
    wait_for_count(west, "us-east.clicks", 3, N as i64, Duration::from_secs(120)).await;
    wait_for_count(west, "us-east.plain", 2, 2_000, Duration::from_secs(60)).await;
    let records = flow.stats.records.load(std::sync::atomic::Ordering::Relaxed);
    flow.stop();
    flow.join().await.expect("clean stop");
    assert_eq!(records, N as u64 + 2_000, "each record counted once");

    for (topic, partitions, n) in [("clicks", 3, N), ("plain", 2, 2_000)] {
        let remote = format!("us-east.{topic}");
        // Every record, every field, in order, once (no faults).
        let (source, copies) = (
            read_all(east, topic, partitions, n).await,
            read_all(west, &remote, partitions, n).await,
        );
        let (source, copies) = (by_partition(&source), by_partition(&copies));
        for (p, recs) in &source {
            let got = &copies[p];
            assert_eq!(got.len(), recs.len(), "{remote}-{p}");
            for (a, b) in recs.iter().zip(got) {
                assert_eq!(
                    (&a.key, &a.value, &a.headers, a.timestamp),
                    (&b.key, &b.value, &b.headers, b.timestamp),
                    "{remote}-{p} differs at upstream offset {}",
                    a.offset
                );
            }
        }
        let src = stored_batches(east, topic, partitions).await;
        let dst = stored_batches(west, &remote, partitions).await;
        if topic == "plain" {
            // Large batches as bytes: the source's, one for one.
            assert_eq!(src, dst, "{topic}: the same batches (codec, records, bytes) on both sides");
        } else {
            // Small ones merged: fewer batches, about as many bytes (compressed again at the
            // same level), the codec kept.
            let (s, d) = (src.values().flatten(), dst.values().flatten());
            let (sn, dn) = (s.clone().count(), d.clone().count());
            let (sb, db) = (s.map(|b| b.2).sum::<usize>(), d.map(|b| b.2).sum::<usize>());
            assert!(dn < sn, "{topic}: small batches merged: {dn} on the target, {sn} on the source");
            assert!(
                db * 100 <= sb * 105,
                "{topic}: {db} bytes stored on the target, more than 5 % over the source's {sb}"
            );
        }
        let codecs: std::collections::BTreeSet<i16> =
            dst.values().flatten().map(|(c, _, _)| *c).collect();
        let want = if topic == "clicks" { 4 } else { 0 };
        assert_eq!(codecs, [want].into(), "{remote}: codec kept");
        assert!(
            dst.values().flatten().any(|(_, n, _)| *n > 1),
            "{remote}: batches of many records: {dst:?}"
        );
    }
}
}

/// `strait.data.path = records` keeps the record path: librdkafka's producer batches again, so
/// the copies are not the source's batches (here: one codec for all, the target producer's).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_record_path_is_kept_when_asked_for() {
    let _heavy = heavy().await;
    let sb = Engine::Tansu.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    admin(east)
        .create_topics(&[TopicSpec::new("clicks", 1, 1)])
        .await
        .unwrap();
    produce_compressed(east, "clicks", 1, 3_000, "zstd", Batching::Small).await;
    let mut spec = flow_spec(east, west, &["clicks"]);
    spec.records_path = Some("the test asks for it".into());
    assert!(replicate::records_because(&spec).is_some_and(|w| w.contains("the test asks")));
    spec.target = spec.target.with("compression.type", "lz4");
    let flow = replicate::start(spec, strait::stop::CancellationToken::new());
    wait_for_count(west, "us-east.clicks", 1, 3_000, Duration::from_secs(60)).await;
    flow.stop();
    flow.join().await.expect("clean stop");
    let dst = stored_batches(west, "us-east.clicks", 1).await;
    let codecs: std::collections::BTreeSet<i16> =
        dst.values().flatten().map(|(c, _, _)| *c).collect();
    assert_eq!(
        codecs,
        [3].into(),
        "recompressed by the target producer (lz4)"
    );
}

/// Apache Kafka only (the sandbox has one node): leaders move on both sides while batches are
/// copied. Two three-node clusters, replication factor 3; mid-stream a target node is killed
/// (its partitions' leaders move, and the batches in flight to it are sent again to the new
/// leaders under the same sequences), later a source node (its partitions are fetched from the
/// new leaders). Every record arrives, in order per partition; a copy made twice can only be a
/// batch sent again whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leaders_moving_on_both_sides_lose_nothing() {
    let Some(spec) = kafka_spec(strait_sandbox::Security::Plaintext) else {
        return;
    };
    let _heavy = heavy().await;
    const N: usize = 60_000;
    let spec = spec.nodes(3);
    let (east, west) = tokio::join!(
        strait_sandbox::Cluster::start_kafka("us-east", &spec),
        strait_sandbox::Cluster::start_kafka("us-west", &spec),
    );
    let (mut east, mut west) = (east.unwrap(), west.unwrap());
    admin(&east)
        .create_topics(&[TopicSpec::new("orders", 3, 3).config("min.insync.replicas", "2")])
        .await
        .unwrap();
    let mut fs = flow_spec(&east, &west, &["orders"]);
    fs.sync_topic_configs = None;
    let flow = replicate::start(fs, strait::stop::CancellationToken::new());
    let writer = {
        let c = endpoint(&east);
        tokio::spawn(async move {
            let p: FutureProducer = c
                .with("compression.type", "lz4")
                .with("linger.ms", "5")
                .producer_config()
                .create()
                .expect("producer");
            use futures::stream::{FuturesUnordered, StreamExt};
            let mut pending = FuturesUnordered::new();
            for i in 0..N {
                let v = format!("orders:{i}");
                let rec = FutureRecord::<(), _>::to("orders")
                    .partition((i % 3) as i32)
                    .payload(&v);
                pending.push(p.send_result(rec).map_err(|(e, _)| e).expect("queued"));
                if i % 1_000 == 999 {
                    while let Some(r) = pending.next().await {
                        r.expect("delivered").expect("produced");
                    }
                    // About 30 s of writes in all, so that both restarts land mid-stream.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            while let Some(r) = pending.next().await {
                r.expect("delivered").expect("produced");
            }
        })
    };
    wait_for_count(&west, "us-east.orders", 3, 5_000, Duration::from_secs(120)).await;
    west.restart_node(1, Duration::from_secs(3))
        .await
        .expect("target node back");
    wait_for_count(&west, "us-east.orders", 3, 20_000, Duration::from_secs(120)).await;
    east.restart_node(2, Duration::from_secs(3))
        .await
        .expect("source node back");
    writer.await.unwrap();
    wait_for_count(
        &west,
        "us-east.orders",
        3,
        N as i64,
        Duration::from_secs(180),
    )
    .await;
    flow.stop();
    flow.join().await.expect("clean stop");

    let copies = read_all(&west, "us-east.orders", 3, N).await;
    let mut dups = 0;
    for (p, recs) in by_partition(&copies) {
        let mut want = p as usize;
        for r in recs {
            let v = String::from_utf8(r.value.clone().unwrap()).unwrap();
            let i: usize = v["orders:".len()..].parse().unwrap();
            if i < want {
                dups += 1; // sent again: a batch the target had, or a batch before it
                continue;
            }
            assert_eq!(
                i, want,
                "us-east.orders-{p}: record {want} missing or out of order"
            );
            want += 3;
        }
        assert!(want >= N, "us-east.orders-{p}: copied up to {want} of {N}");
    }
    eprintln!("duplicates: {dups}");
}
