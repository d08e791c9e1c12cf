//! The fault proxy acts on real Kafka clients: a cut loses nothing with an idempotent producer,
//! a delay shows up as request latency, a blackhole as timeouts; clusters are independent.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::producer::FutureRecord;
use strait::kafka::{Admin, TopicSpec};
use strait_sandbox::{Cluster, Sandbox};

on_both_engines! {
async fn cut_mid_stream_then_heal_delivers_every_record_once_in_order(engine) {
    const N: usize = 6_000;
    const PARTITIONS: i32 = 3;
    let cluster = engine.cluster("east").await;
    create_topic(&cluster, "events", PARTITIONS).await;
    let producer = producer(&cluster);
    let acked = Arc::new(AtomicUsize::new(0));

    // Cut once a third of the stream is acknowledged, heal 3 s later, while the producer keeps
    // sending at a steady pace.
    let faults = cluster.faults().clone();
    let acked_at_cut = {
        let acked = acked.clone();
        tokio::spawn(async move {
            while acked.load(Ordering::SeqCst) < N / 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let at_cut = acked.load(Ordering::SeqCst);
            faults.cut();
            tokio::time::sleep(Duration::from_secs(3)).await;
            faults.heal();
            at_cut
        })
    };

    let mut pending = FuturesUnordered::new();
    for i in 0..N {
        let payload = i.to_string();
        let key = format!("k{}", i % 50);
        let record = FutureRecord::to("events")
            .key(&key)
            .payload(&payload)
            .partition((i % PARTITIONS as usize) as i32);
        let fut = producer
            .send_result(record)
            .map_err(|(e, _)| e)
            .expect("enqueue");
        let acked = acked.clone();
        // A task per record, so acknowledgements are counted as they arrive.
        pending.push(tokio::spawn(async move {
            let r = fut.await;
            acked.fetch_add(1, Ordering::SeqCst);
            (i, r)
        }));
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    while let Some(joined) = pending.next().await {
        let (i, r) = joined.unwrap();
        match r {
            Ok(Ok(_)) => {}
            other => panic!("record {i} not delivered after heal: {other:?}"),
        }
    }
    let at_cut = acked_at_cut.await.unwrap();
    assert!(
        at_cut < N,
        "the cut happened mid-stream ({at_cut} of {N} acked)"
    );
    eprintln!("cut after {at_cut} of {N} records were acknowledged");

    let read = read_all(&cluster, "events", PARTITIONS, N).await;
    let mut count: BTreeMap<usize, usize> = BTreeMap::new();
    for r in &read {
        let seq: usize = std::str::from_utf8(r.value.as_deref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        *count.entry(seq).or_default() += 1;
    }
    let dups: Vec<_> = count
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(s, _)| *s)
        .collect();
    let missing: Vec<_> = (0..N).filter(|s| !count.contains_key(s)).collect();
    assert!(dups.is_empty(), "duplicated after the cut: {dups:?}");
    assert!(missing.is_empty(), "lost after the cut: {missing:?}");
    for (p, recs) in by_partition(&read) {
        let seqs: Vec<usize> = recs
            .iter()
            .map(|r| {
                std::str::from_utf8(r.value.as_deref().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "partition {p} out of order"
        );
    }
}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delay_raises_round_trip_latency_by_twice_the_one_way_delay() {
    let cluster = Cluster::start("east").await.unwrap();
    let admin = admin(&cluster);
    time_metadata(&admin).await; // connect
    let mut before = Vec::new();
    for _ in 0..5 {
        before.push(time_metadata(&admin).await);
    }
    cluster.delay(Duration::from_millis(50));
    let mut after = Vec::new();
    for _ in 0..5 {
        after.push(time_metadata(&admin).await);
    }
    before.sort();
    after.sort();
    let (b, a) = (before[2], after[2]);
    // Each round trip now crosses the 50 ms delay twice; the time before is only a reference
    // (it varies with the machine's load, which the delay does not add to).
    assert!(
        a >= Duration::from_millis(100) && a > b,
        "median metadata latency {b:?} before, {a:?} with 50 ms each way"
    );
    cluster.heal();
    let healed = time_metadata(&admin).await;
    assert!(healed < Duration::from_millis(100), "{healed:?} after heal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blackhole_makes_metadata_requests_time_out_until_heal() {
    let cluster = Cluster::start("east").await.unwrap();
    let ep = endpoint(&cluster);
    let existing = Admin::new(&ep, Duration::from_secs(2)).unwrap();
    existing
        .topics(None)
        .await
        .expect("reachable before the blackhole");

    cluster.blackhole();
    let err = existing
        .topics(None)
        .await
        .expect_err("no answer through a blackhole");
    assert!(err.is_timeout(), "a timeout, not {err}");
    let msg = err.to_string();
    assert!(
        msg.contains("east") && msg.contains(&cluster.bootstrap_servers()),
        "{msg}"
    );

    let fresh = Admin::new(&ep, Duration::from_secs(2)).unwrap();
    let err = fresh
        .topics(None)
        .await
        .expect_err("new connections hang too");
    assert!(err.is_timeout(), "a timeout, not {err}");

    cluster.heal();
    let healed = Admin::new(&ep, Duration::from_secs(10)).unwrap();
    healed.topics(None).await.expect("reachable after heal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clusters_are_independent() {
    let sandbox = Sandbox::start(&["us-east", "us-west"]).await.unwrap();
    let east = sandbox.cluster("us-east").unwrap();
    let west = sandbox.cluster("us-west").unwrap();
    assert_ne!(east.bootstrap_servers(), west.bootstrap_servers());
    admin(east)
        .create_topics(&[TopicSpec::new("only-east", 2, 1)])
        .await
        .unwrap();
    admin(west)
        .create_topics(&[TopicSpec::new("only-west", 1, 1)])
        .await
        .unwrap();
    let names = |ts: Vec<strait::kafka::TopicInfo>| -> Vec<String> {
        ts.into_iter().map(|t| t.name).collect()
    };
    let e = names(admin(east).topics(None).await.unwrap());
    let w = names(admin(west).topics(None).await.unwrap());
    assert!(
        e.contains(&"only-east".to_string()) && !e.contains(&"only-west".to_string()),
        "{e:?}"
    );
    assert!(
        w.contains(&"only-west".to_string()) && !w.contains(&"only-east".to_string()),
        "{w:?}"
    );

    // A fault on one region leaves the other alone.
    east.cut();
    admin(west)
        .topics(None)
        .await
        .expect("us-west unaffected by the us-east cut");
}
