//! The replication engine against two sandbox regions: every record arrives with every field, in
//! order per partition; faults lose nothing; offset syncs follow MM2's format and rules.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::*;
use strait::kafka::TopicSpec;
use strait::replicate;
use strait::translate::TranslateReport;
use strait_sandbox::Sandbox;

/// Every source record is in the remote topic once or more, in source order per partition, with
/// equal key, value, headers and timestamp. Returns the number of duplicates.
async fn assert_replicated(
    src: &strait_sandbox::Cluster,
    dst: &strait_sandbox::Cluster,
    topic: &str,
    remote: &str,
    partitions: i32,
    n: usize,
) -> usize {
    let source = read_all(src, topic, partitions, n).await;
    assert_eq!(source.len(), n, "source {topic} holds {n} records");
    let copies = read_all(dst, remote, partitions, n).await;
    let src_parts = by_partition(&source);
    let dst_parts = by_partition(&copies);
    let mut dups = 0;
    for (p, recs) in &src_parts {
        let got = dst_parts
            .get(p)
            .unwrap_or_else(|| panic!("{remote}-{p} missing"));
        // Remove consecutive re-sends (at-least-once), then compare field by field.
        let mut dedup: Vec<&Read> = Vec::new();
        for r in got {
            if let Some(last) = dedup.last() {
                if last.value == r.value {
                    dups += 1;
                    continue;
                }
            }
            dedup.push(r);
        }
        assert_eq!(
            dedup.len(),
            recs.len(),
            "{remote}-{p}: {} records for {} upstream",
            dedup.len(),
            recs.len()
        );
        for (a, b) in recs.iter().zip(dedup.iter()) {
            assert_eq!(
                (&a.key, &a.value, &a.headers, a.timestamp),
                (&b.key, &b.value, &b.headers, b.timestamp),
                "{remote}-{p} differs at upstream offset {}",
                a.offset
            );
        }
    }
    dups
}

on_both_engines! {
async fn active_passive_copies_every_record_with_every_field_in_order(engine) {
    let _heavy = heavy().await;
    const N: usize = 30_000;
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    let topics = ["orders", "payments", "shipments"];
    admin(east)
        .create_topics(&topics.map(|t| {
            TopicSpec::new(t, 3, 1)
                .config("retention.ms", "86400000")
                .config("min.insync.replicas", "1")
        }))
        .await
        .unwrap();
    let flow = replicate::start(flow_spec(east, west, &["orders", "payments", "shipments"]), strait::stop::CancellationToken::new());
    for t in topics {
        produce_seq(east, t, 3, N).await;
    }
    for t in topics {
        wait_for_count(
            west,
            &format!("us-east.{t}"),
            3,
            N as i64,
            Duration::from_secs(120),
        )
        .await;
    }
    flow.stop();
    flow.join().await.expect("clean stop");
    for t in topics {
        let remote = format!("us-east.{t}");
        let dups = assert_replicated(east, west, t, &remote, 3, N).await;
        assert_eq!(dups, 0, "no faults, no duplicates");
        let info = admin(west).topics(Some(&remote)).await.unwrap();
        assert_eq!(info[0].partitions, 3, "same partition count");
        let cfg = topic_overrides(west, &remote).await;
        assert_eq!(
            cfg.get("retention.ms").map(String::as_str),
            Some("86400000"),
            "configs copied: {cfg:?}"
        );
        assert!(
            !cfg.contains_key("min.insync.replicas"),
            "excluded config not copied: {cfg:?}"
        );
    }
}
}

on_both_engines! {
async fn target_cut_for_ten_seconds_mid_stream_loses_nothing(engine) {
    let _heavy = heavy().await;
    const N: usize = 20_000;
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, "orders", 3).await;
    let flow = replicate::start(flow_spec(east, west, &["orders"]), strait::stop::CancellationToken::new());
    produce_seq(east, "orders", 3, N / 2).await;
    wait_for_count(
        west,
        "us-east.orders",
        3,
        (N / 4) as i64,
        Duration::from_secs(60),
    )
    .await;
    west.cut();
    produce_seq(east, "orders", 3, N / 2).await; // written while the target is away
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        !flow.is_finished(),
        "an unreachable target is waited for, not a reason to stop"
    );
    west.heal();
    wait_for_count(
        west,
        "us-east.orders",
        3,
        N as i64,
        Duration::from_secs(120),
    )
    .await;
    flow.stop();
    flow.join().await.expect("clean stop");
    // The second batch repeats values "orders:0".. so compare the whole stream by (partition, seq).
    let copies = read_all(west, "us-east.orders", 3, N).await;
    let source = read_all(east, "orders", 3, N).await;
    let want = multiset(&source);
    let got = multiset(&copies);
    for (k, n) in &want {
        assert!(got.get(k).copied().unwrap_or(0) >= *n, "lost {k:?}");
    }
}
}

on_both_engines! {
/// A target away for longer than the source consumer's `max.poll.interval.ms`, with more backlog
/// than the producer may queue: the copy loop pauses the source and keeps polling, so the group
/// keeps this member (no revoke, no rebalance), and everything lands once the target is back.
async fn a_full_producer_queue_pauses_the_source_and_keeps_the_group(engine) {
    let _heavy = heavy().await;
    const N: usize = 6_000;
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, "orders", 3).await;
    let mut spec = flow_spec(east, west, &["orders"]);
    // Evicted after 6 s without a poll; room for about 64 KiB of records in the producer.
    spec.source = spec
        .source
        .with("max.poll.interval.ms", "6000")
        .with("session.timeout.ms", "6000");
    spec.target = spec.target.with("queue.buffering.max.kbytes", "64");
    let flow = replicate::start(spec, strait::stop::CancellationToken::new());
    // Timestamps of now: Apache Kafka's retention would delete records stamped years ago.
    produce_range(east, "orders", 3, 0..300, "orders", None).await;
    wait_for_count(west, "us-east.orders", 3, 300, Duration::from_secs(60)).await;
    let assigned = || flow.stats.assigned_partitions.load(std::sync::atomic::Ordering::Relaxed);
    let revoked = || flow.stats.revocations.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(assigned(), 3, "one process: every partition");

    west.cut();
    // About 1 MB of records (sequence numbers padded), far more than the producer may queue.
    let padded = format!("orders-{}", "x".repeat(150));
    produce_range(east, "orders", 3, 300..N, &padded, None).await;
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(15) {
        assert_eq!(assigned(), 3, "the member was evicted while the target was away");
        assert!(!flow.is_finished(), "an unreachable target is waited for");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Waited for, and said: the flow is waiting, with the reason (batches wait: the default
    // data path copies batches).
    let seen = flow.stats.health.view(3);
    assert_eq!(seen.condition, replicate::Condition::Waiting, "{seen:?}");
    assert!(
        seen.reason.as_deref().is_some_and(
            |r| r.contains("has acknowledged no record") && r.contains(" batches wait")
        ),
        "{seen:?}"
    );
    west.heal();
    let healed = Instant::now();
    while record_count(west, "us-east.orders", 3).await < N as i64 {
        assert_eq!(assigned(), 3, "the member was evicted and rejoined after the outage");
        if healed.elapsed() > Duration::from_secs(120) {
            let n = record_count(west, "us-east.orders", 3).await;
            panic!("{n} of {N} copied 120 s after the outage");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(revoked(), 0, "the group took the partitions away (evicted) and gave them back");
    let t = Instant::now();
    while flow.stats.health.condition() != replicate::Condition::Replicating {
        assert!(t.elapsed() < Duration::from_secs(5), "still waiting once everything was copied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    flow.stop();
    flow.join().await.expect("clean stop");
    let copies = read_all(west, "us-east.orders", 3, N).await;
    let source = read_all(east, "orders", 3, N).await;
    let (want, got) = (multiset(&source), multiset(&copies));
    for (k, n) in &want {
        assert!(got.get(k).copied().unwrap_or(0) >= *n, "lost {k:?}");
    }
}
}

/// A source topic `orders` with 300 records is copied, then deleted and created again with 600
/// others, while the flow runs or (`while_stopped`) while it is stopped; every record of the new
/// topic must reach the target.
async fn recreated_topic_is_copied_whole(engine: Engine, while_stopped: bool) {
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    let start = || {
        replicate::start(
            flow_spec(east, west, &["orders"]),
            strait::stop::CancellationToken::new(),
        )
    };
    create_topic(east, "orders", 1).await;
    let flow = start();
    produce_range(east, "orders", 1, 0..300, "old", None).await;
    wait_for_count(west, "us-east.orders", 1, 300, Duration::from_secs(60)).await;
    let recreate = || async {
        delete_topic(east, "orders").await;
        create_topic(east, "orders", 1).await;
        produce_range(east, "orders", 1, 0..600, "new", None).await;
    };
    let flow = if while_stopped {
        tokio::time::sleep(Duration::from_secs(2)).await; // committed, and MM2's position written
        flow.stop();
        flow.join().await.expect("clean stop");
        recreate().await;
        start()
    } else {
        recreate().await;
        flow
    };
    wait_for_count(west, "us-east.orders", 1, 900, Duration::from_secs(90)).await;
    flow.stop();
    flow.join().await.expect("clean stop");
    let copies = read_all(west, "us-east.orders", 1, 900).await;
    let seen: std::collections::BTreeSet<String> = copies
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    let lost: Vec<usize> = (0..600)
        .filter(|i| !seen.contains(&format!("new:{i}")))
        .collect();
    assert!(
        lost.is_empty(),
        "records of the new topic never copied: {} of 600: {lost:?}",
        lost.len()
    );
}

on_both_engines! {
/// A source topic deleted and created again while the flow copies it starts its offsets over,
/// and librdkafka keeps reading the new topic from the old position when the new one already
/// holds more (skipping what lies below it). strait notices the new topic id and copies the new
/// topic from its start.
async fn a_source_topic_created_again_is_copied_from_its_start(engine) {
    recreated_topic_is_copied_whole(engine, false).await;
}
}

on_both_engines! {
/// The same, while no strait runs: the positions strait recorded (its group's commit, which
/// Apache Kafka deletes with the topic, and MM2's position, which it keeps) point into the new
/// topic, which by then holds more records. They were taken on the earlier topic (their stamp
/// says which), so the new one is copied from its start. Before, the restart resumed at the old
/// position and every record below it was lost (found by the soak's topic-recreate scenario).
async fn a_source_topic_created_again_while_stopped_is_copied_from_its_start(engine) {
    recreated_topic_is_copied_whole(engine, true).await;
}
}

/// Apache Kafka only (the sandbox has no record size limit). A record larger than the remote
/// topic takes stops its partition there, with the reason, and nothing behind it lands before it;
/// the other partitions go on. Before, the broker's refusal ended the flow after the records
/// behind it had been written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_the_target_refuses_stops_its_partition_only() {
    if !kafka_enabled() {
        return;
    }
    let sb = Engine::Kafka.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, "orders", 2).await;
    // The remote topic exists already, with a 20 000-byte limit the source does not have.
    admin(west)
        .create_topics(&[
            TopicSpec::new("us-east.orders", 2, 1).config("max.message.bytes", "20000")
        ])
        .await
        .unwrap();
    let mut spec = flow_spec(east, west, &["orders"]);
    spec.sync_topic_configs = None;
    let flow = replicate::start(spec, strait::stop::CancellationToken::new());
    // Partition 0: ten small records, one of 30 000 bytes, ten small; partition 1: twenty small.
    let p = producer(east);
    let big = "x".repeat(30_000);
    for i in 0..21 {
        let v = if i == 10 {
            big.clone()
        } else {
            format!("p0:{i}")
        };
        p.send(
            rdkafka::producer::FutureRecord::<(), _>::to("orders")
                .partition(0)
                .payload(&v),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
    produce_range(east, "orders", 2, 0..40, "small", None).await;
    wait_for_count(west, "us-east.orders", 2, 30, Duration::from_secs(60)).await;
    let t = Instant::now();
    while flow.stats.health.view(2).stopped_partitions.is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "partition 0 not stopped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = flow.stats.health.view(2);
    let stopped = &seen.stopped_partitions;
    assert_eq!(
        stopped
            .iter()
            .map(|s| (s.topic.as_str(), s.partition, s.offset))
            .collect::<Vec<_>>(),
        [("orders", 0, 10)]
    );
    assert!(
        stopped[0].reason.contains("max.message.bytes"),
        "{}",
        stopped[0].reason
    );
    assert!(seen.is_broken(), "it will not heal by itself");
    // The rest goes on: more records on partition 1 arrive; none of partition 0 after the stop.
    produce_range(east, "orders", 2, 40..60, "more", None).await;
    wait_for_count(west, "us-east.orders", 2, 40, Duration::from_secs(60)).await;
    assert!(
        !flow.is_finished(),
        "one partition's record does not end the flow"
    );
    let copies = read_all(west, "us-east.orders", 2, 40).await;
    let p0: Vec<String> = copies
        .iter()
        .filter(|r| r.partition == 0)
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    let want: Vec<String> = (0..10).map(|i| format!("p0:{i}")).collect();
    assert_eq!(
        p0, want,
        "partition 0: what comes before the refused record, in order, only"
    );
    flow.stop();
    flow.join().await.expect("clean stop");
    // Its position stays at the refused record: a restart meets it again.
    let committed = committed(east, &flow_spec(east, west, &[]).group_id(), "orders", 2).await;
    assert_eq!(committed.get(&0), Some(&10), "{committed:?}");
}

/// Apache Kafka only (the sandbox's in-memory store never deletes records: it has neither
/// retention nor DeleteRecords). Records the source deleted before the flow copied them cannot be
/// copied: they are counted (`strait_records_skipped_total{reason="retention"}`) and said with
/// their range, and everything after them is copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_deleted_before_they_were_copied_are_counted_and_said() {
    if !kafka_enabled() {
        return;
    }
    let sb = Engine::Kafka.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, "orders", 1).await;
    produce_range(east, "orders", 1, 0..200, "orders", None).await;
    // The flow copied up to 50 before it stopped; the source then deleted everything below 120.
    let spec = flow_spec(east, west, &["orders"]);
    commit_group(east, &spec.group_id(), &[("orders", 0, 50)]).await;
    delete_records(east, "orders", 0, 120).await;

    let flow = replicate::start(spec, strait::stop::CancellationToken::new());
    wait_for_count(west, "us-east.orders", 1, 80, Duration::from_secs(60)).await;
    let t = Instant::now();
    while flow.stats.health.skipped_retention() == 0 && t.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(flow.stats.health.skipped_retention(), 70, "records 50..120");
    let seen = flow.stats.health.view(1);
    assert_eq!(
        seen.records_skipped.get(&replicate::SkipReason::Retention),
        Some(&70)
    );
    flow.stop();
    flow.join().await.expect("clean stop");
    let copies = read_all(west, "us-east.orders", 1, 80).await;
    let values: Vec<String> = copies
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    let want: Vec<String> = (120..200).map(|i| format!("orders:{i}")).collect();
    assert_eq!(
        values, want,
        "everything the source still held, once, in order"
    );
}

/// A record's identity across clusters: partition, value, timestamp.
type RecordId = (i32, Option<Vec<u8>>, Option<i64>);

/// How many times each record occurs.
fn multiset(records: &[Read]) -> BTreeMap<RecordId, usize> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry((r.partition, r.value.clone(), r.timestamp))
            .or_default() += 1;
    }
    m
}

/// MM2-SPEC §3.3, decoded independently of strait's own `wire` module.
fn decode_sync(key: &[u8], value: &[u8]) -> (String, i32, i64, i64) {
    let len = i16::from_be_bytes([key[0], key[1]]) as usize;
    let topic = String::from_utf8(key[2..2 + len].to_vec()).unwrap();
    assert_eq!(
        key.len(),
        2 + len + 4,
        "key is STRING topic + INT32 partition"
    );
    let partition = i32::from_be_bytes(key[2 + len..].try_into().unwrap());
    assert_eq!(value.len(), 16, "value is two INT64, no version header");
    let up = i64::from_be_bytes(value[..8].try_into().unwrap());
    let down = i64::from_be_bytes(value[8..].try_into().unwrap());
    (topic, partition, up, down)
}

on_both_engines! {
async fn offset_syncs_follow_mm2_format_and_rules(engine) {
    const N: usize = 1_000;
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, "orders", 2).await;
    let flow = replicate::start(flow_spec(east, west, &["orders"]), strait::stop::CancellationToken::new());
    produce_seq(east, "orders", 2, N).await;
    wait_for_count(west, "us-east.orders", 2, N as i64, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await; // a flush interval: delayed syncs promoted
    flow.stop();
    flow.join().await.unwrap();

    let topic = "mm2-offset-syncs.us-west.internal";
    let info = admin(east).topics(Some(topic)).await.unwrap();
    assert_eq!(info[0].partitions, 1, "single partition");
    let cfg = admin(east).topic_configs(topic).await.unwrap();
    assert_eq!(
        cfg.get("cleanup.policy").map(String::as_str),
        Some("compact")
    );

    let (_, high) = admin(east).watermarks(topic, 0).await.unwrap();
    let records = read_all(east, topic, 1, high as usize).await;
    let mut per_part: BTreeMap<i32, Vec<(i64, i64)>> = BTreeMap::new();
    for r in &records {
        let (t, p, up, down) = decode_sync(r.key.as_deref().unwrap(), r.value.as_deref().unwrap());
        assert_eq!(t, "orders", "upstream topic name, not renamed");
        per_part.entry(p).or_default().push((up, down));
    }
    assert_eq!(per_part.len(), 2);
    for (p, syncs) in per_part {
        assert_eq!(
            syncs[0],
            (0, 0),
            "partition {p}: first record synced at once"
        );
        assert_eq!(
            *syncs.last().unwrap(),
            (N as i64 / 2 - 1, N as i64 / 2 - 1),
            "partition {p}: last record synced after flush"
        );
        for w in syncs.windows(2) {
            assert!(
                w[1].1 - w[0].1 <= 101,
                "partition {p}: syncs at most offset.lag.max+1 apart: {w:?}"
            );
        }
    }
}
}

on_both_engines! {
async fn two_processes_split_partitions_and_the_survivor_takes_over(engine) {
    let _heavy = heavy().await;
    const N: usize = 12_000;
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, "orders", 4).await;
    let a = replicate::start(flow_spec(east, west, &["orders"]), strait::stop::CancellationToken::new());
    let b = replicate::start(flow_spec(east, west, &["orders"]), strait::stop::CancellationToken::new());
    // Produce only once the group has settled with both members holding partitions.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let assigned = |f: &replicate::RunningFlow| {
        f.stats
            .assigned_partitions
            .load(Ordering::Relaxed)
    };
    while assigned(&a) + assigned(&b) != 4 || assigned(&a) == 0 || assigned(&b) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "group did not split: {} and {}",
            assigned(&a),
            assigned(&b)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    produce_seq(east, "orders", 4, N / 2).await;
    wait_for_count(
        west,
        "us-east.orders",
        4,
        (N / 2) as i64,
        Duration::from_secs(90),
    )
    .await;
    use std::sync::atomic::Ordering;
    let (ra, rb) = (
        a.stats.records.load(Ordering::Relaxed),
        b.stats.records.load(Ordering::Relaxed),
    );
    assert!(
        ra > 0 && rb > 0,
        "both processes replicate a share: {ra} and {rb}"
    );
    a.stop();
    a.join().await.unwrap();
    produce_seq(east, "orders", 4, N / 2).await;
    wait_for_count(west, "us-east.orders", 4, N as i64, Duration::from_secs(90)).await;
    b.stop();
    b.join().await.unwrap();
    let copies = read_all(west, "us-east.orders", 4, N).await;
    assert!(copies.len() >= N, "nothing lost: {} of {N}", copies.len());
}
}

/// A flow dropped without `stop()` (a panicking caller, a runtime shutting down) must still end
/// its copy thread; otherwise the runtime's shutdown, and the process, waits forever.
#[test]
fn a_flow_dropped_without_stop_lets_the_runtime_shut_down() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let sb = Sandbox::start(&["us-east", "us-west"]).await.unwrap();
            let (east, west) = (
                sb.cluster("us-east").unwrap(),
                sb.cluster("us-west").unwrap(),
            );
            create_topic(east, "orders", 1).await;
            produce_seq(east, "orders", 1, 100).await;
            let flow = replicate::start(
                flow_spec(east, west, &["orders"]),
                strait::stop::CancellationToken::new(),
            );
            wait_for_count(west, "us-east.orders", 1, 100, Duration::from_secs(60)).await;
            drop(flow);
        });
        drop(rt);
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the runtime did not shut down: the dropped flow's copy thread is still running");
}

/// Apache Kafka only (the sandbox cannot grow partitions): a source topic that gains partitions
/// while strait runs gets them on the target at the next refresh, and records written to the new
/// partitions arrive in them, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partition_growth_reaches_the_target_and_new_partitions_replicate() {
    if !kafka_enabled() {
        return;
    }
    let _heavy = heavy().await;
    let sb = Engine::Kafka.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, "orders", 2).await;
    let flow = replicate::start(
        flow_spec(east, west, &["orders"]),
        strait::stop::CancellationToken::new(),
    );
    // Records stamped now: Apache Kafka deletes older ones by retention as soon as their segment
    // rolls, which a segment of 2023 records does at the next write.
    produce_range(east, "orders", 2, 0..1_000, "first", None).await;
    wait_for_count(west, "us-east.orders", 2, 1_000, Duration::from_secs(60)).await;

    admin(east).create_partitions("orders", 4).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let t = admin(west).topics(Some("us-east.orders")).await.unwrap();
        if t[0].partitions == 4 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the remote topic still has {} partitions",
            t[0].partitions
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    produce_range(east, "orders", 4, 0..2_000, "grown", None).await;
    assert_eq!(
        record_count(east, "orders", 4).await,
        3_000,
        "the source holds every record"
    );
    wait_for_count(west, "us-east.orders", 4, 3_000, Duration::from_secs(60)).await;
    flow.stop();
    flow.join().await.unwrap();
    let copies = read_all(west, "us-east.orders", 4, 3_000).await;
    let source = read_all(east, "orders", 4, 3_000).await;
    let (src, dst) = (by_partition(&source), by_partition(&copies));
    for p in 0..4 {
        let want: Vec<_> = src[&p].iter().map(|r| &r.value).collect();
        let got: Vec<_> = dst[&p].iter().map(|r| &r.value).collect();
        assert_eq!(got, want, "partition {p}");
    }
    assert_eq!(dst[&3].len(), 500, "the new partitions carry their records");
}

/// Apache Kafka only (the sandbox has no transactions): a transactional source with an aborted
/// transaction, tombstones and null keys on a compacted topic. Neither aborted nor control records
/// are copied; every committed record is, with its null key or null value; and translation is
/// exact across the gaps the markers and the aborted records leave in the source offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactions_tombstones_and_null_keys_replicate_exactly() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    if !kafka_enabled() {
        return;
    }
    let _heavy = heavy().await;
    let sb = Engine::Kafka.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    admin(east)
        .create_topics(&[
            TopicSpec::new("events", 1, 1),
            TopicSpec::new("ledger", 1, 1).config("cleanup.policy", "compact"),
        ])
        .await
        .unwrap();
    let ep = endpoint(east);
    tokio::task::spawn_blocking(move || {
        let mut cfg = ep.producer_config();
        cfg.set("transactional.id", "strait-test-tx");
        let p: ThreadedProducer<DefaultProducerContext> = cfg.create().unwrap();
        let t = Duration::from_secs(30);
        p.init_transactions(t).unwrap();
        for (batch, commit) in [("a", true), ("x", false), ("b", true)] {
            p.begin_transaction().unwrap();
            for i in 0..50 {
                let v = format!("{batch}{i}");
                p.send(BaseRecord::<str, str>::to("events").key("k").payload(&v))
                    .map_err(|(e, _)| e)
                    .unwrap();
            }
            p.flush(t).unwrap();
            if commit {
                p.commit_transaction(t).unwrap();
            } else {
                p.abort_transaction(t).unwrap();
            }
        }
        // Null keys, and a tombstone on the compacted topic.
        p.begin_transaction().unwrap();
        for i in 0..20 {
            let v = format!("n{i}");
            p.send(BaseRecord::<str, str>::to("events").payload(&v))
                .map_err(|(e, _)| e)
                .unwrap();
        }
        p.send(
            BaseRecord::<str, str>::to("ledger")
                .key("acct-1")
                .payload("100"),
        )
        .map_err(|(e, _)| e)
        .unwrap();
        p.send(BaseRecord::<str, str>::to("ledger").key("acct-1"))
            .map_err(|(e, _)| e)
            .unwrap();
        p.commit_transaction(t).unwrap();
        p.flush(t).unwrap();
    })
    .await
    .unwrap();

    let flow = replicate::start(
        flow_spec(east, west, &["events", "ledger"]),
        strait::stop::CancellationToken::new(),
    );
    wait_for_count(west, "us-east.ledger", 1, 2, Duration::from_secs(60)).await;
    // Committed records only: 50 + 50 + 20 (the source's offsets also hold 50 aborted records
    // and four markers).
    let copies = read_all(west, "us-east.events", 1, 120).await;
    let values: Vec<String> = copies
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    let want: Vec<String> = (0..50)
        .map(|i| format!("a{i}"))
        .chain((0..50).map(|i| format!("b{i}")))
        .chain((0..20).map(|i| format!("n{i}")))
        .collect();
    assert_eq!(values, want, "committed records, in order, nothing else");
    assert!(
        copies[100..].iter().all(|r| r.key.is_none()),
        "null keys stay null"
    );
    let ledger = read_all(west, "us-east.ledger", 1, 2).await;
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[1].key.as_deref(), Some(&b"acct-1"[..]));
    assert_eq!(ledger[1].value, None, "a tombstone stays a tombstone");

    // Exact translation across the gaps: where a group that stopped at each interesting source
    // position resumes on the target.
    let source = read_all(east, "events", 1, 120).await;
    let (_, end) = admin(east).watermarks("events", 0).await.unwrap();
    assert_eq!(
        end,
        120 + 50 + 4,
        "50 aborted records and four markers in the source"
    );
    let src_offset = |v: &str| {
        source
            .iter()
            .find(|r| r.value.as_deref() == Some(v.as_bytes()))
            .unwrap()
            .offset
    };
    // (source position a group committed, downstream offset it must resume at)
    let cases = [
        (src_offset("a49") + 1, 50), // the commit marker of the first transaction
        (src_offset("a49") + 2, 50), // inside the aborted transaction
        (src_offset("b0"), 50),      // after the abort marker
        (src_offset("b10"), 60),
        (src_offset("b49") + 1, 100), // the second commit marker
        (src_offset("n0"), 100),      // after the third commit marker
        (end, 120),                   // the end
    ];
    tokio::time::sleep(Duration::from_secs(3)).await; // index records flushed
    flow.stop();
    flow.join().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = mm2_config(
        &dir,
        &east.bootstrap_servers(),
        &west.bootstrap_servers(),
        "",
    );
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("topics = orders", "topics = events, ledger"),
    )
    .unwrap();
    for (i, (at, want)) in cases.iter().enumerate() {
        let group = format!("g{i}");
        commit_group(east, &group, &[("events", 0, *at)]).await;
        let mut cmd = strait();
        cmd.arg("translate").arg(&cfg).args([
            "--group", &group, "--source", "us-east", "--target", "us-west", "--json",
        ]);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let report: TranslateReport = typed(
            &format!(
                "translate --json (stderr: {})",
                String::from_utf8_lossy(&out.stderr)
            ),
            &text,
        );
        let p = &report.translation.partitions[0];
        // "exact-gap" (a marker or an aborted record: the next copy), "exact-end" (the end).
        assert!(p.method.starts_with("exact"), "{text}");
        assert_eq!(
            p.downstream_offset,
            Some(*want),
            "a group at source offset {at} resumes at {want} on the target: {text}"
        );
    }
}
