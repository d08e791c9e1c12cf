//! strait beside the real MirrorMaker 2 (dedicated mode, from the jars of the Apache Kafka test
//! bed), on Apache Kafka: each reads what the other writes, and an operator switches from one to
//! the other and back under traffic without copying topics again or losing a record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use strait::config::report::{CheckReport, PositionFrom};
use strait::failover::clients::ClientSettings;
use strait::failover::report::FailoverReport;
use strait::monitor::Status;
use strait::replicate::mm2_offsets;
use strait::translate::{PartitionTranslation, TranslateReport};
use strait_sandbox::kafka::mm2::{self, Mm2};

/// What MM2 needs beside the usual test file on one-node clusters (Connect's own topics with
/// replication factor 1) and to answer quickly (intervals of a second or two; source positions
/// committed every second instead of every minute).
const MM2_EXTRA: &str = "refresh.topics.interval.seconds = 2
refresh.groups.interval.seconds = 2
emit.checkpoints.interval.seconds = 1
emit.heartbeats.interval.seconds = 1
offset.storage.replication.factor = 1
status.storage.replication.factor = 1
config.storage.replication.factor = 1
us-west.offset.flush.interval.ms = 1000
us-east.offset.flush.interval.ms = 1000";

/// Two Apache Kafka regions with the usual file plus [`MM2_EXTRA`], under the heavy lock (MM2's
/// JVM beside two brokers); None when the Apache Kafka tests are off (said on stderr).
async fn mm2_regions() -> Option<(tokio::sync::MutexGuard<'static, ()>, Regions)> {
    if !kafka_enabled() {
        return None;
    }
    let heavy = heavy().await;
    Some((heavy, Regions::start_on(Engine::Kafka, MM2_EXTRA).await))
}

fn cache_dir() -> PathBuf {
    kafka_spec(strait_sandbox::Security::Plaintext)
        .expect("Apache Kafka tests are on")
        .cache_dir
}

fn log_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kafka-logs");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Start MM2 on `cfg`; its log is `target/tmp/kafka-logs/<name>.log`, written afresh.
fn start_mm2(cfg: &Path, name: &str) -> Mm2 {
    let log = log_path(&format!("{name}.log"));
    let _ = std::fs::remove_file(&log);
    Mm2::start(&cache_dir(), cfg, &log, strait_sandbox::JvmProfile::TestBed)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// MM2's own `RemoteClusterUtils.translateOffsets` for `group` (consumed on us-east), read from
/// us-west: remote partition -> offset.
async fn mm2_translate(west: &strait_sandbox::Cluster, group: &str) -> BTreeMap<i32, i64> {
    let (bootstrap, group) = (west.bootstrap_servers(), group.to_string());
    let out = tokio::task::spawn_blocking(move || {
        mm2::client(&cache_dir(), &["translate", &bootstrap, "us-east", &group])
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("{e}"));
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[0] == "us-east.orders")
                .then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
        })
        .collect()
}

/// MM2's `MirrorClient` answers on us-west: question -> answer.
async fn mm2_describe(west: &strait_sandbox::Cluster) -> BTreeMap<String, String> {
    let bootstrap = west.bootstrap_servers();
    let out =
        tokio::task::spawn_blocking(move || mm2::client(&cache_dir(), &["describe", &bootstrap]))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}"));
    out.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `strait ARGS --json`: exit code and document.
async fn strait_json<T>(args: &[&str]) -> (i32, T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = strait()
            .args(&args)
            .arg("--json")
            .env("STRAIT_LOG", "warn")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let what = format!(
            "strait {args:?} (stderr: {})",
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), typed(&what, &text))
    })
    .await
    .unwrap()
}

/// strait's translation of `app` from us-east to us-west: partition -> the partition's document.
async fn strait_translate(cfg: &Path) -> BTreeMap<i32, PartitionTranslation> {
    let cfg = cfg.display().to_string();
    let (code, doc): (_, TranslateReport) = strait_json(&[
        "translate",
        &cfg,
        "--group",
        "app",
        "--source",
        "us-east",
        "--target",
        "us-west",
    ])
    .await;
    assert_eq!(code, 0, "{doc:?}");
    doc.translation
        .partitions
        .into_iter()
        .map(|p| (p.partition, p))
        .collect()
}

/// Wait until MM2's translation of `app` satisfies `ok`, or panic with both sides.
async fn until_mm2_translates(
    west: &strait_sandbox::Cluster,
    within: Duration,
    mut ok: impl FnMut(&BTreeMap<i32, i64>) -> bool,
    context: impl Fn() -> String,
) -> BTreeMap<i32, i64> {
    let deadline = Instant::now() + within;
    loop {
        let got = mm2_translate(west, "app").await;
        if ok(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "MM2's translation of app is {got:?} after {within:?}; {}",
            context()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strait_answers_from_what_mirrormaker2_wrote() {
    let Some((_heavy, regions)) = mm2_regions().await else {
        return;
    };
    let (east, west, cfg) = (regions.east(), regions.west(), regions.config.clone());
    produce_seq(east, "orders", 3, 3000).await;
    commit_group(
        east,
        "app",
        &[("orders", 0, 500), ("orders", 1, 600), ("orders", 2, 700)],
    )
    .await;

    let mut mirror = start_mm2(&cfg, "mm2-reads");
    wait_for_count(west, "us-east.orders", 3, 3000, Duration::from_secs(120)).await;

    // Translation: MM2's checkpoints (what RemoteClusterUtils returns) against strait's. strait
    // has no index of its own here, so it translates from MM2's offset syncs, or from MM2's
    // checkpoint where that is better (MM2's sync store forgets syncs that its checkpoints,
    // which never move back, were computed from): the two must agree partition by partition.
    until_mm2_translates(
        west,
        Duration::from_secs(120),
        |m| m.len() == 3 && m.values().all(|o| *o > 0),
        || log_tail(mirror.log(), 20),
    )
    .await;
    let mut ours = BTreeMap::new();
    for _ in 0..30 {
        ours = strait_translate(&cfg).await;
        let theirs = mm2_translate(west, "app").await;
        let agree = ours
            .iter()
            .all(|(p, d)| d.downstream_offset == theirs.get(p).copied());
        if agree && ours.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let theirs = mm2_translate(west, "app").await;
    for (p, d) in &ours {
        assert_eq!(
            d.downstream_offset,
            theirs.get(p).copied(),
            "partition {p}: {d:?}; MM2 says {theirs:?}"
        );
        match d.method.as_str() {
            "mm2-sync" => assert_eq!(d.mm2_offset, theirs.get(p).copied(), "{d:?}"),
            "checkpoint" => assert!(d.mm2_offset < theirs.get(p).copied(), "{d:?}"),
            other => panic!("partition {p}: method {other}: {d:?}"),
        }
    }
    assert_eq!(ours.len(), 3);

    // MM2's source positions are the bytes strait reads and writes: the same keys, in the
    // partition Kafka's Java producer picks, and they say how far MM2 copied.
    let topic = "mm2-offsets.us-east.internal";
    let n = record_count(west, topic, 25).await;
    assert!(n > 0, "MM2 stored no source positions");
    let mut last = BTreeMap::new();
    for r in read_all(west, topic, 25, n as usize).await {
        let key = r.key.clone().unwrap();
        let Some(pos) = mm2_offsets::decode(&key, r.value.as_deref()) else {
            continue;
        };
        assert_eq!(
            key,
            mm2_offsets::key(&pos.cluster, &pos.topic, pos.partition)
        );
        assert_eq!(r.partition, mm2_offsets::partition_for(&key, 25), "{pos:?}");
        if pos.topic == "orders" {
            last.insert(pos.partition, pos.next);
        }
    }
    assert_eq!(
        last,
        BTreeMap::from([(0, Some(1000)), (1, Some(1000)), (2, Some(1000))])
    );

    // status, clients and the failover preview read MM2's heartbeats and checkpoints.
    let c = cfg.display().to_string();
    let (code, status): (_, Status) = strait_json(&["status", &c, "--timeout", "20"]).await;
    assert!(code == 0 || code == 1, "{status:?}");
    let flow = status
        .flows
        .iter()
        .find(|f| f.source == "us-east" && f.target == "us-west")
        .unwrap_or_else(|| panic!("{status:?}"));
    assert!(flow.heartbeat_age_seconds.is_some(), "{flow:?}");
    assert!(flow.checkpoint_age_seconds.is_some(), "{flow:?}");
    let (code, clients): (_, ClientSettings) =
        strait_json(&["clients", &c, "--group", "app"]).await;
    assert_eq!(code, 0, "{clients:?}");
    assert_eq!(clients.active_region, "us-east", "{clients:?}");
    let (code, preview): (_, FailoverReport) = strait_json(&[
        "failover",
        &c,
        "--from",
        "us-east",
        "--to",
        "us-west",
        "--dry-run",
    ])
    .await;
    assert_eq!(code, 0, "{preview:?}");

    // A planned failover with MM2 still replicating: app resumes on us-west where MM2's
    // translation says (strait's equals it, above).
    let (code, report): (_, FailoverReport) = strait_json(&[
        "failover",
        &c,
        "--from",
        "us-east",
        "--to",
        "us-west",
        "--max-wait",
        "60s",
    ])
    .await;
    assert_eq!(code, 0, "{report:?}");
    let on_west = committed(west, "app", "us-east.orders", 3).await;
    assert_eq!(on_west, theirs, "{report:?}");
    assert!(
        mirror.terminate(Duration::from_secs(30)),
        "{}",
        log_tail(mirror.log(), 30)
    );
}

/// Write `seq:<i>` to `orders` on `c`, partition i % 3, about 300 records a second, until `stop`;
/// `written` counts what was acknowledged. While `pause` is set nothing is written, and `written`
/// is then all there is.
fn spawn_sequence(
    c: &strait_sandbox::Cluster,
    stop: Arc<AtomicBool>,
    pause: Arc<AtomicBool>,
    written: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<usize> {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let ep = endpoint(c);
    std::thread::spawn(move || {
        let p: ThreadedProducer<DefaultProducerContext> = ep.producer_config().create().unwrap();
        let mut i = 0usize;
        while !stop.load(Ordering::SeqCst) {
            if pause.load(Ordering::SeqCst) {
                p.flush(Duration::from_secs(30)).unwrap();
                written.store(i, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            for _ in 0..3 {
                let v = format!("seq:{i}");
                let mut rec = BaseRecord::to("orders")
                    .key("k")
                    .payload(&v)
                    .partition((i % 3) as i32);
                while let Err((_, r)) = p.send(rec) {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                i += 1;
            }
            if i.is_multiple_of(300) {
                p.flush(Duration::from_secs(30)).unwrap();
                written.store(i, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        p.flush(Duration::from_secs(30)).unwrap();
        written.store(i, Ordering::SeqCst);
        i
    })
}

/// strait's newest offset sync of each partition of `orders` (`mm2-offset-syncs.us-west.internal`
/// on us-east): partition -> (upstream, downstream).
async fn last_syncs(east: &strait_sandbox::Cluster) -> BTreeMap<i32, (i64, i64)> {
    let topic = "mm2-offset-syncs.us-west.internal";
    let n = record_count(east, topic, 1).await;
    let mut last = BTreeMap::new();
    for r in read_all(east, topic, 1, n as usize).await {
        let (Some(k), Some(v)) = (r.key.as_deref(), r.value.as_deref()) else {
            continue;
        };
        let s = strait::wire::OffsetSync::decode(k, v).unwrap();
        if s.topic == "orders" {
            last.insert(s.partition, (s.upstream_offset, s.downstream_offset));
        }
    }
    last
}

/// `text` without terminal colour codes.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

async fn wait_for_line(path: &Path, within: Duration, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let text = plain(&std::fs::read_to_string(path).unwrap_or_default());
        if let Some(l) = text.lines().find(|l| want(l)) {
            return l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no such line in {} after {within:?}; it ends:\n{}",
            path.display(),
            log_tail(path, 30)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Wait for a child to exit after SIGTERM; its exit code.
async fn terminated(run: &mut Running, within: Duration) -> i32 {
    signal_and_wait(run, "-TERM", within)
        .await
        .0
        .code()
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_switches_from_mirrormaker2_to_strait_and_back_under_traffic() {
    let Some((_heavy, regions)) = mm2_regions().await else {
        return;
    };
    let (east, west, cfg) = (regions.east(), regions.west(), regions.config.clone());
    let c = cfg.display().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let pause = Arc::new(AtomicBool::new(false));
    let producer = spawn_sequence(east, stop.clone(), pause.clone(), written.clone());

    // 1. MirrorMaker 2 replicates, and is stopped as an operator stops it (SIGTERM).
    let mut mirror = start_mm2(&cfg, "mm2-switch-1");
    wait_for_count(west, "us-east.orders", 3, 1500, Duration::from_secs(120)).await;
    assert!(
        mirror.terminate(Duration::from_secs(60)),
        "{}",
        log_tail(mirror.log(), 30)
    );
    let at_switch = strait::replicate::resume::read_mm2_positions(
        &endpoint(west),
        "mm2-offsets.us-east.internal",
        "us-east",
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert!(
        (0..3).all(|p| at_switch.contains_key(&("orders".to_string(), p))),
        "{at_switch:?}"
    );

    // `strait check --positions` says what a first run will do.
    let (code, check): (_, CheckReport) = strait_json(&["check", &c, "--positions"]).await;
    assert_eq!(code, 0, "{check:?}");
    let planned: BTreeMap<i32, (PositionFrom, Option<i64>)> = check
        .positions
        .iter()
        .flatten()
        .filter(|p| p.topic == "orders")
        .map(|p| (p.partition, (p.from, p.offset)))
        .collect();
    let from_mm2: BTreeMap<i32, (PositionFrom, Option<i64>)> = (0..3)
        .map(|p| {
            (
                p,
                (
                    PositionFrom::Mm2,
                    Some(at_switch[&("orders".to_string(), p)].next),
                ),
            )
        })
        .collect();
    assert_eq!(planned, from_mm2, "{check:?}");

    // 2. strait runs on the same file and resumes each partition where MM2 stopped.
    let log = log_path("strait-switch.log");
    let mut run = spawn_run_logged(&cfg, &log);
    let line = wait_for_line(&log, Duration::from_secs(60), |l| {
        l.contains("partitions resume from") && l.contains("topic=orders")
    })
    .await;
    let p = |n: i32| at_switch[&("orders".to_string(), n)].next;
    let want = format!("from_mm2=0@{} 1@{} 2@{}", p(0), p(1), p(2));
    assert!(line.contains(&want), "{line}\nwanted {want}");
    let now = written.load(Ordering::SeqCst) as i64;
    wait_for_count(west, "us-east.orders", 3, now, Duration::from_secs(120)).await;

    // MM2's client library reads strait's output as strait's commands do: the topology, and a
    // group's translation from strait's (exact) checkpoints.
    let described = mm2_describe(west).await;
    assert_eq!(described["upstreamClusters"], "us-east", "{described:?}");
    assert_eq!(
        described["checkpointTopics"], "us-east.checkpoints.internal",
        "{described:?}"
    );
    assert_eq!(described["replicationHops us-east"], "1", "{described:?}");
    assert!(
        described["heartbeatTopics"]
            .split(',')
            .any(|t| t == "heartbeats"),
        "{described:?}"
    );
    assert!(
        described["remoteTopics"]
            .split(',')
            .any(|t| t == "us-east.orders"),
        "{described:?}"
    );
    let (code, status): (_, Status) = strait_json(&["status", &c, "--timeout", "20"]).await;
    assert!(code == 0 || code == 1, "{status:?}");
    let upstream: Vec<&str> = status
        .flows
        .iter()
        .filter(|f| f.target == "us-west" && f.partitions > 0)
        .map(|f| f.source.as_str())
        .collect();
    assert_eq!(upstream, ["us-east"], "{status:?}");

    let strait_group = committed(east, "strait.us-east->us-west", "orders", 3).await;
    let app: Vec<(&str, i32, i64)> = strait_group
        .iter()
        .map(|(p, o)| ("orders", *p, o - 5))
        .collect();
    commit_group(east, "app", &app).await;
    let exact = {
        let mut got = BTreeMap::new();
        for _ in 0..30 {
            got = strait_translate(&cfg).await;
            if got.values().all(|d| d.method == "exact") && got.len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        got
    };
    let exact: BTreeMap<i32, i64> = exact
        .iter()
        .map(|(p, d)| {
            assert_eq!(d.method, "exact", "{d:?}");
            (*p, d.downstream_offset.unwrap())
        })
        .collect();
    until_mm2_translates(
        west,
        Duration::from_secs(60),
        |m| *m == exact,
        || format!("strait's exact translation is {exact:?}"),
    )
    .await;

    // 3. The operator stops strait (SIGTERM) and starts MM2 again: MM2 resumes from the
    // positions strait kept for it, and its checkpoint connector works from strait's offset syncs.
    // First strait copies a few hundred records per partition past `app`'s checkpoint; then the
    // producer pauses until MM2 runs, so that MM2's sync store holds strait's syncs as they were
    // written (it thins older syncs out as new ones arrive: a group far behind the newest sync
    // gets an older checkpoint from MM2, or none, with strait's syncs as with MM2's own).
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed(east, "strait.us-east->us-west", "orders", 3)
        .await
        .iter()
        .any(|(p, o)| *o < strait_group[p] + 300)
    {
        assert!(Instant::now() < deadline, "strait stopped copying");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    pause.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let paused_at = written.load(Ordering::SeqCst) as i64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed(east, "strait.us-east->us-west", "orders", 3)
        .await
        .values()
        .any(|o| *o < paused_at / 3)
    {
        assert!(Instant::now() < deadline, "strait did not catch up");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        terminated(&mut run, Duration::from_secs(30)).await,
        0,
        "{}",
        log_tail(&log, 30)
    );
    // `app` moves to just past strait's last offset sync of each partition.
    let syncs = last_syncs(east).await;
    let app: Vec<(&str, i32, i64)> = syncs
        .iter()
        .map(|(p, (up, _))| ("orders", *p, up + 1))
        .collect();
    commit_group(east, "app", &app).await;
    let ours: BTreeMap<i32, i64> = strait_translate(&cfg)
        .await
        .into_iter()
        .map(|(p, d)| {
            // `exact-end` when the sync is at the partition's last record.
            assert!(d.method.starts_with("exact"), "{d:?}");
            (p, d.downstream_offset.unwrap())
        })
        .collect();
    let from_syncs: BTreeMap<i32, i64> =
        syncs.iter().map(|(p, (_, down))| (*p, down + 1)).collect();
    assert_eq!(
        ours, from_syncs,
        "strait's exact translation against its last syncs"
    );
    let mut mirror = start_mm2(&cfg, "mm2-switch-2");
    let line = wait_for_line(mirror.log(), Duration::from_secs(120), |l| {
        l.contains("previously uncommitted partitions")
    })
    .await;
    assert!(
        line.contains("Starting with 0 previously uncommitted partitions"),
        "{line}"
    );
    // MM2's checkpoint connector, reading strait's offset syncs, checkpoints `app` where strait
    // translates it.
    until_mm2_translates(
        west,
        Duration::from_secs(60),
        |m| *m == ours,
        || {
            format!(
                "strait translates app to {ours:?}; {}",
                log_tail(mirror.log(), 20)
            )
        },
    )
    .await;
    pause.store(false, Ordering::SeqCst);

    // 4. Traffic stops; every record arrived, duplicates only from what was in flight.
    let more = written.load(Ordering::SeqCst) + 600;
    while written.load(Ordering::SeqCst) < more {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let total = tokio::task::spawn_blocking(move || producer.join().unwrap())
        .await
        .unwrap();
    wait_for_count(
        west,
        "us-east.orders",
        3,
        total as i64,
        Duration::from_secs(120),
    )
    .await;
    assert!(
        mirror.terminate(Duration::from_secs(60)),
        "{}",
        log_tail(mirror.log(), 30)
    );
    let copies = record_count(west, "us-east.orders", 3).await;
    let records = read_all(west, "us-east.orders", 3, copies as usize).await;
    let mut seen = vec![0u32; total];
    for r in &records {
        let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).to_string();
        let i: usize = v.strip_prefix("seq:").unwrap().parse().unwrap();
        seen[i] += 1;
    }
    let missing: Vec<usize> = (0..total).filter(|i| seen[*i] == 0).collect();
    assert!(
        missing.is_empty(),
        "{} of {total} records missing, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let duplicates = records.len() - total;
    eprintln!(
        "{total} records written, {} copies, {duplicates} duplicates across two switches",
        records.len()
    );
    // Both switches were graceful: at most what MM2 had polled and not yet committed (its source
    // consumer's max.poll.records, 500) is copied twice; a re-copy of the topic would be thousands.
    assert!(duplicates <= 500, "{duplicates} duplicates of {total}");
}
