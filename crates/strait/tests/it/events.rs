//! Merged event streams kept by `strait run`: for an events rule, each region's
//! `order-events.merged` holds both regions' events in one order, equal to an oracle computed
//! here from what was written and the marks strait wrote, without repeated ids, through a cut
//! and heal and a `kill -9` and restart; neither the merged topics nor the marks are replicated.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

use crate::common::*;
use strait_sandbox::Cluster;

const TOPIC: &str = "order-events";
const MERGED: &str = "order-events.merged";
const MARKS: &str = "strait.marks";
const PARTITIONS: i32 = 2;
/// The region order of the file: west first, though `clusters` lists east first.
const ORDER: [&str; 2] = ["west", "east"];
const LATENESS: i64 = 2_000;

/// One event as its producer was told it landed.
#[derive(Clone, Debug)]
struct Written {
    region: &'static str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    id: String,
}

/// Events to write: (order number, event id, how far before now it is stamped, in ms).
type Plan = Vec<(usize, String, i64)>;

/// Write `plan` to `order-events` in `region`, order `order-N` in partition N % 2, each
/// awaited in turn, with its id in header `event-id`.
async fn write(c: &Cluster, region: &'static str, plan: &[(usize, String, i64)]) -> Vec<Written> {
    let producer = producer(c);
    let mut out = Vec::new();
    for (order, id, behind) in plan {
        let key = format!("order-{order}");
        let partition = (*order % PARTITIONS as usize) as i32;
        let timestamp = now_ms() - behind;
        let kind = if order.is_multiple_of(3) {
            "ORDER_CANCELLED"
        } else {
            "ORDER_SHIPPED"
        };
        let value = format!("{region}:{key}:{kind}");
        let rec = FutureRecord::<str, str>::to(TOPIC)
            .key(&key)
            .payload(&value)
            .partition(partition)
            .timestamp(timestamp)
            .headers(OwnedHeaders::new().insert(Header {
                key: "event-id",
                value: Some(id.as_str()),
            }));
        let delivered = producer
            .send(rec, Duration::from_secs(30))
            .await
            .unwrap_or_else(|(e, _)| panic!("{region}: write {id}: {e}"));
        out.push(Written {
            region,
            partition,
            offset: delivered.offset,
            timestamp,
            id: id.clone(),
        });
    }
    out
}

/// `n` new events of `region` named `<prefix><i>`, some stamped late within the lateness
/// (out of order), a few far beyond it (raised to their partition's floor).
fn fresh(prefix: &str, n: usize, first_order: usize) -> Plan {
    (0..n)
        .map(|i| {
            let behind = match i % 6 {
                1 => 1_500,
                3 => 700,
                5 if i % 12 == 5 => 30_000,
                _ => 0,
            };
            (first_order + i, format!("{prefix}{i}"), behind)
        })
        .collect()
}

/// The marks of one region's cluster, per partition of `order-events`, in the topic's order:
/// (position, time).
async fn marks(c: &Cluster) -> BTreeMap<i32, Vec<(i64, i64)>> {
    let n = record_count(c, MARKS, 1).await;
    let mut out: BTreeMap<i32, Vec<(i64, i64)>> = BTreeMap::new();
    for r in read_all(c, MARKS, 1, n as usize).await {
        let v: serde_json::Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        if v["topic"] == TOPIC {
            out.entry(v["partition"].as_i64().unwrap() as i32)
                .or_default()
                .push((v["position"].as_i64().unwrap(), v["time"].as_i64().unwrap()));
        }
    }
    out
}

/// The floor at `position` given a partition's marks in order: a mark behind the last one kept
/// is ignored, floors only rise (`time - lateness`).
fn floor(marks: &[(i64, i64)], position: i64) -> Option<i64> {
    let mut kept: Vec<(i64, i64)> = Vec::new();
    for &(pos, time) in marks {
        let f = time - LATENESS;
        match kept.last_mut() {
            Some(last) if pos < last.0 => {}
            Some(last) if pos == last.0 => last.1 = last.1.max(f),
            Some(last) => {
                let f = f.max(last.1);
                kept.push((pos, f));
            }
            None => kept.push((pos, f)),
        }
    }
    kept.iter().rev().find(|(p, _)| *p <= position).map(|k| k.1)
}

/// One merged record: (region, partition, offset) of its event, and its timestamp.
type Place = (String, i32, i64);

/// Per region, per partition, the marks read back: (position, time).
type RegionMarks<'a> = BTreeMap<&'a str, BTreeMap<i32, Vec<(i64, i64)>>>;

/// For each partition, the events in the merged order: by effective time (the timestamp raised
/// to its partition's floor), then region order, then offset; the first event of each id only.
fn oracle(written: &[Written], marks: &RegionMarks<'_>) -> BTreeMap<i32, Vec<(Place, i64)>> {
    let rank = |r: &str| ORDER.iter().position(|o| *o == r).unwrap();
    let mut out: BTreeMap<i32, Vec<(Place, i64)>> = BTreeMap::new();
    for p in 0..PARTITIONS {
        let mut events: Vec<(i64, usize, i64, &Written)> = written
            .iter()
            .filter(|w| w.partition == p)
            .map(|w| {
                let f = marks[w.region]
                    .get(&p)
                    .and_then(|m| floor(m, w.offset))
                    .unwrap_or(i64::MIN);
                (w.timestamp.max(f), rank(w.region), w.offset, w)
            })
            .collect();
        events.sort_by_key(|(at, r, o, _)| (*at, *r, *o));
        let mut seen = BTreeSet::new();
        out.insert(
            p,
            events
                .into_iter()
                .filter(|(_, _, _, w)| seen.insert(w.id.clone()))
                .map(|(at, _, _, w)| ((w.region.to_string(), p, w.offset), at))
                .collect(),
        );
    }
    out
}

/// A region's merged topic, per partition in offset order: each record's event and timestamp;
/// `expected` records in all, or what came within the deadline.
async fn merged(c: &Cluster, expected: usize) -> BTreeMap<i32, Vec<(Place, i64)>> {
    let text = |b: Option<&[u8]>| String::from_utf8(b.unwrap().to_vec()).unwrap();
    let mut out: BTreeMap<i32, Vec<(Place, i64)>> = BTreeMap::new();
    for r in read_all(c, MERGED, PARTITIONS, expected).await {
        let place = (
            text(r.header("strait.origin")),
            text(r.header("strait.partition")).parse().unwrap(),
            text(r.header("strait.offset")).parse().unwrap(),
        );
        assert_eq!(
            place.1,
            r.partition,
            "{}: partition p merges partition p",
            c.name()
        );
        out.entry(r.partition)
            .or_default()
            .push((place, r.timestamp.unwrap()));
    }
    out
}

/// How many records the merged topic has.
async fn merged_count(c: &Cluster) -> i64 {
    if !topic_names(c).await.contains(MERGED) {
        return 0;
    }
    record_count(c, MERGED, PARTITIONS).await
}

/// Wait until both merged topics hold `n` records.
async fn wait_for_merged(east: &Cluster, west: &Cluster, n: usize, within: Duration) {
    let t = Instant::now();
    loop {
        let (e, w) = tokio::join!(merged_count(east), merged_count(west));
        if e >= n as i64 && w >= n as i64 {
            return;
        }
        assert!(
            t.elapsed() < within,
            "merged streams hold {e} (east) and {w} (west) of {n} events after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

on_both_engines! {
async fn merged_streams_are_one_order_in_both_regions_across_a_cut_and_a_kill(engine) {
    let started = Instant::now();
    let sb = engine.start(&["east", "west"]).await;
    let (east, west) = (sb.cluster("east").unwrap(), sb.cluster("west").unwrap());
    create_topic(east, TOPIC, PARTITIONS).await;
    create_topic(west, TOPIC, PARTITIONS).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mm2.properties");
    std::fs::write(
        &cfg,
        two_regions_config(east, west, 10000, &format!(
            "strait.conflicts.rules = log\n\
             strait.conflicts.regions = west, east\n\
             strait.conflicts.log.topics = {TOPIC}\n\
             strait.conflicts.log.strategy = events\n\
             strait.conflicts.log.event.id.header = event-id\n\
             strait.conflicts.log.lateness.ms = {LATENESS}\n"
        )),
    )
    .unwrap();

    let log = dir.path().join("first.log");
    let mut first = spawn_run_logged(&cfg, &log);
    let _shown = ShowOnPanic(log);

    // Both regions write, some ids twice: west repeats five of east's (a retry that went to
    // the other region), east repeats two of its own.
    let mut written = write(east, "east", &fresh("E", 24, 0)).await;
    written.extend(write(west, "west", &fresh("W", 24, 100)).await);
    let repeats: Plan = (0..5).map(|i| (i * 4, format!("E{}", i * 4), 0)).collect();
    written.extend(write(west, "west", &repeats).await);
    written.extend(write(east, "east", &[(1, "E1".to_string(), 0), (3, "E3".to_string(), 0)]).await);
    let ids = |w: &[Written]| w.iter().map(|w| w.id.clone()).collect::<BTreeSet<_>>().len();
    wait_for_merged(east, west, ids(&written), Duration::from_secs(45)).await;
    eprintln!("first round merged at {:?}", started.elapsed());

    // A cut: east is unreachable, west goes on writing. Nothing west wrote since can be
    // placed: east may have written earlier events meanwhile.
    east.cut();
    let cut_at = now_ms();
    written.extend(write(west, "west", &fresh("CW", 8, 200)).await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = merged(west, merged_count(west).await as usize).await;
    let late: Vec<_> = during.values().flatten().filter(|(_, at)| *at >= cut_at).collect();
    assert!(late.is_empty(), "released during the cut: {late:?}");
    east.heal();

    // A crash while both write, and more written while strait is down.
    written.extend(write(east, "east", &fresh("KE", 8, 300)).await);
    signal(&first, "-KILL");
    first.wait().unwrap();
    written.extend(write(west, "west", &fresh("KW", 8, 400)).await);
    // Repeats of ids merged before the crash: only the ids read back from the merged stream
    // tell them apart.
    written.extend(write(east, "east", &[(2, "W2".to_string(), 0), (6, "E6".to_string(), 0)]).await);
    // Tansu gives no partitions to a member that joins while the killed one is still listed
    // (see run_cli.rs): wait out its session there. Apache Kafka rebalances when it expires.
    if engine == Engine::Tansu {
        tokio::time::sleep(Duration::from_secs(12)).await;
    }
    let log = dir.path().join("second.log");
    let mut second = spawn_run_logged(&cfg, &log);
    let _shown2 = ShowOnPanic(log);
    written.extend(write(east, "east", &fresh("AE", 6, 500)).await);
    written.extend(write(west, "west", &fresh("AW", 6, 600)).await);
    let n = ids(&written);
    wait_for_merged(east, west, n, Duration::from_secs(60)).await;

    // Both regions hold the oracle's order, nothing twice, nothing missing.
    let marks = BTreeMap::from([("east", marks(east).await), ("west", marks(west).await)]);
    let expected = oracle(&written, &marks);
    assert_eq!(expected.values().map(Vec::len).sum::<usize>(), n);
    let raised = expected
        .values()
        .flatten()
        .filter(|((r, p, o), at)| {
            written
                .iter()
                .any(|w| w.region == r && w.partition == *p && w.offset == *o && w.timestamp < *at)
        })
        .count();
    assert!(raised > 0, "some events were stamped beyond the lateness and raised");
    let (e, w) = tokio::join!(merged(east, n), merged(west, n));
    for (name, got) in [("east", &e), ("west", &w)] {
        for p in 0..PARTITIONS {
            let (got, want) = (&got[&p], &expected[&p]);
            if got != want {
                for (i, (g, x)) in got.iter().zip(want).enumerate() {
                    if g != x {
                        eprintln!("{name} partition {p}: first difference at {i}: got {g:?}, want {x:?}");
                        break;
                    }
                }
                panic!(
                    "{name}'s merged partition {p} ({} records) is not the oracle's ({} records)",
                    got.len(),
                    want.len()
                );
            }
        }
    }
    assert_eq!(e, w);

    // Neither the merged topics nor the marks are replicated.
    for (c, other) in [(east, "west"), (west, "east")] {
        let names = topic_names(c).await;
        assert!(names.contains(&format!("{other}.{TOPIC}")), "{}: {names:?}", c.name());
        for derived in [MERGED, MARKS] {
            assert!(
                !names.contains(&format!("{other}.{derived}")),
                "{}: {derived} was replicated: {names:?}",
                c.name()
            );
        }
    }
    signal(&second, "-TERM");
    assert!(second.wait().unwrap().success(), "SIGTERM: exit 0");
    eprintln!("done in {:?}", started.elapsed());
}
}
