//! `strait drill` as a scheduled drill runs it: the binary, its exit code and its report.
//! - `--sandbox`: two sandbox regions, a real failure (the fault proxy), the full unplanned
//!   failover; the report's RTO and RPO agree with its own sequence check.
//! - a budget it cannot meet (`--rto-budget 0ms`) makes it exit non-zero and say why.
//! - CONFIG mode against clusters with production data: the drill replicates, moves and deletes
//!   only its own topics and groups.
//! - usage mistakes are one sentence and exit 2.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::common::*;
use strait::drill::{BudgetUnit, DrillReport, EstimateCheck, MarkKind, SeqRange, Side};
use strait_sandbox::Sandbox;

/// Run `strait drill ARGS`, echoing its stderr for a failing test's log.
async fn drill(args: Vec<String>) -> Output {
    let out = tokio::task::spawn_blocking(move || strait().arg("drill").args(&args).output())
        .await
        .unwrap()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    out
}

fn report(dir: &Path) -> DrillReport {
    for f in ["report.json", "report.md", "report.html"] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
    let text = std::fs::read_to_string(dir.join("report.json")).unwrap();
    typed("report.json", &text)
}

/// Sequence numbers of a list of ranges.
fn expand(ranges: &[SeqRange]) -> Vec<u64> {
    ranges.iter().flat_map(|r| r.first..=r.last).collect()
}

/// A time the drill must have reached.
fn at(t: Option<i64>, what: &str) -> i64 {
    t.unwrap_or_else(|| panic!("no {what}"))
}

/// What every finished drill report must agree with itself on.
fn assert_consistent(r: &DrillReport) {
    let s = &r.sequence;
    let t = &r.times;
    let d = &r.durations;
    // RTO: failure to the first record consumed on the secondary, as the sequence check saw it.
    let failure = at(t.failure_at_ms, "failure");
    let first = s
        .first_on_secondary
        .unwrap_or_else(|| panic!("nothing consumed on the secondary: {r:?}"))
        .received_at_ms;
    assert_eq!(t.first_consumed_on_secondary_at_ms, Some(first), "{r:?}");
    let rto = at(d.rto_ms, "RTO");
    assert_eq!(rto, first - failure, "{r:?}");
    let detection = at(d.detection_ms, "detection");
    assert!(detection > 0, "detection {detection}");
    assert!(
        rto > detection,
        "RTO {rto} ms is not longer than detection {detection} ms"
    );
    assert!(at(d.failover_ms, "failover duration") > 0);
    assert!(
        at(t.failover_done_at_ms, "failover done") <= first,
        "consumed before the failover was done"
    );

    // RPO in records: the lost records, counted, listed and never consumed.
    let lost = expand(&s.lost);
    assert_eq!(r.rpo_records, s.lost_count, "{r:?}");
    assert_eq!(lost.len() as u64, s.lost_count, "{r:?}");
    assert_eq!(
        s.lost_acked_on_secondary, 0,
        "lost after the failover: {r:?}"
    );
    // RPO in time: measured back from the failure to the oldest lost record.
    match &s.oldest_lost {
        Some(o) => {
            assert!(lost.contains(&o.seq));
            assert_eq!(o.side, Side::Primary);
            let ms = (failure - o.record_ts_ms).max(0);
            assert!(((r.rpo_seconds * 1000.0) as i64 - ms).abs() <= 1);
        }
        None => {
            assert!(lost.is_empty());
            assert_eq!(r.rpo_seconds, 0.0);
        }
    }
    // Re-deliveries: counted as listed.
    let redelivered = expand(&s.redelivered);
    assert_eq!(redelivered.len() as u64, s.redelivered_records, "{r:?}");
    assert!(s.redeliveries >= s.redelivered_records);
    // Every gap is lost data or records never acknowledged; lost records are gaps or the tail.
    let gaps: BTreeSet<u64> = expand(&s.gaps).into_iter().collect();
    let unacked_gaps = gaps.iter().filter(|g| !lost.contains(g)).count() as u64;
    assert!(unacked_gaps <= r.counts.produced - s.acked);
    let tail = lost.iter().filter(|l| !gaps.contains(l)).count() as u64;
    assert_eq!(tail, s.lost_at_tail, "{r:?}");

    // Traffic on both sides, and the timeline of it.
    assert!(r.counts.consumed_on_primary > 0, "{r:?}");
    assert!(r.counts.consumed_on_secondary > 0, "{r:?}");
    assert!(s.acked <= r.counts.produced);
    let timeline = &r.timeline;
    assert!(timeline.len() > 10, "{} samples", timeline.len());
    let last = timeline.last().unwrap();
    assert!(last.acked_total > 0 && last.consumed_total > 0);
    let kinds: Vec<MarkKind> = r.marks.iter().map(|m| m.kind).collect();
    for k in [
        MarkKind::Failure,
        MarkKind::Detected,
        MarkKind::FailoverStarted,
        MarkKind::FailoverDone,
        MarkKind::FirstConsumedOnSecondary,
    ] {
        assert!(kinds.contains(&k), "no {k:?} mark: {kinds:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_drill_reports_rto_and_rpo_that_agree_with_its_sequence_check() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("report");
    let out = drill(vec![
        "--sandbox".into(),
        "--duration".into(),
        "30s".into(),
        "--fail-after".into(),
        "10s".into(),
        "--report".into(),
        out_dir.display().to_string(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("DR drill PASSED: us-east -> us-west"),
        "{stdout}"
    );
    assert!(stdout.contains("report.html"), "{stdout}");

    let r = report(&out_dir);
    assert_consistent(&r);
    assert!(r.passed, "{r:?}");
    assert!(r.budgets.is_empty());
    assert_eq!(r.settings.primary, "us-east");
    assert_eq!(r.settings.rate, 200);
    assert_eq!(r.settings.fail_after_ms, 10_000);
    // Failed at 10 s (give or take the scheduler).
    let failed_after = at(r.times.failure_at_ms, "failure") - r.times.started_at_ms;
    assert!((10_000..11_000).contains(&failed_after), "{failed_after}");
    // Detection is strait's probes: 3 s of failures (`strait.region.down.after.ms`), the
    // third probe waiting out its 1 s timeout; the failover does not probe us-east again.
    let detection = at(r.durations.detection_ms, "detection");
    assert!(
        (2_900..6_000).contains(&detection),
        "detection {detection} ms"
    );
    assert!(notes_of(&r).contains("probes of us-east"), "{r:?}");
    let failover = at(r.durations.failover_ms, "failover");
    assert!(failover < 5_000, "failover {failover} ms");
    // strait failover's own RPO estimate is in the report beside the measured one, and is a
    // range that holds the loss (how tight it is, BENCHMARKS.md measures).
    let estimate = r.strait_estimate.as_ref().expect("strait's estimate");
    assert!(estimate.source.contains("lag snapshot"), "{estimate:?}");
    assert!(
        estimate.at_least.unwrap() <= r.rpo_records && estimate.records.unwrap() >= r.rpo_records,
        "{estimate:?} against {} lost",
        r.rpo_records
    );
    assert_ne!(r.strait_estimate_check, Some(EstimateCheck::Under), "{r:?}");
    assert!(r.strait_estimate_check.is_some(), "{r:?}");
    let notes = r.notes.join("\n");
    assert!(notes.contains("sandbox fault proxy"), "{notes}");
    // The drill's MM2 file is kept beside the report, and loads.
    let cfg = strait::config::Config::load(out_dir.join("mm2.properties")).unwrap();
    assert!(cfg.flow("us-east", "us-west").unwrap().enabled);

    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.starts_with("# DR drill PASSED"), "{md}");
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("us-east failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rto_budget_of_zero_fails_the_drill() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("report");
    let out = drill(vec![
        "--sandbox".into(),
        "--duration".into(),
        "12s".into(),
        "--fail-after".into(),
        "4s".into(),
        "--rate".into(),
        "100".into(),
        "--rto-budget".into(),
        "0ms".into(),
        "--report".into(),
        out_dir.display().to_string(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("DR drill FAILED"), "{stdout}");
    assert!(stdout.contains("RTO budget"), "{stdout}");

    let r = report(&out_dir);
    assert_consistent(&r);
    assert!(!r.passed);
    let rto = &r.budgets[0];
    assert_eq!(rto.name, "rto", "{r:?}");
    assert_eq!(rto.unit, BudgetUnit::Milliseconds);
    assert_eq!(rto.limit, 0);
    assert!(!rto.passed);
    assert_eq!(rto.measured.map(|m| m as i64), r.durations.rto_ms);
    let failures = &r.failures;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].starts_with("RTO budget:"), "{failures:?}");
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.starts_with("# DR drill FAILED"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_drill_touches_only_its_own_topics_and_groups() {
    let sb = Sandbox::start(&["us-east", "us-west"]).await.unwrap();
    let (east, west) = (
        sb.cluster("us-east").unwrap(),
        sb.cluster("us-west").unwrap(),
    );
    // Production data and a production group, which nothing replicates while the drill runs.
    create_topic(east, "orders", 3).await;
    produce_range(east, "orders", 3, 0..300, "v", None).await;
    commit_group(east, "app", &[("orders", 0, 40), ("orders", 1, 50)]).await;

    let dir = tempfile::tempdir().unwrap();
    let cfg = mm2_config(
        &dir,
        &east.bootstrap_servers(),
        &west.bootstrap_servers(),
        "us-east->us-west.topics = .*\nemit.checkpoints.interval.seconds = 1\nrefresh.groups.interval.seconds = 1",
    );
    let out_dir = dir.path().join("report");
    let out = drill(vec![
        cfg.display().to_string(),
        "--primary".into(),
        "us-east".into(),
        "--secondary".into(),
        "us-west".into(),
        "--duration".into(),
        "12s".into(),
        "--fail-after".into(),
        "4s".into(),
        "--report".into(),
        out_dir.display().to_string(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0));
    let r = report(&out_dir);
    assert_consistent(&r);
    assert!(r.passed, "{r:?}");
    let notes = r.notes.join("\n");
    assert!(notes.contains("Simulated failure"), "{notes}");
    assert!(
        notes.contains("topics.exclude"),
        "the filter accepts the drill topic: {notes}"
    );
    // The group moved from its checkpoints (at most a second or so behind), not from the start:
    // a full re-read would deliver everything read on us-east again.
    let again = r.sequence.redeliveries_after_failover;
    assert!(
        again < r.counts.consumed_on_primary / 2,
        "{again} re-read: {r:?}"
    );
    let topic = r.settings.topic.clone();
    assert!(topic.starts_with("strait-drill-"), "{topic}");

    // Nothing of production was copied or moved, and the drill's topics and groups are gone.
    let on_west = topic_names(west).await;
    assert!(!on_west.iter().any(|t| t.contains("orders")), "{on_west:?}");
    assert!(!on_west.iter().any(|t| t.contains(&topic)), "{on_west:?}");
    let on_east = topic_names(east).await;
    assert!(!on_east.contains(&topic), "{on_east:?}");
    assert!(on_east.contains("orders"));
    let groups = |c: &strait_sandbox::Cluster| {
        let ep = endpoint(c);
        async move {
            strait::kafka::Groups::new(&ep, Duration::from_secs(10))
                .list(None)
                .await
                .unwrap()
                .into_iter()
                .map(|g| g.name)
                .collect::<Vec<_>>()
        }
    };
    let west_groups = groups(west).await;
    assert!(!west_groups.iter().any(|g| g == "app"), "{west_groups:?}");
    assert!(
        !west_groups.iter().any(|g| g.contains("drill")),
        "{west_groups:?}"
    );
    let east_groups = groups(east).await;
    assert!(east_groups.iter().any(|g| g == "app"), "{east_groups:?}");
    assert!(
        !east_groups.iter().any(|g| g.contains("drill")),
        "{east_groups:?}"
    );
    assert!(
        !east_groups.iter().any(|g| g == "strait.us-east->us-west"),
        "the drill must not use the production replication group: {east_groups:?}"
    );
}

#[test]
fn usage_mistakes_are_one_sentence_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mm2.properties");
    std::fs::write(
        &cfg,
        "clusters = a, b\na.bootstrap.servers = 127.0.0.1:1\nb.bootstrap.servers = 127.0.0.1:2\na->b.enabled = true\n",
    )
    .unwrap();
    let cfg = cfg.display().to_string();
    for (args, says) in [
        (vec![], "or --sandbox"),
        (vec![cfg.as_str(), "--sandbox"], "not both"),
        (vec![cfg.as_str(), "--primary", "a"], "--secondary"),
        (
            vec![cfg.as_str(), "--primary", "b", "--secondary", "a"],
            "replicates nothing from b to a",
        ),
        (
            vec![cfg.as_str(), "--primary", "a", "--secondary", "c"],
            "\"c\" is not a cluster",
        ),
        (
            vec!["missing.properties", "--primary", "a", "--secondary", "b"],
            "missing.properties",
        ),
        (
            vec!["--sandbox", "--duration", "20s", "--fail-after", "30s"],
            "shorter than --duration",
        ),
        (vec!["--sandbox", "--duration", "soon"], "not a duration"),
        (vec!["--sandbox", "--rto-budget", "fast"], "--rto-budget"),
        (vec!["--sandbox", "--rate", "0"], "--rate"),
        (vec!["--sandbox", "--primary", "us-west"], "both us-west"),
        (
            vec!["--sandbox", "--topic", "a topic"],
            "not a Kafka topic name",
        ),
    ] {
        let out = strait().arg("drill").args(&args).output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// The drill's notes, one per line.
fn notes_of(r: &DrillReport) -> String {
    r.notes.join("\n")
}
