//! Exactly-once replication (issue 18) against Apache Kafka: while a producer writes numbered
//! records, `strait run` processes are killed with SIGKILL, added and stopped (rebalances), or
//! cut off from the target; a `read_committed` reader of the remote topic then finds every
//! number exactly once. On the Tansu sandbox, which has no transactions, `strait run` stops at
//! once with one sentence naming the cluster.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use super::common::*;
use strait_sandbox::Cluster;

const EXACTLY_ONCE: &str = "us-east->us-west.exactly.once.support = required\n\
                            refresh.topics.interval.seconds = 2\n\
                            emit.checkpoints.interval.seconds = 1";

/// us-east and us-west on Apache Kafka with an exactly-once flow between them; `None` (said on
/// stderr) when Apache Kafka tests are turned off.
async fn kafka_regions() -> Option<Regions> {
    if !kafka_enabled() {
        return None;
    }
    Some(Regions::start_on(Engine::Kafka, EXACTLY_ONCE).await)
}

/// Writes `v:0`, `v:1`, ... to `orders` (3 partitions) on `c` at about `rate` a second until
/// `n` are written and acknowledged; how many so far in `written`.
struct Writer {
    done: tokio::task::JoinHandle<()>,
    written: Arc<AtomicUsize>,
}

fn write_numbered(c: &Cluster, n: usize, rate: usize) -> Writer {
    let ep = endpoint(c);
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let done = tokio::task::spawn_blocking(move || {
        let p: ThreadedProducer<DefaultProducerContext> = ep.producer_config().create().unwrap();
        let started = Instant::now();
        for i in 0..n {
            // Paced: record i goes out at i / rate seconds.
            let due = Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
            let v = format!("v:{i}");
            let mut rec = BaseRecord::to("orders")
                .key("k")
                .payload(&v)
                .partition(i as i32 % 3);
            while let Err((_, r)) = p.send(rec) {
                rec = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            counter.store(i + 1, Ordering::Relaxed);
        }
        p.flush(Duration::from_secs(60)).expect("flush");
    });
    Writer { done, written }
}

/// What a `read_committed` reader finds in `us-east.orders` on `west`: numbers missing, and
/// numbers found more than once (with how often).
async fn check_once(west: &Cluster, n: usize) -> (Vec<usize>, BTreeMap<usize, usize>) {
    let reads = read_all(west, "us-east.orders", 3, n).await;
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for r in &reads {
        let v = String::from_utf8(r.value.clone().unwrap_or_default()).unwrap();
        let i: usize = v
            .strip_prefix("v:")
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("a record not written by the test: {v:?}"));
        *seen.entry(i).or_default() += 1;
    }
    let missing = (0..n).filter(|i| !seen.contains_key(i)).collect();
    let twice = seen.into_iter().filter(|(_, c)| *c > 1).collect();
    (missing, twice)
}

fn assert_once(n: usize, (missing, twice): (Vec<usize>, BTreeMap<usize, usize>)) {
    assert!(
        missing.is_empty() && twice.is_empty(),
        "of {n} records, {} missing (first {:?}) and {} copied more than once (first {:?})",
        missing.len(),
        &missing[..missing.len().min(10)],
        twice.len(),
        twice.iter().take(10).collect::<Vec<_>>()
    );
}

/// Wait until the writer is done, with `run` copying meanwhile.
async fn written(w: Writer) {
    tokio::time::timeout(Duration::from_secs(120), w.done)
        .await
        .expect("the writer finished in time")
        .unwrap();
}

/// The first test: SIGKILL in a loop. Each process is killed mid-transaction, at a
/// different point of its life; the next resumes from the positions committed on the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_in_a_loop_loses_and_duplicates_nothing() {
    let Some(regions) = kafka_regions().await else {
        return;
    };
    let (east, west, cfg) = (regions.east(), regions.west(), regions.config.clone());
    // At 250 a second for 48 s; each process lives long enough to be given partitions (a killed
    // member holds them until 10 s of silence) and is killed at a different point.
    let n = 12_000;
    let w = write_numbered(east, n, 250);
    for (i, alive) in [6000u64, 14_000, 12_500, 13_000].into_iter().enumerate() {
        let log = regions.dir.path().join(format!("run-{i}.log"));
        let _show = ShowOnPanic(log.clone());
        let mut run = spawn_run_logged(&cfg, &log);
        tokio::time::sleep(Duration::from_millis(alive)).await;
        signal(&run, "-KILL");
        run.wait().unwrap();
    }
    let log = regions.dir.path().join("run-last.log");
    let _show = ShowOnPanic(log.clone());
    let _run = spawn_run_logged(&cfg, &log);
    let written_so_far = w.written.load(Ordering::Relaxed);
    assert!(
        written_so_far < n,
        "the writer finished before the kills ended ({written_so_far}): they tested nothing"
    );
    written(w).await;
    assert_once(n, check_once(west, n).await);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("exactly once"), "{}", log_tail(&log, 20));

    // Translation points at committed records only: a group's position on us-east, translated
    // through the offset index (written in the same transactions), is the same record on
    // us-west, past the aborted copies and the transaction markers between.
    let at = [(0, 1_000), (1, 2_345), (2, 3_999)];
    let offsets: Vec<(&str, i32, i64)> = at.iter().map(|(p, o)| ("orders", *p, *o)).collect();
    commit_group(east, "app", &offsets).await;
    let report = super::checkpoints::translate_json(&cfg, "app", &[]).await;
    for (p, o) in at {
        let t = report
            .translation
            .partitions
            .iter()
            .find(|t| t.partition == p)
            .unwrap_or_else(|| panic!("partition {p} not translated: {report:?}"));
        assert_eq!(t.method, "exact", "{t:?}");
        let d = t.downstream_offset.expect("a translation");
        let upstream = first_at(east, "orders", p, o).await;
        let downstream = first_at(west, "us-east.orders", p, d).await;
        assert_eq!(
            upstream, downstream,
            "orders-{p}@{o} translates to {d}, which holds another record"
        );
    }
}

/// The value of the first committed record at or after `offset` of `topic`-`partition` on `c`.
async fn first_at(c: &Cluster, topic: &str, partition: i32, offset: i64) -> Option<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let ep = endpoint(c);
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ep.consumer_config("strait-test-reader").create().unwrap();
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition_offset(&topic, partition, rdkafka::Offset::Offset(offset))
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                return m.payload().map(|v| String::from_utf8_lossy(v).into_owned());
            }
        }
        None
    })
    .await
    .unwrap()
}

/// Two processes, then three, then one stopped and one killed: every rebalance ends the open
/// transactions of the partitions that move, and a process evicted mid-transaction cannot
/// commit it (the group on the target fences it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebalances_between_two_and_three_processes_copy_each_record_once() {
    let Some(regions) = kafka_regions().await else {
        return;
    };
    let (east, west, cfg) = (regions.east(), regions.west(), regions.config.clone());
    let n = 12_000;
    let w = write_numbered(east, n, 250);
    let logs: Vec<_> = (0..3)
        .map(|i| regions.dir.path().join(format!("run-{i}.log")))
        .collect();
    let _show: Vec<_> = logs.iter().map(|l| ShowOnPanic(l.clone())).collect();
    // Each step waits for the group to have given the processes their share, however long a
    // loaded machine takes to start them.
    let mut a = spawn_run_logged(&cfg, &logs[0]);
    let mut b = spawn_run_logged(&cfg, &logs[1]);
    assigned(&logs[0]).await;
    assigned(&logs[1]).await;
    let c = spawn_run_logged(&cfg, &logs[2]);
    assigned(&logs[2]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, _) = signal_and_wait(&mut a, "-TERM", Duration::from_secs(15)).await;
    assert!(status.success(), "{}", log_tail(&logs[0], 20));
    tokio::time::sleep(Duration::from_secs(2)).await;
    signal(&b, "-KILL");
    b.wait().unwrap();
    assert!(
        w.written.load(Ordering::Relaxed) < n,
        "the writer finished before the rebalances ended: they tested nothing"
    );
    written(w).await;
    assert_once(n, check_once(west, n).await);
    drop(c);
}

/// Wait until the `strait run` logging to `log` was given partitions by the group on the target.
async fn assigned(log: &std::path::Path) {
    let t = Instant::now();
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("partitions assigned (exactly once)")
    {
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "no partitions assigned in 90 s: {}",
            log_tail(log, 20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A backlog (everything written before `strait run` starts) is copied in transactions of many
/// records: each partition's markers (one a transaction that wrote to it) are few beside its
/// records. A transaction's end once took longer than the interval it ends, so the next one
/// ended after a single record: the benchmark's 514 MB went at 4 KB/s, one record and one
/// marker at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backlog_is_copied_in_transactions_of_many_records() {
    if !kafka_enabled() {
        return;
    }
    // As the benchmark's: the index records of a transaction's end wait out the linger.
    let regions = Regions::start_on(
        Engine::Kafka,
        &format!("{EXACTLY_ONCE}\nus-west.producer.linger.ms = 50"),
    )
    .await;
    let (east, west, cfg) = (regions.east(), regions.west(), regions.config.clone());
    let n = 30_000;
    written(write_numbered(east, n, 1_000_000)).await;
    let log = regions.dir.path().join("run.log");
    let _show = ShowOnPanic(log.clone());
    let _run = spawn_run_logged(&cfg, &log);
    assert_once(n, check_once(west, n).await);
    let a = admin(west);
    for p in 0..3 {
        let (lo, hi) = a.watermarks("us-east.orders", p).await.expect("watermarks");
        let markers = hi - lo - (n as i64 / 3);
        assert!(
            markers * 50 <= n as i64 / 3,
            "partition {p}: {} records copied in {markers} transactions (fewer than 50 a transaction)",
            n / 3
        );
    }
}

/// The target cut for longer than a transaction may last (10 s), then healed: the open
/// transaction fails and is aborted once the target answers, and the partitions start again
/// from their committed positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_target_cut_and_healed_loses_and_duplicates_nothing() {
    let Some(regions) = kafka_regions().await else {
        return;
    };
    let (east, west, cfg) = (regions.east(), regions.west(), regions.config.clone());
    let n = 10_000;
    let log = regions.dir.path().join("run.log");
    let _show = ShowOnPanic(log.clone());
    let _run = spawn_run_logged(&cfg, &log);
    let w = write_numbered(east, n, 500);
    tokio::time::sleep(Duration::from_secs(4)).await;
    west.cut();
    tokio::time::sleep(Duration::from_secs(13)).await;
    west.heal();
    assert!(
        w.written.load(Ordering::Relaxed) < n,
        "the writer finished while the target was away: the heal tested nothing"
    );
    written(w).await;
    assert_once(n, check_once(west, n).await);
}

/// The Tansu sandbox has no transactions: `strait run` says so in one sentence naming the
/// cluster, exits non-zero, and writes no record to the remote topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_without_transactions_is_one_clear_error_at_start() {
    let regions = Regions::start(EXACTLY_ONCE).await;
    let (east, west, cfg) = (regions.east(), regions.west(), regions.config.clone());
    produce_range(east, "orders", 3, 0..30, "v", None).await;
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        strait()
            .arg("run")
            .arg(&cfg)
            .stdout(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&format!("cluster us-west ({})", west.bootstrap_servers()))
            && stderr.contains("cannot run exactly-once replication")
            && stderr.contains("transactions"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let copied = record_count(west, "us-east.orders", 3).await;
    assert_eq!(copied, 0, "records were written before the check");
    // `strait check` says which flows are exactly once.
    let check = strait().arg("check").arg(&regions.config).output().unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        text.contains("delivery         exactly once (`us-east->us-west.exactly.once.support`"),
        "{text}"
    );
}
