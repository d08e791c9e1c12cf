//! Offset translation end to end, with `strait run` as a process: checkpoints on the target
//! (read with a decoder written here from MM2-SPEC §3.2, not strait's) put a consumer exactly
//! where the group stopped on the source, also across restarts and foreign writes; group offsets
//! are synced into idle target groups only and never moved back; heartbeats flow both ways.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use strait::translate::TranslateReport;
use strait_sandbox::Cluster;

const TOPIC: &str = "orders";
const REMOTE: &str = "us-east.orders";
const CHECKPOINTS: &str = "us-east.checkpoints.internal";

/// Everything on short intervals: topics every 2 s, groups and checkpoints every second.
fn checkpoint_config(
    dir: &tempfile::TempDir,
    east: &str,
    west: &str,
    extra: &str,
) -> std::path::PathBuf {
    mm2_config(
        dir,
        east,
        west,
        &format!(
            "refresh.topics.interval.seconds = 2\n\
             refresh.groups.interval.seconds = 1\n\
             emit.checkpoints.interval.seconds = 1\n{extra}"
        ),
    )
}

/// Every record of one partition from `from` to the end as (offset, value).
async fn read_from(c: &Cluster, topic: &str, partition: i32, from: i64) -> Vec<(i64, String)> {
    let ep = endpoint(c);
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ep
            .consumer_config("checkpoint-test-reader")
            .create()
            .unwrap();
        let (_, end) = consumer
            .fetch_watermarks(&topic, partition, Duration::from_secs(10))
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, partition, Offset::Offset(from))
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut next = from;
        while next < end && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                next = m.offset() + 1;
                out.push((
                    m.offset(),
                    String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                ));
            }
        }
        assert!(next >= end, "{topic}-{partition}: read to {next} of {end}");
        out
    })
    .await
    .unwrap()
}

async fn end_offsets(c: &Cluster, topic: &str, n: i32) -> BTreeMap<i32, i64> {
    let a = admin(c);
    let mut out = BTreeMap::new();
    for p in 0..n {
        out.insert(p, a.watermarks(topic, p).await.unwrap().1);
    }
    out
}

/// A checkpoint, decoded here from the byte layout of MM2-SPEC §3.2.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Cp {
    group: String,
    topic: String,
    partition: i32,
    upstream: i64,
    downstream: i64,
    metadata: String,
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (h, t) = b.split_at(n);
    *b = t;
    h
}

fn string(b: &mut &[u8]) -> String {
    let n = i16::from_be_bytes(take(b, 2).try_into().unwrap()) as usize;
    String::from_utf8(take(b, n).to_vec()).unwrap()
}

fn decode_checkpoint(mut k: &[u8], mut v: &[u8]) -> Cp {
    let group = string(&mut k);
    let topic = string(&mut k);
    let partition = i32::from_be_bytes(take(&mut k, 4).try_into().unwrap());
    assert!(k.is_empty(), "key has trailing bytes");
    let version = i16::from_be_bytes(take(&mut v, 2).try_into().unwrap());
    assert_eq!(version, 0);
    let upstream = i64::from_be_bytes(take(&mut v, 8).try_into().unwrap());
    let downstream = i64::from_be_bytes(take(&mut v, 8).try_into().unwrap());
    let metadata = string(&mut v);
    assert!(v.is_empty(), "value has trailing bytes");
    Cp {
        group,
        topic,
        partition,
        upstream,
        downstream,
        metadata,
    }
}

/// Every checkpoint record on `c`, in topic order.
async fn checkpoints(c: &Cluster) -> Vec<Cp> {
    let ep = endpoint(c);
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ep
            .consumer_config("checkpoint-test-reader")
            .create()
            .unwrap();
        let Ok((_, end)) = consumer.fetch_watermarks(CHECKPOINTS, 0, Duration::from_secs(5)) else {
            return Vec::new();
        };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(CHECKPOINTS, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let mut out = Vec::new();
        let mut next = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while next < end && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                next = m.offset() + 1;
                out.push(decode_checkpoint(
                    m.key().unwrap_or_default(),
                    m.payload().unwrap_or_default(),
                ));
            }
        }
        out
    })
    .await
    .unwrap()
}

/// Wait until the newest checkpoint of `group` for each partition has the upstream offset the
/// group committed; return them.
async fn wait_for_checkpoints(
    west: &Cluster,
    group: &str,
    want: &BTreeMap<i32, i64>,
    within: Duration,
) -> BTreeMap<i32, Cp> {
    let deadline = Instant::now() + within;
    loop {
        let mut latest = BTreeMap::new();
        for cp in checkpoints(west).await {
            if cp.group == group && cp.topic == REMOTE {
                latest.insert(cp.partition, cp);
            }
        }
        if want
            .iter()
            .all(|(p, u)| latest.get(p).is_some_and(|cp: &Cp| cp.upstream == *u))
        {
            return latest;
        }
        assert!(
            Instant::now() < deadline,
            "checkpoints for {group}: want upstream {want:?}, have {latest:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Wait until strait's own group on the source has committed everything: all replicated.
async fn wait_caught_up(east: &Cluster, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let ends = end_offsets(east, TOPIC, 3).await;
        let done = committed(east, "strait.us-east->us-west", TOPIC, 3).await;
        if ends.iter().all(|(p, e)| done.get(p) == Some(e)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replication not caught up: ends {ends:?}, committed {done:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// For each partition: a consumer on the target starting at the checkpoint reads every source
/// record the group had not processed. Returns, per partition, the source records it reads
/// again (values the group had processed).
async fn check_resume(
    east: &Cluster,
    west: &Cluster,
    group_at: &BTreeMap<i32, i64>,
    cps: &BTreeMap<i32, Cp>,
) -> BTreeMap<i32, Vec<String>> {
    let mut reread = BTreeMap::new();
    for (&p, &g) in group_at {
        let source = read_from(east, TOPIC, p, 0).await;
        let processed: HashSet<&String> = source
            .iter()
            .filter(|(o, _)| *o < g)
            .map(|(_, v)| v)
            .collect();
        let unprocessed: Vec<&String> = source
            .iter()
            .filter(|(o, _)| *o >= g)
            .map(|(_, v)| v)
            .collect();
        let resumed = read_from(west, REMOTE, p, cps[&p].downstream).await;
        let got: HashSet<&String> = resumed.iter().map(|(_, v)| v).collect();
        let lost: Vec<&&String> = unprocessed.iter().filter(|v| !got.contains(**v)).collect();
        assert!(
            lost.is_empty(),
            "partition {p}: resuming at {} loses {} records, first {:?}",
            cps[&p].downstream,
            lost.len(),
            lost.first()
        );
        reread.insert(
            p,
            resumed
                .iter()
                .filter(|(_, v)| processed.contains(v))
                .map(|(_, v)| v.clone())
                .collect(),
        );
    }
    reread
}

on_both_engines! {
async fn checkpoints_resume_a_group_exactly(engine) {
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, TOPIC, 3).await;
    produce_range(east, TOPIC, 3, 0..3_000, "orders", None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = checkpoint_config(
        &dir,
        &east.bootstrap_servers(),
        &west.bootstrap_servers(),
        "",
    );
    let _strait = spawn_run(&cfg);
    wait_caught_up(east, Duration::from_secs(60)).await;

    // The group has processed a quarter, half and three quarters of the partitions.
    let ends = end_offsets(east, TOPIC, 3).await;
    let group_at: BTreeMap<i32, i64> = ends
        .iter()
        .map(|(&p, &e)| (p, e * i64::from(p + 1) / 4))
        .collect();
    let offsets: Vec<(&str, i32, i64)> = group_at.iter().map(|(&p, &o)| (TOPIC, p, o)).collect();
    commit_group(east, "billing", &offsets).await;

    let cps = wait_for_checkpoints(west, "billing", &group_at, Duration::from_secs(30)).await;
    let reread = check_resume(east, west, &group_at, &cps).await;
    for (p, r) in &reread {
        assert!(
            r.is_empty(),
            "partition {p}: {} records re-delivered: {:?}",
            r.len(),
            &r[..r.len().min(5)]
        );
    }
    // strait's own group is never checkpointed.
    assert!(checkpoints(west)
        .await
        .iter()
        .all(|cp| cp.group == "billing"));

    // `strait translate` agrees, exactly, and says nothing is read twice.
    let t = translate_json(&cfg, "billing", &[]).await;
    assert!(t.translation.source_reachable, "{t:?}");
    for p in &t.translation.partitions {
        let n = p.partition;
        assert_eq!(p.upstream_offset, Some(group_at[&n]), "{p:?}");
        assert_eq!(p.downstream_offset, Some(cps[&n].downstream), "{p:?}");
        assert_eq!(p.method, "exact", "{p:?}");
        assert_eq!(p.reread, Some(0), "{p:?}");
        assert_eq!(p.remote_topic, REMOTE);
    }
    // --apply commits them to the (idle) group on us-west.
    let t = translate_json(&cfg, "billing", &["--apply"]).await;
    assert!(t.applied, "{t:?}");
    let expected: BTreeMap<i32, i64> = cps.iter().map(|(p, cp)| (*p, cp.downstream)).collect();
    assert_eq!(committed(west, "billing", REMOTE, 3).await, expected);

    // With us-east cut off, the last checkpoints stand in.
    east.cut();
    let t = translate_json(&cfg, "billing", &[]).await;
    east.heal();
    assert!(!t.translation.source_reachable, "{t:?}");
    for p in &t.translation.partitions {
        assert_eq!(p.method, "checkpoint", "{p:?}");
        assert_eq!(p.downstream_offset, Some(cps[&p.partition].downstream), "{p:?}");
    }
}
}

/// `strait translate CONFIG --group G --source us-east --target us-west --json [extra]`.
pub(crate) async fn translate_json(
    cfg: &std::path::Path,
    group: &str,
    extra: &[&str],
) -> TranslateReport {
    let mut cmd = strait();
    cmd.arg("translate")
        .arg(cfg)
        .args([
            "--group", group, "--source", "us-east", "--target", "us-west", "--json",
        ])
        .args(extra);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "strait translate: {:?}: {stderr}",
        out.status
    );
    typed(
        &format!("translate --json (stderr: {stderr})"),
        &String::from_utf8_lossy(&out.stdout),
    )
}

on_both_engines! {
async fn checkpoints_stay_exact_across_restarts_and_foreign_writes(engine) {
    const N: usize = 24_000;
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, TOPIC, 3).await;
    let dir = tempfile::tempdir().unwrap();
    // A short session, so that the killed process's member is expired soon, as in the other
    // kill tests (librdkafka's default is 45 s).
    let cfg = checkpoint_config(
        &dir,
        &east.bootstrap_servers(),
        &west.bootstrap_servers(),
        "us-east.consumer.session.timeout.ms = 6000
",
    );

    produce_range(east, TOPIC, 3, 0..N / 2, "orders", None).await;
    let mut first = spawn_run(&cfg);
    wait_for_count(west, REMOTE, 3, 4_000, Duration::from_secs(60)).await;
    signal(&first, "-KILL");
    first.wait().unwrap();

    // Someone else writes into the remote partitions while strait is down.
    produce_range(west, REMOTE, 3, 0..90, "foreign", None).await;
    // Tansu gives no partitions to a member that joins while the killed one is still listed
    // (see run_cli.rs): wait out its session there. Apache Kafka rebalances when it expires.
    if engine == Engine::Tansu {
        tokio::time::sleep(Duration::from_secs(12)).await;
    }
    let second = spawn_run(&cfg);
    produce_range(east, TOPIC, 3, N / 2..N, "orders", None).await;
    wait_caught_up(east, Duration::from_secs(90)).await;

    let ends = end_offsets(east, TOPIC, 3).await;
    let group_at: BTreeMap<i32, i64> = ends
        .iter()
        .map(|(&p, &e)| (p, e * i64::from(2 * p + 1) / 6))
        .collect();
    let offsets: Vec<(&str, i32, i64)> = group_at.iter().map(|(&p, &o)| (TOPIC, p, o)).collect();
    commit_group(east, "billing", &offsets).await;
    let cps = wait_for_checkpoints(west, "billing", &group_at, Duration::from_secs(30)).await;
    let reread = check_resume(east, west, &group_at, &cps).await;

    // Whatever is read again must be an extra copy the restart made: a value that is in the
    // remote partition more than once.
    let mut total_reread = 0;
    for (p, r) in &reread {
        let all = read_from(west, REMOTE, *p, 0).await;
        let mut copies: HashMap<&String, usize> = HashMap::new();
        for (_, v) in &all {
            *copies.entry(v).or_default() += 1;
        }
        for v in r {
            assert!(
                copies[v] > 1,
                "partition {p}: {v} re-delivered but was copied once"
            );
        }
        total_reread += r.len();
        let dups: usize = copies.values().map(|c| c - 1).sum();
        eprintln!("partition {p}: {dups} restart copies in the remote partition, {} re-read from the checkpoint", r.len());
    }
    eprintln!("re-read in total: {total_reread}");

    // Restart again; the group moves on; checkpoints continue and never went backwards.
    drop(second);
    let _third = spawn_run(&cfg);
    let moved: BTreeMap<i32, i64> = ends.iter().map(|(&p, &e)| (p, e - 10)).collect();
    let offsets: Vec<(&str, i32, i64)> = moved.iter().map(|(&p, &o)| (TOPIC, p, o)).collect();
    commit_group(east, "billing", &offsets).await;
    let cps = wait_for_checkpoints(west, "billing", &moved, Duration::from_secs(30)).await;
    check_resume(east, west, &moved, &cps).await;
    let mut last: HashMap<(String, i32), (i64, i64)> = HashMap::new();
    for cp in checkpoints(west).await {
        if let Some((u, d)) = last.get(&(cp.group.clone(), cp.partition)) {
            assert!(
                cp.upstream < *u || cp.downstream >= *d,
                "checkpoint went backwards: {cp:?} after upstream {u} downstream {d}"
            );
        }
        last.insert(
            (cp.group.clone(), cp.partition),
            (cp.upstream, cp.downstream),
        );
    }
}
}

on_both_engines! {
async fn group_offsets_are_synced_to_idle_groups_only_and_never_backwards(engine) {
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    create_topic(east, TOPIC, 3).await;
    produce_range(east, TOPIC, 3, 0..3_000, "orders", None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = checkpoint_config(
        &dir,
        &east.bootstrap_servers(),
        &west.bootstrap_servers(),
        "sync.group.offsets.enabled = true\nsync.group.offsets.interval.seconds = 1\n",
    );
    let _strait = spawn_run(&cfg);
    wait_caught_up(east, Duration::from_secs(60)).await;

    // "ahead" already went further on the target; "busy" is consuming there right now.
    commit_group(
        west,
        "ahead",
        &[(REMOTE, 0, 900), (REMOTE, 1, 900), (REMOTE, 2, 900)],
    )
    .await;
    let busy_ep = endpoint(west);
    let busy_stop = StopOnDrop::default();
    let (joined_tx, joined_rx) = std::sync::mpsc::channel();
    let busy = {
        let stop = busy_stop.0.clone();
        tokio::task::spawn_blocking(move || {
            let c: BaseConsumer = busy_ep.consumer_config("busy").create().unwrap();
            c.subscribe(&[REMOTE]).unwrap();
            let mut told = false;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = c.poll(Duration::from_millis(100));
                if !told && c.assignment().is_ok_and(|a| a.count() > 0) {
                    let _ = joined_tx.send(());
                    told = true;
                }
            }
        })
    };
    tokio::task::spawn_blocking(move || joined_rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the busy consumer joins its group on us-west");

    let half: Vec<(&str, i32, i64)> = vec![(TOPIC, 0, 500), (TOPIC, 1, 400), (TOPIC, 2, 300)];
    for g in ["billing", "ahead", "busy"] {
        commit_group(east, g, &half).await;
    }

    let want: BTreeMap<i32, i64> = half.iter().map(|(_, p, o)| (*p, *o)).collect();
    let cps = wait_for_checkpoints(west, "billing", &want, Duration::from_secs(30)).await;
    // Within two sync intervals (plus the checkpoint interval) the idle group has them.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let have = committed(west, "billing", REMOTE, 3).await;
        let expected: BTreeMap<i32, i64> = cps.iter().map(|(p, cp)| (*p, cp.downstream)).collect();
        if have == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "billing on us-west: {have:?}, want {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // several more sync rounds
    assert_eq!(
        committed(west, "ahead", REMOTE, 3).await,
        BTreeMap::from([(0, 900), (1, 900), (2, 900)]),
        "a target offset ahead of the translation is never moved back"
    );
    assert!(
        committed(west, "busy", REMOTE, 3).await.is_empty(),
        "an active group on the target is left alone"
    );
    // ... and `strait translate --apply` refuses to move it.
    let mut cmd = strait();
    cmd.arg("translate").arg(&cfg).args([
        "--group", "busy", "--source", "us-east", "--target", "us-west", "--apply",
    ]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("active on us-west"), "{err}");
    assert!(committed(west, "busy", REMOTE, 3).await.is_empty());
    drop(busy_stop);
    busy.await.unwrap();
}
}

on_both_engines! {
async fn heartbeats_flow_both_ways_in_active_active(engine) {
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = checkpoint_config(
        &dir,
        &east.bootstrap_servers(),
        &west.bootstrap_servers(),
        "us-west->us-east.enabled = true\nus-west->us-east.topics = orders\nemit.heartbeats.interval.seconds = 1\n",
    );
    let _strait = spawn_run(&cfg);
    for (here, other) in [(east, "us-west"), (west, "us-east")] {
        // The local heartbeats topic: Heartbeat(other, here) records, decoded per §3.1.
        wait_for_count(here, "heartbeats", 1, 2, Duration::from_secs(30)).await;
        let raw = raw_records(here, "heartbeats").await;
        for (k, v, ts) in &raw {
            let mut k = &k[..];
            assert_eq!(string(&mut k), other);
            assert_eq!(string(&mut k), here.name());
            assert_eq!(v.len(), 10, "value: version i16 + timestamp i64");
            assert_eq!(&v[..2], &[0, 0]);
            let t = i64::from_be_bytes(v[2..10].try_into().unwrap());
            assert_eq!(Some(t), *ts, "record timestamp = heartbeat time");
            assert!((t - now_ms()).abs() < 120_000);
        }
        // ... and the other side's heartbeats, replicated.
        let remote = format!("{other}.heartbeats");
        wait_for_count(here, &remote, 1, 1, Duration::from_secs(30)).await;
    }
    assert!(admin(east)
        .topics(None)
        .await
        .unwrap()
        .iter()
        .all(|t| !t.name.starts_with("us-east.")));
}
}

/// Sets its flag when dropped, so a helper thread ends even when the test fails.
#[derive(Default)]
struct StopOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn raw_records(c: &Cluster, topic: &str) -> Vec<(Vec<u8>, Vec<u8>, Option<i64>)> {
    let ep = endpoint(c);
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ep
            .consumer_config("checkpoint-test-reader")
            .create()
            .unwrap();
        let (_, end) = consumer
            .fetch_watermarks(&topic, 0, Duration::from_secs(5))
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let mut out = Vec::new();
        let mut next = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while next < end && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                next = m.offset() + 1;
                out.push((
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().unwrap_or_default().to_vec(),
                    m.timestamp().to_millis(),
                ));
            }
        }
        out
    })
    .await
    .unwrap()
}

on_both_engines! {
/// A partition replicated before strait (by MM2: only MM2 offset syncs exist, no strait index)
/// is translated with MM2's own rules, and `strait translate` says so.
async fn partitions_replicated_by_mm2_fall_back_to_mm2_offset_syncs(engine) {
    use rdkafka::producer::FutureRecord;
    let sb = engine.start(&["us-east", "us-west"]).await;
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    // What MM2 left behind: `legacy` copied to `us-east.legacy` one for one, and two offset syncs
    // (MM2-SPEC §3.3 bytes, written here by hand) in the syncs topic on the source.
    create_topic(east, "legacy", 1).await;
    create_topic(west, "us-east.legacy", 1).await;
    produce_range(east, "legacy", 1, 0..100, "legacy", None).await;
    produce_range(west, "us-east.legacy", 1, 0..100, "legacy", None).await;
    let sync = |up: i64, down: i64| {
        let mut k = vec![0, 6];
        k.extend_from_slice(b"legacy");
        k.extend_from_slice(&0i32.to_be_bytes());
        let mut v = up.to_be_bytes().to_vec();
        v.extend_from_slice(&down.to_be_bytes());
        (k, v)
    };
    create_topic(east, "mm2-offset-syncs.us-west.internal", 1).await;
    let p = producer(east);
    for (up, down) in [(0, 0), (50, 50)] {
        let (k, v) = sync(up, down);
        p.send(
            FutureRecord::to("mm2-offset-syncs.us-west.internal")
                .partition(0)
                .key(&k)
                .payload(&v),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
    commit_group(east, "old", &[("legacy", 0, 70)]).await;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mm2.properties");
    std::fs::write(
        &path,
        format!(
            "clusters = us-east, us-west\n\
             us-east.bootstrap.servers = {}\n\
             us-west.bootstrap.servers = {}\n\
             us-east->us-west.enabled = true\n\
             us-east->us-west.topics = legacy\n",
            east.bootstrap_servers(),
            west.bootstrap_servers()
        ),
    )
    .unwrap();
    let t = translate_json(&path, "old", &[]).await;
    let p = &t.translation.partitions[0];
    assert_eq!(p.topic, "legacy", "{t:?}");
    assert_eq!(p.upstream_offset, Some(70), "{t:?}");
    // MM2's rule: the newest sync at or before 70 is 50 -> 50, so 50 + 1.
    assert_eq!(p.method, "mm2-sync", "{t:?}");
    assert_eq!(p.downstream_offset, Some(51), "{t:?}");
    assert_eq!(p.mm2_offset, Some(51), "{t:?}");
    assert_eq!(p.reread, Some(19), "{t:?}");
}
}
