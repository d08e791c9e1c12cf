//! Active-active conflicts settled by `strait run`: a last-writer-wins rule keeps
//! `<topic>.resolved` in every region, equal to an oracle computed here from what was written,
//! the same in both regions, after a `kill -9` and restart too, and never replicated.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

use crate::common::*;
use strait_sandbox::Cluster;

const PARTITIONS: i32 = 3;
/// The tie-break order of the file: west wins equal timestamps, though `clusters` lists east
/// first.
const ORDER: [&str; 2] = ["west", "east"];

/// One record written to `orders` in a region, as its producer was told it landed.
#[derive(Clone, Debug)]
struct Written {
    region: &'static str,
    key: String,
    timestamp: i64,
    value: Option<String>,
    partition: i32,
    offset: i64,
}

/// What a view should hold for a key: value (None: a tombstone), timestamp, region.
type Expected = BTreeMap<String, (Option<String>, i64, String)>;

/// For each key, the greatest version: later timestamp, then the region first in [`ORDER`],
/// then partition and offset (as written in its region; remote copies keep their order).
fn oracle(written: &[Written]) -> Expected {
    let rank = |r: &str| ORDER.iter().position(|o| *o == r).unwrap();
    let mut best: BTreeMap<&str, &Written> = BTreeMap::new();
    for w in written {
        let precedence =
            |w: &Written| (w.timestamp, Reverse(rank(w.region)), w.partition, w.offset);
        match best.get(w.key.as_str()) {
            Some(b) if precedence(b) >= precedence(w) => {}
            _ => {
                best.insert(&w.key, w);
            }
        }
    }
    best.into_iter()
        .map(|(k, w)| {
            (
                k.to_string(),
                (w.value.clone(), w.timestamp, w.region.to_string()),
            )
        })
        .collect()
}

/// Versions to write in one region: key index, timestamp, whether it is a tombstone.
type Versions = Vec<(usize, i64, bool)>;

/// Write `versions` (key index, timestamp, tombstone?) to `orders` in `region`, key `order-NN`
/// in partition NN % 3 in both regions, each awaited in turn (their order is their offsets').
async fn write(c: &Cluster, region: &'static str, versions: &[(usize, i64, bool)]) -> Vec<Written> {
    let producer = producer(c);
    let mut out = Vec::new();
    for &(i, timestamp, tombstone) in versions {
        let key = format!("order-{i:02}");
        let value = (!tombstone).then(|| format!("{region}:{key}:{timestamp}"));
        let partition = (i % PARTITIONS as usize) as i32;
        let mut rec = FutureRecord::<str, str>::to("orders")
            .key(&key)
            .partition(partition)
            .timestamp(timestamp);
        if let Some(v) = &value {
            rec = rec.payload(v);
        }
        let delivered = producer
            .send(rec, Duration::from_secs(30))
            .await
            .unwrap_or_else(|(e, _)| panic!("{region}: write {key}: {e}"));
        assert_eq!(delivered.partition, partition);
        out.push(Written {
            region,
            key,
            timestamp,
            value,
            partition,
            offset: delivered.offset,
        });
    }
    out
}

/// The first round: 40 keys in five kinds, several versions per key and region.
fn first_round(t0: i64) -> (Versions, Versions) {
    let (mut east, mut west) = (Vec::new(), Vec::new());
    for i in 0..40 {
        let b = t0 + i as i64 * 1_000;
        match i % 5 {
            // Only east writes; its last write is not its latest version.
            0 => east.extend([(i, b + 1, false), (i, b + 3, false), (i, b + 2, false)]),
            // Only west writes.
            1 => west.extend([(i, b + 1, false), (i, b + 2, false)]),
            // Both, different timestamps: east wins on even keys, west on odd ones.
            2 => {
                east.extend([(i, b + 1, false), (i, b + 4, false)]);
                west.extend([
                    (i, b + 2, false),
                    (i, b + if i % 2 == 0 { 3 } else { 5 }, false),
                ]);
            }
            // Both, equal latest timestamps: the region order decides (west).
            3 => {
                east.extend([(i, b + 1, false), (i, b + 6, false)]);
                west.extend([(i, b + 2, false), (i, b + 6, false)]);
            }
            // Tombstones: east's later delete wins over west's earlier delete and update.
            _ => {
                east.extend([(i, b + 1, false), (i, b + 5, true)]);
                west.extend([(i, b + 2, true), (i, b + 3, false)]);
            }
        }
    }
    (east, west)
}

/// The second round, written while strait is down: versions that must lose to winners taken
/// in before the restart (only a view read back remembers those), new winners, a deleted key
/// written again, equal timestamps again, and new keys.
fn second_round(t0: i64) -> (Versions, Versions) {
    let (mut east, mut west) = (Vec::new(), Vec::new());
    for i in 0..40 {
        let b = t0 + i as i64 * 1_000;
        match i % 5 {
            // Older than east's winner (b + 3): loses.
            0 => west.push((i, b + 2, false)),
            // Newer than west's: east wins now.
            1 => east.push((i, b + 9, false)),
            // Older on both sides: nothing changes.
            2 => {
                east.push((i, b, false));
                west.push((i, b, false));
            }
            // East writes at the winner's timestamp again: west still wins the tie.
            3 => east.push((i, b + 6, false)),
            // West writes the deleted key again, later: it is back.
            _ => west.push((i, b + 10, false)),
        }
    }
    east.extend((40..46).map(|i| (i, t0 + i as i64 * 1_000, false)));
    west.extend((43..50).map(|i| (i, t0 + i as i64 * 1_000 + 1, i % 7 == 0)));
    (east, west)
}

/// One record of a view, as read back.
#[derive(Debug)]
struct ViewRecord {
    partition: i32,
    key: String,
    value: Option<String>,
    timestamp: i64,
    origin: Option<String>,
}

/// Every record of `topic` on `c` up to its end as of now (empty when it does not exist); an
/// error when it cannot be read now (a topic just created, whose leader is not known yet).
async fn read_to_end(c: &Cluster, topic: &str) -> Result<Vec<ViewRecord>, String> {
    let ep = endpoint(c);
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ep.consumer_config("strait-test-reader").create().unwrap();
        let md = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let Some(t) = md
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
        else {
            return Ok(Vec::new());
        };
        let mut ends = BTreeMap::new();
        let mut tpl = TopicPartitionList::new();
        for p in t.partitions() {
            let (lo, hi) = consumer
                .fetch_watermarks(&topic, p.id(), Duration::from_secs(10))
                .map_err(|e| e.to_string())?;
            if hi > lo {
                ends.insert(p.id(), hi);
                tpl.add_partition_offset(&topic, p.id(), Offset::Beginning)
                    .unwrap();
            }
        }
        let mut out = Vec::new();
        if ends.is_empty() {
            return Ok(out);
        }
        consumer.assign(&tpl).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ends.is_empty() {
            if Instant::now() > deadline {
                return Err(format!("{topic} not read to its end in 30 s"));
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    if ends
                        .get(&m.partition())
                        .is_some_and(|e| m.offset() + 1 >= *e)
                    {
                        ends.remove(&m.partition());
                    }
                    let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
                    out.push(ViewRecord {
                        partition: m.partition(),
                        key: text(m.key()).expect("view records have keys"),
                        value: text(m.payload()),
                        timestamp: m.timestamp().to_millis().unwrap(),
                        origin: m.headers().and_then(|hs| {
                            hs.iter()
                                .find(|h| h.key == "strait.origin")
                                .and_then(|h| text(h.value))
                        }),
                    });
                }
                Some(Err(e)) => return Err(format!("read {topic}: {e}")),
                None => {
                    for e in consumer.position().unwrap().elements() {
                        if let Offset::Offset(o) = e.offset() {
                            if ends.get(&e.partition()).is_some_and(|end| o >= *end) {
                                ends.remove(&e.partition());
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    })
    .await
    .unwrap()
}

/// A view folded by key: its last record for each (a key is in one partition).
async fn folded_view(c: &Cluster) -> Result<Expected, String> {
    let mut records = read_to_end(c, "orders.resolved").await?;
    for r in &records {
        assert_eq!(
            r.partition,
            r.key[6..].parse::<i32>().unwrap() % PARTITIONS,
            "{}: {} in the partition it was written to",
            c.name(),
            r.key
        );
    }
    records.sort_by_key(|r| r.partition); // stable: offsets in order within a partition
    Ok(records
        .into_iter()
        .map(|r| {
            let origin = r
                .origin
                .unwrap_or_else(|| panic!("{}: no strait.origin", r.key));
            (r.key, (r.value, r.timestamp, origin))
        })
        .collect())
}

/// Wait until both regions' views equal `expected`, or fail showing the differences.
async fn wait_for_views(east: &Cluster, west: &Cluster, expected: &Expected, within: Duration) {
    let t = Instant::now();
    loop {
        let (e, w) = tokio::join!(folded_view(east), folded_view(west));
        if e.as_ref() == Ok(expected) && w.as_ref() == Ok(expected) {
            return;
        }
        if t.elapsed() > within {
            for (name, got) in [("east", e), ("west", w)] {
                let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
                for (k, want) in expected {
                    if got.get(k) != Some(want) {
                        eprintln!("{name}: {k}: got {:?}, want {want:?}", got.get(k));
                    }
                }
                for k in got.keys().filter(|k| !expected.contains_key(*k)) {
                    eprintln!("{name}: {k}: not written, yet in the view");
                }
            }
            panic!("the views did not converge to the oracle within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// No view was replicated: `<other>.orders.resolved` exists in neither region.
async fn assert_views_not_replicated(east: &Cluster, west: &Cluster) {
    for (c, other) in [(east, "west"), (west, "east")] {
        let names = topic_names(c).await;
        assert!(
            names.iter().any(|n| n == "orders.resolved"),
            "{}: {names:?}",
            c.name()
        );
        assert!(
            names.iter().any(|n| *n == format!("{other}.orders")),
            "{}: {names:?}",
            c.name()
        );
        assert!(
            !names.iter().any(|n| n.ends_with(".orders.resolved")),
            "{}: a view was replicated: {names:?}",
            c.name()
        );
    }
}

/// The clock skew `strait status` reads from `strait.clock` once heartbeats have crossed both
/// ways. One process runs both directions here, so both regions' heartbeats carry its clock: the
/// truth is 0, and it must be within the measured bound, a small one.
async fn wait_for_skew(cfg: &std::path::Path, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let out = strait()
            .arg("status")
            .arg(cfg)
            .args(["--json", "--no-groups"])
            .output()
            .unwrap();
        let status: strait::monitor::Status =
            typed("status --json", &String::from_utf8_lossy(&out.stdout));
        if let [k] = status.clock_skews.as_slice() {
            assert_eq!((k.a.as_str(), k.b.as_str()), ("east", "west"), "{k:?}");
            assert!(
                k.offset_ms.abs() <= k.bound_ms,
                "one clock, 0 within the bound: {k:?}"
            );
            assert!(
                k.bound_ms < 2_000,
                "heartbeats are read within a second: {k:?}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no clock skew in `strait status` after {within:?}: {:?}",
            status.clock_skews
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

on_both_engines! {
async fn last_writer_wins_views_converge_in_both_regions_across_a_kill(engine) {
    let sb = engine.start(&["east", "west"]).await;
    let (east, west) = (sb.cluster("east").unwrap(), sb.cluster("west").unwrap());
    create_topic(east, "orders", PARTITIONS).await;
    create_topic(west, "orders", PARTITIONS).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mm2.properties");
    std::fs::write(
        &cfg,
        two_regions_config(east, west, 10000, "strait.conflicts.rules = orders\n\
             strait.conflicts.regions = west, east\n\
             strait.conflicts.orders.topics = orders\n\
             strait.conflicts.orders.strategy = last-writer-wins\n"),
    )
    .unwrap();

    // An hour ago, so that retention keeps everything and nothing is "now".
    let t0 = now_ms() - 3_600_000;
    let (e1, w1) = first_round(t0);
    let mut written = write(east, "east", &e1).await;
    written.extend(write(west, "west", &w1).await);
    let expected = oracle(&written);
    // Every kind of key is there: one region only, both, ties, deletes.
    assert_eq!(expected.len(), 40);
    assert_eq!(expected["order-03"].2, "west", "a tie goes to the region first in the order");
    assert_eq!(expected["order-04"].0, None, "a delete wins");
    assert_eq!(expected["order-02"].2, "east");
    assert_eq!(expected["order-07"].2, "west");

    let log = dir.path().join("first.log");
    let mut first = spawn_run_logged(&cfg, &log);
    let _shown = ShowOnPanic(log);
    wait_for_views(east, west, &expected, Duration::from_secs(60)).await;
    assert_views_not_replicated(east, west).await;
    wait_for_skew(&cfg, Duration::from_secs(30)).await;

    // A crash, while both regions keep writing.
    signal(&first, "-KILL");
    first.wait().unwrap();
    let (e2, w2) = second_round(t0);
    written.extend(write(east, "east", &e2).await);
    written.extend(write(west, "west", &w2).await);
    let expected2 = oracle(&written);
    assert_eq!(expected2.len(), 50);
    assert_eq!(expected2["order-00"], expected["order-00"], "an older version loses");
    assert_eq!(expected2["order-01"].2, "east");
    assert_eq!(expected2["order-03"], expected["order-03"], "west keeps the tie");
    assert!(expected2["order-04"].0.is_some(), "written again after the delete");
    // Tansu gives no partitions to a member that joins while the killed one is still listed
    // (see run_cli.rs): wait out its session there. Apache Kafka rebalances when it expires.
    if engine == Engine::Tansu {
        tokio::time::sleep(Duration::from_secs(12)).await;
    }

    let log = dir.path().join("second.log");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut second = spawn_run_http(&cfg, &addr, &log);
    let _shown2 = ShowOnPanic(log);
    wait_for_views(east, west, &expected2, Duration::from_secs(60)).await;
    assert_views_not_replicated(east, west).await;

    // The dashboard's source shows both regions' views, their newest winners the oracle's.
    let (code, body) = http_get(&addr, "/api/views").await.unwrap();
    assert_eq!(code, 200, "{body}");
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(api["error"].is_null(), "{api}");
    let topics = api["topics"].as_array().unwrap();
    let mut regions: Vec<&str> = topics.iter().map(|t| t["region"].as_str().unwrap()).collect();
    regions.sort();
    assert_eq!(regions, ["east", "west"], "{api}");
    for t in topics {
        assert_eq!(t["topic"], "orders.resolved", "{t}");
        assert_eq!(t["kind"], "resolved-view", "{t}");
        assert!(t["written"].as_i64().unwrap() >= expected2.len() as i64, "{t}");
        let latest = t["latest"].as_array().unwrap();
        assert!(!latest.is_empty() && latest.len() <= 8, "{t}");
        for r in latest {
            let (value, ts, region) = &expected2[r["key"].as_str().unwrap()];
            assert_eq!(r["value"].as_str(), value.as_deref(), "{r}");
            assert_eq!(r["timestamp_ms"].as_i64(), Some(*ts), "{r}");
            assert_eq!(r["origin"].as_str(), Some(region.as_str()), "{r}");
        }
    }
    let (_, page) = http_get(&addr, "/").await.unwrap();
    assert!(page.contains("id=\"sec-views\"") && page.contains("api/views"));
    signal(&second, "-TERM");
    assert!(second.wait().unwrap().success(), "SIGTERM: exit 0");
}
}

// ---- concurrent writes, found from the receipts of each copy ----

/// West's writers' clocks run this far ahead of east's and of strait's (an injected skew: their
/// timestamps are shifted), within the file's `strait.conflicts.clock.tolerance.ms`.
const WEST_AHEAD_MS: i64 = 150;

/// Now, on `region`'s writers' clock.
fn stamp_now(region: &str) -> i64 {
    now_ms() + if region == "west" { WEST_AHEAD_MS } else { 0 }
}

/// Write one version of each key of `keys` to `orders` in `region`, stamped now by its writers'
/// clock, each awaited in turn.
async fn write_now(c: &Cluster, region: &'static str, keys: &[usize]) -> Vec<Written> {
    let mut out = Vec::new();
    for &i in keys {
        out.extend(write(c, region, &[(i, stamp_now(region), false)]).await);
    }
    out
}

/// Hand `key` for `topic` in `region` to `p` (partition: its number, as `write` places keys),
/// stamped now by its writers' clock, without waiting: the task gives where it landed.
fn write_later(
    p: &rdkafka::producer::FutureProducer,
    region: &'static str,
    topic: &'static str,
    key: String,
    partition: i32,
) -> tokio::task::JoinHandle<Written> {
    let p = p.clone();
    let ts = stamp_now(region);
    let value = format!("{region}:{key}:{ts}");
    tokio::spawn(async move {
        let d = p
            .send(
                FutureRecord::<str, str>::to(topic)
                    .key(&key)
                    .payload(&value)
                    .partition(partition)
                    .timestamp(ts),
                Duration::from_secs(120),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("{region}: write {topic} {key}: {e}"));
        Written {
            region,
            key,
            timestamp: ts,
            value: Some(value),
            partition,
            offset: d.offset,
        }
    })
}

/// A producer that reconnects soon after a heal, as strait's clients are told to.
fn quick_producer(c: &Cluster) -> rdkafka::producer::FutureProducer {
    endpoint(c)
        .producer_config()
        .set("reconnect.backoff.max.ms", "500")
        .create()
        .unwrap()
}

/// Wait until the copy of each of `written` is readable in `c` (in `<region>.orders`).
async fn wait_for_copies(c: &Cluster, written: &[Written], within: Duration) {
    let t = Instant::now();
    loop {
        let mut missing = Vec::new();
        for (topic, ws) in [("east.orders", "east"), ("west.orders", "west")] {
            let wanted: Vec<&Written> = written.iter().filter(|w| w.region == ws).collect();
            if wanted.is_empty() {
                continue;
            }
            let copies = read_to_end(c, topic).await.unwrap_or_default();
            for w in wanted {
                if !copies.iter().any(|r| r.key == w.key && r.value == w.value) {
                    missing.push(w.key.clone());
                }
            }
        }
        if missing.is_empty() {
            return;
        }
        assert!(
            t.elapsed() < within,
            "{}: copies of {missing:?} not readable within {within:?}",
            c.name()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until the flow from each write's region has committed past it: its receipt (and so the
/// instant its copy was acknowledged) is written, since commits wait for receipts.
async fn wait_for_receipts(source: &Cluster, target: &str, written: &[Written], within: Duration) {
    let t = Instant::now();
    let group = format!("strait.{}->{target}", source.name());
    loop {
        let at = committed(source, &group, "orders", PARTITIONS).await;
        let behind: Vec<&str> = written
            .iter()
            .filter(|w| at.get(&w.partition).is_none_or(|o| *o <= w.offset))
            .map(|w| w.key.as_str())
            .collect();
        if behind.is_empty() {
            return;
        }
        assert!(
            t.elapsed() < within,
            "{group} did not commit past {behind:?} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The id a conflict between west's write `w` and east's write `e` is recorded under (west is
/// first in the region order).
fn pair_id(topic: &str, w: &Written, e: &Written) -> String {
    format!(
        "c/{topic}/west:{}:{}/east:{}:{}",
        w.partition, w.offset, e.partition, e.offset
    )
}

/// The concurrent writes recorded in `strait.conflicts` on `c`, by id (the last of each).
async fn recorded(c: &Cluster) -> Result<BTreeMap<String, serde_json::Value>, String> {
    let records = read_to_end(c, "strait.conflicts").await?;
    Ok(records
        .into_iter()
        .filter_map(|r| {
            Some((
                r.key,
                serde_json::from_str::<serde_json::Value>(&r.value?).unwrap(),
            ))
        })
        .filter(|(_, v)| v["kind"] == "concurrent-writes")
        .collect())
}

/// What a conflict must say: its outcome and winner.
type Settled = (&'static str, Option<&'static str>);

/// Wait until both regions hold exactly the conflicts of `expected` (id -> outcome, winner).
async fn wait_for_conflicts(
    east: &Cluster,
    west: &Cluster,
    expected: &BTreeMap<String, Settled>,
    within: Duration,
) -> BTreeMap<String, serde_json::Value> {
    let t = Instant::now();
    loop {
        let (e, w) = tokio::join!(recorded(east), recorded(west));
        let ids = |r: &Result<BTreeMap<String, serde_json::Value>, String>| {
            r.as_ref()
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let want: Vec<String> = expected.keys().cloned().collect();
        if ids(&e) == want && ids(&w) == want {
            return e.unwrap();
        }
        if t.elapsed() > within {
            panic!(
                "the conflicts recorded are not the oracle's within {within:?}:\n want {want:?}\n east {:?}\n west {:?}",
                ids(&e),
                ids(&w)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

on_both_engines! {
async fn concurrent_writes_are_recorded_exactly_across_a_cut_and_a_kill(engine) {
    let sb = engine.start(&["east", "west"]).await;
    let (east, west) = (sb.cluster("east").unwrap(), sb.cluster("west").unwrap());
    for c in [east, west] {
        create_topic(c, "orders", PARTITIONS).await;
        create_topic(c, "accounts", PARTITIONS).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mm2.properties");
    // `orders` under last-writer-wins, `accounts` under regional authority (east owns `E-*`).
    std::fs::write(
        &cfg,
        two_regions_config(east, west, 6000, "east.reconnect.backoff.max.ms = 500\n\
             west.reconnect.backoff.max.ms = 500\n\
             strait.conflicts.rules = orders, owned\n\
             strait.conflicts.regions = west, east\n\
             strait.conflicts.clock.tolerance.ms = 200\n\
             strait.conflicts.orders.topics = orders\n\
             strait.conflicts.orders.strategy = last-writer-wins\n\
             strait.conflicts.owned.topics = accounts\n\
             strait.conflicts.owned.strategy = authority\n\
             strait.conflicts.owned.authority.east = E-.*\n"),
    )
    .unwrap();
    let started = Instant::now();
    let log = dir.path().join("first.log");
    let mut first = spawn_run_logged(&cfg, &log);
    let _shown = ShowOnPanic(log);
    // Every concurrent pair written: id -> (outcome, winner).
    let mut pairs: BTreeMap<String, Settled> = BTreeMap::new();
    let mut written: Vec<Written> = Vec::new();

    // West's writers are WEST_AHEAD_MS ahead; the file's tolerance (200 ms) covers it, so every
    // margin below is over twice the tolerance plus the skew.
    //
    // Updates, not conflicts: a key written in one region, then in the other once the first
    // write's copy is readable there (plus more than the clocks' tolerance and an
    // acknowledgement's way back). And keys written in one region only.
    let e1 = write_now(east, "east", &[0, 1, 2, 6, 7]).await;
    let w1 = write_now(west, "west", &[3, 4, 5, 8, 9]).await;
    wait_for_copies(west, &e1, Duration::from_secs(60)).await;
    wait_for_copies(east, &w1, Duration::from_secs(60)).await;
    // Past the acknowledgement of each copy, however late the machine's load makes it, and
    // more than the clocks' tolerance twice over and the skew.
    wait_for_receipts(east, "west", &e1, Duration::from_secs(60)).await;
    wait_for_receipts(west, "east", &w1, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    written.extend(e1);
    written.extend(w1);
    written.extend(write_now(west, "west", &[0, 1, 2]).await);
    written.extend(write_now(east, "east", &[3, 4, 5]).await);

    // A WAN: 1 s each way to and from west, no cut. West writes, then east 800 ms later:
    // west's write reaches east two seconds later at the earliest, and east's copy leaves for
    // west only after east's write, 800 ms after west's (650 ms by their stamps). Concurrent.
    let pw = quick_producer(west);
    let warm = pw.clone();
    tokio::task::spawn_blocking(move || {
        use rdkafka::producer::Producer as _;
        warm.client()
            .fetch_metadata(Some("orders"), Duration::from_secs(10))
            .map(|_| ())
    })
    .await
    .unwrap()
    .expect("west's metadata");
    west.delay(Duration::from_millis(1_000));
    let wan_keys = [30, 31, 32];
    let w_wan: Vec<_> = wan_keys
        .iter()
        .map(|&i| write_later(&pw, "west", "orders", format!("order-{i:02}"), (i % PARTITIONS as usize) as i32))
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    // All stamped now, whatever each write then waits for.
    let pe = producer(east);
    let e_wan: Vec<_> = wan_keys
        .iter()
        .map(|&i| write_later(&pe, "east", "orders", format!("order-{i:02}"), (i % PARTITIONS as usize) as i32))
        .collect();
    for (h, e) in w_wan.into_iter().zip(e_wan) {
        let (w, e) = (h.await.unwrap(), e.await.unwrap());
        pairs.insert(pair_id("orders", &w, &e), ("overwritten", Some("east"))); // east later
        written.push(w);
        written.push(e);
    }
    west.heal();

    eprintln!("{:>5.1} s: updates written", started.elapsed().as_secs_f64());
    // A cut: west is away. West's writes wait in its producer (stamped now, readable after the
    // heal), then east writes the same keys: neither could have seen the other's.
    west.cut();
    let cut_keys = [10, 11, 12, 13, 14, 15];
    let mut pending = Vec::new();
    for &i in &cut_keys {
        let partition = (i % PARTITIONS as usize) as i32;
        pending.push(write_later(&pw, "west", "orders", format!("order-{i:02}"), partition));
    }
    // Accounts: E-1 is east's (west's write is also a violation), W-1 is nobody's.
    let acc: Vec<_> = ["E-1", "W-1"]
        .iter()
        .map(|k| write_later(&pw, "west", "accounts", k.to_string(), 1))
        .collect();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let e_cut = write_now(east, "east", &cut_keys).await;
    let mut e_acc = Vec::new();
    for k in ["E-1", "W-1"] {
        e_acc.push(write_later(&pe, "east", "accounts", k.to_string(), 1).await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    west.heal();
    let mut w_cut = Vec::new();
    for h in pending {
        w_cut.push(h.await.unwrap());
    }
    for (w, e) in w_cut.iter().zip(&e_cut) {
        assert_eq!(w.key, e.key);
        pairs.insert(pair_id("orders", w, e), ("overwritten", Some("east"))); // east later
    }
    for (h, e) in acc.into_iter().zip(&e_acc) {
        let w = h.await.unwrap();
        let settled = if e.key == "E-1" { ("owner-wins", Some("east")) } else { ("reported", None) };
        pairs.insert(pair_id("accounts", &w, e), settled);
    }
    written.extend(w_cut);
    written.extend(e_cut);
    eprintln!("{:>5.1} s: cut healed", started.elapsed().as_secs_f64());

    // A crash while strait catches up after the heal (copies, receipts and conflict records on
    // their way); both regions write the same keys while it is down: concurrent again. The
    // restarted process finds every conflict once, whatever the crash interrupted.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    signal(&first, "-KILL");
    first.wait().unwrap();
    let down_keys = [20, 21, 22, 23];
    let e_down = write_now(east, "east", &down_keys).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Later in truth and by its (skewed) stamp.
    let w_down = write_now(west, "west", &down_keys).await;
    for (w, e) in w_down.iter().zip(&e_down) {
        pairs.insert(pair_id("orders", w, e), ("overwritten", Some("west"))); // west later
    }
    written.extend(e_down);
    written.extend(w_down);
    if engine == Engine::Tansu {
        // Tansu gives no partitions to a member joining while the killed one is listed.
        tokio::time::sleep(Duration::from_secs(7)).await;
    }
    eprintln!("{:>5.1} s: restarting", started.elapsed().as_secs_f64());
    let log = dir.path().join("second.log");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut second = spawn_run_http(&cfg, &addr, &log);
    let _shown2 = ShowOnPanic(log);
    let found = wait_for_conflicts(east, west, &pairs, Duration::from_secs(60)).await;
    eprintln!("{:>5.1} s: every conflict found after the restart", started.elapsed().as_secs_f64());
    // Nothing more turns up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let found_later = wait_for_conflicts(east, west, &pairs, Duration::from_secs(1)).await;
    assert_eq!(found.len(), found_later.len());

    // Each record: certain, with the oracle's outcome and winner; a last-writer-wins winner is
    // also the views'.
    let expected_view = oracle(&written);
    wait_for_views(east, west, &expected_view, Duration::from_secs(60)).await;
    for (id, r) in &found {
        let (outcome, winner) = pairs[id];
        assert_eq!(r["certain"], true, "{id}: {r}");
        assert_eq!(r["outcome"], outcome, "{id}: {r}");
        assert_eq!(r["winner"].as_str(), winner, "{id}: {r}");
        assert_eq!(r["versions"][0]["region"], "west", "{id}: {r}");
        assert!(r["versions"][1]["visible_ms"].is_array(), "{id}: {r}");
        if r["topic"] == "orders" {
            assert_eq!(r["strategy"], "last-writer-wins", "{id}: {r}");
            // The winner is uncertain exactly when the stamps are within the measured skew's
            // reach (strait's processes' clocks: the writers' shift is not theirs to see).
            if let Some(reach) = r["skew_reach_ms"].as_i64() {
                let apart = (r["versions"][0]["timestamp_ms"].as_i64().unwrap()
                    - r["versions"][1]["timestamp_ms"].as_i64().unwrap())
                .abs();
                assert_eq!(r["winner_certain"], apart > reach, "{id}: {r}");
            }
            let key = r["key"].as_str().unwrap();
            assert_eq!(Some(expected_view[key].2.as_str()), winner, "{id}: the view's winner");
        } else {
            assert_eq!(r["strategy"], "authority", "{id}: {r}");
        }
    }

    // `strait conflicts` lists the same, once each, oldest first.
    let out = strait()
        .args(["conflicts", cfg.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let listed: Vec<&serde_json::Value> =
        listed.iter().filter(|r| r["kind"] == "concurrent-writes").collect();
    let mut ids: Vec<String> = listed
        .iter()
        .map(|r| {
            let v = |i: usize| {
                let v = &r["versions"][i];
                format!("{}:{}:{}", v["region"].as_str().unwrap(), v["partition"], v["offset"])
            };
            format!("c/{}/{}/{}", r["topic"].as_str().unwrap(), v(0), v(1))
        })
        .collect();
    ids.sort();
    assert_eq!(ids, pairs.keys().cloned().collect::<Vec<_>>());
    let times: Vec<i64> = listed.iter().map(|r| r["detected_at_ms"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first: {times:?}");
    let out = strait()
        .args(["conflicts", cfg.to_str().unwrap(), "--region", "east", "--topic", "orders", "--since", "1h"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let orders = pairs.keys().filter(|id| id.starts_with("c/orders/")).count();
    assert_eq!(text.lines().count(), orders, "{text}");
    assert!(
        text.lines().all(|l| l.contains("  orders  order-") && l.contains("last-writer-wins overwritten (winner ")),
        "{text}"
    );

    eprintln!("{:>5.1} s: listed", started.elapsed().as_secs_f64());
    // The dashboard's source: this process found every pair again after the restart, in both
    // regions (everything is kept for two minutes: it read the receipts again from their
    // start), and counts each record it wrote once; the latest conflicts are the pairs.
    let (code, body) = http_get(&addr, "/api/conflicts").await.unwrap();
    assert_eq!(code, 200, "{body}");
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api["enabled"], true, "{api}");
    assert!(api["error"].is_null(), "{api}");
    let latest = api["latest"].as_array().unwrap();
    assert_eq!(
        latest.iter().filter(|r| r["kind"] == "concurrent-writes").count(),
        pairs.len(),
        "{api}"
    );
    let count = |topic: &str, outcome: &str| {
        api["counts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["topic"] == topic && c["outcome"] == outcome)
            .map_or(0, |c| c["count"].as_u64().unwrap())
    };
    assert_eq!(count("orders", "overwritten") as usize, 2 * orders, "{api}");
    assert_eq!(count("accounts", "owner-wins"), 2, "{api}");
    // At least the concurrent pair of W-1 (violations of authority may be counted there too).
    assert!(count("accounts", "reported") >= 2, "{api}");
    let (_, page) = http_get(&addr, "/").await.unwrap();
    assert!(page.contains("id=\"sec-conflicts\"") && page.contains("api/conflicts"));
    // Each region's detector says what it could not judge: no key here had 64 deliveries kept.
    let (_, scrape) = http_get(&addr, "/metrics").await.unwrap();
    for region in ["east", "west"] {
        for reason in ["late", "evicted"] {
            let sample = scrape
                .lines()
                .find(|l| {
                    l.starts_with("strait_conflict_writes_unjudged_total{")
                        && l.contains(&format!("region=\"{region}\""))
                        && l.contains(&format!("reason=\"{reason}\""))
                })
                .unwrap_or_else(|| panic!("no {region} {reason} sample: {scrape}"));
            if reason == "evicted" {
                assert!(sample.ends_with(" 0"), "{sample}");
            }
        }
        // What it keeps: the writes of the last lag plus two minutes, so all of this test's
        // recent ones.
        let kept = scrape
            .lines()
            .find(|l| {
                l.starts_with("strait_conflict_deliveries_kept{")
                    && l.contains(&format!("region=\"{region}\""))
            })
            .unwrap_or_else(|| panic!("no {region} deliveries kept sample: {scrape}"));
        let n: f64 = kept.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n > 0.0, "{kept}");
    }

    signal(&second, "-TERM");
    assert!(second.wait().unwrap().success(), "SIGTERM: exit 0");
}
}

/// `strait conflicts` against a cluster nobody answers: one sentence naming it, exit 1; a file
/// without conflict rules or an unknown region: exit 2.
#[test]
fn strait_conflicts_says_what_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mm2.properties");
    let port = free_port();
    let base = format!(
        "clusters = east, west\n\
         east.bootstrap.servers = 127.0.0.1:{port}\n\
         west.bootstrap.servers = 127.0.0.1:{port}\n\
         east->west.enabled = true\n\
         west->east.enabled = true\n"
    );
    std::fs::write(
        &cfg,
        format!("{base}strait.conflicts.rules = orders\nstrait.conflicts.orders.topics = orders\nstrait.conflicts.orders.strategy = last-writer-wins\n"),
    )
    .unwrap();
    let out = strait()
        .args([
            "conflicts",
            cfg.to_str().unwrap(),
            "--region",
            "east",
            "--timeout",
            "1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot read strait.conflicts on east (127.0.0.1:{port})"
        )),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    let out = strait()
        .args(["conflicts", cfg.to_str().unwrap(), "--region", "south"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("`south` is not a conflict region of the file (east, west)"));
    std::fs::write(&cfg, &base).unwrap();
    let out = strait()
        .args(["conflicts", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sets no `strait.conflicts.rules`"));
}
