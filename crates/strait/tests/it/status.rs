//! `strait status` against sandbox clusters: exact unreplicated counts and lag in seconds while
//! strait is stopped, OK once it caught up, BROKEN with exit code 2 when the target is cut.

use std::time::{Duration, Instant};

use crate::common::*;
use strait::monitor::{Status, Verdict};

/// `strait status CONFIG --json [extra]`: (exit code, document).
async fn status(cfg: &std::path::Path, extra: &[&str]) -> (i32, Status) {
    let mut cmd = strait();
    cmd.arg("status").arg(cfg).arg("--json").args(extra);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let doc = typed(
        &format!("status --json (stderr: {err})"),
        &String::from_utf8_lossy(&out.stdout),
    );
    (out.status.code().unwrap_or(-1), doc)
}

fn orders_lag(doc: &Status) -> (i64, f64) {
    let parts = &doc.flows[0].partition_lags;
    let orders: Vec<_> = parts.iter().filter(|p| p.topic == "orders").collect();
    assert_eq!(orders.len(), 3, "{doc:?}");
    (
        orders.iter().map(|p| p.lag_records).sum(),
        orders.iter().map(|p| p.lag_seconds).fold(0.0, f64::max),
    )
}

on_both_engines! {
async fn status_reports_exact_lag_then_ok_then_broken(engine) {
    let regions = Regions::start_on(engine,
        "refresh.topics.interval.seconds = 2
emit.checkpoints.interval.seconds = 1",
    )
    .await;
    let (east, west, cfg) = (regions.east(), regions.west(), regions.config.clone());

    // strait replicates the first 300 records, then stops cleanly.
    produce_range(east, "orders", 3, 0..300, "v", Some(now_ms())).await;
    let mut first = spawn_run(&cfg);
    wait_for_count(west, "us-east.orders", 3, 300, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await; // commits land
    signal(&first, "-TERM");
    assert!(first.wait().unwrap().success());

    // 600 records written 45 s ago (by their timestamps) and not replicated.
    let written_at = now_ms() - 45_000;
    produce_range(east, "orders", 3, 0..600, "v", Some(written_at)).await;
    let before = (now_ms() - written_at) as f64 / 1000.0;
    let (code, doc) = status(&cfg, &[]).await;
    let after = (now_ms() - written_at) as f64 / 1000.0;
    let (records, seconds) = orders_lag(&doc);
    assert_eq!(records, 600, "{doc:?}");
    // The age at the moment status looked, within a second.
    assert!(
        seconds >= before - 1.0 && seconds <= after + 1.0,
        "lag {seconds}s; the records were {before:.1}s to {after:.1}s old while status ran: {doc:?}"
    );
    assert_eq!(doc.flows[0].verdict, Verdict::Lagging, "{doc:?}");
    assert_eq!(code, 1, "LAGGING exits 1: {doc:?}");

    // strait catches up: no lag, OK, exit 0.
    let _second = spawn_run(&cfg);
    let deadline = Instant::now() + Duration::from_secs(60);
    let doc = loop {
        let (code, doc) = status(&cfg, &[]).await;
        if code == 0 && orders_lag(&doc).0 == 0 {
            break doc;
        }
        assert!(Instant::now() < deadline, "not caught up: {doc:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(orders_lag(&doc), (0, 0.0));
    assert_eq!(doc.verdict, Verdict::Ok);
    assert!(
        doc.flows[0].heartbeat_age_seconds.unwrap() < 5.0,
        "{doc:?}"
    );

    // The target cut off: BROKEN, naming it, exit 2, within the timeout given.
    west.cut();
    let t = Instant::now();
    let (code, doc) = status(&cfg, &["--timeout", "2"]).await;
    west.heal();
    assert_eq!(code, 2, "{doc:?}");
    assert_eq!(doc.flows[0].verdict, Verdict::Broken);
    let reasons = doc.flows[0].reasons.join("\n");
    assert!(reasons.contains("us-west"), "{reasons}");
    // The command's own probes: us-west down (3 s of failures, within the command's run), us-east up.
    let reach = |alias: &str| {
        doc.clusters
            .iter()
            .find(|c| c.cluster == alias)
            .unwrap_or_else(|| panic!("no cluster {alias}: {doc:?}"))
            .reach
    };
    assert_eq!(reach("us-west"), strait::reach::Reach::Down, "{doc:?}");
    assert_eq!(reach("us-east"), strait::reach::Reach::Up, "{doc:?}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
}
}

on_both_engines! {
/// A healthy flow's lag is what the target lacks, not how far its commits trail (they follow a
/// second or so behind, after the offset index): at 25 records/s `/api/status` and `strait
/// status` (from the lag snapshot the running process writes every second) show under a second
/// and a half, where the commits alone gave over two; the committed position is its own figure.
async fn lag_is_what_the_target_lacks_not_where_commits_are(engine) {
    let regions = Regions::start_on(engine, "refresh.topics.interval.seconds = 2").await;
    let (east, west, cfg) = (regions.east(), regions.west(), regions.config.clone());
    let http = format!("127.0.0.1:{}", free_port());
    let log = regions.dir.path().join("run.log");
    let child = spawn_run_http(&cfg, &http, &log);
    produce_range(east, "orders", 3, 0..30, "warm", None).await;
    wait_for_count(west, "us-east.orders", 3, 30, Duration::from_secs(60)).await;

    // 25 records a second for 20 s.
    let p = producer(east);
    let writer = tokio::spawn(async move {
        for i in 0..500 {
            let v = format!("steady:{i}");
            let rec = rdkafka::producer::FutureRecord::<(), _>::to("orders")
                .partition(i % 3)
                .payload(&v);
            p.send(rec, Duration::from_secs(10)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    });
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut api = Vec::new();
    let mut cli = Vec::new();
    let mut trailing = 0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(14) {
        let (code, body) = http_get(&http, "/api/status").await.unwrap();
        assert_eq!(code, 200, "{body}");
        let doc: Status = typed("/api/status", &body);
        let f = &doc.flows[0];
        api.push(f.lag_seconds);
        for p in &f.partition_lags {
            assert!(p.committed <= p.replicated, "{p:?}");
            trailing += i64::from(p.committed < p.replicated);
        }
        let (_, doc) = status(&cfg, &["--no-groups"]).await;
        cli.push(doc.flows[0].lag_seconds);
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    writer.await.unwrap();
    eprintln!("lag seconds: /api/status {api:?}, strait status {cli:?}; commits behind in {trailing} partition samples");
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    assert!(median(&mut api) < 1.5, "/api/status: {api:?}");
    assert!(median(&mut cli) < 1.5, "strait status: {cli:?}");
    assert!(trailing > 0, "the committed position is its own figure, behind");
    drop(child);
}
}
