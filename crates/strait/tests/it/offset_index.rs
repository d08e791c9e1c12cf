//! The offset index stays small (issue 15, item 5): a transactional source, whose commit markers
//! end a run after every transaction, is indexed in a bounded number of records and still
//! translated exactly; records whose copies the target deleted are pruned with tombstones, and
//! groups below what the target holds resume at its first record.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::checkpoints::translate_json;
use crate::common::*;
use rdkafka::{Offset, TopicPartitionList};
use strait::wire::IndexRecord;
use strait_sandbox::Cluster;

const INDEX: &str = "strait-offset-index.us-east.internal";
const REMOTE: &str = "us-east.orders";

/// Checkpoint rounds every second (they prune the index), topics every 2 s.
const EXTRA: &str = "refresh.topics.interval.seconds = 2\n\
                     refresh.groups.interval.seconds = 1\n\
                     emit.checkpoints.interval.seconds = 1\n";

/// The index topic as compaction will leave it: the latest record of each key, tombstoned keys
/// gone, decoded (every record must decode).
async fn live_index(west: &Cluster) -> BTreeMap<Vec<u8>, IndexRecord> {
    let n = record_count(west, INDEX, 1).await as usize;
    let mut live = BTreeMap::new();
    let mut records = read_all(west, INDEX, 1, n).await;
    records.sort_by_key(|r| r.offset);
    for r in records {
        let key = r.key.clone().expect("index records have keys");
        let value = r.value.clone().unwrap_or_default();
        let rec = IndexRecord::decode(&key, &value)
            .unwrap_or_else(|e| panic!("index record at offset {}: {e}", r.offset));
        if matches!(rec, IndexRecord::Deleted(_)) {
            live.remove(&key);
        } else {
            live.insert(key, rec);
        }
    }
    live
}

/// Live blocks of one partition of `orders`: (first downstream offset, one past the last).
fn blocks(live: &BTreeMap<Vec<u8>, IndexRecord>, partition: i32) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = live
        .values()
        .filter_map(|r| match r {
            IndexRecord::Block(b) if b.topic == "orders" && b.partition == partition => {
                let end = b.entries.iter().fold(b.downstream_start, |d, e| {
                    d + (e.down_gap + e.len) * e.repeat
                });
                Some((b.downstream_start, end))
            }
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out
}

fn floor(live: &BTreeMap<Vec<u8>, IndexRecord>, partition: i32) -> Option<i64> {
    live.values().find_map(|r| match r {
        IndexRecord::Floor(f) if f.topic == "orders" && f.partition == partition => {
            Some(f.downstream)
        }
        _ => None,
    })
}

async fn admin_watermarks(c: &Cluster, topic: &str, partition: i32) -> (i64, i64) {
    admin(c).watermarks(topic, partition).await.unwrap()
}

/// Wait until `check` holds for the live index, or panic with what it last saw.
async fn wait_for_index(
    west: &Cluster,
    within: Duration,
    what: &str,
    check: impl Fn(&BTreeMap<Vec<u8>, IndexRecord>) -> bool,
) -> BTreeMap<Vec<u8>, IndexRecord> {
    let deadline = Instant::now() + within;
    loop {
        let live = live_index(west).await;
        if check(&live) {
            return live;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {what} within {within:?}; index: {:?}",
            west.name(),
            live.values().collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Where a group at source offset `g` must resume, from the records actually on the target:
/// `copies` is (downstream offset, source offset) of every record the target holds.
fn expected(copies: &[(i64, i64)], g: i64) -> i64 {
    let mut latest: BTreeMap<i64, i64> = BTreeMap::new();
    for &(d, s) in copies {
        let e = latest.entry(s).or_insert(d);
        *e = (*e).max(d);
    }
    let end = copies.iter().map(|c| c.0 + 1).max().unwrap_or(0);
    latest.range(g..).map(|(_, &d)| d).min().unwrap_or(end)
}

/// Every committed record of `topic`-`partition` on `c` from its log start to its end, as
/// (offset, value). The end is told by the reader's position, which passes commit markers.
async fn read_partition(c: &Cluster, topic: &str, partition: i32) -> Vec<(i64, Vec<u8>)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let ep = endpoint(c);
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ep.consumer_config("index-test-reader").create().unwrap();
        let (_, end) = consumer
            .fetch_watermarks(&topic, partition, Duration::from_secs(10))
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, partition, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let at = |consumer: &BaseConsumer| {
            let Ok(pos) = consumer.position() else {
                return 0;
            };
            match pos.find_partition(&topic, partition).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => 0,
            }
        };
        while at(&consumer) < end {
            assert!(
                Instant::now() < deadline,
                "{topic}-{partition}: read to {} of {end}",
                at(&consumer)
            );
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                out.push((m.offset(), m.payload().unwrap_or_default().to_vec()));
            }
        }
        out
    })
    .await
    .unwrap()
}

/// (downstream offset, source offset) of every record of `REMOTE`-`partition` on the target,
/// matched by value with the source's records (values are unique).
async fn copies_of(east: &Cluster, west: &Cluster, partition: i32) -> Vec<(i64, i64)> {
    let at_source: BTreeMap<Vec<u8>, i64> = read_partition(east, "orders", partition)
        .await
        .into_iter()
        .map(|(o, v)| (v, o))
        .collect();
    read_partition(west, REMOTE, partition)
        .await
        .into_iter()
        .map(|(d, v)| (d, at_source[&v]))
        .collect()
}

on_both_engines! {
/// Each `strait run` session starts a block of its own; once the target has deleted the first
/// sessions' copies, the checkpoint job writes a floor and deletes their blocks, and a group
/// positioned in them resumes at the first record the target still holds.
async fn index_records_below_the_target_log_start_are_pruned(engine) {
    let r = Regions::start_on(engine, EXTRA).await;
    let (east, west) = (r.east(), r.west());
    let mut copied = 0;
    let mut ends = Vec::new();
    for session in 0..3 {
        produce_range(east, "orders", 3, copied..copied + 300, &format!("s{session}"), None).await;
        copied += 300;
        let mut strait = spawn_run(&r.config);
        wait_for_count(west, REMOTE, 3, copied as i64, Duration::from_secs(60)).await;
        // Every session's block is in the index before the next session starts.
        wait_for_index(west, Duration::from_secs(30), "a block per session", |live| {
            (0..3).all(|p| blocks(live, p).len() > session)
        })
        .await;
        ends.push(admin_watermarks(west, REMOTE, 0).await.1);
        if session < 2 {
            // A clean stop: the group is left at once, so the next session starts copying
            // without waiting out the session timeout.
            signal_and_wait(&mut strait, "-TERM", Duration::from_secs(30)).await;
        } else {
            let before = blocks(&live_index(west).await, 0);
            assert!(before.len() >= 3, "a block per session: {before:?}");
            // The target deletes the first two sessions' copies of partition 0. Apache Kafka
            // only: the sandbox's storage has neither DeleteRecords (Tansu's dynostore answers
            // it with `todo!()`) nor retention, so its log start never moves and nothing is
            // pruned there.
            let cut = if engine == Engine::Kafka { ends[1] } else { 0 };
            if engine == Engine::Kafka {
                delete_records(west, REMOTE, 0, cut).await;
                let live = wait_for_index(west, Duration::from_secs(30), "pruned", |live| {
                    floor(live, 0) == Some(cut)
                        && blocks(live, 0).iter().all(|&(_, end)| end > cut)
                })
                .await;
                let after = blocks(&live, 0);
                assert!(after.len() < before.len(), "{before:?} -> {after:?}");
                assert_eq!(
                    after.last().map(|b| b.0),
                    before.last().map(|b| b.0),
                    "the newest block stays"
                );
            }
            // Nothing else is pruned: checkpoint rounds ran meanwhile.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let live = live_index(west).await;
            for p in (if engine == Engine::Kafka { 1 } else { 0 })..3 {
                assert!(blocks(&live, p).len() >= 3, "partition {p}");
                assert_eq!(floor(&live, p), None);
            }

            // A group at the very beginning resumes at the first record still on the target;
            // one in the last session's records resumes exactly.
            let copies = copies_of(east, west, 0).await;
            let source_end = admin_watermarks(east, "orders", 0).await.1;
            for (i, g) in [0, source_end - 20, source_end].into_iter().enumerate() {
                let group = format!("pruned-{i}");
                commit_group(east, &group, &[("orders", 0, g)]).await;
                let t = translate_json(&r.config, &group, &[]).await;
                let p = t
                    .translation
                    .partitions
                    .iter()
                    .find(|p| p.partition == 0)
                    .unwrap();
                let want = expected(&copies, g).max(cut);
                assert!(p.method.starts_with("exact"), "{p:?}");
                assert_eq!(p.downstream_offset, Some(want), "group at {g}: {p:?}");
            }
            drop(strait);
        }
    }
}
}

/// Apache Kafka only: the sandbox has no transactions (its brokers do not offer EndTxn, so
/// librdkafka's commit_transaction fails with "EndTxnRequest (KIP-98) not supported by
/// broker"). Forty transactional producers write 6,000 single-record transactions into one
/// partition at once, while strait replicates it: the source then holds a commit marker after
/// every record, interleaved, so about every other record starts a run. The index holds about
/// one record per 256 runs (before blocks: one per run); translation of groups at records and at
/// markers is exact against the records on the target; and once the target deletes the first
/// half, the index drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transactional_source_keeps_the_index_small_and_exact() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    if !kafka_enabled() {
        return;
    }
    // Each commit takes ~110 ms on the test bed's brokers whatever the load, so the
    // transactions are spread over many producers to keep the test near a minute.
    const PRODUCERS: usize = 40;
    const EACH: usize = 150;
    let _heavy = heavy().await;
    let r = Regions::start_on(Engine::Kafka, EXTRA).await;
    let (east, west) = (r.east(), r.west());
    let strait = spawn_run(&r.config);
    let started = Instant::now();
    let writers: Vec<_> = (0..PRODUCERS)
        .map(|w| {
            let ep = endpoint(east);
            tokio::task::spawn_blocking(move || {
                let mut cfg = ep.producer_config();
                cfg.set("transactional.id", format!("index-test-{w}"));
                cfg.set("linger.ms", "0");
                let p: BaseProducer = cfg.create().unwrap();
                let t = Duration::from_secs(30);
                p.init_transactions(t).unwrap();
                for i in 0..EACH {
                    p.begin_transaction().unwrap();
                    let v = format!("w{w}-{i}");
                    p.send(
                        BaseRecord::<str, str>::to("orders")
                            .partition(0)
                            .payload(&v),
                    )
                    .map_err(|(e, _)| e)
                    .unwrap();
                    p.commit_transaction(t).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let total = (PRODUCERS * EACH) as i64;
    eprintln!("{total} transactions written in {:?}", started.elapsed());
    wait_for_count(west, REMOTE, 3, total, Duration::from_secs(120)).await;

    // How many runs the source's layout makes: records whose offset does not follow the last.
    let offsets: Vec<i64> = read_partition(east, "orders", 0)
        .await
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    assert_eq!(offsets.len() as i64, total);
    let runs = 1 + offsets.windows(2).filter(|w| w[1] != w[0] + 1).count();
    assert!(
        runs as i64 > total / 5,
        "{runs} runs: the markers interleave with the records"
    );
    let live = wait_for_index(
        west,
        Duration::from_secs(30),
        "every copy indexed",
        |live| blocks(live, 0).last().is_some_and(|&(_, end)| end >= total),
    )
    .await;
    let keys = blocks(&live, 0).len();
    eprintln!("{runs} runs in {keys} index records");
    assert!(
        keys * 100 <= runs,
        "{keys} index records for {runs} runs: one per run, or nearly"
    );

    // Groups at records and at commit markers, spread over the partition.
    let copies = copies_of(east, west, 0).await;
    let at = |f: f64| offsets[(f * (total - 1) as f64) as usize];
    let mut positions: Vec<i64> = [0.0, 0.3, 0.9]
        .iter()
        .flat_map(|&f| [at(f), at(f) + 1])
        .collect();
    positions.push(offsets[offsets.len() - 1] + 2);
    let check = |positions: Vec<i64>, tag: &'static str, floor: i64| {
        let (copies, cfg) = (copies.clone(), r.config.clone());
        async move {
            for (i, g) in positions.into_iter().enumerate() {
                let group = format!("{tag}-{i}");
                commit_group(east, &group, &[("orders", 0, g)]).await;
                let t = translate_json(&cfg, &group, &[]).await;
                let p = t
                    .translation
                    .partitions
                    .iter()
                    .find(|p| p.partition == 0)
                    .unwrap();
                assert!(p.method.starts_with("exact"), "{p:?}");
                assert_eq!(
                    p.downstream_offset,
                    Some(expected(&copies, g).max(floor)),
                    "a group at source offset {g}: {p:?}"
                );
            }
        }
    };
    check(positions.clone(), "tx", 0).await;

    // The target deletes the first half: the blocks wholly below it go, a floor stays.
    let cut = total / 2;
    delete_records(west, REMOTE, 0, cut).await;
    let live = wait_for_index(west, Duration::from_secs(30), "pruned", |live| {
        floor(live, 0) == Some(cut) && blocks(live, 0).iter().all(|&(_, end)| end > cut)
    })
    .await;
    let left = blocks(&live, 0).len();
    assert!(left < keys, "{keys} -> {left} records");
    check(vec![at(0.1), at(0.3) + 1, at(0.9)], "after", cut).await;
    drop(strait);
}
