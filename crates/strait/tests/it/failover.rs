//! `strait failover` against sandbox clusters with `strait run` replicating:
//! - planned, under live traffic that the test stops when the command asks: nothing lost, the
//!   group resumes on us-west with nothing read twice, and the report says so;
//! - unplanned (us-east cut): the report's RPO is exactly what never reached us-west, and the
//!   group resumes there from its last checkpoint;
//! - `--dry-run` changes nothing on either cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use strait::drill::traffic::{self, ClientThread, ConsumerSpec, DrillLog, ProducerSpec};
use strait::drill::Side;
use strait::failover::clients::ClientSettings;
use strait::failover::report::{FailoverReport, GroupAction, GroupMove, Mode, Procedure};
use strait::monitor::Status;
use strait_sandbox::Cluster;

/// The test's traffic is the drill's (`strait::drill::traffic`): sequence-numbered records
/// marked with this id, and every acknowledgement and delivery logged.
const TRAFFIC: &str = "failover-test";

/// Writes `0, 1, 2, ...` (the value is the sequence number) to `orders` on `c`, 200 a second,
/// record `n` to partition `n % 3`, logging each acknowledgement in `log`.
fn seq_producer(c: &Cluster, log: &Arc<DrillLog>) -> ClientThread {
    let spec = ProducerSpec {
        endpoint: endpoint(c),
        topic: "orders".into(),
        partitions: 3,
        rate: 200,
        side: Side::Primary,
        drill_id: TRAFFIC.into(),
    };
    traffic::start_producer(spec, log.clone()).unwrap()
}

/// A member of `group` reading `topics` on `c` from its committed offsets, committing what it
/// processed every 200 ms and once more when stopped, logging each record it receives in `log`
/// as read on `side`.
fn seq_consumer(
    c: &Cluster,
    group: &str,
    topics: &[&str],
    side: Side,
    log: &Arc<DrillLog>,
) -> ClientThread {
    let spec = ConsumerSpec {
        endpoint: endpoint(c),
        group: group.into(),
        topics: topics.iter().map(|t| t.to_string()).collect(),
        side,
        drill_id: TRAFFIC.into(),
    };
    traffic::start_consumer(spec, log.clone()).unwrap()
}

/// The sequence numbers received on `side`, in order, duplicates included.
fn received(log: &DrillLog, side: Side) -> Vec<u64> {
    let (_, deliveries) = log.snapshot();
    deliveries
        .iter()
        .filter(|d| d.side == side)
        .map(|d| d.seq)
        .collect()
}

/// Everything `group` reads on `c` from `topics`, from its committed offsets, until nothing new
/// arrives for 5 s (logged in `log` as read on the secondary).
async fn resume(c: &Cluster, group: &str, topics: &[&str], log: &Arc<DrillLog>) -> Vec<u64> {
    let consumer = seq_consumer(c, group, topics, Side::Secondary, log);
    let mut last = (log.consumed(), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let n = log.consumed();
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    assert!(
        consumer.join(Duration::from_secs(30)).await,
        "the consumer on {} did not stop",
        c.name()
    );
    received(log, Side::Secondary)
}

/// `strait failover ARGS --json`: exit code and report, with stderr lines passed to `on_line`
/// as they come.
fn failover_child(
    cfg: &std::path::Path,
    args: &[&str],
) -> (
    Running,
    std::sync::mpsc::Receiver<String>,
    std::thread::JoinHandle<String>,
) {
    let mut child = strait()
        .arg("failover")
        .arg(cfg)
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("[failover] {line}");
            let _ = tx.send(line);
        }
    });
    let mut out = child.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    (Running(child), rx, stdout)
}

async fn finish(
    mut child: Running,
    stdout: std::thread::JoinHandle<String>,
) -> (i32, FailoverReport) {
    let code = tokio::task::spawn_blocking(move || {
        let st = child.wait().unwrap();
        st.code().unwrap_or(-1)
    })
    .await
    .unwrap();
    let out = tokio::task::spawn_blocking(move || stdout.join().unwrap())
        .await
        .unwrap();
    (code, typed("failover --json", &out))
}

fn group<'a>(doc: &'a FailoverReport, name: &str) -> &'a GroupMove {
    doc.groups
        .iter()
        .find(|g| g.group == name)
        .unwrap_or_else(|| panic!("no group {name} in {doc:?}"))
}

on_both_engines! {
async fn planned_failover_under_live_traffic_loses_and_repeats_nothing(engine) {
    let regions = Regions::start_on(engine,
        "refresh.topics.interval.seconds = 2\nemit.checkpoints.interval.seconds = 1",
    )
    .await;
    let (east, west, cfg) = (regions.east(), regions.west(), regions.config.clone());
    let _run = spawn_run(&cfg);

    // Live traffic on us-east: a producer and the group `app`.
    let log = Arc::new(DrillLog::default());
    let producer = seq_producer(east, &log);
    let consumer = seq_consumer(east, "app", &["orders"], Side::Primary, &log);
    wait_for_count(west, "us-east.orders", 3, 300, Duration::from_secs(60)).await;
    // The group must have read (and so will commit) something before the failover lists the
    // groups: a member still joining when it is stopped leaves the group with no offsets, and
    // nothing to move (seen under a loaded machine).
    let joined = Instant::now();
    while received(&log, Side::Primary).len() < 100 {
        assert!(
            joined.elapsed() < Duration::from_secs(60),
            "the group app read nothing on us-east in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let started = Instant::now();
    let (child, lines, stdout) = failover_child(
        &cfg,
        &["--from", "us-east", "--to", "us-west", "--max-wait", "90s"],
    );
    // The command asks for the producers to stop; the test obliges, after stopping the
    // consumer part-way so that the group has something left to read on us-west.
    let asked = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(l) = lines.recv_timeout(Duration::from_millis(200)) {
                if l.contains("stop the producers") {
                    return Some(l);
                }
            }
        }
        None
    })
    .await
    .unwrap();
    assert!(
        asked.is_some(),
        "failover never asked for producers to stop"
    );
    assert!(asked.unwrap().contains("orders["));
    assert!(
        consumer.join(Duration::from_secs(30)).await,
        "the consumer on us-east did not stop"
    );
    let consumed_east = received(&log, Side::Primary);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Stopped properly, the producer flushes: every record it wrote is acknowledged.
    assert!(
        producer.join(Duration::from_secs(30)).await,
        "the producer did not stop"
    );
    let produced = log.produced();
    assert_eq!(log.acked(), produced, "records written but not acknowledged");

    let (code, doc) = finish(child, stdout).await;
    let took = started.elapsed();
    assert_eq!(code, 0, "{doc:?}");
    assert_eq!(doc.mode, Mode::Planned, "{doc:?}");
    assert_eq!(doc.rpo.records, Some(0), "{doc:?}");
    assert!(doc.rpo.exact, "{doc:?}");
    let app = group(&doc, "app");
    assert_eq!(app.action, GroupAction::Committed, "{doc:?}");
    assert_eq!(app.reread, Some(0), "{doc:?}");
    let active = doc.active_region.as_ref().expect("an active region");
    assert_eq!(active.active, "us-west", "{doc:?}");
    assert_eq!(active.version, 1, "{doc:?}");
    assert_eq!(doc.topics_to_consume, ["us-east.orders", "orders"], "{doc:?}");
    let rto = doc.rto_ms;
    assert!(rto > 0 && rto as u128 <= took.as_millis(), "{doc:?}");
    let names: Vec<&str> = doc.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["probe", "quiesce", "catch-up", "translate", "switch"],
        "{doc:?}"
    );

    // The offsets committed on us-west are the ones the report shows.
    let on_west = committed(west, "app", "us-east.orders", 3).await;
    for p in &app.partitions {
        assert_eq!(Some(&p.offset.unwrap()), on_west.get(&p.partition));
    }

    // The group resumes on us-west: every record exactly once across both regions.
    let consumed_west = resume(west, "app", &["us-east.orders"], &log).await;
    let east_set: BTreeSet<u64> = consumed_east.iter().copied().collect();
    let west_set: BTreeSet<u64> = consumed_west.iter().copied().collect();
    assert_eq!(east_set.len(), consumed_east.len(), "read twice on us-east");
    assert_eq!(west_set.len(), consumed_west.len(), "read twice on us-west");
    let again: Vec<_> = east_set.intersection(&west_set).collect();
    assert!(again.is_empty(), "re-delivered on us-west: {again:?}");
    let all: BTreeSet<u64> = east_set.union(&west_set).copied().collect();
    let expected: BTreeSet<u64> = (0..produced).collect();
    let lost: Vec<_> = expected.difference(&all).take(10).collect();
    assert!(lost.is_empty(), "lost: {lost:?} (of {produced})");
    assert!(
        !consumed_west.is_empty(),
        "the group had something left to read on us-west"
    );

    // `strait status` reads the switch from the clusters.
    let out = strait()
        .arg("status")
        .arg(&cfg)
        .args(["--json", "--no-groups"])
        .output()
        .unwrap();
    let status: Status = typed("status --json", &String::from_utf8_lossy(&out.stdout));
    let active = &status.active_regions[0];
    assert_eq!(active.active, "us-west", "{status:?}");
    assert_eq!(active.version, 1, "{status:?}");
}
}

on_both_engines! {
async fn unplanned_failover_reports_exactly_what_never_left(engine) {
    // `late` is created after strait has looked for topics, and it looks again only hourly:
    // whatever is written to it stays on us-east, as records of a lagging flow do.
    let regions = Regions::start_on(engine,
        "us-east->us-west.topics = orders, late\n\
         refresh.topics.interval.seconds = 3600\n\
         refresh.groups.interval.seconds = 1\n\
         emit.checkpoints.interval.seconds = 1",
    )
    .await;
    let (east, west, cfg) = (regions.east(), regions.west(), regions.config.clone());
    let _run = spawn_run(&cfg);
    produce_range(east, "orders", 3, 0..900, "v", None).await;
    wait_for_count(west, "us-east.orders", 3, 900, Duration::from_secs(60)).await;
    commit_group(
        east,
        "app",
        &[("orders", 0, 200), ("orders", 1, 250), ("orders", 2, 100)],
    )
    .await;
    create_topic(east, "late", 2).await;
    produce_range(east, "late", 2, 0..250, "late", None).await;

    // Wait for strait's checkpoint of `app` and for a lag snapshot that has seen `late`.
    let config = strait::config::Config::load(&cfg).unwrap();
    let flow = config.flow("us-east", "us-west").unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let snap = strait::monitor::snapshot::read_latest(&flow, Duration::from_secs(5))
            .await
            .unwrap();
        let late: i64 = snap
            .as_ref()
            .map(|s| {
                s.partitions
                    .iter()
                    .filter(|p| p.topic == "late")
                    .map(|p| p.lag_records)
                    .sum()
            })
            .unwrap_or(0);
        let checkpoints = record_count(west, "us-east.checkpoints.internal", 1).await;
        if late == 250 && checkpoints >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot with `late` ({snap:?}) or no checkpoints ({checkpoints})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    east.cut();
    let started = Instant::now();
    // On Kafka the operator says us-east is down (no wait for it); on Tansu strait finds out.
    let mut args = vec!["--from", "us-east", "--to", "us-west", "--max-wait", "20s"];
    let declared = engine == Engine::Kafka;
    if declared {
        args.push("--source-down");
    }
    let (child, _lines, stdout) = failover_child(&cfg, &args);
    let (code, doc) = finish(child, stdout).await;
    assert_eq!(code, 0, "{doc:?}");
    assert_eq!(doc.mode, Mode::Unplanned, "{doc:?}");
    let probe = &doc.steps[0];
    assert_eq!(probe.name, "probe", "{doc:?}");
    if declared {
        assert!(probe.detail.contains("--source-down"), "{probe:?}");
        assert!(probe.duration_ms < 2_000, "{probe:?}");
    } else {
        assert!(probe.detail.contains("does not answer"), "{probe:?}");
    }
    assert!(!doc.rpo.exact, "{doc:?}");
    assert!(doc.rpo.source.contains("lag snapshot"), "{doc:?}");
    // What never reached us-west, as the test knows it: all of `late`, none of `orders`.
    let on_west = record_count(west, "us-east.orders", 3).await;
    assert_eq!(on_west, 900);
    let lost = 900 + 250 - on_west;
    // The lower bound is exact; the upper bound adds writes at the last measured rate for the
    // time strait could not see (issue 17 tightens it), so it is at least the truth.
    assert_eq!(doc.rpo.records_at_least, Some(lost), "{doc:?}");
    assert!(doc.rpo.records.unwrap() >= lost, "{doc:?}");
    let parts: Vec<&str> = doc.rpo.partitions.iter().map(|p| p.topic.as_str()).collect();
    assert_eq!(parts, ["late", "late"], "{doc:?}");
    assert!(started.elapsed() < Duration::from_secs(40));

    // The group resumes where its checkpoint says, with no gap.
    let app = group(&doc, "app");
    assert_eq!(app.action, GroupAction::Committed, "{doc:?}");
    let resumed = committed(west, "app", "us-east.orders", 3).await;
    assert_eq!(resumed, BTreeMap::from([(0, 200), (1, 250), (2, 100)]));
    assert_eq!(doc.active_region.as_ref().unwrap().active, "us-west");
    assert!(
        doc.warnings
            .iter()
            .any(|w| w.contains("recorded on us-west only")),
        "{doc:?}"
    );
}
}

/// Topics and end offsets of every topic, and `app`'s offsets, on one cluster.
async fn state(
    c: &Cluster,
) -> (
    BTreeMap<(String, i32), i64>,
    BTreeMap<i32, i64>,
    BTreeMap<i32, i64>,
) {
    let admin = admin(c);
    let mut ends = BTreeMap::new();
    for t in admin.topics(None).await.unwrap() {
        for p in 0..t.partitions {
            ends.insert(
                (t.name.clone(), p),
                admin.watermarks(&t.name, p).await.unwrap().1,
            );
        }
    }
    (
        ends,
        committed(c, "app", "orders", 3).await,
        committed(c, "app", "us-east.orders", 3).await,
    )
}

on_both_engines! {
async fn dry_run_changes_nothing(engine) {
    let regions = Regions::start_on(engine,
        "refresh.topics.interval.seconds = 2\nemit.checkpoints.interval.seconds = 1",
    )
    .await;
    let (east, west, cfg) = (regions.east(), regions.west(), regions.config.clone());
    produce_range(east, "orders", 3, 0..600, "v", None).await;
    commit_group(
        east,
        "app",
        &[("orders", 0, 50), ("orders", 1, 60), ("orders", 2, 70)],
    )
    .await;
    let mut run = spawn_run(&cfg);
    wait_for_count(west, "us-east.orders", 3, 600, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Stop strait so that nothing else writes, then leave 90 records unreplicated.
    signal(&run, "-TERM");
    assert!(run.wait().unwrap().success());
    produce_range(east, "orders", 3, 0..90, "x", None).await;

    let before = (state(east).await, state(west).await);
    let (child, _lines, stdout) =
        failover_child(&cfg, &["--from", "us-east", "--to", "us-west", "--dry-run"]);
    let (code, doc) = finish(child, stdout).await;
    let after = (state(east).await, state(west).await);
    assert_eq!(code, 0, "{doc:?}");
    assert_eq!(before, after, "the dry run changed something");
    assert!(!before
        .1
         .0
        .keys()
        .any(|(t, _)| t == "strait-active-region.internal"));
    assert!(doc.dry_run);
    assert_eq!(doc.mode, Mode::Planned);
    // The preview: a switch now leaves the 90 unreplicated records behind, and `app` would
    // resume exactly where it is.
    assert_eq!(doc.rpo.records, Some(90), "{doc:?}");
    let app = group(&doc, "app");
    assert_eq!(app.action, GroupAction::WouldCommit, "{doc:?}");
    assert_eq!(app.reread, Some(0), "{doc:?}");
    let offsets: Vec<Option<i64>> = app.partitions.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, [Some(50), Some(60), Some(70)], "{doc:?}");
    assert_eq!(doc.active_region.as_ref().unwrap().version, 1, "{doc:?}");

    // The table form says PREVIEW.
    let out = strait()
        .arg("failover")
        .arg(&cfg)
        .args(["--from", "us-east", "--to", "us-west", "--dry-run"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PREVIEW"), "{text}");
    assert!(text.contains("RPO if now  90 records"), "{text}");
}
}

#[test]
fn usage_mistakes_are_one_sentence_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = mm2_config(&dir, "127.0.0.1:1", "127.0.0.1:2", "");
    for (args, says) in [
        (
            vec!["--from", "us-west", "--to", "us-east"],
            "replicates nothing from us-west to us-east",
        ),
        (
            vec!["--from", "us-east", "--to", "eu"],
            "\"eu\" is not a cluster",
        ),
        (
            vec!["--from", "us-east", "--to", "us-west", "--max-wait", "soon"],
            "--max-wait \"soon\" is not a duration",
        ),
        (
            vec!["--from", "us-east", "--to", "us-west", "--groups", "("],
            "--groups \"(\" is not a valid regular expression",
        ),
    ] {
        let out = strait()
            .arg("failover")
            .arg(&cfg)
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

/// `strait clients CONFIG --group G --json`: the active region and version it answers.
async fn clients_answer(cfg: &std::path::Path, group: &str) -> (String, u64) {
    let mut cmd = strait();
    cmd.arg("clients")
        .arg(cfg)
        .args(["--group", group, "--json"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let doc: ClientSettings = typed(
        &format!(
            "clients --json (stderr: {})",
            String::from_utf8_lossy(&out.stderr)
        ),
        &String::from_utf8_lossy(&out.stdout),
    );
    (doc.active_region, doc.version)
}

/// Run `strait failback ARGS --json` to the end: exit code and report.
async fn failback(cfg: &std::path::Path, args: &[&str]) -> (i32, FailoverReport) {
    let mut cmd = strait();
    cmd.arg("failback").arg(cfg).args(args).arg("--json");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("[failback] {err}");
    let doc = typed(
        &format!("failback --json (stderr: {err})"),
        &String::from_utf8_lossy(&out.stdout),
    );
    (out.status.code().unwrap_or(-1), doc)
}

on_both_engines! {
async fn failback_returns_outage_writes_and_salvages_what_never_left(engine) {
    let regions = Regions::start_on(engine,
        "refresh.topics.interval.seconds = 2\n\
         refresh.groups.interval.seconds = 1\n\
         emit.checkpoints.interval.seconds = 1",
    )
    .await;
    let (east, west, cfg) = (regions.east(), regions.west(), regions.config.clone());
    // Active-passive us-east -> us-west; `app` reads on us-east.
    let mut run = spawn_run(&cfg);
    produce_range(east, "orders", 3, 0..600, "v", None).await;
    wait_for_count(west, "us-east.orders", 3, 600, Duration::from_secs(60)).await;
    commit_group(
        east,
        "app",
        &[("orders", 0, 100), ("orders", 1, 100), ("orders", 2, 100)],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while record_count(west, "us-east.checkpoints.internal", 1).await < 3 {
        assert!(Instant::now() < deadline, "no checkpoints for app");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Replication stops; 120 more records reach us-east and never leave it; us-east fails.
    signal(&run, "-TERM");
    assert!(run.wait().unwrap().success());
    produce_range(east, "orders", 3, 600..720, "never-left", None).await;
    east.cut();
    let (child, _lines, stdout) = failover_child(&cfg, &["--from", "us-east", "--to", "us-west"]);
    let (code, doc) = finish(child, stdout).await;
    assert_eq!(code, 0, "{doc:?}");
    assert_eq!(doc.mode, Mode::Unplanned);

    // Clients asking where `app` should connect are sent to us-west.
    let (region, version) = clients_answer(&cfg, "app").await;
    assert_eq!((region.as_str(), version), ("us-west", 1));

    // The outage on us-west: new writes to `orders` there, and `app` moves on.
    create_topic(west, "orders", 3).await;
    produce_range(west, "orders", 3, 0..200, "west", None).await;
    commit_group(
        west,
        "app",
        &[
            ("us-east.orders", 0, 150),
            ("us-east.orders", 1, 150),
            ("us-east.orders", 2, 150),
            ("orders", 0, 20),
            ("orders", 1, 20),
            ("orders", 2, 20),
        ],
    )
    .await;

    // us-east is back. Failback without --salvage: lists what never left.
    east.heal();
    let (code, doc) = failback(&cfg, &["--from", "us-west", "--to", "us-east"]).await;
    assert_eq!(code, 0, "{doc:?}");
    assert_eq!(doc.kind, Procedure::Failback);
    let active = doc.active_region.as_ref().unwrap();
    assert_eq!(active.active, "us-east", "{doc:?}");
    assert_eq!(active.version, 2, "{doc:?}");
    let salvage = doc.salvage.as_ref().expect("a salvage section");
    assert_eq!(salvage.records, 120, "{doc:?}");
    assert!(!salvage.copied, "{doc:?}");
    let ranges: Vec<(&str, i32, i64, i64)> = salvage
        .ranges
        .iter()
        .map(|r| (r.topic.as_str(), r.partition, r.from, r.to))
        .collect();
    assert_eq!(
        ranges,
        [0, 1, 2].map(|p| ("orders", p, 200, 240)),
        "{doc:?}"
    );
    // What was written on us-west during the outage is on us-east.
    assert_eq!(record_count(east, "us-west.orders", 3).await, 200);
    assert_eq!(record_count(west, "us-east.orders", 3).await, 600);
    // `app` resumes on us-east where it was on us-west, on both topics.
    assert_eq!(
        committed(east, "app", "orders", 3).await,
        BTreeMap::from([(0, 150), (1, 150), (2, 150)])
    );
    assert_eq!(
        committed(east, "app", "us-west.orders", 3).await,
        BTreeMap::from([(0, 20), (1, 20), (2, 20)])
    );
    let (region, version) = clients_answer(&cfg, "app").await;
    assert_eq!((region.as_str(), version), ("us-east", 2));
    let topics = &doc.topics_to_consume;
    assert!(
        topics.iter().any(|t| t == "us-west.orders") && topics.iter().any(|t| t == "orders"),
        "{doc:?}"
    );

    // Again with --salvage: the 120 records reach us-west.
    let (code, doc) = failback(&cfg, &["--from", "us-west", "--to", "us-east", "--salvage"]).await;
    assert_eq!(code, 0, "{doc:?}");
    let salvage = doc.salvage.as_ref().expect("a salvage section");
    assert!(salvage.copied, "{doc:?}");
    assert_eq!(salvage.copied_records, 120, "{doc:?}");
    assert_eq!(record_count(west, "us-east.orders", 3).await, 720);
    let on_west = read_all(west, "us-east.orders", 3, 720).await;
    let salvaged = on_west
        .iter()
        .filter(|r| {
            r.value
                .as_deref()
                .is_some_and(|v| v.starts_with(b"never-left"))
        })
        .count();
    assert_eq!(salvaged, 120);
}
}

on_both_engines! {
/// Issue 17's loop on each engine: the replication service copies 200 records/s, us-east is cut,
/// its probes call it down within seconds, the unplanned failover runs without asking us-east
/// again, and its RPO range holds the records us-east took and us-west never got.
async fn a_cut_region_is_found_down_in_seconds_and_failed_over_at_once(engine) {
    use rdkafka::producer::FutureRecord;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let _heavy = heavy().await;
    let regions = Regions::start_on(engine, "").await;
    let (east, west) = (regions.east(), regions.west());
    let config = strait::config::Config::load(&regions.config).unwrap();
    let service = strait::service::Service::start(&config, &[], None);

    // 200 records/s on us-east: how many were sent, and how many acknowledged.
    let (sent, acked, stop) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let traffic = tokio::spawn({
        let (p, sent, acked, stop) = (producer(east), sent.clone(), acked.clone(), stop.clone());
        async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                for _ in 0..10 {
                    let key = i.to_string();
                    let delivery = p.send_result(FutureRecord::to("orders").key(&key).payload("v"));
                    i += 1;
                    sent.fetch_add(1, Ordering::SeqCst);
                    if let Ok(delivery) = delivery {
                        let acked = acked.clone();
                        tokio::spawn(async move {
                            if let Ok(Ok(_)) = delivery.await {
                                acked.fetch_add(1, Ordering::SeqCst);
                            }
                        });
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    wait_for_count(west, "us-east.orders", 3, 1000, Duration::from_secs(60)).await;

    let cut_at = Instant::now();
    stop.store(true, Ordering::SeqCst);
    east.cut();
    let _ = traffic.await;
    let watch = service.reach_of("us-east").expect("us-east is probed");
    let reason = loop {
        let seen = watch.lock().unwrap().clone();
        if seen.reach == strait::reach::Reach::Down {
            break seen.down_reason();
        }
        assert!(cut_at.elapsed() < Duration::from_secs(20), "never down: {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let detection = cut_at.elapsed();

    let mut opts = strait::failover::Options::new("us-east", "us-west");
    opts.source_down = Some(reason);
    opts.max_wait = Duration::from_secs(30);
    let started = Instant::now();
    let report = strait::failover::failover(&config, &opts, &|_| {})
        .await
        .expect("failover");
    let took = started.elapsed();
    let on_west = record_count(west, "us-east.orders", 3).await as u64;
    // Taken by us-east and never copied: at least the acknowledged ones missing on us-west, at
    // most every one sent.
    let (sent, acked) = (sent.load(Ordering::SeqCst), acked.load(Ordering::SeqCst));
    let (lost_least, lost_most) = (acked.saturating_sub(on_west), sent.saturating_sub(on_west));
    eprintln!(
        "{engine:?}: detection {} ms, failover {} ms, lost {lost_least}..{lost_most}, strait's estimate {:?}..{:?}",
        detection.as_millis(),
        took.as_millis(),
        report.rpo.records_at_least,
        report.rpo.records
    );
    assert_eq!(report.mode, Mode::Unplanned, "{report:?}");
    assert!(
        (Duration::from_millis(2_900)..Duration::from_secs(8)).contains(&detection),
        "detection {detection:?}"
    );
    assert!(took < Duration::from_secs(5), "failover {took:?}: {report:?}");
    assert!(report.rpo.source.contains("lag snapshot"), "{report:?}");
    let (least, most) = (
        report.rpo.records_at_least.unwrap() as u64,
        report.rpo.records.unwrap() as u64,
    );
    assert!(least <= lost_most && most >= lost_least, "{least}..{most} against {lost_least}..{lost_most} lost: {report:?}");
    let _ = service.shutdown(Duration::from_secs(2)).await;
}
}

on_both_engines! {
/// A planned failover once the producers have stopped: quiesce (1 s of no writes), catch-up,
/// translate, switch, timed by the report's steps, with the replication service running.
async fn a_planned_failover_is_done_in_seconds_once_writes_stop(engine) {
    let _heavy = heavy().await;
    let regions = Regions::start_on(engine, "").await;
    let (east, west) = (regions.east(), regions.west());
    let config = strait::config::Config::load(&regions.config).unwrap();
    let service = strait::service::Service::start(&config, &[], None);
    produce_range(east, "orders", 3, 0..600, "v", None).await;
    commit_group(
        east,
        "app",
        &[("orders", 0, 150), ("orders", 1, 120), ("orders", 2, 90)],
    )
    .await;
    wait_for_count(west, "us-east.orders", 3, 600, Duration::from_secs(60)).await;

    let opts = strait::failover::Options::new("us-east", "us-west");
    let started = Instant::now();
    let report = strait::failover::failover(&config, &opts, &|_| {})
        .await
        .expect("failover");
    let took = started.elapsed();
    let steps: Vec<String> = report
        .steps
        .iter()
        .map(|s| format!("{} {} ms", s.name, s.duration_ms))
        .collect();
    eprintln!("{engine:?}: planned failover {} ms: {}", took.as_millis(), steps.join(", "));
    assert_eq!(report.mode, Mode::Planned, "{report:?}");
    assert_eq!(report.rpo.records, Some(0), "{report:?}");
    assert_eq!(
        report.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["probe", "quiesce", "catch-up", "translate", "switch"],
        "{report:?}"
    );
    assert_eq!(group(&report, "app").action, GroupAction::Committed, "{report:?}");
    assert!(took < Duration::from_secs(6), "planned failover {took:?}: {steps:?}");
    let _ = service.shutdown(Duration::from_secs(2)).await;
}
}
